"""Builders shared by the FC handler tests: the seed request, a fake FC context, FC 3.0 HTTP
events and WSGI environs. Holds no tests itself."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

from tests.support.decide_requests import walkthrough_request


@dataclass(frozen=True)
class FakeContext:
    request_id: str = "req-event-1"
    region: str = "cn-hangzhou"


def seed_request(pods: int = 15) -> dict[str, Any]:
    """The walkthrough request the FC handler tests send."""
    return walkthrough_request(pods)


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


def error_of(reply: bytes) -> dict[str, Any]:
    body = json.loads(reply)
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message", "path"}
    return body["error"]


def pods_mentioned(reply: dict[str, Any]) -> list[str]:
    uids = [uid for action in reply["actions"] for uid in action.get("pods", ())]
    uids += [entry["pod"] for entry in reply["covered"]]
    uids += [entry["pod"] for entry in reply["unplaceable"]]
    return uids


def fc3_event(
    body: bytes | str | None,
    *,
    method: str = "POST",
    base64_body: bool = False,
    request_id: str = "req-http-1",
) -> bytes:
    """An FC 3.0 HTTP-trigger event as the runtime hands it to Python: JSON bytes."""
    if base64_body:
        raw = body.encode() if isinstance(body, str) else body or b""
        text: str | None = base64.b64encode(raw).decode()
    else:
        text = body.decode() if isinstance(body, bytes) else body
    event = {
        "version": "v1",
        "rawPath": "/decide",
        "body": text,
        "isBase64Encoded": base64_body,
        "headers": {"Content-Type": "application/json"},
        "queryParameters": {},
        "requestContext": {
            "accountId": "1234567890123456",
            "domainName": "trigger.cn-hangzhou.fcapp.run",
            "domainPrefix": "trigger",
            "http": {
                "method": method,
                "path": "/decide",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": request_id,
            "time": "2026-11-29T05:00:00Z",
            "timeEpoch": "1795928400000",
        },
    }
    return json.dumps(event).encode()


@dataclass
class StartResponse:
    """Records what a WSGI application passed to start_response."""

    status: str = ""
    headers: list[tuple[str, str]] | None = None

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status = status
        self.headers = headers

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    def header(self, name: str) -> str | None:
        for key, value in self.headers or ():
            if key.lower() == name.lower():
                return value
        return None


def wsgi_environ(
    body: bytes = b"",
    *,
    method: str = "POST",
    content_length: str | None = None,
    stream: Any = None,
    request_id: str = "req-wsgi-1",
) -> dict[str, Any]:
    """A WSGI environ as the FC 2.0 Python runtime builds it (with `fc.context`)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/decide",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": stream if stream is not None else io.BytesIO(body),
        "fc.context": FakeContext(request_id=request_id),
        "fc.request_uri": "/2016-08-15/proxy/svc/fn/decide",
    }
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    elif stream is None:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ

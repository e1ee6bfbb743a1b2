"""The FC 2.0 HTTP-trigger handler (WSGI): same answers as the FC 3.0 handler, body limits
enforced from Content-Length before reading, and a broken connection answered with a generic 500."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from functions.fc import DEFAULT_MAX_BODY_BYTES, DecisionEndpoint, wsgi_handler
from tests.support.cloud.fc_events import (
    StartResponse,
    encoded,
    pods_mentioned,
    seed_request,
    wsgi_environ,
)


class UnreadableStream:
    """wsgi.input that fails the test if the handler reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read although its declared length is over the limit")


class EndlessStream:
    """A chunked body with no Content-Length that never ends; reads return what was asked."""

    def __init__(self) -> None:
        self.handed_out = 0

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "an unbounded read of an endless body would never return"
        self.handed_out += size
        return b" " * size


class DroppedConnection:
    """wsgi.input whose client hung up mid-body."""

    def read(self, size: int = -1) -> bytes:
        raise ConnectionResetError("peer closed the connection")


def call(app: Any, environ: dict[str, Any]) -> tuple[StartResponse, dict[str, Any]]:
    start = StartResponse()
    chunks = list(app(environ, start))
    payload = b"".join(chunks)
    assert start.header("Content-Type") == "application/json"
    assert start.header("Content-Length") == str(len(payload))
    return start, json.loads(payload)


def test_post_of_a_valid_request_is_200_with_the_reply() -> None:
    """A POSTed request is answered 200 OK with the reply."""
    request = seed_request()
    start, reply = call(wsgi_handler, wsgi_environ(encoded(request)))
    assert start.status == "200 OK"
    assert sorted(pods_mentioned(reply)) == sorted(pod["uid"] for pod in request["pods"])


def test_get_is_405_with_allow_header() -> None:
    """Only POST decides."""
    start, body = call(wsgi_handler, wsgi_environ(method="GET"))
    assert start.code == 405
    assert start.header("Allow") == "POST"
    assert body["error"]["code"] == "MethodNotAllowed"


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff\xfe\xfd", b"[]", json.dumps({"schema": "decide/v1", "pods": "x"}).encode()],
    ids=["empty", "truncated", "non-utf8", "array", "wrong-type"],
)
def test_bad_input_is_400(body: bytes) -> None:
    """Malformed bytes, invalid JSON and wrong types are 400 InvalidRequest."""
    start, error = call(wsgi_handler, wsgi_environ(body))
    assert start.status == "400 Bad Request"
    assert error["error"]["code"] == "InvalidRequest"


@pytest.mark.parametrize("length", ["abc", "-5", "1.5"])
def test_unreadable_content_length_is_400(length: str) -> None:
    """A Content-Length that is not a non-negative integer is bad input."""
    start, _ = call(wsgi_handler, wsgi_environ(b"{}", content_length=length))
    assert start.code == 400


def test_declared_length_over_the_limit_is_413_without_reading() -> None:
    """The deployed handler refuses a body declared past its limit before reading a byte."""
    environ = wsgi_environ(
        content_length=str(DEFAULT_MAX_BODY_BYTES + 1), stream=UnreadableStream()
    )
    start, error = call(wsgi_handler, environ)
    assert start.code == 413
    assert error["error"]["code"] == "RequestTooLarge"


def test_chunked_body_over_the_limit_is_413_after_reading_one_byte_too_many() -> None:
    """Without Content-Length the handler reads at most limit + 1 bytes, then refuses."""
    stream = EndlessStream()
    endpoint = DecisionEndpoint(max_body_bytes=2048)
    start, _ = call(endpoint.handle_wsgi, wsgi_environ(stream=stream, content_length=""))
    assert start.code == 413
    assert stream.handed_out == 2049


def test_chunked_body_within_the_limit_is_decided() -> None:
    """A body without Content-Length that ends within the limit is decided normally."""
    raw = encoded(seed_request(pods=2))
    start, reply = call(wsgi_handler, wsgi_environ(stream=io.BytesIO(raw), content_length=""))
    assert start.code == 200
    assert reply["schema"] == "decide/v1"


def test_dropped_connection_is_a_generic_500_naming_the_request() -> None:
    """An unexpected failure is 500 with a generic error object and the request id, no traceback."""
    environ = wsgi_environ(
        content_length="100", stream=DroppedConnection(), request_id="req-broken"
    )
    start, body = call(wsgi_handler, environ)
    assert start.code == 500
    assert body["error"]["code"] == "InternalError"
    assert body["error"]["requestId"] == "req-broken"
    assert "Traceback" not in json.dumps(body)
    assert "peer closed" not in json.dumps(body)

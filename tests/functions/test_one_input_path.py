"""One input path: the CLI (`python -m functions decide`), the FC event handler, the FC 3.0 HTTP
handler and the FC 2.0 WSGI handler read a body with the same `functions.readers.read_request`,
so each hostile body gets the same error object everywhere (and the CLI exit 2, the HTTP
handlers 400 or 413), and a lone surrogate is refused with the JSON path where it was found."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from functions.__main__ import EXIT_BAD_INPUT, main
from functions.errors import incident_id
from functions.fc import DecisionEndpoint
from functions.readers import MAX_BODY_BYTES, read_request
from tests.support.cloud.fc_events import (
    FakeContext,
    StartResponse,
    encoded,
    fc3_event,
    seed_request,
    wsgi_environ,
)

LIMIT = 300_000  # above the deep-nesting body; a 32 MB body would only slow the test


def _with_label(value: str) -> bytes:
    """The seed request with a pod label whose JSON text is `value` (already escaped)."""
    text = encoded(seed_request(pods=2)).decode()
    return text.replace('"workergroup"', value, 1).encode()


HOSTILE = {
    "nan": (b'{"schema": "decide/v1", "now": NaN}', "InvalidRequest", ""),
    "infinity": (b'{"schema": "decide/v1", "x": Infinity}', "InvalidRequest", ""),
    "minus-infinity": (b'{"schema": "decide/v1", "x": -Infinity}', "InvalidRequest", ""),
    "number-beyond-double": (b'{"schema": "decide/v1", "x": 1e400}', "InvalidRequest", ""),
    "huge-integer": (b'{"x": ' + b"9" * 200 + b"}", "InvalidRequest", ""),
    "utf8-bom": (b"\xef\xbb\xbf" + encoded(seed_request(pods=1)), "InvalidRequest", ""),
    "utf16-with-bom": (json.dumps(seed_request(pods=1)).encode("utf-16"), "InvalidRequest", ""),
    "utf16-le": (json.dumps(seed_request(pods=1)).encode("utf-16-le"), "InvalidRequest", ""),
    "utf32": (json.dumps(seed_request(pods=1)).encode("utf-32"), "InvalidRequest", ""),
    "invalid-utf8": (b'{"schema": "\xc3\x28"}', "InvalidRequest", ""),
    "empty": (b"", "InvalidRequest", ""),
    "not-an-object": (b"[1, 2]", "InvalidRequest", ""),
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, "InvalidRequest", ""),
    "over-the-limit": (b"{" + b" " * LIMIT + b"}", "RequestTooLarge", ""),
    "surrogate-in-label": (
        _with_label('"\\ud800"'),
        "InvalidRequest",
        "pods[0].labels.ray.io/group",
    ),
    "low-surrogate-in-label": (
        _with_label('"x\\uDC00y"'),
        "InvalidRequest",
        "pods[0].labels.ray.io/group",
    ),
    "surrogate-in-uid": (
        encoded(seed_request(pods=2)).replace(b'"uid": "', b'"uid": "\\udbff', 1),
        "InvalidRequest",
        "pods[0].uid",
    ),
    "surrogate-in-a-key": (
        b'{"schema": "decide/v1", "cluster": {"id": "c", "\\ud800x": 1}}',
        "InvalidRequest",
        "cluster.\\ud800x",
    ),
}


def _cli(
    body: bytes, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> tuple[int, Any]:
    source = tmp_path / "request.json"
    source.write_bytes(body)
    code = main(["decide", "--in", str(source)])
    return code, json.loads(capsysbinary.readouterr().out)


def _wsgi(endpoint: DecisionEndpoint, body: bytes) -> tuple[int, Any]:
    start = StartResponse()
    payload = b"".join(endpoint.handle_wsgi(wsgi_environ(body), start))
    return start.code, json.loads(payload)


def _http(endpoint: DecisionEndpoint, body: bytes) -> tuple[int, Any]:
    reply = endpoint.handle_http(fc3_event(body, base64_body=True), FakeContext())
    return reply["statusCode"], json.loads(reply["body"])


@pytest.mark.parametrize(("body", "code", "path"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_every_entry_point_refuses_alike(
    body: bytes,
    code: str,
    path: str,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same body gets the same error object from the CLI and all three FC handlers."""
    monkeypatch.setenv("DECIDE_MAX_BODY_BYTES", str(LIMIT))
    endpoint = DecisionEndpoint(max_body_bytes=LIMIT)
    cli_status, cli = _cli(body, tmp_path, capsysbinary)
    event = json.loads(endpoint.handle_event(body, FakeContext()))
    http_status, http = _http(endpoint, body)
    wsgi_status, wsgi = _wsgi(endpoint, body)
    assert cli_status == EXIT_BAD_INPUT
    expected_status = 413 if code == "RequestTooLarge" else 400
    assert http_status == wsgi_status == expected_status
    assert cli == event == http == wsgi, "one reader, one answer"
    assert (cli["error"]["code"], cli["error"]["path"]) == (code, path)
    assert cli["error"]["message"]


def test_a_valid_request_gets_the_same_reply_everywhere(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Control: the seed request is decided identically by all four entry points."""
    body = encoded(seed_request(pods=3))
    endpoint = DecisionEndpoint()
    status, cli = _cli(body, tmp_path, capsysbinary)
    assert status == 0
    assert cli == json.loads(endpoint.handle_event(body, FakeContext()))
    assert (200, cli) == _http(endpoint, body) == _wsgi(endpoint, body)


def test_a_surrogate_pair_is_one_character_not_a_lone_surrogate() -> None:
    """An astral character escaped as a pair (as json.dumps writes an emoji) is valid text."""
    request = read_request(_with_label('"\\ud83d\\ude00"'))
    assert request["pods"][0]["labels"]["ray.io/group"] == "\U0001f600"


def test_text_bodies_are_read_like_bytes() -> None:
    """A str body (the FC 3.0 event's `body`) is held to the same rules: a raw surrogate in the
    text, a BOM and the size limit measured in UTF-8 bytes."""
    with pytest.raises(Exception, match="surrogate") as caught:
        read_request('{"a": ["\ud800"]}')
    assert getattr(caught.value, "path", None) == "a[0]"
    with pytest.raises(Exception, match="byte order mark"):
        read_request("\ufeff{}")
    with pytest.raises(Exception, match="limit of 10 bytes"):
        read_request('{"a": "ééééé"}', max_bytes=10)


def test_the_default_limit_is_fc_synchronous_payload_limit() -> None:
    """32 MB, as the FC emulator and docs/cloud-facts.md say FC's sync invocations allow."""
    from agent.sim.cloud.fc_api import SYNC_PAYLOAD_LIMIT_BYTES

    assert MAX_BODY_BYTES == SYNC_PAYLOAD_LIMIT_BYTES == 32 * 1024 * 1024
    assert DecisionEndpoint().max_body_bytes == MAX_BODY_BYTES


def test_cli_stdin_is_read_only_to_one_byte_past_the_limit(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """An endless stdin is refused as too large without being read to its end."""

    class Endless(io.RawIOBase):
        read_so_far = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = len(buffer)
            buffer[:n] = b" " * n
            Endless.read_so_far += n
            return n

    monkeypatch.setenv("DECIDE_MAX_BODY_BYTES", "1000")
    stdin = io.TextIOWrapper(io.BufferedReader(Endless()))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["decide"]) == EXIT_BAD_INPUT
    assert json.loads(capsysbinary.readouterr().out)["error"]["code"] == "RequestTooLarge"
    assert Endless.read_so_far < 1_000_000


def test_a_failure_of_the_core_is_an_internal_error_with_a_decision_id_everywhere(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the core: every FC handler answers the InternalError object (HTTP 500) with the
    body's decision id and FC's request id, and logs the traceback under the same ids."""

    def broken(request: dict[str, Any]) -> dict[str, Any]:
        raise ZeroDivisionError("a bug in the core")

    monkeypatch.setattr("functions.fc.decide", broken)
    body = encoded(seed_request(pods=2))
    endpoint = DecisionEndpoint()
    event = json.loads(endpoint.handle_event(body, FakeContext()))
    http_status, http = _http(endpoint, body)
    wsgi_status, wsgi = _wsgi(endpoint, body)
    assert http_status == wsgi_status == 500
    expected = incident_id(body)
    for answer in (event, http, wsgi):
        error = answer["error"]
        assert (error["code"], error["decisionId"]) == ("InternalError", expected)
        assert error["requestId"] and expected in error["message"]
        assert "ZeroDivisionError" not in json.dumps(answer)
    logged = [r for r in caplog.records if r.exc_info is not None]
    assert len(logged) == 3 and all(expected in r.getMessage() for r in logged)

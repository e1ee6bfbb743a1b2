"""The FC event handler: request bytes in, reply or error object bytes out, never an exception."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.fc import DecisionEndpoint, handler
from tests.support.cloud.fc_events import (
    FakeContext,
    encoded,
    error_of,
    pods_mentioned,
    seed_request,
)


def test_seed_request_gets_a_reply_naming_every_pod_once() -> None:
    """A valid request comes back as the decide/v1 reply, every pod accounted for once."""
    request = seed_request()
    reply = json.loads(handler(encoded(request), FakeContext()))
    assert reply["schema"] == "decide/v1"
    assert sorted(pods_mentioned(reply)) == sorted(pod["uid"] for pod in request["pods"])
    assert any(action["kind"] == "scale-pool" for action in reply["actions"])


@pytest.mark.parametrize("event_type", [bytes, bytearray, memoryview, str])
def test_event_accepted_as_any_bytes_like_or_text(event_type: type) -> None:
    """Runtimes and emulators hand the event as bytes, bytearray, memoryview or str alike."""
    raw = encoded(seed_request(pods=2))
    event = raw.decode() if event_type is str else event_type(raw)
    assert json.loads(handler(event, FakeContext()))["schema"] == "decide/v1"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"  \n ", id="whitespace"),
        pytest.param(b'{"schema": "decide/v1",', id="truncated-json"),
        pytest.param(b"\xff\xfe{\x00}\x00", id="utf16-bom"),
        pytest.param(b'{"schema": "\xc3\x28"}', id="invalid-utf8"),
        pytest.param(b"\x00\x01\x02binary", id="binary"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"42", id="number"),
        pytest.param(b'"decide/v1"', id="string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"schema": "decide/v1", "now": NaN}', id="nan"),
        pytest.param(b"[" * 100_000, id="deep-nesting"),
    ],
)
def test_malformed_bytes_become_an_invalid_request_error_object(body: bytes) -> None:
    """Garbage is answered with the InvalidRequest error object, not a traceback."""
    error = error_of(handler(body, FakeContext()))
    assert error["code"] == "InvalidRequest"
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize(
    ("mutate", "path_prefix"),
    [
        pytest.param(lambda r: r.update(pods="many"), "pods", id="pods-not-list"),
        pytest.param(lambda r: r["pods"][3]["requests"].update(cpu=True), "pods[3]", id="cpu-bool"),
        pytest.param(
            lambda r: r["pods"][2]["requests"].update(memory="lots"), "pods[2]", id="bad-quantity"
        ),
        pytest.param(lambda r: r["pools"][0].update(size="big"), "pools[0]", id="size-not-object"),
        pytest.param(lambda r: r.update(schema="decide/v0"), "schema", id="unknown-schema"),
    ],
)
def test_wrong_types_name_the_json_path(mutate: Any, path_prefix: str) -> None:
    """Mistyped fields are refused with the path of the offending field."""
    request = seed_request()
    mutate(request)
    error = error_of(handler(encoded(request), FakeContext()))
    assert error["code"] == "InvalidRequest"
    assert error["path"].startswith(path_prefix), error


def test_body_over_the_byte_limit_is_refused_before_parsing() -> None:
    """A body past the endpoint's byte limit is RequestTooLarge, whatever its content."""
    endpoint = DecisionEndpoint(max_body_bytes=1024)
    error = error_of(endpoint.handle_event(b"{" + b" " * 2048, FakeContext()))
    assert error["code"] == "RequestTooLarge"
    assert "1024" in error["message"]


def test_more_pods_than_a_decision_accepts_is_request_too_large() -> None:
    """200,001 pods fit the byte limit but not the core's pod limit: RequestTooLarge."""
    request = seed_request(pods=0)
    # The count is checked before any pod is read, so empty objects keep the body small.
    request["pods"] = [{}] * 200_001
    error = error_of(handler(encoded(request), FakeContext()))
    assert error["code"] == "RequestTooLarge"


def test_context_without_request_id_still_answers() -> None:
    """A context lacking request_id (a bare test double, an old runtime) does not break replies."""
    reply = json.loads(handler(encoded(seed_request(pods=1)), object()))
    assert reply["schema"] == "decide/v1"

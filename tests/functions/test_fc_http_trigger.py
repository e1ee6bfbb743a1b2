"""The FC 3.0 HTTP-trigger handler: 200 reply, 400 bad input, 405 non-POST, 413 too large, and
never a 500 for anything a caller can send."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.fc import DecisionEndpoint, http_handler
from tests.support.cloud.fc_events import (
    FakeContext,
    encoded,
    fc3_event,
    pods_mentioned,
    seed_request,
)


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    assert set(response) >= {"statusCode", "headers", "body"}
    assert response["headers"]["Content-Type"] == "application/json"
    assert response.get("isBase64Encoded") is False
    assert isinstance(response["body"], str)
    return response["statusCode"], json.loads(response["body"])


def test_post_of_a_valid_request_is_200_with_the_reply() -> None:
    """A POSTed decide/v1 request is answered 200 with the reply as a JSON string body."""
    request = seed_request()
    status, reply = answer(http_handler(fc3_event(encoded(request)), FakeContext()))
    assert status == 200
    assert reply["schema"] == "decide/v1"
    assert sorted(pods_mentioned(reply)) == sorted(pod["uid"] for pod in request["pods"])


def test_base64_encoded_body_is_decoded() -> None:
    """FC marks binary bodies isBase64Encoded; the handler decodes them before parsing."""
    event = fc3_event(encoded(seed_request(pods=3)), base64_body=True)
    status, reply = answer(http_handler(event, FakeContext()))
    assert status == 200
    assert reply["schema"] == "decide/v1"


def test_already_parsed_event_is_accepted() -> None:
    """An emulator may pass the event as a dict instead of JSON bytes."""
    event = json.loads(fc3_event(encoded(seed_request(pods=2))))
    status, _reply = answer(http_handler(event, FakeContext()))
    assert status == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_anything_but_post_is_405_with_allow_header(method: str) -> None:
    """Only POST decides; other methods get 405 and `Allow: POST`."""
    response = http_handler(fc3_event(encoded(seed_request()), method=method), FakeContext())
    status, body = answer(response)
    assert status == 405
    assert response["headers"]["Allow"] == "POST"
    assert body["error"]["code"] == "MethodNotAllowed"


def test_lower_case_post_is_still_post() -> None:
    """Method names are compared case-insensitively."""
    status, _ = answer(
        http_handler(fc3_event(encoded(seed_request(pods=1)), method="post"), FakeContext())
    )
    assert status == 200


@pytest.mark.parametrize(
    ("body", "base64_body"),
    [
        pytest.param(None, False, id="no-body"),
        pytest.param("", False, id="empty"),
        pytest.param("{not json", False, id="malformed"),
        pytest.param("[1, 2]", False, id="array"),
        pytest.param("true", False, id="boolean"),
        pytest.param('{"schema": "decide/v1", "pods": Infinity}', False, id="infinity"),
        pytest.param(b"\xc3\x28\xa0\xa1", True, id="non-utf8-base64"),
        pytest.param(b"\xef\xbb\xbf{}", True, id="utf8-bom"),
        pytest.param(json.dumps({"schema": "decide/v1", "pods": {}}), False, id="pods-object"),
        pytest.param(json.dumps({"schema": "decide/v1"}), False, id="missing-fields"),
    ],
)
def test_bad_input_is_400_with_the_error_object(body: Any, base64_body: bool) -> None:
    """Malformed bytes, invalid JSON and wrong types are 400 InvalidRequest."""
    status, error = answer(http_handler(fc3_event(body, base64_body=base64_body), FakeContext()))
    assert status == 400
    assert error["error"]["code"] == "InvalidRequest"


def test_body_flagged_base64_that_is_not_base64_is_400() -> None:
    """A body claiming base64 but holding other characters is bad input, not a crash."""
    event = json.loads(fc3_event(encoded(seed_request(pods=1))))
    event["isBase64Encoded"] = True
    status, error = answer(http_handler(event, FakeContext()))
    assert status == 400
    assert "base64" in error["error"]["message"]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(b"not an event", id="event-not-json"),
        pytest.param(b"[]", id="event-array"),
        pytest.param(b"{}", id="event-without-request-context"),
        pytest.param(
            json.dumps({"requestContext": {"http": "POST"}}).encode(), id="http-not-object"
        ),
        pytest.param(
            json.dumps({"requestContext": {"http": {"method": "POST"}}, "body": 7}).encode(),
            id="body-number",
        ),
        pytest.param(12345, id="event-int"),
    ],
)
def test_malformed_trigger_event_is_400(event: Any) -> None:
    """An event that is not the HTTP-trigger shape is refused as bad input."""
    status, error = answer(http_handler(event, FakeContext()))
    assert status == 400
    assert error["error"]["code"] == "InvalidRequest"


def test_body_over_the_byte_limit_is_413_before_parsing() -> None:
    """Plain and base64 bodies past the limit are 413 RequestTooLarge."""
    endpoint = DecisionEndpoint(max_body_bytes=4096)
    oversized = "{" + " " * 5000 + "}"
    for event in (fc3_event(oversized), fc3_event(oversized, base64_body=True)):
        status, error = answer(endpoint.handle_http(event, FakeContext()))
        assert status == 413
        assert error["error"]["code"] == "RequestTooLarge"


def test_non_ascii_body_is_measured_in_utf8_bytes() -> None:
    """The limit counts UTF-8 bytes, so 2,000 three-byte characters exceed 4,096 bytes."""
    endpoint = DecisionEndpoint(max_body_bytes=4096)
    status, _ = answer(
        endpoint.handle_http(fc3_event('{"x": "' + "雲" * 2000 + '"}'), FakeContext())
    )
    assert status == 413


def test_event_too_large_to_hold_any_acceptable_body_is_413() -> None:
    """An event past 4/3 of the limit plus envelope slack is refused before it is parsed."""
    endpoint = DecisionEndpoint(max_body_bytes=1024)
    event = b"{" + b" " * (200 * 1024) + b"}"
    status, error = answer(endpoint.handle_http(event, FakeContext()))
    assert status == 413
    assert error["error"]["code"] == "RequestTooLarge"


def test_too_many_pods_from_the_core_is_413() -> None:
    """The core's RequestTooLarge (more than 200,000 pods) maps to 413."""
    request = seed_request(pods=0)
    # The count is checked before any pod is read, so empty objects keep the body small.
    request["pods"] = [{}] * 200_001
    status, error = answer(http_handler(fc3_event(encoded(request)), FakeContext()))
    assert status == 413
    assert error["error"]["code"] == "RequestTooLarge"

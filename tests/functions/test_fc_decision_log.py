"""The handlers' log: one structured JSON line per decision (request id, pods, actions, ms), one
per refused request, and tracebacks only in the log, never in a reply."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from functions.fc import DecisionEndpoint, handler, http_handler, wsgi_handler
from tests.support.cloud.fc_events import (
    FakeContext,
    StartResponse,
    encoded,
    fc3_event,
    seed_request,
    wsgi_environ,
)

LOGGER = "functions.fc"


def json_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == LOGGER and r.exc_info is None
    ]


def test_each_decision_logs_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    """A decision logs exactly one line: request id, pod and action counts, milliseconds."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    reply = json.loads(handler(encoded(seed_request(pods=15)), FakeContext(request_id="req-42")))
    (line,) = json_lines(caplog)
    assert line["event"] == "decision"
    assert line["requestId"] == "req-42"
    assert line["pods"] == 15
    assert line["actions"] == len(reply["actions"])
    assert line["decisionId"] == reply["decisionId"]
    assert isinstance(line["ms"], float) and line["ms"] >= 0.0


def test_refused_request_logs_its_error_code(caplog: pytest.LogCaptureFixture) -> None:
    """Bad input logs one `decision-rejected` line with the error code and path."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    handler(b"[]", FakeContext(request_id="req-bad"))
    (line,) = json_lines(caplog)
    assert line == {
        **line,
        "event": "decision-rejected",
        "requestId": "req-bad",
        "code": "InvalidRequest",
    }


def test_http_request_id_falls_back_to_the_trigger_event(caplog: pytest.LogCaptureFixture) -> None:
    """Without context.request_id the HTTP trigger's requestContext.requestId names the request."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    http_handler(fc3_event(encoded(seed_request(pods=1)), request_id="from-event"), object())
    (line,) = json_lines(caplog)
    assert line["requestId"] == "from-event"


def test_non_post_is_logged_as_rejected(caplog: pytest.LogCaptureFixture) -> None:
    """A 405 leaves a trace in the log too."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    http_handler(fc3_event(None, method="GET"), FakeContext(request_id="req-get"))
    (line,) = json_lines(caplog)
    assert (line["code"], line["requestId"]) == ("MethodNotAllowed", "req-get")


def test_unexpected_failure_logs_the_traceback_not_the_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 500 path logs the exception with its traceback for the operator."""

    class Broken:
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("peer closed the connection")

    caplog.set_level(logging.INFO, logger=LOGGER)
    start = StartResponse()
    payload = b"".join(wsgi_handler(wsgi_environ(content_length="10", stream=Broken()), start))
    assert start.code == 500
    (record,) = [r for r in caplog.records if r.name == LOGGER and r.exc_info is not None]
    assert "req-wsgi-1" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ConnectionResetError
    assert b"ConnectionResetError" not in payload


def test_endpoint_logs_to_the_logger_it_is_given(caplog: pytest.LogCaptureFixture) -> None:
    """The decision log goes where the endpoint's owner points it."""
    caplog.set_level(logging.INFO, logger="elsewhere")
    endpoint = DecisionEndpoint(log=logging.getLogger("elsewhere"))
    endpoint.handle_event(encoded(seed_request(pods=1)), FakeContext())
    assert [r.name for r in caplog.records] == ["elsewhere"]

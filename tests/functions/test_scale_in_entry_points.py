"""scale-in/v1 through every door: functions.scale_in, `python -m functions scale-in`, the FC
handlers (dispatch by `schema`), the contract document's example, and import cost."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import functions
from functions.fc import handler, http_handler, wsgi_handler
from tests.support.cloud.fc_events import (
    FakeContext,
    StartResponse,
    encoded,
    fc3_event,
    wsgi_environ,
)
from tests.support.processes import REPO, run_module
from tests.support.scale_in_requests import node, pod, request

CONTRACT = REPO / "docs" / "scale-in-contract.md"
TIMEOUT = 60


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_module("functions", *args, stdin=stdin, timeout=TIMEOUT)


def _contract_example() -> tuple[dict[str, Any], dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)\n```", CONTRACT.read_text(encoding="utf-8"), re.S)
    first, second = blocks[:2]
    return json.loads(first), json.loads(second)


def _cluster() -> dict[str, Any]:
    return request([node("a"), node("b", pod("p")), node("k", pool=None)])


# --- the Python API and the contract document ----------------------------------------------


def test_package_exports_scale_in() -> None:
    """functions.scale_in answers a scale-in/v1 request."""
    reply = functions.scale_in(_cluster())
    assert reply["schema"] == "scale-in/v1"
    assert [e["node"] for e in reply["remove"]] == ["a"]


def test_contract_example_is_what_the_core_answers() -> None:
    """The request and reply printed in docs/scale-in-contract.md are a real exchange."""
    example, documented = _contract_example()
    assert functions.scale_in(example) == documented


def test_importing_the_package_does_not_load_scale_in() -> None:
    """`import functions` and the FC module leave the scale-in modules unloaded until used."""
    code = (
        "import sys, functions, functions.fc; "
        "print(sorted(m for m in sys.modules if m.startswith('functions.scalein')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- CLI -----------------------------------------------------------------------------------


def test_cli_file_and_stdin_agree(tmp_path: Path) -> None:
    """`scale-in --in FILE` and `scale-in` on stdin print the same reply and exit 0."""
    body = _cluster()
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    from_file = _run("scale-in", "--in", str(path))
    from_stdin = _run("scale-in", stdin=json.dumps(body))
    assert from_file.returncode == from_stdin.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == json.loads(from_stdin.stdout) == functions.scale_in(body)


@pytest.mark.parametrize(
    ("stdin", "code", "path"),
    [
        (
            '{"schema": "scale-in/v1", "now": "2026-11-29T05:00:00Z", "pools": [], "nodes": [7]}',
            "InvalidRequest",
            "nodes[0]",
        ),
        ("{not json", "InvalidRequest", ""),
        (
            '{"schema": "scale-in/v1", "now": "2026-11-29T05:00:00Z", "pools": [], "nodes": ['
            + ",".join(["{}"] * 20_001)
            + "]}",
            "RequestTooLarge",
            "nodes",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_the_error_object(stdin: str, code: str, path: str) -> None:
    """Invalid, malformed or oversized input prints {"error": {code, message, path}}, exit 2."""
    result = _run("scale-in", stdin=stdin)
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["path"]) == (code, path)


def test_cli_help_lists_scale_in() -> None:
    """`--help` names the scale-in command next to decide."""
    result = _run("--help")
    assert result.returncode == 0
    assert "scale-in" in result.stdout and "decide" in result.stdout


# --- Function Compute handlers: dispatch by schema -----------------------------------------


def test_event_handler_dispatches_on_schema() -> None:
    """One handler answers both schemas, each with its own reply."""
    out = json.loads(handler(encoded(_cluster()), FakeContext()))
    assert out["schema"] == "scale-in/v1" and "remove" in out
    decide_request = {"schema": "decide/v1", "now": "2026-11-29T05:00:00Z", "pods": [], "pools": []}
    assert json.loads(handler(encoded(decide_request), FakeContext()))["schema"] == "decide/v1"


def test_event_handler_returns_scale_in_errors_as_objects() -> None:
    """A bad scale-in request comes back as the error object with its path."""
    body = _cluster()
    body["nodes"][1]["pods"][0]["ownerKind"] = "Deployment"
    error = json.loads(handler(encoded(body), FakeContext()))["error"]
    assert error["path"] == "nodes[1].pods[0].ownerKind"


def test_unknown_schema_is_still_refused() -> None:
    """A schema neither decision knows is InvalidRequest at `schema`."""
    body = _cluster()
    body["schema"] = "scale-sideways/v1"
    assert json.loads(handler(encoded(body), FakeContext()))["error"]["path"] == "schema"


def test_http_trigger_status_codes_for_scale_in() -> None:
    """HTTP trigger: 200 with the reply, 400 for invalid input, 413 over 20,000 nodes."""
    ok = http_handler(fc3_event(encoded(_cluster())), FakeContext())
    assert ok["statusCode"] == 200 and json.loads(ok["body"])["schema"] == "scale-in/v1"
    bad = _cluster()
    bad["policy"] = {"maxNodesPerDecision": -1}
    refused = http_handler(fc3_event(encoded(bad)), FakeContext())
    assert refused["statusCode"] == 400
    assert json.loads(refused["body"])["error"]["path"] == "policy.maxNodesPerDecision"
    huge = _cluster()
    huge["nodes"] = [{}] * 20_001
    assert http_handler(fc3_event(encoded(huge)), FakeContext())["statusCode"] == 413


def test_wsgi_trigger_answers_scale_in() -> None:
    """FC 2.0 WSGI: 200 and the scale-in reply."""
    start = StartResponse()
    body = b"".join(wsgi_handler(wsgi_environ(encoded(_cluster())), start))
    assert start.code == 200
    assert json.loads(body)["summary"]["removeNodes"] == 1


def test_scale_in_decision_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """One JSON log line per scale-in decision: node and removal counts."""
    caplog.set_level(logging.INFO, logger="functions.fc")
    reply = json.loads(handler(encoded(_cluster()), FakeContext(request_id="req-7")))
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "functions.fc"]
    assert line["event"] == "scale-in-decision" and line["requestId"] == "req-7"
    assert (line["nodes"], line["remove"]) == (3, 1)
    assert line["decisionId"] == reply["decisionId"]

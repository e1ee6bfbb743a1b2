"""`python -m functions`: decide / example / --help through a real interpreter, with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.network import client_environment
from tests.support.processes import REPO, run_module

TIMEOUT = 60


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_module("functions", *args, stdin=stdin, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    result = _run("example")
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_example_is_the_seed_walkthrough(seed: dict[str, Any]) -> None:
    """15 Ray workers of 1 vCPU / 1 GiB, one empty ecs.g7.xlarge pool (max 10), ECI on."""
    assert len(seed["pods"]) == 15
    assert {json.dumps(p["requests"], sort_keys=True) for p in seed["pods"]} == {
        '{"cpu": "1", "memory": "1Gi"}'
    }
    assert all(p["labels"]["ray.io/node-type"] == "worker" for p in seed["pods"])
    (pool,) = seed["pools"]
    assert pool["instanceType"] == "ecs.g7.xlarge"
    assert pool["size"]["desired"] == 0 and pool["size"]["max"] == 10
    assert seed["eci"]["enabled"] is True


def test_committed_seed_file_matches_example(seed: dict[str, Any]) -> None:
    """examples/seed-request.json is what `example` prints (the README's first command)."""
    assert json.loads((REPO / "examples" / "seed-request.json").read_text()) == seed


def test_decide_from_file_and_stdin_agree(seed: dict[str, Any]) -> None:
    """`decide --in FILE` and `decide` on stdin print the same reply and exit 0."""
    from_file = _run("decide", "--in", "examples/seed-request.json")
    from_stdin = _run("decide", stdin=json.dumps(seed))
    assert from_file.returncode == from_stdin.returncode == 0
    reply = json.loads(from_file.stdout)
    assert reply == json.loads(from_stdin.stdout)
    assert reply["schema"] == "decide/v1"
    moved = [uid for a in reply["actions"] for uid in a["pods"]]
    assert sorted(moved) == sorted(p["uid"] for p in seed["pods"])


@pytest.mark.parametrize(
    ("stdin", "code", "path"),
    [
        ("{", "InvalidRequest", ""),
        ("", "InvalidRequest", ""),
        ("[]", "InvalidRequest", ""),
        ('{"schema": "decide/v0"}', "InvalidRequest", "schema"),
    ],
)
def test_bad_input_exits_2_with_the_error_object(stdin: str, code: str, path: str) -> None:
    """Invalid JSON or an invalid request prints {"error": {...}} and exits 2, no traceback."""
    result = _run("decide", stdin=stdin)
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == code and error["path"] == path and error["message"]
    assert "Traceback" not in result.stderr


def test_undecodable_and_deeply_nested_input_exit_2(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, or JSON nested past the parser's depth, are bad input too."""
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"schema": "\xff\xfe"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for path in (broken, deep):
        result = _run("decide", "--in", str(path))
        assert result.returncode == 2, result.stderr
        assert json.loads(result.stdout)["error"]["code"] == "InvalidRequest"
        assert "Traceback" not in result.stderr


def test_missing_file_exits_2() -> None:
    """An unreadable --in file is bad input too."""
    result = _run("decide", "--in", "does/not/exist.json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["code"] == "InvalidRequest"


def test_help_explains_each_subcommand() -> None:
    """--help lists decide, example and package; `decide --help` documents --in, exit 2 and 3."""
    top = _run("--help")
    assert top.returncode == 0
    for name in ("decide", "example", "package"):
        assert name in top.stdout
    decide_help = _run("decide", "--help")
    assert decide_help.returncode == 0
    assert "--in" in decide_help.stdout and "exits 2" in decide_help.stdout
    assert "exits 3" in decide_help.stdout


def test_package_is_handed_to_the_packaging_module() -> None:
    """`package --help` is answered by functions.packaging, not by the decide CLI."""
    result = _run("package", "--help")
    assert result.returncode == 0, result.stderr
    assert "python -m functions package" in result.stdout


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param(b'{"schema": "decide/v1", "now": NaN}', "", id="nan"),
        pytest.param(b'{"schema": "decide/v1", "x": -Infinity}', "", id="minus-infinity"),
        pytest.param(b'\xef\xbb\xbf{"schema": "decide/v1"}', "", id="utf8-bom"),
        pytest.param('{"schema": "decide/v1"}'.encode("utf-16"), "", id="utf16"),
        pytest.param(
            b'{"schema": "decide/v1", "pods": [{"uid": "\\ud800"}]}', "pods[0].uid", id="surrogate"
        ),
    ],
)
def test_hostile_input_exits_2_as_the_handlers_refuse_it(
    body: bytes, path: str, tmp_path: Path
) -> None:
    """NaN tokens, a BOM, UTF-16 and a lone surrogate are InvalidRequest (exit 2), as on FC;
    the surrogate's refusal names its JSON path."""
    source = tmp_path / "request.json"
    source.write_bytes(body)
    result = _run("decide", "--in", str(source))
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["path"]) == ("InvalidRequest", path)
    assert "Traceback" not in result.stderr


def test_body_over_the_limit_exits_2_request_too_large() -> None:
    """The CLI has the handlers' size limit (DECIDE_MAX_BODY_BYTES lowers it here)."""
    result = subprocess.run(
        [sys.executable, "-m", "functions", "decide"],
        input="{" + " " * 2000 + "}",
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**client_environment(), "DECIDE_MAX_BODY_BYTES": "1000"},
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "RequestTooLarge"


# The core made to fail: what a bug in it looks like from outside.
BROKEN_CORE = """
import sys
import functions.scaleout.decision as decision

def broken(request, **_):
    raise ZeroDivisionError("a bug in the core")

decision.decide = broken
from functions.__main__ import main
sys.exit(main(["decide"]))
"""


def test_a_failure_of_the_core_exits_3_with_an_internal_error_object(
    seed: dict[str, Any],
) -> None:
    """An unexpected exception is InternalError JSON on stdout with a decision id, exit 3; the
    traceback goes to stderr under the same id, never to stdout."""
    result = subprocess.run(
        [sys.executable, "-c", BROKEN_CORE],
        input=json.dumps(seed),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=client_environment(),
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "InternalError"
    assert len(error["decisionId"]) == 16 and error["decisionId"] in error["message"]
    assert "Traceback" not in result.stdout and "a bug in the core" not in result.stdout
    assert f"decision id {error['decisionId']}" in result.stderr
    assert "ZeroDivisionError" in result.stderr

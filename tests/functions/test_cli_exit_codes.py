"""`python -m functions`: decide / example / --help through a real interpreter, with exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

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
    """--help lists decide, example and package; `decide --help` documents --in and exit 2."""
    top = _run("--help")
    assert top.returncode == 0
    for name in ("decide", "example", "package"):
        assert name in top.stdout
    decide_help = _run("decide", "--help")
    assert decide_help.returncode == 0
    assert "--in" in decide_help.stdout and "exits 2" in decide_help.stdout


def test_package_is_handed_to_the_packaging_module() -> None:
    """`package --help` is answered by functions.packaging, not by the decide CLI."""
    result = _run("package", "--help")
    assert result.returncode == 0, result.stderr
    assert "python -m functions package" in result.stdout

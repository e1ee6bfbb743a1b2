"""The seed walkthrough reaches 15/15 Running with each way of deciding: in-process, through the
Function Compute emulator's signed HTTP trigger (FC 3.0's event trigger by default, FC 2.0's WSGI
one), and through FC 2.0's InvokeFunction (FC 3.0's InvokeFunction is the seed walkthrough's
own default)."""

from __future__ import annotations

import pytest

from tests.support.dev_process import SPEED, run_dev


@pytest.mark.parametrize(
    "decider",
    [
        ["--decider", "local"],
        ["--decider", "http"],
        ["--decider", "http", "--fc-api-version", "2.0"],
        ["--decider", "fc", "--fc-api-version", "2.0"],
    ],
    ids=["local", "http-fc3", "http-fc2", "fc-fc2"],
)
def test_seed_reaches_all_running_with_the_decider(decider):
    """--decider local|http|fc on either FC API: every worker pod Running, a scale write, exit 0."""
    result = run_dev("--json", "--quiet", "--speed", SPEED, *decider)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["pods"] == summary["running"] == 15
    assert summary["scaleWrites"] >= 1 and summary["errors"] == 0

"""The seed walkthrough reaches 15/15 Running with each way of deciding: in-process and through
the Function Compute emulator's HTTP trigger (the FC SDK path is the seed walkthrough's own)."""

from __future__ import annotations

import pytest

from tests.support.dev_process import SPEED, run_dev


@pytest.mark.parametrize("decider", ["local", "http"])
def test_seed_reaches_all_running_with_the_decider(decider):
    """--decider local|http: every worker pod Running, a scale write, exit 0."""
    result = run_dev("--json", "--quiet", "--speed", SPEED, "--decider", decider)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["pods"] == summary["running"] == 15
    assert summary["scaleWrites"] >= 1 and summary["errors"] == 0

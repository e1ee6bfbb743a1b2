"""How a dev run ends other than at rest: Ctrl-C mid-run, and the time limit."""

from __future__ import annotations

import signal
import subprocess
import time

from tests.support.dev_process import REPO, dev_command, dev_environment, run_dev

STARTUP_SECONDS = 30.0


def test_ctrl_c_mid_run_stops_cleanly_with_exit_130(tmp_path):
    """SIGINT after the first decision: summary printed, exit 130, no traceback."""
    process = subprocess.Popen(
        dev_command("--speed", "5", "--run-dir", str(tmp_path)),
        cwd=REPO,
        env=dev_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        seen = []
        for line in process.stdout:  # the agent's first decision: mid-run
            seen.append(line)
            if " decision: " in line or time.monotonic() > deadline:
                break
        assert seen and " decision: " in seen[-1], "".join(seen)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted" in stdout
    assert "Traceback" not in stderr and "Traceback" not in stdout


def test_time_limit_ends_the_run_with_exit_1_and_says_why():
    """--time-limit shorter than the job: exit 1 and a clear message on stderr."""
    result = run_dev("--json", "--quiet", "--speed", "100", "--time-limit", "30")
    assert result.returncode == 1
    assert "time limit" in result.stderr and "30 simulated seconds" in result.stderr
    assert result.summary()["running"] < 15

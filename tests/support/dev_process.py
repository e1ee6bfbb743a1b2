"""Runs `python -m agent dev` as a user would: a subprocess on 127.0.0.1 with no proxy in its
environment, every wait bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from tests.support.network import client_environment
from tests.support.processes import REPO

RUN_TIMEOUT_SECONDS = 60.0
SPEED = "100"  # the seed walkthrough (about 6 simulated minutes with scale-in) in ~4 s


@dataclass(frozen=True)
class DevResult:
    returncode: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, Any]:
        """The --json summary: the last line of stdout."""
        lines = self.stdout.strip().splitlines()
        assert lines, f"no output; stderr:\n{self.stderr[-2000:]}"
        return json.loads(lines[-1])


def dev_environment() -> dict[str, str]:
    """No proxy, and output unbuffered so a test reads each line as it is printed."""
    return client_environment(PYTHONUNBUFFERED="1")


def dev_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent", "dev", *args]


def run_dev(*args: str, timeout: float = RUN_TIMEOUT_SECONDS) -> DevResult:
    """Run `python -m agent dev ARGS` to its end (bounded) and return what it printed. Its run
    folder is a temporary one removed afterwards, unless ARGS name one (the last --run-dir wins)."""
    with tempfile.TemporaryDirectory(prefix="ray-ack-dev-test-") as run_dir:
        done = subprocess.run(
            dev_command("--run-dir", run_dir, *args),
            cwd=REPO,
            env=dev_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    return DevResult(done.returncode, done.stdout, done.stderr)

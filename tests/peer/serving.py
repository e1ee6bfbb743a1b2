"""`python -m agent sim serve` in a subprocess for clients that bring their own wire code: the
server runs apart from the test's event loop, so a blocking client (the official `kubernetes`
package, urllib3 underneath) and an async one (kr8s, httpx underneath) talk to it alike."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.network import client_environment
from tests.support.processes import REPO

START_SECONDS = 30.0


@dataclass(frozen=True)
class Served:
    """Where a running `sim serve` listens: its API URL, the kubeconfig it wrote and its whole
    info JSON (with --tls: where the credentials are, and the Ray provider's environment)."""

    url: str
    kubeconfig: Path
    info: dict[str, Any] = field(default_factory=dict)
    info_file: Path | None = None  # where the info JSON is, for `agent run --sim-info`


@contextlib.contextmanager
def sim_serve(workdir: Path, *args: str) -> Iterator[Served]:
    """`python -m agent sim serve ARGS`, yielded once its info JSON is written (the API server is
    listening by then); killed after the block. Its output goes to files in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    info_path = workdir / "info.json"
    kubeconfig = workdir / "kubeconfig.yaml"
    with (workdir / "serve.out").open("wb") as out, (workdir / "serve.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "sim", "serve", *args,
             "--kubeconfig-out", str(kubeconfig), "--info-out", str(info_path)],
            stdout=out, stderr=err, cwd=REPO, env=client_environment(),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while not info_path.exists():
            if process.poll() is not None:
                detail = (workdir / "serve.err").read_text()
                raise AssertionError(f"sim serve exited {process.returncode}: {detail}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sim serve wrote no {info_path} in {START_SECONDS:g} s")
            time.sleep(0.05)
        # sim serve writes it whole (renamed into place) after the kubeconfig, once it listens
        info = json.loads(info_path.read_text())
        yield Served(
            url=info["kubernetes"]["url"], kubeconfig=kubeconfig, info=info, info_file=info_path
        )
    finally:
        process.kill()
        process.wait(timeout=10)

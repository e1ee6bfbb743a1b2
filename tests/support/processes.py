"""Run this repository's entry points as a user would: a real interpreter in a subprocess, from
the repository root, with no proxy in its environment, every wait bounded."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.network import client_environment

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60.0


def run_module(
    module: str, *args: str, stdin: str = "", timeout: float = TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` to its end; the exit code is the caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=client_environment(),
        timeout=timeout,
        check=False,
    )


async def outcome(
    process: asyncio.subprocess.Process, timeout: float = 30.0
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a started process once it ends; killed past `timeout`."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, (out or b"").decode(), (err or b"").decode()


@contextlib.asynccontextmanager
async def sim_serve(
    *args: str, env: dict[str, str], banner_timeout: float
) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str]]]:
    """`python -m agent sim serve ARGS`, yielded once its banner ends ("Stop with …"), with the
    banner's lines; killed after the block if it still runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "sim", "serve", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        banner: list[str] = []

        async def read_banner() -> None:
            assert process.stdout is not None and process.stderr is not None
            while not banner or not banner[-1].startswith("Stop with"):
                line = await process.stdout.readline()
                if not line:
                    raise AssertionError(f"serve exited early: {await process.stderr.read()!r}")
                banner.append(line.decode().rstrip())

        await asyncio.wait_for(read_banner(), banner_timeout)
        yield process, banner
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def agent_run_until_scaled(
    info_path: Path, *, env: dict[str, str], timeout: float
) -> list[str]:
    """`python -m agent run --sim-info INFO` until a decision round scales a pool, then stopped
    with SIGINT; returns its output lines. Fails if it exits first or takes over `timeout`."""
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--sim-info", str(info_path),
        "--ops-address", "127.0.0.1:0", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    seen: list[str] = []

    async def until_scaled() -> None:
        assert agent.stdout is not None
        while not any("decision round" in s and "outcome=scaled" in s for s in seen):
            line = await agent.stdout.readline()
            if not line:
                raise AssertionError("agent exited:\n" + "".join(seen))
            seen.append(line.decode())

    try:
        await asyncio.wait_for(until_scaled(), timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            agent.send_signal(signal.SIGINT)
        await asyncio.wait_for(agent.communicate(), 30)
    return seen

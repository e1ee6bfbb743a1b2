"""`python -m agent run --sim-info FILE` against a running `sim serve`: the one flag carries the
kubeconfig, the cluster, the CS and FC endpoints and the test AccessKey, and the agent scales the
scenario's pool through them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys

from tests.support.processes import REPO, sim_serve

DECISION_TIMEOUT_SECONDS = 40.0


async def test_agent_run_with_sim_info_alone_scales_the_served_pool(tmp_path, clean_env):
    """sim serve --info-out, then agent run --sim-info: a decision round scales np-cpu via FC."""
    info_path = tmp_path / "info.json"
    async with sim_serve(
        "--scenario", "seed", "--speed", "20", "--info-out", str(info_path),
        "--kubeconfig-out", str(tmp_path / "kubeconfig"), env=clean_env, banner_timeout=30,
    ) as (serve, _banner):  # fmt: skip
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--sim-info", str(info_path),
            "--ops-address", "127.0.0.1:0",
            cwd=REPO, env=clean_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        seen: list[str] = []
        try:

            async def until_scaled() -> None:
                assert agent.stdout is not None
                while not any("decision round" in s and "outcome=scaled" in s for s in seen):
                    line = await agent.stdout.readline()
                    if not line:
                        raise AssertionError("agent exited:\n" + "".join(seen))
                    seen.append(line.decode())

            await asyncio.wait_for(until_scaled(), DECISION_TIMEOUT_SECONDS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                agent.send_signal(signal.SIGINT)
            await asyncio.wait_for(agent.communicate(), 30)
        serve.send_signal(signal.SIGTERM)
        tail, _ = await asyncio.wait_for(serve.communicate(), 30)
    summary = tail.decode()
    # the decision came from the FC emulator, and the raise reached the CS emulator, signed
    assert "(1 accepted scale requests)" in summary, summary
    invocations = re.search(r"FC invocations: (\d+)", summary)
    assert invocations is not None and int(invocations.group(1)) >= 1, summary
    assert not any("[warning" in line for line in seen), "".join(seen)

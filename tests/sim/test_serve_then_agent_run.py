"""`python -m agent run --sim-info FILE` against a running `sim serve`: the one flag carries the
kubeconfig, the cluster, the CS and FC endpoints and the test AccessKey, and the agent scales the
scenario's pool through them."""

from __future__ import annotations

import asyncio
import re
import signal

from tests.support.processes import agent_run_until_scaled, sim_serve

DECISION_TIMEOUT_SECONDS = 40.0


async def test_agent_run_with_sim_info_alone_scales_the_served_pool(tmp_path, clean_env):
    """sim serve --info-out, then agent run --sim-info: a decision round scales np-cpu via FC."""
    info_path = tmp_path / "info.json"
    async with sim_serve(
        "--scenario", "seed", "--speed", "20", "--info-out", str(info_path),
        "--kubeconfig-out", str(tmp_path / "kubeconfig"), env=clean_env, banner_timeout=30,
    ) as (serve, _banner):  # fmt: skip
        seen = await agent_run_until_scaled(
            info_path, env=clean_env, timeout=DECISION_TIMEOUT_SECONDS
        )
        serve.send_signal(signal.SIGTERM)
        tail, _ = await asyncio.wait_for(serve.communicate(), 30)
    summary = tail.decode()
    # the decision came from the FC emulator, and the raise reached the CS emulator, signed
    assert "(1 accepted scale requests)" in summary, summary
    invocations = re.search(r"FC invocations: (\d+)", summary)
    assert invocations is not None and int(invocations.group(1)) >= 1, summary
    assert not any("[warning" in line for line in seen), "".join(seen)

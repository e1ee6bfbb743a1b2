"""The production credential path: no keys in configuration, alibabacloud-credentials' default chain
fetching STS credentials (here from a credentials URI, as a stand-in for RRSA) and the CS emulator
accepting them. The chain reads its environment at import, so the agent side runs in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from agent.sim.cloud.credentials import (
    TEST_ACCESS_KEY_SECRET,
    KeyRing,
    build_credentials_app,
    static_test_keys,
)
from agent.sim.cloud.cs_api import build_cs_app
from tests.support.builders import pool_view
from tests.support.cloud.cloud_doubles import ScriptedPools
from tests.support.cloud.serving import serve

AGENT_SIDE = """
import asyncio, json, sys
from agent.clients.cs import NodePoolClient, RetryPolicy, build_sdk_client

async def main():
    sdk = build_sdk_client(region_id="cn-hangzhou", endpoint=sys.argv[1], protocol="http")
    client = NodePoolClient(sdk, "c-test", retry=RetryPolicy(attempts=1))
    pools = await client.describe_pools()
    task = await client.set_desired("np-cpu", 3)
    print(json.dumps({"pools": [p.pool_id for p in pools], "task": task}))

asyncio.run(main())
"""


async def test_default_chain_signs_with_sts_credentials(tmp_path: Path) -> None:
    """Without keys the client uses the default chain; the STS token it gets is accepted."""
    ring = KeyRing(static_test_keys())
    pools = ScriptedPools([pool_view("np-cpu", desired=1)])
    async with (
        serve(build_credentials_app(ring, now=time.time)) as cred_endpoint,
        serve(build_cs_app(pools, keys=ring, now=time.time)) as cs_endpoint,
    ):
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("ALIBABA_CLOUD_") and "proxy" not in key.lower()
        }
        env.update(
            HOME=str(tmp_path),
            NO_PROXY="127.0.0.1",
            ALIBABA_CLOUD_CREDENTIALS_URI=f"http://{cred_endpoint}/credentials",
            ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            AGENT_SIDE,
            cs_endpoint,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["pools"] == ["np-cpu"] and result["task"]
    assert pools.set_desired_calls == [("np-cpu", 3)]
    assert TEST_ACCESS_KEY_SECRET not in (stdout + stderr).decode()

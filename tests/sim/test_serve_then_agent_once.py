"""`python -m agent once --sim-info FILE` against a running `sim serve`: "what would you do right
now?" answered with the plan `agent run` makes for the same state, and then that plan applied.

The scenario's RayCluster is left to an outside autoscaler (`--ray-autoscaler external`), so the
cluster holds still: the test asks for workers as Ray's autoscaler would (a replicas patch), and
nothing but the agents under test changes the state after that."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from tests.support.processes import REPO, outcome, sim_serve

WORKERS = 8


async def command(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    return await outcome(process, timeout=60)


async def kubectl(kubeconfig: Path, cache: Path, *args: str, env: dict[str, str]) -> str:
    code, out, err = await command(
        "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args, env=env
    )
    assert code == 0, err
    return out


def unschedulable(pods: dict[str, Any]) -> int:
    return sum(
        1
        for pod in pods["items"]
        for c in pod.get("status", {}).get("conditions") or ()
        if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def loop_decision(info: Path, *, env: dict[str, str]) -> dict[str, Any]:
    """`agent run --sim-info INFO --dry-run` until its first decision round over pending pods;
    that round's record, as `agent status --json` shows it."""
    ops = f"127.0.0.1:{free_port()}"
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--sim-info", str(info), "--dry-run",
        "--ops-address", ops, cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    seen: list[dict[str, Any]] = []

    async def decided() -> bool:
        code, out, _ = await command(
            sys.executable, "-m", "agent", "status", "--url", ops, "--json", env=env
        )
        last = json.loads(out).get("lastDecision") if code == 0 else None
        if last and last.get("outcome") == "dry_run":
            seen.append(last)
        return bool(seen)

    try:
        deadline = asyncio.get_running_loop().time() + 60
        while not await decided():
            assert asyncio.get_running_loop().time() < deadline, "no dry-run round in 60 s"
            await asyncio.sleep(0.5)
    finally:
        agent.send_signal(signal.SIGTERM)
        await asyncio.wait_for(agent.wait(), 30)
    return seen[0]


async def test_once_plans_what_run_plans_then_applies_it(tmp_path: Path, clean_env) -> None:
    """Eight workers wanted, some pending: `once --dry-run` prints the pool raise and actions
    `run --dry-run` decides; `once` then writes that raise, the only CS write of the run."""
    info = tmp_path / "info.json"
    kubeconfig = tmp_path / "kubeconfig"
    cache = tmp_path / "cache"
    async with sim_serve(
        "--scenario", "seed", "--ray-autoscaler", "external", "--speed", "20",
        "--info-out", str(info), "--kubeconfig-out", str(kubeconfig),
        env=clean_env, banner_timeout=30,
    ) as (serve, _banner):  # fmt: skip
        await kubectl(
            kubeconfig, cache, "patch", "raycluster", "myfirst-ray-cluster", "-n", "default",
            "--type", "json",
            "-p", json.dumps([{"op": "add", "path": "/spec/workerGroupSpecs/0/replicas",
                               "value": WORKERS}]),
            env=clean_env,
        )  # fmt: skip
        workers: list[dict[str, Any]] = []

        async def listed() -> None:
            out = await kubectl(
                kubeconfig, cache, "get", "pods", "-n", "default",
                "-l", "ray.io/node-type=worker", "-o", "json", env=clean_env,
            )  # fmt: skip
            workers[:] = [json.loads(out)]

        async def settled() -> None:
            while True:
                await listed()
                pods = workers[0]
                bound = sum(1 for p in pods["items"] if p["spec"].get("nodeName"))
                if len(pods["items"]) == WORKERS and bound + unschedulable(pods) == WORKERS:
                    return
                await asyncio.sleep(0.2)

        await asyncio.wait_for(settled(), 60)
        pending = unschedulable(workers[0])
        assert pending > 0

        code, out, err = await command(
            sys.executable, "-m", "agent", "once", "--sim-info", str(info), "--dry-run",
            env=clean_env,
        )  # fmt: skip
        assert code == 0, err
        plan = json.loads(out)
        scale_out = plan["scaleOut"]
        assert (scale_out["outcome"], scale_out["pendingPods"]) == ("dry_run", pending)
        (raise_,) = scale_out["applied"]["poolsWritten"]

        loop = await loop_decision(info, env=clean_env)
        assert loop["pods"] == pending
        assert loop["pools_written"] == [
            {"pool": raise_["poolId"], "from": raise_["from"], "to": raise_["to"]}
        ]
        assert sorted((a["kind"], a["pool"], a["pods"]) for a in loop["actions"]) == sorted(
            (a["kind"], a.get("poolId", ""), len(a["pods"])) for a in scale_out["actions"]
        )

        code, out, err = await command(
            sys.executable, "-m", "agent", "once", "--sim-info", str(info), env=clean_env
        )
        assert code == 0, err
        applied = json.loads(out)["scaleOut"]
        assert applied["outcome"] == "scaled"
        assert [(w["poolId"], w["from"], w["to"]) for w in applied["applied"]["poolsWritten"]] == [
            (raise_["poolId"], raise_["from"], raise_["to"])
        ]
        serve.send_signal(signal.SIGTERM)
        tail, _ = await asyncio.wait_for(serve.communicate(), 30)
    assert "(1 accepted scale requests)" in tail.decode(), tail.decode()

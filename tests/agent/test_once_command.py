"""`python -m agent once`, run as a process against the simulator over real HTTP: one LIST, the
loop's own round, a JSON plan on stdout. --dry-run plans what the running loop plans for the same
state and sends the API servers no write at all; without it the plan is applied, under the pool
Leases, so two at once never raise a pool twice."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.actuate.actuation import PLACED_LABEL
from agent.app.loop import Agent
from agent.app.settings import AgentConfig
from agent.model import PoolBounds
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET
from agent.sim.cloud.cs_api import scale_requests_of, writes_of
from functions.contract import ECI_TAINT_KEY, POOL_LABEL
from tests.support.agent_world import World, config_for, open_world
from tests.support.cluster import running
from tests.support.network import client_environment
from tests.support.processes import REPO, outcome
from tests.support.waiting import until

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Heard:
    """Every request the agent process sent the Kubernetes API: (method, path)."""

    requests: list[tuple[str, str]]

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.requests if method in WRITES]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """Pool np-cpu behind the CS emulator, and the ECI virtual node."""
    async with open_world(eci=True) as opened:
        yield opened


@pytest.fixture
def heard(world: World) -> Heard:
    record = Heard([])
    world.cluster.request_listeners.append(
        lambda method, path: record.requests.append((method, path))
    )
    return record


def once_config(world: World, **overrides: Any) -> AgentConfig:
    """The world's agent settings with ECI on, as `once` and the loop both take them."""
    return config_for(world, **{"eci_enabled": True, **overrides})


def settings_file(config: AgentConfig, directory: Path) -> Path:
    """`config` as a --config YAML file: every setting that is not its default."""
    defaults = AgentConfig()
    values: dict[str, Any] = {}
    for field in fields(AgentConfig):
        value = getattr(config, field.name)
        if value == getattr(defaults, field.name):
            continue
        if field.name == "managed_pools":
            value = [f"{b.pool_id}:{b.min_size}:{b.max_size}" for b in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        values[field.name] = value
    path = directory / "agent.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


async def run_once(config: AgentConfig, directory: Path, *args: str) -> tuple[int, str, str]:
    """`python -m agent once --config FILE ARGS` with the emulators' test AccessKey."""
    env = client_environment(
        ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_ACCESS_KEY_SECRET,
    )
    env = {k: v for k, v in env.items() if not k.startswith("RAY_ACK_SCALER_")}
    config = replace(config, credentials="access-key")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "once", "--config", str(settings_file(config, directory)),
        *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return await outcome(process, timeout=60)


async def pending_workers(world: World, count: int, **kwargs: Any) -> None:
    """`count` Ray workers, once the scheduler has marked every one Unschedulable."""
    world.add_workers(count, **kwargs)

    def unschedulable() -> int:
        items, _ = world.cluster.store.list("pods", namespace="ray")
        return sum(
            1
            for pod in items
            for c in pod.get("status", {}).get("conditions", ())
            if c.get("reason") == "Unschedulable"
        )

    await until(lambda: unschedulable() == count, what="the workers unschedulable")


def pool_plan(actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The actions as compared: kind, pool, its size from → to, and the pods by name."""
    return sorted(
        (
            a["kind"],
            a.get("poolId"),
            a.get("fromDesired"),
            a.get("toDesired"),
            tuple(sorted(a["pods"])),
        )
        for a in actions
    )


def loop_plan(agent: Agent, world: World) -> list[tuple[Any, ...]]:
    """The loop's last reply, its pods named as `once` names them."""
    assert agent.last_plan is not None
    items, _ = world.cluster.store.list("pods", namespace="ray")
    names = {p["metadata"]["uid"]: f"ray/{p['metadata']['name']}" for p in items}
    return pool_plan(
        [
            {**action, "pods": [names[uid] for uid in action.get("pods", ())]}
            for action in agent.last_plan.reply["actions"]
        ]
    )


def eci_tolerating(world: World) -> list[str]:
    items, _ = world.cluster.store.list("pods", namespace="ray")
    return sorted(
        f"ray/{p['metadata']['name']}"
        for p in items
        if any(t.get("key") == ECI_TAINT_KEY for t in p["spec"].get("tolerations") or ())
        and p["metadata"].get("labels", {}).get(PLACED_LABEL) == "eci"
    )


async def test_dry_run_prints_the_plan_the_loop_makes_and_writes_nothing(
    world: World, heard: Heard, tmp_path: Path
) -> None:
    """once --dry-run: the loop's plan for the same pending pods (a pool raise, ECI placements),
    and no write to the Kubernetes API (no patch, Lease or Event) or to CS."""
    # ECI takes two pods; the other four need the pool (ecs.g7.xlarge: three 1-vCPU workers)
    config = once_config(world, eci_max_pods=2)
    await pending_workers(world, 6)
    code, out, err = await run_once(config, tmp_path, "--dry-run")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dryRun"] is True
    assert plan["scaleOut"]["outcome"] == "dry_run"
    kinds = sorted(a["kind"] for a in plan["scaleOut"]["actions"])
    assert kinds == ["place-on-eci", "scale-pool"], plan["scaleOut"]["actions"]
    assert plan["scaleOut"]["applied"]["poolsWritten"] == [
        {"poolId": "np-cpu", "from": 0, "to": 2, "max": 10, "taskId": None}
    ]
    assert len(plan["scaleOut"]["applied"]["eciPlaced"]) == 2
    assert plan["errors"] == []
    assert "decision applied" in err  # the agent's own log lines, on stderr
    assert heard.requests and heard.writes() == []
    assert writes_of(world.cs_app) == []
    assert eci_tolerating(world) == []

    agent = world.agent(replace(config, dry_run=True))
    async with running(agent):
        await until(lambda: agent.last_plan is not None, what="the loop's first round")
    assert loop_plan(agent, world) == pool_plan(plan["scaleOut"]["actions"])


async def test_once_applies_the_plan_under_the_pool_lease(
    world: World, heard: Heard, tmp_path: Path
) -> None:
    """once: the pool is raised to the planned size, the ECI pods are patched, the pool's Lease
    was taken for the write, and the pods get their Events."""
    config = once_config(world, eci_max_pods=2)
    await pending_workers(world, 6)
    code, out, err = await run_once(config, tmp_path)
    assert code == 0, err
    plan = json.loads(out)
    (scale,) = [a for a in plan["scaleOut"]["actions"] if a["kind"] == "scale-pool"]
    (eci,) = [a for a in plan["scaleOut"]["actions"] if a["kind"] == "place-on-eci"]
    assert plan["scaleOut"]["outcome"] == "scaled"
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [
        scale["toDesired"]
    ]
    assert sorted(plan["scaleOut"]["applied"]["eciPlaced"]) == sorted(eci["pods"])
    assert eci_tolerating(world) == sorted(eci["pods"])
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    assert any(m == "POST" and p.startswith(leases) for m, p in heard.requests), heard.writes()
    events, _ = world.cluster.store.list("events", namespace="ray")
    reasons = {e["reason"] for e in events}
    assert {"TriggeredScaleUp", "PlacedOnECI"} <= reasons, reasons


async def test_nothing_to_do_exits_0_with_an_empty_plan(world: World, tmp_path: Path) -> None:
    """No pending pod: exit 0, outcome idle, no action, nothing written."""
    code, out, err = await run_once(once_config(world), tmp_path)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["scaleOut"]["outcome"] == "idle"
    assert "actions" not in plan["scaleOut"]
    assert plan["errors"] == []
    assert writes_of(world.cs_app) == []


async def test_two_at_once_raise_the_pool_once(world: World, tmp_path: Path) -> None:
    """Two `once` started together on the same pending pods both plan np-cpu 0 → 2: one writes it
    under the pool's Lease, the other, re-reading under the Lease after it, finds 2 and writes
    nothing — one absolute write, never a second raise nor a second write."""
    config = once_config(world, eci_enabled=False)
    await pending_workers(world, 6)
    # Slow CS calls keep the first raise in flight while the second process reads and decides.
    world.cs_faults.cs_latency_seconds = 0.6
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    results = await asyncio.gather(
        run_once(config, tmp_path / "a"), run_once(config, tmp_path / "b")
    )
    for code, _, err in results:
        assert code == 0, err
    assert [w.summary.get("desired_size") for w in scale_requests_of(world.cs_app)] == [2]
    plans = [json.loads(out)["scaleOut"] for _, out, _ in results]
    raises = [w for plan in plans for w in plan.get("applied", {}).get("poolsWritten", ())]
    assert [(w["from"], w["to"]) for w in raises] == [(0, 2)]
    # the other planned the same raise too, and took the Lease after the write (or gave up)
    (other,) = [plan["applied"] for plan in plans if not plan["applied"]["poolsWritten"]]
    assert [s["poolId"] for s in other["poolsSkipped"] + other["poolsDeferred"]] == ["np-cpu"]


async def test_an_unreachable_api_is_an_error_exit(world: World, tmp_path: Path) -> None:
    """A Kubernetes API nobody serves: exit 1, the address and the failure on stderr, no JSON."""
    config = once_config(world, api_url="http://127.0.0.1:9")
    code, out, err = await run_once(config, tmp_path)
    assert code == 1
    assert out == ""
    assert "error: Kubernetes API (http://127.0.0.1:9)" in err


async def test_a_bad_setting_is_exit_2(tmp_path: Path) -> None:
    """A missing required setting: exit 2, naming it, before anything connects."""
    config = AgentConfig(region="cn-hangzhou", managed_pools=(PoolBounds("np-cpu", 0, 1),))
    code, out, err = await run_once(config, tmp_path)
    assert (code, out) == (2, "")
    assert "cluster_id: required" in err


async def test_dry_run_prints_the_scale_in_plan(world: World, heard: Heard, tmp_path: Path) -> None:
    """An empty node of the managed pool, with no unneeded time asked for: the scale-in round
    plans its removal, and --dry-run leaves it cordon-free and in the pool."""
    await world.pools.set_desired("np-cpu", 1)
    await until(lambda: len(ready_pool_nodes(world)) == 1, what="the pool's node Ready")
    (node,) = ready_pool_nodes(world)
    config = once_config(
        world, scale_down_unneeded_seconds=0.0, scale_down_delay_after_add_seconds=0.0
    )
    code, out, err = await run_once(config, tmp_path, "--dry-run")
    assert code == 0, err
    scale_in = json.loads(out)["scaleIn"]
    assert (scale_in["outcome"], scale_in["removed"]) == ("dry_run", [node]), scale_in
    assert heard.writes() == []
    assert [w.action for w in writes_of(world.cs_app)] == ["ModifyClusterNodePool"]  # the test's


def ready_pool_nodes(world: World) -> list[str]:
    nodes, _ = world.cluster.store.list("nodes")
    return [
        n["metadata"]["name"]
        for n in nodes
        if n["metadata"].get("labels", {}).get(POOL_LABEL) == "np-cpu"
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n.get("status", {}).get("conditions") or ()
        )
    ]

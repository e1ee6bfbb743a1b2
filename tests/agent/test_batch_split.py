"""A request over the payload limit is decided in parts (agent.decide.split) through the real FC
3.0 path — the agent's SDK client against the FC emulator hosting the decision function with the
same small body limit, so a part over it would be refused — and the parts never count one piece of
capacity twice: a pool's upcoming room, the nodes a part adds, the per-decision node cap, the node
quota and ECI's room each go to one part."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

import pytest

import functions
from agent.app.config import add_arguments, load_config
from agent.clients import fc3
from agent.decide.deciders import DecisionFailed, FunctionComputeDecider, LocalDecider
from agent.decide.pod_entries import PodEntryCache, encode_request, entry_size
from agent.decide.request_builder import (
    EciSettings,
    PolicySettings,
    RequestSettings,
    build_request,
)
from agent.decide.split import decide_in_parts, merge_replies, split_pods
from agent.model import PoolInfo, Snapshot
from agent.sim.cloud.fc_api import invocations_of
from functions.contract_checks import check_decide_reply
from functions.fc import DecisionEndpoint
from functions.quantity import parse_quantity
from tests.support.builders import pending_pod, virtual_node
from tests.support.cloud.cloud_apis import FC_FUNCTION, agent_fc3_sdk, fc_emulator
from tests.support.cloud.cloud_doubles import NO_WAIT

NOW = "2026-11-29T05:00:00Z"


def burst_request(
    *, pods: int = 60, shapes: int = 3, eci_max: int = 10, cap: int = 6, seed: int = 0
) -> dict[str, Any]:
    """Pods of a few shapes over a pool with two upcoming nodes, an empty pool, and ECI."""
    rng = random.Random(seed)
    pending = tuple(
        pending_pod(f"u-{i:03d}", cpu=str(1 + rng.randrange(shapes)), memory="1Gi")
        for i in range(pods)
    )
    snapshot = Snapshot(pending=pending, nodes=(virtual_node(),), eci_running_pods=2)
    pools = [
        PoolInfo("np-a", "a", ("ecs.g7.xlarge",), 2, 0, 6),  # 2 upcoming (none Ready)
        PoolInfo("np-b", "b", ("ecs.g7.2xlarge",), 0, 0, 10),
    ]
    settings = RequestSettings(
        cluster_id="c-1",
        region="cn-hangzhou",
        eci=EciSettings(max_pods=eci_max),
        policy=PolicySettings(strategy="pool-first", max_new_nodes_per_decision=cap),
    )
    return build_request(
        snapshot, pools, {}, settings=settings, now=NOW, node_quota=40, entries=PodEntryCache()
    )


def limit_for(request: dict[str, Any], pods_per_part: int) -> int:
    """A payload limit that holds the request's envelope and about `pods_per_part` pods."""
    pods = request["pods"]
    largest = max(entry_size(pods, p) for p in pods)
    envelope = len(encode_request({**request, "pods": []}))
    return envelope + 1024 + pods_per_part * (largest + 1)


def overcommitted(request: Mapping[str, Any], reply: Mapping[str, Any]) -> list[str]:
    """What the reply takes beyond the request's capacity: per pool, the requests of the pods on
    its non-Ready nodes (covered on upcoming ones, or on the new ones) over what those nodes
    offer; new nodes over the per-decision cap or the node quota; ECI pods over its room."""
    uid_cpu = {p["uid"]: parse_quantity(p["requests"]["cpu"]) for p in request["pods"]}
    on_pool: dict[str, list[str]] = {}
    final = {p["id"]: p["size"]["desired"] for p in request["pools"]}
    eci_pods = 0
    for action in reply["actions"]:
        if action["kind"] == "scale-pool":
            on_pool.setdefault(action["poolId"], []).extend(action["pods"])
            final[action["poolId"]] = action["toDesired"]
        else:
            eci_pods += len(action["pods"])
    for item in reply["covered"]:
        on_pool.setdefault(item["poolId"], []).append(item["pod"])
    problems = []
    added = 0
    for pool in request["pools"]:
        nodes = final[pool["id"]] - pool["size"]["ready"]
        added += final[pool["id"]] - pool["size"]["desired"]
        offered = nodes * parse_quantity(pool["allocatable"]["cpu"])
        used = sum(uid_cpu[uid] for uid in on_pool.get(pool["id"], ()))
        if used > offered:
            problems.append(f"{pool['id']}: {used}m cpu on {nodes} nodes offering {offered}m")
    policy = request["policy"]
    if added > policy["maxNewNodesPerDecision"]:
        problems.append(f"{added} new nodes over the cap {policy['maxNewNodesPerDecision']}")
    quota = policy["nodeQuota"]
    if quota["nodes"] + added > quota["limit"]:
        problems.append(f"{added} new nodes over the node quota")
    eci = request["eci"]
    if eci_pods > eci["maxPods"] - eci["runningPods"]:
        problems.append(f"{eci_pods} ECI pods over ECI's room")
    return problems


def pool_actions(reply: Mapping[str, Any]) -> list[str]:
    return [a["poolId"] for a in reply["actions"] if a["kind"] == "scale-pool"]


async def test_a_request_over_the_limit_goes_to_fc_in_parts_and_comes_back_as_one_plan() -> None:
    """Through the FC 3.0 SDK: several invocations, each within the function's own body limit
    (the emulated function refuses anything larger), one merged plan: every pod once, each pool
    raised once, nothing beyond the request's capacity."""
    request = burst_request()
    limit = limit_for(request, 12)
    assert len(encode_request(request)) > limit
    endpoint = DecisionEndpoint(max_body_bytes=limit)
    async with fc_emulator(endpoint.handle_event, clock=time.time) as function:
        invoker = fc3.FunctionInvoker(
            agent_fc3_sdk(function.endpoint), FC_FUNCTION, qualifier="", timeout_seconds=10.0
        )
        decider = FunctionComputeDecider(invoker, retry=NO_WAIT, max_payload_bytes=limit)
        reply = await decider.decide(request)
        calls = invocations_of(function.app)
    assert decider.split_decisions == 1
    assert len(calls) >= 4 and all(c.status == 200 for c in calls)
    check_decide_reply(reply, request)
    assert len(pool_actions(reply)) == len(set(pool_actions(reply)))
    assert pool_actions(reply), "the burst needs new nodes"
    assert overcommitted(request, reply) == []
    summary = reply["summary"]
    assert summary["eciPods"] == 8  # ECI's room (10 - 2 running), taken by the parts together
    assert summary["coveredPods"] + summary["eciPods"] + summary["unplaceablePods"] + sum(
        len(a["pods"]) for a in reply["actions"] if a["kind"] == "scale-pool"
    ) == len(request["pods"])


async def test_a_request_within_the_limit_is_one_call() -> None:
    """At or under the limit nothing changes: one invocation, the function's own reply."""
    request = burst_request(pods=10)
    limit = len(encode_request(request))
    async with fc_emulator(
        DecisionEndpoint(max_body_bytes=limit).handle_event, clock=time.time
    ) as f:
        invoker = fc3.FunctionInvoker(agent_fc3_sdk(f.endpoint), FC_FUNCTION, timeout_seconds=10.0)
        decider = FunctionComputeDecider(invoker, retry=NO_WAIT, max_payload_bytes=limit)
        reply = await decider.decide(request)
        calls = invocations_of(f.app)
    assert len(calls) == 1 and decider.split_decisions == 0
    assert reply == functions.decide(json.loads(encode_request(request)))


async def decide_locally(payload: bytes, sub: dict[str, Any]) -> dict[str, Any]:
    assert payload == encode_request(sub)
    return await LocalDecider(thread_above_pods=10**9).decide(json.loads(payload))


@pytest.mark.parametrize("seed", range(12))
async def test_random_splits_never_overcommit(seed: int) -> None:
    """Random bursts, shapes, caps and part sizes: the merged plan answers the whole request and
    stays within its capacity — and the same parts decided each on the whole capacity (the naive
    split) would not, so the scenario does test the rule."""
    rng = random.Random(seed)
    request = burst_request(
        pods=rng.randrange(30, 90),
        shapes=rng.randrange(1, 4),
        eci_max=rng.randrange(2, 30),
        cap=rng.randrange(2, 12),
        seed=seed,
    )
    limit = limit_for(request, rng.randrange(5, 20))
    reply, parts = await decide_in_parts(request, decide_locally, max_bytes=limit)
    assert parts >= 2
    check_decide_reply(reply, request)
    assert len(pool_actions(reply)) == len(set(pool_actions(reply)))
    assert overcommitted(request, reply) == []

    naive = [
        functions.decide(json.loads(encode_request({**request, "pods": pods})))
        for pods in split_pods(request, limit)
    ]
    assert overcommitted(request, merge_replies(request, naive)) != []


def test_parts_keep_a_shape_together_and_stay_within_the_limit() -> None:
    request = burst_request(pods=60, shapes=3)
    limit = limit_for(request, 25)
    parts = split_pods(request, limit)
    assert sorted(p["uid"] for part in parts for p in part) == sorted(
        p["uid"] for p in request["pods"]
    )
    assert all(len(encode_request({**request, "pods": part})) <= limit for part in parts)
    # Shapes in order of first appearance, each cut only where a part is full.
    cpus = [p["requests"]["cpu"] for part in parts for p in part]
    assert cpus == sorted(cpus, key=[p["requests"]["cpu"] for p in request["pods"]].index)


async def test_a_limit_below_one_pod_is_refused_not_sent() -> None:
    request = burst_request(pods=4)
    decider = FunctionComputeDecider(invoker=None, retry=NO_WAIT, max_payload_bytes=1024)  # type: ignore[arg-type]
    with pytest.raises(DecisionFailed) as refused:
        await decider.decide(request)
    assert refused.value.code == "RequestTooLarge" and not refused.value.retryable


def test_the_limit_is_a_setting_with_fc_s_default() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {"RAY_ACK_SCALER_CLUSTER_ID": "c-1", "RAY_ACK_SCALER_REGION": "cn-hangzhou"}
    assert load_config(parser.parse_args([]), environ=env).decider_max_payload_bytes == 33554432
    args = parser.parse_args(["--decider-max-payload-bytes", "65536"])
    assert load_config(args, environ=env).decider_max_payload_bytes == 65536

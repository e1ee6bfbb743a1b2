"""Invariants of scale_in() over generated clusters (hypothesis)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.scalein.decision import scale_in
from tests.support.scale_in_requests import ago, node, pod, pool, request

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

POOLS = ["np-a", "np-b", "np-c"]
OWNERS = ["ReplicaSet", "Job", "DaemonSet", "StatefulSet", "RayCluster", "RayCluster", "none"]


@st.composite
def pods(draw: st.DrawFn, prefix: str) -> list[dict[str, Any]]:
    """0-4 pods of mixed owners, Ray roles, PDB coverage, phases and sizes."""
    found = []
    for i in range(draw(st.integers(0, 4))):
        fields: dict[str, Any] = {
            "owner": draw(st.sampled_from(OWNERS)),
            "cpu": draw(st.sampled_from(["100m", "500m", "1", "2"])),
            "memory": draw(st.sampled_from(["256Mi", "1Gi", "4Gi"])),
            "rayNodeType": draw(st.sampled_from([None, "worker", "worker", "head"])),
            "pdbBlocked": draw(st.integers(0, 5)) == 0,
            "phase": draw(st.sampled_from(["Running", "Running", "Pending", "Succeeded"])),
        }
        if draw(st.integers(0, 4)) == 0:
            fields["nodeSelector"] = {"tier": draw(st.sampled_from(["x", "y"]))}
        found.append(pod(f"{prefix}-{i}", **fields))
    return found


@st.composite
def clusters(draw: st.DrawFn) -> dict[str, Any]:
    """Up to 12 nodes over up to 3 pools (or none), with random health, timers and policy."""
    nodes = []
    for i in range(draw(st.integers(0, 12))):
        name = f"n{i:02d}"
        ready = draw(st.integers(0, 6)) > 0
        nodes.append(
            node(
                name,
                *draw(pods(name)),
                pool=draw(st.sampled_from([*POOLS, None])),
                cpu=draw(st.sampled_from(["2", "4", "8"])),
                ready=ready,
                everReady=ready or draw(st.booleans()),
                createdAt=ago(draw(st.integers(0, 3000))),
                unschedulable=draw(st.integers(0, 5)) == 0,
                labels={"tier": draw(st.sampled_from(["x", "y"]))},
                emptySince=draw(st.one_of(st.none(), st.integers(0, 300).map(ago))),
                underutilizedSince=draw(st.one_of(st.none(), st.integers(0, 300).map(ago))),
            )
        )
    pools = []
    for pool_id in POOLS:
        listed = sum(1 for n in nodes if n["poolId"] == pool_id)
        min_size = draw(st.integers(0, 3))
        pools.append(
            pool(
                pool_id,
                min_size=min_size,
                desired=max(min_size, listed - draw(st.integers(0, 1))),
                price=draw(st.sampled_from([0.5, 0.9, 2.0])),
                lastScaleUpAt=draw(st.one_of(st.none(), st.integers(0, 400).map(ago))),
            )
        )
    return request(
        nodes,
        pools,
        drainNonEmpty=draw(st.booleans()),
        maxNodesPerDecision=draw(st.integers(0, 6)),
        scaleDownUtilizationThreshold=draw(st.sampled_from([0.3, 0.5, 0.8])),
    )


def _removed_nodes(body: dict[str, Any], reply: dict[str, Any]) -> list[dict[str, Any]]:
    names = {entry["node"] for entry in reply["remove"]}
    return [n for n in body["nodes"] if n["name"] in names]


def _load(n: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p
        for p in n["pods"]
        if p["ownerKind"] != "DaemonSet" and p["phase"] not in ("Succeeded", "Failed")
    ]


@SETTINGS
@given(clusters())
def test_never_below_min(body: dict[str, Any]) -> None:
    """Per pool, removals never take min(desired, nodes present) below min."""
    reply = scale_in(body)
    for entry in body["pools"]:
        listed = sum(1 for n in body["nodes"] if n["poolId"] == entry["id"])
        size = min(entry["size"]["desired"], listed)
        gone = sum(1 for r in reply["remove"] if r["poolId"] == entry["id"])
        assert gone <= max(0, size - entry["size"]["min"])


@SETTINGS
@given(clusters())
def test_removed_nodes_hold_no_protected_pod(body: dict[str, Any]) -> None:
    """No removed node runs a Ray head, an unowned or PDB-blocked pod, nor (by default) load."""
    reply = scale_in(body)
    for n in _removed_nodes(body, reply):
        load = _load(n)
        assert not any(p["rayNodeType"] == "head" for p in load)
        assert not any(p["ownerKind"] == "none" for p in load)
        assert not any(p["pdbBlocked"] for p in load)
        assert n["poolId"] is not None
        failed = not n["ready"] and not n["everReady"]
        if not body["policy"]["drainNonEmpty"] and not failed:
            assert load == []


@SETTINGS
@given(clusters())
def test_shape_and_cap(body: dict[str, Any]) -> None:
    """Every node once; at most maxNodesPerDecision removed; evicts are the node's load."""
    reply = scale_in(body)
    names = [e["node"] for e in reply["remove"]] + [e["node"] for e in reply["keep"]]
    assert sorted(names) == sorted(n["name"] for n in body["nodes"])
    assert len(reply["remove"]) <= body["policy"]["maxNodesPerDecision"]
    by_name = {n["name"]: n for n in body["nodes"]}
    for entry in reply["remove"]:
        assert entry["evicts"] == sorted(p["uid"] for p in _load(by_name[entry["node"]]))
        assert entry["instanceId"] == by_name[entry["node"]]["instanceId"]


@SETTINGS
@given(clusters(), st.randoms(use_true_random=False))
def test_deterministic_and_order_free(body: dict[str, Any], rnd: Any) -> None:
    """Same request → same bytes; shuffled nodes and pods → same reply; `now` not in the id."""
    first = json.dumps(scale_in(body), sort_keys=True)
    shuffled = copy.deepcopy(body)
    rnd.shuffle(shuffled["nodes"])
    for n in shuffled["nodes"]:
        rnd.shuffle(n["pods"])
    assert json.dumps(scale_in(body), sort_keys=True) == first
    assert json.dumps(scale_in(shuffled), sort_keys=True) == first
    later = copy.deepcopy(body)
    later["now"] = "2026-11-29T05:10:00Z"
    assert scale_in(later)["decisionId"] == json.loads(first)["decisionId"]


# Reasons under which a node kept by one decision may go in the next, once the chosen
# nodes are gone: the cap, a promise to take pods, or room freed by pods that left.
MAY_GO_NEXT = ("maxNodesPerDecision", "takes pods moved from", "pods would not fit elsewhere")


@SETTINGS
@given(clusters())
def test_applying_the_decision_settles(body: dict[str, Any]) -> None:
    """After applying a decision, the next removes only nodes kept for cap, promise or room."""
    reply = scale_in(body)
    gone = {e["node"] for e in reply["remove"]}
    after = copy.deepcopy(body)
    after["nodes"] = [n for n in after["nodes"] if n["name"] not in gone]
    for entry in after["pools"]:
        count = sum(1 for e in reply["remove"] if e["poolId"] == entry["id"])
        entry["size"]["desired"] = max(entry["size"]["min"], entry["size"]["desired"] - count)
    reasons = {e["node"]: e["reason"] for e in reply["keep"]}
    again = scale_in(after)
    for entry in again["remove"]:
        assert any(word in reasons[entry["node"]] for word in MAY_GO_NEXT), reasons[entry["node"]]
    if not body["policy"]["drainNonEmpty"] and len(gone) < body["policy"]["maxNodesPerDecision"]:
        assert again["remove"] == []

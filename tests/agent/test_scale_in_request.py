"""The scale-in/v1 request the agent builds, judged by the decision core itself, and the reply
checks every decider applies before the agent acts."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from agent.decide.deciders import InvalidReply, LocalDecider, validate_scale_in_reply
from agent.decide.request_builder import RequestSettings
from agent.ingest.view import ClusterView
from agent.model import PoolInfo
from agent.scale_in.tracking import ScaleInPolicy, UnneededTracker, build_scale_in_request
from functions.scalein.decision import scale_in
from tests.support.builders import T0, raw_node, raw_pod

POOL = PoolInfo("np-cpu", "cpu", ("ecs.g7.xlarge",), desired=2, min_size=0, max_size=10)
SETTINGS = RequestSettings(cluster_id="c-1", region="cn-hangzhou")


def cluster(*, busy: bool = False) -> ClusterView:
    """Two pool nodes (one maybe running a Ray worker), a system node and the ECI node."""
    view = ClusterView()
    for name, instance in (("n-empty", "i-1"), ("n-busy", "i-2")):
        node = raw_node(name)
        node["spec"]["providerID"] = f"cn-hangzhou.{instance}"
        view.apply_node("ADDED", node)  # type: ignore[arg-type]
    system = raw_node("n-system")
    system["metadata"]["labels"] = {}
    view.apply_node("ADDED", system)  # type: ignore[arg-type]
    eci = raw_node("virtual-kubelet")
    eci["metadata"]["labels"] = {"type": "virtual-kubelet"}
    view.apply_node("ADDED", eci)  # type: ignore[arg-type]
    if busy:
        view.node_pods_sink.apply("ADDED", raw_pod("w-1", node="n-busy", cpu="3"))
    return view


def request_of(
    view: ClusterView,
    *,
    now: float,
    tracker: UnneededTracker,
    policy: ScaleInPolicy | None = None,
    last_up: float | None = None,
    pools: tuple[PoolInfo, ...] = (POOL,),
) -> dict[str, Any]:
    return build_scale_in_request(
        [view.nodes[name] for name in sorted(view.nodes)],
        list(pools),
        facts=view.node_pods.facts,
        pods_on=view.node_pods.on_node,
        tracker=tracker,
        last_scale_up=lambda _pool: last_up,
        settings=SETTINGS,
        policy=policy or ScaleInPolicy(),
        now=now,
    )


def tracked(view: ClusterView, *, at: float) -> UnneededTracker:
    tracker = UnneededTracker(threshold=0.5)
    for name, node in view.nodes.items():
        tracker.observe(name, view.node_pods.on_node(name), node.allocatable, now=at)
    return tracker


def test_an_empty_node_goes_once_unneeded_long_enough_and_not_before():
    """Empty since T0: kept at T0+59, removed at T0+61; the busy node stays."""
    view = cluster(busy=True)
    tracker = tracked(view, at=T0)
    early = scale_in(request_of(view, now=T0 + 59, tracker=tracker))
    assert early["remove"] == []
    reply = scale_in(request_of(view, now=T0 + 61, tracker=tracker))
    assert [(r["node"], r["instanceId"]) for r in reply["remove"]] == [("n-empty", "i-1")]
    assert reply["pools"] == [
        {
            "poolId": "np-cpu",
            "fromDesired": 2,
            "toDesired": 1,
            "nodes": ["n-empty"],
            "instanceIds": ["i-1"],
        }
    ]


def test_only_managed_pool_nodes_are_offered_and_never_the_eci_node():
    """System and virtual nodes stay out unless non-empty nodes may be drained (destinations)."""
    view = cluster()
    tracker = tracked(view, at=T0)
    names = [n["name"] for n in request_of(view, now=T0, tracker=tracker)["nodes"]]
    assert names == ["n-busy", "n-empty"]
    draining = request_of(view, now=T0, tracker=tracker, policy=ScaleInPolicy(drain_non_empty=True))
    offered = {n["name"]: n["poolId"] for n in draining["nodes"]}
    assert offered == {"n-busy": "np-cpu", "n-empty": "np-cpu", "n-system": None}


def test_a_node_without_an_instance_id_is_never_offered_for_removal():
    """No providerID, no RemoveNodePoolNodes: the node is left out."""
    view = cluster()
    node = raw_node("n-empty")
    node["spec"].pop("providerID")
    view.apply_node("MODIFIED", node)  # type: ignore[arg-type]
    tracker = tracked(view, at=T0)
    names = [n["name"] for n in request_of(view, now=T0 + 600, tracker=tracker)["nodes"]]
    assert "n-empty" not in names


def test_a_recent_scale_up_holds_the_pool_through_its_cool_down():
    """lastScaleUpAt 30 s ago with the 120 s default delay: nothing goes."""
    view = cluster()
    tracker = tracked(view, at=T0)
    held = scale_in(request_of(view, now=T0 + 100, tracker=tracker, last_up=T0 + 70))
    assert held["remove"] == []
    assert all("cool-down" in k["reason"] for k in held["keep"])


def test_a_pool_only_known_by_instance_type_gets_the_catalog_price():
    """No configured price: the catalog's; an unknown type without a price leaves the pool out."""
    view = cluster()
    tracker = tracked(view, at=T0)
    pools = request_of(view, now=T0, tracker=tracker)["pools"]
    assert pools[0]["pricePerHour"] > 0
    unknown = dataclasses.replace(POOL, instance_types=("ecs.nope",))
    assert request_of(view, now=T0, tracker=tracker, pools=(unknown,))["pools"] == []


# --- the reply checks --------------------------------------------------------------------------


def reply_and_request() -> tuple[dict[str, Any], dict[str, Any]]:
    view = cluster()
    request = request_of(view, now=T0 + 61, tracker=tracked(view, at=T0))
    return scale_in(request), request


def test_the_decision_cores_reply_passes_the_checks():
    """What functions.scale_in answers is accepted as is."""
    reply, request = reply_and_request()
    assert validate_scale_in_reply(reply, request) is reply
    assert len(reply["remove"]) == 2


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda r: r.update(schema="decide/v1"), "schema"),
        (lambda r: r["remove"][0].update(node="n-system"), "not a managed node"),
        (lambda r: r["remove"][0].update(instanceId="i-9"), "instance id"),
        (lambda r: r["pools"][0]["nodes"].pop(), "not grouped"),
        (lambda r: r["remove"].append(dict(r["remove"][0])), "twice"),
    ],
)
def test_a_reply_that_does_not_fit_its_request_is_refused(spoil, message):
    """Unknown nodes, other instance ids, ungrouped or doubled removals: InvalidReply."""
    reply, request = reply_and_request()
    spoiled = copy.deepcopy(reply)
    spoil(spoiled)
    with pytest.raises(InvalidReply, match=message):
        validate_scale_in_reply(spoiled, request)


def test_a_reply_that_takes_a_pool_below_min_is_refused():
    """min 2 with both nodes removed: refused, whatever the decider says."""
    reply, request = reply_and_request()
    request["pools"][0]["size"]["min"] = 1
    with pytest.raises(InvalidReply, match="below min"):
        validate_scale_in_reply(reply, request)


async def test_the_local_decider_answers_scale_in_requests_by_their_schema():
    """One decider, both contracts: a scale-in/v1 request gets a scale-in/v1 reply."""
    _reply, request = reply_and_request()
    answer = await LocalDecider().decide(request)
    assert answer["schema"] == "scale-in/v1" and len(answer["remove"]) == 2

"""The scale-down conventions cluster-autoscaler users know, as the agent reads and writes them:
the node annotation `cluster-autoscaler.kubernetes.io/scale-down-disabled: "true"` keeps a node
(sent as `scaleDownDisabled`, the decision says why); our `ray-ack-scaler/to-be-deleted` taint
and task annotation are read back into the node facts; nodes a running removal takes are not
offered again; a failed removal's time backs the node off."""

from __future__ import annotations

from typing import Any

from agent.decide.request_builder import RequestSettings
from agent.ingest.node_pods import (
    REMOVAL_TASK_ANNOTATION,
    SCALE_DOWN_DISABLED,
    TO_BE_DELETED_TAINT,
    node_facts,
)
from agent.ingest.view import ClusterView
from agent.model import PoolInfo
from agent.scale_in.marks import (
    MARKED_AT_ANNOTATION,
    MARKED_BY_ANNOTATION,
    WAS_CORDONED_ANNOTATION,
    Mark,
    mark_of,
    mark_patch,
    unmark_patch,
)
from agent.scale_in.tracking import (
    ScaleInPolicy,
    UnneededTracker,
    build_scale_in_request,
    rfc3339,
)
from functions.scalein.decision import scale_in
from tests.support.builders import T0, raw_node

POOL = PoolInfo("np-cpu", "cpu", ("ecs.g7.xlarge",), desired=2, min_size=0, max_size=10)
SETTINGS = RequestSettings(cluster_id="c-1", region="cn-hangzhou")
OTHER_TAINT = {"key": "example.com/maintenance", "effect": "NoSchedule"}


def pool_node(name: str, instance: str, **annotations: str) -> dict[str, Any]:
    node = raw_node(name)
    node["spec"]["providerID"] = f"cn-hangzhou.{instance}"
    node["metadata"]["annotations"] = dict(annotations)
    return node


def view_of(*nodes: dict[str, Any]) -> ClusterView:
    view = ClusterView()
    for node in nodes:
        view.apply_node("ADDED", node)  # type: ignore[arg-type]
    return view


def decide(view: ClusterView, *, now: float, **options: Any) -> dict[str, Any]:
    """The request the agent builds (every node empty since T0), judged by the decision core."""
    tracker = UnneededTracker(threshold=0.5)
    for name, node in view.nodes.items():
        tracker.observe(name, [], node.allocatable, now=T0)
    request = build_scale_in_request(
        [view.nodes[name] for name in sorted(view.nodes)],
        [POOL],
        facts=view.node_pods.facts,
        pods_on=view.node_pods.on_node,
        tracker=tracker,
        last_scale_up=lambda _pool: None,
        settings=SETTINGS,
        policy=ScaleInPolicy(),
        now=now,
        **options,
    )
    return {"request": request, "reply": scale_in(request)}


def test_a_node_annotated_scale_down_disabled_is_kept_and_says_why():
    """Exactly "true" opts the node out; the reply names the annotation."""
    view = view_of(
        pool_node("n-off", "i-1", **{SCALE_DOWN_DISABLED: "true"}),
        pool_node("n-on", "i-2", **{SCALE_DOWN_DISABLED: "True"}),
    )
    out = decide(view, now=T0 + 600)
    sent = {n["name"]: n["scaleDownDisabled"] for n in out["request"]["nodes"]}
    assert sent == {"n-off": True, "n-on": False}
    assert [r["node"] for r in out["reply"]["remove"]] == ["n-on"]
    (kept,) = out["reply"]["keep"]
    assert kept == {
        "node": "n-off",
        "reason": f'scale-down disabled (annotation {SCALE_DOWN_DISABLED}: "true")',
    }


def test_nodes_a_running_removal_takes_are_not_offered_again():
    """`leaving` nodes are left out of the request altogether."""
    view = view_of(pool_node("n-1", "i-1"), pool_node("n-2", "i-2"))
    out = decide(view, now=T0 + 600, leaving={"n-1"})
    assert [n["name"] for n in out["request"]["nodes"]] == ["n-2"]


def test_a_failed_removal_backs_the_node_off():
    """lastRemovalFailedAt 60 s ago, delay 180 s: kept with the back-off; 200 s ago: removed."""
    view = view_of(pool_node("n-1", "i-1"))
    recent = decide(view, now=T0 + 600, failed_at=lambda _name: T0 + 540.0)
    assert recent["request"]["nodes"][0]["lastRemovalFailedAt"] is not None
    assert recent["request"]["policy"]["scaleDownDelayAfterFailureSeconds"] == 180.0
    (kept,) = recent["reply"]["keep"]
    assert kept["reason"] == (
        "back-off: removing it failed 60s ago (scaleDownDelayAfterFailureSeconds 180)"
    )
    later = decide(view, now=T0 + 600, failed_at=lambda _name: T0 + 400.0)
    assert [r["node"] for r in later["reply"]["remove"]] == ["n-1"]


def test_our_marks_are_read_back_from_the_node():
    """The taint's value is when it was marked; the annotation names the task."""
    node = pool_node("n-1", "i-1", **{REMOVAL_TASK_ANNOTATION: "T-1"})
    node["spec"]["taints"] = [
        OTHER_TAINT,
        {"key": TO_BE_DELETED_TAINT, "value": "1800000060", "effect": "NoSchedule"},
    ]
    facts = node_facts(node)  # type: ignore[arg-type]
    assert (facts.marked_at, facts.removal_task) == (1800000060.0, "T-1")
    assert node_facts(pool_node("n-2", "i-2")).marked_at is None  # type: ignore[arg-type]


def test_marking_adds_cordon_and_taint_and_keeps_other_taints():
    """The patch carries every other taint (a merge patch replaces the list whole) and says who
    marked the node and when; the mark is read back; unmarking removes exactly what marking
    added."""
    node = pool_node("n-1", "i-1")
    node["spec"]["taints"] = [OTHER_TAINT]
    patch = mark_patch(node, now=T0, holder="head-a")
    assert patch == {
        "spec": {
            "unschedulable": True,
            "taints": [
                OTHER_TAINT,
                {"key": TO_BE_DELETED_TAINT, "value": str(int(T0)), "effect": "NoSchedule"},
            ],
        },
        "metadata": {
            "annotations": {MARKED_BY_ANNOTATION: "head-a", MARKED_AT_ANNOTATION: rfc3339(T0)}
        },
    }
    marked = pool_node("n-1", "i-1", **{REMOVAL_TASK_ANNOTATION: "T-1"})
    marked["spec"].update(patch["spec"])
    marked["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    assert mark_of(marked) == Mark(holder="head-a", at=T0, task="T-1", was_cordoned=False)
    gone = {
        key: None for key in (REMOVAL_TASK_ANNOTATION, MARKED_BY_ANNOTATION, MARKED_AT_ANNOTATION)
    }
    assert unmark_patch(marked, uncordon=True) == {
        "spec": {"taints": [OTHER_TAINT], "unschedulable": False},
        "metadata": {"annotations": gone},
    }
    assert unmark_patch(marked, uncordon=False) == {
        "spec": {"taints": [OTHER_TAINT]},
        "metadata": {"annotations": gone},
    }
    assert unmark_patch(node, uncordon=False) is None


def test_a_cordon_found_before_the_mark_survives_the_unmark():
    """Someone else cordoned the node first: the mark says so, and taking it off leaves the
    cordon; a node cordoned without our taint is no mark at all."""
    node = pool_node("n-1", "i-1")
    node["spec"]["unschedulable"] = True
    assert mark_of(node) is None
    patch = mark_patch(node, now=T0, holder="head-a")
    assert patch["metadata"]["annotations"][WAS_CORDONED_ANNOTATION] == "true"
    node["spec"].update(patch["spec"])
    node["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
    assert mark_of(node).was_cordoned  # type: ignore[union-attr]
    undo = unmark_patch(node, uncordon=True)
    assert undo is not None and "unschedulable" not in undo["spec"]
    assert undo["metadata"]["annotations"][WAS_CORDONED_ANNOTATION] is None

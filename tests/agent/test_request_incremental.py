"""Pod entries kept built between rounds (agent.decide.pod_entries) and the view's skipped refolds
(agent.ingest.view): the cached path gives the request a from-scratch build gives, byte for byte
once encoded; an event that changes nothing the decision reads rebuilds nothing; and no event
sequence makes the view lose a pending pod, a change the decision reads, or the pod's current
resourceVersion."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functions
from agent.decide.pod_entries import PodEntries, PodEntryCache, encode_request
from agent.decide.request_builder import RequestSettings, build_request
from agent.ingest.view import ClusterView
from agent.model import PoolInfo, Snapshot
from functions.contract_checks import check_decide_reply
from tests.support.builders import pending_pod

NOW = "2026-11-29T05:00:00Z"
SETTINGS = RequestSettings(cluster_id="c-1", region="cn-hangzhou")
POOLS = [PoolInfo("np-cpu", "cpu", ("ecs.g7.xlarge",), 1, 0, 20)]
UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient cpu.",
    "lastTransitionTime": "2026-11-29T04:59:58Z",
}
# What a request says about a pod that the view may keep from an earlier fold on purpose.
NOT_DECISION_INPUTS = ("resourceVersion", "message", "unschedulableSince")


def raw_pod(uid: str, rv: int = 1) -> Any:  # a RawObject, edited freely by the tests
    return {
        "kind": "Pod",
        "metadata": {
            "uid": uid,
            "name": f"worker-{uid}",
            "namespace": "ray",
            "resourceVersion": str(rv),
            "labels": {"ray.io/cluster": "c", "ray.io/group": "g"},
            "annotations": {"ray.io/ft-enabled": "false"},
        },
        "spec": {
            "containers": [
                {"name": "ray", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
            ],
            "volumes": [{"name": "shm", "emptyDir": {}}],
        },
        "status": {
            "phase": "Pending",
            # Later uids marked earlier, so the view's order (oldest first) is not the uids'.
            "conditions": [
                {
                    **UNSCHEDULABLE,
                    "lastTransitionTime": f"2026-11-29T04:59:{59 - sum(map(ord, uid)) % 60:02d}Z",
                }
            ],
        },
    }


def _condition(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["conditions"][0]  # type: ignore[no-any-return]


# Each edit changes one thing of a pod, as a MODIFIED event could; `relevant` says whether the
# decision reads it (or whether it takes the pod out of pending).
EDITS: dict[str, tuple[bool, Any]] = {
    "message": (False, lambda p: _condition(p).update(message=f"0/{id(p) % 97} nodes")),
    "resourceVersion only": (False, lambda p: None),
    "label": (True, lambda p: p["metadata"]["labels"].update(extra="1")),
    "annotation": (
        True,
        lambda p: p["metadata"]["annotations"].update({"ray-ack-scaler/placement": "eci"}),
    ),
    "toleration": (
        True,
        lambda p: (
            p["spec"]
            .setdefault("tolerations", [])
            .append({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"})
        ),
    ),
    "requests": (
        True,
        lambda p: p["spec"]["containers"][0]["resources"]["requests"].update(cpu="3"),
    ),
    "limits only": (
        True,
        lambda p: p["spec"]["containers"][0]["resources"].update(limits={"nvidia.com/gpu": "1"}),
    ),
    "init container": (
        True,
        lambda p: p["spec"].update(
            initContainers=[{"name": "i", "resources": {"requests": {"memory": "8Gi"}}}]
        ),
    ),
    "nodeSelector": (True, lambda p: p["spec"].update(nodeSelector={"pool": "gpu"})),
    "affinity": (
        True,
        lambda p: p["spec"].update(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "z", "operator": "In", "values": ["a"]}]}
                        ]
                    }
                }
            }
        ),
    ),
    "hostNetwork": (True, lambda p: p["spec"].update(hostNetwork=True)),
    "volume": (True, lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {}})),
    "privileged": (
        True,
        lambda p: p["spec"]["containers"][0].update(securityContext={"privileged": True}),
    ),
    "bound": (True, lambda p: p["spec"].update(nodeName="n-1")),
    "deleting": (True, lambda p: p["metadata"].update(deletionTimestamp=NOW)),
    "running": (True, lambda p: p["status"].update(phase="Running")),
    "reason": (True, lambda p: _condition(p).update(reason="SchedulingGated")),
    "scheduled": (True, lambda p: _condition(p).update(status="True", reason="")),
}


def request_of(view: ClusterView, entries: PodEntryCache | None) -> dict[str, Any]:
    return build_request(
        view.snapshot(),
        POOLS,
        {},
        settings=SETTINGS,
        now=NOW,
        entries=entries,
        versions=dict(view.versions),
    )


def decision_inputs(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in pod.items() if k not in NOT_DECISION_INPUTS} for pod in request["pods"]
    ]


class TestEncoding:
    def test_cached_request_encodes_as_json_dumps_and_equals_a_fresh_build(self) -> None:
        """The joined fragments are json.dumps' bytes; the entries equal pod_json's."""
        pods = tuple(
            pending_pod(f"u-{i}", cpu=str(1 + i % 3), node_selector={"k": "é\u2028"} if i else None)
            for i in range(9)
        )
        # Text JSON must escape, in the fields encoded per pod too.
        pods += (
            replace(pending_pod('u-\\"q'), message='said "ü" \u2028\n\x7f', unschedulable_since=""),
        )
        snapshot = Snapshot(pending=pods, nodes=(), eci_running_pods=0)
        cache = PodEntryCache()
        cached = build_request(snapshot, POOLS, {}, settings=SETTINGS, now=NOW, entries=cache)
        fresh = build_request(snapshot, POOLS, {}, settings=SETTINGS, now=NOW)
        assert isinstance(cached["pods"], PodEntries)
        assert cached == fresh
        assert encode_request(cached) == json.dumps(fresh, separators=(",", ":")).encode()
        reply = functions.decide(json.loads(encode_request(cached)))
        assert check_decide_reply(reply, fresh)["unplaceable"], "the selector pods fit no pool"

    def test_a_second_round_reuses_every_unchanged_entry(self) -> None:
        """Only the pods whose object changed are built again; gone pods are dropped."""
        pods = [pending_pod(f"u-{i}") for i in range(10)]
        cache = PodEntryCache()
        first = cache.entries(pods)
        assert cache.built == 10
        pods[3] = pending_pod("u-3", rv="2", cpu="2")
        second = cache.entries(pods[:-1])
        assert cache.built == 11
        assert len(cache) == 9
        assert second[0] is first[0] and second[3] is not first[3]
        assert second[3]["requests"]["cpu"] == "2"

    def test_appended_entries_are_encoded_with_the_rest(self) -> None:
        """Anticipated workers' entries, appended to the pods list, join the cached ones."""
        snapshot = Snapshot(pending=(pending_pod("u-1"),), nodes=(), eci_running_pods=0)
        cached = build_request(
            snapshot,
            POOLS,
            {},
            settings=SETTINGS,
            now=NOW,
            entries=PodEntryCache(),
            anticipated=[pending_pod("synthetic-1")],
        )
        assert [p["uid"] for p in cached["pods"]] == ["u-1", "synthetic-1"]
        assert [p.get("anticipated") for p in cached["pods"]] == [None, True]
        assert encode_request(cached) == json.dumps(cached, separators=(",", ":")).encode()


class TestSkippedRefolds:
    @pytest.mark.parametrize("edit", sorted(EDITS))
    def test_an_edit_rebuilds_the_entry_exactly_when_the_decision_reads_it(self, edit: str) -> None:
        relevant, change = EDITS[edit]
        view, cache = ClusterView(), PodEntryCache()
        view.apply_pod("ADDED", raw_pod("a"))
        before = request_of(view, cache)
        built = cache.built
        pod = raw_pod("a", rv=2)
        change(pod)
        view.apply_pod("MODIFIED", pod)
        after = request_of(view, cache)
        if relevant:
            assert decision_inputs(after) != decision_inputs(before)
        else:
            assert view.refolds_skipped == 1
            assert cache.built == built, "nothing the decision reads changed: nothing rebuilt"
            assert decision_inputs(after) == decision_inputs(before)
            # ...but the entry carries the pod's current resourceVersion (the ECI patch's test).
            assert cache.reversioned == 1
            assert after["pods"][0]["resourceVersion"] == "2"
            assert request_of(view, cache)["pods"][0] is after["pods"][0]

    def test_a_message_wave_wakes_nobody_and_builds_nothing(self) -> None:
        """The scheduler rewriting every pending pod's message (a node registered) is free."""
        woken: list[str] = []
        view, cache = ClusterView(on_pending=lambda p: woken.append(p.uid)), PodEntryCache()
        for i in range(50):
            view.apply_pod("ADDED", raw_pod(f"u-{i}"))
        request_of(view, cache)
        for i in range(50):
            pod = raw_pod(f"u-{i}", rv=2)
            _condition(pod)["message"] = "0/4 nodes are available: 4 Insufficient cpu."
            view.apply_pod("MODIFIED", pod)
        built = cache.built
        request = request_of(view, cache)
        assert len(woken) == 50 and view.refolds_skipped == 50 and cache.built == built
        assert {p["resourceVersion"] for p in request["pods"]} == {"2"}
        assert cache.reversioned == 50


@st.composite
def event_sequences(draw: st.DrawFn) -> list[tuple[str, str, list[str]]]:
    """Events on a few pods: ("event", uid, edits) or ("round", "", [])."""
    names = sorted(EDITS)
    steps: list[tuple[str, str, list[str]]] = []
    for _ in range(draw(st.integers(1, 40))):
        if draw(st.integers(0, 5)) == 0:
            steps.append(("round", "", []))
            continue
        uid = f"u-{draw(st.integers(0, 4))}"
        kind = draw(st.sampled_from(["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]))
        edits = draw(st.lists(st.sampled_from(names), max_size=3))
        steps.append((kind, uid, edits))
    steps.append(("round", "", []))
    return steps


@settings(max_examples=150, deadline=None)
@given(event_sequences())
def test_random_event_sequences_keep_requests_equal_to_a_from_scratch_fold(
    steps: list[tuple[str, str, list[str]]],
) -> None:
    """After any event sequence: the cached request equals the from-scratch build of the same
    view (and encodes to json.dumps' bytes), and the view holds exactly the pending pods, with
    every decision input, that a fresh view folding only each pod's last version holds."""
    view, cache = ClusterView(), PodEntryCache()
    latest: dict[str, Any] = {}
    deleted: set[str] = set()
    rv = 1
    for kind, uid, edits in steps:
        if kind == "round":
            cached = request_of(view, cache)
            fresh = request_of(view, None)
            oldest_first = sorted(
                view.pending.values(), key=lambda p: (p.unschedulable_since, p.uid)
            )
            assert view.snapshot().pending == tuple(oldest_first)
            assert cached == fresh
            assert encode_request(cached) == json.dumps(fresh, separators=(",", ":")).encode()
            reference = ClusterView()
            for name, pod in latest.items():
                if name not in deleted:
                    reference.apply_pod("ADDED", copy.deepcopy(pod))
            assert decision_inputs(fresh) == decision_inputs(request_of(reference, None))
            # Every entry carries the last resourceVersion the view saw for its pod.
            for entry in cached["pods"]:
                assert (
                    entry["resourceVersion"] == latest[entry["uid"]]["metadata"]["resourceVersion"]
                )
            continue
        rv += 1
        # Edits accumulate on the pod's current object, as successive updates do.
        pod = copy.deepcopy(latest.get(uid) or raw_pod(uid))
        pod["metadata"]["resourceVersion"] = str(rv)
        for edit in edits:
            EDITS[edit][1](pod)
        latest[uid] = pod
        if kind == "DELETED":
            deleted.add(uid)
        else:
            deleted.discard(uid)
        view.apply_pod(kind, copy.deepcopy(pod))

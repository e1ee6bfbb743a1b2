"""The drain search answers exactly as a plain first fit does — every move's outcome and reason,
and which node received pods from which — whatever its search state remembers between moves:
failed moves that took space first, pods pinned by label, by affinity or by taint, shapes seen
once or many times."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.predicates import (
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
)
from functions.scalein.decision import scale_in
from functions.scalein.drain import Destinations
from functions.scalein.model import Node, NodePod
from functions.scalein.validate import parse_scale_in_request
from tests.support.scale_in_requests import kept, node, pod, request

_EPHEMERAL = "ephemeral-storage"
_SLOT = 1000  # one `pods` slot, in milli-units


class _PlainFirstFit:
    """Reference: every pod scans every destination in order; a failed move is undone whole."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.open = {n.name: True for n in nodes}
        self.free: dict[str, dict[str, int]] = {}
        for n in nodes:
            room = dict(n.allocatable)
            for p in n.pods:
                if p.active:
                    for name, amount in _need(p).items():
                        room[name] = room.get(name, 0) - amount
            self.free[n.name] = room
        self.receivers: dict[str, str] = {}

    def move(self, pods: list[NodePod], *, source: str) -> str:
        trial = {name: dict(room) for name, room in self.free.items()}
        taken: list[str] = []
        order = sorted(
            pods, key=lambda p: (-p.requests.get("cpu", 0), -p.requests.get("memory", 0), p.uid)
        )
        for p in order:
            need = _need(p)
            admitting = [n for n in self.nodes if self.open[n.name] and _admits(n, p)]
            home = next((n for n in admitting if not insufficient(need, trial[n.name])), None)
            if home is None:
                return f"{p.label} {_why(need, [trial[n.name] for n in admitting[:64]])}"
            for name, amount in need.items():
                trial[home.name][name] = trial[home.name].get(name, 0) - amount
            taken.append(home.name)
        self.free = trial
        for name in taken:
            self.receivers.setdefault(name, source)
        return ""


def _need(p: NodePod) -> dict[str, int]:
    return {**p.requests, "pods": p.requests.get("pods", 0) + _SLOT}


def _admits(n: Node, p: NodePod) -> bool:
    return (
        node_selector_matches(p.node_selector, n.labels)
        and required_affinity_matches(p.affinity, n.labels)
        and first_untolerated_taint(p.tolerations, n.taints) is None
    )


def _why(need: dict[str, int], rooms: list[dict[str, int]]) -> str:
    if not rooms:
        return "matches no other Ready schedulable node (nodeSelector, required affinity or taints)"
    short = sorted({name for room in rooms for name in insufficient(need, room)})
    return f"finds no node with enough {', '.join(short)} free"


def _affinity(terms: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": term} for term in terms]
            }
        }
    }


@st.composite
def _placement(draw: st.DrawFn, nodes: int) -> dict[str, Any]:
    """No constraint, a tier or a hostname selector, an affinity with In terms, a toleration."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return {"nodeSelector": {"tier": draw(st.sampled_from(["x", "y"]))}}
    if kind == 1:
        return {"nodeSelector": {"kubernetes.io/hostname": f"n{draw(st.integers(0, nodes)):02d}"}}
    if kind == 2:
        keys = st.sampled_from(["tier", "zone", "kubernetes.io/hostname"])
        values = st.lists(st.sampled_from(["x", "a", "b", "n01", "n02"]), min_size=1)
        expression = st.one_of(
            st.fixed_dictionaries(
                {"key": keys, "operator": st.sampled_from(["In", "NotIn"]), "values": values}
            ),
            st.fixed_dictionaries({"key": keys, "operator": st.just("Exists")}),
        )
        terms = draw(st.lists(st.lists(expression, max_size=2), max_size=2))
        return {"affinity": _affinity(terms)}
    if kind == 3:
        return {"tolerations": [{"key": "gpu", "operator": "Exists"}]}
    return {}


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[Node], list[Node]]:
    """Up to 24 nodes, many of them with a pod that fits elsewhere next to one that may not
    (more ephemeral-storage than any node has free), and a drain order over them."""
    count = draw(st.integers(1, 24))
    bodies: list[dict[str, Any]] = []
    for i in range(count):
        pods = []
        for j in range(draw(st.integers(0, 3))):
            requests = {
                "cpu": draw(st.sampled_from(["250m", "500m", "1", "2"])),
                "memory": draw(st.sampled_from(["1Gi", "4Gi"])),
            }
            if draw(st.integers(0, 2)) == 0:
                requests[_EPHEMERAL] = draw(st.sampled_from(["10Gi", "40Gi", "60Gi"]))
            fields = draw(_placement(count))
            if draw(st.integers(0, 6)) == 0:
                fields["owner"] = "DaemonSet"
            pods.append(pod(f"p{i}-{j}", requests=requests, **fields))
        body = node(
            f"n{i:02d}",
            *pods,
            cpu=draw(st.sampled_from(["2", "4", "8"])),
            labels={
                "tier": draw(st.sampled_from(["x", "y"])),
                "zone": draw(st.sampled_from(["a", "b"])),
                "kubernetes.io/hostname": f"n{i:02d}",
            },
            taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
            if draw(st.integers(0, 5)) == 0
            else [],
        )
        body["allocatable"][_EPHEMERAL] = "100Gi"
        if draw(st.integers(0, 8)) == 0:
            body["allocatable"]["pods"] = str(draw(st.integers(1, 3)))
        bodies.append(body)
    nodes = list(parse_scale_in_request(request(bodies)).nodes)
    order = draw(st.permutations(nodes))
    return nodes, list(order[: draw(st.integers(1, len(nodes)))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_every_move_answers_as_plain_first_fit(fleet: tuple[list[Node], list[Node]]) -> None:
    """Same outcome and reason, move by move, and the same receivers, as the plain reference."""
    nodes, drains = fleet
    destinations = Destinations(nodes)
    reference = _PlainFirstFit(nodes)
    for source in drains:
        movable = [p for p in source.pods if p.movable]
        destinations.close(source.name)
        reference.open[source.name] = False
        misfit = destinations.move(movable, source=source.name)
        assert misfit == reference.move(movable, source=source.name), source.name
        if misfit:
            destinations.reopen(source.name)
            reference.open[source.name] = True
    assert destinations.receivers == reference.receivers


def _one_fits_one_does_not(count: int) -> dict[str, Any]:
    """The adversarial fleet of the benchmark: each node runs a 1 cpu pod that fits elsewhere and
    a 500m pod whose 60Gi of ephemeral-storage no other node has free."""
    bodies = []
    for i in range(count):
        name = f"n{i:03d}"
        big = {"cpu": "500m", "memory": "1Gi", _EPHEMERAL: "60Gi"}
        body = node(name, pod(f"{name}-a"), pod(f"{name}-b", requests=big))
        body["allocatable"][_EPHEMERAL] = "100Gi"
        bodies.append(body)
    return request(bodies, drainNonEmpty=True)


def test_nodes_whose_second_pod_fits_nowhere_all_stay_with_that_pod_named() -> None:
    """Every node of the adversarial fleet stays, each naming its own pod that does not fit."""
    reply = scale_in(_one_fits_one_does_not(40))
    assert reply["remove"] == []
    reasons = kept(reply)
    assert reasons["n007"] == (
        "pods would not fit elsewhere: ray/rc-worker-n007-b finds no node with enough "
        "ephemeral-storage free"
    )
    assert len(reasons) == 40


def test_pods_pinned_to_their_own_node_keep_it() -> None:
    """A pod whose nodeSelector names its own node's hostname has nowhere else to go."""
    bodies = [
        node(
            f"n{i}",
            pod(f"a{i}"),
            pod(f"b{i}", cpu="500m", nodeSelector={"kubernetes.io/hostname": f"n{i}"}),
            labels={"kubernetes.io/hostname": f"n{i}"},
        )
        for i in range(6)
    ]
    reply = scale_in(request(bodies, drainNonEmpty=True))
    assert reply["remove"] == []
    assert kept(reply)["n3"] == (
        "pods would not fit elsewhere: ray/rc-worker-b3 matches no other Ready schedulable node "
        "(nodeSelector, required affinity or taints)"
    )

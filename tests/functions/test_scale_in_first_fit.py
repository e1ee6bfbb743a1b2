"""The drain simulation's shortcuts (per-shape start index, shapes that never fit) change no
outcome: it agrees with a plain all-or-nothing first fit over generated drains."""

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
from functions.scalein.drain import Destinations
from functions.scalein.model import Node, NodePod
from functions.scalein.validate import parse_scale_in_request
from tests.support.scale_in_requests import node, pod, request


def _plain_first_fit(nodes: list[Node], drains: list[Node]) -> list[bool]:
    """Reference: scan every open node for every pod, copy-and-commit per drained node."""
    free = {}
    for n in nodes:
        room = dict(n.allocatable)
        for p in n.pods:
            if p.active:
                for name, amount in {
                    **p.requests,
                    "pods": p.requests.get("pods", 0) + 1000,
                }.items():
                    room[name] = room.get(name, 0) - amount
        free[n.name] = room
    closed: set[str] = set()
    outcomes = []
    for source in drains:
        trial = {name: dict(room) for name, room in free.items()}
        ok = True
        order = sorted(
            (p for p in source.pods if p.movable),
            key=lambda p: (-p.requests.get("cpu", 0), -p.requests.get("memory", 0), p.uid),
        )
        for p in order:
            need = {**p.requests, "pods": p.requests.get("pods", 0) + 1000}
            home = next(
                (
                    n
                    for n in nodes
                    if n.name not in closed
                    and n.name != source.name
                    and _admits(n, p)
                    and not insufficient(need, trial[n.name])
                ),
                None,
            )
            if home is None:
                ok = False
                break
            for name, amount in need.items():
                trial[home.name][name] = trial[home.name].get(name, 0) - amount
        if ok:
            free = trial
            closed.add(source.name)
        outcomes.append(ok)
    return outcomes


def _admits(n: Node, p: NodePod) -> bool:
    return (
        node_selector_matches(p.node_selector, n.labels)
        and required_affinity_matches(p.affinity, n.labels)
        and first_untolerated_taint(p.tolerations, n.taints) is None
    )


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[Node], list[Node]]:
    """Up to 10 nodes with few pod shapes (so shapes repeat) and a drain order over them."""
    bodies: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 10))):
        found = []
        for j in range(draw(st.integers(0, 4))):
            fields: dict[str, Any] = {
                "cpu": draw(st.sampled_from(["500m", "1", "2"])),
                "memory": draw(st.sampled_from(["1Gi", "4Gi"])),
            }
            if draw(st.integers(0, 3)) == 0:
                fields["nodeSelector"] = {"tier": "x"}
            if draw(st.integers(0, 5)) == 0:
                fields["owner"] = "DaemonSet"
            found.append(pod(f"p{i}-{j}", **fields))
        bodies.append(
            node(
                f"n{i}",
                *found,
                cpu=draw(st.sampled_from(["2", "4"])),
                memory="8Gi",
                labels={"tier": draw(st.sampled_from(["x", "y"]))},
            )
        )
    nodes = list(parse_scale_in_request(request(bodies)).nodes)
    order = draw(st.permutations(nodes))
    return nodes, list(order[: draw(st.integers(1, len(nodes)))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_agrees_with_plain_first_fit(fleet: tuple[list[Node], list[Node]]) -> None:
    """Same success/failure, drain by drain, as the reference without shortcuts."""
    nodes, drains = fleet
    destinations = Destinations(nodes)
    outcomes = []
    for source in drains:
        destinations.close(source.name)
        misfit = destinations.move([p for p in source.pods if p.movable], source=source.name)
        if misfit:
            destinations.reopen(source.name)
        outcomes.append(not misfit)
    assert outcomes == _plain_first_fit(nodes, drains)

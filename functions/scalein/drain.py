"""Where a drained node's pods would go: a first-fit simulation over the nodes that stay.

Destinations are the Ready, schedulable nodes not chosen for removal. Each keeps
its free space (allocatable minus every active pod's requests, DaemonSet pods
included, and one `pods` slot per pod); moving a pod consumes it, so the
capacity one drained node uses is gone for the next. A node's pods move all
or none: a failed attempt gives back what it took. Fit is the scale-out
predicates: resources, nodeSelector, required node affinity, taints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

from functions.predicates import (
    POD_SLOT,
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
)
from functions.scalein.model import Node, NodePod

_EXPLAIN_FROM = 64


class _Destination:
    """One node that may take pods: working state of one decision, hence mutable and slotted."""

    __slots__ = ("free", "node", "open")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.free = dict(node.allocatable)
        self.open = True
        for pod in node.pods:
            if pod.active:
                _take(self.free, _need(pod))


class Destinations:
    """The nodes that stay, in the order moved pods try them."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self._all = [_Destination(node) for node in nodes]
        self._by_name = {slot.node.name: slot for slot in self._all}
        # fit_key -> destinations whose labels and taints admit the shape; they never change.
        self._admitting: dict[str, list[_Destination]] = {}
        # fit_key -> index into its admitting list before which nothing has room. Space only
        # shrinks while attempts succeed; a failed attempt puts space and these back.
        self._start: dict[str, int] = {}
        # Shapes no node has room for, not even the node they came from, and why: never will.
        self._never: dict[str, str] = {}
        self.receivers: dict[str, str] = {}

    def close(self, name: str) -> None:
        """`name` is leaving (chosen for removal): it takes no pods from now on."""
        slot = self._by_name.get(name)
        if slot is not None:
            slot.open = False

    def reopen(self, name: str) -> None:
        """`name` stays after all (its own pods did not fit elsewhere)."""
        slot = self._by_name.get(name)
        if slot is not None:
            slot.open = True

    def move(self, pods: Sequence[NodePod], *, source: str) -> str:
        """Place every pod of `source` or none; '' on success, else why the first misfit fails.

        The caller closes `source` first, so its pods cannot land on it.
        """
        saved = dict(self._start)
        placed: list[tuple[_Destination, dict[str, int]]] = []
        # Largest first (first-fit decreasing), ties by uid for a deterministic result.
        order = sorted(
            pods,
            key=lambda pod: (-pod.requests.get("cpu", 0), -pod.requests.get("memory", 0), pod.uid),
        )
        for pod in order:
            need = _need(pod)
            known = self._never.get(pod.fit_key)
            slot = None if known is not None else self._first_fit(pod, need)
            if slot is None:
                why = known if known is not None else self._misfit(pod, need)
                if not placed and not self._could_take(source, pod, need):
                    self._never[pod.fit_key] = why
                for taken, amount in placed:
                    _give(taken.free, amount)
                self._start = saved
                return f"{pod.label} {why}"
            _take(slot.free, need)
            placed.append((slot, need))
        for slot, _amount in placed:
            self.receivers.setdefault(slot.node.name, source)
        return ""

    def _first_fit(self, pod: NodePod, need: dict[str, int]) -> _Destination | None:
        admitting = self._admits(pod)
        index = self._start.get(pod.fit_key, 0)
        while index < len(admitting):
            slot = admitting[index]
            if slot.open and not insufficient(need, slot.free):
                self._start[pod.fit_key] = index
                return slot
            index += 1
        self._start[pod.fit_key] = index
        return None

    def _could_take(self, name: str, pod: NodePod, need: dict[str, int]) -> bool:
        slot = self._by_name.get(name)
        return slot is not None and _admits(slot.node, pod) and not insufficient(need, slot.free)

    def _admits(self, pod: NodePod) -> list[_Destination]:
        admitting = self._admitting.get(pod.fit_key)
        if admitting is None:
            admitting = [slot for slot in self._all if _admits(slot.node, pod)]
            self._admitting[pod.fit_key] = admitting
        return admitting

    def _misfit(self, pod: NodePod, need: dict[str, int]) -> str:
        # The first few open candidates are enough to name what is short, and keep a decision
        # with thousands of misfits linear.
        admitting = list(islice((slot for slot in self._admits(pod) if slot.open), _EXPLAIN_FROM))
        if not admitting:
            return (
                "matches no other Ready schedulable node "
                "(nodeSelector, required affinity or taints)"
            )
        short = sorted({name for slot in admitting for name in insufficient(need, slot.free)})
        return f"finds no node with enough {', '.join(short)} free"


def _admits(node: Node, pod: NodePod) -> bool:
    return (
        node_selector_matches(pod.node_selector, node.labels)
        and required_affinity_matches(pod.affinity, node.labels)
        and first_untolerated_taint(pod.tolerations, node.taints) is None
    )


def _need(pod: NodePod) -> dict[str, int]:
    need = dict(pod.requests)
    for name, amount in POD_SLOT.items():
        need[name] = need.get(name, 0) + amount
    return need


def _take(free: dict[str, int], need: dict[str, int]) -> None:
    for name, amount in need.items():
        free[name] = free.get(name, 0) - amount


def _give(free: dict[str, int], need: dict[str, int]) -> None:
    for name, amount in need.items():
        free[name] = free.get(name, 0) + amount

"""Where a drained node's pods would go: a first-fit simulation over the nodes that stay.

Destinations are the Ready, schedulable nodes not chosen for removal. Each keeps
its free space (allocatable minus every active pod's requests, DaemonSet pods
included, and one `pods` slot per pod); moving a pod consumes it, so the
capacity one drained node uses is gone for the next. A node's pods move all
or none: a failed attempt gives back what it took. Fit is the scale-out
predicates: resources, nodeSelector, required node affinity, taints.

The answer is plain first fit in destination order; the structures below only find it
sooner, so that a decision stays near-linear in nodes however many drains fail:
- `_Admitting`, per placement (nodeSelector, affinity, tolerations): the destinations
  that admit it, found through a label index when the placement names labels, and a tree
  of the most free of each resource over ranges of them, so a search skips whole ranges
  that cannot hold the pod.
- `_Shape`, per pod shape (placement and requests): where its search resumes. A failed
  attempt undoes only what it changed (`_Attempt`), so the next node never searches
  destinations already known to be full again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from heapq import heappop, heappush
from itertools import islice

from functions.predicates import (
    POD_SLOT,
    first_untolerated_taint,
    node_selector_matches,
    required_affinity_matches,
)
from functions.scalein.model import Node, NodePod

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_EXPLAIN_FROM = 64
# Destinations a search looks at one by one before it asks the trees: most searches end here.
_PROBE = 8
# A closed destination's value in every tree: below any request.
_CLOSED = float("-inf")


class _Destination:
    """One node that may take pods: working state of one decision, hence mutable and slotted."""

    __slots__ = ("free", "node", "open", "order", "places")

    def __init__(self, node: Node, order: int) -> None:
        self.node = node
        self.order = order
        self.free = dict(node.allocatable)
        self.open = True
        # The placements whose trees hold this node, and its position in each (built with
        # the trees: most decisions never need one, and every object here costs the GC).
        self.places: list[tuple[_Admitting, int]] | None = None
        for pod in node.pods:
            if pod.active:
                _take(self.free, _need(pod))

    def changed(self) -> None:
        """Its free space or openness changed: tell the trees that hold it."""
        if self.places is not None:
            for admitting, position in self.places:
                admitting.dirty.add(position)


class _Admitting:
    """The destinations whose labels and taints admit one placement, in destination order.

    `first_from` looks at a few destinations one by one, then asks a max tree per resource:
    `trees[name][k]` is the most `name` free on an open destination under tree node k (leaves
    at `size + position`), so whole ranges without room are skipped. The trees are built at
    the first such question and brought up to date (`dirty`) only when asked again.
    """

    __slots__ = ("_position", "dirty", "size", "slots", "trees")

    def __init__(self, slots: list[_Destination]) -> None:
        self.slots = slots
        self.size = 1
        while self.size < len(slots):
            self.size *= 2
        self.trees: dict[str, list[float]] | None = None
        # Positions whose free space or openness changed since the trees last saw them.
        self.dirty: set[int] = set()
        self._position: dict[str, int] | None = None

    def position(self, name: str) -> int:
        """Where destination `name` is in `slots` (-1: not there)."""
        if self._position is None:
            self._position = {slot.node.name: index for index, slot in enumerate(self.slots)}
        return self._position.get(name, -1)

    def first_from(self, start: int, need: dict[str, int]) -> int:
        """The first position at or after `start` that is open and has room for `need`
        (`len(slots)` if none): what a plain scan from `start` would find."""
        end = len(self.slots)
        probed = min(start + _PROBE, end)
        for index in range(start, probed):
            slot = self.slots[index]
            if slot.open and _fits(need, slot.free):
                return index
        if probed == end:
            return end
        trees = self._trees()
        checks = []
        for name, amount in need.items():
            if amount > 0:
                tree = trees.get(name)
                if tree is None:
                    # No destination lists it: free is at most 0 everywhere, and stays so.
                    return end
                checks.append((tree, amount))
        found = self._search(1, 0, self.size, probed, checks)
        return end if found < 0 else found

    def _trees(self) -> dict[str, list[float]]:
        size, slots = self.size, self.slots
        if self.trees is None:
            self.dirty.clear()
            self.trees = {}
            for index, slot in enumerate(slots):
                if slot.places is None:
                    slot.places = []
                slot.places.append((self, index))
            for name in {name for slot in slots for name in slot.free}:
                tree = [_CLOSED] * (2 * size)
                for index, slot in enumerate(slots):
                    tree[size + index] = slot.free.get(name, 0) if slot.open else _CLOSED
                for k in range(size - 1, 0, -1):
                    tree[k] = max(tree[2 * k], tree[2 * k + 1])
                self.trees[name] = tree
        for position in self.dirty:
            slot = slots[position]
            leaf = size + position
            for name, tree in self.trees.items():
                value = slot.free.get(name, 0) if slot.open else _CLOSED
                if tree[leaf] == value:
                    continue
                tree[leaf] = value
                k = leaf >> 1
                while k:
                    best = max(tree[2 * k], tree[2 * k + 1])
                    if tree[k] == best:
                        break
                    tree[k] = best
                    k >>= 1
        self.dirty.clear()
        return self.trees

    def _search(
        self, k: int, low: int, high: int, start: int, checks: list[tuple[list[float], int]]
    ) -> int:
        # Tree node k covers positions [low, high). Every request is positive (a pod slot at
        # least), so a closed destination never passes and a passing leaf is open with room.
        if high <= start:
            return -1
        for tree, amount in checks:
            if tree[k] < amount:
                return -1
        if k >= self.size:
            return low
        middle = (low + high) // 2
        found = self._search(2 * k, low, middle, start, checks)
        return found if found >= 0 else self._search(2 * k + 1, middle, high, start, checks)


class _Shape:
    """The search state of one pod shape (`NodePod.fit_key`) over its placement's destinations.

    Invariant: a destination before `start` that is not in `maybe` is closed or has no room
    for the shape. Space only shrinks while attempts succeed, so what was full stays full;
    a failed attempt that gives space back to a destination puts it into `maybe`.
    """

    __slots__ = ("admitting", "maybe", "start")

    def __init__(self, admitting: _Admitting) -> None:
        self.admitting = admitting
        self.start = 0
        # A heap of positions before `start`, so the first of them is tried first.
        self.maybe: list[int] = []


class _Attempt:
    """What one node's move changed, to undo it if a pod does not fit: the space taken, and
    per shape its `start` before the move and the positions taken out of its `maybe`."""

    __slots__ = ("placed", "shapes")

    def __init__(self) -> None:
        self.placed: list[tuple[_Destination, dict[str, int]]] = []
        self.shapes: dict[str, tuple[int, list[int]]] = {}


class Destinations:
    """The nodes that stay, in the order moved pods try them."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self._all = [_Destination(node, order) for order, node in enumerate(nodes)]
        self._by_name = {slot.node.name: slot for slot in self._all}
        # Labels and taints never change, so neither do the destinations of a placement.
        self._admitting: dict[str, _Admitting] = {}
        self._shapes: dict[str, _Shape] = {}
        # (label, value) -> destinations carrying it, built when a placement names labels.
        self._labelled: dict[tuple[str, str], list[_Destination]] | None = None
        # Shapes no node has room for, not even the node they came from: never will.
        self._never: set[str] = set()
        self.receivers: dict[str, str] = {}

    def close(self, name: str) -> None:
        """`name` is leaving (chosen for removal): it takes no pods from now on."""
        slot = self._by_name.get(name)
        if slot is not None:
            slot.open = False
            slot.changed()

    def reopen(self, name: str) -> None:
        """`name` stays after all (its own pods did not fit elsewhere)."""
        slot = self._by_name.get(name)
        if slot is not None:
            slot.open = True
            slot.changed()

    def move(self, pods: Sequence[NodePod], *, source: str) -> str:
        """Place every pod of `source` or none; '' on success, else why the first misfit fails.

        The caller closes `source` first, so its pods cannot land on it.
        """
        attempt = _Attempt()
        # Largest first (first-fit decreasing), ties by uid for a deterministic result.
        order = sorted(
            pods,
            key=lambda pod: (-pod.requests.get("cpu", 0), -pod.requests.get("memory", 0), pod.uid),
        )
        for pod in order:
            need = _need(pod)
            never = pod.fit_key in self._never
            slot = None if never else self._first_fit(pod, need, attempt)
            if slot is None:
                # Said as things are now: which nodes are open changes between moves.
                why = self._misfit(pod, need)
                if not attempt.placed and not self._could_take(source, pod, need):
                    self._never.add(pod.fit_key)
                self._undo(attempt, source=source)
                return f"{pod.label} {why}"
            _take(slot.free, need)
            slot.changed()
            attempt.placed.append((slot, need))
        for slot, _amount in attempt.placed:
            self.receivers.setdefault(slot.node.name, source)
        return ""

    def _first_fit(
        self, pod: NodePod, need: dict[str, int], attempt: _Attempt
    ) -> _Destination | None:
        shape = self._shape(pod)
        slots, maybe = shape.admitting.slots, shape.maybe
        undo = attempt.shapes.get(pod.fit_key)
        if undo is None:
            undo = attempt.shapes[pod.fit_key] = (shape.start, [])
        # Everything in `maybe` comes before `start`: its first entry with room is the answer.
        while maybe:
            slot = slots[maybe[0]]
            if slot.open and _fits(need, slot.free):
                return slot
            undo[1].append(heappop(maybe))
        if shape.start < len(slots):
            slot = slots[shape.start]
            # Where the last pod of the shape went usually has room for the next one too.
            if slot.open and _fits(need, slot.free):
                return slot
            shape.start = shape.admitting.first_from(shape.start + 1, need)
        return slots[shape.start] if shape.start < len(slots) else None

    def _undo(self, attempt: _Attempt, *, source: str) -> None:
        """Give back what a failed move took and tell the shapes it searched where room may be
        again: on the destinations it placed pods on, and on `source` (it reopens)."""
        for slot, need in attempt.placed:
            _give(slot.free, need)
            slot.changed()
        touched = {slot.node.name for slot, _need in attempt.placed}
        touched.add(source)
        for fit_key, (start, taken_out) in attempt.shapes.items():
            shape = self._shapes[fit_key]
            slots, position = shape.admitting.slots, shape.admitting.position
            # Positions passed over or taken out during this move whose node changes back now;
            # every other one is as full (or closed) as when it was passed over.
            for index in taken_out:
                if slots[index].node.name in touched:
                    heappush(shape.maybe, index)
            for name in touched:
                index = position(name)
                if start <= index < shape.start:
                    heappush(shape.maybe, index)

    def _could_take(self, name: str, pod: NodePod, need: dict[str, int]) -> bool:
        slot = self._by_name.get(name)
        return slot is not None and _admits(slot.node, pod) and _fits(need, slot.free)

    def _shape(self, pod: NodePod) -> _Shape:
        shape = self._shapes.get(pod.fit_key)
        if shape is None:
            admitting = self._admitting.get(pod.place_key)
            if admitting is None:
                narrowed = self._narrowed(pod)
                candidates = self._all if narrowed is None else narrowed
                admitting = _Admitting([slot for slot in candidates if _admits(slot.node, pod)])
                self._admitting[pod.place_key] = admitting
            shape = self._shapes[pod.fit_key] = _Shape(admitting)
        return shape

    def _narrowed(self, pod: NodePod) -> list[_Destination] | None:
        """The destinations that carry a label `pod` requires (by nodeSelector, or by an `In`
        in every required affinity term), in destination order; None when it requires none."""
        best: list[_Destination] | None = None
        for pair in pod.node_selector.items():
            found = self._labels().get(pair, [])
            if best is None or len(found) < len(best):
                best = found
        if best is not None:
            return best
        terms = _required_terms(pod.affinity)
        if not terms:
            return None
        chosen: dict[int, _Destination] = {}
        for term in terms:
            ins = [
                expression
                for expression in term.get("matchExpressions") or ()
                if expression.get("operator") == "In"
            ]
            if not ins:
                return None
            narrowest = min(
                (
                    [
                        slot
                        for value in expression.get("values") or ()
                        for slot in self._labels().get((expression.get("key"), value), [])
                    ]
                    for expression in ins
                ),
                key=len,
            )
            chosen.update((slot.order, slot) for slot in narrowest)
        return [chosen[order] for order in sorted(chosen)]

    def _labels(self) -> dict[tuple[str, str], list[_Destination]]:
        if self._labelled is None:
            self._labelled = {}
            for slot in self._all:
                for pair in slot.node.labels.items():
                    self._labelled.setdefault(pair, []).append(slot)
        return self._labelled

    def _misfit(self, pod: NodePod, need: dict[str, int]) -> str:
        # The first few open candidates are enough to name what is short, and keep a decision
        # with thousands of misfits linear.
        admitting = list(
            islice((slot for slot in self._shape(pod).admitting.slots if slot.open), _EXPLAIN_FROM)
        )
        if not admitting:
            return (
                "matches no other Ready schedulable node "
                "(nodeSelector, required affinity or taints)"
            )
        # `insufficient` per slot, without sorting 64 lists: every misfit pays for this.
        wanted = [(name, amount) for name, amount in need.items() if amount > 0]
        short = {
            name for slot in admitting for name, amount in wanted if amount > slot.free.get(name, 0)
        }
        return f"finds no node with enough {', '.join(sorted(short))} free"


def _required_terms(affinity: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    node_affinity = (affinity or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return list(required.get("nodeSelectorTerms") or ())


def _admits(node: Node, pod: NodePod) -> bool:
    return (
        node_selector_matches(pod.node_selector, node.labels)
        and required_affinity_matches(pod.affinity, node.labels)
        and first_untolerated_taint(pod.tolerations, node.taints) is None
    )


def _fits(need: dict[str, int], free: dict[str, int]) -> bool:
    # `not insufficient(need, free)` without building a sorted list, nor a generator: the
    # search's innermost test.
    get = free.get
    for name, amount in need.items():
        if amount > get(name, 0) and amount > 0:
            break
    else:
        return True
    return False


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

"""Packing groups of identical pods onto a pool's nodes, by arithmetic per group, never per pod.

A pool's nodes are kept as classes of identical free space with a count ("7 nodes
with 900m cpu and 10Gi free"), so placing n pods of one shape is a few integer
divisions per class: first fit over the classes in order (upcoming nodes first,
then nodes this decision adds), then `new_nodes` more nodes of the template.
For identical pods this uses ceil(n / pods-per-node) nodes, the optimum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import compress, count, repeat
from operator import le


def pods_per_node(free: Mapping[str, int], requests: Mapping[str, int]) -> int:
    """How many pods with `requests` fit into `free`: min over requested resources of free // request.

    `requests` must include the pod's slot (`pods`), so the result is finite.
    """
    fit: int | None = None
    for name, amount in requests.items():
        if amount > 0:
            room = free.get(name, 0) // amount
            if fit is None or room < fit:
                fit = room
                if fit == 0:
                    return 0
    return 0 if fit is None else fit


def minus(free: Mapping[str, int], requests: Mapping[str, int], times: int) -> dict[str, int]:
    """Free space left after `times` pods with `requests` are placed."""
    left = dict(free)
    for name, amount in requests.items():
        if amount:
            left[name] = left.get(name, 0) - amount * times
    return left


class NodeClass:
    """`count` nodes of one pool with identical `free` space; `fresh` if this decision adds them.

    Working state of one planning pass, not a value: a plain slotted class, cheap to
    create by the thousand.
    """

    __slots__ = ("count", "free", "fresh")

    def __init__(self, free: dict[str, int], count: int, *, fresh: bool) -> None:
        self.free = free
        self.count = count
        self.fresh = fresh


class Placed:
    """`pods` pods went onto nodes already asked for (`fresh` False) or added now."""

    __slots__ = ("fresh", "pods")

    def __init__(self, pods: int, fresh: bool) -> None:
        self.pods = pods
        self.fresh = fresh


def fill(
    classes: list[NodeClass],
    requests: Mapping[str, int],
    pods: int,
    *,
    smallest: Mapping[str, int],
    fresh: bool | None = None,
    remnant: Mapping[str, int] | None = None,
    columns: tuple[list[int], list[int]] | None = None,
) -> tuple[list[Placed], int]:
    """First fit of `pods` identical pods over `classes` (mutated in place), in order; only over
    the upcoming (`fresh` False) or only the added (True) nodes when `fresh` says which.

    Returns how many landed on upcoming vs added nodes, in placement order (the sum may
    be below `pods` when the nodes are full), and on how many nodes of the class whose `free`
    is the `remnant` object (kept, split off untouched, by identity) pods landed. Nodes left
    unable to hold even `smallest` (a lower bound of every pod still to come) are dropped from
    `classes`: no later pod could use them, and scanning them is what would make packing
    quadratic.

    `columns`, when given, is each class's free cpu and free memory, in step with `classes`
    (`free_columns`; kept so): the scan then skips the classes short of either without a
    Python step per class.
    """
    placed: list[Placed] = []
    on_remnant = 0
    # Most nodes left in a long list are out of cpu: they are rejected before the full check
    # (the scan over classes is what a request with thousands of shapes spends on).
    cpu = requests.get("cpu", 0)
    # Positions of the classes to look at, as they were before this fill; `shift` maps them to
    # where they are after the splices so far. With `columns`, only those with the cpu and the
    # memory free, found by iterators that run in C.
    candidates: Iterable[int]
    if columns is None:
        candidates = range(len(classes))
    else:
        cpus, memories = columns
        memory = requests.get("memory", 0)
        # Few classes have the cpu (the groups come largest first): test memory on those only.
        # operator.le over repeat() runs faster than the bound method cpu.__le__.
        enough_cpu = compress(count(), map(le, repeat(cpu), cpus))
        candidates = [i for i in enough_cpu if memories[i] >= memory]
    shift = 0
    for position in candidates:
        if pods <= 0:
            break
        i = position + shift
        node = classes[i]
        skipped = fresh is not None and node.fresh != fresh
        if columns is None:
            skipped = skipped or node.free.get("cpu", 0) < cpu
        per_node = 0 if skipped else pods_per_node(node.free, requests)
        if per_node == 0:
            continue
        take = min(pods, per_node * node.count)
        full, partial = divmod(take, per_node)
        replacement = []
        if full:
            used = minus(node.free, requests, per_node)
            if pods_per_node(used, smallest):
                replacement.append(NodeClass(used, full, fresh=node.fresh))
        if partial:
            used = minus(node.free, requests, partial)
            if pods_per_node(used, smallest):
                replacement.append(NodeClass(used, 1, fresh=node.fresh))
        untouched = node.count - full - (1 if partial else 0)
        if untouched:
            replacement.append(NodeClass(node.free, untouched, fresh=node.fresh))
        classes[i : i + 1] = replacement
        if columns is not None:
            columns[0][i : i + 1] = [c.free.get("cpu", 0) for c in replacement]
            columns[1][i : i + 1] = [c.free.get("memory", 0) for c in replacement]
        shift += len(replacement) - 1
        pods -= take
        if node.free is remnant:
            on_remnant += full + (1 if partial else 0)
        if placed and placed[-1].fresh == node.fresh:
            placed[-1] = Placed(placed[-1].pods + take, node.fresh)
        else:
            placed.append(Placed(take, node.fresh))
    return placed, on_remnant


def smallest_pod(requests: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Per resource, the least any of `requests` asks (0 where one of them asks nothing)."""
    vectors = list(requests)
    names = set().union(*vectors) if vectors else set()
    return {name: min(v.get(name, 0) for v in vectors) for name in sorted(names)}


def nodes_needed(pods: int, per_node: int) -> int:
    """ceil(pods / per_node) for per_node > 0."""
    return -(-pods // per_node)


def free_columns(classes: list[NodeClass]) -> tuple[list[int], list[int]]:
    """Each class's free cpu and free memory: the `columns` `fill` keeps in step with `classes`."""
    return [c.free.get("cpu", 0) for c in classes], [c.free.get("memory", 0) for c in classes]


def unused_fresh_nodes(classes: list[NodeClass], allocatable: Mapping[str, int]) -> int:
    """Added nodes no pod landed on (their free space is still the whole template)."""
    return sum(c.count for c in classes if c.fresh and c.free == allocatable)

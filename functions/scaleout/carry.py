"""What one pass of the plan's fixed point hands to the next, so that passes share their prefix.

A pass after the first starts from the state the last pass's reply creates: the same groups
(when no pod went to ECI), the same nodes on the way, and per pool `added[pool]` nodes that
earlier passes added. Only those counts change from one pass to the next, and with them the
node budget left. Until the first group whose work reads one of those numbers in a way the
change alters, the next pass does exactly what the last one did, pod for pod. So a pass keeps a
`Trail`: before each group, where its outcome lists stood and the budget left; per pool a group
changes, that pool's state before the change; and what the group read, normalised so that it
holds in any pass. The next pass finds the first group that would read something else
(`Trail.first_change`), rebuilds the last pass's state before that group with the new counts,
and runs only the groups from there on (`functions.scaleout.plan`). At 2,000 shapes the passes
after the second start after 80 % of the groups.

The nodes earlier passes added form, per pool, one class of untouched nodes: its *remnant*, the
part no pod has landed on yet (`consumed`: how many of them pods took so far; the remnant is
`added[pool] - consumed`). With d the change of `added[pool]`, what a group read differs when:
- pods landed on `used` nodes of a remnant of r: min(r, r + d) - used <= 0 (one of the two runs
  out). A fill that reached the end of a pool's nodes with pods left, and no remnant, read r = 0;
- whether an added node has room, when only the remnant decides: (r > 0) != (r + d > 0);
- whether the pool reached its max size (for reasons), or the budget ran out;
- how many nodes `_add_nodes` may add: min(nodes needed, budget left, room left in the pool).
"""

from __future__ import annotations

from functions.scaleout.packing import NodeClass

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from functions.scaleout.model import Pool

    # (classes, nodes this pass added, reasons or None, remnant nodes consumed, `added` then)
    Saved = tuple[list[NodeClass], int, dict[str, None] | None, int, int]

# Kinds of what a group read about one pool.
_REMNANT = 0
_ROOM = 1
_FULL = 2
# Kinds of what a group read about the budget.
_BUDGET = 0
_ADD = 1


class Trail:
    """What the groups of a pass read and changed, by group position (see the module docstring).

    Working state of one `make_plan`, not a value. A pass that resumes another keeps the trail
    of the groups before its start (they did the same, read the same) and overwrites the rest.
    """

    __slots__ = (
        "_added",
        "_by_pool",
        "_general",
        "_group",
        "_keeping",
        "_kept_to",
        "_marks",
        "_nodes_added",
        "_saved",
        "_sum",
        "_zero",
        "settled",
    )

    def __init__(self, groups: int) -> None:
        # Before each group: (pool_pods length, unplaced length, budget + sum(added)).
        self._marks: list[tuple[int, int, int]] = [(0, 0, 0)] * groups
        # Per group, each pool it changed, as it was before (the first change in the group).
        self._saved: list[dict[str, Saved]] = [{} for _ in range(groups)]
        # Per pool: (group, kind, a, b), in group order.
        self._by_pool: dict[str, list[tuple[int, int, int, int]]] = {}
        # (group, kind, a, b, c, pool id), in group order: reads of the budget.
        self._general: list[tuple[int, int, int, int, int, str]] = []
        # Pool -> the group of its first record that differs for any change of the pool's
        # count (a remnant running out, or none there): later records of the pool add nothing.
        self.settled: dict[str, int] = {}
        self._group = 0
        self._added: Mapping[str, int] = {}
        self._sum = 0
        # A pass that starts with no added nodes (the first) keeps pools' states only until
        # it adds nodes: the next pass resumes no later than that (see `stopping`).
        self._zero = False
        self._nodes_added = False
        self._keeping = True
        # The last position whose kept states are complete.
        self._kept_to = groups

    def start_pass(self, added: Mapping[str, int], first: int) -> None:
        """A pass with these `added` counts runs the groups from position `first` on."""
        self._added = added
        self._sum = sum(added.values())
        self._zero = not self._sum
        self._nodes_added = False
        self._keeping = True
        self._kept_to = len(self._marks)
        for records in self._by_pool.values():
            while records and records[-1][0] >= first:
                records.pop()
        general = self._general
        while general and general[-1][0] >= first:
            general.pop()
        for pool_id, group in list(self.settled.items()):
            if group >= first:
                del self.settled[pool_id]

    def begin(self, position: int, *, pool_pods: int, unplaced: int, budget: int) -> None:
        self._group = position
        self._marks[position] = (pool_pods, unplaced, budget + self._sum)
        self._saved[position] = {}

    @property
    def stopping(self) -> bool:
        """Whether to keep every pool's state before this group and no more after it. In a pass
        with no added nodes, the first group that adds nodes to a pool reached the end of that
        pool's nodes with pods left (a record): the next pass, with nodes added there, resumes
        at that group or before, so states kept after it would never be read."""
        return self._zero and self._nodes_added and self._keeping

    def stop(self) -> None:
        """Every pool's state before the current group is kept: keep no more in this pass."""
        self._keeping = False
        self._kept_to = self._group

    def nodes_added(self) -> None:
        """The current group added nodes to a pool."""
        self._nodes_added = True

    def touch(
        self,
        pool_id: str,
        *,
        classes: list[NodeClass],
        added_now: int,
        reasons: dict[str, None] | None,
        consumed: int,
    ) -> None:
        """The group is about to change the pool's state: keep it as it was before the group."""
        if not self._keeping:
            return
        saved = self._saved[self._group]
        if pool_id not in saved:
            kept = None if reasons is None else dict(reasons)
            saved[pool_id] = (list(classes), added_now, kept, consumed, self._added[pool_id])

    def remnant(self, pool_id: str, *, consumed: int, used: int) -> None:
        """Pods landed on `used` nodes of the remnant after `consumed` of its nodes were taken."""
        if pool_id in self.settled:
            return
        self._by_pool.setdefault(pool_id, []).append((self._group, _REMNANT, consumed, used))
        if self._added[pool_id] - consumed - used <= 0:
            self.settled[pool_id] = self._group

    def room(self, pool_id: str, *, consumed: int) -> None:
        """Whether an added node of the pool has room was the remnant's count alone."""
        if pool_id in self.settled:
            return
        self._by_pool.setdefault(pool_id, []).append((self._group, _ROOM, consumed, 0))

    def full(self, pool: Pool, *, added_now: int) -> None:
        """Whether the pool reached its max size was read (`added_now`: nodes this pass added)."""
        if pool.id in self.settled:
            return
        over = pool.desired + added_now - pool.max_size
        self._by_pool.setdefault(pool.id, []).append((self._group, _FULL, over, 0))

    def budget(self, budget: int) -> None:
        """Whether the budget ran out was read."""
        self._general.append((self._group, _BUDGET, budget + self._sum, 0, 0, ""))

    def add(self, pool: Pool, *, needed: int, added_now: int, budget: int) -> None:
        """`_add_nodes` took min(needed, budget left, room left in the pool) nodes."""
        room = pool.max_size - pool.desired - added_now
        record = (self._group, _ADD, needed, budget + self._sum, room, pool.id)
        self._general.append(record)

    def first_change(self, before: Mapping[str, int], after: Mapping[str, int]) -> int:
        """The first group position at which a pass with `after` counts would read something
        other than this pass (with `before`) did; the number of groups when none would."""
        first = len(self._marks)
        for pool_id, records in self._by_pool.items():
            was = before[pool_id]
            change = after[pool_id] - was
            if not change:
                continue
            for group, kind, a, b in records:
                if group >= first:
                    break
                if kind == _REMNANT:
                    left = was - a
                    differs = min(left, left + change) - b <= 0
                elif kind == _ROOM:
                    left = was - a
                    differs = (left > 0) != (left + change > 0)
                else:
                    differs = (a + was >= 0) != (a + was + change >= 0)
                if differs:
                    first = group
                    break
        then, now = sum(before.values()), sum(after.values())
        for group, kind, a, b, c, pool_id in self._general:
            if group >= first:
                break
            if kind == _BUDGET:
                differs = (a - then <= 0) != (a - now <= 0)
            else:
                took = max(0, min(a, b - then, c - before[pool_id]))
                differs = took != max(0, min(a, b - now, c - after[pool_id]))
            if differs:
                first = group
                break
        return first

    def state_before(
        self, first: int, *, final: Mapping[str, Saved]
    ) -> tuple[dict[str, Saved], tuple[int, int, int] | None] | None:
        """Each pool's state before group `first` (the saved state of the first group from
        `first` on that changed it, else `final`), and the marks before that group (None
        when `first` is past the last group). None when the pass kept no states there."""
        if first > self._kept_to:
            return None
        state = dict(final)
        for position in range(len(self._saved) - 1, first - 1, -1):
            state.update(self._saved[position])
        marks = self._marks[first] if first < len(self._marks) else None
        return state, marks

    @property
    def added_sum(self) -> int:
        return self._sum


def with_remnant(
    classes: list[NodeClass], allocatable: Mapping[str, int], *, was: int, count: int
) -> tuple[list[NodeClass], dict[str, int]] | None:
    """`classes` with its remnant (the one added class still untouched: fresh, free space the
    whole template; `was` nodes) holding `count` nodes, under a new identity; the class goes
    where it stood or, when there was none, at the end (no pod reached the end of the pool's
    nodes before this point, or the pass would not resume here). None when `classes` does not
    hold the `was` nodes it should (the caller then runs the pass in full)."""
    found = [i for i, c in enumerate(classes) if c.fresh and c.free == allocatable]
    if len(found) > 1 or (found and classes[found[0]].count != was) or (not found and was):
        return None
    if count < 0:
        return None
    free = dict(allocatable)
    out = list(classes)
    if found:
        if count:
            out[found[0]] = NodeClass(free, count, fresh=True)
        else:
            del out[found[0]]
    elif count:
        out.append(NodeClass(free, count, fresh=True))
    return out, free

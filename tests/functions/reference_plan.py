"""The planner as it was before the shapes × pools speed-up (plan.py and packing.py at 21040e5),
kept verbatim as the reference the fast planner must reproduce plan for plan
(tests/functions/test_plan_matches_reference.py), plus one rule added since: a pool ACK's
autoscaler owns (a companion pool) does not carry the nodes a pass plans there to the next pass,
and the plan reports that last pass's as `ack_added`. Not imported by the decision core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from functions.scaleout.explain import placement_reason
from functions.scaleout.feasibility import Feasibility, PoolFit, feasibility
from functions.scaleout.model import PodGroup, Pool, Request
from functions.scaleout.strategy import Option, rank

# --- packing.py at 21040e5 ---


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
) -> list[Placed]:
    """First fit of `pods` identical pods over `classes` (mutated in place), in order; only over
    the upcoming (`fresh` False) or only the added (True) nodes when `fresh` says which.

    Returns how many landed on upcoming vs added nodes, in placement order; the sum may
    be below `pods` when the nodes are full. Nodes left unable to hold even `smallest`
    (a lower bound of every pod still to come) are dropped from `classes`: no later
    pod could use them, and scanning them is what would make packing quadratic.
    """
    placed: list[Placed] = []
    # Most nodes left in a long list are out of cpu: one comparison rejects them before the
    # full check (the scan over classes is what a request with thousands of shapes spends on).
    cpu = requests.get("cpu", 0)
    i = 0
    while i < len(classes) and pods > 0:
        node = classes[i]
        skipped = (fresh is not None and node.fresh != fresh) or node.free.get("cpu", 0) < cpu
        per_node = 0 if skipped else pods_per_node(node.free, requests)
        if per_node == 0:
            i += 1
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
        i += len(replacement)
        pods -= take
        if placed and placed[-1].fresh == node.fresh:
            placed[-1] = Placed(placed[-1].pods + take, node.fresh)
        else:
            placed.append(Placed(take, node.fresh))
    return placed


def smallest_pod(requests: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Per resource, the least any of `requests` asks (0 where one of them asks nothing)."""
    vectors = list(requests)
    names = set().union(*vectors) if vectors else set()
    return {name: min(v.get(name, 0) for v in vectors) for name in sorted(names)}


def nodes_needed(pods: int, per_node: int) -> int:
    """ceil(pods / per_node) for per_node > 0."""
    return -(-pods // per_node)


def unused_fresh_nodes(classes: list[NodeClass], allocatable: Mapping[str, int]) -> int:
    """Added nodes no pod landed on (their free space is still the whole template)."""
    return sum(c.count for c in classes if c.fresh and c.free == allocatable)


# --- plan.py at 21040e5 ---

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from functions.deadline import Deadline

# Strategies whose ranking puts ECI ahead of a pool: there, ECI also comes before the spare
# room of nodes this decision adds to that pool for other groups (ACK's ResourcePolicy units are
# tried in order, too). cost and pool-first fill that room first: it is already paid for.
ECI_BEFORE_SPARE_ROOM = frozenset({"eci-first", "latency"})

# Every pass that does not end the loop adds a node or an ECI pod, so the loop ends on
# its own; the cap only bounds a pathological ping-pong between rankings.
MAX_PASSES = 12


class Plan:
    """Where each pod goes; pods are positions in the request's `pods`."""

    # A plain slotted class, not a dataclass: see functions.scaleout.model.
    __slots__ = (
        "ack_added",
        "added",
        "deferred",
        "eci_pods",
        "eci_reasons",
        "pool_pods",
        "pool_reasons",
        "unplaceable",
    )

    def __init__(
        self,
        added: dict[str, int],
        pool_pods: tuple[tuple[str, bool, list[int]], ...],
        eci_pods: tuple[int, ...],
        unplaceable: tuple[tuple[str, list[int]], ...],
        pool_reasons: dict[str, tuple[str, ...]],
        eci_reasons: tuple[str, ...],
        deferred: tuple[int, ...] = (),
        ack_added: dict[str, int] | None = None,
    ) -> None:
        self.added = added
        self.ack_added = ack_added or {}
        # Runs of positions (ascending within a run): (pool id, on nodes this decision adds, run)
        self.pool_pods = pool_pods
        self.eci_pods = eci_pods
        # (reason, run of positions)
        self.unplaceable = unplaceable
        # Why pods went onto each pool's added nodes, and onto ECI
        # (`functions.scaleout.explain`), in planning order without repeats.
        self.pool_reasons = pool_reasons
        self.eci_reasons = eci_reasons
        # Positions the time limit left unplanned, ascending.
        self.deferred = deferred


class _Pass:
    """One pass's outcome (working state, not a value)."""

    __slots__ = (
        "added",
        "budget",
        "classes",
        "cut",
        "eci_pods",
        "eci_reasons",
        "eci_slots",
        "pool_pods",
        "reasons",
        "unplaced",
    )

    def __init__(
        self,
        classes: dict[str, list[NodeClass]],
        added: dict[str, int],
        *,
        budget: int,
        eci_slots: int | None,
    ) -> None:
        self.classes = classes
        self.added = added
        # New nodes this pass may still add, and ECI pods it may still place (None: no cap).
        self.budget = budget
        self.eci_slots = eci_slots
        self.eci_pods: list[int] = []
        # Runs of positions rather than one tuple per pod: a pass costs per group, not per pod.
        self.pool_pods: list[tuple[str, bool, list[int]]] = []
        self.unplaced: list[tuple[str, list[int]]] = []
        # Ordered sets (dict keys): one entry per distinct reason, computed per group.
        self.reasons: dict[str, dict[str, None]] = {}
        self.eci_reasons: dict[str, None] = {}
        # Positions of the groups the time limit stopped this pass before.
        self.cut: list[int] = []


def make_plan(request: Request, *, deadline: Deadline | None = None) -> Plan:
    """Plan the whole request (see the module docstring)."""
    pools = {pool.id: pool for pool in request.pools}
    groups = sorted(request.groups, key=_largest_first)
    fits: list[Feasibility] = []
    for group in groups:
        if deadline is not None and deadline.passed():
            break
        fits.append(feasibility(group.shape, pools=request.pools, eci=request.eci))
    deferred = [i for group in groups[len(fits) :] for i in group.indices]
    groups = groups[: len(fits)]
    placements = [group.shape.placement for group in groups]
    smallest = smallest_pod(fit.requests for fit in fits)
    members = [list(group.indices) for group in groups]
    added = {pool.id: 0 for pool in request.pools}
    eci_pods: list[int] = []
    eci_reasons: dict[str, None] = {}
    eci_slots = request.eci.free_slots
    budget = request.policy.new_node_budget
    result = None
    for _ in range(MAX_PASSES):
        attempt = _one_pass(
            request,
            pools=pools,
            fits=fits,
            members=members,
            placements=placements,
            added=added,
            eci_slots=eci_slots,
            budget=budget - sum(added.values()),
            smallest=smallest,
            deadline=deadline,
        )
        if attempt.cut and result is not None:
            # Out of time in a later pass: the last complete pass is the plan.
            break
        result = attempt
        deferred.extend(result.cut)
        # Nodes added in earlier passes that no pod uses now are given back.
        unused = {
            pid: unused_fresh_nodes(result.classes[pid], pools[pid].allocatable) for pid in pools
        }
        # Companion pools: the fed-back request has them unchanged, so no pass carries their
        # nodes (and none is left unused: a pass adds only nodes its pods land on).
        for pid, count in result.added.items():
            if not pools[pid].companion:
                added[pid] += count
        for pid, count in unused.items():
            added[pid] -= count
        grew = any(n for pid, n in result.added.items() if not pools[pid].companion)
        if not result.eci_pods and not grew and not any(unused.values()):
            break
        if result.eci_pods:
            # These pods run on ECI after the reply is applied: the next pass no longer sees them.
            gone = set(result.eci_pods)
            eci_pods.extend(result.eci_pods)
            eci_reasons.update(result.eci_reasons)
            members = [[i for i in m if i not in gone] for m in members]
            if eci_slots is not None:
                eci_slots -= len(result.eci_pods)
        if result.cut:
            break
    assert result is not None
    return Plan(
        added={pid: n for pid, n in sorted(added.items()) if n > 0},
        ack_added={
            pid: n for pid, n in sorted(result.added.items()) if n > 0 and pools[pid].companion
        },
        pool_pods=tuple(result.pool_pods),
        eci_pods=tuple(sorted(eci_pods)),
        unplaceable=tuple(result.unplaced),
        pool_reasons={pid: tuple(reasons) for pid, reasons in result.reasons.items()},
        eci_reasons=tuple(eci_reasons),
        deferred=tuple(sorted(deferred)),
    )


def _one_pass(
    request: Request,
    *,
    pools: dict[str, Pool],
    fits: list[Feasibility],
    members: list[list[int]],
    placements: list[str],
    added: dict[str, int],
    eci_slots: int | None,
    budget: int,
    smallest: Mapping[str, int],
    deadline: Deadline | None,
) -> _Pass:
    outcome = _Pass(
        _asked_for(request, added), {pid: 0 for pid in pools}, budget=budget, eci_slots=eci_slots
    )
    shared = _shared_pools(fits, members)
    for fit, indices, placement in zip(fits, members, placements, strict=True):
        if not indices:
            continue
        if outcome.cut or (deadline is not None and deadline.passed()):
            outcome.cut.extend(indices)
            continue
        if fit.no_fit_reason:
            outcome.unplaced.append((fit.no_fit_reason, indices))
            continue
        group = _Group(
            fit=fit,
            indices=indices,
            placement=placement,
            options=rank(
                fit, pods=len(indices), policy=request.policy, eci=request.eci, shared=shared
            ),
        )
        # Capacity already asked for comes first: it costs nothing more. Under eci-first and
        # latency, the room on nodes this decision adds to pools ranked after ECI waits for ECI.
        eci_rank = _eci_rank(group, request=request, outcome=outcome)
        pos = _fill_asked_for(
            group,
            request=request,
            added=added,
            outcome=outcome,
            smallest=smallest,
            eci_rank=eci_rank,
        )
        pos = _ask_for_more(
            group, pos, request=request, added=added, outcome=outcome, smallest=smallest
        )
        if pos < len(indices):
            reason = _capacity_reason(
                group.options,
                request=request,
                pools=pools,
                added=added,
                outcome=outcome,
                budget=outcome.budget,
            )
            outcome.unplaced.append((reason, indices[pos:]))
    return outcome


def _shared_pools(fits: list[Feasibility], members: list[list[int]]) -> frozenset[str]:
    """Pools that two or more groups with pods still to place in this pass can run on: there,
    shapes share new nodes, so a pod is priced by its share of a node (`node_cost_per_pod`).
    Read from the pass's groups only, so that fed back (added nodes upcoming, ECI pods gone)
    the first pass ranks as this plan's last pass did."""
    users: dict[str, int] = {}
    for fit, indices in zip(fits, members, strict=True):
        if indices and not fit.no_fit_reason:
            for pool_fit in fit.pools:
                users[pool_fit.pool.id] = users.get(pool_fit.pool.id, 0) + 1
    return frozenset(pid for pid, count in users.items() if count > 1)


class _Group:
    """One pod group within a pass: its feasibility, its pods and its ranked options."""

    # A plain class, not a dataclass: generating one costs cold-start time for no gain here.
    __slots__ = ("fit", "indices", "options", "placement")

    def __init__(
        self, *, fit: Feasibility, indices: list[int], placement: str, options: list[Option]
    ) -> None:
        self.fit = fit
        self.indices = indices
        self.placement = placement
        self.options = options


def _asked_for(request: Request, added: dict[str, int]) -> dict[str, list[NodeClass]]:
    """Per pool, the nodes already asked for: upcoming ones, then those earlier passes added."""
    classes: dict[str, list[NodeClass]] = {}
    for pool in request.pools:
        start = []
        if pool.upcoming:
            start.append(NodeClass(dict(pool.allocatable), pool.upcoming, fresh=False))
        if added[pool.id]:
            start.append(NodeClass(dict(pool.allocatable), added[pool.id], fresh=True))
        classes[pool.id] = start
    return classes


def _eci_rank(group: _Group, *, request: Request, outcome: _Pass) -> int:
    """Under a strategy that puts ECI before the room on nodes this decision adds to pools
    ranked after it: ECI's rank among the group's options while ECI has room. Otherwise past
    the last option (no room waits for ECI)."""
    if request.policy.strategy in ECI_BEFORE_SPARE_ROOM and outcome.eci_slots != 0:
        for chosen, option in enumerate(group.options):
            if option.fit is None:
                return chosen
    return len(group.options)


def _fill_asked_for(
    group: _Group,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    smallest: Mapping[str, int],
    eci_rank: int,
) -> int:
    """Put the group's pods on nodes already asked for, in ranked order; how many went there.

    Upcoming nodes (asked for by earlier decisions: booting, paid for) are used as they rank.
    On the first pool ranked after `eci_rank` whose nodes added by this decision have room,
    ECI takes what it can before that room. Fed back, those nodes are upcoming ones and ECI is
    full, so the same walk puts as many pods of the group on each pool: a fixed point."""
    pos = 0
    eci_taken = False

    def onto(chosen: int, fresh: bool | None = None) -> int:
        return _fill_pool(
            group,
            chosen,
            pos,
            request=request,
            added=added,
            outcome=outcome,
            smallest=smallest,
            fresh=fresh,
        )

    for chosen, option in enumerate(group.options):
        if option.fit is None or pos == len(group.indices):
            continue
        if chosen < eci_rank or eci_taken:
            pos = onto(chosen)
            continue
        pos = onto(chosen, fresh=False)
        if pos < len(group.indices) and _room_on_added(outcome.classes[option.fit.pool.id], group):
            pos = _take_eci(group, eci_rank, pos, request=request, added=added, outcome=outcome)
            eci_taken = True
            pos = onto(chosen, fresh=True)
    return pos


def _room_on_added(classes: list[NodeClass], group: _Group) -> bool:
    """Whether a node this decision adds (in `classes`) has room for one of the group's pods."""
    return any(c.fresh and pods_per_node(c.free, group.fit.requests) for c in classes)


def _fill_pool(
    group: _Group,
    chosen: int,
    pos: int,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    smallest: Mapping[str, int],
    fresh: bool | None = None,
) -> int:
    """The group's pods from `pos` on, onto the asked-for nodes of its `chosen` option's pool
    (only the upcoming ones or only the added ones when `fresh` says which)."""
    indices = group.indices
    if pos == len(indices):
        return pos
    fit = group.options[chosen].fit
    assert fit is not None
    pool_id = fit.pool.id
    for placed in fill(
        outcome.classes[pool_id],
        group.fit.requests,
        len(indices) - pos,
        smallest=smallest,
        fresh=fresh,
    ):
        outcome.pool_pods.append((pool_id, placed.fresh, indices[pos : pos + placed.pods]))
        pos += placed.pods
        if placed.fresh:
            reason = _group_why(group, chosen, request=request, added=added, outcome=outcome)
            outcome.reasons.setdefault(pool_id, {})[reason] = None
    return pos


def _ask_for_more(
    group: _Group,
    pos: int,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    smallest: Mapping[str, int],
) -> int:
    """Ask for new capacity, in ranked order, for the pods from `pos` on; where they end."""
    for chosen, option in enumerate(group.options):
        if pos == len(group.indices):
            break
        if option.fit is None:
            pos = _take_eci(group, chosen, pos, request=request, added=added, outcome=outcome)
        else:
            pos = _add_nodes(
                group,
                chosen,
                pos,
                option.fit,
                request=request,
                added=added,
                outcome=outcome,
                smallest=smallest,
            )
    return pos


def _take_eci(
    group: _Group,
    chosen: int,
    pos: int,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
) -> int:
    left = len(group.indices) - pos
    take = left if outcome.eci_slots is None else min(left, outcome.eci_slots)
    if not take:
        return pos
    reason = _group_why(group, chosen, request=request, added=added, outcome=outcome)
    outcome.eci_reasons[reason] = None
    outcome.eci_pods.extend(group.indices[pos : pos + take])
    if outcome.eci_slots is not None:
        outcome.eci_slots -= take
    return pos + take


def _add_nodes(
    group: _Group,
    chosen: int,
    pos: int,
    fit: PoolFit,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    smallest: Mapping[str, int],
) -> int:
    left = len(group.indices) - pos
    pool = fit.pool
    room = min(
        outcome.budget, pool.max_size - pool.desired - added[pool.id] - outcome.added[pool.id]
    )
    count = min(nodes_needed(left, fit.per_node), room)
    if count <= 0:
        return pos
    reason = _group_why(group, chosen, request=request, added=added, outcome=outcome)
    outcome.reasons.setdefault(pool.id, {})[reason] = None
    fresh = [NodeClass(dict(pool.allocatable), count, fresh=True)]
    for placed in fill(fresh, group.fit.requests, left, smallest=smallest):
        outcome.pool_pods.append((pool.id, True, group.indices[pos : pos + placed.pods]))
        pos += placed.pods
    outcome.classes[pool.id].extend(fresh)
    outcome.added[pool.id] += count
    outcome.budget -= count
    return pos


def _group_why(
    group: _Group, chosen: int, *, request: Request, added: dict[str, int], outcome: _Pass
) -> str:
    return _why(
        group.options,
        chosen,
        request=request,
        placement=group.placement,
        added=added,
        outcome=outcome,
        budget=outcome.budget,
        eci_slots=outcome.eci_slots,
    )


def _why(
    options: list[Option],
    chosen: int,
    *,
    request: Request,
    placement: str,
    added: dict[str, int],
    outcome: _Pass,
    budget: int,
    eci_slots: int | None,
) -> str:
    full = [
        _full_text(
            option,
            request=request,
            added=added,
            outcome=outcome,
            budget=budget,
            eci_slots=eci_slots,
        )
        for option in options[:chosen]
    ]
    return placement_reason(options, chosen, policy=request.policy, placement=placement, full=full)


def _full_text(
    option: Option,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    budget: int,
    eci_slots: int | None,
) -> str:
    # Why a better-ranked option takes no more pods now ("" when it still could).
    if option.fit is None:
        return "ECI at maxPods" if eci_slots == 0 else ""
    pool = option.fit.pool
    if pool.desired + added[pool.id] + outcome.added[pool.id] >= pool.max_size:
        return f"{pool.id} reached max {pool.max_size}"
    if budget <= 0:
        return request.policy.budget_limit
    return ""


def _capacity_reason(
    options: list[Option],
    *,
    request: Request,
    pools: dict[str, Pool],
    added: dict[str, int],
    outcome: _Pass,
    budget: int,
) -> str:
    parts = []
    for option in options:
        if option.fit is None:
            parts.append("ECI at maxPods")
            continue
        pool = pools[option.fit.pool.id]
        if pool.desired + added[pool.id] + outcome.added[pool.id] >= pool.max_size:
            parts.append(f"pool {pool.id} at max size {pool.max_size}")
    if budget <= 0:
        parts.append(request.policy.budget_limit)
    return "no capacity left: " + ", ".join(parts)


def _largest_first(group: PodGroup) -> tuple[int, int, int, str]:
    requests = group.shape.requests
    others = sum(v for k, v in requests.items() if k not in ("cpu", "memory"))
    return (-requests.get("cpu", 0), -requests.get("memory", 0), -others, group.shape.key)

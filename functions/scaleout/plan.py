"""The placement plan: which pods go to upcoming nodes, new pool nodes, ECI, or nowhere.

One pass takes the pod groups largest first (first-fit decreasing). For each group it
fills nodes already asked for — every feasible pool's upcoming nodes and the nodes
this decision added for earlier groups — in the group's ranked order, then asks for
new capacity in that order: new nodes of a pool (within `size.max` and
`policy.maxNewNodesPerDecision`), or ECI slots (`maxPods - runningPods`). Under eci-first
and latency, the room on nodes this decision adds to pools ranked after ECI waits until ECI is
full (docs/decide-contract.md, "Room already asked for, per strategy").

The plan is a fixed point of that pass: after a pass that added nodes or sent pods
to ECI, the pass runs again on the state the reply will create (pools at the new
desired size, ECI pods gone) until a pass adds nothing. The reply is that last
pass, so feeding it back to `decide` asks for nothing new. Added nodes no pod lands
on are given back, so a decision never buys an empty node. A pass after the first does not
start over: up to the first group that would act otherwise, it would repeat the last pass, so
it resumes that pass there (functions.scaleout.carry) — the same plan, for a fraction of the
work when thousands of shapes take several passes.

A pool ACK's autoscaler owns (a companion pool, `Pool.companion`) is ranked and filled like any
pool, but the decision never scales it: the nodes a pass plans there are ACK's to add, and the
pods on them are left for ACK's autoscaler. Fed back, such a pool is unchanged (the agent does
not write it), so a pass never carries them to the next: every pass plans them afresh, as the
first pass of the fed-back request will.

With a `Deadline` (functions.deadline), the time limit is checked before each group.
Once it has passed, a later pass is dropped and the last complete one is the plan (a
valid plan, just not yet the fixed point); within the first pass, or before it, the
pods of the groups not reached yet are *deferred*: left for the next decision.
"""

from __future__ import annotations

from collections.abc import Mapping

from functions.scaleout.carry import Trail, with_remnant
from functions.scaleout.explain import placement_reason
from functions.scaleout.feasibility import Feasibility, Fits, PoolFit
from functions.scaleout.model import PodGroup, Pool, Request
from functions.scaleout.packing import (
    NodeClass,
    Placed,
    fill,
    free_columns,
    nodes_needed,
    pods_per_node,
    smallest_pod,
    unused_fresh_nodes,
)
from functions.scaleout.strategy import Option, rank

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
        # New nodes per managed pool (the scale-pool actions), and per companion pool the nodes
        # the plan leaves ACK's autoscaler to add; pools with none are left out of both.
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
        "columns",
        "consumed",
        "cut",
        "eci_pods",
        "eci_reasons",
        "eci_slots",
        "most",
        "pool_pods",
        "reasons",
        "remnants",
        "trail",
        "unplaced",
    )

    def __init__(
        self,
        classes: dict[str, list[NodeClass]],
        added: dict[str, int],
        *,
        budget: int,
        eci_slots: int | None,
        remnants: dict[str, dict[str, int]],
        trail: Trail,
    ) -> None:
        self.classes = classes
        # Per pool, each class's free cpu and memory, in step with `classes` (see `fill`), and
        # the most cpu and the most memory any class has free.
        self.columns = {pid: free_columns(c) for pid, c in classes.items()}
        self.most = {pid: _most(columns) for pid, columns in self.columns.items()}
        self.added = added
        # Per pool, the `free` object of its remnant (functions.scaleout.carry), and how many
        # of the nodes earlier passes added pods took so far in this pass.
        self.remnants = remnants
        self.consumed = {pid: 0 for pid in classes}
        self.trail = trail
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
    fits_of = Fits(request.pools, request.eci)
    for group in groups:
        if deadline is not None and deadline.passed():
            break
        fits.append(fits_of.of(group.shape))
    deferred = [i for group in groups[len(fits) :] for i in group.indices]
    groups = groups[: len(fits)]
    placements = [group.shape.placement for group in groups]
    smallest = _smallest_per_pool(fits, pools)
    members = [list(group.indices) for group in groups]
    added = {pool.id: 0 for pool in request.pools}
    # Only managed pools carry their new nodes from pass to pass (see the module docstring).
    managed = [pool.id for pool in request.pools if not pool.companion]
    eci_pods: list[int] = []
    eci_reasons: dict[str, None] = {}
    eci_slots = request.eci.free_slots
    budget = request.policy.new_node_budget
    ranked = _Ranked()
    # A pass after the first resumes the last one before the first group that would do
    # otherwise (functions.scaleout.carry): `start`, the state there, and its position.
    trail = Trail(len(groups))
    start: _Pass | None = None
    first = 0
    result = None
    for _ in range(MAX_PASSES):
        trail.start_pass(added, first)
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
            ranked=ranked,
            trail=trail,
            start=start,
            first=first,
            deadline=deadline,
        )
        if attempt.cut and result is not None:
            # Out of time in a later pass: the last complete pass is the plan.
            break
        result = attempt
        deferred.extend(result.cut)
        # Nodes added in earlier passes that no pod uses now are given back.
        unused = {
            pid: unused_fresh_nodes(result.classes[pid], pools[pid].allocatable) for pid in managed
        }
        before = dict(added)
        grew = False
        for pid in managed:
            count = result.added[pid]
            added[pid] += count - unused[pid]
            grew = grew or count > 0
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
            # The groups themselves changed: the next pass runs in full.
            start, first = None, 0
        elif not result.cut:
            start, first = _resume(result, pools=pools, before=before, after=added)
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
    smallest: Mapping[str, Mapping[str, int]],
    ranked: _Ranked,
    trail: Trail,
    start: _Pass | None,
    first: int,
    deadline: Deadline | None,
) -> _Pass:
    if start is None:
        classes, remnants = _asked_for(request, added)
        outcome = _Pass(
            classes,
            {pid: 0 for pid in pools},
            budget=budget,
            eci_slots=eci_slots,
            remnants=remnants,
            trail=trail,
        )
    else:
        outcome = start
    if ranked.members is not members:
        # The groups changed (or this is the first pass): which pools they share may have too.
        ranked.members = members
        shared = _shared_pools(fits, members)
        if shared != ranked.shared:
            ranked.clear(shared)
    for position, (fit, indices, placement) in enumerate(
        zip(fits, members, placements, strict=True)
    ):
        if position < first:
            continue
        trail.begin(
            position,
            pool_pods=len(outcome.pool_pods),
            unplaced=len(outcome.unplaced),
            budget=outcome.budget,
        )
        if trail.stopping:
            for pool_id in pools:
                _touch(outcome, pool_id)
            trail.stop()
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
            ranked=ranked.options(position, fit, len(indices), request=request),
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
        if pos < len(indices):
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


def _smallest_per_pool(
    fits: list[Feasibility], pools: dict[str, Pool]
) -> dict[str, dict[str, int]]:
    """Per pool, the least any shape that can run there asks of each resource: a node left
    unable to hold that holds no later pod (`fill` drops it). Per pool rather than over every
    shape: a GPU node out of GPUs is of no use to the CPU shapes its taint keeps out either."""
    # Shapes come in few sets of pools they can run on: the least per set, then per pool.
    by_set: dict[tuple[str, ...], list[Mapping[str, int]]] = {}
    for fit in fits:
        if fit.pools:
            by_set.setdefault(tuple(f.pool.id for f in fit.pools), []).append(fit.requests)
    users: dict[str, list[Mapping[str, int]]] = {pid: [] for pid in pools}
    for pool_ids, requests in by_set.items():
        least = smallest_pod(requests)
        for pid in pool_ids:
            users[pid].append(least)
    return {pid: smallest_pod(least) for pid, least in users.items()}


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


class _Ranked:
    """Each group's ranked options, kept from pass to pass: a group's ranking depends only on its
    feasibility, its number of pods and the pools it shares with other groups, which change from
    one pass to the next only when pods went to ECI."""

    __slots__ = ("_options", "members", "shared")

    def __init__(self) -> None:
        self.shared: frozenset[str] | None = None
        # The groups' pods the shared pools were read from (a new list when they change).
        self.members: list[list[int]] | None = None
        # Group position -> (pods still to place, ranked options, reasons by what decided
        # them: the chosen option and why each better one took no more pods).
        self._options: dict[int, tuple[int, list[Option], dict[tuple[object, ...], str]]] = {}

    def clear(self, shared: frozenset[str]) -> None:
        self.shared = shared
        self._options.clear()

    def options(
        self, position: int, fit: Feasibility, pods: int, *, request: Request
    ) -> tuple[list[Option], dict[tuple[object, ...], str]]:
        cached = self._options.get(position)
        if cached is not None and cached[0] == pods:
            return cached[1], cached[2]
        assert self.shared is not None
        options = rank(fit, pods=pods, policy=request.policy, eci=request.eci, shared=self.shared)
        why: dict[tuple[object, ...], str] = {}
        self._options[position] = (pods, options, why)
        return options, why


class _Group:
    """One pod group within a pass: its feasibility, its pods and its ranked options."""

    # A plain class, not a dataclass: generating one costs cold-start time for no gain here.
    __slots__ = ("fit", "indices", "options", "placement", "why")

    def __init__(
        self,
        *,
        fit: Feasibility,
        indices: list[int],
        placement: str,
        ranked: tuple[list[Option], dict[tuple[object, ...], str]],
    ) -> None:
        self.fit = fit
        self.indices = indices
        self.placement = placement
        self.options, self.why = ranked


def _asked_for(
    request: Request, added: dict[str, int]
) -> tuple[dict[str, list[NodeClass]], dict[str, dict[str, int]]]:
    """Per pool, the nodes already asked for: upcoming ones, then those earlier passes added;
    and per pool the `free` object of the latter (its remnant, functions.scaleout.carry)."""
    classes: dict[str, list[NodeClass]] = {}
    remnants: dict[str, dict[str, int]] = {}
    for pool in request.pools:
        start = []
        if pool.upcoming:
            start.append(NodeClass(dict(pool.allocatable), pool.upcoming, fresh=False))
        remnant = remnants[pool.id] = dict(pool.allocatable)
        if added[pool.id]:
            start.append(NodeClass(remnant, added[pool.id], fresh=True))
        classes[pool.id] = start
    return classes, remnants


def _resume(
    result: _Pass, *, pools: dict[str, Pool], before: dict[str, int], after: dict[str, int]
) -> tuple[_Pass | None, int]:
    """The state the next pass (with `after` added nodes) resumes from, and the position of the
    group it resumes at: `result`'s pass as it stood there, its remnants resized
    (functions.scaleout.carry). (None, 0) when it must run in full."""
    trail = result.trail
    first = trail.first_change(before, after)
    final = {
        pid: (
            result.classes[pid],
            result.added[pid],
            result.reasons.get(pid),
            result.consumed[pid],
            before[pid],
        )
        for pid in pools
    }
    before_first = trail.state_before(first, final=final)
    if before_first is None:
        return None, 0
    state, marks = before_first
    if marks is None:
        marks = (len(result.pool_pods), len(result.unplaced), result.budget + trail.added_sum)
    classes: dict[str, list[NodeClass]] = {}
    remnants: dict[str, dict[str, int]] = {}
    added_now: dict[str, int] = {}
    consumed: dict[str, int] = {}
    for pid, pool in pools.items():
        kept, now, _, used, was = state[pid]
        rebuilt = with_remnant(kept, pool.allocatable, was=was - used, count=after[pid] - used)
        if rebuilt is None:
            return None, 0
        classes[pid], remnants[pid] = rebuilt
        added_now[pid] = now
        consumed[pid] = used
    pool_pods, unplaced, budget = marks
    outcome = _Pass(
        classes,
        added_now,
        budget=budget - sum(after.values()),
        eci_slots=result.eci_slots,
        remnants=remnants,
        trail=trail,
    )
    outcome.consumed = consumed
    outcome.pool_pods = result.pool_pods[:pool_pods]
    outcome.unplaced = result.unplaced[:unplaced]
    outcome.reasons = {
        pid: dict(reasons) for pid in result.reasons if (reasons := state[pid][2]) is not None
    }
    return outcome, first


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
    smallest: Mapping[str, Mapping[str, int]],
    eci_rank: int,
) -> int:
    """Put the group's pods on nodes already asked for, in ranked order; how many went there.

    Upcoming nodes (asked for by earlier decisions: booting, paid for) are used as they rank.
    On the first pool ranked after `eci_rank` whose nodes added by this decision have room,
    ECI takes what it can before that room. Fed back, those nodes are upcoming ones and ECI is
    full, so the same walk puts as many pods of the group on each pool: a fixed point."""

    def fill(chosen: int, pos: int, fresh: bool | None) -> int:
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

    pos = 0
    eci_taken = False
    requests = group.fit.requests
    cpu = requests.get("cpu", 0)
    memory = requests.get("memory", 0)
    for chosen, option in enumerate(group.options):
        if option.fit is None or pos == len(group.indices):
            continue
        if chosen < eci_rank or eci_taken:
            pool_id = option.fit.pool.id
            most_cpu, most_memory = outcome.most[pool_id]
            if cpu > most_cpu or memory > most_memory:
                # What `_fill_pool` would do, without the calls: most pools a group tries
                # have no node with its cpu or its memory free.
                consumed = outcome.consumed[pool_id]
                if added[pool_id] == consumed and pool_id not in outcome.trail.settled:
                    outcome.trail.remnant(pool_id, consumed=consumed, used=0)
                continue
            pos = fill(chosen, pos, None)
            continue
        pos = fill(chosen, pos, False)
        if pos < len(group.indices) and _room_on_added(
            option.fit.pool.id, group, added=added, outcome=outcome
        ):
            pos = _take_eci(group, eci_rank, pos, request=request, added=added, outcome=outcome)
            eci_taken = True
            pos = fill(chosen, pos, True)
    return pos


def _room_on_added(pool_id: str, group: _Group, *, added: dict[str, int], outcome: _Pass) -> bool:
    """Whether a node this decision adds to the pool has room for one of the group's pods."""
    remnant = outcome.remnants[pool_id]
    requests = group.fit.requests
    for c in outcome.classes[pool_id]:
        if c.fresh and c.free is not remnant and pods_per_node(c.free, requests):
            return True
    # Only the remnant (whole nodes, room for any pod that fits the pool) decides.
    consumed = outcome.consumed[pool_id]
    outcome.trail.room(pool_id, consumed=consumed)
    return added[pool_id] > consumed


def _fill_pool(
    group: _Group,
    chosen: int,
    pos: int,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    smallest: Mapping[str, Mapping[str, int]],
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
    consumed = outcome.consumed[pool_id]
    requests = group.fit.requests
    most_cpu, most_memory = outcome.most[pool_id]
    placed_runs: list[Placed] = []
    used = 0
    # Most pools a group tries have no node left with its cpu or its memory free: the
    # largest free amounts (kept exact) say so without looking at the nodes.
    if requests.get("cpu", 0) <= most_cpu and requests.get("memory", 0) <= most_memory:
        _touch(outcome, pool_id)
        placed_runs, used = fill(
            outcome.classes[pool_id],
            requests,
            len(indices) - pos,
            smallest=smallest[pool_id],
            fresh=fresh,
            remnant=outcome.remnants[pool_id],
            columns=outcome.columns[pool_id],
        )
        if placed_runs:
            outcome.most[pool_id] = _most(outcome.columns[pool_id])
    for placed in placed_runs:
        outcome.pool_pods.append((pool_id, placed.fresh, indices[pos : pos + placed.pods]))
        pos += placed.pods
        if placed.fresh:
            reason = _group_why(group, chosen, request=request, added=added, outcome=outcome)
            outcome.reasons.setdefault(pool_id, {})[reason] = None
    if used:
        outcome.trail.remnant(pool_id, consumed=consumed, used=used)
        outcome.consumed[pool_id] = consumed + used
    elif fresh is not False and pos < len(indices) and added[pool_id] == consumed:
        # Pods left at the end of the pool's nodes: a remnant there would have taken them.
        outcome.trail.remnant(pool_id, consumed=consumed, used=0)
    return pos


def _most(columns: tuple[list[int], list[int]]) -> tuple[int, int]:
    cpus, memories = columns
    return max(cpus, default=0), max(memories, default=0)


def _touch(outcome: _Pass, pool_id: str) -> None:
    """Keep the pool's state before the group changes it (functions.scaleout.carry)."""
    outcome.trail.touch(
        pool_id,
        classes=outcome.classes[pool_id],
        added_now=outcome.added[pool_id],
        reasons=outcome.reasons.get(pool_id),
        consumed=outcome.consumed[pool_id],
    )


def _ask_for_more(
    group: _Group,
    pos: int,
    *,
    request: Request,
    added: dict[str, int],
    outcome: _Pass,
    smallest: Mapping[str, Mapping[str, int]],
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
    smallest: Mapping[str, Mapping[str, int]],
) -> int:
    left = len(group.indices) - pos
    pool = fit.pool
    room = min(
        outcome.budget, pool.max_size - pool.desired - added[pool.id] - outcome.added[pool.id]
    )
    needed = nodes_needed(left, fit.per_node)
    outcome.trail.add(pool, needed=needed, added_now=outcome.added[pool.id], budget=outcome.budget)
    count = min(needed, room)
    if count <= 0:
        return pos
    _touch(outcome, pool.id)
    if not pool.companion:
        # Only these carry to the next pass, which resumes where they were added (`Trail`).
        outcome.trail.nodes_added()
    reason = _group_why(group, chosen, request=request, added=added, outcome=outcome)
    outcome.reasons.setdefault(pool.id, {})[reason] = None
    fresh = [NodeClass(dict(pool.allocatable), count, fresh=True)]
    for placed in fill(fresh, group.fit.requests, left, smallest=smallest[pool.id])[0]:
        outcome.pool_pods.append((pool.id, True, group.indices[pos : pos + placed.pods]))
        pos += placed.pods
    outcome.classes[pool.id].extend(fresh)
    cpus, memories = outcome.columns[pool.id]
    cpus.extend(c.free.get("cpu", 0) for c in fresh)
    memories.extend(c.free.get("memory", 0) for c in fresh)
    outcome.most[pool.id] = _most(outcome.columns[pool.id])
    outcome.added[pool.id] += count
    outcome.budget -= count
    return pos


def _group_why(
    group: _Group, chosen: int, *, request: Request, added: dict[str, int], outcome: _Pass
) -> str:
    options = group.options
    budget = outcome.budget
    full = [
        _full_text(
            option,
            request=request,
            added=added,
            outcome=outcome,
            budget=budget,
            eci_slots=outcome.eci_slots,
        )
        for option in options[:chosen]
    ]
    # The same group and the same reads give the same reason: kept from pass to pass.
    key = (chosen, *full)
    reason = group.why.get(key)
    if reason is None:
        reason = placement_reason(
            options, chosen, policy=request.policy, placement=group.placement, full=full
        )
        group.why[key] = reason
    return reason


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
    outcome.trail.full(pool, added_now=outcome.added[pool.id])
    outcome.trail.budget(budget)
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
        outcome.trail.full(pool, added_now=outcome.added[pool.id])
        if pool.desired + added[pool.id] + outcome.added[pool.id] >= pool.max_size:
            parts.append(f"pool {pool.id} at max size {pool.max_size}")
    outcome.trail.budget(budget)
    if budget <= 0:
        parts.append(request.policy.budget_limit)
    return "no capacity left: " + ", ".join(parts)


def _largest_first(group: PodGroup) -> tuple[int, int, int, str]:
    requests = group.shape.requests
    others = sum(v for k, v in requests.items() if k not in ("cpu", "memory"))
    return (-requests.get("cpu", 0), -requests.get("memory", 0), -others, group.shape.key)

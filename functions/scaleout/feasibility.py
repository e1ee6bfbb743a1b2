"""Which options (node pools, ECI) can run a pod shape at all, and why the others cannot.

Reasons read like the scheduler's ("Insufficient nvidia.com/gpu", "didn't match
node selector") so a person can act on them; `no_fit_reason` folds them into one
line: "no option fits: 2 pools Insufficient nvidia.com/gpu, 1 pool didn't match
node selector, ECI: hostPath volume".

ECI runs (and bills) a pod as the spec it rounds the pod up to (`functions.eci_specs`), so the
per-pod ceilings `maxPodCpu`/`maxPodMemory` are checked against that spec, not the requests.
"""

from __future__ import annotations

from collections.abc import Mapping

from functions.contract import (
    ECI_TAINT_KEY,
    ECI_USE_SPECS_ANNOTATION,
    PLACEMENT_ANNOTATION,
    PLACEMENT_ECI,
    PLACEMENT_ECS,
    PLACEMENTS,
)
from functions.eci_specs import Billed, gib_text, pick, spec_text
from functions.predicates import (
    POD_SLOT,
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
)
from functions.quantity import format_milli
from functions.readers import canonical
from functions.scaleout.model import Eci, PodShape, Pool
from functions.scaleout.packing import pods_per_node

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# ECI sizes a container group per pod; resources it cannot provide to a pod that
# already exists (GPUs are chosen by annotations at pod creation only) rule it out.
ECI_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage", "pods"})


class PoolFit:
    """A pool that can run the shape: `per_node` pods fit on one new node."""

    # Plain slotted classes, not dataclasses: see functions.scaleout.model.
    __slots__ = ("per_node", "pool", "share", "waste")

    def __init__(self, pool: Pool, per_node: int, waste: float, share: float) -> None:
        self.pool = pool
        self.per_node = per_node
        # Mean unused fraction of cpu and memory on a node filled with this shape only.
        self.waste = waste
        # The largest fraction of any resource of a node one pod takes.
        self.share = share


class Feasibility:
    """The options for one pod shape: pods' full request vector, fitting pools, ECI."""

    __slots__ = ("eci", "no_fit_reason", "pools", "requests")

    def __init__(
        self,
        requests: Mapping[str, int],
        pools: tuple[PoolFit, ...],
        eci: Billed | None,
        no_fit_reason: str,
    ) -> None:
        self.requests = requests
        self.pools = pools
        # The spec ECI would run and bill each pod as; None when ECI cannot take the shape.
        self.eci = eci
        # Why nothing fits, or "" when some option does.
        self.no_fit_reason = no_fit_reason


def feasibility(shape: PodShape, *, pools: tuple[Pool, ...], eci: Eci) -> Feasibility:
    """Static fit of one shape against every pool template and the ECI virtual node."""
    requests = {**shape.requests, **POD_SLOT}
    placement = shape.placement
    if placement not in PLACEMENTS:
        return Feasibility(
            requests,
            (),
            None,
            f"unknown {PLACEMENT_ANNOTATION} value {placement!r} (expected ecs, eci or auto)",
        )
    fits: list[PoolFit] = []
    pool_reasons: list[str] = []
    if placement == PLACEMENT_ECI:
        pool_note = f"pools excluded by {PLACEMENT_ANNOTATION}=eci"
    else:
        for pool in pools:
            reasons = pool_misfit(shape, requests, pool)
            if reasons:
                pool_reasons.extend(reasons)
            else:
                per_node = pods_per_node(pool.allocatable, requests)
                waste = _waste(pool.allocatable, requests, per_node)
                fits.append(PoolFit(pool, per_node, waste, _share(pool.allocatable, requests)))
        pool_note = "" if pools else "no node pools"
    if placement == PLACEMENT_ECS:
        eci_fits: Billed | str = f"excluded by {PLACEMENT_ANNOTATION}=ecs"
    else:
        eci_fits = eci_fit(shape, eci)
    return _feasibility(requests, fits, pool_reasons, pool_note, eci_fits)


def _feasibility(
    requests: dict[str, int],
    fits: list[PoolFit],
    pool_reasons: list[str],
    pool_note: str,
    eci_fits: Billed | str,
) -> Feasibility:
    billed = None if isinstance(eci_fits, str) else eci_fits
    if fits or billed is not None:
        return Feasibility(requests, tuple(fits), billed, "")
    parts = _counted(pool_reasons) if pool_reasons else [pool_note] if pool_note else []
    parts.append(f"ECI: {eci_fits}")
    return Feasibility(requests, (), None, "no option fits: " + ", ".join(parts))


class Fits:
    """`feasibility` of many shapes over the same pools and ECI, with what shapes share computed
    once: the label checks (skipped, nodeSelector, affinity, taints) once per pool and distinct
    (nodeSelector, affinity, tolerations), the resource fit once per shape and distinct
    allocatable. Thousands of shapes differ in their requests but rarely in their labels, and
    many pools share an instance type: this is what keeps 2,000 shapes × 100 pools affordable.
    `of(shape)` is `feasibility(shape, ...)`, field for field."""

    __slots__ = ("_eci", "_kinds", "_labels", "_pools")

    def __init__(self, pools: tuple[Pool, ...], eci: Eci) -> None:
        self._pools = pools
        self._eci = eci
        # Pools with equal allocatable fit a shape alike: per pool, the index of its kind.
        kinds: dict[tuple[object, ...], int] = {}
        self._kinds = [
            kinds.setdefault(tuple(sorted(p.allocatable.items())), len(kinds)) for p in pools
        ]
        # Label key -> the pools whose labels, taints and state allow the shape, with their kind.
        self._labels: dict[tuple[object, ...], list[tuple[Pool, int]]] = {}

    def of(self, shape: PodShape) -> Feasibility:
        placement = shape.placement
        if placement not in PLACEMENTS or placement == PLACEMENT_ECI:
            return feasibility(shape, pools=self._pools, eci=self._eci)
        requests = {**shape.requests, **POD_SLOT}
        # Per kind of allocatable: (per node, waste, share), () when the shape does not fit.
        by_kind: dict[int, tuple[int, float, float] | tuple[()]] = {}
        fits: list[PoolFit] = []
        for pool, kind in self._allowing(shape):
            fit = by_kind.get(kind)
            if fit is None:
                fit = by_kind[kind] = _fit(pool.allocatable, requests)
            if fit:
                fits.append(PoolFit(pool, *fit))
        if placement == PLACEMENT_ECS:
            eci_fits: Billed | str = f"excluded by {PLACEMENT_ANNOTATION}=ecs"
        else:
            eci_fits = eci_fit(shape, self._eci)
        if not fits and isinstance(eci_fits, str):
            # Nothing fits: the reasons, pool by pool, as `feasibility` gives them (rare).
            return feasibility(shape, pools=self._pools, eci=self._eci)
        return _feasibility(requests, fits, [], "", eci_fits)

    def _allowing(self, shape: PodShape) -> list[tuple[Pool, int]]:
        key = (
            tuple(sorted(shape.node_selector.items())) if shape.node_selector else (),
            canonical(shape.affinity) if shape.affinity else "",
            canonical(shape.tolerations) if shape.tolerations else "",
        )
        allowing = self._labels.get(key)
        if allowing is None:
            allowing = [
                (pool, kind)
                for pool, kind in zip(self._pools, self._kinds, strict=True)
                if not _label_misfit(shape, pool)
            ]
            self._labels[key] = allowing
        return allowing


def pool_misfit(shape: PodShape, requests: Mapping[str, int], pool: Pool) -> list[str]:
    """Why a new node of `pool` cannot run the shape (empty when it can)."""
    misfit = _label_misfit(shape, pool)
    if misfit:
        return [misfit]
    return [f"Insufficient {name}" for name in insufficient(requests, pool.allocatable)]


def _label_misfit(shape: PodShape, pool: Pool) -> str:
    """Why `pool` cannot run the shape whatever it requests ("" when its labels, taints and
    state allow it)."""
    if pool.skipped:
        return f"skipped ({pool.skipped})"
    if not node_selector_matches(shape.node_selector, pool.labels):
        return "didn't match node selector"
    if not required_affinity_matches(shape.affinity, pool.labels):
        return "didn't match node affinity"
    taint = first_untolerated_taint(shape.tolerations, pool.taints)
    if taint is not None:
        return f"had untolerated taint {_taint_text(taint)}"
    return ""


def eci_fit(shape: PodShape, eci: Eci) -> Billed | str:
    """The spec ECI runs each pod of the shape as, or why the ECI virtual node cannot run it."""
    if not eci.enabled:
        return "disabled"
    if shape.host_network:
        return "hostNetwork"
    if "hostPath" in shape.volume_types:
        return "hostPath volume"
    if shape.privileged:
        return "privileged"
    unsupported = sorted(n for n, v in shape.requests.items() if v > 0 and n not in ECI_RESOURCES)
    if unsupported:
        return "unsupported resource " + ", ".join(unsupported)
    cpu = shape.requests.get("cpu", 0)
    if cpu > eci.max_pod_cpu:
        return f"cpu {format_milli(cpu)} over maxPodCpu {format_milli(eci.max_pod_cpu)}"
    memory = shape.requests.get("memory", 0)
    if memory > eci.max_pod_memory:
        return f"memory {gib_text(memory)} over maxPodMemory {gib_text(eci.max_pod_memory)}"
    billed = pick(cpu, memory, shape.eci_use_specs, eci.specs)
    if isinstance(billed, str):
        return billed
    # ECI runs the pod as the billed spec: the per-pod ceilings bind that, not the requests.
    if billed.cpu > eci.max_pod_cpu:
        return (
            f"cpu {format_milli(cpu)} {_runs_as(billed, shape)}, "
            f"over maxPodCpu {format_milli(eci.max_pod_cpu)}"
        )
    if billed.memory > eci.max_pod_memory:
        return (
            f"memory {gib_text(memory)} {_runs_as(billed, shape)}, "
            f"over maxPodMemory {gib_text(eci.max_pod_memory)}"
        )
    if not node_selector_matches(shape.node_selector, eci.labels):
        return "didn't match node selector"
    if not required_affinity_matches(shape.affinity, eci.labels):
        return "didn't match node affinity"
    # The agent adds the provider toleration when it sends a pod to ECI: that taint never blocks.
    blocking = [t for t in eci.taints if t.get("key") != ECI_TAINT_KEY]
    taint = first_untolerated_taint(shape.tolerations, blocking)
    if taint is not None:
        return f"had untolerated taint {_taint_text(taint)}"
    return billed


def _runs_as(billed: Billed, shape: PodShape) -> str:
    if billed.instance_type:
        return f"runs as {billed.instance_type} (about {spec_text(billed)})"
    if shape.eci_use_specs:
        return f"runs as {ECI_USE_SPECS_ANNOTATION} spec {spec_text(billed)}"
    return f"rounds up to ECI spec {spec_text(billed)}"


def _fit(
    allocatable: Mapping[str, int], requests: Mapping[str, int]
) -> tuple[int, float, float] | tuple[()]:
    """(per node, waste, share) of a shape on a node with `allocatable`; () when none fits.
    One loop for what `pods_per_node` and `_share` compute: it runs per shape and kind of node."""
    per_node = 0
    share = 0.0
    for name, amount in requests.items():
        if amount > 0:
            free = allocatable.get(name, 0)
            room = free // amount
            if not room:
                return ()
            if not per_node or room < per_node:
                per_node = room
            fraction = amount / free
            if fraction > share:
                share = fraction
    if not per_node:
        return ()
    return per_node, _waste(allocatable, requests, per_node), share


def _waste(allocatable: Mapping[str, int], requests: Mapping[str, int], per_node: int) -> float:
    fractions = [
        (allocatable[name] - requests.get(name, 0) * per_node) / allocatable[name]
        for name in ("cpu", "memory")
        if allocatable.get(name, 0) > 0
    ]
    return sum(fractions) / len(fractions) if fractions else 0.0


def _share(allocatable: Mapping[str, int], requests: Mapping[str, int]) -> float:
    # Every resource a fitting pod asks for is allocatable (and so not zero).
    return max(amount / allocatable[name] for name, amount in requests.items() if amount > 0)


def _counted(reasons: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [f"{n} pool{'s' if n > 1 else ''} {reason}" for reason, n in ranked]


def _taint_text(taint: Mapping[str, Any]) -> str:
    return f"{{{taint.get('key')}: {taint.get('value') or ''}}}"

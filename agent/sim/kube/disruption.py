"""PodDisruptionBudgets at work: the status kube-controller-manager's disruption controller
keeps, and the eviction rule kube-apiserver applies with it.

`budget_status` is the controller's sync (pkg/controller/disruption/disruption.go): which pods
a budget selects, how many should be healthy, how many are, and so how many may be disrupted
now. `DisruptionController` keeps every budget's stored status current as pods change.
`admit_eviction` is the eviction subresource up to the delete (pkg/registry/core/pod/storage/
eviction.go): a pod a budget protects is evicted only while the budget allows a disruption,
which the eviction then uses up; otherwise 429 TooManyRequests with a DisruptionBudget cause.
The API server's `pods/eviction` and the simulated RemoveNodePoolNodes drain both go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from agent.clients.timeouts import within
from agent.sim.kube.store import ApiError, ObjectStore, copy_json

BUDGETS = "poddisruptionbudgets"
# disruption.go DeletionTimeout: an eviction the controller has not yet seen become a deletion
# keeps its pod out of currentHealthy this long.
DELETION_TIMEOUT_SECONDS = 120.0
# eviction.go MaxDisruptedPodSize
MAX_DISRUPTED_PODS = 2000
# policy/v1 condition type and reasons (pdbhelper.UpdateDisruptionAllowedCondition, failSafe)
DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"  # policyv1.DisruptionBudgetCause
# How often (real seconds) the controller looks again without a change, so a disrupted pod
# that was never deleted counts as healthy again after DELETION_TIMEOUT_SECONDS.
RECHECK_SECONDS = 1.0

log = logging.getLogger(__name__)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# -- what a budget selects -------------------------------------------------------------------


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """Whether a policy/v1 selector matches `labels`. A null selector selects nothing; an empty
    one ({}) selects every pod of the namespace (policy/v1 API reference, PodDisruptionBudgetSpec
    .selector: the v1 change from v1beta1, where {} selected nothing)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or ()
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def budgets_for(store: ObjectStore, pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The budgets of the pod's namespace whose selector matches it."""
    meta = pod.get("metadata") or {}
    budgets, _ = store.list(BUDGETS, namespace=meta.get("namespace") or "default")
    labels = meta.get("labels") or {}
    return [b for b in budgets if selects((b.get("spec") or {}).get("selector"), labels)]


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# -- the disruption controller's arithmetic --------------------------------------------------


class _NoScale(Exception):
    """The controller cannot tell how many pods the budget's pods' controllers want."""


def _scaled(value: int | str, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent with roundUp=true."""
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)


def _expected_scale(pods: Iterable[Mapping[str, Any]]) -> int:
    """getExpectedScale: the sum of the scale of each selected pod's controller. The simulator
    serves no workload controller (ReplicaSet, StatefulSet, ...) nor any scale subresource, so
    every pod with a controller fails the lookup, as it does for a kind without `scale` (whether
    KubeRay's RayCluster has one is not verified): the controller then fails safe, allowing no
    disruption — the strict case. Pods without a controller are skipped, as the controller does
    (it reports them as unmanaged)."""
    for pod in pods:
        owners = (pod.get("metadata") or {}).get("ownerReferences") or ()
        if any(owner.get("controller") for owner in owners):
            raise _NoScale(f'found no controllers for pod "{pod["metadata"]["name"]}"')
    return 0


def _wanted(spec: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> tuple[int, int]:
    """getExpectedPodCount: (expectedPods, desiredHealthy)."""
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected = _expected_scale(pods)
        return expected, max(0, expected - _scaled(max_unavailable, expected))
    if isinstance(min_available, int):
        return len(pods), min_available
    if min_available is not None:
        expected = _expected_scale(pods)
        return expected, _scaled(min_available, expected)
    return 0, 0


def _condition(
    old: Mapping[str, Any], *, allowed: bool, reason: str, message: str, generation: int, now: float
) -> dict[str, Any]:
    """The DisruptionAllowed condition as apimeta.SetStatusCondition writes it: the transition
    time moves only when the status flips."""
    previous = next(
        (c for c in old.get("conditions") or () if c.get("type") == DISRUPTION_ALLOWED), None
    )
    status = "True" if allowed else "False"
    since = _iso(now)
    if previous is not None and previous.get("status") == status:
        since = str(previous.get("lastTransitionTime") or since)
    return {
        "type": DISRUPTION_ALLOWED,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def budget_status(
    budget: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], *, now: float
) -> dict[str, Any]:
    """The status the disruption controller writes for `budget` over its namespace's `pods`."""
    old = budget.get("status") or {}
    spec = budget.get("spec") or {}
    generation = int((budget.get("metadata") or {}).get("generation") or 1)
    selected = [
        pod
        for pod in pods
        if selects(spec.get("selector"), (pod.get("metadata") or {}).get("labels") or {})
    ]
    try:
        expected, desired = _wanted(spec, selected)
    except _NoScale as error:
        # failSafe: no disruption allowed, and the generation stays unobserved
        failed: dict[str, Any] = copy_json(dict(old))
        failed["disruptionsAllowed"] = 0
        failed["conditions"] = [
            _condition(
                old,
                allowed=False,
                reason=SYNC_FAILED,
                message=str(error),
                generation=int(old.get("observedGeneration") or 0),
                now=now,
            )
        ]
        return failed
    disrupted = _still_disrupted(old.get("disruptedPods") or {}, selected, now=now)
    healthy = sum(
        1
        for pod in selected
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
        and pod["metadata"]["name"] not in disrupted
        and pod_ready(pod)
    )
    # updatePdbStatus: no disruption while the budget selects nothing it expects
    allowed = healthy - desired if expected > 0 and healthy > desired else 0
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [
            _condition(
                old,
                allowed=allowed > 0,
                reason=SUFFICIENT_PODS if allowed > 0 else INSUFFICIENT_PODS,
                message="",
                generation=generation,
                now=now,
            )
        ],
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    return status


def _still_disrupted(
    disrupted: Mapping[str, str], pods: list[Mapping[str, Any]], *, now: float
) -> dict[str, str]:
    """buildDisruptedPodMap: evicted pods not yet seen deleting, for DeletionTimeout at most."""
    alive = {
        pod["metadata"]["name"]
        for pod in pods
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
    }
    kept = {}
    for name, at in disrupted.items():
        since = _epoch(at)
        if name in alive and since is not None and since + DELETION_TIMEOUT_SECONDS > now:
            kept[name] = at
    return kept


def refresh_budgets(store: ObjectStore, namespace: str, *, now: float) -> None:
    """One sync of every budget in `namespace`: store each status that changed."""
    budgets, _ = store.list(BUDGETS, namespace=namespace)
    if not budgets:
        return
    pods, _ = store.list("pods", namespace=namespace)
    for budget in budgets:
        status = budget_status(budget, pods, now=now)
        if status != budget.get("status"):
            _write_status(store, budget, status)


def _write_status(store: ObjectStore, budget: Mapping[str, Any], status: dict[str, Any]) -> None:
    def change(obj: dict[str, Any]) -> None:
        obj["status"] = status

    meta = budget["metadata"]
    with contextlib.suppress(ApiError):  # deleted meanwhile
        store.mutate(BUDGETS, meta["name"], change, namespace=meta.get("namespace"))


# -- the eviction subresource ----------------------------------------------------------------


def too_many_requests(cause: str, *, retry_after: int = 0) -> ApiError:
    """errors.NewTooManyRequests with a DisruptionBudget cause, as eviction.go builds it."""
    details: dict[str, Any] = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return ApiError(429, "TooManyRequests", EVICTION_REFUSED, details=details)


def admit_eviction(store: ObjectStore, namespace: str, name: str, *, now: float) -> None:
    """Decide an eviction of pod `namespace/name` as eviction.go does before deleting it:
    return when it may go (having used up one allowed disruption of its budget, if it counted),
    raise ApiError otherwise (404 no such pod; 429 the budget allows no disruption now; 500 more
    than one budget). The controller's view is brought up to date first: in the simulator the
    disruption controller never lags behind."""
    pod = store.get("pods", name, namespace=namespace)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
        return  # canIgnorePDB: it disrupts nothing that a budget counts
    if not budgets_for(store, pod):
        return
    refresh_budgets(store, namespace, now=now)
    budgets = budgets_for(store, pod)
    if len(budgets) > 1:
        raise ApiError(
            500,
            "",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does "
            "not support.",
        )
    if not budgets:
        return
    (budget,) = budgets
    spec, status = budget.get("spec") or {}, budget.get("status") or {}
    if not pod_ready(pod):
        # an unready pod does not count as healthy: evicting it uses nothing up, if the budget
        # says so (AlwaysAllow) or is met without it (IfHealthyBudget, the default)
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return
        desired = int(status.get("desiredHealthy") or 0)
        if int(status.get("currentHealthy") or 0) >= desired > 0:
            return
    _check_and_decrement(store, budget, pod_name=name, now=now)


def _check_and_decrement(
    store: ObjectStore, budget: Mapping[str, Any], *, pod_name: str, now: float
) -> None:
    meta, status = budget["metadata"], budget.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 1):
        raise too_many_requests(
            f"The disruption budget {meta['name']} is still being processed by the server.",
            retry_after=10,
        )
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0 or len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise ApiError(
            403,
            "Forbidden",
            f'poddisruptionbudget.policy "{meta["name"]}" is forbidden: '
            + (
                "pdb disruptions allowed is negative"
                if allowed < 0
                else "DisruptedPods map too big - too many evictions not confirmed by PDB "
                "controller"
            ),
        )
    if allowed == 0:
        raise too_many_requests(
            f"The disruption budget {meta['name']} needs {status.get('desiredHealthy', 0)} "
            f"healthy pods and has {status.get('currentHealthy', 0)} currently"
        )
    updated: dict[str, Any] = copy_json(dict(status))
    updated["disruptionsAllowed"] = allowed - 1
    updated.setdefault("disruptedPods", {})[pod_name] = _iso(now)
    if allowed == 1:
        updated["conditions"] = [
            _condition(
                status,
                allowed=False,
                reason=INSUFFICIENT_PODS,
                message="",
                generation=int(status.get("observedGeneration") or 0),
                now=now,
            )
        ]
    _write_status(store, budget, updated)


# -- the controller --------------------------------------------------------------------------


class DisruptionController:
    """Keeps every budget's status current: after each batch of pod or budget changes, the
    budgets of the namespaces they touched are synced, and every RECHECK_SECONDS all of them
    (disrupted pods time out). Started with the API server (`apiserver.build_app`)."""

    def __init__(self, store: ObjectStore, *, now: Callable[[], float]) -> None:
        self._store = store
        self._now = now

    async def run(self) -> None:
        subscription = self._store.subscribe(resources=("pods", BUDGETS))
        try:
            self._sync(self._namespaces_with_budgets())
            while not subscription.closed:
                with contextlib.suppress(asyncio.TimeoutError):
                    await within(RECHECK_SECONDS, subscription.wait())
                touched = {
                    str((event.object.get("metadata") or {}).get("namespace") or "")
                    for event in subscription.drain()
                    if event.resource in ("pods", BUDGETS)
                }
                self._sync(touched or self._namespaces_with_budgets())
        finally:
            subscription.close()

    def _namespaces_with_budgets(self) -> set[str]:
        budgets, _ = self._store.list(BUDGETS)
        return {b["metadata"].get("namespace", "") for b in budgets}

    def _sync(self, namespaces: Iterable[str]) -> None:
        now = self._now()
        for namespace in sorted(namespaces):
            try:
                refresh_budgets(self._store, namespace, now=now)
            except Exception:  # one bad budget must not stop the others' syncs
                log.exception("disruption controller sync failed", extra={"ns": namespace})

"""Placing one pod on ECI: the guarded toleration patch, and what happens when it is refused.

The patch adds the virtual-node toleration (and the `ray-ack-scaler/placed=eci` label) behind a
JSON-patch `test` on the pod's resourceVersion, so it only ever applies to the exact version of the
pod that was looked at. The snapshot a decision is made on is older than the pod, though: the
scheduler writes an unschedulable pod's PodScheduled condition again whenever its message changes
(kube-scheduler's handleSchedulingFailure → updatePod, which skips the write only when
podutil.UpdatePodCondition finds status, reason and message unchanged — kubernetes/kubernetes
pkg/scheduler/schedule_one.go, pkg/api/v1/pod/util.go), and the message counts the nodes ("0/N
nodes are available: ..."), so every node that registers, turns Ready or fills up rewrites every
pending pod. A burst that scales pools and places pods on ECI in one round is exactly when that
happens, and a refused patch used to leave the pod for a later round.

So a refused patch (409, or 422: the `test` failed) is followed by a re-read (GET) of the pod, and
the patch is applied again — with the fresh resourceVersion in its `test` — when the re-read pod
is still the one the decision was about:

* the same uid (not a new pod of the same name),
* unbound (no spec.nodeName), not being deleted, phase Pending, PodScheduled=False/Unschedulable
  (the same test the cluster view tracks pending pods by),
* not yet tolerating the ECI virtual node's taint,
* and every field the decision read for it unchanged: labels, annotations, tolerations and the
  effective requests. The other inputs (nodeSelector, affinity, hostNetwork, volumes,
  privileged) cannot change on an existing pod that is not scheduling-gated (ValidatePodUpdate),
  and a gated pod is never Unschedulable. Status fields (the condition's message, its
  lastTransitionTime) are not read by the decision, so their change does not stale it.

Anything else is a skip: the pod is gone, bound, or no longer what was decided about, and the next
snapshot says what it is now. A refusal of a pod whose resourceVersion had not moved is no race
but a rejected patch: a failure, not retried. Re-reads are bounded (`ECI_PATCH_RETRIES`), spaced
like client-go's retry.DefaultRetry (10 ms, 10 % jitter), and a pod still changing after the last
one is given up for this round (counted; the agent looks again soon).

Why not narrow the precondition instead (no resourceVersion `test`, but `test`s of just what
decides placement)? It would save the re-read, but: "still unbound" would have to be a `test` that
/spec/nodeName is null, which holds for an absent key only because the apiserver's JSON-patch
library (evanphx/json-patch v4) compares a missing member as null — RFC 6902 §4.6 makes it an
error; and the decision's inputs (labels, annotations, tolerations, requests) would be copied into
every patch as `test`s, a patch the size of the pod. With the resourceVersion guard the rule stays
one line — only a version of the pod we have inspected is ever written — and the retry costs one
GET and one PATCH per pod the scheduler touched, in parallel under the actuator's bound on
concurrent pod writes. The patch only ever adds a toleration (all the apiserver allows on an
existing pod's spec.tolerations) and never reaches a bound pod: binding changes the
resourceVersion, so the `test` fails, and the re-read sees spec.nodeName.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.raw import effective_requests
from agent.ingest.view import unschedulable_condition
from functions.contract import ECI_TAINT, ECI_TOLERATION
from functions.predicates import tolerates

PLACED_LABEL = "ray-ack-scaler/placed"
GONE = 404
# A conflict, or the `test` failed: the pod changed since the version the patch was made for.
REFUSED = (409, 422)
# Re-reads (and patches again) of one pod after a refusal, before it is given up for the round.
ECI_PATCH_RETRIES = 3
# client-go's retry.DefaultRetry, for writers racing on one object: 10 ms steps, 10 % jitter.
RETRY_DELAY_SECONDS = 0.01
RETRY_JITTER = 0.1


class PodAccess(Protocol):
    """The pod read and write ECI placement needs (agent.clients.kube.KubeClient provides them)."""

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def patch_pod_json(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EciAttempt:
    """How placing one pod went: `outcome` is placed, skipped or failed; `reason` says why it was
    not placed; `refused` counts patches answered 409/422, `retries` patches sent again after a
    re-read; `gave_up` when the pod still changed after the last retry."""

    outcome: str
    reason: str = ""
    refused: int = 0
    retries: int = 0
    gave_up: bool = False


def eci_patch(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The guarded JSON patch that lets the scheduler bind `pod` (a request pod: resourceVersion,
    tolerations, labels) to ECI."""
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": pod.get("resourceVersion", "")}
    ]
    # No strategic-merge key for tolerations: append to the list, or create it if the pod has none.
    if pod.get("tolerations"):
        ops.append({"op": "add", "path": "/spec/tolerations/-", "value": dict(ECI_TOLERATION)})
    else:
        ops.append({"op": "add", "path": "/spec/tolerations", "value": [dict(ECI_TOLERATION)]})
    if pod.get("labels"):
        ops.append(
            {"op": "add", "path": "/metadata/labels/" + _pointer(PLACED_LABEL), "value": "eci"}
        )
    else:
        ops.append({"op": "add", "path": "/metadata/labels", "value": {PLACED_LABEL: "eci"}})
    return ops


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def stale_reason(decided: Mapping[str, Any], pod: Mapping[str, Any]) -> str | None:
    """Why the decision about `decided` (a request pod) no longer holds for `pod` (the pod as
    just read), or None when it still does and the patch may be applied to this version."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if meta.get("uid") != decided.get("uid"):
        return "replaced by another pod of the same name"
    if spec.get("nodeName"):
        return f"bound to {spec['nodeName']} meanwhile"
    if meta.get("deletionTimestamp"):
        return "being deleted"
    phase = (pod.get("status") or {}).get("phase", "Pending")
    if phase != "Pending":
        return f"phase {phase}"
    if any(tolerates(t, ECI_TAINT) for t in spec.get("tolerations") or ()):
        return "already tolerates the ECI virtual node"
    if unschedulable_condition(pod) is None:
        return "no longer PodScheduled=False/Unschedulable"
    inputs = (
        ("labels", decided.get("labels") or {}, meta.get("labels") or {}),
        ("annotations", decided.get("annotations") or {}, meta.get("annotations") or {}),
        ("tolerations", decided.get("tolerations") or [], spec.get("tolerations") or []),
        ("requests", decided.get("requests") or {}, effective_requests(spec) or {}),
    )
    changed = [field for field, before, now in inputs if before != now]
    if changed:
        return f"{', '.join(changed)} changed since the decision"
    return None


async def place_on_eci(
    pods: PodAccess,
    decided: Mapping[str, Any],
    slots: asyncio.Semaphore,
    *,
    retries: int = ECI_PATCH_RETRIES,
) -> EciAttempt:
    """Patch `decided` (a request pod) onto ECI; on a refusal re-read it and patch the fresh
    version while the decision still holds, at most `retries` times. Each API call takes one of
    `slots`, so many pods retry in parallel under one bound."""
    namespace, name = str(decided.get("namespace")), str(decided.get("name"))
    target: Mapping[str, Any] = decided  # the version the next patch is made for
    sent = refused = 0

    def attempt(outcome: str, reason: str = "", *, gave_up: bool = False) -> EciAttempt:
        return EciAttempt(outcome, reason, refused, max(sent - 1, 0), gave_up)

    while True:
        sent += 1
        try:
            async with slots:
                await pods.patch_pod_json(namespace, name, eci_patch(target))
            return attempt("placed")
        except KubeError as exc:
            if exc.status == GONE:
                return attempt("skipped", f"{exc.status} {exc.reason}: pod gone")
            if exc.status not in REFUSED:
                return attempt("failed", _error_text(exc))
            refused += 1
            refusal = exc
        except KubeUnreachable as exc:
            return attempt("failed", str(exc))
        if sent > retries:
            still = f"still changing after {sent - 1} retries"
            return attempt("skipped", f"{refusal.status} {refusal.reason}; {still}", gave_up=True)
        await asyncio.sleep(RETRY_DELAY_SECONDS * (1 + RETRY_JITTER * random.random()))
        try:
            async with slots:
                fresh = await pods.get_pod(namespace, name)
        except KubeError as exc:
            if exc.status == GONE:
                return attempt("skipped", f"{exc.status} {exc.reason}: pod gone")
            return attempt("failed", _error_text(exc))
        except KubeUnreachable as exc:
            return attempt("failed", str(exc))
        version = (fresh.get("metadata") or {}).get("resourceVersion", "")
        if version == target.get("resourceVersion"):
            # Refused although the pod had not changed: a rejected patch, not a race.
            return attempt("failed", _error_text(refusal))
        why = stale_reason(decided, fresh)
        if why is not None:
            return attempt("skipped", f"{refusal.status} {refusal.reason}; {why}")
        spec, meta = fresh.get("spec") or {}, fresh.get("metadata") or {}
        target = {
            "resourceVersion": version,
            "tolerations": spec.get("tolerations") or [],
            "labels": meta.get("labels") or {},
        }


def _error_text(exc: KubeError) -> str:
    return f"{exc.status} {exc.reason}: {exc.message}"

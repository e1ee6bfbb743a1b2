"""A decide/v1 request too large for one invocation, decided in parts that cannot double-count
capacity, and the parts' replies merged into one plan.

Function Compute refuses a synchronous invocation whose payload is over 32 MB ("The maximum
payload for a synchronous invocation is 32 MB", FC FAQ "EntityTooLarge: payload size exceeds
maximum allowed size", https://www.alibabacloud.com/help/doc-detail/2527064.html; the HTTP trigger
has the same body limit, https://alibabacloud.com/help/en/functioncompute/fc-3-0/http-body-be-modified;
docs/cloud-facts.md). At ~1 KB per pod entry that is some 33k pending pods, which a burst can
reach. The remote deciders then split the request (`--decide-max-payload-bytes`, 32 MiB by
default, the limit `functions/readers.py` applies too).

The rule (tests/agent/test_batch_split.py holds it, against the naive split it replaces):

1. **Cut.** The pods are ordered by shape (first appearance; pods of one shape share one encoded
   shape, `pod_entries`), so a worker group stays in one part where it fits, and cut greedily into
   parts whose encoded request stays within the limit.
2. **Decide one part after the other, each on what the earlier ones left.** Every piece of
   capacity goes to one part only:
   - a pool an earlier part raised, or put pods on the upcoming nodes of, is shown to the later
     parts at the raised desired size with no upcoming room (`ready = desired`): the nodes that
     part asked for and the booting nodes it used are its own, room left on them included;
     the pool's headroom up to `max` is what remains;
   - `policy.maxNewNodesPerDecision` shrinks, and `policy.nodeQuota.nodes` grows, by the nodes
     the earlier parts added;
   - `eci.runningPods` grows by the pods the earlier parts sent to ECI.
   A pool no part has touched keeps its upcoming room for the next part. What a split loses is
   the room an earlier part left on nodes it added or used: it may ask for a node or two more
   than one decision would have, never for capacity counted twice.
3. **Merge.** One reply to the whole request: one `scale-pool` action per pool (`fromDesired` the
   request's, `toDesired` the last part's, the pods of every part), one `place-on-eci` action,
   `covered` and `unplaceable` in part order, the summary summed, and as `decisionId` a hash of
   the parts' ids (the function's own id would need the whole request in one place). Reasons of
   later parts speak of what they saw (`maxNewNodesPerDecision 40 reached` when earlier parts took
   60 of 100).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agent.decide.pod_entries import PodEntries, encode_request, entry_size
from functions.contract import PLACE_ON_ECI, SCALE_POOL

DEFAULT_MAX_PAYLOAD_BYTES = 32 * 1024 * 1024  # FC's synchronous invocation payload limit

DecideOne = Callable[[bytes, dict[str, Any]], Awaitable[dict[str, Any]]]


class TooLargeToSplit(ValueError):
    """Even one pod with the rest of the request is over the limit."""


def split_pods(request: Mapping[str, Any], max_bytes: int) -> list[PodEntries]:
    """The request's pods cut into parts whose request stays within `max_bytes` (rule 1)."""
    pods = request.get("pods") or []
    if not isinstance(pods, PodEntries):
        pods = PodEntries.encoded(pods)
    # Room for what the feed-forward rewrites (pool sizes, counts) may add to the envelope.
    base = len(encode_request({**request, "pods": []})) + 1024
    room = max_bytes - base
    groups: dict[object, list[dict[str, Any]]] = {}
    for entry in pods:
        shape = pods.shape_of(entry)
        groups.setdefault(shape if shape is not None else id(entry), []).append(entry)
    parts: list[PodEntries] = []
    current: list[dict[str, Any]] = []
    used = 0
    for members in groups.values():
        for entry in members:
            size = entry_size(pods, entry)  # its comma included
            if size > room:
                raise TooLargeToSplit(
                    f"pod {entry.get('uid')!r} and the rest of the request take {base + size} "
                    f"bytes, over the {max_bytes}-byte payload limit"
                )
            if used + size > room and current:
                parts.append(pods.subset(current))
                current, used = [], 0
            current.append(entry)
            used += size
    if current:
        parts.append(pods.subset(current))
    return parts


async def decide_in_parts(
    request: dict[str, Any], decide_one: DecideOne, *, max_bytes: int
) -> tuple[dict[str, Any], int]:
    """The merged reply to `request` and the number of invocations it took (rules 2 and 3).
    `decide_one(payload, sub_request)` answers one part, validated against that part."""
    parts = split_pods(request, max_bytes)
    state = _Capacity(request)
    replies: list[dict[str, Any]] = []
    for pods in parts:
        sub = state.request_for(pods)
        payload = encode_request(sub)
        if len(payload) > max_bytes:  # the envelope margin was not enough: never send it
            raise TooLargeToSplit(f"a part of {len(pods)} pods is {len(payload)} bytes")
        reply = await decide_one(payload, sub)
        state.took(reply)
        replies.append(reply)
    return merge_replies(request, replies), len(parts)


class _Capacity:
    """What the parts decided so far left for the next one (rule 2)."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self._request = request
        self._pools = {p["id"]: p for p in request.get("pools") or ()}
        self._desired = {pool_id: p["size"]["desired"] for pool_id, p in self._pools.items()}
        self._used: set[str] = set()  # pools whose upcoming room a part took
        self._added = 0
        self._eci = 0

    def request_for(self, pods: PodEntries) -> dict[str, Any]:
        request = self._request
        sub: dict[str, Any] = {**request, "pods": pods}
        if self._used:
            sub["pools"] = [self._pool(p) for p in request.get("pools") or ()]
        if self._added:
            policy = dict(request.get("policy") or {})
            cap = policy.get("maxNewNodesPerDecision", 100)
            policy["maxNewNodesPerDecision"] = max(0, cap - self._added)
            quota = policy.get("nodeQuota")
            if isinstance(quota, dict):
                policy["nodeQuota"] = {**quota, "nodes": quota.get("nodes", 0) + self._added}
            sub["policy"] = policy
        if self._eci:
            eci = dict(request.get("eci") or {})
            eci["runningPods"] = eci.get("runningPods", 0) + self._eci
            sub["eci"] = eci
        return sub

    def _pool(self, pool: Mapping[str, Any]) -> Mapping[str, Any]:
        if pool["id"] not in self._used:
            return pool
        desired = self._desired[pool["id"]]
        # No upcoming room left (ready = desired): it went to the part that used it.
        return {**pool, "size": {**pool["size"], "desired": desired, "ready": desired}}

    def took(self, reply: Mapping[str, Any]) -> None:
        for action in reply.get("actions") or ():
            if action.get("kind") == SCALE_POOL:
                pool_id = action["poolId"]
                self._added += max(0, action["toDesired"] - self._desired[pool_id])
                self._desired[pool_id] = max(self._desired[pool_id], action["toDesired"])
                self._used.add(pool_id)
            elif action.get("kind") == PLACE_ON_ECI:
                self._eci += len(action.get("pods") or ())
        for item in reply.get("covered") or ():
            self._used.add(item["poolId"])


def merge_replies(request: Mapping[str, Any], replies: list[dict[str, Any]]) -> dict[str, Any]:
    """One decide/v1 reply to `request` from the replies to its parts, in part order (rule 3)."""
    desired = {p["id"]: p["size"]["desired"] for p in request.get("pools") or ()}
    scale: dict[str, dict[str, Any]] = {}
    eci: dict[str, Any] | None = None
    covered: list[Any] = []
    unplaceable: list[Any] = []
    for reply in replies:
        for action in reply.get("actions") or ():
            if action.get("kind") == SCALE_POOL:
                merged = scale.get(action["poolId"])
                if merged is None:
                    merged = scale[action["poolId"]] = {
                        **action,
                        "fromDesired": desired[action["poolId"]],
                        "pods": [],
                        "reason": "",
                    }
                merged["toDesired"] = max(merged["toDesired"], action["toDesired"])
                _absorb(merged, action)
            elif action.get("kind") == PLACE_ON_ECI:
                if eci is None:
                    eci = {**action, "pods": [], "reason": ""}
                _absorb(eci, action)
        covered.extend(reply.get("covered") or ())
        unplaceable.extend(reply.get("unplaceable") or ())
    actions = [scale[pool_id] for pool_id in sorted(scale)]
    if eci is not None:
        actions.append(eci)
    summary: dict[str, Any] = {
        name: sum(int(r["summary"].get(name, 0)) for r in replies)
        for name in ("newNodes", "eciPods", "coveredPods", "unplaceablePods")
    }
    summary["estimatedCostPerHour"] = round(
        sum(float(r["summary"].get("estimatedCostPerHour", 0.0)) for r in replies), 6
    )
    deferred = sum(int(r["summary"].get("deferredPods", 0)) for r in replies)
    if deferred:
        summary["deferredPods"] = deferred
    ids = "/".join(str(r.get("decisionId", "")) for r in replies)
    return {
        "schema": request.get("schema"),
        "decisionId": hashlib.sha256(ids.encode()).hexdigest()[:16],
        "actions": actions,
        "covered": covered,
        "unplaceable": unplaceable,
        "summary": summary,
    }


def _absorb(merged: dict[str, Any], action: Mapping[str, Any]) -> None:
    merged["pods"].extend(action.get("pods") or ())
    reasons = [r for r in str(merged.get("reason") or "").split("; ") if r]
    for reason in str(action.get("reason") or "").split("; "):
        if reason and reason not in reasons:
            reasons.append(reason)
    merged["reason"] = "; ".join(reasons)

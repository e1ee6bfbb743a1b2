"""The scale-in/v1 reply: remove (grouped by pool), keep, pools, summary and the decisionId.

`remove` is sorted by pool id then node name, so the agent sends one
RemoveNodePoolNodes per run of a pool; `pools` has that grouping ready-made.
`keep` lists every other node of the request, by name, each with its reason (candidates
the time limit left unchecked are marked `"deferred": true`).
`decisionId` is the first 16 hex digits of sha256 over the request's fingerprint
(see `functions.scalein.validate`): it does not change with `now`.
"""

from __future__ import annotations

from functions.contract import DEFERRED
from functions.readers import fingerprint_bytes
from functions.scalein.model import ScaleInRequest
from functions.scalein.select import Selection
from functions.scalein.validate import SCHEMA

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def scale_in_decision_id(request: ScaleInRequest) -> str:
    """Stable short hash of the request's content without `now`."""
    # Imported here, as in functions.scaleout.reply: OpenSSL is cold-start time only a call needs.
    import hashlib

    return hashlib.sha256(fingerprint_bytes(request.fingerprint)).hexdigest()[:16]


def build_scale_in_reply(request: ScaleInRequest, selection: Selection) -> dict[str, Any]:
    """The reply JSON object for `selection`."""
    removed = sorted(selection.removed, key=lambda c: (c.pool.id, c.node.name))
    remove = [
        {
            "node": c.node.name,
            "poolId": c.pool.id,
            "instanceId": c.node.instance_id,
            "reason": c.reason,
            "evicts": [pod.uid for pod in c.evicts],
        }
        for c in removed
    ]
    pools: list[dict[str, Any]] = []
    for c in removed:
        if not pools or pools[-1]["poolId"] != c.pool.id:
            pools.append(
                {
                    "poolId": c.pool.id,
                    "fromDesired": c.pool.desired,
                    "toDesired": c.pool.desired,
                    "nodes": [],
                    "instanceIds": [],
                }
            )
        group = pools[-1]
        group["toDesired"] -= 1
        group["nodes"].append(c.node.name)
        group["instanceIds"].append(c.node.instance_id)
    keep = [
        {"node": k.node.name, "reason": k.reason, DEFERRED: True}
        if k.deferred
        else {"node": k.node.name, "reason": k.reason}
        for k in sorted(selection.kept, key=lambda k: k.node.name)
    ]
    saved = sum(c.pool.price_per_hour for c in removed)
    summary: dict[str, Any] = {
        "removeNodes": len(remove),
        "keepNodes": len(keep),
        "savedPerHour": round(saved, 6),
    }
    deferred = sum(1 for k in selection.kept if k.deferred)
    if deferred:
        summary["deferredNodes"] = deferred
    return {
        "schema": SCHEMA,
        "decisionId": scale_in_decision_id(request),
        "remove": remove,
        "pools": pools,
        "keep": keep,
        "summary": summary,
    }

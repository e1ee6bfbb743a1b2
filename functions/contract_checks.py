"""Whether a reply answers exactly its request, for decide/v1 and scale-in/v1.

The agent runs these on every reply before acting on it, whoever computed it (in process, Function
Compute, an HTTP trigger); they live next to the contract so the function's side and the agent's
side hold replies to the same rules. A reply that fails is refused with `ReplyMismatch`, whose
message names the first problem found.

decide/v1: the schema, a decisionId, every pod of the request exactly once (in an action, in
`covered` or in `unplaceable` with a reason), only known pools, a pool in at most one action, and
`toDesired` within [0, max], and no pool ACK's autoscaler owns (`ackAutoscaler`) in an action. scale-in/v1: every removal names a managed node of the request with
its own pool and instance id, is grouped once under its pool, and leaves each pool at or above
its min. In both, an entry the decision's time limit deferred (an `unplaceable` pod, a `keep`
node) is marked `"deferred": true`; the mark has no other value.
"""

from __future__ import annotations

from collections.abc import Mapping

from functions.contract import (
    ACK_AUTOSCALER,
    ACTION_KINDS,
    DECIDE_SCHEMA,
    DEFERRED,
    SCALE_IN_SCHEMA,
    SCALE_POOL,
)

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ReplyMismatch(ValueError):
    """The reply does not answer its request; the message says where and how."""


def check_reply(reply: object, request: Mapping[str, Any]) -> dict[str, Any]:
    """Check `reply` against the contract its request speaks (decide/v1 or scale-in/v1)."""
    if request.get("schema") == SCALE_IN_SCHEMA:
        return check_scale_in_reply(reply, request)
    return check_decide_reply(reply, request)


# --- decide/v1 ----------------------------------------------------------------------------


def check_decide_reply(reply: object, request: Mapping[str, Any]) -> dict[str, Any]:
    """The reply, if it is a decide/v1 reply to exactly this request; ReplyMismatch otherwise."""
    checked = _envelope(reply, DECIDE_SCHEMA)
    pools = {p["id"]: p for p in request.get("pools", ())}
    expected = [p["uid"] for p in request.get("pods", ())]
    claims = _PodClaims()
    _check_actions(_list(checked, "actions"), pools=pools, claims=claims)
    _check_covered(_list(checked, "covered"), pools=pools, claims=claims)
    _check_unplaceable(_list(checked, "unplaceable"), claims=claims)
    claims.check_complete(expected)
    return checked


class _PodClaims:
    """Where each pod of the reply went; a pod may go to one place only."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def claim(self, uid: object, where: str) -> None:
        if not isinstance(uid, str):
            raise ReplyMismatch(f"{where}: pod uid {uid!r} is not a string")
        if uid in self.seen:
            raise ReplyMismatch(f"pod {uid} appears twice ({self.seen[uid]} and {where})")
        self.seen[uid] = where

    def check_complete(self, expected: list[str]) -> None:
        unknown = set(self.seen) - set(expected)
        if unknown:
            raise ReplyMismatch(f"the reply names pods not in the request: {sorted(unknown)[:5]}")
        missing = [uid for uid in expected if uid not in self.seen]
        if missing:
            raise ReplyMismatch(
                f"{len(missing)} pods of the request are missing, e.g. {missing[:5]}"
            )


def _check_actions(
    actions: list[Any], *, pools: Mapping[str, Mapping[str, Any]], claims: _PodClaims
) -> None:
    scaled: set[str] = set()
    for i, action in enumerate(actions):
        where = f"actions[{i}]"
        if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
            raise ReplyMismatch(f"{where}: unknown action {action!r}")
        if action["kind"] == SCALE_POOL:
            _check_scale_pool(action, where=where, pools=pools, scaled=scaled)
        pods = action.get("pods")
        if not isinstance(pods, list):
            raise ReplyMismatch(f"{where}: pods is not a list")
        for uid in pods:
            claims.claim(uid, where)


def _check_scale_pool(
    action: Mapping[str, Any],
    *,
    where: str,
    pools: Mapping[str, Mapping[str, Any]],
    scaled: set[str],
) -> None:
    pool_id = action.get("poolId")
    # Request pool ids are strings: anything else (null included) is no pool of the request.
    if not isinstance(pool_id, str) or pool_id not in pools:
        raise ReplyMismatch(f"{where}: unknown pool {pool_id!r}")
    if pool_id in scaled:
        raise ReplyMismatch(f"{where}: pool {pool_id} appears in two actions")
    scaled.add(pool_id)
    if pools[pool_id].get(ACK_AUTOSCALER) is not None:
        raise ReplyMismatch(f"{where}: {pool_id} is owned by ACK's autoscaler, never scaled")
    to = action.get("toDesired")
    if type(to) is not int or not 0 <= to <= pools[pool_id]["size"]["max"]:
        raise ReplyMismatch(f"{where}: toDesired {to!r} outside [0, max] of {pool_id}")


def _check_covered(
    covered: list[Any], *, pools: Mapping[str, Mapping[str, Any]], claims: _PodClaims
) -> None:
    for i, item in enumerate(covered):
        if not isinstance(item, dict) or item.get("poolId") not in pools:
            raise ReplyMismatch(f"covered[{i}]: unknown pool in {item!r}")
        claims.claim(item.get("pod"), f"covered[{i}]")


def _check_unplaceable(unplaceable: list[Any], *, claims: _PodClaims) -> None:
    for i, item in enumerate(unplaceable):
        if not isinstance(item, dict) or not isinstance(item.get("reason"), str):
            raise ReplyMismatch(f"unplaceable[{i}]: no reason in {item!r}")
        _check_deferred(item, where=f"unplaceable[{i}]")
        claims.claim(item.get("pod"), f"unplaceable[{i}]")


# --- scale-in/v1 --------------------------------------------------------------------------


def check_scale_in_reply(reply: object, request: Mapping[str, Any]) -> dict[str, Any]:
    """The reply, if it is a scale-in/v1 reply to exactly this request; ReplyMismatch otherwise.
    Every removal must name a managed node of the request with its own pool and instance id,
    be grouped once under its pool, and leave each pool at or above its min."""
    checked = _envelope(reply, SCALE_IN_SCHEMA)
    pools = {p["id"]: p for p in request.get("pools", ())}
    nodes = {n["name"]: n for n in request.get("nodes", ())}
    removed = _check_removals(_list(checked, "remove"), nodes=nodes)
    grouped = _check_pool_groups(_list(checked, "pools"), pools=pools, removed=removed)
    if grouped != set(removed):
        raise ReplyMismatch(f"removals not grouped by pool: {sorted(set(removed) - grouped)[:5]}")
    for i, item in enumerate(_list(checked, "keep")):
        if isinstance(item, dict):
            _check_deferred(item, where=f"keep[{i}]")
    return checked


def _check_removals(
    remove: list[Any], *, nodes: Mapping[Any, Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """Each removal by node name, once each is known to remove a managed node of the request."""
    removed: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(remove):
        where = f"remove[{i}]"
        if not isinstance(item, dict):
            raise ReplyMismatch(f"{where}: not an object")
        node = nodes.get(item.get("node"))
        if node is None or node.get("poolId") is None:
            raise ReplyMismatch(
                f"{where}: {item.get('node')!r} is not a managed node of the request"
            )
        same_pool = item.get("poolId") == node["poolId"]
        if not same_pool or item.get("instanceId") != node.get("instanceId"):
            raise ReplyMismatch(f"{where}: pool or instance id differ from the request's node")
        if item["node"] in removed:
            raise ReplyMismatch(f"{where}: node {item['node']} is removed twice")
        if not isinstance(item.get("evicts", []), list):
            raise ReplyMismatch(f"{where}: evicts is not a list")
        removed[item["node"]] = item
    return removed


def _check_pool_groups(
    groups: list[Any],
    *,
    pools: Mapping[str, Mapping[str, Any]],
    removed: Mapping[str, Mapping[str, Any]],
) -> set[str]:
    """The names of the removals the `pools` groups hold, each once under its own pool."""
    grouped: set[str] = set()
    for i, group in enumerate(groups):
        where = f"pools[{i}]"
        if not isinstance(group, dict) or group.get("poolId") not in pools:
            raise ReplyMismatch(f"{where}: unknown pool in {group!r}")
        names = group.get("nodes")
        if not isinstance(names, list) or not names:
            raise ReplyMismatch(f"{where}: nodes is not a non-empty list")
        for name in names:
            item = removed.get(name)
            if item is None or item["poolId"] != group["poolId"] or name in grouped:
                raise ReplyMismatch(
                    f"{where}: node {name!r} is not a removal of this pool, or twice"
                )
            grouped.add(name)
        size = pools[group["poolId"]]["size"]
        if size["desired"] - len(names) < size["min"]:
            raise ReplyMismatch(f"{where}: removing {len(names)} takes {group['poolId']} below min")
    return grouped


# --- shared -------------------------------------------------------------------------------


def _check_deferred(item: Mapping[str, Any], *, where: str) -> None:
    # Deferred entries are what the agent asks about again next round: the mark must be exact.
    if DEFERRED in item and item[DEFERRED] is not True:
        raise ReplyMismatch(f"{where}: {DEFERRED} is {item[DEFERRED]!r}, expected true or absent")


def _envelope(reply: object, schema: str) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise ReplyMismatch(f"the reply is not a JSON object but {type(reply).__name__}")
    if reply.get("schema") != schema:
        raise ReplyMismatch(f"schema is {reply.get('schema')!r}, expected {schema!r}")
    if not isinstance(reply.get("decisionId"), str):
        raise ReplyMismatch("decisionId is missing")
    return reply


def _list(reply: Mapping[str, Any], name: str) -> list[Any]:
    value = reply.get(name)
    if not isinstance(value, list):
        raise ReplyMismatch(f"{name} is not a list")
    return value

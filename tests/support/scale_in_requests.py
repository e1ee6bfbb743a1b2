"""Builders for scale-in/v1 requests in tests: small dicts with the contract's shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

NOW = "2026-11-29T05:00:00Z"
# Two minutes before NOW: past the default 60 s unneeded time and 120 s cool-down.
LONG_AGO = "2026-11-29T04:58:00Z"
CREATED = "2026-11-29T04:00:00Z"


def ago(seconds: int) -> str:
    """NOW minus `seconds` as RFC 3339."""
    moment = datetime(2026, 11, 29, 5, tzinfo=timezone.utc) - timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    uid: str, *, cpu: str = "1", memory: str = "1Gi", owner: str = "RayCluster", **fields: Any
) -> dict[str, Any]:
    """A Running Ray worker pod; keyword fields override or add contract fields."""
    body: dict[str, Any] = {
        "uid": uid,
        "namespace": "ray",
        "name": f"rc-worker-{uid}",
        "requests": {"cpu": cpu, "memory": memory},
        "ownerKind": owner,
        "rayNodeType": "worker",
        "pdbBlocked": False,
        "nodeSelector": {},
        "affinity": {},
        "tolerations": [],
        "phase": "Running",
    }
    body.update(fields)
    return body


def daemon(uid: str) -> dict[str, Any]:
    """A DaemonSet pod (log agent): small, no Ray role."""
    return pod(
        uid,
        cpu="100m",
        memory="128Mi",
        owner="DaemonSet",
        rayNodeType=None,
        namespace="kube-system",
        name=f"logtail-{uid}",
    )


def node(
    name: str,
    *pods: dict[str, Any],
    pool: str | None = "np-cpu",
    cpu: str = "4",
    memory: str = "16Gi",
    **fields: Any,
) -> dict[str, Any]:
    """A Ready node of `pool` (None: unmanaged), empty and underutilized since LONG_AGO."""
    body: dict[str, Any] = {
        "name": name,
        "poolId": pool,
        "instanceId": f"i-{name}" if pool is not None else None,
        "ready": True,
        "createdAt": CREATED,
        "unschedulable": False,
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "labels": {},
        "taints": [],
        "pods": list(pods),
        "emptySince": LONG_AGO,
        "underutilizedSince": LONG_AGO,
    }
    body.update(fields)
    return body


def pool(
    pool_id: str = "np-cpu",
    *,
    min_size: int = 0,
    desired: int | None = None,
    price: float = 0.9,
    **fields: Any,
) -> dict[str, Any]:
    """A managed pool; `desired` None is filled in by `request` with the pool's node count."""
    body: dict[str, Any] = {
        "id": pool_id,
        "size": {"min": min_size, "desired": desired},
        "pricePerHour": price,
        "lastScaleUpAt": None,
    }
    body.update(fields)
    return body


def request(
    nodes: list[dict[str, Any]], pools: list[dict[str, Any]] | None = None, **policy: Any
) -> dict[str, Any]:
    """A scale-in/v1 request; pools default to one np-cpu pool with min 0."""
    pools = [pool()] if pools is None else pools
    for body in pools:
        if body["size"]["desired"] is None:
            body["size"]["desired"] = sum(1 for n in nodes if n["poolId"] == body["id"])
    return {
        "schema": "scale-in/v1",
        "now": NOW,
        "cluster": {"id": "c-1"},
        "pools": pools,
        "nodes": nodes,
        "policy": policy,
    }


def removed(reply: dict[str, Any]) -> list[str]:
    """Names of the nodes the reply removes, in reply order."""
    return [entry["node"] for entry in reply["remove"]]


def kept(reply: dict[str, Any]) -> dict[str, str]:
    """Node name -> keep reason."""
    return {entry["node"]: entry["reason"] for entry in reply["keep"]}

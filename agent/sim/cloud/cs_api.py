"""The ACK CS API emulator: the node-pool slice of alibabacloud-cs20151215 (ROA, 2015-12-15).

Turns signed wire requests into calls on a `NodePoolService` and its values into the exact JSON
shapes the SDK's response models read (paths, methods, query names and field names taken from
alibabacloud_cs20151215 client.py and models/). Every request passes the ACS3 gateway check and
the fault plan first; every write is journaled so tests and reports can count scale requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.sim.cloud.acs3 import Acs3Verifier, error_response, new_request_id, signed_request_from
from agent.sim.cloud.cloud_model import CloudError, NodePoolService, NodeView, PoolView, TaskView
from agent.sim.cloud.credentials import KeyRing
from agent.sim.faults import FaultPlan

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOST_ID = "cs.aliyuncs.com"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# ACK's per-call ceiling on nodes added (ModifyClusterNodePool docs: at most 500 per call).
MAX_NODES_ADDED_PER_CALL = 500


@dataclass(frozen=True)
class WriteRecord:
    """One write the emulator received, whatever became of it."""

    action: str
    method: str
    path: str
    summary: Mapping[str, Any]
    time: float
    status: int
    code: str | None  # the error code when refused, None on success
    task_id: str | None = None


@dataclass
class _CsState:
    writes: list[WriteRecord] = field(default_factory=list)


CS_STATE = web.AppKey("cs_state", _CsState)
_ACTION = web.RequestKey("cs_action", str)
_SUMMARY: web.RequestKey[dict[str, Any]] = web.RequestKey("cs_summary", dict)
_TASK = web.RequestKey("cs_task", str)
_REQUEST_ID = web.RequestKey("cs_request_id", str)


def writes_of(app: web.Application) -> list[WriteRecord]:
    """The write journal of an app built by `build_cs_app`, oldest first."""
    return app[CS_STATE].writes


def scale_requests_of(app: web.Application) -> list[WriteRecord]:
    """Accepted writes that changed a pool's size target (Modify with desired_size, or Scale)."""
    return [
        w
        for w in writes_of(app)
        if w.code is None and (w.action == "ScaleClusterNodePool" or "desired_size" in w.summary)
    ]


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def pool_json(
    pool: PoolView, *, region_id: str, now: float, created: float = 0.0
) -> dict[str, Any]:
    """A node pool in the shape of DescribeClusterNodePools' `nodepools[]` items."""
    scaling = pool.initial_nodes > 0 or pool.removing_nodes > 0 or pool.total_nodes != pool.desired
    return {
        "nodepool_info": {
            "nodepool_id": pool.pool_id,
            "name": pool.name,
            "region_id": region_id,
            "type": "ess",
            "is_default": False,
            "resource_group_id": "",
            "created": _rfc3339(created),
            "updated": _rfc3339(now),
        },
        "scaling_group": {
            "desired_size": pool.desired,
            "instance_types": list(pool.instance_types),
            "vswitch_ids": list(pool.vswitch_ids),
            "scaling_group_id": f"asg-{pool.pool_id}",
            "instance_charge_type": "PostPaid",
            "multi_az_policy": "BALANCE",
            "system_disk_category": "cloud_essd",
            "system_disk_size": 120,
            "spot_strategy": "NoSpot",
            "image_type": "AliyunLinux3",
            "tags": [],
        },
        "auto_scaling": {
            "enable": pool.auto_scaling_enabled,
            "min_instances": pool.min_size,
            "max_instances": pool.max_size,
            "type": "cpu",
        },
        "status": {
            "total_nodes": pool.total_nodes,
            "healthy_nodes": pool.healthy_nodes,
            "serving_nodes": pool.serving_nodes,
            "initial_nodes": pool.initial_nodes,
            "failed_nodes": pool.failed_nodes,
            "removing_nodes": pool.removing_nodes,
            "offline_nodes": 0,
            "state": "scaling" if scaling else "active",
        },
        "kubernetes_config": {
            "labels": [{"key": k, "value": v} for k, v in sorted(pool.labels.items())],
            "taints": [
                {
                    "key": t.get("key", ""),
                    "value": t.get("value", ""),
                    "effect": t.get("effect", ""),
                }
                for t in pool.taints
            ],
            "runtime": "containerd",
            "runtime_version": "1.6.28",
            "cpu_policy": "none",
            "cms_enabled": False,
            "unschedulable": False,
        },
        "max_nodes": pool.max_size,
    }


def node_json(node: NodeView) -> dict[str, Any]:
    """A node in the shape of DescribeClusterNodes' `nodes[]` items."""
    return {
        "instance_id": node.instance_id,
        "instance_name": node.node_name,
        "node_name": node.node_name,
        "host_name": node.node_name,
        "nodepool_id": node.pool_id,
        "instance_type": node.instance_type,
        "instance_type_family": node.instance_type.rsplit(".", 1)[0],
        "ip_address": [node.ip] if node.ip else [],
        "state": node.state,
        "node_status": node.node_status,
        "instance_status": "Running" if node.state == "running" else "Pending",
        "instance_role": "Worker",
        "instance_charge_type": "PostPaid",
        "spot_strategy": "NoSpot",
        "is_aliyun_node": True,
        "source": "ess_attach",
        "creation_time": node.creation_time,
        "expired_time": "",
        "error_message": "",
    }


def task_json(task: TaskView, *, cluster_id: str) -> dict[str, Any]:
    """A task in the shape of DescribeTaskInfo's body."""
    body: dict[str, Any] = {
        "task_id": task.task_id,
        "task_type": task.task_type,
        "state": task.state,
        "created": task.created,
        "updated": task.updated,
        "cluster_id": cluster_id,
        "target": {"id": cluster_id, "type": "cluster"},
    }
    if task.error:
        # Services report failures as "Code: message" (e.g. ECS's OperationDenied.NoStock).
        code, sep, message = task.error.partition(": ")
        if not sep or " " in code:
            code, message = "TaskFailed", task.error
        body["error"] = {"code": code, "message": message}
    return body


def _parse_bool(value: str | None, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() == "true"


def _parse_int(value: str | None, *, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise CloudError(
            400, "InvalidParameter", f"{name} must be an integer, got {value!r}."
        ) from None


def _parse_json_list(value: str | None, *, name: str) -> list[str]:
    """`instance_ids` / `nodes` arrive as one query value holding a JSON list (the SDK's 'json' style)."""
    if not value:
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = [v for v in value.split(",") if v]
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise CloudError(400, "InvalidParameter", f"{name} must be a JSON list of strings.")
    return parsed


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise CloudError(400, "InvalidParameter", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise CloudError(400, "InvalidParameter", "The request body must be a JSON object.")
    return body


def build_cs_app(
    service: NodePoolService,
    *,
    keys: Mapping[str, str] | KeyRing,
    faults: FaultPlan | None = None,
    now: Callable[[], float],
    wall_clock: Callable[[], float] = time.time,
) -> web.Application:
    """An aiohttp app serving the CS node-pool API over `service`, verifying ACS3 signatures.

    `now` is the simulation's clock (journal times, timestamps in replies); `wall_clock` is what
    x-acs-date and STS expiry are checked against, since the SDKs stamp requests with wall time
    and a sped-up simulation would otherwise drift out of the 15-minute window.
    """
    verifier = Acs3Verifier(KeyRing.of(keys), now=wall_clock)
    state = _CsState()
    started = now()  # reported as every pool's creation time

    def check_cluster(request: web.Request) -> None:
        cid = request.match_info["cluster_id"]
        if cid != service.cluster_id:
            raise CloudError(404, "ErrorClusterNotFound", f"cluster {cid} not found")

    def find_pool(request: web.Request) -> PoolView:
        check_cluster(request)
        pool_id = request.match_info["nodepool_id"]
        for pool in service.describe_pools():
            if pool.pool_id == pool_id:
                return pool
        raise CloudError(404, "ErrorNodePoolNotFound", f"nodepool {pool_id} not found")

    def task_reply(task: TaskView, request: web.Request, **extra: Any) -> web.Response:
        request[_TASK] = task.task_id
        return web.json_response({**extra, "task_id": task.task_id})

    async def describe_pools(request: web.Request) -> web.Response:
        check_cluster(request)
        name = request.query.get("NodepoolName")
        pools = [p for p in service.describe_pools() if not name or p.name == name]
        t = now()
        return web.json_response(
            {
                "nodepools": [
                    pool_json(p, region_id=service.region_id, now=t, created=started) for p in pools
                ]
            }
        )

    async def describe_pool(request: web.Request) -> web.Response:
        pool = find_pool(request)
        return web.json_response(
            pool_json(pool, region_id=service.region_id, now=now(), created=started)
        )

    async def modify_pool(request: web.Request) -> web.Response:
        body = await _json_body(request)
        scaling_group = body.get("scaling_group") or {}
        desired = scaling_group.get("desired_size") if isinstance(scaling_group, dict) else None
        request[_SUMMARY] = {"nodepool_id": request.match_info["nodepool_id"]}
        if desired is not None:
            request[_SUMMARY]["desired_size"] = desired
        pool = find_pool(request)
        # Only desired_size is modelled; the SDK also sends other fields and empty arrays, which
        # must not be read as "clear the labels/taints/instance types".
        if desired is None:
            desired = pool.desired
        elif not isinstance(desired, int) or isinstance(desired, bool) or desired < 0:
            raise CloudError(
                400,
                "InvalidParameter",
                f"desired_size must be a non-negative integer, got {desired!r}.",
            )
        _check_target(pool, desired)
        task = service.set_desired(pool.pool_id, desired)
        return task_reply(task, request, nodepool_id=pool.pool_id, request_id=request[_REQUEST_ID])

    async def scale_pool(request: web.Request) -> web.Response:
        body = await _json_body(request)
        count = body.get("count")
        request[_SUMMARY] = {"nodepool_id": request.match_info["nodepool_id"], "count": count}
        pool = find_pool(request)
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise CloudError(
                400, "InvalidParameter", f"count must be a positive integer, got {count!r}."
            )
        _check_target(pool, pool.desired + count)
        task = service.scale_by(pool.pool_id, count)
        return task_reply(task, request)

    async def remove_nodes(request: web.Request) -> web.Response:
        q = request.query
        instance_ids = _parse_json_list(q.get("instance_ids"), name="instance_ids")
        node_names = _parse_json_list(q.get("nodes"), name="nodes")
        drain = _parse_bool(q.get("drain_node"), default=False)
        release = _parse_bool(q.get("release_node"), default=False)
        request[_SUMMARY] = {
            "nodepool_id": request.match_info["nodepool_id"],
            "instance_ids": instance_ids,
            "nodes": node_names,
            "drain_node": drain,
            "release_node": release,
        }
        pool = find_pool(request)
        if node_names:
            by_name = {n.node_name: n.instance_id for n in service.describe_nodes(pool.pool_id)}
            unknown = [n for n in node_names if n not in by_name]
            if unknown:
                raise CloudError(
                    400, "InvalidParameter", f"nodes not in nodepool {pool.pool_id}: {unknown}"
                )
            instance_ids = [*instance_ids, *(by_name[n] for n in node_names)]
        if not instance_ids:
            raise CloudError(
                400, "InvalidParameter", "instance_ids or nodes must name at least one node."
            )
        task = service.remove_nodes(pool.pool_id, instance_ids, drain=drain, release=release)
        return task_reply(task, request, request_id=request[_REQUEST_ID])

    async def describe_nodes(request: web.Request) -> web.Response:
        check_cluster(request)
        q = request.query
        nodes = service.describe_nodes(q.get("nodepool_id") or None)
        if q.get("state") and q["state"] != "all":
            nodes = [n for n in nodes if n.state == q["state"]]
        if q.get("instanceIds"):
            wanted = set(q["instanceIds"].split(","))
            nodes = [n for n in nodes if n.instance_id in wanted]
        page_number = max(1, _parse_int(q.get("pageNumber"), name="pageNumber", default=1))
        page_size = _parse_int(q.get("pageSize"), name="pageSize", default=DEFAULT_PAGE_SIZE)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        start = (page_number - 1) * page_size
        return web.json_response(
            {
                "nodes": [node_json(n) for n in nodes[start : start + page_size]],
                "page": {
                    "page_number": page_number,
                    "page_size": page_size,
                    "total_count": len(nodes),
                },
            }
        )

    async def describe_task(request: web.Request) -> web.Response:
        task = service.describe_task(request.match_info["task_id"])
        return web.json_response(task_json(task, cluster_id=service.cluster_id))

    @web.middleware
    async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = new_request_id()
        request[_REQUEST_ID] = request_id
        request[_SUMMARY] = {}
        route = request.match_info.route
        request[_ACTION] = route.name or "Unknown"
        try:
            verifier.verify(await signed_request_from(request))
            if faults is not None:
                await _apply_faults(faults)
            response = await handler(request)
        except CloudError as err:
            response = error_response(err, request_id=request_id, host_id=HOST_ID)
        except web.HTTPException as exc:
            code = "InvalidAction.NotFound" if exc.status == 404 else "UnsupportedHTTPMethod"
            unknown = CloudError(
                exc.status, code, f"{request.method} {request.path} is not an API of this service."
            )
            response = error_response(unknown, request_id=request_id, host_id=HOST_ID)
        response.headers["x-acs-request-id"] = request_id
        if request.method != "GET":
            state.writes.append(_record(request, response, now()))
        return response

    app = web.Application(middlewares=[gateway])
    app[CS_STATE] = state
    r = app.router
    r.add_get("/clusters/{cluster_id}/nodepools", describe_pools, name="DescribeClusterNodePools")
    r.add_get(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}",
        describe_pool,
        name="DescribeClusterNodePoolDetail",
    )
    r.add_put(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}", modify_pool, name="ModifyClusterNodePool"
    )
    r.add_post(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}", scale_pool, name="ScaleClusterNodePool"
    )
    r.add_delete(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}/nodes",
        remove_nodes,
        name="RemoveNodePoolNodes",
    )
    r.add_get("/clusters/{cluster_id}/nodes", describe_nodes, name="DescribeClusterNodes")
    r.add_get("/tasks/{task_id}", describe_task, name="DescribeTaskInfo")
    return app


def _check_target(pool: PoolView, desired: int) -> None:
    # Error code not verified against live ACK (its docs list no code for this case); kept
    # explicit so the agent's handling of a refused scale-up is exercised.
    if desired > pool.max_size:
        raise CloudError(
            400,
            "ErrorNodePoolDesiredSizeExceedsMax",
            f"desired_size {desired} exceeds max_instances {pool.max_size} of nodepool {pool.pool_id}.",
        )
    if desired - pool.desired > MAX_NODES_ADDED_PER_CALL:
        raise CloudError(
            400,
            "InvalidParameter",
            f"at most {MAX_NODES_ADDED_PER_CALL} nodes can be added in one call, asked for {desired - pool.desired}.",
        )


async def _apply_faults(faults: FaultPlan) -> None:
    if faults.cs_latency_seconds > 0:
        await asyncio.sleep(faults.cs_latency_seconds)
    if faults.roll(faults.cs_throttle_ratio):
        raise CloudError(400, "Throttling.User", "Request was denied due to user flow control.")
    if faults.roll(faults.cs_error_ratio):
        raise CloudError(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        )


def _record(request: web.Request, response: web.StreamResponse, at: float) -> WriteRecord:
    code = None
    if response.status >= 400 and isinstance(response, web.Response) and response.body:
        try:
            code = json.loads(bytes(response.body)).get("Code")  # type: ignore[arg-type]
        except ValueError:
            code = "Unknown"
    summary: dict[str, Any] = request[_SUMMARY]
    return WriteRecord(
        action=request[_ACTION],
        method=request.method,
        path=request.path,
        summary=dict(summary),
        time=at,
        status=response.status,
        code=code,
        task_id=request.get(_TASK),
    )

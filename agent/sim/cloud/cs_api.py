"""The ACK CS API emulator: the node-pool slice of alibabacloud-cs20151215 (ROA, 2015-12-15).

Turns signed wire requests into calls on a `NodePoolService` and its values into the exact JSON
shapes the SDK's response models read (paths, methods, query names and field names taken from
alibabacloud_cs20151215 client.py and models/; the shapes themselves are in `cs_shapes`). Every
request passes the ACS3 gateway check and the fault plan first; every write is journaled so tests
and reports can count scale requests.
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
from agent.sim.cloud.cloud_model import (
    MAX_NODES_ADDED_PER_CALL,
    CloudError,
    NodePoolService,
    PoolView,
    TaskView,
    check_desired,
)
from agent.sim.cloud.credentials import KeyRing, format_expiration
from agent.sim.cloud.cs_shapes import node_json, pool_json, task_json
from agent.sim.faults import CS_5XX, CS_THROTTLED, FaultPlan

__all__ = [
    "CS_STATE",
    "DEFAULT_PAGE_SIZE",
    "HOST_ID",
    "MAX_NODES_ADDED_PER_CALL",
    "MAX_PAGE_SIZE",
    "CsHandlers",
    "WriteRecord",
    "build_cs_app",
    "node_json",
    "pool_json",
    "scale_requests_of",
    "task_json",
    "writes_of",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOST_ID = "cs.aliyuncs.com"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


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
    body: Any = None  # the JSON body exactly as received (None without one)


@dataclass
class _CsState:
    writes: list[WriteRecord] = field(default_factory=list)


CS_STATE = web.AppKey("cs_state", _CsState)
_ACTION = web.RequestKey("cs_action", str)
_SUMMARY: web.RequestKey[dict[str, Any]] = web.RequestKey("cs_summary", dict)
_TASK = web.RequestKey("cs_task", str)
_REQUEST_ID = web.RequestKey("cs_request_id", str)
_BODY: web.RequestKey[Any] = web.RequestKey("cs_body", object)


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
    request[_BODY] = body
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
    user_kubeconfig: Callable[[], str] | None = None,
) -> web.Application:
    """An aiohttp app serving the CS node-pool API over `service`, verifying ACS3 signatures.

    `user_kubeconfig` gives the kubeconfig text DescribeClusterUserKubeconfig hands out (the
    simulated API server's address and credentials); without it that action answers 404.

    `now` is the simulation's clock (journal times, timestamps in replies); `wall_clock` is what
    x-acs-date and STS expiry are checked against, since the SDKs stamp requests with wall time
    and a sped-up simulation would otherwise drift out of the 15-minute window.
    """
    verifier = Acs3Verifier(KeyRing.of(keys), now=wall_clock)
    handlers = CsHandlers(service, verifier=verifier, faults=faults, now=now)
    kubeconfigs = UserKubeconfigs(service.cluster_id, user_kubeconfig, wall_clock=wall_clock)
    app = web.Application(middlewares=[handlers.gateway])
    app[CS_STATE] = handlers.state
    r = app.router
    r.add_get(
        "/clusters/{cluster_id}/nodepools",
        handlers.describe_pools,
        name="DescribeClusterNodePools",
    )
    r.add_get(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}",
        handlers.describe_pool,
        name="DescribeClusterNodePoolDetail",
    )
    r.add_put(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}",
        handlers.modify_pool,
        name="ModifyClusterNodePool",
    )
    r.add_post(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}",
        handlers.scale_pool,
        name="ScaleClusterNodePool",
    )
    r.add_delete(
        "/clusters/{cluster_id}/nodepools/{nodepool_id}/nodes",
        handlers.remove_nodes,
        name="RemoveNodePoolNodes",
    )
    r.add_get("/clusters/{cluster_id}/nodes", handlers.describe_nodes, name="DescribeClusterNodes")
    r.add_get("/tasks/{task_id}", handlers.describe_task, name="DescribeTaskInfo")
    r.add_get("/quota", handlers.describe_quota, name="DescribeUserQuota")
    r.add_get(
        "/k8s/{cluster_id}/user_config",
        kubeconfigs.describe,
        name="DescribeClusterUserKubeconfig",
    )
    return app


class UserKubeconfigs:
    """DescribeClusterUserKubeconfig: GET /k8s/{cluster_id}/user_config (alibabacloud_cs20151215
    `describe_cluster_user_kubeconfig_with_options`), behind the same gateway as every action,
    so only a verified caller (an AccessKey or STS token the ring knows) gets a kubeconfig.

    The request model documents `TemporaryDurationMinutes` as 15..4320 (15 minutes to 3 days) and
    says that without it "the system determines a longer validity period": that period is not
    documented, so a kubeconfig asked without it is given the longest documented one, 3 days. A
    value out of range is refused 400 (ACK's code for it is not documented: `InvalidParameter`,
    as for the emulator's other bad parameters). The reply is the response body model's
    `{"config": <kubeconfig YAML>, "expiration": <RFC 3339 UTC>}`; the expiration is on the wall
    clock, as the SDKs' STS expiry is. `PrivateIpAddress` picks the internal or public endpoint;
    the simulator has one address, so both get it. Not modelled: the API server does not refuse
    the kubeconfig's credentials once it has expired (the simulated API server has one static
    token), so only the caller's own cache decides when to ask again.
    """

    MIN_MINUTES, MAX_MINUTES = 15, 4320

    def __init__(
        self,
        cluster_id: str,
        text: Callable[[], str] | None,
        *,
        wall_clock: Callable[[], float],
    ) -> None:
        self._cluster_id = cluster_id
        self._text = text
        self._wall_clock = wall_clock
        self.issued = 0

    async def describe(self, request: web.Request) -> web.Response:
        cid = request.match_info["cluster_id"]
        if cid != self._cluster_id or self._text is None:
            raise CloudError(404, "ErrorClusterNotFound", f"cluster {cid} not found")
        raw = request.query.get("TemporaryDurationMinutes")
        minutes = _parse_int(raw, name="TemporaryDurationMinutes", default=self.MAX_MINUTES)
        if not self.MIN_MINUTES <= minutes <= self.MAX_MINUTES:
            raise CloudError(
                400,
                "InvalidParameter",
                f"TemporaryDurationMinutes must be between {self.MIN_MINUTES} and "
                f"{self.MAX_MINUTES}, got {minutes}.",
            )
        self.issued += 1
        expiration = format_expiration(self._wall_clock() + minutes * 60)
        return web.json_response({"config": self._text(), "expiration": expiration})


class CsHandlers:
    """The CS API operations over one `NodePoolService`, one method per route, plus the gateway
    middleware (signature, faults, error replies, write journal); `build_cs_app` wires them."""

    def __init__(
        self,
        service: NodePoolService,
        *,
        verifier: Acs3Verifier,
        faults: FaultPlan | None,
        now: Callable[[], float],
    ) -> None:
        self.state = _CsState()
        self._service = service
        self._verifier = verifier
        self._faults = faults
        self._now = now
        self._started = now()  # reported as every pool's creation time

    # -- the gateway ---------------------------------------------------------------------

    @web.middleware
    async def gateway(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request: ACS3 check, faults, the operation, CS's error replies, the journal."""
        request_id = new_request_id()
        request[_REQUEST_ID] = request_id
        request[_SUMMARY] = {}
        route = request.match_info.route
        request[_ACTION] = route.name or "Unknown"
        try:
            self._verifier.verify(await signed_request_from(request))
            if self._faults is not None:
                await _apply_faults(self._faults)
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
            self.state.writes.append(_record(request, response, self._now()))
        return response

    def _check_cluster(self, request: web.Request) -> None:
        cid = request.match_info["cluster_id"]
        if cid != self._service.cluster_id:
            raise CloudError(404, "ErrorClusterNotFound", f"cluster {cid} not found")

    def _find_pool(self, request: web.Request) -> PoolView:
        self._check_cluster(request)
        pool_id = request.match_info["nodepool_id"]
        for pool in self._service.describe_pools():
            if pool.pool_id == pool_id:
                return pool
        raise CloudError(404, "ErrorNodePoolNotFound", f"nodepool {pool_id} not found")

    @staticmethod
    def _task_reply(task: TaskView, request: web.Request, **extra: Any) -> web.Response:
        request[_TASK] = task.task_id
        return web.json_response({**extra, "task_id": task.task_id})

    # -- node pools ----------------------------------------------------------------------

    async def describe_pools(self, request: web.Request) -> web.Response:
        """DescribeClusterNodePools: GET /clusters/{cluster_id}/nodepools[?NodepoolName=]."""
        self._check_cluster(request)
        name = request.query.get("NodepoolName")
        pools = [p for p in self._service.describe_pools() if not name or p.name == name]
        t = self._now()
        region_id = self._service.region_id
        return web.json_response(
            {
                "nodepools": [
                    pool_json(p, region_id=region_id, now=t, created=self._started) for p in pools
                ]
            }
        )

    async def describe_pool(self, request: web.Request) -> web.Response:
        """DescribeClusterNodePoolDetail: GET /clusters/{cluster_id}/nodepools/{nodepool_id}."""
        pool = self._find_pool(request)
        return web.json_response(
            pool_json(
                pool, region_id=self._service.region_id, now=self._now(), created=self._started
            )
        )

    async def modify_pool(self, request: web.Request) -> web.Response:
        """ModifyClusterNodePool: PUT …/nodepools/{nodepool_id}; only desired_size is modelled."""
        body = await _json_body(request)
        scaling_group = body.get("scaling_group") or {}
        desired = scaling_group.get("desired_size") if isinstance(scaling_group, dict) else None
        request[_SUMMARY] = {"nodepool_id": request.match_info["nodepool_id"]}
        if desired is not None:
            request[_SUMMARY]["desired_size"] = desired
        pool = self._find_pool(request)
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
        self._check_target(pool, desired)
        task = self._service.set_desired(pool.pool_id, desired)
        return self._task_reply(
            task, request, nodepool_id=pool.pool_id, request_id=request[_REQUEST_ID]
        )

    async def scale_pool(self, request: web.Request) -> web.Response:
        """ScaleClusterNodePool: POST …/nodepools/{nodepool_id} with `count` nodes to add."""
        body = await _json_body(request)
        count = body.get("count")
        request[_SUMMARY] = {"nodepool_id": request.match_info["nodepool_id"], "count": count}
        pool = self._find_pool(request)
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise CloudError(
                400, "InvalidParameter", f"count must be a positive integer, got {count!r}."
            )
        self._check_target(pool, pool.desired + count)
        task = self._service.scale_by(pool.pool_id, count)
        return self._task_reply(task, request)

    async def remove_nodes(self, request: web.Request) -> web.Response:
        """RemoveNodePoolNodes: DELETE …/nodepools/{nodepool_id}/nodes?instance_ids=|nodes=."""
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
        pool = self._find_pool(request)
        if node_names:
            instance_ids = [*instance_ids, *self._instances_named(pool, node_names)]
        if not instance_ids:
            raise CloudError(
                400, "InvalidParameter", "instance_ids or nodes must name at least one node."
            )
        task = self._service.remove_nodes(pool.pool_id, instance_ids, drain=drain, release=release)
        return self._task_reply(task, request, request_id=request[_REQUEST_ID])

    def _check_target(self, pool: PoolView, desired: int) -> None:
        check_desired(
            pool,
            desired,
            cluster_nodes=self._service.cluster_nodes(),
            node_quota=self._service.node_quota,
        )

    def _instances_named(self, pool: PoolView, node_names: list[str]) -> list[str]:
        """The instance ids of the pool's nodes called `node_names`; refuses names not in it."""
        by_name = {n.node_name: n.instance_id for n in self._service.describe_nodes(pool.pool_id)}
        unknown = [n for n in node_names if n not in by_name]
        if unknown:
            raise CloudError(
                400, "InvalidParameter", f"nodes not in nodepool {pool.pool_id}: {unknown}"
            )
        return [by_name[n] for n in node_names]

    # -- nodes and tasks -----------------------------------------------------------------

    async def describe_nodes(self, request: web.Request) -> web.Response:
        """DescribeClusterNodes: GET /clusters/{cluster_id}/nodes, filtered and paged."""
        self._check_cluster(request)
        q = request.query
        nodes = self._service.describe_nodes(q.get("nodepool_id") or None)
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

    async def describe_quota(self, request: web.Request) -> web.Response:
        """DescribeUserQuota: GET /quota. Only `node_quota` is modelled; the other quotas carry
        the defaults its API reference gives (DescribeUserQuota, "query resource quotas")."""
        return web.json_response(
            {
                "node_quota": self._service.node_quota,
                "cluster_nodepool_quota": 20,
                "cluster_quota": 50,
                "amk_cluster_quota": 20,
                "ask_cluster_quota": 20,
            }
        )

    async def describe_task(self, request: web.Request) -> web.Response:
        """DescribeTaskInfo: GET /tasks/{task_id}."""
        task = self._service.describe_task(request.match_info["task_id"])
        return web.json_response(task_json(task, cluster_id=self._service.cluster_id))


async def _apply_faults(faults: FaultPlan) -> None:
    if faults.cs_latency_seconds > 0:
        await asyncio.sleep(faults.cs_latency_seconds)
    if faults.roll(faults.cs_throttle_ratio):
        faults.note(CS_THROTTLED)
        raise CloudError(400, "Throttling.User", "Request was denied due to user flow control.")
    if faults.roll(faults.cs_error_ratio):
        faults.note(CS_5XX)
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
        body=request.get(_BODY),
    )

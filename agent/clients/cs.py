"""The ACK Container Service (CS) client: the only module that imports alibabacloud_cs20151215.

It reads node pools into `PoolInfo`, sets a pool's desired size with ModifyClusterNodePool (an
absolute, idempotent target — never ScaleClusterNodePool, which adds and so double-counts on a
retry), gives chosen nodes back with RemoveNodePoolNodes (scale-in) and reads CS task outcomes.
Throttling and 5xx are retried with jittered backoff inside a
per-call timeout; everything else surfaces as one small `CloudCallError`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from alibabacloud_cs20151215 import models as cs_models
from alibabacloud_cs20151215.client import Client as CsSdkClient
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.utils_models import Config, OpenApiRequest, Params
from darabonba.runtime import RuntimeOptions

from agent.clients.errors import RemoteCallError
from agent.clients.timeouts import within
from agent.model import PoolBounds, PoolInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ENDPOINT_TEMPLATE = "cs.{region}.aliyuncs.com"
# ModifyClusterNodePool adds at most this many nodes per call (its API reference).
MAX_NODES_ADDED_PER_CALL = 500


class CloudCallError(RemoteCallError):
    """A CS call that failed for good (after retries, or at once when retrying cannot help)."""


@dataclass(frozen=True)
class TaskState:
    """A CS task as DescribeTaskInfo reports it."""

    task_id: str
    state: str  # running | success | fail
    error: str | None = None


@dataclass(frozen=True)
class PoolNode:
    """One ECS instance of a node pool as DescribeClusterNodes reports it."""

    instance_id: str
    node_name: str
    state: str  # as reported; the SDK documents ECS-like values (pending, running, stopped...)


@dataclass(frozen=True)
class UserKubeconfig:
    """A kubeconfig DescribeClusterUserKubeconfig issued: its YAML text and when it expires
    (RFC 3339 UTC as CS writes it)."""

    config: str
    expiration: str


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one CS call: attempts, backoff (full jitter) and the per-attempt timeout."""

    attempts: int = 4
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    call_timeout_seconds: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: spreads two agents (or many API callers) hitting the same throttle apart."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * (2**attempt))
        return rng.uniform(0, ceiling)


def is_retryable(code: str, status: int | None) -> bool:
    """Throttling.* (ACK sends it as a 400) and 5xx or no answer at all are worth another try."""
    return code.startswith("Throttling") or status is None or status >= 500


def build_sdk_client(
    *,
    region_id: str,
    endpoint: str | None = None,
    protocol: str = "https",
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    credential: Any = None,
    timeout_seconds: float = 10.0,
) -> CsSdkClient:
    """The official CS client. Without explicit keys or a credential it uses the default chain
    (RRSA's OIDC token inside ACK, AccessKey env locally), which the SDK reads only when it is
    passed as `Config(credential=...)`."""
    if credential is None and access_key_id is None:
        from alibabacloud_credentials.client import Client as CredentialClient

        credential = CredentialClient()
    config = Config(
        region_id=region_id,
        endpoint=endpoint or DEFAULT_ENDPOINT_TEMPLATE.format(region=region_id),
        protocol=protocol,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        credential=credential,
        read_timeout=int(timeout_seconds * 1000),
        connect_timeout=int(min(timeout_seconds, 5.0) * 1000),
    )
    return CsSdkClient(config)


def sts_credential(*, access_key_id: str, access_key_secret: str, security_token: str) -> Any:
    """A credential for the SDKs from an STS token already in hand: the one Function Compute
    gives a function for its role (the handler's `context.credentials`)."""
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig

    return CredentialClient(
        CredentialConfig(
            type="sts",
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
        )
    )


def _labels(items: Any) -> dict[str, str]:
    return {str(i.get("key", "")): str(i.get("value", "")) for i in items or () if i.get("key")}


def _taints(items: Any) -> tuple[dict[str, Any], ...]:
    taints = []
    for item in items or ():
        taint = {"key": item.get("key", ""), "effect": item.get("effect", "")}
        if item.get("value"):
            taint["value"] = item["value"]
        taints.append(taint)
    return tuple(taints)


def pool_info_from(
    raw: Mapping[str, Any],
    bounds: Mapping[str, PoolBounds] | None = None,
    *,
    allow_ack_autoscaled: bool = False,
) -> PoolInfo:
    """One `nodepools[]` item (or a DescribeClusterNodePoolDetail body) as a `PoolInfo`.

    A pool with ACK auto scaling on is a companion: ACK's autoscaler owns its desired size, and
    its bounds are ACK's `auto_scaling.min_instances`/`max_instances` — unless it is listed in
    `bounds` and `allow_ack_autoscaled` says to manage it anyway. Any other pool listed in
    `bounds` gets the agent's own min/max. ACK's min/max count only while `auto_scaling.enable`
    is true (the CS API documents both as taking effect only then, default 0), so a pool with
    ACK auto scaling off and no configured bounds has none: 0/0. `max_nodes` is not a ceiling
    either (0 means "no additional limit"). Stamped here, every read — the agent's pool resync
    and actuation's re-read right before a write alike — carries the pool's current owner.
    """
    info = raw.get("nodepool_info") or {}
    scaling = raw.get("scaling_group") or {}
    auto = raw.get("auto_scaling") or {}
    status = raw.get("status") or {}
    kube = raw.get("kubernetes_config") or {}
    pool_id = str(info.get("nodepool_id", ""))
    ack_autoscaling = auto.get("enable") is True
    configured = (bounds or {}).get(pool_id)
    companion = ack_autoscaling and not (configured is not None and allow_ack_autoscaled)
    if configured is not None and not companion:
        min_size, max_size = configured.min_size, configured.max_size
    elif ack_autoscaling:
        min_size = int(auto.get("min_instances") or 0)
        max_size = int(auto.get("max_instances") or 0)
    else:
        min_size = max_size = 0
    return PoolInfo(
        pool_id=pool_id,
        name=str(info.get("name", "")),
        instance_types=tuple(scaling.get("instance_types") or ()),
        desired=int(scaling.get("desired_size") or 0),
        min_size=min_size,
        max_size=max_size,
        ack_autoscaling=ack_autoscaling,
        companion=companion,
        labels=_labels(kube.get("labels")),
        taints=_taints(kube.get("taints")),
        total_nodes=int(status.get("total_nodes") or 0),
        ready_nodes=int(status.get("healthy_nodes") or 0),
    )


def _task_error(raw: Any) -> str | None:
    if not raw:
        return None
    if isinstance(raw, Mapping):
        code, message = raw.get("code"), raw.get("message")
        return ": ".join(str(p) for p in (code, message) if p) or None
    return str(raw)


class NodePoolClient:
    """Node-pool reads and writes for one cluster, over an injected SDK client."""

    def __init__(
        self,
        sdk: CsSdkClient,
        cluster_id: str,
        *,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        on_attempt: Callable[[str, str], None] | None = None,
        bounds: Mapping[str, PoolBounds] | None = None,
        allow_ack_autoscaled: bool = False,
    ) -> None:
        """`on_attempt(action, outcome)` hears every attempt ("ok" or the error code): the hook
        for metrics such as api_errors_total. `bounds` are the managed pools' configured
        min/max, which every `PoolInfo` read through this client carries, with its owner
        (`pool_info_from`; `allow_ack_autoscaled` is the setting allow_ack_autoscaled_pools)."""
        self._sdk = sdk
        self._bounds = dict(bounds or {})
        self._allow_ack_autoscaled = allow_ack_autoscaled
        self._on_attempt = on_attempt
        self._cluster_id = cluster_id
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self.calls_by_outcome: dict[str, int] = {}  # "<action> <code|ok>" -> count, for metrics

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    async def describe_pools(self) -> list[PoolInfo]:
        """Every node pool of the cluster."""
        request = cs_models.DescribeClusterNodePoolsRequest()
        response = await self._call(
            "DescribeClusterNodePools",
            lambda: self._sdk.describe_cluster_node_pools_async(self._cluster_id, request),
        )
        body = response.body.to_map() if response.body is not None else {}
        return [
            pool_info_from(item, self._bounds, allow_ack_autoscaled=self._allow_ack_autoscaled)
            for item in body.get("nodepools") or ()
        ]

    async def describe_pool(self, pool_id: str) -> PoolInfo:
        """One pool, read fresh (actuation calls this right before every write)."""
        response = await self._call(
            "DescribeClusterNodePoolDetail",
            lambda: self._sdk.describe_cluster_node_pool_detail_async(self._cluster_id, pool_id),
        )
        body = response.body.to_map() if response.body is not None else {}
        return pool_info_from(body, self._bounds, allow_ack_autoscaled=self._allow_ack_autoscaled)

    async def describe_node_quota(self) -> int:
        """DescribeUserQuota `node_quota`: how many nodes the cluster may have (default 100)."""
        response = await self._call(
            "DescribeUserQuota", lambda: self._sdk.describe_user_quota_async()
        )
        body = response.body.to_map() if response.body is not None else {}
        quota = body.get("node_quota")
        if not isinstance(quota, int) or isinstance(quota, bool) or quota < 0:
            raise CloudCallError(
                "InvalidResponse", None, f"node_quota is {quota!r}", retryable=False
            )
        return quota

    async def set_desired(self, pool_id: str, desired: int) -> str | None:
        """ModifyClusterNodePool with exactly `{"scaling_group": {"desired_size": N}}`; returns
        the CS task id.

        The documented body, built by hand: the SDK's request model (7.2.3) also serialises
        empty `data_disks`, `tags`, `disk_init`, `instance_patterns` and `spot_price_limit`
        lists inside `scaling_group`, and whether ACK reads those as "clear this setting" is not
        documented. The call still goes through the SDK (signing, endpoint, errors)."""
        params = Params(
            action="ModifyClusterNodePool",
            version="2015-12-15",
            protocol="HTTPS",
            pathname=f"/clusters/{quote(self._cluster_id, safe='')}/nodepools/"
            f"{quote(pool_id, safe='')}",
            method="PUT",
            auth_type="AK",
            style="ROA",
            req_body_type="json",
            body_type="json",
        )
        body = {"scaling_group": {"desired_size": desired}}
        response = await self._call(
            "ModifyClusterNodePool",
            lambda: self._sdk.call_api_async(
                params, OpenApiRequest(headers={}, body=body), RuntimeOptions()
            ),
        )
        reply = response.get("body") if isinstance(response, Mapping) else None
        return reply.get("task_id") if isinstance(reply, Mapping) else None

    async def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> str | None:
        """RemoveNodePoolNodes: take these ECS instances out of the pool (evicting their pods
        first with `drain`, releasing the instances with `release`) and lower desired by as many;
        returns the CS task id."""
        request = cs_models.RemoveNodePoolNodesRequest(
            instance_ids=list(instance_ids), drain_node=drain, release_node=release
        )
        response = await self._call(
            "RemoveNodePoolNodes",
            lambda: self._sdk.remove_node_pool_nodes_async(self._cluster_id, pool_id, request),
        )
        body = response.body.to_map() if response.body is not None else {}
        return body.get("task_id")

    async def describe_nodes(
        self, pool_id: str, *, state: str = "all", page_size: int = 100
    ) -> list[PoolNode]:
        """DescribeClusterNodes of one pool, every page (at most 100 a page): what CS itself
        counts as the pool's nodes. `state` is the API's own filter (all, running, removing,
        initial, failed); `state="removing"` lists the nodes CS is removing."""
        found: list[PoolNode] = []
        page_number = 1
        while True:
            request = cs_models.DescribeClusterNodesRequest(
                nodepool_id=pool_id,
                state=state,
                page_number=str(page_number),
                page_size=str(page_size),
            )
            response = await self._call("DescribeClusterNodes", self._nodes_page(request))
            body = response.body.to_map() if response.body is not None else {}
            items = body.get("nodes") or []
            found += [
                PoolNode(
                    instance_id=str(item.get("instance_id") or ""),
                    node_name=str(item.get("node_name") or ""),
                    state=str(item.get("state") or ""),
                )
                for item in items
            ]
            total = int((body.get("page") or {}).get("total_count") or 0)
            if not items or len(found) >= total:
                return found
            page_number += 1

    def _nodes_page(self, request: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: self._sdk.describe_cluster_nodes_async(self._cluster_id, request)

    async def describe_task(self, task_id: str) -> TaskState:
        """The outcome of an asynchronous CS task."""
        response = await self._call(
            "DescribeTaskInfo", lambda: self._sdk.describe_task_info_async(task_id)
        )
        body = response.body.to_map() if response.body is not None else {}
        return TaskState(
            task_id=str(body.get("task_id") or task_id),
            state=str(body.get("state") or "running"),
            error=_task_error(body.get("error")),
        )

    async def describe_user_kubeconfig(
        self, *, temporary_duration_minutes: int | None = None, private_ip: bool = False
    ) -> UserKubeconfig:
        """DescribeClusterUserKubeconfig: a kubeconfig for the caller's RAM identity (its RBAC
        is what the identity was granted in the cluster), temporary when a duration (15..4320
        minutes) is given; `private_ip` asks for the API server's internal endpoint."""
        request = cs_models.DescribeClusterUserKubeconfigRequest(
            private_ip_address=private_ip,
            temporary_duration_minutes=temporary_duration_minutes,
        )
        response = await self._call(
            "DescribeClusterUserKubeconfig",
            lambda: self._sdk.describe_cluster_user_kubeconfig_async(self._cluster_id, request),
        )
        body = response.body.to_map() if response.body is not None else {}
        config, expiration = body.get("config"), body.get("expiration")
        if not isinstance(config, str) or not config:
            raise CloudCallError(
                "InvalidResponse", None, "no kubeconfig in the reply", retryable=False
            )
        return UserKubeconfig(config=config, expiration=str(expiration or ""))

    async def _call(self, action: str, attempt_call: Callable[[], Awaitable[T]]) -> T:
        policy = self._retry
        for attempt in range(policy.attempts):
            try:
                result = await within(policy.call_timeout_seconds, attempt_call())
            except AlibabaCloudException as exc:
                error = CloudCallError(
                    str(exc.code or "Unknown"),
                    exc.status_code,
                    str(exc.message or ""),
                    retryable=is_retryable(str(exc.code or ""), exc.status_code),
                )
            except asyncio.TimeoutError:
                error = CloudCallError(
                    "Timeout",
                    None,
                    f"no answer within {policy.call_timeout_seconds}s",
                    retryable=True,
                )
            except (OSError, ValueError) as exc:
                error = CloudCallError("NetworkError", None, type(exc).__name__, retryable=True)
            except Exception as exc:
                # The SDK wraps transport failures in UnretryableException; its text may carry the
                # signed request, so only the type is kept.
                error = CloudCallError("NetworkError", None, type(exc).__name__, retryable=True)
            else:
                self._count(action, "ok")
                return result
            self._count(action, error.code)
            last = attempt + 1 >= policy.attempts
            if not error.retryable or last:
                log.warning(
                    "cs call failed",
                    extra={
                        "action": action,
                        "code": error.code,
                        "status": error.status,
                        "attempt": attempt + 1,
                    },
                )
                raise error
            delay = policy.delay(attempt, self._rng)
            log.info(
                "cs call retried",
                extra={
                    "action": action,
                    "code": error.code,
                    "status": error.status,
                    "delay": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def _count(self, action: str, outcome: str) -> None:
        key = f"{action} {outcome}"
        self.calls_by_outcome[key] = self.calls_by_outcome.get(key, 0) + 1
        if self._on_attempt is not None:
            self._on_attempt(action, outcome)

"""The Kubernetes client: the only module that imports kubernetes_asyncio.

Everything is raw JSON dicts, never client models: building a V1Pod costs ~20× the json.loads of
the same bytes, and the agent reads a handful of fields. kubernetes-asyncio still does what it is
good at — kubeconfig / in-cluster auth, TLS, URL building — and we take its responses unread
(`_preload_content=False`), check the status ourselves and split the watch stream into lines.

kubernetes-asyncio's own `Watch` with `get_return_type` → None decodes as fast (bench/
ingest_bench.py: both ~20-27k pod events/s per core, ~15× its model path), but it retries a 410
once with the same stale version, reconnects silently on EOF, and turns an in-stream ERROR into an
exception whose status hides in a string; our loop needs each of those as a plain fact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

PODS = "pods"
NODES = "nodes"
# KubeRay's custom resource (ray.io/v1), read only: the agent watches it, never writes it.
RAYCLUSTERS = "rayclusters"
RAY_GROUP, RAY_VERSION = "ray.io", "v1"
RESOURCES = (PODS, NODES, RAYCLUSTERS)
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
CONFLICT = 409
# Read-modify-write attempts of one node before a conflict is given up on.
NODE_EDIT_ATTEMPTS = 5


class KubeError(Exception):
    """The API server answered with an error status (a JSON Status body, or something else)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @classmethod
    def from_status(cls, status_object: dict[str, Any], *, http_status: int = 0) -> KubeError:
        return cls(
            int(http_status or status_object.get("code") or 0),
            str(status_object.get("reason") or ""),
            str(status_object.get("message") or ""),
        )


class KubeUnreachable(Exception):
    """No answer: connection refused or reset, or no byte within the read timeout."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class KubeClient:
    """Raw list / watch of pods and nodes, and the writes actuation needs (pod patch, node
    cordon, taints and annotations, events)."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._api_client = api_client
        self._core = k8s.CoreV1Api(api_client)
        self._coordination = k8s.CoordinationV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        api_url: str | None = None,
        request_timeout: float = 30.0,
    ) -> KubeClient:
        """A client from a plain URL (no auth: the simulator), the pod's service account, or a
        kubeconfig file (the default chain of kubectl when no path is given)."""
        configuration = k8s.Configuration()
        if api_url:
            configuration.host = api_url.rstrip("/")
        elif in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        return cls(k8s.ApiClient(configuration), request_timeout=request_timeout)

    async def close(self) -> None:
        await self._api_client.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- reads ---------------------------------------------------------------------------------

    def _list_call(self, resource: str, namespace: str | None) -> Any:
        if resource == NODES:
            return self._core.list_node
        if resource == PODS:
            if namespace:
                return lambda **kw: self._core.list_namespaced_pod(namespace, **kw)
            return self._core.list_pod_for_all_namespaces
        if resource == RAYCLUSTERS:
            custom, args = self._custom, (RAY_GROUP, RAY_VERSION)
            if namespace:
                return lambda **kw: custom.list_namespaced_custom_object(
                    *args, namespace, RAYCLUSTERS, **kw
                )
            return lambda **kw: custom.list_cluster_custom_object(*args, RAYCLUSTERS, **kw)
        raise ValueError(f"unknown resource {resource!r}")

    async def list_page(
        self,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """One LIST page as the raw `{"metadata": {...}, "items": [...]}` document."""
        kwargs = _selectors(label_selector, field_selector)
        if limit:
            kwargs["limit"] = limit
        if continue_token:
            kwargs["_continue"] = continue_token
        timeout = aiohttp.ClientTimeout(
            total=self._request_timeout, sock_connect=self._connect_timeout
        )
        body: dict[str, Any] = await self._call(
            self._list_call(resource, namespace), timeout=timeout, **kwargs
        )
        return body

    async def served(self, group: str, version: str, plural: str) -> bool:
        """Whether discovery (GET /apis/GROUP/VERSION) lists `plural`: False on a 404 (the group
        version is not served, e.g. its CRD is not installed). Other errors are raised."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        try:
            body = await self._call(
                lambda **kw: self._custom.get_api_resources(group, version, **kw), timeout=timeout
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return any(r.get("name") == plural for r in body.get("resources") or ())

    async def watch(
        self,
        resource: str,
        *,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int | None = None,
        read_timeout: float | None = None,
        bookmarks: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events `{"type": ..., "object": {...}}` until the server ends the stream.

        `read_timeout` bounds the silence between two chunks, so a connection that died without
        a FIN is noticed (raised as KubeUnreachable(timed_out=True)). An HTTP error status is
        raised as KubeError; an in-stream ERROR event is yielded as is (410 Expired arrives so).
        """
        kwargs: dict[str, Any] = {"watch": True, "resource_version": resource_version}
        if bookmarks:
            kwargs["allow_watch_bookmarks"] = True
        if timeout_seconds:
            kwargs["timeout_seconds"] = timeout_seconds
        kwargs.update(_selectors(label_selector, field_selector))
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=read_timeout
        )
        call = self._list_call(resource, namespace)
        try:
            response = await call(_preload_content=False, _request_timeout=timeout, **kwargs)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise _unreachable(error) from error
        try:
            if response.status >= 400:
                raise _error_of(response.status, response.reason, data=await response.read())
            pending = b""
            loads = json.loads
            try:
                async for chunk in response.content.iter_any():
                    if pending:
                        chunk = pending + chunk
                    *lines, pending = chunk.split(b"\n")
                    for line in lines:
                        if line:
                            yield loads(line)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise _unreachable(error) from error
            if pending.strip():
                yield json.loads(pending)
        finally:
            response.release()

    # --- writes --------------------------------------------------------------------------------

    async def patch_pod_json(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply a JSON patch (RFC 6902) to a pod; the updated pod, or KubeError (e.g. 404, 409,
        422 when a `test` op fails or the pod may no longer change)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        pod: dict[str, Any] = await self._call(
            lambda **kw: self._core.patch_namespaced_pod(name, namespace, ops, **kw),
            timeout=timeout,
            _content_type=JSON_PATCH,
        )
        return pod

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """The pod as raw JSON, or KubeError (404 when it is gone)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        pod: dict[str, Any] = await self._call(
            lambda **kw: self._core.read_namespaced_pod(name, namespace, **kw), timeout=timeout
        )
        return pod

    async def set_unschedulable(self, name: str, unschedulable: bool) -> dict[str, Any]:
        """Cordon (True) or uncordon (False) a node as kubectl does: spec.unschedulable, by a
        JSON merge patch. The updated node, or KubeError (404 when the node is gone)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        node: dict[str, Any] = await self._call(
            lambda **kw: self._core.patch_node(
                name, {"spec": {"unschedulable": unschedulable}}, **kw
            ),
            timeout=timeout,
            _content_type=MERGE_PATCH,
        )
        return node

    async def get_node(self, name: str) -> dict[str, Any]:
        """The node as raw JSON, or KubeError (404 when it is gone)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        node: dict[str, Any] = await self._call(
            lambda **kw: self._core.read_node(name, **kw), timeout=timeout
        )
        return node

    async def patch_node(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) of a node: the updated node, or KubeError (404 gone;
        409 when the patch names a `metadata.resourceVersion` the node no longer has)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        node: dict[str, Any] = await self._call(
            lambda **kw: self._core.patch_node(name, patch, **kw),
            timeout=timeout,
            _content_type=MERGE_PATCH,
        )
        return node

    async def edit_node(
        self, name: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Read-modify-write of a node, as cluster-autoscaler marks nodes: `edit(node)` returns
        a merge patch (None: nothing to change), sent with the node's resourceVersion as its
        precondition. A merge patch replaces a list such as spec.taints whole, so when someone
        else changed the node in between (another taint, the node controller) the API server
        answers 409 and the node is read again: their change is kept, never overwritten."""
        attempts = 0
        while True:
            attempts += 1
            node = await self.get_node(name)
            patch = edit(node)
            if patch is None:
                return node
            version = (node.get("metadata") or {}).get("resourceVersion")
            meta = {**(patch.get("metadata") or {}), "resourceVersion": version}
            try:
                return await self.patch_node(name, {**patch, "metadata": meta})
            except KubeError as error:
                if error.status != CONFLICT or attempts >= NODE_EDIT_ATTEMPTS:
                    raise

    async def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        """Create a core/v1 Event in `namespace`."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        await self._call(
            # a raw dict body is serialised as is; the client's model type is not needed
            lambda **kw: self._core.create_namespaced_event(namespace, body, **kw),  # type: ignore[arg-type]
            timeout=timeout,
        )

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of a core/v1 Event (a repeat's count and lastTimestamp, as
        client-go's event recorder bumps them); KubeError 404 when the Event has expired."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        await self._call(
            lambda **kw: self._core.patch_namespaced_event(name, namespace, patch, **kw),
            timeout=timeout,
            _content_type=MERGE_PATCH,
        )

    # --- leases (coordination.k8s.io/v1): one per node pool, so agents take turns writing it ----

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        """The Lease as raw JSON, or KubeError (404 when there is none)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        lease: dict[str, Any] = await self._call(
            lambda **kw: self._coordination.read_namespaced_lease(name, namespace, **kw),
            timeout=timeout,
        )
        return lease

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Lease; KubeError 409 (AlreadyExists) when another writer created it first."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        lease: dict[str, Any] = await self._call(
            lambda **kw: self._coordination.create_namespaced_lease(namespace, body, **kw),  # type: ignore[arg-type]
            timeout=timeout,
        )
        return lease

    async def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a Lease; `body.metadata.resourceVersion` is the precondition, so a writer that
        changed it since our read makes this a KubeError 409 (Conflict)."""
        timeout = aiohttp.ClientTimeout(total=self._request_timeout)
        name = str(body["metadata"]["name"])
        lease: dict[str, Any] = await self._call(
            lambda **kw: self._coordination.replace_namespaced_lease(name, namespace, body, **kw),  # type: ignore[arg-type]
            timeout=timeout,
        )
        return lease

    async def _call(self, call: Any, *, timeout: aiohttp.ClientTimeout, **kwargs: Any) -> Any:
        try:
            response = await call(_preload_content=False, _request_timeout=timeout, **kwargs)
            try:
                data = await response.read()
            finally:
                response.release()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise _unreachable(error) from error
        if response.status >= 400:
            raise _error_of(response.status, response.reason, data=data)
        return json.loads(data) if data else {}


def _error_of(status: int, reason: str | None, *, data: bytes) -> KubeError:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return KubeError.from_status(body, http_status=status)
    text = data.decode("utf-8", "replace")[:500]
    return KubeError(status, reason or "", text)


def _unreachable(error: BaseException) -> KubeUnreachable:
    timed_out = isinstance(error, asyncio.TimeoutError)
    return KubeUnreachable(f"{type(error).__name__}: {error}", timed_out=timed_out)


def _selectors(label_selector: str, field_selector: str) -> dict[str, Any]:
    """The client's selector arguments; an empty selector is left out rather than sent empty."""
    kwargs: dict[str, Any] = {}
    if label_selector:
        kwargs["label_selector"] = label_selector
    if field_selector:
        kwargs["field_selector"] = field_selector
    return kwargs

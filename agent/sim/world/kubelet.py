"""The kubelet stand-in for every simulated node: node readiness and the lifecycle of bound pods.

Nodes: a node with a `sim.ray-ack-scaler.io/ready-at` annotation is NotReady (condition and
`node.kubernetes.io/not-ready:NoSchedule` taint) until that simulated time, then Ready; a node with
neither the annotation nor conditions is Ready at once. Pods bound to a Ready node go Pending
(ContainerCreating) → Running after the node's pod-start delay → Succeeded after the pod's
`run-seconds` annotation, if it has one. A pod being deleted gracefully is removed after its grace
period (capped, so tests stay fast); pods left on a deleted node are removed as the pod GC would.

Every transition re-checks the pod inside the store's `mutate`, so a stale event or timer is a
no-op rather than a step backwards.

The kubelet's Events, with its reasons and messages (pkg/kubelet/events/event.go; the image
manager pkg/kubelet/images/image_manager.go; pkg/kubelet/kuberuntime/kuberuntime_container.go as of
1.31): `Pulling` 'Pulling image "X"' when the containers are being created, then at their start
`Pulled` 'Successfully pulled image "X" in 2s (2s including waiting). Image size: N bytes.',
`Created` "Created container NAME" and `Started` "Started container NAME"; an image the node
already pulled (imagePullPolicy other than Always) is `Pulled` 'Container image "X" already present
on machine' with no pull. The node's `NodeReady` / `NodeNotReady` ("Node X status is now:
NodeReady") as its Ready condition changes, about the kubelet's node reference (uid = node name).
The sim has no registry: an image's size is derived from its name.

Each node's kubelet heartbeats through its Lease (node_leases.py). A node whose kubelet the fault
plan stops posts nothing — no Lease renewal, no node or pod status — until it is started again;
then it reports Ready again and picks its pods up where they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from agent.clients.timeouts import within
from agent.sim.faults import FaultPlan
from agent.sim.kube.store import ApiError, ObjectStore, Subscription, WatchEvent
from agent.sim.world.clock import SimClock, parse_iso
from agent.sim.world.events import (
    EventRecorder,
    container_path,
    go_duration,
    object_reference,
)
from agent.sim.world.node_leases import NodeLeases
from agent.sim.world.nodes import (
    NOT_READY_TAINT,
    POD_START_ANNOTATION,
    READY_AT_ANNOTATION,
    node_system_info,
)
from agent.sim.world.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RUN_SECONDS_ANNOTATION = "sim.ray-ack-scaler.io/run-seconds"
DEFAULT_POD_START_SECONDS = 2.0
DEFAULT_GRACE_SECONDS = 30.0
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


class _Skip(Exception):
    """The object is no longer in the state this transition starts from."""


def _float_annotation(obj: Mapping[str, Any], name: str) -> float | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        log.warning("annotation %s=%r is not a number", name, value)
        return None


def _ready_condition(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    conditions: list[Mapping[str, Any]] = (node.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def _node_conditions(*, ready: bool, now: str) -> list[dict[str, Any]]:
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    conditions: list[dict[str, Any]] = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for kind, reason, message in pressure
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status"
            if ready
            else "container runtime network not ready: NetworkReady=false",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    )
    return conditions


def node_reference(name: str) -> dict[str, Any]:
    """The kubelet's reference to its node (kubelet.go `nodeRef`): the node name as its uid."""
    return {"kind": "Node", "name": name, "uid": name}


def image_size(image: str) -> int:
    """A stand-in for the registry's compressed size of `image`: 100 MB–1.1 GB, fixed per name."""
    digest = hashlib.sha256(image.encode()).digest()
    return 100_000_000 + int.from_bytes(digest[:4], "big") % 1_000_000_000


def _pod_key(pod: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = pod.get("metadata") or {}
    return (metadata.get("namespace", ""), metadata.get("name", ""), metadata.get("uid", ""))


def _container_id(uid: str, name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()


class Kubelet:
    """Drives node readiness and pod lifecycles for all nodes, on the simulated clock."""

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        max_grace_seconds: float = 2.0,
        default_pod_start_seconds: float = DEFAULT_POD_START_SECONDS,
        faults: FaultPlan | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._faults = faults if faults is not None else FaultPlan()
        self.events = EventRecorder(store, clock, component="kubelet")
        self.leases = NodeLeases(store, clock, faults=self._faults, on_restart=self.resync_node)
        # images each node has pulled, and the pulls in progress per pod: (container, image, since)
        self._images: dict[str, set[str]] = {}
        self._pulls: dict[tuple[str, str, str], list[tuple[str, str, float]]] = {}
        self._max_grace = max_grace_seconds
        self._default_start = default_pod_start_seconds
        self._nodes: dict[str, Mapping[str, Any]] = {}
        self._node_versions: dict[str, int] = {}
        # pods bound to a node that is not Ready yet, started when it turns Ready
        self._waiting: dict[str, set[tuple[str, str, str]]] = {}
        self._timers: list[tuple[float, int, tuple[Any, ...]]] = []
        self._armed: set[tuple[Any, ...]] = set()
        self._sequence = itertools.count()
        self._timer_added = asyncio.Event()
        self._ip_counter = itertools.count(2)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Take over the nodes and pods already in the store, then follow its events."""
        self._subscription = self._store.subscribe(resources=("nodes", "pods"))
        nodes, _ = self._store.list("nodes")
        pods, _ = self._store.list("pods")
        for node in nodes:
            self._on_node(node)
        for pod in pods:
            self._on_pod(pod)
        self._tasks = [
            asyncio.create_task(self._follow(), name="kubelet-follow"),
            asyncio.create_task(self._run_timers(), name="kubelet-timers"),
        ]
        await self.leases.start()

    async def stop(self) -> None:
        await self.leases.stop()
        if self._subscription is not None:
            self._subscription.close()
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.events.aclose()

    def resync_node(self, name: str) -> None:
        """`name`'s kubelet started again: report the node Ready if the node lifecycle controller
        marked it Unknown meanwhile, and take up its pods where they stand."""
        node = self._nodes.get(name)
        condition = _ready_condition(node) if node is not None else None
        if condition is not None and condition.get("status") == "Unknown":
            self._make_ready(name)
        pods, _ = self._store.list("pods")
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") != name:
                continue
            if (pod.get("status") or {}).get("phase") == "Running":
                # the status manager's sync: Ready again after the node controller's
                # MarkPodsNotReady
                self._mutate_pod(
                    _pod_key(pod),
                    lambda obj: _set_conditions(
                        obj.setdefault("status", {}),
                        self._clock.iso(),
                        Ready="True",
                        ContainersReady="True",
                    ),
                )
            self._on_pod(pod)

    def _stopped(self, node_name: str | None) -> bool:
        return bool(node_name) and self._faults.kubelet_stopped(str(node_name))

    async def _follow(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            try:
                self.apply(event)
            except Exception:  # one odd object must not stop every node's kubelet
                log.exception("kubelet failed on %s %s", event.type, event.resource)

    def apply(self, event: WatchEvent) -> None:
        """React to one watch event."""
        if event.resource == "nodes":
            if event.type == "DELETED":
                self._on_node_deleted(event.object)
            else:
                self._on_node(event.object)
        elif event.resource == "pods":
            if event.type == "DELETED":
                self._pulls.pop(_pod_key(event.object), None)
            else:
                self._on_pod(event.object)

    # -- timers -------------------------------------------------------------------------------

    def _arm(self, due: float, action: tuple[Any, ...]) -> None:
        if action in self._armed:
            return
        self._armed.add(action)
        heapq.heappush(self._timers, (due, next(self._sequence), action))
        self._timer_added.set()

    async def _run_timers(self) -> None:
        while True:
            if not self._timers:
                self._timer_added.clear()
                await self._timer_added.wait()
                continue
            delay = self._timers[0][0] - self._clock.now()
            if delay > 0:
                self._timer_added.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await within(self._clock.real_seconds(delay), self._timer_added.wait())
                continue
            _, _, action = heapq.heappop(self._timers)
            self._armed.discard(action)
            try:
                self._fire(action)
            except Exception:
                log.exception("kubelet action %s failed", action)

    def _fire(self, action: tuple[Any, ...]) -> None:
        kind, *args = action
        handlers: dict[str, Callable[..., None]] = {
            "node-ready": self._make_ready,
            "pod-run": self._run_pod,
            "pod-finish": self._finish_pod,
            "pod-remove": self._remove_pod,
        }
        handlers[kind](*args)

    # -- nodes --------------------------------------------------------------------------------

    def _on_node(self, node: Mapping[str, Any]) -> None:
        metadata = node.get("metadata") or {}
        name = metadata.get("name", "")
        version = int(metadata.get("resourceVersion") or 0)
        if version and version <= self._node_versions.get(name, 0):
            return  # older than what this kubelet already acted on
        self._node_versions[name] = version
        first_look = name not in self._nodes
        self._nodes[name] = node
        if self._stopped(name):
            return
        ready_at = _float_annotation(node, READY_AT_ANNOTATION)
        condition = _ready_condition(node)
        if first_look and condition is not None and condition.get("status") == "False":
            # registered NotReady (a booting pool node): the kubelet's first status post says so
            self._record_node_status(name, "NodeNotReady")
        if condition is not None and condition.get("status") == "True":
            for key in sorted(self._waiting.pop(name, ())):
                self._create_containers(key, node)
            return
        if ready_at is None:
            if condition is None:
                self._make_ready(name)
            return  # NotReady for a reason of its own (a test, a fault): leave it so
        if (
            condition is None
            and ready_at > self._clock.now()
            and self._mutate_node(name, self._register_not_ready) is not None
        ):
            self._record_node_status(name, "NodeNotReady")
        self._arm(ready_at, ("node-ready", name))

    def _record_node_status(self, name: str, status: str) -> None:
        """kubelet_node_status.go recordNodeStatusEvent: "Node X status is now: NodeReady"."""
        self.events.record(
            node_reference(name),
            reason=status,
            message=f"Node {name} status is now: {status}",
            host=name,
        )

    def _register_not_ready(self, node: dict[str, Any]) -> None:
        if _ready_condition(node) is not None:
            raise _Skip
        now = self._clock.iso()
        status = node.setdefault("status", {})
        status["conditions"] = _node_conditions(ready=False, now=now)
        name = node["metadata"]["name"]
        status["nodeInfo"] = {**node_system_info(name), **(status.get("nodeInfo") or {})}
        taints = node.setdefault("spec", {}).setdefault("taints", [])
        if not any(t.get("key") == NOT_READY_TAINT["key"] for t in taints):
            taints.append(dict(NOT_READY_TAINT))

    def _make_ready(self, name: str) -> None:
        if self._stopped(name):
            return  # retried by resync_node when the kubelet starts again

        def ready(node: dict[str, Any]) -> None:
            condition = _ready_condition(node)
            if condition is not None and condition.get("status") == "True":
                raise _Skip
            now = self._clock.iso()
            status = node.setdefault("status", {})
            status["conditions"] = _node_conditions(ready=True, now=now)
            status["nodeInfo"] = {**node_system_info(name), **(status.get("nodeInfo") or {})}
            spec = node.setdefault("spec", {})
            spec["taints"] = [
                t for t in spec.get("taints") or () if t.get("key") != NOT_READY_TAINT["key"]
            ]
            if not spec["taints"]:
                del spec["taints"]

        updated = self._mutate_node(name, ready)
        if updated is not None:
            self._record_node_status(name, "NodeReady")
            self._on_node(updated)

    def _mutate_node(
        self, name: str, change: Callable[[dict[str, Any]], None]
    ) -> Mapping[str, Any] | None:
        try:
            return self._store.mutate("nodes", name, change)
        except (_Skip, ApiError):
            return None

    def _on_node_deleted(self, node: Mapping[str, Any]) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        self._nodes.pop(name, None)
        self._node_versions.pop(name, None)
        self._waiting.pop(name, None)
        self._images.pop(name, None)
        # the pod GC's job: pods bound to a node that no longer exists are deleted
        pods, _ = self._store.list("pods")
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") == name:
                namespace, pod_name, uid = _pod_key(pod)
                self._delete_pod(namespace, pod_name, uid)

    def _node_is_ready(self, name: str) -> bool:
        node = self._nodes.get(name)
        condition = _ready_condition(node) if node is not None else None
        return condition is not None and condition.get("status") == "True"

    # -- pods ---------------------------------------------------------------------------------

    def _on_pod(self, pod: Mapping[str, Any]) -> None:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        node_name = spec.get("nodeName")
        if not node_name or self._stopped(node_name):
            return  # a stopped kubelet takes its pods up again in resync_node
        key = _pod_key(pod)
        if metadata.get("deletionTimestamp"):
            self._arm(self._removal_time(pod), ("pod-remove", *key))
            return
        phase = status.get("phase") or "Pending"
        if phase == "Pending":
            if not status.get("containerStatuses"):
                node = self._nodes.get(node_name)
                if node is not None and self._node_is_ready(node_name):
                    self._create_containers(key, node)
                else:
                    self._waiting.setdefault(node_name, set()).add(key)
            else:
                start = self._start_seconds(self._nodes.get(node_name))
                self._arm(self._clock.now() + start, ("pod-run", *key))
        elif phase == "Running":
            run_seconds = _float_annotation(pod, RUN_SECONDS_ANNOTATION)
            if run_seconds is not None:
                self._arm(self._started_at(pod) + run_seconds, ("pod-finish", *key))

    def _start_seconds(self, node: Mapping[str, Any] | None) -> float:
        if node is None:
            return self._default_start
        seconds = _float_annotation(node, POD_START_ANNOTATION)
        return self._default_start if seconds is None else max(0.0, seconds)

    def _started_at(self, pod: Mapping[str, Any]) -> float:
        for container in (pod.get("status") or {}).get("containerStatuses") or ():
            started = ((container.get("state") or {}).get("running") or {}).get("startedAt")
            if started:
                return parse_iso(started)
        return self._clock.now()

    def _removal_time(self, pod: Mapping[str, Any]) -> float:
        metadata = pod.get("metadata") or {}
        grace = metadata.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        grace = DEFAULT_GRACE_SECONDS if grace is None else float(grace)
        return self._clock.now() + min(grace, self._max_grace)

    def _mutate_pod(
        self, key: tuple[str, str, str], change: Callable[[dict[str, Any]], None]
    ) -> Mapping[str, Any] | None:
        namespace, name, uid = key

        def guarded(pod: dict[str, Any]) -> None:
            metadata = pod.get("metadata") or {}
            if metadata.get("uid", "") != uid or metadata.get("deletionTimestamp"):
                raise _Skip  # a namesake pod, or one on its way out
            if self._stopped((pod.get("spec") or {}).get("nodeName")):
                raise _Skip  # its kubelet posts nothing until it starts again
            change(pod)

        try:
            # the kubelet's status manager writes pods/status: nothing but the status changes
            return self._store.mutate(
                "pods", name, guarded, namespace=namespace, writes=("status",)
            )
        except (_Skip, ApiError):
            return None

    def _host_ip(self, node: Mapping[str, Any]) -> str | None:
        for address in (node.get("status") or {}).get("addresses") or ():
            if address.get("type") == "InternalIP":
                return str(address.get("address"))
        return None

    def _next_pod_ip(self) -> str:
        n = next(self._ip_counter)
        return f"172.20.{(n >> 8) & 255}.{n & 255}"

    def _create_containers(self, key: tuple[str, str, str], node: Mapping[str, Any]) -> None:
        host_ip = self._host_ip(node)

        def creating(pod: dict[str, Any]) -> None:
            status = pod.setdefault("status", {})
            if (status.get("phase") or "Pending") != "Pending" or status.get("containerStatuses"):
                raise _Skip
            now = self._clock.iso()
            status["phase"] = "Pending"
            status.setdefault("startTime", now)
            if host_ip:
                status["hostIP"] = host_ip
                status["hostIPs"] = [{"ip": host_ip}]
            _set_conditions(
                status,
                now,
                PodReadyToStartContainers="False",
                Initialized="True",
                Ready="False",
                ContainersReady="False",
            )
            status["containerStatuses"] = [
                {
                    "name": container.get("name", ""),
                    "image": container.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                }
                for container in (pod.get("spec") or {}).get("containers") or ()
            ]

        created = self._mutate_pod(key, creating)
        if created is not None:
            self._pull_images(key, created)
            self._arm(self._clock.now() + self._start_seconds(node), ("pod-run", *key))

    def _pull_images(self, key: tuple[str, str, str], pod: Mapping[str, Any]) -> None:
        """The image manager's EnsureImageExists for each container: Pulling, or Pulled when the
        node has the image already (and the policy is not Always)."""
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        present = self._images.get(node, set())
        pulls: list[tuple[str, str, float]] = []
        for container in (pod.get("spec") or {}).get("containers") or ():
            name, image = str(container.get("name", "")), str(container.get("image", ""))
            reference = object_reference(pod, field_path=container_path(name))
            if image in present and container.get("imagePullPolicy") != "Always":
                self.events.record(
                    reference,
                    reason="Pulled",
                    message=f'Container image "{image}" already present on machine',
                    host=node,
                )
            else:
                self.events.record(
                    reference, reason="Pulling", message=f'Pulling image "{image}"', host=node
                )
                pulls.append((name, image, self._clock.now()))
        self._pulls[key] = pulls

    def _start_containers(self, key: tuple[str, str, str], pod: Mapping[str, Any]) -> None:
        """Pulled for the pulls that were under way, then Created and Started per container."""
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        now = self._clock.now()
        for name, image, since in self._pulls.pop(key, ()):
            took = go_duration(now - since)
            self._images.setdefault(node, set()).add(image)
            self.events.record(
                object_reference(pod, field_path=container_path(name)),
                reason="Pulled",
                message=f'Successfully pulled image "{image}" in {took} ({took} including '
                f"waiting). Image size: {image_size(image)} bytes.",
                host=node,
            )
        for container in (pod.get("spec") or {}).get("containers") or ():
            name = str(container.get("name", ""))
            reference = object_reference(pod, field_path=container_path(name))
            self.events.record(
                reference, reason="Created", message=f"Created container {name}", host=node
            )
            self.events.record(
                reference, reason="Started", message=f"Started container {name}", host=node
            )

    def _run_pod(self, namespace: str, name: str, uid: str) -> None:
        pod_ip = self._next_pod_ip()
        started = self._clock.now()

        def running(pod: dict[str, Any]) -> None:
            status = pod.setdefault("status", {})
            if status.get("phase") != "Pending" or not status.get("containerStatuses"):
                raise _Skip
            now = self._clock.iso(started)
            status["phase"] = "Running"
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
            _set_conditions(
                status,
                now,
                PodReadyToStartContainers="True",
                Initialized="True",
                Ready="True",
                ContainersReady="True",
            )
            for container in status["containerStatuses"]:
                container.update(
                    ready=True,
                    started=True,
                    containerID=_container_id(uid, container.get("name", "")),
                    state={"running": {"startedAt": now}},
                )

        updated = self._mutate_pod((namespace, name, uid), running)
        if updated is not None:
            self._start_containers((namespace, name, uid), updated)
        run_seconds = _float_annotation(updated, RUN_SECONDS_ANNOTATION) if updated else None
        if run_seconds is not None:
            self._arm(started + run_seconds, ("pod-finish", namespace, name, uid))

    def _finish_pod(self, namespace: str, name: str, uid: str) -> None:
        def succeeded(pod: dict[str, Any]) -> None:
            status = pod.setdefault("status", {})
            if status.get("phase") != "Running":
                raise _Skip
            now = self._clock.iso()
            status["phase"] = "Succeeded"
            _set_conditions(
                status, now, Ready="False", ContainersReady="False", reason="PodCompleted"
            )
            for container in status.get("containerStatuses") or ():
                started = ((container.get("state") or {}).get("running") or {}).get("startedAt")
                container.update(
                    ready=False,
                    started=False,
                    state={
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": started or now,
                            "finishedAt": now,
                            "containerID": container.get("containerID", ""),
                        }
                    },
                )

        self._mutate_pod((namespace, name, uid), succeeded)

    def _remove_pod(self, namespace: str, name: str, uid: str) -> None:
        self._delete_pod(namespace, name, uid)

    def _delete_pod(self, namespace: str, name: str, uid: str) -> None:
        try:
            current = self._store.get("pods", name, namespace=namespace)
            if (current.get("metadata") or {}).get("uid", "") != uid:
                return
            self._store.delete("pods", name, namespace=namespace)
        except ApiError:
            return  # already gone


def _set_conditions(status: dict[str, Any], now: str, *, reason: str = "", **wanted: str) -> None:
    """Set pod conditions by type; lastTransitionTime moves only when a status flips."""
    conditions = status.setdefault("conditions", [])
    by_type = {condition.get("type"): condition for condition in conditions}
    for kind, value in wanted.items():
        condition = by_type.get(kind)
        if condition is None:
            condition = {"type": kind, "status": value, "lastProbeTime": None}
            condition["lastTransitionTime"] = now
            conditions.append(condition)
        elif condition.get("status") != value:
            condition["status"] = value
            condition["lastTransitionTime"] = now
        if reason and value == "False":
            condition["reason"] = reason
        elif value == "True":
            condition.pop("reason", None)

"""The ECI virtual node and its per-second billing.

ACK's virtual-kubelet registers one Node per zone, labelled `type=virtual-kubelet` and tainted
`virtual-kubelet.io/provider=alibabacloud:NoSchedule`, with a capacity far beyond any ECS node.
Pods bound there start after the ECI start latency (the simulated kubelet reads it from the node's
pod-start annotation). A pod ECI cannot run (hostPath, hostNetwork, privileged, DaemonSet, no spec
that holds it, beyond the per-pod CPU/memory ceiling) fails with reason ProviderFailed, as the
virtual-kubelet reports it.

Billing follows ECI's documented rules:
- ECI runs and bills a pod as a supported spec (`functions.eci_specs`): its containers' limits
  (requests where no limit is set) summed and rounded up, or the spec its
  `k8s.aliyun.com/eci-use-specs` annotation pins; 2 vCPU / 4 GiB when it sets none of these.
  A pinned ECS instance type is billed by that type, whose price the simulator does not know:
  it bills the pod's rounded size at the vCPU/GiB prices instead (`EciPodUsage.spec` says so).
- Billing runs from the image pull until the pod ends (Succeeded or Failed) or is deleted
  [ECI billing overview: "starts when ... container images are downloaded"]. The simulated
  kubelet has no image-pull step: ECI's start latency runs from ContainerCreating to Running,
  and we take the pull to begin `EciSpec.pre_pull_seconds` (default 0) after ContainerCreating,
  so by default the whole start latency is billed, as if it were all image pull (it is most of a
  Ray image's start; the instance-allocation share before it is not documented).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.sim.kube.store import ApiError, ObjectStore, Subscription
from agent.sim.world.clock import SimClock, parse_iso
from agent.sim.world.nodes import POD_START_ANNOTATION, READY_AT_ANNOTATION, node_system_info
from agent.sim.world.tasks import cancel_and_wait
from functions.contract import ECI_NODE_LABELS, ECI_USE_SPECS_ANNOTATION
from functions.contract import ECI_TAINT as CONTRACT_ECI_TAINT
from functions.eci_specs import Billed, pick, spec_text, table_for
from functions.quantity import parse_quantity, parse_resources

ECI_LABELS = dict(ECI_NODE_LABELS)
ECI_TAINT = dict(CONTRACT_ECI_TAINT)
# China site, general type (facts.md).
DEFAULT_PRICE_PER_VCPU_SECOND = 0.000049
DEFAULT_PRICE_PER_GIB_SECOND = 0.00000613
PROVIDER_FAILED = "ProviderFailed"
MILLI = 1000
GIB = 1024**3
ENDED_PHASES = ("Succeeded", "Failed")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EciSpec:
    """The virtual node of one zone as a scenario describes it."""

    enabled: bool = True
    zone: str = "cn-hangzhou-k"
    start_seconds: float = 30.0
    cpu: str = "10000"
    memory: str = "100Ti"
    max_pods: int = 500
    price_per_vcpu_second: float = DEFAULT_PRICE_PER_VCPU_SECOND
    price_per_gib_second: float = DEFAULT_PRICE_PER_GIB_SECOND
    max_pod_cpu: str = "64"
    max_pod_memory: str = "512Gi"
    # Seconds of the start latency before the image pull begins (instance allocation): unbilled.
    pre_pull_seconds: float = 0.0

    @property
    def node_name(self) -> str:
        return f"virtual-kubelet-{self.zone}"


@dataclass(frozen=True)
class EciPodUsage:
    """One pod's billed time on ECI: the spec it is billed as, from image pull to its end."""

    namespace: str
    name: str
    vcpu: float
    gib: float
    seconds: float
    # The billed spec as eci-use-specs writes one ("1-2Gi"), or "ecs.x as 1-2Gi" for an ECS type.
    spec: str = ""


@dataclass(frozen=True)
class EciBilling:
    """Per-second ECI billing totals, of the specs ECI rounds pods up to (module docstring)."""

    vcpu_seconds: float
    gib_seconds: float
    price_per_vcpu_second: float
    price_per_gib_second: float
    pods: tuple[EciPodUsage, ...]

    @property
    def cost(self) -> float:
        return (
            self.vcpu_seconds * self.price_per_vcpu_second
            + self.gib_seconds * self.price_per_gib_second
        )


def eci_sizing(pod: Mapping[str, Any], spec: EciSpec, *, region: str) -> Billed | str:
    """The spec ECI runs and bills this pod as, or why it cannot run it (the simulator's words)."""
    pod_spec = pod.get("spec") or {}
    if any("hostPath" in (volume or {}) for volume in pod_spec.get("volumes") or ()):
        return "hostPath volumes are not supported on ECI"
    if pod_spec.get("hostNetwork"):
        return "hostNetwork is not supported on ECI"
    containers = [*(pod_spec.get("containers") or ()), *(pod_spec.get("initContainers") or ())]
    if any(((c or {}).get("securityContext") or {}).get("privileged") for c in containers):
        return "privileged containers are not supported on ECI"
    owners = (pod.get("metadata") or {}).get("ownerReferences") or ()
    if any(owner.get("kind") == "DaemonSet" for owner in owners):
        return "DaemonSet pods are not supported on ECI"
    cpu, memory = _sized(pod_spec)
    max_cpu, max_memory = parse_quantity(spec.max_pod_cpu), parse_quantity(spec.max_pod_memory)
    if cpu > max_cpu:
        return f"a pod may request at most {spec.max_pod_cpu} vCPU on ECI"
    if memory > max_memory:
        return f"a pod may request at most {spec.max_pod_memory} memory on ECI"
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    use_specs = str(annotations.get(ECI_USE_SPECS_ANNOTATION, ""))
    billed = pick(cpu, memory, use_specs, table_for(region))
    if isinstance(billed, str):
        return billed
    # The ceilings bind the spec ECI runs the pod as, not what the pod asks for.
    if billed.cpu > max_cpu:
        return (
            f"a pod may request at most {spec.max_pod_cpu} vCPU on ECI "
            f"(it runs as {spec_text(billed)})"
        )
    if billed.memory > max_memory:
        return (
            f"a pod may request at most {spec.max_pod_memory} memory on ECI "
            f"(it runs as {spec_text(billed)})"
        )
    return billed


def _sized(pod_spec: Mapping[str, Any]) -> tuple[int, int]:
    """(milli-vCPU, milli-bytes) ECI sizes a pod by: per container its limits, else its requests
    [ECI "Specify the number of vCPUs and memory size to create a pod"], summed over containers;
    an init container larger than that sum sizes the pod instead (Kubernetes' rule, assumed)."""

    def one(container: Mapping[str, Any]) -> dict[str, int]:
        resources = container.get("resources") or {}
        raw = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
        return parse_resources(raw, path="resources")

    total = {"cpu": 0, "memory": 0}
    for container in pod_spec.get("containers") or ():
        for name, value in one(container).items():
            if name in total:
                total[name] += value
    for container in pod_spec.get("initContainers") or ():
        for name, value in one(container).items():
            if name in total:
                total[name] = max(total[name], value)
    return total["cpu"], total["memory"]


def virtual_node_object(spec: EciSpec, *, region: str, created: str, now: float) -> dict[str, Any]:
    """The Node the virtual-kubelet registers, Ready from the start."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.node_name,
            "labels": {
                **ECI_LABELS,
                "kubernetes.io/hostname": spec.node_name,
                "kubernetes.io/role": "agent",
                "topology.kubernetes.io/zone": spec.zone,
                "topology.kubernetes.io/region": region,
            },
            "annotations": {
                READY_AT_ANNOTATION: f"{now:.3f}",
                POD_START_ANNOTATION: f"{spec.start_seconds:g}",
            },
            "creationTimestamp": created,
        },
        "spec": {"taints": [dict(ECI_TAINT)]},
        "status": {
            "capacity": {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.max_pods)},
            "allocatable": {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.max_pods)},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "ok",
                    "lastHeartbeatTime": created,
                    "lastTransitionTime": created,
                }
            ],
            "nodeInfo": node_system_info(
                spec.node_name,
                kubeletVersion="v1.31.1-vk-eci",
                kubeProxyVersion="",
                containerRuntimeVersion="eci://",
            ),
        },
    }


def _container_time(status: Mapping[str, Any], state: str, key: str) -> float | None:
    """Earliest start / latest finish across containers, from the kubelet's timestamps."""
    times = []
    for container in status.get("containerStatuses") or ():
        value = ((container.get("state") or {}).get(state) or {}).get(key)
        if value:
            times.append(parse_iso(value))
    if not times:
        return None
    return min(times) if key == "startedAt" else max(times)


def _spec_label(billed: Billed) -> str:
    text = spec_text(billed)
    return f"{billed.instance_type} as {text}" if billed.instance_type else text


class _Unchanged(Exception):
    """The pod left the state the refusal applies to."""


@dataclass
class _Billed:
    namespace: str
    name: str
    vcpu: float
    gib: float
    spec: str
    started: float
    ended: float | None = None


class EciVirtualNode:
    """A SimCluster component: registers the virtual node and bills the pods that run on it."""

    def __init__(self, store: ObjectStore, clock: SimClock, *, spec: EciSpec, region: str) -> None:
        self.spec = spec
        self._store = store
        self._clock = clock
        self._region = region
        self._billed: dict[str, _Billed] = {}
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = self._store.subscribe(resources=("pods",))
        now = self._clock.now()
        self._store.create(
            "nodes",
            virtual_node_object(
                self.spec, region=self._region, created=self._clock.iso(now), now=now
            ),
        )
        pods, _ = self._store.list("pods")
        for pod in pods:
            self.observe(pod, deleted=False)
        self._task = asyncio.create_task(self._follow(), name="eci-billing")

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def _follow(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            if event.resource != "pods":
                continue
            try:
                self.observe(event.object, deleted=event.type == "DELETED")
            except Exception:  # one odd pod must not stop billing the others
                log.exception("ECI billing failed on %s", event.object.get("metadata"))

    def observe(self, pod: Mapping[str, Any], *, deleted: bool) -> None:
        """Fold one pod state into billing: the meter runs from the image pull until the pod ends."""
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        billed = self._billed.get(key)
        if spec.get("nodeName") != self.spec.node_name:
            return
        status = pod.get("status") or {}
        phase = status.get("phase")
        if billed is None:
            if deleted:
                return  # gone before its image pull began: nothing to bill
            sized = eci_sizing(pod, self.spec, region=self._region)
            if isinstance(sized, str):
                if phase == "Pending":
                    self._fail(str(meta.get("namespace")), str(meta.get("name")), sized)
                return
            pulled = self._pull_started(status)
            if pulled is None:
                return  # not handed to ECI's start yet
            billed = self._billed[key] = _Billed(
                namespace=str(meta.get("namespace")),
                name=str(meta.get("name")),
                vcpu=sized.cpu / MILLI,
                gib=sized.memory / MILLI / GIB,
                spec=_spec_label(sized),
                started=pulled,
            )
        if billed.ended is None and (deleted or phase in ENDED_PHASES):
            # The container's own finish time when it has one; a deletion ends billing now.
            finished = _container_time(status, "terminated", "finishedAt")
            billed.ended = self._clock.now() if deleted or finished is None else finished

    def _pull_started(self, status: Mapping[str, Any]) -> float | None:
        """When the image pull began: `pre_pull_seconds` after ContainerCreating (the kubelet's
        startTime), never after the containers started; None before ContainerCreating."""
        running = _container_time(status, "running", "startedAt")
        if running is None:
            running = _container_time(status, "terminated", "startedAt")
        created = status.get("startTime")
        if not created or not status.get("containerStatuses"):
            if running is not None:
                return running  # no ContainerCreating on record: from its start, at least
            return self._clock.now() if status.get("phase") == "Running" else None
        pulled = parse_iso(created) + self.spec.pre_pull_seconds
        return pulled if running is None else min(pulled, running)

    def _fail(self, namespace: str, name: str, message: str) -> None:
        now = self._clock.iso()

        def failed(obj: dict[str, Any]) -> None:
            status = obj.setdefault("status", {})
            if status.get("phase") != "Pending" or (obj.get("metadata") or {}).get(
                "deletionTimestamp"
            ):
                raise _Unchanged
            status.update(phase="Failed", reason=PROVIDER_FAILED, message=message)
            for container in status.get("containerStatuses") or ():
                container["state"] = {
                    "terminated": {"exitCode": 1, "reason": PROVIDER_FAILED, "finishedAt": now}
                }

        with contextlib.suppress(_Unchanged, ApiError):
            self._store.mutate("pods", name, failed, namespace=namespace)

    def billing(self) -> EciBilling:
        """Totals so far; running pods are billed up to now."""
        now = self._clock.now()
        pods = []
        vcpu_seconds = gib_seconds = 0.0
        for billed in self._billed.values():
            # Never negative: with pre_pull_seconds the pull may not have begun yet.
            seconds = max(0.0, (billed.ended if billed.ended is not None else now) - billed.started)
            vcpu_seconds += billed.vcpu * seconds
            gib_seconds += billed.gib * seconds
            pods.append(
                EciPodUsage(
                    billed.namespace, billed.name, billed.vcpu, billed.gib, seconds, billed.spec
                )
            )
        return EciBilling(
            vcpu_seconds=vcpu_seconds,
            gib_seconds=gib_seconds,
            price_per_vcpu_second=self.spec.price_per_vcpu_second,
            price_per_gib_second=self.spec.price_per_gib_second,
            pods=tuple(pods),
        )

    def running_pods(self) -> int:
        return sum(1 for b in self._billed.values() if b.ended is None)

"""Simulated ACK node pools: the `NodePoolService` the CS emulator serves, over the object store.

Raising a pool's desired size launches "ECS instances": Node objects created NotReady with a
`ready-at` annotation the simulated kubelet honours after the pool's boot latency. Lowering it, or
RemoveNodePoolNodes, drains nodes (`agent.sim.world.drain`: PodDisruptionBudgets respected) and
deletes them once empty; a drain that has not emptied its node by the pool's drain timeout fails
the task and leaves the node in the pool, as ACK's does. Asynchronous CS tasks report progress
the way DescribeTaskInfo does. The pools also keep per-node billing and busy time for the cost
report; a subscription (PrePaid) instance, or one removed with release_node=false, is not
released, so it is billed to the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.sim.cloud.cloud_model import CloudError, NodeView, PoolView, TaskView
from agent.sim.kube.store import ApiError, ObjectStore, Subscription
from agent.sim.world.catalog import InstanceType, instance_type
from agent.sim.world.clock import SimClock
from agent.sim.world.drain import DRAIN_TIMEOUT_SECONDS, EVICTION_RETRY_SECONDS, cordon, evict_pass
from agent.sim.world.nodes import (
    AddressBook,
    node_is_ready,
    node_object,
    occupies_node,
)
from agent.sim.world.tasks import cancel_and_wait
from functions.contract import ECI_NODE_LABELS
from functions.contract import POOL_LABEL as POOL_LABEL  # the label ACK puts on a pool's nodes

# Error codes, the same the CS emulator (cs_api.py) answers with.
ERR_POOL_NOT_FOUND = "ErrorNodePoolNotFound"
ERR_INVALID_PARAMETER = "InvalidParameter"
ERR_TASK_NOT_FOUND = "ErrorTaskNotFound"
# ECS's out-of-stock refusal, surfaced in the failed scale-out task's error.
NO_STOCK_ERROR = (
    "OperationDenied.NoStock: The requested resource is sold out in the specified zone; "
    "try other types of resources or other regions and zones."
)
DEFAULT_NODE_QUOTA = 100  # DescribeUserQuota node_quota: nodes per cluster, ACK's default

FAILURE_MODES = ("none", "stockout", "slow")
# instance_charge_type of a pool's scaling group: pay-as-you-go or subscription
CHARGE_TYPES = ("PostPaid", "PrePaid")


def _is_virtual(node: Mapping[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in ECI_NODE_LABELS.items())


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootLatency:
    """Seconds from launch to Ready, drawn uniformly from [low, high]."""

    low: float = 60.0
    high: float = 90.0

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class PoolSpec:
    """One node pool as a scenario describes it."""

    pool_id: str
    name: str
    instance_type: str
    # The bounds the scenario gives the pool: the agent's configured bounds in dev mode, and
    # ACK's auto_scaling min/max_instances only when `auto_scaling` is on.
    min_size: int = 0
    max_size: int = 10
    desired: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    boot: BootLatency = BootLatency()
    failure: str = "none"  # one of FAILURE_MODES
    slow_factor: float = 3.0  # boot latency multiplier when failure == "slow"
    stockout_fail_after_seconds: float = 60.0  # when a stocked-out scale-out task fails
    pod_start_seconds: float = 2.0  # image pull + container start on this pool's nodes
    # RemoveNodePoolNodes fails a drain that has not emptied the node after this long
    drain_timeout_seconds: float = DRAIN_TIMEOUT_SECONDS
    # PrePaid (subscription) instances are never released by RemoveNodePoolNodes, even with
    # release_node=true (ACK user guide "remove a node")
    instance_charge_type: str = "PostPaid"
    price_per_hour: float | None = None  # None: the catalog's approximation
    # ACK's own node autoscaling on the pool (auto_scaling.enable). Off, as the pools this agent
    # manages must be; then min/max_instances read 0 and ACK enforces neither (CS API reference:
    # they take effect only when enable=true).
    auto_scaling: bool = False

    @property
    def machine(self) -> InstanceType:
        return instance_type(self.instance_type)

    @property
    def hourly_price(self) -> float:
        return self.machine.price_per_hour if self.price_per_hour is None else self.price_per_hour


@dataclass(frozen=True)
class NodeUsage:
    """Billing view of one node over its life: billed from launch to removal."""

    node_name: str
    pool_id: str
    instance_type: str
    price_per_hour: float
    billed_seconds: float
    busy_seconds: float  # time with at least one workload (non-DaemonSet) pod bound

    @property
    def idle_seconds(self) -> float:
        return max(0.0, self.billed_seconds - self.busy_seconds)

    @property
    def cost(self) -> float:
        return self.billed_seconds / 3600.0 * self.price_per_hour


@dataclass
class _Instance:
    instance_id: str
    node_name: str
    ip: str
    pool_id: str
    created_at: float
    ready_at: float
    state: str = "initial"  # initial | running | removing
    removed_at: float | None = None
    drain_started: float | None = None
    busy_since: float | None = None
    busy_seconds: float = 0.0
    removal_task: str | None = None  # the CS task draining it
    release: bool = True  # whether its removal releases the ECS instance
    next_eviction: float = 0.0  # when the drain tries the refused evictions again
    staying: tuple[str, ...] = ()  # what the last drain pass could not evict
    billed_to_end: bool = False  # removed from the cluster but not released: still billed


@dataclass
class _Task:
    task_id: str
    task_type: str
    pool_id: str
    created_at: float
    instance_ids: tuple[str, ...] = ()
    fail_at: float | None = None
    error: str | None = None
    finished_at: float | None = None
    drain_failures: list[str] = field(default_factory=list)  # one line per node not drained


@dataclass
class _Pool:
    spec: PoolSpec
    desired: int
    instances: dict[str, _Instance] = field(default_factory=dict)  # live and removing

    def live(self) -> list[_Instance]:
        return [i for i in self.instances.values() if i.state != "removing"]


class NodePools:
    """The simulated node pools of one cluster, implementing `NodePoolService`.

    A SimCluster component: `start()` launches the initial nodes and follows pod events (to drain
    nodes and account busy time); `stop()` ends that.
    """

    def __init__(
        self,
        store: ObjectStore,
        clock: SimClock,
        *,
        cluster_id: str,
        region_id: str,
        zone: str,
        pools: list[PoolSpec],
        seed: int = 0,
        addresses: AddressBook | None = None,
        node_quota: int = DEFAULT_NODE_QUOTA,
    ) -> None:
        self.cluster_id = cluster_id
        self.node_quota = node_quota
        self.region_id = region_id
        self.zone = zone
        self._store = store
        self._clock = clock
        self._rng = random.Random(seed)
        self._addresses = addresses or AddressBook(random.Random(seed + 1))
        self._pools: dict[str, _Pool] = {}
        for spec in pools:
            if spec.pool_id in self._pools:
                raise ValueError(f"duplicate node pool id {spec.pool_id!r}")
            self._pools[spec.pool_id] = _Pool(spec=spec, desired=0)
        self._tasks: dict[str, _Task] = {}
        self._by_node: dict[str, _Instance] = {}
        self._retired: list[_Instance] = []
        self._occupants: dict[str, set[str]] = {}  # node name -> workload pod keys
        self._pod_node: dict[str, str] = {}  # pod key -> node it occupies
        self._tasks_running: list[asyncio.Task[None]] = []
        self._subscription: Subscription | None = None

    # -- component lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        # subscribe and list with no await between: no pod event falls in the gap
        self._subscription = self._store.subscribe(resources=("pods",))
        pods, _ = self._store.list("pods")
        for pod in pods:
            meta = pod.get("metadata") or {}
            self._move_pod(f"{meta.get('namespace')}/{meta.get('name')}", occupies_node(pod))
        for pool in self._pools.values():
            if pool.spec.desired:
                # Nodes that exist when the scenario begins are already booted.
                self._launch(pool, pool.spec.desired, booted=True)
            pool.desired = pool.spec.desired
        self._tasks_running = [
            asyncio.create_task(self._follow_pods(), name="nodepools-follow"),
            asyncio.create_task(self._reconcile_loop(), name="nodepools-reconcile"),
        ]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks_running)
        self._tasks_running = []
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    # -- NodePoolService ----------------------------------------------------------------------

    def describe_pools(self) -> list[PoolView]:
        return [self._view(pool) for pool in self._pools.values()]

    def specs(self) -> list[PoolSpec]:
        """The pools as the scenario describes them (bounds included)."""
        return [pool.spec for pool in self._pools.values()]

    def set_ack_autoscaling(self, pool_id: str, enabled: bool) -> None:
        """The operator switches ACK's own node autoscaling on the pool on or off."""
        pool = self._pool(pool_id)
        pool.spec = dataclasses.replace(pool.spec, auto_scaling=enabled)

    def describe_pool(self, pool_id: str) -> PoolView:
        return self._view(self._pool(pool_id))

    def set_desired(self, pool_id: str, desired: int) -> TaskView:
        # ACK's refusals (bounds, 500 per call, node quota) are checked by the CS emulator in
        # front of this service: cloud_model.check_desired.
        pool = self._pool(pool_id)
        live = len(pool.live())
        pool.desired = desired
        if desired > live:
            return self._scale_out(pool, desired - live)
        if desired < live:
            victims = self._choose_victims(pool, live - desired)
            return self._scale_in(pool, victims, drain=True, task_type="nodepool_scale_in")
        return self._done_task(pool, "nodepool_scale_out")

    def cluster_nodes(self) -> int:
        """Nodes the quota counts: the cluster's real nodes plus every pool's desired nodes not
        yet launched (the ECI virtual node is assumed not to count; undocumented)."""
        nodes, _ = self._store.list("nodes")
        real = sum(1 for n in nodes if not _is_virtual(n))
        return real + sum(max(0, p.desired - len(p.live())) for p in self._pools.values())

    def scale_by(self, pool_id: str, count: int) -> TaskView:
        pool = self._pool(pool_id)
        if count <= 0:
            raise CloudError(400, ERR_INVALID_PARAMETER, f"count must be positive, got {count}")
        return self.set_desired(pool_id, pool.desired + count)

    def remove_nodes(
        self, pool_id: str, instance_ids: list[str], *, drain: bool, release: bool
    ) -> TaskView:
        # release=False keeps the ECS instance outside the cluster, and a PrePaid instance is
        # kept whatever release says: either way it is billed on, to the end of the run.
        pool = self._pool(pool_id)
        victims: list[_Instance] = []
        for instance_id in instance_ids:
            instance = pool.instances.get(instance_id)
            if instance is None:
                raise CloudError(
                    400,
                    ERR_INVALID_PARAMETER,
                    f"instance {instance_id} is not a node of node pool {pool_id}",
                )
            if instance.state != "removing":
                victims.append(instance)
        # Desired drops as each node goes (in `_retire`), so a node whose drain fails still counts
        # (modelled: when ACK lowers it is not documented; a scaling group whose desired size
        # fell below its instances would remove one on its own, undrained).
        return self._scale_in(
            pool, victims, drain=drain, task_type="nodepool_remove_nodes", release=release
        )

    def describe_nodes(self, pool_id: str | None = None) -> list[NodeView]:
        pools = [self._pool(pool_id)] if pool_id is not None else list(self._pools.values())
        views = []
        for pool in pools:
            for instance in pool.instances.values():
                ready = self._node_ready(instance)
                views.append(
                    NodeView(
                        instance_id=instance.instance_id,
                        node_name=instance.node_name,
                        pool_id=pool.spec.pool_id,
                        instance_type=pool.spec.instance_type,
                        ip=instance.ip,
                        # A Ready node has booted: never "initial" beside it, even before the
                        # reconcile pass that records the change (at most 1 s later) has run.
                        state="running"
                        if instance.state == "initial" and ready
                        else instance.state,
                        node_status="Ready" if ready else "NotReady",
                        creation_time=self._clock.iso(instance.created_at),
                    )
                )
        return views

    def describe_task(self, task_id: str) -> TaskView:
        task = self._tasks.get(task_id)
        if task is None:
            raise CloudError(404, ERR_TASK_NOT_FOUND, f"task {task_id} not found")
        self._settle(task)
        return self._task_view(task)

    # -- reports ------------------------------------------------------------------------------

    def usage(self) -> list[NodeUsage]:
        """Billing and busy seconds of every node launched so far, removed ones included."""
        now = self._clock.now()
        result = []
        for instance in [*self._retired, *self._by_node.values()]:
            spec = self._pools[instance.pool_id].spec
            end = (
                now
                if instance.removed_at is None or instance.billed_to_end
                else instance.removed_at
            )
            busy = instance.busy_seconds
            if instance.busy_since is not None:
                busy += end - instance.busy_since
            result.append(
                NodeUsage(
                    node_name=instance.node_name,
                    pool_id=instance.pool_id,
                    instance_type=spec.instance_type,
                    price_per_hour=spec.hourly_price,
                    billed_seconds=max(0.0, end - instance.created_at),
                    busy_seconds=busy,
                )
            )
        return result

    def instance_id_of(self, node_name: str) -> str | None:
        instance = self._by_node.get(node_name)
        return instance.instance_id if instance else None

    # -- scaling ------------------------------------------------------------------------------

    def _pool(self, pool_id: str) -> _Pool:
        pool = self._pools.get(pool_id)
        if pool is None:
            raise CloudError(404, ERR_POOL_NOT_FOUND, f"node pool {pool_id} not found")
        return pool

    def _scale_out(self, pool: _Pool, count: int) -> TaskView:
        now = self._clock.now()
        task = self._new_task(pool, "nodepool_scale_out")
        if pool.spec.failure == "stockout":
            # Desired is accepted, but the scaling group never gets an instance.
            task.fail_at = now + pool.spec.stockout_fail_after_seconds
        else:
            task.instance_ids = tuple(i.instance_id for i in self._launch(pool, count))
        return self._task_view(task)

    def _scale_in(
        self,
        pool: _Pool,
        victims: list[_Instance],
        *,
        drain: bool,
        task_type: str,
        release: bool = True,
    ) -> TaskView:
        task = self._new_task(pool, task_type)
        task.instance_ids = tuple(v.instance_id for v in victims)
        for victim in victims:
            victim.removal_task = task.task_id
            victim.release = release and pool.spec.instance_charge_type != "PrePaid"
            self._begin_removal(victim, drain=drain)
        self._settle(task)
        return self._task_view(task)

    def _done_task(self, pool: _Pool, task_type: str) -> TaskView:
        task = self._new_task(pool, task_type)
        task.finished_at = task.created_at
        return self._task_view(task)

    def _choose_victims(self, pool: _Pool, count: int) -> list[_Instance]:
        # Cheapest to lose first: still booting, then fewest workload pods, then newest.
        def cost(instance: _Instance) -> tuple[int, int, float]:
            booted = 1 if self._node_ready(instance) else 0
            pods = len(self._occupants.get(instance.node_name, ()))
            return (booted, pods, -instance.created_at)

        return sorted(pool.live(), key=cost)[:count]

    def node_labels(self, spec: PoolSpec, node_name: str) -> dict[str, str]:
        """The labels a node of the pool registers with (ACK's, facts.md: pool id, instance
        type, zone, region), the pool's own first."""
        labels = {
            **spec.labels,
            POOL_LABEL: spec.pool_id,
            "node.kubernetes.io/instance-type": spec.instance_type,
            "beta.kubernetes.io/instance-type": spec.instance_type,
            "topology.kubernetes.io/zone": self.zone,
            "topology.kubernetes.io/region": self.region_id,
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }
        if spec.machine.gpu:
            labels.setdefault("aliyun.accelerator/nvidia_name", spec.machine.gpu_model)
        return labels

    def _launch(self, pool: _Pool, count: int, *, booted: bool = False) -> list[_Instance]:
        spec = pool.spec
        machine = spec.machine
        now = self._clock.now()
        created = self._clock.iso(now)
        launched = []
        for _ in range(count):
            ip = self._addresses.allocate()
            name = f"{self.region_id}.{ip}"
            instance_id = "i-bp1" + "".join(
                self._rng.choices(string.ascii_lowercase + string.digits, k=17)
            )
            boot = 0.0 if booted else spec.boot.sample(self._rng)
            if spec.failure == "slow" and not booted:
                boot *= spec.slow_factor
            instance = _Instance(
                instance_id=instance_id,
                node_name=name,
                ip=ip,
                pool_id=spec.pool_id,
                created_at=now,
                ready_at=now + boot,
            )
            labels = self.node_labels(spec, name)
            self._store.create(
                "nodes",
                node_object(
                    name,
                    machine,
                    labels=labels,
                    taints=[dict(t) for t in spec.taints],
                    ip=ip,
                    created=created,
                    ready_at=instance.ready_at,
                    ready=booted,
                    pod_start_seconds=spec.pod_start_seconds,
                    # ACK's cloud controller writes providerID as "<region>.<instance id>".
                    provider_id=f"{self.region_id}.{instance_id}",
                ),
            )
            if booted:
                instance.state = "running"
            pool.instances[instance_id] = instance
            self._by_node[name] = instance
            launched.append(instance)
        return launched

    def _begin_removal(self, instance: _Instance, *, drain: bool) -> None:
        now = self._clock.now()
        instance.state = "removing"
        instance.drain_started = now
        if not drain:
            self._delete_pods_on(instance.node_name)
            self._retire(instance)
            return
        cordon(self._store, instance.node_name)
        self._drain_pass(instance, now)
        if not self._occupants.get(instance.node_name):
            self._retire(instance)

    def _drain_pass(self, instance: _Instance, now: float) -> None:
        instance.staying = tuple(evict_pass(self._store, self._clock, instance.node_name))
        instance.next_eviction = now + EVICTION_RETRY_SECONDS

    def _drain_failed(self, instance: _Instance, now: float) -> None:
        """Pods remain at the drain timeout: the node is not removed and its task fails. Whether
        ACK uncordons the node then is not documented: it stays cordoned (the worse case)."""
        pool = self._pools[instance.pool_id]
        timeout = pool.spec.drain_timeout_seconds
        staying = ", ".join(instance.staying) or "pods still terminating"
        # ACK's error code and message for a failed drain are not documented: descriptive text,
        # no code of our own
        failure = (
            f"drain of node {instance.node_name} ({instance.instance_id}) failed after "
            f"{timeout:g}s: {staying}; the node was not removed"
        )
        task = self._tasks.get(instance.removal_task or "")
        if task is not None:
            task.drain_failures.append(failure)
        instance.state = "running"
        instance.drain_started = None
        instance.removal_task = None
        log.info("drain failed", extra={"node": instance.node_name, "staying": staying})

    def _delete_pods_on(self, node_name: str) -> None:
        """Without drain the node goes with its pods: they are deleted at once."""
        pods, _ = self._store.list("pods")
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            meta = pod["metadata"]
            with contextlib.suppress(ApiError):
                self._store.delete("pods", meta["name"], namespace=meta.get("namespace"))

    def _retire(self, instance: _Instance) -> None:
        if instance.removed_at is not None:
            return
        now = self._clock.now()
        if instance.busy_since is not None:
            instance.busy_seconds += now - instance.busy_since
            instance.busy_since = None
        instance.removed_at = now
        instance.billed_to_end = not instance.release
        task = self._tasks.get(instance.removal_task or "")
        pool = self._pools[instance.pool_id]
        if task is not None and task.task_type == "nodepool_remove_nodes":
            # ACK's min_instances binds only with its auto scaling on
            floor = pool.spec.min_size if pool.spec.auto_scaling else 0
            pool.desired = max(floor, pool.desired - 1)
        with contextlib.suppress(ApiError):
            self._store.delete("nodes", instance.node_name)
        pool.instances.pop(instance.instance_id, None)
        self._by_node.pop(instance.node_name, None)
        self._retired.append(instance)

    # -- background work ----------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            try:
                self._reconcile()
            except Exception:  # one bad pass must not stop draining for good
                log.exception("node pool reconcile failed")
            await self._clock.sleep(1.0)

    def _reconcile(self) -> None:
        """Mark booted nodes running; drain removing ones: retire the emptied, retry refused
        evictions, fail the drains that ran out of time."""
        now = self._clock.now()
        for instance in list(self._by_node.values()):
            if instance.state == "initial" and self._node_ready(instance):
                instance.state = "running"
            elif instance.state == "removing":
                if not self._occupants.get(instance.node_name):
                    self._retire(instance)
                    continue
                timeout = self._pools[instance.pool_id].spec.drain_timeout_seconds
                if instance.drain_started is not None and now - instance.drain_started >= timeout:
                    self._drain_failed(instance, now)
                elif now >= instance.next_eviction:
                    self._drain_pass(instance, now)

    async def _follow_pods(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            if event.resource != "pods":
                continue
            meta = event.object.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            node = None if event.type == "DELETED" else occupies_node(event.object)
            self._move_pod(key, node)

    def _move_pod(self, key: str, node: str | None) -> None:
        previous = self._pod_node.get(key)
        if previous == node:
            return
        now = self._clock.now()
        if previous is not None:
            self._pod_node.pop(key, None)
            holders = self._occupants.get(previous, set())
            holders.discard(key)
            instance = self._by_node.get(previous)
            if not holders and instance is not None and instance.busy_since is not None:
                instance.busy_seconds += now - instance.busy_since
                instance.busy_since = None
        if node is not None:
            self._pod_node[key] = node
            holders = self._occupants.setdefault(node, set())
            holders.add(key)
            instance = self._by_node.get(node)
            if instance is not None and instance.busy_since is None:
                instance.busy_since = now

    # -- views --------------------------------------------------------------------------------

    def _node_ready(self, instance: _Instance) -> bool:
        try:
            node = self._store.get("nodes", instance.node_name)
        except ApiError:
            return False
        return node_is_ready(node)

    def _view(self, pool: _Pool) -> PoolView:
        spec = pool.spec
        live = pool.live()
        ready = sum(1 for i in live if self._node_ready(i))
        failed = 0
        if spec.failure == "stockout" and any(
            t.pool_id == spec.pool_id and t.error for t in self._settled_tasks()
        ):
            failed = max(0, pool.desired - len(live))
        return PoolView(
            pool_id=spec.pool_id,
            name=spec.name,
            instance_types=(spec.instance_type,),
            desired=pool.desired,
            # auto_scaling.min/max_instances: 0 unless ACK's autoscaling is on (the API default)
            min_size=spec.min_size if spec.auto_scaling else 0,
            max_size=spec.max_size if spec.auto_scaling else 0,
            labels=dict(spec.labels),
            taints=tuple(dict(t) for t in spec.taints),
            auto_scaling_enabled=spec.auto_scaling,
            total_nodes=len(pool.instances),
            healthy_nodes=ready,
            serving_nodes=ready,
            initial_nodes=len(live) - ready,
            failed_nodes=failed,
            removing_nodes=len(pool.instances) - len(live),
            zone=self.zone,
        )

    def _settled_tasks(self) -> list[_Task]:
        for task in self._tasks.values():
            self._settle(task)
        return list(self._tasks.values())

    def _new_task(self, pool: _Pool, task_type: str) -> _Task:
        task_id = "T-" + "".join(self._rng.choices("0123456789abcdef", k=24))
        task = _Task(
            task_id=task_id,
            task_type=task_type,
            pool_id=pool.spec.pool_id,
            created_at=self._clock.now(),
        )
        self._tasks[task_id] = task
        return task

    def _settle(self, task: _Task) -> None:
        """Move a running task to success or fail once the cloud has finished its work."""
        if task.finished_at is not None:
            return
        now = self._clock.now()
        if task.fail_at is not None:
            if now >= task.fail_at:
                task.error = NO_STOCK_ERROR
                task.finished_at = task.fail_at
            return
        pool = self._pools[task.pool_id]
        if task.task_type == "nodepool_scale_out":
            pending = [
                pool.instances[i]
                for i in task.instance_ids
                if i in pool.instances and pool.instances[i].state != "removing"
            ]
            if all(self._node_ready(i) for i in pending):
                task.finished_at = max([task.created_at, *(i.ready_at for i in pending)])
        elif not any(
            i in pool.instances and pool.instances[i].removal_task == task.task_id
            for i in task.instance_ids
        ):
            # every node is gone or failed its drain; one failure fails the task
            task.finished_at = now
            if task.drain_failures:
                task.error = "; ".join(task.drain_failures)

    def _task_view(self, task: _Task) -> TaskView:
        if task.finished_at is None:
            state, updated = "running", task.created_at
        else:
            state = "fail" if task.error else "success"
            updated = task.finished_at
        return TaskView(
            task_id=task.task_id,
            task_type=task.task_type,
            state=state,
            created=self._clock.iso(task.created_at),
            updated=self._clock.iso(updated),
            error=task.error,
        )

"""Reading scenario files: YAML describing a simulated ACK cluster and the Ray workload it runs.

`load_scenario` reads and validates one file (by name from `agent/sim/scenarios/` or by path)
into a frozen `Scenario`; every refusal names the scenario and the path of the bad field, e.g.
"scenario seed: pools[0].maxSize must be ≥ minSize". The field kinds are `scenario_fields`';
`ScenarioReader` reads the sections. Building the simulator from a scenario is `scenario`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from agent.sim.faults import FaultPlan
from agent.sim.kube.store import ApiError
from agent.sim.kube.write_rules import validate_budget
from agent.sim.scenario_fields import FieldReader, ScenarioError
from agent.sim.world.ack_autoscaler import AckAutoscalerSpec
from agent.sim.world.drain import DRAIN_TIMEOUT_SECONDS
from agent.sim.world.eci import EciSpec
from agent.sim.world.nodepools import (
    CHARGE_TYPES,
    DEFAULT_NODE_QUOTA,
    FAILURE_MODES,
    BootLatency,
    PoolSpec,
)
from agent.sim.world.ray import HeadSpec, JobSpec, RayClusterSpec, TaskGroup, WorkerGroupSpec
from agent.sim.world.raycluster_spec import AUTOSCALERS, OPERATOR_DELAY_SECONDS
from functions.contract import STRATEGIES
from functions.quantity import parse_quantity

SCENARIO_DIR = Path(__file__).with_name("scenarios")


@dataclass(frozen=True)
class ClusterSpec:
    cluster_id: str = "c-sim"
    region: str = "cn-hangzhou"
    zone: str = "cn-hangzhou-k"
    node_quota: int = DEFAULT_NODE_QUOTA  # DescribeUserQuota node_quota


@dataclass(frozen=True)
class SystemNodeSpec:
    """Pre-existing nodes (ACK's default pool) where the Ray head and add-ons run."""

    instance_type: str = "ecs.g7.xlarge"
    count: int = 1
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    speed: float
    time_limit_seconds: float
    cluster: ClusterSpec
    system_nodes: tuple[SystemNodeSpec, ...]
    pools: tuple[PoolSpec, ...]
    eci: EciSpec
    ray: RayClusterSpec
    job: JobSpec
    faults: Mapping[str, Any] = field(default_factory=dict)  # FaultPlan keyword arguments
    policy: Mapping[str, Any] = field(default_factory=dict)  # decide/v1 policy for the agent
    # policy/v1 PodDisruptionBudgets that exist from the start, as objects
    budgets: tuple[Mapping[str, Any], ...] = ()
    # ACK's own autoscaler over the pools with autoScaling on (agent.sim.world.ack_autoscaler)
    ack_autoscaler: AckAutoscalerSpec = field(default_factory=AckAutoscalerSpec)

    def fault_plan(self) -> FaultPlan:
        """A fresh FaultPlan for this scenario, seeded from the scenario's seed."""
        return FaultPlan(**{"seed": self.seed, **self.faults})

    @property
    def task_count(self) -> int:
        return sum(group.count for group in self.job.task_groups)


# -- loading ------------------------------------------------------------------------------------


def available_scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file by path. Raises ScenarioError."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = ", ".join(available_scenarios())
            raise ScenarioError(f"scenario {name_or_path}: no such scenario (built in: {known})")
    label = path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"scenario {label}: cannot read {path}: {error}") from None
    return parse_scenario(text, name=label)


def parse_scenario(text: str, *, name: str) -> Scenario:
    """Validate scenario YAML text; `name` is used in error messages and as the default name."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"scenario {name}: not valid YAML: {error}") from None
    return ScenarioReader(name).scenario(data)


def _camel_to_snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


_FAULT_FIELDS = {f.name for f in fields(FaultPlan) if f.init and f.name != "seed"}


class ScenarioReader(FieldReader):
    """The sections of a scenario file, read into the simulator's specs."""

    def policy(self, value: Any, path: str) -> dict[str, Any]:
        """The decide/v1 `policy` object the agent should send for this scenario, and the
        scale-in/v1 settings a scenario may set (drainNonEmpty, scaleDownUnneededSeconds,
        scaleDownDelayAfterFailureSeconds)."""
        data = self.mapping(
            value,
            path,
            (
                "strategy",
                "latencyBudgetSeconds",
                "expectedRunSeconds",
                "maxNewNodesPerDecision",
                "maxProvisionSeconds",
                "drainNonEmpty",
                "scaleDownUnneededSeconds",
                "scaleDownDelayAfterFailureSeconds",
            ),
        )
        result: dict[str, Any] = {}
        for key, item in data.items():
            where = f"{path}.{key}"
            if key == "strategy":
                if item not in STRATEGIES:
                    raise self.fail(where, f"must be one of {', '.join(STRATEGIES)}, got {item!r}")
                result[key] = item
            elif key == "maxNewNodesPerDecision":
                result[key] = self.integer(item, where)
            elif key == "drainNonEmpty":
                result[key] = self.boolean(item, where)
            else:
                result[key] = self.number(item, where)
        return result

    # sections

    def scenario(self, data: Any) -> Scenario:
        root = self.mapping(
            data,
            "",
            (
                "name",
                "description",
                "seed",
                "speed",
                "timeLimitSeconds",
                "cluster",
                "systemNodes",
                "pools",
                "eci",
                "ray",
                "job",
                "faults",
                "policy",
                "podDisruptionBudgets",
                "ackAutoscaler",
            ),
        )
        if "name" in root:
            self.name = self.get(root, "name", "", self.k8s_name)
        cluster = self.cluster(root.get("cluster") or {}, "cluster")
        system = tuple(
            self.system_node(raw, f"systemNodes[{i}]")
            for i, raw in enumerate(
                self.get(root, "systemNodes", "", self.items, [dict[str, Any]()])
            )
        )
        if not system:
            raise self.fail("systemNodes", "must list at least one node (the Ray head runs there)")
        pools = tuple(
            self.pool(raw, f"pools[{i}]")
            for i, raw in enumerate(self.get(root, "pools", "", self.items, list[Any]()))
        )
        seen: dict[str, int] = {}
        for i, pool in enumerate(pools):
            if pool.pool_id in seen:
                raise self.fail(
                    f"pools[{i}].id", f"duplicates pools[{seen[pool.pool_id]}].id {pool.pool_id!r}"
                )
            seen[pool.pool_id] = i
        eci = self.eci(root.get("eci") or {"enabled": False}, "eci", cluster)
        ray = self.ray(self.get(root, "ray", "", self.present, required=True), "ray")
        job = self.job(self.get(root, "job", "", self.present, required=True), "job", ray)
        budgets = tuple(
            self.budget(raw, f"podDisruptionBudgets[{i}]", namespace=ray.namespace)
            for i, raw in enumerate(
                self.get(root, "podDisruptionBudgets", "", self.items, list[Any]())
            )
        )
        return Scenario(
            name=self.name,
            description=self.get(root, "description", "", self.text, ""),
            seed=self.get(root, "seed", "", self.integer, 0),
            speed=self.get(root, "speed", "", self.positive, 50.0),
            time_limit_seconds=self.get(root, "timeLimitSeconds", "", self.positive, 1800.0),
            cluster=cluster,
            system_nodes=system,
            pools=pools,
            eci=eci,
            ray=ray,
            job=job,
            faults=self.faults(root.get("faults") or {}, "faults"),
            policy=self.get(root, "policy", "", self.policy, {}),
            budgets=budgets,
            ack_autoscaler=self.ack_autoscaler(root.get("ackAutoscaler") or {}, "ackAutoscaler"),
        )

    def ack_autoscaler(self, raw: Any, path: str) -> AckAutoscalerSpec:
        """The settings of ACK's own autoscaler stand-in (cluster-autoscaler's flags)."""
        data = self.mapping(
            raw,
            path,
            (
                "scanIntervalSeconds",
                "scaleDownUnneededSeconds",
                "scaleDownDelayAfterAddSeconds",
            ),
        )
        defaults = AckAutoscalerSpec()
        return AckAutoscalerSpec(
            scan_interval_seconds=self.get(
                data, "scanIntervalSeconds", path, self.positive, defaults.scan_interval_seconds
            ),
            scale_down_unneeded_seconds=self.get(
                data,
                "scaleDownUnneededSeconds",
                path,
                self.number,
                defaults.scale_down_unneeded_seconds,
            ),
            scale_down_delay_after_add_seconds=self.get(
                data,
                "scaleDownDelayAfterAddSeconds",
                path,
                self.number,
                defaults.scale_down_delay_after_add_seconds,
            ),
        )

    def cluster(self, raw: Any, path: str) -> ClusterSpec:
        data = self.mapping(raw, path, ("id", "region", "zone", "nodeQuota"))
        region = self.get(data, "region", path, self.text, "cn-hangzhou")
        zone = self.get(data, "zone", path, self.text, f"{region}-k")
        if not zone.startswith(region):
            raise self.fail(f"{path}.zone", f"{zone!r} is not a zone of region {region!r}")
        return ClusterSpec(
            cluster_id=self.get(data, "id", path, self.text, "c-sim"),
            region=region,
            zone=zone,
            node_quota=self.get(data, "nodeQuota", path, self.integer, DEFAULT_NODE_QUOTA),
        )

    def system_node(self, raw: Any, path: str) -> SystemNodeSpec:
        data = self.mapping(raw, path, ("instanceType", "count", "labels", "taints"))
        count = self.get(data, "count", path, self.integer, 1)
        if count < 1:
            raise self.fail(f"{path}.count", "must be ≥ 1")
        return SystemNodeSpec(
            instance_type=self.get(data, "instanceType", path, self.instance, "ecs.g7.xlarge"),
            count=count,
            labels=self.get(data, "labels", path, self.string_map, {}),
            taints=self.get(data, "taints", path, self.taints, ()),
        )

    def pool(self, raw: Any, path: str) -> PoolSpec:
        data = self.mapping(
            raw,
            path,
            (
                "id",
                "name",
                "instanceType",
                "minSize",
                "maxSize",
                "desired",
                "labels",
                "taints",
                "bootSeconds",
                "failure",
                "slowFactor",
                "stockoutFailAfterSeconds",
                "podStartSeconds",
                "drainTimeoutSeconds",
                "instanceChargeType",
                "pricePerHour",
                "autoScaling",
            ),
        )
        pool_id = self.get(data, "id", path, self.k8s_name, required=True)
        min_size = self.get(data, "minSize", path, self.integer, 0)
        max_size = self.get(data, "maxSize", path, self.integer, 10)
        if max_size < min_size:
            raise self.fail(f"{path}.maxSize", "must be ≥ minSize")
        desired = self.get(data, "desired", path, self.integer, min_size)
        if not min_size <= desired <= max_size:
            raise self.fail(
                f"{path}.desired", f"must be between minSize and maxSize, got {desired}"
            )
        boot = self.get(data, "bootSeconds", path, self.boot, BootLatency())
        failure = self.get(data, "failure", path, self.text, "none")
        if failure not in FAILURE_MODES:
            raise self.fail(
                f"{path}.failure", f"must be one of {', '.join(FAILURE_MODES)}, got {failure!r}"
            )
        return PoolSpec(
            pool_id=pool_id,
            name=self.get(data, "name", path, self.text, pool_id),
            instance_type=self.get(data, "instanceType", path, self.instance, required=True),
            min_size=min_size,
            max_size=max_size,
            desired=desired,
            labels=self.get(data, "labels", path, self.string_map, {}),
            taints=self.get(data, "taints", path, self.taints, ()),
            boot=boot,
            failure=failure,
            slow_factor=self.get(data, "slowFactor", path, self.positive, 3.0),
            stockout_fail_after_seconds=self.get(
                data, "stockoutFailAfterSeconds", path, self.number, 60.0
            ),
            pod_start_seconds=self.get(data, "podStartSeconds", path, self.number, 2.0),
            drain_timeout_seconds=self.get(
                data, "drainTimeoutSeconds", path, self.positive, DRAIN_TIMEOUT_SECONDS
            ),
            instance_charge_type=self.get(
                data, "instanceChargeType", path, self.charge_type, "PostPaid"
            ),
            price_per_hour=self.get(data, "pricePerHour", path, self.number, None),
            auto_scaling=self.get(data, "autoScaling", path, self.boolean, False),
        )

    def budget(self, raw: Any, path: str, *, namespace: str) -> dict[str, Any]:
        """A policy/v1 PodDisruptionBudget (namespace: the Ray cluster's unless given), checked
        by the API server's own validation."""
        data = self.mapping(
            raw,
            path,
            (
                "name",
                "namespace",
                "selector",
                "minAvailable",
                "maxUnavailable",
                "unhealthyPodEvictionPolicy",
            ),
        )
        selector = self.mapping(
            self.get(data, "selector", path, self.present, required=True),
            f"{path}.selector",
            ("matchLabels", "matchExpressions"),
        )
        spec = {
            key: data[key]
            for key in ("minAvailable", "maxUnavailable", "unhealthyPodEvictionPolicy")
            if data.get(key) is not None
        }
        budget = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": self.get(data, "name", path, self.k8s_name, required=True),
                "namespace": self.get(data, "namespace", path, self.k8s_name, namespace),
            },
            "spec": {"selector": selector, **spec},
        }
        try:
            validate_budget(budget)
        except ApiError as error:
            raise self.fail(path, f"is not a valid PodDisruptionBudget: {error.message}") from None
        return budget

    def charge_type(self, value: Any, path: str) -> str:
        if value not in CHARGE_TYPES:
            raise self.fail(path, f"must be one of {', '.join(CHARGE_TYPES)}, got {value!r}")
        return str(value)

    def boot(self, raw: Any, path: str) -> BootLatency:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            seconds = self.number(raw, path)
            return BootLatency(seconds, seconds)
        data = self.mapping(raw, path, ("min", "max"))
        low = self.get(data, "min", path, self.number, required=True)
        high = self.get(data, "max", path, self.number, low)
        if high < low:
            raise self.fail(f"{path}.max", "must be ≥ min")
        return BootLatency(low, high)

    def eci(self, raw: Any, path: str, cluster: ClusterSpec) -> EciSpec:
        data = self.mapping(
            raw,
            path,
            (
                "enabled",
                "zone",
                "startSeconds",
                "cpu",
                "memory",
                "maxPods",
                "pricePerVcpuSecond",
                "pricePerGibSecond",
                "maxPodCpu",
                "maxPodMemory",
            ),
        )
        defaults = EciSpec()
        capacity = {
            key: self.get(data, key, path, self.text, default)
            for key, default in (
                ("cpu", defaults.cpu),
                ("memory", defaults.memory),
                ("maxPodCpu", defaults.max_pod_cpu),
                ("maxPodMemory", defaults.max_pod_memory),
            )
        }
        for key, quantity in capacity.items():
            self.resources({key: quantity}, path)
        return EciSpec(
            enabled=self.get(data, "enabled", path, self.boolean, True),
            zone=self.get(data, "zone", path, self.text, cluster.zone),
            start_seconds=self.get(data, "startSeconds", path, self.number, defaults.start_seconds),
            cpu=capacity["cpu"],
            memory=capacity["memory"],
            max_pods=self.get(data, "maxPods", path, self.integer, defaults.max_pods),
            price_per_vcpu_second=self.get(
                data, "pricePerVcpuSecond", path, self.number, defaults.price_per_vcpu_second
            ),
            price_per_gib_second=self.get(
                data, "pricePerGibSecond", path, self.number, defaults.price_per_gib_second
            ),
            max_pod_cpu=capacity["maxPodCpu"],
            max_pod_memory=capacity["maxPodMemory"],
        )

    def ray(self, raw: Any, path: str) -> RayClusterSpec:
        data = self.mapping(
            raw,
            path,
            (
                "name",
                "namespace",
                "head",
                "workerGroups",
                "image",
                "autoscalerPeriodSeconds",
                "operatorDelaySeconds",
                "autoscaler",
            ),
        )
        autoscaler = self.get(data, "autoscaler", path, self.text, "simulated")
        if autoscaler not in AUTOSCALERS:
            raise self.fail(
                f"{path}.autoscaler", f"must be one of {', '.join(AUTOSCALERS)}, got {autoscaler!r}"
            )
        head_raw = self.mapping(
            data.get("head") or {},
            f"{path}.head",
            ("requests", "nodeSelector", "tolerations", "labels", "numCpus"),
        )
        where = f"{path}.head"
        if head_raw.get("numCpus", 0) != 0:
            raise self.fail(f"{where}.numCpus", "must be 0: the head runs no tasks")
        head = HeadSpec(
            requests=self.get(
                head_raw, "requests", where, self.resources, {"cpu": "1", "memory": "2Gi"}
            ),
            node_selector=self.get(head_raw, "nodeSelector", where, self.string_map, {}),
            tolerations=self.get(head_raw, "tolerations", where, self.tolerations, ()),
            labels=self.get(head_raw, "labels", where, self.string_map, {}),
        )
        groups_raw = self.get(data, "workerGroups", path, self.items, required=True)
        if not groups_raw:
            raise self.fail(f"{path}.workerGroups", "must list at least one worker group")
        groups = tuple(
            self.worker_group(g, f"{path}.workerGroups[{i}]") for i, g in enumerate(groups_raw)
        )
        names = [g.name for g in groups]
        for i, group_name in enumerate(names):
            if names.index(group_name) != i:
                raise self.fail(f"{path}.workerGroups[{i}].name", f"duplicates {group_name!r}")
        return RayClusterSpec(
            name=self.get(data, "name", path, self.k8s_name, required=True),
            namespace=self.get(data, "namespace", path, self.k8s_name, "default"),
            head=head,
            worker_groups=groups,
            image=self.get(data, "image", path, self.text, "rayproject/ray:2.9.3"),
            autoscaler_period_seconds=self.get(
                data, "autoscalerPeriodSeconds", path, self.positive, 5.0
            ),
            operator_delay_seconds=self.get(
                data, "operatorDelaySeconds", path, self.number, OPERATOR_DELAY_SECONDS
            ),
            autoscaler=autoscaler,
        )

    def worker_group(self, raw: Any, path: str) -> WorkerGroupSpec:
        data = self.mapping(
            raw,
            path,
            (
                "name",
                "requests",
                "minReplicas",
                "maxReplicas",
                "replicas",
                "idleTimeoutSeconds",
                "labels",
                "annotations",
                "nodeSelector",
                "tolerations",
                "hostPath",
                "privileged",
                "customResources",
            ),
        )
        requests = self.get(data, "requests", path, self.resources, required=True)
        if parse_quantity(requests.get("cpu", "0")) < 1000:
            raise self.fail(
                f"{path}.requests.cpu", "must be at least 1 (Ray advertises whole CPUs)"
            )
        min_replicas = self.get(data, "minReplicas", path, self.integer, 0)
        max_replicas = self.get(data, "maxReplicas", path, self.integer, 10)
        if max_replicas < min_replicas:
            raise self.fail(f"{path}.maxReplicas", "must be ≥ minReplicas")
        replicas = self.get(data, "replicas", path, self.integer, min_replicas)
        if not min_replicas <= replicas <= max_replicas:
            raise self.fail(f"{path}.replicas", "must be between minReplicas and maxReplicas")
        return WorkerGroupSpec(
            name=self.get(data, "name", path, self.k8s_name, required=True),
            requests=requests,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            replicas=replicas,
            idle_timeout_seconds=self.get(data, "idleTimeoutSeconds", path, self.number, 60.0),
            labels=self.get(data, "labels", path, self.string_map, {}),
            annotations=self.get(data, "annotations", path, self.string_map, {}),
            node_selector=self.get(data, "nodeSelector", path, self.string_map, {}),
            tolerations=self.get(data, "tolerations", path, self.tolerations, ()),
            host_path=self.get(data, "hostPath", path, self.boolean, False),
            privileged=self.get(data, "privileged", path, self.boolean, False),
            custom_resources=self.get(data, "customResources", path, self.number_map, {}),
        )

    def job(self, raw: Any, path: str, ray: RayClusterSpec) -> JobSpec:
        data = self.mapping(raw, path, ("tasks", "maxRetries"))
        groups = []
        shapes = [g.logical() for g in ray.worker_groups]
        task_fields = (
            "name",
            "count",
            "numCpus",
            "numGpus",
            "durationSeconds",
            "submitAtSeconds",
            "resources",
        )
        for i, task_raw in enumerate(self.get(data, "tasks", path, self.items, required=True)):
            where = f"{path}.tasks[{i}]"
            task = self.mapping(task_raw, where, task_fields)
            group = TaskGroup(
                name=self.get(task, "name", where, self.text, f"tasks-{i}"),
                count=self.get(task, "count", where, self.integer, required=True),
                num_cpus=self.get(task, "numCpus", where, self.number, 1.0),
                num_gpus=self.get(task, "numGpus", where, self.integer, 0),
                duration_seconds=self.get(
                    task, "durationSeconds", where, self.positive, required=True
                ),
                submit_at_seconds=self.get(task, "submitAtSeconds", where, self.number, 0.0),
                resources=self.get(task, "resources", where, self.number_map, {}),
            )
            demand = group.demand()
            if not any(all(shape.get(k, 0) >= v for k, v in demand.items()) for shape in shapes):
                raise self.fail(where, f"fits no worker group (demand {demand} in milli-units)")
            groups.append(group)
        return JobSpec(
            task_groups=tuple(groups),
            max_retries=self.get(data, "maxRetries", path, self.integer, 3),
        )

    def faults(self, raw: Any, path: str) -> dict[str, Any]:
        data = self.mapping(raw, path, tuple(sorted(_camel(f) for f in _FAULT_FIELDS)))
        result: dict[str, Any] = {}
        for key, value in data.items():
            name = _camel_to_snake(key)
            where = f"{path}.{key}"
            if name.endswith("_ratio"):
                result[name] = self.ratio(value, where)
            elif name == "watch_cut_every_events":
                count = self.integer(value, where)
                if count < 1:
                    raise self.fail(where, "must be ≥ 1")
                result[name] = count
            else:
                result[name] = self.number(value, where)
        return result


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)

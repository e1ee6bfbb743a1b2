"""The one instance-type catalog: ECS types ACK pools launch, the allocatable a node offers after
ACK's system reservation, and an approximate hourly price. The agent reads it when a pool has no
live node to copy `allocatable` from and no configured price; the simulator boots nodes from it.

Every number here is an approximation for simulation and cost reports, not a quote:

* vCPU, memory and GPU count follow the ECS instance-family tables (g7 1:4, c7 1:2, r7 1:8,
  gn7i A10, gn6i T4, gn6v V100).
* `price_per_hour` is an approximate cn-hangzhou pay-as-you-go list price in CNY, rounded; real
  prices change and depend on discounts, disks and bandwidth.
* Allocatable = capacity − reserved − eviction threshold, the formula of ACK's "resource
  reservation policy" page. ACK documents a 4 vCPU node keeping 3900m allocatable; the exact
  per-size tiers vary with the ACK version, so we use the tiered scheme that managed Kubernetes
  services share (see `reserved_cpu_millis` and `reserved_memory_mib`) plus the kubelet's default
  100Mi hard eviction threshold for memory.
"""

from __future__ import annotations

from dataclasses import dataclass

GPU_RESOURCE = "nvidia.com/gpu"
EVICTION_THRESHOLD_MIB = 100

# (upper bound in cores, fraction reserved of the cores inside this tier) past a flat 100m
_CPU_TIERS: tuple[tuple[float, float], ...] = ((64, 0.025), (128, 0.0125), (float("inf"), 0.005))
# (upper bound in GiB, fraction reserved of the memory inside this tier)
_MEMORY_TIERS: tuple[tuple[float, float], ...] = (
    (4, 0.25),
    (8, 0.20),
    (16, 0.10),
    (128, 0.06),
    (float("inf"), 0.02),
)


def reserved_cpu_millis(vcpu: float) -> int:
    """CPU kept for kubelet and system daemons: 100m up to 4 cores, then 2.5% / 1.25% / 0.5% tiers."""
    reserved = 100.0
    lower = 4.0
    for upper, fraction in _CPU_TIERS:
        if vcpu <= lower:
            break
        reserved += (min(vcpu, upper) - lower) * 1000 * fraction
        lower = upper
    return round(reserved)


def reserved_memory_mib(memory_gib: float) -> int:
    """Memory kept for kubelet and system daemons: 25% of the first 4 GiB, 20% of the next 4,
    10% of the next 8, 6% up to 128 GiB, 2% beyond."""
    reserved = 0.0
    lower = 0.0
    for upper, fraction in _MEMORY_TIERS:
        if memory_gib <= lower:
            break
        reserved += (min(memory_gib, upper) - lower) * 1024 * fraction
        lower = upper
    return round(reserved)


@dataclass(frozen=True)
class InstanceType:
    """One ECS instance type as a node pool launches it."""

    name: str
    vcpu: int
    memory_gib: float
    price_per_hour: float  # CNY, cn-hangzhou pay-as-you-go, approximate
    gpu: int = 0
    gpu_model: str = ""
    max_pods: int = 64  # ACK's default with Terway/Flannel on small types; larger types get more

    def capacity(self) -> dict[str, str]:
        """Node status.capacity as the kubelet reports it (quantity strings)."""
        resources = {
            "cpu": str(self.vcpu),
            "memory": f"{round(self.memory_gib * 1024 * 1024)}Ki",
            "pods": str(self.max_pods),
            "ephemeral-storage": "123722704Ki",
        }
        if self.gpu:
            resources[GPU_RESOURCE] = str(self.gpu)
        return resources

    def allocatable(self) -> dict[str, str]:
        """What one node of this type offers to pods after system reservations (approximation)."""
        cpu_millis = self.vcpu * 1000 - reserved_cpu_millis(self.vcpu)
        memory_mib = (
            round(self.memory_gib * 1024)
            - reserved_memory_mib(self.memory_gib)
            - EVICTION_THRESHOLD_MIB
        )
        resources = {
            "cpu": f"{cpu_millis}m",
            "memory": f"{memory_mib}Mi",
            "pods": str(self.max_pods),
            "ephemeral-storage": "114022843818",
        }
        if self.gpu:
            resources[GPU_RESOURCE] = str(self.gpu)
        return resources


def _family(prefix: str, ratio_gib_per_vcpu: int, price_per_vcpu_hour: float) -> list[InstanceType]:
    sizes = (
        ("xlarge", 4),
        ("2xlarge", 8),
        ("4xlarge", 16),
        ("8xlarge", 32),
        ("16xlarge", 64),
        ("32xlarge", 128),
    )
    return [
        InstanceType(
            name=f"{prefix}.{size}",
            vcpu=vcpu,
            memory_gib=vcpu * ratio_gib_per_vcpu,
            price_per_hour=round(vcpu * price_per_vcpu_hour, 2),
            max_pods=64 if vcpu <= 4 else 110 if vcpu <= 32 else 250,
        )
        for size, vcpu in sizes
    ]


_TYPES: list[InstanceType] = [
    *_family("ecs.g7", 4, 0.28),  # general purpose 1:4
    *_family("ecs.c7", 2, 0.22),  # compute optimised 1:2
    *_family("ecs.r7", 8, 0.37),  # memory optimised 1:8
    InstanceType("ecs.gn6i-c4g1.xlarge", 4, 15, 8.9, gpu=1, gpu_model="T4"),
    InstanceType("ecs.gn7i-c8g1.2xlarge", 8, 30, 12.0, gpu=1, gpu_model="A10", max_pods=110),
    InstanceType("ecs.gn7i-c16g1.4xlarge", 16, 60, 15.5, gpu=1, gpu_model="A10", max_pods=110),
    InstanceType("ecs.gn6v-c8g1.2xlarge", 8, 32, 26.5, gpu=1, gpu_model="V100", max_pods=110),
    InstanceType("ecs.gn6v-c8g1.8xlarge", 32, 128, 106.0, gpu=4, gpu_model="V100", max_pods=110),
]

CATALOG: dict[str, InstanceType] = {t.name: t for t in _TYPES}


def instance_type(name: str) -> InstanceType:
    """The catalog entry for `name`; ValueError naming the known types otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise ValueError(f"unknown instance type {name!r} (known: {known})") from None


def allocatable_of(name: str) -> dict[str, str] | None:
    """A new node's allocatable for instance type `name`, or None when the catalog lacks it."""
    entry = CATALOG.get(name)
    return entry.allocatable() if entry is not None else None


def price_of(name: str) -> float | None:
    """The approximate hourly price of `name`, or None when the catalog lacks it."""
    entry = CATALOG.get(name)
    return entry.price_per_hour if entry is not None else None

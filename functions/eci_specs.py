"""The vCPU/memory specs ECI supports, and the one it bills a pod as.

ECI runs a pod as one of its specs, rounded up from what the pod asks for when that is not a
spec itself, and bills the rounded spec: 1 vCPU / 1 GiB runs and is billed as 1 vCPU / 2 GiB.
What a pod asks for: the `k8s.aliyun.com/eci-use-specs` annotation when it has one, else the sum
of its containers' limits (requests where no limit is set), else 2 vCPU / 4 GiB.

Sources (Alibaba Cloud documentation, read 2026-12):
- [specs] "Specify vCPU and memory to create an instance" (updated 2026-06-20): the tables below,
  "rounds them up to the nearest supported specification ... meet or exceed your
  specifications" (7 vCPU / 13 GiB in Hangzhou -> 8 vCPU / 14 GiB), the 2 vCPU / 4 GiB default.
  https://www.alibabacloud.com/help/en/eci/user-guide/specify-the-number-of-vcpus-and-memory-size-to-create-an-elastic-container-instance
- [pod] "Specify the number of vCPUs and memory size to create a pod": which of limits, requests
  and eci-use-specs sizes a pod, and that a sized or pinned spec that is not supported is
  rounded and billed as rounded. https://www.alibabacloud.com/help/doc-detail/451261.html
  (zh: https://help.aliyun.com/document_detail/451261.htm)
- [multi] "Create pods by specifying multiple specifications": eci-use-specs lists vCPU-memory
  specs (`2-4Gi`) and/or ECS instance types (`ecs.c6.xlarge`) in priority order, at most five;
  a pod on an ECS type is billed by that type.
  https://www.alibabacloud.com/help/en/eci/user-guide/create-pods-by-specifying-multiple-specifications-1
- [bill] "Billing of elastic container instances": billed at the adjusted spec.
  https://www.alibabacloud.com/help/en/eci/product-overview/elastic-container-instances

Our reading where the docs are silent (unverified, kept strict):
- "nearest" = fewest vCPUs, then least memory, among specs at least as large on both (the docs'
  example fits it; a cost-based choice could differ, e.g. 52 vCPU / 200 GiB -> 52/384 here,
  though 64/256 would cost less).
- a pinned spec smaller than the pod's containers is skipped (ECI says containers may not sum
  beyond the instance); a pod no pinned spec holds cannot run on ECI.
- an ECS instance type's size and price are unknown here: `pick` returns the pod's own rounded
  size with `instance_type` set, so callers price it as an estimate and say so.
"""

from __future__ import annotations

import re
from bisect import bisect_left

from functions.contract import ECI_USE_SPECS_ANNOTATION
from functions.quantity import format_milli

_GIB = 2**30 * 1000  # milli-bytes
_MILLI = 1000

# [specs], "Specifications supported in all regions": vCPU -> memory (GiB) options.
_ALL_REGIONS: dict[float, tuple[float, ...]] = {
    0.25: (0.5, 1),
    0.5: (1, 2),
    1: (2, 4, 8),
    2: (1, 2, 4, 8, 16),
    4: (2, 4, 8, 16, 32),
    8: (4, 8, 16, 32, 64),
    12: (12, 24, 48, 96),
    16: (16, 32, 64, 128),
    24: (24, 48, 96, 192),
    32: (32, 64, 128, 256),
    52: (96, 192, 384),
    64: (128, 256, 512),
}
# [specs], "Specifications supported only in some regions" (not for preemptible instances).
_SOME_REGIONS: dict[float, tuple[float, ...]] = {
    2: (6, 10, 12, 14),
    4: (6, 10, 12, 14, 18, 20, 22, 24, 26, 28, 30),
    6: tuple(range(6, 49, 2)),
    8: (10, 12, 14, *range(18, 31, 2), *range(34, 63, 2)),
}
# The regions [specs] names for them (China (Hangzhou), ... , Singapore), as region ids.
_REGIONS_WITH_MORE = frozenset(
    {
        "cn-hangzhou",
        "cn-shanghai",
        "cn-qingdao",
        "cn-beijing",
        "cn-zhangjiakou",
        "cn-huhehaote",
        "cn-wulanchabu",
        "cn-shenzhen",
        "cn-heyuan",
        "cn-guangzhou",
        "cn-chengdu",
        "ap-southeast-1",
    }
)
# [pod]: a pod that sets neither limits, requests nor eci-use-specs.
DEFAULT_SPEC = (2 * _MILLI, 4 * _GIB)
# [multi]: "A maximum of five specifications can be specified."
MAX_USE_SPECS = 5

# Patterns, not compiled ones: few pods pin specs, so a cold start need not compile them (re
# caches what it compiles on first use).
_VCPU_MEMORY = r"(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)Gi"
_ECS_TYPE = r"(?i)ecs\.[a-z0-9][a-z0-9.-]*"


class SpecTable:
    """Supported specs as two sorted columns, so rounding is two bisections, not a scan."""

    __slots__ = ("cpus", "memories")

    def __init__(self, *tables: dict[float, tuple[float, ...]]) -> None:
        merged: dict[int, set[int]] = {}
        for table in tables:
            for vcpu, gibs in table.items():
                merged.setdefault(round(vcpu * _MILLI), set()).update(
                    round(g * 2**30) * _MILLI for g in gibs
                )
        # milli-vCPU, ascending; per vCPU count, memory options in milli-bytes, ascending.
        self.cpus = tuple(sorted(merged))
        self.memories = tuple(tuple(sorted(merged[cpu])) for cpu in self.cpus)

    def round_up(self, cpu: int, memory: int) -> tuple[int, int] | None:
        """The nearest spec holding `cpu` milli-vCPU and `memory` milli-bytes; None above all."""
        cpus = self.cpus
        for column in range(bisect_left(cpus, cpu), len(cpus)):
            options = self.memories[column]
            row = bisect_left(options, memory)
            if row < len(options):
                return cpus[column], options[row]
        return None

    @property
    def largest(self) -> tuple[int, int]:
        return self.cpus[-1], self.memories[-1][-1]


ALL_REGIONS = SpecTable(_ALL_REGIONS)
SOME_REGIONS = SpecTable(_ALL_REGIONS, _SOME_REGIONS)


def table_for(region: object) -> SpecTable:
    """The specs ECI offers in `region` (an id like cn-hangzhou); unknown regions get the common set."""
    # `cluster` is free-form JSON: a region that is not a string is simply not known.
    return SOME_REGIONS if type(region) is str and region in _REGIONS_WITH_MORE else ALL_REGIONS


class Billed:
    """The spec ECI runs and bills a pod as: milli-vCPU and milli-bytes of memory.

    `instance_type` is set when the pod pins an ECS type: ECI bills that type, whose price is
    not known here, and cpu/memory are then the pod's own size rounded (an estimate)."""

    # A plain class, not a dataclass: generating one costs a cold start ~0.7 ms.
    __slots__ = ("cpu", "instance_type", "memory")

    def __init__(self, cpu: int, memory: int, instance_type: str = "") -> None:
        self.cpu = cpu
        self.memory = memory
        self.instance_type = instance_type

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Billed):
            return NotImplemented
        return (self.cpu, self.memory, self.instance_type) == (
            other.cpu,
            other.memory,
            other.instance_type,
        )

    def __hash__(self) -> int:
        return hash((self.cpu, self.memory, self.instance_type))

    def __repr__(self) -> str:
        return f"Billed({self.cpu}, {self.memory}, {self.instance_type!r})"


def pick(cpu: int, memory: int, use_specs: str, table: SpecTable) -> Billed | str:
    """What ECI bills a pod of this size as (cpu, memory: what its containers ask for, 0 when
    unset; use_specs: its eci-use-specs annotation, "" when absent), or why ECI cannot run it."""
    entries = [entry.strip() for entry in use_specs.split(",")] if use_specs.strip() else []
    if not entries:
        if not cpu and not memory:
            return Billed(*DEFAULT_SPEC)
        rounded = table.round_up(cpu, memory)
        if rounded is None:
            top_cpu, top_memory = table.largest
            return (
                f"no ECI spec holds cpu {format_milli(cpu)} / memory {gib_text(memory)} "
                f"(the largest is {format_milli(top_cpu)} vCPU / {gib_text(top_memory)})"
            )
        return Billed(*rounded)
    if len(entries) > MAX_USE_SPECS:
        return (
            f"{ECI_USE_SPECS_ANNOTATION} lists {len(entries)} specs, ECI takes at most "
            f"{MAX_USE_SPECS}"
        )
    pins = [(re.fullmatch(_VCPU_MEMORY, entry), entry) for entry in entries]
    for matched, entry in pins:
        if matched is None and re.fullmatch(_ECS_TYPE, entry) is None:
            return (
                f"{ECI_USE_SPECS_ANNOTATION} entry {entry!r} is neither <vCPU>-<memory>Gi "
                "nor an ECS instance type"
            )
    for matched, entry in pins:
        # ECI tries the specs in order; the first that holds the pod is the one billed.
        if matched is not None:
            pinned = table.round_up(
                round(float(matched[1]) * _MILLI), round(float(matched[2]) * 2**30) * _MILLI
            )
            if pinned is not None and pinned[0] >= cpu and pinned[1] >= memory:
                return Billed(*pinned)
            continue
        rounded = table.round_up(cpu, memory) if cpu or memory else DEFAULT_SPEC
        if rounded is not None:
            return Billed(*rounded, instance_type=entry)
    return (
        f"cpu {format_milli(cpu)} / memory {gib_text(memory)} exceed every spec in "
        f"{ECI_USE_SPECS_ANNOTATION}={','.join(entries)}"
    )


def spec_text(billed: Billed) -> str:
    """A spec as eci-use-specs writes one: `1-2Gi`, `0.25-0.5Gi`."""
    return f"{billed.cpu / _MILLI:g}-{billed.memory / _GIB:g}Gi"


def gib_text(milli_bytes: int) -> str:
    return f"{milli_bytes / _GIB:g}Gi"

"""The ECI spec table and rounding: exact specs, just above, memory- vs CPU-bound, beyond the
largest, fractional vCPU, regional specs, and the eci-use-specs annotation's priority order."""

from __future__ import annotations

import pytest

from functions.eci_specs import (
    ALL_REGIONS,
    SOME_REGIONS,
    Billed,
    SpecTable,
    pick,
    spec_text,
    table_for,
)
from functions.quantity import parse_quantity

HANGZHOU = table_for("cn-hangzhou")


def size(cpu: str, memory: str) -> tuple[int, int]:
    """Quantities as the decision holds them: milli-vCPU and milli-bytes."""
    return parse_quantity(cpu), parse_quantity(memory)


def spec(cpu: str, memory: str, table: SpecTable = HANGZHOU, use_specs: str = "") -> str:
    billed = pick(*size(cpu, memory), use_specs, table)
    return billed if isinstance(billed, str) else spec_text(billed)


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        # The example: 1 GiB is not offered with 1 vCPU, 2 GiB is the next one up.
        ("1", "1Gi", "1-2Gi"),
        # Exact specs stay as they are.
        ("2", "4Gi", "2-4Gi"),
        ("0.25", "0.5Gi", "0.25-0.5Gi"),
        ("64", "512Gi", "64-512Gi"),
        # Just above a spec: one millicore more needs the next vCPU column.
        ("2001m", "4Gi", "4-4Gi"),
        # One MiB more memory: the next memory option of the same vCPU count.
        ("2", "4097Mi", "2-6Gi"),
        # Fractional vCPU: 250m is the smallest spec; 251m needs 0.5 vCPU.
        ("250m", "256Mi", "0.25-0.5Gi"),
        ("251m", "256Mi", "0.5-1Gi"),
        # Memory-bound: 5 GiB is beyond 0.25 and 0.5 vCPU (1 and 2 GiB at most), so 1 vCPU / 8 GiB.
        ("250m", "5Gi", "1-8Gi"),
        # CPU-bound: 5 vCPU needs the 6 vCPU column (regional), whose smallest memory is 6 GiB.
        ("5", "1Gi", "6-6Gi"),
        # Only memory requested: the smallest vCPU that offers it.
        ("0", "3Gi", "1-4Gi"),
        # The docs' own example: 7 vCPU / 13 GiB in Hangzhou runs as 8 vCPU / 14 GiB.
        ("7", "13Gi", "8-14Gi"),
        # Nothing requested at all: ECI's default 2 vCPU / 4 GiB.
        ("0", "0", "2-4Gi"),
    ],
)
def test_rounding_up_to_the_nearest_spec(cpu: str, memory: str, expected: str) -> None:
    """Fewest vCPUs first, then least memory, never below what the pod asks for."""
    assert spec(cpu, memory) == expected


def test_regions_without_the_extra_specs_round_to_the_common_table() -> None:
    """Specs offered only in some regions (e.g. 8 vCPU / 14 GiB) are not used elsewhere."""
    assert table_for("cn-hangzhou") is SOME_REGIONS
    assert table_for("ap-southeast-1") is SOME_REGIONS
    for region in ("us-west-1", "", None, ["cn-hangzhou"]):
        assert table_for(region) is ALL_REGIONS
    assert spec("7", "13Gi", ALL_REGIONS) == "8-16Gi"
    assert spec("5", "1Gi", ALL_REGIONS) == "8-4Gi"
    assert spec("2", "4097Mi", ALL_REGIONS) == "2-8Gi"


@pytest.mark.parametrize(
    ("cpu", "memory"), [("65", "1Gi"), ("64", "513Gi"), ("1", "600Gi"), ("100", "1Ti")]
)
def test_beyond_the_largest_spec_is_refused(cpu: str, memory: str) -> None:
    """No spec holds more than 64 vCPU or 512 GiB: the pod cannot run on ECI, and says why."""
    assert HANGZHOU.round_up(*size(cpu, memory)) is None
    assert spec(cpu, memory).startswith("no ECI spec holds cpu ")
    assert spec(cpu, memory).endswith("(the largest is 64 vCPU / 512Gi)")


def test_the_table_is_the_documented_one() -> None:
    """Spot checks against the docs' table: columns ascending, and the specs it lists."""
    for table in (ALL_REGIONS, SOME_REGIONS):
        assert list(table.cpus) == sorted(table.cpus)
        assert all(list(column) == sorted(column) for column in table.memories)
    gib = 2**30 * 1000
    common = dict(zip(ALL_REGIONS.cpus, ALL_REGIONS.memories, strict=True))
    assert [c / 1000 for c in ALL_REGIONS.cpus] == [
        0.25, 0.5, 1, 2, 4, 8, 12, 16, 24, 32, 52, 64
    ]  # fmt: skip
    assert [m / gib for m in common[52_000]] == [96, 192, 384]
    regional = dict(zip(SOME_REGIONS.cpus, SOME_REGIONS.memories, strict=True))
    assert [m / gib for m in regional[6_000]] == list(range(6, 49, 2))
    # 8 vCPU: the common 4/8/16/32/64 plus the regional 10-14, 18-30 and 34-62 (even).
    assert [m / gib for m in regional[8_000]] == [4, *range(8, 65, 2)]


@pytest.mark.parametrize(
    ("cpu", "memory", "use_specs", "expected"),
    [
        # The first pinned spec that holds the pod wins, even when a later one is smaller.
        ("1", "1Gi", "4-8Gi,2-4Gi", "4-8Gi"),
        # A pinned spec smaller than the pod is skipped.
        ("3", "2Gi", "2-4Gi,4-8Gi", "4-8Gi"),
        # A pinned spec that is not itself a spec is rounded up like requests are.
        ("1", "1Gi", "2-3Gi", "2-4Gi"),
        ("0", "0", "0.5-1Gi", "0.5-1Gi"),
        # Blanks around entries are tolerated.
        ("1", "1Gi", " 2-4Gi , 4-8Gi ", "2-4Gi"),
        # Nothing pinned holds the pod: not ECI-eligible.
        (
            "4",
            "8Gi",
            "2-4Gi,1-2Gi",
            "cpu 4 / memory 8Gi exceed every spec in k8s.aliyun.com/eci-use-specs=2-4Gi,1-2Gi",
        ),
        (
            "1",
            "1Gi",
            "2-4Gi,2-4",
            "k8s.aliyun.com/eci-use-specs entry '2-4' is neither <vCPU>-<memory>Gi nor an ECS "
            "instance type",
        ),
        (
            "1",
            "1Gi",
            "1-2Gi,2-4Gi,4-8Gi,8-16Gi,16-32Gi,32-64Gi",
            "k8s.aliyun.com/eci-use-specs lists 6 specs, ECI takes at most 5",
        ),
    ],
)
def test_eci_use_specs_pins_the_spec(cpu: str, memory: str, use_specs: str, expected: str) -> None:
    """eci-use-specs replaces the requests as what ECI sizes the pod by, in priority order."""
    assert spec(cpu, memory, use_specs=use_specs) == expected


def test_an_ecs_instance_type_is_priced_as_the_pods_rounded_size() -> None:
    """An ECS type's size and price are unknown here: the pod's own rounded size, flagged."""
    billed = pick(*size("1", "1Gi"), "ecs.c6.large,2-4Gi", HANGZHOU)
    assert billed == Billed(1000, 2 * 2**30 * 1000, instance_type="ecs.c6.large")
    # A vCPU-memory spec listed first still wins over a later instance type.
    assert pick(*size("1", "1Gi"), "2-4Gi,ecs.c6.large", HANGZHOU) == Billed(2000, 4 * 2**30 * 1000)
    # Types with dashes (GPU families) are instance types too.
    gpu = pick(*size("4", "15Gi"), "ecs.gn6i-c4g1.xlarge", HANGZHOU)
    assert isinstance(gpu, Billed) and gpu.instance_type == "ecs.gn6i-c4g1.xlarge"

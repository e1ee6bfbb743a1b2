"""The simulator's view of the instance-type catalog: re-exported from `agent.catalog`, the single
catalog the agent also needs in production (allocatable and price when a pool has no live node)."""

from __future__ import annotations

from agent.catalog import (
    CATALOG,
    EVICTION_THRESHOLD_MIB,
    GPU_RESOURCE,
    InstanceType,
    allocatable_of,
    instance_type,
    price_of,
    reserved_cpu_millis,
    reserved_memory_mib,
)

__all__ = [
    "CATALOG",
    "EVICTION_THRESHOLD_MIB",
    "GPU_RESOURCE",
    "InstanceType",
    "allocatable_of",
    "instance_type",
    "price_of",
    "reserved_cpu_millis",
    "reserved_memory_mib",
]

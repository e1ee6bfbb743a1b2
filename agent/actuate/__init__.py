"""From a reply to writes: absolute node pool sizes and ECI patches (actuation), under a per-pool
Lease (pool_lock)."""

"""Node usage and the cost report: node-seconds × price, split into busy and idle time."""

from __future__ import annotations

import pytest

from agent.sim.report import cost_report
from agent.sim.world.eci import EciBilling
from agent.sim.world.nodepools import NodePools, NodeUsage, PoolSpec


def usage(name: str, pool: str, billed: float, busy: float, price: float = 3.6) -> NodeUsage:
    return NodeUsage(
        node_name=name,
        pool_id=pool,
        instance_type="ecs.g7.xlarge",
        price_per_hour=price,
        billed_seconds=billed,
        busy_seconds=busy,
    )


def test_report_bills_node_seconds_at_the_hourly_price():
    """Two nodes of one pool: cost = node-hours × price; idle = billed − busy."""
    report = cost_report([usage("a", "np-1", 3600, 1800), usage("b", "np-1", 1800, 1800)])
    (pool,) = report.pools
    assert pool.nodes == 2
    assert pool.node_seconds == 5400
    assert pool.busy_seconds == 3600
    assert pool.idle_seconds == 1800
    assert pool.cost == pytest.approx(5.4)
    assert pool.idle_cost == pytest.approx(1.8)
    assert report.total_cost == pytest.approx(5.4)
    assert report.eci is None


def test_report_adds_eci_per_second_billing():
    """ECI cost = vCPU·s × vCPU price + GiB·s × GiB price, added to the total."""
    eci = EciBilling(
        vcpu_seconds=1000,
        gib_seconds=2000,
        price_per_vcpu_second=0.000049,
        price_per_gib_second=0.00000613,
        pods=(),
    )
    report = cost_report([usage("a", "np-1", 3600, 3600)], eci)
    assert report.eci is not None
    assert report.eci.cost == eci.cost == pytest.approx(1000 * 0.000049 + 2000 * 0.00000613)
    assert report.total_cost == pytest.approx(3.6 + eci.cost)
    assert "eci" in report.to_text()
    assert report.to_json()["pools"][0]["pool_id"] == "np-1"


async def test_pool_usage_counts_busy_time_only_while_a_workload_pod_is_bound(sim):
    """A node with a running pod accrues busy seconds; once the pod is gone it accrues idle."""
    pools = NodePools(
        sim.store,
        sim.clock,
        cluster_id="c",
        region_id="cn-hangzhou",
        zone="cn-hangzhou-k",
        pools=[PoolSpec(pool_id="np-1", name="one", instance_type="ecs.g7.xlarge", desired=1)],
    )
    await pools.start()
    try:
        (node,) = pools.describe_nodes("np-1")
        sim.store.create(
            "pods",
            {
                "metadata": {
                    "name": "job",
                    "namespace": "default",
                    "annotations": {"sim.ray-ack-scaler.io/run-seconds": "60"},
                },
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node.node_name},
                    "containers": [
                        {"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}
                    ],
                },
            },
        )
        await sim.until(
            lambda: (
                sim.store.get("pods", "job", namespace="default")["status"].get("phase")
                == "Succeeded"
            )
        )
        await sim.clock.sleep(60)
        (used,) = pools.usage()
        assert used.pool_id == "np-1"
        assert used.busy_seconds > 55  # bound at once, ran 60 s after a 2 s start
        assert used.idle_seconds > 55  # then a minute with nothing on it
        assert used.billed_seconds == used.busy_seconds + used.idle_seconds
        assert used.price_per_hour == 1.12
    finally:
        await pools.stop()

"""build_request turns the view, the CS pools and actuation's memory into requests functions.decide accepts."""

from __future__ import annotations

from typing import Any

import functions
from agent.catalog import CATALOG
from agent.decide.request_builder import EciSettings, PolicySettings, RequestSettings, build_request
from agent.model import PoolActivity, PoolInfo, Snapshot
from tests.support.builders import pending_pod, pool_node, virtual_node

NOW = "2026-11-29T05:00:00Z"
SETTINGS = RequestSettings(cluster_id="c-1", region="cn-hangzhou")


def cpu_pool(
    *, desired: int = 0, pool_id: str = "np-cpu", instance_type: str = "ecs.g7.xlarge"
) -> PoolInfo:
    return PoolInfo(
        pool_id=pool_id,
        name=pool_id[3:],
        instance_types=(instance_type,),
        desired=desired,
        min_size=0,
        max_size=20,
        labels={"workload": "ray"},
    )


def pool_of(request: dict[str, Any], pool_id: str) -> dict[str, Any]:
    return next(p for p in request["pools"] if p["id"] == pool_id)


class TestAllocatable:
    """A pool's allocatable: from a live node, else the catalog, else the pool is left out."""

    def test_from_a_live_node_of_the_pool(self) -> None:
        """A Ready node's allocatable is what a new node of the pool offers; decide accepts it."""
        live = {"cpu": "3800m", "memory": "13Gi", "pods": "64"}
        snapshot = Snapshot(
            pending=tuple(pending_pod(f"u-{i}") for i in range(5)),
            nodes=(pool_node("n-1", "np-cpu", allocatable=live), pool_node("n-2", "np-other")),
            eci_running_pods=0,
        )
        request = build_request(snapshot, [cpu_pool(desired=1)], {}, settings=SETTINGS, now=NOW)
        pool = pool_of(request, "np-cpu")
        assert pool["allocatable"] == live
        assert pool["size"] == {"min": 0, "max": 20, "desired": 1, "ready": 1}
        reply = functions.decide(request)
        assert {a["kind"] for a in reply["actions"]} == {"scale-pool"}

    def test_from_the_catalog_when_no_node_lives(self) -> None:
        """An empty pool falls back to the catalog's allocatable for its instance type."""
        snapshot = Snapshot(pending=(pending_pod("u-1", cpu="2"),), nodes=(), eci_running_pods=0)
        request = build_request(snapshot, [cpu_pool()], {}, settings=SETTINGS, now=NOW)
        pool = pool_of(request, "np-cpu")
        assert pool["allocatable"] == CATALOG["ecs.g7.xlarge"].allocatable()
        assert pool["size"]["ready"] == 0
        assert pool["pricePerHour"] == CATALOG["ecs.g7.xlarge"].price_per_hour
        reply = functions.decide(request)
        assert without_reasons(reply["actions"]) == [
            {
                "kind": "scale-pool",
                "poolId": "np-cpu",
                "fromDesired": 0,
                "toDesired": 1,
                "pods": ["u-1"],
            }
        ]

    def test_a_pool_without_node_or_catalog_entry_is_left_out(self) -> None:
        """No honest allocatable means no pool in the request, not a guess."""
        snapshot = Snapshot(pending=(pending_pod("u-1"),), nodes=(), eci_running_pods=0)
        pools = [cpu_pool(), cpu_pool(pool_id="np-odd", instance_type="ecs.unknown.large")]
        request = build_request(snapshot, pools, {}, settings=SETTINGS, now=NOW)
        assert [p["id"] for p in request["pools"]] == ["np-cpu"]
        functions.decide(request)


class TestPools:
    """Which pools the request offers, with their activity, prices and ACK node labels."""

    def test_only_managed_pools_are_offered(self) -> None:
        """With a managed list, other pools of the cluster never appear."""
        settings = RequestSettings(cluster_id="c-1", region="cn-hangzhou", managed_pools=("np-b",))
        snapshot = Snapshot(pending=(), nodes=(), eci_running_pods=0)
        request = build_request(
            snapshot,
            [cpu_pool(pool_id="np-a"), cpu_pool(pool_id="np-b")],
            {},
            settings=settings,
            now=NOW,
        )
        assert [p["id"] for p in request["pools"]] == ["np-b"]

    def test_activity_feeds_scaling_since_and_last_error(self) -> None:
        """Actuation's memory reaches the decision, which then skips a failed pool."""
        activity = {
            "np-a": PoolActivity(scaling_since="2026-11-29T04:58:00Z", task_id="T-1"),
            "np-b": PoolActivity(last_error="OperationDenied.NoStock"),
        }
        snapshot = Snapshot(pending=(pending_pod("u-1"),), nodes=(), eci_running_pods=0)
        pools = [cpu_pool(pool_id="np-a", desired=1), cpu_pool(pool_id="np-b")]
        request = build_request(snapshot, pools, activity, settings=SETTINGS, now=NOW)
        assert pool_of(request, "np-a")["scalingSince"] == "2026-11-29T04:58:00Z"
        assert pool_of(request, "np-b")["lastError"] == "OperationDenied.NoStock"
        reply = functions.decide(request)
        assert all(a.get("poolId") != "np-b" for a in reply["actions"])

    def test_price_precedence_pool_then_type_then_catalog(self) -> None:
        """A per-pool price beats a per-type price, which beats the catalog."""
        settings = RequestSettings(
            cluster_id="c-1",
            region="cn-hangzhou",
            pool_prices={"np-a": 0.5},
            instance_type_prices={"ecs.c7.xlarge": 0.7},
        )
        pools = [
            cpu_pool(pool_id="np-a"),
            cpu_pool(pool_id="np-b", instance_type="ecs.c7.xlarge"),
            cpu_pool(pool_id="np-c", instance_type="ecs.r7.xlarge"),
        ]
        request = build_request(Snapshot((), (), 0), pools, {}, settings=settings, now=NOW)
        assert [p["pricePerHour"] for p in request["pools"]] == [
            0.5,
            0.7,
            CATALOG["ecs.r7.xlarge"].price_per_hour,
        ]

    def test_pool_labels_carry_the_ack_node_labels(self) -> None:
        """A pod selecting the nodepool-id or instance-type label matches its pool."""
        snapshot = Snapshot(
            pending=(
                pending_pod(
                    "u-1", node_selector={"node.kubernetes.io/instance-type": "ecs.c7.xlarge"}
                ),
            ),
            nodes=(),
            eci_running_pods=0,
        )
        pools = [cpu_pool(pool_id="np-a"), cpu_pool(pool_id="np-b", instance_type="ecs.c7.xlarge")]
        reply = functions.decide(build_request(snapshot, pools, {}, settings=SETTINGS, now=NOW))
        assert [a["poolId"] for a in reply["actions"]] == ["np-b"]


class TestEci:
    """The request's ECI section follows the virtual node and the configuration."""

    def test_disabled_without_a_virtual_node(self) -> None:
        """ECI is offered only when the view holds the virtual node."""
        request = build_request(
            Snapshot((pending_pod("u-1"),), (), 0), [], {}, settings=SETTINGS, now=NOW
        )
        assert request["eci"]["enabled"] is False
        assert functions.decide(request)["unplaceable"][0]["pod"] == "u-1"

    def test_virtual_node_enables_eci_with_its_labels_taints_and_capacity(self) -> None:
        """The virtual node's labels, taint and pod capacity become the ECI block."""
        snapshot = Snapshot(
            pending=(pending_pod("u-1"),), nodes=(virtual_node(pods="40"),), eci_running_pods=3
        )
        settings = RequestSettings(
            cluster_id="c-1", region="cn-hangzhou", policy=PolicySettings(strategy="eci-first")
        )
        request = build_request(snapshot, [cpu_pool()], {}, settings=settings, now=NOW)
        eci = request["eci"]
        assert (eci["enabled"], eci["maxPods"], eci["runningPods"]) == (True, 40, 3)
        assert eci["labels"]["type"] == "virtual-kubelet"
        assert eci["taints"] == [
            {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}
        ]
        assert without_reasons(functions.decide(request)["actions"]) == [
            {"kind": "place-on-eci", "pods": ["u-1"]}
        ]

    def test_configuration_can_switch_eci_off(self) -> None:
        """eci.enabled=false in configuration wins over a present virtual node."""
        settings = RequestSettings(
            cluster_id="c-1", region="cn-hangzhou", eci=EciSettings(enabled=False)
        )
        request = build_request(
            Snapshot((), (virtual_node(),), 0), [], {}, settings=settings, now=NOW
        )
        assert request["eci"]["enabled"] is False


def without_reasons(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions without their human `reason` (worded by the core, pinned in its own tests)."""
    return [{k: v for k, v in action.items() if k != "reason"} for action in actions]

"""Scale-pool actuation through the real CS SDK against the CS emulator: absolute, idempotent,
never lowering, capped at max; pool activity fed back; TriggeredScaleUp / NotTriggerScaleUp events."""

from __future__ import annotations

from agent.actuate.actuation import FAILED_POOL_BACKOFF_SECONDS, follow_up_reason, scale_up_message
from agent.decide.deciders import LocalDecider
from agent.decide.request_builder import PolicySettings, RequestSettings, build_request
from agent.model import Snapshot
from agent.sim.faults import FaultPlan
from tests.support.builders import pending_pod, pool_view
from tests.support.cloud.cloud_doubles import cloud_world, decide_for

SIX_PODS = [pending_pod(f"u-{i}") for i in range(6)]  # 1 vCPU each; 3 per ecs.g7.xlarge


class TestIdempotency:
    """Pool writes are idempotent: twice, after a restart or a concurrent raise, desired only rises."""

    async def test_apply_twice_writes_once(self) -> None:
        """The second apply of the same reply re-reads the pool, finds it there, writes nothing."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            [action] = reply["actions"]
            actuator = world.actuator()
            first = await actuator.apply(reply, request, dry_run=False)
            second = await actuator.apply(reply, request, dry_run=False)
            assert [(w.from_desired, w.to_desired) for w in first.pools_written] == [
                (1, action["toDesired"])
            ]
            assert not second.pools_written and second.pools_skipped[0].pool_id == "np-cpu"
            assert world.desired_writes() == [action["toDesired"]]

    async def test_restarted_agent_does_not_raise_again(self) -> None:
        """A new actuator (no memory) applying the pre-restart decision writes nothing."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            await world.actuator().apply(reply, request, dry_run=False)
            after_restart = await world.actuator().apply(reply, request, dry_run=False)
            assert not after_restart.pools_written
            assert len(world.desired_writes()) == 1

    async def test_never_lowers_a_pool_raised_meanwhile(self) -> None:
        """Someone raised the pool past toDesired since the snapshot: skipped, desired untouched."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            world.pools.set_desired("np-cpu", 9)
            result = await world.actuator().apply(reply, request, dry_run=False)
            assert not result.pools_written and "already" in result.pools_skipped[0].reason
            assert world.desired_writes() == []
            assert world.pools.describe_pool("np-cpu").desired == 9

    async def test_capped_at_the_pools_current_max(self) -> None:
        """toDesired above the max CS reports now is written as the max, not refused."""
        async with cloud_world([pool_view("np-cpu", desired=0, max_size=20)]) as world:
            reply, request = await decide_for(world, [pending_pod(f"u-{i}") for i in range(30)])
            assert reply["actions"][0]["toDesired"] == 10
            world.pools.set_max("np-cpu", 4)
            result = await world.actuator().apply(reply, request, dry_run=False)
            assert [w.to_desired for w in result.pools_written] == [4]

    async def test_dry_run_reads_but_never_writes(self) -> None:
        """Dry-run reports the write it would make and makes none, with no events."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            actuator = world.actuator()
            result = await actuator.apply(reply, request, dry_run=True)
            await actuator.events.flush()
            assert [(w.from_desired, w.to_desired) for w in result.pools_written] == [(1, 2)]
            assert world.desired_writes() == [] and world.events("TriggeredScaleUp") == []
            assert actuator.activity == {} and actuator.counters["pool_writes"] == 0
            report = result.to_json()
            assert report["dryRun"] and report["poolsWritten"][0]["to"] == 2


class TestEvents:
    """Scale-up decisions leave TriggeredScaleUp / NotTriggerScaleUp events on the pods."""

    async def test_triggered_scale_up_on_every_pod_of_the_action(self) -> None:
        """cluster-autoscaler's wording, then the decision's reason: pod triggered scale-up:
        [{np-cpu 1->2 (max: 20)}]; why: cost: ..."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            actuator = world.actuator()
            await actuator.apply(reply, request, dry_run=False)
            await actuator.events.flush()
            events = world.events("TriggeredScaleUp")
            action = reply["actions"][0]
            assert sorted(e["involvedObject"]["uid"] for e in events) == sorted(action["pods"])
            assert action["reason"].startswith("cost: np-cpu")
            assert {e["message"] for e in events} == {
                f"{scale_up_message('np-cpu', 1, 2, 20)}; why: {action['reason']}"
            }
            assert (
                scale_up_message("np-cpu", 1, 6, 20)
                == "pod triggered scale-up: [{np-cpu 1->6 (max: 20)}]"
            )

    async def test_not_trigger_scale_up_carries_the_reason(self) -> None:
        """An unplaceable pod gets NotTriggerScaleUp with the decision's reason."""
        async with cloud_world([pool_view("np-cpu", desired=0)]) as world:
            reply, request = await decide_for(
                world, [pending_pod("u-gpu", node_selector={"gpu": "a100"})]
            )
            actuator = world.actuator()
            result = await actuator.apply(reply, request, dry_run=False)
            await actuator.events.flush()
            [event] = world.events("NotTriggerScaleUp")
            assert event["involvedObject"]["uid"] == "u-gpu"
            assert event["message"].startswith("pod didn't trigger scale-up: ")
            assert result.unplaceable[0].reason in event["message"]


class TestActivity:
    """What actuation remembers per pool (raise, task, failure) feeds the next request."""

    async def test_raise_is_remembered_then_cleared_when_ready(self) -> None:
        """scalingSince = decision time and the task id; cleared once the pool is Ready at desired."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            actuator = world.actuator()
            await actuator.apply(reply, request, dry_run=False)
            activity = actuator.activity["np-cpu"]
            assert activity.scaling_since == request["now"] and activity.task_id
            client = world.cs_client()
            await actuator.refresh(await client.describe_pools())
            assert actuator.activity["np-cpu"].last_error is None
            world.pools.boot("np-cpu")
            assert await actuator.refresh(await client.describe_pools()) == {}

    async def test_failed_task_becomes_last_error_in_the_next_request(self) -> None:
        """A failed CS task is read, recorded, and the next decision skips the pool."""
        async with cloud_world(
            [pool_view("np-cpu", desired=0), pool_view("np-c7", instance_type="ecs.c7.xlarge")]
        ) as world:
            pods = [pending_pod(f"u-{i}") for i in range(3)]
            reply, request = await decide_for(world, pods)
            actuator = world.actuator()
            [first_pool] = [
                w.pool_id
                for w in (await actuator.apply(reply, request, dry_run=False)).pools_written
            ]
            world.pools.fail_tasks(first_pool, "OperationDenied.NoStock: sold out")
            activity = await actuator.refresh(await world.cs_client().describe_pools())
            assert "NoStock" in (activity[first_pool].last_error or "")
            again, next_request = await decide_for(world, pods, activity=activity)
            assert next(p for p in next_request["pools"] if p["id"] == first_pool)["lastError"]
            assert all(a.get("poolId") != first_pool for a in again["actions"])
            assert again["actions"], "the other pool takes over"

    async def test_a_failed_scale_out_is_given_back_and_the_pool_skipped_for_a_while(self) -> None:
        """NoStock: desired goes back down to the nodes the pool has (ACK leaves it raised), the
        pool keeps its error — decisions skip it — for the backoff, and is forgotten after it."""
        clock = [1_000.0]
        async with cloud_world(
            [pool_view("np-cpu", desired=0), pool_view("np-c7", instance_type="ecs.c7.xlarge")]
        ) as world:
            pods = [pending_pod(f"u-{i}") for i in range(3)]
            reply, request = await decide_for(world, pods)
            actuator = world.actuator(now=lambda: clock[0])
            [write] = (await actuator.apply(reply, request, dry_run=False)).pools_written
            assert write.to_desired > 0
            world.pools.stock_out(write.pool_id, "OperationDenied.NoStock: sold out")
            client = world.cs_client()
            activity = await actuator.refresh(await client.describe_pools())
            assert world.pools.describe_pool(write.pool_id).desired == 0
            assert world.desired_writes() == [write.to_desired, 0]
            assert activity[write.pool_id].given_back
            assert "NoStock" in (activity[write.pool_id].last_error or "")
            assert actuator.counters["pool_given_back"] == 1
            clock[0] += FAILED_POOL_BACKOFF_SECONDS - 1
            assert write.pool_id in await actuator.refresh(await client.describe_pools())
            assert world.desired_writes() == [write.to_desired, 0], "given back once"
            clock[0] += 2
            assert write.pool_id not in await actuator.refresh(await client.describe_pools())

    async def test_refused_write_is_a_failure_and_marks_the_pool(self) -> None:
        """A 4xx refusal (pool gone) is reported, not retried, and remembered as last_error."""
        async with cloud_world([pool_view("np-cpu", desired=1)]) as world:
            reply, request = await decide_for(world, SIX_PODS)
            world.pools.delete("np-cpu")
            actuator = world.actuator()
            result = await actuator.apply(reply, request, dry_run=False)
            assert [f.code for f in result.pools_failed] == ["ErrorNodePoolNotFound"]
            assert "ErrorNodePoolNotFound" in (actuator.activity["np-cpu"].last_error or "")

    async def test_throttled_write_fails_without_marking_the_pool(self) -> None:
        """Throttling that outlasts the retries fails this write only; the pool stays usable."""
        faults = FaultPlan()
        async with cloud_world([pool_view("np-cpu", desired=1)], faults=faults) as world:
            reply, request = await decide_for(world, SIX_PODS)
            faults.cs_throttle_ratio = 1.0
            actuator = world.actuator()
            result = await actuator.apply(reply, request, dry_run=False)
            assert [f.code for f in result.pools_failed] == ["Throttling.User"]
            assert "np-cpu" not in actuator.activity


async def test_a_raise_above_500_nodes_is_split_across_rounds() -> None:
    """ModifyClusterNodePool adds at most 500 nodes per call: 0 → 600 is written as 0 → 500, the
    rest deferred to a follow-up round, which writes 600."""
    async with cloud_world([pool_view("np-cpu", desired=0, max_size=1000)]) as world:
        world.pools.node_quota = 5000
        pools = await world.cs_client().describe_pools()
        pods = [pending_pod(f"u-{i}") for i in range(1800)]  # 3 per node: 600 nodes
        settings = RequestSettings(
            cluster_id="c-test",
            region="cn-hangzhou",
            policy=PolicySettings(max_new_nodes_per_decision=1000),
        )
        snapshot = Snapshot(pending=tuple(pods), nodes=(), eci_running_pods=0)
        request = build_request(snapshot, pools, {}, settings=settings, now="2026-11-29T05:00:00Z")
        reply = await LocalDecider().decide(request)
        assert reply["actions"][0]["toDesired"] == 600
        first = await world.actuator().apply(reply, request, dry_run=False)
        assert [w.to_desired for w in first.pools_written] == [500]
        assert follow_up_reason(first).startswith("pool write deferred: at most 500 nodes")
        second = await world.actuator().apply(reply, request, dry_run=False)
        assert [w.to_desired for w in second.pools_written] == [600]
        assert world.desired_writes() == [500, 600]

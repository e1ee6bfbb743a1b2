"""Pods a decision deferred at its time limit stay pending for the next round: actuation writes
what was decided, records no NotTriggerScaleUp for them, and asks for a quick follow-up round."""

from __future__ import annotations

import itertools

from agent.actuate.actuation import ApplyResult, PodOutcome, PoolWrite, follow_up_reason
from functions import decide
from functions.deadline import Deadline
from tests.support.builders import pending_pod, pool_view
from tests.support.cloud.cloud_doubles import cloud_world, decide_for

DEFERRED = PodOutcome("u1", "ray", "w1", "deferred: the decision's time limit (8 s) ran out")
WROTE = (PoolWrite("np-cpu", 0, 1, 10),)


async def test_deferred_pods_get_no_event_and_the_planned_ones_are_written() -> None:
    """Large workers planned, small ones deferred: the pool is raised for the large ones only, and
    the small ones are reported as deferred, with no NotTriggerScaleUp Event."""
    pods = [pending_pod(f"big-{i}", cpu="3") for i in range(2)]
    pods += [pending_pod(f"small-{i}", cpu="500m") for i in range(4)]
    async with cloud_world([pool_view("np-cpu", desired=0)]) as world:
        _full, request = await decide_for(world, pods)
        # Checks: feasibility of both groups, then the first group of the first pass.
        cut = Deadline(4, clock=itertools.count(1).__next__, started=0)
        reply = decide(request, deadline=cut)
        [action] = reply["actions"]
        assert sorted(action["pods"]) == ["big-0", "big-1"]
        actuator = world.actuator()
        result = await actuator.apply(reply, request, dry_run=False)
        await actuator.events.flush()
        assert [w.to_desired for w in result.pools_written] == [action["toDesired"]]
        assert sorted(p.uid for p in result.deferred) == [f"small-{i}" for i in range(4)]
        assert result.unplaceable == ()
        assert world.events("NotTriggerScaleUp") == []
        assert result.to_json()["deferred"] == [
            f"ray/raycluster-worker-small-{i}" for i in range(4)
        ]
        assert follow_up_reason(result) == "decision deferred 4 pod(s) at its time limit"


def test_follow_up_after_a_deferral_only_when_the_round_wrote() -> None:
    """Like a capped round: deferred pods bring the next round forward only after progress."""
    assert follow_up_reason(ApplyResult("d", False, pools_written=WROTE, deferred=(DEFERRED,)))
    assert not follow_up_reason(ApplyResult("d", False, deferred=(DEFERRED,)))
    assert not follow_up_reason(ApplyResult("d", True, pools_written=WROTE, deferred=(DEFERRED,)))

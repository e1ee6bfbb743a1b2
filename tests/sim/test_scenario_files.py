"""Scenario files: the built-in ones load and say what they promise; malformed ones name the bad path."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sim.faults import FaultPlan
from agent.sim.scenario import ScenarioError, available_scenarios, load_scenario, parse_scenario

MINIMAL = """
name: bad
pools:
  - id: np-1
    instanceType: ecs.g7.xlarge
    minSize: 0
    maxSize: 3
ray:
  name: r
  workerGroups:
    - name: wg
      requests: {cpu: "1", memory: 1Gi}
job:
  tasks:
    - {count: 3, numCpus: 1, durationSeconds: 60}
"""


def test_the_five_built_in_scenarios_are_available():
    """seed, burst, stockout, eci-mixed and chaos ship with the simulator."""
    assert {"seed", "burst", "stockout", "eci-mixed", "chaos"} <= set(available_scenarios())


@pytest.mark.parametrize("name", available_scenarios())
def test_every_built_in_scenario_loads(name):
    """Each file validates, and its name is its file name."""
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.task_count > 0
    assert scenario.system_nodes


def test_seed_is_the_ack_walkthrough():
    """15 × 1 CPU × 120 s tasks, 1 vCPU / 1 GiB workers, one empty 4 vCPU / 16 GiB pool."""
    seed = load_scenario("seed")
    (group,) = seed.job.task_groups
    assert (group.count, group.num_cpus, group.duration_seconds) == (15, 1, 120)
    (workers,) = seed.ray.worker_groups
    assert dict(workers.requests) == {"cpu": "1", "memory": "1Gi"}
    (pool,) = seed.pools
    assert (pool.instance_type, pool.min_size, pool.max_size, pool.desired) == (
        "ecs.g7.xlarge",
        0,
        10,
        0,
    )
    assert (pool.machine.vcpu, pool.machine.memory_gib) == (4, 16)
    assert (pool.boot.low, pool.boot.high) == (60, 90)
    assert seed.ray.head.node_selector  # the head goes to the system node
    assert not seed.eci.enabled


def test_burst_asks_for_over_a_thousand_pods_across_cpu_and_gpu():
    """Over 1,000 one-task workers, a GPU worker group, several pools and ECI."""
    burst = load_scenario("burst")
    assert burst.task_count >= 1000
    assert sum(g.max_replicas for g in burst.ray.worker_groups) >= 1000
    assert any("nvidia.com/gpu" in g.requests for g in burst.ray.worker_groups)
    assert len(burst.pools) >= 3
    assert any(p.machine.gpu for p in burst.pools)
    assert burst.eci.enabled


def test_burst_10k_asks_for_10080_workers_over_four_pools_and_eci():
    """Issue 13's 10k-pod run: 10,080 workers, four pools, ECI; the pools' nodes fit the quota."""
    burst = load_scenario("burst-10k")
    assert sum(g.max_replicas for g in burst.ray.worker_groups) == 10_080
    assert burst.task_count == 10_080
    assert len(burst.pools) == 4
    assert burst.eci.enabled
    system = sum(n.count for n in burst.system_nodes)
    assert sum(p.max_size for p in burst.pools) + system <= burst.cluster.node_quota


def test_stockout_has_a_pool_that_never_delivers_and_fallbacks():
    """One pool is out of stock; another pool and ECI can take the load."""
    stockout = load_scenario("stockout")
    failures = [p.failure for p in stockout.pools]
    assert "stockout" in failures
    assert any(f == "none" for f in failures)
    assert stockout.eci.enabled


def test_eci_mixed_has_groups_eci_cannot_run():
    """hostPath, privileged and >64 vCPU worker groups sit beside plain ones."""
    mixed = load_scenario("eci-mixed")
    groups = {g.name: g for g in mixed.ray.worker_groups}
    assert groups["hostpath"].host_path
    assert groups["privileged"].privileged
    assert int(groups["huge"].requests["cpu"]) > 64
    assert not any(g.host_path or g.privileged for g in [groups["plain"]])
    assert mixed.eci.enabled


def test_chaos_turns_on_every_fault_family():
    """Watch cuts, 410s (cuts that compact the history), CS throttling and 5xx, FC 5xx, as a
    FaultPlan. No FC timeouts: one holds a decision for the SDK's 10 s read timeout, 1,000
    simulated seconds at speed 100."""
    chaos = load_scenario("chaos")
    plan = chaos.fault_plan()
    assert isinstance(plan, FaultPlan)
    assert plan.watch_cut_every_events and plan.watch_expire_every_seconds
    assert plan.watch_cut_expire_ratio > 0
    assert plan.cs_throttle_ratio > 0 and plan.cs_error_ratio > 0
    assert plan.fc_error_ratio > 0 and plan.fc_timeout_ratio == 0
    assert plan.seed == chaos.seed


def test_a_scenario_loads_from_a_path(tmp_path: Path):
    """A file outside the package loads by path; its name comes from the file."""
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL.replace("name: bad\n", ""), encoding="utf-8")
    scenario = load_scenario(str(path))
    assert scenario.name == "mine"
    assert scenario.pools[0].pool_id == "np-1"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "maxSize: 3",
            "maxSize: -1",
            "scenario bad: pools[0].maxSize must be a non-negative integer",
        ),
        (
            "minSize: 0\n    maxSize: 3",
            "minSize: 4\n    maxSize: 3",
            "scenario bad: pools[0].maxSize must be ≥ minSize",
        ),
        (
            "ecs.g7.xlarge",
            "ecs.nope.large",
            "scenario bad: pools[0].instanceType names unknown instance type 'ecs.nope.large'",
        ),
        (
            "    maxSize: 3",
            "    maxSize: 3\n    bootSecs: 60",
            "scenario bad: pools[0].bootSecs is not a known field",
        ),
        (
            "    maxSize: 3",
            "    maxSize: 3\n    failure: flaky",
            "scenario bad: pools[0].failure must be one of none, stockout, slow",
        ),
        (
            '{cpu: "1", memory: 1Gi}',
            '{cpu: "one", memory: 1Gi}',
            "scenario bad: ray.workerGroups[0].requests.cpu is not a quantity",
        ),
        (
            "  name: r\n",
            "  name: r\n  head: {numCpus: 2}\n",
            "scenario bad: ray.head.numCpus must be 0",
        ),
        ("numCpus: 1,", "numCpus: 8,", "scenario bad: job.tasks[0] fits no worker group"),
        (
            "durationSeconds: 60",
            "durationSeconds: 0",
            "scenario bad: job.tasks[0].durationSeconds must be > 0",
        ),
        (
            "name: bad\n",
            "name: bad\nfaults: {csThrottleRatio: 2}\n",
            "scenario bad: faults.csThrottleRatio must be between 0 and 1",
        ),
        (
            "name: bad\n",
            "name: bad\nfaults: {fcBrownout: 1}\n",
            "scenario bad: faults.fcBrownout is not a known field",
        ),
        (
            "  - id: np-1",
            "  - id: np-1\n    instanceType: ecs.g7.xlarge\n  - id: np-1",
            "scenario bad: pools[1].id duplicates pools[0].id",
        ),
    ],
)
def test_malformed_scenarios_name_the_bad_path(old, new, message):
    """Each refusal says which scenario and which field, and why."""
    assert old in MINIMAL
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(MINIMAL.replace(old, new, 1), name="bad")
    assert str(refused.value).startswith(message), str(refused.value)


def test_a_missing_section_is_named():
    """Without a ray section the scenario cannot run a workload."""
    text = MINIMAL[: MINIMAL.index("ray:")]
    with pytest.raises(ScenarioError, match=r"^scenario bad: ray is required$"):
        parse_scenario(text, name="bad")


def test_invalid_yaml_is_reported_as_such():
    """A YAML syntax error is reported with the scenario's name."""
    with pytest.raises(ScenarioError, match=r"^scenario oops: not valid YAML"):
        parse_scenario("pools: [", name="oops")


def test_an_unknown_scenario_name_lists_the_built_in_ones():
    """Asking for a scenario that does not exist says which ones do."""
    with pytest.raises(ScenarioError, match=r"no such scenario \(built in: .*seed"):
        load_scenario("no-such-scenario")


def test_scenarios_carry_a_decide_policy_for_the_agent():
    """The policy section is the decide/v1 policy object, validated."""
    assert load_scenario("stockout").policy["strategy"] == "pool-first"
    with pytest.raises(
        ScenarioError, match=r"^scenario bad: policy.strategy must be one of cost, latency"
    ):
        parse_scenario(
            MINIMAL.replace("name: bad\n", "name: bad\npolicy: {strategy: cheapest}\n"), name="bad"
        )

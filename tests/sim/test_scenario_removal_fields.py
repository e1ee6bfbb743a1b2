"""Scenario fields for node removal: a pool's drain timeout (ACK's 30 minutes unless set) and
instance charge type, PodDisruptionBudgets that exist from the start (checked by the API
server's own validation), and the scale-in policy the dev run hands the agent."""

from __future__ import annotations

import pytest

from agent.sim.scenario import ScenarioError, load_scenario, parse_scenario

MINIMAL = """
name: bad
pools:
  - id: np-1
    instanceType: ecs.g7.xlarge
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
BUDGET = """podDisruptionBudgets:
  - name: workers
    selector: {matchLabels: {ray.io/node-type: worker}}
    maxUnavailable: 0
"""


def test_a_pool_drains_for_thirty_minutes_and_is_pay_as_you_go_by_default():
    """ACK's user guide: the drain waits up to 30 min; PostPaid unless the scenario says."""
    (pool,) = parse_scenario(MINIMAL, name="bad").pools
    assert (pool.drain_timeout_seconds, pool.instance_charge_type) == (1800.0, "PostPaid")


def test_drain_fail_sets_a_short_drain_timeout_a_budget_and_draining():
    """The built-in drain-fail scenario: 60 s drain, a budget over the workers, drainNonEmpty."""
    scenario = load_scenario("drain-fail")
    (pool,) = scenario.pools
    assert pool.drain_timeout_seconds == 60
    (budget,) = scenario.budgets
    assert budget["spec"]["minAvailable"] == scenario.task_count  # every worker of the job
    assert budget["metadata"]["namespace"] == scenario.ray.namespace
    assert scenario.policy["drainNonEmpty"] is True


def test_a_budget_defaults_to_the_ray_namespace():
    (budget,) = parse_scenario(MINIMAL + BUDGET, name="bad").budgets
    assert budget["kind"] == "PodDisruptionBudget"
    assert budget["metadata"] == {"name": "workers", "namespace": "default"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    maxSize: 3", "    maxSize: 3\n    drainTimeoutSeconds: 0",
         "scenario bad: pools[0].drainTimeoutSeconds must be > 0"),
        ("    maxSize: 3", "    maxSize: 3\n    instanceChargeType: Spot",
         "scenario bad: pools[0].instanceChargeType must be one of PostPaid, PrePaid"),
        ("name: bad\n", "name: bad\n" + BUDGET.replace("maxUnavailable: 0", "minAvailable: -1"),
         "scenario bad: podDisruptionBudgets[0] is not a valid PodDisruptionBudget: "
         'PodDisruptionBudget.policy "workers" is invalid: spec.minAvailable'),
        ("name: bad\n", "name: bad\n" + BUDGET.replace("    selector", "    selectr"),
         "scenario bad: podDisruptionBudgets[0].selectr is not a known field"),
        ("name: bad\n", "name: bad\npolicy: {drainNonEmpty: yes please}\n",
         "scenario bad: policy.drainNonEmpty must be true or false"),
    ],
)  # fmt: skip
def test_malformed_removal_fields_name_the_bad_path(old, new, message):
    assert old in MINIMAL
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(MINIMAL.replace(old, new, 1), name="bad")
    assert str(refused.value).startswith(message), str(refused.value)

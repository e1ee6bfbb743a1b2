"""A scenario with ECI: eligible workers go to the ECI virtual node, workers ECI cannot run
(privileged) go to a node pool or are reported unplaceable."""

from __future__ import annotations

from pathlib import Path

from tests.support.dev_process import SPEED, run_dev

# The head fills the system node, so every worker needs new capacity. The plain workers
# (4 vCPU) are too big for the pool's nodes (3.9 vCPU allocatable): only ECI can run them. The
# privileged ones cannot run on ECI: only the pool can.
SCENARIO = """\
name: eci-small
description: plain workers on ECI, privileged workers on a pool
seed: 3
speed: 50
timeLimitSeconds: 900
cluster: {id: c-eci-small, region: cn-hangzhou, zone: cn-hangzhou-k}
systemNodes:
  - instanceType: ecs.g7.xlarge
    labels: {node-role.ray-ack-scaler.io/system: "true"}
pools:
  - id: np-cpu
    name: cpu
    instanceType: ecs.g7.xlarge
    maxSize: 4
    bootSeconds: {min: 60, max: 90}
eci: {enabled: true, startSeconds: 20}
policy: {strategy: cost, expectedRunSeconds: 60}
ray:
  name: small
  head:
    numCpus: 0
    requests: {cpu: "3", memory: 4Gi}
    nodeSelector: {node-role.ray-ack-scaler.io/system: "true"}
  workerGroups:
    - name: plain
      requests: {cpu: "4", memory: 4Gi}
      maxReplicas: 3
      idleTimeoutSeconds: 30
    - name: privileged
      requests: {cpu: "1", memory: 1Gi}
      maxReplicas: 2
      privileged: true
      customResources: {privileged: 1}
      idleTimeoutSeconds: 30
job:
  tasks:
    - {name: plain, count: 3, numCpus: 4, durationSeconds: 60}
    - {name: privileged, count: 2, numCpus: 1, durationSeconds: 60, resources: {privileged: 1}}
"""


def test_eligible_workers_run_on_eci_and_the_others_elsewhere(tmp_path: Path):
    """The 3 plain workers run on ECI; the 2 privileged ones on pool nodes (or unplaceable)."""
    scenario = tmp_path / "eci-small.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    result = run_dev(
        "--json", "--quiet", "--speed", SPEED, "--scenario", str(scenario), "--decider", "local"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["scenario"] == "eci-small"
    assert summary["pods"] == 5
    assert summary["eciPods"] == 3
    assert summary["nodesAdded"] >= 1 or summary["unplaceable"] == 2
    assert summary["running"] + summary["unplaceable"] == 5

"""The agentless mode as template.yml and s.yaml deploy it: the reconcile function from its own
code package, an EventBridge trigger whose pattern matches the CloudEvent the embedded ACK's
EventBridge stand-in delivers for a worker's FailedScheduling, a Timer every minute, settings the
agent's loader accepts, a role allowed exactly the CS actions the code calls, and the concurrency
limit the FC emulator models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agent.agentless.index import reconcile
from agent.app.config import load_config
from agent.sim.cloud.eventbridge import EventRule, cloud_event
from agent.sim.embedded import RECONCILE_MAX_CONCURRENCY
from tests.support.deploy_templates import (
    DeployedReconcile,
    read_yaml,
    ros_reconcile,
    s_yaml_reconcile,
)

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "ray"


def both() -> list[DeployedReconcile]:
    deployed, _ = ros_reconcile()
    return [deployed, s_yaml_reconcile()]


def pattern_of(config: dict[str, Any]) -> dict[str, Any]:
    """The eventRuleFilterPattern as deployed in NAMESPACE (ROS fills ${RayNamespace})."""
    text = config["eventRuleFilterPattern"]
    if isinstance(text, dict):
        text = text["Fn::Sub"].replace("${RayNamespace}", NAMESPACE)
    pattern: dict[str, Any] = json.loads(text)
    return pattern


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's exact-value matching: every key of the pattern is in the event, a list
    holds the value, a mapping matches the event's mapping at that key."""
    for key, wanted in pattern.items():
        if key not in event:
            return False
        if isinstance(wanted, dict):
            if not isinstance(event[key], dict) or not matches(wanted, event[key]):
                return False
        elif event[key] not in wanted:
            return False
    return True


def failed_scheduling(
    namespace: str, name: str, reason: str = "FailedScheduling"
) -> dict[str, Any]:
    event = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": f"{name}.17f", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": name},
        "reason": reason,
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
        "type": "Warning",
        "count": 1,
    }
    return cloud_event(event, region="cn-hangzhou", account_id="1", cluster_id="c", at=0.0)


def test_both_files_deploy_the_function_from_its_own_package_with_two_triggers() -> None:
    """index.reconcile on python3.10 from the reconcile package, an EventBridge trigger and a
    Timer every minute."""
    for deployed in both():
        assert deployed.handler == "index.reconcile" and deployed.runtime == "python3.10"
        assert set(deployed.triggers) == {"eventbridge", "timer"}, deployed.source
        timer = deployed.triggers["timer"]
        assert timer["cronExpression"] == "@every 1m" and timer["enable"] is True
        assert deployed.triggers["eventbridge"]["triggerEnable"] is True
    ros, s_yaml = both()
    assert ros.code["OssObjectName"] == {"Ref": "ReconcileCodeObject"}
    assert s_yaml.code == "./dist/reconcile-fc.zip"
    assert "reconcile-fc.zip" in (ROOT / "Makefile").read_text()


def test_the_rule_lets_through_what_the_stand_in_delivers_and_nothing_else() -> None:
    """The pattern matches the stand-in's CloudEvent for a worker's FailedScheduling in the Ray
    namespace, and neither another reason nor another namespace; the stand-in's rule agrees."""
    rule = EventRule(namespaces=frozenset({NAMESPACE}))
    wanted = failed_scheduling(NAMESPACE, "rc-workergroup-worker-x1")
    others = [
        failed_scheduling(NAMESPACE, "rc-workergroup-worker-x1", reason="Scheduled"),
        failed_scheduling("web", "rc-workergroup-worker-x1"),
    ]
    for deployed in both():
        pattern = pattern_of(deployed.triggers["eventbridge"])
        assert matches(pattern, wanted), deployed.source
        assert not any(matches(pattern, other) for other in others), deployed.source
    assert rule.matches(wanted) and not any(rule.matches(other) for other in others)


def test_the_function_environment_is_a_configuration_the_agent_accepts() -> None:
    """The variables, placeholders filled, load as the agent's settings: deciding in-process,
    no kubeconfig or API URL (those come from CS), the CS VPC endpoint."""
    for deployed in both():
        env = {
            key: value if isinstance(value, str) else "filled"
            for key, value in deployed.environment.items()
        }
        env = {k: re.sub(r"<NODEPOOL_ID>|^filled$", "np-x", v) for k, v in env.items()}
        env["RAY_ACK_SCALER_MANAGED_POOLS"] = "np-x:0:10"
        config = load_config(None, environ=env)
        assert config.decider == "local"
        assert config.kubeconfig is None and config.api_url is None
        assert "cs-vpc." in str(deployed.environment["RAY_ACK_SCALER_CS_ENDPOINT"])
        # the Leases where deploy/rbac.yaml grants them, the Ray namespace
        assert (
            deployed.environment["RAY_ACK_SCALER_POOL_LOCK_NAMESPACE"]
            == deployed.environment["RAY_ACK_SCALER_NAMESPACE"]
        )


def test_the_role_allows_exactly_the_cs_actions_the_code_calls() -> None:
    """Assumed by Function Compute; the CS actions the client module calls, the kubeconfig
    included, and nothing else."""
    _, role = ros_reconcile()
    props = role["Properties"]
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["fc.aliyuncs.com"]}
    called = set(
        re.findall(r'self\._call\(\s*"(\w+)"', (ROOT / "agent" / "clients" / "cs.py").read_text())
    )
    (policy,) = props["Policies"]
    granted = {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert {a.removeprefix("cs:") for a in granted} == called
    assert all(a.startswith("cs:") for a in granted)


def test_the_code_package_entry_point_answers_an_unknown_event_without_any_api() -> None:
    """index.reconcile has FC's event-handler signature and turns away an event of neither
    trigger before reading any setting or calling anything."""

    class Context:
        request_id = "req"
        credentials = None

    reply = json.loads(reconcile(b'{"hello": "world"}', Context()))
    assert reply["ran"] is False and reply["trigger"] is None


def test_the_reconcile_function_runs_at_most_as_often_at_once_as_the_emulator_allows() -> None:
    """template.yml limits the reconcile function's concurrency (ALIYUN::FC3::ConcurrencyConfig
    on it, at the runtime's instance concurrency of 1: no InstanceConcurrency set), to the limit
    the embedded ACK's FC emulator runs it with; s.yaml's PutConcurrencyConfig step says the
    same number."""
    resources = read_yaml(ROOT / "template.yml")["Resources"]
    (config,) = [r for r in resources.values() if r["Type"] == "ALIYUN::FC3::ConcurrencyConfig"]
    assert config["Condition"] == "Agentless"
    props = config["Properties"]
    assert props["FunctionName"] == {"Fn::GetAtt": ["Reconcile", "FunctionName"]}
    assert props["ReservedConcurrency"] == RECONCILE_MAX_CONCURRENCY
    assert "InstanceConcurrency" not in resources["Reconcile"]["Properties"]
    s_yaml = (ROOT / "s.yaml").read_text()
    step = re.search(
        r"/2023-03-30/functions/reconcile/concurrency .*reservedConcurrency\": (\d+)", s_yaml
    )
    assert step is not None and int(step.group(1)) == RECONCILE_MAX_CONCURRENCY

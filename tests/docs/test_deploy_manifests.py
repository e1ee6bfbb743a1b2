"""deploy/ and the Dockerfile against the code: manifests parse and fit together (namespace,
service account, RRSA, the agent's Deployment beside the RayCluster, whose head has none of the
agent's rights), the agent's environment is a configuration the agent accepts, the probes reach
the probe listener while /status stays on loopback, the RAM policy names exactly the CS actions
agent/clients/cs.py calls, and the image runs `python -m agent run` as a non-root user."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from agent.app.config import load_config
from agent.app.settings import ENV_PREFIX, SETTINGS
from tests.support.deploy_templates import deployed_functions

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
AGENT = "ray-ack-scaler"


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return docs


def one(kind: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def agent_container() -> dict[str, Any]:
    return next(c for c in pod_spec(one("Deployment"))["containers"] if c["name"] == AGENT)


def agent_env() -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in agent_container()["env"]}


def ray_pod_specs() -> list[dict[str, Any]]:
    cluster = one("RayCluster")["spec"]
    return [cluster["headGroupSpec"]["template"]["spec"]] + [
        group["template"]["spec"] for group in cluster["workerGroupSpecs"]
    ]


def test_every_manifest_parses_with_the_expected_kinds():
    """deploy/*.yaml hold exactly the namespace, RBAC objects, the agent's Deployment and the
    RayCluster."""
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Namespace",
        "RayCluster",
        "Role",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "RoleBinding",
        "ServiceAccount",
    ]
    assert one("RayCluster")["apiVersion"] == "ray.io/v1"
    assert one("Deployment")["apiVersion"] == "apps/v1"
    for path in DEPLOY.glob("*.json"):
        assert json.loads(path.read_text())["Version"] == "1", path.name


def test_only_the_agent_runs_as_the_rrsa_service_account():
    """The agent's Deployment, the RRSA service account, its bindings and the injection-labelled
    namespace name each other; no Ray pod uses that account or runs the agent, so a Ray job gets
    neither the RAM role nor the agent's RBAC rights (the head keeps the account KubeRay makes
    for its autoscaler)."""
    namespace = one("Namespace")
    account = one("ServiceAccount")
    deployment = one("Deployment")
    cluster = one("RayCluster")
    name = namespace["metadata"]["name"]
    account_name = account["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-identity.alibabacloud.com/injection"] == "on"
    assert account["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"]
    assert account["metadata"]["namespace"] == cluster["metadata"]["namespace"] == name
    assert deployment["metadata"]["namespace"] == name
    assert pod_spec(deployment)["serviceAccountName"] == account_name
    for spec in ray_pod_specs():
        assert spec.get("serviceAccountName") in (None, ""), "a Ray pod names a service account"
        assert all(AGENT not in c["image"] and c["name"] != AGENT for c in spec["containers"])
    subject = {"kind": "ServiceAccount", "name": account_name, "namespace": name}
    bindings = [d for d in documents() if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert bindings and all(b["subjects"] == [subject] for b in bindings)
    trust = json.loads((DEPLOY / "ram-trust-policy.json").read_text())
    oidc_subject = trust["Statement"][0]["Condition"]["StringEquals"]["oidc:sub"]
    assert oidc_subject == f"system:serviceaccount:{name}:{account_name}"


def test_one_agent_at_a_time():
    """A Deployment of one replica, replaced with Recreate (never two agents of one Ray
    cluster), kept off the pools it scales."""
    deployment = one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    terms = pod_spec(deployment)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    managed = {b.pool_id for b in load_config(environ=agent_env()).managed_pools}
    avoided = {
        value
        for term in terms
        for expression in term["matchExpressions"]
        if expression["key"] == "alibabacloud.com/nodepool-id" and expression["operator"] == "NotIn"
        for value in expression["values"]
    }
    assert managed and managed <= avoided


def test_the_agent_environment_is_a_configuration_the_agent_accepts():
    """Every RAY_ACK_SCALER_* variable is a real setting, and together they load."""
    env = agent_env()
    known = {s.env for s in SETTINGS}
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= known, set(env) - known
    config = load_config(environ=env)
    assert config.in_cluster and config.decider == "fc" and config.credentials == "chain"
    assert config.ray_cluster == one("RayCluster")["metadata"]["name"]
    assert config.namespace == one("Namespace")["metadata"]["name"]


def test_probes_reach_the_probe_listener_and_status_stays_on_loopback():
    """Liveness on /healthz and readiness on /readyz at the probe listener's port, on the pod
    IP; the ops listener (/status) stays on 127.0.0.1 and no port of the pod exposes it."""
    container = agent_container()
    config = load_config(environ=agent_env())
    assert config.ops_host_port[0] == "127.0.0.1" and not config.status_details
    assert config.probe_host_port is not None
    host, port = config.probe_host_port
    assert host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == {port}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path
        assert ports[http["port"]] == port
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_ram_policy_names_exactly_the_cs_actions_the_agent_calls():
    """The RAM policy grants exactly the agent's CS actions and InvokeFunction on its function."""
    called = set(
        re.findall(r'self\._call\(\s*"(\w+)"', (ROOT / "agent" / "clients" / "cs.py").read_text())
    )
    assert "ModifyClusterNodePool" in called
    # the agentless reconcile function's own way into the API server; the agent has a service
    # account (its role's policy is in template.yml: tests/docs/test_deploy_agentless.py)
    called -= {"DescribeClusterUserKubeconfig"}
    policy = json.loads((DEPLOY / "ram-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {a.removeprefix("cs:") for a in actions if a.startswith("cs:")} == called
    assert {a for a in actions if not a.startswith("cs:")} == {"fc:InvokeFunction"}
    env = agent_env()
    function = env[ENV_PREFIX + "FC_FUNCTION"]
    deployed = {f.name for f in deployed_functions()}
    assert function in deployed
    fc = next(s for s in policy["Statement"] if s["Action"] == ["fc:InvokeFunction"])
    # FC 3.0's function ARN (no service) for each deployed function, and FC 2.0's form for
    # agents still on a 2.0 service named ray-ack-scaler.
    assert sorted(fc["Resource"]) == sorted(
        [f"acs:fc:<REGION>:<ACCOUNT_ID>:functions/{name}" for name in deployed]
        + [
            f"acs:fc:<REGION>:<ACCOUNT_ID>:services/ray-ack-scaler/functions/{name}"
            for name in deployed
        ]
    )


def test_the_image_runs_the_agent_as_a_non_root_user():
    """python slim by tag and digest, the package without dev extras, a numeric non-root USER, the
    production entry point. (tests/docs/test_image_lock.py checks the dependencies.)"""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(
        r"^FROM python:3\.\d+\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$", text, re.MULTILINE
    )
    assert re.search(r"^RUN pip install --no-deps \. ", text, re.MULTILINE) and "[dev]" not in text
    user = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user and user[-1].isdigit() and int(user[-1]) != 0
    assert 'ENTRYPOINT ["python", "-m", "agent", "run"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") + 1 :][:5] == [
        "!requirements.lock",
        "!pyproject.toml",
        "!README.md",
        "!agent/",
        "!functions/",
    ]

"""deploy/ and the Dockerfile against the code: manifests parse and fit together (namespace,
service account, RRSA, RayCluster sidecar), the sidecar's environment is a configuration the
agent accepts, the RAM policy names exactly the CS actions agent/clients/cs.py calls, and the image runs
`python -m agent run` as a non-root user."""

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
SIDECAR = "ray-ack-scaler"


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return docs


def one(kind: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def sidecar() -> dict[str, Any]:
    head = one("RayCluster")["spec"]["headGroupSpec"]["template"]["spec"]
    return next(c for c in head["containers"] if c["name"] == SIDECAR)


def sidecar_env() -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in sidecar()["env"]}


def test_every_manifest_parses_with_the_expected_kinds():
    """deploy/*.yaml hold exactly the namespace, RBAC objects and the RayCluster."""
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "RayCluster",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    assert one("RayCluster")["apiVersion"] == "ray.io/v1"
    for path in DEPLOY.glob("*.json"):
        assert json.loads(path.read_text())["Version"] == "1", path.name


def test_the_head_pod_runs_as_the_rrsa_service_account():
    """Head pod, service account, binding and injection-labelled namespace name each other."""
    namespace = one("Namespace")
    account = one("ServiceAccount")
    cluster = one("RayCluster")
    binding = one("ClusterRoleBinding")
    name = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-identity.alibabacloud.com/injection"] == "on"
    assert account["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"]
    assert account["metadata"]["namespace"] == cluster["metadata"]["namespace"] == name
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    assert head["serviceAccountName"] == account["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": name}
    ]
    assert binding["roleRef"]["name"] == one("ClusterRole")["metadata"]["name"]
    trust = json.loads((DEPLOY / "ram-trust-policy.json").read_text())
    subject = trust["Statement"][0]["Condition"]["StringEquals"]["oidc:sub"]
    assert subject == f"system:serviceaccount:{name}:{account['metadata']['name']}"


def test_the_sidecar_environment_is_a_configuration_the_agent_accepts():
    """Every RAY_ACK_SCALER_* variable is a real setting, and together they load."""
    env = sidecar_env()
    known = {s.env for s in SETTINGS}
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= known, set(env) - known
    config = load_config(environ=env)
    assert config.in_cluster and config.decider == "fc" and config.credentials == "chain"
    assert config.ray_cluster == one("RayCluster")["metadata"]["name"]
    assert config.namespace == one("Namespace")["metadata"]["name"]


def test_probes_reach_the_ops_endpoints():
    """Liveness on /healthz, readiness on /readyz, at the agent's port on all interfaces."""
    container = sidecar()
    host, port = load_config(environ=sidecar_env()).ops_host_port
    assert host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path
        assert ports[http["port"]] == port
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_ram_policy_names_exactly_the_cs_actions_the_agent_calls():
    """The RAM policy grants exactly the agent's CS actions and InvokeFunction on its function."""
    called = set(
        re.findall(r'self\._call\(\s*"(\w+)"', (ROOT / "agent" / "clients" / "cs.py").read_text())
    )
    assert "ModifyClusterNodePool" in called
    policy = json.loads((DEPLOY / "ram-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {a.removeprefix("cs:") for a in actions if a.startswith("cs:")} == called
    assert {a for a in actions if not a.startswith("cs:")} == {"fc:InvokeFunction"}
    env = sidecar_env()
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
    """python:3.11-slim, no dev extras, a numeric non-root USER, the production entry point."""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"^RUN pip install \. ", text, re.MULTILINE) and "[dev]" not in text
    user = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user and user[-1].isdigit() and int(user[-1]) != 0
    assert 'ENTRYPOINT ["python", "-m", "agent", "run"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*") + 1 :][:4] == [
        "!pyproject.toml",
        "!README.md",
        "!agent/",
        "!functions/",
    ]

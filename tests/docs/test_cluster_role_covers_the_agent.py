"""deploy/rbac.yaml against what the agent really asks of Kubernetes: the agent, configured as
deploy/agent.yaml configures it, runs the seed walkthrough (scale-out, then scale-in: cordon,
events) and an ECI placement against the embedded ACK with the Ray cluster in the manifests'
namespace. Every API request is recorded and mapped to RBAC (namespace, resource, verb); the
ClusterRole and the Roles must grant each of them and nothing else, and the ClusterRole only what
the agent asks for across namespaces (or of cluster-scoped objects)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from agent.actuate.event_sink import EventSink
from agent.app.settings import AgentConfig
from agent.app.wiring import connect_agent
from agent.clients.kube import KubeClient
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import EciSpec, Scenario, load_scenario
from tests.support.cluster import agent_config, pool_nodes, running
from tests.support.waiting import until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SPEED = 200  # the seed cycle (~380 simulated seconds) in about two real seconds

Rule = tuple[str, str]  # (resource, verb)
Scoped = tuple[str | None, str, str]  # (namespace, or None: cluster-wide; resource, verb)

pytestmark = pytest.mark.usefixtures("access_keys")


def rbac_rule(method: str, path_qs: str) -> Rule:
    """The (resource, verb) the API server's authorizer would check for one request."""
    _, resource, verb = scoped_rule(method, path_qs)
    return (resource, verb)


def scoped_rule(method: str, path_qs: str) -> Scoped:
    """(namespace, resource, verb) as the authorizer checks it: a namespaced request is allowed
    by a Role in that namespace or a ClusterRole; one without a namespace only by a ClusterRole."""
    parts = urlsplit(path_qs)
    segments = [s for s in parts.path.split("/") if s]
    if segments[:2] == ["api", "v1"] and len(segments) >= 3:
        rest = segments[2:]  # the core group
    elif segments[:1] == ["apis"] and len(segments) >= 4:
        rest = segments[3:]  # /apis/{group}/{version}/...: named groups such as coordination.k8s.io
    else:
        return (None, "nonResourceURL " + parts.path, method.lower())
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]  # namespaced: the resource follows the namespace
    resource, named = rest[0], len(rest) > 1
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"  # a subresource, e.g. pods/eviction
    query = parse_qs(parts.query)
    watching = query.get("watch", ["false"])[0].lower() not in ("", "0", "false")
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    if method == "GET":
        verb = "watch" if watching else ("get" if named else "list")
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = verbs[method]
    return (namespace, resource, verb)


# The API group each resource the agent touches lives in.
GROUPS = {
    "pods": "",
    "nodes": "",
    "events": "",
    "leases": "coordination.k8s.io",
    "rayclusters": "ray.io",
}
# Non-resource URLs any authenticated user may GET: the default ClusterRole system:discovery,
# bound to system:authenticated (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
DISCOVERY = ("/api", "/api/", "/apis", "/apis/", "/healthz", "/livez", "/readyz", "/version")


def discovery(request: Scoped) -> bool:
    """A GET of a discovery document: allowed by the defaults, not by deploy/rbac.yaml."""
    namespace, resource, verb = request
    path = resource.removeprefix("nonResourceURL ")
    return (
        namespace is None
        and resource.startswith("nonResourceURL ")
        and verb == "get"
        and (path in DISCOVERY or path.startswith(("/api/", "/apis/", "/openapi/")))
    )


def rbac_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text()) if d]


def granted_rules() -> set[Scoped]:
    """Every (namespace, resource, verb) deploy/rbac.yaml grants the agent's service account:
    namespace None for the ClusterRole (bound cluster-wide), the Role's namespace for a Role."""
    documents = rbac_documents()
    account = next(d for d in documents if d["kind"] == "ServiceAccount")["metadata"]
    subject = {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in documents
    }
    granted: set[Scoped] = set()
    for binding in (d for d in documents if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        assert binding["subjects"] == [subject], binding["metadata"]["name"]
        scope = binding["metadata"].get("namespace")  # None for a ClusterRoleBinding
        ref = binding["roleRef"]
        key = (ref["kind"], None if ref["kind"] == "ClusterRole" else scope, ref["name"])
        assert key in roles, f"{binding['metadata']['name']} binds {key}, which is not defined"
        role = roles[key]
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            for resource in rule["resources"]:
                assert rule["apiGroups"] == [GROUPS[resource]], f"{resource} is in the wrong group"
                granted |= {(scope, resource, verb) for verb in rule["verbs"]}
    bound = {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in documents if "roleRef" in b}
    assert bound == {(kind, name) for kind, _, name in roles if kind.endswith("Role")}, (
        "a Role or ClusterRole that no binding uses"
    )
    return granted


def allowed(request: Scoped, granted: set[Scoped]) -> bool:
    """A cluster-wide grant allows the request in any namespace; a Role only in its own."""
    namespace, resource, verb = request
    return (None, resource, verb) in granted or (
        namespace is not None and (namespace, resource, verb) in granted
    )


def deployed_agent() -> tuple[dict[str, Any], dict[str, str]]:
    """deploy/agent.yaml's Deployment and its container's environment."""
    deployment = yaml.safe_load((DEPLOY / "agent.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return deployment, {e["name"]: str(e["value"]) for e in container["env"]}


def in_the_deployed_namespace(scenario: Scenario) -> Scenario:
    """The scenario's Ray cluster where deploy/ puts it, scaled by an agent configured as
    deploy/agent.yaml configures it."""
    _, env = deployed_agent()
    assert scenario.ray.name == env["RAY_ACK_SCALER_RAY_CLUSTER"]
    ray = dataclasses.replace(scenario.ray, namespace=env["RAY_ACK_SCALER_NAMESPACE"])
    return dataclasses.replace(scenario, ray=ray)


def deployed_config(ack: EmbeddedAck, **overrides: Any) -> AgentConfig:
    """The embedded ACK's endpoints, with deploy/agent.yaml's scope: its namespace, its Ray
    cluster, and its own namespace for the pool Leases (what the agent reads from its service
    account's namespace file in the pod)."""
    deployment, env = deployed_agent()
    return agent_config(
        ack,
        speed=SPEED,
        namespace=env["RAY_ACK_SCALER_NAMESPACE"],
        ray_cluster=env["RAY_ACK_SCALER_RAY_CLUSTER"],
        pool_lock_namespace=deployment["metadata"]["namespace"],
        **overrides,
    )


async def requests_of_a_pool_cycle() -> set[Scoped]:
    """Seed walkthrough: scale out through the pool, then scale in (cordon, ScaleDown events)."""
    seen: set[Scoped] = set()
    scenario = in_the_deployed_namespace(load_scenario("seed"))
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        ack.cluster.request_listeners.append(lambda m, p: seen.add(scoped_rule(m, p)))
        config = deployed_config(ack, eci_enabled=False)
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(ack.world.ray.finished, timeout=20, what="the job")
            await until(lambda: not pool_nodes(ack), timeout=20, what="the pool back at min")
    return seen


async def requests_of_an_eci_placement() -> set[Scoped]:
    """Seed workers on ECI: the toleration patch and the PlacedOnECI event; the first patch
    is refused because the pod changed after the snapshot (as the scheduler's status writes do),
    so the agent re-reads the pod (GET) and patches again."""
    seen: set[Scoped] = set()
    scenario = in_the_deployed_namespace(
        dataclasses.replace(load_scenario("seed"), eci=EciSpec(enabled=True))
    )
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        store = ack.cluster.store

        def rewrite_message(pod: dict[str, Any]) -> None:
            for condition in pod["status"].get("conditions") or ():
                if condition.get("type") == "PodScheduled":
                    condition["message"] = "0/9 nodes are available (rewritten by the test)"

        def listen(method: str, path_qs: str) -> None:
            rule = scoped_rule(method, path_qs)
            if rule[1:] == ("pods", "patch") and not any(r[1:] == ("pods", "get") for r in seen):
                # The listener runs before the handler: bump the pod's resourceVersion, so the
                # patch's `test` fails with 422 and the agent must re-read it.
                name = urlsplit(path_qs).path.rsplit("/", 1)[-1]
                store.mutate("pods", name, rewrite_message, namespace=rule[0])
            seen.add(rule)

        ack.cluster.request_listeners.append(listen)
        config = deployed_config(ack, strategy="eci-first", scale_in_enabled=False)
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(
                lambda: (
                    {("pods", "patch"), ("pods", "get")} <= {r[1:] for r in seen}
                    and ack.world.ray.finished()
                ),
                timeout=20,
                what="an ECI placement after a re-read",
            )
    return seen


async def requests_of_a_repeated_pod_event() -> set[Scoped]:
    """The agent's event sink saying the same thing about a pod twice, past its repeat window
    (0 here, 5 minutes in the agent): a create, then a PATCH bumping the count."""
    seen: set[Scoped] = set()
    scenario = in_the_deployed_namespace(load_scenario("seed"))
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        ack.cluster.request_listeners.append(lambda m, p: seen.add(scoped_rule(m, p)))

        def heads() -> list[dict[str, Any]]:
            return [
                p
                for p in ack.cluster.store.list("pods", namespace=scenario.ray.namespace)[0]
                if p["metadata"]["labels"].get("ray.io/node-type") == "head"
            ]

        # the KubeRay operator stand-in creates the head a reconcile after the RayCluster
        await until(heads, timeout=10, what="the head pod")
        [pod] = heads()
        ref = {
            "namespace": scenario.ray.namespace,
            **{k: pod["metadata"][k] for k in ("name", "uid")},
        }
        kube = await KubeClient.connect(api_url=ack.kubernetes_url)
        try:
            sink = EventSink(kube, repeat_after_seconds=0)
            for now in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"):
                sink.record(ref, reason="NotTriggerScaleUp", message="m", now=now)
                await sink.flush()
            await sink.stop()
        finally:
            await kube.close()
        assert sink.counters["created"] == 1 and sink.counters["patched"] == 1
    return seen


def test_requests_map_to_rbac_verbs():
    """LIST, WATCH, GET by name, JSON patch and POST map as the API server's authorizer does."""
    assert rbac_rule("GET", "/api/v1/pods?labelSelector=a%3Db&limit=500") == ("pods", "list")
    assert rbac_rule("GET", "/api/v1/namespaces/ray/pods?watch=True&resourceVersion=7") == (
        "pods",
        "watch",
    )
    assert rbac_rule("GET", "/api/v1/nodes/n1") == ("nodes", "get")
    assert rbac_rule("PATCH", "/api/v1/namespaces/ray/pods/w-1") == ("pods", "patch")
    assert rbac_rule("POST", "/api/v1/namespaces/default/events") == ("events", "create")
    assert rbac_rule("POST", "/api/v1/namespaces/d/pods/p/eviction") == ("pods/eviction", "create")
    assert rbac_rule("PUT", "/apis/coordination.k8s.io/v1/namespaces/ray/leases/l") == (
        "leases",
        "update",
    )
    assert rbac_rule("GET", "/version")[0].startswith("nonResourceURL")
    assert scoped_rule("GET", "/apis/ray.io/v1/namespaces/ray/rayclusters?watch=true") == (
        "ray",
        "rayclusters",
        "watch",
    )
    assert discovery(scoped_rule("GET", "/apis/ray.io/v1"))
    assert not discovery(scoped_rule("GET", "/metrics"))
    assert not discovery(scoped_rule("GET", "/apis/ray.io/v1/rayclusters"))
    assert scoped_rule("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1") == (
        None,
        "pods",
        "list",
    )
    assert scoped_rule("POST", "/api/v1/namespaces/default/events") == (
        "default",
        "events",
        "create",
    )


def test_a_role_allows_only_its_own_namespace():
    """A Role's grant covers requests in its namespace; a ClusterRole's covers them all."""
    granted = {("ray", "pods", "patch"), (None, "nodes", "patch")}
    assert allowed(("ray", "pods", "patch"), granted)
    assert not allowed(("default", "pods", "patch"), granted)
    assert not allowed((None, "pods", "patch"), granted)
    assert allowed((None, "nodes", "patch"), granted)


async def test_the_roles_grant_exactly_what_the_agent_uses():
    """Every request of a pool cycle and an ECI placement is granted; every grant is used in
    its own scope: a ClusterRole verb by a cluster-wide request (a namespaced use would need a
    Role only), a Role verb by a request in that Role's namespace."""
    used = (
        await requests_of_a_pool_cycle()
        | await requests_of_an_eci_placement()
        | await requests_of_a_repeated_pod_event()
    )
    granted = granted_rules()
    missing = {r for r in used if not allowed(r, granted) and not discovery(r)}
    assert not missing, f"the agent needs more than deploy/rbac.yaml grants: {missing}"
    unused = granted - used
    assert not unused, f"deploy/rbac.yaml grants what the agent never uses there: {unused}"
    # the point of the Roles: writes to pods stay in the Ray namespace
    _, env = deployed_agent()
    assert (None, "pods", "patch") not in granted
    assert {r for r in used if r[1:] == ("pods", "patch")} == {
        (env["RAY_ACK_SCALER_NAMESPACE"], "pods", "patch")
    }

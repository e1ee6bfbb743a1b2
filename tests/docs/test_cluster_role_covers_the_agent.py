"""deploy/rbac.yaml against what the agent really asks of Kubernetes: the agent runs the seed
walkthrough (scale-out, then scale-in: cordon, events) and an ECI placement against the embedded
ACK, every API request is recorded, mapped to RBAC (resource, verb), and the ClusterRole must
grant each of them and nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from agent.app.wiring import connect_agent
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import EciSpec, load_scenario
from tests.support.cluster import agent_config, pool_nodes, running
from tests.support.waiting import until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SPEED = 200  # the seed cycle (~380 simulated seconds) in about two real seconds

Rule = tuple[str, str]  # (resource, verb)

pytestmark = pytest.mark.usefixtures("access_keys")


def rbac_rule(method: str, path_qs: str) -> Rule:
    """The (resource, verb) the API server's authorizer would check for one request."""
    parts = urlsplit(path_qs)
    segments = [s for s in parts.path.split("/") if s]
    if segments[:2] == ["api", "v1"] and len(segments) >= 3:
        rest = segments[2:]  # the core group
    elif segments[:1] == ["apis"] and len(segments) >= 4:
        rest = segments[3:]  # /apis/{group}/{version}/...: named groups such as coordination.k8s.io
    else:
        return ("nonResourceURL " + parts.path, method.lower())
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]  # namespaced: the resource follows the namespace name
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
    return (resource, verb)


# The API group each resource the agent touches lives in.
GROUPS = {"pods": "", "nodes": "", "events": "", "leases": "coordination.k8s.io"}


def granted_rules() -> set[Rule]:
    """Every (resource, verb) the ClusterRole and the Role in deploy/rbac.yaml grant."""
    documents = list(yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text()))
    roles = [d for d in documents if d["kind"] in ("ClusterRole", "Role")]
    granted: set[Rule] = set()
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            for resource in rule["resources"]:
                assert rule["apiGroups"] == [GROUPS[resource]], f"{resource} is in the wrong group"
                granted |= {(resource, verb) for verb in rule["verbs"]}
    return granted


async def requests_of_a_pool_cycle() -> set[Rule]:
    """Seed walkthrough: scale out through the pool, then scale in (cordon, ScaleDown events)."""
    seen: set[Rule] = set()
    async with EmbeddedAck(load_scenario("seed"), speed=SPEED, faults=False) as ack:
        ack.cluster.request_listeners.append(lambda m, p: seen.add(rbac_rule(m, p)))
        config = agent_config(ack, speed=SPEED, eci_enabled=False)
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(ack.world.ray.finished, timeout=20, what="the job")
            await until(lambda: not pool_nodes(ack), timeout=20, what="the pool back at min")
    return seen


async def requests_of_an_eci_placement() -> set[Rule]:
    """Seed workers on ECI: the toleration patch and the PlacedOnECI event."""
    seen: set[Rule] = set()
    scenario = dataclasses.replace(load_scenario("seed"), eci=EciSpec(enabled=True))
    async with EmbeddedAck(scenario, speed=SPEED, faults=False) as ack:
        ack.cluster.request_listeners.append(lambda m, p: seen.add(rbac_rule(m, p)))
        config = agent_config(ack, speed=SPEED, strategy="eci-first", scale_in_enabled=False)
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(lambda: ("pods", "patch") in seen, timeout=20, what="an ECI placement")
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


async def test_the_cluster_role_grants_exactly_what_the_agent_uses():
    """Every request of a pool cycle and an ECI placement is granted, and no grant goes unused."""
    used = await requests_of_a_pool_cycle() | await requests_of_an_eci_placement()
    granted = granted_rules()
    assert used <= granted, f"the agent needs more than deploy/rbac.yaml grants: {used - granted}"
    assert granted <= used, f"deploy/rbac.yaml grants what the agent never uses: {granted - used}"

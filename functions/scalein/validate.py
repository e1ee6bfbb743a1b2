"""Validation of a raw scale-in/v1 request into frozen values (`functions.scalein.model`).

Same rules and readers as decide/v1 (`functions.readers`): every refusal is an
`InvalidRequest` naming the JSON path (`nodes[2].pods[0].requests.cpu`), unknown
fields are ignored, and more than 20,000 nodes, 200,000 pods or 1,000 pools is
`RequestTooLarge`. Defaults are listed in docs/scale-in-contract.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from functions import readers
from functions.contract import SCALE_IN_SCHEMA
from functions.deadline import requested_seconds
from functions.errors import InvalidRequest, RequestTooLarge
from functions.quantity import parse_resources
from functions.scalein.model import (
    OWNER_KINDS,
    PHASES,
    RAY_NODE_TYPES,
    ManagedPool,
    Node,
    NodePod,
    ScaleInPolicy,
    ScaleInRequest,
)
from functions.scaleout.validate import DEFAULT_MAX_PODS_PER_NODE, MAX_PODS, MAX_POOLS

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA = SCALE_IN_SCHEMA  # functions.scalein.reply imports it by this name
MAX_NODES = 20_000

_NO_MAP: dict[str, Any] = {}
_NO_LIST: list[Any] = []

# A pod's placement-relevant fields, validated: requests, nodeSelector, affinity,
# tolerations, their canonical key, and the canonical key of the last three alone.
_Fit = tuple[
    dict[str, int],
    dict[str, str],
    "Mapping[str, Any] | None",
    "tuple[Mapping[str, Any], ...]",
    str,
    str,
]


def parse_scale_in_request(raw: object) -> ScaleInRequest:
    """Validate a decoded scale-in/v1 request; raise InvalidRequest / RequestTooLarge."""
    raw, now = readers.envelope(raw, schema=SCALE_IN_SCHEMA)
    raw_pools = _list(readers.required(raw, "pools", ""), path="pools")
    raw_nodes = _list(readers.required(raw, "nodes", ""), path="nodes")
    if len(raw_pools) > MAX_POOLS:
        raise RequestTooLarge(
            f"{len(raw_pools)} pools exceed the limit of {MAX_POOLS} per decision", path="pools"
        )
    if len(raw_nodes) > MAX_NODES:
        raise RequestTooLarge(
            f"{len(raw_nodes)} nodes exceed the limit of {MAX_NODES} per decision; "
            "split the request by node pool",
            path="nodes",
        )
    cluster = readers.cluster(raw)
    raw_policy = readers.optional_object(raw, "policy", "")
    policy = _policy(raw_policy)
    pools, templates = _pools(raw_pools)
    nodes = _nodes(raw_nodes, pools=pools, templates=templates)
    fingerprint = readers.canonical(
        {
            "schema": SCALE_IN_SCHEMA,
            "cluster": cluster,
            "pools": [vars(pools[pool_id]) for pool_id in sorted(pools)],
            "nodes": [
                {**vars(node), "pods": [_pod_token(pod) for pod in node.pods]} for node in nodes
            ],
            "policy": vars(policy),
        }
    )
    return ScaleInRequest(
        now=now,
        pools=pools,
        nodes=nodes,
        policy=policy,
        fingerprint=fingerprint,
        max_decision_seconds=requested_seconds(raw_policy),
    )


def _pod_token(pod: NodePod) -> list[Any]:
    # fit_key already holds requests, selector, affinity and tolerations in canonical form.
    return [
        pod.uid,
        pod.namespace,
        pod.name,
        pod.owner_kind,
        pod.ray_node_type,
        pod.pdb_blocked,
        pod.phase,
        pod.fit_key,
    ]


# --- pools --------------------------------------------------------------------------------


def _pools(raw_pools: list[Any]) -> tuple[dict[str, ManagedPool], dict[str, dict[str, int]]]:
    pools: dict[str, ManagedPool] = {}
    templates: dict[str, dict[str, int]] = {}
    for path, raw, pool_id in readers.keyed_objects(
        raw_pools, path="pools", key="id", noun="pool id"
    ):
        size = readers.required(raw, "size", path)
        if not isinstance(size, dict):
            raise InvalidRequest(
                f"expected an object, got {readers.kind(size)}", path=f"{path}.size"
            )
        min_size = readers.count(size.get("min", 0), path=f"{path}.size.min")
        desired = readers.count(
            readers.required(size, "desired", f"{path}.size"), path=f"{path}.size.desired"
        )
        if desired < min_size:
            raise InvalidRequest(
                f"desired {desired} is below min {min_size}", path=f"{path}.size.desired"
            )
        name = raw.get("name", pool_id)
        if not isinstance(name, str):
            raise InvalidRequest(
                f"expected a string, got {readers.kind(name)}", path=f"{path}.name"
            )
        last = raw.get("lastScaleUpAt")
        pools[pool_id] = ManagedPool(
            id=pool_id,
            name=name,
            min_size=min_size,
            desired=desired,
            price_per_hour=readers.price(
                readers.required(raw, "pricePerHour", path), path=f"{path}.pricePerHour"
            ),
            last_scale_up_at=None
            if last is None
            else readers.timestamp(last, path=f"{path}.lastScaleUpAt"),
        )
        if raw.get("allocatable") is not None:
            templates[pool_id] = parse_resources(raw["allocatable"], path=f"{path}.allocatable")
    return pools, templates


# --- nodes and their pods -----------------------------------------------------------------


def _nodes(
    raw_nodes: list[Any],
    *,
    pools: Mapping[str, ManagedPool],
    templates: Mapping[str, dict[str, int]],
) -> tuple[Node, ...]:
    nodes: list[Node] = []
    uids: dict[str, str] = {}
    shapes: dict[tuple[str, ...], _Fit] = {}
    for path, raw, name in readers.keyed_objects(
        raw_nodes, path="nodes", key="name", noun="node name"
    ):
        nodes.append(
            _node(
                raw,
                name=name,
                path=path,
                pools=pools,
                templates=templates,
                uids=uids,
                shapes=shapes,
            )
        )
        if len(uids) > MAX_PODS:
            raise RequestTooLarge(
                f"more than {MAX_PODS} pods per decision; split the request by node pool",
                path=f"{path}.pods",
            )
    return tuple(sorted(nodes, key=lambda node: node.name))


def _node(
    raw: dict[str, Any],
    *,
    name: str,
    path: str,
    pools: Mapping[str, ManagedPool],
    templates: Mapping[str, dict[str, int]],
    uids: dict[str, str],
    shapes: dict[tuple[str, ...], _Fit],
) -> Node:
    pool_id = raw.get("poolId")
    if pool_id is not None and (not isinstance(pool_id, str) or pool_id not in pools):
        raise InvalidRequest(
            f"poolId {pool_id!r} is not one of the request's pools (null: an unmanaged node)",
            path=f"{path}.poolId",
        )
    instance_id = raw.get("instanceId")
    if pool_id is not None and (not isinstance(instance_id, str) or not instance_id):
        raise InvalidRequest(
            "a managed node needs its ECS instance id (non-empty string)", path=f"{path}.instanceId"
        )
    if instance_id is not None and not isinstance(instance_id, str):
        raise InvalidRequest(
            f"expected a string, got {readers.kind(instance_id)}", path=f"{path}.instanceId"
        )
    ready = readers.required(raw, "ready", path)
    if not isinstance(ready, bool):
        raise InvalidRequest(
            f"expected true or false, got {readers.kind(ready)}", path=f"{path}.ready"
        )
    ever_ready = raw.get("everReady", True)
    if not isinstance(ever_ready, bool):
        raise InvalidRequest(
            f"expected true or false, got {readers.kind(ever_ready)}", path=f"{path}.everReady"
        )
    raw_allocatable = raw.get("allocatable")
    template = templates.get(pool_id) if pool_id is not None else None
    if raw_allocatable is None and template is not None:
        allocatable = dict(template)
    else:
        allocatable = parse_resources(
            readers.required(raw, "allocatable", path), path=f"{path}.allocatable"
        )
    allocatable.setdefault("pods", DEFAULT_MAX_PODS_PER_NODE)
    pods_field = raw.get("pods")
    raw_pods = [] if pods_field is None else _list(pods_field, path=f"{path}.pods")
    pods = tuple(
        sorted(
            (
                _pod(pod, path=f"{path}.pods[{i}]", node=name, uids=uids, shapes=shapes)
                for i, pod in enumerate(raw_pods)
            ),
            key=lambda pod: pod.uid,
        )
    )
    return Node(
        name=name,
        pool_id=pool_id,
        instance_id=instance_id or "",
        ready=ready,
        ever_ready=ready or ever_ready,
        created_at=readers.timestamp(
            readers.required(raw, "createdAt", path), path=f"{path}.createdAt"
        ),
        unschedulable=readers.boolean(raw.get("unschedulable"), path=f"{path}.unschedulable"),
        allocatable=allocatable,
        labels=readers.string_map(raw.get("labels"), path=f"{path}.labels"),
        taints=readers.taints(raw.get("taints"), path=f"{path}.taints"),
        pods=pods,
        empty_since=_moment(raw.get("emptySince"), path=f"{path}.emptySince"),
        underutilized_since=_moment(
            raw.get("underutilizedSince"), path=f"{path}.underutilizedSince"
        ),
        scale_down_disabled=readers.boolean(
            raw.get("scaleDownDisabled"), path=f"{path}.scaleDownDisabled"
        ),
        removal_failed_at=_moment(
            raw.get("lastRemovalFailedAt"), path=f"{path}.lastRemovalFailedAt"
        ),
    )


def _pod(
    raw: object, *, path: str, node: str, uids: dict[str, str], shapes: dict[tuple[str, ...], _Fit]
) -> NodePod:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {readers.kind(raw)}", path=path)
    uid = raw.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidRequest("uid must be a non-empty string", path=f"{path}.uid")
    if uid in uids:
        raise InvalidRequest(
            f"duplicate pod uid {uid!r} (also on node {uids[uid]!r})", path=f"{path}.uid"
        )
    uids[uid] = node
    namespace = _text(raw.get("namespace"), path=f"{path}.namespace")
    name = _text(raw.get("name"), path=f"{path}.name")
    owner_kind = readers.required(raw, "ownerKind", path)
    if owner_kind not in OWNER_KINDS:
        raise InvalidRequest(
            f"unknown ownerKind {owner_kind!r}, expected one of {list(OWNER_KINDS)}",
            path=f"{path}.ownerKind",
        )
    ray_node_type = raw.get("rayNodeType")
    if ray_node_type is not None and ray_node_type not in RAY_NODE_TYPES:
        raise InvalidRequest(
            f"unknown rayNodeType {ray_node_type!r}, expected one of "
            f"{list(RAY_NODE_TYPES)} or null",
            path=f"{path}.rayNodeType",
        )
    phase = raw.get("phase", "Running")
    if phase not in PHASES:
        raise InvalidRequest(
            f"unknown phase {phase!r}, expected one of {list(PHASES)}", path=f"{path}.phase"
        )
    requests, node_selector, affinity, tolerations, fit_key, place_key = _fit(
        raw, path=path, shapes=shapes
    )
    return NodePod(
        uid=uid,
        namespace=namespace,
        name=name,
        requests=requests,
        owner_kind=owner_kind,
        ray_node_type=ray_node_type,
        pdb_blocked=readers.boolean(raw.get("pdbBlocked"), path=f"{path}.pdbBlocked"),
        node_selector=node_selector,
        affinity=affinity,
        tolerations=tolerations,
        phase=phase,
        fit_key=fit_key,
        place_key=place_key,
    )


def _fit(raw: dict[str, Any], *, path: str, shapes: dict[tuple[str, ...], _Fit]) -> _Fit:
    # Thousands of pods share a handful of shapes: each raw shape is validated once, at the
    # first pod that has it. repr() keeps 1, 1.0, True and "1" apart.
    get = raw.get
    key = (
        repr(get("requests")),
        repr(get("nodeSelector")),
        repr(get("affinity")),
        repr(get("tolerations")),
    )
    known = shapes.get(key)
    if known is not None:
        return known
    raw_requests = raw.get("requests")
    requests = (
        {} if raw_requests is None else parse_resources(raw_requests, path=f"{path}.requests")
    )
    selector = raw.get("nodeSelector")
    node_selector = (
        {} if selector == _NO_MAP else readers.string_map(selector, path=f"{path}.nodeSelector")
    )
    raw_affinity = raw.get("affinity")
    affinity = (
        None if raw_affinity == _NO_MAP else readers.affinity(raw_affinity, path=f"{path}.affinity")
    )
    raw_tolerations = raw.get("tolerations")
    tolerations = (
        ()
        if raw_tolerations == _NO_LIST
        else readers.tolerations(raw_tolerations, path=f"{path}.tolerations")
    )
    placement = [
        sorted(node_selector.items()),
        affinity,
        sorted(readers.canonical(t) for t in tolerations),
    ]
    fit_key = readers.canonical([sorted(requests.items()), *placement])
    shapes[key] = (
        requests,
        node_selector,
        affinity,
        tolerations,
        fit_key,
        readers.canonical(placement),
    )
    return shapes[key]


# --- policy -------------------------------------------------------------------------------


def _policy(raw: dict[str, Any]) -> ScaleInPolicy:
    return ScaleInPolicy(
        unneeded_seconds=readers.seconds(
            raw.get("scaleDownUnneededSeconds", 60), path="policy.scaleDownUnneededSeconds"
        ),
        utilization_threshold=readers.number(
            raw.get("scaleDownUtilizationThreshold", 0.5),
            path="policy.scaleDownUtilizationThreshold",
            limit=1.0,
        ),
        delay_after_add_seconds=readers.seconds(
            raw.get("scaleDownDelayAfterAddSeconds", 120),
            path="policy.scaleDownDelayAfterAddSeconds",
        ),
        max_nodes_per_decision=readers.count(
            raw.get("maxNodesPerDecision", 10), path="policy.maxNodesPerDecision", limit=MAX_NODES
        ),
        drain_non_empty=readers.boolean(raw.get("drainNonEmpty"), path="policy.drainNonEmpty"),
        max_provision_seconds=readers.seconds(
            raw.get("maxProvisionSeconds", 600), path="policy.maxProvisionSeconds"
        ),
        delay_after_failure_seconds=readers.seconds(
            raw.get("scaleDownDelayAfterFailureSeconds", 180),
            path="policy.scaleDownDelayAfterFailureSeconds",
        ),
    )


# --- small typed readers ------------------------------------------------------------------


def _list(raw: object, *, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise InvalidRequest(f"expected a list, got {readers.kind(raw)}", path=path)
    return raw


def _text(raw: object, *, path: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidRequest(f"expected a string, got {readers.kind(raw)}", path=path)
    return raw


def _moment(raw: object, *, path: str) -> float | None:
    return None if raw is None else readers.timestamp(raw, path=path)

"""Validation of a raw decide/v1 request into frozen values (`functions.scaleout.model`).

Every refusal is an `InvalidRequest` naming the JSON path (`pods[3].requests.memory`,
`pools[0].size.max`); more than 200,000 pods or 1,000 pools, or more than 2,000
distinct pod shapes (200,000 shape × pool pairs), is `RequestTooLarge`.
Unknown fields are ignored (the contract may add fields).

Required: `schema` ("decide/v1"), `now` (RFC 3339), `pods` (list), `pools` (list);
each pod's `uid`; each pool's `id`, `allocatable`, `size.max` and `pricePerHour`.
Defaults for optional fields:
- request: `cluster` {}; no `eci` object means ECI is disabled; `policy` fields below.
- pod: `namespace`/`name` "", `labels`/`annotations`/`nodeSelector`/`affinity` {},
  `requests` {} (a best-effort pod), `tolerations` [], `volumeTypes` [],
  `hostNetwork`/`privileged` false, `unschedulableSince`/`message` null, `anticipated`
  false (a worker a RayCluster wants that has no pod yet; decided like a pod);
  annotation `ray-ack-scaler/placement` "auto"; annotation `k8s.aliyun.com/eci-use-specs`
  none (a value ECI would not take makes the pod ineligible for ECI, not the request invalid).
- pool: `name` = id, `instanceType` "", `labels` {}, `taints` [], `size.min` 0,
  `size.desired` 0, `size.ready` 0, `scalingSince`/`lastError` null,
  `bootSeconds` 90, `priority` 0; `allocatable.pods` 110 (the kubelet's default
  max-pods) when absent; no `ackAutoscaler` (the agent manages the pool; with it, ACK's
  autoscaler does, `scanIntervalSeconds` 30).
- eci: `enabled` false, `labels` {"type": "virtual-kubelet"}, `taints` the
  virtual-kubelet.io/provider=alibabacloud:NoSchedule taint, prices 0.000049
  CNY/vCPU·s and 0.00000613 CNY/GiB·s, `startSeconds` 30, `maxPods` null (no cap),
  `runningPods` 0, `maxPodCpu` "64", `maxPodMemory` "512Gi"; the specs pods are rounded up
  to are those ECI offers in `cluster.region` (`functions.eci_specs`).
- policy: `strategy` "cost", `latencyBudgetSeconds` 120, `expectedRunSeconds` 600,
  `maxNewNodesPerDecision` 100, `maxProvisionSeconds` 600, no `nodeQuota` (no
  cluster-wide cap; with `{limit, nodes}` new nodes stop at `limit - nodes`), no
  `maxDecisionSeconds` (the caller's own time limit only; `functions.deadline`).

Pods with identical decision-relevant fields are validated once, at the first
pod that carries them, so the cost per pod is a handful of dictionary lookups.
"""

from __future__ import annotations

from functions import readers
from functions.contract import (
    ACK_AUTOSCALER,
    DECIDE_SCHEMA,
    DEFAULT_STRATEGY,
    ECI_NODE_LABELS,
    ECI_TAINT,
    ECI_USE_SPECS_ANNOTATION,
    PLACEMENT_ANNOTATION,
    PLACEMENT_AUTO,
    STRATEGIES,
)
from functions.deadline import requested_seconds
from functions.eci_specs import table_for
from functions.errors import InvalidRequest, RequestTooLarge
from functions.quantity import parse_resources
from functions.scaleout.model import Eci, PodGroup, PodShape, Policy, Pool, Request

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_PODS = 200_000
MAX_POOLS = 1_000
# Planning costs grow with distinct pod shapes × pools (and a little faster in shapes),
# not with pods; these bounds keep the worst request near a second instead of minutes.
MAX_SHAPES = 2_000
MAX_SHAPE_POOL_PAIRS = 200_000

DEFAULT_MAX_PODS_PER_NODE = 110_000  # milli-units
_PROVISIONING = "provisioning"
# cluster-autoscaler's --scan-interval on ACK's managed node autoscaling: 30 s (10 s upstream).
DEFAULT_ACK_SCAN_SECONDS = 30


def parse_request(raw: object) -> Request:
    """Validate a decoded decide/v1 request; raise InvalidRequest / RequestTooLarge."""
    raw, now = readers.envelope(raw, schema=DECIDE_SCHEMA)
    raw_pods = readers.required(raw, "pods", "")
    raw_pools = readers.required(raw, "pools", "")
    if not isinstance(raw_pods, list):
        raise InvalidRequest(f"expected a list, got {readers.kind(raw_pods)}", path="pods")
    if not isinstance(raw_pools, list):
        raise InvalidRequest(f"expected a list, got {readers.kind(raw_pools)}", path="pools")
    if len(raw_pods) > MAX_PODS:
        raise RequestTooLarge(
            f"{len(raw_pods)} pods exceed the limit of {MAX_PODS} per decision; split the batch",
            path="pods",
        )
    if len(raw_pools) > MAX_POOLS:
        raise RequestTooLarge(
            f"{len(raw_pools)} pools exceed the limit of {MAX_POOLS} per decision",
            path="pools",
        )
    cluster = readers.cluster(raw)
    raw_policy = readers.optional_object(raw, "policy", "")
    policy = _policy(raw_policy)
    pools = _pools(raw_pools, now=now, policy=policy)
    eci = _eci(raw.get("eci"), region=cluster.get("region"))
    uids, groups = _pods(raw_pods)
    if len(groups) > MAX_SHAPES or len(groups) * len(pools) > MAX_SHAPE_POOL_PAIRS:
        raise RequestTooLarge(
            f"{len(groups)} distinct pod shapes (requests, selectors, tolerations, placement) "
            f"against {len(pools)} pools exceed the limits of {MAX_SHAPES} shapes and "
            f"{MAX_SHAPE_POOL_PAIRS} shape-pool pairs per decision; split the batch",
            path="pods",
        )
    fingerprint = _fingerprint(
        cluster=cluster, pools=pools, eci=eci, policy=policy, uids=uids, groups=groups
    )
    return Request(
        uids=uids,
        groups=groups,
        pools=pools,
        eci=eci,
        policy=policy,
        fingerprint=fingerprint,
        max_decision_seconds=requested_seconds(raw_policy),
    )


# --- pods ---------------------------------------------------------------------------------

_NO_MAP: dict[str, Any] = {}
_NO_LIST: list[Any] = []
_TEXT_OR_NULL = (str, type(None))
_BOOL_OR_NULL = (bool, type(None))


def _pods(raw_pods: list[Any]) -> tuple[tuple[str, ...], tuple[PodGroup, ...]]:
    # The one loop that runs per pod (up to 200,000 times): plain lookups, no calls that can
    # be avoided. Each distinct raw shape is validated once, at the first pod that has it.
    uids: list[str] = []
    seen: set[str] = set()
    # Raw key -> (shape, positions): one lookup per pod; raw keys that normalise to the same
    # shape (e.g. "1" and "1000m") are merged once at the end.
    # The third item: the value types of the bucket's requests when one is not a string.
    buckets: dict[tuple[object, ...], tuple[PodShape, list[int], tuple[type, ...] | None]] = {}
    for index, pod in enumerate(raw_pods):
        if type(pod) is not dict:
            raise InvalidRequest(
                f"expected an object, got {readers.kind(pod)}", path=f"pods[{index}]"
            )
        get = pod.get
        uid = get("uid")
        if type(uid) is not str or not uid or uid in seen:
            raise _bad_uid(uid, index, uids)
        seen.add(uid)
        uids.append(uid)
        annotated = _annotations_key(pod, index)
        # An exact stand-in for the shape: equal keys mean equal raw values. The maps and
        # lists Ray groups repeat become tuples of their items (hashing beats repr); repr()
        # keeps anything else exact, and the empty containers skip both.
        requests = get("requests")
        selector = get("nodeSelector")
        affinity = get("affinity")
        tolerations = get("tolerations")
        volume_types = get("volumeTypes")
        host_network = get("hostNetwork")
        privileged = get("privileged")
        try:
            key: tuple[object, ...] = (
                annotated,
                (*requests.items(),) if type(requests) is dict else repr(requests),
                0
                if selector == _NO_MAP
                else (*selector.items(),)
                if type(selector) is dict
                else repr(selector),
                0 if affinity == _NO_MAP else repr(affinity),
                0
                if tolerations == _NO_LIST
                else (*map(tuple, map(dict.items, tolerations)),)
                if type(tolerations) is list
                else repr(tolerations),
                (*volume_types,) if type(volume_types) is list else repr(volume_types),
                host_network if host_network is False else repr(host_network),
                privileged if privileged is False else repr(privileged),
            )
            bucket = buckets.get(key)
        except (TypeError, AttributeError):
            # Unhashable values or non-objects in a list: the exact text instead.
            key = (
                annotated,
                repr(requests),
                repr(selector),
                repr(affinity),
                repr(tolerations),
                repr(volume_types),
                repr(host_network),
                repr(privileged),
            )
            bucket = buckets.get(key)
        if bucket is not None and bucket[2] is not None and type(requests) is dict:
            # The bucket's requests hold numbers, and True == 1 as a key: its value types must
            # match too (only requests may hold numbers; selectors and lists hold strings).
            types = (*map(type, requests.values()),)
            if types != bucket[2]:
                key = (key, types)
                bucket = buckets.get(key)
        if bucket is None:
            shape = _shape(pod, index)
            typed = None
            if type(requests) is dict and any(type(v) is not str for v in requests.values()):
                typed = (*map(type, requests.values()),)
            buckets[key] = (shape, [index], typed)
        else:
            bucket[1].append(index)
    shapes: dict[str, PodShape] = {}
    members: dict[str, list[int]] = {}
    for shape, indices, _ in buckets.values():
        shapes.setdefault(shape.key, shape)
        members.setdefault(shape.key, []).extend(indices)
    groups = tuple(
        PodGroup(shape=shapes[key], indices=tuple(sorted(members[key]))) for key in sorted(members)
    )
    return tuple(uids), groups


def _annotations_key(pod: dict[str, Any], index: int) -> object:
    """The annotations a decision reads, once the pod's metadata are strings, as a grouping key:
    the placement annotation (None when absent), paired with eci-use-specs when that is set."""
    get = pod.get
    if (
        type(get("namespace")) not in _TEXT_OR_NULL
        or type(get("name")) not in _TEXT_OR_NULL
        or type(get("unschedulableSince")) not in _TEXT_OR_NULL
        or type(get("message")) not in _TEXT_OR_NULL
        or type(get("anticipated")) not in _BOOL_OR_NULL
    ):
        _bad_metadata(pod, index)
    labels = get("labels")
    if labels is not None:
        if type(labels) is not dict:
            _bad_metadata(pod, index)
        for value in labels.values():
            if type(value) is not str:
                _bad_metadata(pod, index)
    annotations = get("annotations")
    if annotations is None:
        return None
    if type(annotations) is not dict:
        _bad_metadata(pod, index)
    for value in annotations.values():
        if type(value) is not str:
            _bad_metadata(pod, index)
    if not annotations:
        return None
    use_specs = annotations.get(ECI_USE_SPECS_ANNOTATION)
    placement = annotations.get(PLACEMENT_ANNOTATION)
    # A pair only for the few pods that pin ECI specs: every other key stays as it was.
    return placement if use_specs is None else (placement, use_specs)


def _bad_uid(uid: object, index: int, uids: list[str]) -> InvalidRequest:
    if type(uid) is not str or not uid:
        return InvalidRequest("uid must be a non-empty string", path=f"pods[{index}].uid")
    return InvalidRequest(
        f"duplicate pod uid {uid!r} (also pods[{uids.index(uid)}])", path=f"pods[{index}].uid"
    )


def _bad_metadata(pod: dict[str, Any], index: int) -> NoReturn:
    anticipated = pod.get("anticipated")
    if anticipated is not None and type(anticipated) is not bool:
        raise InvalidRequest(
            f"expected a boolean, got {readers.kind(anticipated)}",
            path=f"pods[{index}].anticipated",
        )
    for name in ("namespace", "name", "unschedulableSince", "message"):
        value = pod.get(name)
        if value is not None and type(value) is not str:
            raise InvalidRequest(
                f"expected a string, got {readers.kind(value)}", path=f"pods[{index}].{name}"
            )
    for name in ("labels", "annotations"):
        value = pod.get(name)
        if value is None:
            continue
        if type(value) is not dict:
            raise InvalidRequest(
                f"expected an object, got {readers.kind(value)}", path=f"pods[{index}].{name}"
            )
        for key, item in value.items():
            if type(item) is not str:
                raise InvalidRequest(
                    f"expected a string, got {readers.kind(item)}",
                    path=f"pods[{index}].{name}.{key}",
                )
    raise InvalidRequest("invalid pod metadata", path=f"pods[{index}]")


def _shape(pod: dict[str, Any], index: int) -> PodShape:
    path = f"pods[{index}]"
    annotations = pod.get("annotations") or _NO_MAP
    placement = annotations.get(PLACEMENT_ANNOTATION)
    use_specs = annotations.get(ECI_USE_SPECS_ANNOTATION, "").strip()
    raw_requests = pod.get("requests")
    requests = (
        {} if raw_requests is None else parse_resources(raw_requests, path=f"{path}.requests")
    )
    node_selector = readers.string_map(pod.get("nodeSelector"), path=f"{path}.nodeSelector")
    affinity = readers.affinity(pod.get("affinity"), path=f"{path}.affinity")
    tolerations = readers.tolerations(pod.get("tolerations"), path=f"{path}.tolerations")
    host_network = readers.boolean(pod.get("hostNetwork"), path=f"{path}.hostNetwork")
    privileged = readers.boolean(pod.get("privileged"), path=f"{path}.privileged")
    volume_types = readers.string_list(pod.get("volumeTypes"), path=f"{path}.volumeTypes")
    chosen = PLACEMENT_AUTO if placement is None else str(placement)
    normal = {
        "requests": sorted(requests.items()),
        "nodeSelector": sorted(node_selector.items()),
        "affinity": affinity,
        "tolerations": sorted(readers.canonical(t) for t in tolerations),
        "hostNetwork": host_network,
        "volumeTypes": sorted(set(volume_types)),
        "privileged": privileged,
        "placement": chosen,
    }
    if use_specs:
        # Only when set, so the keys (and decisionIds) of pods without it do not change.
        normal["eciUseSpecs"] = use_specs
    return PodShape(
        requests=requests,
        node_selector=node_selector,
        affinity=affinity,
        tolerations=tolerations,
        host_network=host_network,
        volume_types=tuple(sorted(set(volume_types))),
        privileged=privileged,
        placement=chosen,
        eci_use_specs=use_specs,
        key=readers.canonical(normal),
    )


# --- pools --------------------------------------------------------------------------------


def _pools(raw_pools: list[Any], *, now: float, policy: Policy) -> tuple[Pool, ...]:
    pools: list[Pool] = []
    for path, raw, pool_id in readers.keyed_objects(
        raw_pools, path="pools", key="id", noun="pool id"
    ):
        pools.append(_pool(raw, pool_id=pool_id, path=path, now=now, policy=policy))
    return tuple(pools)


def _pool(raw: dict[str, Any], *, pool_id: str, path: str, now: float, policy: Policy) -> Pool:
    allocatable = parse_resources(
        readers.required(raw, "allocatable", path), path=f"{path}.allocatable"
    )
    allocatable.setdefault("pods", DEFAULT_MAX_PODS_PER_NODE)
    size = readers.required(raw, "size", path)
    if not isinstance(size, dict):
        raise InvalidRequest(f"expected an object, got {readers.kind(size)}", path=f"{path}.size")
    max_size = readers.count(readers.required(size, "max", f"{path}.size"), path=f"{path}.size.max")
    min_size = readers.count(size.get("min", 0), path=f"{path}.size.min")
    desired = readers.count(size.get("desired", 0), path=f"{path}.size.desired")
    ready = readers.count(size.get("ready", 0), path=f"{path}.size.ready")
    if min_size > max_size:
        raise InvalidRequest(f"min {min_size} is above max {max_size}", path=f"{path}.size.min")
    if not min_size <= desired <= max_size:
        raise InvalidRequest(
            f"desired {desired} is outside [min {min_size}, max {max_size}]",
            path=f"{path}.size.desired",
        )
    scaling_since = raw.get("scalingSince")
    last_error = raw.get("lastError")
    if last_error is not None and not isinstance(last_error, str):
        raise InvalidRequest(
            f"expected a string or null, got {readers.kind(last_error)}", path=f"{path}.lastError"
        )
    skipped = ""
    if last_error:
        skipped = f"last error: {last_error}"
    elif scaling_since is not None:
        since = readers.timestamp(scaling_since, path=f"{path}.scalingSince")
        waited = now - since
        if waited > policy.max_provision_seconds:
            skipped = (
                f"{_PROVISIONING} for {waited:.0f}s, over maxProvisionSeconds "
                f"{policy.max_provision_seconds:g}"
            )
    name = raw.get("name", pool_id)
    if not isinstance(name, str):
        raise InvalidRequest(f"expected a string, got {readers.kind(name)}", path=f"{path}.name")
    instance_type = raw.get("instanceType", "")
    if not isinstance(instance_type, str):
        raise InvalidRequest(
            f"expected a string, got {readers.kind(instance_type)}", path=f"{path}.instanceType"
        )
    priority = raw.get("priority", 0)
    if type(priority) is not int:
        raise InvalidRequest(
            f"expected an integer, got {readers.kind(priority)}", path=f"{path}.priority"
        )
    return Pool(
        id=pool_id,
        name=name,
        instance_type=instance_type,
        allocatable=allocatable,
        labels=readers.string_map(raw.get("labels"), path=f"{path}.labels"),
        taints=readers.taints(raw.get("taints"), path=f"{path}.taints"),
        min_size=min_size,
        max_size=max_size,
        desired=desired,
        ready=ready,
        skipped=skipped,
        boot_seconds=readers.seconds(raw.get("bootSeconds", 90), path=f"{path}.bootSeconds"),
        price_per_hour=readers.price(
            readers.required(raw, "pricePerHour", path), path=f"{path}.pricePerHour"
        ),
        priority=priority,
        scan_seconds=_ack_scan_seconds(raw.get(ACK_AUTOSCALER), path=f"{path}.{ACK_AUTOSCALER}"),
    )


def _ack_scan_seconds(raw: object, *, path: str) -> float | None:
    """`pools[].ackAutoscaler` {scanIntervalSeconds}: ACK's autoscaler owns the pool and scans
    this often; None (absent or null) when the agent manages the pool."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {readers.kind(raw)}", path=path)
    return readers.seconds(
        raw.get("scanIntervalSeconds", DEFAULT_ACK_SCAN_SECONDS),
        path=f"{path}.scanIntervalSeconds",
    )


# --- eci and policy -----------------------------------------------------------------------


def _eci(raw: object, *, region: object) -> Eci:
    if raw is None:
        raw = {"enabled": False}
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {readers.kind(raw)}", path="eci")
    max_pods = raw.get("maxPods")
    running = readers.count(raw.get("runningPods", 0), path="eci.runningPods", limit=10**7)
    free_slots = None
    if max_pods is not None:
        free_slots = max(0, readers.count(max_pods, path="eci.maxPods", limit=10**7) - running)
    taints = raw.get("taints")
    return Eci(
        enabled=readers.boolean(raw.get("enabled"), path="eci.enabled"),
        labels=readers.string_map(raw.get("labels", ECI_NODE_LABELS), path="eci.labels"),
        taints=readers.taints([ECI_TAINT] if taints is None else taints, path="eci.taints"),
        price_per_vcpu_second=readers.price(
            raw.get("pricePerVcpuSecond", 0.000049), path="eci.pricePerVcpuSecond"
        ),
        price_per_gib_second=readers.price(
            raw.get("pricePerGibSecond", 0.00000613), path="eci.pricePerGibSecond"
        ),
        start_seconds=readers.seconds(raw.get("startSeconds", 30), path="eci.startSeconds"),
        free_slots=free_slots,
        max_pod_cpu=readers.nonnegative_quantity(raw.get("maxPodCpu", "64"), path="eci.maxPodCpu"),
        max_pod_memory=readers.nonnegative_quantity(
            raw.get("maxPodMemory", "512Gi"), path="eci.maxPodMemory"
        ),
        specs=table_for(region),
    )


def _policy(raw: dict[str, Any]) -> Policy:
    strategy = raw.get("strategy", DEFAULT_STRATEGY)
    if strategy not in STRATEGIES:
        raise InvalidRequest(
            f"unknown strategy {strategy!r}, expected one of {list(STRATEGIES)}",
            path="policy.strategy",
        )
    return Policy(
        strategy=strategy,
        latency_budget_seconds=readers.seconds(
            raw.get("latencyBudgetSeconds", 120), path="policy.latencyBudgetSeconds"
        ),
        expected_run_seconds=readers.seconds(
            raw.get("expectedRunSeconds", 600), path="policy.expectedRunSeconds"
        ),
        max_new_nodes_per_decision=readers.count(
            raw.get("maxNewNodesPerDecision", 100), path="policy.maxNewNodesPerDecision"
        ),
        max_provision_seconds=readers.seconds(
            raw.get("maxProvisionSeconds", 600), path="policy.maxProvisionSeconds"
        ),
        **_node_quota(readers.optional_object(raw, "nodeQuota", "policy")),
    )


def _node_quota(raw: dict[str, Any]) -> dict[str, Any]:
    """`policy.nodeQuota` {limit, nodes}: the cluster's node quota and the nodes it counts."""
    if not raw:
        return {}
    return {
        "node_quota": readers.count(raw.get("limit"), path="policy.nodeQuota.limit"),
        "cluster_nodes": readers.count(raw.get("nodes", 0), path="policy.nodeQuota.nodes"),
    }


# --- decisionId input ---------------------------------------------------------------------


def _fingerprint(
    *,
    cluster: dict[str, Any],
    pools: tuple[Pool, ...],
    eci: Eci,
    policy: Policy,
    uids: tuple[str, ...],
    groups: tuple[PodGroup, ...],
) -> str:
    # Normalised values, not the raw text: key order, quantity spelling and fields the
    # decision never reads (pod names, labels, messages) do not change the id; `now` enters
    # only through whether each pool is skipped.
    head = readers.canonical(
        {
            "schema": DECIDE_SCHEMA,
            "cluster": cluster,
            "pools": [{**_pool_fields(pool), "skipped": _skip_token(pool)} for pool in pools],
            # The spec table follows cluster.region, already part of the id.
            "eci": {k: v for k, v in _fields(eci).items() if k != "specs"},
            "policy": _fields(policy),
            "groups": [group.shape.key for group in groups],
        }
    )
    members = "\n".join(" ".join(map(uids.__getitem__, group.indices)) for group in groups)
    return f"{head}\n{members}"


def _fields(value: Pool | Eci | Policy) -> dict[str, Any]:
    # The model's classes are slotted (no __dict__ for vars()); canonical JSON sorts the keys.
    return {name: getattr(value, name) for name in value.__slots__}


def _pool_fields(pool: Pool) -> dict[str, Any]:
    fields = _fields(pool)
    # Derived from bootSeconds and the scan interval, both already there.
    del fields["start_seconds"]
    if pool.scan_seconds is None:
        # A managed pool's fields are what they were before companion pools: same decisionId.
        del fields["scan_seconds"]
    return fields


def _skip_token(pool: Pool) -> str:
    # The timeout text carries the seconds waited, which move with `now`; only the fact of
    # the timeout belongs in the id (a last error's text is request content and stays).
    if pool.skipped.startswith(_PROVISIONING):
        return "provisioning timed out"
    return pool.skipped

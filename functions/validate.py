"""Validation of a raw decide/v1 request into frozen values (`functions.model`).

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
  `hostNetwork`/`privileged` false, `unschedulableSince`/`message` null;
  annotation `ray-ack-scaler/placement` "auto".
- pool: `name` = id, `instanceType` "", `labels` {}, `taints` [], `size.min` 0,
  `size.desired` 0, `size.ready` 0, `scalingSince`/`lastError` null,
  `bootSeconds` 90, `priority` 0; `allocatable.pods` 110 (the kubelet's default
  max-pods) when absent.
- eci: `enabled` false, `labels` {"type": "virtual-kubelet"}, `taints` the
  virtual-kubelet.io/provider=alibabacloud:NoSchedule taint, prices 0.000049
  CNY/vCPU·s and 0.00000613 CNY/GiB·s, `startSeconds` 30, `maxPods` null (no cap),
  `runningPods` 0, `maxPodCpu` "64", `maxPodMemory` "512Gi".
- policy: `strategy` "cost", `latencyBudgetSeconds` 120, `expectedRunSeconds` 600,
  `maxNewNodesPerDecision` 100, `maxProvisionSeconds` 600.

Pods with identical decision-relevant fields are validated once, at the first
pod that carries them, so the cost per pod is a handful of dictionary lookups.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

from functions.errors import InvalidRequest, RequestTooLarge
from functions.model import (
    PLACEMENT_ANNOTATION,
    STRATEGIES,
    Eci,
    PodGroup,
    PodShape,
    Policy,
    Pool,
    Request,
)
from functions.quantity import parse_quantity, parse_resources

SCHEMA = "decide/v1"
MAX_PODS = 200_000
MAX_POOLS = 1_000
# Planning costs grow with distinct pod shapes × pools (and a little faster in shapes),
# not with pods; these bounds keep the worst request near a second instead of minutes.
MAX_SHAPES = 2_000
MAX_SHAPE_POOL_PAIRS = 200_000
# Larger than any real pool or wait, small enough to catch unit mistakes (ms for s).
MAX_POOL_SIZE = 100_000
MAX_SECONDS = 30 * 24 * 3600.0
MAX_PRICE = 1e6

PLACEMENTS = ("auto", "ecs", "eci")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
DEFAULT_ECI_TAINT: Mapping[str, Any] = {
    "key": "virtual-kubelet.io/provider",
    "value": "alibabacloud",
    "effect": "NoSchedule",
}
DEFAULT_MAX_PODS_PER_NODE = 110_000  # milli-units
_PROVISIONING = "provisioning"

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_request(raw: object) -> Request:
    """Validate a decoded decide/v1 request; raise InvalidRequest / RequestTooLarge."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"the request must be a JSON object, got {_kind(raw)}", path="")
    schema = raw.get("schema")
    if schema != SCHEMA:
        raise InvalidRequest(f"unknown schema {schema!r}, expected {SCHEMA!r}", path="schema")
    now = _timestamp(_required(raw, "now", ""), path="now")
    raw_pods = _required(raw, "pods", "")
    raw_pools = _required(raw, "pools", "")
    if not isinstance(raw_pods, list):
        raise InvalidRequest(f"expected a list, got {_kind(raw_pods)}", path="pods")
    if not isinstance(raw_pools, list):
        raise InvalidRequest(f"expected a list, got {_kind(raw_pools)}", path="pools")
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
    cluster = _optional_object(raw, "cluster", "")
    try:
        _canonical(cluster)
    except (TypeError, ValueError):
        raise InvalidRequest("cluster must hold plain JSON values", path="cluster") from None
    policy = _policy(_optional_object(raw, "policy", ""))
    pools = _pools(raw_pools, now=now, policy=policy)
    eci = _eci(raw.get("eci"))
    uids, groups = _pods(raw_pods)
    if len(groups) > MAX_SHAPES or len(groups) * len(pools) > MAX_SHAPE_POOL_PAIRS:
        raise RequestTooLarge(
            f"{len(groups)} distinct pod shapes (requests, selectors, tolerations, placement) "
            f"against {len(pools)} pools exceed the limits of {MAX_SHAPES} shapes and "
            f"{MAX_SHAPE_POOL_PAIRS} shape-pool pairs per decision; split the batch",
            path="pods",
        )
    fingerprint = _fingerprint(cluster=cluster, pools=pools, eci=eci, policy=policy,
                               uids=uids, groups=groups)
    return Request(uids=uids, groups=groups, pools=pools, eci=eci, policy=policy,
                   fingerprint=fingerprint)


# --- pods ---------------------------------------------------------------------------------

_NO_MAP: dict[str, Any] = {}
_NO_LIST: list[Any] = []
_TEXT_OR_NULL = (str, type(None))


def _pods(raw_pods: list[Any]) -> tuple[tuple[str, ...], tuple[PodGroup, ...]]:
    # The one loop that runs per pod (up to 200,000 times): plain lookups, no calls that can
    # be avoided. Each distinct raw shape is validated once, at the first pod that has it.
    uids: list[str] = []
    seen: set[str] = set()
    # Raw key -> (shape, positions): one lookup per pod; raw keys that normalise to the same
    # shape (e.g. "1" and "1000m") are merged once at the end.
    buckets: dict[tuple[object, ...], tuple[PodShape, list[int]]] = {}
    for index, pod in enumerate(raw_pods):
        if type(pod) is not dict:
            raise InvalidRequest(f"expected an object, got {_kind(pod)}", path=f"pods[{index}]")
        get = pod.get
        uid = get("uid")
        if type(uid) is not str or not uid or uid in seen:
            raise _bad_uid(uid, index, uids)
        seen.add(uid)
        uids.append(uid)
        if (type(get("namespace")) not in _TEXT_OR_NULL or type(get("name")) not in _TEXT_OR_NULL
                or type(get("unschedulableSince")) not in _TEXT_OR_NULL
                or type(get("message")) not in _TEXT_OR_NULL):
            _bad_metadata(pod, index)
        labels = get("labels")
        annotations = get("annotations")
        placement = None
        if labels is not None:
            if type(labels) is not dict:
                _bad_metadata(pod, index)
            for value in labels.values():
                if type(value) is not str:
                    _bad_metadata(pod, index)
        if annotations is not None:
            if type(annotations) is not dict:
                _bad_metadata(pod, index)
            for value in annotations.values():
                if type(value) is not str:
                    _bad_metadata(pod, index)
            placement = annotations.get(PLACEMENT_ANNOTATION)
        # An exact stand-in for the shape: equal keys mean equal raw values. repr() keeps
        # 1, 1.0, True and "1" apart; the empty containers, by far the most common, skip it.
        selector = get("nodeSelector")
        affinity = get("affinity")
        tolerations = get("tolerations")
        host_network = get("hostNetwork")
        privileged = get("privileged")
        key = (
            placement,
            repr(get("requests")),
            0 if selector == _NO_MAP else repr(selector),
            0 if affinity == _NO_MAP else repr(affinity),
            0 if tolerations == _NO_LIST else repr(tolerations),
            repr(get("volumeTypes")),
            host_network if host_network is False else repr(host_network),
            privileged if privileged is False else repr(privileged),
        )
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = (_shape(pod, index, placement), [index])
        else:
            bucket[1].append(index)
    shapes: dict[str, PodShape] = {}
    members: dict[str, list[int]] = {}
    for shape, indices in buckets.values():
        shapes.setdefault(shape.key, shape)
        members.setdefault(shape.key, []).extend(indices)
    groups = tuple(
        PodGroup(shape=shapes[key], indices=tuple(sorted(members[key])))
        for key in sorted(members)
    )
    return tuple(uids), groups


def _bad_uid(uid: object, index: int, uids: list[str]) -> InvalidRequest:
    if type(uid) is not str or not uid:
        return InvalidRequest("uid must be a non-empty string", path=f"pods[{index}].uid")
    return InvalidRequest(f"duplicate pod uid {uid!r} (also pods[{uids.index(uid)}])",
                         path=f"pods[{index}].uid")


def _bad_metadata(pod: dict[str, Any], index: int) -> NoReturn:
    for name in ("namespace", "name", "unschedulableSince", "message"):
        value = pod.get(name)
        if value is not None and type(value) is not str:
            raise InvalidRequest(f"expected a string, got {_kind(value)}",
                                 path=f"pods[{index}].{name}")
    for name in ("labels", "annotations"):
        value = pod.get(name)
        if value is None:
            continue
        if type(value) is not dict:
            raise InvalidRequest(f"expected an object, got {_kind(value)}",
                                 path=f"pods[{index}].{name}")
        for key, item in value.items():
            if type(item) is not str:
                raise InvalidRequest(f"expected a string, got {_kind(item)}",
                                     path=f"pods[{index}].{name}.{key}")
    raise InvalidRequest("invalid pod metadata", path=f"pods[{index}]")


def _shape(pod: dict[str, Any], index: int, placement: object) -> PodShape:
    path = f"pods[{index}]"
    raw_requests = pod.get("requests")
    requests = {} if raw_requests is None else parse_resources(raw_requests,
                                                               path=f"{path}.requests")
    node_selector = _string_map(pod.get("nodeSelector"), path=f"{path}.nodeSelector")
    affinity = _affinity(pod.get("affinity"), path=f"{path}.affinity")
    tolerations = _tolerations(pod.get("tolerations"), path=f"{path}.tolerations")
    host_network = _bool(pod.get("hostNetwork"), path=f"{path}.hostNetwork")
    privileged = _bool(pod.get("privileged"), path=f"{path}.privileged")
    volume_types = _string_list(pod.get("volumeTypes"), path=f"{path}.volumeTypes")
    chosen = "auto" if placement is None else str(placement)
    normal = {
        "requests": sorted(requests.items()),
        "nodeSelector": sorted(node_selector.items()),
        "affinity": affinity,
        "tolerations": sorted(_canonical(t) for t in tolerations),
        "hostNetwork": host_network,
        "volumeTypes": sorted(set(volume_types)),
        "privileged": privileged,
        "placement": chosen,
    }
    return PodShape(
        requests=requests,
        node_selector=node_selector,
        affinity=affinity,
        tolerations=tolerations,
        host_network=host_network,
        volume_types=tuple(sorted(set(volume_types))),
        privileged=privileged,
        placement=chosen,
        key=_canonical(normal),
    )


def _affinity(raw: object, *, path: str) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {_kind(raw)}", path=path)
    node_affinity = raw.get("nodeAffinity")
    if node_affinity is None:
        return None
    path = f"{path}.nodeAffinity"
    if not isinstance(node_affinity, dict):
        raise InvalidRequest(f"expected an object, got {_kind(node_affinity)}", path=path)
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    path = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
    if not isinstance(required, dict):
        raise InvalidRequest(f"expected an object, got {_kind(required)}", path=path)
    terms = required.get("nodeSelectorTerms")
    path = f"{path}.nodeSelectorTerms"
    if terms is None:
        terms = []
    if not isinstance(terms, list):
        raise InvalidRequest(f"expected a list, got {_kind(terms)}", path=path)
    clean_terms = [_term(term, path=f"{path}[{i}]") for i, term in enumerate(terms)]
    # Only the binding part is kept: preferred terms and pod (anti-)affinity never decide.
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                             {"nodeSelectorTerms": clean_terms}}}


def _term(raw: object, *, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {_kind(raw)}", path=path)
    term: dict[str, Any] = {}
    for field in ("matchExpressions", "matchFields"):
        expressions = raw.get(field)
        if expressions is None:
            continue
        where = f"{path}.{field}"
        if not isinstance(expressions, list):
            raise InvalidRequest(f"expected a list, got {_kind(expressions)}", path=where)
        term[field] = [_expression(e, path=f"{where}[{i}]") for i, e in enumerate(expressions)]
    return term


def _expression(raw: object, *, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {_kind(raw)}", path=path)
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidRequest("key must be a non-empty string", path=f"{path}.key")
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise InvalidRequest(f"unknown operator {operator!r}, expected one of {list(OPERATORS)}",
                             path=f"{path}.operator")
    values = _string_list(raw.get("values"), path=f"{path}.values")
    # The API server's own rules, so a request can't hold a pod Kubernetes would refuse.
    if operator in ("In", "NotIn") and not values:
        raise InvalidRequest(f"{operator} needs at least one value", path=f"{path}.values")
    if operator in ("Exists", "DoesNotExist") and values:
        raise InvalidRequest(f"{operator} takes no values", path=f"{path}.values")
    if operator in ("Gt", "Lt") and (len(values) != 1 or not _is_int_text(values[0])):
        raise InvalidRequest(f"{operator} needs exactly one integer value",
                             path=f"{path}.values")
    return {"key": key, "operator": operator, "values": list(values)}


def _is_int_text(text: str) -> bool:
    digits = text[1:] if text[:1] in ("+", "-") else text
    return bool(digits) and digits.isascii() and digits.isdigit()


def _tolerations(raw: object, *, path: str) -> tuple[Mapping[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest(f"expected a list, got {_kind(raw)}", path=path)
    clean = []
    for i, toleration in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(toleration, dict):
            raise InvalidRequest(f"expected an object, got {_kind(toleration)}", path=where)
        for name in ("key", "operator", "value", "effect"):
            value = toleration.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"expected a string, got {_kind(value)}",
                                     path=f"{where}.{name}")
        if toleration.get("operator") not in (None, "", "Exists", "Equal"):
            raise InvalidRequest(f"unknown operator {toleration['operator']!r}",
                                 path=f"{where}.operator")
        if toleration.get("effect") not in (None, "", *TAINT_EFFECTS):
            raise InvalidRequest(f"unknown effect {toleration['effect']!r}",
                                 path=f"{where}.effect")
        clean.append({name: toleration[name] for name in ("key", "operator", "value", "effect")
                      if toleration.get(name)})
    return tuple(clean)


def _taints(raw: object, *, path: str) -> tuple[Mapping[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest(f"expected a list, got {_kind(raw)}", path=path)
    clean = []
    for i, taint in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(taint, dict):
            raise InvalidRequest(f"expected an object, got {_kind(taint)}", path=where)
        key = taint.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidRequest("key must be a non-empty string", path=f"{where}.key")
        value = taint.get("value")
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"expected a string, got {_kind(value)}", path=f"{where}.value")
        effect = taint.get("effect")
        if effect not in TAINT_EFFECTS:
            raise InvalidRequest(f"unknown effect {effect!r}, expected one of "
                                 f"{list(TAINT_EFFECTS)}", path=f"{where}.effect")
        clean.append({"key": key, "value": value or "", "effect": effect})
    return tuple(clean)


# --- pools --------------------------------------------------------------------------------

def _pools(raw_pools: list[Any], *, now: float, policy: Policy) -> tuple[Pool, ...]:
    pools: list[Pool] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_pools):
        path = f"pools[{index}]"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"expected an object, got {_kind(raw)}", path=path)
        pool_id = raw.get("id")
        if not isinstance(pool_id, str) or not pool_id:
            raise InvalidRequest("id must be a non-empty string", path=f"{path}.id")
        if pool_id in seen:
            raise InvalidRequest(f"duplicate pool id {pool_id!r} (also pools[{seen[pool_id]}])",
                                 path=f"{path}.id")
        seen[pool_id] = index
        pools.append(_pool(raw, pool_id=pool_id, path=path, now=now, policy=policy))
    return tuple(pools)


def _pool(raw: dict[str, Any], *, pool_id: str, path: str, now: float, policy: Policy) -> Pool:
    allocatable = parse_resources(_required(raw, "allocatable", path),
                                  path=f"{path}.allocatable")
    allocatable.setdefault("pods", DEFAULT_MAX_PODS_PER_NODE)
    size = _required(raw, "size", path)
    if not isinstance(size, dict):
        raise InvalidRequest(f"expected an object, got {_kind(size)}", path=f"{path}.size")
    max_size = _count(_required(size, "max", f"{path}.size"), path=f"{path}.size.max")
    min_size = _count(size.get("min", 0), path=f"{path}.size.min")
    desired = _count(size.get("desired", 0), path=f"{path}.size.desired")
    ready = _count(size.get("ready", 0), path=f"{path}.size.ready")
    if min_size > max_size:
        raise InvalidRequest(f"min {min_size} is above max {max_size}", path=f"{path}.size.min")
    if not min_size <= desired <= max_size:
        raise InvalidRequest(f"desired {desired} is outside [min {min_size}, max {max_size}]",
                             path=f"{path}.size.desired")
    scaling_since = raw.get("scalingSince")
    last_error = raw.get("lastError")
    if last_error is not None and not isinstance(last_error, str):
        raise InvalidRequest(f"expected a string or null, got {_kind(last_error)}",
                             path=f"{path}.lastError")
    skipped = ""
    if last_error:
        skipped = f"last error: {last_error}"
    elif scaling_since is not None:
        since = _timestamp(scaling_since, path=f"{path}.scalingSince")
        waited = now - since
        if waited > policy.max_provision_seconds:
            skipped = (f"{_PROVISIONING} for {waited:.0f}s, over maxProvisionSeconds "
                       f"{policy.max_provision_seconds:g}")
    name = raw.get("name", pool_id)
    if not isinstance(name, str):
        raise InvalidRequest(f"expected a string, got {_kind(name)}", path=f"{path}.name")
    instance_type = raw.get("instanceType", "")
    if not isinstance(instance_type, str):
        raise InvalidRequest(f"expected a string, got {_kind(instance_type)}",
                             path=f"{path}.instanceType")
    priority = raw.get("priority", 0)
    if type(priority) is not int:
        raise InvalidRequest(f"expected an integer, got {_kind(priority)}",
                             path=f"{path}.priority")
    return Pool(
        id=pool_id,
        name=name,
        instance_type=instance_type,
        allocatable=allocatable,
        labels=_string_map(raw.get("labels"), path=f"{path}.labels"),
        taints=_taints(raw.get("taints"), path=f"{path}.taints"),
        min_size=min_size,
        max_size=max_size,
        desired=desired,
        ready=ready,
        skipped=skipped,
        boot_seconds=_seconds(raw.get("bootSeconds", 90), path=f"{path}.bootSeconds"),
        price_per_hour=_price(_required(raw, "pricePerHour", path),
                              path=f"{path}.pricePerHour"),
        priority=priority,
    )


# --- eci and policy -----------------------------------------------------------------------

def _eci(raw: object) -> Eci:
    if raw is None:
        raw = {"enabled": False}
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {_kind(raw)}", path="eci")
    max_pods = raw.get("maxPods")
    running = _count(raw.get("runningPods", 0), path="eci.runningPods", limit=10**7)
    free_slots = None
    if max_pods is not None:
        free_slots = max(0, _count(max_pods, path="eci.maxPods", limit=10**7) - running)
    taints = raw.get("taints")
    return Eci(
        enabled=_bool(raw.get("enabled"), path="eci.enabled"),
        labels=_string_map(raw.get("labels", {"type": "virtual-kubelet"}), path="eci.labels"),
        taints=_taints([DEFAULT_ECI_TAINT] if taints is None else taints, path="eci.taints"),
        price_per_vcpu_second=_price(raw.get("pricePerVcpuSecond", 0.000049),
                                     path="eci.pricePerVcpuSecond"),
        price_per_gib_second=_price(raw.get("pricePerGibSecond", 0.00000613),
                                    path="eci.pricePerGibSecond"),
        start_seconds=_seconds(raw.get("startSeconds", 30), path="eci.startSeconds"),
        free_slots=free_slots,
        max_pod_cpu=_nonnegative_quantity(raw.get("maxPodCpu", "64"), path="eci.maxPodCpu"),
        max_pod_memory=_nonnegative_quantity(raw.get("maxPodMemory", "512Gi"),
                                             path="eci.maxPodMemory"),
    )


def _policy(raw: dict[str, Any]) -> Policy:
    strategy = raw.get("strategy", "cost")
    if strategy not in STRATEGIES:
        raise InvalidRequest(f"unknown strategy {strategy!r}, expected one of {list(STRATEGIES)}",
                             path="policy.strategy")
    return Policy(
        strategy=strategy,
        latency_budget_seconds=_seconds(raw.get("latencyBudgetSeconds", 120),
                                        path="policy.latencyBudgetSeconds"),
        expected_run_seconds=_seconds(raw.get("expectedRunSeconds", 600),
                                      path="policy.expectedRunSeconds"),
        max_new_nodes_per_decision=_count(raw.get("maxNewNodesPerDecision", 100),
                                          path="policy.maxNewNodesPerDecision"),
        max_provision_seconds=_seconds(raw.get("maxProvisionSeconds", 600),
                                       path="policy.maxProvisionSeconds"),
    )


# --- decisionId input ---------------------------------------------------------------------

def _fingerprint(*, cluster: dict[str, Any], pools: tuple[Pool, ...], eci: Eci, policy: Policy,
                 uids: tuple[str, ...], groups: tuple[PodGroup, ...]) -> str:
    # Normalised values, not the raw text: key order, quantity spelling and fields the
    # decision never reads (pod names, labels, messages) do not change the id; `now` enters
    # only through whether each pool is skipped.
    head = _canonical({
        "schema": SCHEMA,
        "cluster": cluster,
        "pools": [{**vars(pool), "skipped": _skip_token(pool)} for pool in pools],
        "eci": vars(eci),
        "policy": vars(policy),
        "groups": [group.shape.key for group in groups],
    })
    members = "\n".join(
        " ".join(uids[i] for i in group.indices) for group in groups
    )
    return f"{head}\n{members}"


def _skip_token(pool: Pool) -> str:
    # The timeout text carries the seconds waited, which move with `now`; only the fact of
    # the timeout belongs in the id (a last error's text is request content and stays).
    if pool.skipped.startswith(_PROVISIONING):
        return "provisioning timed out"
    return pool.skipped


# --- small typed readers ------------------------------------------------------------------

def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _required(raw: dict[str, Any], name: str, path: str) -> Any:
    if name not in raw or raw[name] is None:
        raise InvalidRequest(f"missing required field {name!r}",
                             path=f"{path}.{name}" if path else name)
    return raw[name]


def _optional_object(raw: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"expected an object, got {_kind(value)}",
                             path=f"{path}.{name}" if path else name)
    return value


def _string_map(raw: object, *, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object of strings, got {_kind(raw)}", path=path)
    for key, value in raw.items():
        if not isinstance(key, str):
            raise InvalidRequest(f"keys must be strings, got {_kind(key)}", path=path)
        if not isinstance(value, str):
            raise InvalidRequest(f"expected a string, got {_kind(value)}", path=f"{path}.{key}")
    return dict(raw)


def _string_list(raw: object, *, path: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest(f"expected a list of strings, got {_kind(raw)}", path=path)
    for i, value in enumerate(raw):
        if not isinstance(value, str):
            raise InvalidRequest(f"expected a string, got {_kind(value)}", path=f"{path}[{i}]")
    return list(raw)


def _bool(raw: object, *, path: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise InvalidRequest(f"expected true or false, got {_kind(raw)}", path=path)
    return raw


def _count(raw: object, *, path: str, limit: int = MAX_POOL_SIZE) -> int:
    if type(raw) is not int:
        raise InvalidRequest(f"expected an integer, got {_kind(raw)}", path=path)
    if not 0 <= raw <= limit:
        raise InvalidRequest(f"{raw} is outside [0, {limit}]", path=path)
    return raw


def _number(raw: object, *, path: str, limit: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidRequest(f"expected a number, got {_kind(raw)}", path=path)
    value = float(raw)
    if not math.isfinite(value) or not 0 <= value <= limit:
        raise InvalidRequest(f"{raw!r} is outside [0, {limit:g}]", path=path)
    return value


def _seconds(raw: object, *, path: str) -> float:
    return _number(raw, path=path, limit=MAX_SECONDS)


def _price(raw: object, *, path: str) -> float:
    return _number(raw, path=path, limit=MAX_PRICE)


def _nonnegative_quantity(raw: object, *, path: str) -> int:
    milli = parse_quantity(raw, path=path)
    if milli < 0:
        raise InvalidRequest(f"negative quantity {raw!r}", path=path)
    return milli


def _timestamp(raw: object, *, path: str) -> float:
    """RFC 3339 time -> seconds since the epoch (Python 3.10's fromisoformat rejects 'Z')."""
    if not isinstance(raw, str):
        raise InvalidRequest(f"expected an RFC 3339 timestamp string, got {_kind(raw)}",
                             path=path)
    match = _TIMESTAMP.fullmatch(raw)
    if match is None:
        raise InvalidRequest(f"invalid RFC 3339 timestamp {raw!r}", path=path)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          tzinfo=timezone.utc)
    except ValueError as error:
        raise InvalidRequest(f"invalid RFC 3339 timestamp {raw!r}: {error}", path=path) from None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    seconds = (moment - _EPOCH).total_seconds()
    if fraction:
        seconds += int(fraction[:9]) / 10 ** len(fraction[:9])
    return seconds


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

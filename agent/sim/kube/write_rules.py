"""The apiserver's write strategies for the resources we serve, as functions over the store:
name and version checks, what an update through the main endpoint or `status` may change,
new-pod and PodDisruptionBudget validation, graceful pod deletion and binding."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from agent.sim.kube import rayclusters
from agent.sim.kube.api_fields import CORE, TYPES
from agent.sim.kube.pod_updates import validate_pod_update
from agent.sim.kube.store import ApiError, ObjectStore, conflict

TERMINAL_PHASES = ("Succeeded", "Failed")
# pkg/apis/policy/validation: the policies and selector operators a policy/v1 PDB may name
UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "In", "NotIn")
_PERCENT = re.compile(r"^[0-9]+%$")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(body: dict[str, Any], name: str, namespace: str | None) -> None:
    meta = body.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise ApiError(
            400,
            "BadRequest",
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})",
        )
    if namespace is not None and meta.get("namespace") and meta["namespace"] != namespace:
        raise ApiError(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        )


def check_version(resource: str, current: dict[str, Any], new: dict[str, Any]) -> None:
    # optimistic concurrency comes before validation, as in the apiserver's GuaranteedUpdate
    wanted = (new.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != current["metadata"].get("resourceVersion"):
        raise conflict(resource, current["metadata"]["name"])


def check_preconditions(obj: dict[str, Any], options: dict[str, Any]) -> None:
    preconditions = options.get("preconditions") or {}
    meta = obj["metadata"]
    uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != meta.get("uid"):
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
        )
    if rv and rv != meta.get("resourceVersion"):
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: ResourceVersion in precondition: {rv}, "
            f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )


# The required fields of the field tables the OpenAPI documents are generated from; pod validation
# (ValidatePodSpec / validateContainers) also wants each container's image, which the schema leaves
# optional as pod templates share the type.
_POD_SPEC_REQUIRED = TYPES[CORE + "PodSpec"].required
_CONTAINER_REQUIRED = (*TYPES[CORE + "Container"].required, "image")


# A pod's name is a DNS subdomain (ValidatePodName = NameIsDNSSubdomain; the message and regex of
# k8s.io/apimachinery/pkg/util/validation IsDNS1123Subdomain).
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_SUBDOMAIN_TEXT = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def name_problems(name: str) -> list[str]:
    """Why `name` is not a DNS subdomain (none for an empty one: generateName fills it in)."""
    if not name:
        return []
    problems = []
    if len(name) > 253:
        problems.append(
            f'metadata.name: Invalid value: "{name}": must be no more than 253 characters'
        )
    if not _DNS_SUBDOMAIN.fullmatch(name):
        problems.append(f'metadata.name: Invalid value: "{name}": {_DNS_SUBDOMAIN_TEXT}')
    return problems


def validate_new_pod(pod: dict[str, Any]) -> None:
    name = (pod.get("metadata") or {}).get("name") or ""
    spec = pod.get("spec") or {}
    problems = name_problems(name)
    problems += [
        f"spec.{field}: Required value" for field in _POD_SPEC_REQUIRED if not spec.get(field)
    ]
    for index, container in enumerate(spec.get("containers") or []):
        missing = [
            field
            for field in _CONTAINER_REQUIRED
            if not isinstance(container, dict) or not container.get(field)
        ]
        if missing:  # the first missing one, as before: name, then image
            problems.append(f"spec.containers[{index}].{missing[0]}: Required value")
    if problems:
        text = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise ApiError(
            422,
            "Invalid",
            f'Pod "{name}" is invalid: {text}',
            details={"name": name, "kind": "Pod"},
        )


def validate_budget(budget: dict[str, Any]) -> None:
    """ValidatePodDisruptionBudget (policy/v1): minAvailable xor maxUnavailable, each a
    non-negative integer or a percentage up to 100%, a well-formed selector, a known
    unhealthyPodEvictionPolicy. Raises 422 Invalid naming every problem, as the apiserver does."""
    name = (budget.get("metadata") or {}).get("name") or ""
    spec = budget.get("spec") or {}
    problems: list[str] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        problems.append(
            f"spec: Invalid value: {json.dumps(spec, sort_keys=True)}: "
            "minAvailable and maxUnavailable cannot be both set"
        )
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            problems.extend(_int_or_percent_problems(spec[key], f"spec.{key}"))
    problems.extend(_selector_problems(spec.get("selector"), "spec.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        supported = ", ".join(f'"{p}"' for p in UNHEALTHY_POD_EVICTION_POLICIES)
        problems.append(
            f'spec.unhealthyPodEvictionPolicy: Unsupported value: "{policy}": '
            f"supported values: {supported}"
        )
    if problems:
        text = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise ApiError(
            422,
            "Invalid",
            f'PodDisruptionBudget.policy "{name}" is invalid: {text}',
            details={"name": name, "group": "policy", "kind": "PodDisruptionBudget"},
        )


def _int_or_percent_problems(value: Any, path: str) -> list[str]:
    # appsvalidation.ValidatePositiveIntOrPercent and IsNotMoreThan100Percent
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return [f"{path}: Invalid value: {json.dumps(value)}: must be an integer or percentage"]
    if isinstance(value, int):
        if value < 0:
            return [f"{path}: Invalid value: {value}: must be greater than or equal to 0"]
        return []
    if not _PERCENT.match(value):
        return [f"{path}: Invalid value: \"{value}\": must be an integer or percentage (e.g '5%')"]
    if int(value[:-1]) > 100:
        return [f'{path}: Invalid value: "{value}": must not be greater than 100%']
    return []


def _selector_problems(selector: Any, path: str) -> list[str]:
    """ValidateLabelSelector: matchLabels of strings, matchExpressions with a known operator and
    values exactly when In/NotIn need them. A null selector is valid (it selects nothing)."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [f"{path}: Invalid value: {json.dumps(selector)}: must be a label selector"]
    problems = []
    for value in (selector.get("matchLabels") or {}).values():
        if not isinstance(value, str):
            problems.append(f"{path}.matchLabels: Invalid value: {json.dumps(value)}: not a string")
    for i, expression in enumerate(selector.get("matchExpressions") or ()):
        where = f"{path}.matchExpressions[{i}]"
        operator = (expression or {}).get("operator")
        values = (expression or {}).get("values") or []
        if operator not in SELECTOR_OPERATORS:
            problems.append(
                f'{where}.operator: Invalid value: "{operator}": not a valid selector operator'
            )
        elif operator in ("In", "NotIn") and not values:
            problems.append(
                f"{where}.values: Required value: must be specified when `operator` is 'In' or "
                "'NotIn'"
            )
        elif operator in ("Exists", "DoesNotExist") and values:
            problems.append(
                f"{where}.values: Forbidden: may not be specified when `operator` is 'Exists' or "
                "'DoesNotExist'"
            )
    return problems


def prepared_update(
    resource: str, subresource: str | None, old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """What an update of `old` to `new` stores, by the endpoint's strategy; raises if invalid."""
    if resource == rayclusters.PLURAL:  # a custom resource's strategy
        return rayclusters.prepare_update(subresource, old, new)
    if subresource == "status":
        result = dict(old)
        result["status"] = new.get("status") or {}
        result["metadata"] = {
            **old["metadata"],
            "resourceVersion": (new.get("metadata") or {}).get("resourceVersion")
            or old["metadata"]["resourceVersion"],
        }
        return result
    result = dict(new)
    if resource in ("pods", "nodes", "namespaces"):
        # updates through the main endpoint never change status
        if "status" in old:
            result["status"] = old["status"]
        else:
            result.pop("status", None)
    if resource == "namespaces" and subresource != "finalize":
        # the namespace strategy: only the finalize subresource changes spec.finalizers
        spec = dict(result.get("spec") or {})
        spec["finalizers"] = list((old.get("spec") or {}).get("finalizers") or [])
        result["spec"] = spec
    if resource == "pods":
        validate_pod_update(old, result)
    if resource == "poddisruptionbudgets":
        result["status"] = old.get("status") or {}
        validate_budget(result)
        # the PDB strategy's PrepareForUpdate: a new spec is a new generation, which the
        # disruption controller has yet to observe (evictions wait for it)
        generation = int(old["metadata"].get("generation") or 1)
        if result.get("spec") != old.get("spec"):
            generation += 1
        result["metadata"] = {**(result.get("metadata") or {}), "generation": generation}
    return result


def graceful_delete(
    store: ObjectStore,
    name: str,
    namespace: str,
    *,
    options: dict[str, Any],
    grace: int | None,
    now: Callable[[], float],
) -> dict[str, Any]:
    """Delete a pod as the apiserver does: a bound, running pod gets deletionTimestamp and
    deletionGracePeriodSeconds for its kubelet to finish; anything else goes at once."""
    pod = store.get("pods", name, namespace=namespace)
    check_preconditions(pod, options)
    if grace is None:
        grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    bound = bool((pod.get("spec") or {}).get("nodeName"))
    terminal = (pod.get("status") or {}).get("phase") in TERMINAL_PHASES
    # an unbound or finished pod has no kubelet to wait for
    if not bound or terminal or grace <= 0:
        return store.delete("pods", name, namespace=namespace)
    existing = pod["metadata"].get("deletionGracePeriodSeconds")
    if existing is not None and existing <= grace:
        return pod  # a deletion already under way may only be shortened
    deadline = rfc3339(now() + grace)
    seconds = grace

    def mark(obj: dict[str, Any]) -> None:
        obj["metadata"]["deletionTimestamp"] = deadline
        obj["metadata"]["deletionGracePeriodSeconds"] = seconds

    return store.mutate("pods", name, mark, namespace=namespace)


def bind_pod(
    store: ObjectStore, name: str, namespace: str, *, node: str, now: str
) -> dict[str, Any]:
    """pods/binding: set spec.nodeName once and mark PodScheduled."""

    def assign(pod: dict[str, Any]) -> None:
        spec = pod.setdefault("spec", {})
        if spec.get("nodeName"):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already '
                f'assigned to node "{spec["nodeName"]}"',
            )
        spec["nodeName"] = node
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
        )
        status["conditions"] = conditions

    return store.mutate("pods", name, assign, namespace=namespace)

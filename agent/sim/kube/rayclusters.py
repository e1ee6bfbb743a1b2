"""`ray.io/v1` RayCluster served as kube-apiserver serves a custom resource (apiextensions-apiserver)
whose CustomResourceDefinition is KubeRay's ray-operator/config/crd/bases/ray.io_rayclusters.yaml:
namespaced, category `all`, the `status` subresource, its additionalPrinterColumns, and a small
part of its structural schema — the types, required fields and defaults the autoscaler and the
operator rely on. Everything else in the CRD's schema (the pod templates' insides with their own
defaults such as a container port's `protocol: TCP`, the head service, ...) is accepted as it
comes; unknown fields are kept, not pruned (so `fieldValidation=Strict` finds nothing to refuse).
These are stated simplifications of the real schema.

The write strategy follows staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/
strategy.go and status_strategy.go; the schema errors follow pkg/apiserver/validation/
validation.go (ConvertSchemaValidationErrors); defaulting pkg/apiserver/schema/defaulting."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.sim.kube.store import ApiError, copy_json

GROUP = "ray.io"
VERSION = "v1"
KIND = "RayCluster"
PLURAL = "rayclusters"

_INT32_MAX = 2147483647


@dataclass(frozen=True)
class Node:
    """One schema node: its OpenAPI type, the properties it describes (others are kept as they
    come), which of them are required, a default, and the schema of an array's items."""

    type: str
    properties: dict[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    default: Any = None
    items: Node | None = None
    description: str = ""


def _int32(description: str, default: int | None = None) -> Node:
    return Node("integer", default=default, description=description)


# The part of KubeRay's v1 schema modelled here (the CRD's types, required lists and defaults).
_TEMPLATE = Node("object", description="The pod template (core/v1 PodTemplateSpec).")
_WORKER_GROUP = Node(
    "object",
    properties={
        "groupName": Node("string", description="The worker group's name."),
        "replicas": _int32("Workers wanted (the autoscaler writes it).", 0),
        "minReplicas": _int32("The fewest workers.", 0),
        "maxReplicas": _int32("The most workers.", _INT32_MAX),
        "numOfHosts": _int32("Hosts per replica (multi-host groups).", 1),
        "priority": _int32("The group's priority for the autoscaler.", 0),
        "idleTimeoutSeconds": _int32("Idle time before the autoscaler removes a worker."),
        "suspend": Node("boolean", description="Whether the group is suspended."),
        "rayStartParams": Node("object", description="`ray start` parameters."),
        "scaleStrategy": Node(
            "object",
            properties={
                "workersToDelete": Node(
                    "array",
                    items=Node("string"),
                    description="Worker pods the operator deletes first.",
                )
            },
            description="Which workers go on scale-down.",
        ),
        "template": _TEMPLATE,
    },
    required=("groupName", "maxReplicas", "minReplicas", "template"),
)
SCHEMA = Node(
    "object",
    properties={
        "apiVersion": Node("string"),
        "kind": Node("string"),
        "metadata": Node("object"),
        "spec": Node(
            "object",
            properties={
                "rayVersion": Node("string", description="The Ray version."),
                "enableInTreeAutoscaling": Node("boolean", description="Run Ray's autoscaler."),
                "suspend": Node("boolean", description="Whether the cluster is suspended."),
                "headGroupSpec": Node(
                    "object",
                    properties={
                        "rayStartParams": Node("object", description="`ray start` parameters."),
                        "serviceType": Node("string", description="The head service's type."),
                        "template": _TEMPLATE,
                    },
                    required=("template",),
                    description="The head pod.",
                ),
                "workerGroupSpecs": Node(
                    "array", items=_WORKER_GROUP, description="The worker groups."
                ),
            },
            required=("headGroupSpec",),
            description="RayClusterSpec.",
        ),
        "status": Node(
            "object",
            properties={
                "state": Node("string", description="ready, suspended, ..."),
                "desiredWorkerReplicas": _int32("Workers wanted, over all groups."),
                "availableWorkerReplicas": _int32("Workers running."),
                "readyWorkerReplicas": _int32("Workers ready."),
                "minWorkerReplicas": _int32("The fewest workers, over all groups."),
                "maxWorkerReplicas": _int32("The most workers, over all groups."),
                "observedGeneration": Node("integer", description="The generation reconciled."),
            },
            description="RayClusterStatus (the operator writes it).",
        ),
    },
)

# additionalPrinterColumns of the CRD's v1 version: (name, type, JSONPath, priority)
PRINTER_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    ("desired workers", "integer", ".status.desiredWorkerReplicas", 0),
    ("available workers", "integer", ".status.availableWorkerReplicas", 0),
    ("cpus", "string", ".status.desiredCPU", 0),
    ("memory", "string", ".status.desiredMemory", 0),
    ("gpus", "string", ".status.desiredGPU", 0),
    ("tpus", "string", ".status.desiredTPU", 1),
    ("status", "string", ".status.state", 0),
    ("age", "date", ".metadata.creationTimestamp", 0),
    ("head pod IP", "string", ".status.head.podIP", 1),
    ("head service IP", "string", ".status.head.serviceIP", 1),
)


# -- defaulting and validation ---------------------------------------------------------------


def apply_defaults(value: Any, node: Node = SCHEMA) -> None:
    """Fill in the schema's defaults, in place, where a described property is absent (the
    structural defaulting of request bodies; a wrongly typed value is left for validation).
    A null for a described property counts as absent: none of them is nullable, and
    schema/defaulting drops such nulls (PruneNonNullableNullsWithoutDefaults) or defaults them."""
    if node.type == "object" and isinstance(value, dict):
        for name, child in node.properties.items():
            if name in value and value[name] is None:
                del value[name]
            if name not in value and child.default is not None:
                value[name] = child.default
            elif name in value:
                apply_defaults(value[name], child)
    elif node.type == "array" and isinstance(value, list) and node.items is not None:
        for item in value:
            apply_defaults(item, node.items)


_JSON_TYPES: dict[str, type] = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_name(value: Any) -> str:
    """The JSON type kube-openapi's validator reports for a value it refuses."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "object" and isinstance(value, dict):
        return True
    return isinstance(value, _JSON_TYPES[kind])


def schema_causes(value: Any, node: Node = SCHEMA, path: str = "") -> list[dict[str, str]]:
    """The StatusCauses of every schema error in `value`, in document order: a wrong type
    (FieldValueTypeInvalid, as `<path> in body must be of type <type>: "<found>"`) or a missing
    required property (FieldValueRequired)."""
    if not _type_ok(value, node.type):
        found = _type_name(value)
        return [
            {
                "reason": "FieldValueTypeInvalid",
                "message": f'Invalid value: "{found}": {path} in body must be of type '
                f'{node.type}: "{found}"',
                "field": path,
            }
        ]
    causes: list[dict[str, str]] = []
    if node.type == "object":
        for name in node.required:
            if name not in value:
                where = f"{path}.{name}" if path else name
                causes.append(
                    {"reason": "FieldValueRequired", "message": "Required value", "field": where}
                )
        for name, child in node.properties.items():
            if name in value:
                causes += schema_causes(value[name], child, f"{path}.{name}" if path else name)
    elif node.type == "array" and node.items is not None:
        for index, item in enumerate(value):
            causes += schema_causes(item, node.items, f"{path}[{index}]")
    return causes


def invalid(name: str, causes: list[dict[str, str]]) -> ApiError:
    """The 422 kube-apiserver answers for an invalid custom resource: every cause, listed in
    the message as `field: message` (one cause bare, several in brackets)."""
    texts = [f"{cause['field']}: {cause['message']}" for cause in causes]
    text = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{KIND}.{GROUP} "{name}" is invalid: {text}',
        details={"name": name, "group": GROUP, "kind": KIND, "causes": causes},
    )


def validate(obj: dict[str, Any], extra: list[dict[str, str]] | None = None) -> None:
    """Raise the 422 for `obj` (already defaulted) if its schema or `extra` causes object."""
    causes = [*(extra or []), *schema_causes(obj)]
    if causes:
        raise invalid((obj.get("metadata") or {}).get("name") or "", causes)


# -- the write strategy ----------------------------------------------------------------------


def prepare_create(obj: dict[str, Any], name_problems: list[str]) -> dict[str, Any]:
    """customResourceStrategy.PrepareForCreate and Validate: with the status subresource the
    client's status is dropped; generation starts at 1; defaults filled in; then validated."""
    prepared = dict(obj)
    prepared.pop("status", None)
    prepared["metadata"] = {**(prepared.get("metadata") or {}), "generation": 1}
    apply_defaults(prepared)
    validate(prepared, [_name_cause(problem) for problem in name_problems])
    return prepared


def _name_cause(problem: str) -> dict[str, str]:
    field_path, _, message = problem.partition(": ")
    return {"reason": "FieldValueInvalid", "message": message, "field": field_path}


def prepare_update(
    subresource: str | None, old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """What an update stores. Through the main endpoint (strategy.go PrepareForUpdate) status
    stays the old one, and generation goes up when anything but metadata and status changed.
    Through `status` (status_strategy.go) the old object is kept but for the new status —
    absent in the request, it is removed. Either way the result is defaulted and validated."""
    if subresource == "status":
        # a copy: defaulting below must not touch the stored object
        result: dict[str, Any] = copy_json(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        result["metadata"] = {
            **old["metadata"],
            "resourceVersion": (new.get("metadata") or {}).get("resourceVersion")
            or old["metadata"]["resourceVersion"],
        }
        apply_defaults(result)
    else:
        result = dict(new)
        if "status" in old:
            result["status"] = old["status"]
        else:
            result.pop("status", None)
        # defaulted before the comparison, as a request body is defaulted when decoded: a
        # client that omits a defaulted field (kubectl apply's list replace) changes nothing
        apply_defaults(result)
        generation = int(old["metadata"].get("generation") or 1)
        if _content(result) != _content(old):
            generation += 1
        result["metadata"] = {**(result.get("metadata") or {}), "generation": generation}
    validate(result, _finalizer_causes(old, result))
    return result


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _finalizer_causes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, str]]:
    """ValidateObjectMetaUpdate: an object being deleted takes no new finalizers."""
    if not old["metadata"].get("deletionTimestamp"):
        return []
    before = set(old["metadata"].get("finalizers") or ())
    added = sorted(set((new.get("metadata") or {}).get("finalizers") or ()) - before)
    if not added:
        return []
    listed = ", ".join(json.dumps(name) for name in added)
    return [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: no new finalizers can be added if the object is being "
            f"deleted, found new finalizers []string{{{listed}}}",
            "field": "metadata.finalizers",
        }
    ]

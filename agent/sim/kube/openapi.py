"""The OpenAPI documents of the served types, generated from the field tables (api_fields.py):
`/openapi/v2` (Swagger 2.0, what kubectl's client-side validation reads) and `/openapi/v3` with
one document per group-version (what `kubectl explain` reads, and where kubectl looks up whether
PATCH takes `fieldValidation` and `dryRun`).

As kube-apiserver publishes them: definitions named after the Go packages
(io.k8s.api.core.v1.Pod), each served kind tagged with `x-kubernetes-group-version-kind`, refs
between definitions (v3 wraps a ref in `allOf` so the field keeps its description), `required`
lists, and each v3 document holding the schemas its kinds reach. v2 is also served as protobuf
(openapi_proto.py), the only form kubectl reads it in; a client accepting neither gets 406.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.sim.kube import rayclusters
from agent.sim.kube.api_fields import (
    INT_OR_STRING,
    KINDS,
    META,
    QUANTITY,
    TYPES,
    Field,
    TypeDef,
)
from agent.sim.kube.discovery import VERSION

JSON = "application/json"
# The media type clients ask for (with "@", kept for old clients) and the one answered with: Go's
# mime parser refuses the "@", so kube-openapi's handler names its protobuf "...v2.v1.0+protobuf".
PROTOBUF_V2_ACCEPTED = (
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
)
PROTOBUF_V2 = PROTOBUF_V2_ACCEPTED[1]

# Definitions the tables name by a short type
_SCALARS: dict[str, dict[str, Any]] = {
    META + "Time": {
        "description": "Time, serialised as RFC 3339 in UTC to the second.",
        "type": "string",
        "format": "date-time",
    },
    META + "MicroTime": {
        "description": "Time with microseconds, serialised as RFC 3339.",
        "type": "string",
        "format": "date-time",
    },
    QUANTITY: {
        "description": "A fixed-point number with a suffix: 100m, 2, 4Gi, 1e3.",
        "type": "string",
    },
    INT_OR_STRING: {
        "description": "An integer or a string, e.g. 1 or 50%.",
        "type": "string",
        "format": "int-or-string",
    },
}
_SHORT_REFS = {
    "time": META + "Time",
    "microtime": META + "MicroTime",
    "quantity": QUANTITY,
    "intstr": INT_OR_STRING,
}
_PRIMITIVES = {"string", "integer", "boolean", "number"}

# group-version path -> the kinds it serves, with their plural and whether namespaced
_GROUP_VERSIONS: dict[str, list[tuple[str, str, bool]]] = {
    "api/v1": [
        ("io.k8s.api.core.v1.Pod", "pods", True),
        ("io.k8s.api.core.v1.Node", "nodes", False),
        ("io.k8s.api.core.v1.Event", "events", True),
        ("io.k8s.api.core.v1.Namespace", "namespaces", False),
    ],
    "apis/coordination.k8s.io/v1": [("io.k8s.api.coordination.v1.Lease", "leases", True)],
    "apis/policy/v1": [("io.k8s.api.policy.v1.PodDisruptionBudget", "poddisruptionbudgets", True)],
}


class _Writer:
    """Schemas in one dialect: `prefix` is where refs point, `wrap` puts a ref in allOf (v3)."""

    def __init__(self, prefix: str, *, wrap: bool) -> None:
        self._prefix = prefix
        self._wrap = wrap

    def ref(self, name: str, description: str = "") -> dict[str, Any]:
        target = {"$ref": self._prefix + name}
        if not description:
            return target
        if self._wrap:
            return {"description": description, "allOf": [target]}
        return {"description": description, **target}

    def type_schema(self, kind: str, description: str = "") -> dict[str, Any]:
        described = {"description": description} if description else {}
        if kind.startswith("[") and kind.endswith("]"):
            return {**described, "type": "array", "items": self.type_schema(kind[1:-1])}
        if kind in _PRIMITIVES:
            schema: dict[str, Any] = {**described, "type": kind}
            if kind == "integer":
                schema["format"] = "int64"
            return schema
        if kind in _SHORT_REFS:
            return self.ref(_SHORT_REFS[kind], description)
        if kind == "map":
            return {**described, "type": "object", "additionalProperties": {"type": "string"}}
        if kind == "quantities":
            return {**described, "type": "object", "additionalProperties": self.ref(QUANTITY)}
        if kind == "times":
            return {**described, "type": "object", "additionalProperties": self.ref(META + "Time")}
        if kind == "any":
            # passed through as sent: an object whose content is not described
            return {**described, "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return self.ref(kind, description)

    def definition(self, typedef: TypeDef) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "description": typedef.description,
            "type": "object",
            "properties": {f.name: self.type_schema(f.type, f.description) for f in typedef.fields},
        }
        if typedef.required:
            schema["required"] = list(typedef.required)
        if typedef.gvk is not None:
            group, version, kind = typedef.gvk
            schema["x-kubernetes-group-version-kind"] = [
                {"group": group, "kind": kind, "version": version}
            ]
        return schema


def _referenced(field: Field) -> Iterable[str]:
    kind = field.type.strip("[]")
    if kind in _SHORT_REFS:
        yield _SHORT_REFS[kind]
    elif kind == "quantities":
        yield QUANTITY
    elif kind == "times":
        yield META + "Time"
    elif kind in TYPES:
        yield kind


def _closure(roots: Iterable[str]) -> list[str]:
    """Every definition reachable from `roots`, in a stable order."""
    seen: dict[str, None] = {}
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen[name] = None
        if name in TYPES:
            for field in TYPES[name].fields:
                stack.extend(_referenced(field))
    return sorted(seen)


def _definitions(writer: _Writer, names: Iterable[str]) -> dict[str, Any]:
    return {
        name: dict(_SCALARS[name]) if name in _SCALARS else writer.definition(TYPES[name])
        for name in names
    }


def _info() -> dict[str, str]:
    return {"title": "Kubernetes", "version": VERSION["gitVersion"]}


def _patch_operation(group: str, version: str, kind: str, *, v3: bool) -> dict[str, Any]:
    """An item path's PATCH, with what kubectl looks for: the query parameters
    `fieldValidation` and `dryRun` (kubectl's QueryParamVerifier) under its GVK."""
    parameters = [
        {"name": name, "in": "query", "description": text, "uniqueItems": True}
        | ({"schema": {"type": "string"}} if v3 else {"type": "string"})
        for name, text in (
            ("fieldValidation", "Ignore, Warn or Strict: what to do with unknown fields."),
            ("dryRun", "All: validate and admit the request without persisting it."),
        )
    ]
    return {
        "patch": {
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
            "parameters": parameters,
        }
    }


def _item_paths(group_version: str, *, v3: bool) -> dict[str, Any]:
    """The item path of each kind, with its PATCH operation."""
    paths: dict[str, Any] = {}
    for definition, plural, namespaced in _GROUP_VERSIONS[group_version]:
        group, version, kind = KINDS[definition]
        scope = "/namespaces/{namespace}" if namespaced else ""
        paths[f"/{group_version}{scope}/{plural}/{{name}}"] = _patch_operation(
            group, version, kind, v3=v3
        )
    return paths


# -- the custom resource ---------------------------------------------------------------------
# apiextensions-apiserver publishes a CRD's version as one OpenAPI v3 document
# (pkg/controller/openapi/builder): the kind and its List named by the reversed group
# (io.ray.v1.RayCluster), metadata a ref to ObjectMeta, the rest the CRD's schema. Here the
# schema is rayclusters.SCHEMA, the part of KubeRay's that is modelled; every object keeps the
# fields it does not describe (x-kubernetes-preserve-unknown-fields), as the server does.
_CUSTOM_GROUP_VERSION = f"apis/{rayclusters.GROUP}/{rayclusters.VERSION}"
_CUSTOM_DEFINITION = f"io.ray.{rayclusters.VERSION}.{rayclusters.KIND}"


def _node_schema(node: rayclusters.Node) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": node.type}
    if node.description:
        schema["description"] = node.description
    if node.default is not None:
        schema["default"] = node.default
    if node.properties:
        schema["properties"] = {name: _node_schema(c) for name, c in node.properties.items()}
    if node.required:
        schema["required"] = list(node.required)
    if node.items is not None:
        schema["items"] = _node_schema(node.items)
    if node.type == "object":
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _custom_resource_v3() -> dict[str, Any]:
    writer = _Writer("#/components/schemas/", wrap=True)
    group, version, kind = rayclusters.GROUP, rayclusters.VERSION, rayclusters.KIND
    cluster = _node_schema(rayclusters.SCHEMA)
    cluster["properties"]["metadata"] = writer.ref(META + "ObjectMeta", "Standard object metadata.")
    cluster["x-kubernetes-group-version-kind"] = [
        {"group": group, "kind": kind, "version": version}
    ]
    listed = {
        "description": f"A list of {kind} objects.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": writer.ref(META + "ListMeta", "Standard list metadata."),
            "items": {"type": "array", "items": writer.ref(_CUSTOM_DEFINITION)},
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [
            {"group": group, "kind": kind + "List", "version": version}
        ],
    }
    schemas = _definitions(writer, _closure([META + "ObjectMeta", META + "ListMeta"]))
    schemas[_CUSTOM_DEFINITION] = cluster
    schemas[_CUSTOM_DEFINITION + "List"] = listed
    path = f"/{_CUSTOM_GROUP_VERSION}/namespaces/{{namespace}}/{rayclusters.PLURAL}/{{name}}"
    return {
        "openapi": "3.0.0",
        "info": _info(),
        "paths": {path: _patch_operation(group, version, kind, v3=True)},
        "components": {"schemas": schemas},
    }


def openapi_v2() -> dict[str, Any]:
    """The Swagger 2.0 document of every served type."""
    writer = _Writer("#/definitions/", wrap=False)
    paths: dict[str, Any] = {}
    for group_version in _GROUP_VERSIONS:
        paths.update(_item_paths(group_version, v3=False))
    roots = [*KINDS, *(name + "List" for name in KINDS)]
    return {
        "swagger": "2.0",
        "info": _info(),
        "paths": paths,
        "definitions": _definitions(writer, _closure(roots)),
    }


def openapi_v3_root() -> dict[str, Any]:
    served = [*_GROUP_VERSIONS, _CUSTOM_GROUP_VERSION]
    return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}"} for gv in served}}


def openapi_v3(group_version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version (e.g. "api/v1"), or None if not served."""
    if group_version == _CUSTOM_GROUP_VERSION:
        return _custom_resource_v3()
    kinds = _GROUP_VERSIONS.get(group_version)
    if kinds is None:
        return None
    writer = _Writer("#/components/schemas/", wrap=True)
    roots = [name for name, _, _ in kinds] + [name + "List" for name, _, _ in kinds]
    return {
        "openapi": "3.0.0",
        "info": _info(),
        "paths": _item_paths(group_version, v3=True),
        "components": {"schemas": _definitions(writer, _closure(roots))},
    }


def accepts_json(accept: str) -> bool:
    """Whether an Accept header allows a JSON answer (absent, */*, application/*, or JSON)."""
    if not accept.strip():
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("*/*", "application/*", JSON):
            return True
    return False

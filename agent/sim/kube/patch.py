"""The three PATCH flavours the apiserver accepts on built-in types: JSON patch (RFC 6902),
JSON merge patch (RFC 7386) and strategic merge patch with the merge keys of the core/v1 and
coordination/v1 types we serve. Each returns a new document and never edits its input."""

from __future__ import annotations

import copy
import json
from typing import Any

from agent.sim.kube.store import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# Server-side apply needs field managers (managedFields) that this server does not keep; a real
# kube-apiserver accepts the media type, so this refusal is ours and says what to do instead.
SERVER_SIDE_APPLY_REFUSED = (
    "server-side apply (application/apply-patch+yaml) is not served by the embedded ACK API "
    "server, which keeps no field managers: use client-side apply instead (`kubectl apply` "
    "without --server-side), or a JSON, merge or strategic merge patch"
)


# The media types a PATCH of a built-in type takes, and of a custom resource: apiextensions-
# apiserver's customresource_handler.go offers JSON and merge patch (and apply) only, since a
# custom resource has no Go struct tags to carry strategic merge keys.
BUILT_IN_PATCHES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)
CUSTOM_RESOURCE_PATCHES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)


class PatchFailed(Exception):
    """A well-formed JSON patch whose operation cannot apply to the document."""


def _apply_failed(message: str) -> ApiError:
    # the apiserver wraps a failing jsonpatch.Apply in NewGenericServerResponse(422, ...)
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


# -- JSON patch ------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFailed(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchFailed(f"invalid array index: {token}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise PatchFailed(f"array index out of bounds: {index}")
    return index


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchFailed(f"doc is missing path: {path}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise PatchFailed(f"doc is missing path: {path}")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f"doc is missing path: {path}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise PatchFailed(f"doc is missing path: {path}")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise PatchFailed(f"doc is missing path: {path}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchFailed("cannot remove the whole document")
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f"unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, for_insert=False)]
    else:
        raise PatchFailed(f"doc is missing path: {path}")
    return doc


def _replace(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        # kube-apiserver applies JSON patches with evanphx/json-patch v4, whose object lookup
        # (partialDoc.get) never fails: `replace` of a missing key sets it, unlike RFC 6902.
        # Ray's autoscaler relies on it for `/spec/workerGroupSpecs/i/scaleStrategy`, which
        # Helm-installed RayClusters lack.
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(parent, last, for_insert=False)] = value
    else:
        raise PatchFailed(f"doc is missing path: {path}")
    return doc


def json_patch(doc: dict[str, Any], operations: Any) -> dict[str, Any]:
    """Apply an RFC 6902 patch: 400 for a malformed patch, 422 when an operation fails."""
    if not isinstance(operations, list):
        raise ApiError(
            400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    result: Any = copy.deepcopy(doc)
    try:
        for operation in operations:
            result = _apply_operation(result, operation)
    except PatchFailed as failure:
        raise _apply_failed(str(failure)) from None
    if not isinstance(result, dict):
        raise _apply_failed("the patched document is not an object")
    return result


def _apply_operation(doc: Any, operation: Any) -> Any:
    """One operation of a JSON patch: the document after it (edited in place where the
    operation allows, so pass a copy); 400 if it is no operation at all, PatchFailed if it
    cannot apply."""
    if not isinstance(operation, dict) or "op" not in operation:
        raise ApiError(400, "BadRequest", "invalid JSON patch operation")
    op = operation["op"]
    path = operation.get("path")
    if not isinstance(path, str):
        raise PatchFailed(f"operation missing path: {op}")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchFailed(f"{op} operation missing value")
    if op == "add":
        return _add(doc, path, copy.deepcopy(operation["value"]))
    if op == "remove":
        return _remove(doc, path)
    if op == "replace":
        return _replace(doc, path, copy.deepcopy(operation["value"]))
    if op in ("move", "copy"):
        return _move_or_copy(doc, path, op=op, source=operation.get("from"))
    if op == "test":
        _test_value(doc, path, expected=operation["value"])
        return doc
    raise PatchFailed(f"Unexpected kind: {op}")


def _move_or_copy(doc: Any, path: str, *, op: str, source: Any) -> Any:
    """`move` or `copy` the value at `source` (the operation's "from") to `path`."""
    if not isinstance(source, str):
        raise PatchFailed(f"{op} operation missing from")
    value = _get(doc, source)
    if op == "move":
        if path.startswith(source + "/"):
            raise PatchFailed("cannot move a value into one of its children")
        doc = _remove(doc, source)
    else:
        value = copy.deepcopy(value)
    return _add(doc, path, value)


def _test_value(doc: Any, path: str, *, expected: Any) -> None:
    """The `test` operation; a missing path compares as null."""
    try:
        current = _get(doc, path)
    except PatchFailed:
        current = None
    if not _json_equal(current, expected):
        raise PatchFailed(f"testing value {path} failed: test failed")


def _json_equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0 but True != 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- merge patch -----------------------------------------------------------------------------


def merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch: maps merge, null deletes, lists are replaced whole."""
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "the patch must be a JSON object")
    merged = _merge(doc, patch)
    assert isinstance(merged, dict)
    return merged


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# -- strategic merge patch -------------------------------------------------------------------

# Lists with a patchMergeKey in the Go types (patchStrategy "merge"); every other list is
# replaced whole — notably spec.tolerations and node spec.taints, which have no merge key.
_CONTAINER_LISTS = {
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
}
_POD_SPEC_LISTS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
}
_STATUS_LISTS = {"conditions": "type", "addresses": "type", "podIPs": "ip", "hostIPs": "ip"}
_METADATA_LISTS = {"ownerReferences": "uid"}
# lists of scalars the Go types mark patchStrategy "merge" (a set union)
_SCALAR_SET_LISTS = {"finalizers"}


def _merge_key(path: tuple[str, ...]) -> str | None:
    if not path:
        return None
    name = path[-1]
    parent = path[-2] if len(path) >= 2 else ""
    if parent == "metadata":
        return _METADATA_LISTS.get(name)
    if parent == "spec":
        return _POD_SPEC_LISTS.get(name)
    if parent == "status":
        return _STATUS_LISTS.get(name)
    if parent in ("containers", "initContainers", "ephemeralContainers"):
        return _CONTAINER_LISTS.get(name)
    return None


def strategic_merge_patch(doc: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a strategic merge patch as the apiserver does for core/v1 types."""
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "the patch must be a JSON object")
    merged = _strategic(doc, patch, ())
    assert isinstance(merged, dict)
    return merged


def _strategic(target: Any, patch: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        # directives kubectl sends (ordering hints, retainKeys) do not change content here
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = (*path, key)
        if isinstance(value, list):
            result[key] = _strategic_list(result.get(key), value, child)
        else:
            merged = _strategic(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _strategic_list(current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    existing = current if isinstance(current, list) else []
    if path[-1] in _SCALAR_SET_LISTS:
        return [*existing, *(item for item in patch if item not in existing)]
    key = _merge_key(path)
    if key is None:
        return copy.deepcopy(patch)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    merged = list(existing)
    for item in patch:
        if not isinstance(item, dict):
            raise ApiError(400, "BadRequest", f"the list {'.'.join(path)} takes objects")
        identity = item.get(key)
        position = next(
            (
                i
                for i, old in enumerate(merged)
                if isinstance(old, dict) and old.get(key) == identity
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del merged[position]
            continue
        if position is None:
            merged.append(_strategic({}, item, path))
        else:
            merged[position] = _strategic(merged[position], item, path)
    return merged


def check_patch_type(content_type: str, accepted: tuple[str, ...] | None = None) -> str:
    """The patch media type of a Content-Type (parameters such as charset ignored), or 415 —
    checked before the object is read, as handlers/patch.go does, so a server-side apply of an
    object that does not exist yet gets the 415 too, not a 404. `accepted` is the resource's
    media types (BUILT_IN_PATCHES unless given; CUSTOM_RESOURCE_PATCHES for a custom
    resource), named in the 415's message as negotiation.NewUnsupportedMediaTypeError does."""
    accepted = accepted or BUILT_IN_PATCHES
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == APPLY_PATCH:
        raise ApiError(415, "UnsupportedMediaType", SERVER_SIDE_APPLY_REFUSED)
    if kind not in accepted:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(accepted),
        )
    return kind


def apply_patch(doc: dict[str, Any], content_type: str, body: bytes) -> dict[str, Any]:
    """Dispatch on the request's Content-Type."""
    kind = check_patch_type(content_type)
    try:
        patch = json.loads(body or b"null")
    except ValueError as error:
        raise ApiError(400, "BadRequest", f"error decoding patch: {error}") from None
    if kind == JSON_PATCH:
        return json_patch(doc, patch)
    if kind == MERGE_PATCH:
        return merge_patch(doc, patch)
    return strategic_merge_patch(doc, patch)

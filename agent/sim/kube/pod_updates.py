"""What an update through the pods endpoint may change, as the apiserver's ValidatePodUpdate
decides it: images, activeDeadlineSeconds, tolerations (additions only),
terminationGracePeriodSeconds, labels and annotations; schedulingGates may only be removed.
Anything else is 422 Invalid with the apiserver's message."""

from __future__ import annotations

import copy
from typing import Any

from agent.sim.kube.store import ApiError

UPDATABLE_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)

# creationTimestamp changes are ignored rather than refused, as the apiserver does
_IMMUTABLE_METADATA = ("name", "namespace", "uid")


def _invalid(name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """causes: (field, reason as printed, message)"""
    text = "; ".join(f"{field}: {reason}: {message}" for field, reason, message in causes)
    if len(causes) > 1:
        text = "[" + ", ".join(f"{f}: {r}: {m}" for f, r, m in causes) + "]"
    return ApiError(
        422,
        "Invalid",
        f'Pod "{name}" is invalid: {text}',
        details={
            "name": name,
            "kind": "Pod",
            "causes": [
                {
                    "reason": f"Field{reason.replace(' ', '')}",
                    "message": f"{reason}: {message}",
                    "field": field,
                }
                for field, reason, message in causes
            ],
        },
    )


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _diff(old.get(key), new.get(key), f"{path}.{key}", out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{index}]", out)
    elif old != new:
        out.append(f"  {path}: {old!r} -> {new!r}")


def _toleration_errors(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[tuple[str, str, str]]:
    # every existing toleration must still be there; only tolerationSeconds of a NoExecute
    # toleration may shrink
    errors = []
    for existing in old:
        if existing in new:
            continue
        loosened = {k: v for k, v in existing.items() if k != "tolerationSeconds"}
        candidates = [
            t for t in new if {k: v for k, v in t.items() if k != "tolerationSeconds"} == loosened
        ]
        ok = any(
            existing.get("effect") == "NoExecute"
            and isinstance(t.get("tolerationSeconds"), int)
            and isinstance(existing.get("tolerationSeconds"), int)
            and t["tolerationSeconds"] <= existing["tolerationSeconds"]
            for t in candidates
        )
        if not ok:
            errors.append(
                (
                    "spec.tolerations",
                    "Forbidden",
                    "existing toleration can not be modified except its tolerationSeconds",
                )
            )
            break
    return errors


def validate_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise 422 if `new` (an update of the stored pod `old`) changes what may not change."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    name = old_meta.get("name", "")
    causes: list[tuple[str, str, str]] = []
    for field in _IMMUTABLE_METADATA:
        if new_meta.get(field) and new_meta.get(field) != old_meta.get(field):
            causes.append(
                (
                    f"metadata.{field}",
                    "Invalid value",
                    f'"{new_meta.get(field)}": field is immutable',
                )
            )

    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    causes += _toleration_errors(
        old_spec.get("tolerations") or [], new_spec.get("tolerations") or []
    )

    old_gates = old_spec.get("schedulingGates") or []
    new_gates = new_spec.get("schedulingGates") or []
    if any(gate not in old_gates for gate in new_gates):
        causes.append(
            (
                "spec.schedulingGates",
                "Forbidden",
                "only deletion is allowed, but found new scheduling gate",
            )
        )

    # the munged spec: copy what may change from the old spec, then demand equality
    munged = copy.deepcopy(new_spec)
    for list_name in ("containers", "initContainers", "ephemeralContainers"):
        old_list = old_spec.get(list_name) or []
        new_list = munged.get(list_name) or []
        if len(old_list) == len(new_list):
            for old_container, new_container in zip(old_list, new_list, strict=True):
                if isinstance(new_container, dict) and "image" in old_container:
                    new_container["image"] = old_container["image"]
    for field in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if field in old_spec:
            munged[field] = old_spec[field]
        else:
            munged.pop(field, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    new_grace = new_spec.get("terminationGracePeriodSeconds")
    if new_grace != old_grace and (isinstance(old_grace, int) and old_grace < 0 and new_grace == 1):
        munged["terminationGracePeriodSeconds"] = old_grace
    new_deadline = new_spec.get("activeDeadlineSeconds")
    old_deadline = old_spec.get("activeDeadlineSeconds")
    if (
        new_deadline != old_deadline
        and old_deadline is not None
        and (new_deadline is None or new_deadline > old_deadline)
    ):
        causes.append(
            (
                "spec.activeDeadlineSeconds",
                "Invalid value",
                f"{new_deadline}: must be less than or equal to previous value",
            )
        )
    if munged != old_spec:
        lines: list[str] = []
        _diff(old_spec, munged, "spec", lines)
        causes.append(
            (
                "spec",
                "Forbidden",
                f"pod updates may not change fields other than {UPDATABLE_FIELDS}\n"
                + "\n".join(lines),
            )
        )
    if causes:
        raise _invalid(name, causes)

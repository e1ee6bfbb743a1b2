"""meta.k8s.io Table rendering — the server-side printing kubectl asks for with
`Accept: application/json;as=Table;...` — with the columns and cell text the apiserver's
printers produce for pods, nodes, namespaces, events, leases and PodDisruptionBudgets, and the
additionalPrinterColumns of KubeRay's RayCluster CRD."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from agent.sim.kube import rayclusters

Cells = Callable[[dict[str, Any], float], list[Any]]


def _column(
    name: str, type_: str, description: str, *, priority: int = 0, fmt: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def wants_table(accept: str) -> str | None:
    """The Table apiVersion the Accept header asks for first, if any."""
    for entry in accept.split(","):
        params = {}
        for part in entry.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            params[key.strip()] = value.strip()
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            version = params.get("v", "v1")
            if version in ("v1", "v1beta1"):
                return f"meta.k8s.io/{version}"
    return None


# -- time ------------------------------------------------------------------------------------


def parse_timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return (
            datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        )
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration, as kubectl prints AGE."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    total = int(seconds)
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years = hours // (24 * 365)
    if years < 8:
        days = (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{years}y"


def age(obj: dict[str, Any], now: float) -> str:
    created = parse_timestamp((obj.get("metadata") or {}).get("creationTimestamp"))
    return "<unknown>" if created is None else human_duration(now - created)


# -- pods ------------------------------------------------------------------------------------

POD_COLUMNS = [
    _column("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    _column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", "string", "The aggregate status of the containers in this pod."),
    _column(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    _column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
    _column(
        "IP",
        "string",
        "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        priority=1,
    ),
    _column(
        "Node",
        "string",
        "NodeName is a request to schedule this pod onto a specific node.",
        priority=1,
    ),
    _column(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node.",
        priority=1,
    ),
    _column(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
        priority=1,
    ),
]


def pod_status_text(pod: dict[str, Any]) -> tuple[str, int, int, int]:
    """(STATUS, ready containers, total containers, restarts) as kubectl's printPod derives them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    total = len(spec.get("containers") or [])
    reason = status.get("reason") or status.get("phase") or "Pending"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_reason, restarts = _init_containers_text(
        status, init_total=len(spec.get("initContainers") or [])
    )
    ready = 0
    if init_reason is not None:
        reason = init_reason
    else:
        reason, ready, container_restarts = _containers_text(status, reason)
        restarts += container_restarts
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, total, restarts


def _init_containers_text(status: dict[str, Any], *, init_total: int) -> tuple[str | None, int]:
    """(STATUS while the pod is still initializing, else None; restarts of the init containers
    up to the first that has not succeeded — printPod stops there)."""
    restarts = 0
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        terminated = state.get("terminated")
        if terminated is not None and terminated.get("exitCode") == 0:
            continue
        if terminated is not None:
            reason = "Init:" + (
                terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
            )
        elif (state.get("waiting") or {}).get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{index}/{init_total}"
        return reason, restarts
    return None, restarts


def _containers_text(status: dict[str, Any], reason: str) -> tuple[str, int, int]:
    """(STATUS, ready containers, restarts) of an initialized pod. printPod walks the
    containers backwards, so the first in list order that is waiting with a reason, or
    terminated, decides STATUS; otherwise the pod-level `reason` stands."""
    restarts = 0
    ready = 0
    running = False
    for container in reversed(status.get("containerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting is not None and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated is not None:
            if terminated.get("signal"):
                reason = f"Signal:{terminated['signal']}"
            else:
                reason = f"ExitCode:{terminated.get('exitCode', 0)}"
        elif container.get("ready") and state.get("running") is not None:
            running = True
            ready += 1
    if reason == "Completed" and running:
        pod_ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        reason = "Running" if pod_ready else "NotReady"
    return reason, ready, restarts


def _pod_cells(pod: dict[str, Any], now: float) -> list[Any]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    reason, ready, total, restarts = pod_status_text(pod)
    gates = spec.get("readinessGates") or []
    if gates:
        true_types = {
            c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"
        }
        gate_text = f"{sum(1 for g in gates if g.get('conditionType') in true_types)}/{len(gates)}"
    else:
        gate_text = "<none>"
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        age(pod, now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gate_text,
    ]


# -- nodes -----------------------------------------------------------------------------------

NODE_COLUMNS = [
    _column("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    _column("Status", "string", "The status of the node"),
    _column("Roles", "string", "The roles of the node"),
    _column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
    _column("Version", "string", "Kubelet Version reported by the node."),
    _column(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node. Queried from cloud provider, if available.",
        priority=1,
    ),
    _column(
        "External-IP",
        "string",
        "List of addresses reachable to the node. Queried from cloud provider, if available.",
        priority=1,
    ),
    _column(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        priority=1,
    ),
    _column(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        priority=1,
    ),
    _column(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        priority=1,
    ),
]


def node_status_text(node: dict[str, Any]) -> str:
    conditions = (node.get("status") or {}).get("conditions") or []
    states = []
    for condition in conditions:
        if condition.get("type") == "Ready":
            states.append(
                "Ready"
                if condition.get("status") == "True"
                else "NotReady"
                if condition.get("status") == "False"
                else "Unknown"
            )
    if not states:
        states.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_roles(node: dict[str, Any]) -> str:
    roles = set()
    for key, value in ((node.get("metadata") or {}).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_cells(node: dict[str, Any], now: float) -> list[Any]:
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return (
            next((a.get("address") for a in addresses if a.get("type") == kind), None) or "<none>"
        )

    return [
        node["metadata"]["name"],
        node_status_text(node),
        _node_roles(node),
        age(node, now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


# -- the rest --------------------------------------------------------------------------------

NAMESPACE_COLUMNS = [
    _column("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    _column("Status", "string", "The status of the namespace"),
    _column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
]

DEFAULT_COLUMNS = [
    _column("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    _column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
]


def _namespace_cells(ns: dict[str, Any], now: float) -> list[Any]:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", ""), age(ns, now)]


def _default_cells(obj: dict[str, Any], now: float) -> list[Any]:
    return [obj["metadata"]["name"], age(obj, now)]


EVENT_COLUMNS = [
    _column(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    _column(
        "Type",
        "string",
        "Type of this event (Normal, Warning), new types could be added in the future",
    ),
    _column(
        "Reason",
        "string",
        "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    _column("Object", "string", "The object that this event is about."),
    _column(
        "Subobject",
        "string",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
        priority=1,
    ),
    _column("Source", "string", "The component reporting this event.", priority=1),
    _column("Message", "string", "A human-readable description of the status of this operation."),
    _column("First Seen", "string", "The time at which the event was first recorded.", priority=1),
    _column("Count", "string", "The number of times this event has occurred.", priority=1),
    _column("Name", "string", "Name must be unique within a namespace.", priority=1, fmt="name"),
]


def _since(timestamp: str | None, now: float) -> str:
    moment = parse_timestamp(timestamp)
    return "<unknown>" if moment is None else human_duration(now - moment)


def _event_cells(event: dict[str, Any], now: float) -> list[Any]:
    first = _since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = _since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    series = event.get("series")
    if series:
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count") or count
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {host}" if host else component,
        str(event.get("message", "")).strip(),
        first,
        int(count),
        event["metadata"]["name"],
    ]


LEASE_COLUMNS = [
    _column("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    _column("Holder", "string", "The holder of the lease."),
    _column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
]


def _lease_cells(lease: dict[str, Any], now: float) -> list[Any]:
    holder = (lease.get("spec") or {}).get("holderIdentity") or "<none>"
    return [lease["metadata"]["name"], holder, age(lease, now)]


# printers.go printPodDisruptionBudget
BUDGET_COLUMNS = [
    _column("Name", "string", "Name must be unique within a namespace.", fmt="name"),
    _column("Min Available", "string", "The minimum number of pods that must be available."),
    _column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    _column(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    _column(
        "Age",
        "string",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    ),
]


def _budget_cells(budget: dict[str, Any], now: float) -> list[Any]:
    spec = budget.get("spec") or {}

    def text(key: str) -> str:
        value = spec.get(key)
        return "N/A" if value is None else str(value)

    allowed = int((budget.get("status") or {}).get("disruptionsAllowed") or 0)
    return [
        budget["metadata"]["name"],
        text("minAvailable"),
        text("maxUnavailable"),
        allowed,
        age(budget, now),
    ]


# -- custom resources ------------------------------------------------------------------------
# apiextensions-apiserver's registry/customresource/tableconvertor: a Name column, then each of
# the CRD's additionalPrinterColumns (described by its JSONPath when the CRD gives no
# description); a cell is the value at the path, converted by the column's type (a date shown
# as an age), or null when the path holds nothing.
RAYCLUSTER_COLUMNS = [
    _column(
        "Name",
        "string",
        "Name must be unique within a namespace. Is required when creating resources, although "
        "some resources may allow a client to request the generation of an appropriate name "
        "automatically. Name is primarily intended for creation idempotence and configuration "
        "definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        fmt="name",
    ),
    *(
        _column(
            name,
            type_,
            f"Custom resource definition column (in JSONPath format): {path}",
            priority=priority,
        )
        for name, type_, path, priority in rayclusters.PRINTER_COLUMNS
    ),
]


def _json_path(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for key in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _raycluster_cells(cluster: dict[str, Any], now: float) -> list[Any]:
    cells: list[Any] = [cluster["metadata"]["name"]]
    for _, type_, path, _ in rayclusters.PRINTER_COLUMNS:
        value = _json_path(cluster, path)
        if value is None or isinstance(value, (dict, list)):
            cells.append(None)
        elif type_ == "date":
            created = parse_timestamp(str(value))
            cells.append("<unknown>" if created is None else human_duration(now - created))
        elif type_ == "integer":
            cells.append(value if isinstance(value, int) else None)
        else:
            cells.append(str(value))
    return cells


PRINTERS: dict[str, tuple[list[dict[str, Any]], Cells]] = {
    "pods": (POD_COLUMNS, _pod_cells),
    "nodes": (NODE_COLUMNS, _node_cells),
    "namespaces": (NAMESPACE_COLUMNS, _namespace_cells),
    "events": (EVENT_COLUMNS, _event_cells),
    "leases": (LEASE_COLUMNS, _lease_cells),
    "poddisruptionbudgets": (BUDGET_COLUMNS, _budget_cells),
    "rayclusters": (RAYCLUSTER_COLUMNS, _raycluster_cells),
}


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    group_version = "meta.k8s.io/v1"
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": group_version,
        "metadata": obj.get("metadata") or {},
    }


def table(
    resource: str,
    objects: Iterable[dict[str, Any]],
    *,
    now: float,
    api_version: str = "meta.k8s.io/v1",
    include_object: str = "PartialObjectMetadata",
    with_columns: bool = True,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Table of `objects`; `with_columns=False` omits the definitions, as watch events after
    the first do to save bandwidth (kubectl reuses the last ones it saw)."""
    columns, cells = PRINTERS.get(resource, (DEFAULT_COLUMNS, _default_cells))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(obj, now)}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata or {},
        "columnDefinitions": columns if with_columns else [],
        "rows": rows,
    }

"""Node Events about scale-in, as cluster-autoscaler records them: `ScaleDown` when a node's
removal is requested, `ScaleDownFailed` (Warning) when it did not happen. Events are for people:
one that cannot be recorded is counted and logged, never an error of the removal."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from agent.actuate.actuation import kube_event
from agent.clients.kube import KubeError, KubeUnreachable

log = logging.getLogger(__name__)

EVENT_NAMESPACE = "default"  # where Events about cluster-scoped objects (nodes) live
SCALE_DOWN = "ScaleDown"
SCALE_DOWN_FAILED = "ScaleDownFailed"


class EventWriter(Protocol):
    async def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...


def node_event(
    node: str, *, reason: str, message: str, now: str, event_type: str = "Normal"
) -> dict[str, Any]:
    """A core/v1 Event about a Node (cluster-scoped: the Event lives in `default`)."""
    involved = {"apiVersion": "v1", "kind": "Node", "name": node}
    return kube_event(
        involved, EVENT_NAMESPACE, reason=reason, message=message, now=now, event_type=event_type
    )


async def record_event(
    kube: EventWriter,
    node: str,
    *,
    reason: str,
    message: str,
    now: str,
    event_type: str = "Normal",
) -> bool:
    """Create the Event; False when it could not be recorded."""
    try:
        await kube.create_event(
            EVENT_NAMESPACE,
            node_event(node, reason=reason, message=message, now=now, event_type=event_type),
        )
    except (KubeError, KubeUnreachable) as error:
        log.info("event not recorded", extra={"reason": reason, "error": type(error).__name__})
        return False
    return True

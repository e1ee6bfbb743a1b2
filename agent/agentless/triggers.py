"""What woke the reconcile function, read from its event bytes, and whether it is worth a round.

Two triggers are deployed (template.yml, s.yaml):
- EventBridge: a CloudEvents 1.0 envelope (`id`, `source`, `specversion`, `type`, `time`,
  `subject`, `data`, plus Alibaba's `aliyun*` extensions). ACK's Kubernetes Events reach it from
  ack-node-problem-detector's eventer with EventBridge as its sink, typed by the involved
  object's kind: `cs:k8s:PodRelatedEvent` for pods (EventBridge "ACK events"). The fields of
  `data` are not documented there: this reads them as the core/v1 Event the eventer forwards
  (`reason`, `involvedObject.{kind,namespace,name}`) and refuses anything else — strict on
  purpose, a looser reading would wake on events it cannot vouch for.
- Timer: `{"triggerTime", "triggerName", "payload"}` (Function Compute "Time triggers": the
  trigger message is the event's `payload`).

An Event carries no pod labels, so "only Ray workers" is judged on what it does carry: the
namespace (when one is configured) and KubeRay's worker pod name, `<cluster>-<group>-worker-…`
(KubeRay utils.PodName), narrowed to `<ray cluster>-` when one is configured. The round's own
LIST then applies the label selector, as `once` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.app.settings import AgentConfig

POD_EVENT_TYPE = "cs:k8s:PodRelatedEvent"
FAILED_SCHEDULING = "FailedScheduling"
WORKER_NAME_MARK = "-worker-"  # KubeRay names worker pods <cluster>-<group>-worker-<suffix>


@dataclass(frozen=True)
class PodEvent:
    """An EventBridge event about a pod."""

    event_id: str
    reason: str
    kind: str
    namespace: str
    name: str
    # the CloudEvent's `time` (when the event occurred) in epoch seconds; None when absent or
    # unreadable, and then no earlier round can be said to cover it
    occurred_at: float | None = None


@dataclass(frozen=True)
class TimerTick:
    """A Timer trigger's invocation."""

    trigger_name: str
    trigger_time: str


@dataclass(frozen=True)
class Unknown:
    """An event of neither shape."""

    why: str


Trigger = PodEvent | TimerTick | Unknown


def read_trigger(event: bytes) -> Trigger:
    """The trigger an event came from, or Unknown with the reason it is not one."""
    try:
        body = json.loads(event or b"null")
    except ValueError:
        return Unknown("the event is not JSON")
    if not isinstance(body, dict):
        return Unknown("the event is not a JSON object")
    if "triggerTime" in body and "triggerName" in body:
        return TimerTick(str(body["triggerName"]), str(body["triggerTime"]))
    if body.get("specversion") and "type" in body:
        return _cloud_event(body)
    return Unknown("neither a CloudEvent nor a Timer trigger event")


def _cloud_event(body: dict[str, Any]) -> Trigger:
    if body.get("type") != POD_EVENT_TYPE:
        return Unknown(f"event type {body.get('type')!r}, not {POD_EVENT_TYPE}")
    data = body.get("data")
    if isinstance(data, str):  # a CloudEvent may carry JSON data as text
        try:
            data = json.loads(data)
        except ValueError:
            return Unknown("the event's data is not JSON")
    if not isinstance(data, dict):
        return Unknown("the event has no data object")
    involved = data.get("involvedObject")
    if not isinstance(involved, dict):
        return Unknown("the event's data has no involvedObject")
    return PodEvent(
        event_id=str(body.get("id", "")),
        reason=str(data.get("reason", "")),
        kind=str(involved.get("kind", "")),
        namespace=str(involved.get("namespace", "")),
        name=str(involved.get("name", "")),
        occurred_at=epoch_of(body.get("time")),
    )


def epoch_of(text: Any) -> float | None:
    """Epoch seconds of an RFC 3339 time (CloudEvents' `time`); None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None


def why_not(event: PodEvent, config: AgentConfig) -> str | None:
    """Why this pod event is no reason to reconcile (None: it is one)."""
    if event.kind != "Pod" or event.reason != FAILED_SCHEDULING:
        return f"{event.kind} {event.reason}, not a Pod FailedScheduling"
    if config.namespace and event.namespace != config.namespace:
        return f"namespace {event.namespace}, not {config.namespace}"
    if WORKER_NAME_MARK not in event.name:
        return f"pod {event.name} is not named as a KubeRay worker"
    if config.ray_cluster and not event.name.startswith(f"{config.ray_cluster}-"):
        return f"pod {event.name} is not a worker of Ray cluster {config.ray_cluster}"
    return None

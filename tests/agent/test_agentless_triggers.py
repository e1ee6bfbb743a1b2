"""What woke the reconcile function, read from its event bytes, and which pod events are worth a
round: a Timer tick, an EventBridge CloudEvent about a Ray worker's FailedScheduling (data as an
object or as JSON text), and the events turned away with the reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.agentless.triggers import PodEvent, TimerTick, Unknown, read_trigger, why_not
from agent.app.settings import AgentConfig


def cloud_event(**data: Any) -> dict[str, Any]:
    involved = {"kind": "Pod", "namespace": "ray", "name": "rc-g-worker-ab12c"}
    involved.update(data.pop("involved", {}))
    return {
        "id": "e-1",
        "source": "acs.cs",
        "specversion": "1.0",
        "type": "cs:k8s:PodRelatedEvent",
        "data": {"reason": "FailedScheduling", "involvedObject": involved, **data},
    }


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def test_a_timer_tick_is_read_as_one() -> None:
    """FC's Timer event: triggerTime, triggerName, payload."""
    event = {"triggerTime": "2026-12-04T17:00:00Z", "triggerName": "timer", "payload": ""}
    assert read_trigger(encoded(event)) == TimerTick("timer", "2026-12-04T17:00:00Z")


@pytest.mark.parametrize("as_text", [False, True], ids=["data-object", "data-json-text"])
def test_a_worker_failed_scheduling_event_is_worth_a_round(as_text: bool) -> None:
    """The CloudEvent's data read as the core/v1 Event, whether an object or JSON text."""
    body = cloud_event()
    if as_text:
        body["data"] = json.dumps(body["data"])
    trigger = read_trigger(encoded(body))
    assert trigger == PodEvent("e-1", "FailedScheduling", "Pod", "ray", "rc-g-worker-ab12c")
    assert isinstance(trigger, PodEvent)
    assert why_not(trigger, AgentConfig(namespace="ray", ray_cluster="rc")) is None


@pytest.mark.parametrize(
    ("event", "config", "why"),
    [
        (cloud_event(reason="Scheduled"), AgentConfig(), "not a Pod FailedScheduling"),
        (cloud_event(involved={"namespace": "web"}), AgentConfig(namespace="ray"), "namespace web"),
        (cloud_event(involved={"name": "web-7d9f-x2"}), AgentConfig(), "not named as a KubeRay"),
        (cloud_event(), AgentConfig(ray_cluster="other"), "not a worker of Ray cluster other"),
    ],
    ids=["another-reason", "another-namespace", "not-a-worker", "another-ray-cluster"],
)
def test_other_pod_events_are_turned_away_with_the_reason(
    event: dict[str, Any], config: AgentConfig, why: str
) -> None:
    trigger = read_trigger(encoded(event))
    assert isinstance(trigger, PodEvent)
    reason = why_not(trigger, config)
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        encoded({"hello": "world"}),
        encoded({**cloud_event(), "type": "cs:k8s:NodeRelatedEvent"}),
        encoded({**cloud_event(), "data": {"reason": "FailedScheduling"}}),
    ],
    ids=["not-json", "not-an-object", "neither-shape", "another-type", "no-involved-object"],
)
def test_anything_else_is_unknown(raw: bytes) -> None:
    assert isinstance(read_trigger(raw), Unknown)


@pytest.mark.parametrize(
    ("time_field", "expected"),
    [
        pytest.param("2026-12-04T17:00:01.250Z", 1796403601.25, id="rfc3339"),
        pytest.param(None, None, id="absent"),
        pytest.param("yesterday", None, id="unreadable"),
        pytest.param("2026-12-04T17:00:01", None, id="no-zone"),
    ],
)
def test_the_event_time_is_read_and_a_missing_one_covers_nothing(
    time_field: str | None, expected: float | None
) -> None:
    """The CloudEvent's `time` is when the event occurred (what a round's start is compared
    with); absent, unreadable or without a zone it is None, and no round covers the event."""
    body = cloud_event()
    if time_field is not None:
        body["time"] = time_field
    trigger = read_trigger(encoded(body))
    assert isinstance(trigger, PodEvent) and trigger.occurred_at == expected

"""Table cells as kubectl prints them: pod STATUS through a pod's life, node STATUS and ROLES,
and AGE in apimachinery's human durations."""

from __future__ import annotations

import pytest

from agent.sim.kube.tables import human_duration, node_status_text, pod_status_text, table
from tests.support.builders import build_test_pod


def pod(**status) -> dict:
    return build_test_pod(
        "p", created="2026-01-01T00:00:00Z", container="c", image=None, node="n1", status=status
    )


def container(state: dict, *, ready: bool = False, restarts: int = 0) -> list[dict]:
    return [{"name": "c", "ready": ready, "restartCount": restarts, "state": state}]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pod(phase="Pending"), ("Pending", 0)),
        (pod(phase="Pending", containerStatuses=container({"waiting": {"reason": "ContainerCreating"}})),
         ("ContainerCreating", 0)),
        (pod(phase="Running", containerStatuses=container({"running": {}}, ready=True)), ("Running", 1)),
        (pod(phase="Succeeded", containerStatuses=container({"terminated": {"reason": "Completed", "exitCode": 0}})),
         ("Completed", 0)),
        (pod(phase="Failed", containerStatuses=container({"terminated": {"exitCode": 137}})), ("ExitCode:137", 0)),
        (pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
         ("SchedulingGated", 0)),
    ],
)  # fmt: skip
def test_pod_status_column(obj, expected):
    """STATUS and ready count follow the pod's phase and container states as kubectl derives them."""
    reason, ready, total, _ = pod_status_text(obj)
    assert (reason, ready) == expected and total == 1


def test_terminating_wins():
    """A pod with a deletionTimestamp prints Terminating whatever its containers do."""
    obj = pod(phase="Running", containerStatuses=container({"running": {}}, ready=True))
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:30Z"
    assert pod_status_text(obj)[0] == "Terminating"


def test_node_status_and_cordon():
    """Ready/NotReady from the Ready condition, SchedulingDisabled when cordoned."""
    node = {
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert node_status_text(node) == "NotReady,SchedulingDisabled"
    assert node_status_text({"status": {}}) == "Unknown"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (0, "0s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
     (10 * 3600, "10h"), (3 * 86400 + 3600, "3d1h"), (30 * 86400, "30d"), (800 * 86400, "2y70d")],
)  # fmt: skip
def test_human_durations(seconds, text):
    """AGE reads as kubectl prints it."""
    assert human_duration(seconds) == text


def test_pod_row_cells_and_columns():
    """A pod row has nine cells; the wide columns have priority 1."""
    rendered = table("pods", [pod(phase="Pending")], now=1767225600.0 + 90)
    assert rendered["rows"][0]["cells"] == [
        "p",
        "0/1",
        "Pending",
        "0",
        "90s",
        "<none>",
        "n1",
        "<none>",
        "<none>",
    ]
    assert [c["priority"] for c in rendered["columnDefinitions"]] == [0] * 5 + [1] * 4
    assert rendered["rows"][0]["object"]["kind"] == "PartialObjectMetadata"

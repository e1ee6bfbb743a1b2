"""`python -m agent status` as a person reads it: requests in human units, and ECI's state said
plainly (off, on without a virtual node yet, or on with its pods), and why the last round did what
it did."""

from __future__ import annotations

import pytest

from agent.app.commands import human_quantity, render_status


@pytest.mark.parametrize(
    ("resource", "value", "shown"),
    [
        ("memory", "1073741824", "1 GiB"),
        ("memory", "1536Mi", "1.5 GiB"),
        ("memory", "512Mi", "512 MiB"),
        ("ephemeral-storage", "2Ti", "2 TiB"),
        ("cpu", "500m", "0.5 vCPU"),
        ("cpu", "4", "4 vCPU"),
        ("nvidia.com/gpu", "1", "1"),
        ("memory", "not-a-quantity", "not-a-quantity"),
    ],
)
def test_requests_are_shown_in_human_units(resource: str, value: str, shown: str) -> None:
    """Bytes in binary units as kubectl shows them; CPU in vCPU; anything unparsable as is."""
    assert human_quantity(resource, value) == shown


def test_pending_pods_show_their_requests_in_human_units() -> None:
    """`memory: 1073741824` becomes `memory: 1 GiB` in the Pending section."""
    text = render_status(
        {
            "pending": [
                {
                    "pod": "ray/w-1",
                    "requests": {"cpu": "1", "memory": "1073741824"},
                    "since": "2026-01-01T00:00:00Z",
                }
            ]
        }
    )
    assert "ray/w-1  {cpu: 1 vCPU, memory: 1 GiB}" in text
    assert "1073741824" not in text


@pytest.mark.parametrize(
    ("eci", "line"),
    [
        ({"enabled": False, "virtualNodes": [], "runningPods": 0}, " ECI: off"),
        ({"enabled": True, "virtualNodes": [], "runningPods": 0}, " ECI: on, but no ECI virtual"),
        (
            {"enabled": True, "virtualNodes": ["virtual-kubelet-z"], "runningPods": 3},
            " ECI: on, 3 pods running on virtual-kubelet-z",
        ),
    ],
)
def test_eci_line_says_whether_eci_is_used(eci: dict, line: str) -> None:
    """Never "0 pods on no virtual node": off when the agent does not use ECI."""
    text = render_status({"eci": eci})
    assert any(row.startswith(line) for row in text.splitlines()), text
    assert "no virtual node" not in text


def test_the_last_decision_says_why_for_each_action() -> None:
    """The decide/v1 reason of each action of the last round, under it."""
    last = {
        "at": "2026-01-01T00:00:00Z",
        "reason": "pods",
        "pods": 15,
        "outcome": "scaled",
        "seconds": 0.03,
        "pools_written": [{"pool": "np-cpu", "from": 0, "to": 4}],
        "eci_placed": 3,
        "actions": [
            {"kind": "scale-pool", "pool": "np-cpu", "pods": 12, "reason": "cost: np-cpu 0.05"},
            {"kind": "place-on-eci", "pool": "", "pods": 3, "reason": "eci-first: ECI can run"},
        ],
    }
    lines = render_status({"lastDecision": last}).splitlines()
    assert "  why np-cpu (12 pods): cost: np-cpu 0.05" in lines
    assert "  why ECI (3 pods): eci-first: ECI can run" in lines


def test_anticipated_workers_are_counted_under_pending() -> None:
    """Workers a RayCluster wants that have no pod yet are said apart from the pods."""
    assert " + 4 anticipated worker(s), no pod yet" in render_status({"anticipatedWorkers": 4})
    assert "anticipated" not in render_status({"anticipatedWorkers": 0})

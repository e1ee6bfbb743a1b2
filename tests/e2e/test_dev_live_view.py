"""The live view's one clock, and the agent's log lines kept off the terminal: they go to the run
folder's agent.log, and the warnings among them come back as `[t+…] agent warning:` lines."""

from __future__ import annotations

import io
import logging

import structlog

from agent.dev.agent_log import AgentLogTap, route_agent_logs, warning_text
from agent.dev.live_view import LiveView
from agent.dev.summary import Decision, Sample


def sample(t: float) -> Sample:
    return Sample(t=t, pending=1, starting=0, running=0, eci=0, nodes=())


def stamps(text: str) -> list[int]:
    return [int(line[3:8]) for line in text.splitlines()]


def test_a_round_that_started_before_the_last_status_line_does_not_step_back():
    """Status at t+338, then a round that began at t+336 seen at t+337: printed at t+338."""
    out = io.StringIO()
    view = LiveView(out, task_count=1, monotonic=lambda: 0.0)
    view.show(sample(338.0), pools={}, tasks_done=0)
    view.decision(337.0, Decision(t=336.0, outcome="scaled", pods=1, text="pods round"))
    view.warning(339.2, "scale-out failed (pool np)")
    assert stamps(out.getvalue()) == [338, 338, 339]
    assert out.getvalue().splitlines()[2].endswith("agent warning: scale-out failed (pool np)")


def test_each_action_of_a_decision_gets_a_why_line_under_it():
    """The decide/v1 reasons, where a person watching looks: one line per action."""
    out = io.StringIO()
    view = LiveView(out, task_count=1, monotonic=lambda: 0.0)
    reasons = (
        "np-cpu (13 pods): cost: np-cpu 0.062/pod·run, the only option that fits",
        "ECI (2 pods): eci-first: ECI can run the pods",
    )
    view.decision(21.0, Decision(t=20.0, outcome="scaled", pods=15, text="x", reasons=reasons))
    assert out.getvalue().splitlines() == [
        "[t+   21s] decision: x",
        f"[t+   21s]   why: {reasons[0]}",
        f"[t+   21s]   why: {reasons[1]}",
    ]


def test_agent_log_lines_go_to_the_file_and_warnings_to_the_tap(tmp_path, capsys):
    """structlog and stdlib warnings: none on the terminal, all in agent.log, fields in the tap."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    tap = AgentLogTap()
    handler = route_agent_logs(tmp_path / "agent.log", tap)
    try:
        structlog.get_logger("agent.app.loop").warning("error", source="decider", message="boom")
        logging.getLogger("agent.actuate.actuation").warning(
            "scale-out failed", extra={"pool": "np-a", "error": "OperationDenied.NoStock: sold"}
        )
        logging.getLogger("agent.clients.cs").info(
            "cs call retried", extra={"action": "ModifyClusterNodePool", "code": "Throttling.User"}
        )
        logging.getLogger("agent.app.loop").info("view synced")  # neither tapped nor a warning
    finally:
        handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    log = (tmp_path / "agent.log").read_text()
    assert "scale-out failed" in log and "view synced" in log and "boom" in log
    events = tap.drain()
    assert [e["event"] for e in events] == ["error", "scale-out failed", "cs call retried"]
    assert events[1]["pool"] == "np-a" and events[2]["code"] == "Throttling.User"
    assert warning_text(events[1]) == (
        "scale-out failed (pool np-a, error OperationDenied.NoStock: sold)"
    )

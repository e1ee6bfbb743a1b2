"""What the agent logs during a dev-mode run, and where it goes.

The agent's log lines are wall-clock structlog lines; printed as they come they would interleave
with the live view's simulated `[t+…]` lines in an order no clock explains. So in dev mode every
line goes to `agent.log` in the run folder (`route_agent_logs`), and `AgentLogTap` keeps the
structured fields of the events the run needs — decision rounds, scale-in rounds, errors, the
refusals the summary counts, and every warning — for the live view to print on its own clock.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

from agent.app.logs import configure_logging

# Events the run reads whatever their level: rounds, errors, and the refusals `error_codes` counts.
TAPPED_EVENTS = frozenset(
    {
        "decision round",
        "scale-in round",
        "error",
        "cs call retried",
        "cs call failed",
        "decider retried",
        "scale-out failed",
        "watch restart",
    }
)
# Attributes every LogRecord has; whatever else a record carries came as the logger's `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
# structlog's own keys, not fields of the event.
_META = frozenset({"event", "level", "logger", "timestamp", "levelno"})


class AgentLogTap(logging.Handler):
    """The agent's structured log events the run needs, with their fields, as they happen.

    structlog events arrive with their event dict as the record's message; stdlib loggers (the
    actuator, the clients) pass their fields as `extra`. Either way only the fields are kept —
    never the rendered text — so the run sees each event, even several between two ticks."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.events: deque[dict[str, Any]] = deque()

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            fields = dict(record.msg)
            name = fields.get("event")
        else:
            name = record.msg if isinstance(record.msg, str) else None
            fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        if name in TAPPED_EVENTS or record.levelno >= logging.WARNING:
            self.events.append({**fields, "event": name, "levelno": record.levelno})

    def drain(self) -> list[dict[str, Any]]:
        events = list(self.events)
        self.events.clear()
        return events


def warning_text(event: dict[str, Any]) -> str:
    """One warning event on one line: `scale-out failed (pool np-a, error OperationDenied...)`."""
    fields = ", ".join(
        f"{k} {v}" for k, v in event.items() if k not in _META and v not in ("", None)
    )
    return f"{event.get('event')}" + (f" ({fields})" if fields else "")


def route_agent_logs(log_file: Path, tap: AgentLogTap) -> logging.FileHandler:
    """Every agent log line (INFO and up) to `log_file`, none to the terminal; the tap sees them
    too. Returns the file's handler, for the caller to close."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    configure_logging(fmt="console", level="info", stream=None)
    root = logging.getLogger()
    handler = logging.FileHandler(log_file, encoding="utf-8")
    # the formatter configure_logging built: the same rendering as `agent run`
    handler.setFormatter(root.handlers[0].formatter)
    root.handlers[:] = [handler, tap]
    return handler

"""Log setup: one JSON object per line in the cluster, readable lines locally, for structlog and
standard-library loggers alike."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from agent.app.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_lines_carry_fields_from_both_logger_kinds() -> None:
    """structlog key-values and stdlib `extra` both land in the JSON object."""
    out = io.StringIO()
    configure_logging(fmt="json", level="info", stream=out)
    structlog.get_logger("agent.runner").info("decision round", pods=3)
    logging.getLogger("agent.actuation").info("decision applied", extra={"decision_id": "d1"})
    logging.getLogger("agent.actuation").debug("not shown at info")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["decision round", "decision applied"]
    assert records[0]["pods"] == 3 and records[0]["level"] == "info"
    assert records[1]["decision_id"] == "d1" and records[1]["logger"] == "agent.actuation"
    assert all(r["timestamp"].endswith("Z") for r in records)


def test_console_format_is_plain_text() -> None:
    """Console lines are readable text with the event and its fields, not JSON."""
    out = io.StringIO()
    configure_logging(fmt="console", level="debug", stream=out)
    structlog.get_logger("agent.watching").info("watch restart", stream="nodes", reason="eof")
    line = out.getvalue().strip()
    assert "watch restart" in line and "reason=eof" in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_sdk_loggers_stay_quiet_at_debug() -> None:
    """Even at debug, SDK loggers (which could dump signed requests) stay at WARNING."""
    configure_logging(fmt="json", level="debug", stream=io.StringIO())
    assert logging.getLogger("kubernetes_asyncio").getEffectiveLevel() == logging.WARNING

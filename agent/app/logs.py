"""Log setup: structlog rendering JSON lines in the cluster (one object per line, for Log
Service / SLS) or a readable console format locally. Standard-library loggers (ours and the
SDKs') go through the same renderer, so every line of the process looks alike.

Secrets never reach a log line through here: nothing logs credentials, and the SDKs' own loggers
are kept at WARNING so request dumps with signed headers are not printed at debug level.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

NOISY_LOGGERS = ("aiohttp.access", "kubernetes_asyncio", "alibabacloud_credentials", "urllib3")


def configure_logging(
    *, fmt: str = "console", level: str = "info", stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging to `stream` (stderr) as JSON or console lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any
    if fmt == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # stdlib loggers (actuation, the deciders) pass their fields as `extra`: keep them
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))

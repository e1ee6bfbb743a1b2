"""`decide`: one decide/v1 request in, one reply out — pure, deterministic, no clock, no I/O."""
from __future__ import annotations

from typing import Any

from functions.plan import make_plan
from functions.reply import build_reply
from functions.validate import parse_request


def decide(request: dict[str, Any]) -> dict[str, Any]:
    """Decide where the request's unschedulable pods go (see docs of decide/v1).

    Raises InvalidRequest or RequestTooLarge (functions.errors) for bad input.
    """
    parsed = parse_request(request)
    return build_reply(parsed, make_plan(parsed))

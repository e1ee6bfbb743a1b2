"""`decide`: one decide/v1 request in, one reply out — pure, deterministic, no I/O; the only
clock is a caller's `Deadline`, and without one the reply depends on the request alone."""

from __future__ import annotations

import gc

from functions.errors import InvalidRequest
from functions.scaleout.plan import make_plan
from functions.scaleout.reply import build_reply
from functions.scaleout.validate import parse_request

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from functions.deadline import Deadline


def decide(request: dict[str, Any], *, deadline: Deadline | None = None) -> dict[str, Any]:
    """Decide where the request's unschedulable pods go (the decide/v1 contract).

    With a `deadline`, narrowed to the request's `policy.maxDecisionSeconds`, pods the time
    limit leaves unplanned are deferred (functions.deadline); without one, nothing is.
    Raises InvalidRequest or RequestTooLarge (functions.errors) for bad input.
    """
    # A decision makes no reference cycles (reference counting frees all it drops), but it
    # allocates enough that the cyclic collector runs over and over, once in full over every
    # object of the request: a tenth of a 2,000-shape decision, freeing nothing
    # (docs/benchmarks.md). So it is paused for the call, and the other threads of a process
    # that decides in a thread go without it for that long.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _decide(request, deadline=deadline)
    finally:
        if paused:
            gc.enable()


def _decide(request: dict[str, Any], *, deadline: Deadline | None) -> dict[str, Any]:
    try:
        parsed = parse_request(request)
    except RecursionError:
        # Only an in-process caller can build this: JSON that deep fails to parse first.
        raise InvalidRequest("the request is nested too deeply", path="") from None
    if deadline is not None:
        deadline = deadline.within(parsed.max_decision_seconds)
    plan = make_plan(parsed, deadline=deadline)
    return build_reply(parsed, plan, deferred_reason=_deferred_reason(deadline))


def _deferred_reason(deadline: Deadline | None) -> str:
    if deadline is None:
        return ""
    return deadline.reason("this pod was planned; it stays pending for the next decision")

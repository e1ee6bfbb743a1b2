"""A decision's time limit, read on a clock its caller passes in: the core never reads one.

The Function Compute handlers and the CLI start a `Deadline` when a request arrives; the core
narrows it to the request's own `policy.maxDecisionSeconds` and checks it between units of work
(a pod group of decide/v1, a candidate node of scale-in/v1). Once it has passed, what is left is
deferred to the next decision, and the reply says so, instead of the platform's timeout
answering for it. A call without a deadline never defers, so the core stays deterministic.
"""

from __future__ import annotations

from functions import readers
from functions.contract import DEFERRED, MAX_DECISION_SECONDS

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


class Deadline:
    """`seconds` after `started` on `clock` (any monotonic seconds counter)."""

    __slots__ = ("_clock", "_started", "seconds")

    def __init__(
        self, seconds: float, *, clock: Callable[[], float], started: float | None = None
    ) -> None:
        self._clock = clock
        self._started = clock() if started is None else started
        self.seconds = seconds

    def passed(self) -> bool:
        return self._clock() - self._started >= self.seconds

    def within(self, seconds: float | None) -> Deadline:
        """This deadline, or the earlier one `seconds` after the same start (a request's own)."""
        if seconds is None or seconds >= self.seconds:
            return self
        return Deadline(seconds, clock=self._clock, started=self._started)

    def reason(self, before: str) -> str:
        """The reason given for what is deferred: `before` says what had not happened yet."""
        return f"{DEFERRED}: the decision's time limit ({self.seconds:g} s) ran out before {before}"


def requested_seconds(policy: dict[str, Any]) -> float | None:
    """`policy.maxDecisionSeconds` of a request, validated; None when it sets none."""
    raw = policy.get(MAX_DECISION_SECONDS)
    if raw is None:
        return None
    return readers.seconds(raw, path=f"policy.{MAX_DECISION_SECONDS}")


# Function Compute: 80% of the 30 s timeout template.yml and s.yaml deploy, so the reply (with
# what is left deferred) goes out before the platform's timeout would answer instead.
DEFAULT_TIME_LIMIT_SECONDS = 24.0
TIME_LIMIT_ENV = "DECIDE_TIME_LIMIT_SECONDS"


def time_limit_from(environ: Mapping[str, str]) -> float:
    """DECIDE_TIME_LIMIT_SECONDS from `environ`, else the default; ValueError when unusable."""
    text = environ.get(TIME_LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_TIME_LIMIT_SECONDS
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{TIME_LIMIT_ENV}={text!r} is not a number of seconds") from None
    if not value > 0:  # also refuses NaN
        raise ValueError(f"{TIME_LIMIT_ENV}={text!r} must be positive")
    return value

"""The decision core: pure, standard-library-only scale-out (decide/v1) and scale-in (scale-in/v1)."""

from __future__ import annotations

from functions.errors import DecisionError, InvalidRequest, RequestTooLarge
from functions.scaleout.decision import decide

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from functions.deadline import Deadline

__all__ = ["DecisionError", "InvalidRequest", "RequestTooLarge", "decide", "scale_in"]


def scale_in(request: dict[str, Any], *, deadline: Deadline | None = None) -> dict[str, Any]:
    """Which nodes to give back to their pools, and why the others stay (scale-in/v1).

    With a `deadline` (functions.deadline), candidates it leaves unchecked are deferred.
    Raises InvalidRequest or RequestTooLarge (functions.errors) for bad input.
    """
    # Imported on first use: a scale-out cold start never loads the scale-in modules.
    from functions.scalein.decision import scale_in as decide_scale_in

    return decide_scale_in(request, deadline=deadline)

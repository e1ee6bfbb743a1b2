"""The decision core: a pure, standard-library-only scale-out planner (decide/v1)."""
from __future__ import annotations

from functions.decision import decide
from functions.errors import DecisionError, InvalidRequest, RequestTooLarge

__all__ = ["DecisionError", "InvalidRequest", "RequestTooLarge", "decide"]

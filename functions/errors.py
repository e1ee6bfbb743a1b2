"""The decision core's error values: what a caller did wrong, with the JSON path that says where."""

from __future__ import annotations

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class DecisionError(Exception):
    """A request the core refuses; `to_json()` is the contract's error object."""

    code = "DecisionError"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "path": self.path}}


class InvalidRequest(DecisionError):
    """Malformed, mistyped, missing or absurd input."""

    code = "InvalidRequest"


class RequestTooLarge(DecisionError):
    """More pods or pools than one decision accepts; the caller must split the request."""

    code = "RequestTooLarge"

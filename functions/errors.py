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
        return {
            "error": {"code": self.code, "message": _text(self.message), "path": _text(self.path)}
        }


def _text(value: str) -> str:
    # Messages and paths quote the caller's strings. One holding a lone surrogate (only an
    # in-process caller can build it: the reader refuses them in bodies) is escaped, so the error
    # object always encodes as UTF-8.
    if value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


class InvalidRequest(DecisionError):
    """Malformed, mistyped, missing or absurd input."""

    code = "InvalidRequest"


class RequestTooLarge(DecisionError):
    """More pods or pools than one decision accepts; the caller must split the request."""

    code = "RequestTooLarge"


INTERNAL_ERROR = "InternalError"


def incident_id(raw: object) -> str:
    """The id an `InternalError` reply and its log line share: the first 16 hex digits of
    sha256 over the request body as received (text as UTF-8), so the same body always names
    the same incident; random when no body was read."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        import secrets

        return secrets.token_hex(8)
    # Imported here, as in the reply builders: OpenSSL is cold-start time only this path needs.
    import hashlib

    return hashlib.sha256(raw).hexdigest()[:16]


def internal_error(decision_id: str, *, request_id: str | None = None) -> dict[str, Any]:
    """The contract's error object for a failure of the core itself (a bug, never the caller's
    input): code `InternalError`, the incident's `decisionId`, and FC's request id when there is
    one. It never carries the exception's text or traceback; the log line does."""
    where = f"decision id {decision_id}"
    if request_id is not None:
        where += f", request id {request_id}"
    error: dict[str, Any] = {
        "code": INTERNAL_ERROR,
        "message": f"the decision function failed unexpectedly; its log has the details ({where})",
        "path": "",
        "decisionId": decision_id,
    }
    if request_id is not None:
        error["requestId"] = request_id
    return {"error": error}

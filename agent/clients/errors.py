"""Errors the agent's cloud clients raise: one shape for every remote call that failed."""

from __future__ import annotations


class RemoteCallError(Exception):
    """A cloud call that failed for good: the service's code, HTTP status (None if none came back),
    message, and whether trying again later can help."""

    def __init__(self, code: str, status: int | None, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.code = code
        self.status = status
        self.message = message
        self.retryable = retryable

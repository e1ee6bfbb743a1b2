"""Deciders: who answers a decide/v1 (or scale-in/v1) request, and the checks every answer passes
before use.

The in-process decider calls `functions.decide`; the Function Compute decider invokes the deployed
function through the FC SDK (FC 3.0 or FC 2.0: any `agent.clients.fc.Invoker`); the HTTP-trigger
decider POSTs the same JSON with aiohttp, signed in the trigger's form (`RequestSigner`). Each
validates the reply against its request (schema, every pod exactly once, known pools, sizes within
bounds) with the contract's own checks, `functions.contract_checks`. `FallbackDecider` is the circuit breaker that keeps decisions flowing when Function
Compute is down: consecutive failures open it, the in-process decider answers for a cool-down,
then one trial call decides whether to close again.

A 401 or 403 from a remote decider is not an outage but a configuration error (wrong keys, role,
URL or API version): it raises `DeciderMisconfigured`, which is never retried and never answered
by the fallback — fallback is for outages, not for auth. `agent.app.remote_deciders` makes it loud
(an error log saying what to fix, a Kubernetes Event, /readyz not ready).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from agent.clients.fc import InvocationError, Invoker, RequestSigner
from agent.decide.pod_entries import encode_request
from agent.decide.split import DEFAULT_MAX_PAYLOAD_BYTES, TooLargeToSplit, decide_in_parts
from functions.contract import MAX_DECISION_SECONDS, SCALE_IN_SCHEMA
from functions.contract_checks import (
    ReplyMismatch,
    check_decide_reply,
    check_scale_in_reply,
)
from functions.contract_checks import check_reply as check_any_reply

log = logging.getLogger(__name__)


class DecisionFailed(Exception):
    """No usable reply. `retryable` says whether asking the same decider again could help."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class InvalidReply(DecisionFailed):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidReply", message, retryable=False)


# HTTP statuses that mean "these credentials may not call this function", not "try later".
AUTH_REFUSED_STATUSES = (401, 403)
HTTP_TRIGGER_FIX = (
    "check --http-url (the trigger of the deployed decision function), that --fc-api-version "
    "matches the trigger (3.0: ACS3-signed; 2.0: FC-signed), that the trigger's authType is "
    "function (or anonymous), and that the agent's credentials (its RRSA role, or the AccessKey "
    "in the environment) are valid and allowed fc:InvokeFunction on the function"
)
FC_INVOKE_FIX = (
    "check the agent's credentials (its RRSA role, or the AccessKey in the environment): valid, "
    "and allowed fc:InvokeFunction on the function; and --fc-endpoint (account id and region), "
    "--fc-function (and --fc-service for FC 2.0)"
)


class DeciderMisconfigured(DecisionFailed):
    """The remote decider refused the agent's credentials (HTTP 401 or 403): a configuration
    error. Not retryable, and no reason to decide locally instead: `fix` says what to check."""

    def __init__(self, code: str, message: str, *, status: int, fix: str) -> None:
        super().__init__(code, message, retryable=False)
        self.status = status
        self.fix = fix


class Decider(Protocol):
    async def decide(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RetrySettings:
    """Attempts per decision for a remote decider, with full-jitter backoff between them."""

    attempts: int = 2
    base_delay_seconds: float = 0.1
    max_delay_seconds: float = 1.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay_seconds, self.base_delay_seconds * (2**attempt)))


def validate_reply(reply: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """The reply, if it is a decide/v1 reply to exactly this request; InvalidReply otherwise."""
    return _checked(check_decide_reply, reply, request)


def validate_scale_in_reply(reply: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """The reply, if it is a scale-in/v1 reply to exactly this request; InvalidReply otherwise.
    Every removal must name a managed node of the request with its own pool and instance id,
    be grouped once under its pool, and leave each pool at or above its min."""
    return _checked(check_scale_in_reply, reply, request)


def check_reply(reply: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `reply` against the contract its request speaks (decide/v1 or scale-in/v1)."""
    return _checked(check_any_reply, reply, request)


def _checked(
    check: Callable[[object, Mapping[str, Any]], dict[str, Any]],
    reply: Any,
    request: Mapping[str, Any],
) -> dict[str, Any]:
    # The rules are the contract's (functions.contract_checks); a refusal here is a failed decision.
    try:
        return check(reply, request)
    except ReplyMismatch as exc:
        raise InvalidReply(str(exc)) from None


def _parse(payload: bytes | str, request: Mapping[str, Any]) -> dict[str, Any]:
    try:
        reply = json.loads(payload)
    except ValueError as exc:
        raise InvalidReply(f"the reply is not JSON ({exc})") from None
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        error = reply["error"]
        # The function refused the request: asking again, or elsewhere, gives the same answer.
        raise DecisionFailed(
            str(error.get("code", "Error")), str(error.get("message", "")), retryable=False
        )
    return check_reply(reply, request)


class LocalDecider:
    """`functions.decide` (or `functions.scale_in` for a scale-in/v1 request) in this process; large requests run in a thread so the loop stays live."""

    def __init__(self, *, thread_above_pods: int = 200) -> None:
        self._thread_above = thread_above_pods

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        import functions
        from functions.deadline import Deadline
        from functions.errors import DecisionError
        from functions.scalein.decision import scale_in

        decide = scale_in if request.get("schema") == SCALE_IN_SCHEMA else functions.decide
        size = len(request.get("pods", ())) + len(request.get("nodes", ()))
        # In process there is no platform timeout: only the request's maxDecisionSeconds binds.
        deadline = Deadline(math.inf, clock=time.monotonic)
        try:
            if size > self._thread_above:
                reply = await asyncio.to_thread(decide, request, deadline=deadline)
            else:
                reply = decide(request, deadline=deadline)
        except DecisionError as exc:
            raise DecisionFailed(exc.code, exc.message, retryable=False) from None
        return check_reply(reply, request)


class _RemoteDecider:
    """Shared retry loop of the remote deciders. With `time_limit_seconds` each request asks the
    function for an answer within that time (`policy.maxDecisionSeconds`, the earlier of it and
    the request's own), so a slow decision defers pods instead of outliving the call's timeout.

    A request whose body would be over `max_payload_bytes` (FC's 32 MB synchronous limit by
    default) is decided in parts that cannot double-count capacity, merged into one reply
    (`agent.decide.split`); `invocations` counts the calls made, parts included."""

    def __init__(
        self,
        *,
        retry: RetrySettings | None,
        rng: random.Random | None,
        time_limit_seconds: float | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self._retry = retry or RetrySettings()
        self._rng = rng or random.Random()
        self._time_limit = time_limit_seconds
        self._max_payload = max_payload_bytes
        self.split_decisions = 0  # decisions that took more than one invocation

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        request = _within(request, self._time_limit)
        # The pod entries the request builder keeps encoded are joined, not encoded again.
        payload = encode_request(request)
        if len(payload) <= self._max_payload:
            return await self._with_retries(payload, request)
        try:
            reply, parts = await decide_in_parts(
                request, self._with_retries, max_bytes=self._max_payload
            )
        except TooLargeToSplit as exc:
            raise DecisionFailed("RequestTooLarge", str(exc), retryable=False) from None
        self.split_decisions += 1
        log.info(
            "decision split over the payload limit",
            extra={"bytes": len(payload), "limit": self._max_payload, "parts": parts},
        )
        # The merged reply answers the whole request: held to the same checks as any reply.
        return check_reply(reply, request)

    async def _with_retries(self, payload: bytes, request: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self._retry.attempts):
            try:
                return await self._once(payload, request)
            except DecisionFailed as exc:
                if not exc.retryable or attempt + 1 >= self._retry.attempts:
                    raise
                delay = self._retry.delay(attempt, self._rng)
                log.info("decider retried", extra={"code": exc.code, "delay": round(delay, 3)})
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _once(self, payload: bytes, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


def _within(request: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """`request` with its `policy.maxDecisionSeconds` at most `seconds` (not part of decisionId,
    so the reply still answers the request the agent built)."""
    if seconds is None:
        return request
    policy = dict(request.get("policy") or {})
    asked = policy.get(MAX_DECISION_SECONDS)
    if isinstance(asked, (int, float)) and not isinstance(asked, bool) and asked <= seconds:
        return request
    policy[MAX_DECISION_SECONDS] = round(seconds, 3)
    return {**request, "policy": policy}


class FunctionComputeDecider(_RemoteDecider):
    """The deployed function through the FC SDK's InvokeFunction (Sync), FC 3.0 or FC 2.0."""

    def __init__(
        self,
        invoker: Invoker,
        *,
        retry: RetrySettings | None = None,
        rng: random.Random | None = None,
        time_limit_seconds: float | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            retry=retry,
            rng=rng,
            time_limit_seconds=time_limit_seconds,
            max_payload_bytes=max_payload_bytes,
        )
        self._invoker = invoker

    async def _once(self, payload: bytes, request: dict[str, Any]) -> dict[str, Any]:
        try:
            body = await self._invoker.invoke(payload)
        except InvocationError as exc:
            if exc.status in AUTH_REFUSED_STATUSES:
                raise DeciderMisconfigured(
                    exc.code, exc.message, status=exc.status, fix=FC_INVOKE_FIX
                ) from None
            raise DecisionFailed(exc.code, exc.message, retryable=exc.retryable) from None
        return _parse(body, request)


class HttpTriggerDecider(_RemoteDecider):
    """The function's HTTP trigger: POST the request JSON, read the reply JSON. With a `signer` the
    request carries the trigger's signature (FC 3.0: ACS3-HMAC-SHA256, FC 2.0: `FC ak:signature`;
    auth type function); without, the trigger must be anonymous."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        timeout_seconds: float = 10.0,
        retry: RetrySettings | None = None,
        rng: random.Random | None = None,
        signer: RequestSigner | None = None,
        time_limit_seconds: float | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            retry=retry,
            rng=rng,
            time_limit_seconds=time_limit_seconds,
            max_payload_bytes=max_payload_bytes,
        )
        self._session = session
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._signer = signer

    async def _once(self, payload: bytes, request: dict[str, Any]) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if self._signer is not None:
            # The body is signed too (its digest), so a changed body is refused by the trigger.
            headers = await self._signer.sign("POST", self._url, headers, payload)
        try:
            async with self._session.post(
                self._url, data=payload, headers=headers, timeout=self._timeout
            ) as response:
                body = await response.read()
                status = response.status
        except asyncio.TimeoutError:
            raise DecisionFailed(
                "Timeout", f"no reply within {self._timeout.total}s", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            raise DecisionFailed("NetworkError", type(exc).__name__, retryable=True) from None
        if status >= 500 or status == 429:
            raise DecisionFailed(
                f"HTTP{status}", body[:300].decode("utf-8", "replace"), retryable=True
            )
        if status in AUTH_REFUSED_STATUSES:
            raise DeciderMisconfigured(
                f"HTTP{status}", _refusal_text(body), status=status, fix=HTTP_TRIGGER_FIX
            )
        if status >= 400:
            try:
                return _parse(body, request)
            except InvalidReply:
                raise DecisionFailed(
                    f"HTTP{status}", body[:300].decode("utf-8", "replace"), retryable=False
                ) from None
        return _parse(body, request)


class FallbackDecider:
    """Circuit breaker: the primary (remote) decider while it works, the local one when it does not.

    Every failure of the primary in closed state is answered by the fallback at once (a decision
    is never lost to an outage); `failure_threshold` consecutive failures open the circuit, so for
    `cooldown_seconds` the primary is not even tried; after that one trial call (half-open) closes
    it again or re-opens it. A refusal of the request itself (not retryable, not a transport or
    reply problem) is the caller's bug and is raised, not hidden behind the fallback; so is
    `DeciderMisconfigured` (credentials refused): fallback is for outages, not for auth.
    """

    def __init__(
        self,
        primary: Decider,
        fallback: Decider,
        *,
        failure_threshold: int = 3,
        cooldown_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._threshold = max(1, failure_threshold)
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self.counters: dict[str, int] = {
            "primary_ok": 0,
            "primary_failed": 0,
            "fallback_used": 0,
            "circuit_opened": 0,
            "auth_refused": 0,
        }

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self._cooldown:
            return "open"
        return "half-open"

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        if state == "open":
            return await self._use_fallback(request, reason="circuit open")
        try:
            reply = await self._primary.decide(request)
        except DeciderMisconfigured:
            # A configuration error: not an outage, so neither the fallback nor the circuit.
            self.counters["auth_refused"] += 1
            raise
        except DecisionFailed as exc:
            if _is_request_refusal(exc):
                raise
            return await self._primary_failed(request, exc, half_open=state == "half-open")
        except Exception as exc:  # a primary bug must not stop decisions either
            return await self._primary_failed(
                request,
                DecisionFailed("Unexpected", type(exc).__name__, retryable=True),
                half_open=state == "half-open",
            )
        self.counters["primary_ok"] += 1
        if self._opened_at is not None:
            log.warning("decider circuit closed: primary answered again")
        self._failures = 0
        self._opened_at = None
        return reply

    async def _primary_failed(
        self, request: dict[str, Any], exc: DecisionFailed, *, half_open: bool
    ) -> dict[str, Any]:
        self.counters["primary_failed"] += 1
        self._failures += 1
        if half_open or self._failures >= self._threshold:
            if not half_open:
                self.counters["circuit_opened"] += 1
            self._opened_at = self._clock()
            log.warning(
                "decider circuit open",
                extra={"code": exc.code, "failures": self._failures, "cooldown": self._cooldown},
            )
        return await self._use_fallback(request, reason=exc.code)

    async def _use_fallback(self, request: dict[str, Any], *, reason: str) -> dict[str, Any]:
        self.counters["fallback_used"] += 1
        log.warning("decision by the fallback decider", extra={"reason": reason})
        return await self._fallback.decide(request)


def _refusal_text(body: bytes) -> str:
    """`Code: Message` of a JSON refusal (FC's `Code`/`Message` or `errorCode`/`errorMessage`),
    else the start of the body."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code = parsed.get("Code") or parsed.get("errorCode")
        message = parsed.get("Message") or parsed.get("errorMessage")
        if code or message:
            return f"{code or 'Error'}: {message or ''}"[:300]
    return body[:300].decode("utf-8", "replace")


def _is_request_refusal(exc: DecisionFailed) -> bool:
    return exc.code in ("InvalidRequest", "RequestTooLarge")

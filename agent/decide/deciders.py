"""Deciders: who answers a decide/v1 (or scale-in/v1) request, and the checks every answer passes
before use.

The in-process decider calls `functions.decide`; the Function Compute decider invokes the deployed
function through the FC SDK; the HTTP-trigger decider POSTs the same JSON with aiohttp. Each
validates the reply against its request (schema, every pod exactly once, known pools, sizes within
bounds). `FallbackDecider` is the circuit breaker that keeps decisions flowing when Function
Compute is down: consecutive failures open it, the in-process decider answers for a cool-down,
then one trial call decides whether to close again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from agent.clients.fc import FunctionInvoker, InvocationError, TriggerSigner

log = logging.getLogger(__name__)

SCHEMA = "decide/v1"
SCALE_IN_SCHEMA = "scale-in/v1"
ACTION_KINDS = ("scale-pool", "place-on-eci")


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
    if not isinstance(reply, dict):
        raise InvalidReply(f"the reply is not a JSON object but {type(reply).__name__}")
    if reply.get("schema") != SCHEMA:
        raise InvalidReply(f"schema is {reply.get('schema')!r}, expected {SCHEMA!r}")
    if not isinstance(reply.get("decisionId"), str):
        raise InvalidReply("decisionId is missing")
    pools = {p["id"]: p for p in request.get("pools", ())}
    expected = [p["uid"] for p in request.get("pods", ())]
    seen: dict[str, str] = {}

    def claim(uid: Any, where: str) -> None:
        if not isinstance(uid, str):
            raise InvalidReply(f"{where}: pod uid {uid!r} is not a string")
        if uid in seen:
            raise InvalidReply(f"pod {uid} appears twice ({seen[uid]} and {where})")
        seen[uid] = where

    actions = _list(reply, "actions")
    scaled: set[str] = set()
    for i, action in enumerate(actions):
        where = f"actions[{i}]"
        if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
            raise InvalidReply(f"{where}: unknown action {action!r}")
        if action["kind"] == "scale-pool":
            pool_id = action.get("poolId")
            if pool_id not in pools:
                raise InvalidReply(f"{where}: unknown pool {pool_id!r}")
            if pool_id in scaled:
                raise InvalidReply(f"{where}: pool {pool_id} appears in two actions")
            scaled.add(pool_id)
            to = action.get("toDesired")
            if type(to) is not int or not 0 <= to <= pools[pool_id]["size"]["max"]:
                raise InvalidReply(f"{where}: toDesired {to!r} outside [0, max] of {pool_id}")
        pods = action.get("pods")
        if not isinstance(pods, list):
            raise InvalidReply(f"{where}: pods is not a list")
        for uid in pods:
            claim(uid, where)
    for i, item in enumerate(_list(reply, "covered")):
        if not isinstance(item, dict) or item.get("poolId") not in pools:
            raise InvalidReply(f"covered[{i}]: unknown pool in {item!r}")
        claim(item.get("pod"), f"covered[{i}]")
    for i, item in enumerate(_list(reply, "unplaceable")):
        if not isinstance(item, dict) or not isinstance(item.get("reason"), str):
            raise InvalidReply(f"unplaceable[{i}]: no reason in {item!r}")
        claim(item.get("pod"), f"unplaceable[{i}]")
    unknown = set(seen) - set(expected)
    if unknown:
        raise InvalidReply(f"the reply names pods not in the request: {sorted(unknown)[:5]}")
    missing = [uid for uid in expected if uid not in seen]
    if missing:
        raise InvalidReply(f"{len(missing)} pods of the request are missing, e.g. {missing[:5]}")
    return reply


def validate_scale_in_reply(reply: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """The reply, if it is a scale-in/v1 reply to exactly this request; InvalidReply otherwise.
    Every removal must name a managed node of the request with its own pool and instance id,
    be grouped once under its pool, and leave each pool at or above its min."""
    if not isinstance(reply, dict):
        raise InvalidReply(f"the reply is not a JSON object but {type(reply).__name__}")
    if reply.get("schema") != SCALE_IN_SCHEMA:
        raise InvalidReply(f"schema is {reply.get('schema')!r}, expected {SCALE_IN_SCHEMA!r}")
    if not isinstance(reply.get("decisionId"), str):
        raise InvalidReply("decisionId is missing")
    pools = {p["id"]: p for p in request.get("pools", ())}
    nodes = {n["name"]: n for n in request.get("nodes", ())}
    removed: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(_list(reply, "remove")):
        where = f"remove[{i}]"
        if not isinstance(item, dict):
            raise InvalidReply(f"{where}: not an object")
        node = nodes.get(item.get("node"))
        if node is None or node.get("poolId") is None:
            raise InvalidReply(
                f"{where}: {item.get('node')!r} is not a managed node of the request"
            )
        if item.get("poolId") != node["poolId"] or item.get("instanceId") != node.get("instanceId"):
            raise InvalidReply(f"{where}: pool or instance id differ from the request's node")
        if item["node"] in removed:
            raise InvalidReply(f"{where}: node {item['node']} is removed twice")
        if not isinstance(item.get("evicts", []), list):
            raise InvalidReply(f"{where}: evicts is not a list")
        removed[item["node"]] = item
    grouped: set[str] = set()
    for i, group in enumerate(_list(reply, "pools")):
        where = f"pools[{i}]"
        if not isinstance(group, dict) or group.get("poolId") not in pools:
            raise InvalidReply(f"{where}: unknown pool in {group!r}")
        names = group.get("nodes")
        if not isinstance(names, list) or not names:
            raise InvalidReply(f"{where}: nodes is not a non-empty list")
        for name in names:
            item = removed.get(name)
            if item is None or item["poolId"] != group["poolId"] or name in grouped:
                raise InvalidReply(
                    f"{where}: node {name!r} is not a removal of this pool, or twice"
                )
            grouped.add(name)
        size = pools[group["poolId"]]["size"]
        if size["desired"] - len(names) < size["min"]:
            raise InvalidReply(f"{where}: removing {len(names)} takes {group['poolId']} below min")
    if grouped != set(removed):
        raise InvalidReply(f"removals not grouped by pool: {sorted(set(removed) - grouped)[:5]}")
    _list(reply, "keep")
    return reply


def check_reply(reply: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `reply` against the contract its request speaks (decide/v1 or scale-in/v1)."""
    if request.get("schema") == SCALE_IN_SCHEMA:
        return validate_scale_in_reply(reply, request)
    return validate_reply(reply, request)


def _list(reply: Mapping[str, Any], name: str) -> list[Any]:
    value = reply.get(name)
    if not isinstance(value, list):
        raise InvalidReply(f"{name} is not a list")
    return value


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
        from functions.errors import DecisionError
        from functions.scalein.decision import scale_in

        decide = scale_in if request.get("schema") == SCALE_IN_SCHEMA else functions.decide
        size = len(request.get("pods", ())) + len(request.get("nodes", ()))
        try:
            if size > self._thread_above:
                reply = await asyncio.to_thread(decide, request)
            else:
                reply = decide(request)
        except DecisionError as exc:
            raise DecisionFailed(exc.code, exc.message, retryable=False) from None
        return check_reply(reply, request)


class _RemoteDecider:
    """Shared retry loop of the remote deciders."""

    def __init__(self, *, retry: RetrySettings | None, rng: random.Random | None) -> None:
        self._retry = retry or RetrySettings()
        self._rng = rng or random.Random()

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(request, separators=(",", ":")).encode()
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


class FunctionComputeDecider(_RemoteDecider):
    """The deployed function through the FC SDK's InvokeFunction (Sync)."""

    def __init__(
        self,
        invoker: FunctionInvoker,
        *,
        retry: RetrySettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(retry=retry, rng=rng)
        self._invoker = invoker

    async def _once(self, payload: bytes, request: dict[str, Any]) -> dict[str, Any]:
        try:
            body = await self._invoker.invoke(payload)
        except InvocationError as exc:
            raise DecisionFailed(exc.code, exc.message, retryable=exc.retryable) from None
        return _parse(body, request)


class HttpTriggerDecider(_RemoteDecider):
    """The function's HTTP trigger: POST the request JSON, read the reply JSON. With a `signer` the
    request carries FC's signature (trigger AuthType FUNCTION); without, the trigger is anonymous."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        timeout_seconds: float = 10.0,
        retry: RetrySettings | None = None,
        rng: random.Random | None = None,
        signer: TriggerSigner | None = None,
    ) -> None:
        super().__init__(retry=retry, rng=rng)
        self._session = session
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._signer = signer

    async def _once(self, payload: bytes, request: dict[str, Any]) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if self._signer is not None:
            headers = await self._signer.sign("POST", self._url, headers)
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
    reply problem) is the caller's bug and is raised, not hidden behind the fallback.
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


def _is_request_refusal(exc: DecisionFailed) -> bool:
    return exc.code in ("InvalidRequest", "RequestTooLarge")

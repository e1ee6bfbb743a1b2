"""The function hosting behind the Function Compute emulator: one deployed function's instances.

`FunctionHost` does what FC does around a call, whatever the HTTP route that asked for it: the
name checks (FC 2.0 `service/function`, FC 3.0 `function`, with a version or alias), the fault
plan's latency, hangs and 5xx refusals, cold starts after idle time, the STS credentials FC
assumes for each instance, and running the handler as the Python runtime does (event bytes in,
bytes out, in a worker thread, with a context object carrying request id, credentials, function,
service and region). Unhandled exceptions become FC's UnhandledInvocationError reply body. Every
invocation is logged as an `InvocationRecord`.

With `FcSettings.max_concurrency` (the function's reserved concurrency, ALIYUN::FC3::
ConcurrencyConfig / PutConcurrencyConfig `reservedConcurrency`, times its instance concurrency, 1
by default: FC "Configure instance concurrency"), an asynchronous invocation — Async InvokeFunction,
and the EventBridge and Timer triggers, which invoke asynchronously — that finds that many runs
under way is throttled and retried as FC's "Configure a retry mechanism" page states: the first
retry 0.5 s later, each next interval doubled (1, 2, 4, 8 s …), for up to 5 hours, and not billed
(its record's duration starts when it runs). After 5 hours it is dropped (recorded as 429
`ResourceThrottled`; what FC does then is not stated — a failure destination, if one is set).
Synchronous calls are not limited here (nothing the project deploys relies on it). The HTTP façades are `fc_api` (InvokeFunction)
and `fc_triggers` (HTTP triggers).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.clients.timeouts import within
from agent.sim.cloud.cloud_model import CloudError
from agent.sim.cloud.credentials import KeyRing, StsCredential
from agent.sim.faults import FC_ERRORS, FC_TIMEOUTS, FaultPlan

Handler = Callable[[bytes, Any], Any]
_STS_REFRESH_SECONDS = 300.0
UNHANDLED = "UnhandledInvocationError"
THROTTLED = "ResourceThrottled"
FIRST_THROTTLE_RETRY_SECONDS = 0.5
THROTTLE_RETRY_LIMIT_SECONDS = 5 * 3600.0


@dataclass(frozen=True)
class FcCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass(frozen=True)
class FcFunctionMeta:
    name: str
    handler: str
    memory: int
    timeout: int


@dataclass(frozen=True)
class FcServiceMeta:
    name: str
    qualifier: str = "LATEST"
    version_id: str = ""
    log_project: str = ""
    log_store: str = ""


@dataclass(frozen=True)
class FcContext:
    """What the FC Python runtime hands a handler as `context`."""

    request_id: str
    credentials: FcCredentials
    function: FcFunctionMeta
    service: FcServiceMeta
    region: str
    account_id: str


@dataclass(frozen=True)
class FcSettings:
    """The deployed function's configuration and the emulator's timing knobs."""

    region: str = "cn-hangzhou"
    account_id: str = "1234567890123456"
    handler: str = "index.handler"
    memory_mb: int = 512
    timeout_seconds: int = 60
    # An instance is reclaimed after this much idle time; the next call pays fc_cold_start_seconds.
    cold_after_idle_seconds: float = 300.0
    # How long a `fc_timeout_ratio` fault holds the reply (ended early when the app shuts down).
    hang_seconds: float = 60.0
    http_auth: Literal["anonymous", "function"] = "anonymous"
    # At most this many asynchronous runs at once (None: no limit); the rest throttled, retried.
    max_concurrency: int | None = None


# "eventbridge" and "timer": invoked by a trigger inside the service, not through an API call
InvocationKind = Literal["sync", "async", "http", "eventbridge", "timer"]


@dataclass(frozen=True)
class InvocationRecord:
    request_id: str
    kind: InvocationKind
    cold: bool
    status: int
    error_type: str | None
    started: float
    duration_seconds: float


@dataclass
class FcState:
    """What the emulator keeps between calls: the invocation log, the instance and its tasks."""

    invocations: list[InvocationRecord] = field(default_factory=list)
    last_invoked: float | None = None
    credentials: StsCredential | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    # asynchronous runs under way, the most there ever were at once, and throttled attempts
    running: int = 0
    peak_running: int = 0
    throttled: int = 0


class Throttled(Exception):
    """An asynchronous invocation still throttled after FC's 5 hours of retries: dropped."""


@dataclass(frozen=True)
class Outcome:
    """What one run of a handler produced: the reply body, and FC's error type if it failed."""

    body: bytes
    error_type: str | None


# The emulator's own frames (this package: the host, the WSGI gateway) are FC's runtime, not the
# function's, and FC does not show them.
_RUNTIME_DIRS = (
    os.path.dirname(asyncio.__file__),
    os.path.dirname(concurrent.futures.__file__),
    os.path.dirname(__file__) + os.sep,
)


def _unhandled_body(exc: BaseException) -> bytes:
    # Only the function's own frames, as FC shows them: not the emulator's or the thread pool's.
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(_RUNTIME_DIRS)
    ]
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": [
                [f'File "{f.filename}"', f"line {f.lineno}", f"in {f.name}", f.line or ""]
                for f in frames
            ],
        }
    ).encode()


def _as_bytes(result: Any) -> bytes:
    # The Python runtime replies with bytes or str; anything else we JSON-encode for convenience.
    if isinstance(result, bytes | bytearray):
        return bytes(result)
    if isinstance(result, str):
        return result.encode()
    if result is None:
        return b""
    return json.dumps(result).encode()


class FunctionHost:
    """One deployed function: `service/function` with `settings`, its instance and its log.

    `now` is the simulation's clock (idle time); `wall_clock` is what STS expiry is measured on.
    """

    def __init__(
        self,
        *,
        ring: KeyRing,
        service: str,
        function: str,
        settings: FcSettings,
        faults: FaultPlan | None,
        now: Callable[[], float],
        wall_clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`sleep` waits out throttling retries: the simulation's clock, as FC's intervals are
        the cluster's seconds."""
        self.state = FcState()
        self._sleep = sleep
        self._ring = ring
        self._service = service
        self._settings = settings
        self._faults = faults
        self._now = now
        self._wall_clock = wall_clock
        self._function = FcFunctionMeta(
            function, settings.handler, settings.memory_mb, settings.timeout_seconds
        )

    def resolve_fc2(self, service_name: str, function_name: str, qualifier: str | None) -> None:
        """Refuse (FC 2.0) a service, function or alias (`service.alias` or `qualifier`) that is
        not deployed. Only LATEST exists here: the emulator publishes no versions."""
        name, _, alias = service_name.partition(".")
        if name != self._service:
            raise CloudError(404, "ServiceNotFound", f"service '{name}' does not exist")
        if function_name != self._function.name:
            raise CloudError(404, "FunctionNotFound", f"function '{function_name}' does not exist")
        if (qualifier or alias) not in ("", "LATEST"):
            raise CloudError(404, "AliasNotFound", f"alias '{qualifier or alias}' does not exist")

    def resolve_fc3(self, function_name: str, qualifier: str | None) -> None:
        """Refuse (FC 3.0) a function or qualifier that is not deployed. The message is the one
        the FC 3.0 Error struct documents; the code for an unknown qualifier is not documented,
        so FC 2.0's AliasNotFound stands in."""
        if function_name != self._function.name:
            raise CloudError(404, "FunctionNotFound", "function not found")
        if (qualifier or "") not in ("", "LATEST"):
            raise CloudError(404, "AliasNotFound", f"alias '{qualifier}' does not exist")

    @contextlib.asynccontextmanager
    async def async_slot(self) -> AsyncIterator[bool]:
        """Hold one of `max_concurrency` runs for an asynchronous invocation, after FC's
        throttling retries (0.5 s, then doubling); yields whether it was throttled. Throttled
        once the retries pass 5 hours."""
        limit, state = self._settings.max_concurrency, self.state
        waited = 0.0
        if limit is not None:
            wait = FIRST_THROTTLE_RETRY_SECONDS
            while state.running >= limit:
                if waited >= THROTTLE_RETRY_LIMIT_SECONDS:
                    raise Throttled(f"throttled for {waited:g} s: reserved concurrency {limit}")
                state.throttled += 1
                await self._sleep(wait)
                waited += wait
                wait *= 2
        state.running += 1
        state.peak_running = max(state.peak_running, state.running)
        try:
            yield waited > 0
        finally:
            state.running -= 1

    async def start(self) -> bool:
        """Apply faults and the cold start before a run; True when the instance was cold.

        Raises CloudError when a fault refuses the invocation (504 after a hang, or 503).
        """
        faults, state = self._faults, self.state
        if faults is not None:
            await self._inject(faults)
        t = self._now()
        cold = (
            state.last_invoked is None
            or t - state.last_invoked >= self._settings.cold_after_idle_seconds
        )
        state.last_invoked = t
        stale = (
            state.credentials is None
            or state.credentials.expiration - self._wall_clock() < _STS_REFRESH_SECONDS
        )
        if cold or stale:
            # A new instance (or an old token near expiry): fresh STS credentials, as FC assumes
            # the service role per instance and refreshes the token before it lapses.
            state.credentials = self._ring.issue(now=self._wall_clock())
        if cold and faults is not None and faults.fc_cold_start_seconds > 0:
            await asyncio.sleep(faults.fc_cold_start_seconds)
        return cold

    async def _inject(self, faults: FaultPlan) -> None:
        if faults.fc_latency_seconds > 0:
            await asyncio.sleep(faults.fc_latency_seconds)
        if faults.roll(faults.fc_timeout_ratio):
            faults.note(FC_TIMEOUTS)
            # Hold the reply past the client's read timeout; release on shutdown.
            with contextlib.suppress(asyncio.TimeoutError):
                await within(self._settings.hang_seconds, self.state.closing.wait())
            raise CloudError(504, "Timeout", "the invocation timed out in the service")
        if faults.roll(faults.fc_error_ratio):
            faults.note(FC_ERRORS)
            raise CloudError(503, "ServiceUnavailable", "The service is temporarily unavailable.")

    def context(self, request_id: str, qualifier: str) -> FcContext:
        """The runtime's `context` for one invocation (`qualifier` "" means LATEST)."""
        cred = self.state.credentials or self._ring.issue(now=self._wall_clock())
        return FcContext(
            request_id=request_id,
            credentials=FcCredentials(
                cred.access_key_id, cred.access_key_secret, cred.security_token
            ),
            function=self._function,
            service=FcServiceMeta(self._service, qualifier=qualifier or "LATEST"),
            region=self._settings.region,
            account_id=self._settings.account_id,
        )

    async def run(self, fn: Handler, event: bytes, ctx: FcContext) -> Outcome:
        """Run `fn(event, ctx)` in a worker thread, within the function's timeout."""
        result, failure = await self.call(fn, event, ctx)
        return failure or Outcome(_as_bytes(result), None)

    async def call(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, Outcome | None]:
        """`fn(*args)` in a worker thread within the function's timeout: (its result, None), or
        (None, the runtime's failure reply) when it raised or ran out of time."""
        timeout = self._settings.timeout_seconds
        try:
            # wait_for, not within: the handler's stack trace must not show a frame of ours; one
            # await in a request handler, so a swallowed cancel only lets this reply finish.
            result = await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
        except asyncio.TimeoutError:
            message = f"Function timed out after {timeout} seconds"
            return None, Outcome(json.dumps({"errorMessage": message}).encode(), UNHANDLED)
        except Exception as exc:  # the runtime catches everything the handler raises
            return None, Outcome(_unhandled_body(exc), UNHANDLED)
        return result, None

    def run_in_background(
        self, fn: Handler, event: bytes, ctx: FcContext, *, cold: bool, started: float
    ) -> None:
        """An Async invocation: run `fn` after the reply, logged with status 202."""

        async def run_async() -> None:
            try:
                async with self.async_slot() as throttled:
                    # billed from when it runs, not while it waited out throttling
                    ran_from = time.monotonic() if throttled else started
                    outcome = await self.run(fn, event, ctx)
            except Throttled:
                self.record(
                    ctx.request_id, "async", cold=cold, status=429, error_type=THROTTLED,
                    started=time.monotonic(),
                )  # fmt: skip
                return
            self.record(
                ctx.request_id,
                "async",
                cold=cold,
                status=202,
                error_type=outcome.error_type,
                started=ran_from,
            )

        task = asyncio.get_running_loop().create_task(run_async())
        self.state.background.add(task)
        task.add_done_callback(self.state.background.discard)

    def record(
        self,
        request_id: str,
        kind: InvocationKind,
        *,
        cold: bool,
        status: int,
        error_type: str | None,
        started: float,
    ) -> None:
        self.state.invocations.append(
            InvocationRecord(
                request_id, kind, cold, status, error_type, started, time.monotonic() - started
            )
        )

    async def close(self) -> None:
        """Release hanging invocations and cancel the Async ones still running."""
        self.state.closing.set()
        for task in list(self.state.background):
            task.cancel()
        await asyncio.gather(*self.state.background, return_exceptions=True)

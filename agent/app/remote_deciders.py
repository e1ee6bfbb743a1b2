"""The remote deciders as configured: `--decider fc` (InvokeFunction through the FC SDK) and
`--decider http` (a POST to the HTTP trigger, signed), each in the form of the configured
Function Compute API version — 3.0 by default (alibabacloud-fc20230330, functions by name,
ACS3-signed triggers) or 2.0 (alibabacloud-fc-open20210406, a service holding the function,
`FC ak:signature` triggers).

`CredentialWatch` wraps whichever remote decider is configured: when Function Compute refuses
the agent's credentials (401/403, `DeciderMisconfigured`), that is a configuration error, not an
outage. It is logged at error level saying what to fix, a Warning Event is written on the agent's
own Pod, and /readyz turns not ready (`configuration_problem`) until a call is accepted again.
Nothing falls back to the local decider (`FallbackDecider` raises it through): the rounds fail
and retry, visibly, instead of silently deciding elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Protocol

import aiohttp
import structlog

from agent.actuate.actuation import kube_event
from agent.app.settings import AgentConfig
from agent.clients import fc, fc3
from agent.clients.kube import KubeError, KubeUnreachable
from agent.decide.deciders import (
    DeciderMisconfigured,
    FunctionComputeDecider,
    HttpTriggerDecider,
    RetrySettings,
)

log = structlog.get_logger(__name__)

EVENT_REASON = "DeciderAuthFailed"
# While the refusal lasts, the Event and the error line are repeated this often (and at once
# when the refusal changes), not at every retried round.
REPORT_EVERY_SECONDS = 300.0
MAX_EVENT_MESSAGE = 1000


class Decides(Protocol):
    async def decide(self, request: dict[str, Any]) -> dict[str, Any]: ...


class EventWriter(Protocol):
    async def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...


def fc_decider(
    config: AgentConfig,
    keys: dict[str, str],
    *,
    endpoint: str,
    protocol: str,
    retry: RetrySettings,
) -> FunctionComputeDecider:
    """InvokeFunction (Sync) on the configured function, through the version's official SDK.
    `endpoint`/`protocol` are `config.fc_endpoint` split as the SDKs take them."""
    invoker: fc.Invoker
    sdk_arguments: dict[str, Any] = dict(
        region_id=config.region,
        endpoint=endpoint,
        protocol=protocol,
        read_timeout_seconds=config.decider_timeout_seconds,
        access_key_id=keys.get("access_key_id"),
        access_key_secret=keys.get("access_key_secret"),
    )
    if config.fc_api_version == "2.0":
        sdk2 = fc.build_sdk_client(**sdk_arguments)
        invoker = fc.FunctionInvoker(
            sdk2,
            fc.FunctionRef(
                config.fc_service or "", config.fc_function or "", config.fc_qualifier or ""
            ),
            timeout_seconds=config.decider_timeout_seconds,
        )
    else:
        sdk3 = fc3.build_sdk_client(**sdk_arguments)
        invoker = fc3.FunctionInvoker(
            sdk3,
            config.fc_function or "",
            qualifier=config.fc_qualifier or "",
            timeout_seconds=config.decider_timeout_seconds,
        )
    return FunctionComputeDecider(
        invoker,
        retry=retry,
        time_limit_seconds=decision_time_limit(config),
        max_payload_bytes=config.decider_max_payload_bytes,
    )


def decision_time_limit(config: AgentConfig) -> float:
    """What the agent asks the function for: 80% of the call's timeout, the rest left for the
    network and the reply, so a slow decision comes back with deferred pods, not a timeout."""
    return 0.8 * config.decider_timeout_seconds


def http_decider(
    config: AgentConfig,
    keys: dict[str, str],
    session: aiohttp.ClientSession,
    *,
    retry: RetrySettings,
) -> HttpTriggerDecider:
    """POSTs to the HTTP trigger, signed as the version's triggers with auth type function
    expect (the deploy templates create that kind; an anonymous trigger does not need it)."""
    credential = fc.build_credential(
        access_key_id=keys.get("access_key_id"), access_key_secret=keys.get("access_key_secret")
    )
    signer: fc.RequestSigner
    if config.fc_api_version == "2.0":
        signer = fc.TriggerSigner(credential)
    else:
        signer = fc3.TriggerSigner(credential)
    return HttpTriggerDecider(
        session,
        config.http_url or "",
        timeout_seconds=config.decider_timeout_seconds,
        retry=retry,
        signer=signer,
        time_limit_seconds=decision_time_limit(config),
        max_payload_bytes=config.decider_max_payload_bytes,
    )


class CredentialWatch:
    """A remote decider whose credential refusals are loud: see the module docstring.

    `involved` is the object the Event is about (the agent's own Pod); `now` the clock Event
    timestamps are read from (the simulated one in dev mode).
    """

    def __init__(
        self,
        decider: Decides,
        *,
        events: EventWriter | None,
        involved: dict[str, Any],
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        report_every_seconds: float = REPORT_EVERY_SECONDS,
    ) -> None:
        self._decider = decider
        self._events = events
        self._involved = involved
        self._now = now
        self._clock = clock
        self._every = report_every_seconds
        self.problem: DeciderMisconfigured | None = None
        self._reported: tuple[float, str] | None = None  # (when, what) was last reported
        self.events_written = 0

    @property
    def configuration_problem(self) -> str | None:
        """Why the agent is not ready, while the decider refuses its credentials; else None."""
        if self.problem is None:
            return None
        # The refusal's body stays in the log and the Event: /readyz and /status may be read
        # from the pod network, and only say what is wrong and where to look.
        return (
            f"the decision function refused the agent's credentials ({self.problem.code}); "
            f"{self.problem.fix} (the agent's log and its {EVENT_REASON} Event have the details)"
        )

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self._decider.decide(request)
        except DeciderMisconfigured as refusal:
            self.problem = refusal
            await self._report(refusal)
            raise
        if self.problem is not None:
            log.warning("decider accepts the agent's credentials again; ready")
            self.problem = None
            self._reported = None
        return reply

    async def _report(self, refusal: DeciderMisconfigured) -> None:
        what = f"{refusal.code}: {refusal.message}"
        now = self._clock()
        if self._reported is not None:
            when, last = self._reported
            if last == what and now - when < self._every:
                return
        self._reported = (now, what)
        log.error(
            "the decision function refused the agent's credentials: a configuration error, "
            "not an outage; no fallback to the local decider, /readyz is not ready until it is "
            "fixed",
            code=refusal.code,
            status=refusal.status,
            refusal=refusal.message,
            fix=refusal.fix,
        )
        if self._events is None:
            return
        message = (
            f"Decisions stopped: the decision function refused this agent's credentials "
            f"({what}). To fix: {refusal.fix}."
        )[:MAX_EVENT_MESSAGE]
        stamp = datetime.fromtimestamp(self._now(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = str(self._involved.get("namespace") or "default")
        body = kube_event(
            self._involved,
            namespace,
            reason=EVENT_REASON,
            message=message,
            now=stamp,
            event_type="Warning",
        )
        try:
            await self._events.create_event(namespace, body)
        except (KubeError, KubeUnreachable) as error:
            log.info("event not recorded", reason=EVENT_REASON, error=type(error).__name__)
            return
        self.events_written += 1


def watch_credentials(
    decider: Decides,
    config: AgentConfig,
    *,
    events: EventWriter | None,
    now: Callable[[], float] = time.time,
) -> CredentialWatch:
    """`decider` under a `CredentialWatch` whose Events are about the agent's own Pod."""
    from agent.app.own_pod import agent_pod

    return CredentialWatch(decider, events=events, involved=agent_pod(config), now=now)

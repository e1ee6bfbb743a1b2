"""`--decider http` signs every call with the trigger's signer (FC 3.0: ACS3; FC 2.0: the FC
gateway signature), body digest included, so a FUNCTION-auth trigger answers it. A 401/403 is a
configuration error, not an outage: no retry, no silent fall-back to the local decider, an error
log saying what to fix, a Warning Event on the agent's Pod, and /readyz not ready until a call is
accepted again. Over real HTTP against the FC emulator's FUNCTION-auth triggers (issue 12: all 8
rounds got 403 and the fallback hid it)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import structlog

from agent.app.ops import OpsServer
from agent.app.remote_deciders import EVENT_REASON, CredentialWatch, http_decider
from agent.app.settings import AgentConfig
from agent.app.wiring import connect_agent
from agent.decide.deciders import DeciderMisconfigured, FallbackDecider, LocalDecider
from agent.sim.cloud.credentials import TEST_ACCESS_KEY_ID, KeyRing
from agent.sim.cloud.fc_api import FcSettings, http_trigger_path, invocations_of
from agent.sim.embedded import EmbeddedAck
from agent.sim.scenario import load_scenario
from functions import fc
from tests.support.cloud.cloud_apis import FC_FUNCTION, FC_SERVICE, FcHarness, fc_emulator
from tests.support.cloud.cloud_doubles import NO_WAIT, fc_decider, sample_request
from tests.support.cluster import agent_config, running
from tests.support.waiting import until

GOOD_KEYS = {"access_key_id": TEST_ACCESS_KEY_ID, "access_key_secret": "the-right-secret"}
WRONG_KEYS = {"access_key_id": TEST_ACCESS_KEY_ID, "access_key_secret": "not-the-secret"}


@asynccontextmanager
async def function_auth_triggers() -> AsyncIterator[FcHarness]:
    """`functions.fc` behind both FUNCTION-auth triggers, knowing only GOOD_KEYS."""
    ring = KeyRing({GOOD_KEYS["access_key_id"]: GOOD_KEYS["access_key_secret"]})
    async with fc_emulator(
        fc.handler,
        clock=time.time,
        keys=ring,
        http_handler=fc.http_handler,
        wsgi_handler=fc.wsgi_handler,
        settings=FcSettings(http_auth="function"),
    ) as harness:
        yield harness


def trigger_url(harness: FcHarness, api_version: str) -> str:
    if api_version == "3.0":
        return harness.trigger_url
    return f"http://{harness.endpoint}{http_trigger_path(FC_SERVICE, FC_FUNCTION)}"


def http_config(url: str, api_version: str) -> AgentConfig:
    return AgentConfig(decider="http", http_url=url, fc_api_version=api_version)


class RecordedEvents:
    """An EventWriter that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        self.events.append((namespace, body))


class Reconfigurable:
    """A decider an operator can swap (the key fixed) under the same watch."""

    def __init__(self, decider: FallbackDecider) -> None:
        self.decider = decider

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.decider.decide(request)


class CountingLocal(LocalDecider):
    calls = 0

    async def decide(self, request: dict[str, Any]) -> dict[str, Any]:
        CountingLocal.calls += 1
        return await super().decide(request)


AGENT_POD = {"apiVersion": "v1", "kind": "Pod", "namespace": "ray", "name": "agent-0"}


@pytest.mark.parametrize("api_version", ["3.0", "2.0"])
async def test_the_http_decider_as_configured_is_signed_and_answered(api_version: str) -> None:
    """`http_decider` (what `--decider http` builds) signs its calls: the FUNCTION-auth trigger
    answers every round with the in-process reply, none refused as a replay or a changed body."""
    request = sample_request()
    async with function_auth_triggers() as harness, aiohttp.ClientSession() as session:
        decider = http_decider(
            http_config(trigger_url(harness, api_version), api_version),
            GOOD_KEYS,
            session,
            retry=NO_WAIT,
        )
        replies = [await decider.decide(request) for _ in range(3)]
        calls = [r.kind for r in invocations_of(harness.app)]
    assert replies == [await LocalDecider().decide(request)] * 3
    assert calls == ["http"] * 3


@pytest.mark.parametrize("api_version", ["3.0", "2.0"])
async def test_a_refused_key_is_loud_and_never_falls_back(
    api_version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong secret: 403 once (no retry), DeciderMisconfigured through the circuit breaker
    (the local decider is never asked), an error line saying what to fix, one Warning Event on the
    agent's Pod, and a configuration problem for /readyz; a later accepted call clears it."""
    caplog.set_level(logging.INFO)
    request = sample_request()
    events = RecordedEvents()
    CountingLocal.calls = 0
    sent: list[str] = []
    tracing = aiohttp.TraceConfig()

    async def on_request_start(*_: Any) -> None:
        sent.append("request")

    tracing.on_request_start.append(on_request_start)
    async with (
        function_auth_triggers() as harness,
        aiohttp.ClientSession(trace_configs=[tracing]) as session,
    ):
        url = trigger_url(harness, api_version)

        def breaker_for(keys: dict[str, str]) -> FallbackDecider:
            remote = http_decider(http_config(url, api_version), keys, session, retry=NO_WAIT)
            return FallbackDecider(remote, CountingLocal(), failure_threshold=1)

        breaker = breaker_for(WRONG_KEYS)
        configured = Reconfigurable(breaker)
        watch = CredentialWatch(configured, events=events, involved=AGENT_POD)
        with structlog.testing.capture_logs() as logged:
            for _ in range(3):
                with pytest.raises(DeciderMisconfigured) as refused:
                    await watch.decide(request)
        attempts = len(sent)
        problem = watch.configuration_problem
        # The operator fixes the key: the same watch, now over a decider with the right one.
        configured.decider = breaker_for(GOOD_KEYS)
        reply = await watch.decide(request)
    assert attempts == 3, "a refusal is final: one call per decision, no retry"
    assert refused.value.code == "HTTP403" and refused.value.status == 403
    assert not refused.value.retryable
    assert CountingLocal.calls == 0, "no silent fall-back to the local decider"
    assert breaker.counters["fallback_used"] == 0 and breaker.counters["auth_refused"] == 3
    assert breaker.state == "closed", "an auth refusal is not an outage"
    assert problem is not None and "--http-url" in problem and "refused" in problem
    ((namespace, event),) = events.events  # three refusals, one Event (repeated every 5 min)
    assert namespace == "ray"
    assert (event["type"], event["reason"]) == ("Warning", EVENT_REASON)
    assert event["involvedObject"] == AGENT_POD
    assert "To fix:" in event["message"] and "fc:InvokeFunction" in event["message"]
    (error,) = [line for line in logged if line["log_level"] == "error"]
    assert "refused the agent's credentials" in error["event"] and "--http-url" in error["fix"]
    assert "SignatureDoesNotMatch" in error["refusal"]
    assert "not-the-secret" not in json.dumps(logged) + caplog.text + json.dumps(event)
    assert reply["schema"] == "decide/v1"
    assert watch.configuration_problem is None, "accepted again: ready again"


async def test_the_fc_sdk_decider_treats_a_refused_key_the_same_way() -> None:
    """InvokeFunction refused with 403 (SignatureDoesNotMatch) is DeciderMisconfigured too."""
    async with function_auth_triggers() as harness:
        breaker = FallbackDecider(fc_decider(harness.endpoint), CountingLocal())
        CountingLocal.calls = 0
        with pytest.raises(DeciderMisconfigured) as refused:
            await breaker.decide(sample_request())
    assert refused.value.status == 403 and "fc:InvokeFunction" in refused.value.fix
    assert CountingLocal.calls == 0


SPEED = 50


async def _readyz(agent: Any) -> tuple[int, str]:
    ops = OpsServer(agent, agent.metrics, host="127.0.0.1", port=0)
    await ops.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{ops.url}/readyz") as reply,
        ):
            return reply.status, await reply.text()
    finally:
        await ops.stop()


@pytest.mark.usefixtures("access_keys")
async def test_an_agent_whose_trigger_refuses_it_is_not_ready_and_says_so() -> None:
    """The agent wired as in production (`connect_agent`, `--decider http`, fallback on) against
    a FUNCTION-auth trigger that does not know its key: the seed's pods stay pending (nothing
    decided them locally), /readyz answers 503 naming the refusal, and the agent's Pod has a
    DeciderAuthFailed Warning Event."""
    async with (
        EmbeddedAck(load_scenario("seed"), speed=SPEED, faults=False) as ack,
        function_auth_triggers() as harness,
    ):
        config = dataclasses.replace(
            agent_config(ack, speed=SPEED),
            decider="http",
            http_url=harness.trigger_url,
            fallback_to_local=True,
            pool_lock_namespace="default",  # the agent's own namespace (the seed has no "ray")
            pool_lock_identity="agent-0",
        )
        async with connect_agent(config, now=ack.cluster.clock.now) as agent, running(agent):
            await until(
                lambda: agent.rounds >= 2 and "refused" in (agent.not_ready_reason() or ""),
                timeout=20,
                what="two decision rounds refused by the trigger",
            )
            status, text = await _readyz(agent)
            events, _ = ack.cluster.store.list("events", namespace="default")
            desired = [p.desired for p in await agent._pools.describe_pools()]
            reason = agent.not_ready_reason()
            assert agent.last_round is not None and agent.last_round.outcome == "error"
    assert status == 503 and "refused the agent's credentials (HTTP403)" in text
    assert reason is not None and "--http-url" in reason
    auth_events = [e for e in events if e.get("reason") == EVENT_REASON]
    assert auth_events and auth_events[0]["involvedObject"]["name"] == "agent-0"
    assert auth_events[0]["type"] == "Warning"
    assert set(desired) == {0}, "no pool was raised: nothing decided in the trigger's place"

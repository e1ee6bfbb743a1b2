"""The circuit breaker: Function Compute failing (5xx, timeouts, bad replies) falls back to in-process."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from agent.decide.deciders import DecisionFailed, FallbackDecider, LocalDecider, RetrySettings
from agent.sim.faults import FaultPlan
from tests.support.clocks import ManualClock
from tests.support.cloud.cloud_doubles import decide_function, fc_decider, sample_request

ONE_TRY = RetrySettings(attempts=1)


def circuit(
    endpoint: str, clock: ManualClock | None = None, *, timeout: float = 10.0, **settings: Any
) -> FallbackDecider:
    """FC first (one try each time), the in-process decider when it fails; time on `clock`."""
    return FallbackDecider(
        fc_decider(endpoint, timeout=timeout, retry=ONE_TRY),
        LocalDecider(),
        clock=clock or ManualClock(1000.0),
        **settings,
    )


class TestCircuit:
    """The remote decider's circuit: opens on failures, falls back locally, recovers."""

    async def test_opens_after_consecutive_5xx_then_recovers(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """closed → open after N failures (each answered locally) → half-open after the cool-down → closed."""
        caplog.set_level(logging.WARNING, logger="agent.decide.deciders")
        faults = FaultPlan(fc_error_ratio=1.0)
        clock = ManualClock(1000.0)
        request = sample_request()
        local_reply = await LocalDecider().decide(request)
        async with decide_function(faults=faults) as (endpoint, _app):
            breaker = circuit(endpoint, clock, failure_threshold=2, cooldown_seconds=30)
            assert await breaker.decide(request) == local_reply
            assert breaker.state == "closed"
            assert await breaker.decide(request) == local_reply
            assert breaker.state == "open"
            assert await breaker.decide(request) == local_reply
            assert breaker.counters == {
                "primary_ok": 0,
                "primary_failed": 2,
                "fallback_used": 3,
                "circuit_opened": 1,
                "auth_refused": 0,
            }

            faults.fc_error_ratio = 0.0
            clock.advance(31)
            assert breaker.state == "half-open"
            assert await breaker.decide(request) == local_reply
            assert breaker.state == "closed"
            assert breaker.counters["primary_ok"] == 1
        fallbacks = [
            r for r in caplog.records if r.getMessage() == "decision by the fallback decider"
        ]
        assert len(fallbacks) == 3
        assert any(r.getMessage() == "decider circuit open" for r in caplog.records)

    async def test_half_open_failure_reopens(self) -> None:
        """One failed trial after the cool-down re-opens the circuit for another cool-down."""
        clock = ManualClock(1000.0)
        async with decide_function(faults=FaultPlan(fc_error_ratio=1.0)) as (endpoint, _app):
            breaker = circuit(endpoint, clock, failure_threshold=1, cooldown_seconds=10)
            await breaker.decide(sample_request())
            assert breaker.state == "open"
            clock.advance(11)
            await breaker.decide(sample_request())
            assert breaker.state == "open"
            assert breaker.counters["primary_failed"] == 2

    async def test_timeouts_fall_back(self) -> None:
        """An invocation hanging past the client's timeout is a failure answered locally."""
        request = sample_request()
        async with decide_function(faults=FaultPlan(fc_timeout_ratio=1.0)) as (endpoint, _app):
            breaker = circuit(endpoint, timeout=0.3, failure_threshold=1, cooldown_seconds=60)
            reply = await breaker.decide(request)
        assert reply == await LocalDecider().decide(request)
        assert breaker.state == "open"

    async def test_invalid_reply_falls_back(self) -> None:
        """A malformed reply from the function is never used; the local decider answers."""

        def wrong_schema(event: bytes, context: Any) -> bytes:
            return json.dumps({"schema": "decide/v0"}).encode()

        request = sample_request()
        async with decide_function(wrong_schema) as (endpoint, _app):
            breaker = circuit(endpoint, failure_threshold=3)
            reply = await breaker.decide(request)
        assert reply["schema"] == "decide/v1"
        assert breaker.counters["fallback_used"] == 1

    async def test_refused_request_is_raised_not_hidden(self) -> None:
        """InvalidRequest from the function is the caller's bug: no fallback, circuit stays closed."""
        request = sample_request()
        request["schema"] = "nope"
        async with decide_function() as (endpoint, _app):
            breaker = circuit(endpoint)
            with pytest.raises(DecisionFailed, match="InvalidRequest"):
                await breaker.decide(request)
        assert breaker.state == "closed"
        assert breaker.counters["fallback_used"] == 0

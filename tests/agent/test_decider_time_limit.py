"""The remote deciders ask the function for an answer within their call's time
(`policy.maxDecisionSeconds`), so a slow decision comes back with deferred pods instead of
outliving the agent's timeout; over real HTTP to a trigger that records what it was sent."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from agent.app.remote_deciders import decision_time_limit
from agent.app.settings import AgentConfig
from agent.decide.deciders import HttpTriggerDecider, LocalDecider
from tests.support.cloud.cloud_doubles import NO_WAIT, sample_request
from tests.support.cloud.serving import serve


def recording_trigger(sent: list[dict[str, Any]]) -> web.Application:
    """An HTTP trigger that decides in process and keeps each request body it received."""

    async def decide(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        sent.append(body)
        return web.json_response(await LocalDecider().decide(body))

    app = web.Application()
    app.router.add_post("/decide", decide)
    return app


async def asked(request: dict[str, Any], *, time_limit: float | None) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []
    async with serve(recording_trigger(sent)) as endpoint, aiohttp.ClientSession() as session:
        decider = HttpTriggerDecider(
            session, f"http://{endpoint}/decide", retry=NO_WAIT, time_limit_seconds=time_limit
        )
        reply = await decider.decide(request)
    assert reply["actions"], "the reply to the changed request is accepted as this request's"
    (body,) = sent
    return dict(body["policy"])


async def test_the_call_asks_for_its_time_limit() -> None:
    """Without a limit of its own, the request carries the decider's."""
    policy = await asked(sample_request(), time_limit=8.0)
    assert policy["maxDecisionSeconds"] == 8.0


async def test_a_tighter_limit_of_the_request_is_kept() -> None:
    """A request that already asks for less keeps its own limit."""
    request = sample_request()
    request["policy"] = {**request.get("policy", {}), "maxDecisionSeconds": 1.5}
    assert (await asked(request, time_limit=8.0))["maxDecisionSeconds"] == 1.5


async def test_no_time_limit_sends_the_request_unchanged() -> None:
    """A decider built without a limit adds nothing."""
    assert "maxDecisionSeconds" not in await asked(sample_request(), time_limit=None)


def test_the_agent_asks_for_most_of_its_call_timeout() -> None:
    """80% of decider_timeout_seconds: the rest is for the network and the reply."""
    assert decision_time_limit(AgentConfig(decider_timeout_seconds=10.0)) == 8.0

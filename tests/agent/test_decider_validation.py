"""validate_reply refuses every reply that does not answer exactly its request (pure logic)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

import functions
from agent.decide.deciders import InvalidReply, validate_reply
from tests.support.cloud.cloud_doubles import sample_request

REQUEST = sample_request(pods=40, eci=False)
GOOD = functions.decide(REQUEST)


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    reply = copy.deepcopy(GOOD)
    change(reply)
    return reply


def first_scale(reply: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in reply["actions"] if a["kind"] == "scale-pool")


def test_the_core_reply_passes() -> None:
    """The decision core's own reply is valid for its request."""
    assert validate_reply(copy.deepcopy(GOOD), REQUEST) == GOOD


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(schema="decide/v2"), "schema"),
        (lambda r: r.pop("decisionId"), "decisionId"),
        (lambda r: r.update(actions={}), "actions is not a list"),
        (lambda r: first_scale(r)["pods"].pop(), "missing"),
        (lambda r: first_scale(r)["pods"].append(first_scale(r)["pods"][0]), "twice"),
        (lambda r: first_scale(r)["pods"].append("u-stranger"), "not in the request"),
        (lambda r: first_scale(r).update(poolId="np-ghost"), "unknown pool"),
        (lambda r: first_scale(r).update(toDesired=21), "outside"),
        (lambda r: first_scale(r).update(toDesired="6"), "outside"),
        (lambda r: r["actions"].append({**first_scale(r), "pods": []}), "two actions"),
        (lambda r: r["actions"].append({"kind": "delete-cluster", "pods": []}), "unknown action"),
        (lambda r: r["unplaceable"].append({"pod": "u-x"}), "no reason"),
        (lambda r: r["covered"].append({"pod": "u-x", "poolId": "np-ghost"}), "unknown pool"),
    ],
    ids=[
        "schema",
        "no-id",
        "actions-type",
        "pod-missing",
        "pod-twice",
        "pod-unknown",
        "pool-unknown",
        "above-max",
        "to-not-int",
        "pool-twice",
        "kind-unknown",
        "no-reason",
        "covered-pool-unknown",
    ],
)
def test_malformed_replies_are_rejected(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    """Each way a reply can be wrong is named in the refusal."""
    with pytest.raises(InvalidReply, match=message):
        validate_reply(mutated(change), REQUEST)


def test_not_an_object() -> None:
    """A JSON list is not a reply."""
    with pytest.raises(InvalidReply):
        validate_reply([], REQUEST)

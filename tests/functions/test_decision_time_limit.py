"""The decision's own time limit: past it, both contracts reply with what was decided and defer
the rest (`"deferred": true`), never a timeout; the request may narrow the limit with
`policy.maxDecisionSeconds`; the handlers and the CLI keep it below the platform's timeout."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from functions import decide, scale_in
from functions.contract_checks import check_decide_reply, check_scale_in_reply
from functions.deadline import Deadline
from functions.errors import InvalidRequest
from functions.fc import DEFAULT_TIME_LIMIT_SECONDS, DecisionEndpoint
from tests.support import decide_requests as out
from tests.support import scale_in_requests as into
from tests.support.deploy_templates import deployed_functions
from tests.support.processes import run_module


def after_checks(count: int) -> Deadline:
    """A deadline on a clock that ticks once per reading: it has passed from the `count`-th check
    on (0: already passed)."""
    return Deadline(count, clock=itertools.count(1).__next__, started=0)


def passed() -> Deadline:
    return Deadline(0, clock=lambda: 0.0)


def _burst() -> dict[str, Any]:
    """Four pod shapes over two pools and a small ECI: planning takes more than one pass."""
    pods = [
        *(out.pod(f"small-{i}") for i in range(12)),
        *(out.pod(f"mid-{i}", cpu="2", memory="4Gi") for i in range(6)),
        *(out.pod(f"big-{i}", cpu="3", memory="8Gi") for i in range(3)),
        out.pod("gpu-0", nodeSelector={"gpu": "a100"}),
    ]
    pools = [
        out.pool("np-a", desired=1, ready=0, max_size=3),
        out.pool("np-b", cpu="7800m", memory="28Gi", price=1.6, max_size=4),
    ]
    return out.request(pods, pools, eci_config=out.eci(max_pods=5))


def _fleet() -> dict[str, Any]:
    """Empty nodes, drainable ones and nodes kept by a rule, with room to drain into."""
    nodes = [
        *(into.node(f"empty-{i}") for i in range(4)),
        *(into.node(f"light-{i}", into.pod(f"p{i}", cpu="500m")) for i in range(4)),
        into.node("head", into.pod("h", rayNodeType="head")),
        into.node("roomy", pool=None, cpu="16"),
    ]
    return into.request(nodes, drainNonEmpty=True, maxNodesPerDecision=6)


def _deferred(entries: list[dict[str, Any]], key: str) -> list[str]:
    return [entry[key] for entry in entries if entry.get("deferred") is True]


class TestAPassedDeadline:
    """A deadline that has already passed: nothing is decided, every undecided item is deferred,
    and the reply is still a valid answer to its request."""

    def test_decide_defers_every_pod(self) -> None:
        """No actions; every pod is `unplaceable` with `"deferred": true` and a reason that says so."""
        body = _burst()
        reply = check_decide_reply(decide(body, deadline=passed()), body)
        assert reply["actions"] == [] and reply["covered"] == []
        assert _deferred(reply["unplaceable"], "pod") == [p["uid"] for p in body["pods"]]
        assert reply["unplaceable"][0]["reason"] == (
            "deferred: the decision's time limit (0 s) ran out before this pod was planned; "
            "it stays pending for the next decision"
        )
        assert reply["summary"]["deferredPods"] == reply["summary"]["unplaceablePods"] == 22
        assert reply["decisionId"] == decide(body)["decisionId"]

    def test_scale_in_defers_every_candidate_and_keeps_the_rules_reasons(self) -> None:
        """No removals; candidates are kept as deferred, nodes kept by a rule keep that reason."""
        body = _fleet()
        reply = check_scale_in_reply(scale_in(body, deadline=passed()), body)
        assert reply["remove"] == [] and reply["pools"] == []
        reasons = into.kept(reply)
        assert reasons["head"] == "node has a Ray head pod ray/rc-worker-h"
        assert reasons["roomy"] == "not in a managed node pool"
        assert sorted(_deferred(reply["keep"], "node")) == sorted(
            [*(f"empty-{i}" for i in range(4)), *(f"light-{i}" for i in range(4))]
        )
        assert reasons["empty-0"] == (
            "deferred: the decision's time limit (0 s) ran out before this node was checked; "
            "it is considered again in the next decision"
        )
        assert reply["summary"] == {
            "removeNodes": 0,
            "keepNodes": 10,
            "savedPerHour": 0,
            "deferredNodes": 8,
        }


def test_decide_cut_anywhere_answers_its_request() -> None:
    """Whichever group the limit stops at, in the first pass or a later one, the reply names every
    pod once, and what it does not defer is planned as usual; far enough out, nothing changes."""
    body = _burst()
    full = decide(body)
    cuts = [decide(body, deadline=after_checks(n)) for n in range(40)]
    for reply in cuts:
        check_decide_reply(reply, body)
        planned = {uid for action in reply["actions"] for uid in action["pods"]}
        assert planned.isdisjoint(_deferred(reply["unplaceable"], "pod"))
    assert any(r["actions"] and _deferred(r["unplaceable"], "pod") for r in cuts), "a mid cut"
    assert cuts[-1] == full


def test_scale_in_cut_anywhere_decides_a_prefix_of_the_full_decision() -> None:
    """Candidates are taken in order: what a cut reply decides (removals and reasons) is what the
    full decision decides for those nodes; the others are deferred."""
    body = _fleet()
    full = scale_in(body)
    full_reasons = into.kept(full)
    for n in range(12):
        reply = check_scale_in_reply(scale_in(body, deadline=after_checks(n)), body)
        deferred = set(_deferred(reply["keep"], "node"))
        assert set(into.removed(reply)) <= set(into.removed(full))
        assert set(into.removed(reply)) | deferred | set(into.kept(reply)) == set(
            full_reasons
        ) | set(into.removed(full))
        for name, reason in into.kept(reply).items():
            if name not in deferred:
                assert reason == full_reasons[name]
    assert scale_in(body, deadline=after_checks(100)) == full


class TestTheRequestsOwnLimit:
    """`policy.maxDecisionSeconds` narrows the caller's deadline; it is not content."""

    def test_it_narrows_an_unbounded_deadline(self) -> None:
        """maxDecisionSeconds 0 defers everything even when the caller has no limit of its own."""
        unbounded = Deadline(math.inf, clock=lambda: 0.0)
        body = _burst()
        body["policy"]["maxDecisionSeconds"] = 0
        assert decide(body, deadline=unbounded)["summary"]["deferredPods"] == 22
        fleet = _fleet()
        fleet["policy"]["maxDecisionSeconds"] = 0
        assert scale_in(fleet, deadline=unbounded)["summary"]["deferredNodes"] == 8

    def test_without_a_deadline_nothing_is_deferred(self) -> None:
        """A pure call has no clock: the request's limit cannot bind, the reply is the usual one."""
        body = _burst()
        body["policy"]["maxDecisionSeconds"] = 0
        assert decide(body) == decide(_burst())
        fleet = _fleet()
        fleet["policy"]["maxDecisionSeconds"] = 0
        assert scale_in(fleet) == scale_in(_fleet())

    def test_it_does_not_change_the_decision_id(self) -> None:
        """The same cluster asked about with another time limit is the same decision."""
        body = _burst()
        body["policy"]["maxDecisionSeconds"] = 5
        assert decide(body)["decisionId"] == decide(_burst())["decisionId"]

    @pytest.mark.parametrize("value", [-1, "5", True, math.nan])
    def test_a_bad_value_is_refused_with_its_path(self, value: object) -> None:
        """Not a number of seconds: InvalidRequest at policy.maxDecisionSeconds, both contracts."""
        for build, call in ((_burst, decide), (_fleet, scale_in)):
            body = build()
            body["policy"]["maxDecisionSeconds"] = value
            with pytest.raises(InvalidRequest) as refused:
                call(body)
            assert refused.value.path == "policy.maxDecisionSeconds"


class TestEntryPoints:
    """The FC handlers and the CLI pass a deadline; FC's stays below the deployed timeout."""

    def test_the_default_limit_leaves_a_fifth_of_the_deployed_timeout(self) -> None:
        """80% of every deployed function's timeout (template.yml and s.yaml) at most."""
        for function in deployed_functions():
            assert 0.8 * function.timeout_seconds >= DEFAULT_TIME_LIMIT_SECONDS, function

    def test_the_event_handler_replies_with_deferred_entries_past_its_limit(self) -> None:
        """An endpoint whose limit is 0 answers both contracts, deferring, never failing."""
        endpoint = DecisionEndpoint(time_limit_seconds=0)
        for body, check, key in (
            (_burst(), check_decide_reply, "deferredPods"),
            (_fleet(), check_scale_in_reply, "deferredNodes"),
        ):
            reply = json.loads(endpoint.handle_event(json.dumps(body).encode(), None))
            assert check(reply, body)["summary"][key] > 0

    def test_the_cli_honours_the_requests_limit(self, tmp_path: Path) -> None:
        """`python -m functions scale-in` with maxDecisionSeconds 0: exit 0, candidates deferred."""
        fleet = _fleet()
        fleet["policy"]["maxDecisionSeconds"] = 0
        path = tmp_path / "fleet.json"
        path.write_text(json.dumps(fleet))
        done = run_module("functions", "scale-in", "--in", str(path))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["summary"]["deferredNodes"] == 8

"""The scale-in/v1 reply: every node once, deterministic, order-independent, stable decisionId."""

from __future__ import annotations

import copy
import json
from typing import Any

from functions.scalein.decision import scale_in
from tests.support.scale_in_requests import daemon, node, pod, pool, request


def _cluster() -> dict[str, Any]:
    return request(
        [
            node("a"),
            node("b", pod("p", cpu="500m"), daemon("d1")),
            node("c", pod("h", rayNodeType="head")),
            node("k", pod("q", cpu="2", owner="ReplicaSet"), pool=None),
        ],
        [pool(min_size=1)],
        drainNonEmpty=True,
    )


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_every_node_appears_once() -> None:
    """Each node of the request is in exactly one of remove and keep."""
    reply = scale_in(_cluster())
    names = [e["node"] for e in reply["remove"]] + [e["node"] for e in reply["keep"]]
    assert sorted(names) == ["a", "b", "c", "k"]
    assert reply["summary"]["removeNodes"] + reply["summary"]["keepNodes"] == 4


def test_reply_is_plain_json_and_repeatable() -> None:
    """Two calls give byte-identical canonical JSON, and the request is not modified."""
    body = _cluster()
    before = copy.deepcopy(body)
    first, second = scale_in(body), scale_in(body)
    assert _canonical(first) == _canonical(second)
    assert body == before


def test_listing_order_does_not_matter() -> None:
    """Nodes, pods and pools in another order give the same reply, decisionId included."""
    body = _cluster()
    shuffled = copy.deepcopy(body)
    shuffled["nodes"].reverse()
    for entry in shuffled["nodes"]:
        entry["pods"].reverse()
    assert _canonical(scale_in(body)) == _canonical(scale_in(shuffled))


def test_decision_id_ignores_now_but_not_content() -> None:
    """A later `now` keeps the id; a changed node changes it."""
    body = _cluster()
    later = copy.deepcopy(body)
    later["now"] = "2026-11-29T05:00:30Z"
    changed = copy.deepcopy(body)
    changed["nodes"][0]["emptySince"] = "2026-11-29T04:59:00Z"
    ids = {scale_in(b)["decisionId"] for b in (body, later)}
    assert len(ids) == 1
    assert scale_in(changed)["decisionId"] not in ids
    assert len(next(iter(ids))) == 16


def test_quantity_spelling_does_not_change_the_id() -> None:
    """'1' and '1000m' are the same request."""
    body = _cluster()
    spelled = copy.deepcopy(body)
    spelled["nodes"][2]["pods"][0]["requests"]["cpu"] = "1000m"
    assert scale_in(body)["decisionId"] == scale_in(spelled)["decisionId"]


def test_remove_is_grouped_by_pool() -> None:
    """remove is sorted by pool then node, so each pool's nodes are one run."""
    reply = scale_in(
        request(
            [
                node("z1", pool="np-a"),
                node("b1", pool="np-b"),
                node("a1", pool="np-a"),
                node("b2", pool="np-b"),
            ],
            [pool("np-b"), pool("np-a")],
        )
    )
    assert [(e["poolId"], e["node"]) for e in reply["remove"]] == [
        ("np-a", "a1"),
        ("np-a", "z1"),
        ("np-b", "b1"),
        ("np-b", "b2"),
    ]
    assert [group["poolId"] for group in reply["pools"]] == ["np-a", "np-b"]

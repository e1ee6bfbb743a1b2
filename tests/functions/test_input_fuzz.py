"""Fuzzing the one input path: hostile JSON text spliced anywhere into a decide/v1 or scale-in/v1
request — lone surrogates, NaN and Infinity tokens, numbers past a double, integers of hundreds
of digits, deep nesting, a BOM, UTF-16 — read by `functions.readers.read_request` and decided by
either core ends in a reply that encodes as strict UTF-8 JSON or in a DecisionError, never in
another exception; the FC event handler never answers InternalError for any of it. The reply
builders themselves, handed Python strings with surrogates by an in-process caller, refuse them
with a DecisionError too. (The issue's fuzzing, ~38,000 inputs, found 69 crashes of this kind.)"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions import DecisionError, decide, scale_in
from functions.contract import SCALE_IN_SCHEMA
from functions.fc import DecisionEndpoint
from functions.readers import read_request
from tests.support import scale_in_requests as si
from tests.support.cloud.fc_events import FakeContext, seed_request

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECISION_ID = re.compile(r"[0-9a-f]{16}")
SENTINEL = "\x00splice-here\x00"

# JSON text fragments a hostile or buggy caller sends; the JSON-valid ones test the cores.
TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e999",
    "1e-400",
    "9" * 120,
    "-" + "9" * 30,
    "0",
    "-0",
    "1.5",
    "true",
    "null",
    '"\\ud800"',
    '"\\udfff"',
    '"a\\uDBFFb"',
    '"\\ud83d\\ude00"',
    '"\\ud83d"',
    '"\\ude00\\ud83d"',
    '"\\u0000"',
    '"1Gi"',
    '"500m"',
    '"2026-11-29T05:00:00Z"',
    '"np-cpu"',
    '"u-0"',
    '""',
]


def _string_literal(text: str) -> str:
    return json.dumps(text)


@st.composite
def json_text(draw: st.DrawFn, depth: int = 0) -> str:
    """Text that is JSON, almost JSON, or JSON with tokens JSON does not have."""
    if depth >= 3 or draw(st.booleans()):
        leaf = draw(
            st.sampled_from(TOKENS)
            | st.text(max_size=8).map(_string_literal)
            | st.integers(-(2**70), 2**70).map(str)
            | st.floats(allow_nan=False, allow_infinity=False).map(repr)
        )
        return leaf
    children = draw(st.lists(json_text(depth + 1), max_size=3))
    if draw(st.booleans()):
        return "[" + ",".join(children) + "]"
    keys = draw(
        st.lists(
            st.sampled_from(['"\\ud800"', '"uid"', '"id"', '"cpu"', '"k\\udc00"'])
            | st.text(max_size=6).map(_string_literal),
            min_size=len(children),
            max_size=len(children),
        )
    )
    return "{" + ",".join(f"{k}:{v}" for k, v in zip(keys, children, strict=True)) + "}"


def _decide_base() -> dict[str, Any]:
    return seed_request(pods=2)


def _scale_in_base() -> dict[str, Any]:
    nodes = [si.node("n-1", si.pod("p-1", cpu="500m")), si.node("n-2"), si.node("n-3")]
    return si.request(nodes, [si.pool(desired=3)])


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


BASES = {"decide": _decide_base(), "scale-in": _scale_in_base()}
PLACES = [(name, path) for name, base in BASES.items() for path in _paths(base)]


def _spliced(name: str, path: tuple[Any, ...], fragment: str) -> str:
    """The base request's JSON text with `fragment` as the value at `path`."""
    body = json.loads(json.dumps(BASES[name]))
    if not path:
        return fragment
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = SENTINEL
    return json.dumps(body).replace(json.dumps(SENTINEL), fragment, 1)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    name, path = draw(st.sampled_from(PLACES))
    fragment = draw(json_text())
    nesting = draw(st.sampled_from([0] * 12 + [5, 2_000, 50_000]))
    fragment = "[" * nesting + fragment + "]" * nesting
    text = _spliced(name, path, fragment)
    encoding = draw(st.sampled_from(["utf-8"] * 12 + ["utf-8-sig", "utf-16", "utf-32"]))
    return text.encode(encoding, "surrogatepass")


def _decision(request: dict[str, Any]) -> dict[str, Any]:
    return scale_in(request) if request.get("schema") == SCALE_IN_SCHEMA else decide(request)


def _strict_utf8_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


@FUZZ
@given(body=hostile_bodies())
def test_the_shared_reader_and_both_cores_never_crash(body: bytes) -> None:
    """read_request then decide/v1 or scale-in/v1: a reply or a DecisionError, both valid UTF-8
    JSON; the FC event handler answers the same body without InternalError."""
    try:
        reply = _decision(read_request(body))
    except DecisionError as refusal:
        _strict_utf8_json(refusal.to_json())
    else:
        _strict_utf8_json(reply)
        assert DECISION_ID.fullmatch(reply["decisionId"])
    answer = json.loads(DecisionEndpoint().handle_event(body, FakeContext()))
    assert answer.get("error", {}).get("code") != "InternalError", answer


def _replace(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(base))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return body


# Python strings an in-process caller can build and JSON text cannot carry: lone surrogates.
SURROGATE_TEXT = st.text(alphabet=st.characters(categories=["Cs", "Ll", "Nd"]), max_size=6)


def _walk(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


STRING_PLACES = [(n, p) for n, p in PLACES if p and isinstance(_walk(BASES[n], p), str)]
KEY_PLACES = [(n, p) for n, p in PLACES if p and isinstance(_walk(BASES[n], p), dict)]


@FUZZ
@given(
    place=st.sampled_from(STRING_PLACES + KEY_PLACES),
    text=SURROGATE_TEXT,
    as_key=st.booleans(),
)
def test_both_reply_builders_refuse_surrogates_from_in_process_callers(
    place: tuple[str, tuple[Any, ...]], text: str, as_key: bool
) -> None:
    """decide() and scale_in() called with Python strings holding lone surrogates (values, or
    keys of an object) give a reply that is valid UTF-8 or a DecisionError — never
    UnicodeEncodeError from building the decisionId."""
    name, path = place
    base = BASES[name]
    target = _walk(base, path)
    if isinstance(target, dict):
        body = _replace(base, path, {**target, text: "v"} if as_key else {**target, "k": text})
    else:
        body = _replace(base, path, text)
    try:
        reply = _decision(body)
    except DecisionError as refusal:
        _strict_utf8_json(refusal.to_json())
    else:
        assert DECISION_ID.fullmatch(reply["decisionId"])
        _strict_utf8_json(reply)

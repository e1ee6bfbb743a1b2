"""A label selector string, matched against a label map on the agent's side: which worker groups
of a RayCluster the agent's pod watches would see, so it anticipates only workers it will also
count once their pods exist.

The grammar is the one kube-apiserver parses (k8s.io/apimachinery/pkg/labels/selector.go, the
`Parse` function): requirements joined by commas, each `key`, `!key`, `key=value`,
`key==value`, `key!=value`, `key in (a,b)` or `key notin (a,b)`; `!=` and `notin` also match a
label map without the key. (`gt`/`lt` exist only in node selector terms, not here.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Matcher = Callable[[Mapping[str, str]], bool]

_SET = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_PAIR = re.compile(r"^\s*([^\s!=(),]+)\s*(==|!=|=)\s*([^\s!=(),]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def _requirements(selector: str) -> list[str]:
    """Split at the commas outside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Matcher:
    if found := _SET.match(text):
        key, op, values_text = found.groups()
        values = frozenset(v.strip() for v in values_text.split(",") if v.strip())
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if found := _PAIR.match(text):
        key, op, value = found.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if found := _EXISTS.match(text):
        negated, key = found.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ValueError(f"cannot parse label selector requirement {text.strip()!r}")


def parse_selector(selector: str) -> Matcher:
    """A predicate over label maps; the empty selector matches everything. Raises ValueError
    for a requirement it cannot parse."""
    matchers = [_requirement(part) for part in _requirements(selector)]
    return lambda labels: all(match(labels) for match in matchers)

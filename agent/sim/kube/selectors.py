"""Label and field selectors as the apiserver parses and evaluates them, compiled into
predicates over raw objects; parse errors are 400 BadRequest ApiErrors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.sim.kube.store import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _always(_: dict[str, Any]) -> bool:
    return True


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# -- label selectors -------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # = != in notin exists !exists gt lt
    values: tuple[str, ...]

    def matches(self, labels: dict[str, Any]) -> bool:
        op = self.operator
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        if op in ("=", "in"):
            return labels.get(self.key) in self.values
        if op in ("!=", "notin"):
            return labels.get(self.key) not in self.values
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if op == "gt" else number < bound


_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|>|<|[^\s(),!=<>]+)")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise _bad(f"unable to parse requirement: found '{text[position:]}'")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not _NAME_PART.match(name)
        or (slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
    ):
        raise _bad(
            f'unable to parse requirement: <nil>: Invalid value: "{key}": name part must consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def _check_value(key: str, value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise _bad(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{value}": a valid '
            "label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character"
        )


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3` into requirements (AND)."""
    if not text or not text.strip():
        return ()
    return _LabelSelectorParser(text).parse()


class _LabelSelectorParser:
    """A cursor over one selector's tokens, with one method per grammar rule; each takes the
    tokens its rule consumes."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokens(text)
        self._position = 0

    def parse(self) -> tuple[Requirement, ...]:
        requirements: list[Requirement] = []
        while not self._at_end():
            requirements.append(self._requirement())
            self._separator()
        return tuple(requirements)

    def _at_end(self) -> bool:
        return self._position >= len(self._tokens)

    def _peek(self) -> str:
        """The next token, not taken; the end of the selector reads as a ","."""
        return "," if self._at_end() else self._tokens[self._position]

    def _take(self) -> str:
        if self._at_end():
            raise _bad(f"unable to parse requirement: unexpected end of selector {self._text!r}")
        token = self._tokens[self._position]
        self._position += 1
        return token

    def _requirement(self) -> Requirement:
        token = self._take()
        if token == "!":
            key = self._take()
            _check_key(key)
            return Requirement(key, "!exists", ())
        _check_key(token)
        if self._peek() == ",":
            return Requirement(token, "exists", ())
        operator = self._take()
        if operator in ("=", "==", "!="):
            return self._equality(token, operator)
        if operator in ("in", "notin"):
            return self._set(token, operator)
        if operator in (">", "<"):
            return self._comparison(token, operator)
        raise _bad(
            f"unable to parse requirement: found '{operator}', expected: "
            "'=', '!=', '==', 'in', notin'"
        )

    def _equality(self, key: str, operator: str) -> Requirement:
        # `key=` with nothing after it selects the empty value
        value = "" if self._peek() == "," else self._take()
        _check_value(key, value)
        return Requirement(key, "!=" if operator == "!=" else "=", (value,))

    def _set(self, key: str, operator: str) -> Requirement:
        if self._take() != "(":
            raise _bad(f"unable to parse requirement: expected '(' after {operator}")
        values: list[str] = []
        while (item := self._take()) != ")":
            if item != ",":
                _check_value(key, item)
                values.append(item)
        if operator == "in" and not values:
            raise _bad(
                "unable to parse requirement: for 'in', 'notin' operators, values set "
                "can't be empty"
            )
        return Requirement(key, operator, tuple(values))

    def _comparison(self, key: str, operator: str) -> Requirement:
        bound = self._take()
        if not re.fullmatch(r"-?\d+", bound):
            raise _bad(
                f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                f"be an integer, got {bound!r}"
            )
        return Requirement(key, "gt" if operator == ">" else "lt", (bound,))

    def _separator(self) -> None:
        """After a requirement: the end, or a "," and then another requirement."""
        if self._at_end():
            return
        if self._tokens[self._position] != ",":
            raise _bad(
                f"unable to parse requirement: found '{self._tokens[self._position]}', "
                "expected: ','"
            )
        self._position += 1
        if self._at_end():
            raise _bad("unable to parse requirement: found '', expected: identifier")


def label_predicate(text: str | None) -> Predicate:
    requirements = parse_label_selector(text)
    if not requirements:
        return _always

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement.matches(labels) for requirement in requirements)

    return matches


# -- field selectors -------------------------------------------------------------------------


def _path_getter(path: str) -> Callable[[dict[str, Any]], str]:
    parts = path.split(".")

    def get(obj: dict[str, Any]) -> str:
        value: object = obj
        for part in parts:
            if not isinstance(value, dict):
                return ""
            value = value.get(part)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return get


def _pod_ips(obj: dict[str, Any]) -> str:
    ips = (obj.get("status") or {}).get("podIPs") or []
    return ",".join(str(entry.get("ip", "")) for entry in ips)


_COMMON = ("metadata.name", "metadata.namespace")
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        *_COMMON,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ),
    "nodes": ("metadata.name", "spec.unschedulable"),
    "namespaces": ("metadata.name", "status.phase"),
    "events": (
        *_COMMON,
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "leases": _COMMON,
    "poddisruptionbudgets": _COMMON,
    # a custom resource selects by metadata.name and metadata.namespace only
    # (apiextensions-apiserver registry/customresource strategy.go, GetAttrs)
    "rayclusters": _COMMON,
}


def _field_getter(resource: str, field: str) -> Callable[[dict[str, Any]], str]:
    if field == "status.podIPs":
        return _pod_ips
    if field == "source":
        return _path_getter("source.component")
    if field == "spec.hostNetwork":
        get = _path_getter(field)
        return lambda obj: get(obj) or "false"
    if field == "spec.unschedulable":
        get = _path_getter(field)
        return lambda obj: get(obj) or "false"
    return _path_getter(field)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            if following not in ("\\", ",", "="):
                raise _bad(f"invalid field selector: invalid escape sequence: \\{following}")
            out.append(following)
        else:
            out.append(char)
    return "".join(out)


def parse_field_selector(resource: str, text: str | None) -> tuple[tuple[str, str, str], ...]:
    """Parse `f=v,g!=w` into (field, operator, value) terms, rejecting unsupported fields."""
    if not text or not text.strip():
        return ()
    terms: list[tuple[str, str, str]] = []
    for raw in _split_unescaped(text, ","):
        term = raw.strip()
        if not term:
            continue
        for operator in ("!=", "==", "="):
            index = term.find(operator)
            if index > 0:
                field, value = term[:index].strip(), term[index + len(operator) :]
                break
        else:
            raise _bad(f"invalid selector: '{text}'; can't understand '{term}'")
        if field not in SUPPORTED_FIELDS.get(resource, _COMMON):
            raise _bad(f"field label not supported: {field}")
        terms.append((field, "!=" if operator == "!=" else "=", _unescape(value)))
    return tuple(terms)


def field_predicate(resource: str, text: str | None) -> Predicate:
    terms = parse_field_selector(resource, text)
    if not terms:
        return _always
    checks = [
        (_field_getter(resource, field), operator == "=", value) for field, operator, value in terms
    ]

    def matches(obj: dict[str, Any]) -> bool:
        return all((get(obj) == value) is equal for get, equal, value in checks)

    return matches


def selector_predicate(
    resource: str, *, label_selector: str | None, field_selector: str | None
) -> Predicate | None:
    """One predicate for both selectors, or None when nothing is selected out."""
    labels = label_predicate(label_selector)
    fields = field_predicate(resource, field_selector)
    if labels is _always and fields is _always:
        return None
    if fields is _always:
        return labels
    if labels is _always:
        return fields
    return lambda obj: labels(obj) and fields(obj)

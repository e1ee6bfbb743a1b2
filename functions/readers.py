"""Typed readers for raw request JSON, shared by decide/v1 and scale-in/v1 validation.

Each reader takes a decoded JSON value and its path (`pods[3].requests.memory`) and
returns a clean value or raises `InvalidRequest` naming that path; `kind` names a
JSON value's type the way the messages do ("null", "number", "object", ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping

from functions.errors import InvalidRequest
from functions.quantity import parse_quantity

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Larger than any real pool or wait, small enough to catch unit mistakes (ms for s).
MAX_POOL_SIZE = 100_000
MAX_SECONDS = 30 * 24 * 3600.0
MAX_PRICE = 1e6
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def canonical(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def required(raw: dict[str, Any], name: str, path: str) -> Any:
    if name not in raw or raw[name] is None:
        raise InvalidRequest(
            f"missing required field {name!r}", path=f"{path}.{name}" if path else name
        )
    return raw[name]


def optional_object(raw: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"expected an object, got {kind(value)}", path=f"{path}.{name}" if path else name
        )
    return value


def string_map(raw: object, *, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object of strings, got {kind(raw)}", path=path)
    for key, value in raw.items():
        if not isinstance(key, str):
            raise InvalidRequest(f"keys must be strings, got {kind(key)}", path=path)
        if not isinstance(value, str):
            raise InvalidRequest(f"expected a string, got {kind(value)}", path=f"{path}.{key}")
    return dict(raw)


def string_list(raw: object, *, path: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest(f"expected a list of strings, got {kind(raw)}", path=path)
    for i, value in enumerate(raw):
        if not isinstance(value, str):
            raise InvalidRequest(f"expected a string, got {kind(value)}", path=f"{path}[{i}]")
    return list(raw)


def boolean(raw: object, *, path: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise InvalidRequest(f"expected true or false, got {kind(raw)}", path=path)
    return raw


def count(raw: object, *, path: str, limit: int = MAX_POOL_SIZE) -> int:
    if type(raw) is not int:
        raise InvalidRequest(f"expected an integer, got {kind(raw)}", path=path)
    if not 0 <= raw <= limit:
        raise InvalidRequest(f"{raw} is outside [0, {limit}]", path=path)
    return raw


def number(raw: object, *, path: str, limit: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidRequest(f"expected a number, got {kind(raw)}", path=path)
    value = float(raw)
    if not math.isfinite(value) or not 0 <= value <= limit:
        raise InvalidRequest(f"{raw!r} is outside [0, {limit:g}]", path=path)
    return value


def seconds(raw: object, *, path: str) -> float:
    return number(raw, path=path, limit=MAX_SECONDS)


def price(raw: object, *, path: str) -> float:
    return number(raw, path=path, limit=MAX_PRICE)


def nonnegative_quantity(raw: object, *, path: str) -> int:
    milli = parse_quantity(raw, path=path)
    if milli < 0:
        raise InvalidRequest(f"negative quantity {raw!r}", path=path)
    return milli


def timestamp(raw: object, *, path: str) -> float:
    """RFC 3339 time -> seconds since the epoch (Python 3.10's fromisoformat rejects 'Z')."""
    if not isinstance(raw, str):
        raise InvalidRequest(f"expected an RFC 3339 timestamp string, got {kind(raw)}", path=path)
    match = _TIMESTAMP.fullmatch(raw)
    if match is None:
        raise InvalidRequest(f"invalid RFC 3339 timestamp {raw!r}", path=path)
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    if not (
        year >= 1
        and 1 <= month <= 12
        and 1 <= day <= _days_in_month(year, month)
        and hour < 24
        and minute < 60
        and second < 60
    ):
        # Imported only to word the refusal as datetime does; the happy path is arithmetic,
        # which spares a cold start the datetime module.
        from datetime import datetime

        try:
            datetime(year, month, day, hour, minute, second)
        except ValueError as error:
            raise InvalidRequest(
                f"invalid RFC 3339 timestamp {raw!r}: {error}", path=path
            ) from None
    seconds = float(
        _days_since_epoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    )
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    if fraction:
        seconds += int(fraction[:9]) / 10 ** len(fraction[:9])
    return seconds


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_since_epoch(year: int, month: int, day: int) -> int:
    # Days from 1970-01-01 in the proleptic Gregorian calendar (Hinnant's days_from_civil).
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def affinity(raw: object, *, path: str) -> Mapping[str, Any] | None:
    binding: Any = raw
    # Only the required node affinity binds; a missing level means no constraint.
    for name in ("", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
        if name:
            binding = binding.get(name)
            path = f"{path}.{name}"
        if binding is None:
            return None
        if not isinstance(binding, dict):
            raise InvalidRequest(f"expected an object, got {kind(binding)}", path=path)
    terms = binding.get("nodeSelectorTerms")
    path = f"{path}.nodeSelectorTerms"
    if terms is None:
        terms = []
    if not isinstance(terms, list):
        raise InvalidRequest(f"expected a list, got {kind(terms)}", path=path)
    clean_terms = [_term(term, path=f"{path}[{i}]") for i, term in enumerate(terms)]
    # Only the binding part is kept: preferred terms and pod (anti-)affinity never decide.
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": clean_terms}
        }
    }


def _term(raw: object, *, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {kind(raw)}", path=path)
    term: dict[str, Any] = {}
    for field in ("matchExpressions", "matchFields"):
        expressions = raw.get(field)
        if expressions is None:
            continue
        where = f"{path}.{field}"
        if not isinstance(expressions, list):
            raise InvalidRequest(f"expected a list, got {kind(expressions)}", path=where)
        term[field] = [_expression(e, path=f"{where}[{i}]") for i, e in enumerate(expressions)]
    return term


def _expression(raw: object, *, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"expected an object, got {kind(raw)}", path=path)
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidRequest("key must be a non-empty string", path=f"{path}.key")
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise InvalidRequest(
            f"unknown operator {operator!r}, expected one of {list(OPERATORS)}",
            path=f"{path}.operator",
        )
    values = string_list(raw.get("values"), path=f"{path}.values")
    # The API server's own rules, so a request can't hold a pod Kubernetes would refuse.
    if operator in ("In", "NotIn") and not values:
        raise InvalidRequest(f"{operator} needs at least one value", path=f"{path}.values")
    if operator in ("Exists", "DoesNotExist") and values:
        raise InvalidRequest(f"{operator} takes no values", path=f"{path}.values")
    if operator in ("Gt", "Lt") and (len(values) != 1 or not _is_int_text(values[0])):
        raise InvalidRequest(f"{operator} needs exactly one integer value", path=f"{path}.values")
    return {"key": key, "operator": operator, "values": list(values)}


def _is_int_text(text: str) -> bool:
    digits = text[1:] if text[:1] in ("+", "-") else text
    return bool(digits) and digits.isascii() and digits.isdigit()


def tolerations(raw: object, *, path: str) -> tuple[Mapping[str, Any], ...]:
    clean = []
    for where, toleration in objects(raw, path=path):
        for name in ("key", "operator", "value", "effect"):
            value = toleration.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(
                    f"expected a string, got {kind(value)}", path=f"{where}.{name}"
                )
        if toleration.get("operator") not in (None, "", "Exists", "Equal"):
            raise InvalidRequest(
                f"unknown operator {toleration['operator']!r}", path=f"{where}.operator"
            )
        if toleration.get("effect") not in (None, "", *TAINT_EFFECTS):
            raise InvalidRequest(f"unknown effect {toleration['effect']!r}", path=f"{where}.effect")
        clean.append(
            {
                name: toleration[name]
                for name in ("key", "operator", "value", "effect")
                if toleration.get(name)
            }
        )
    return tuple(clean)


def taints(raw: object, *, path: str) -> tuple[Mapping[str, Any], ...]:
    clean = []
    for where, taint in objects(raw, path=path):
        key = taint.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidRequest("key must be a non-empty string", path=f"{where}.key")
        value = taint.get("value")
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"expected a string, got {kind(value)}", path=f"{where}.value")
        effect = taint.get("effect")
        if effect not in TAINT_EFFECTS:
            raise InvalidRequest(
                f"unknown effect {effect!r}, expected one of {list(TAINT_EFFECTS)}",
                path=f"{where}.effect",
            )
        clean.append({"key": key, "value": value or "", "effect": effect})
    return tuple(clean)


def envelope(raw: object, *, schema: str) -> tuple[dict[str, Any], float]:
    """The request object and its `now`, once its `schema` is the expected one."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"the request must be a JSON object, got {kind(raw)}", path="")
    found = raw.get("schema")
    if found != schema:
        raise InvalidRequest(f"unknown schema {found!r}, expected {schema!r}", path="schema")
    return raw, timestamp(required(raw, "now", ""), path="now")


def cluster(raw: dict[str, Any]) -> dict[str, Any]:
    """The request's optional `cluster` object: any plain JSON (it only enters the id)."""
    value = optional_object(raw, "cluster", "")
    try:
        canonical(value)
    except (TypeError, ValueError):
        raise InvalidRequest("cluster must hold plain JSON values", path="cluster") from None
    return value


def objects(raw: object, *, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, object) for each item of a JSON list of objects; null is the empty list."""
    if raw is None:
        return
    if not isinstance(raw, list):
        raise InvalidRequest(f"expected a list, got {kind(raw)}", path=path)
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"expected an object, got {kind(item)}", path=where)
        yield where, item


def keyed_objects(
    raw: list[Any], *, path: str, key: str, noun: str
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(path, object, its key) for a list of objects each named by a unique non-empty string."""
    seen: dict[str, str] = {}
    for where, item in objects(raw, path=path):
        name = item.get(key)
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{key} must be a non-empty string", path=f"{where}.{key}")
        if name in seen:
            raise InvalidRequest(
                f"duplicate {noun} {name!r} (also {seen[name]})", path=f"{where}.{key}"
            )
        seen[name] = where
        yield where, item, name

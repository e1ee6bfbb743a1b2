"""Readers for raw requests, shared by decide/v1 and scale-in/v1.

`read_request` is the one input path from bytes to a request object: the CLI
(`python -m functions`) and every Function Compute handler (`functions.fc`) call it, so they
accept and refuse exactly the same bodies (size limit, UTF-8 only, strict JSON, no lone
surrogates). The typed readers below it take a decoded JSON value and its path
(`pods[3].requests.memory`) and return a clean value or raise `InvalidRequest` naming that
path; `kind` names a JSON value's type the way the messages do ("null", "number", "object", ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping

from functions.errors import InvalidRequest, RequestTooLarge
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

# The body limit of `read_request`: Function Compute's synchronous invocation payload limit,
# 32 MB (docs/cloud-facts.md, "Sync invocation payload ≤ 32 MB"; the FC emulator refuses larger
# calls at the same size). The CLI and the handlers share it; DECIDE_MAX_BODY_BYTES overrides it.
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BODY_ENV = "DECIDE_MAX_BODY_BYTES"
# Integers longer than this are refused while parsing (counts and sizes need a handful).
MAX_INT_DIGITS = 100

# A `\uD800`-`\uDFFF` escape: in text decoded from valid UTF-8, the only way a lone surrogate
# gets into a parsed string; a high one followed at once by a low one is a pair (as `json.dumps`
# writes an emoji), one character once parsed. Only an unpaired one costs a walk of the value.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


# --- the request body ------------------------------------------------------------------------


def read_request(
    raw: bytes | bytearray | memoryview | str, *, max_bytes: int = MAX_BODY_BYTES
) -> dict[str, Any]:
    """One request body (bytes, or text already decoded) → the request object.

    Refused with `RequestTooLarge` (path "") when over `max_bytes` UTF-8 bytes, checked before
    anything is parsed; with `InvalidRequest` when it is empty, not UTF-8 (a byte order mark,
    UTF-16 or UTF-32 included: RFC 8259 §8.1), not strict JSON (NaN, Infinity and -Infinity are
    not JSON; a number beyond a double's range is refused too), nested past the parser's depth,
    not a JSON object, or when a string holds a lone UTF-16 surrogate (`"\\ud800"`), which has
    no UTF-8 form — then with the JSON path of that string (`pods[0].labels.app`).
    """
    if isinstance(raw, str):
        # A str holds at most as many characters as its UTF-8 form has bytes.
        if len(raw) > max_bytes or (
            not raw.isascii() and len(raw.encode("utf-8", "surrogatepass")) > max_bytes
        ):
            raise body_too_large(len(raw.encode("utf-8", "surrogatepass")), max_bytes)
        text = raw
        if text[:1] == "\ufeff":
            raise InvalidRequest(_BOM, path="")
        # Text handed over already decoded may hold surrogates as characters, too.
        surrogates = _lone_surrogate_escape(text) or (
            not text.isascii() and _SURROGATE.search(text) is not None
        )
    else:
        data = bytes(raw)
        if len(data) > max_bytes:
            raise body_too_large(len(data), max_bytes)
        text = _utf8(data)
        surrogates = _lone_surrogate_escape(text)
    if not text.strip():
        raise InvalidRequest("the request body is empty; expected a JSON object", path="")
    try:
        value = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int
        )
    except json.JSONDecodeError as err:
        raise InvalidRequest(
            f"the request body is not valid JSON: {err.msg} at line {err.lineno} "
            f"column {err.colno}",
            path="",
        ) from None
    except ValueError as err:  # NaN / Infinity, a number out of a double's range, 100+ digits
        raise InvalidRequest(f"the request body is not valid JSON: {err}", path="") from None
    except RecursionError:
        raise InvalidRequest("the request body nests JSON too deeply", path="") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"the request must be a JSON object, got {kind(value)}", path="")
    if surrogates:
        where = surrogate_path(value)
        if where is not None:
            raise InvalidRequest(
                "a string holds a lone UTF-16 surrogate (U+D800 to U+DFFF), which is not "
                "Unicode text and has no UTF-8 form",
                path=where,
            )
    return value


def _lone_surrogate_escape(text: str) -> bool:
    """Whether `text` holds a surrogate escape that is not half of a high-low pair."""
    if "\\u" not in text:
        return False
    open_high = -1  # where a low escape must start to pair the last high one
    for match in _SURROGATE_ESCAPE.finditer(text):
        is_low = match.group()[3] in "cdefCDEF"
        if is_low and match.start() != open_high:
            return True
        if not is_low and open_high != -1:
            return True
        open_high = -1 if is_low else match.end()
    return open_high != -1


def surrogate_path(value: object) -> str | None:
    """The JSON path of the first string (key or value) holding a lone surrogate, else None.

    Iterative, so a value nested as deep as the parser allows cannot overflow the stack. A key
    with a surrogate is named with the surrogate escaped (`labels.a\\ud800`), so the path itself
    is always valid UTF-8.
    """
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            children: list[tuple[str, object]] = []
            for key, child in item.items():
                name = key if isinstance(key, str) else str(key)
                if _SURROGATE.search(name):
                    return _join(path, name.encode("utf-8", "backslashreplace").decode("utf-8"))
                children.append((_join(path, name), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None


def fingerprint_bytes(fingerprint: str) -> bytes:
    """The fingerprint as UTF-8, or InvalidRequest when a string in it holds a lone surrogate.

    `read_request` refuses such strings with their JSON path before any decision; this is the in-process caller's refusal (a dict built in Python can hold one),
    which names the text around it since the path is no longer known.
    """
    try:
        return fingerprint.encode("utf-8")
    except UnicodeEncodeError as err:
        near = fingerprint[max(0, err.start - 40) : err.end + 40]
        raise InvalidRequest(
            "a string holds a lone UTF-16 surrogate (U+D800 to U+DFFF), which has no UTF-8 "
            f"form, near {near.encode('utf-8', 'backslashreplace').decode('utf-8')!r}",
            path="",
        ) from None


def max_body_bytes_from(environ: Mapping[str, str]) -> int:
    """DECIDE_MAX_BODY_BYTES from `environ`, else `MAX_BODY_BYTES`; ValueError when unusable."""
    text = environ.get(MAX_BODY_ENV, "").strip()
    if not text:
        return MAX_BODY_BYTES
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{MAX_BODY_ENV}={text!r} is not a whole number of bytes") from None
    if value <= 0:
        raise ValueError(f"{MAX_BODY_ENV}={text!r} must be positive")
    return value


_BOM = "the request body starts with a byte order mark; send UTF-8 without one (RFC 8259 §8.1)"


def _utf8(data: bytes) -> str:
    if data[:3] == b"\xef\xbb\xbf":
        raise InvalidRequest(_BOM, path="")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        # RFC 4627's detection: JSON text starts with two ASCII characters, so NULs among the
        # first four bytes mean UTF-16 or UTF-32, which this contract does not take.
        raise InvalidRequest(
            "the request body is not UTF-8 (it looks like UTF-16 or UTF-32); send UTF-8 JSON",
            path="",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidRequest(
            f"the request body is not valid UTF-8 (byte {err.start}: {err.reason})", path=""
        ) from None


def body_too_large(size: int, limit: int) -> RequestTooLarge:
    """The refusal of a body of `size` bytes over `limit`."""
    return RequestTooLarge(
        f"the request body is {size} bytes, over the limit of {limit} bytes (by default Function "
        "Compute's 32 MB synchronous payload limit): split the pending pods across decisions",
        path="",
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond the range of a double")
    return value


def _bounded_int(text: str) -> int:
    # No field takes more; Python itself stops at 4,300 digits with a message about its API.
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"the integer {text[:12]}… has {len(text)} digits, over {MAX_INT_DIGITS}")
    return int(text)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


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

"""Kubernetes resource quantities ("500m", "1Gi", "1e3", 2.5) as exact integer milli-units.

Follows `resource.Quantity`'s grammar: an optional sign, digits with an optional
fraction, then one suffix — decimal SI (n u m k M G T P E), binary SI
(Ki Mi Gi Ti Pi Ei) or a decimal exponent (e/E and an integer). The value is
converted to milli-units and rounded up (towards +inf), as `Quantity.MilliValue()`
does, using integer arithmetic only so '0.1' is exactly 100m.
"""

from __future__ import annotations

import math

from functions.errors import InvalidRequest

# (multiplier, power of ten) per suffix: value = digits * multiplier * 10**power.
_SUFFIXES: dict[str, tuple[int, int]] = {
    "": (1, 0),
    "n": (1, -9),
    "u": (1, -6),
    "m": (1, -3),
    "k": (1, 3),
    "M": (1, 6),
    "G": (1, 9),
    "T": (1, 12),
    "P": (1, 15),
    "E": (1, 18),
    "Ki": (1 << 10, 0),
    "Mi": (1 << 20, 0),
    "Gi": (1 << 30, 0),
    "Ti": (1 << 40, 0),
    "Pi": (1 << 50, 0),
    "Ei": (1 << 60, 0),
}

# Far beyond any real node (10^21 units), small enough that a hostile "1e999999999"
# never builds a huge integer.
_MAX_MILLI = 10**24
_MAX_TEXT = 64
_MAX_EXPONENT = 40
_DIGITS = frozenset("0123456789")

# Quantity strings repeat across thousands of pods; parsing is pure, so memoise it.
_CACHE: dict[str, int] = {}
_CACHE_LIMIT = 4096


def parse_quantity(value: object, *, path: str = "") -> int:
    """Kubernetes quantity (str, int or float) -> integer milli-units, rounded up like Quantity.MilliValue().

    '1' -> 1000, '500m' -> 500, '1Gi' -> 1073741824000, '1e3' -> 1000000, '1n' -> 1.
    Raises InvalidRequest(path=path) for malformed input, bool, NaN/inf.
    """
    if type(value) is str:
        cached = _CACHE.get(value)
        if cached is not None:
            return cached
        milli = _parse_text(value, path=path)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[value] = milli
        return milli
    if isinstance(value, bool):
        raise InvalidRequest(f"expected a quantity, got boolean {value!r}", path=path)
    if isinstance(value, int):
        return _bounded(value * 1000, value, path=path)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"expected a finite quantity, got {value!r}", path=path)
        # repr() is the shortest text that round-trips, so 0.1 parses as exactly 100m.
        return _parse_text(repr(value), path=path)
    raise InvalidRequest(
        f"expected a quantity string or number, got {type(value).__name__}", path=path
    )


def parse_resources(raw: object, *, path: str) -> dict[str, int]:
    """A resource map {'cpu': '500m', ...} -> milli-units.

    Negative or malformed values raise InvalidRequest with path f'{path}.{name}'.
    """
    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"expected an object of resource quantities, got {type(raw).__name__}", path=path
        )
    parsed: dict[str, int] = {}
    for name, quantity in raw.items():
        if not isinstance(name, str) or not name:
            raise InvalidRequest("resource names must be non-empty strings", path=path)
        where = f"{path}.{name}"
        milli = parse_quantity(quantity, path=where)
        if milli < 0:
            raise InvalidRequest(f"negative quantity {quantity!r}", path=where)
        parsed[name] = milli
    return parsed


def format_milli(milli: int) -> str:
    """Milli-units back to a quantity string that parses to exactly the same value.

    Whole units print plain (2000 -> '2'), the rest in milli-units (1500 -> '1500m').
    """
    whole, rest = divmod(milli, 1000)
    if rest == 0:
        return str(whole)
    return f"{milli}m"


def _parse_text(text: str, *, path: str) -> int:
    if not text or len(text) > _MAX_TEXT:
        raise InvalidRequest(f"invalid quantity {text[:_MAX_TEXT]!r}", path=path)
    negative = text[0] == "-"
    i = 1 if text[0] in "+-" else 0
    start = i
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    whole = text[start:i]
    fraction = ""
    if i < len(text) and text[i] == ".":
        i += 1
        frac_start = i
        while i < len(text) and text[i] in _DIGITS:
            i += 1
        fraction = text[frac_start:i]
    if not whole and not fraction:
        raise InvalidRequest(f"invalid quantity {text!r}: no digits", path=path)
    suffix = text[i:]
    scale = _SUFFIXES.get(suffix)
    if scale is None:
        scale = (1, _exponent(suffix, text=text, path=path))
    multiplier, power = scale
    digits = int(whole + fraction) * multiplier
    if negative:
        digits = -digits
    # milli = digits * 10**(power + 3 - len(fraction)), rounded up.
    shift = power + 3 - len(fraction)
    milli = digits * 10**shift if shift >= 0 else -((-digits) // 10 ** (-shift))
    return _bounded(milli, text, path=path)


def _exponent(suffix: str, *, text: str, path: str) -> int:
    if len(suffix) >= 2 and suffix[0] in "eE":
        body = suffix[1:]
        digits = body[1:] if body[0] in "+-" else body
        if digits and all(c in _DIGITS for c in digits):
            exponent = int(body)
            if abs(exponent) <= _MAX_EXPONENT:
                return exponent
            raise InvalidRequest(f"quantity {text!r} is out of range", path=path)
    raise InvalidRequest(f"invalid quantity {text!r}: unknown suffix {suffix!r}", path=path)


def _bounded(milli: int, original: object, *, path: str) -> int:
    if abs(milli) > _MAX_MILLI:
        raise InvalidRequest(f"quantity {original!r} is out of range", path=path)
    return milli

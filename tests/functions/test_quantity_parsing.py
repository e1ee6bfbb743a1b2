"""Kubernetes quantities: the documented spellings, rounding up to milli-units, and refusals."""

from __future__ import annotations

import pytest

from functions.errors import InvalidRequest
from functions.quantity import format_milli, parse_quantity, parse_resources

MB_129 = 128974848000  # 123Mi in milli-units


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        # Kubernetes' "Resource units" page: these all mean about 129 MB.
        ("128974848", 128974848000),
        ("129e6", 129000000000),
        ("129M", 129000000000),
        ("128974848000m", MB_129),
        ("123Mi", MB_129),
        # ... and cpu: 0.5 is 500m; 0.1 is exactly 100m.
        ("0.5", 500),
        ("500m", 500),
        ("0.1", 100),
        ("1", 1000),
        ("+1", 1000),
        ("1e3", 1_000_000),
        ("1E3", 1_000_000),
        ("1e+3", 1_000_000),
        ("1E-3", 1),
        (".5", 500),
        ("5.", 5000),
        ("1k", 1_000_000),
        ("1Ki", 1_024_000),
        ("1Gi", 1_073_741_824_000),
        ("2Ti", 2 * 2**40 * 1000),
        ("1E", 10**21),
        ("1Ei", 2**60 * 1000),
        ("1u", 1),
        ("0", 0),
        ("0m", 0),
    ],
)
def test_documented_spellings(text: str, milli: int) -> None:
    """Each spelling from the Kubernetes docs parses to the exact milli-value."""
    assert parse_quantity(text) == milli


@pytest.mark.parametrize(("text", "milli"), [("1n", 1), ("1500u", 2), ("0.0001", 1), ("-1n", 0)])
def test_sub_milli_values_round_up(text: str, milli: int) -> None:
    """Below a milli-unit the value rounds up (towards +inf), like Quantity.MilliValue()."""
    assert parse_quantity(text) == milli


@pytest.mark.parametrize(("number", "milli"), [(2, 2000), (0.5, 500), (1e3, 1_000_000), (0, 0)])
def test_json_numbers(number: float, milli: int) -> None:
    """JSON numbers are quantities too, without binary float error."""
    assert parse_quantity(number) == milli


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " 1",
        "1 ",
        "x",
        "1x",
        "1e",
        "1ki",
        "1KI",
        ".",
        "-",
        "+",
        "1..2",
        "1e1.5",
        "1e999",
        "1" * 100,
        "0x10",
        "1_000",
        True,
        False,
        None,
        [],
        {},
        float("nan"),
        float("inf"),
    ],
)
def test_malformed_values_are_refused(bad: object) -> None:
    """Malformed text, booleans, NaN/inf and non-scalars raise InvalidRequest with the path."""
    with pytest.raises(InvalidRequest) as caught:
        parse_quantity(bad, path="pods[3].requests.memory")
    assert caught.value.path == "pods[3].requests.memory"


def test_negative_quantity_parses_but_is_refused_as_a_request() -> None:
    """'-1' is a valid quantity, but a negative request names its path."""
    assert parse_quantity("-1") == -1000
    with pytest.raises(InvalidRequest) as caught:
        parse_resources({"cpu": "1", "memory": "-1"}, path="pods[3].requests")
    assert caught.value.path == "pods[3].requests.memory"


def test_resource_map_keeps_extended_resources() -> None:
    """Extended resources pass through by name, in milli-units."""
    parsed = parse_resources(
        {"cpu": "500m", "nvidia.com/gpu": 1, "ephemeral-storage": "10Gi"}, path="pods[0].requests"
    )
    assert parsed == {"cpu": 500, "nvidia.com/gpu": 1000, "ephemeral-storage": 10 * 2**30 * 1000}


@pytest.mark.parametrize("raw", [["cpu"], "cpu=1", None, 3])
def test_resource_map_must_be_an_object(raw: object) -> None:
    """A resource map of the wrong type is refused at the map's own path."""
    with pytest.raises(InvalidRequest) as caught:
        parse_resources(raw, path="pools[0].allocatable")
    assert caught.value.path == "pools[0].allocatable"


@pytest.mark.parametrize(
    ("milli", "text"),
    [(0, "0"), (2000, "2"), (1500, "1500m"), (1, "1m"), (1_073_741_824_000, "1073741824")],
)
def test_format_milli_round_trips(milli: int, text: str) -> None:
    """format_milli prints a quantity that parses back to the same milli-value."""
    assert format_milli(milli) == text
    assert parse_quantity(text) == milli

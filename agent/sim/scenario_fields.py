"""Typed fields of a scenario file, with refusals that name the scenario and the field's path.

`FieldReader` reads one parsed YAML document: mappings with known keys, required and defaulted
fields, and the value kinds scenarios use (names, counts, durations, ratios, label maps, resource
quantities, instance types, taints, tolerations). Every refusal is a `ScenarioError` worded
"scenario NAME: PATH PROBLEM", e.g. "scenario seed: pools[0].maxSize must be ≥ minSize".

Quantities are parsed by the decision core's `parse_quantity` and taint effects are its own.
The core's request readers (`functions.readers`) are not used for the rest: a scenario's YAML is
read more leniently (numbers and booleans in label maps become strings, durations and counts have
no upper bound, tolerations pass through as written) and its refusals are worded differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agent.sim.world.catalog import CATALOG
from functions.errors import DecisionError
from functions.quantity import parse_quantity
from functions.readers import TAINT_EFFECTS

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the scenario and the field path."""


class FieldReader:
    """Typed access to the parsed YAML with errors that name the scenario and the path."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, path: str, problem: str) -> ScenarioError:
        return ScenarioError(f"scenario {self.name}: {path} {problem}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}" if path else str(key),
                    f"is not a known field (known: {', '.join(allowed)})",
                )
        return value

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        kind: Callable[[Any, str], T],
        default: T | None = None,
        *,
        required: bool = False,
    ) -> T:
        where = f"{path}.{key}" if path else key
        if key not in data or data[key] is None:
            if required:
                raise self.fail(where, "is required")
            return default  # type: ignore[return-value]
        return kind(data[key], where)

    # value kinds

    def present(self, value: Any, path: str) -> Any:
        """Any value; the section's own reader checks its shape."""
        return value

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        return value

    def k8s_name(self, value: Any, path: str) -> str:
        text = self.text(value, path)
        if len(text) > 63 or not _NAME.match(text):
            raise self.fail(path, f"must be a lowercase DNS-1123 name, got {text!r}")
        return text

    def integer(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, f"must be a non-negative integer, got {value!r}")
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.fail(path, f"must be a non-negative number, got {value!r}")
        return float(value)

    def positive(self, value: Any, path: str) -> float:
        number = self.number(value, path)
        if number <= 0:
            raise self.fail(path, f"must be > 0, got {value!r}")
        return number

    def ratio(self, value: Any, path: str) -> float:
        number = self.number(value, path)
        if number > 1:
            raise self.fail(path, f"must be between 0 and 1, got {value!r}")
        return number

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")
        return value

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of strings, got {type(value).__name__}")
        result = {}
        for key, item in value.items():
            if not isinstance(key, str) or not isinstance(item, (str, int, float, bool)):
                raise self.fail(f"{path}.{key}", f"must be a string, got {item!r}")
            result[key] = (
                item
                if isinstance(item, str)
                else str(item).lower()
                if isinstance(item, bool)
                else str(item)
            )
        return result

    def resources(self, value: Any, path: str) -> dict[str, str]:
        resources = self.string_map(value, path)
        for key, quantity in resources.items():
            try:
                parse_quantity(quantity, path=f"{path}.{key}")
            except DecisionError as error:
                raise self.fail(f"{path}.{key}", f"is not a quantity: {error.message}") from None
        return resources

    def instance(self, value: Any, path: str) -> str:
        text = self.text(value, path)
        if text not in CATALOG:
            raise self.fail(
                path, f"names unknown instance type {text!r} (known: {', '.join(sorted(CATALOG))})"
            )
        return text

    def number_map(self, value: Any, path: str) -> dict[str, float]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping of numbers, got {type(value).__name__}")
        return {str(k): self.number(v, f"{path}.{k}") for k, v in value.items()}

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, got {type(value).__name__}")
        return value

    def taints(self, value: Any, path: str) -> tuple[dict[str, str], ...]:
        result = []
        for i, raw in enumerate(self.items(value, path)):
            where = f"{path}[{i}]"
            taint = self.mapping(raw, where, ("key", "value", "effect"))
            key = self.get(taint, "key", where, self.text, required=True)
            effect = self.get(taint, "effect", where, self.text, required=True)
            if effect not in TAINT_EFFECTS:
                raise self.fail(
                    f"{where}.effect", f"must be one of {', '.join(TAINT_EFFECTS)}, got {effect!r}"
                )
            item = {"key": key, "effect": effect}
            if "value" in taint:
                item["value"] = self.get(taint, "value", where, self.text, "")
            result.append(item)
        return tuple(result)

    def tolerations(self, value: Any, path: str) -> tuple[dict[str, Any], ...]:
        result = []
        for i, raw in enumerate(self.items(value, path)):
            where = f"{path}[{i}]"
            toleration = self.mapping(
                raw, where, ("key", "operator", "value", "effect", "tolerationSeconds")
            )
            operator = toleration.get("operator", "Equal")
            if operator not in ("Equal", "Exists"):
                raise self.fail(f"{where}.operator", f"must be Equal or Exists, got {operator!r}")
            result.append(dict(toleration))
        return tuple(result)

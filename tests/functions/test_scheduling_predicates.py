"""Predicates with Kubernetes' rules: resources, nodeSelector, required node affinity, taints."""

from __future__ import annotations

from typing import Any

import pytest

from functions.predicates import (
    POD_SLOT,
    first_untolerated_taint,
    insufficient,
    node_selector_matches,
    required_affinity_matches,
    tolerates,
)

LABELS = {"zone": "cn-hangzhou-k", "gpu": "a10", "cores": "16", "odd": "x1"}


def _affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(term)} for term in terms]
            }
        }
    }


def _expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


@pytest.mark.parametrize(
    ("requests", "free", "short"),
    [
        ({"cpu": 1000}, {"cpu": 1000}, []),
        ({"cpu": 1001}, {"cpu": 1000}, ["cpu"]),
        ({"nvidia.com/gpu": 1000}, {"cpu": 4000}, ["nvidia.com/gpu"]),
        ({"nvidia.com/gpu": 0}, {"cpu": 4000}, []),
        ({"memory": 5, "cpu": 5}, {}, ["cpu", "memory"]),
        ({**POD_SLOT}, {"pods": 0}, ["pods"]),
    ],
)
def test_insufficient_resources(
    requests: dict[str, int], free: dict[str, int], short: list[str]
) -> None:
    """Unlisted resources are zero, zero requests always fit, names come back sorted."""
    assert insufficient(requests, free) == short


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (None, True),
        ({}, True),
        ({"gpu": "a10"}, True),
        ({"gpu": "a10", "zone": "cn-hangzhou-k"}, True),
        ({"gpu": "a100"}, False),
        ({"missing": ""}, False),
    ],
)
def test_node_selector(selector: dict[str, str] | None, matches: bool) -> None:
    """Every selector pair must be a node label."""
    assert node_selector_matches(selector, LABELS) is matches


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        (_expr("gpu", "In", "a10", "a100"), True),
        (_expr("gpu", "In", "a100"), False),
        (_expr("missing", "In", "a10"), False),
        (_expr("gpu", "NotIn", "a100"), True),
        (_expr("gpu", "NotIn", "a10"), False),
        (_expr("missing", "NotIn", "a10"), True),
        (_expr("gpu", "Exists"), True),
        (_expr("missing", "Exists"), False),
        (_expr("gpu", "DoesNotExist"), False),
        (_expr("missing", "DoesNotExist"), True),
        (_expr("cores", "Gt", "8"), True),
        (_expr("cores", "Gt", "16"), False),
        (_expr("cores", "Lt", "32"), True),
        (_expr("cores", "Lt", "16"), False),
        (_expr("cores", "Gt", "-1"), True),
        (_expr("odd", "Gt", "0"), False),
        (_expr("missing", "Lt", "100"), False),
        (_expr("cores", "Gt", "8", "9"), False),
    ],
)
def test_affinity_operators(expression: dict[str, Any], matches: bool) -> None:
    """In, NotIn, Exists, DoesNotExist, Gt, Lt as Kubernetes defines them."""
    assert required_affinity_matches(_affinity([expression]), LABELS) is matches


def test_affinity_terms_are_ored_and_expressions_anded() -> None:
    """One matching term suffices; inside a term every expression must hold."""
    ok, bad = _expr("gpu", "Exists"), _expr("gpu", "In", "a100")
    assert required_affinity_matches(_affinity([bad], [ok]), LABELS)
    assert not required_affinity_matches(_affinity([ok, bad]), LABELS)


@pytest.mark.parametrize(
    ("affinity", "matches"),
    [
        (None, True),
        ({}, True),
        ({"podAntiAffinity": {"x": 1}}, True),
        ({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}, True),
        (
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}
                }
            },
            False,
        ),
        (
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}
                }
            },
            False,
        ),
        (
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": ["n1"]}
                                ]
                            }
                        ]
                    }
                }
            },
            False,
        ),
    ],
)
def test_only_required_node_affinity_binds(affinity: dict[str, Any] | None, matches: bool) -> None:
    """Preferred terms and pod affinity never block; empty term lists and terms match nothing."""
    assert required_affinity_matches(affinity, LABELS) is matches


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        (
            {
                "key": "nvidia.com/gpu",
                "operator": "Equal",
                "value": "present",
                "effect": "NoSchedule",
            },
            True,
        ),
        ({"key": "nvidia.com/gpu", "value": "present"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"operator": "Exists"}, True),
        ({"key": "", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "other", "operator": "Exists"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Sometimes"}, False),
    ],
)
def test_toleration_rules(toleration: dict[str, Any], tolerated: bool) -> None:
    """Equal compares values, Exists ignores them, empty key + Exists and empty effect match all."""
    assert tolerates(toleration, GPU_TAINT) is tolerated


def test_only_blocking_effects_need_tolerating() -> None:
    """PreferNoSchedule never blocks; the first untolerated NoSchedule/NoExecute taint is named."""
    soft = {"key": "a", "value": "", "effect": "PreferNoSchedule"}
    hard = {"key": "b", "value": "1", "effect": "NoExecute"}
    assert first_untolerated_taint(None, [soft]) is None
    assert first_untolerated_taint([], [soft, hard, GPU_TAINT]) == hard
    assert (
        first_untolerated_taint([{"key": "b", "operator": "Exists"}], [hard, GPU_TAINT])
        == GPU_TAINT
    )
    assert first_untolerated_taint([{"operator": "Exists"}], [hard, GPU_TAINT]) is None

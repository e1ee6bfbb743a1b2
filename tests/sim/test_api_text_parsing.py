"""How the API server reads its inputs: query-parameter booleans, label and field selector
syntax, and the Accept header that asks for Tables."""

from __future__ import annotations

import pytest

from agent.sim.kube.apiserver import parse_bool
from agent.sim.kube.selectors import label_predicate, parse_field_selector, parse_label_selector
from agent.sim.kube.store import ApiError
from agent.sim.kube.tables import wants_table


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("0", False), ("false", False), ("False", False), ("FALSE", False),
     ("1", True), ("true", True), ("True", True), ("", True), ("yes", True)],
)  # fmt: skip
def test_query_booleans(value, expected):
    """Absent, "0" and any-case "false" are false; every other value, even empty, is true."""
    assert parse_bool(value) is expected


@pytest.mark.parametrize(
    "selector",
    ["a=b c", "a in (x", "a in ()", "=b", "a,", "a=b=c", "a=" + "x" * 64, "a/b/c=d", "a>b"],
)
def test_invalid_label_selectors_are_400(selector):
    """Selectors that the apiserver's parser rejects are 400 BadRequest."""
    with pytest.raises(ApiError) as caught:
        parse_label_selector(selector)
    assert caught.value.code == 400


def test_set_based_and_numeric_requirements():
    """notin and != match objects without the key; > and < compare integers."""
    labels = {"metadata": {"labels": {"gpu": "2"}}}
    assert label_predicate("tier notin (head),tier!=x,gpu>1,gpu<3")(labels)
    assert not label_predicate("tier in (head)")(labels)
    assert label_predicate("example.com/role")({"metadata": {"labels": {"example.com/role": ""}}})


def test_field_selector_escapes_and_unknown_fields():
    """Escaped commas stay in values; an unknown field names itself in the 400."""
    assert parse_field_selector("pods", r"metadata.name=a\,b,status.phase!=Failed") == (
        ("metadata.name", "=", "a,b"),
        ("status.phase", "!=", "Failed"),
    )
    with pytest.raises(ApiError) as caught:
        parse_field_selector("nodes", "spec.nodeName=x")
    assert caught.value.message == "field label not supported: spec.nodeName"


def test_accept_header_table_negotiation():
    """kubectl's Accept list selects meta.k8s.io/v1 Tables; v1beta1 alone still works; JSON does not."""
    kubectl = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
        "application/json"
    )
    assert wants_table(kubectl) == "meta.k8s.io/v1"
    assert wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "meta.k8s.io/v1beta1"
    assert wants_table("application/json") is None

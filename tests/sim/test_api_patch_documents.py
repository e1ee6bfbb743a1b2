"""The patch functions on plain documents: RFC 6902 operations and pointer escapes, RFC 7386
nulls, and strategic-merge keys and directives."""

from __future__ import annotations

import pytest

from agent.sim.kube.patch import json_patch, merge_patch, strategic_merge_patch
from agent.sim.kube.store import ApiError

DOC = {"metadata": {"labels": {"a/b": "1", "m~n": "2"}}, "spec": {"list": [1, 2, 3]}}


def test_pointer_escapes_and_dash_index():
    """~1 is '/', ~0 is '~', and '-' appends to a list."""
    out = json_patch(
        DOC,
        [
            {"op": "replace", "path": "/metadata/labels/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/labels/m~0n"},
            {"op": "add", "path": "/spec/list/-", "value": 4},
            {"op": "add", "path": "/spec/list/0", "value": 0},
        ],
    )
    assert out == {"metadata": {"labels": {"a/b": "x"}}, "spec": {"list": [0, 1, 2, 3, 4]}}
    assert DOC["spec"]["list"] == [1, 2, 3]  # the input is untouched


def test_move_and_copy():
    """move removes the source; copy keeps it and deep-copies the value."""
    out = json_patch(
        DOC,
        [
            {"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
            {"op": "move", "from": "/metadata/labels/a~1b", "path": "/metadata/moved"},
        ],
    )
    assert out["spec"]["copy"] == [1, 2, 3] and out["spec"]["copy"] is not out["spec"]["list"]
    assert out["metadata"] == {"labels": {"m~n": "2"}, "moved": "1"}


def test_replace_of_a_missing_key_sets_it():
    """As kube-apiserver's evanphx/json-patch v4 does (its object lookup never fails), not as
    RFC 6902 says: Ray's autoscaler replaces a scaleStrategy the RayCluster does not have."""
    out = json_patch(DOC, [{"op": "replace", "path": "/spec/missing", "value": {"a": []}}])
    assert out["spec"]["missing"] == {"a": []}


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "test", "path": "/spec/list", "value": [1, 2]},
        {"op": "test", "path": "/spec/list/0", "value": True},
        {"op": "remove", "path": "/spec/missing"},
        {"op": "replace", "path": "/spec/list/9", "value": 1},
        {"op": "add", "path": "/spec/list/9", "value": 1},
        {"op": "add", "path": "/nope/deeper", "value": 1},
    ],
)
def test_failing_operations_are_422(operation):
    """An operation that cannot apply is 422 Invalid and the whole patch is refused."""
    with pytest.raises(ApiError) as caught:
        json_patch(DOC, [{"op": "add", "path": "/x", "value": 1}, operation])
    assert caught.value.code == 422 and caught.value.reason == "Invalid"


def test_malformed_json_patch_is_400():
    """A JSON patch that is not a list is 400 BadRequest."""
    with pytest.raises(ApiError) as caught:
        json_patch(DOC, {"op": "add"})
    assert caught.value.code == 400


def test_merge_patch_null_deletes_and_lists_replace():
    """null removes a key; a list replaces the whole list."""
    out = merge_patch(DOC, {"metadata": {"labels": {"a/b": None}}, "spec": {"list": [9]}})
    assert out == {"metadata": {"labels": {"m~n": "2"}}, "spec": {"list": [9]}}


def test_strategic_merge_keys_and_directives():
    """Strategic merge: lists by key, $patch: delete, finalizers union, taints replaced whole."""
    pod = {
        "metadata": {"finalizers": ["a"]},
        "spec": {
            "containers": [
                {"name": "c", "image": "x", "env": [{"name": "A", "value": "1"}]},
                {"name": "d"},
            ],
            "tolerations": [{"key": "k1"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    out = strategic_merge_patch(
        pod,
        {
            "$setElementOrder/containers": [{"name": "c"}],
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "containers": [
                    {"name": "c", "env": [{"name": "B", "value": "2"}]},
                    {"name": "d", "$patch": "delete"},
                ],
                "tolerations": [{"key": "k2"}],
            },
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "True"},
                ]
            },
        },
    )
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert out["spec"]["containers"] == [
        {
            "name": "c",
            "image": "x",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        }
    ]
    assert out["spec"]["tolerations"] == [{"key": "k2"}]
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
    ]

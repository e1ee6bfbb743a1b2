"""Server-side apply is not served: a PATCH with application/apply-patch+yaml is 415
UnsupportedMediaType with a message that says so and what to use instead — for an object that
exists and for one that does not (the media type is checked before the object is read, as
kube-apiserver's patch handler does, so a first apply is not mistaken for a 404)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.builders import build_test_pod

APPLY = {"Content-Type": "application/apply-patch+yaml"}


@pytest.mark.parametrize("name", ["w", "missing"])
async def test_apply_patch_is_a_clear_415(api_server, name):
    api_server.store.create("pods", build_test_pod("w"), namespace="default")
    version = api_server.store.resource_version
    path = f"{api_server.url}/api/v1/namespaces/default/pods/{name}?fieldManager=me"
    body = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: w\n  labels: {a: b}\n"
    async with (
        aiohttp.ClientSession(trust_env=False) as session,
        session.patch(path, data=body, headers=APPLY) as response,
    ):
        status = await response.json()
    assert (response.status, status["reason"], status["code"]) == (415, "UnsupportedMediaType", 415)
    assert status["message"].startswith(
        "server-side apply (application/apply-patch+yaml) is not served by the embedded ACK API "
        "server"
    )
    assert "`kubectl apply` without --server-side" in status["message"]
    assert api_server.store.resource_version == version

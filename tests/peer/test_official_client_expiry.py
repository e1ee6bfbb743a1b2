"""The official `kubernetes` client's watch against a server whose history is compacted: a watch
from a version older than the compaction gets 410 Gone (one ERROR event holding an Expired
Status), the client retries once as its Watch.stream documents, then raises; relisting and
watching from the new list's version recovers, as an informer does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.peer.pods import parked
from tests.peer.serving import Served, sim_serve

SCENARIO = Path(__file__).with_name("expiring-history.yaml")
COMPACTION_SECONDS = 1.0  # the scenario's faults.watchExpireEverySeconds


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`sim serve` of a scenario that compacts the watch history every second."""
    with sim_serve(tmp_path_factory.mktemp("serve"), "--scenario", str(SCENARIO)) as running:
        yield running


def relist_and_watch(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """List, create `name`, watch from the list's version: the informer's recovery. A compaction
    may fall between the list and the watch (every second here), so a 410 means list again."""
    for _ in range(3):
        listed = core.list_namespaced_pod(namespace)
        core.create_namespaced_pod(namespace, parked(f"{name}-{len(listed.items)}"))
        try:
            stream = watch.Watch().stream(
                core.list_namespaced_pod, namespace,
                resource_version=listed.metadata.resource_version, timeout_seconds=5,
            )  # fmt: skip
            for event in stream:
                return f"{event['type']} {event['object'].metadata.name}"
            raise AssertionError("the watch from the relisted version ended with no event")
        except ApiException as error:
            if error.status != 410:
                raise
    raise AssertionError("three list-then-watch attempts in a row were compacted away")


def test_watch_from_compacted_version_is_410_then_relist_recovers(
    core: client.CoreV1Api, namespace: str
):
    old = core.list_namespaced_pod(namespace).metadata.resource_version
    core.create_namespaced_pod(namespace, parked("before"))
    time.sleep(2.5 * COMPACTION_SECONDS)  # two compactions, both after "before" was created
    with pytest.raises(ApiException) as expired:
        stream = watch.Watch().stream(
            core.list_namespaced_pod, namespace, resource_version=old, _request_timeout=10
        )
        next(iter(stream))
    assert expired.value.status == 410
    assert "Expired: too old resource version" in expired.value.reason

    assert relist_and_watch(core, namespace, "after").startswith("ADDED after-")

"""Pod bodies for the peer suite, built with the official client's models as its users build them."""

from __future__ import annotations

from kubernetes import client

# No node of this name exists, so no kubelet runs a pod bound to it and the scheduler skips it
# (spec.nodeName set): such a pod changes only when a test changes it.
ABSENT_NODE = "peer-absent-node"


def pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    node: str | None = None,
    cpu: str | None = None,
    containers: tuple[str, ...] = ("main",),
) -> client.V1Pod:
    """A pod of busybox containers; `node` binds it, `cpu` is each container's request."""
    resources = client.V1ResourceRequirements(requests={"cpu": cpu}) if cpu else None
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(
            node_name=node,
            containers=[
                client.V1Container(name=box, image="busybox", resources=resources)
                for box in containers
            ],
        ),
    )


def parked(name: str, **labels: str) -> client.V1Pod:
    """A pod bound to ABSENT_NODE: created, then left alone by the scheduler and the kubelet."""
    return pod(name, labels=labels or None, node=ABSENT_NODE)

"""Ray's own KubeRay node provider (autoscaler v1, `KubeRayNodeProvider` from the `ray` package),
driven one autoscaler step at a time: a script the peer test runs with a Python that has `ray`,
in the environment `sim serve --tls` gives for it (API address, CA, client certificate; the
provider reads them at import, so it must be its own process).

It reads JSON commands, one per line, on stdin, and answers each with one JSON line on stdout.
The calls follow StandardAutoscaler.update (ray python/ray/autoscaler/_private/autoscaler.py):
`non_terminated_nodes` first (the provider's GET of the RayCluster and list of its pods), then
`safe_to_scale`, then `create_node` / `terminate_nodes`, then `post_process` (the one json-patch
of the CR). No Ray GCS is needed: the v1 provider talks only to the Kubernetes API.

Commands: {"op": "nodes"}; {"op": "safe_to_scale"}; {"op": "create", "group": G, "count": N};
{"op": "terminate", "nodes": [POD, ...]}. Answers: {"nodes": {POD: TAGS}} (after the step) and
{"safe": BOOL} for safe_to_scale, or {"error": TEXT, "status": HTTP_STATUS_OR_NULL}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import requests
from ray.autoscaler._private.constants import (
    DISABLE_LAUNCH_CONFIG_CHECK_KEY,
    DISABLE_NODE_UPDATERS_KEY,
    FOREGROUND_NODE_LAUNCH_KEY,
    WORKER_LIVENESS_CHECK_KEY,
)
from ray.autoscaler._private.kuberay.node_provider import KubeRayNodeProvider
from ray.autoscaler.tags import TAG_RAY_USER_NODE_TYPE


def provider(namespace: str, cluster: str) -> KubeRayNodeProvider:
    # the provider section the KubeRay autoscaler writes (ray .../kuberay/autoscaling_config.py)
    config = {
        "type": "kuberay",
        "namespace": namespace,
        DISABLE_NODE_UPDATERS_KEY: True,
        DISABLE_LAUNCH_CONFIG_CHECK_KEY: True,
        FOREGROUND_NODE_LAUNCH_KEY: True,
        WORKER_LIVENESS_CHECK_KEY: False,
    }
    return KubeRayNodeProvider(config, cluster)


def step(node_provider: KubeRayNodeProvider, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    nodes = node_provider.non_terminated_nodes({})
    if op == "safe_to_scale":
        return {"safe": node_provider.safe_to_scale()}
    if op == "create":
        tags = {TAG_RAY_USER_NODE_TYPE: command["group"]}
        node_provider.create_node({}, tags, command["count"])
    elif op == "terminate":
        node_provider.terminate_nodes(command["nodes"])
    elif op != "nodes":
        raise ValueError(f"unknown op {op}")
    node_provider.post_process()
    return {"nodes": {node: node_provider.node_tags(node) for node in nodes}}


def main() -> None:
    namespace, cluster = sys.argv[1], sys.argv[2]
    try:
        node_provider = provider(namespace, cluster)
    except Exception as error:  # e.g. ValueError for an http:// host, reported, not raised
        print(json.dumps({"error": f"{type(error).__name__}: {error}", "status": None}))
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            answer = step(node_provider, json.loads(line))
        except requests.HTTPError as error:
            answer = {"error": str(error), "status": error.response.status_code}
        except Exception as error:
            answer = {"error": f"{type(error).__name__}: {error}", "status": None}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

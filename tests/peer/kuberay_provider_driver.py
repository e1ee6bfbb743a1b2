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

With a third argument `v2`: autoscaler v2's cloud provider (`KubeRayProvider`) instead, as its
reconciler calls it (ray .../v2/instance_manager/reconciler.py): {"op": "instances"} (its sync
with the API server, then idle-termination), {"op": "launch", "shape": {G: N}, "request": ID},
{"op": "terminate", "ids": [POD, ...], "request": ID}; each answered with
{"instances": {POD: [TYPE, KIND, RUNNING]}, "errors": [TEXT, ...]} (poll_errors after the step).
Its one GCS call on these paths, the job table for idle termination, is answered by `NoJobs`.
"""

from __future__ import annotations

import functools
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


class NoJobs:
    """Ray's GCS as the v2 provider's idle-termination check reads it, with no Ray running: no
    job ever (GcsClient.get_all_job_info → {}), so the cluster counts as idle."""

    def get_all_job_info(self, **_: Any) -> dict[str, Any]:
        return {}


class V2:
    """Autoscaler v2's KubeRayProvider behind the same `step` interface."""

    def __init__(self, namespace: str, cluster: str) -> None:
        from ray.autoscaler.v2.instance_manager.cloud_providers.kuberay.cloud_provider import (
            KubeRayProvider,
        )
        from ray.autoscaler.v2.instance_manager.node_provider import NodeKind

        self.kind_name = NodeKind.Name

        self.provider = KubeRayProvider(cluster, {"namespace": namespace}, NoJobs())

    def step(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "launch":
            self.provider.launch(command["shape"], command["request"])
        elif op == "terminate":
            self.provider.terminate(command["ids"], command["request"])
        elif op != "instances":
            raise ValueError(f"unknown op {op}")
        instances = self.provider.get_non_terminated()
        return {
            "instances": {
                key: [i.node_type, self.kind_name(i.node_kind).lower(), i.is_running]
                for key, i in instances.items()
            },
            "errors": [str(error) for error in self.provider.poll_errors()],
        }


def main() -> None:
    namespace, cluster = sys.argv[1], sys.argv[2]
    try:
        if sys.argv[3:] == ["v2"]:
            v2 = V2(namespace, cluster)
            run: Any = v2.step
        else:
            node_provider = provider(namespace, cluster)
            run = functools.partial(step, node_provider)
    except Exception as error:  # a provider that cannot be made: reported, not raised
        print(json.dumps({"error": f"{type(error).__name__}: {error}", "status": None}))
        return
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            answer = run(json.loads(line))
        except requests.HTTPError as error:
            answer = {"error": str(error), "status": error.response.status_code}
        except Exception as error:
            answer = {"error": f"{type(error).__name__}: {error}", "status": None}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

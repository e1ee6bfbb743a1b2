"""Ingestion benchmark: pod watch events per second on one core, our raw path against
kubernetes-asyncio's default model path, side by side in one run.

A server process streams a pre-encoded watch body of N realistic KubeRay worker-pod MODIFIED
events (chunked, one JSON object per line, as the apiserver does) over HTTP on 127.0.0.1; the
client runs in this process, so the numbers are the client's single core:

* raw        — agent.clients.kube.KubeClient.watch: aiohttp chunks, own line splitting, json.loads;
* raw+fold   — the same, folded into agent.ingest.view.ClusterView (what the agent really does);
* watch-dict — kubernetes_asyncio's Watch with get_return_type → None: its own readline loop and
               json.loads, no models (the other way to skip models, for comparison);
* model      — kubernetes_asyncio.watch.Watch().stream(list_pod_for_all_namespaces): V1Pod models.

Usage: python bench/ingest_bench.py [--events 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time
from typing import Any

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)

from aiohttp import web  # noqa: E402
from kubernetes_asyncio import client as k8s_client  # noqa: E402
from kubernetes_asyncio import watch as k8s_watch  # noqa: E402

from agent.clients.kube import KubeClient  # noqa: E402
from agent.ingest.view import ClusterView  # noqa: E402

NOW = "2026-11-29T05:00:00Z"


def ray_worker_pod(
    i: int, *, cluster: str = "raycluster-a", group: str = "workergroup"
) -> dict[str, Any]:
    """A KubeRay worker pod as the apiserver sends it while it is unschedulable (~4 KB JSON)."""
    name = f"{cluster}-worker-{group}-{i:05d}"
    uid = f"0b6f{i:04x}-5c1e-4f0a-9d5e-{i:012x}"
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": f"{cluster}-worker-{group}-",
            "namespace": "ray",
            "uid": uid,
            "resourceVersion": str(100000 + i),
            "creationTimestamp": NOW,
            "labels": {
                "app.kubernetes.io/created-by": "kuberay-operator",
                "app.kubernetes.io/name": "kuberay",
                "ray.io/cluster": cluster,
                "ray.io/group": group,
                "ray.io/identifier": f"{cluster}-worker",
                "ray.io/is-ray-node": "yes",
                "ray.io/node-type": "worker",
            },
            "annotations": {
                "ray.io/ft-enabled": "false",
                "ray.io/overwrite-container-cmd": "false",
            },
            "ownerReferences": [
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayCluster",
                    "name": cluster,
                    "uid": "7d0e2b8e-2f63-4c0b-8d0c-3a0c54b1a111",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kuberay-operator",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": NOW,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {".": {}, "f:ray.io/cluster": {}, "f:ray.io/group": {}}
                        },
                        "f:spec": {"f:containers": {'k:{"name":"ray-worker"}': {}}},
                    },
                }
            ],
        },
        "spec": {
            "initContainers": [
                {
                    "name": "wait-gcs-ready",
                    "image": "rayproject/ray:2.9.0",
                    "command": ["/bin/bash", "-lc", "--"],
                    "args": [
                        "until ray health-check --address raycluster-a-head-svc.ray.svc.cluster.local:6379; do sleep 5; done"
                    ],
                    "resources": {
                        "limits": {"cpu": "200m", "memory": "256Mi"},
                        "requests": {"cpu": "200m", "memory": "256Mi"},
                    },
                }
            ],
            "containers": [
                {
                    "name": "ray-worker",
                    "image": "rayproject/ray:2.9.0",
                    "command": ["/bin/bash", "-lc", "--"],
                    "args": [
                        "ulimit -n 65536; ray start --address=raycluster-a-head-svc.ray.svc.cluster.local:6379 --block --metrics-export-port=8080 --num-cpus=1 --memory=1073741824"
                    ],
                    "env": [
                        {
                            "name": "FQ_RAY_IP",
                            "value": "raycluster-a-head-svc.ray.svc.cluster.local",
                        },
                        {"name": "RAY_IP", "value": "raycluster-a-head-svc"},
                        {
                            "name": "RAY_CLUSTER_NAME",
                            "valueFrom": {
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.labels['ray.io/cluster']",
                                }
                            },
                        },
                        {
                            "name": "RAY_CLOUD_INSTANCE_ID",
                            "valueFrom": {
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}
                            },
                        },
                        {
                            "name": "RAY_NODE_TYPE_NAME",
                            "valueFrom": {
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.labels['ray.io/group']",
                                }
                            },
                        },
                        {
                            "name": "KUBERAY_GEN_RAY_START_CMD",
                            "value": "ray start --address=raycluster-a-head-svc.ray.svc.cluster.local:6379 --block",
                        },
                        {"name": "RAY_PORT", "value": "6379"},
                    ],
                    "ports": [{"containerPort": 8080, "name": "metrics", "protocol": "TCP"}],
                    "resources": {
                        "limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "1", "memory": "1Gi"},
                    },
                    "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}},
                    "volumeMounts": [
                        {"mountPath": "/dev/shm", "name": "shared-mem"},
                        {
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "name": "kube-api-access-x7k2p",
                            "readOnly": True,
                        },
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "volumes": [
                {"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                {
                    "name": "kube-api-access-x7k2p",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                        ],
                    },
                },
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        },
        "status": {
            "phase": "Pending",
            "qosClass": "Guaranteed",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastProbeTime": None,
                    "lastTransitionTime": NOW,
                    "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
                }
            ],
        },
    }


def watch_body(events: int) -> bytes:
    lines = [
        json.dumps({"type": "MODIFIED", "object": ray_worker_pod(i)}).encode()
        for i in range(events)
    ]
    return b"\n".join(lines) + b"\n"


def _serve(port: int, events: int) -> None:
    body = watch_body(events)

    async def pods(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        step = 256 * 1024
        for start in range(0, len(body), step):
            await response.write(body[start : start + step])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/pods", pods)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _raw(url: str, *, fold: bool) -> int:
    view = ClusterView()
    count = 0
    async with await KubeClient.connect(api_url=url) as client:
        async for event in client.watch(
            "pods", resource_version="1", timeout_seconds=3600, read_timeout=30
        ):
            count += 1
            if fold:
                view.apply_pod(event["type"], event["object"])
    if fold:
        assert len(view.pending) == count
    return count


class _DictWatch(k8s_watch.Watch):
    """kubernetes-asyncio's Watch, told there is no model to build."""

    def get_return_type(self, func: object) -> Any:
        return None


async def _model(url: str, *, models: bool = True) -> int:
    configuration = k8s_client.Configuration()
    configuration.host = url
    count = 0
    async with k8s_client.ApiClient(configuration) as api_client:
        core = k8s_client.CoreV1Api(api_client)
        watch = k8s_watch.Watch() if models else _DictWatch()
        async with watch.stream(
            core.list_pod_for_all_namespaces, resource_version="1", timeout_seconds=3600
        ) as stream:
            async for event in stream:
                obj = event["object"]
                assert obj.metadata.uid if models else obj["metadata"]["uid"]
                count += 1
    return count


def _measure(label: str, run: Any, events: int) -> float:
    wall = time.perf_counter()
    cpu = time.process_time()
    count = asyncio.run(run())
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    assert count == events, (label, count)
    rate = events / wall
    print(
        f"{label:11s} {events:7d} events  {wall:7.3f} s wall  {cpu:7.3f} s cpu  "
        f"{rate:10,.0f} events/s  ({events / cpu:,.0f} per cpu-second)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, args.events), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        size = len(watch_body(1))
        print(f"pod event size ~{size} bytes; best of {args.repeat}")
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for label, run in (
                ("raw", lambda: _raw(url, fold=False)),
                ("raw+fold", lambda: _raw(url, fold=True)),
                ("watch-dict", lambda: _model(url, models=False)),
                ("model", lambda: _model(url)),
            ):
                best[label] = max(best.get(label, 0.0), _measure(label, run, args.events))
        print(
            f"best: raw {best['raw']:,.0f}/s, raw+fold {best['raw+fold']:,.0f}/s, "
            f"watch-dict {best['watch-dict']:,.0f}/s, model {best['model']:,.0f}/s; "
            f"raw is {best['raw'] / best['model']:.1f}× and raw+fold "
            f"{best['raw+fold'] / best['model']:.1f}× the model path"
        )
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()

"""Request building benchmark: what a decision round costs before the decider is called — the
view's snapshot, the decide/v1 request, and its JSON body — at 10k and 100k pending pods, and the
CPU a re-mark wave costs the view (the scheduler rewriting every pending pod's message).

Per size, in one process (the agent's event loop is one core):

* round 1          — the first round: every entry built, the body encoded;
* round, 1% changed — a round after 1 % of the pods changed something the decision reads (an
                     annotation, as an operator's patch would): MODIFIED events, then the round;
* round, unchanged — a round right after another with nothing changed;
* re-mark wave     — N MODIFIED events, each pod's PodScheduled message (and resourceVersion)
                     changed only, folded into the view: CPU seconds for the whole wave.

"build" is `view.snapshot()` + `build_request` (after: with the view's `versions`, so the round
after a wave re-versions every entry, as the agent's does); "encode" is the body a remote decider sends (the
checkout's own encoder: `pod_entries.encode_request` when it has one, else `json.dumps`). Pods
are KubeRay workers of 10 worker groups (10 shapes), folded from raw watch objects the way the
agent folds them. Medians of `--repeat` runs, each run on a fresh view.

Before/after: run the same script against another checkout, e.g. the commit before the change:

    git archive 21040e5 | tar -x -C /tmp/incr_base
    PYTHONPATH=/tmp/incr_base python bench/request_build_bench.py
    PYTHONPATH=. python bench/request_build_bench.py

Usage: python bench/request_build_bench.py [--sizes 10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from agent.decide.request_builder import RequestSettings, build_request
from agent.ingest.view import ClusterView
from agent.model import PoolInfo

try:  # the incremental path, where the checkout has it
    from agent.decide.pod_entries import PodEntryCache, encode_request
except ImportError:  # the checkout before it
    PodEntryCache = None  # type: ignore[assignment,misc]

    def encode_request(request: Any) -> bytes:
        return json.dumps(request, separators=(",", ":")).encode()


NOW = "2026-11-29T05:00:00Z"
GROUPS = 10
SETTINGS = RequestSettings(cluster_id="c-bench", region="cn-hangzhou")
POOLS = [
    PoolInfo(f"np-{i}", f"pool-{i}", ("ecs.g7.4xlarge",), 0, 0, 100, labels={"workload": "ray"})
    for i in range(4)
]
HAS_ENTRIES = {"entries", "versions"} <= set(inspect.signature(build_request).parameters)


def worker_pod(i: int, *, rv: int, message: str, annotation: str = "") -> dict[str, Any]:
    """A KubeRay worker pod as the watch delivers it while unschedulable (~3 KB of JSON)."""
    group = f"group-{i % GROUPS}"
    annotations = {"ray.io/ft-enabled": "false", "ray.io/overwrite-container-cmd": "false"}
    if annotation:
        annotations["example.com/touched"] = annotation
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": f"raycluster-a-{group}-worker-{i:06d}",
            "generateName": f"raycluster-a-{group}-worker-",
            "namespace": "ray",
            "uid": f"0b6f{i:04x}-5c1e-4f0a-9d5e-{i:012x}",
            "resourceVersion": str(rv),
            "creationTimestamp": NOW,
            "labels": {
                "app.kubernetes.io/created-by": "kuberay-operator",
                "app.kubernetes.io/name": "kuberay",
                "ray.io/cluster": "raycluster-a",
                "ray.io/group": group,
                "ray.io/identifier": "raycluster-a-worker",
                "ray.io/is-ray-node": "yes",
                "ray.io/node-type": "worker",
            },
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayCluster",
                    "name": "raycluster-a",
                    "uid": "7d1c0e2a-0000-4000-8000-000000000001",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "volumes": [
                {"name": "shared-mem", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
                {"name": "kube-api-access", "projected": {"sources": []}},
            ],
            "initContainers": [
                {
                    "name": "wait-gcs-ready",
                    "image": "rayproject/ray:2.9.0",
                    "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
                }
            ],
            "containers": [
                {
                    "name": "ray-worker",
                    "image": "rayproject/ray:2.9.0",
                    "command": ["/bin/bash", "-lc", "--"],
                    "args": ["ulimit -n 65536; ray start --address=raycluster-a-head-svc:6379"],
                    "env": [{"name": "RAY_gcs_server_port", "value": "6379"}] * 6,
                    "resources": {
                        "requests": {"cpu": str(1 + i % GROUPS % 4), "memory": "4Gi"},
                        "limits": {"cpu": str(1 + i % GROUPS % 4), "memory": "4Gi"},
                    },
                    "volumeMounts": [{"name": "shared-mem", "mountPath": "/dev/shm"}],
                }
            ],
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "ray.io/node-type", "operator": "Equal", "value": "worker"},
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "workload", "operator": "In", "values": ["ray"]}
                                ]
                            }
                        ]
                    }
                }
            },
        },
        "status": {
            "phase": "Pending",
            "qosClass": "Guaranteed",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": "2026-11-29T04:59:58Z",
                }
            ],
        },
    }


def message(nodes: int) -> str:
    return (
        f"0/{nodes} nodes are available: {nodes} Insufficient cpu. preemption: 0/{nodes} nodes "
        "are available: 3 No preemption victims found for incoming pod."
    )


def fold_timed(view: ClusterView, events: Iterator[dict[str, Any]], kind: str) -> float:
    """CPU seconds folding the events, their generation left out (made in chunks)."""
    spent = 0.0
    chunk: list[dict[str, Any]] = []
    for pod in events:
        chunk.append(pod)
        if len(chunk) == 5_000:
            spent += _fold(view, chunk, kind)
            chunk = []
    return spent + _fold(view, chunk, kind)


def _fold(view: ClusterView, pods: list[dict[str, Any]], kind: str) -> float:
    started = time.process_time()
    for pod in pods:
        view.apply_pod(kind, pod)  # type: ignore[arg-type]
    return time.process_time() - started


def make_round(view: ClusterView) -> Callable[[], tuple[float, float, int]]:
    """A round: (build seconds, encode seconds, body bytes)."""
    entries = PodEntryCache() if HAS_ENTRIES else None

    def run() -> tuple[float, float, int]:
        started = time.perf_counter()
        extra: dict[str, Any] = {}
        if entries is not None:
            # As the agent's loop does: the versions skipped refolds recorded, with the snapshot.
            extra = {"entries": entries, "versions": dict(view.versions)}
        request = build_request(view.snapshot(), POOLS, {}, settings=SETTINGS, now=NOW, **extra)
        built = time.perf_counter()
        body = encode_request(request)
        encoded = time.perf_counter()
        return built - started, encoded - built, len(body)

    return run


def one_run(size: int) -> dict[str, float]:
    view = ClusterView()
    fold_timed(view, (worker_pod(i, rv=1, message=message(3)) for i in range(size)), "ADDED")
    assert len(view.pending) == size
    round_ = make_round(view)
    gc.collect()
    result: dict[str, float] = {}
    b, e, n = round_()
    result.update(first_build=b, first_encode=e, bytes=n)
    changed = max(1, size // 100)
    fold_timed(
        view,
        (
            worker_pod(i, rv=2, message=message(3), annotation="yes")
            for i in range(0, size, size // changed)
        ),
        "MODIFIED",
    )
    b, e, _ = round_()
    result.update(changed_build=b, changed_encode=e)
    b, e, _ = round_()
    result.update(same_build=b, same_encode=e)
    result["wave_cpu"] = fold_timed(
        view, (worker_pod(i, rv=3, message=message(4)) for i in range(size)), "MODIFIED"
    )
    b, e, _ = round_()
    result.update(wave_build=b, wave_encode=e)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"incremental path: {HAS_ENTRIES}; medians of {args.repeat}")
    header = (
        "pods",
        "MB",
        "r1 build",
        "r1 encode",
        "1% build",
        "1% encode",
        "same build",
        "same encode",
        "wave CPU",
        "µs/event",
        "after-wave build",
        "after-wave encode",
    )
    print(" | ".join(header))
    for size in (int(s) for s in args.sizes.split(",")):
        runs = [one_run(size) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        ms = {k: f"{v * 1000:.0f} ms" for k, v in med.items() if k not in ("bytes", "wave_cpu")}
        print(
            " | ".join(
                [
                    f"{size:,}",
                    f"{med['bytes'] / 2**20:.1f}",
                    ms["first_build"],
                    ms["first_encode"],
                    ms["changed_build"],
                    ms["changed_encode"],
                    ms["same_build"],
                    ms["same_encode"],
                    f"{med['wave_cpu']:.2f} s",
                    f"{med['wave_cpu'] / size * 1e6:.1f}",
                    ms["wave_build"],
                    ms["wave_encode"],
                ]
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

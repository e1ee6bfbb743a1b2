"""Memory benchmark: bytes per tracked pending pod in agent.ingest.view.ClusterView, and the process RSS
with 100,000 pending pods (targets: ≤ 2 KB per pod, RSS ≤ 300 MB).

Each pod is a realistic KubeRay worker pod (bench/ingest_bench.py), encoded and decoded through
JSON one at a time as the watch delivers it, folded, then dropped: only what the view keeps stays.
Pods spread over 4 Ray clusters × 5 worker groups, as in a shared cluster.

Usage: python bench/memory_bench.py [--pods 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_bench import ray_worker_pod

from agent.ingest.view import ClusterView


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def fold(view: ClusterView, pods: int) -> None:
    for i in range(pods):
        raw = ray_worker_pod(i, cluster=f"raycluster-{i % 4}", group=f"group-{i % 5}")
        view.apply_pod("ADDED", json.loads(json.dumps(raw)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100_000)
    args = parser.parse_args()

    # 1. bytes per pod, by allocation tracing on a sample
    sample = min(args.pods, 10_000)
    view = ClusterView()
    fold(view, 100)  # warm the intern tables, as a running agent has them
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    fold(view, sample)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_pod = grown / sample
    assert len(view.pending) == sample  # the first 100 are re-folded with the same uid: no growth
    print(f"traced: {per_pod:,.0f} bytes per tracked pending pod ({sample} pods)")
    del view
    gc.collect()

    # 2. RSS of the whole process with every pod tracked
    base = rss_mib()
    view = ClusterView()
    fold(view, args.pods)
    gc.collect()
    total = rss_mib()
    print(
        f"RSS: {base:.0f} MiB before, {total:.0f} MiB with {len(view.pending):,} pending pods "
        f"({(total - base) * 2**20 / max(1, len(view.pending)):,.0f} bytes per pod by RSS)"
    )
    snapshot = view.snapshot()
    print(f"snapshot of {len(snapshot.pending):,} pods taken; RSS now {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()

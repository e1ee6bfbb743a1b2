"""The decision's own time limit, end to end through the Function Compute event handler: how long
the handler takes to answer a large request of each contract under a few limits, and what the
reply left deferred. The answer comes at the limit plus the time to build and encode the reply
— or, when the limit is shorter than that, after what is never interrupted: JSON decoding,
validation and (scale-in/v1) the per-node rules.

Requests: decide/v1, 50,000 pending pods in 2,000 shapes over 100 pools with ECI (27 MB, the
largest shape count the contract accepts); scale-in/v1, the drain benchmark's 20,000-node fleet
where every node runs a pod that fits elsewhere and one that does not, drainNonEmpty on
(`bench/scale_in_drain_bench.py`). Times include JSON decoding and encoding, as in production.

    python bench/time_limit_bench.py
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_workload import make_request  # noqa: E402
from scale_in_drain_bench import one_fits_one_does_not  # noqa: E402

from functions.fc import DecisionEndpoint  # noqa: E402

LIMITS = (math.inf, 4.0, 2.0, 1.0)


def decide_request() -> dict[str, Any]:
    body = make_request(pods=50_000, groups=50, pools=100, eci=True)
    for i, pod in enumerate(body["pods"]):
        pod["requests"] = {"cpu": f"{1000 + i % 2000}m", "memory": "1Gi"}
    return body


def main() -> None:
    print("| request | MB | time limit s | answered in s | deferred | decided |")
    print("|---|---:|---:|---:|---:|---|")
    requests = (
        ("decide/v1, 50,000 pods, 2,000 shapes, 100 pools", decide_request(), "deferredPods"),
        (
            "scale-in/v1, 20,000 nodes, one pod fits elsewhere and one does not",
            one_fits_one_does_not(20_000, drainNonEmpty=True),
            "deferredNodes",
        ),
    )
    for name, request, key in requests:
        body = json.dumps(request).encode()
        for limit in LIMITS:
            endpoint = DecisionEndpoint(time_limit_seconds=limit)
            started = time.perf_counter()
            reply = json.loads(endpoint.handle_event(body, None))
            took = time.perf_counter() - started
            summary = reply["summary"]
            deferred = summary.get(key, 0)
            if key == "deferredPods":
                decided = f"{summary['newNodes']} new nodes, {summary['eciPods']} pods on ECI"
            else:
                nodes = summary["keepNodes"] + summary["removeNodes"]
                decided = f"{nodes - deferred} of {nodes} nodes"
            print(
                f"| {name} | {len(body) / 1e6:.1f} | {limit:g} | {took:.2f} "
                f"| {deferred} | {decided} |",
                flush=True,
            )
    print("\nCommand: python bench/time_limit_bench.py")


if __name__ == "__main__":
    main()

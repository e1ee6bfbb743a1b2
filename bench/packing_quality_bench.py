"""Packing quality: what the nodes `functions.decide` asks for cost per hour, against a lower bound
on any plan's cost and against naive pod-by-pod first fit, as the number of pod shapes grows.

Requests: `bench_workload.make_request` with every worker group its own shape (1 / 50 / 500 /
2,000 shapes), 10,000 pods over 20 pools by default, ECI off, no nodes already on the way (so a
plan's cost is exactly the nodes it adds); once with CPU worker groups only, once with one group
in five a GPU group (whose GPU nodes, one or two pods each, then dominate the cost).

The lower bound is a feasible solution of the dual of the fractional packing LP: give each pool
a weight vector w (non-negative, summing to 1) over its resources; a pod of shape s on a node of
pool p then "costs" price_p × Σ_r w_r × request_r / allocatable_r. The pods on one node cost at
most the node's price (their requests fit, so the weighted shares add up to at most 1), so the sum
over pods of each pod's cheapest such cost, on the pools it can run on, never exceeds what any
plan pays. Any weights give a valid bound; coordinate ascent over a grid of weights per pool
makes it tight. With one shape the bench also prints the optimum, min over pools of
price × ceil(pods / pods per node).

    python bench/packing_quality_bench.py             # 10k pods × 20 pools, shapes 1/50/500/2000
    python bench/packing_quality_bench.py --pods 2000 --pools 100
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench_workload import make_request
from naive_first_fit import _fits, _pool_admits, naive_first_fit

from functions import decide
from functions.quantity import parse_quantity

SHAPES = (1, 50, 500, 2_000)
# Grid of each pool's weight vector: multiples of 1/STEPS summing to 1.
STEPS = 8
ROUNDS = 4
TARGET_OVER_BOUND = 0.10


def _shapes(request: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, int], int]]:
    """(a pod of the shape, its request vector with the pod slot, how many pods), per shape."""
    counts: dict[str, list[Any]] = {}
    for pod in request["pods"]:
        key = repr((sorted(pod["requests"].items()), sorted(pod["nodeSelector"].items())))
        if key in counts:
            counts[key][2] += 1
        else:
            vector = {name: parse_quantity(value) for name, value in pod["requests"].items()}
            vector["pods"] = 1000
            counts[key] = [pod, vector, 1]
    return [(pod, vector, n) for pod, vector, n in counts.values()]


def _weights(names: Sequence[str]) -> list[dict[str, float]]:
    """Every weight vector over `names` on the grid (multiples of 1/STEPS summing to 1)."""
    out = []
    for combo in itertools.product(range(STEPS + 1), repeat=len(names) - 1):
        if sum(combo) <= STEPS:
            parts = [*combo, STEPS - sum(combo)]
            out.append({name: part / STEPS for name, part in zip(names, parts, strict=True)})
    return out


def _components(shares: list[list[dict[str, float] | None]]) -> list[list[int]]:
    """Pools linked by shapes that can run on both, as lists of pool positions."""
    parent = list(range(len(shares)))

    def root(p: int) -> int:
        while parent[p] != p:
            p = parent[p]
        return p

    for s in range(len(shares[0]) if shares else 0):
        able = [p for p in range(len(shares)) if shares[p][s] is not None]
        for p in able[1:]:
            parent[root(p)] = root(able[0])
    groups: dict[int, list[int]] = {}
    for p in range(len(shares)):
        groups.setdefault(root(p), []).append(p)
    return list(groups.values())


def lower_bound(request: dict[str, Any]) -> float:
    """A dual-feasible lower bound on the per-hour cost of the new nodes any plan needs."""
    pools = request["pools"]
    allocatable = [
        {name: parse_quantity(value) for name, value in pool["allocatable"].items()}
        for pool in pools
    ]
    shapes = _shapes(request)
    # shares[p][s]: request/allocatable per resource of shape s on pool p (None: cannot run).
    shares: list[list[dict[str, float] | None]] = []
    for pool, alloc in zip(pools, allocatable, strict=True):
        row: list[dict[str, float] | None] = []
        for pod, vector, _ in shapes:
            if _pool_admits(pod, pool) and _fits(vector, alloc):
                row.append({name: vector.get(name, 0) / alloc[name] for name in alloc})
            else:
                row.append(None)
        shares.append(row)
    prices = [pool["pricePerHour"] for pool in pools]
    grids = [_weights(sorted(alloc)) for alloc in allocatable]
    counts = [n for _, _, n in shapes]

    def costs(p: int, weights: dict[str, float]) -> list[float]:
        inf = float("inf")
        return [
            inf if share is None else prices[p] * sum(weights.get(r, 0.0) * share[r] for r in share)
            for share in shares[p]
        ]

    # Start each group of pools that share shapes (GPU pools and CPU pools, say) from the one
    # weight vector, common to its pools, that gives the best bound; then refine pool by pool.
    chosen: list[dict[str, float]] = [{} for _ in pools]
    for component in _components(shares):
        names = sorted({name for p in component for name in allocatable[p]})
        best = -1.0
        for weights in _weights(names):
            rows = {p: costs(p, weights) for p in component}
            score = sum(
                counts[s] * min(rows[p][s] for p in component)
                for s in range(len(shapes))
                if any(shares[p][s] is not None for p in component)
            )
            if score > best:
                best = score
                for p in component:
                    chosen[p] = weights
    cost = [costs(p, chosen[p]) for p in range(len(pools))]
    for _ in range(ROUNDS):
        improved = False
        for p in range(len(pools)):
            others = [
                min((cost[q][s] for q in range(len(pools)) if q != p), default=float("inf"))
                for s in range(len(shapes))
            ]
            relevant = [s for s in range(len(shapes)) if shares[p][s] is not None]

            def value(
                row: list[float], relevant: list[int] = relevant, others: list[float] = others
            ) -> float:
                return sum(counts[s] * min(others[s], row[s]) for s in relevant)

            best, best_row = value(cost[p]), cost[p]
            for weights in grids[p]:
                row = costs(p, weights)
                score = value(row)
                if score > best + 1e-9:
                    best, best_row, chosen[p], improved = score, row, weights, True
            cost[p] = best_row
        if not improved:
            break
    cheapest = [min(cost[p][s] for p in range(len(pools))) for s in range(len(shapes))]
    # Shapes no pool can run (inf) are unplaceable for every planner: not in the bound.
    return sum(n * c for n, c in zip(counts, cheapest, strict=True) if c != float("inf"))


def plan_cost(request: dict[str, Any], reply: dict[str, Any]) -> float:
    prices = {pool["id"]: pool["pricePerHour"] for pool in request["pools"]}
    return sum(
        prices[action["poolId"]] * (action["toDesired"] - action["fromDesired"])
        for action in reply["actions"]
        if action["kind"] == "scale-pool"
    )


def one_shape_optimum(request: dict[str, Any]) -> float:
    """min over pools of price × ceil(pods / pods per node), for a request of one shape."""
    ((pod, vector, count),) = _shapes(request)
    best = float("inf")
    for pool in request["pools"]:
        alloc = {name: parse_quantity(value) for name, value in pool["allocatable"].items()}
        if not _pool_admits(pod, pool) or not _fits(vector, alloc):
            continue
        per_node = min(alloc.get(r, 0) // v for r, v in vector.items() if v > 0)
        best = min(best, pool["pricePerHour"] * -(-count // per_node))
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument(
        "--shapes", type=int, nargs="*", default=list(SHAPES), help="default 1 50 500 2000"
    )
    args = parser.parse_args(argv)
    rows = []
    cases = [(shapes, gpu) for gpu in (False, True) for shapes in args.shapes]
    for shapes, gpu in cases:
        request = make_request(
            pods=args.pods, groups=shapes, pools=args.pools, upcoming=False, gpu=gpu
        )
        started = time.perf_counter()
        reply = decide(request)
        decide_ms = (time.perf_counter() - started) * 1000.0
        unplaced = reply["summary"]["unplaceablePods"]
        bound = lower_bound(request)
        naive = naive_first_fit(request)
        prices = {pool["id"]: pool["pricePerHour"] for pool in request["pools"]}
        naive_cost = sum(prices[pid] * n for pid, n in naive.new_nodes.items())
        cost = plan_cost(request, reply)
        optimum = one_shape_optimum(request) if shapes == 1 else None
        rows.append((shapes, gpu, cost, bound, naive_cost, optimum, decide_ms, unplaced, naive))
        print(
            f"  {shapes:>5} shapes, GPU {gpu}: decide {cost:,.1f}/h, bound {bound:,.1f}/h, "
            f"naive {naive_cost:,.1f}/h",
            file=sys.stderr,
            flush=True,
        )
    command = "python bench/packing_quality_bench.py" + (" " + " ".join(argv) if argv else "")
    print(
        f"Command: `{command}` (Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{args.pods:,} pods, {args.pools} pools, ECI off, no nodes on the way)\n"
    )
    print(
        "| shapes | GPU groups | decide cost/h | lower bound/h | decide over bound | naive first-fit cost/h | "
        "decide vs naive | one-shape optimum/h | decide ms (one run) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for shapes, gpu, cost, bound, naive_cost, optimum, decide_ms, unplaced, naive in rows:
        note = f" ({unplaced} unplaceable)" if unplaced or naive.unplaceable else ""
        print(
            f"| {shapes:,} | {'1 in 5' if gpu else 'none'} | {cost:,.1f}{note} | {bound:,.1f} | {cost / bound - 1:+.1%} | "
            f"{naive_cost:,.1f} | {cost / naive_cost - 1:+.1%} | "
            f"{'—' if optimum is None else f'{optimum:,.1f}'} | {decide_ms:.0f} |"
        )
    print()
    for shapes, gpu, cost, bound, naive_cost, optimum, *_ in rows:
        verdicts = [
            f"{'within' if cost <= bound * (1 + TARGET_OVER_BOUND) else 'NOT within'} "
            f"{TARGET_OVER_BOUND:.0%} of the bound",
            "no worse than naive first fit" if cost <= naive_cost else "WORSE than naive",
        ]
        if optimum is not None:
            verdicts.append("optimal" if abs(cost - optimum) < 1e-6 else "NOT optimal")
        label = "with GPU groups" if gpu else "CPU only"
        print(f"- {shapes:,} shapes, {label}: " + ", ".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Scale-in decision benchmark: wall time of `functions.scale_in` on large scale-in/v1 requests,
above all the adversarial ones for the drain search — every node runs one pod that fits elsewhere
and one that does not — optionally side by side with another checkout of the code (`--baseline`,
e.g. the commit before a change) on the very same requests, in the same run.

Cases (requests are built here, deterministic, identical for both sides):
- one-fits-one-does-not: N nodes of 4 vCPU / 16 GiB / 100 GiB ephemeral-storage, each running a
  1 vCPU pod and a 500m pod asking 60 GiB of ephemeral-storage (which no other node has free);
  N = 2,000 / 4,000 / 8,000, with the default policy and with drainNonEmpty; 20,000 with
  drainNonEmpty.
- the same at 8,000 nodes with every 60 GiB pod a shape of its own (requests differ by node), and
  with the second pod pinned to its node by a kubernetes.io/hostname nodeSelector.
- 20,000 nodes x 4 pods (a DaemonSet pod and three 500m workers), drainNonEmpty, with the
  default maxNodesPerDecision (10) and with 20,000.

Each case runs in fresh processes, `--repeat` per side with the sides taking turns to go first
(so neither side's caches, nor the machine's drift, favour one); the time is the median over
all of a side's calls of `scale_in` on the decoded request, `--runs` per process (JSON decoding
and the request's construction are not timed). A side whose case takes longer than `--budget` seconds is
stopped and reported as more than the budget. "same reply" compares the canonical JSON of both
sides' replies.

    python bench/scale_in_drain_bench.py                           # this checkout only
    python bench/scale_in_drain_bench.py --baseline /tmp/base      # and a baseline checkout
    python bench/scale_in_drain_bench.py --quick                   # 2,000 and 4,000 nodes only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-29T05:00:00Z"
LONG_AGO = "2026-11-29T04:50:00Z"
CREATED = "2026-11-29T04:00:00Z"


# --- requests -----------------------------------------------------------------------------


def _pod(uid: str, requests: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "uid": uid,
        "namespace": "ray",
        "name": f"rc-worker-{uid}",
        "requests": requests,
        "ownerKind": "RayCluster",
        "rayNodeType": "worker",
        **fields,
    }


def _node(name: str, pods: list[dict[str, Any]], *, ephemeral: bool = True) -> dict[str, Any]:
    allocatable = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    if ephemeral:
        allocatable["ephemeral-storage"] = "100Gi"
    return {
        "name": name,
        "poolId": "np-cpu",
        "instanceId": f"i-{name}",
        "ready": True,
        "createdAt": CREATED,
        "allocatable": allocatable,
        "labels": {"kubernetes.io/hostname": name, "alibabacloud.com/nodepool-id": "np-cpu"},
        "emptySince": None,
        "underutilizedSince": LONG_AGO,
        "pods": pods,
    }


def _request(nodes: list[dict[str, Any]], **policy: Any) -> dict[str, Any]:
    return {
        "schema": "scale-in/v1",
        "now": NOW,
        "cluster": {"id": "c-bench", "region": "cn-hangzhou"},
        "pools": [{"id": "np-cpu", "size": {"min": 0, "desired": len(nodes)}, "pricePerHour": 0.9}],
        "nodes": nodes,
        "policy": policy,
    }


def one_fits_one_does_not(count: int, *, variant: str = "", **policy: Any) -> dict[str, Any]:
    """Each node: a 1 vCPU pod that fits elsewhere, and a 500m pod that fits on no other node."""
    nodes = []
    for i in range(count):
        name = f"cn-hangzhou.10.{i // 250}.{i % 250}"
        fits = _pod(f"{i}-a", {"cpu": "1", "memory": "1Gi"})
        if variant == "hostname":
            stuck = _pod(f"{i}-b", {"cpu": "500m"}, nodeSelector={"kubernetes.io/hostname": name})
        else:
            # 60 GiB of 100: no other node has that much free. `unique`: a shape of its own.
            storage = f"{61440 + i}Mi" if variant == "unique" else "60Gi"
            stuck = _pod(f"{i}-b", {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": storage})
        nodes.append(_node(name, [fits, stuck]))
    return _request(nodes, **policy)


def four_pods(count: int, **policy: Any) -> dict[str, Any]:
    """Each node: a DaemonSet pod and three 500m Ray workers (37.5% cpu): all drainable."""
    nodes = []
    for i in range(count):
        name = f"cn-hangzhou.10.{i // 250}.{i % 250}"
        pods = [
            {
                "uid": f"{i}-ds",
                "namespace": "kube-system",
                "name": f"logtail-ds-{i}",
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "ownerKind": "DaemonSet",
            },
            *(_pod(f"{i}-w{j}", {"cpu": "500m", "memory": "1Gi"}) for j in range(3)),
        ]
        nodes.append(_node(name, pods, ephemeral=False))
    return _request(nodes, **policy)


@dataclass(frozen=True)
class Case:
    name: str
    nodes: int
    policy: str
    build: Callable[[], dict[str, Any]]


def cases(*, quick: bool) -> list[Case]:
    sizes = (2_000, 4_000) if quick else (2_000, 4_000, 8_000)
    found = []
    for n in sizes:
        found.append(
            Case(f"adversarial-{n}-defaults", n, "defaults", partial(one_fits_one_does_not, n))
        )
        found.append(
            Case(
                f"adversarial-{n}-drain",
                n,
                "drainNonEmpty",
                partial(one_fits_one_does_not, n, drainNonEmpty=True),
            )
        )
    if quick:
        return found
    found.append(
        Case(
            "adversarial-20000-drain",
            20_000,
            "drainNonEmpty",
            partial(one_fits_one_does_not, 20_000, drainNonEmpty=True),
        )
    )
    for variant, words in (("unique", "a shape per node"), ("hostname", "pinned by hostname")):
        found.append(
            Case(
                f"adversarial-8000-{variant}",
                8_000,
                f"drainNonEmpty, {words}",
                partial(one_fits_one_does_not, 8_000, variant=variant, drainNonEmpty=True),
            )
        )
    found.append(
        Case(
            "four-pods-20000",
            20_000,
            "drainNonEmpty",
            partial(four_pods, 20_000, drainNonEmpty=True),
        )
    )
    found.append(
        Case(
            "four-pods-20000-cap",
            20_000,
            "drainNonEmpty, maxNodesPerDecision 20000",
            partial(four_pods, 20_000, drainNonEmpty=True, maxNodesPerDecision=20_000),
        )
    )
    return found


# --- one side, one case (in its own process) ----------------------------------------------


def measure(case: Case, *, runs: int) -> dict[str, Any]:
    from functions import scale_in  # the side's code: --code is first on sys.path

    body = json.dumps(case.build())
    times = []
    reply: dict[str, Any] = {}
    for _ in range(runs):
        request = json.loads(body)
        started = time.perf_counter()
        reply = scale_in(request)
        times.append(time.perf_counter() - started)
        if times[-1] > 20:
            break  # one run is enough to say it is slow
    canonical = json.dumps(reply, sort_keys=True, separators=(",", ":"))
    return {
        "times": times,
        "reply": hashlib.sha256(canonical.encode()).hexdigest()[:16],
        "removed": reply["summary"]["removeNodes"],
        "kept": reply["summary"]["keepNodes"],
        "megabytes": len(body) / 1e6,
    }


def run_side(code: Path, case: Case, *, runs: int, budget: float) -> dict[str, Any] | None:
    """The case in a fresh interpreter on `code`; None when it ran past `budget` seconds."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--code",
        str(code),
        "--case",
        case.name,
        "--runs",
        str(runs),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=budget, check=True, cwd=code
        )
    except subprocess.TimeoutExpired:
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_sides(
    case: Case, codes: list[Path], *, runs: int, budget: float, repeat: int
) -> list[dict[str, Any] | None]:
    """Each side `repeat` times, alternating which goes first (a side slower than 10 s once is
    not repeated); per side, the median over all its calls."""
    found: list[dict[str, Any] | None] = [None] * len(codes)
    stopped = [False] * len(codes)
    for turn in range(repeat):
        order = list(range(len(codes)))
        for side in order if turn % 2 == 0 else reversed(order):
            known = found[side]
            if stopped[side] or (known is not None and max(known["times"]) > 10):
                continue
            result = run_side(codes[side], case, runs=runs, budget=budget)
            if result is None:
                found[side], stopped[side] = None, True
            elif known is None:
                found[side] = result
            else:
                known["times"] += result["times"]
    for result in found:
        if result is not None:
            result["seconds"] = statistics.median(result["times"])
    return found


def _seconds(result: dict[str, Any] | None, budget: float) -> str:
    return f"> {budget:g}" if result is None else f"{result['seconds']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 4,000 nodes only")
    parser.add_argument("--runs", type=int, default=3, help="calls per process (default 3)")
    parser.add_argument(
        "--repeat", type=int, default=2, help="processes per case and side, alternating (default 2)"
    )
    parser.add_argument("--baseline", type=Path, help="another checkout to time side by side")
    parser.add_argument(
        "--budget", type=float, default=180.0, help="seconds a side may take per case"
    )
    parser.add_argument("--code", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.case:
        sys.path.insert(0, str(options.code.resolve()))
        [case] = [c for c in cases(quick=False) if c.name == options.case]
        print(json.dumps(measure(case, runs=options.runs)))
        return

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    header = "| case | nodes | policy | request MB | scale_in s (median) |"
    rule = "|---|---:|---|---:|---:|"
    if options.baseline:
        header += " baseline s | speed-up | same reply |"
        rule += "---:|---:|---|"
    header += " removed / kept |"
    rule += "---|"
    codes = [REPO] if options.baseline is None else [REPO, options.baseline]
    for case in cases(quick=options.quick):
        ours, *others = run_sides(
            case, codes, runs=options.runs, budget=options.budget, repeat=options.repeat
        )
        row = (
            f"| {case.name} | {case.nodes:,} | {case.policy} | "
            f"{'' if ours is None else format(ours['megabytes'], '.1f')} | "
            f"{_seconds(ours, options.budget)} |"
        )
        if options.baseline:
            [base] = others
            if ours is not None and base is not None:
                speed = f"{base['seconds'] / ours['seconds']:.1f}×"
                same = "yes" if base["reply"] == ours["reply"] else "NO"
            elif ours is not None:
                speed, same = f"> {options.budget / ours['seconds']:.0f}×", "—"
            else:
                speed, same = "—", "—"
            row += f" {_seconds(base, options.budget)} | {speed} | {same} |"
        row += " — |" if ours is None else f" {ours['removed']} / {ours['kept']} |"
        rows.append(row)
        print(row, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(
        f"Python {platform.python_version()} on {os.cpu_count()} cores, started {started}, "
        f"load average at the end {load:.1f}.\n"
    )
    print(header)
    print(rule)
    print("\n".join(rows))
    command = ["python", "bench/scale_in_drain_bench.py"]
    if options.quick:
        command.append("--quick")
    if options.runs != 3:
        command += ["--runs", str(options.runs)]
    if options.repeat != 2:
        command += ["--repeat", str(options.repeat)]
    if options.baseline:
        command += ["--baseline", str(options.baseline)]
    print(f"\nCommand: {shlex.join(command)}")


if __name__ == "__main__":
    main()

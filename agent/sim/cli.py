"""`python -m agent sim serve`: run the simulated ACK cluster until interrupted.

It writes a kubeconfig for kubectl and an info JSON saying where everything listens, prints how to
watch the cluster, and exits 0 on SIGINT or SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.catalog import allocatable_of, instance_type
from agent.sim.cluster import SimCluster
from agent.sim.kubeconfig import write_kubeconfig
from agent.sim.kubelet import ready_node

DEMO_NODE = "cn-hangzhou.172.16.0.10"
DEMO_INSTANCE_TYPE = "ecs.g7.xlarge"  # 4 vCPU, 16 GiB


def register(subparsers: Any) -> None:
    """Add the `sim` command and its `serve` subcommand."""
    sim = subparsers.add_parser("sim", help="the simulated ACK cluster (embedded Kubernetes API)")
    sim.set_defaults(func=lambda _args: _usage(sim))
    commands = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve a simulated cluster until interrupted",
        description="Serve a simulated ACK cluster on 127.0.0.1 until SIGINT/SIGTERM.",
    )
    serve.add_argument("--port", type=int, default=0, help="API server port (default: a free one)")
    serve.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)"
    )
    serve.add_argument("--scenario", help="scenario name or YAML path")
    serve.add_argument(
        "--kubeconfig-out", type=Path, help="where to write the kubeconfig (default: a temp file)"
    )
    serve.add_argument("--info-out", type=Path, help="where to write the info JSON")
    serve.add_argument(
        "--no-demo-node",
        action="store_true",
        help=f"start without the Ready demo node {DEMO_NODE}",
    )
    serve.set_defaults(func=serve_command)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def serve_command(args: argparse.Namespace) -> int:
    """Entry point of `sim serve`."""
    if args.speed <= 0:
        print("error: --speed must be positive", file=sys.stderr)
        return 2
    if args.scenario:
        print(
            f"error: scenarios are not available yet (asked for {args.scenario!r}); "
            "run `sim serve` without --scenario",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_serve(args))


def demo_node() -> dict[str, Any]:
    """The one Ready node a bare `sim serve` starts with, shaped like an ACK ecs.g7.xlarge."""
    machine = instance_type(DEMO_INSTANCE_TYPE)
    capacity = machine.capacity()
    return ready_node(
        DEMO_NODE,
        cpu=capacity["cpu"],
        memory=capacity["memory"],
        pods=capacity["pods"],
        allocatable=allocatable_of(DEMO_INSTANCE_TYPE),
        labels={
            "node.kubernetes.io/instance-type": DEMO_INSTANCE_TYPE,
            "topology.kubernetes.io/region": "cn-hangzhou",
            "topology.kubernetes.io/zone": "cn-hangzhou-k",
        },
    )


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    cluster = SimCluster(speed=args.speed, port=args.port)
    if not args.no_demo_node:
        # created before the kubelet starts, so it is Ready by the time anyone is told to look
        cluster.store.create("nodes", demo_node())
    async with cluster:
        kubeconfig = args.kubeconfig_out or Path(tempfile.gettempdir()) / (
            f"ray-ack-sim-{cluster.port}.kubeconfig"
        )
        write_kubeconfig(cluster.url, kubeconfig)
        info = {"kubernetes": {"url": cluster.url, "kubeconfig": str(kubeconfig)}}
        if args.info_out:
            _write_json(args.info_out, info)
        print(f"Simulated ACK cluster at {cluster.url} (speed {args.speed:g}x)")
        print(f"kubeconfig: {kubeconfig}")
        print("Watch it with:")
        print(f"  kubectl --kubeconfig {kubeconfig} get pod -w")
        print(f"  kubectl --kubeconfig {kubeconfig} get node -w")
        print("Stop with Ctrl-C.", flush=True)
        await stop.wait()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signum)
    print("Stopped.", flush=True)
    return 0


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # whole or not at all, for whoever polls for the file
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)

"""`python -m agent sim ...`: serve the simulated ACK until interrupted, and list the scenarios.

`sim serve --scenario NAME|PATH` runs a scenario's whole embedded ACK (Kubernetes API, node pools,
ECI, the Ray workload, and the CS and Function Compute emulators); `sim serve` alone serves a bare
cluster with one Ready demo node. Either way it writes a kubeconfig and an info JSON saying where
everything listens, prints how to watch the cluster, and exits 0 on SIGINT or SIGTERM.

`--tls` serves the Kubernetes API over HTTPS with credentials made at start (a self-signed CA, a
bearer token, a client certificate: agent.sim.kube.tls), written beside the kubeconfig, which
then carries the CA and the token; the info JSON says how to point Ray's KubeRay node provider
at the server. Plain http, with no credentials, stays the default.

`--ray-autoscaler external` leaves the scenario's RayCluster to a Ray autoscaler outside the
simulator: the CR is installed and the KubeRay operator stand-in reconciles it, but the simulated
Ray autoscaler and job never patch it (agent.sim.world.ray), so Ray's own KubeRay node provider,
pointed at `--tls`, drives it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from agent.catalog import allocatable_of, instance_type
from agent.sim.cluster import SimCluster
from agent.sim.embedded import EmbeddedAck
from agent.sim.kube.kubeconfig import write_kubeconfig
from agent.sim.kube.tls import (
    CredentialFiles,
    ServingCredentials,
    credentials_directory,
    kuberay_provider_env,
    remove,
)
from agent.sim.report import job_text
from agent.sim.scenario import Scenario, ScenarioError, available_scenarios, load_scenario
from agent.sim.world.nodes import ready_node
from agent.sim.world.raycluster_spec import AUTOSCALERS

DEMO_NODE = "cn-hangzhou.172.16.0.10"
DEMO_INSTANCE_TYPE = "ecs.g7.xlarge"  # 4 vCPU, 16 GiB
BARE_SPEED = 1.0


def register(subparsers: Any) -> None:
    """Add the `sim` command and its `serve` and `scenarios` subcommands."""
    sim = subparsers.add_parser("sim", help="the simulated ACK cluster (embedded Kubernetes API)")
    sim.set_defaults(func=lambda _args: _usage(sim))
    commands = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve a simulated cluster until interrupted",
        description=(
            "Serve a simulated ACK cluster on 127.0.0.1 until SIGINT/SIGTERM. With --scenario: "
            "the scenario's node pools, ECI virtual node and Ray workload, plus the CS API and "
            "Function Compute emulators (signed with the test AccessKey the info JSON names). "
            "Without: a bare Kubernetes API with one Ready demo node."
        ),
    )
    serve.add_argument(
        "--scenario",
        metavar="NAME|PATH",
        help="a built-in scenario name (see `sim scenarios`) or a scenario YAML file",
    )
    serve.add_argument(
        "--speed",
        type=float,
        help=f"simulated seconds per real second (default: the scenario's, or {BARE_SPEED:g} "
        "without a scenario)",
    )
    serve.add_argument(
        "--seed", type=int, help="random seed (default: the scenario's; needs --scenario)"
    )
    serve.add_argument(
        "--no-faults",
        action="store_true",
        help="switch off the scenario's injected faults (watch cuts, CS/FC errors, latency)",
    )
    serve.add_argument(
        "--port", type=int, default=0, help="Kubernetes API server port (default: a free one)"
    )
    serve.add_argument(
        "--cs-port", type=int, default=0, help="CS API emulator port (default: a free one)"
    )
    serve.add_argument(
        "--fc-port",
        type=int,
        default=0,
        help="Function Compute emulator port (default: a free one)",
    )
    serve.add_argument(
        "--kubeconfig-out",
        type=Path,
        help="where to write the kubeconfig, kept after the server stops (default: a temp file, "
        "removed when it stops)",
    )
    serve.add_argument(
        "--info-out",
        type=Path,
        help="where to write the info JSON: kubernetes url and kubeconfig; with --scenario also "
        "the cs and fc endpoints, ids and keys; with --tls the credential files and the "
        "environment for Ray's KubeRay node provider",
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve the Kubernetes API over HTTPS with a CA, token and client certificate made "
        "at start, written beside the kubeconfig (default: plain http, no credentials)",
    )
    serve.add_argument(
        "--ray-autoscaler",
        choices=AUTOSCALERS,
        help="who patches the scenario's RayCluster (default: the scenario's ray.autoscaler, "
        "simulated): `simulated`, the Ray autoscaler stand-in driven by the scenario's job; "
        "`external`, nobody in the simulator (the CR is installed and the KubeRay operator "
        "stand-in follows it, but no job runs), for Ray's own KubeRay node provider pointed at "
        "the server with --tls (needs --scenario)",
    )
    serve.add_argument(
        "--no-demo-node",
        action="store_true",
        help=f"without --scenario: start without the Ready demo node {DEMO_NODE}",
    )
    serve.set_defaults(func=serve_command)
    scenarios = commands.add_parser(
        "scenarios",
        help="list the built-in scenarios",
        description="List the built-in scenarios, one per line with its description.",
    )
    scenarios.set_defaults(func=scenarios_command)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def scenarios_command(_args: argparse.Namespace) -> int:
    """Entry point of `sim scenarios`."""
    names = available_scenarios()
    width = max((len(n) for n in names), default=0)
    for name in names:
        try:
            description = load_scenario(name).description or "(no description)"
        except ScenarioError as error:
            description = f"(invalid: {error})"
        print(f"{name:<{width}}  {description}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """Entry point of `sim serve`."""
    if args.speed is not None and not args.speed > 0:
        return _fail("--speed must be positive")
    if args.seed is not None and args.seed < 0:
        return _fail("--seed must not be negative")
    if not args.scenario:
        if args.seed is not None or args.no_faults or args.ray_autoscaler:
            return _fail("--seed, --no-faults and --ray-autoscaler need --scenario")
        return asyncio.run(_serve_bare(args, _credentials(args)))
    if args.no_demo_node:
        return _fail("--no-demo-node is for a bare cluster; a scenario brings its own nodes")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        return _fail(str(error))
    if args.ray_autoscaler:
        ray = dataclasses.replace(scenario.ray, autoscaler=args.ray_autoscaler)
        scenario = dataclasses.replace(scenario, ray=ray)
    ack = EmbeddedAck(
        scenario,
        speed=args.speed,
        seed=args.seed,
        faults=not args.no_faults,
        kubernetes_port=args.port,
        cs_port=args.cs_port,
        fc_port=args.fc_port,
    )
    credentials = _credentials(args)
    if credentials is not None:
        ack.cluster.serve_tls(credentials)
    return asyncio.run(_serve_scenario(ack, args))


def _credentials(args: argparse.Namespace) -> ServingCredentials | None:
    return ServingCredentials.generate() if args.tls else None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


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


async def _serve_bare(args: argparse.Namespace, credentials: ServingCredentials | None) -> int:
    speed = BARE_SPEED if args.speed is None else args.speed
    cluster = SimCluster(speed=speed, port=args.port)
    if credentials is not None:
        cluster.serve_tls(credentials)
    if not args.no_demo_node:
        # created before the kubelet starts, so it is Ready by the time anyone is told to look
        cluster.store.create("nodes", demo_node())
    async with _until_signalled() as stop, cluster, _temporary_unless_asked(args) as path:
        kubeconfig = write_kubeconfig(
            cluster.url,
            path(cluster.port),
            ca_pem=None if credentials is None else credentials.ca_pem,
            token=None if credentials is None else credentials.token,
        )
        info: dict[str, Any] = {"kubernetes": {"url": cluster.url, "kubeconfig": str(kubeconfig)}}
        files = _write_credentials(info, kubeconfig, credentials)
        if args.info_out:
            _write_json(args.info_out, info)
        print(f"Simulated ACK cluster at {cluster.url} (speed {speed:g}x)")
        _print_watch_hints(kubeconfig)
        _print_tls_hints(info, files)
        print("Stop with Ctrl-C.", flush=True)
        await stop.wait()
    print("Stopped.", flush=True)
    return 0


async def _serve_scenario(ack: EmbeddedAck, args: argparse.Namespace) -> int:
    scenario = ack.scenario
    async with _until_signalled() as stop, ack, _temporary_unless_asked(args) as path:
        kubeconfig = ack.write_kubeconfig(path(ack.cluster.port))
        info = ack.info()
        files = _write_credentials(info, kubeconfig, ack.cluster.tls)
        if args.info_out:
            _write_json(args.info_out, info)
        print(f"Simulated ACK cluster at {ack.kubernetes_url} (speed {ack.speed:g}x)")
        print(f"scenario {scenario.name}: {scenario.description or '(no description)'}")
        print(f"  {_workload_line(scenario)}")
        _print_watch_hints(kubeconfig)
        _print_tls_hints(info, files)
        cs, fc = info["cs"], info["fc"]
        print(f"CS API:           {cs['url']} (cluster {cs['clusterId']}, region {cs['regionId']})")
        print(
            f"Function Compute: {fc['url']} (function {fc['function']}; "
            f"FC 2.0 service {fc['service']})"
        )
        print(
            f"HTTP trigger:     {fc['httpTriggerUrl']} (FC 3.0; FC 2.0: {fc['httpTriggerUrlFc2']})"
        )
        print(f"AccessKey:        {cs['accessKeyId']} / {cs['accessKeySecret']} (test keys)")
        print(f"Managed pools:    {cs['managedPools'] or 'none'} (--managed-pools for the agent)")
        if args.info_out:
            print(f"info: {args.info_out}")
            print(f"Connect an agent: python -m agent run --sim-info {args.info_out}")
        else:
            print("(--info-out FILE writes all this for `python -m agent run --sim-info FILE`)")
        print("Stop with Ctrl-C.", flush=True)
        await stop.wait()
        print(_run_summary(ack), flush=True)
    print("Stopped.", flush=True)
    return 0


@contextlib.asynccontextmanager
async def _until_signalled() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)


@contextlib.asynccontextmanager
async def _temporary_unless_asked(
    args: argparse.Namespace,
) -> AsyncIterator[Callable[[int], Path]]:
    """Where the kubeconfig goes: `--kubeconfig-out`, kept; or a temp file for the port, removed
    when the server stops (it points at a port nothing serves any more)."""
    if args.kubeconfig_out:
        yield lambda _port: Path(args.kubeconfig_out)
        return
    made: list[Path] = []

    def temporary(port: int) -> Path:
        made.append(Path(tempfile.gettempdir()) / f"ray-ack-sim-{port}.kubeconfig")
        return made[-1]

    try:
        yield temporary
    finally:
        for path in made:
            path.unlink(missing_ok=True)
            _remove_credentials(path)


def _write_credentials(
    info: dict[str, Any], kubeconfig: Path, credentials: ServingCredentials | None
) -> CredentialFiles | None:
    """With --tls: write the credential files beside the kubeconfig, and say in `info` where
    they are and how Ray's KubeRay node provider is pointed at the server with them."""
    if credentials is None:
        return None
    files = credentials.write(credentials_directory(kubeconfig))
    kubernetes = info["kubernetes"]
    kubernetes["tls"] = {
        "ca": str(files.ca),
        "token": str(files.token),
        "clientCert": str(files.client_cert),
        "clientKey": str(files.client_key),
    }
    kubernetes["rayKubeRayProvider"] = {
        "env": kuberay_provider_env(kubernetes["url"], files),
        "about": "the environment of Ray's KubeRay node provider "
        "(ray.autoscaler._private.kuberay.node_provider): API address, CA and client "
        "certificate; it reads the token only from the in-pod path "
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    }
    return files


def _remove_credentials(kubeconfig: Path) -> None:
    remove(CredentialFiles.at(credentials_directory(kubeconfig)))


def _print_watch_hints(kubeconfig: Path) -> None:
    print(f"kubeconfig: {kubeconfig}")
    print("Watch it with:")
    print(f"  kubectl --kubeconfig {kubeconfig} get pod -w")
    print(f"  kubectl --kubeconfig {kubeconfig} get node -w")


def _print_tls_hints(info: dict[str, Any], files: CredentialFiles | None) -> None:
    if files is None:
        return
    print(f"TLS credentials:  {files.directory} (ca.crt, token, client.crt, client.key)")
    print("Ray's KubeRay node provider reaches it with:")
    env = info["kubernetes"]["rayKubeRayProvider"]["env"]
    print("  " + " ".join(f"{name}={value}" for name, value in env.items()))


def _workload_line(scenario: Scenario) -> str:
    pools = ", ".join(
        f"{p.pool_id} ({p.instance_type}, desired {p.desired}, max {p.max_size}"
        f"{', ACK autoscaling on' if p.auto_scaling else ''})"
        for p in scenario.pools
    )
    eci = "on" if scenario.eci.enabled else "off"
    work = (
        f"{scenario.task_count} tasks"
        if scenario.ray.autoscaler == "simulated"
        else "no job, its replicas left to an external Ray autoscaler"
    )
    return (
        f"Ray cluster {scenario.ray.namespace}/{scenario.ray.name}: {work}; "
        f"pools: {pools or 'none'}; ECI {eci}"
    )


def _run_summary(ack: EmbeddedAck) -> str:
    scale = ack.cs_scale_requests()
    return "\n".join(
        [
            f"Ray job: {job_text(ack.world.ray.summary())}",
            f"CS writes: {len(ack.cs_writes())} ({len(scale)} accepted scale requests); "
            f"FC invocations: {len(ack.fc_invocations())}",
            ack.world.cost_report().to_text(),
        ]
    )


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # whole or not at all, for whoever polls for the file
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)

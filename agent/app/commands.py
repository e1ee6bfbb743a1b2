"""The agent's own subcommands: `run` (the production entry point), `once` (one reconcile round,
then exit: agent/app/once.py) and `status` (print a running agent's /status the way `ray status`
prints a Ray cluster's)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

from agent.app.config import ConfigError, add_arguments, load_config
from agent.app.managed_pools import PoolsRefused, left_for_ack_text
from agent.app.settings import ENV_PREFIX, AgentConfig
from agent.app.sim_info import read_sim_info, sim_info_keys
from functions.errors import InvalidRequest
from functions.quantity import parse_quantity

DEFAULT_STATUS_URL = "http://127.0.0.1:8080"


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the autoscaler agent",
        description="Watch the cluster, decide and scale. Every setting is a flag, an env var "
        f"({ENV_PREFIX}<NAME>) or a key of the --config YAML file; precedence "
        "flag > env > file > default.",
    )
    add_arguments(run)
    run.set_defaults(func=run_command)

    from agent.app.once import register_once

    register_once(subparsers)

    status = subparsers.add_parser("status", help="print a running agent's status")
    status.add_argument(
        "--url",
        default=None,
        help="the agent's ops address (default: $RAY_ACK_SCALER_OPS_ADDRESS or "
        f"{DEFAULT_STATUS_URL})",
    )
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(func=status_command)


# --- run -------------------------------------------------------------------------------------------


def configured(args: argparse.Namespace) -> AgentConfig:
    """The configuration `run` and `once` take (flags, env, --sim-info, --config); with a sim
    info file, its test AccessKey exported for the SDKs. Raises ConfigError."""
    config = load_config(args)
    sim_info = args.sim_info_file or os.environ.get(ENV_PREFIX + "SIM_INFO")
    if sim_info:
        # The emulators' test AccessKey, read from the environment like any other AccessKey; one
        # the user exported wins.
        for name, value in sim_info_keys(read_sim_info(sim_info)).items():
            os.environ.setdefault(name, value)
    return config


def run_command(args: argparse.Namespace) -> int:
    try:
        config = configured(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from agent.app.logs import configure_logging

    configure_logging(fmt=config.log_format, level=config.log_level)
    try:
        asyncio.run(_serve(config))
    except PoolsRefused as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    return 0


async def _serve(config: Any) -> None:
    from agent.app.ops import serving
    from agent.app.wiring import connect_agent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with connect_agent(config) as agent, serving(config, agent, agent.metrics):
        await agent.run(stop)


# --- status ----------------------------------------------------------------------------------------


def status_command(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get(ENV_PREFIX + "OPS_ADDRESS") or DEFAULT_STATUS_URL
    if "://" not in url:
        url = "http://" + url
    # The agent listens on 127.0.0.1: never route that through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + "/status", timeout=10) as response:
            status = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"error: cannot read {url}/status: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(render_status(status))
    return 0


def render_status(status: dict[str, Any]) -> str:
    """Human-readable status, laid out like `ray status`."""
    lines = [
        f"======== Autoscaler status: {status.get('cluster', '?')} "
        f"({status.get('region', '?')}) ========"
    ]
    lines.append(
        f"Ready: {'yes' if status.get('ready') else 'no'}    "
        f"Decider: {status.get('decider')}    "
        f"Dry run: {'yes' if status.get('dryRun') else 'no'}"
    )
    lines.append("Node pools")
    lines.append("-" * 60)
    pools = status.get("pools") or []
    if not pools:
        lines.append(" (none read yet)")
    for pool in pools:
        types = ",".join(pool.get("instanceTypes") or [])
        line = (
            f" {pool.get('readyNodes', 0)}/{pool.get('desired', 0)} ready  {pool.get('id')} "
            f"({pool.get('name')}, {types})  min {pool.get('min')} max {pool.get('max')}"
        )
        if pool.get("owner") == "companion":
            line += "  companion: ACK's autoscaler owns its size"
        if pool.get("scalingSince"):
            line += f"  scaling since {pool['scalingSince']}"
        if pool.get("lastError"):
            line += f"  ERROR {pool['lastError']}"
        lines.append(line)
    lines.append(f" ECI: {_eci_line(status.get('eci') or {})}")
    lines.append("Pending")
    lines.append("-" * 60)
    pending = status.get("pending") or []
    if not pending:
        lines.append(" (no pending pods)")
    for pod in pending:
        requests = ", ".join(
            f"{k}: {human_quantity(k, v)}" for k, v in (pod.get("requests") or {}).items()
        )
        lines.append(f" {pod.get('pod')}  {{{requests}}}  since {pod.get('since')}")
    total = status.get("pendingPods", len(pending))
    if total > len(pending):
        lines.append(f" ... and {total - len(pending)} more")
    if status.get("anticipatedWorkers"):
        # workers RayClusters want that have no pod yet (decided for with the pods)
        lines.append(f" + {status['anticipatedWorkers']} anticipated worker(s), no pod yet")
    lines.append("Last decision")
    lines.append("-" * 60)
    lines.extend(_last_decision_lines(status.get("lastDecision")))
    lines.append("Watches")
    lines.append("-" * 60)
    for name, watch in sorted((status.get("watches") or {}).items()):
        restarts = ", ".join(f"{k} {v}" for k, v in sorted((watch.get("restarts") or {}).items()))
        lines.append(
            f" {name}: {'synced' if watch.get('synced') else 'listing'} at "
            f"{watch.get('resourceVersion')}, {watch.get('events', 0)} events, "
            f"restarts: {restarts or 'none'}"
        )
    errors = status.get("errors") or []
    if errors:
        lines.append("Recent errors")
        lines.append("-" * 60)
        lines.extend(f" {e.get('at')} [{e.get('source')}] {e.get('message')}" for e in errors[-10:])
    return "\n".join(lines)


def _last_decision_lines(last: dict[str, Any] | None) -> list[str]:
    """The last round: what it wrote, why (one line per action), what it could not place."""
    if not last:
        return [" (none yet)"]
    lines = [
        f" {last.get('at')}  {last.get('reason')} round, {last.get('pods')} pods -> "
        f"{last.get('outcome')} in {last.get('seconds')} s"
    ]
    for write in last.get("pools_written") or []:
        lines.append(f"  scaled {write['pool']}: {write['from']} -> {write['to']}")
    for action in last.get("actions") or []:
        where = action.get("pool") or "ECI"
        lines.append(f"  why {where} ({action.get('pods')} pods): {action.get('reason')}")
    if last.get("eci_placed"):
        lines.append(f"  placed {last['eci_placed']} pods on ECI")
    if last.get("left_for_ack_autoscaler"):
        lines.append(f"  {left_for_ack_text(last['left_for_ack_autoscaler'])}")
    for refused in last.get("refused") or []:
        lines.append(f"  refused to scale {refused['pool']}: {refused['reason']}")
    for item in last.get("unplaceable") or []:
        lines.append(f"  unplaceable {item['pod']}: {item['reason']}")
    if last.get("error"):
        lines.append(f"  error: {last['error']}")
    return lines


def _eci_line(eci: dict[str, Any]) -> str:
    if eci.get("enabled") is False:
        return "off (the agent places no pod on ECI; --eci-enabled turns it on)"
    nodes = ", ".join(eci.get("virtualNodes") or [])
    if not nodes:
        return "on, but no ECI virtual node in the cluster yet (is ack-virtual-node installed?)"
    return f"on, {eci.get('runningPods', 0)} pods running on {nodes}"


# binary units for byte-valued resources, as kubectl shows them
_BYTE_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
_BYTE_RESOURCES = ("memory", "ephemeral-storage", "hugepages-")


def human_quantity(resource: str, value: Any) -> str:
    """A request in the units people read: `memory: 1073741824` → `1 GiB`, `cpu: 500m` → `0.5 vCPU`."""
    try:
        milli = parse_quantity(value)
    except InvalidRequest:
        return str(value)
    if resource.startswith(_BYTE_RESOURCES):
        size = milli / 1000
        for unit, scale in _BYTE_UNITS:
            if size >= scale:
                return f"{round(size / scale, 2):g} {unit}"
        return f"{size:g} B"
    if resource == "cpu":
        return f"{milli / 1000:g} vCPU"
    return f"{milli / 1000:g}"

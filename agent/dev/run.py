"""`python -m agent dev`: the agent against an embedded ACK on this machine, in one command.

It starts the scenario's simulated ACK (Kubernetes API, node pools, ECI, the Ray workload, the CS
and Function Compute emulators) on free 127.0.0.1 ports, writes a kubeconfig, and runs the real
agent exactly as `python -m agent run` would: the configuration is built by the same loader from
the same environment variables a user would export (kubeconfig path, CS endpoint, AccessKey, FC
endpoint), through the same production wiring. The one difference is the clock the agent measures
policy durations on: the simulated one, since the cluster runs `--speed` times faster than real
time (its batching windows stay real-time).

It follows the run from the simulator's side (the object store's changes, the emulators' write
journals) and from the agent's (each decision round), shows a live view or, with --json, prints
one summary line; and ends when the workload is done and the cluster is at rest, or at the
scenario's time limit. With --keep the simulated ACK stays up after that, for kubectl, until
Ctrl-C.

With --no-agent only the simulated world runs: the scenario's pools with ACK node autoscaling
on are served by ACK's own autoscaler stand-in alone (`agent.sim.world.ack_autoscaler`), the
walkthrough as documented, a baseline for the same run with the agent.

Everything a run writes goes to one run folder, printed at the start: the kubeconfig (removed
when the cluster stops, as it then points nowhere), the agent's log and the HTML report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from agent.app.config import ConfigError, load_config
from agent.app.settings import DECIDER_KINDS, ENV_PREFIX, FC_API_VERSIONS, STRATEGIES, AgentConfig
from agent.dev.agent_log import AgentLogTap, route_agent_logs, warning_text
from agent.dev.closing import closing_lines, one_line, verdict
from agent.dev.live_view import LiveView, decision_text, scale_in_text
from agent.dev.report import render_report
from agent.dev.summary import (
    FOLLOW_UP,
    SCALE_IN,
    SCALE_OUT,
    CloudFacts,
    RunRecord,
    ScaleWrite,
    action_reasons,
    error_codes,
    fault_seen,
    summarize,
)
from agent.sim.embedded import EmbeddedAck
from agent.sim.kube.store import ApiError
from agent.sim.report import CostReport
from agent.sim.scenario import Scenario, ScenarioError, load_scenario
from agent.sim.world.nodepools import POOL_LABEL

TICK_SECONDS = 0.05  # how often the run is checked (real time)
STOP_AGENT_SECONDS = 10.0
JOB_HOLD_SECONDS = 10.0  # real: the longest the Ray job waits for the agent's first lists
EXIT_TIME_LIMIT = 1
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
# Periodic settings whose production values are meant in cluster time: in dev mode they are
# given in simulated seconds (divided by the speed), never below this many real seconds. The floor
# stretches simulated time once the speed passes interval/floor: at 0.5 s, a 10 s scale-in interval
# became 50 simulated s at speed 100, and burst's 80 GPU nodes (10 per round) took 400 simulated s
# to give back — past its time limit. At 0.1 s every interval keeps its value up to speed 100.
CLUSTER_TIME_SETTINGS = ("resync_seconds", "pool_refresh_seconds", "scale_in_interval_seconds")
MIN_INTERVAL_SECONDS = 0.1
MODES = ("sidecar", "agentless", "none")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
# decide/v1 and scale-in/v1 policy keys in a scenario → the agent's settings of the same meaning
POLICY_SETTINGS = {
    "strategy": "STRATEGY",
    "latencyBudgetSeconds": "LATENCY_BUDGET_SECONDS",
    "expectedRunSeconds": "EXPECTED_RUN_SECONDS",
    "maxNewNodesPerDecision": "MAX_NEW_NODES_PER_DECISION",
    "maxProvisionSeconds": "MAX_PROVISION_SECONDS",
    "drainNonEmpty": "SCALE_IN_DRAIN_NON_EMPTY",
    "scaleDownUnneededSeconds": "SCALE_DOWN_UNNEEDED_SECONDS",
    "scaleDownDelayAfterFailureSeconds": "SCALE_DOWN_DELAY_AFTER_FAILURE_SECONDS",
}


def register(subparsers: Any) -> None:
    dev = subparsers.add_parser(
        "dev",
        help="run the agent against a simulated ACK cluster on this machine",
        description="Start an embedded ACK (Kubernetes API, node pools, ECI, a Ray workload, CS "
        "and Function Compute emulators) on 127.0.0.1, run the agent against it as "
        "in production, and show what it does. Ends when the workload is done and "
        "the cluster is at rest (exit 0), at the time limit (exit 1), or on Ctrl-C "
        "(exit 130).",
    )
    dev.add_argument(
        "--scenario",
        default="seed",
        metavar="NAME|PATH",
        help="built-in scenario (see `sim scenarios`) or scenario file (default seed)",
    )
    dev.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated seconds per real second (default: the scenario's)",
    )
    dev.add_argument(
        "--decider",
        choices=DECIDER_KINDS,
        default="fc",
        help="where decisions are made: fc (the Function Compute emulator through "
        "the FC SDK, default), http (its HTTP trigger) or local (in-process)",
    )
    dev.add_argument(
        "--fc-api-version",
        choices=FC_API_VERSIONS,
        default=FC_API_VERSIONS[0],
        help="the Function Compute API the fc and http deciders speak: 3.0 (default) or 2.0 "
        "(a service holds the function; its HTTP trigger calls WSGI)",
    )
    dev.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="decision strategy (default: the scenario's)",
    )
    dev.add_argument(
        "--json",
        action="store_true",
        help="no live view; print one JSON summary line as the last line of stdout",
    )
    dev.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="write a self-contained HTML report with a timeline chart",
    )
    dev.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="simulated seconds before giving up (default: the scenario's)",
    )
    dev.add_argument(
        "--no-raycluster-watch",
        dest="raycluster_watch",
        action="store_false",
        help="run the agent without its RayCluster watch (RAY_ACK_SCALER_RAYCLUSTER_WATCH=false): "
        "it then sees demand only once KubeRay's pods are Pending, as cluster-autoscaler does; "
        "compare the summary's first-node-requested time with and without",
    )
    dev.add_argument(
        "--mode",
        choices=MODES,
        default=MODES[0],
        help="sidecar (default): the agent process watches the cluster; agentless: no agent "
        "process, the reconcile function on the FC emulator woken by the EventBridge stand-in "
        "(FailedScheduling Events) and its Timer trigger (every simulated minute); none: the "
        "simulated world alone (as --no-agent)",
    )
    dev.add_argument(
        "--no-agent",
        dest="mode",
        action="store_const",
        const="none",
        help="run the simulated world alone, no agent (--mode none): pools with ACK node "
        "autoscaling on are scaled by ACK's own autoscaler (the simulator's stand-in), the others "
        "stay as they are; the baseline to compare a run with the agent against",
    )
    dev.add_argument(
        "--quiet",
        action="store_true",
        help="no banner and no live view: one summary line and the report's path at the end",
    )
    dev.add_argument(
        "--keep",
        action="store_true",
        help="when the run ends, keep the simulated ACK up (the agent stopped) for kubectl "
        "until Ctrl-C",
    )
    dev.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="the run folder for the kubeconfig, the agent's log (agent.log) and the report "
        "(report.html unless --report); default: a new ray-ack-dev-* folder in the temp directory",
    )
    dev.set_defaults(func=dev_command)


@dataclass(frozen=True)
class DevOptions:
    decider: str
    strategy: str | None
    json: bool
    report: Path | None
    time_limit: float
    quiet: bool
    run_dir: Path
    fc_api_version: str = FC_API_VERSIONS[0]
    keep: bool = False
    raycluster_watch: bool = True
    mode: str = "sidecar"  # MODES: "agentless" has no agent process, "none" no agent at all

    @property
    def agent(self) -> bool:
        """An agent process runs (sidecar mode)."""
        return self.mode == "sidecar"


def dev_command(args: argparse.Namespace) -> int:
    if args.speed is not None and not args.speed > 0:
        return _fail("--speed must be positive")
    if args.time_limit is not None and not args.time_limit > 0:
        return _fail("--time-limit must be positive")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        return _fail(str(error))
    run_dir = args.run_dir or Path(
        tempfile.mkdtemp(prefix=f"ray-ack-dev-{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}-")
    )
    options = DevOptions(
        decider=args.decider,
        strategy=args.strategy,
        fc_api_version=args.fc_api_version,
        json=args.json,
        report=args.report or run_dir / "report.html",
        time_limit=args.time_limit or scenario.time_limit_seconds,
        quiet=args.quiet,
        run_dir=run_dir,
        keep=args.keep,
        raycluster_watch=args.raycluster_watch,
        mode=args.mode,
    )
    _no_proxies_for_loopback()
    tap = AgentLogTap()
    log_file = route_agent_logs(run_dir / "agent.log", tap)
    try:
        return asyncio.run(DevRun(scenario, options, speed=args.speed, tap=tap).main())
    finally:
        logging.getLogger().removeHandler(tap)
        log_file.close()


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _no_proxies_for_loopback() -> None:
    """Everything runs on 127.0.0.1: a proxy from the user's environment must not see it."""
    for name in PROXY_VARS:
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def agent_environment(
    info: Mapping[str, Any],
    *,
    kubeconfig: Path,
    decider: str,
    fc_api_version: str = FC_API_VERSIONS[0],
    policy: Mapping[str, Any],
    eci_enabled: bool,
    speed: float,
    raycluster_watch: bool = True,
) -> dict[str, str]:
    """The environment a user would export to point `python -m agent run` at this cluster.

    The periodic settings (resync, pool refresh, scale-in interval) keep their production
    values in simulated time: a 30 s resync is 30 simulated seconds, or a cluster running 50×
    faster would see the agent look again only every 25 simulated minutes — after the 10 minutes
    it allows a pool to deliver. The batching windows stay real-time (they pace API calls)."""
    cs, fc = info["cs"], info["fc"]
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": cs["accessKeyId"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": cs["accessKeySecret"],
        ENV_PREFIX + "KUBECONFIG": str(kubeconfig),
        ENV_PREFIX + "CLUSTER_ID": cs["clusterId"],
        ENV_PREFIX + "REGION": cs["regionId"],
        ENV_PREFIX + "CS_ENDPOINT": cs["url"],
        ENV_PREFIX + "CREDENTIALS": "access-key",
        ENV_PREFIX + "DECIDER": decider,
        ENV_PREFIX + "MANAGED_POOLS": cs["managedPools"],
        ENV_PREFIX + "ECI_ENABLED": str(eci_enabled).lower(),
        ENV_PREFIX + "RAYCLUSTER_WATCH": str(raycluster_watch).lower(),
        ENV_PREFIX + "OPS_ADDRESS": "127.0.0.1:0",
        # a sandbox on this machine: its /status may name the simulated pods and quote errors
        ENV_PREFIX + "STATUS_DETAILS": "true",
    }
    if decider in ("fc", "http"):
        env[ENV_PREFIX + "FC_API_VERSION"] = fc_api_version
    if decider == "fc":
        env[ENV_PREFIX + "FC_ENDPOINT"] = fc["url"]
        env[ENV_PREFIX + "FC_FUNCTION"] = fc["function"]
        if fc_api_version == "2.0":
            env[ENV_PREFIX + "FC_SERVICE"] = fc["service"]
    elif decider == "http":
        trigger = "httpTriggerUrlFc2" if fc_api_version == "2.0" else "httpTriggerUrl"
        env[ENV_PREFIX + "HTTP_URL"] = fc[trigger]
    for key, value in policy.items():
        if key in POLICY_SETTINGS:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[ENV_PREFIX + POLICY_SETTINGS[key]] = text
    defaults = AgentConfig()
    for name in CLUSTER_TIME_SETTINGS:
        if hasattr(defaults, name):
            seconds = max(getattr(defaults, name) / speed, MIN_INTERVAL_SECONDS)
            env[ENV_PREFIX + name.upper()] = f"{seconds:g}"
    return env


async def _never() -> None:
    """Stands in for the agent's task in agentless mode: there is no agent to stop."""
    await asyncio.Event().wait()


def function_environment(agent_env: Mapping[str, str]) -> dict[str, str]:
    """The reconcile function's environment variables: the agent's settings, less what a
    function has otherwise — the API server comes from DescribeClusterUserKubeconfig, CS calls
    are signed with the function's role (FC's STS token), it serves no ops address, and it
    decides in-process (it already runs on Function Compute)."""
    dropped = {
        ENV_PREFIX + name
        for name in ("KUBECONFIG", "CREDENTIALS", "OPS_ADDRESS", "DECIDER", "HTTP_URL")
    }
    return {
        **{
            k: v
            for k, v in agent_env.items()
            if k.startswith(ENV_PREFIX)
            and k not in dropped
            and not k.startswith(ENV_PREFIX + "FC_")
        },
        ENV_PREFIX + "DECIDER": "local",
    }


def agentless_facts(ack: EmbeddedAck, outcomes: Mapping[str, int] | None = None) -> dict[str, Any]:
    """What the agentless run cost in invocations: by trigger, cold starts, failures, and the
    time billed (the runs' real durations); what they came to (`outcomes`: full rounds, events a
    round covered, events turned away); and FC's concurrency limit at work (the most runs at
    once, throttled attempts)."""
    runs = ack.reconcile_invocations()
    fc = ack.reconcile_fc_state()
    by_kind: dict[str, int] = {}
    for run in runs:
        by_kind[run.kind] = by_kind.get(run.kind, 0) + 1
    return {
        "invocations": by_kind,
        "coldStarts": sum(1 for run in runs if run.cold),
        "failed": sum(1 for run in runs if run.error_type),
        "secondsBilled": round(sum(run.duration_seconds for run in runs), 3),
        "secondsBilledByTrigger": {
            kind: round(sum(r.duration_seconds for r in runs if r.kind == kind), 3)
            for kind in by_kind
        },
        "eventsPublished": ack.eventbridge.published if ack.eventbridge else 0,
        "eventsDelivered": ack.eventbridge.delivered if ack.eventbridge else 0,
        "timerTicks": ack.timer.ticks if ack.timer else 0,
        "outcomes": dict(outcomes or {}),
        "peakConcurrent": fc.peak_running if fc else 0,
        "throttledAttempts": fc.throttled if fc else 0,
    }


def scales_in(agent: Any) -> bool:
    """Whether this agent gives nodes back (it has a scale-in component, switched on). Without
    one, grown pools stay as they are, so a run cannot wait for them to shrink."""
    return getattr(agent, "scale_in", None) is not None


class DevRun:
    """One dev-mode run: the embedded ACK, the agent, and whoever watches them."""

    def __init__(
        self, scenario: Scenario, options: DevOptions, *, speed: float | None, tap: AgentLogTap
    ) -> None:
        self.scenario = scenario
        self.tap = tap
        self.options = options
        # agentless: the reconcile function's environment, filled once the emulators listen
        self.function_env: dict[str, str] = {}
        reconcile = None
        self.reconciler: Any = None
        if options.mode == "agentless":
            from agent.agentless.reconcile import Reconciler

            self.reconciler = Reconciler(
                environ=self.function_env, now=lambda: self.ack.cluster.clock.now()
            )
            reconcile = self.reconciler.handle
        self.ack = EmbeddedAck(scenario, speed=speed, reconcile=reconcile)
        self.ack.world.ray.hold_job()  # submitted once the agent watches
        self.record = RunRecord(
            namespace=scenario.ray.namespace,
            eci_node=scenario.eci.node_name if scenario.eci.enabled else None,
            pool_label=POOL_LABEL,
        )
        # Human output goes to stderr with --json, so stdout carries the summary line alone.
        self.out: TextIO = sys.stderr if options.json else sys.stdout
        self.view = LiveView(self.out, task_count=scenario.task_count)
        self._signal: int | None = None
        self._interrupted = asyncio.Event()
        self._sim_origin = 0.0
        self._errors_by_code: dict[str, int] = {}
        self._faults_seen: dict[str, int] = {}
        self._ack_changes_seen = 0

    def say(self, text: str) -> None:
        if not self.options.quiet:
            print(text, file=self.out, flush=True)

    def t(self) -> float:
        """Simulated seconds since the run started."""
        return self.ack.cluster.clock.now() - self._sim_origin

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            return await self._run()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._signal = self._signal or signum
        self._interrupted.set()

    async def _run(self) -> int:
        from agent.app.ops import OpsServer
        from agent.app.wiring import connect_agent

        kubeconfig = self.options.run_dir / "kubeconfig"
        async with contextlib.AsyncExitStack() as cleanup:
            # after the cluster stops (last in, first out): the kubeconfig then points nowhere
            cleanup.callback(kubeconfig.unlink, missing_ok=True)
            ack = await cleanup.enter_async_context(self.ack)
            self._sim_origin = ack.cluster.clock.now()
            ack.write_kubeconfig(kubeconfig)
            if self.options.mode == "none":
                ending = await self._run_world_only(kubeconfig)
                summary, cost = self._wrap_up(ending)
                code = self._finish(ending, summary, cost)
                if self.options.keep and ending != "interrupted":
                    await self._keep_up(kubeconfig)
                return code
            env = agent_environment(
                ack.info(),
                kubeconfig=kubeconfig,
                decider=self.options.decider,
                fc_api_version=self.options.fc_api_version,
                policy={
                    **self.scenario.policy,
                    **({"strategy": self.options.strategy} if self.options.strategy else {}),
                },
                eci_enabled=self.scenario.eci.enabled,
                speed=ack.speed,
                raycluster_watch=self.options.raycluster_watch,
            )
            # The AccessKey is read from the process environment, as `agent run` reads it.
            os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = env["ALIBABA_CLOUD_ACCESS_KEY_ID"]
            os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
            try:
                config = load_config(None, environ=env)
            except ConfigError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            self._banner(kubeconfig, config)
            subscription = self._follow_store()
            if self.options.mode == "agentless":
                self.function_env.update(function_environment(env))
                self.say(
                    "agentless: no agent process; the reconcile function on the FC emulator, "
                    "woken by EventBridge (FailedScheduling) and its Timer (every simulated minute)"
                )
                ending = await self._run_agentless(subscription)
                summary, cost = self._wrap_up(ending)
                code = self._finish(ending, summary, cost)
                if self.options.keep and ending != "interrupted":
                    await self._keep_up(kubeconfig)
                return code
            async with connect_agent(config, now=ack.cluster.clock.now) as agent:
                host, port = config.ops_host_port
                ops = OpsServer(
                    agent, agent.metrics, host=host, port=port, status_details=config.status_details
                )
                await ops.start()
                self.say(f"agent status: python -m agent status --url {ops.url}")
                stop = asyncio.Event()
                running = asyncio.create_task(agent.run(stop), name="agent")
                await self._release_job_once_watching(agent, running)
                try:
                    ending = await self._watch(
                        running, subscription, rest_needs_min=scales_in(agent)
                    )
                finally:
                    stop.set()
                    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(asyncio.shield(running), STOP_AGENT_SECONDS)
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await running
                    await ops.stop()
                    subscription.close()
                self._fold(subscription.drain())
                summary, cost = self._wrap_up(ending)
            code = self._finish(ending, summary, cost)
            if self.options.keep and ending != "interrupted":
                await self._keep_up(kubeconfig)
            return code

    async def _run_world_only(self, kubeconfig: Path) -> str:
        """--no-agent: the Ray job starts at once and the run is watched until it ends."""
        self._banner_world_only(kubeconfig)
        subscription = self._follow_store()
        self.ack.world.ray.release_job()
        try:
            return await self._watch(None, subscription, rest_needs_min=False)
        finally:
            subscription.close()
            self._fold(subscription.drain())

    async def _run_agentless(self, subscription: Any) -> str:
        """No agent process: the job starts at once, and the EventBridge stand-in and the Timer
        trigger invoke the reconcile function until the run ends."""
        self.ack.world.ray.release_job()
        no_agent = asyncio.create_task(_never(), name="no-agent")
        try:
            ending = await self._watch(no_agent, subscription, rest_needs_min=True)
            # The rest the run just saw may be a round's own work (its last node removed) whose
            # log line, with what the round decided, is still to come: let the runs under way
            # finish, as stopping the agent lets its round finish in sidecar mode.
            await self._runs_finished(STOP_AGENT_SECONDS)
            return ending
        finally:
            no_agent.cancel()
            subscription.close()
            self._fold(subscription.drain())

    async def _runs_finished(self, timeout: float) -> None:
        """Wait (at most `timeout` real s) until no reconcile function run is under way."""
        state = self.ack.reconcile_fc_state()
        deadline = time.monotonic() + timeout
        # a poll: the FC emulator's run count is a plain counter, and this runs once per dev run
        while state is not None and state.running and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def _wrap_up(self, ending: str) -> tuple[dict[str, Any], CostReport]:
        """The last look at the run: rounds and ACK autoscaler changes that ended as it ended,
        the closing status line, the cost and the summary."""
        self._take_agent_events()
        self._take_ack_changes()
        final = self.record.sample(self.t(), wanted=self._pool_sizes(), replicas=self._replicas())
        if not self.options.json and not self.options.quiet:
            self.view.show(
                final, pools=self._pool_sizes(), tasks_done=self._tasks_done(), final=True
            )
        cost = self.ack.world.cost_report()  # one reading for summary, report, lines
        summary = self._summary(cost, ending)
        if self.options.mode == "agentless":
            summary["agentless"] = agentless_facts(self.ack, self.reconciler.outcomes)
        return summary, cost

    async def _keep_up(self, kubeconfig: Path) -> None:
        """--keep: the cluster stays up (its clock running, the agent stopped) until Ctrl-C."""
        lines = [
            f"the simulated ACK stays up at {self.ack.kubernetes_url} (the agent has stopped); "
            "look at it with:",
            f"  kubectl --kubeconfig {kubeconfig} get pod,node",
            f"  kubectl --kubeconfig {kubeconfig} describe pod",
            "Ctrl-C stops it.",
        ]
        print("\n".join(lines), file=self.out, flush=True)
        await self._interrupted.wait()

    def _banner(self, kubeconfig: Path, config: AgentConfig) -> None:
        scenario = self.scenario
        self.say(f"scenario {scenario.name}: {scenario.description or '(no description)'}")
        self.say(
            f"simulated ACK at {self.ack.kubernetes_url}, speed {self.ack.speed:g}x "
            f"(time limit {self.options.time_limit:g} simulated s)"
        )
        self.say(
            f"run folder: {self.options.run_dir} (kubeconfig, agent.log with the agent's log "
            "lines, report.html)"
        )
        self.say("watch it as in the ACK walkthrough:")
        self.say(f"  kubectl --kubeconfig {kubeconfig} get pod -w")
        self.say(f"  kubectl --kubeconfig {kubeconfig} get node -w")
        if not self.options.keep:
            self.say(
                "  (the cluster stops when the run ends: --keep keeps it up until Ctrl-C, and a "
                "lower --speed, such as 5, gives time to watch)"
            )
        where = {
            "fc": f"Function Compute {config.fc_api_version} at {config.fc_endpoint} through "
            "the FC SDK",
            "http": f"the Function Compute {config.fc_api_version} HTTP trigger {config.http_url}",
            "local": "in-process",
        }[config.decider]
        self.say(
            f"agent: cluster {config.cluster_id}, CS at {config.cs_endpoint}, decider "
            f"{where}, strategy {config.strategy}"
        )
        eci = (
            "on (the virtual node takes pods ECI can run)"
            if config.eci_enabled
            else "off (the scenario has no ECI virtual node: pools only)"
        )
        scale_in = "on" if config.scale_in_enabled else "off"
        if config.scale_in_enabled and config.scale_in_drain_non_empty:
            scale_in += ", draining nodes that still run pods"
        watch = "on" if config.raycluster_watch else "off (demand seen once pods are Pending)"
        self.say(
            f"options: ECI {eci}; scale-in {scale_in}; RayCluster watch {watch}"
            + ("; dry run" if config.dry_run else "")
        )
        auto = [spec.pool_id for spec in scenario.pools if spec.auto_scaling]
        if auto:
            self.say(
                f"ACK node autoscaling is on for {', '.join(auto)}: ACK's own autoscaler (the "
                "simulator's stand-in) scales it, not the agent"
            )

    def _banner_world_only(self, kubeconfig: Path) -> None:
        scenario = self.scenario
        self.say(f"scenario {scenario.name}: {scenario.description or '(no description)'}")
        self.say(
            f"simulated ACK at {self.ack.kubernetes_url}, speed {self.ack.speed:g}x "
            f"(time limit {self.options.time_limit:g} simulated s)"
        )
        self.say(f"run folder: {self.options.run_dir} (kubeconfig, report.html)")
        self.say("watch it as in the ACK walkthrough:")
        self.say(f"  kubectl --kubeconfig {kubeconfig} get pod -w")
        self.say(f"  kubectl --kubeconfig {kubeconfig} get node -w")
        auto = [spec.pool_id for spec in scenario.pools if spec.auto_scaling]
        scaler = (
            f"ACK's own autoscaler (the simulator's stand-in) scales {', '.join(auto)}"
            if auto
            else "no pool has ACK node autoscaling on: nothing scales"
        )
        self.say(f"agent: none (--no-agent); {scaler}")

    def _follow_store(self) -> Any:
        """Fold what exists now, then every change from here on (no await in between, so
        nothing falls in the gap)."""
        store = self.ack.cluster.store
        t, real = self.t(), time.monotonic()
        for resource in ("nodes", "pods"):
            for obj in store.list(resource)[0]:
                self.record.observe("ADDED", resource, obj, t=t, real=real)
        return store.subscribe(resources=("nodes", "pods", "events"))

    def _fold(self, events: list[Any]) -> None:
        t, real = self.t(), time.monotonic()
        for event in events:
            self.record.observe(event.type, event.resource, event.object, t=t, real=real)

    async def _release_job_once_watching(self, agent: Any, running: asyncio.Task[None]) -> None:
        """Submit the Ray job once the agent's watches have listed (or the agent has stopped, or
        a few seconds passed): the agent's reaction is then measured from the job's start, not
        from before the agent was up."""
        synced = asyncio.ensure_future(
            asyncio.gather(*(watcher.synced.wait() for watcher in agent.all_watchers))
        )
        try:
            await asyncio.wait(
                {synced, running}, timeout=JOB_HOLD_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            synced.cancel()
            self.ack.world.ray.release_job()

    async def _watch(
        self, running: asyncio.Task[None] | None, subscription: Any, *, rest_needs_min: bool
    ) -> str:
        """Until the run ends: "rest", "time-limit", "interrupted" or "agent-stopped"."""
        while True:
            waiting = asyncio.ensure_future(subscription.wait())
            interrupted = asyncio.ensure_future(self._interrupted.wait())
            await asyncio.wait(
                {waiting, interrupted}, timeout=TICK_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for future in (waiting, interrupted):
                future.cancel()
            self._fold(subscription.drain())
            self._take_agent_events()
            self._take_ack_changes()
            t = self.t()
            sample = self.record.sample(t, wanted=self._pool_sizes(), replicas=self._replicas())
            if not self.options.json and not self.options.quiet:
                self.view.show(sample, pools=self._pool_sizes(), tasks_done=self._tasks_done())
            if self._interrupted.is_set():
                return "interrupted"
            if running is not None and running.done():
                return "agent-stopped"
            if self._at_rest(sample, rest_needs_min=rest_needs_min):
                return "rest"
            if t >= self.options.time_limit:
                return "time-limit"

    def _take_agent_events(self) -> None:
        show = not self.options.json and not self.options.quiet
        for event in self.tap.drain():
            for code in error_codes(event):
                self._errors_by_code[code] = self._errors_by_code.get(code, 0) + 1
            seen = fault_seen(event)
            if seen is not None:
                self._faults_seen[seen] = self._faults_seen.get(seen, 0) + 1
            # the live view prints on one clock: when the run sees the event
            now = self.t()
            at = _sim_seconds(str(event.get("at", "")), origin=self._sim_origin)
            t = now if at is None else at
            if event["event"] == "error":
                if show:
                    self.view.error(now, f"[{event.get('source')}] {event.get('message')}")
                continue
            if event["event"] not in ("decision round", "scale-in round"):
                if show and event.get("levelno", 0) >= logging.WARNING:
                    self.view.warning(now, warning_text(event))
                continue
            reasons, nodes = action_reasons(event.get("actions") or ()), event.get("removed") or ()
            if event["event"] == "scale-in round":
                kind = SCALE_IN
                outcome, pods, text = str(event.get("outcome")), 0, scale_in_text(event)
            else:
                kind = SCALE_OUT if event.get("reason") == "pods" else FOLLOW_UP
                outcome, pods, text = (
                    str(event.get("outcome")),
                    int(event.get("pods") or 0),
                    decision_text(event),
                )
                self.record.mark_unplaceable(
                    item["pod"].rpartition("/")[2] for item in event.get("unplaceable") or ()
                )
            self.record.decided(
                t=t, outcome=outcome, pods=pods, text=text, reasons=reasons, nodes=nodes, kind=kind
            )
            if show:
                self.view.decision(now, self.record.decisions[-1])

    def _take_ack_changes(self) -> None:
        """What ACK's own autoscaler did since the last look, on the timeline and the view."""
        autoscaler = self.ack.world.ack_autoscaler
        if autoscaler is None:
            return
        fresh = autoscaler.changes[self._ack_changes_seen :]
        self._ack_changes_seen += len(fresh)
        for change in fresh:
            t = change.at - self._sim_origin
            self.record.ack_changed(t=t, kind=change.kind, text=change.text())
            if not self.options.json and not self.options.quiet:
                self.view.ack_autoscaler(self.t(), change.text())

    def _pool_sizes(self) -> dict[str, int]:
        return {p.pool_id: p.desired for p in self.ack.world.pools.describe_pools()}

    def _replicas(self) -> dict[str, int]:
        """Each worker group's `replicas` in the RayCluster as stored now (what Ray's autoscaler
        last wrote); none before the RayCluster exists."""
        ray = self.ack.scenario.ray
        try:
            cluster = self.ack.cluster.store.get("rayclusters", ray.name, namespace=ray.namespace)
        except ApiError:
            return {}
        return {
            str(group.get("groupName")): int(group.get("replicas") or 0)
            for group in cluster["spec"].get("workerGroupSpecs") or ()
        }

    def _tasks_done(self) -> int:
        return self.ack.world.ray.summary().done

    def _at_rest(self, sample: Any, *, rest_needs_min: bool) -> bool:
        """The job is over, no worker pod waits for capacity, no node is still booting; no pool
        holds more nodes than its minimum if someone gives them back: ACK's own autoscaler for
        the pools with auto scaling on, the agent (with scale-in) for the others. (A pool's
        desired size is not looked at: one out of stock may keep a raised target it never
        delivers.)"""
        if not self.ack.world.ray.finished() or sample.pending or sample.starting:
            return False
        if any(not_ready for _pool, not_ready, _ready in sample.nodes):
            return False
        shrinking = {
            spec.pool_id: spec.min_size
            for spec in self.ack.world.pools.specs()
            if spec.auto_scaling or rest_needs_min
        }
        return all(
            p.total_nodes <= shrinking[p.pool_id]
            for p in self.ack.world.pools.describe_pools()
            if p.pool_id in shrinking
        )

    def _summary(self, cost: CostReport, ending: str) -> dict[str, Any]:
        clock = self.ack.cluster.clock
        now_sim, now_real = clock.now(), time.monotonic()
        # the CS journal is in simulated time; map it onto the real clock the record uses
        writes = tuple(
            ScaleWrite(
                real=now_real - (now_sim - w.time) / clock.speed,
                pool=str(w.summary.get("nodepool_id", "")),
            )
            for w in self.ack.cs_scale_requests()
        )
        facts = CloudFacts(
            scale_writes=writes,
            idle_node_seconds=sum(p.idle_seconds for p in cost.pools),
            cost=cost.total_cost,
            errors_by_code=self._errors_by_code,
            ending=ending,
            seconds=self.t(),
            pools={
                p.pool_id: (p.desired, p.total_nodes) for p in self.ack.world.pools.describe_pools()
            },
            faults_injected=self.ack.faults.counts(),
            faults_seen=self._faults_seen,
            first_node_requested_seconds=self._first_node_requested(),
            agent=self.options.agent,
            agent_cs_writes=len(self.ack.cs_writes()),
            node_cost=sum(p.cost for p in cost.pools),
            eci_cost=cost.eci.cost if cost.eci is not None else 0.0,
        )
        return summarize(self.record, scenario=self.scenario.name, facts=facts)

    def _first_node_requested(self) -> float | None:
        """Simulated seconds from Ray's first replicas raise to the first pool scale write."""
        raised = self.ack.world.ray.replicas_raised_at
        writes = [w.time for w in self.ack.cs_scale_requests()]
        if not raised or not writes:
            return None
        return round(min(writes) - raised[0], 1)

    def _finish(self, ending: str, summary: dict[str, Any], cost: CostReport) -> int:
        if self.options.report is not None:
            self.options.report.parent.mkdir(parents=True, exist_ok=True)
            self.options.report.write_text(
                render_report(
                    self.record,
                    summary=summary,
                    scenario=self.scenario,
                    cost=cost,
                    ending=ending,
                ),
                encoding="utf-8",
            )
        job = self.ack.world.ray.summary()
        if self.options.quiet and ending != "time-limit":
            lines = [
                one_line(
                    summary,
                    ending=ending,
                    tasks_done=f"{job.done}/{job.tasks}",
                    cost=cost.total_cost,
                )
            ]
        else:
            lines = [
                verdict(ending, time_limit=self.options.time_limit),
                *closing_lines(
                    summary, tasks=f"{job.done}/{job.tasks} tasks done, {job.failed} failed"
                ),
                cost.to_text(),
            ]
        agent_log = (
            f"   agent log: {self.options.run_dir / 'agent.log'}" if self.options.agent else ""
        )
        lines.append(f"report: {self.options.report}{agent_log}")
        print("\n".join(lines), file=self.out if ending != "time-limit" else sys.stderr, flush=True)
        if self.options.json:
            print(json.dumps(summary, sort_keys=False), flush=True)
        if ending == "interrupted":
            return EXIT_SIGTERM if self._signal == signal.SIGTERM else EXIT_SIGINT
        return 0 if ending == "rest" else EXIT_TIME_LIMIT


def _sim_seconds(text: str, *, origin: float) -> float | None:
    from agent.sim.world.clock import parse_iso

    try:
        return parse_iso(text) - origin
    except ValueError:
        return None

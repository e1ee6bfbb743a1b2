"""`python -m agent once`: one reconcile round, then exit — "what would you do right now?".

The agent is wired as `run` wires it (agent/app/wiring.py), its view filled by one LIST of each
stream the loop watches (`Agent.list_once`: pods, nodes, and RayClusters when ray.io/v1 is
served), and then the loop's own rounds run on that view: `scale_out_round` (decide/v1, applied
under the pool Leases) and `scale_in_round` (scale-in/v1). This module decides and writes
nothing itself: it prints, as one JSON document on stdout, what the rounds recorded; the log
lines go to stderr as the agent logs them. With --dry-run nothing is written at all (no pool
write, no pod patch, no Lease, no Event), the same as `run --dry-run`.

Each invocation holds the pool Leases under an identity of its own (host name and process id,
unless --pool-lock-identity says otherwise): two `once` started together on one host, or one
beside a running agent, take turns on a pool like two agents.

Scale-in's unneeded timers live in memory (agent/scale_in/tracking.py): a node `once` finds
empty has been empty "since now", so with a non-zero scale_down_unneeded_seconds it plans no
removal — the first round of a freshly started agent decides the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agent.app.commands import configured
from agent.app.config import ConfigError, add_arguments
from agent.app.loop import Agent, RoundRecord
from agent.app.managed_pools import PoolsRefused
from agent.app.settings import AgentConfig
from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.batching import Batch
from agent.scale_in.rounds import ScaleInRecord

OK, FAILED, BAD_CONFIG = 0, 1, 2
EXIT_CODES = f"""exit codes:
  {OK}  the round ran: nothing to do, the plan printed (--dry-run), or the plan applied
  {FAILED}  an API failed (Kubernetes, CS, the decider) or a write was refused: the message is
     on stderr; when a plan was made, the JSON on stdout says what was and was not applied
  {BAD_CONFIG}  a setting is missing or wrong, or a managed pool cannot be managed
"""
# The outcomes of a scale-in round that make the exit code FAILED.
FAILED_OUTCOMES = frozenset({"error", "failed"})


class OnceFailed(Exception):
    """The round could not be made; the message says which API failed and how."""


def register_once(subparsers: Any) -> None:
    once = subparsers.add_parser(
        "once",
        help="one reconcile round, then exit: print the plan as JSON (--dry-run: write nothing)",
        description="LIST pods, nodes, RayClusters and node pools, decide as the running agent "
        "would, apply the plan under the pool Leases (not with --dry-run) and print a JSON "
        "summary on stdout; log lines go to stderr. It takes the settings `run` takes: flags, "
        "env vars, --sim-info FILE (a `sim serve`) and --config FILE.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(once)
    once.set_defaults(func=once_command)


def once_command(args: argparse.Namespace) -> int:
    try:
        config = configured(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_CONFIG
    from agent.app.logs import configure_logging

    configure_logging(fmt=config.log_format, level=config.log_level)
    try:
        summary = asyncio.run(_reconcile(own_identity(config)))
    except (PoolsRefused, ConfigError) as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return BAD_CONFIG
    except OnceFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return FAILED
    print(json.dumps(summary, indent=2))
    if summary["errors"]:
        for problem in summary["errors"]:
            print(f"error: [{problem['source']}] {problem['message']}", file=sys.stderr)
        return FAILED
    return OK


def own_identity(config: AgentConfig) -> AgentConfig:
    """A Lease holder identity for this process alone: the host name is the default of `run`,
    which two `once` on one host (or one in the agent's pod) would share, and a holder whose
    identity matches takes a Lease over as its own."""
    if config.pool_lock_identity:
        return config
    from agent.actuate.pool_lock import default_identity

    return replace(config, pool_lock_identity=f"{default_identity()}-once-{os.getpid()}")


async def _reconcile(config: AgentConfig) -> dict[str, Any]:
    from agent.app.wiring import connect_agent

    try:
        async with connect_agent(config) as agent:
            return await reconcile_once(agent)
    except (KubeError, KubeUnreachable) as error:
        where = config.api_url or config.kubeconfig or "the kubeconfig's cluster"
        raise OnceFailed(f"Kubernetes API ({where}): {error}") from None
    except RuntimeError as error:  # wiring's message about missing AccessKey variables
        raise ConfigError(str(error)) from None


async def reconcile_once(agent: Agent) -> dict[str, Any]:
    """The loop's start-up checks, one LIST of each stream, one scale-out and one scale-in round,
    the pod Events written; the summary of what the rounds decided and did."""
    await agent.check_pools()
    await agent.check_rayclusters()
    try:
        await agent.list_once()
        started = time.monotonic()
        batch = Batch(frozenset(agent.view.pending), "once", started, started)
        record = await agent.scale_out_round(batch)
        scale_in = await agent.scale_in_round()
    finally:
        await agent.close()
    return summary(agent, record, scale_in)


def summary(agent: Agent, record: RoundRecord, scale_in: ScaleInRecord | None) -> dict[str, Any]:
    """The JSON `once` prints: the scale-out plan (actions with pods by name, covered,
    unplaceable) and what applying it did or would do, the scale-in round, the errors."""
    from agent.actuate.actuation import follow_up_reason

    names = {p.uid: f"{p.namespace}/{p.name}" for p in agent.view.pending.values()}
    names.update((p.uid, f"{p.namespace}/{p.name}") for p in agent.anticipated())
    plan = agent.last_plan
    scale_out: dict[str, Any] = {
        "outcome": record.outcome,
        "pendingPods": record.pods,
        "anticipatedWorkers": record.anticipated,
        "decisionId": record.decision_id,
        "error": record.error,
    }
    if plan is not None:
        reply = plan.reply
        scale_out.update(
            actions=[_action(action, names) for action in reply.get("actions") or ()],
            covered=[
                {"pod": names.get(str(c.get("pod")), str(c.get("pod"))), "poolId": c.get("poolId")}
                for c in reply.get("covered") or ()
            ],
            unplaceable=[
                {"pod": names.get(str(u.get("pod")), str(u.get("pod"))), "reason": u.get("reason")}
                for u in reply.get("unplaceable") or ()
            ],
            applied=plan.result.to_json(),
            followUp=follow_up_reason(plan.result) or None,
        )
    # A failed scale-out round records its error with the agent; a scale-in round only in its
    # record.
    errors = list(agent.errors)
    if scale_in is not None and scale_in.outcome in FAILED_OUTCOMES:
        errors.append({"source": "scale-in", "message": str(scale_in.error)})
    return {
        "cluster": agent.config.cluster_id,
        "region": agent.config.region,
        "dryRun": agent.config.dry_run,
        "pools": [
            {"id": p.pool_id, "desired": p.desired, "min": p.min_size, "max": p.max_size}
            for p in agent.pool_infos
        ],
        "scaleOut": scale_out,
        "scaleIn": None if scale_in is None else _scale_in(scale_in),
        "errors": errors,
    }


def _action(action: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    shown: dict[str, Any] = {"kind": action.get("kind")}
    if action.get("kind") == "scale-pool":
        shown.update(
            poolId=action.get("poolId"),
            fromDesired=action.get("fromDesired"),
            toDesired=action.get("toDesired"),
        )
    pods = [str(uid) for uid in action.get("pods") or ()]
    shown.update(pods=[names.get(uid, uid) for uid in pods], reason=action.get("reason", ""))
    return shown


def _scale_in(record: ScaleInRecord) -> dict[str, Any]:
    return {
        "outcome": record.outcome,
        "decisionId": record.decision_id,
        "removed": list(record.removed),  # in dry-run: the nodes that would be removed
        "kept": list(record.kept),
        "error": record.error,
    }

"""The closing words of a dev-mode run, from its `--json` summary: the verdict and the lines that
follow the live view, or the single line `--quiet` prints instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VERDICTS = {
    "rest": ("done", "done: the workload finished and the cluster is at rest"),
    "time-limit": (
        "time limit",
        "time limit: the run did not finish within {limit:g} simulated seconds",
    ),
    "interrupted": ("interrupted", "interrupted: stopped before the run finished"),
    "agent-stopped": ("agent stopped", "the agent stopped by itself before the run finished"),
}
KIND_WORDS = {"scaleOut": "scale-out", "followUp": "follow-up", "scaleIn": "scale-in"}
FAULT_WORDS = {
    "cs_throttled": "CS throttled",
    "cs_5xx": "CS 5xx",
    "fc_errors": "FC errors",
    "fc_timeouts": "FC timeouts",
    "watch_cuts": "watch cuts",
    "history_compactions": "history compactions",
    "gone_410": "410 Expired",
}


def verdict(ending: str, *, time_limit: float) -> str:
    return VERDICTS[ending][1].format(limit=time_limit)


def closing_lines(summary: Mapping[str, Any], *, tasks: str) -> list[str]:
    """`tasks`: the Ray job's line ("15/15 tasks done, 0 failed")."""
    ran = f"worker pods {summary['running']}/{summary['pods']} reached Running"
    if summary["timeToAllRunningSeconds"] is not None:
        ran += f" in {summary['timeToAllRunningSeconds']:g} s"
    transient = summary.get("unplaceableTransient", 0)
    unplaceable = f"unplaceable at the end {summary['unplaceable']}" + (
        f" ({transient} more only for a while)" if transient else ""
    )
    if summary.get("agent", True):
        decided = (
            f"decisions {summary['decisions']} ({_kinds(summary)}), scale writes "
            f"{summary['scaleWrites']}, CS writes by the agent {summary.get('agentCsWrites', 0)}, "
            f"errors {summary['errors']}{_codes(summary)}"
        )
    elif summary.get("agentless"):
        calls = summary["agentless"]
        decided = (
            f"agentless: no agent process; the reconcile function ran {_invocations(calls)}, "
            f"decisions {summary['decisions']} ({_kinds(summary)}), scale writes "
            f"{summary['scaleWrites']}, errors {summary['errors']}{_codes(summary)}"
        )
    else:
        decided = "no agent (--no-agent): no decision, no CS write"
    return [
        f"Ray job: {tasks}; {ran}",
        f"nodes: +{summary['nodesAdded']} -{summary['nodesRemoved']}, ECI pods "
        f"{summary['eciPods']}, {unplaceable}",
        decided,
        *_ack_autoscaler(summary),
        *_first_node(summary),
        *_reaction(summary),
        *_stuck_pools(summary),
        *_faults(summary),
    ]


def _reaction(summary: Mapping[str, Any]) -> list[str]:
    if not summary.get("agent", True):
        return []  # nobody to react
    reaction = summary["reactionMs"]
    return [
        f"reaction per pod (Unschedulable to the write serving it): p50 {_ms(reaction['p50'])}, "
        f"p99 {_ms(reaction['p99'])} over {reaction.get('pods', 0)} pods"
    ]


def _ack_autoscaler(summary: Mapping[str, Any]) -> list[str]:
    """What ACK's own autoscaler did, when it did anything: `ACK autoscaler: np-x 0→3 (...)`."""
    changes = (summary.get("ackAutoscaler") or {}).get("changes") or []
    return [f"ACK autoscaler: {'; '.join(changes)}"] if changes else []


def _first_node(summary: Mapping[str, Any]) -> list[str]:
    seconds = summary.get("firstNodeRequestedSeconds")
    if seconds is None:
        return []
    return [f"first node requested {seconds:g} s after Ray asked for workers"]


def one_line(summary: Mapping[str, Any], *, ending: str, tasks_done: str, cost: float) -> str:
    """`done: 15/15 tasks, 15/15 workers Running, nodes +5 -5, ECI 0, unplaceable 0, decisions
    5, errors 0, 0.52 CNY`"""
    return (
        f"{VERDICTS[ending][0]}: {tasks_done} tasks, {summary['running']}/{summary['pods']} "
        f"workers Running, nodes +{summary['nodesAdded']} -{summary['nodesRemoved']}, ECI "
        f"{summary['eciPods']}, unplaceable {summary['unplaceable']}, decisions "
        f"{summary['decisions']}, errors {summary['errors']}{_codes(summary)}, {cost:.2f} CNY"
    )


def _stuck_pools(summary: Mapping[str, Any]) -> list[str]:
    """A pool still asking for more nodes than it has at the end (a target the cloud never met
    and nobody gave back)."""
    return [
        f"pool {pool} still wants {sizes['desired']} nodes and has {sizes['nodes']}"
        for pool, sizes in (summary.get("poolsAtEnd") or {}).items()
        if sizes["desired"] > sizes["nodes"]
    ]


def _faults(summary: Mapping[str, Any]) -> list[str]:
    """What the fault layer injected and the agent met, when it injected anything."""
    faults = summary.get("faults") or {}
    injected = {k: n for k, n in (faults.get("injected") or {}).items() if n}
    if not injected:
        return []
    seen = {k: n for k, n in (faults.get("seenByAgent") or {}).items() if n}
    survived = "survived" if faults.get("survived") else "not survived"
    return [
        f"faults injected: {_counted(injected)}; met by the agent: {_counted(seen) or 'none'}; "
        f"{survived}"
    ]


def _counted(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{FAULT_WORDS.get(kind, kind)} {n}" for kind, n in counts.items())


def _kinds(summary: Mapping[str, Any]) -> str:
    kinds = summary.get("decisionsByKind") or {}
    return ", ".join(f"{n} {KIND_WORDS.get(k, k)}" for k, n in kinds.items())


def _codes(summary: Mapping[str, Any]) -> str:
    codes = summary.get("errorsByCode") or {}
    return f" ({', '.join(f'{code} {n}' for code, n in codes.items())})" if codes else ""


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} ms"


def _invocations(calls: Mapping[str, Any]) -> str:
    """`53 times (40 event, 13 timer), 1 cold start, 0 failed, 29.1 s billed`."""
    by_kind = calls.get("invocations") or {}
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items()))
    return (
        f"{sum(by_kind.values())} times ({kinds or 'none'}), {calls.get('coldStarts', 0)} cold "
        f"start(s), {calls.get('failed', 0)} failed, {calls.get('secondsBilled', 0):g} s billed"
    )

"""Scale-in's memory for a function that has none: since when each node has been unneeded, kept
on the node itself, and when each pool last grew, read off its nodes.

The agent keeps its unneeded timers in memory (agent/scale_in/tracking.py) and a fresh process
starts them at zero. A reconcile function is a fresh process on every wake-up, so with in-memory
timers it would never see a node unneeded for `scaleDownUnneededSeconds` and never scale in.
The timers therefore live on the node as two annotations, written by the Timer-triggered round
whenever a timer starts or is cleared:
- before the round, each annotated start moves the tracker's timer back (`resume`), but only for
  a node the round's own LIST finds in that state still — a busy node has no timer to move;
- after it, each node's annotations are made to match the tracker (set, moved, or removed).
The timer samples the node once per tick (a minute by default): pods that came and went between
two ticks are not seen, so the node counts as unneeded across them. That is the price of having
no watch; the decision still re-checks each node's pods right before removing it.

The cool-down after a scale-up (`lastScaleUpAt`) needs the last raise, which no process
remembers either. The newest node of a pool was created after the raise that asked for it, so
its creation time is used: never earlier than the raise, so the cool-down is never shorter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from agent.app.loop import Agent
from agent.clients.kube import KubeError, KubeUnreachable
from agent.ingest.node_pods import epoch_or_none
from agent.scale_in.tracking import rfc3339

log = logging.getLogger(__name__)

EMPTY_SINCE = "ray-ack-scaler/empty-since"
UNDERUTILIZED_SINCE = "ray-ack-scaler/underutilized-since"


def _annotations(node: Mapping[str, Any]) -> Mapping[str, Any]:
    return (node.get("metadata") or {}).get("annotations") or {}


async def _nodes(agent: Agent) -> dict[str, dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        page = await agent.kube.list_page(
            "nodes", limit=agent.config.list_page_size, continue_token=token
        )
        for node in page.get("items") or ():
            nodes[str(node["metadata"]["name"])] = node
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return nodes


async def resume_timers(agent: Agent) -> dict[str, dict[str, Any]]:
    """Move the round's timers back to the starts the nodes carry, and the pools' last raise to
    their newest node; the nodes as listed, for `save_timers`."""
    rounds = agent.scale_in
    if rounds is None:
        return {}
    nodes = await _nodes(agent)
    for name, node in nodes.items():
        marks = _annotations(node)
        rounds.tracker.resume(
            name,
            empty_since=epoch_or_none(str(marks.get(EMPTY_SINCE) or "")),
            underutilized_since=epoch_or_none(str(marks.get(UNDERUTILIZED_SINCE) or "")),
        )
    for state in agent.view.nodes.values():
        fact = agent.view.node_pods.facts.get(state.name)
        if state.pool_id and fact is not None and fact.created_at is not None:
            rounds.scale_ups.raised(state.pool_id, at=fact.created_at)
    return nodes


async def save_timers(agent: Agent, listed: Mapping[str, Mapping[str, Any]]) -> int:
    """Write each node's timers where they differ from its annotations; the nodes patched. A
    node that is gone, or a refused patch, is left for the next tick."""
    rounds = agent.scale_in
    if rounds is None or agent.config.dry_run:
        return 0
    patched = 0
    for name, node in listed.items():
        if name not in agent.view.nodes or agent.view.nodes[name].virtual:
            continue
        wanted = {
            EMPTY_SINCE: rounds.tracker.empty_since(name),
            UNDERUTILIZED_SINCE: rounds.tracker.underutilized_since(name),
        }
        marks = _annotations(node)
        change = {
            key: None if since is None else rfc3339(since)
            for key, since in wanted.items()
            if (None if since is None else rfc3339(since)) != marks.get(key)
        }
        if not change:
            continue
        try:
            # A merge patch of these two keys alone: no precondition needed, whoever else
            # annotates the node keeps their keys.
            await agent.kube.patch_node(name, {"metadata": {"annotations": change}})
        except KubeError as error:
            if error.status != 404:  # a 404: the node was removed (by this round), nothing to keep
                log.warning("unneeded timers not saved", extra={"node": name, "error": str(error)})
            continue
        except KubeUnreachable as error:
            log.warning("unneeded timers not saved", extra={"node": name, "error": str(error)})
            continue
        patched += 1
    return patched

"""The reconcile function: one `once` round for one cluster per invocation, on Function Compute.

`Reconciler.handle(event, context)` is an FC event handler (the code package's
`index.reconcile`). It reads what woke it (agent/agentless/triggers.py):
- an EventBridge pod event: a Ray worker that failed to schedule → one scale-out round; an event
  about anything else returns at once, before any API is called;
- a Timer tick → one scale-out round (for the events EventBridge dropped or the function missed)
  and one scale-in round, its unneeded timers kept on the nodes (agent/agentless/unneeded_marks.py).
The configuration is the agent's, from the function's environment variables
(RAY_ACK_SCALER_*, agent/app/settings.py). CS calls are signed with the STS token FC hands the
function for its role (`context.credentials`); the API server is reached with a kubeconfig from
DescribeClusterUserKubeconfig, cached by the instance (agent/agentless/kubeconfig_cache.py).
Before deciding, pending pods that fit a Ready node's free room are left to the scheduler
(`leave_out_what_fits`). An exception (an API unreachable, a setting missing) is left to FC's
runtime: an unhandled error, which FC retries for asynchronous invocations.

Invocations share nothing but that cache: two at once (an event and a tick, or two events) take
turns on a pool through its Lease under identities of their own (the FC request id), and every
pool write is an absolute desired size re-read under the Lease — the second finds the pool
already raised and writes nothing. The reply is the `once` JSON plus `trigger`, `ran` and
`reason`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from agent.agentless.kubeconfig_cache import KubeconfigCache
from agent.agentless.triggers import PodEvent, TimerTick, Unknown, read_trigger, why_not
from agent.agentless.unneeded_marks import resume_timers, save_timers
from agent.app.config import load_config
from agent.app.loop import Agent
from agent.app.once import summary
from agent.app.settings import AgentConfig
from agent.clients.cs import NodePoolClient, build_sdk_client, sts_credential
from agent.ingest.batching import Batch
from agent.ingest.free_room import beyond_free_room

EVENT, TIMER = "eventbridge", "timer"


def _endpoint(text: str) -> tuple[str, str]:
    for scheme in ("http", "https"):
        if text.startswith(f"{scheme}://"):
            return text[len(scheme) + 3 :].rstrip("/"), scheme
    return text, "https"


class Reconciler:
    """One function instance: its configuration, clock and kubeconfig cache."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        now: Callable[[], float] = time.time,
        kubeconfigs: KubeconfigCache | None = None,
    ) -> None:
        """`now` is the clock policy durations are measured on (the simulated one in dev
        mode); `environ` the function's environment variables (default: the process's)."""
        self._environ = environ
        self._now = now
        self.kubeconfigs = kubeconfigs or KubeconfigCache()
        self._config: AgentConfig | None = None

    def config(self) -> AgentConfig:
        if self._config is None:
            self._config = load_config(
                None, environ=dict(os.environ) if self._environ is None else self._environ
            )
        return self._config

    def handle(self, event: bytes, context: Any) -> bytes:
        """The FC handler: the reply as JSON bytes."""
        return json.dumps(self.reconcile(event, context)).encode()

    def reconcile(self, event: bytes, context: Any) -> dict[str, Any]:
        trigger = read_trigger(event)
        if isinstance(trigger, Unknown):
            return {"trigger": None, "ran": False, "reason": trigger.why}
        config = self.config()
        if isinstance(trigger, PodEvent):
            reason = why_not(trigger, config)
            if reason is not None:
                return {"trigger": EVENT, "ran": False, "reason": reason}
        kind = TIMER if isinstance(trigger, TimerTick) else EVENT
        result = asyncio.run(self._round(config, context, scale_in=kind == TIMER))
        return {"trigger": kind, "ran": True, "reason": "", **result}

    async def _round(self, config: AgentConfig, context: Any, *, scale_in: bool) -> dict[str, Any]:
        from agent.app.wiring import connect_agent

        creds = context.credentials
        credential = sts_credential(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=creds.security_token,
        )
        endpoint, protocol = _endpoint(config.cs_endpoint_or_default)
        cs = NodePoolClient(
            build_sdk_client(
                region_id=config.region,
                endpoint=endpoint,
                protocol=protocol,
                credential=credential,
            ),
            config.cluster_id,
        )
        path = await self.kubeconfigs.path(cs)
        config = replace(
            config,
            kubeconfig=path,
            kube_context=None,
            in_cluster=False,
            api_url=None,
            scale_in_enabled=config.scale_in_enabled and scale_in,
            pool_lock_identity=config.pool_lock_identity or f"reconcile-{context.request_id}",
        )
        async with connect_agent(config, now=self._now, cs_credential=credential) as agent:
            return await reconcile_round(agent, scale_in=scale_in)


async def reconcile_round(agent: Agent, *, scale_in: bool) -> dict[str, Any]:
    """One invocation's round on a wired agent: the start-up checks, one LIST of each stream
    (`Agent.list_once`), the pending pods that fit a Ready node left out, a scale-out round and,
    on a Timer tick, a scale-in round with its unneeded timers kept on the nodes."""
    await agent.check_pools()
    await agent.check_rayclusters()
    try:
        await agent.list_once()
        fitting = leave_out_what_fits(agent)
        listed = await resume_timers(agent) if scale_in else {}
        started = time.monotonic()
        batch = Batch(frozenset(agent.view.pending), "pods", started, started)
        record = await agent.scale_out_round(batch)
        scale_in_record = await agent.scale_in_round()
        saved = await save_timers(agent, listed)
    finally:
        await agent.close()
    return {
        **summary(agent, record, scale_in_record),
        "pendingThatFitRunningNodes": fitting,
        "timersSaved": saved,
    }


def leave_out_what_fits(agent: Agent) -> int:
    """Take out of the round the pending pods that fit a running node's free room; how many.

    A pod stays Unschedulable from the scheduler's last attempt until its next one, and the
    function is woken precisely then: when nodes join, the scheduler retries its unschedulable
    pods, fails them on the still-NotReady nodes and records FailedScheduling again, and those
    Events arrive as the nodes turn Ready. A round that counted such pods as wanting capacity
    raised the pool for pods the scheduler was about to bind (seed: 5 → 6 or 7 nodes). The agent
    rarely decides in that window (its rounds follow its watches); the function decides in it
    often. So, as cluster-autoscaler filters out pods that fit existing nodes before a scale-up,
    pending pods that fit a Ready node's free room (agent/ingest/free_room.py, the test the
    anticipated workers get) are left to the scheduler."""
    pending = list(agent.view.pending.values())
    beyond = {
        p.uid
        for p in beyond_free_room(pending, list(agent.view.nodes.values()), agent.view.node_pods)
    }
    fitting = [p.uid for p in pending if p.uid not in beyond]
    for uid in fitting:
        del agent.view.pending[uid]
    return len(fitting)


_default: Reconciler | None = None


def handler(event: bytes, context: Any) -> bytes:
    """`index.reconcile` on Function Compute: one Reconciler per instance, kept while warm."""
    global _default
    if _default is None:
        _default = Reconciler()
    return _default.handle(event, context)

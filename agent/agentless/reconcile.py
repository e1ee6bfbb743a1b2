"""The reconcile function: one `once` round for one cluster per invocation, on Function Compute.

`Reconciler.handle(event, context)` is an FC event handler (the code package's
`index.reconcile`). It reads what woke it (agent/agentless/triggers.py):
- an EventBridge pod event: a Ray worker that failed to schedule → one scale-out round, unless a
  round that started after the event covers it (its LISTs saw the pod): then one read of that
  round's mark and nothing else (agent/agentless/round_marks.py) — a burst's thousands of events
  cost one round each as long as a round runs, not a round each; an event about anything else
  returns at once, before any API is called;
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
`reason` (an event a round covered: `ran` false, `reason` "covered by the round started at …",
`coveredBy` that round).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from agent.actuate.pool_lock import default_namespace, micro_time
from agent.agentless.kubeconfig_cache import KubeconfigCache
from agent.agentless.round_marks import LastRound, RoundMarks
from agent.agentless.triggers import PodEvent, TimerTick, Unknown, read_trigger, why_not
from agent.agentless.unneeded_marks import resume_timers, save_timers
from agent.app.config import load_config
from agent.app.loop import Agent
from agent.app.once import summary
from agent.app.settings import AgentConfig
from agent.clients.cs import NodePoolClient, build_sdk_client, sts_credential
from agent.clients.kube import KubeClient
from agent.ingest.batching import Batch
from agent.ingest.free_room import beyond_free_room

EVENT, TIMER = "eventbridge", "timer"
DEFAULT_TIMEOUT_SECONDS = 120.0  # template.yml's Timeout, when the context does not say


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
        # what this instance's invocations came to: full rounds, events an earlier round
        # covered, events turned away unread (counted for dev mode's summary)
        self.outcomes = {"rounds": 0, "covered": 0, "turnedAway": 0}
        self._counting = threading.Lock()  # FC runs an instance's invocations in threads

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
                self._count("turnedAway")
                return {"trigger": EVENT, "ran": False, "reason": reason}
        kind = TIMER if isinstance(trigger, TimerTick) else EVENT
        reply = asyncio.run(self._invocation(config, context, trigger))
        self._count("rounds" if reply["ran"] else "covered")
        return {"trigger": kind, **reply}

    def _count(self, outcome: str) -> None:
        with self._counting:
            self.outcomes[outcome] += 1

    async def _invocation(
        self, config: AgentConfig, context: Any, trigger: PodEvent | TimerTick
    ) -> dict[str, Any]:
        """One read of the last round's mark when an event may be covered; else a round, its
        start marked before its LISTs (agent/agentless/round_marks.py)."""
        credential = _credential(context)
        path = await self.kubeconfigs.path(_cs_client(config, credential))
        identity = config.pool_lock_identity or f"reconcile-{context.request_id}"
        kube = await KubeClient.connect(kubeconfig=path)
        try:
            marks = RoundMarks(
                kube,
                namespace=config.pool_lock_namespace or default_namespace(),
                now=self._now,
            )
            occurred_at = trigger.occurred_at if isinstance(trigger, PodEvent) else None
            if occurred_at is not None:
                last = await marks.last()  # the cheap read: most of a burst ends here
                if last.covers(occurred_at, now=self._now()):
                    return _covered(last)
            claimed = await marks.claim(
                identity, max_seconds=_timeout_of(context), occurred_at=occurred_at
            )
            if isinstance(claimed, LastRound):
                return _covered(claimed)
            try:
                result = await self._round(
                    config, credential, path, identity, scale_in=isinstance(trigger, TimerTick)
                )
            except Exception:
                await marks.unwind(claimed)
                raise
            await marks.finish(claimed)
            return {"ran": True, "reason": "", **result}
        finally:
            await kube.close()

    async def _round(
        self, config: AgentConfig, credential: Any, path: str, identity: str, *, scale_in: bool
    ) -> dict[str, Any]:
        from agent.app.wiring import connect_agent

        config = replace(
            config,
            kubeconfig=path,
            kube_context=None,
            in_cluster=False,
            api_url=None,
            scale_in_enabled=config.scale_in_enabled and scale_in,
            pool_lock_identity=identity,
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


def _credential(context: Any) -> Any:
    """The STS token FC hands the function for its role, as a credentials client."""
    creds = context.credentials
    return sts_credential(
        access_key_id=creds.access_key_id,
        access_key_secret=creds.access_key_secret,
        security_token=creds.security_token,
    )


def _cs_client(config: AgentConfig, credential: Any) -> NodePoolClient:
    endpoint, protocol = _endpoint(config.cs_endpoint_or_default)
    return NodePoolClient(
        build_sdk_client(
            region_id=config.region, endpoint=endpoint, protocol=protocol, credential=credential
        ),
        config.cluster_id,
    )


def _timeout_of(context: Any) -> float:
    """The function's timeout (FC's context carries it): the longest a round may run."""
    timeout = getattr(getattr(context, "function", None), "timeout", None)
    return float(timeout) if timeout else DEFAULT_TIMEOUT_SECONDS


def _covered(last: LastRound) -> dict[str, Any]:
    started = micro_time(last.started_at or 0.0)
    return {
        "ran": False,
        "reason": f"covered by the round started at {started}",
        "coveredBy": last.holder,
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

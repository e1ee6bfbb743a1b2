"""The production wiring: an `Agent` (agent.app.loop) built from an AgentConfig, with its clients
(Kubernetes, CS node pools, the configured decider, actuation under the pool Lease), closed on exit."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from agent.app.loop import Agent, Decides
from agent.app.settings import AgentConfig
from agent.clients.kube import KubeClient
from agent.metrics import AgentMetrics
from agent.scale_in.actuation import ScaleInActuator


def _endpoint(text: str) -> tuple[str, str]:
    """`http://127.0.0.1:9000` → ("127.0.0.1:9000", "http"); a bare host means https."""
    for scheme in ("http", "https"):
        prefix = f"{scheme}://"
        if text.startswith(prefix):
            return text[len(prefix) :].rstrip("/"), scheme
    return text, "https"


def _access_keys(config: AgentConfig) -> dict[str, str]:
    if config.credentials != "access-key":
        return {}
    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not key_id or not secret:
        raise RuntimeError(
            "credentials=access-key needs ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment"
        )
    return {"access_key_id": key_id, "access_key_secret": secret}


@contextlib.asynccontextmanager
async def connect_agent(
    config: AgentConfig,
    *,
    metrics: AgentMetrics | None = None,
    now: Callable[[], float] = time.time,
    cs_credential: Any = None,
) -> Any:
    """The production wiring of an Agent from its configuration; closes every client on exit.
    `now` is the clock policy durations are measured on: the wall clock in production, the
    simulated clock in dev mode. `cs_credential` (an alibabacloud_credentials client) signs the
    CS calls instead of the configured credentials: the reconcile function's role
    (agent/agentless)."""
    from agent.actuate.actuation import Actuator
    from agent.app.remote_deciders import fc_decider, http_decider, watch_credentials
    from agent.clients.cs import NodePoolClient
    from agent.clients.cs import build_sdk_client as build_cs
    from agent.decide.deciders import FallbackDecider, LocalDecider, RetrySettings

    keys = _access_keys(config)
    metrics = metrics or AgentMetrics()
    kube = await KubeClient.connect(
        kubeconfig=config.kubeconfig,
        context=config.kube_context,
        in_cluster=config.in_cluster,
        api_url=config.api_url,
    )
    session: aiohttp.ClientSession | None = None
    try:
        endpoint, protocol = _endpoint(config.cs_endpoint_or_default)
        cs_sdk = build_cs(
            region_id=config.region,
            endpoint=endpoint,
            protocol=protocol,
            access_key_id=None if cs_credential else keys.get("access_key_id"),
            access_key_secret=None if cs_credential else keys.get("access_key_secret"),
            credential=cs_credential,
        )
        pools = NodePoolClient(
            cs_sdk,
            config.cluster_id,
            on_attempt=metrics.cs_attempt,
            bounds=config.pool_bounds,
            allow_ack_autoscaled=config.allow_ack_autoscaled_pools,
        )
        retry = RetrySettings(attempts=config.decider_retries + 1)
        decider: Decides
        if config.decider == "fc":
            fc_endpoint, fc_protocol = _endpoint(config.fc_endpoint or "")
            decider = fc_decider(
                config, keys, endpoint=fc_endpoint, protocol=fc_protocol, retry=retry
            )
        elif config.decider == "http":
            session = aiohttp.ClientSession()
            decider = http_decider(config, keys, session, retry=retry)
        else:
            decider = LocalDecider()
        if config.decider != "local" and config.fallback_to_local:
            breaker = FallbackDecider(decider, LocalDecider())
            metrics.expose_counts(
                "decider_events",
                "Remote decider circuit breaker events",
                label="event",
                counts=lambda: breaker.counters,
            )
            decider = breaker
        if config.decider != "local":
            # Credentials refused (401/403) are a configuration error: loud, an Event, /readyz.
            decider = watch_credentials(decider, config, events=kube, now=now)
        lock = None
        if config.pool_lock_enabled:
            from agent.actuate.pool_lock import (
                LockSettings,
                PoolLock,
                default_identity,
                default_namespace,
            )

            lock = PoolLock(
                kube,
                LockSettings(
                    namespace=config.pool_lock_namespace or default_namespace(),
                    identity=config.pool_lock_identity or default_identity(),
                ),
                now=now,
            )
        actuator = Actuator(pools, kube, lock=lock, now=now)
        metrics.expose_counts(
            "actuation",
            "Actuation outcomes (pool writes, ECI placements...)",
            label="outcome",
            counts=lambda: actuator.counters,
        )
        events = actuator.events
        metrics.expose_counts(
            "pod_events",
            "Pod Events handed to the event sink, by what became of them (created, patched, "
            "coalesced, unchanged, dropped, failed)",
            label="outcome",
            counts=lambda: events.counters,
        )
        yield Agent(
            config,
            kube=kube,
            pools=pools,
            decider=decider,
            actuator=actuator,
            metrics=metrics,
            now=now,
            scale_in=ScaleInActuator(pools, kube, lock=lock, identity=config.pool_lock_identity),
        )
    finally:
        if session is not None:
            await session.close()
        await kube.close()

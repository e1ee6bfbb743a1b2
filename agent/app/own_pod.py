"""The agent's own Pod as the involvedObject of the Events it writes about itself (a decider that
refuses its credentials, the companion pools it leaves to ACK): its name and namespace are the
pool Lease's holder identity and namespace — the pod name (hostname) and the service account's
namespace, unless configured."""

from __future__ import annotations

from typing import Any

from agent.actuate.pool_lock import default_identity, default_namespace
from agent.app.settings import AgentConfig


def agent_pod(config: AgentConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "namespace": config.pool_lock_namespace or default_namespace(),
        "name": config.pool_lock_identity or default_identity(),
    }

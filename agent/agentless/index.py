"""The reconcile code package's root `index.py` (`make reconcile-package` copies this file there):
Function Compute's handler `index.reconcile`, one Reconciler per warm instance."""

from __future__ import annotations

from agent.agentless.reconcile import handler as reconcile

__all__ = ["reconcile"]

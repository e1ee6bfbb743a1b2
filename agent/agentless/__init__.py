"""Agentless mode: the reconcile function on Function Compute, woken by EventBridge (a worker
pod failed to schedule) and by a Timer (scale-in, and the events it missed), running one
`once` round per invocation (agent/app/once.py) — no agent process in the cluster."""

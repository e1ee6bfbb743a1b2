"""The agent's outside clients, one module each: Kubernetes (kube), ACK CS node pools (cs),
Function Compute (fc), and their shared error shape (errors)."""

"""ray-ack-scaler's agent: watch Kubernetes, batch, decide, actuate."""

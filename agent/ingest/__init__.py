"""From watch events to a snapshot: raw-dict LIST+WATCH (watching), the raw object types and
interning (raw), the cluster view fold (view, node_pods) and the batch window (batching)."""

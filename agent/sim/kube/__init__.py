"""The embedded Kubernetes API server: store, handlers, watch streams, list pages, patches,
selectors, write rules, tables, discovery and kubeconfig."""

"""The simulated world behind the API: scheduler, kubelet, node pools, the Node objects they share,
the ECI virtual node, the Ray driver, the clock and its tasks, the instance catalog."""

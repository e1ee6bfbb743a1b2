"""The embedded ACK: a simulated Kubernetes API, node pools, ECI and cloud API emulators."""

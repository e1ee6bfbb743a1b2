"""Test support for the cloud side: the CS and FC emulators served with test keys, the SDK wire
helpers, in-memory pools, cloud doubles for the agent, and FC event builders."""

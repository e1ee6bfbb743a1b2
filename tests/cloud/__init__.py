"""Tests of the cloud API emulators (CS, Function Compute) driven by the real Alibaba Cloud SDKs."""

"""`kubectl get nodes -w` against the API server alone: a node registering NotReady turns
Ready on the same printed row layout, as on ACK."""

from __future__ import annotations

import asyncio
import contextlib

from agent.sim.kube.kubeconfig import write_kubeconfig

NODE = "cn-hangzhou.172.16.0.18"


def set_ready(node: dict, ready: bool) -> None:
    node.setdefault("status", {})["conditions"] = [
        {"type": "Ready", "status": "True" if ready else "False"}
    ]


async def test_node_watch_prints_not_ready_then_ready(api_server, tmp_path, clean_env):
    """The watch prints the header once, the node NotReady, then the same node Ready."""
    store = api_server.store
    node = {
        "metadata": {"name": NODE},
        "status": {"nodeInfo": {"kubeletVersion": "v1.31.1-aliyun.1"}},
    }
    set_ready(node, False)
    store.create("nodes", node)
    kubeconfig = write_kubeconfig(api_server.url, tmp_path / "kubeconfig")
    process = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
        "get", "nodes", "-w",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[list[str]] = []

    async def read(count: int) -> None:
        while len(lines) < count:
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError(f"kubectl ended early: {lines}")
            lines.append(raw.decode().split())

    try:
        await asyncio.wait_for(read(2), 20)
        store.mutate("nodes", NODE, lambda obj: set_ready(obj, True))
        await asyncio.wait_for(read(3), 20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    assert lines[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [row[:3] for row in lines[1:]] == [
        [NODE, "NotReady", "<none>"],
        [NODE, "Ready", "<none>"],
    ]
    assert lines[2][4] == "v1.31.1-aliyun.1"

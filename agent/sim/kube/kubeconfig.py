"""Kubeconfig files for the simulated cluster, so kubectl and kubernetes-asyncio can point at it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT_NAME = "ray-ack-sim"


def kubeconfig(url: str, *, name: str = CONTEXT_NAME, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig for a plain-HTTP API server that asks for no credentials."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    url: str, path: str | os.PathLike[str], *, name: str = CONTEXT_NAME, namespace: str = "default"
) -> Path:
    """Write the kubeconfig to `path` (parents created, readable by the owner only)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(url, name=name, namespace=namespace), sort_keys=False)
    # written whole then renamed, so a reader polling for the file never sees half of it
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(target)
    return target

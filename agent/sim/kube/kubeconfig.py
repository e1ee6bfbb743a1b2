"""Kubeconfig files for the simulated cluster, so kubectl and kubernetes-asyncio can point at it.

Over plain http the user has no credentials. Over https (`sim serve --tls`) the cluster entry
carries the CA as `certificate-authority-data` (base64 PEM) and the user the bearer `token`:
the kubeconfig fields of https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT_NAME = "ray-ack-sim"


def kubeconfig(
    url: str,
    *,
    name: str = CONTEXT_NAME,
    namespace: str = "default",
    ca_pem: bytes | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig for the API server at `url`: trusting `ca_pem` and sending `token` when
    given (https), no credentials otherwise (plain http)."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    user: dict[str, Any] = {} if token is None else {"token": token}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    url: str,
    path: str | os.PathLike[str],
    *,
    name: str = CONTEXT_NAME,
    namespace: str = "default",
    ca_pem: bytes | None = None,
    token: str | None = None,
) -> Path:
    """Write the kubeconfig to `path` (parents created, readable by the owner only)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    config = kubeconfig(url, name=name, namespace=namespace, ca_pem=ca_pem, token=token)
    text = yaml.safe_dump(config, sort_keys=False)
    # written whole then renamed, so a reader polling for the file never sees half of it
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(target)
    return target

"""`--sim-info FILE`: the info JSON `python -m agent sim serve --info-out FILE` writes, read as a
source of settings, so one flag points `agent run` at a running simulated ACK — its kubeconfig,
cluster id and region, the CS and Function Compute emulators (decider fc), the pools it may
manage, whether it has ECI — and `sim_info_keys` gives the test AccessKey the emulators accept.

The file is the simulator's published interface (addresses and keys, the same things an ACK
cluster gives an operator): this module reads its JSON and never imports the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class SimInfoError(ValueError):
    """The info file cannot be read or is not a `sim serve` info JSON."""


def read_sim_info(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except OSError as error:
        raise SimInfoError(f"sim info {path}: {error.strerror}") from None
    except ValueError as error:
        raise SimInfoError(f"sim info {path}: not JSON: {error}") from None
    if not isinstance(info, dict) or not isinstance(info.get("kubernetes"), dict):
        raise SimInfoError(f"sim info {path}: not a `sim serve --info-out` file (no kubernetes)")
    return info


def sim_info_settings(info: Mapping[str, Any]) -> dict[str, Any]:
    """Setting name → value for what the info file says. A bare `sim serve` (no scenario) has
    no CS or FC emulator: only the kubeconfig then."""
    kubernetes = info.get("kubernetes") or {}
    settings: dict[str, Any] = {}
    if kubernetes.get("kubeconfig"):
        settings["kubeconfig"] = kubernetes["kubeconfig"]
    cs, fc, eci = info.get("cs"), info.get("fc"), info.get("eci")
    if isinstance(cs, dict):
        settings.update(
            cluster_id=cs["clusterId"],
            region=cs["regionId"],
            cs_endpoint=_url(cs),
            credentials="access-key",
        )
        if cs.get("managedPools"):
            settings["managed_pools"] = cs["managedPools"]
    if isinstance(fc, dict):
        settings.update(
            decider="fc",
            fc_endpoint=_url(fc),
            fc_function=fc["function"],
            fc_service=fc["service"],
        )
    if isinstance(eci, dict) and "enabled" in eci:
        settings["eci_enabled"] = bool(eci["enabled"])
    return settings


def sim_info_keys(info: Mapping[str, Any]) -> dict[str, str]:
    """The AccessKey the emulators verify signatures with, as the SDKs' environment names it."""
    cs = info.get("cs")
    if not isinstance(cs, dict):
        return {}
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": cs["accessKeyId"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": cs["accessKeySecret"],
    }


def _url(service: Mapping[str, Any]) -> str:
    # files written before `url` existed carry the host:port alone; the emulators speak http
    return str(service.get("url") or f"http://{service['endpoint']}")

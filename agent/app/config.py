"""Loading the agent's configuration: `add_arguments` adds `--config FILE`, `--sim-info FILE` and
one flag per setting of the catalogue (agent/app/settings.py); `load_config` merges flags,
environment variables, a `sim serve` info file (agent/app/sim_info.py) and an optional YAML file
(keys are the setting names, snake_case or kebab-case), with precedence
flag > env > sim info > file > default, into one validated `AgentConfig`. Errors name the setting
and where its bad value came from.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from agent.app.settings import ENV_PREFIX, SETTINGS, SETTINGS_BY_NAME, AgentConfig
from agent.app.sim_info import SimInfoError, read_sim_info, sim_info_settings

# Endpoints the agent reaches without a scheme are taken as HTTPS (Alibaba Cloud's endpoints);
# a loopback or IP address given so is almost surely a local emulator, which speaks plain HTTP.
SCHEME_CHECKED_ENDPOINTS = ("cs_endpoint", "fc_endpoint")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it and its source."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--config FILE` and one flag per setting; defaults stay unset so precedence works."""
    defaults = AgentConfig()
    parser.add_argument(
        "--config",
        metavar="FILE",
        dest="config_file",
        default=None,
        help=f"YAML file of settings (env {ENV_PREFIX}CONFIG)",
    )
    parser.add_argument(
        "--sim-info",
        metavar="FILE",
        dest="sim_info_file",
        default=None,
        help="the info JSON of a running `python -m agent sim serve --info-out FILE`: its "
        "kubeconfig, cluster, CS and FC endpoints (decider fc), managed pools and test AccessKey "
        f"(env {ENV_PREFIX}SIM_INFO)",
    )
    for setting in SETTINGS:
        default = getattr(defaults, setting.name)
        shown = _show(default)
        help_text = f"{setting.help} (env {setting.env}; default {shown})"
        if setting.is_flag:
            parser.add_argument(
                setting.option,
                dest=setting.name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            parser.add_argument(
                setting.option,
                dest=setting.name,
                default=None,
                metavar=setting.metavar,
                help=help_text,
            )


def _show(value: Any) -> str:
    if value in (None, "", ()):
        return "unset" if value is None or value == "" else "all"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def load_config(
    args: argparse.Namespace | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    require_cluster: bool = True,
) -> AgentConfig:
    """Merge the sources (flag > env > file > default) into a validated AgentConfig."""
    env = os.environ if environ is None else environ
    flags = vars(args) if args is not None else {}
    config_file = flags.get("config_file") or env.get(ENV_PREFIX + "CONFIG")
    file_values = _read_file(config_file) if config_file else {}
    sim_info_file = flags.get("sim_info_file") or env.get(ENV_PREFIX + "SIM_INFO")
    try:
        sim_values = sim_info_settings(read_sim_info(sim_info_file)) if sim_info_file else {}
    except SimInfoError as error:
        raise ConfigError(str(error)) from None
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        for source, raw in (
            (f"flag {setting.option}", flags.get(setting.name)),
            (f"env {setting.env}", env.get(setting.env)),
            (f"sim info {sim_info_file}", sim_values.get(setting.name)),
            (f"file {config_file} key {setting.name}", file_values.get(setting.name)),
        ):
            if raw is None:
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except (TypeError, ValueError) as error:
                raise ConfigError(
                    f"{setting.name}: invalid value {raw!r} from {source}: {error}"
                ) from None
            break
    config = AgentConfig(**values)
    _validate(config, require_cluster=require_cluster)
    return config


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping of settings")
    values: dict[str, Any] = {}
    for key, value in loaded.items():
        name = str(key).replace("-", "_")
        if name not in SETTINGS_BY_NAME:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        values[name] = value
    return values


def _fc_requirements(config: AgentConfig) -> tuple[str, ...]:
    """The settings `--decider fc` cannot run without: FC 3.0 addresses a function by name
    alone; FC 2.0 also needs the service that holds it."""
    if config.decider != "fc":
        return ()
    if config.fc_api_version == "2.0":
        return ("fc_endpoint", "fc_service", "fc_function")
    return ("fc_endpoint", "fc_function")


def _validate(config: AgentConfig, *, require_cluster: bool) -> None:
    if require_cluster:
        for name in ("cluster_id", "region"):
            if not getattr(config, name):
                setting = SETTINGS_BY_NAME[name]
                raise ConfigError(f"{name}: required; set {setting.option} or {setting.env}")
    for name in SCHEME_CHECKED_ENDPOINTS:
        _check_scheme(name, getattr(config, name))
    sources = [n for n in ("kubeconfig", "api_url") if getattr(config, n)]
    if config.in_cluster:
        sources.append("in_cluster")
    if len(sources) > 1:
        raise ConfigError(f"{' and '.join(sources)}: choose one way to reach Kubernetes")
    for name in _fc_requirements(config):
        if not getattr(config, name):
            raise ConfigError(
                f"{name}: required with decider=fc (fc_api_version {config.fc_api_version}); "
                f"set {SETTINGS_BY_NAME[name].option} or {SETTINGS_BY_NAME[name].env}"
            )
    if config.decider == "http" and not config.http_url:
        raise ConfigError(
            "http_url: required with decider=http; set --http-url or "
            f"{SETTINGS_BY_NAME['http_url'].env}"
        )
    if config.batch_max_seconds < config.batch_idle_seconds:
        raise ConfigError("batch_max_seconds: must not be shorter than batch_idle_seconds")
    if config.watch_read_timeout_seconds and (
        config.watch_read_timeout_seconds <= config.watch_timeout_seconds
    ):
        raise ConfigError(
            "watch_read_timeout_seconds: must exceed watch_timeout_seconds, or a "
            "quiet but healthy watch would be cut"
        )
    if config.scale_down_utilization_threshold > 1:
        raise ConfigError("scale_down_utilization_threshold: a share of allocatable, at most 1")
    if config.scale_in_enabled and config.scale_in_interval_seconds <= 0:
        raise ConfigError("scale_in_interval_seconds: must be positive")
    if config.list_page_size == 0:
        raise ConfigError("list_page_size: must be at least 1")
    _validate_listeners(config)


def _validate_listeners(config: AgentConfig) -> None:
    """The probe listener is a second socket: it cannot share the ops listener's port."""
    probe = config.probe_host_port
    if probe is not None and probe[1] != 0 and probe[1] == config.ops_host_port[1]:
        raise ConfigError(
            f"probe_address: port {probe[1]} is ops_address's port; give the probe listener "
            "its own port"
        )


def _check_scheme(name: str, endpoint: str | None) -> None:
    """An endpoint the agent would reach over HTTPS though it names this machine or an IP address:
    refused with the fix, instead of failing every call with a TLS error on a plain-HTTP port."""
    if not endpoint:
        return
    if "://" in endpoint:
        if urlsplit(endpoint).scheme not in ("http", "https"):
            raise ConfigError(f"{name}: {endpoint!r}: the scheme must be http:// or https://")
        return
    host = urlsplit(f"//{endpoint}").hostname or ""
    if host == "localhost" or host.replace(".", "").isdigit() or ":" in host:
        setting = SETTINGS_BY_NAME[name]
        raise ConfigError(
            f"{name}: {endpoint!r} has no scheme, so it would be reached over HTTPS; a local "
            f"emulator such as `sim serve` speaks plain HTTP: set {setting.option} "
            f"http://{endpoint} (or https://{endpoint} if it really is TLS)"
        )

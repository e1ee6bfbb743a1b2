"""`--sim-info FILE` (a `sim serve` info JSON) as a source of settings, and endpoints that would
be reached over HTTPS though they name a local emulator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agent.app.config import ConfigError, add_arguments, load_config
from agent.app.sim_info import read_sim_info, sim_info_keys
from agent.model import PoolBounds

INFO = {
    "kubernetes": {"url": "http://127.0.0.1:6443", "kubeconfig": "/tmp/sim.kubeconfig"},
    "cs": {
        "url": "http://127.0.0.1:7001", "endpoint": "127.0.0.1:7001", "regionId": "cn-hangzhou",
        "clusterId": "c-seed", "accessKeyId": "AK", "accessKeySecret": "SK",
        "managedPools": "np-cpu:0:10",
    },
    "fc": {
        "url": "http://127.0.0.1:7002", "endpoint": "127.0.0.1:7002", "service": "svc",
        "function": "decide", "accessKeyId": "AK", "accessKeySecret": "SK",
    },
    "eci": {"enabled": False, "virtualNode": None},
}  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def write(tmp_path: Path, info: dict) -> str:
    path = tmp_path / "info.json"
    path.write_text(json.dumps(info))
    return str(path)


def test_sim_info_alone_gives_everything_an_agent_needs(tmp_path: Path) -> None:
    """Kubeconfig, cluster, region, CS and FC URLs, decider fc, managed pools, ECI off."""
    config = load_config(parse(["--sim-info", write(tmp_path, INFO)]), environ={})
    assert config.kubeconfig == "/tmp/sim.kubeconfig"
    assert (config.cluster_id, config.region) == ("c-seed", "cn-hangzhou")
    assert config.cs_endpoint == "http://127.0.0.1:7001"
    assert (config.decider, config.fc_endpoint, config.fc_function) == (
        "fc",
        "http://127.0.0.1:7002",
        "decide",
    )
    assert config.credentials == "access-key" and config.eci_enabled is False
    assert config.managed_pools == (PoolBounds("np-cpu", 0, 10),)
    assert sim_info_keys(read_sim_info(write(tmp_path, INFO))) == {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "AK",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "SK",
    }


def test_flags_and_env_beat_the_sim_info(tmp_path: Path) -> None:
    """flag > env > sim info: a user can still pick another decider or region."""
    env = {"RAY_ACK_SCALER_SIM_INFO": write(tmp_path, INFO), "RAY_ACK_SCALER_REGION": "cn-bj"}
    config = load_config(parse(["--decider", "local"]), environ=env)
    assert (config.decider, config.region, config.cluster_id) == ("local", "cn-bj", "c-seed")


def test_an_info_file_without_urls_still_gets_http(tmp_path: Path) -> None:
    """An info file written before `url` existed: its bare endpoints are the emulators' http."""
    old = {
        **INFO,
        "cs": {k: v for k, v in INFO["cs"].items() if k != "url"},
        "fc": {k: v for k, v in INFO["fc"].items() if k != "url"},
    }
    config = load_config(parse(["--sim-info", write(tmp_path, old)]), environ={})
    assert (config.cs_endpoint, config.fc_endpoint) == (
        "http://127.0.0.1:7001",
        "http://127.0.0.1:7002",
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "No such file"),
        ("{not json", "not JSON"),
        ('{"cs": {}}', "not a `sim serve --info-out` file"),
        (json.dumps({"kubernetes": {"url": "http://x", "kubeconfig": "k"}}), "cluster_id"),
    ],
)
def test_sim_info_errors_name_the_file_or_the_missing_setting(
    tmp_path: Path, content: str | None, fragment: str
) -> None:
    """Missing, malformed or bare (`sim serve` without a scenario) info files."""
    path = tmp_path / "info.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load_config(parse(["--sim-info", str(path)]), environ={})


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:34415", "localhost:8080", "10.0.0.5", "[::1]:9000"]
)
@pytest.mark.parametrize("setting", ["cs-endpoint", "fc-endpoint"])
def test_a_local_endpoint_without_a_scheme_is_refused_with_the_fix(
    setting: str, endpoint: str
) -> None:
    """It would be reached over HTTPS; the error says so and shows the http:// form."""
    argv = [f"--{setting}", endpoint, "--cluster-id", "c", "--region", "r"]
    with pytest.raises(ConfigError) as caught:
        load_config(parse(argv), environ={})
    message = str(caught.value)
    assert "no scheme" in message and f"http://{endpoint}" in message


@pytest.mark.parametrize(
    "endpoint",
    ["cs.cn-hangzhou.aliyuncs.com", "https://cs.cn-hangzhou.aliyuncs.com", "http://127.0.0.1:1"],
)
def test_cloud_hostnames_and_urls_with_a_scheme_are_accepted(endpoint: str) -> None:
    """Alibaba Cloud's own endpoints need no scheme (HTTPS); any URL with one is taken as is."""
    argv = ["--cs-endpoint", endpoint, "--cluster-id", "c", "--region", "r"]
    assert load_config(parse(argv), environ={}).cs_endpoint == endpoint


def test_an_endpoint_with_another_scheme_is_refused() -> None:
    """Only http and https reach the SDKs."""
    argv = ["--cs-endpoint", "ftp://127.0.0.1:1", "--cluster-id", "c", "--region", "r"]
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_config(parse(argv), environ={})

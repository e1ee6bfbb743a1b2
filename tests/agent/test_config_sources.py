"""Configuration: flag > env > file > default, and errors that name the setting and its source."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.app.config import ConfigError, add_arguments, load_config
from agent.app.settings import SETTINGS, AgentConfig
from agent.model import PoolBounds

REQUIRED_ENV = {"RAY_ACK_SCALER_CLUSTER_ID": "c-1", "RAY_ACK_SCALER_REGION": "cn-hangzhou"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_when_nothing_is_set() -> None:
    """With only the required settings, every other value is AgentConfig's default."""
    config = load_config(parse([]), environ=REQUIRED_ENV)
    assert config == AgentConfig(cluster_id="c-1", region="cn-hangzhou")
    assert config.ops_address == "127.0.0.1:8080"
    assert config.label_selector == "ray.io/node-type=worker"
    assert config.cs_endpoint_or_default == "cs.cn-hangzhou.aliyuncs.com"


def test_flag_beats_env_beats_file(tmp_path: Path) -> None:
    """The same setting from three sources: the flag wins, then env, then the file."""
    file = tmp_path / "agent.yaml"
    file.write_text(
        "strategy: latency\nbatch-idle-seconds: 0.5\nresync_seconds: 7\n"
        'prices: {np-cpu: 0.9}\nmanaged_pools: ["np-a:0:4", "np-b:1:8"]\n'
    )
    env = {
        **REQUIRED_ENV,
        "RAY_ACK_SCALER_CONFIG": str(file),
        "RAY_ACK_SCALER_STRATEGY": "eci-first",
        "RAY_ACK_SCALER_BATCH_IDLE_SECONDS": "0.3",
    }
    config = load_config(parse(["--strategy", "pool-first"]), environ=env)
    assert config.strategy == "pool-first"
    assert config.batch_idle_seconds == 0.3
    assert config.resync_seconds == 7.0
    assert config.prices == {"np-cpu": 0.9}
    assert config.managed_pools == (PoolBounds("np-a", 0, 4), PoolBounds("np-b", 1, 8))


def test_list_and_map_values_from_flags() -> None:
    """Prices and managed pools (ID:MIN:MAX) parse from their compact flag forms; booleans have
    --no- forms."""
    args = parse(
        [
            "--prices",
            "np-cpu=0.9, ecs.g7.xlarge=1.25",
            "--managed-pools",
            "np-a:0:20, np-b:2:2",
            "--dry-run",
            "--no-eci-enabled",
            "--ray-cluster",
            "raycluster-a",
        ]
    )
    config = load_config(args, environ=REQUIRED_ENV)
    assert config.prices == {"np-cpu": 0.9, "ecs.g7.xlarge": 1.25}
    assert config.managed_pools == (PoolBounds("np-a", 0, 20), PoolBounds("np-b", 2, 2))
    assert config.dry_run is True and config.eci_enabled is False
    assert config.label_selector == "ray.io/node-type=worker,ray.io/cluster=raycluster-a"


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        ([], {}, "cluster_id: required; set --cluster-id or RAY_ACK_SCALER_CLUSTER_ID"),
        (["--strategy", "cheap"], REQUIRED_ENV, "strategy: invalid value 'cheap' from flag"),
        (
            [],
            {**REQUIRED_ENV, "RAY_ACK_SCALER_RESYNC_SECONDS": "soon"},
            "resync_seconds: invalid value 'soon' from env RAY_ACK_SCALER_RESYNC_SECONDS",
        ),
        (["--prices", "np-cpu"], REQUIRED_ENV, "prices: invalid value"),
        (["--decider", "fc"], REQUIRED_ENV, "fc_endpoint: required with decider=fc"),
        (["--decider", "http"], REQUIRED_ENV, "http_url: required with decider=http"),
        (["--kubeconfig", "k", "--api-url", "http://x"], REQUIRED_ENV, "choose one way"),
        (["--batch-idle-seconds", "3"], REQUIRED_ENV, "batch_max_seconds"),
        (["--ops-address", "localhost"], REQUIRED_ENV, "ops_address: invalid value"),
        (["--eci-max-pods", "1.5"], REQUIRED_ENV, "eci_max_pods: invalid value"),
    ],
    ids=[
        "missing-required",
        "bad-choice",
        "bad-env-number",
        "bad-prices",
        "fc-incomplete",
        "http-incomplete",
        "two-kube-sources",
        "windows-inverted",
        "bad-address",
        "not-whole",
    ],
)
def test_errors_name_the_setting(argv: list[str], env: dict[str, str], fragment: str) -> None:
    """Every error message names the setting (and where a bad value came from)."""
    with pytest.raises(ConfigError) as caught:
        load_config(parse(argv), environ=env)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("strategy: [a, b]", "strategy: invalid value"),
        ("nonsense: 1", "unknown setting"),
        ("- a\n- b", "expected a mapping"),
        ("a: [", "not valid YAML"),
    ],
    ids=["wrong-type", "unknown-key", "not-a-mapping", "broken-yaml"],
)
def test_file_errors(tmp_path: Path, content: str, fragment: str) -> None:
    """A bad config file is reported with its path and the offending key."""
    file = tmp_path / "agent.yaml"
    file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(parse(["--config", str(file)]), environ=REQUIRED_ENV)
    assert fragment in str(caught.value)
    assert str(file) in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """A config file that does not exist is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="config file"):
        load_config(parse(["--config", str(tmp_path / "absent.yaml")]), environ=REQUIRED_ENV)


def test_help_documents_every_flag_and_env_var() -> None:
    """--help lists each setting's flag and its RAY_ACK_SCALER_ variable."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for setting in SETTINGS:
        assert setting.option in text
        assert setting.env in text

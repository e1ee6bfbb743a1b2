"""Scale-in settings: defaults, flags and environment, refusals, and the policy they make."""

from __future__ import annotations

import argparse

import pytest

from agent.app.config import ConfigError, add_arguments, load_config
from agent.app.loop import scale_in_policy
from agent.app.settings import AgentConfig
from agent.scale_in.tracking import ScaleInPolicy


def test_scale_in_is_on_by_default_with_the_contracts_defaults():
    """Enabled, every 10 s, and the same policy the decision assumes when none is sent."""
    config = AgentConfig()
    assert config.scale_in_enabled and config.scale_in_interval_seconds == 10.0
    assert scale_in_policy(config) == ScaleInPolicy()


def test_flags_beat_environment_for_scale_in_settings():
    """--no-scale-in-enabled and --scale-down-unneeded-seconds over their env vars."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--no-scale-in-enabled", "--scale-down-unneeded-seconds", "300"])
    env = {
        "RAY_ACK_SCALER_SCALE_IN_ENABLED": "true",
        "RAY_ACK_SCALER_SCALE_DOWN_UNNEEDED_SECONDS": "30",
        "RAY_ACK_SCALER_SCALE_IN_DRAIN_NON_EMPTY": "yes",
        "RAY_ACK_SCALER_SCALE_IN_MAX_NODES_PER_DECISION": "3",
    }
    config = load_config(args, environ=env, require_cluster=False)
    assert not config.scale_in_enabled
    policy = scale_in_policy(config)
    assert (policy.unneeded_seconds, policy.drain_non_empty, policy.max_nodes_per_decision) == (
        300.0,
        True,
        3,
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RAY_ACK_SCALER_SCALE_DOWN_UTILIZATION_THRESHOLD": "1.5"}, "at most 1"),
        ({"RAY_ACK_SCALER_SCALE_IN_INTERVAL_SECONDS": "0"}, "must be positive"),
        (
            {"RAY_ACK_SCALER_SCALE_IN_MAX_NODES_PER_DECISION": "2.5"},
            "scale_in_max_nodes_per_decision",
        ),
    ],
)
def test_bad_scale_in_settings_are_refused_by_name(env, message):
    """A threshold above 1, a zero interval, a fractional cap: ConfigError naming the setting."""
    with pytest.raises(ConfigError, match=message):
        load_config(None, environ=env, require_cluster=False)

"""The deployed handler's configuration: DECIDE_MAX_BODY_BYTES (set in template.yml) is read once
at cold start; a value that is not a positive whole number stops the import loudly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from functions.fc import DecisionEndpoint

PROBE = (
    "import json, functions.fc as fc; print(fc.handler(b'{' + b' ' * 200 + b'}', None).decode())"
)


def run_probe(value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DECIDE_MAX_BODY_BYTES": value}
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )


def test_environment_lowers_the_body_limit() -> None:
    """DECIDE_MAX_BODY_BYTES=100 makes a 202-byte body RequestTooLarge."""
    done = run_probe("100")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "RequestTooLarge"


@pytest.mark.parametrize("value", ["lots", "-1", "0"])
def test_unusable_limit_fails_the_cold_start_with_its_name(value: str) -> None:
    """A misconfigured limit is a deployment error reported at import, naming the variable."""
    done = run_probe(value)
    assert done.returncode != 0
    assert "DECIDE_MAX_BODY_BYTES" in done.stderr


@pytest.mark.parametrize("limit", [0, -10])
def test_endpoint_refuses_a_non_positive_limit(limit: int) -> None:
    """A limit that would refuse every request is a programming error."""
    with pytest.raises(ValueError, match="positive"):
        DecisionEndpoint(max_body_bytes=limit)

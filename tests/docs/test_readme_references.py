"""README.md against the code it documents: the two commands at the top, every flag and env var
of `python -m agent run`, every metric the agent exports."""

from __future__ import annotations

import re

from tests.support import reference

FIRST_BLOCK = """```bash
# 1. Install and run the seed walkthrough on the embedded simulated ACK cluster:
python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m agent dev

# 2. Install and run the tests (lint, types, import rules, pytest):
python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && make test
```"""


def readme() -> str:
    return reference.README.read_text(encoding="utf-8")


def test_the_first_code_block_is_the_two_commands():
    """The first fenced block is, byte for byte, install + dev and install + tests."""
    first = re.search(r"```.*?```", readme(), re.DOTALL)
    assert first is not None and first.group(0) == FIRST_BLOCK


def test_every_flag_and_env_var_of_run_is_in_the_readme():
    """Each option of `python -m agent run`, its negation and its env var appear in README."""
    section = reference.readme_section(readme(), "configuration")
    options = reference.run_options()
    assert len(options) > 40  # the parser was found, not an empty stand-in
    for row in options:
        for flag in row["flags"].split(" / "):
            assert re.search(rf"(`|/ ){re.escape(flag)}[ `]", section), f"{flag} missing"
        assert f"`{row['env']}`" in section, f"{row['env']} missing"


def test_the_configuration_reference_is_the_generated_one():
    """Defaults and meanings are as the parser says (refresh: python tests/docs/reference.py --write)."""
    assert reference.readme_section(readme(), "configuration") == reference.generated(
        "configuration"
    )


def test_every_metric_is_in_the_readme():
    """Each family a production-wired agent registers is documented with its labels."""
    section = reference.readme_section(readme(), "metrics")
    families = reference.metric_families()
    names = {name for name, *_ in families}
    assert {"ray_ack_scaler_decisions_total", "ray_ack_scaler_reaction_seconds"} <= names
    for name, _kind, _text, labels in families:
        row = next((line for line in section.splitlines() if f"`{name}`" in line), None)
        assert row is not None, f"{name} missing"
        assert all(f"`{label}`" in row for label in labels), f"{name}: labels {labels}"


def test_the_metrics_reference_is_the_generated_one():
    """Types and help texts are as registered (refresh: python tests/docs/reference.py --write)."""
    assert reference.readme_section(readme(), "metrics") == reference.generated("metrics")

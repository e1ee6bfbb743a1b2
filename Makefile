# The test command of README.md. Uses the active Python (a virtualenv with '.[dev]' installed).
PY ?= python

.PHONY: test lint types imports unit bench lock reconcile-package

test: lint types imports unit

lint:
	$(PY) -m ruff check .

types:
	$(PY) -m mypy

imports:
	lint-imports

# Two workers: the suite is mostly waiting on simulated clusters and subprocesses, ~4 min on 2
# cores instead of ~7 in one process. `python -m pytest` alone still runs it in one.
unit:
	$(PY) -m pytest -n 2

bench:
	$(PY) bench/decide_bench.py

# requirements.lock: the image's runtime dependencies (pyproject's [project] dependencies, no
# extras), pinned with hashes for the Dockerfile's Python on Linux. Needs uv (pip install uv).
LOCK_PYTHON = 3.11
UV ?= $(PY) -m uv

lock:
	$(UV) pip compile pyproject.toml --python-version $(LOCK_PYTHON) --python-platform linux \
		--generate-hashes --custom-compile-command 'make lock' --quiet -o requirements.lock

# dist/reconcile-fc.zip: the agentless reconcile function's code package (template.yml Reconcile,
# s.yaml reconcile): the agent and functions packages (without the simulator and dev mode) with
# index.py (agent/agentless/index.py) at the root, and pyproject's runtime dependencies as wheels
# for FC's python3.10 on x86_64 Linux (pip's --platform needs --only-binary).
RECONCILE_BUILD = build/reconcile
DEPENDENCIES = $(shell $(PY) -c "import tomllib; print(' '.join(repr(d) for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))")

reconcile-package:
	rm -rf $(RECONCILE_BUILD) dist/reconcile-fc.zip && mkdir -p $(RECONCILE_BUILD) dist
	$(PY) -m pip install --quiet --no-compile --target $(RECONCILE_BUILD) \
		--python-version 3.10 --platform manylinux2014_x86_64 --implementation cp \
		--only-binary=:all: $(DEPENDENCIES)
	cp -r agent functions $(RECONCILE_BUILD)/
	rm -rf $(RECONCILE_BUILD)/agent/sim $(RECONCILE_BUILD)/agent/dev
	find $(RECONCILE_BUILD)/agent $(RECONCILE_BUILD)/functions -name __pycache__ -prune -exec rm -rf {} +
	cp agent/agentless/index.py $(RECONCILE_BUILD)/index.py
	cd $(RECONCILE_BUILD) && $(PY) -m zipfile -c ../../dist/reconcile-fc.zip .

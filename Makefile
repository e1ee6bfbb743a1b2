# The test command of README.md. Uses the active Python (a virtualenv with '.[dev]' installed).
PY ?= python

.PHONY: test lint types imports unit bench lock

test: lint types imports unit

lint:
	$(PY) -m ruff check .

types:
	$(PY) -m mypy

imports:
	lint-imports

unit:
	$(PY) -m pytest

bench:
	$(PY) bench/decide_bench.py

# requirements.lock: the image's runtime dependencies (pyproject's [project] dependencies, no
# extras), pinned with hashes for the Dockerfile's Python on Linux. Needs uv (pip install uv).
LOCK_PYTHON = 3.11
UV ?= $(PY) -m uv

lock:
	$(UV) pip compile pyproject.toml --python-version $(LOCK_PYTHON) --python-platform linux \
		--generate-hashes --custom-compile-command 'make lock' --quiet -o requirements.lock

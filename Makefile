# The test command of README.md. Uses the active Python (a virtualenv with '.[dev]' installed).
PY ?= python

.PHONY: test lint types imports unit bench

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

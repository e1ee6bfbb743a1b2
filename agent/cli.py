"""The `python -m agent` command line: one subcommand per job, each registered by its module."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# Each entry names a module exposing `register(subparsers)`; the module sets `func` on its parser.
# Imported lazily so `python -m agent --help` stays fast and the simulator is loaded only on demand.
SUBCOMMAND_MODULES: tuple[str, ...] = ("agent.sim.cli", "agent.app.commands", "agent.dev.run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent",
        description="ray-ack-scaler: an event-driven node autoscaler for Ray clusters on ACK.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)

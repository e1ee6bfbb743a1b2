"""`python -m functions`: decide one request (scale-out or scale-in), print the seed request, or
build the FC package."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from functions.errors import DecisionError, InvalidRequest

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Exit status for input the core refuses (bad JSON, invalid or oversized request).
EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the process exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["package"]:
        # Handed over untouched: packaging owns its own options and --help.
        from functions.packaging import main as package_main

        return int(package_main(args[1:]) or 0)
    parser = _parser()
    options = parser.parse_args(args)
    if options.command == "decide":
        from functions.scaleout.decision import decide

        return _decide(options.input, decision=decide)
    if options.command == "scale-in":
        from functions import scale_in

        return _decide(options.input, decision=scale_in)
    if options.command == "example":
        from functions.example import seed_request

        _print(seed_request())
        return 0
    parser.print_help()
    return EXIT_BAD_INPUT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m functions",
        description="The ray-ack-scaler decision core: pending pods in, scale-pool / "
        "place-on-eci actions out (decide/v1); nodes in, nodes to remove out "
        "(scale-in/v1).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    decide = commands.add_parser(
        "decide",
        help="read one decide/v1 request, print the reply",
        description="Read one decide/v1 request (JSON) from --in FILE or stdin and print the "
        "reply to stdout (exit 0). Invalid JSON, an invalid request or one over the "
        'limits prints the error object {"error": {code, message, path}} and '
        "exits 2.",
    )
    decide.add_argument(
        "--in",
        dest="input",
        metavar="FILE",
        default="-",
        help="request file ('-' or omitted: stdin)",
    )
    scale_in = commands.add_parser(
        "scale-in",
        help="read one scale-in/v1 request, print the reply",
        description="Read one scale-in/v1 request (JSON) from --in FILE or stdin and print "
        "which nodes to remove and why the others stay (exit 0). Invalid JSON, an "
        "invalid request or one over the limits prints the error object "
        '{"error": {code, message, path}} and exits 2.',
    )
    scale_in.add_argument(
        "--in",
        dest="input",
        metavar="FILE",
        default="-",
        help="request file ('-' or omitted: stdin)",
    )
    commands.add_parser(
        "example",
        help="print the seed request (15 Ray workers, one 4 vCPU pool)",
        description="Print the seed decide/v1 request: the KubeRay walkthrough's 15 pending "
        "worker pods (1 vCPU / 1 GiB each), one ecs.g7.xlarge pool at desired 0 "
        "(max 10) and ECI enabled. Pipe it into `decide`.",
    )
    commands.add_parser(
        "package",
        help="build the Function Compute code package (see `package --help`)",
        description="Build the Function Compute code package; options are those of "
        "functions.packaging.",
    )
    return parser


def _decide(source: str, *, decision: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else _read(source)
        try:
            # Bytes in: json detects UTF-8/16/32 itself, and a bad byte is a ValueError.
            request = json.loads(raw)
        except ValueError as error:
            raise InvalidRequest(f"the request is not valid JSON: {error}", path="") from None
        except RecursionError:
            raise InvalidRequest("the request is nested too deeply", path="") from None
        reply = decision(request)
    except DecisionError as error:
        _print(error.to_json())
        return EXIT_BAD_INPUT
    _print(reply)
    return 0


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise InvalidRequest(f"cannot read {path}: {error.strerror}", path="") from None


def _print(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())

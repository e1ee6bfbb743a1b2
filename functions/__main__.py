"""`python -m functions`: decide one request (scale-out or scale-in), print the seed request, or
build the FC package."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

from functions.deadline import Deadline
from functions.errors import (
    DecisionError,
    InvalidRequest,
    RequestTooLarge,
    incident_id,
    internal_error,
)
from functions.readers import body_too_large, max_body_bytes_from, read_request

# Only the type checker reads typing (annotations are strings): ~10 ms less cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

# Exit statuses of `decide` and `scale-in` (docs/decide-contract.md, "Errors and exit codes"):
# 0 a reply; 2 input the core refuses (InvalidRequest, RequestTooLarge; also a usage error);
# 3 the core itself failed (InternalError: a bug, never the input's fault).
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 3

_ERRORS_HELP = (
    "Exit 0 with the reply. Input the core refuses (over the body limit, 32 MB unless "
    "DECIDE_MAX_BODY_BYTES says otherwise; not UTF-8; not strict JSON; a lone surrogate; an "
    "invalid or oversized request) prints the error object "
    '{"error": {code, message, path}} and exits 2. An unexpected failure of the core prints '
    '{"error": {"code": "InternalError", ..., "decisionId"}} (the traceback goes to stderr) '
    "and exits 3."
)


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
        "reply to stdout. " + _ERRORS_HELP,
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
        "which nodes to remove and why the others stay. " + _ERRORS_HELP,
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


def _decide(source: str, *, decision: Callable[..., dict[str, Any]]) -> int:
    """Read, decide, print; the exit status says which of the three outcomes it was."""
    try:
        limit = max_body_bytes_from(os.environ)
    except ValueError as error:
        print(f"python -m functions: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # No platform timeout here: only the request's own policy.maxDecisionSeconds limits it.
    deadline = Deadline(math.inf, clock=time.monotonic)
    raw: bytes | None = None
    try:
        raw = _read(sys.stdin.buffer, "stdin", limit) if source == "-" else _open(source, limit)
        # The same reader as every Function Compute handler (functions.readers.read_request).
        text = _dumps(decision(read_request(raw, max_bytes=limit), deadline=deadline))
    except DecisionError as error:
        _write(_dumps(error.to_json()))
        return EXIT_BAD_INPUT
    except Exception:
        # A bug in the core, never the caller's input: a JSON reply on stdout, the traceback
        # on stderr under the same decision id.
        incident = incident_id(raw)
        import traceback

        print(f"python -m functions: internal error (decision id {incident})", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        _write(_dumps(internal_error(incident)))
        return EXIT_INTERNAL_ERROR
    _write(text)
    return EXIT_OK


def _open(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:  # a regular file says its size: refused with the reader's words
                raise body_too_large(size, limit)
            return _read(handle, path, limit)
    except OSError as error:
        raise InvalidRequest(f"cannot read {path}: {error.strerror}", path="") from None


def _read(stream: BinaryIO, name: str, limit: int) -> bytes:
    # One byte past the limit says it was exceeded without holding an unbounded input.
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise RequestTooLarge(
            f"the request body ({name}) is over the limit of {limit} bytes (by default Function "
            "Compute's 32 MB synchronous payload limit): split the pending pods across decisions",
            path="",
        )
    return data


def _print(value: Any) -> None:
    _write(_dumps(value))


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)


def _write(text: str) -> None:
    # UTF-8 whatever the locale says. Text the reader let through always encodes; the
    # fallback only keeps a last-resort message from failing in turn.
    data = (text + "\n").encode("utf-8", "backslashreplace")
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode("utf-8"))
    else:
        buffer.write(data)
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

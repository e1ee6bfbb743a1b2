"""Builds the Function Compute code package (s.yaml's `code`; upload it to OSS for template.yml):
a zip holding the `functions/` package (no tests) and, at its root, `index.py` — a copy of
`functions/fc_index.py` — so the handlers are `index.handler`, `index.http_handler` and
`index.wsgi_handler`, the documented `file.method` form. Byte-for-byte reproducible from the same
source, so a deploy can tell "unchanged" from the checksum.

By default the zip holds no bytecode, and the runtime compiles the sources on every cold start
(FC's code directory is read-only, so nothing is cached). `--compile` adds
`__pycache__/<module>.<cache tag>.pyc` files compiled by the interpreter running the build. They
are checked-hash pycs (PEP 552): no timestamps, so the zip stays reproducible, and the runtime
recompiles a module whose source does not match. They are used only when the running
interpreter's cache tag (`cpython-310` for FC's python3.10 runtime) is the runtime's: build with
Python 3.10 for a python3.10 function, or the files are dead weight.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import marshal
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# Must equal `code` in s.yaml (a test checks it); relative to the repository root.
DEFAULT_OUT = Path("dist") / "functions-fc.zip"
PACKAGE_NAME = "functions"
# The runtime loads handlers by file name at the code root: this module becomes `index.py` there.
INDEX_SOURCE = "fc_index.py"
INDEX_NAME = "index.py"

# zip cannot store dates before 1980; a fixed date makes the archive independent of mtimes.
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo", ".swp", ".orig", ".rej"})


def package_files(package_dir: Path) -> Iterator[tuple[Path, str]]:
    """Files to ship, as (source path, archive name), in a stable order: the root `index.py`,
    then the package."""
    yield package_dir / INDEX_SOURCE, INDEX_NAME
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if not path.is_file():
            continue
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in _SKIPPED_SUFFIXES or path.name.endswith("~"):
            continue
        yield path, f"{PACKAGE_NAME}/{relative.as_posix()}"


def build_package(out: Path, *, package_dir: Path, compile_bytecode: bool = False) -> list[str]:
    """Writes the zip to `out` (atomically) and returns the archive names it holds.

    With `compile_bytecode`, each module's checked-hash pyc for the running interpreter
    follows its source (see the module docstring for when that helps).
    """
    members: dict[str, bytes] = {}
    for source, name in package_files(package_dir):
        data = members[name] = source.read_bytes()
        if compile_bytecode and name.endswith(".py"):
            members[bytecode_name(name)] = checked_hash_pyc(data, filename=name)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(members):
            _add(archive, name, members[name])
    partial.replace(out)
    return sorted(members)


def bytecode_name(name: str) -> str:
    """Where the running interpreter looks for the bytecode of archive member `name`."""
    return importlib.util.cache_from_source(name)


def checked_hash_pyc(source: bytes, *, filename: str) -> bytes:
    """A PEP 552 checked-hash pyc of `source` (header: magic, flags 0b11, source hash)."""
    code = compile(source, filename, "exec", dont_inherit=True)
    # marshal format 2 has no back-references, whose use (from format 3 on) depends on the
    # building process's reference counts and would make the bytes differ from run to run.
    flags = (0b11).to_bytes(4, "little")
    return (
        importlib.util.MAGIC_NUMBER
        + flags
        + importlib.util.source_hash(source)
        + marshal.dumps(code, 2)
    )


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE_TIME)
    info.external_attr = _FILE_MODE
    info.create_system = 3  # Unix, whatever the build host, so the mode bits mean the same
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m functions package",
        description="Build the Function Compute code package (s.yaml `code`; upload it to OSS "
        "for template.yml).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where to write the zip (default: {DEFAULT_OUT}, relative to the current directory)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also ship bytecode compiled by this interpreter "
        f"({sys.implementation.cache_tag}); only useful when that matches the FC runtime "
        "(python3.10 -> cpython-310)",
    )
    args = parser.parse_args(argv)
    package_dir = Path(__file__).resolve().parent
    names = build_package(args.out, package_dir=package_dir, compile_bytecode=args.compile)
    if f"{PACKAGE_NAME}/fc.py" not in names or INDEX_NAME not in names:
        print(
            f"error: {package_dir} has no fc.py or {INDEX_SOURCE}; nothing to deploy",
            file=sys.stderr,
        )
        return 1
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out}: {len(names)} files, {args.out.stat().st_size} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Builds the Function Compute code package that template.yml's CodeUri points at: a zip holding
the `functions/` package alone (no tests, no bytecode), byte-for-byte reproducible from the same
source so a deploy can tell "unchanged" from the checksum."""
from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# Must equal CodeUri in template.yml (a test checks it); relative to the repository root.
DEFAULT_OUT = Path("dist") / "functions-fc.zip"
PACKAGE_NAME = "functions"

# zip cannot store dates before 1980; a fixed date makes the archive independent of mtimes.
_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo", ".swp", ".orig", ".rej"})


def package_files(package_dir: Path) -> Iterator[tuple[Path, str]]:
    """Files to ship, as (source path, archive name), in a stable order."""
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if not path.is_file():
            continue
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in _SKIPPED_SUFFIXES or path.name.endswith("~"):
            continue
        yield path, f"{PACKAGE_NAME}/{relative.as_posix()}"


def build_package(out: Path, *, package_dir: Path) -> list[str]:
    """Writes the zip to `out` (atomically) and returns the archive names it holds."""
    names: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for source, name in package_files(package_dir):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE_TIME)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # Unix, whatever the build host, so the mode bits mean the same
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes(), compresslevel=9)
            names.append(name)
    partial.replace(out)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m functions package",
        description="Build the Function Compute code package (template.yml CodeUri).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where to write the zip (default: {DEFAULT_OUT}, relative to the current directory)",
    )
    args = parser.parse_args(argv)
    package_dir = Path(__file__).resolve().parent
    names = build_package(args.out, package_dir=package_dir)
    if f"{PACKAGE_NAME}/fc.py" not in names:
        print(f"error: {package_dir} has no fc.py; nothing to deploy", file=sys.stderr)
        return 1
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out}: {len(names)} files, {args.out.stat().st_size} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

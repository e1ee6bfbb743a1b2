"""`python -m functions package --compile`: checked-hash bytecode for this interpreter, used as is
by a fresh interpreter on a read-only unpacked package, and still reproducible byte for byte."""

from __future__ import annotations

import importlib.util
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from functions.packaging import build_package

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built by the CLI with --compile."""
    root = tmp_path_factory.mktemp("compiled")
    out = root / "fc.zip"
    done = subprocess.run(
        [sys.executable, "-m", "functions", "package", "--compile", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_each_module_has_its_pyc_with_the_source_hash(compiled: Path) -> None:
    """Every .py is followed by a PEP 552 checked-hash pyc for this interpreter's cache tag."""
    with zipfile.ZipFile(compiled) as archive:
        names = archive.namelist()
        sources = [n for n in names if n.endswith(".py")]
        assert sources and sorted(names) == names
        for name in sources:
            cached = importlib.util.cache_from_source(name)
            assert cached.endswith(f".{sys.implementation.cache_tag}.pyc")
            pyc = archive.read(cached)
            assert pyc[:4] == importlib.util.MAGIC_NUMBER
            assert int.from_bytes(pyc[4:8], "little") == 0b11
            assert pyc[8:16] == importlib.util.source_hash(archive.read(name))
    assert len(names) == 2 * len(sources)


def test_fresh_interpreter_loads_the_shipped_bytecode(compiled: Path, tmp_path: Path) -> None:
    """On a read-only unpacked copy, the handler module comes from the shipped pyc."""
    code = tmp_path / "code"
    with zipfile.ZipFile(compiled) as archive:
        archive.extractall(code)
    for path in code.rglob("*"):
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    script = f"import sys; sys.path.insert(0, {str(code)!r}); import functions.fc"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-v", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pyc = code / "functions" / "__pycache__" / f"fc.{sys.implementation.cache_tag}.pyc"
    assert f"# code object from '{pyc}'" in done.stderr


def test_compiled_package_is_reproducible(compiled: Path, tmp_path: Path) -> None:
    """Building again (in this process) gives the same bytes: no timestamps in the pycs."""
    again = tmp_path / "again.zip"
    build_package(again, package_dir=REPO / "functions", compile_bytecode=True)
    assert again.read_bytes() == compiled.read_bytes()

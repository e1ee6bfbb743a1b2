"""requirements.lock against pyproject.toml and the Dockerfile: every runtime dependency is pinned
at a version its specifier allows, every pin carries hashes, no dev tool is in it, it was locked
for the image's Python, and the image installs from it with --require-hashes before the package
itself with --no-deps. Regenerate it with `make lock`."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+) \\$")
HASH = re.compile(r"^    --hash=sha256:[0-9a-f]{64}( \\)?$")


def pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: mypy's dependency
        import tomli as tomllib
    loaded: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return loaded


def lock_python() -> str:
    """The Python the lock is made for: LOCK_PYTHON in the Makefile's `lock` target."""
    found = re.search(r"^LOCK_PYTHON = (\d+\.\d+)$", (ROOT / "Makefile").read_text(), re.M)
    assert found, "the Makefile names no LOCK_PYTHON"
    return found.group(1)


def target_environment() -> dict[str, str]:
    """PEP 508 marker values of the image: CPython `lock_python()` on Linux."""
    version = lock_python()
    return {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def pins() -> dict[str, Version]:
    """Canonical name → pinned version; fails on any line that is not a pin, its hashes or a
    comment (no unpinned requirement, URL, editable or index option)."""
    found: dict[str, Version] = {}
    hashes: dict[str, int] = {}
    current = None
    for number, line in enumerate(LOCK.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if pin := PIN.match(line):
            current = canonicalize_name(pin.group(1))
            assert current not in found, f"line {number}: {current} pinned twice"
            found[current] = Version(pin.group(2))
            hashes[current] = 0
            continue
        assert current is not None and HASH.match(line), f"line {number}: unexpected {line!r}"
        hashes[current] += 1
    assert found, "requirements.lock pins nothing"
    unhashed = sorted(name for name, count in hashes.items() if not count)
    assert not unhashed, f"pinned without a hash: {unhashed}"
    return found


def runtime_requirements() -> list[Requirement]:
    environment = target_environment()
    return [
        requirement
        for requirement in map(Requirement, pyproject()["project"]["dependencies"])
        if requirement.marker is None or requirement.marker.evaluate(environment)
    ]


def test_every_runtime_dependency_is_pinned_within_its_specifier():
    """Each [project] dependency (for the image's Python on Linux) is in the lock at a version
    pyproject.toml allows; after a change of pyproject, `make lock`."""
    locked = pins()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements.lock: make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside {requirement}: make lock"
        )


def test_the_lock_holds_no_dev_tool():
    """The lock is the image's: none of the dev extra's tools (unless the runtime needs one)."""
    locked = pins()
    runtime = {canonicalize_name(r.name) for r in runtime_requirements()}
    dev = {
        canonicalize_name(Requirement(r).name)
        for r in pyproject()["project"]["optional-dependencies"]["dev"]
    }
    assert not (dev - runtime) & set(locked), (
        f"dev tools in the lock: {(dev - runtime) & set(locked)}"
    )


def test_the_lock_is_closed_where_this_environment_can_tell():
    """For each locked package installed here at the locked version, its own requirements (for
    the image's platform, no extras) are locked too; `pip install --require-hashes` in the image
    build would fail otherwise."""
    locked = pins()
    environment = target_environment()
    checked = 0
    for name, version in locked.items():
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(distribution.version) != version:
            continue
        checked += 1
        for text in distribution.requires or ():
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            assert canonicalize_name(requirement.name) in locked, (
                f"{name}=={version} needs {requirement}, which requirements.lock lacks: make lock"
            )
    if not checked:
        pytest.skip("no locked package is installed here at its locked version")


def test_the_lock_is_made_for_the_image_python_by_make_lock():
    """The Makefile locks for the Python of the Dockerfile's base image, and the lock says it
    came from `make lock`."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM python:(\d+\.\d+)\.\d+-slim", dockerfile, re.MULTILINE)
    assert base and base.group(1) == lock_python()
    assert "#    make lock" in LOCK.read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lock:", makefile, re.MULTILINE)
    assert "--generate-hashes" in makefile and "--python-version $(LOCK_PYTHON)" in makefile


def test_the_image_installs_the_lock_then_the_package_alone():
    """Dependencies only from the lock, hash-checked; then the package without dependencies."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    locked = dockerfile.index("RUN pip install --require-hashes -r requirements.lock")
    package = dockerfile.index("RUN pip install --no-deps .")
    assert dockerfile.index("COPY requirements.lock") < locked < package
    assert len(re.findall(r"pip install", dockerfile)) == 2

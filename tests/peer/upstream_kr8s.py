"""Run kr8s's own test suite (shipped in its wheel as kr8s/tests) against `sim serve`.

kr8s's tests expect pytest-kind's `k8s_cluster` fixture: a kind cluster with kubectl. This puts
`python -m agent sim serve` (bare, speed 50) in its place, with KUBECONFIG pointing at it, copies
the suite and kr8s's conftest into a temporary directory (so this repository's pytest settings do
not apply to it) and runs pytest there. Not part of `make test`: much of the suite needs what the
simulator does not serve (deployments, services, CRDs, exec, logs, port-forward, service-account
tokens) or a cluster's system pods, so its failures need reading, not counting.

    python -m tests.peer.upstream_kr8s                                # the pod-related tests
    python -m tests.peer.upstream_kr8s -k "pod and not exec" test_objects.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kr8s

from tests.support.network import client_environment
from tests.support.processes import REPO

DEFAULT_ARGS = ("-k", "pod or label or field_selector or patch", "test_objects.py")

SHIM = '''"""pytest-kind's k8s_cluster, played by `python -m agent sim serve` (bare, speed 50)."""
import os
import subprocess

import pytest

from conftest_kr8s import *  # noqa: F403  kr8s's own fixtures
from tests.peer.serving import sim_serve


class SimCluster:
    kubectl_path = "kubectl"

    def __init__(self, kubeconfig):
        self.kubeconfig_path = kubeconfig

    def kubectl(self, *args):
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig_path), *args],
            check=True, capture_output=True, text=True,
        ).stdout


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory):
    with sim_serve(tmp_path_factory.mktemp("serve"), "--speed", "50") as served:
        os.environ["KUBECONFIG"] = str(served.kubeconfig)
        yield SimCluster(served.kubeconfig)
'''

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout = 30
"""


def prepare(workdir: Path) -> None:
    """kr8s's tests, its conftest (renamed, imported by the shim) and the shim in `workdir`."""
    package = Path(kr8s.__file__).parent
    shutil.copytree(package / "tests", workdir, dirs_exist_ok=True)
    shutil.copy(package / "conftest.py", workdir / "conftest_kr8s.py")
    for test in workdir.glob("test_*.py"):
        text = test.read_text().replace("from kr8s.conftest import", "from conftest_kr8s import")
        test.write_text(text)
    (workdir / "conftest.py").write_text(SHIM)
    (workdir / "pytest.ini").write_text(INI)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="kr8s-upstream-") as tmp:
        workdir = Path(tmp)
        prepare(workdir)
        env = client_environment(PYTHONPATH=os.pathsep.join((str(REPO), tmp)))
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"]
        return subprocess.run([*command, *(argv or DEFAULT_ARGS)], cwd=workdir, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

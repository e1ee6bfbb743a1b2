"""The Function Compute code package: built exactly where s.yaml's `code` points, holding the
`functions` package and the root `index.py` alone, reproducible byte for byte, and importable and
invocable from a fresh interpreter that sees nothing but the unpacked package and the standard
library. template.yml (ROS) and s.yaml (Serverless Devs) describe the same two functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from functions.packaging import DEFAULT_OUT, build_package
from tests.support.cloud.fc_events import encoded, fc3_event, pods_mentioned, seed_request
from tests.support.deploy_templates import deployed_functions, ros_functions, s_yaml_functions

REPO = Path(__file__).resolve().parents[2]

# Runs in the fresh interpreter: import each Handler named in the deploy files and call it the way
# the FC Python runtime does (event bytes, a context object), then report what came back.
INVOKE = r"""
import importlib, json, sys
code_root, calls = sys.argv[1], json.loads(sys.stdin.read())
sys.path.insert(0, code_root)

class Context:
    request_id = "req-package"
    region = "cn-hangzhou"
    credentials = None
    function = None
    service = None

results = []
for handler_name, event in calls:
    module_name, _, attribute = handler_name.rpartition(".")
    module = importlib.import_module(module_name)
    answer = getattr(module, attribute)(event.encode(), Context())
    if isinstance(answer, bytes):
        answer = answer.decode()
    results.append({"module_file": module.__file__, "answer": answer})
foreign = sorted(name for name in sys.modules if name.split(".")[0] in {"yaml", "agent", "pytest", "_pytest"})
print(json.dumps({"results": results, "sys_path": sys.path, "foreign": foreign}))
"""


def test_both_deploy_files_describe_the_same_functions() -> None:
    """template.yml and s.yaml: the same names, handlers, runtime, memory, timeout and env."""

    def described(source: list) -> dict:
        return {
            f.name: (f.handler, f.runtime, f.memory_mb, f.timeout_seconds, f.environment)
            for f in source
        }

    assert described(ros_functions()) == described(s_yaml_functions())


def test_deploy_files_describe_the_function_as_deployed() -> None:
    """Runtime python3.10, index.* handlers, the package zip as code, one signed POST trigger."""
    functions = deployed_functions()
    handlers = {f.handler for f in functions}
    assert handlers == {"index.handler", "index.http_handler"}
    for f in functions:
        assert f.runtime == "python3.10"
        assert f.memory_mb >= 512 and f.timeout_seconds > 0
        assert "DECIDE_MAX_BODY_BYTES" in f.environment
        assert (f.http_trigger is not None) == (f.handler == "index.http_handler"), f
        if f.source == "s.yaml":
            assert f.code == "./" + DEFAULT_OUT.as_posix()
        else:
            assert set(f.code) == {"OssBucketName", "OssObjectName"}
    triggers = [f.http_trigger for f in functions if f.http_trigger is not None]
    assert [(t["authType"], t["methods"]) for t in triggers] == [("function", ["POST"])] * 2


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as `python -m functions package` builds it from a checkout's root."""
    root = tmp_path_factory.mktemp("checkout")
    done = subprocess.run(
        [sys.executable, "-m", "functions", "package"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (code,) = {f.code for f in s_yaml_functions()}
    archive = root / code
    assert archive.is_file(), f"packaging did not write {code}"
    assert str(archive) in done.stdout or DEFAULT_OUT.as_posix() in done.stdout
    return archive


def test_package_holds_the_functions_package_and_index_only(built: Path) -> None:
    """functions/ sources and the root index.py (functions/fc_index.py): no tests, no bytecode,
    no other top-level entries."""
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
        infos = archive.infolist()
        index = archive.read("index.py")
    assert "functions/__init__.py" in names and "functions/fc.py" in names
    assert all(name.startswith("functions/") for name in names if name != "index.py")
    assert index == (REPO / "functions" / "fc_index.py").read_bytes()
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not [n for n in names if "/tests/" in n or n.split("/")[-1].startswith("test_")]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert sorted(names) == names


def test_same_source_gives_the_same_bytes(built: Path, tmp_path: Path) -> None:
    """Rebuilding (elsewhere, later) reproduces the archive exactly."""
    again = tmp_path / "again.zip"
    build_package(again, package_dir=REPO / "functions")
    assert again.read_bytes() == built.read_bytes()


def test_fresh_interpreter_imports_and_invokes_the_deployed_handlers(
    built: Path, tmp_path: Path
) -> None:
    """`python -I -S` with only the unpacked package on sys.path runs every deployed handler."""
    code_root = tmp_path / "code"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(code_root)
    request = seed_request()
    request_bytes = encoded(request)
    calls = []
    for function in deployed_functions():
        event = fc3_event(request_bytes) if function.http_trigger else request_bytes
        calls.append([function.handler, event.decode()])
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", INVOKE, str(code_root)],
        input=json.dumps(calls),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["foreign"] == []
    assert not [entry for entry in report["sys_path"] if "site-packages" in entry]
    uids = sorted(pod["uid"] for pod in request["pods"])
    for (handler, _event), result in zip(calls, report["results"], strict=True):
        assert Path(result["module_file"]).is_relative_to(code_root), result["module_file"]
        answer = result["answer"]
        if handler.endswith("http_handler"):
            assert answer["statusCode"] == 200
            answer = answer["body"]
        answer = json.loads(answer)
        assert answer["schema"] == "decide/v1"
        assert sorted(pods_mentioned(answer)) == uids

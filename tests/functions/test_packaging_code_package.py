"""The Function Compute code package: built exactly where template.yml's CodeUri points, holding
the `functions` package alone, reproducible byte for byte, and importable and invocable from a
fresh interpreter that sees nothing but the unpacked package and the standard library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.packaging import DEFAULT_OUT, build_package
from tests.support.cloud.fc_events import encoded, fc3_event, pods_mentioned, seed_request

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yml"

# Runs in the fresh interpreter: import each Handler named in template.yml and call it the way
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


def template_functions() -> dict[str, dict[str, Any]]:
    template = yaml.safe_load(TEMPLATE.read_text())
    assert template["ROSTemplateFormatVersion"] == "2015-09-01"
    assert template["Transform"] == "Aliyun::Serverless-2018-04-03"
    functions: dict[str, dict[str, Any]] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "Aliyun::Serverless::Service":
            continue
        for name, child in resource.items():
            if isinstance(child, dict) and child.get("Type") == "Aliyun::Serverless::Function":
                functions[name] = child
    assert functions, "template.yml declares no Aliyun::Serverless::Function"
    return functions


def test_template_describes_the_function_as_deployed() -> None:
    """Runtime python3.10, the package zip as CodeUri, the FC handlers, a POST trigger with auth."""
    functions = template_functions()
    handlers = {child["Properties"]["Handler"] for child in functions.values()}
    assert handlers == {"functions.fc.handler", "functions.fc.http_handler"}
    for child in functions.values():
        properties = child["Properties"]
        assert properties["Runtime"] == "python3.10"
        assert properties["CodeUri"] == DEFAULT_OUT.as_posix()
        assert properties["MemorySize"] >= 512 and properties["Timeout"] > 0
        assert "DECIDE_MAX_BODY_BYTES" in properties["EnvironmentVariables"]
    triggers = [
        event["Properties"]
        for child in functions.values()
        for event in (child.get("Events") or {}).values()
        if event["Type"] == "HTTP"
    ]
    assert triggers == [{"AuthType": "FUNCTION", "Methods": ["POST"]}]


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
    code_uris = {child["Properties"]["CodeUri"] for child in template_functions().values()}
    (code_uri,) = code_uris
    archive = root / code_uri
    assert archive.is_file(), f"packaging did not write {code_uri}"
    assert str(archive) in done.stdout or code_uri in done.stdout
    return archive


def test_package_holds_the_functions_package_only(built: Path) -> None:
    """Only functions/ sources: no tests, no bytecode, no other top-level entries."""
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert "functions/__init__.py" in names and "functions/fc.py" in names
    assert all(name.startswith("functions/") for name in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not [n for n in names if "/tests/" in n or n.split("/")[-1].startswith("test_")]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert sorted(names) == names


def test_same_source_gives_the_same_bytes(built: Path, tmp_path: Path) -> None:
    """Rebuilding (elsewhere, later) reproduces the archive exactly."""
    again = tmp_path / "again.zip"
    build_package(again, package_dir=REPO / "functions")
    assert again.read_bytes() == built.read_bytes()


def test_fresh_interpreter_imports_and_invokes_the_template_handlers(
    built: Path, tmp_path: Path
) -> None:
    """`python -I -S` with only the unpacked package on sys.path runs both handlers."""
    code_root = tmp_path / "code"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(code_root)
    request = seed_request()
    request_bytes = encoded(request)
    calls = []
    for child in template_functions().values():
        handler = child["Properties"]["Handler"]
        event = fc3_event(request_bytes) if child.get("Events") else request_bytes
        calls.append([handler, event.decode()])
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

"""The handlers the deploy files name, loaded from the built code package exactly as FC's Python
runtime loads them — module `index` by file name at the code root, in a fresh interpreter that
has only that directory and the standard library on its path — each with the signature and the
answer of the runtime it is wired to: FC 3.0 event functions `(event, context)` → bytes; FC 3.0
HTTP triggers, the event JSON in and `{statusCode, headers, body}` out; FC 2.0 HTTP triggers,
WSGI `(environ, start_response)`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from functions.packaging import build_package
from tests.support.cloud.fc_events import encoded, fc3_event, pods_mentioned, seed_request
from tests.support.deploy_templates import deployed_functions

REPO = Path(__file__).resolve().parents[2]

# What FC 2.0 users wire to their HTTP trigger instead (docs/deploy.md): not in the deploy files.
FC2_WSGI_HANDLER = "index.wsgi_handler"

# Runs in the fresh interpreter, the code root its only non-stdlib path entry: load each handler
# by `file.method`, record its parameters, call it as its runtime does and report the answer.
LOAD_AND_CALL = r"""
import importlib, inspect, io, json, sys
code_root, checks = sys.argv[1], json.loads(sys.stdin.read())
sys.path.insert(0, code_root)

class Context:
    request_id = "req-runtime"
    region = "cn-hangzhou"
    credentials = None
    function = None
    service = None

def call(fn, runtime, payload):
    if runtime == "fc3-event":
        answer = fn(payload.encode(), Context())
        return {"type": type(answer).__name__, "body": answer.decode()}
    if runtime == "fc3-http":
        answer = fn(payload.encode(), Context())
        return {"type": type(answer).__name__, "reply": answer}
    body = payload.encode()
    started = []
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.url_scheme": "https", "wsgi.version": (1, 0),
        "fc.context": Context(), "fc.request_uri": "/",
    }
    chunks = fn(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
    return {"status": started[0][0], "headers": dict(started[0][1]), "body": b"".join(chunks).decode()}

report = []
for handler, runtime, payload in checks:
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    fn = getattr(module, attribute)
    report.append({
        "handler": handler,
        "module_file": module.__file__,
        "parameters": list(inspect.signature(fn).parameters),
        "answer": call(fn, runtime, payload),
    })
foreign = sorted(n for n in sys.modules if n.split(".")[0] in {"yaml", "agent", "pytest", "tests"})
print(json.dumps({"report": report, "foreign": foreign, "sys_path": sys.path}))
"""

SIGNATURES = {
    "fc3-event": ["event", "context"],
    "fc3-http": ["event", "context"],
    "fc2-wsgi": ["environ", "start_response"],
}


def wired_handlers() -> list[tuple[str, str]]:
    """(handler, runtime) for every handler the deploy files name, plus FC 2.0's WSGI one."""
    wired = {
        (f.handler, "fc3-http" if f.http_trigger else "fc3-event") for f in deployed_functions()
    }
    return sorted(wired | {(FC2_WSGI_HANDLER, "fc2-wsgi")})


@pytest.fixture(scope="module")
def code_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built package, unpacked the way FC unpacks a code zip."""
    out = tmp_path_factory.mktemp("package") / "functions-fc.zip"
    build_package(out, package_dir=REPO / "functions")
    root = tmp_path_factory.mktemp("code")
    with zipfile.ZipFile(out) as archive:
        archive.extractall(root)
    return root


def load_and_call(code_root: Path, checks: list[list[str]], cwd: Path) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LOAD_AND_CALL, str(code_root)],
        input=json.dumps(checks),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_wired_handler_has_its_runtimes_signature_and_answers(
    code_root: Path, tmp_path: Path
) -> None:
    """index.handler, index.http_handler and index.wsgi_handler load from `index.py` at the code
    root and answer the seed request the way their runtime expects."""
    request = seed_request()
    body = encoded(request).decode()
    payloads = {"fc3-event": body, "fc3-http": fc3_event(body).decode(), "fc2-wsgi": body}
    wired = wired_handlers()
    assert {runtime for _, runtime in wired} == set(SIGNATURES)
    checks = [[handler, runtime, payloads[runtime]] for handler, runtime in wired]
    result = load_and_call(code_root, checks, tmp_path)
    assert result["foreign"] == []
    assert not [p for p in result["sys_path"] if "site-packages" in p or p == str(REPO)]
    uids = sorted(pod["uid"] for pod in request["pods"])
    for (handler, runtime), entry in zip(wired, result["report"], strict=True):
        module, _, _ = handler.partition(".")
        assert module == "index" and handler.count(".") == 1, handler
        assert Path(entry["module_file"]) == code_root / "index.py"
        assert entry["parameters"] == SIGNATURES[runtime], handler
        answer = entry["answer"]
        if runtime == "fc3-event":
            assert answer["type"] == "bytes"
            reply = json.loads(answer["body"])
        elif runtime == "fc3-http":
            assert answer["type"] == "dict"
            assert {"statusCode", "headers", "body"} <= set(answer["reply"])
            assert answer["reply"]["statusCode"] == 200
            assert answer["reply"]["headers"]["Content-Type"] == "application/json"
            reply = json.loads(answer["reply"]["body"])
        else:
            assert answer["status"] == "200 OK"
            assert answer["headers"]["Content-Type"] == "application/json"
            reply = json.loads(answer["body"])
        assert reply["schema"] == "decide/v1", handler
        assert sorted(pods_mentioned(reply)) == uids, handler


def test_a_dotted_package_path_is_not_what_the_deploy_files_name(code_root: Path) -> None:
    """Every handler in template.yml and s.yaml is `index.<name>`, with index.py at the root."""
    assert (code_root / "index.py").is_file()
    for function in deployed_functions():
        assert function.handler.split(".")[0] == "index", function

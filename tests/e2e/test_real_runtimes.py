"""The official runtime clients, unchanged, against Gust's Runtime API: Python's
awslambdaric (packaged into the function, started by a bootstrap under provided.al2023) and a
function built with the Rust lambda_runtime crate."""

import base64
import importlib.util
import json
import os
import sys
from pathlib import Path

from conftest import REPO, ROLE
from functions import package

APP = '''
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("ric failure")
    return {"ric": True, "event": event, "request_id": context.aws_request_id,
            "function_name": context.function_name, "remaining": context.get_remaining_time_in_millis()}
'''


def site_packages_files(*distributions):
    """The installed files of these modules, as {path-in-zip: bytes}."""
    files = {}
    for module in distributions:
        spec = importlib.util.find_spec(module)
        root = Path(spec.origin)
        if root.name == "__init__.py":
            base = root.parent.parent
            paths = [p for p in root.parent.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        else:
            base = root.parent
            paths = [root]
        for path in paths:
            files[str(path.relative_to(base))] = path.read_bytes()
    return files


def invoke(lam, name, event):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    return response, json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


def test_awslambdaric_runs_unchanged(lam):
    # The base interpreter (not the test venv) has no awslambdaric: the package's copy is used.
    # A custom runtime sees only the host's system directories in an isolated environment,
    # so the system's Python of the same version (C extensions are per minor version) is
    # preferred over one installed elsewhere.
    base_python = getattr(sys, "_base_executable", sys.executable)
    system_python = f"/usr/bin/python3.{sys.version_info.minor}"
    if os.path.exists(system_python):
        base_python = system_python
    bootstrap = f'#!/bin/sh\nexport PYTHONPATH="$LAMBDA_TASK_ROOT"\nexec {base_python} -m awslambdaric "$_HANDLER"\n'
    files = site_packages_files("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py")
    files.update({"app.py": APP, "bootstrap": bootstrap})
    lam.create_function(FunctionName="ric", Runtime="provided.al2023", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package(files, executables={"bootstrap"})}, Timeout=10)
    response, body, log = invoke(lam, "ric", {"hello": "ric"})
    assert "FunctionError" not in response, body
    assert body["ric"] is True and body["event"] == {"hello": "ric"}
    assert body["function_name"] == "ric" and 0 < body["remaining"] <= 10000
    assert "REPORT RequestId: " + body["request_id"] in log
    # Warm: same environment answers again.
    _, again, log = invoke(lam, "ric", {"n": 2})
    assert again["event"] == {"n": 2} and "Init Duration" not in log
    # The error path, with awslambdaric's error-cause content type and X-Ray header.
    response, error, _ = invoke(lam, "ric", {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "ric failure"
    assert "errorCause" not in error
    # And an init error: a handler that does not exist.
    lam.update_function_configuration(FunctionName="ric", Handler="app.nothing")
    lam.get_waiter("function_updated_v2").wait(FunctionName="ric", WaiterConfig={"Delay": 1})
    response, error, _ = invoke(lam, "ric", {})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.HandlerNotFound"


def test_rust_lambda_runtime_runs_unchanged(lam):
    binary = Path(os.environ.get("RUST_ECHO_BIN", REPO / "target" / "debug" / "rust-echo"))
    assert binary.exists(), f"build it first: cargo build -p rust-echo ({binary})"
    lam.create_function(FunctionName="rusty", Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                        Code={"ZipFile": package({"bootstrap": binary.read_bytes()}, executables={"bootstrap"})},
                        MemorySize=512)
    context = base64.b64encode(json.dumps({"custom": {"from": "test"}}).encode()).decode()
    response = lam.invoke(FunctionName="rusty", Payload=b'{"x": 1}', ClientContext=context, LogType="Tail")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body["echo"] == {"x": 1}
    assert body["function_name"] == "rusty" and body["memory"] == 512 and body["version"] == "$LATEST"
    assert body["invoked_function_arn"].endswith(":function:rusty")
    assert body["client_context"] == {"from": "test"}
    response, error, _ = invoke(lam, "rusty", {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorMessage"] == "asked to fail"

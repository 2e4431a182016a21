"""What a function sees of its runtime and how runtimes report failures, as Lambda's managed
runtimes do: Lambda's variables (PWD, X-Ray), `AWS_LAMBDA_EXEC_WRAPPER`, an exception raised
at import reported as itself, and runtime exits worded as Lambda words them."""

import base64
import json

import pytest
from conftest import ROLE, module_server
from functions import PROVIDED_BOOTSTRAP, package


@pytest.fixture(scope="module")
def lam(tmp_path_factory):
    yield from (s.client() for s in module_server(tmp_path_factory, "runtime-errors"))


def deploy(lam, name, files, runtime="python3.12", handler="app.handler", executables=(), **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": package(files, executables)}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def call(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    body = json.loads(response["Payload"].read() or b"null")
    return response, body, base64.b64decode(response.get("LogResult", "")).decode()


ENV_APP = """
import os
def handler(event, context):
    return {k: os.environ.get(k) for k in event["keys"]} | {"cwd": os.getcwd()}
"""


def test_lambda_variables(lam):
    deploy(lam, "envvars", {"app.py": ENV_APP})
    keys = ["PWD", "LANG", "TZ", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS",
            "_AWS_XRAY_DAEMON_PORT", "_X_AMZN_TRACE_ID", "AWS_EXECUTION_ENV"]
    _, env, _ = call(lam, "envvars", {"keys": keys})
    assert env["PWD"] == env["cwd"]
    assert env["LANG"] == "en_US.UTF-8" and env["TZ"] == ":UTC"
    assert env["AWS_XRAY_CONTEXT_MISSING"] == "LOG_ERROR"
    assert env["AWS_XRAY_DAEMON_ADDRESS"] == "169.254.79.129:2000"
    assert env["_AWS_XRAY_DAEMON_ADDRESS"] == "169.254.79.129" and env["_AWS_XRAY_DAEMON_PORT"] == "2000"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    # The managed runtime sets the trace header of each invoke.
    response = lam.invoke(FunctionName="envvars", Payload=json.dumps({"keys": ["_X_AMZN_TRACE_ID"]}).encode())
    assert json.loads(response["Payload"].read())["_X_AMZN_TRACE_ID"].startswith("Root=1-")


WRAPPER = """#!/bin/sh
# A wrapper as Lambda's docs show: change the runtime's command line, then exec it.
export WRAPPED_BY="$0"
export WRAPPED_ARGC="$#"
echo "wrapper saw: $1"
exec "$@"
"""


@pytest.mark.parametrize("runtime,handler,files", [
    ("python3.12", "app.handler", {"app.py": "import os\ndef handler(e, c):\n"
                                             "    return [os.environ.get('WRAPPED_BY'), os.environ.get('WRAPPED_ARGC')]\n"}),
    ("nodejs20.x", "index.handler", {"index.js": "exports.handler = async () => "
                                                 "[process.env.WRAPPED_BY, process.env.WRAPPED_ARGC];\n"}),
])
def test_exec_wrapper(lam, runtime, handler, files):
    name = f"wrapped-{runtime.replace('.', '-')}"
    deploy(lam, name, {**files, "wrapper.sh": WRAPPER}, runtime=runtime, handler=handler,
           executables=("wrapper.sh",),
           Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}})
    response, body, log = call(lam, name)
    assert "FunctionError" not in response, body
    assert body[0] == "/var/task/wrapper.sh" and int(body[1]) >= 2, body
    assert "wrapper saw: /" in log
    # A missing wrapper: the runtime's start exits 127, as Lambda's does.
    deploy(lam, f"{name}-gone", files, runtime=runtime, handler=handler,
           Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/missing.sh"}})
    response, body, log = call(lam, f"{name}-gone")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: exit status 127"), body
    assert "/var/task/missing.sh: does not exist" in log


def test_provided_ignores_the_wrapper(lam):
    deploy(lam, "provided-wrapper", {"bootstrap": PROVIDED_BOOTSTRAP}, runtime="provided.al2023", handler="x",
           executables=("bootstrap",),
           Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/missing.sh"}})
    response, body, _ = call(lam, "provided-wrapper")
    assert "FunctionError" not in response and body["custom"] is True


@pytest.mark.parametrize("runtime,handler,files,error_type,message", [
    ("python3.12", "app.handler", {"app.py": "raise ValueError('bad config')\n"}, "ValueError", "bad config"),
    ("python3.12", "app.handler", {"app.py": "import no_such_module\n"}, "Runtime.ImportModuleError",
     "Unable to import module 'app': No module named 'no_such_module'"),
    ("nodejs20.x", "index.handler", {"index.js": "throw new TypeError('bad config');\n"}, "TypeError",
     "bad config"),
    ("nodejs20.x", "index.handler", {"index.js": "require('not-installed');\n"}, "Runtime.ImportModuleError",
     "Cannot find module 'not-installed'"),
])
def test_exception_at_import_is_its_own_type(lam, runtime, handler, files, error_type, message):
    name = f"importerr-{error_type.replace('.', '')}-{runtime.replace('.', '')}"
    deploy(lam, name, files, runtime=runtime, handler=handler)
    response, body, log = call(lam, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type, body
    assert message in body["errorMessage"], body
    assert error_type in log


def test_runtime_exits(lam):
    app = """import os, signal
def handler(event, context):
    print("dying", event["how"])
    if event["how"] == "clean":
        os._exit(0)
    if event["how"] == "status":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGSEGV)
"""
    deploy(lam, "exits", {"app.py": app})
    cases = {"clean": "Runtime exited without providing a reason",
             "status": "Runtime exited with error: exit status 3",
             "segv": "Runtime exited with error: signal: segmentation fault"}
    for how, expected in cases.items():
        response, body, log = call(lam, "exits", {"how": how})
        assert response["FunctionError"] == "Unhandled"
        assert body["errorType"] == "Runtime.ExitError"
        assert body["errorMessage"].endswith(f"Error: {expected}"), body
        # The tail holds this invoke's lines only: not the previous environment's.
        assert log.count("dying") == 1 and f"dying {how}" in log, log


def test_custom_runtime_bootstraps(lam):
    # None in the package or a layer: Lambda's message, with Lambda's paths.
    deploy(lam, "no-bootstrap", {"README": "nothing to run"}, runtime="provided.al2023", handler="x")
    response, body, _ = call(lam, "no-bootstrap")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]" in body["errorMessage"], body
    # A layer's bootstrap serves a package without one.
    layer = lam.publish_layer_version(LayerName="runtime-layer",
                                      Content={"ZipFile": package({"bootstrap": PROVIDED_BOOTSTRAP},
                                                                  executables=("bootstrap",))})
    deploy(lam, "layer-bootstrap", {"README": "code only"}, runtime="provided.al2023", handler="x",
           Layers=[layer["LayerVersionArn"]])
    response, body, _ = call(lam, "layer-bootstrap", {"k": 1})
    assert "FunctionError" not in response and body["event"] == {"k": 1}, body
    # A bash-style bootstrap whose program is missing exits 127: Runtime.ExitError, Unhandled.
    deploy(lam, "bash-bootstrap", {"bootstrap": "#!/bin/sh\nset -euo pipefail\n[[ -n \"$_HANDLER\" ]]\n"
                                                "exec ./missing-binary\n"},
           runtime="provided.al2023", handler="x", executables=("bootstrap",))
    response, body, log = call(lam, "bash-bootstrap")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 127"), body
    assert "missing-binary" in log

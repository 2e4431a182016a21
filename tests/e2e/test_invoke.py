"""Synchronous Invoke through boto3: every runtime's success, error, init-error, timeout and
crash paths, the context and environment a function sees, warm reuse, concurrency, code
updates, idle shutdown, log tails and payload limits."""

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROLE, error_of
from functions import (NODE_CALLBACK, NODE_CJS, NODE_ESM, NODE_NESTED, PROVIDED_BOOTSTRAP, PYTHON_APP,
                       package)


def deploy(lam, name, files, runtime="python3.12", handler="app.handler", executables=(), **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": package(files, executables)}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def call(lam, name, event=None, raw=None, **kwargs):
    payload = raw if raw is not None else json.dumps(event if event is not None else {}).encode()
    response = lam.invoke(FunctionName=name, Payload=payload, LogType="Tail", **kwargs)
    body = response["Payload"].read()
    log = base64.b64decode(response.get("LogResult", "")).decode()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body
    return response, parsed, log


@pytest.fixture
def py(lam):
    deploy(lam, "py", {"app.py": PYTHON_APP}, Environment={"Variables": {"MY_SETTING": "on", "TZ": "Europe/Paris"}},
           MemorySize=256, Timeout=2)
    return "py"


def test_python_success_context_and_environment(lam, py, server):
    response, body, log = call(lam, py, {"hello": "world"})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert body["event"] == {"hello": "world"}
    ctx = body["context"]
    arn = "arn:aws:lambda:us-east-1:000000000000:function:py"
    assert ctx["function_name"] == "py" and ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == arn
    assert ctx["memory_limit_in_mb"] == "256"
    assert ctx["log_group_name"] == "/aws/lambda/py"
    assert "/[$LATEST]" in ctx["log_stream_name"]
    assert 0 < ctx["remaining"] <= 2000
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "py"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/py"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == ctx["log_stream_name"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["_HANDLER"] == "app.handler"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"], "the handler runs in the code root"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["LANG"] == "en_US.UTF-8"
    assert env["MY_SETTING"] == "on"
    assert env["TZ"] == "Europe/Paris", "a function may override TZ"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert "PATH" in env and "LD_LIBRARY_PATH" in env
    # START / END / REPORT, tab-separated, Init Duration last on a cold start.
    lines = log.strip().split("\n")
    assert lines[0].startswith("INIT_START Runtime Version: Python 3.")
    assert any(line == "module level code runs once per environment" for line in lines)
    request_id = ctx["aws_request_id"]
    assert f"START RequestId: {request_id} Version: $LATEST" in lines
    assert f"END RequestId: {request_id}" in lines
    report = lines[-1]
    assert report.startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    fields = report.split("\t")
    assert fields[2].startswith("Billed Duration: ") and fields[2].endswith(" ms")
    assert fields[3] == "Memory Size: 256 MB"
    assert fields[4].startswith("Max Memory Used: ") and int(fields[4].split()[3]) > 0
    assert fields[5].startswith("Init Duration: ")
    assert log.endswith("\t\n")


def test_python_warm_reuse_keeps_module_state(lam, py):
    _, first, log1 = call(lam, py)
    _, second, log2 = call(lam, py)
    assert second["pid"] == first["pid"] == second["init_pid"]
    assert second["calls"] == first["calls"] + 1
    assert "Init Duration" in log1 and "Init Duration" not in log2
    assert "module level code" not in log2


def test_python_handler_error(lam, py):
    response, body, log = call(lam, py, {"action": "fail"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "handler failed on purpose"
    assert body["requestId"]
    assert any("app.py" in frame for frame in body["stackTrace"])
    assert "[ERROR] ValueError: handler failed on purpose" in log
    # The environment survives a handled error.
    _, after, _ = call(lam, py)
    assert after["calls"] == 2


def test_python_logs_print_logging_and_stderr(lam, py, server):
    _, _, log = call(lam, py, {"action": "log"})
    assert "printed line" in log
    assert "to stderr" in log
    logged = [l for l in log.split("\n") if "logged line" in l][0]
    assert logged.startswith("[INFO]\t") and logged.endswith("\tlogged line")
    out = server.gust("logs", "py").stdout
    assert "printed line" in out and "REPORT RequestId" in out


def test_python_unserializable_result(lam, py):
    response, body, _ = call(lam, py, {"action": "unserializable"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"


def test_python_timeout_kills_the_environment(lam, py):
    _, before, _ = call(lam, py)
    started = time.monotonic()
    response, body, log = call(lam, py, {"action": "sleep", "seconds": 30})
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 2.00 seconds")
    assert "Task timed out after 2.00 seconds" in log
    assert "Status: timeout" in log
    # Everything the function wrote comes before the timeout line and END.
    assert log.index("sleeping 30") < log.index("Task timed out") < log.index("END RequestId")
    _, after, log = call(lam, py)
    assert after["env_id"] != before["env_id"], "a timed-out environment is not reused"
    assert "Init Duration" in log


def test_python_crash_is_runtime_exit_error(lam, py):
    _, before, _ = call(lam, py)
    response, body, log = call(lam, py, {"action": "exit"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    assert "about to exit" in log
    _, after, _ = call(lam, py)
    assert after["env_id"] != before["env_id"]


@pytest.mark.parametrize("files,handler,error_type,message", [
    ({"app.py": "import no_such_module\n"}, "app.handler", "Runtime.ImportModuleError",
     "Unable to import module 'app': No module named 'no_such_module'"),
    ({"app.py": "x = 1\n"}, "app.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'"),
    ({"app.py": "def handler(:\n"}, "app.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'app'"),
    ({"app.py": "x = 1\n"}, "nodot", "Runtime.MalformedHandlerName", "Bad handler 'nodot'"),
    ({"app.py": "x = 1\n"}, "missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing'"),
])
def test_python_init_errors(lam, files, handler, error_type, message):
    deploy(lam, "broken", files, handler=handler)
    response, body, log = call(lam, "broken")
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type, body
    assert body["errorMessage"].startswith(message), body
    assert "INIT_REPORT" in log and f"Error Type: {error_type}" in log
    # The next invoke tries a fresh cold start (and fails the same way).
    _, again, _ = call(lam, "broken")
    assert again["errorType"] == error_type


def test_packages_and_subdirectories(lam):
    deploy(lam, "pkg", {"pkg/__init__.py": "", "pkg/sub/__init__.py": "",
                        "pkg/sub/mod.py": "from pkg import helper\ndef go(e, c):\n    return helper.VALUE\n",
                        "pkg/helper.py": "VALUE = 'from a package'\n"}, handler="pkg/sub/mod.go")
    _, body, _ = call(lam, "pkg")
    assert body == "from a package"


def test_code_update_takes_effect_on_the_next_invoke(lam, server):
    deploy(lam, "upd", {"app.py": "def handler(e, c):\n    return 1\n"})
    assert call(lam, "upd")[1] == 1
    lam.update_function_code(FunctionName="upd", ZipFile=package({"app.py": "def handler(e, c):\n    return 2\n"}))
    lam.get_waiter("function_updated_v2").wait(FunctionName="upd", WaiterConfig={"Delay": 1})
    assert call(lam, "upd")[1] == 2
    lam.update_function_configuration(FunctionName="upd", Environment={"Variables": {"VAL": "3"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName="upd", WaiterConfig={"Delay": 1})
    lam.update_function_code(FunctionName="upd", ZipFile=package(
        {"app.py": "import os\ndef handler(e, c):\n    return os.environ['VAL']\n"}))
    lam.get_waiter("function_updated_v2").wait(FunctionName="upd", WaiterConfig={"Delay": 1})
    assert call(lam, "upd")[1] == "3"


def test_concurrent_invokes_get_their_own_environments(lam, py):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: call(lam, py, {"action": "sleep", "seconds": 1})[1], range(4)))
    assert len({r["env_id"] for r in results}) == 4
    assert all(r["calls"] == 1 for r in results), "module state is per environment"
    # Afterwards the four are warm: four more concurrent invokes reuse them without INIT.
    with ThreadPoolExecutor(max_workers=4) as pool:
        again = list(pool.map(lambda _: call(lam, py, {"action": "sleep", "seconds": 0.5}), range(4)))
    assert {r[1]["env_id"] for r in again} == {r["env_id"] for r in results}
    assert all("Init Duration" not in r[2] for r in again)


def test_idle_environments_are_shut_down(make_server):
    server = make_server(extra_args=["--idle-timeout", "1s"])
    lam = server.client()
    deploy(lam, "idle", {"app.py": PYTHON_APP})
    _, first, _ = call(lam, "idle")
    _, second, log = call(lam, "idle")
    assert second["env_id"] == first["env_id"] and "Init Duration" not in log
    time.sleep(2.5)
    _, third, log = call(lam, "idle")
    assert third["env_id"] != first["env_id"] and "Init Duration" in log


def test_payload_rules(lam, py):
    # Empty body means {}.
    response = lam.invoke(FunctionName=py, Payload=b"")
    assert json.loads(response["Payload"].read())["event"] == {}
    status, code, message = error_of(lambda: lam.invoke(FunctionName=py, Payload=b"{not json"))
    assert (status, code) == (400, "InvalidRequestContentException")
    assert message.startswith("Could not parse request body into json")
    status, code, _ = error_of(lambda: lam.invoke(FunctionName=py, Payload=b"x" * (6 * 1024 * 1024 + 1)))
    assert (status, code) == (413, "RequestTooLargeException")
    # Just under the limit is fine.
    big = json.dumps({"action": "size", "pad": "x" * (6 * 1024 * 1024 - 100)}).encode()
    assert len(big) <= 6291456
    response = lam.invoke(FunctionName=py, Payload=big)
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == 6 * 1024 * 1024 - 100
    response, body, _ = call(lam, py, {"action": "big", "size": 6 * 1024 * 1024 + 200})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"


def test_client_context_dry_run_event_and_qualifiers(lam, py):
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {"e": 1}}).encode()).decode()
    _, body, _ = call(lam, py, ClientContext=context)
    assert body["context"]["client_context"] == {"custom": {"k": "v"}, "env": {"e": 1}}
    dry = lam.invoke(FunctionName=py, InvocationType="DryRun")
    assert dry["StatusCode"] == 204
    accepted = lam.invoke(FunctionName=py, InvocationType="Event", Payload=b"{}")
    assert accepted["StatusCode"] == 202 and accepted["Payload"].read() == b""
    _, body, _ = call(lam, py, Qualifier="$LATEST")
    assert body["context"]["invoked_function_arn"].endswith(":py:$LATEST")
    status, code, _ = error_of(lambda: lam.invoke(FunctionName=py, Qualifier="1"))
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, message = error_of(lambda: lam.invoke(FunctionName="ghost"))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert message.endswith(":function:ghost:$LATEST")


def test_node_success_errors_timeout_and_crash(lam):
    deploy(lam, "node", {"index.js": NODE_CJS}, runtime="nodejs20.x", handler="index.handler", Timeout=2)
    response, body, log = call(lam, "node", {"n": 1})
    assert "FunctionError" not in response
    assert body["event"] == {"n": 1}
    ctx = body["context"]
    assert ctx["functionName"] == "node" and ctx["memoryLimitInMB"] == "128"
    assert ctx["invokedFunctionArn"].endswith(":function:node") and 0 < ctx["remaining"] <= 2000
    assert ctx["callbackWaits"] is True
    assert body["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert "INFO\tnode saw" in log and "Init Duration" in log
    _, warm, _ = call(lam, "node")
    assert warm["env_id"] == body["env_id"] and warm["calls"] == 2
    response, error, _ = call(lam, "node", {"action": "fail"})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "TypeError" and error["errorMessage"] == "node failed on purpose"
    assert error["trace"][0].startswith("TypeError: node failed on purpose")
    response, error, _ = call(lam, "node", {"action": "sleep", "seconds": 10})
    assert error["errorType"] == "Sandbox.Timedout"
    response, error, _ = call(lam, "node", {"action": "exit"})
    assert error["errorType"] == "Runtime.ExitError" and "exit status 4" in error["errorMessage"]


def test_node_module_kinds(lam):
    deploy(lam, "esm", {"index.mjs": NODE_ESM}, runtime="nodejs20.x", handler="index.handler")
    assert call(lam, "esm", {"a": 1})[1] == {"esm": True, "event": {"a": 1}}
    deploy(lam, "typemod", {"package.json": '{"type":"module"}', "app.js": NODE_ESM},
           runtime="nodejs22.x", handler="app.handler")
    assert call(lam, "typemod")[1]["esm"] is True
    deploy(lam, "nested", {"lib/api.js": NODE_NESTED}, runtime="nodejs20.x", handler="lib/api.api.handle")
    assert call(lam, "nested")[1] == "nested ok"


def test_node_callback_handlers_and_waiting_for_the_event_loop(lam):
    deploy(lam, "cb", {"index.js": NODE_CALLBACK}, runtime="nodejs20.x", handler="index.handler")
    started = time.monotonic()
    _, body, _ = call(lam, "cb")
    waited = time.monotonic() - started
    assert "started" in body
    assert waited >= 0.25, "with callbackWaitsForEmptyEventLoop the answer waits for the pending timer"
    started = time.monotonic()
    _, body, _ = call(lam, "cb", {"noWait": True})
    assert time.monotonic() - started < waited
    response, error, _ = call(lam, "cb", {"fail": True})
    assert response["FunctionError"] == "Unhandled" and error["errorMessage"] == "callback error"


def test_node_init_errors(lam):
    deploy(lam, "nodebad", {"index.js": "require('not-installed');"}, runtime="nodejs20.x", handler="index.handler")
    _, error, _ = call(lam, "nodebad")
    assert error["errorType"] == "Runtime.ImportModuleError"
    deploy(lam, "nodenohandler", {"index.js": "exports.other = 1;"}, runtime="nodejs20.x", handler="index.handler")
    _, error, _ = call(lam, "nodenohandler")
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "index.handler is undefined or not exported"


def test_provided_runtime_with_a_custom_bootstrap(lam):
    deploy(lam, "custom", {"bootstrap": PROVIDED_BOOTSTRAP}, runtime="provided.al2023", handler="anything",
           executables={"bootstrap"})
    response, body, log = call(lam, "custom", {"k": 1})
    assert "FunctionError" not in response
    assert body["custom"] is True and body["event"] == {"k": 1} and body["handler"] == "anything"
    assert int(body["deadline"]) > time.time() * 1000
    assert body["arn"].endswith(":function:custom")
    assert "custom runtime handling" in log
    response, error, _ = call(lam, "custom", {"fail": True})
    assert response["FunctionError"] == "Unhandled" and error == {"errorMessage": "custom failure", "errorType": "CustomError"}


def test_provided_without_an_executable_bootstrap(lam):
    deploy(lam, "nobootstrap", {"bootstrap": PROVIDED_BOOTSTRAP}, runtime="provided.al2", handler="x")
    response, error, _ = call(lam, "nobootstrap")
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.InvalidEntrypoint"
    deploy(lam, "nofile", {"other": "x"}, runtime="provided.al2", handler="x")
    assert call(lam, "nofile")[1]["errorType"] == "Runtime.InvalidEntrypoint"


def test_a_bootstrap_that_cannot_be_executed_is_an_invalid_entrypoint(lam):
    # Executable, but its interpreter does not exist: exec fails, inside the sandbox too.
    deploy(lam, "badshebang", {"bootstrap": "#!/nonexistent/interpreter\n"}, runtime="provided.al2023",
           handler="x", executables={"bootstrap"})
    response, error, log = call(lam, "badshebang")
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.InvalidEntrypoint", error
    assert "bootstrap" in error["errorMessage"] and "No such file or directory" in error["errorMessage"], error
    assert "No such file or directory" in log
    # The next invoke tries again (and fails the same way), it does not hang.
    assert call(lam, "badshebang")[1]["errorType"] == "Runtime.InvalidEntrypoint"


def test_gust_cli_invoke(server, lam, py):
    out = server.gust("invoke", "py", "--payload", '{"via": "cli"}', "--log")
    assert json.loads(out.stdout)["event"] == {"via": "cli"}
    assert "REPORT RequestId" in out.stderr
    failed = server.gust("invoke", "py", "--payload", '{"action": "fail"}', check=False)
    assert failed.returncode == 1
    assert failed.stdout.strip(), ("no payload", failed.stderr, server.log()[-4000:])
    assert json.loads(failed.stdout)["errorType"] == "ValueError"
    assert "the function failed (Unhandled)" in failed.stderr
    as_json = json.loads(server.gust("invoke", "py", "--json").stdout)
    assert as_json["ExecutedVersion"] == "$LATEST" and as_json["Payload"]["event"] == {}


def test_aws_cli_invoke(server, py, tmp_path):
    out = tmp_path / "out.json"
    result = json.loads(server.aws("lambda", "invoke", "--function-name", "py", "--payload", '{"cli": 1}',
                                   "--log-type", "Tail", str(out)).stdout)
    assert result["StatusCode"] == 200 and result["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId" in base64.b64decode(result["LogResult"]).decode()
    assert json.loads(out.read_text())["event"] == {"cli": 1}


def test_gust_logs_since_and_follow(server, lam, py):
    import subprocess
    call(lam, py, {"action": "log"})
    recent = server.gust("logs", "py", "--since", "1m").stdout
    assert "printed line" in recent and "START RequestId" in recent
    follower = subprocess.Popen([str(server_bin()), "logs", "py", "--follow", "--since", "1s",
                                 "--data-dir", str(server.data_dir)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        call(lam, py, {"action": "log", "round": 2})
        deadline = time.monotonic() + 10
        seen = ""
        while time.monotonic() < deadline and "round 2" not in seen:
            seen += follower.stdout.readline()
        assert "round 2" in seen
    finally:
        follower.terminate()
        follower.wait(timeout=5)


def server_bin():
    from conftest import GUST_BIN
    return GUST_BIN

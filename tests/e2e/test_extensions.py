"""Lambda extensions and the Telemetry API: external extensions shipped in layers under
`extensions/` (the suite's own, and the official samples' launcher pattern), INVOKE and
SHUTDOWN events, INIT waiting for extensions, invocations completing only when extensions
are done, and telemetry delivered to a subscriber's listener."""

import json
import re
import time
from pathlib import Path

import pytest
from conftest import ROLE, error_of, free_port
from functions import package

FIXTURES = Path(__file__).parent / "extensions"

HANDLER = r'''
import json
import os
import uuid

ENV_ID = uuid.uuid4().hex


def handler(event, context):
    if event.get("dump"):
        try:
            with open("/tmp/telemetry.jsonl") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        return {"events": [json.loads(l) for l in lines],
                "subscribed": open("/tmp/telemetry-subscribed").read(),
                "host": open("/tmp/telemetry-host").read()}
    print(f"function says hello {context.aws_request_id}", flush=True)
    return {"request_id": context.aws_request_id, "env": ENV_ID}
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import Server
    import signal
    import subprocess
    server = Server(tmp_path_factory.mktemp("extensions") / "data",
                    ["--idle-timeout", "3s"]).start()
    yield server
    try:
        server.stop(signal.SIGTERM, timeout=30)
    except subprocess.TimeoutExpired:
        server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def lam(server):
    return server.client()


def layer(lam, name, files, executables):
    content = package(files, executables=executables)
    return lam.publish_layer_version(LayerName=name, Content={"ZipFile": content})["LayerVersionArn"]


def recorder_layer(lam):
    text = (FIXTURES / "recorder.py").read_text()
    return layer(lam, "recorder", {"extensions/recorder": text}, ["extensions/recorder"])


def create(lam, name, layers, env=None):
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": package({"app.py": HANDLER})}, Layers=layers, Timeout=10,
        Environment={"Variables": env or {}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)


def invoke(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}))
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def wait_for_log(server, name, text, timeout=20):
    deadline = time.time() + timeout
    while True:
        out = server.gust("logs", name).stdout
        if text in out or time.time() > deadline:
            return out
        time.sleep(0.2)


def test_an_extension_sees_every_invoke_and_the_shutdown(server, lam):
    create(lam, "ext-recorded", [recorder_layer(lam)])
    first = invoke(lam, "ext-recorded")
    # Complete (REPORT written, environment back in the pool) once the extension asked again.
    wait_for_log(server, "ext-recorded", f"REPORT RequestId: {first['request_id']}")
    second = invoke(lam, "ext-recorded")
    assert first["env"] == second["env"], "one environment served both"
    out = wait_for_log(server, "ext-recorded", f"RECORDER INVOKE {second['request_id']}")
    assert "RECORDER REGISTERED recorder function=ext-recorded version=$LATEST handler=app.handler" in out
    assert "EXTENSION\tName: recorder\tState: Ready\tEvents: [INVOKE, SHUTDOWN]" in out
    arn = "arn:aws:lambda:us-east-1:000000000000:function:ext-recorded"
    for request in (first, second):
        assert f"RECORDER INVOKE {request['request_id']} arn={arn} trace=X-Amzn-Trace-Id" in out
    # INIT's lines come before the first START; each INVOKE event after its START.
    assert out.index("EXTENSION\tName: recorder") < out.index("START RequestId:")
    assert out.index(f"START RequestId: {first['request_id']}") < out.index(
        f"RECORDER INVOKE {first['request_id']}")
    # Idle past --idle-timeout: the environment shuts down, and the extension hears of it.
    out = wait_for_log(server, "ext-recorded", "RECORDER SHUTDOWN", timeout=30)
    assert "RECORDER SHUTDOWN spindown deadline=" in out
    assert out.count("RECORDER SHUTDOWN") == 1


def test_the_official_samples_python_extension_pattern(server, lam):
    directory = FIXTURES / "python-example-extension"
    arn = layer(lam, "python-example-extension", {
        "extensions/python-example-extension": (directory / "launcher").read_text(),
        "python-example-extension/extension.py": (directory / "extension.py").read_text(),
    }, ["extensions/python-example-extension", "python-example-extension/extension.py"])
    create(lam, "ext-sample", [arn])
    result = invoke(lam, "ext-sample")
    out = wait_for_log(server, "ext-sample", f'"requestId": "{result["request_id"]}"')
    assert "python-example-extension  launching extension" in out
    assert "[python-example-extension] Registered with ID: " in out
    assert '[python-example-extension] Received event: {"eventType": "INVOKE", "deadlineMs": ' in out
    assert f'"requestId": "{result["request_id"]}"' in out
    assert "EXTENSION\tName: python-example-extension\tState: Ready\tEvents: [INVOKE, SHUTDOWN]" in out
    # A configuration change retires the environment: SHUTDOWN, and the sample exits.
    lam.update_function_configuration(FunctionName="ext-sample", Description="changed")
    out = wait_for_log(server, "ext-sample", "Received SHUTDOWN event. Exiting.", timeout=30)
    assert "[python-example-extension] Received SHUTDOWN event. Exiting." in out


def test_telemetry_reaches_a_subscribed_listener(server, lam):
    port = free_port()
    arn = layer(lam, "telemetry-listener",
                {"extensions/telemetry-listener": (FIXTURES / "telemetry_listener.py").read_text()},
                ["extensions/telemetry-listener"])
    create(lam, "ext-telemetry", [arn],
           env={"TELEMETRY_PORT": str(port), "TELEMETRY_TYPES": "platform,function,extension"})
    first = invoke(lam, "ext-telemetry")
    rid = first["request_id"]
    wanted = {"platform.start", "platform.runtimeDone", "platform.report"}
    deadline = time.time() + 20
    while True:
        dump = invoke(lam, "ext-telemetry", {"dump": True})
        events = dump["events"]
        seen = {e["type"] for e in events if isinstance(e["record"], dict)
                and e["record"].get("requestId") == rid}
        logs = [e["record"] for e in events if e["type"] == "function"]
        extension_logs = [e["record"] for e in events if e["type"] == "extension"]
        if (wanted <= seen and f"function says hello {rid}" in logs
                and extension_logs) or time.time() > deadline:
            break
        time.sleep(0.3)
    assert dump["subscribed"] == "200 OK"
    # The environment's /etc/hosts names its loopback sandbox.localdomain, as Lambda's does.
    assert dump["host"] == "resolved 127.0.0.1"
    assert wanted <= seen, events
    assert f"function says hello {rid}" in logs
    # The extension's output is `extension` telemetry, the function's `function`.
    assert extension_logs == ["telemetry-listener says hello"], events
    assert "telemetry-listener says hello" not in logs
    by_type = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["time"]), event
    init_start = by_type["platform.initStart"][0]["record"]
    assert init_start["initializationType"] == "on-demand" and init_start["phase"] == "init"
    assert init_start["functionName"] == "ext-telemetry"
    assert by_type["platform.initReport"][0]["record"]["status"] == "success"
    assert by_type["platform.initReport"][0]["record"]["metrics"]["durationMs"] > 0
    assert {"name": "telemetry-listener", "state": "Ready", "events": []} in [
        e["record"] for e in by_type["platform.extension"]]
    assert by_type["platform.telemetrySubscription"][0]["record"] == {
        "name": "telemetry-listener", "state": "Subscribed",
        "types": ["platform", "function", "extension"]}
    start = next(e["record"] for e in by_type["platform.start"] if e["record"]["requestId"] == rid)
    assert start["version"] == "$LATEST" and start["tracing"]["type"] == "X-Amzn-Trace-Id"
    done = next(e["record"] for e in by_type["platform.runtimeDone"] if e["record"]["requestId"] == rid)
    assert done["status"] == "success" and done["metrics"]["producedBytes"] > 0
    report = next(e["record"] for e in by_type["platform.report"] if e["record"]["requestId"] == rid)
    metrics = report["metrics"]
    assert report["status"] == "success"
    assert metrics["memorySizeMB"] == 128 and metrics["maxMemoryUsedMB"] > 0
    assert metrics["billedDurationMs"] >= metrics["durationMs"] > 0
    assert "initDurationMs" in metrics, "the cold start's first invocation reports its INIT"
    out = server.gust("logs", "ext-telemetry").stdout
    assert ("TELEMETRY\tName: telemetry-listener\tState: Subscribed\t"
            "Types: [Platform, Function, Extension]") in out
    # Both go to the function's log.
    assert "telemetry-listener says hello" in out
    assert "EXTENSION\tName: telemetry-listener\tState: Ready\tEvents: []" in out


def test_the_logs_api_reaches_a_subscribed_listener_in_its_own_shapes(server, lam):
    """The Logs API (2020-08-15), which older extensions still use: platform.start, end
    and report records in its shapes, runtimeDone with schema 2021-03-18, log lines with
    their newline, and no INIT phase events (mixing the two APIs: telemetry.rs's tests)."""
    port = free_port()
    arn = layer(lam, "logs-listener",
                {"extensions/logs-listener": (FIXTURES / "telemetry_listener.py").read_text()},
                ["extensions/logs-listener"])
    create(lam, "ext-logs-api", [arn], env={
        "TELEMETRY_PORT": str(port), "TELEMETRY_TYPES": "platform,function,extension",
        "LOGS_SCHEMA": "2021-03-18"})
    rid = invoke(lam, "ext-logs-api")["request_id"]
    deadline = time.time() + 20
    while True:
        dump = invoke(lam, "ext-logs-api", {"dump": True})
        events = dump["events"]
        mine = [e for e in events if isinstance(e["record"], dict)
                and e["record"].get("requestId") == rid]
        if {e["type"] for e in mine} >= {"platform.start", "platform.runtimeDone", "platform.end",
                                          "platform.report"} or time.time() > deadline:
            break
        time.sleep(0.3)
    assert dump["subscribed"] == "200 OK"
    by_type = {e["type"]: e["record"] for e in mine}
    assert by_type["platform.start"] == {"requestId": rid, "version": "$LATEST"}
    assert by_type["platform.runtimeDone"] == {"requestId": rid, "status": "success"}
    assert by_type["platform.end"] == {"requestId": rid}
    report = by_type["platform.report"]
    assert set(report) == {"requestId", "metrics"}
    assert report["metrics"]["memorySizeMB"] == 128 and report["metrics"]["durationMs"] > 0
    assert "initDurationMs" in report["metrics"]
    types = {e["type"] for e in events}
    assert not {"platform.initStart", "platform.initReport", "platform.telemetrySubscription"} & types
    assert {"name": "logs-listener", "state": "Subscribed",
            "types": ["platform", "function", "extension"]} in [
        e["record"] for e in events if e["type"] == "platform.logsSubscription"]
    assert f"function says hello {rid}\n" in [e["record"] for e in events if e["type"] == "function"]
    assert "logs-listener says hello\n" in [e["record"] for e in events if e["type"] == "extension"]
    out = server.gust("logs", "ext-logs-api").stdout
    assert "LOGS\tName: logs-listener\tState: Subscribed\tTypes: [Platform, Function, Extension]" in out


def test_init_waits_for_a_slow_extension(server, lam):
    create(lam, "ext-slow-init", [recorder_layer(lam)], env={"EXT_REGISTER_DELAY": "0.6"})
    result = invoke(lam, "ext-slow-init")
    out = wait_for_log(server, "ext-slow-init", f"REPORT RequestId: {result['request_id']}")
    init = float(re.search(r"Init Duration: ([\d.]+) ms", out).group(1))
    assert init >= 600, out
    assert out.index("RECORDER REGISTERED") < out.index(f"START RequestId: {result['request_id']}")


def wait_until(condition, timeout=20, interval=0.05):
    """Polls `condition` until it holds (returning its value) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_an_invocation_ends_when_its_extensions_are_done(server, lam):
    delay = 4
    create(lam, "ext-slow-next", [recorder_layer(lam)], env={"EXT_INVOKE_DELAY": str(delay)})
    lam.put_function_concurrency(FunctionName="ext-slow-next", ReservedConcurrentExecutions=1)
    cold = invoke(lam, "ext-slow-next")  # the cold start, out of the way
    # Complete once the extension is done with it (REPORT written, the place free again).
    wait_for_log(server, "ext-slow-next", f"REPORT RequestId: {cold['request_id']}")
    began = time.monotonic()
    first = invoke(lam, "ext-slow-next")
    answered = time.monotonic() - began
    # The caller has the response when the runtime answered, not when the extension is
    # done (well under its delay, with room for a loaded machine).
    assert answered < delay - 1.5, answered
    # The environment (and the function's one place) is still the extension's: throttled
    # while its REPORT is not written.
    status, code, _ = error_of(lambda: lam.invoke(FunctionName="ext-slow-next", Payload=b"{}"))
    assert (status, code) == (429, "TooManyRequestsException")
    assert f"REPORT RequestId: {first['request_id']}" not in server.gust("logs", "ext-slow-next").stdout
    out = wait_for_log(server, "ext-slow-next", f"REPORT RequestId: {first['request_id']}")
    assert f"REPORT RequestId: {first['request_id']}" in out

    # Once REPORT is written the place is free: the next invoke is admitted (polled: the
    # log is written just before the release) and served by the same environment.
    def admitted():
        try:
            return invoke(lam, "ext-slow-next")
        except Exception as error:  # noqa: BLE001 - throttled until released
            if "TooManyRequests" not in str(error):
                raise
            return None
    third = wait_until(admitted, timeout=10, interval=0.1)
    assert third, "still throttled after the extension was done"
    assert third["env"] == first["env"], "the same environment, once the extension was done"
    out = wait_for_log(server, "ext-slow-next", f"REPORT RequestId: {third['request_id']}")
    done = out.index(f"RECORDER DONE {first['request_id']}")
    assert done < out.index(f"REPORT RequestId: {first['request_id']}")
    assert done < out.index(f"START RequestId: {third['request_id']}")
    duration = float(re.search(
        rf"REPORT RequestId: {first['request_id']}\tDuration: ([\d.]+) ms", out).group(1))
    assert duration >= delay * 1000, "REPORT's duration includes the extension's work"


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "no-isolation"])
def test_an_extension_that_exits_during_an_invoke_resets_the_environment(
        server, lam, make_server, isolated):
    # Isolated, pid 1 of the environment started the extension; without isolation, the
    # server did: both are watched.
    if not isolated:
        server = make_server(["--no-isolation"])
        lam = server.client()
    # Timeout 10 s: nothing here may wait for it.
    create(lam, "ext-crash", [recorder_layer(lam)], env={"EXT_EXIT_ON_INVOKE": "3"})
    lam.put_function_concurrency(FunctionName="ext-crash", ReservedConcurrentExecutions=1)
    began = time.monotonic()
    first = invoke(lam, "ext-crash")
    out = wait_for_log(server, "ext-crash", f"REPORT RequestId: {first['request_id']}")
    # Ended by the exit, not by the function's timeout.
    assert time.monotonic() - began < 8, out
    assert f"RECORDER EXITING {first['request_id']}" in out
    assert "EXTENSION\tName: recorder\tState: Crashed\tEvents: [INVOKE, SHUTDOWN]" in out
    assert (f"RequestId: {first['request_id']} Error: extension recorder exited"
            "\tExtension.Crash") in out
    report = re.search(rf"REPORT RequestId: {first['request_id']}\t.*", out).group(0)
    assert "Status: error\tError Type: Extension.Crash" in report, report
    assert "Status: timeout" not in report
    # The one place is free again at once, and a fresh environment serves the next invoke.
    second = invoke(lam, "ext-crash")
    assert second["env"] != first["env"], "the environment was reset"
    out = wait_for_log(server, "ext-crash", f"REPORT RequestId: {second['request_id']}")
    assert time.monotonic() - began < 15, "well under two function timeouts"
    assert out.count("RECORDER REGISTERED") == 2

"""Concurrency beyond reservations: provisioned concurrency (INIT ahead of requests, READY,
spill-over, replacement, retirement), the account's concurrency limit, the scaling rate,
and the host's memory budget."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import create, error_of, make_zip, module_server

# INIT_AT is taken at import: an environment initialised ahead of requests has it earlier
# than the invocation that uses it.
TIMED = make_zip({"app.py": (
    "import os, time\n"
    "INIT_AT = time.time()\n"
    "def handler(event, context):\n"
    "    if event.get('die'):\n"
    "        os._exit(3)\n"
    "    start = time.time()\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    return {'init_at': INIT_AT, 'start': start,\n"
    "            'type': os.environ.get('AWS_LAMBDA_INITIALIZATION_TYPE'),\n"
    "            'stream': context.log_stream_name}\n")})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "capacity")


def wait_for_status(lam, name, qualifier, status, timeout=30):
    deadline = time.time() + timeout
    while True:
        config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if config["Status"] == status or time.time() > deadline:
            return config
        time.sleep(0.2)


def run_concurrently(calls):
    results = [None] * len(calls)

    def run(index):
        try:
            results[index] = calls[index]()
        except Exception as error:  # throttles are results here
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def payload(response):
    return json.loads(response["Payload"].read())


def reason(error):
    return getattr(error, "response", {}).get("Reason")


def test_provisioned_concurrency_api_follows_lambdas_rules(shared):
    lam = shared.client()
    create(lam, "pc-rules", TIMED)
    version = lam.publish_version(FunctionName="pc-rules")["Version"]
    lam.create_alias(FunctionName="pc-rules", Name="live", FunctionVersion=version)
    # Not on $LATEST, nor on a version or alias that does not exist.
    status, code, message = error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    assert error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier="9", ProvisionedConcurrentExecutions=1))[:2] == (404, "ResourceNotFoundException")
    assert error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="nope", Qualifier="1", ProvisionedConcurrentExecutions=1))[:2] == (404, "ResourceNotFoundException")
    # Nothing configured yet.
    status, code, message = error_of(lambda: lam.get_provisioned_concurrency_config(FunctionName="pc-rules", Qualifier="live"))
    assert (status, code, message) == (404, "ProvisionedConcurrencyConfigNotFoundException",
                                       "No Provisioned Concurrency Config found for this function")
    assert lam.list_provisioned_concurrency_configs(FunctionName="pc-rules")["ProvisionedConcurrencyConfigs"] == []
    # At least 1.
    raw = shared.client(parameter_validation=False)
    assert error_of(lambda: raw.put_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier="live", ProvisionedConcurrentExecutions=0))[:2] == (400, "ValidationException")
    # Within the function's reservation, and within the unreserved pool's minimum.
    lam.put_function_concurrency(FunctionName="pc-rules", ReservedConcurrentExecutions=1)
    status, code, message = error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier="live", ProvisionedConcurrentExecutions=2))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "reservedConcurrentExecution" in message
    lam.delete_function_concurrency(FunctionName="pc-rules")
    status, code, message = error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier="live", ProvisionedConcurrentExecutions=901))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "below its minimum value of [100]" in message
    # An alias and the version it routes to cannot both be provisioned.
    put = lam.put_provisioned_concurrency_config(FunctionName="pc-rules", Qualifier=version,
                                                 ProvisionedConcurrentExecutions=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    assert put["Status"] in ("IN_PROGRESS", "READY")
    status, code, message = error_of(lambda: lam.put_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier="live", ProvisionedConcurrentExecutions=1))
    assert (status, code) == (409, "ResourceConflictException")
    # The version's provisioned concurrency comes out of the unreserved pool.
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == settings["ConcurrentExecutions"] - 1
    ready = wait_for_status(lam, "pc-rules", version, "READY")
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 1
    assert ready["AvailableProvisionedConcurrentExecutions"] == 1
    listed = lam.list_provisioned_concurrency_configs(FunctionName="pc-rules")["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [
        f"arn:aws:lambda:us-east-1:000000000000:function:pc-rules:{version}"]
    assert listed[0]["Status"] == "READY"
    lam.delete_provisioned_concurrency_config(FunctionName="pc-rules", Qualifier=version)
    assert error_of(lambda: lam.delete_provisioned_concurrency_config(
        FunctionName="pc-rules", Qualifier=version))[:2] == (404, "ResourceNotFoundException")
    # The aws CLI reads the same shapes.
    shared.aws("lambda", "put-provisioned-concurrency-config", "--function-name", "pc-rules",
               "--qualifier", "live", "--provisioned-concurrent-executions", "1")
    out = json.loads(shared.aws("lambda", "get-provisioned-concurrency-config", "--function-name", "pc-rules",
                                "--qualifier", "live").stdout)
    assert out["RequestedProvisionedConcurrentExecutions"] == 1


def test_provisioned_environments_init_ahead_serve_first_and_spill_over(shared):
    lam = shared.client()
    create(lam, "pc", TIMED)
    version = lam.publish_version(FunctionName="pc")["Version"]
    lam.create_alias(FunctionName="pc", Name="live", FunctionVersion=version)
    configured_at = time.time()
    lam.put_provisioned_concurrency_config(FunctionName="pc", Qualifier="live", ProvisionedConcurrentExecutions=3)
    ready = wait_for_status(lam, "pc", "live", "READY")
    assert ready["Status"] == "READY", ready
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 3
    time.sleep(0.5)
    invoked_at = time.time()
    # Four at once: three on the provisioned environments, the fourth on a cold one.
    results = run_concurrently([
        lambda: lam.invoke(FunctionName="pc", Qualifier="live", Payload=b'{"sleep": 1.5}', LogType="Tail")
        for _ in range(4)])
    bodies = [payload(r) for r in results]
    kinds = sorted(b["type"] for b in bodies)
    assert kinds == ["on-demand"] + ["provisioned-concurrency"] * 3, bodies
    for response, body in zip(results, bodies):
        import base64
        tail = base64.b64decode(response["LogResult"]).decode()
        if body["type"] == "provisioned-concurrency":
            # INIT ran before any request, and its REPORT has no Init Duration.
            assert configured_at <= body["init_at"] < invoked_at
            assert "Init Duration" not in tail and "INIT_START" not in tail
        else:
            assert body["init_at"] >= invoked_at
            assert "Init Duration" in tail
    assert len({b["stream"] for b in bodies}) == 4
    # A provisioned environment that dies is replaced.
    died = lam.invoke(FunctionName="pc", Qualifier="live", Payload=b'{"die": true}')
    assert died.get("FunctionError") == "Unhandled"
    time.sleep(0.3)
    again = wait_for_status(lam, "pc", "live", "READY")
    assert again["AllocatedProvisionedConcurrentExecutions"] == 3
    # Lowering and deleting the configuration retires environments without failing work
    # in flight.
    slow = run_concurrently([
        lambda: lam.invoke(FunctionName="pc", Qualifier="live", Payload=b'{"sleep": 1}'),
        lambda: (time.sleep(0.3), lam.put_provisioned_concurrency_config(
            FunctionName="pc", Qualifier="live", ProvisionedConcurrentExecutions=1))[1],
    ])
    assert payload(slow[0])["type"] == "provisioned-concurrency"
    assert wait_for_status(lam, "pc", "live", "READY")["AllocatedProvisionedConcurrentExecutions"] == 1
    lam.delete_provisioned_concurrency_config(FunctionName="pc", Qualifier="live")
    time.sleep(0.5)
    after = payload(lam.invoke(FunctionName="pc", Qualifier="live", Payload=b"{}"))
    # Only on-demand environments are left (the spill-over one, or a new one).
    assert after["type"] == "on-demand"


def test_an_init_failure_fails_the_configuration(shared):
    lam = shared.client()
    create(lam, "pc-broken", make_zip({"app.py": "raise RuntimeError('no database')\n"}))
    version = lam.publish_version(FunctionName="pc-broken")["Version"]
    lam.put_provisioned_concurrency_config(FunctionName="pc-broken", Qualifier=version,
                                           ProvisionedConcurrentExecutions=2)
    failed = wait_for_status(lam, "pc-broken", version, "FAILED")
    assert failed["Status"] == "FAILED", failed
    assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 0


def test_the_account_concurrency_limit_throttles_with_its_reason(make_server):
    server = make_server(["--concurrency-limit", "3"])
    lam = server.client()
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["ConcurrentExecutions"] == 3 and settings["UnreservedConcurrentExecutions"] == 3
    # A small account cannot reserve below its unreserved minimum (all of it here).
    create(lam, "busy", TIMED)
    status, code, message = error_of(lambda: lam.put_function_concurrency(FunctionName="busy",
                                                                         ReservedConcurrentExecutions=1))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "below its minimum value of [3]" in message
    results = run_concurrently([
        lambda: lam.invoke(FunctionName="busy", Payload=b'{"sleep": 2}') for _ in range(5)])
    ran = [r for r in results if isinstance(r, dict)]
    throttled = [r for r in results if not isinstance(r, dict)]
    assert len(ran) == 3, results
    assert [reason(e) for e in throttled] == ["ConcurrentInvocationLimitExceeded"] * 2
    assert all(e.response["ResponseMetadata"]["HTTPStatusCode"] == 429 for e in throttled)


def test_a_functions_scaling_rate_bounds_new_environments(make_server):
    server = make_server(["--scaling-rate", "2/60s"])
    lam = server.client()
    create(lam, "bursty", TIMED)
    results = run_concurrently([
        lambda: lam.invoke(FunctionName="bursty", Payload=b'{"sleep": 1.5}') for _ in range(4)])
    ran = [r for r in results if isinstance(r, dict)]
    assert len(ran) == 2, results
    assert sorted(reason(e) for e in results if not isinstance(e, dict)) == [
        "FunctionInvocationRateLimitExceeded"] * 2
    # Warm environments are not new ones: they keep serving.
    assert all("FunctionError" not in lam.invoke(FunctionName="bursty", Payload=b"{}") for _ in range(3))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_the_memory_budget_evicts_idle_environments_then_throttles(make_server):
    server = make_server(["--memory-budget", "512M"])
    lam = server.client()
    for name in ("m1", "m2", "m3"):
        create(lam, name, TIMED, MemorySize=256, Timeout=30)
    # Two fit; the first goes idle and is evicted for the third.
    for name in ("m1", "m2", "m3"):
        assert payload(lam.invoke(FunctionName=name, Payload=b"{}"))["type"] == "on-demand"
    # Both environments busy: a third function waits briefly, then is throttled.
    results = run_concurrently([
        lambda: lam.invoke(FunctionName="m1", Payload=b'{"sleep": 4}'),
        lambda: lam.invoke(FunctionName="m2", Payload=b'{"sleep": 4}'),
        lambda: (time.sleep(0.5), lam.invoke(FunctionName="m3", Payload=b"{}"))[1],
    ])
    assert isinstance(results[0], dict) and isinstance(results[1], dict), results
    assert reason(results[2]) == "HostCapacityExceeded", results
    # A burst against a full host is refused without the server growing.
    hold = threading.Thread(target=lambda: run_concurrently([
        lambda: lam.invoke(FunctionName="m1", Payload=b'{"sleep": 6}'),
        lambda: lam.invoke(FunctionName="m2", Payload=b'{"sleep": 6}')]))
    hold.start()
    time.sleep(0.8)
    before = rss_kib(server.process.pid)
    clients = [server.client() for _ in range(8)]
    burst = run_concurrently([
        (lambda c=c: c.invoke(FunctionName="m3", Payload=b"{}")) for c in clients for _ in range(2)])
    assert all(reason(r) == "HostCapacityExceeded" for r in burst), burst
    grown = rss_kib(server.process.pid) - before
    hold.join()
    assert grown < 20 * 1024, f"the server grew by {grown} KiB while refusing a burst"
    # Once the work is done the third function runs again (an idle one is evicted).
    assert "FunctionError" not in lam.invoke(FunctionName="m3", Payload=b"{}")


def signed_invoke(server, name, body=b"{}"):
    """The raw bytes of a signed, keep-alive Invoke of `name` (valid for minutes)."""
    path = f"/2015-03-31/functions/{name}/invocations"
    headers = server.signed_headers("POST", path, body, {"Content-Type": "application/json"})
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "host")
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def invoke_on(connection, reader, request):
    """One request on a keep-alive connection (`reader` reads its answers): the status and
    the answer's body."""
    connection.sendall(request)
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, reader.read(length)


def test_at_the_budget_a_busy_function_keeps_its_environments(make_server):
    """Many more concurrent invokes than the budget holds environments of one function
    (a fast client on keep-alive connections): they wait for its environments and reuse
    them. None is evicted to start another for the same function (one released while an
    invoke decided to start an environment)."""
    server = make_server(["--memory-budget", "512M"])
    lam = server.client()
    create(lam, "busy", TIMED, MemorySize=256, Timeout=30)
    # Both environments the budget holds, started.
    warm = run_concurrently([
        lambda: lam.invoke(FunctionName="busy", Payload=b'{"sleep": 1}') for _ in range(2)])
    started = {payload(r)["init_at"] for r in warm}
    assert len(started) == 2, warm
    request = signed_invoke(server, "busy")

    def work():
        with socket.create_connection(("127.0.0.1", server.port)) as connection, \
                connection.makefile("rb") as reader:
            answers = [invoke_on(connection, reader, request) for _ in range(40)]
        assert all(status == 200 for status, _ in answers), answers[:3]
        return [json.loads(body)["init_at"] for _, body in answers]

    results = run_concurrently([work for _ in range(16)])
    assert all(isinstance(r, list) for r in results), results
    seen = {init_at for r in results for init_at in r}
    assert seen == started, f"environments started under load: {len(seen - started)}"


def test_the_old_max_environments_flag_says_what_replaced_it(tmp_path):
    binary = os.environ["GUST_BIN"]
    done = subprocess.run([binary, "serve", "--data-dir", str(tmp_path), "--max-environments", "5",
                           "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "--memory-budget" in done.stderr and "--concurrency-limit" in done.stderr

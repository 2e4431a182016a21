"""Runtimes that misbehave on their own Runtime API: a function must not starve the server
through its Runtime API, and a runtime that breaks off its response (or asks for the next
event without answering) fails that invocation at once, its event never handed out twice."""

import base64
import json
import re
import sys
import threading
import time

from conftest import ROLE
from functions import PYTHON_APP, package


def deploy(lam, name, files, runtime="python3.12", handler="app.handler", executables=(), **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": package(files, executables)}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def call(lam, name, event=None, **kwargs):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail", **kwargs)
    body = json.loads(response["Payload"].read())
    return response, body, base64.b64decode(response.get("LogResult", "")).decode()


def proc_status(pid):
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) // 1024


# A custom runtime that takes one event, then for `seconds` opens `connections` connections
# to its own Runtime API per round, holds them for a second, closes them and opens the next
# round; it answers the event (on the connection it got it on) with how many it opened.
FLOOD_BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os, resource, socket, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = http.client.HTTPConnection(host, int(port))
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    r = api.getresponse()
    event = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    opened, failed, held = 0, 0, []
    print("flood starts", flush=True)
    end = time.monotonic() + event.get("seconds", 0)
    while time.monotonic() < end:
        for s in held:
            s.close()
        held = []
        for _ in range(event["connections"]):
            try:
                held.append(socket.create_connection((host, int(port)), timeout=2))
                opened += 1
            except OSError:
                failed += 1
        time.sleep(1)
    for s in held:
        s.close()
    api.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response",
                json.dumps({"opened": opened, "failed": failed}))
    api.getresponse().read()
'''


def test_a_runtime_flooding_its_runtime_api_does_not_starve_the_server(server):
    lam = server.client()
    pid = server.process.pid
    deploy(lam, "bystander", {"app.py": PYTHON_APP}, Timeout=10)
    assert "FunctionError" not in call(lam, "bystander", {"warm": 1})[0]
    deploy(lam, "flood", {"bootstrap": FLOOD_BOOTSTRAP}, runtime="provided.al2023", handler="x",
           executables={"bootstrap"}, Timeout=60)
    threads_before, rss_before = proc_status(pid)

    flood = {}

    def run_flood():
        flood["response"], flood["body"], flood["log"] = call(
            server.client(read_timeout=90), "flood", {"connections": 2000, "seconds": 12})

    runner = threading.Thread(target=run_flood)
    runner.start()
    time.sleep(2)  # INIT and the first round of connections
    samples = []
    while runner.is_alive() and len(samples) < 16:
        started = time.monotonic()
        lam.list_functions()
        listed = time.monotonic() - started
        started = time.monotonic()
        response, body, _ = call(lam, "bystander", {"n": len(samples)})
        invoked = time.monotonic() - started
        assert "FunctionError" not in response, body
        threads, rss = proc_status(pid)
        samples.append((listed, invoked, threads, rss))
        time.sleep(0.5)
    runner.join(timeout=90)
    assert not runner.is_alive(), "the flooding invocation did not end"
    worst_list = max(s[0] for s in samples)
    worst_invoke = max(s[1] for s in samples)
    most_threads = max(s[2] for s in samples)
    most_rss = max(s[3] for s in samples)
    print(f"\nflood {flood.get('body')}; {len(samples)} samples; threads {threads_before} -> max {most_threads}; "
          f"RSS {rss_before} -> max {most_rss} MB; worst ListFunctions {worst_list:.3f} s, "
          f"worst warm invoke {worst_invoke:.3f} s", file=sys.stderr)
    assert "FunctionError" not in flood["response"], flood["body"]
    # The flood really happened: thousands of connections were opened to the Runtime API.
    assert flood["body"]["opened"] >= 4000, flood["body"]
    assert len(samples) >= 8, samples
    assert worst_list < 2, samples
    assert worst_invoke < 2, samples
    assert most_threads <= threads_before + 16, samples
    assert most_rss - rss_before < 100, samples
    # Refused connections are reported, but at most one line per environment every few seconds.
    refusals = [line for line in server.log().splitlines() if "Runtime API: refused" in line]
    assert 1 <= len(refusals) <= 6, refusals
    assert "over the limit of 32 per environment" in refusals[-1]


# A custom runtime that misbehaves when asked: `truncate` posts a response announcing 1,000
# bytes, sends 7 and closes the connection; `again` asks for the next event without
# answering. It prints every event it is handed, so the log shows how often it got one.
BROKEN_BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
while True:
    api = http.client.HTTPConnection(host, int(port))
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    r = api.getresponse()
    event = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    print("handed out", rid, flush=True)
    if event.get("truncate"):
        api.sock.sendall(f"POST /2018-06-01/runtime/invocation/{rid}/response HTTP/1.1\r\n"
                         f"Host: {host}\r\nContent-Length: 1000\r\n\r\n".encode() + b'{"part"')
        api.close()
        continue
    if event.get("again"):
        api.close()
        continue
    api.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", json.dumps({"ok": event}))
    api.getresponse().read()
    api.close()
'''


def test_a_runtime_that_breaks_off_its_response_fails_that_invocation_at_once(lam):
    deploy(lam, "broken", {"bootstrap": BROKEN_BOOTSTRAP}, runtime="provided.al2023", handler="x",
           executables={"bootstrap"}, Timeout=30)
    started = time.monotonic()
    response, error, log = call(lam, "broken", {"truncate": True})
    took = time.monotonic() - started
    assert took < 5, f"the invocation ended only after {took:.1f} s"
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.TruncatedResponse", error
    request_id = re.search(r"START RequestId: (\S+)", log).group(1)
    assert error["errorMessage"].startswith(f"RequestId: {request_id} Error:"), error
    # Handed out once; the next `next` did not get it again.
    time.sleep(0.5)
    assert log.count("handed out") == 1, log
    assert "Status: error\tError Type: Runtime.TruncatedResponse" in log
    # The environment is not reused: the next invoke starts a new one, which works.
    response, body, log = call(lam, "broken", {"n": 1})
    assert "FunctionError" not in response, body
    assert body == {"ok": {"n": 1}} and "Init Duration" in log


def test_a_next_without_an_answer_fails_the_invocation_instead_of_repeating_it(lam):
    deploy(lam, "again", {"bootstrap": BROKEN_BOOTSTRAP}, runtime="provided.al2023", handler="x",
           executables={"bootstrap"}, Timeout=30)
    started = time.monotonic()
    response, error, log = call(lam, "again", {"again": True})
    took = time.monotonic() - started
    assert took < 5, f"the invocation ended only after {took:.1f} s"
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.Unknown", error
    assert "without answering" in error["errorMessage"], error
    assert log.count("handed out") == 1, log
    response, body, log = call(lam, "again", {"n": 2})
    assert body == {"ok": {"n": 2}} and "Init Duration" in log

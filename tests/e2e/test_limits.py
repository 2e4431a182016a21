"""Lambda's limits as real limits, where the host gives Gust cgroups (root, or a delegated
hierarchy): memory (OOM is reported as Lambda reports it), a pids limit, and idle
environments frozen between invokes. Skipped, visibly, where cgroups are unavailable."""

import json
import time

import pytest
from conftest import ROLE
from functions import package


@pytest.fixture
def limited(server):
    if "cgroups    on" not in server.log():
        pytest.skip("cgroups are unavailable on this host (needs root or a delegated cgroup hierarchy): "
                    + next((l for l in server.log().splitlines() if "cgroups" in l), "no report"))
    return server.client()


def deploy(lam, name, code, **kwargs):
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package({"app.py": code})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def invoke(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    import base64
    return response, json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


HOG = '''
import os
def handler(event, context):
    if event.get("hog"):
        data = []
        while True:
            data.append(bytearray(8 * 1024 * 1024))
    return os.getpid()
'''


def test_memory_limit_kills_and_reports_out_of_memory(limited):
    deploy(limited, "hog", HOG, MemorySize=128, Timeout=20)
    _, pid, _ = invoke(limited, "hog")
    response, error, log = invoke(limited, "hog", {"hog": True})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory", error
    assert "signal: killed" in error["errorMessage"]
    assert "Error Type: Runtime.OutOfMemory" in log
    assert "Max Memory Used: 128 MB" in log
    _, new_pid, log = invoke(limited, "hog")
    assert new_pid != pid and "Init Duration" in log, "the next invoke gets a fresh environment"


FORK_BOMB = '''
import os, time
def handler(event, context):
    started, failed = 0, 0
    for _ in range(3000):
        try:
            if os.fork() == 0:
                time.sleep(5)
                os._exit(0)
            started += 1
        except OSError:
            failed += 1
            break
    return {"started": started, "failed": failed}
'''


def test_fork_bomb_is_contained_by_the_pids_limit(limited):
    deploy(limited, "forky", FORK_BOMB, MemorySize=1024, Timeout=30)
    response, body, _ = invoke(limited, "forky")
    assert "FunctionError" not in response, body
    assert body["failed"] == 1 and body["started"] < 1024, body


COUNTER = '''
import threading, time
COUNT = [0]
def spin():
    while True:
        COUNT[0] += 1
        time.sleep(0.01)
threading.Thread(target=spin, daemon=True).start()
def handler(event, context):
    return COUNT[0]
'''


def test_idle_environments_are_frozen(limited):
    deploy(limited, "frozen", COUNTER, MemorySize=512)
    _, first, _ = invoke(limited, "frozen")
    time.sleep(1.5)
    _, second, _ = invoke(limited, "frozen")
    # While frozen the background thread gets no CPU: at most a few ticks happen around the
    # invoke itself, far from the ~150 of 1.5 s of running.
    assert second - first < 30, (first, second)

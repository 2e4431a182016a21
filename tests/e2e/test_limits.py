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


def deploy(lam, name, code, runtime="python3.12", **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package({"app.py": code})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def invoke(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    import base64
    return response, json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


HOG = '''
import os, uuid
ENV_ID = uuid.uuid4().hex
def handler(event, context):
    if event.get("hog"):
        data = []
        while True:
            data.append(bytearray(8 * 1024 * 1024))
    return ENV_ID
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


def test_without_cgroups_memory_is_kept_by_a_watchdog(make_server):
    server = make_server(extra_args=["--no-cgroups"])
    assert "cgroups    OFF" in server.log() and "watchdog" in server.log()
    lam = server.client()
    deploy(lam, "hog", HOG, MemorySize=128, Timeout=20)
    _, pid, _ = invoke(lam, "hog")
    response, error, log = invoke(lam, "hog", {"hog": True})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory", error
    assert "Error Type: Runtime.OutOfMemory" in log
    _, new_pid, _ = invoke(lam, "hog")
    assert new_pid != pid


# The system's Python (Debian's /usr/bin/python3.11): an unprivileged user cannot run root's
# pyenv installations, and a runtime id runs only on an interpreter of its own version.
UNPRIVILEGED_PYTHON = "python3.11"


def test_unprivileged_server_runs_functions_and_says_what_is_missing(tmp_path):
    """The same server started without root (privileges dropped to nobody) still runs
    functions, and its startup report names the protections it could not get."""
    import os
    import signal as signals
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges to nobody (this run is already unprivileged)")
    import pwd
    from conftest import Server
    import shutil
    import tempfile
    from pathlib import Path
    nobody = pwd.getpwnam("nobody")
    # pytest's own temporary directories are private to root; nobody needs a path it can reach.
    data = Path(tempfile.mkdtemp(prefix="gust-nobody-"))
    os.chmod(data, 0o755)
    os.chown(data, nobody.pw_uid, nobody.pw_gid)

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    server = Server(data / "gust", env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(data)})
    server.log_path = data / "server.log"
    import subprocess
    original = subprocess.Popen

    def popen_as_nobody(*args, **kwargs):
        kwargs["preexec_fn"] = drop
        return original(*args, **kwargs)

    subprocess.Popen = popen_as_nobody
    try:
        server.start()
    finally:
        subprocess.Popen = original
    try:
        log = server.log()
        assert "cgroups    OFF" in log, log
        lam = server.client()
        if "isolation  on  rootless" in log:
            # Isolated through a user namespace: Lambda's user and layout, nothing of the host.
            from test_isolation import PROBE
            deploy(lam, "probe", PROBE, runtime=UNPRIVILEGED_PYTHON)
            response, body, _ = invoke(lam, "probe", {"read": ["/etc/shadow", str(data)]})
            assert "FunctionError" not in response, body
            assert body["uid"] == 993 and body["cwd"] == "/var/task" and body["pids"] == [1, 2]
            assert int(body["capabilities"], 16) == 0 and body["no_new_privs"] == "1"
            assert set(body["read"].values()) <= {"ENOENT", "EACCES"}, body["read"]
            assert body["write"]["/var/task/x"] in ("EROFS", "EACCES") and body["write"]["/tmp/ok"] == "allowed"
        else:
            assert "isolation  OFF unavailable (the server is not root" in log, log
            deploy(lam, "plain", "import os\ndef handler(event, context):\n    return os.geteuid()\n",
                   runtime=UNPRIVILEGED_PYTHON)
            response, uid, _ = invoke(lam, "plain")
            assert "FunctionError" not in response
            assert uid == nobody.pw_uid, "the function runs as the (unprivileged) server user"
    finally:
        server.stop(signals.SIGTERM)
        shutil.rmtree(data, ignore_errors=True)

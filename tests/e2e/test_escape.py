"""Functions that try what a function has no business doing, and must fail: the seccomp
filter (with no_new_privs) refuses mounting, tracing other processes, creating or entering
namespaces, loading kernel code and changing the clock — even for a server run as root.
The rest of the escape suite (filesystem and process views) comes with namespaces
(test_isolation.py). Both run with the function's environment started afresh and forked
from the runtime's zygote."""

import json

import pytest
from conftest import ROLE
from functions import package

ESCAPES = r'''
import ctypes, ctypes.util, errno, os, subprocess, threading
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

def attempt(result):
    return "refused" if result == -1 and ctypes.get_errno() == errno.EPERM else f"allowed ({result}, errno {ctypes.get_errno()})"

def handler(event, context):
    os.makedirs("/tmp/gust-escape-target", exist_ok=True)
    results = {
        "mount": attempt(libc.mount(b"none", b"/tmp/gust-escape-target", b"tmpfs", 0, None)),
        "ptrace": attempt(libc.ptrace(16, int(event["victim"]), None, None)),  # PTRACE_ATTACH
        "unshare": attempt(libc.unshare(0x10000000)),  # CLONE_NEWUSER
        "setns": attempt(libc.setns(os.open("/proc/self/ns/net", os.O_RDONLY), 0)),
        "reboot": attempt(libc.reboot(0x4321FEDC)),  # RB_POWER_OFF: must never go through
        "sethostname": attempt(libc.sethostname(b"owned", 5)),
        "bpf": attempt(libc.syscall(321, 0, None, 0)),
        "init_module": attempt(libc.syscall(175, None, 0, b"")),
    }
    # x32 numbering (bit 30) of unshare(CLONE_NEWUSER): refused too, not a way around.
    x32 = libc.syscall(0x40000000 | 272, 0x10000000)
    results["x32_unshare"] = "refused" if x32 == -1 and ctypes.get_errno() in (errno.ENOSYS, errno.EPERM) else f"allowed ({x32})"
    # What functions legitimately do still works.
    box = []
    t = threading.Thread(target=lambda: box.append("thread ok"))
    t.start(); t.join()
    results["thread"] = box[0]
    results["subprocess"] = subprocess.run(["/bin/echo", "child ok"], capture_output=True, text=True).stdout.strip()
    results["no_new_privs"] = [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1]
    results["forked"] = "gust_zygote" in __import__("sys").modules
    return results
'''


@pytest.fixture(params=["fresh", "forked"])
def server(request, make_server):
    """A server whose Python environments start afresh, or are forked from a zygote (one
    primed from start-up, so the first cold start is forked)."""
    if request.param == "fresh":
        return make_server(["--prestart", "off"])
    server = make_server(["--prestart", "python3.12"])
    wait_for_zygote(server)
    return server


def wait_for_zygote(server, seconds=20):
    """Until the server has a zygote (a child whose environment names its control socket),
    where isolation is on."""
    import os
    import time
    if "isolation  on" not in server.log():
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == server.process.pid and b"_GUST_ZYGOTE_FD=" in open(f"/proc/{pid}/environ", "rb").read():
                    return
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.05)
    raise AssertionError("no zygote started")


def test_seccomp_refuses_what_functions_must_not_do(server, request):
    if "seccomp    on" not in server.log():
        pytest.skip("seccomp is unavailable on this host: " + server.log())
    lam = server.client()
    lam.create_function(FunctionName="escape", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package({"app.py": ESCAPES})}, Timeout=10)
    lam.get_waiter("function_active_v2").wait(FunctionName="escape", WaiterConfig={"Delay": 1})
    victim = server.process.pid  # the server itself
    response = lam.invoke(FunctionName="escape", Payload=json.dumps({"victim": victim}).encode())
    results = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, results
    for call in ["mount", "ptrace", "unshare", "setns", "reboot", "sethostname", "bpf", "init_module", "x32_unshare"]:
        assert results[call] == "refused", (call, results)
    assert results["thread"] == "thread ok"
    assert results["subprocess"] == "child ok"
    assert results["no_new_privs"] == "1"
    if "isolation  on" in server.log():
        assert results["forked"] == (request.node.callspec.params["server"] == "forked"), results

"""Functions that try what a function has no business doing, and must fail: the seccomp
filter (with no_new_privs) refuses mounting, tracing other processes, creating or entering
namespaces, loading kernel code and changing the clock — even for a server run as root.
The rest of the escape suite (filesystem and process views) comes with namespaces."""

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
    return results
'''


def test_seccomp_refuses_what_functions_must_not_do(server):
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

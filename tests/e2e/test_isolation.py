"""The escape suite for isolated environments: functions that try to see or touch what is not
theirs — the host's secrets and processes, the Gust data directory, other functions' code and
/tmp, the filesystem outside /tmp, more /tmp or CPU than they were given, the network in
`--sandbox-network none` — and must fail. Needs root (namespaces and mounts); where the
server reports isolation unavailable, these tests are skipped with its reason."""

import json
import os
import socket
import time

import pytest
from conftest import ROLE
from functions import package

PROBE = r'''
import errno, json, os, socket

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def write(path):
    def go():
        with open(path, "w") as f:
            f.write("owned")
    return go

def read(path):
    return lambda: open(path, "rb").read()

def listing(path):
    return lambda: os.listdir(path)

def connect(host, port):
    def go():
        s = socket.create_connection((host, port), timeout=2)
        s.close()
    return go

def handler(event, context):
    if event.get("secret"):
        with open("/tmp/secret", "w") as f:
            f.write(event["secret"])
    status = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in open("/proc/self/status")}
    return {
        "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "capabilities": status["CapEff"], "bounding": status["CapBnd"], "no_new_privs": status["NoNewPrivs"],
        "hostname": socket.gethostname(),
        "cwd": os.getcwd(),
        "task": sorted(os.listdir("/var/task")),
        "tmp": sorted(os.listdir("/tmp")),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "root": sorted(os.listdir("/")),
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "runtime_dir": os.environ["LAMBDA_RUNTIME_DIR"],
        "read": {p: attempt(read(p)) for p in event.get("read", [])},
        "list": {p: attempt(listing(p)) for p in event.get("list", [])},
        "write": {p: attempt(write(p)) for p in ["/var/task/x", "/var/runtime/x", "/opt/x", "/etc/x", "/x", "/usr/x", "/dev/x", "/proc/x", "/tmp/ok"]},
        "kill": {str(p): attempt(lambda p=p: os.kill(p, 0)) for p in event.get("kill", [])},
        "connect": {f"{h}:{p}": attempt(connect(h, p)) for h, p in event.get("connect", [])},
        "statvfs_tmp": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
        "lib64": sorted(n for n in os.listdir("/lib64") if n.startswith(("libc.so", "ld-linux"))),
    }
'''

FILL_TMP = r'''
import errno, os
def handler(event, context):
    written = 0
    chunk = b"x" * (1 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < event["mb"] << 20:
                f.write(chunk)
                f.flush()
                written += len(chunk)
        outcome = "no error"
    except OSError as e:
        outcome = errno.errorcode.get(e.errno, str(e.errno))
    os.remove("/tmp/fill")
    return {"outcome": outcome, "written_mb": written >> 20}
'''

BURN = r'''
import time
def handler(event, context):
    wall = time.monotonic()
    cpu = time.process_time()
    while time.monotonic() - wall < event["seconds"]:
        sum(range(10000))
    return (time.process_time() - cpu) / (time.monotonic() - wall)
'''


def require_isolation(server):
    line = next((l for l in server.log().splitlines() if l.strip().startswith("isolation")), "no report")
    if "isolation  on" not in line:
        pytest.skip("isolation is unavailable on this host (needs root): " + line.strip())


@pytest.fixture
def isolated(make_server):
    """A server whose Python 3.12 environments are forked from the runtime's zygote (primed
    from start-up): the escape suite holds for them (test_prestart.py compares forked and
    fresh environments field by field; test_escape.py runs both ways)."""
    from test_escape import wait_for_zygote
    server = make_server(["--prestart", "python3.12"])
    require_isolation(server)
    wait_for_zygote(server)
    return server


def deploy(lam, name, code, runtime="python3.12", **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package({"app.py": code})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def invoke(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def wait_for_spare(server_pid, seconds=5):
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for task in os.listdir(f"/proc/{server_pid}/task"):
            try:
                children = open(f"/proc/{server_pid}/task/{task}/children").read().split()
            except OSError:
                continue
            for child in children:
                try:
                    if b"--await-spec" in open(f"/proc/{child}/cmdline", "rb").read():
                        return True
                except OSError:
                    pass
        time.sleep(0.05)
    return False


def host_code_dirs(server):
    return sorted(str(p) for p in (server.data_dir / "code" / "unpacked").iterdir())


def test_functions_see_lambdas_filesystem_and_nothing_of_the_host(isolated):
    lam = isolated.client()
    deploy(lam, "probe", PROBE)
    deploy(lam, "other", PROBE + "\n# another function's code\n")
    invoke(lam, "other", {"secret": "other's secret"})
    data_dir = str(isolated.data_dir)
    secrets = ["/etc/shadow", "/etc/gshadow", f"{data_dir}/credentials", "/root/.bash_history",
               "/proc/1/environ"] + [f"{d}/app.py" for d in host_code_dirs(isolated)]
    body = invoke(lam, "probe", {
        "read": secrets,
        "list": [data_dir, "/home", "/root", "/work", f"{data_dir}/code/unpacked"],
    })
    # Who it runs as: Lambda's sandbox user, no capabilities, no way to gain any.
    assert body["uid"] == 993 and body["gid"] == 990 and body["groups"] == []
    assert int(body["capabilities"], 16) == 0 and int(body["bounding"], 16) == 0
    assert body["no_new_privs"] == "1"
    # Lambda's layout.
    assert body["cwd"] == body["task_root"] == "/var/task" and body["runtime_dir"] == "/var/runtime"
    assert body["task"] == ["app.py"]
    assert {"var", "tmp", "opt", "proc", "dev", "usr", "etc"} <= set(body["root"])
    assert "home" not in body["root"] and "work" not in body["root"]
    # The C library where Amazon Linux has it, second in Lambda's LD_LIBRARY_PATH (a
    # Debian-style host's multiarch directory is the environment's /lib64), and the loader
    # every binary names.
    assert "libc.so.6" in body["lib64"] and any(n.startswith("ld-linux") for n in body["lib64"]), body["lib64"]
    # Nothing of the host's secrets, the data directory or other functions' code.
    for path, outcome in body["read"].items():
        assert outcome in ("ENOENT", "EACCES"), (path, outcome)
    for path, outcome in body["list"].items():
        # /root exists only as the path to a bound interpreter, if the host's lives there.
        assert outcome in ("ENOENT", "EACCES") or (path == "/root" and outcome == "allowed"), (path, outcome)
    # Writes go to /tmp only.
    for path, outcome in body["write"].items():
        expected = "allowed" if path == "/tmp/ok" else ("EROFS", "EACCES", "ENOENT")
        assert outcome in expected, (path, outcome)
    # Another function's /tmp is not this one's.
    assert "secret" not in body["tmp"]
    assert "secret" in invoke(lam, "other")["tmp"], "the other function's own /tmp kept its file"


def test_functions_see_only_their_own_processes(isolated):
    lam = isolated.client()
    deploy(lam, "procs", PROBE)
    server_pid = isolated.process.pid
    body = invoke(lam, "procs", {"kill": [server_pid]})
    # Pid 1 is the environment's init, then the runtime (2 when the init started it, 3 when
    # forked from the zygote: the process forked into the namespace that forked it was 2),
    # and nothing else exists.
    assert body["pids"][0] == 1 and len(body["pids"]) == 2 and body["pids"][1] in (2, 3), body["pids"]
    assert body["kill"][str(server_pid)] == "ESRCH"
    assert body["hostname"] == "localhost"
    # The host never sees the environment's mounts (they live in its own mount namespace).
    with open("/proc/self/mountinfo") as mounts:
        assert str(isolated.data_dir) not in mounts.read()
    # Later cold starts are handed to a spare supervisor, and that works.
    for round in range(3):
        lam.update_function_configuration(FunctionName="procs", Environment={"Variables": {"ROUND": str(round)}})
        lam.get_waiter("function_updated_v2").wait(FunctionName="procs", WaiterConfig={"Delay": 1})
        pids = invoke(lam, "procs")["pids"]
        assert pids[0] == 1 and len(pids) == 2, pids
    assert "spare environment" not in isolated.log(), isolated.log()
    if "cgroups    on" in isolated.log():
        assert wait_for_spare(isolated.process.pid), "a spare supervisor is waiting for the next cold start"


def test_each_environment_has_a_private_tmp_of_the_ephemeral_storage_size(isolated):
    lam = isolated.client()
    deploy(lam, "probe", PROBE, EphemeralStorage={"Size": 1024})
    body = invoke(lam, "probe", {"secret": "mine"})
    assert body["statvfs_tmp"] == 1024 << 20
    # A new environment (after a configuration change) starts with an empty /tmp.
    lam.update_function_configuration(FunctionName="probe", EphemeralStorage={"Size": 600})
    lam.get_waiter("function_updated_v2").wait(FunctionName="probe", WaiterConfig={"Delay": 1})
    body = invoke(lam, "probe")
    assert body["tmp"] == [] and body["statvfs_tmp"] == 600 << 20


def test_filling_tmp_fails_with_enospc_at_the_configured_size(isolated):
    lam = isolated.client()
    # tmpfs pages count toward the environment's memory: give it room for 512 MB of /tmp.
    deploy(lam, "fill", FILL_TMP, EphemeralStorage={"Size": 512}, MemorySize=1024, Timeout=60)
    before = os.statvfs(str(isolated.data_dir))
    body = invoke(lam, "fill", {"mb": 700})
    assert body["outcome"] == "ENOSPC", body
    assert 500 <= body["written_mb"] <= 512, body
    after = os.statvfs(str(isolated.data_dir))
    # The host's disk did not take the writes (allowing for unrelated activity).
    assert (before.f_bavail - after.f_bavail) * after.f_frsize < 64 << 20


def test_cpu_is_shared_in_proportion_to_memory(isolated):
    if "cpu        on" not in isolated.log():
        pytest.skip("the CPU quota is off on this host: " + isolated.log())
    lam = isolated.client()
    deploy(lam, "small", BURN, MemorySize=128, Timeout=30)
    deploy(lam, "large", BURN, MemorySize=1769, Timeout=30)
    small = invoke(lam, "small", {"seconds": 1.5})
    large = invoke(lam, "large", {"seconds": 1.5})
    # 128 MB is 128/1769 ≈ 0.07 of a vCPU; 1,769 MB is a whole one.
    assert small < 0.12, small
    assert large > 0.5, large


def test_outbound_connections_work_on_the_host_network(isolated):
    lam = isolated.client()
    deploy(lam, "net", PROBE)
    body = invoke(lam, "net", {"connect": [["127.0.0.1", isolated.port]]})
    assert body["connect"][f"127.0.0.1:{isolated.port}"] == "allowed"


def test_sandbox_network_none_leaves_only_loopback(make_server):
    if os.geteuid() != 0:
        pytest.skip("--sandbox-network none needs root (network namespaces owned by the host)")
    server = make_server(extra_args=["--sandbox-network", "none"])
    require_isolation(server)
    assert "network    on  none" in server.log()
    lam = server.client()
    deploy(lam, "offline", PROBE)
    import socket
    with socket.socket() as host_service:
        # Something else listening on the host's loopback.
        host_service.bind(("127.0.0.1", 0))
        host_service.listen()
        other = host_service.getsockname()[1]
        body = invoke(lam, "offline", {"connect": [["127.0.0.1", other], ["127.0.0.1", server.port],
                                                   ["10.255.255.1", 80]]})
    # The host's loopback is not this one, and no route leads anywhere else; only Gust's
    # own API is served inside, at the address it has on the host.
    assert body["connect"][f"127.0.0.1:{other}"] == "ECONNREFUSED"
    assert body["connect"][f"127.0.0.1:{server.port}"] == "allowed"
    assert body["connect"]["10.255.255.1:80"] in ("ENETUNREACH", "EHOSTUNREACH"), body["connect"]
    # The Runtime API is reachable all the same: the invoke above answered, and so does a
    # second one on the same environment.
    again = invoke(lam, "offline")
    assert again["pids"] == [1, 2] and "ok" in again["tmp"], "the same environment answered"


def test_node_runs_isolated_too(isolated):
    lam = isolated.client()
    code = ("const fs = require('fs');\n"
            "exports.handler = async () => ({uid: process.getuid(), task: fs.readdirSync('/var/task'),"
            " pids: fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map(Number)});\n")
    lam.create_function(FunctionName="node", Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": package({"index.js": code})})
    lam.get_waiter("function_active_v2").wait(FunctionName="node", WaiterConfig={"Delay": 1})
    body = invoke(lam, "node")
    assert body == {"uid": 993, "task": ["index.js"], "pids": [1, 2]}


def test_sandbox_network_none_needs_isolation(tmp_path):
    import subprocess
    from conftest import free_port
    result = subprocess.run([os.environ["GUST_BIN"], "serve", "--no-isolation", "--sandbox-network", "none",
                             "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--sandbox-network none needs isolated environments" in result.stderr


def test_doctor_reports_the_sandbox_and_what_is_missing():
    """`gust doctor` sets up a throwaway environment to report what works; run without
    root, it says what is missing and what that means."""
    import pwd
    import subprocess
    from conftest import GUST_BIN

    def doctor(preexec=None):
        result = subprocess.run([str(GUST_BIN), "doctor"], capture_output=True, text=True, timeout=60,
                                preexec_fn=preexec, cwd="/")
        assert result.returncode == 0, result.stderr
        return {line.split()[0]: line for line in result.stdout.splitlines() if line and not line.startswith(" ")}

    if os.geteuid() != 0:
        pytest.skip("needs root to compare the privileged and unprivileged reports")
    rows = doctor()
    for check in ["privileges", "cgroups", "freezer", "seccomp", "namespaces", "tmpfs", "network"]:
        assert check in rows, rows
    assert rows["namespaces"].split()[1] == "yes" and "uid 993" in rows["namespaces"]

    nobody = pwd.getpwnam("nobody")

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    rows = doctor(drop)
    assert rows["privileges"].split()[1] == "no"
    assert rows["cgroups"].split()[1] == "no"
    # Without root, isolation goes through a user namespace where the host allows one.
    userns = rows["user"]  # "user namespaces  yes  ..."
    if userns.split()[2] == "yes":
        assert rows["namespaces"].split()[1] == "yes" and "rootless" in rows["namespaces"]
    else:
        assert rows["namespaces"].split()[1] == "no" and rows["tmpfs"].split()[1] == "no"
    assert rows["network"].split()[1] == "no", "--sandbox-network none needs root"


PRELOAD_C = r'''
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void owned(void) {
    const char *path = getenv("GUST_MARKER");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (f) { fprintf(f, "%d\n", (int)getuid()); fclose(f); }
}
'''

PRELOAD_APP = r'''
import os
def handler(event, context):
    path = os.environ["GUST_MARKER"]
    return open(path).read().split() if os.path.exists(path) else []
'''


def test_the_functions_variables_never_reach_the_root_supervisor(isolated, tmp_path):
    """`LD_PRELOAD` among a function's variables applies to its runtime only: the
    supervisor that sets the environment up (as root, on the host) never sees them."""
    import hashlib
    import shutil
    import subprocess
    import uuid
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler on this host to build the preloaded library")
    (tmp_path / "owned.c").write_text(PRELOAD_C)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(tmp_path / "owned.so"), str(tmp_path / "owned.c")], check=True)
    code = package({"app.py": PRELOAD_APP, "owned.so": (tmp_path / "owned.so").read_bytes()})
    host_dir = isolated.data_dir / "code" / "unpacked" / hashlib.sha256(code).hexdigest()
    marker = f"/tmp/gust-preload-{uuid.uuid4().hex}"
    lam = isolated.client()
    lam.create_function(FunctionName="preload", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": code},
                        Environment={"Variables": {"LD_PRELOAD": f"{host_dir}/owned.so:/var/task/owned.so",
                                                   "GUST_MARKER": marker}})
    lam.get_waiter("function_active_v2").wait(FunctionName="preload", WaiterConfig={"Delay": 1})
    try:
        for round in range(3):  # a direct start, then spares
            lam.update_function_configuration(FunctionName="preload", Description=str(round))
            lam.get_waiter("function_updated_v2").wait(FunctionName="preload", WaiterConfig={"Delay": 1})
            loaded_by = invoke(lam, "preload")
            # The runtime did load it (as uid 993, inside): the variable works as on Lambda...
            assert loaded_by and set(loaded_by) == {"993"}, loaded_by
        # ...and nothing ran on the host.
        assert not os.path.exists(marker), open(marker).read()
    finally:
        if os.path.exists(marker):
            os.remove(marker)


THIEF = r'''
import os, socket, time
def handler(event, context):
    host, port = event["target"].split(":")
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    try:
        answer = s.recv(4096)
    except ConnectionResetError:
        answer = b""  # closed unanswered (with the request unread: a reset)
    except socket.timeout:
        answer = None
    return {"answer": None if answer is None else answer.decode(errors="replace"),
            "seconds": time.monotonic() - started}
'''


def test_a_function_cannot_use_another_environments_runtime_api(server):
    """On the host's network every Runtime API is on the same loopback; a connection
    that does not come from the environment's own processes is closed unanswered."""
    lam = server.client()
    deploy(lam, "victim", "import os\ndef handler(event, context):\n    return {'api': os.environ['AWS_LAMBDA_RUNTIME_API'], 'event': event}\n")
    deploy(lam, "thief", THIEF)
    target = invoke(lam, "victim")["api"]
    stolen = invoke(lam, "thief", {"target": target})
    # Closed without a byte (before: a long poll that would have received the victim's next event).
    assert stolen["answer"] == "", stolen
    assert stolen["seconds"] < 4
    # Reported (the first refusal at once; a flood of them as counts every few seconds).
    assert "Runtime API: refused 1 connection(s) since the last report: 1 from outside the environment" in server.log()
    # The victim's own connection is untouched: its next event reaches it.
    assert invoke(lam, "victim", {"n": 2}) == {"api": target, "event": {"n": 2}}


def test_what_a_crashed_server_left_is_cleared_at_the_next_start(make_server, tmp_path):
    """kill -9 leaves environments running in their cgroups (a spare ends by itself when
    the server's end of its socket closes); the next start on the same data directory
    ends them and removes the cgroups."""
    import hashlib
    import signal
    data = tmp_path / "crash"
    server = make_server(data_dir=data)
    require_isolation(server)
    if "cgroups    on" not in server.log():
        pytest.skip("finding what a crash left needs cgroups (root): " + server.log())
    lam = server.client()
    deploy(lam, "left", PROBE)
    invoke(lam, "left")
    assert wait_for_spare(server.process.pid)
    instance = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:12]
    parent = f"/sys/fs/cgroup/pids/gust-{instance}"
    if not os.path.isdir(parent):
        parent = f"/sys/fs/cgroup/gust-{instance}"  # cgroup v2

    def left_behind():
        pids = []
        for entry in os.listdir(parent) if os.path.isdir(parent) else []:
            if entry.startswith("env-"):
                try:
                    with open(f"{parent}/{entry}/cgroup.procs") as procs:
                        pids += [int(p) for p in procs.read().split()]
                except FileNotFoundError:  # removed while listing
                    pass
        return pids

    server.stop(signal.SIGKILL)
    orphans = left_behind()

    def described(pids):
        found = {}
        for pid in pids:
            try:
                found[pid] = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")[:100]
            except OSError as error:
                found[pid] = str(error)
        return found
    assert len(orphans) >= 3, ("the environment (supervisor, init, runtime) survives the crash",
                               described(orphans), os.listdir(parent))
    again = make_server(data_dir=data)
    # Cleared in the background, so the restart does not wait for it.
    deadline = time.monotonic() + 20
    while left_behind() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left_behind() == []

    def ended(pid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    # A process leaves its cgroup before it has finished exiting (an init still waits for
    # the rest of its pid namespace), so the cgroups can be gone a moment before it is.
    while not all(ended(pid) for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in orphans:
        assert ended(pid), (pid, described([pid]), open(f"/proc/{pid}/stat").read())
    assert invoke(again.client(), "left")["pids"] == [1, 2]


def test_a_relative_data_directory_works(make_server, tmp_path, monkeypatch):
    """As the README starts it: `gust serve` with `./.gust-data`, relative to where it runs
    (environments are set up from `/`, so every path given to them must be absolute)."""
    from pathlib import Path
    monkeypatch.chdir(tmp_path)
    server = make_server(data_dir=Path(".gust-data"))
    lam = server.client()
    deploy(lam, "relative", PROBE)
    body = invoke(lam, "relative")
    assert body["task"] == ["app.py"] and body["tmp"] == []

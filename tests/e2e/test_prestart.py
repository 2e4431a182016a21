"""Primed environments (`--prestart`): a spare whose runtime was started ahead of need, in a
prepared sandbox, and handed the function's environment when a cold start claims it. These
tests prove a primed environment is isolated exactly as one started afresh (namespaces,
cgroup, user, /tmp, limits, environment), that two primed environments share nothing, that
the function's variables (TZ included) are seen exactly, that INIT is still logged, and
that functions whose variables act at process start are started afresh. Also Lambda's
resource limits (`ulimit -n` 1024, 1024 processes per environment) and `/bin/sh` being bash.
Needs root (namespaces and mounts); skipped where the server reports isolation unavailable.
"""

import base64
import json
import os
import re
import time

import pytest
from conftest import ROLE
from functions import package

PYTHON = "python3.11"
NODE = "nodejs20.x"

PROBE = r'''
import ctypes, ctypes.util, errno, os, resource, socket, time

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

def refused(result):
    return result == -1 and ctypes.get_errno() == errno.EPERM

def handler(event, context):
    status = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in open("/proc/self/status")}
    if event.get("secret"):
        with open("/tmp/secret", "w") as f:
            f.write(event["secret"])
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in
              ["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_AS",
               "RLIMIT_FSIZE", "RLIMIT_MEMLOCK", "RLIMIT_CPU"]}
    tmp = os.statvfs("/tmp")
    mounts = sorted((l.split()[4], l.split()[5].split(",")[0]) for l in open("/proc/self/mountinfo"))
    return {
        "primed": b"_GUST_HANDOVER_FD" in open("/proc/self/environ", "rb").read(),
        "ns": {n: os.readlink(f"/proc/self/ns/{n}") for n in sorted(os.listdir("/proc/self/ns"))},
        "cgroup": open("/proc/self/cgroup").read().splitlines(),
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        "caps": [status["CapInh"], status["CapPrm"], status["CapEff"], status["CapBnd"], status["CapAmb"]],
        "no_new_privs": status["NoNewPrivs"], "seccomp": status["Seccomp"],
        "tmp_bytes": tmp.f_blocks * tmp.f_frsize, "tmp": sorted(os.listdir("/tmp")),
        "limits": limits,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "hostname": socket.gethostname(),
        "mounts": mounts,
        "tzname": list(time.tzname),
        "utc_offset": time.localtime().tm_gmtoff,
        "ppid": os.getppid(),
        "pid": os.getpid(),
        "forked": "gust_zygote" in __import__("sys").modules,
        # Forked from one zygote, environments must not share random state.
        "random": __import__("random").getrandbits(64),
        "uuid": str(__import__("uuid").uuid4()),
        "sys_path_head": __import__("sys").path[:3],
        # What the init may still call until the hand-over (it confines itself in two
        # steps) is refused to the function by seccomp all the same. Called so that the
        # kernel would fail them otherwise before its capability check: a type the
        # kernel cannot read (EFAULT), flags umount2 does not know (EINVAL).
        "refused": {
            "mount": refused(libc.mount(b"none", b"/tmp", ctypes.c_void_p(8), 0, None)),
            "umount2": refused(libc.umount2(b"/var/task", 0x100)),
        },
    }
'''

NODE_PROBE = r'''
const fs = require('fs');
exports.handler = async () => ({
  primed: fs.readFileSync('/proc/self/environ', 'latin1').includes('_GUST_HANDOVER_FD'),
  env: { ...process.env },
  cwd: process.cwd(),
  offset: new Date(Date.UTC(2024, 0, 1)).getTimezoneOffset(),
  uid: process.getuid(),
  sockets: fs.readdirSync('/proc/self/fd').filter((fd) => {
    try { return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:'); } catch (e) { return false; }
  }).length,
  ns: Object.fromEntries(fs.readdirSync('/proc/self/ns').map((n) => [n, fs.readlinkSync(`/proc/self/ns/${n}`)])),
});
'''


def require_isolation(server):
    line = next((l for l in server.log().splitlines() if l.strip().startswith("isolation")), "no report")
    if "isolation  on" not in line:
        pytest.skip("isolation is unavailable on this host (needs root): " + line.strip())


@pytest.fixture
def primed(make_server):
    server = make_server(["--prestart", f"{PYTHON},{NODE}"])
    require_isolation(server)
    return server


def deploy(lam, name, code, runtime=PYTHON, handler="app.handler", filename="app.py", **kwargs):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": package({filename: code})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})


def invoke(lam, name, event=None, tail=False):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(),
                          **({"LogType": "Tail"} if tail else {}))
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    if tail:
        return body, base64.b64decode(response["LogResult"]).decode()
    return body


def cold(lam, name, variables, event=None, want_primed=True, tail=False, tries=30):
    """A cold start of `name` with `variables` (a configuration change retires its warm
    environment), retried until it was (or was not) primed as wanted: a spare is refilled
    in the background after each claim."""
    for attempt in range(tries):
        lam.update_function_configuration(
            FunctionName=name, Environment={"Variables": dict(variables, ATTEMPT=str(attempt))})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
        time.sleep(0.3)
        answer = invoke(lam, name, event, tail)
        body = answer[0] if tail else answer
        if body["primed"] == want_primed:
            return answer
    raise AssertionError(f"no {'primed' if want_primed else 'fresh'} environment in {tries} cold starts")


def comparable(body):
    # Per environment: its log stream, Runtime API address and session credentials.
    own = ("AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_ACCESS_KEY_ID",
           "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME",
           "AWS_LAMBDA_LOG_GROUP_NAME")
    env = {k: (k in own or v) for k, v in body["env"].items()
           if k not in ("ATTEMPT", "PYTHONDONTWRITEBYTECODE", "_X_AMZN_TRACE_ID")}
    return dict(
        cgroup_shape=[line.rsplit("/", 1)[0] for line in body["cgroup"]],
        ids=body["ids"], caps=body["caps"], no_new_privs=body["no_new_privs"],
        seccomp=body["seccomp"], tmp_bytes=body["tmp_bytes"], limits=body["limits"], env=env,
        # The runtime and its init, whatever the runtime's number (3 when forked: the
        # process forked into the namespace that forked it was 2).
        cwd=body["cwd"], pids=[p for p in body["pids"] if p != body.get("pid")],
        hostname=body["hostname"], mounts=body["mounts"],
        ppid=body["ppid"], sys_path_head=body["sys_path_head"], refused=body["refused"],
    )


def assert_same(one, other):
    differing = {k: (one.get(k), other.get(k)) for k in set(one) | set(other) if one.get(k) != other.get(k)}
    assert not differing, differing


def test_a_primed_environment_is_isolated_exactly_as_a_fresh_one(primed):
    lam = primed.client()
    deploy(lam, "probe", PROBE, EphemeralStorage={"Size": 700})
    deploy(lam, "probe-fresh", PROBE, EphemeralStorage={"Size": 700})
    body = cold(lam, "probe", {"CUSTOM": "x"})
    # Started afresh: a variable that acts at process start makes the spare unusable. (Both
    # environments are alive at once: a namespace's number is reused once it is gone.)
    fresh = cold(lam, "probe-fresh", {"CUSTOM": "x", "PYTHONDONTWRITEBYTECODE": "1"}, want_primed=False)
    assert body["primed"] and not fresh["primed"]
    one, other = comparable(body), comparable(fresh)
    assert_same(one.pop("env"), other.pop("env"))
    assert_same(one, other)
    # What both are: Lambda's user without capabilities, under seccomp, alone in their
    # namespaces, with /tmp of EphemeralStorage and Lambda's limits.
    assert body["ids"] == [993, 993, 990, 990, []]
    assert all(int(c, 16) == 0 for c in body["caps"])
    assert body["no_new_privs"] == "1" and body["seccomp"] == "2"
    assert all(body["refused"].values()), body["refused"]
    assert body["tmp_bytes"] == 700 << 20
    assert body["limits"]["RLIMIT_NOFILE"] == [1024, 1024]
    assert body["pids"] == [1, body["pid"]] and body["ppid"] == 1
    # Python's primed runtimes are forked from the runtime's zygote (on by default as root).
    assert body["forked"] and not fresh["forked"]
    assert body["cwd"] == "/var/task" and body["sys_path_head"][0] == "/var/task"
    host = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("mnt", "pid", "uts", "ipc")}
    for kind in ("mnt", "pid", "uts", "ipc"):
        assert body["ns"][kind] != host[kind] and body["ns"][kind] != fresh["ns"][kind], kind
    if "cgroups    on" in primed.log():
        # Its own cgroup, not the server's nor the other environment's.
        assert body["cgroup"] != fresh["cgroup"]
        assert any("/gust-" in line for line in body["cgroup"]), body["cgroup"]


def test_two_primed_environments_share_nothing(primed):
    lam = primed.client()
    deploy(lam, "first", PROBE)
    deploy(lam, "second", PROBE)
    one = cold(lam, "first", {"NUMBER": "1"}, {"secret": "first's"})
    two = cold(lam, "second", {"NUMBER": "2"})
    assert one["primed"] and two["primed"]
    # Both forked from the runtime's zygote, yet with random states of their own.
    assert one["forked"] and two["forked"]
    assert one["random"] != two["random"] and one["uuid"] != two["uuid"]
    assert "secret" in one["tmp"] and "secret" not in two["tmp"]
    for kind in ("mnt", "pid", "uts", "ipc"):
        assert one["ns"][kind] != two["ns"][kind], kind
    assert one["cgroup"] != two["cgroup"] or "cgroups    on" not in primed.log()
    # The first keeps its own /tmp.
    assert "secret" in invoke(lam, "first")["tmp"]


def test_the_functions_variables_are_seen_exactly(primed):
    lam = primed.client()
    deploy(lam, "vars", PROBE)
    variables = {"TZ": "Asia/Tokyo", "CUSTOM": "with spaces = and equals", "EMPTY": "",
                 "UNICODE": "žluťoučký kůň"}
    body, log = cold(lam, "vars", variables, tail=True)
    assert body["primed"]
    for key, value in variables.items():
        assert body["env"][key] == value, key
    assert "_GUST_HANDOVER_FD" not in body["env"]
    assert body["tzname"] == ["JST", "JST"] and body["utc_offset"] == 9 * 3600
    # Exactly the variables a fresh environment has, no more and no fewer.
    deploy(lam, "vars-fresh", PROBE)
    fresh = cold(lam, "vars-fresh", dict(variables, PYTHONDONTWRITEBYTECODE="1"), want_primed=False)
    assert_same(comparable(body)["env"], comparable(fresh)["env"])
    # INIT is logged and its duration reported as for any cold start.
    assert "INIT_START Runtime Version: Python" in log, log
    assert "Init Duration:" in log, log

    deploy(lam, "node-vars", NODE_PROBE, runtime=NODE, handler="index.handler", filename="index.js")
    node = cold(lam, "node-vars", variables)
    assert node["primed"] and node["uid"] == 993 and node["cwd"] == "/var/task"
    for key, value in variables.items():
        assert node["env"][key] == value, key
    assert "_GUST_HANDOVER_FD" not in node["env"]
    assert node["offset"] == -540
    deploy(lam, "node-fresh", NODE_PROBE, runtime=NODE, handler="index.handler", filename="index.js")
    node_fresh = cold(lam, "node-fresh", dict(variables, NODE_OPTIONS="--no-warnings"), want_primed=False)
    assert set(node["env"]) == set(node_fresh["env"]) - {"NODE_OPTIONS"}
    for kind in ("mnt", "pid"):
        assert node["ns"][kind] != node_fresh["ns"][kind]
    # The primed process's warm-up (its own server and a request to it) left nothing open:
    # the Runtime API's connection is its only socket, as in a fresh one.
    assert node["sockets"] == node_fresh["sockets"] == 1, (node["sockets"], node_fresh["sockets"])
    # The time zone a primed process kept (Lambda's :UTC, not set again) is the one used.
    default = cold(lam, "node-vars", {})
    assert default["primed"] and default["env"]["TZ"] == ":UTC" and default["offset"] == 0


def test_a_burst_beyond_the_spares_forks_environments_on_demand(make_server):
    """With one spare at most, eight first invokes at once: the spare serves one and the
    rest are forked from the zygote on the spot (none starts its own interpreter), each
    in an environment of its own."""
    import concurrent.futures
    from test_escape import wait_for_zygote
    server = make_server(["--prestart", PYTHON, "--prestart-max", "1"])
    require_isolation(server)
    wait_for_zygote(server)
    lam = server.client()
    names = [f"burst-{i}" for i in range(8)]
    for name in names:
        deploy(lam, name, PROBE)
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        bodies = list(pool.map(lambda name: invoke(lam, name), names))
    assert all(body["primed"] and body["forked"] for body in bodies), \
        [(b["primed"], b["forked"]) for b in bodies]
    assert len({body["ns"]["pid"] for body in bodies}) == len(names)
    assert all(body["pids"] == [1, body["pid"]] and body["ppid"] == 1 for body in bodies)


def test_priming_off_starts_every_environment_afresh(make_server):
    server = make_server(["--prestart", "off"])
    require_isolation(server)
    lam = server.client()
    deploy(lam, "plain", PROBE)
    for round in range(3):
        body = cold(lam, "plain", {"ROUND": str(round)}, want_primed=False, tries=1)
        assert not body["primed"]


LIMITS = r'''
import subprocess, threading, time

def handler(event, context):
    started, error = 0, None
    stop = threading.Event()
    threads = []
    try:
        for _ in range(1100):
            t = threading.Thread(target=stop.wait)
            t.start()
            threads.append(t)
            started += 1
    except RuntimeError as e:
        error = str(e)
    stop.set()
    for t in threads:
        t.join()
    sh = subprocess.run(["/bin/sh", "-c", 'echo "$BASH_VERSION"; [[ 1 == 1 ]] && echo brackets; a=(x y); echo ${#a[@]}'],
                        capture_output=True, text=True)
    ulimit = subprocess.run(["/bin/sh", "-c", "ulimit -n; ulimit -Hn"], capture_output=True, text=True)
    return {"threads": started, "error": error, "sh": sh.stdout.split("\n"), "ulimit": ulimit.stdout.split()}
'''

BASH_BOOTSTRAP = r'''#!/bin/sh
set -euo pipefail
words=(bash-style bootstrap)
[[ ${#words[@]} -eq 2 ]]
export SEEN_BASH="$BASH_VERSION"
exec python3 -c '
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    event = urllib.request.urlopen(api + "next")
    request = event.headers["Lambda-Runtime-Aws-Request-Id"]
    body = json.dumps({"bash": os.environ["SEEN_BASH"]}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request + "/response", data=body, method="POST"))
'
'''


def test_lambdas_limits_and_bin_sh_is_bash(make_server):
    server = make_server()
    require_isolation(server)
    lam = server.client()
    deploy(lam, "limits", LIMITS, Timeout=60)
    body = invoke(lam, "limits")
    assert body["ulimit"] == ["1024", "1024"]
    assert body["sh"][0].startswith("5."), body["sh"]
    assert body["sh"][1:3] == ["brackets", "2"], body["sh"]
    if "cgroups    on" in server.log():
        # 1024 processes and threads per environment: the runtime and its threads count.
        assert body["error"] and body["threads"] < 1024, body
    # A provided.al2023 bootstrap written for bash runs as /bin/sh.
    lam.create_function(FunctionName="bash-bootstrap", Runtime="provided.al2023", Role=ROLE,
                        Handler="bootstrap",
                        Code={"ZipFile": package({"bootstrap": BASH_BOOTSTRAP}, executables=["bootstrap"])})
    lam.get_waiter("function_active_v2").wait(FunctionName="bash-bootstrap", WaiterConfig={"Delay": 1})
    assert invoke(lam, "bash-bootstrap")["bash"].startswith("5.")


# A custom runtime's bootstrap (bash, as `provided.al2023` users write them) that serves the
# probe above through the Runtime API with the host's /usr/bin/python3.
PROVIDED_BOOTSTRAP = r'''#!/bin/sh
set -euo pipefail
exec python3 -c '
import json, os, sys, urllib.request
sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
import app
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    event = urllib.request.urlopen(api + "next")
    request = event.headers["Lambda-Runtime-Aws-Request-Id"]
    body = json.dumps(app.handler(json.loads(event.read()), None)).encode()
    urllib.request.urlopen(urllib.request.Request(api + request + "/response", data=body, method="POST"))
'
'''


def test_a_staged_custom_runtime_environment_is_isolated_exactly_as_a_fresh_one(make_server):
    """`provided*` environments start from *staged* spares: the root is built ahead of need,
    nothing runs until the hand-over, then the package's bootstrap is executed as in a fresh
    environment."""
    server = make_server(env={"GUST_LOG": "info,s3s=off,gust::coldstart=debug"})
    require_isolation(server)
    lam = server.client()

    def staged_hand_overs():
        return re.sub(r"\x1b\[[0-9;]*m", "", server.log()).count("primed hand-over staged=true")

    def deploy_native(name, **kwargs):
        lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
            Code={"ZipFile": package({"bootstrap": PROVIDED_BOOTSTRAP, "app.py": PROBE},
                                     executables=["bootstrap"])}, **kwargs)
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})

    deploy_native("native-fresh", EphemeralStorage={"Size": 700},
                  Environment={"Variables": {"CUSTOM": "x", "ATTEMPT": "0"}})
    deploy_native("native", EphemeralStorage={"Size": 700})
    # The first cold start of a runtime finds no spare (one is staged from then on).
    before = staged_hand_overs()
    fresh = invoke(lam, "native-fresh")
    assert staged_hand_overs() == before, "the first environment cannot have been staged"
    staged = None
    for attempt in range(20):
        lam.update_function_configuration(
            FunctionName="native", Environment={"Variables": {"CUSTOM": "x", "ATTEMPT": str(attempt),
                                                              "LD_BIND_NOW": "1"}})
        lam.get_waiter("function_updated_v2").wait(FunctionName="native", WaiterConfig={"Delay": 1})
        time.sleep(0.3)
        before = staged_hand_overs()
        body = invoke(lam, "native")
        if staged_hand_overs() > before:
            staged = body
            break
    assert staged is not None, "no staged environment in 20 cold starts"
    # Any variable is fine for a staged spare (nothing had started): the loader's too.
    assert staged["env"]["LD_BIND_NOW"] == "1"
    one, other = comparable(staged), comparable(fresh)
    one_env, other_env = one.pop("env"), other.pop("env")
    one_env.pop("LD_BIND_NOW")
    assert_same(one_env, other_env)
    assert_same(one, other)
    assert staged["ids"] == [993, 993, 990, 990, []]
    assert all(int(c, 16) == 0 for c in staged["caps"])
    assert staged["no_new_privs"] == "1" and staged["seccomp"] == "2"
    assert all(staged["refused"].values()), staged["refused"]
    assert staged["tmp_bytes"] == 700 << 20 and staged["tmp"] == []
    assert staged["limits"]["RLIMIT_NOFILE"] == [1024, 1024]
    assert staged["pids"] == [1, 2] and staged["ppid"] == 1
    assert staged["cwd"] == "/var/task"
    # Executed with the function's environment: no hand-over variable anywhere.
    assert not staged["primed"] and "_GUST_HANDOVER_FD" not in staged["env"]
    host = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("mnt", "pid", "uts", "ipc")}
    for kind in ("mnt", "pid", "uts", "ipc"):
        assert staged["ns"][kind] != host[kind] and staged["ns"][kind] != fresh["ns"][kind], kind
    if "cgroups    on" in server.log():
        assert staged["cgroup"] != fresh["cgroup"]
        assert any("/gust-" in line for line in staged["cgroup"]), staged["cgroup"]

    # A bootstrap that cannot be executed fails as in a fresh environment: INIT's error,
    # said once in the log (the staged spare is not retried afresh).
    lam.update_function_code(
        FunctionName="native",
        ZipFile=package({"bootstrap": "#!/nonexistent/interpreter\n"}, executables=["bootstrap"]))
    lam.get_waiter("function_updated_v2").wait(FunctionName="native", WaiterConfig={"Delay": 1})
    for attempt in range(10):
        time.sleep(0.3)
        before = staged_hand_overs()
        response = lam.invoke(FunctionName="native", Payload=b"{}", LogType="Tail")
        if staged_hand_overs() > before:
            break
    else:
        raise AssertionError("no staged environment for the broken bootstrap")
    assert response.get("FunctionError") == "Unhandled", response
    body = json.loads(response["Payload"].read())
    assert body["errorType"] == "Runtime.InvalidEntrypoint", body
    log = base64.b64decode(response["LogResult"]).decode()
    assert log.count("gust sandbox:") <= 1, log

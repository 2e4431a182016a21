"""SnapStart's runtime side: a published version of a SnapStart function is initialised
ahead of demand (INIT and the before-snapshot hooks) and restored at a cold start (the
after-restore hooks, randomness re-seeded), REPORT shows `Restore Duration` instead of
`Init Duration`; `$LATEST` stays an ordinary on-demand function; a failing after-restore
hook fails the invocation."""

import base64
import concurrent.futures
import json
import time

import pytest
from conftest import create, make_zip, module_server

SNAP = {"ApplyOn": "PublishedVersions"}

APP = make_zip({"app.py": (
    "import os, random, time\n"
    "from snapshot_restore_py import register_before_snapshot, register_after_restore\n"
    "events = ['init']\n"
    "@register_before_snapshot\n"
    "def second_registered():\n"
    "    events.append('before-2')\n"
    "@register_before_snapshot\n"
    "def before():\n"
    "    events.append('before')\n"
    "    print('before snapshot', flush=True)\n"
    "@register_after_restore\n"
    "def after():\n"
    "    events.append('after')\n"
    "    print('after restore', flush=True)\n"
    "def handler(event, context):\n"
    "    events.append('handler')\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    return {'events': list(events), 'stream': context.log_stream_name, 'random': random.random(),\n"
    "            'urandom': os.urandom(8).hex(),\n"
    "            'init_type': os.environ.get('AWS_LAMBDA_INITIALIZATION_TYPE')}\n"
)})

FAILING = make_zip({"app.py": (
    "from snapshot_restore_py import register_after_restore\n"
    "def broken():\n"
    "    raise ValueError('cannot reconnect')\n"
    "register_after_restore(broken)\n"
    "def handler(event, context):\n"
    "    return 'unreachable'\n"
)})


@pytest.fixture(scope="module")
def lam(tmp_path_factory):
    yield from (s.client(max_pool_connections=8) for s in module_server(tmp_path_factory, "snapstart"))


def snap_function(lam, name, code):
    create(lam, name, code, SnapStart=SNAP, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return lam.publish_version(FunctionName=name)["Version"]


def invoke(lam, name, qualifier=None, payload=None):
    params = dict(FunctionName=name, Payload=json.dumps(payload or {}).encode(), LogType="Tail")
    if qualifier:
        params["Qualifier"] = qualifier
    response = lam.invoke(**params)
    body = json.loads(response["Payload"].read())
    return response, body, base64.b64decode(response["LogResult"]).decode()


def report_line(log):
    return next(line for line in log.splitlines() if line.startswith("REPORT "))


def test_published_version_is_restored_with_hooks_in_order(lam):
    version = snap_function(lam, "snap-hooks", APP)
    # The snapshot environment is made ahead of the first invocation.
    time.sleep(2)
    response, body, log = invoke(lam, "snap-hooks", version)
    assert "FunctionError" not in response, body
    # Before-snapshot hooks run newest first, after-restore ones in registration order.
    assert body["events"] == ["init", "before", "before-2", "after", "handler"], body
    assert body["init_type"] == "snap-start"
    report = report_line(log)
    assert "Restore Duration: " in report and "Billed Restore Duration: " in report, report
    assert "Init Duration" not in report, report
    assert "RESTORE_START Runtime Version: " in log, log
    assert "RESTORE_REPORT Restore Duration: " in log, log
    assert "after restore" in log, log
    # INIT and the before-snapshot hooks happened before this invocation.
    assert "before snapshot" not in log and "INIT_START" not in log, log

    # Warm: no restore, and the hooks do not run again.
    response, body, log = invoke(lam, "snap-hooks", version)
    assert body["events"] == ["init", "before", "before-2", "after", "handler", "handler"], body
    assert "Restore Duration" not in report_line(log)


def test_concurrent_restores_do_not_share_random_state(lam):
    version = snap_function(lam, "snap-random", APP)
    time.sleep(2)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: invoke(lam, "snap-random", version, {"sleep": 1.5}), range(2)))
    bodies = [body for _, body, _ in results]
    # Two environments (each saw one invocation).
    assert bodies[0]["stream"] != bodies[1]["stream"], bodies
    assert len({b["random"] for b in bodies}) == 2, bodies
    assert len({b["urandom"] for b in bodies}) == 2, bodies
    for _, body, log in results:
        assert body["init_type"] == "snap-start"
        assert "Restore Duration" in report_line(log), log


def test_latest_is_an_ordinary_on_demand_function(lam):
    snap_function(lam, "snap-latest", APP)
    response, body, log = invoke(lam, "snap-latest")
    assert "FunctionError" not in response, body
    assert body["init_type"] == "on-demand"
    # No snapshot point: the hooks are registered but never run.
    assert body["events"] == ["init", "handler"], body
    report = report_line(log)
    assert "Init Duration: " in report and "Restore Duration" not in report, report


def test_a_failing_after_restore_hook_fails_the_invocation(lam):
    version = snap_function(lam, "snap-broken", FAILING)
    time.sleep(2)
    response, body, log = invoke(lam, "snap-broken", version)
    assert response.get("FunctionError") == "Unhandled", body
    assert body["errorType"] == "Runtime.AfterRestoreError", body
    assert "cannot reconnect" in body["errorMessage"], body
    assert "RESTORE_REPORT Restore Duration: " in log and "Error Type: Runtime.AfterRestoreError" in log, log
    # Every cold start of the version fails the same way.
    response, body, _ = invoke(lam, "snap-broken", version)
    assert body["errorType"] == "Runtime.AfterRestoreError", body


SLOW_INIT = make_zip({"app.py": (
    "import time\n"
    "time.sleep(1.5)  # an expensive INIT: what SnapStart takes off the invoke\n"
    "def handler(event, context):\n"
    "    return 'ready'\n"
)})


def test_publishing_makes_the_snapshot_ahead_of_the_first_invoke(lam):
    version = snap_function(lam, "snap-ahead", SLOW_INIT)
    # INIT (1.5 s of it the module's own) runs after PublishVersion, not in the invoke: give
    # it time (generously, on a loaded machine), then the first invoke only restores.
    time.sleep(6)
    started = time.monotonic()
    response, body, log = invoke(lam, "snap-ahead", version)
    took = time.monotonic() - started
    assert body == "ready", body
    assert "Restore Duration" in report_line(log) and "Init Duration" not in report_line(log)
    assert took < 1.0, f"the first invoke waited {took:.2f} s: its snapshot was not made ahead"
    assert "INIT_START" not in log and "RESTORE_START" in log, log


def test_a_ready_snapshot_is_evicted_for_another_functions_cold_start(make_server):
    server = make_server(["--memory-budget", "256M"])
    lam = server.client()
    create(lam, "snap-held", SLOW_INIT, SnapStart=SNAP, Timeout=30, MemorySize=256)
    lam.get_waiter("function_active_v2").wait(FunctionName="snap-held")
    version = lam.publish_version(FunctionName="snap-held")["Version"]
    time.sleep(6)  # the snapshot environment now holds the whole budget
    create(lam, "plain-needs-room", MemorySize=128, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName="plain-needs-room")
    response = lam.invoke(FunctionName="plain-needs-room", Payload=b"{}")
    assert "FunctionError" not in response, response["Payload"].read()
    # The snapshot is not made again by evicting that warm environment: the version's
    # next cold start initialises in the invoke (evicting it then).
    time.sleep(2)
    started = time.monotonic()
    response, body, log = invoke(lam, "snap-held", version)
    assert body == "ready", body
    # (A SnapStart INIT is in the function's log, not the invocation's: its 1.5 s tell.)
    assert time.monotonic() - started > 1.4, "a snapshot was made by evicting a warm environment"


def test_an_unclaimed_snapshot_goes_after_the_idle_timeout(make_server):
    server = make_server(["--idle-timeout", "2s"])
    lam = server.client()
    version = snap_function(lam, "snap-reaped", SLOW_INIT)
    # Made ahead (about 2 s), then reaped after the idle timeout and not made again.
    time.sleep(8)
    started = time.monotonic()
    response, body, log = invoke(lam, "snap-reaped", version)
    assert body == "ready", body
    assert time.monotonic() - started > 1.4, "the unclaimed snapshot was kept (or made again)"

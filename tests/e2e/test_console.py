"""The web console (/console) in a real browser: Debian's chromium, headless, driven by
playwright-core through tests/e2e/browser/console.js. Unauthenticated calls are refused and
pages send the browser to sign-in; signing in with the server's key finds a function
deployed with boto3, test-invokes it (result and log tail), sees its log line arrive in the
live logs panel (FilterLogEvents on the function's log group) and the invocations chart
count it (GetMetricData), and the functions list show its last invocation and error rate.
A state-changing call without the CSRF token is refused; repeated failed sign-ins are
answered 429; under --no-auth the console opens for the default account without sign-in.
Screenshots go to target/e2e-artifacts/console/."""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO, create, make_zip, module_server

from test_browser import BROWSER_DIR, CHROMIUM, PLAYWRIGHT  # noqa: F401 (skips as it does)

ARTIFACTS = REPO / "target" / "e2e-artifacts" / "console"

LOUD = make_zip({"app.py": r'''
def handler(event, context):
    print("CONSOLE-LOG-LINE", event.get("hello"))
    return {"echo": event}
'''})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "console")


@pytest.fixture(scope="module")
def lam(shared):
    return shared.client()


def wait_active(lam, name):
    for _ in range(100):
        if lam.get_function_configuration(FunctionName=name)["State"] == "Active":
            return
        time.sleep(0.1)


def call(url, method="GET", body=None, headers=None):
    """(status, headers, body) of a plain HTTP request that follows no redirect."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_unauthenticated_requests_are_refused(shared):
    base = shared.endpoint
    for path in ["session", "lambda/2015-03-31/functions", "queues", "triggers/x"]:
        status, headers, body = call(f"{base}/console/api/{path}")
        assert status == 401, path
        assert json.loads(body)["code"] == "NotSignedIn"
        assert headers["Content-Type"] == "application/json"
    status, _, _ = call(f"{base}/console/api/invoke/x", "POST", {})
    assert status == 401
    status, headers, _ = call(f"{base}/console/")
    assert status == 303 and headers["Location"] == "/console/login"
    status, headers, _ = call(f"{base}/console")
    assert status == 303 and headers["Location"] == "/console/"
    # A forged cookie is no session.
    status, _, _ = call(f"{base}/console/api/session", headers={"Cookie": "gust_console=" + "0" * 64})
    assert status == 401
    # The sign-in page and assets are public, with a strict CSP and real content types.
    status, headers, body = call(f"{base}/console/login")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"<script type=\"module\" src=\"/console/assets/app.js\">" in body
    status, headers, _ = call(f"{base}/console/assets/vendor/uPlot.esm.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert "max-age" in headers["Cache-Control"]
    status, _, _ = call(f"{base}/console/assets/../../etc/passwd")
    assert status == 404


def sign_in(shared):
    key, secret = shared.credentials
    status, headers, body = call(f"{shared.endpoint}/console/api/login", "POST",
                                 {"accessKeyId": key, "secretAccessKey": secret},
                                 {"Content-Type": "application/json"})
    assert status == 200, body
    cookie = headers["Set-Cookie"]
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console"]:
        assert part in cookie
    return cookie.split(";")[0], json.loads(body)


def test_sign_in_and_csrf(shared, lam):
    key, _ = shared.credentials
    status, _, body = call(f"{shared.endpoint}/console/api/login", "POST",
                           {"accessKeyId": key, "secretAccessKey": "wrong"})
    assert status == 401 and json.loads(body)["code"] == "InvalidCredentials"
    # Sign-in from another site is refused even with the right key.
    _, secret = shared.credentials
    status, _, _ = call(f"{shared.endpoint}/console/api/login", "POST",
                        {"accessKeyId": key, "secretAccessKey": secret},
                        {"Origin": "http://evil.example"})
    assert status == 403

    cookie, session = sign_in(shared)
    assert session["account"] == "000000000000"
    create(lam, "console-csrf", LOUD)
    wait_active(lam, "console-csrf")
    # Reads need only the session.
    status, _, body = call(f"{shared.endpoint}/console/api/lambda/2015-03-31/functions",
                           headers={"Cookie": cookie})
    assert status == 200
    assert "console-csrf" in [f["FunctionName"] for f in json.loads(body)["Functions"]]
    # A state-changing call without the token, with a wrong one, or from another origin is
    # refused and does not run.
    url = f"{shared.endpoint}/console/api/invoke/console-csrf"
    for headers in [{"Cookie": cookie},
                    {"Cookie": cookie, "X-CSRF-Token": "0" * 64},
                    {"Cookie": cookie, "X-CSRF-Token": session["csrfToken"], "Origin": "http://evil.example"},
                    {"Cookie": cookie, "X-CSRF-Token": session["csrfToken"], "Sec-Fetch-Site": "cross-site"}]:
        status, _, body = call(url, "POST", {"hello": "csrf"}, headers)
        assert status == 403, headers
        assert json.loads(body)["code"] == "CsrfRefused"
    status, _, body = call(url, "POST", {"hello": "csrf"},
                           {"Cookie": cookie, "X-CSRF-Token": session["csrfToken"]})
    assert status == 200
    result = json.loads(body)
    assert result["statusCode"] == 200
    assert json.loads(result["payload"]) == {"echo": {"hello": "csrf"}}
    assert "CONSOLE-LOG-LINE csrf" in result["logTail"]
    assert "REPORT RequestId" in result["logTail"]
    # Mutating Lambda calls are not reachable through the read pass-through.
    status, _, _ = call(f"{shared.endpoint}/console/api/lambda/2015-03-31/functions/console-csrf",
                        "DELETE", None, {"Cookie": cookie, "X-CSRF-Token": session["csrfToken"]})
    assert status == 404
    assert lam.get_function(FunctionName="console-csrf")
    # Signing out ends the session.
    status, _, _ = call(f"{shared.endpoint}/console/api/logout", "POST", None,
                        {"Cookie": cookie, "X-CSRF-Token": session["csrfToken"]})
    assert status == 200
    status, _, _ = call(f"{shared.endpoint}/console/api/session", headers={"Cookie": cookie})
    assert status == 401


def test_console_in_a_browser(shared, lam):
    if not CHROMIUM.exists() or not (PLAYWRIGHT / "package.json").exists() or not shutil.which("node"):
        pytest.skip("chromium, playwright-core or node is missing")
    create(lam, "console-fn", LOUD)
    wait_active(lam, "console-fn")
    key, secret = shared.credentials
    job = {"executablePath": str(CHROMIUM), "base": shared.endpoint, "accessKeyId": key,
           "secretAccessKey": secret, "function": "console-fn", "artifacts": str(ARTIFACTS)}
    result = subprocess.run([shutil.which("node"), str(BROWSER_DIR / "console.js")],
                            input=json.dumps(job), capture_output=True, text=True, timeout=180,
                            env=dict(os.environ, PLAYWRIGHT_CORE=str(PLAYWRIGHT)))
    assert result.returncode == 0, f"console.js failed:\n{result.stderr}"
    seen = json.loads(result.stdout)
    page_errors = [line for line in seen["console"] if line.startswith("pageerror")]
    assert not page_errors, seen["console"]
    assert seen["firstUrl"].endswith("/console/login")
    assert "script-src 'self'" in seen["csp"]
    assert "not valid" in seen["badLogin"]
    assert seen["cookie"]["httpOnly"] and seen["cookie"]["sameSite"] == "Strict"
    assert seen["listed"] == ["console-fn"]
    assert seen["invokeDisabled"] and seen["invalidJson"].startswith("Invalid JSON")
    assert seen["invokeStatus"].startswith("Succeeded")
    assert json.loads(seen["invokePayload"]) == {"echo": {"hello": "console"}}
    assert "CONSOLE-LOG-LINE console" in seen["invokeLog"]
    assert "Billed duration" in seen["invokeResult"]
    assert seen["canvases"] >= 4
    # The live logs panel tails the function's log group and shows the invocation's line.
    assert seen["logGroup"] == "/aws/lambda/console-fn"
    assert seen["logsStatus"].startswith("Live")
    assert "CONSOLE-LOG-LINE console" in seen["logs"]
    assert "REPORT RequestId" in seen["logs"]
    # The charts are the real metrics: the invocation is counted, nothing failed, the
    # duration percentiles have a point, and no chart overflows its box.
    assert seen["chartsNote"] == ""
    assert seen["invocationsCharted"] >= 1
    points = seen["chartPoints"]
    assert sum(v for _, v in points["Invocations"]["Invocations Sum"]) >= 1
    assert sum(v for _, v in points["Errors and throttles"]["Errors Sum"]) == 0
    assert all(v > 0 for _, v in points["Duration (ms)"]["Duration p99"])
    assert points["Duration (ms)"]["Duration p50"], points
    assert seen["chartOverflow"] == []
    assert sum(v for _, v in seen["dayPoints"]["Invocations Sum"]) >= 1
    # The functions list: the last invocation (its minute) and an error rate of 0 %.
    assert re.match(r"(this minute|[1-3] min ago) \(", seen["listLast"]), seen["listLast"]
    assert seen["listErrorRate"].startswith("0.0% of "), seen["listErrorRate"]
    assert "Queues" in seen["queues"] and "Cost" in seen["cost"]
    for name in ["01-sign-in", "02-functions", "03-function", "03-function-day", "02-functions-after"]:
        assert (ARTIFACTS / f"{name}.png").exists(), name


def test_failed_sign_ins_are_rate_limited(make_server):
    """Ten failures in a minute from one address lock it out (429 with Retry-After), even
    for the right key (the key id is locked from that address only: key ids are not
    secret, so nobody elsewhere can lock its owner out)."""
    server = make_server()
    key, secret = server.credentials
    url = f"{server.endpoint}/console/api/login"
    json_type = {"Content-Type": "application/json"}
    for i in range(10):
        status, _, body = call(url, "POST", {"accessKeyId": key, "secretAccessKey": f"guess-{i}"}, json_type)
        assert status == 401, (i, body)
    status, headers, body = call(url, "POST", {"accessKeyId": key, "secretAccessKey": secret}, json_type)
    assert status == 429, body
    assert json.loads(body)["code"] == "TooManySignInAttempts"
    assert 0 < int(headers["Retry-After"]) <= 300
    # Signed requests to the AWS APIs are not affected.
    assert server.client().list_functions()["Functions"] == []


def test_no_auth_opens_the_console_for_the_default_account(make_server):
    """Under --no-auth the console needs no sign-in: the page sets a session for the default
    account, the API answers with it, and state-changing calls still need its CSRF token."""
    server = make_server(extra_args=["--no-auth"])
    base = server.endpoint
    status, headers, body = call(f"{base}/console/")
    assert status == 200 and b"app.js" in body
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("gust_console=")
    status, _, body = call(f"{base}/console/api/session", headers={"Cookie": cookie})
    assert status == 200
    session = json.loads(body)
    assert session["account"] == "000000000000" and session["authDisabled"] is True
    # The session call alone opens one too (the page's first call).
    status, headers, body = call(f"{base}/console/api/session")
    assert status == 200 and "gust_console=" in headers["Set-Cookie"]
    status, _, body = call(f"{base}/console/api/lambda/2015-03-31/functions", headers={"Cookie": cookie})
    assert status == 200 and json.loads(body)["Functions"] == []
    # No token, no state change.
    status, _, body = call(f"{base}/console/api/logs/FilterLogEvents", "POST",
                           {"logGroupName": "/aws/lambda/none"}, {"Cookie": cookie})
    assert status == 403 and json.loads(body)["code"] == "CsrfRefused"
    status, _, body = call(f"{base}/console/api/logs/FilterLogEvents", "POST",
                           {"logGroupName": "/aws/lambda/none"},
                           {"Cookie": cookie, "X-CSRF-Token": session["csrfToken"]})
    assert status == 400 and json.loads(body)["code"] == "ResourceNotFoundException", body

"""Function URLs and HTTP APIs in a real browser: Debian's chromium, headless, driven by
playwright-core through tests/e2e/browser/cors.js. A page served from another origin makes
a non-simple cross-origin fetch (PUT with a custom header, a JSON body and credentials), so
the browser sends a real CORS preflight that Gust answers from the URL's `Cors` or the API's
`CorsConfiguration`; origins and methods the configuration does not allow are refused by the
browser itself; and a plain navigation to a NONE function URL renders its HTML."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from conftest import REPO, create, make_zip, module_server

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_DIR = Path(__file__).resolve().parent / "browser"
PLAYWRIGHT = REPO / "target" / "e2e-node" / "node_modules" / "playwright-core"
ACCOUNT = "000000000000"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (scripts/test installs Debian's chromium as root)",
                allow_module_level=True)
if not (PLAYWRIGHT / "package.json").exists():
    pytest.skip(f"playwright-core is missing at {PLAYWRIGHT} (scripts/test installs it with npm)",
                allow_module_level=True)
if shutil.which("node") is None:
    pytest.skip("node is missing: the browser is driven by a Node.js script", allow_module_level=True)

# Answers every path with what it received; logs one line per invocation so the tests can
# tell which requests reached the function (a preflight answered by Gust never does).
CALLEE = make_zip({"app.py": r'''
import json

def handler(event, context):
    method = event["requestContext"]["http"]["method"]
    print(f"SAW {method} {event['rawPath']}")
    headers = event.get("headers", {})
    return {"statusCode": 200,
            "headers": {"content-type": "application/json", "x-total": "42", "x-hidden": "secret"},
            "body": json.dumps({"method": method, "path": event["rawPath"],
                                "token": headers.get("x-token"),
                                "contentType": headers.get("content-type"),
                                "origin": headers.get("origin"),
                                "cookies": event.get("cookies", []),
                                "body": json.loads(event.get("body") or "null")})}
'''})

HTML = make_zip({"app.py": r'''
def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/html"}, "body": "<h1>hi</h1>"}
'''})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "browser")


@pytest.fixture(scope="module")
def lam(shared):
    return shared.client()


@pytest.fixture(scope="module")
def gw(shared):
    return shared.client(service="apigatewayv2")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def page_server():
    """Serves tests/e2e/browser (page.html) on a free port: an origin other than Gust's."""
    handler = functools.partial(QuietHandler, directory=str(BROWSER_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def origins():
    """Two page origins: the one the CORS configurations allow, and one they do not."""
    allowed, other = page_server(), page_server()
    yield f"http://127.0.0.1:{allowed.server_port}", f"http://127.0.0.1:{other.server_port}"
    for server in (allowed, other):
        server.shutdown()
        server.server_close()


def public(lam, name):
    """The two statements a NONE URL needs since October 2025."""
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction",
                       Principal="*", InvokedViaFunctionUrl=True)


def cors_for(origin):
    return {"AllowOrigins": [origin], "AllowMethods": ["GET", "PUT"],
            "AllowHeaders": ["x-token", "content-type"], "ExposeHeaders": ["x-total"],
            "AllowCredentials": True, "MaxAge": 5}


def browse(steps, cookies=()):
    """Runs cors.js: each step opens `url` in a fresh page and reads `selector`'s text."""
    job = {"executablePath": str(CHROMIUM), "steps": steps, "cookies": list(cookies)}
    result = subprocess.run([shutil.which("node"), str(BROWSER_DIR / "cors.js")],
                            input=json.dumps(job), capture_output=True, text=True, timeout=90,
                            env=dict(os.environ, PLAYWRIGHT_CORE=str(PLAYWRIGHT)))
    assert result.returncode == 0, f"cors.js failed:\n{result.stderr}"
    return {step["name"]: step for step in json.loads(result.stdout)["steps"]}


def fetch_step(name, origin, target, method="PUT"):
    """The page at `origin` fetches `target` with `method` (see browser/page.html)."""
    return {"name": name, "selector": "#result[data-done]",
            "url": f"{origin}/page.html?" + urlencode({"target": target, "method": method})}


def outcome(step):
    return json.loads(step["text"])


def to(step, target, method):
    return [r for r in step["requests"] if r["url"] == target and r["method"] == method]


def seen(shared, name, want, timeout=10):
    """The function's `SAW <method> <path>` lines, once at least `want` are logged."""
    deadline = time.monotonic() + timeout
    while True:
        out = shared.gust("logs", name, check=False).stdout
        lines = [line[line.index("SAW "):] for line in out.splitlines() if "SAW " in line]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def assert_preflight(step, target, origin, status):
    """One preflight went out for `target` and was answered with the CORS headers allowing
    `origin`, PUT, x-token and content-type, and credentials."""
    preflights = to(step, target, "OPTIONS")
    assert len(preflights) == 1, step["requests"]
    preflight = preflights[0]
    assert preflight["wire"], preflight
    assert preflight["initiator"] == "preflight", preflight
    sent = preflight["requestHeaders"]
    assert sent["origin"] == origin and sent["access-control-request-method"] == "PUT"
    assert sorted(sent["access-control-request-headers"].split(",")) == ["content-type", "x-token"]
    assert preflight["status"] == status, preflight
    got = preflight["responseHeaders"]
    assert got.get("access-control-allow-origin") == origin, got
    assert "PUT" in got["access-control-allow-methods"].split(","), got
    assert {"x-token", "content-type"} <= set(got["access-control-allow-headers"].split(",")), got
    assert got.get("access-control-allow-credentials") == "true", got


def assert_fetched(step, target, origin):
    """The page's PUT went out after the preflight and read the function's answer."""
    result = outcome(step)
    assert result["ok"] is True, (result, step["requests"], step["console"])
    assert result["status"] == 200
    assert result["json"] == {"method": "PUT", "path": "/data", "token": "t",
                              "contentType": "application/json", "origin": origin,
                              "cookies": ["session=s1"], "body": {"from": origin}}
    # ExposeHeaders makes x-total readable to the page; x-hidden is not exposed.
    assert result["exposed"] == "42" and result["hidden"] is None
    puts = to(step, target, "PUT")
    assert len(puts) == 1 and puts[0]["wire"] and puts[0]["status"] == 200, step["requests"]
    headers = puts[0]["responseHeaders"]
    assert headers["access-control-allow-origin"] == origin
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-expose-headers"] == "x-total"


def assert_refused(step, target, method="PUT"):
    """The browser refused the fetch after its preflight: the request itself never went on
    the wire (DevTools lists it, failed with a CORS error and no response)."""
    assert outcome(step) == {"ok": False, "error": "TypeError: Failed to fetch"}, step
    preflights = to(step, target, "OPTIONS")
    assert len(preflights) == 1 and preflights[0].get("wire"), step["requests"]
    refused = to(step, target, method)
    assert len(refused) == 1, step["requests"]
    assert not refused[0].get("wire") and "status" not in refused[0], refused
    assert refused[0]["corsError"].startswith("Preflight"), refused
    return preflights[0], refused[0]["corsError"]


def session_cookie():
    # Sent with `credentials: "include"`: the page's origin and Gust's are the same site.
    return {"name": "session", "value": "s1", "domain": "127.0.0.1", "path": "/", "sameSite": "Lax"}


def test_function_url_preflight_and_fetch(lam, shared, origins):
    allowed, _ = origins
    create(lam, "browserurl", CALLEE)
    url = lam.create_function_url_config(FunctionName="browserurl", AuthType="NONE",
                                         Cors=cors_for(allowed))["FunctionUrl"]
    public(lam, "browserurl")
    target = url + "data"
    step = browse([fetch_step("put", allowed, target)], cookies=[session_cookie()])["put"]
    assert_preflight(step, target, allowed, status=200)
    assert_fetched(step, target, allowed)
    # Gust answered the preflight itself: the function saw the PUT only.
    assert seen(shared, "browserurl", 1) == ["SAW PUT /data"]


def test_function_url_refuses_other_origins_and_methods(lam, shared, origins):
    allowed, other = origins
    create(lam, "browserurlno", CALLEE)
    url = lam.create_function_url_config(FunctionName="browserurlno", AuthType="NONE",
                                         Cors=cors_for(allowed))["FunctionUrl"]
    public(lam, "browserurlno")
    target = url + "data"
    # The refused fetches first, then one allowed: once its line is logged, any line an
    # earlier (refused) request could have caused would be there too.
    steps = browse([fetch_step("origin", other, target),
                    fetch_step("method", allowed, target, method="DELETE"),
                    fetch_step("put", allowed, target)], cookies=[session_cookie()])
    # Gust answered each preflight (200) without the headers that would allow the other
    # origin or the method, so the browser refused the fetch.
    answer, error = assert_refused(steps["origin"], target)
    assert answer["requestHeaders"]["origin"] == other and answer["status"] == 200
    assert "access-control-allow-origin" not in answer["responseHeaders"], answer
    assert error == "PreflightMissingAllowOriginHeader"
    answer, error = assert_refused(steps["method"], target, method="DELETE")
    assert answer["requestHeaders"]["access-control-request-method"] == "DELETE"
    assert answer["status"] == 200
    assert "access-control-allow-methods" not in answer["responseHeaders"], answer
    assert_fetched(steps["put"], target, allowed)
    assert seen(shared, "browserurlno", 1) == ["SAW PUT /data"]


def test_http_api_cors_configuration(lam, gw, shared, origins):
    allowed, other = origins
    create(lam, "browserapi", CALLEE)
    api = gw.create_api(Name="browser", ProtocolType="HTTP",
                        Target=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:browserapi",
                        CorsConfiguration=cors_for(allowed))
    api_id = api["ApiId"]
    lam.add_permission(FunctionName="browserapi", StatementId="apigw", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*")
    target = api["ApiEndpoint"] + "/data"
    steps = browse([fetch_step("origin", other, target),
                    fetch_step("method", allowed, target, method="DELETE"),
                    fetch_step("put", allowed, target)], cookies=[session_cookie()])
    assert_refused(steps["origin"], target)
    assert_refused(steps["method"], target, method="DELETE")
    # API Gateway answers preflights with 204.
    assert_preflight(steps["put"], target, allowed, status=204)
    assert_fetched(steps["put"], target, allowed)
    assert seen(shared, "browserapi", 1) == ["SAW PUT /data"]


def test_navigation_renders_a_function_url(lam):
    create(lam, "browserhtml", HTML)
    url = lam.create_function_url_config(FunctionName="browserhtml", AuthType="NONE")["FunctionUrl"]
    public(lam, "browserhtml")
    step = browse([{"name": "page", "url": url, "selector": "h1"}])["page"]
    assert step["status"] == 200 and step["text"] == "hi"
    document = to(step, url, "GET")
    assert len(document) == 1 and document[0]["type"] == "Document", step["requests"]
    assert document[0]["responseHeaders"]["content-type"] == "text/html"

"""Popular Lambda web adapters, unchanged, on Gust: the event handler of Powertools for AWS
Lambda (Python) — `LambdaFunctionUrlResolver`, `APIGatewayHttpResolver`,
`APIGatewayRestResolver` — and Mangum with an ASGI application, deployed with the real
packages from PyPI in a layer (scripts/test installs them into target/e2e-fn-python), served
on function URLs and on API Gateway HTTP APIs (payload formats 2.0 and 1.0), and reached
with `requests` as any HTTP client would. What the adapters read from Gust's events and
what Gust makes of their responses (status, headers, several Set-Cookie, gzip and binary
bodies, CORS, errors) is checked from the client's side."""

import base64
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
import requests

from conftest import REPO, create, make_zip, module_server

PACKAGES = REPO / "target" / "e2e-fn-python" / "python"
ACCOUNT = "000000000000"

# One module, three Powertools resolvers over the same routes (a Router included in each):
# `url` for function URLs, `http` for HTTP APIs with payload 2.0, `rest` for payload 1.0.
POWERTOOLS_APP = r'''
import json

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver, APIGatewayRestResolver, CORSConfig, LambdaFunctionUrlResolver,
    Response, content_types)
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.router import Router
from aws_lambda_powertools.shared.cookies import Cookie

router = Router()


def seen():
    """What the resolver read from the event, for the test to compare with the request."""
    event = router.current_event
    raw = event.raw_event
    return {"path": event.path, "method": event.http_method,
            "version": raw.get("version"), "routeKey": raw.get("routeKey"),
            "resource": raw.get("resource"), "rawPath": raw.get("rawPath"),
            "eventPath": raw.get("path"), "pathParameters": raw.get("pathParameters"),
            "stage": raw["requestContext"].get("stage")}


@router.get("/items/<item_id>")
def get_item(item_id):
    if item_id == "missing":
        raise NotFoundError(f"no item {item_id}")
    event = router.current_event
    return {"id": item_id,
            "verbose": event.get_query_string_value("verbose", "no"),
            "tag": (event.query_string_parameters or {}).get("tag"),
            "tags": event.get_multi_value_query_string_values("tag"),
            "agent": event.get_header_value("user-agent"),
            "seen": seen()}


@router.post("/items")
def post_item():
    body = router.current_event.json_body
    if not isinstance(body, dict) or "name" not in body:
        raise BadRequestError("name is required")
    slug = body["name"].lower().replace(" ", "-")
    return Response(
        status_code=201, content_type=content_types.APPLICATION_JSON,
        body={"id": slug, **body},
        headers={"Location": f"/items/{slug}", "X-Created-By": "powertools"},
        cookies=[Cookie(name="last-item", value=slug, secure=False, path="/"),
                 Cookie(name="session", value="s-1", secure=False, http_only=True)])


@router.get("/teapot")
def teapot():
    return Response(status_code=418, content_type=content_types.TEXT_PLAIN,
                    body="short and stout", headers={"X-Teapot": ["yes", "indeed"]})


@router.get("/big", compress=True)
def big():
    return {"numbers": list(range(3000))}


@router.get("/boom")
def boom():
    raise RuntimeError("the handler broke")


cors = CORSConfig(allow_origin="https://app.example", extra_origins=["https://admin.example"],
                  expose_headers=["X-Total"], max_age=300, allow_credentials=True)
url_app = LambdaFunctionUrlResolver(cors=cors)
http_app = APIGatewayHttpResolver(cors=cors)
rest_app = APIGatewayRestResolver(cors=cors)
for app in (url_app, http_app, rest_app):
    app.include_router(router)


def url(event, context):
    return url_app.resolve(event, context)


def http(event, context):
    return http_app.resolve(event, context)


def rest(event, context):
    return rest_app.resolve(event, context)
'''

# A hand-written ASGI application (no framework) behind Mangum: it echoes what the ASGI
# scope and body say, answers with two Set-Cookie headers and a repeated header, streams its
# body in two messages, and reverses binary bodies.
ASGI_APP = r'''
import base64
import hashlib
import json
from urllib.parse import parse_qs

from mangum import Mangum

LIFESPAN = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                LIFESPAN.append("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
    if scope["path"].endswith("/reverse"):
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"x-request-sha256", hashlib.sha256(body).hexdigest().encode())]})
        await send({"type": "http.response.body", "body": body[::-1]})
        return
    headers = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode(), []).append(value.decode())
    event = scope["aws.event"]
    answer = json.dumps({
        "method": scope["method"], "path": scope["path"], "query": query,
        "headers": headers, "body": base64.b64encode(body).decode(),
        "scheme": scope["scheme"], "client": scope["client"][0],
        "lifespan": "startup" in LIFESPAN,
        "version": event.get("version"), "rawPath": event.get("rawPath"),
        "eventPath": event.get("path"),
        "requestId": scope["aws.context"].aws_request_id,
    }).encode()
    await send({"type": "http.response.start", "status": int(query.get("status", ["200"])[0]),
                "headers": [(b"content-type", b"application/json"),
                            (b"x-echo", b"yes"),
                            (b"x-multi", b"one"), (b"x-multi", b"two"),
                            (b"set-cookie", b"first=1; Path=/"),
                            (b"set-cookie", b"second=2; Path=/; HttpOnly")]})
    half = len(answer) // 2
    await send({"type": "http.response.body", "body": answer[:half], "more_body": True})
    await send({"type": "http.response.body", "body": answer[half:]})


handler = Mangum(app)
# Behind a named stage the stage is the first segment of the path (as on AWS): Mangum's
# api_gateway_base_path strips it.
staged = Mangum(app, api_gateway_base_path="/live")
'''

CODE = make_zip({"web.py": POWERTOOLS_APP, "asgi.py": ASGI_APP})


def tree_zip(root, prefix):
    """Zips the directory `root` under `prefix/` in the archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"{prefix}/{path.relative_to(root)}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "adapters")


@pytest.fixture(scope="module")
def lam(shared):
    return shared.client()


@pytest.fixture(scope="module")
def apigw(shared):
    return shared.client(service="apigatewayv2")


@pytest.fixture(scope="module")
def layer(lam):
    """The real packages (Powertools, Mangum and their dependencies) as one layer."""
    if not (PACKAGES / "aws_lambda_powertools").is_dir() or not (PACKAGES / "mangum").is_dir():
        pytest.skip("scripts/test installs Powertools and Mangum into target/e2e-fn-python")
    return lam.publish_layer_version(
        LayerName="web-adapters", Content={"ZipFile": tree_zip(PACKAGES, "python")},
        CompatibleRuntimes=["python3.12"])["LayerVersionArn"]


def deploy(lam, layer, name, handler):
    return create(lam, name, CODE, Handler=handler, Layers=[layer], Timeout=10,
                  MemorySize=256)["FunctionArn"]


def public_url(lam, name):
    """A NONE function URL with the two statements it needs."""
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction",
                       Principal="*", InvokedViaFunctionUrl=True)
    return url


def allow_api(lam, name, api_id):
    """The statement that lets API Gateway (this API, any stage and route) invoke `name`."""
    lam.add_permission(FunctionName=name, StatementId=f"apigw-{api_id}",
                       Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*")


def proxy_api(apigw, name, routes, stages=("$default",)):
    """An HTTP API: routes {route key: (function ARN, payload format)}, auto-deployed stages."""
    api = apigw.create_api(Name=name, ProtocolType="HTTP")
    for route_key, (arn, payload) in routes.items():
        integration = apigw.create_integration(
            ApiId=api["ApiId"], IntegrationType="AWS_PROXY", IntegrationUri=arn,
            PayloadFormatVersion=payload)
        apigw.create_route(ApiId=api["ApiId"], RouteKey=route_key,
                           Target=f"integrations/{integration['IntegrationId']}")
    for stage in stages:
        apigw.create_stage(ApiId=api["ApiId"], StageName=stage, AutoDeploy=True)
    return api


def set_cookies(response):
    """Every Set-Cookie line of a `requests` response, in order."""
    return response.raw.headers.getlist("Set-Cookie")


# --- Powertools -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def powertools_url(lam, layer):
    deploy(lam, layer, "pt-url", "web.url")
    return public_url(lam, "pt-url")


@pytest.fixture(scope="module")
def powertools_http(lam, apigw, layer):
    """Powertools' APIGatewayHttpResolver behind an HTTP API with `ANY /{proxy+}` (payload
    2.0), on the `$default` stage and the named stage `live`."""
    arn = deploy(lam, layer, "pt-http", "web.http")
    api = proxy_api(apigw, "pt-http", {"ANY /{proxy+}": (arn, "2.0")}, stages=("$default", "live"))
    allow_api(lam, "pt-http", api["ApiId"])
    return api["ApiEndpoint"]


@pytest.fixture(scope="module")
def powertools_rest(lam, apigw, layer):
    """Powertools' APIGatewayRestResolver behind an HTTP API with payload format 1.0: a
    catch-all route and a more specific one with a path parameter."""
    arn = deploy(lam, layer, "pt-rest", "web.rest")
    api = proxy_api(apigw, "pt-rest", {"ANY /{proxy+}": (arn, "1.0"),
                                       "GET /items/{id}": (arn, "1.0")})
    allow_api(lam, "pt-rest", api["ApiId"])
    return api["ApiEndpoint"]


def check_powertools_routes(base):
    """The routes every Powertools resolver serves, checked from the client: returns the GET
    answer for the caller's own checks on the event."""
    response = requests.get(f"{base}/items/42", params={"verbose": "yes", "tag": ["a", "b"]},
                            headers={"User-Agent": "adapter-test/1"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    item = response.json()
    assert (item["id"], item["verbose"], item["agent"]) == ("42", "yes", "adapter-test/1")
    assert item["seen"]["path"] == "/items/42" and item["seen"]["method"] == "GET"

    created = requests.post(f"{base}/items", json={"name": "Blue Widget", "price": 3}, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json() == {"id": "blue-widget", "name": "Blue Widget", "price": 3}
    assert created.headers["Location"] == "/items/blue-widget"
    assert created.headers["X-Created-By"] == "powertools"
    assert set_cookies(created) == ["last-item=blue-widget; Path=/", "session=s-1; HttpOnly"]
    assert created.cookies.get("last-item") == "blue-widget"

    invalid = requests.post(f"{base}/items", json={"price": 3}, timeout=30)
    assert invalid.status_code == 400
    assert invalid.json() == {"statusCode": 400, "message": "name is required"}

    teapot = requests.get(f"{base}/teapot", timeout=30)
    assert (teapot.status_code, teapot.text) == (418, "short and stout")
    assert teapot.headers["Content-Type"] == "text/plain"
    assert teapot.headers["X-Teapot"] == "yes, indeed"

    # compress=True: Powertools gzips the body (base64 in the response) for a client that
    # accepts it, and Gust hands the client the bytes with their Content-Encoding.
    plain = requests.get(f"{base}/big", headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "Content-Encoding" not in plain.headers
    assert plain.json() == {"numbers": list(range(3000))}
    zipped = requests.get(f"{base}/big", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=30)
    assert zipped.status_code == 200 and zipped.headers["Content-Encoding"] == "gzip"
    on_the_wire = zipped.raw.read(decode_content=False)
    assert int(zipped.headers["Content-Length"]) == len(on_the_wire) < len(plain.content) / 2
    assert gzip.decompress(on_the_wire) == plain.content

    # Not found, from Powertools itself: an unknown path, an unrouted method, and the
    # route's own NotFoundError.
    for method, path in [("GET", "/nope"), ("DELETE", "/items/42")]:
        missing = requests.request(method, f"{base}{path}", timeout=30)
        assert missing.status_code == 404, (method, path)
        assert missing.json() == {"statusCode": 404, "message": "Not found"}
    missing = requests.get(f"{base}/items/missing", timeout=30)
    assert missing.status_code == 404
    assert missing.json() == {"statusCode": 404, "message": "no item missing"}
    return item


def check_powertools_cors(base):
    """Powertools answers the preflight (204, its own Allow-Methods) and adds the CORS
    headers for an allowed origin; nothing for another origin."""
    preflight = requests.options(f"{base}/items", headers={
        "Origin": "https://admin.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}, timeout=30)
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    assert set(preflight.headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "POST", "OPTIONS"}
    assert preflight.headers["Access-Control-Max-Age"] == "300"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"].split(",")
    assert preflight.content == b""

    actual = requests.get(f"{base}/items/7", headers={"Origin": "https://app.example"}, timeout=30)
    assert actual.status_code == 200
    assert actual.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert actual.headers["Access-Control-Expose-Headers"] == "X-Total"
    assert actual.headers["Access-Control-Allow-Credentials"] == "true"

    other = requests.get(f"{base}/items/7", headers={"Origin": "https://evil.example"}, timeout=30)
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    refused = requests.options(f"{base}/items", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, timeout=30)
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_powertools_on_a_function_url(powertools_url):
    base = powertools_url.rstrip("/")
    item = check_powertools_routes(base)
    # Function URL events are payload 2.0: `tag=a&tag=b` is one comma-joined value.
    assert (item["tag"], item["tags"]) == ("a,b", [])
    assert item["seen"]["version"] == "2.0" and item["seen"]["routeKey"] == "$default"
    assert item["seen"]["rawPath"] == "/items/42" and item["seen"]["stage"] == "$default"
    check_powertools_cors(base)
    # An exception the resolver does not handle fails the invocation: a 502 from the URL.
    assert requests.get(f"{base}/boom", timeout=30).status_code == 502


def test_powertools_behind_a_quick_created_http_api(lam, apigw, layer):
    arn = deploy(lam, layer, "pt-quick", "web.http")
    api = apigw.create_api(Name="pt-quick", ProtocolType="HTTP", Target=arn)
    base = api["ApiEndpoint"]
    assert base.endswith(f"/execute-api/{api['ApiId']}")
    # Without the resource-based policy statement API Gateway may not invoke it.
    denied = requests.get(f"{base}/items/1", timeout=30)
    assert denied.status_code == 500 and denied.json() == {"message": "Internal Server Error"}
    allow_api(lam, "pt-quick", api["ApiId"])
    item = check_powertools_routes(base)
    seen = item["seen"]
    assert seen["version"] == "2.0" and seen["routeKey"] == "$default"
    assert seen["rawPath"] == "/items/42" and seen["stage"] == "$default"


def test_powertools_behind_an_http_api_proxy_route(powertools_http):
    base = powertools_http
    item = check_powertools_routes(base)
    assert (item["tag"], item["tags"]) == ("a,b", [])
    seen = item["seen"]
    assert seen["version"] == "2.0" and seen["routeKey"] == "ANY /{proxy+}"
    assert seen["pathParameters"] == {"proxy": "items/42"}
    assert seen["rawPath"] == "/items/42" and seen["stage"] == "$default"
    check_powertools_cors(base)
    # The root is not under `/{proxy+}`: API Gateway's own 404, not the function's.
    root = requests.get(base + "/", timeout=30)
    assert root.status_code == 404 and root.json() == {"message": "Not Found"}
    # An unhandled exception: API Gateway's 500.
    boom = requests.get(f"{base}/boom", timeout=30)
    assert boom.status_code == 500 and boom.json() == {"message": "Internal Server Error"}


def test_powertools_behind_a_named_stage(powertools_http):
    # A named stage's name is the first segment of rawPath; Powertools' HTTP resolver takes
    # it off (requestContext.stage) before routing.
    response = requests.get(f"{powertools_http}/live/items/9", params={"verbose": "1"}, timeout=30)
    assert response.status_code == 200, response.text
    item = response.json()
    assert (item["id"], item["verbose"]) == ("9", "1")
    seen = item["seen"]
    assert seen["stage"] == "live" and seen["rawPath"] == "/live/items/9"
    assert seen["path"] == "/items/9" and seen["pathParameters"] == {"proxy": "items/9"}
    created = requests.post(f"{powertools_http}/live/items", json={"name": "On Stage"}, timeout=30)
    assert created.status_code == 201 and created.json()["id"] == "on-stage"
    assert requests.get(f"{powertools_http}/live/nope", timeout=30).json() == {
        "statusCode": 404, "message": "Not found"}


def test_powertools_rest_resolver_with_payload_1(powertools_rest):
    base = powertools_rest
    item = check_powertools_routes(base)
    # Payload 1.0: the repeated query parameter in multiValueQueryStringParameters; the more
    # specific route won, with its path parameter.
    assert item["tags"] == ["a", "b"]
    seen = item["seen"]
    assert seen["version"] == "1.0" and seen["resource"] == "/items/{id}"
    assert seen["eventPath"] == "/items/42" and seen["pathParameters"] == {"id": "42"}
    assert seen["stage"] == "$default"
    # The preflight (OPTIONS) goes through the catch-all route to Powertools.
    check_powertools_cors(base)
    boom = requests.get(f"{base}/boom", timeout=30)
    assert boom.status_code == 500 and boom.json() == {"message": "Internal Server Error"}


# --- Mangum (ASGI) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mangum_url(lam, layer):
    deploy(lam, layer, "asgi-url", "asgi.handler")
    return public_url(lam, "asgi-url")


@pytest.fixture(scope="module")
def mangum_api(lam, apigw, layer):
    """The ASGI app behind an HTTP API: `ANY /{proxy+}` with payload 2.0 and `ANY
    /v1/{proxy+}` with payload 1.0, on `$default` and `live`."""
    arn = deploy(lam, layer, "asgi-api", "asgi.staged")
    api = proxy_api(apigw, "asgi-api", {"ANY /{proxy+}": (arn, "2.0"),
                                        "ANY /v1/{proxy+}": (arn, "1.0")},
                    stages=("$default", "live"))
    allow_api(lam, "asgi-api", api["ApiId"])
    return api["ApiEndpoint"]


def check_asgi_echo(base, prefix="", app_prefix=""):
    """Mangum's translation both ways: requests to `base` + `prefix` + /echo/path (the app
    sees `app_prefix` + /echo/path); returns the app's echo of the first."""
    session = requests.Session()
    body = json.dumps({"k": "v", "n": [1, 2]}).encode()
    response = session.post(f"{base}{prefix}/echo/path?x=1&x=2&y=a%20b&status=201", data=body,
                            headers={"Content-Type": "application/json", "X-Trace": "t-1",
                                     "Cookie": "pre=0; other=o"}, timeout=30)
    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Echo"] == "yes"
    assert response.headers["X-Multi"].replace(" ", "") == "one,two"
    assert set_cookies(response) == ["first=1; Path=/", "second=2; Path=/; HttpOnly"]
    echo = response.json()
    assert echo["method"] == "POST" and echo["path"] == f"{app_prefix}/echo/path"
    assert echo["query"] == {"x": ["1", "2"], "y": ["a b"], "status": ["201"]}
    assert echo["headers"]["x-trace"] == ["t-1"]
    assert echo["headers"]["content-type"] == ["application/json"]
    assert echo["headers"]["cookie"] == ["pre=0; other=o"]
    assert base64.b64decode(echo["body"]) == body
    assert echo["client"] == "127.0.0.1" and echo["lifespan"] is True

    # The cookies the app set come back from the client's cookie jar on the next request.
    assert {c.name: c.value for c in session.cookies} == {"first": "1", "second": "2"}
    again = session.get(f"{base}{prefix}/echo/again", timeout=30).json()
    sent = sorted(p.strip() for p in again["headers"]["cookie"][0].split(";"))
    assert sent == ["first=1", "second=2"]
    assert again["method"] == "GET" and again["body"] == "" and again["query"] == {}

    # A binary body both ways: base64 to the function, decoded by Mangum; the binary
    # answer base64 from Mangum, bytes to the client.
    blob = bytes(range(256)) * 64 + b"\x00\xff"
    binary = requests.post(f"{base}{prefix}/bin/reverse", data=blob,
                           headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert binary.status_code == 200, binary.text
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.headers["X-Request-Sha256"] == hashlib.sha256(blob).hexdigest()
    assert binary.content == blob[::-1]
    return echo


def test_mangum_on_a_function_url(mangum_url):
    echo = check_asgi_echo(mangum_url.rstrip("/"))
    assert echo["version"] == "2.0" and echo["rawPath"] == "/echo/path"
    assert echo["scheme"] == "http"
    # The whole URL's own path (its trailing slash) reaches the app as "/".
    root = requests.get(mangum_url, timeout=30)
    assert root.status_code == 200 and root.json()["path"] == "/"


def test_mangum_behind_an_http_api(mangum_api):
    echo = check_asgi_echo(mangum_api)
    assert echo["version"] == "2.0" and echo["rawPath"] == "/echo/path"


def test_mangum_behind_a_named_stage(mangum_api):
    # rawPath keeps the stage; Mangum's api_gateway_base_path takes it off for the app.
    echo = check_asgi_echo(mangum_api, prefix="/live")
    assert echo["version"] == "2.0" and echo["rawPath"] == "/live/echo/path"


def test_mangum_with_payload_1(mangum_api):
    # Payload 1.0: Mangum reads multiValueHeaders/multiValueQueryStringParameters and
    # answers the two Set-Cookie lines in multiValueHeaders.
    echo = check_asgi_echo(mangum_api, prefix="/v1", app_prefix="/v1")
    assert echo["version"] == "1.0" and echo["eventPath"] == "/v1/echo/path"
    # Behind the named stage, payload 1.0's path keeps the stage too.
    echo = check_asgi_echo(mangum_api, prefix="/live/v1", app_prefix="/v1")
    assert echo["version"] == "1.0" and echo["eventPath"] == "/live/v1/echo/path"

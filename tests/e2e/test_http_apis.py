"""HTTP APIs (API Gateway v2) in front of functions: requests routed with API Gateway's
precedence to Lambda integrations, payload formats 1.0 and 2.0 both ways, stages and
stage variables, the function's policy for `apigateway.amazonaws.com`, CORS preflights
answered by the API, and API Gateway's own error answers."""

import json
import time
import urllib.error
import urllib.request

import pytest

from conftest import create, make_zip, module_server

ECHO = make_zip({"app.py": r'''
import json, time
def handler(event, context):
    if event.get("rawPath", event.get("path", "")).endswith("/sleep"):
        time.sleep(2)
    if event.get("rawPath", event.get("path", "")).endswith("/fail"):
        raise RuntimeError("no")
    return {"statusCode": 200, "headers": {"content-type": "application/json", "x-from": "fn"},
            "body": json.dumps(event)}
'''})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "httpapis")


@pytest.fixture(scope="module")
def lam(shared):
    return shared.client()


@pytest.fixture(scope="module")
def gw(shared):
    return shared.client(service="apigatewayv2")


def http(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def allow(lam, name, api_id, sid="apigw"):
    lam.add_permission(FunctionName=name, StatementId=sid, Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:000000000000:{api_id}/*")


def arn(name):
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


def test_quick_create_serves_every_path(lam, gw):
    create(lam, "apiquick", ECHO)
    api = gw.create_api(Name="quick", ProtocolType="HTTP", Target=arn("apiquick"))
    endpoint = api["ApiEndpoint"]
    # Without the function's permission API Gateway answers 500.
    status, _, body = http("GET", endpoint + "/anything")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    allow(lam, "apiquick", api["ApiId"])
    status, headers, body = http("POST", endpoint + "/a/b?x=1", body=b"hi",
                                 headers={"Content-Type": "text/plain"})
    assert status == 200 and headers["x-from"] == "fn"
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/a/b" and event["body"] == "hi"
    ctx = event["requestContext"]
    assert ctx["apiId"] == api["ApiId"] and ctx["stage"] == "$default"
    assert ctx["accountId"] == "000000000000"


def test_routes_by_precedence_with_both_payload_formats(lam, gw):
    create(lam, "apiroutes", ECHO)
    api = gw.create_api(Name="routes", ProtocolType="HTTP")
    api_id = api["ApiId"]
    v2 = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn("apiroutes"),
                               PayloadFormatVersion="2.0")["IntegrationId"]
    v1 = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn("apiroutes"),
                               PayloadFormatVersion="1.0")["IntegrationId"]
    for key, integration in [("GET /items/{id}", v2), ("GET /items/special", v2),
                             ("ANY /{proxy+}", v2), ("POST /legacy/{thing}", v1), ("$default", v2)]:
        gw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration}")
    gw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    gw.create_stage(ApiId=api_id, StageName="beta", AutoDeploy=True, StageVariables={"color": "blue"})
    allow(lam, "apiroutes", api_id)
    endpoint = api["ApiEndpoint"]

    def route(method, path, **kw):
        status, _, body = http(method, endpoint + path, **kw)
        assert status == 200, (path, status, body)
        return json.loads(body)

    assert route("GET", "/items/special")["routeKey"] == "GET /items/special"
    event = route("GET", "/items/42")
    assert event["routeKey"] == "GET /items/{id}" and event["pathParameters"] == {"id": "42"}
    event = route("DELETE", "/items/42/parts")
    assert event["routeKey"] == "ANY /{proxy+}" and event["pathParameters"] == {"proxy": "items/42/parts"}
    assert route("GET", "/")["routeKey"] == "$default"
    # A named stage is the path's first segment, with its variables.
    event = route("GET", "/beta/items/7")
    assert event["requestContext"]["stage"] == "beta" and event["rawPath"] == "/beta/items/7"
    assert event["stageVariables"] == {"color": "blue"}
    # Payload format 1.0, as REST APIs send it.
    event = route("POST", "/legacy/x1?a=1&a=2", body=b'{"j": 1}', headers={"Content-Type": "application/json"})
    assert event["version"] == "1.0" and event["resource"] == "/legacy/{thing}"
    assert event["httpMethod"] == "POST" and event["path"] == "/legacy/x1"
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["pathParameters"] == {"thing": "x1"} and event["body"] == '{"j": 1}'


def test_api_gateway_errors_cors_and_timeouts(lam, gw):
    create(lam, "apierrors", ECHO, Timeout=5)
    api = gw.create_api(Name="errors", ProtocolType="HTTP",
                        CorsConfiguration={"AllowOrigins": ["https://site.example"], "AllowMethods": ["GET"],
                                           "AllowHeaders": ["x-token"], "MaxAge": 60})
    api_id = api["ApiId"]
    integration = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                        IntegrationUri=arn("apierrors"), PayloadFormatVersion="2.0",
                                        TimeoutInMillis=1000)["IntegrationId"]
    gw.create_route(ApiId=api_id, RouteKey="GET /ok", Target=f"integrations/{integration}")
    gw.create_route(ApiId=api_id, RouteKey="GET /fail", Target=f"integrations/{integration}")
    gw.create_route(ApiId=api_id, RouteKey="GET /sleep", Target=f"integrations/{integration}")
    gw.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    allow(lam, "apierrors", api_id)
    endpoint = api["ApiEndpoint"]
    assert http("GET", endpoint + "/ok")[0] == 200
    status, _, body = http("GET", endpoint + "/missing")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    status, _, body = http("GET", endpoint + "/fail")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    status, _, body = http("GET", endpoint + "/sleep")
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})
    status, headers, _ = http("OPTIONS", endpoint + "/ok", headers={
        "Origin": "https://site.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-token"})
    assert status == 204 and headers["access-control-allow-origin"] == "https://site.example"
    assert headers["access-control-max-age"] == "60"
    status, headers, _ = http("GET", endpoint + "/ok", headers={"Origin": "https://site.example"})
    assert headers["access-control-allow-origin"] == "https://site.example"
    lam.put_function_concurrency(FunctionName="apierrors", ReservedConcurrentExecutions=0)
    status, _, body = http("GET", endpoint + "/ok")
    assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})
    gw.delete_api(ApiId=api_id)
    assert http("GET", endpoint + "/ok")[0] == 404

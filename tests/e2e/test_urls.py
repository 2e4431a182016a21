"""Function URLs: the configuration API as boto3 and the aws CLI call it, and the URL
itself reached with plain HTTP clients (urllib, curl): the payload format 2.0 event field
for field, responses as Lambda maps them, binary bodies, cookies, CORS answered from the
configuration, NONE and AWS_IAM auth with the resource policy, aliases, errors and
throttles."""

import base64
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import create, error_of, make_zip, module_server

ECHO = make_zip({"app.py": r'''
import base64, json, time

def handler(event, context):
    path = event.get("rawPath", "")
    if path == "/event":
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps(event)}
    if path == "/plain":
        return {"hello": "world"}
    if path == "/string":
        return "just text"
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "image/png"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/cookies":
        return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2; Secure"],
                "headers": {"x-custom": "yes"}, "body": "made"}
    if path == "/framed":  # headers copied from an upstream response
        return {"statusCode": 200, "headers": {"Transfer-Encoding": "chunked", "Content-Length": "1",
                                               "Connection": "close", "x-kept": "yes"},
                "body": "framed ok"}
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/bad":
        return {"statusCode": "not a number"}
    if path == "/sleep":
        time.sleep(float(event["queryStringParameters"]["s"]))
        return "slept"
    return {"statusCode": 200, "body": context.invoked_function_arn}
'''})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "urls")


@pytest.fixture(scope="module")
def lam(shared):
    return shared.client()


def public(lam, name, qualifier=None):
    """The two statements a NONE URL needs since October 2025."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE", **extra)
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction",
                       Principal="*", InvokedViaFunctionUrl=True, **extra)


def http(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read(), error.headers


@pytest.fixture(scope="module")
def echo_url(lam):
    create(lam, "urlecho", ECHO)
    config = lam.create_function_url_config(FunctionName="urlecho", AuthType="NONE")
    public(lam, "urlecho")
    return config["FunctionUrl"]


def test_configuration_api(lam, shared):
    create(lam, "urlcfg")
    created = lam.create_function_url_config(
        FunctionName="urlcfg", AuthType="AWS_IAM",
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 60})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    url = created["FunctionUrl"]
    assert url.startswith(shared.endpoint + "/lambda-url/") and url.endswith("/")
    url_id = url.rstrip("/").rsplit("/", 1)[1]
    assert len(url_id) == 32 and url_id.isalnum() and url_id.islower()
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:urlcfg"
    assert created["AuthType"] == "AWS_IAM" and created["InvokeMode"] == "BUFFERED"
    assert created["Cors"] == {"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 60}

    got = lam.get_function_url_config(FunctionName="urlcfg")
    assert got["FunctionUrl"] == url and "LastModifiedTime" in got
    status, code, message = error_of(lambda: lam.create_function_url_config(FunctionName="urlcfg", AuthType="NONE"))
    assert (status, code) == (409, "ResourceConflictException")
    assert "FunctionUrlConfig exists for this Lambda function" in message

    updated = lam.update_function_url_config(FunctionName="urlcfg", AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    assert updated["AuthType"] == "NONE" and updated["InvokeMode"] == "RESPONSE_STREAM"
    assert updated["Cors"]["MaxAge"] == 60 and updated["FunctionUrl"] == url

    # An alias may have its own URL; versions and $LATEST may not.
    lam.publish_version(FunctionName="urlcfg")
    lam.create_alias(FunctionName="urlcfg", Name="live", FunctionVersion="1")
    on_alias = lam.create_function_url_config(FunctionName="urlcfg", Qualifier="live", AuthType="NONE")
    assert on_alias["FunctionArn"].endswith(":function:urlcfg:live") and on_alias["FunctionUrl"] != url
    listed = lam.list_function_url_configs(FunctionName="urlcfg")["FunctionUrlConfigs"]
    assert sorted(c["FunctionArn"].rsplit(":", 1)[1] for c in listed) == ["live", "urlcfg"]
    for qualifier in ["1", "$LATEST"]:
        status, code, message = error_of(lambda: shared.client(parameter_validation=False)
                                         .create_function_url_config(FunctionName="urlcfg", Qualifier=qualifier, AuthType="NONE"))
        assert (status, code) == (400, "ValidationException"), message
    status, code, _ = error_of(lambda: shared.client(parameter_validation=False)
                               .create_function_url_config(FunctionName="urlcfg", AuthType="OPEN"))
    assert (status, code) == (400, "ValidationException")
    status, code, message = error_of(lambda: lam.get_function_url_config(FunctionName="nourl"))
    assert (status, code, message) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    status, code, message = error_of(lambda: lam.create_function_url_config(FunctionName="nourl", AuthType="NONE"))
    assert (status, code, message) == (404, "ResourceNotFoundException", "Function does not exist")

    # The aws CLI, and delete.
    out = json.loads(shared.aws("lambda", "get-function-url-config", "--function-name", "urlcfg",
                                "--qualifier", "live").stdout)
    assert out["FunctionUrl"] == on_alias["FunctionUrl"]
    shared.aws("lambda", "delete-function-url-config", "--function-name", "urlcfg", "--qualifier", "live")
    assert error_of(lambda: lam.get_function_url_config(FunctionName="urlcfg", Qualifier="live"))[0] == 404
    # A deleted URL is not served any more.
    assert http("GET", on_alias["FunctionUrl"])[0] == 404
    lam.delete_function_url_config(FunctionName="urlcfg")
    assert lam.list_function_url_configs(FunctionName="urlcfg")["FunctionUrlConfigs"] == []


def test_none_needs_both_policy_statements(lam):
    create(lam, "urlpolicy", ECHO)
    url = lam.create_function_url_config(FunctionName="urlpolicy", AuthType="NONE")["FunctionUrl"]
    status, _, body, _ = http("GET", url)
    assert (status, json.loads(body)) == (403, {"Message": "Forbidden"})
    lam.add_permission(FunctionName="urlpolicy", StatementId="url", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    assert http("GET", url)[0] == 403, "lambda:InvokeFunction is needed too"
    lam.add_permission(FunctionName="urlpolicy", StatementId="invoke", Action="lambda:InvokeFunction",
                       Principal="*", InvokedViaFunctionUrl=True)
    status, _, body, _ = http("GET", url)
    assert status == 200 and body.endswith(b":function:urlpolicy")


def test_the_event_field_for_field(echo_url, shared):
    status, headers, body, _ = http(
        "POST", echo_url + "event?a=1&a=2&b=x%20y",
        body=b'{"k": 1}',
        headers={"Content-Type": "application/json", "Cookie": "c1=v1; c2=v2",
                 "X-Multi": "one", "User-Agent": "gust-test/1"})
    assert status == 200 and headers["content-type"] == "application/json"
    event = json.loads(body)
    url_id = echo_url.rstrip("/").rsplit("/", 1)[1]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/event" and event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["body"] == '{"k": 1}' and event["isBase64Encoded"] is False
    h = event["headers"]
    assert h["x-multi"] == "one" and h["content-type"] == "application/json"
    assert "cookie" not in h and h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http" and h["x-amzn-trace-id"].startswith("Root=1-")
    ctx = event["requestContext"]
    assert ctx["accountId"] == "anonymous" and ctx["apiId"] == url_id and ctx["domainPrefix"] == url_id
    assert ctx["domainName"] == f"127.0.0.1:{shared.port}"
    assert ctx["http"] == {"method": "POST", "path": "/event", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "gust-test/1"}
    assert ctx["routeKey"] == "$default" and ctx["stage"] == "$default"
    assert abs(ctx["timeEpoch"] / 1000 - time.time()) < 60
    assert time.strftime("%d/%b/%Y", time.gmtime(ctx["timeEpoch"] / 1000)) in ctx["time"]
    assert "authorizer" not in ctx and len(ctx["requestId"]) == 36
    # A binary body travels base64; a GET has no body at all.
    event = json.loads(http("POST", echo_url + "event", body=bytes([0, 255, 1]),
                            headers={"Content-Type": "application/octet-stream"})[2])
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == bytes([0, 255, 1])
    event = json.loads(http("GET", echo_url + "event")[2])
    assert "body" not in event and "queryStringParameters" not in event and "cookies" not in event


def test_responses_as_lambda_maps_them(echo_url):
    status, headers, body, _ = http("GET", echo_url + "plain")
    assert (status, headers["content-type"], json.loads(body)) == (200, "application/json", {"hello": "world"})
    assert http("GET", echo_url + "string")[2] == b"just text"
    status, headers, body, _ = http("GET", echo_url + "binary")
    assert (status, headers["content-type"], body) == (200, "image/png", bytes(range(256)))
    status, headers, body, raw = http("GET", echo_url + "cookies")
    assert (status, body, headers["x-custom"]) == (201, b"made", "yes")
    assert raw.get_all("set-cookie") == ["a=1; Path=/", "b=2; Secure"]
    # Framing headers from the function are the server's to set: the body arrives whole.
    status, headers, body, _ = http("GET", echo_url + "framed")
    assert (status, body, headers["x-kept"]) == (200, b"framed ok", "yes")
    assert headers["content-length"] == "9" and "transfer-encoding" not in headers
    assert http("GET", echo_url + "fail")[0] == 502
    assert http("GET", echo_url + "bad")[0] == 502
    # The URL without its trailing slash reaches the function too (rawPath "/").
    status, _, body, _ = http("GET", echo_url.rstrip("/"))
    assert status == 200 and body.endswith(b":function:urlecho")
    # curl, as a user would.
    out = subprocess.run(["curl", "-s", "-i", echo_url + "string"], capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("HTTP/1.1 200") and out.stdout.endswith("just text")


def test_limits_and_unknown_urls(echo_url, shared):
    # Refused from its declared length, before the body is read.
    path = echo_url.split(str(shared.port), 1)[1] + "event"
    with socket.create_connection(("127.0.0.1", shared.port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {6 * 1024 * 1024 + 1}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    # A chunked body that grows past the limit is refused too.
    def chunks():
        for _ in range(7):
            yield b"x" * (1024 * 1024)
    try:
        assert http("POST", echo_url + "event", body=chunks(),
                    headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})[0] == 413
    except urllib.error.URLError:
        pass  # the server may close before the client finishes sending
    assert http("GET", shared.endpoint + "/lambda-url/" + "0" * 32 + "/")[0] == 404
    assert http("GET", shared.endpoint + "/lambda-url/../2015-03-31/functions")[0] in (403, 404)


def test_cors_answered_from_the_configuration(lam):
    create(lam, "urlcors", ECHO)
    url = lam.create_function_url_config(
        FunctionName="urlcors", AuthType="NONE",
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
              "AllowHeaders": ["x-custom"], "ExposeHeaders": ["x-total"], "MaxAge": 300,
              "AllowCredentials": True})["FunctionUrl"]
    public(lam, "urlcors")
    status, headers, _, _ = http("OPTIONS", url + "plain", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-Custom"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,POST"
    assert headers["access-control-allow-headers"] == "x-custom"
    assert headers["access-control-max-age"] == "300"
    assert headers["access-control-allow-credentials"] == "true"
    status, headers, _, _ = http("OPTIONS", url + "plain", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in headers
    status, headers, body, _ = http("GET", url + "plain", headers={"Origin": "https://app.example"})
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-expose-headers"] == "x-total"


def signed_request(shared, method, url, body=b"", key=None):
    """A urllib request to a URL signed with SigV4 for `lambda`, as awscurl would sign it."""
    access, secret = key or shared.credentials
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(access, secret), "lambda", "us-east-1").add_auth(request)
    return urllib.request.Request(url, data=body or None, method=method,
                                  headers=dict(request.headers.items()))


def signed(shared, method, url, body=b"", key=None):
    request = signed_request(shared, method, url, body, key)
    return http(method, url, body=body or None, headers=dict(request.header_items()))


def test_aws_iam_signed_and_unsigned(lam, shared):
    create(lam, "urliam", ECHO)
    url = lam.create_function_url_config(FunctionName="urliam", AuthType="AWS_IAM")["FunctionUrl"]
    assert http("GET", url + "event")[0] == 403
    status, _, body, _ = signed(shared, "POST", url + "event?q=1", b'{"x":1}')
    assert status == 200, body
    event = json.loads(body)
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accountId"] == "000000000000" and iam["accessKey"] == shared.credentials[0]
    assert iam["userArn"] == "arn:aws:iam::000000000000:root"
    assert event["requestContext"]["accountId"] == "000000000000"
    # A wrong secret, or a body changed after signing, is refused.
    assert signed(shared, "GET", url + "event", key=(shared.credentials[0], "wrong"))[0] == 403


def test_alias_url_during_a_weighted_shift(lam):
    which = make_zip({"app.py": "import os\ndef handler(event, context):\n"
                                "    return {'version': os.environ['WHICH'], 'arn': context.invoked_function_arn}\n"})
    create(lam, "urlshift", which, Environment={"Variables": {"WHICH": "one"}})
    lam.publish_version(FunctionName="urlshift")
    lam.get_waiter("function_updated_v2").wait(FunctionName="urlshift")
    lam.update_function_configuration(FunctionName="urlshift", Environment={"Variables": {"WHICH": "two"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName="urlshift")
    lam.publish_version(FunctionName="urlshift")
    lam.create_alias(FunctionName="urlshift", Name="live", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    url = lam.create_function_url_config(FunctionName="urlshift", Qualifier="live",
                                         AuthType="NONE")["FunctionUrl"]
    public(lam, "urlshift", qualifier="live")
    seen = set()
    for _ in range(40):
        status, _, body, _ = http("GET", url)
        answer = json.loads(body)
        assert status == 200 and answer["arn"].endswith(":function:urlshift:live")
        seen.add(answer["version"])
    assert seen == {"one", "two"}


def test_throttled_and_timed_out(lam):
    create(lam, "urlslow", ECHO, Timeout=2)
    url = lam.create_function_url_config(FunctionName="urlslow", AuthType="NONE")["FunctionUrl"]
    public(lam, "urlslow")
    assert http("GET", url + "sleep?s=5")[0] == 502
    lam.put_function_concurrency(FunctionName="urlslow", ReservedConcurrentExecutions=0)
    status, _, body, _ = http("GET", url + "string")
    assert status == 429, body


def test_host_based_urls_under_a_domain(make_server):
    """With --url-domain the URLs are AWS's host form (for a wildcard DNS name and a reverse
    proxy); the path form keeps working on the same server."""
    from conftest import free_port
    port = free_port()
    server = make_server(["--url-domain", f"http://gust.test:{port}"])
    lam = server.client()
    create(lam, "hosted", ECHO)
    url = lam.create_function_url_config(FunctionName="hosted", AuthType="NONE")["FunctionUrl"]
    public(lam, "hosted")
    url_id = url.split("//", 1)[1].split(".", 1)[0]
    assert url == f"http://{url_id}.lambda-url.us-east-1.gust.test:{port}/"
    host = f"{url_id}.lambda-url.us-east-1.gust.test:{port}"
    status, _, body, _ = http("GET", f"{server.endpoint}/event?x=1", headers={"Host": host})
    event = json.loads(body)
    assert status == 200 and event["rawPath"] == "/event"
    assert event["requestContext"]["domainName"] == host
    # curl resolving the name as a reverse proxy would.
    out = subprocess.run(["curl", "-s", "--resolve", f"{url_id}.lambda-url.us-east-1.gust.test:{server.port}:127.0.0.1",
                          f"http://{url_id}.lambda-url.us-east-1.gust.test:{server.port}/string"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == "just text"
    assert http("GET", f"{server.endpoint}/lambda-url/{url_id}/string")[2] == b"just text"
    # A URL's own host serves the function only: an S3-signed request there is not S3's
    # (a bucket's HTML must never appear under a function URL's origin).
    s3_signed = "X-Amz-Credential=k%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=00"
    assert http("GET", f"{server.endpoint}/string?{s3_signed}", headers={"Host": host})[2] == b"just text"
    # Another host under the domain, or an unknown id, is not a function.
    assert http("GET", f"{server.endpoint}/string", headers={"Host": f"{'0' * 32}.lambda-url.us-east-1.gust.test"})[0] == 404

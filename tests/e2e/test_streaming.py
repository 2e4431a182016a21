"""Response streaming: runtimes that stream through the Runtime API (a raw chunked post
with trailers, Gust's Node.js bootstrap with `awslambda.streamifyResponse`, the Rust
`lambda_runtime` crate), read back with boto3's `invoke_with_response_stream` and through
function URLs in `RESPONSE_STREAM` mode, the first byte arriving before the function
finishes."""

import base64
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, create, make_zip, module_server
from functions import package

# A custom runtime that streams by hand: each chunk is written to the open post as it is
# produced; a failure after the first chunk is reported in the trailers.
STREAMER = r'''#!/usr/bin/env python3
import base64, http.client, json, os, time
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
conn = http.client.HTTPConnection(api)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    event = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    if "rawPath" in event:  # through a function URL: the settings are the request's body
        event = json.loads(event.get("body") or "{}")
    post = http.client.HTTPConnection(api)
    post.putrequest("POST", f"/2018-06-01/runtime/invocation/{rid}/response")
    post.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    post.putheader("Transfer-Encoding", "chunked")
    post.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
    post.putheader("Content-Type", event.get("type", "text/plain"))
    post.endheaders()
    def chunk(data):
        post.send(b"%x\r\n%s\r\n" % (len(data), data))
    if event.get("prelude"):
        chunk(json.dumps(event["prelude"]).encode() + b"\0" * 8)
    for i in range(event.get("chunks", 3)):
        chunk(f"chunk-{i}\n".encode())
        time.sleep(event.get("pause", 0.3))
    if event.get("fail"):
        error = json.dumps({"errorType": "StreamBroke", "errorMessage": "broke mid-stream"}).encode()
        post.send(b"0\r\nLambda-Runtime-Function-Error-Type: StreamBroke\r\n"
                  b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(error) + b"\r\n\r\n")
    else:
        post.send(b"0\r\n\r\n")
    post.getresponse().read()
'''


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "streaming")


@pytest.fixture(scope="module")
def lam(shared):
    return shared.client()


@pytest.fixture(scope="module")
def streamer(lam):
    lam.create_function(FunctionName="streamer", Runtime="provided.al2023",
                        Role="arn:aws:iam::000000000000:role/r", Handler="x", Timeout=5,
                        Code={"ZipFile": package({"bootstrap": STREAMER}, executables={"bootstrap"})})
    return "streamer"


def read_stream(lam, name, payload, **kwargs):
    """Invokes with response streaming; returns (response, [(seconds since the call, chunk)],
    completion event, seconds until completion)."""
    start = time.monotonic()
    response = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps(payload), **kwargs)
    chunks, complete = [], None
    for event in response["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append((time.monotonic() - start, event["PayloadChunk"]["Payload"]))
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    return response, chunks, complete, time.monotonic() - start


def test_a_raw_stream_arrives_chunk_by_chunk(lam, streamer):
    read_stream(lam, streamer, {"chunks": 1, "pause": 0})  # a warm environment for timing
    response, chunks, complete, total = read_stream(lam, streamer, {"chunks": 4, "pause": 0.4},
                                                    LogType="Tail")
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "text/plain"
    assert b"".join(c for _, c in chunks) == b"chunk-0\nchunk-1\nchunk-2\nchunk-3\n"
    # The first byte long before the function finished (4 × 0.4 s of writing).
    first = chunks[0][0]
    print(f"first byte after {first * 1000:.0f} ms, complete after {total * 1000:.0f} ms")
    assert first < total - 1.0
    assert "ErrorCode" not in complete
    assert "REPORT RequestId" in base64.b64decode(complete["LogResult"]).decode()


def test_an_error_mid_stream_completes_with_its_code(lam, streamer):
    _, chunks, complete, _ = read_stream(lam, streamer, {"chunks": 1, "pause": 0, "fail": True})
    assert b"".join(c for _, c in chunks) == b"chunk-0\n"
    assert complete["ErrorCode"] == "StreamBroke"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "broke mid-stream"
    assert "LogResult" not in complete


def test_a_stream_past_the_timeout_is_cut(lam, streamer):
    _, chunks, complete, total = read_stream(lam, streamer, {"chunks": 20, "pause": 0.5})
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert 1 <= len(chunks) < 20 and total < 15


def test_a_buffered_function_streams_one_chunk(lam):
    create(lam, "notstreaming")
    response, chunks, complete, _ = read_stream(lam, "notstreaming", {"hello": "stream"})
    assert [json.loads(c) for _, c in chunks] == [{"hello": "stream"}]
    assert complete == {}
    assert response["ResponseStreamContentType"] == "application/json"
    fail = make_zip({"app.py": "def handler(e, c):\n    raise KeyError('nope')\n"})
    create(lam, "notstreamingfail", fail)
    _, chunks, complete, _ = read_stream(lam, "notstreamingfail", {})
    assert chunks == [] and complete["ErrorCode"] == "KeyError"
    # Invoke (not streaming) on a streaming function gets the whole body.
    body = lam.invoke(FunctionName="streamer", Payload=json.dumps({"chunks": 2, "pause": 0}))["Payload"].read()
    assert body == b"chunk-0\nchunk-1\n"


def test_a_function_url_streams(lam, streamer, shared):
    url = lam.create_function_url_config(FunctionName=streamer, AuthType="AWS_IAM",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    from test_urls import signed_request
    # With the HTTP integration prelude: status, headers and cookies from it.
    payload = json.dumps({"prelude": {"statusCode": 201, "headers": {"x-streamed": "yes"},
                                      "cookies": ["s=1"]},
                          "type": "application/vnd.awslambda.http-integration-response",
                          "chunks": 3, "pause": 0.5}).encode()
    request = signed_request(shared, "POST", url, payload)
    start = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        assert response.headers["x-streamed"] == "yes" and response.headers["set-cookie"] == "s=1"
        assert response.headers["transfer-encoding"] == "chunked"
        first = response.read1(64)
        first_at = time.monotonic() - start
        rest = response.read()
    total = time.monotonic() - start
    assert first + rest == b"chunk-0\nchunk-1\nchunk-2\n"
    print(f"URL first byte after {first_at * 1000:.0f} ms of {total * 1000:.0f} ms")
    assert first_at < total - 0.5


NODE_STREAMER = r'''
const { pipeline } = require("node:stream/promises");
const { Readable } = require("node:stream");
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const settings = event.rawPath ? JSON.parse(event.body || "{}") : event;  // via a URL: the body
  if (settings.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 202, headers: { "x-node": "streamed" }, cookies: ["n=1"] });
  } else {
    responseStream.setContentType("text/plain");
  }
  for (let i = 0; i < 3; i++) {
    responseStream.write(`node-${i}\n`);
    await new Promise((r) => setTimeout(r, 300));
  }
  if (settings.fail) throw new TypeError("node stream failed");
  await pipeline(Readable.from(["piped\n"]), responseStream);
});
'''


def test_node_streamify_response(lam, shared):
    create(lam, "nodestream", make_zip({"index.js": NODE_STREAMER}), Runtime="nodejs20.x",
           Handler="index.handler")
    response, chunks, complete, total = read_stream(lam, "nodestream", {})
    assert b"".join(c for _, c in chunks) == b"node-0\nnode-1\nnode-2\npiped\n"
    assert response["ResponseStreamContentType"] == "text/plain"
    assert chunks[0][0] < total - 0.4 and complete == {}
    _, chunks, complete, _ = read_stream(lam, "nodestream", {"fail": True})
    assert complete["ErrorCode"] == "TypeError"
    url = lam.create_function_url_config(FunctionName="nodestream", AuthType="AWS_IAM",
                                         InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    from test_urls import signed_request
    with urllib.request.urlopen(signed_request(shared, "POST", url, b'{"http": true}'), timeout=30) as r:
        assert r.status == 202 and r.headers["x-node"] == "streamed"
        assert r.headers["set-cookie"] == "n=1"
        assert r.read() == b"node-0\nnode-1\nnode-2\npiped\n"
    # Without the prelude the stream's own content type reaches the client.
    with urllib.request.urlopen(signed_request(shared, "POST", url, b'{}'), timeout=30) as r:
        assert r.status == 200 and r.headers["content-type"] == "text/plain"
        assert r.read() == b"node-0\nnode-1\nnode-2\npiped\n"


def test_rust_lambda_runtime_streams_unchanged(lam):
    binary = Path(os.environ.get("RUST_STREAM_BIN", REPO / "target" / "debug" / "stream"))
    assert binary.exists(), f"build it first: cargo build -p rust-echo ({binary})"
    lam.create_function(FunctionName="ruststream", Runtime="provided.al2023",
                        Role="arn:aws:iam::000000000000:role/r", Handler="bootstrap",
                        Code={"ZipFile": package({"bootstrap": binary.read_bytes()}, executables={"bootstrap"})})
    response, chunks, complete, total = read_stream(lam, "ruststream", {})
    # lambda_runtime always streams with the HTTP integration prelude; InvokeWithResponseStream
    # passes the bytes through as the function wrote them, with its content type.
    assert response["ResponseStreamContentType"] == "application/vnd.awslambda.http-integration-response"
    prelude, body = b"".join(c for _, c in chunks).split(b"\0" * 8, 1)
    assert json.loads(prelude)["statusCode"] == 200
    assert body == b"chunk-0\nchunk-1\nchunk-2\n"
    assert chunks[0][0] < total - 0.2 and complete == {}

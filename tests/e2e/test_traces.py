"""OpenTelemetry trace export: `gust serve --otlp-endpoint` sends a span per invocation to
an OTLP/HTTP receiver (a tiny one here, on a free port), in the caller's X-Ray trace
(`X-Amzn-Trace-Id` → W3C trace id), with the FaaS semantic conventions' attributes and an
`Init` child on cold starts. Both encodings: http/json, and http/protobuf decoded with the
pinned `opentelemetry-proto` package."""

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import create, free_port, make_zip, module_server
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

FUNCTION = "traced"
CODE = make_zip({"app.py": r'''
import os
def handler(event, context):
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "request_id": context.aws_request_id}
'''})


class Receiver:
    """An OTLP/HTTP traces receiver: keeps every span it is sent, as plain dicts."""

    def __init__(self):
        self.spans, self.resources, self.requests = [], [], []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.take(self.path, self.headers.get("Content-Type", ""), body)
                reply = b"{}" if "json" in self.headers.get("Content-Type", "") else b""
                self.send_response(200)
                self.send_header("Content-Type", self.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.http = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def take(self, path, content_type, body):
        self.requests.append((path, content_type))
        if content_type == "application/json":
            request = json.loads(body)
            for rs in request["resourceSpans"]:
                self.resources.append(attributes_of_json(rs["resource"]["attributes"]))
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        self.spans.append(dict(
                            name=s["name"], trace_id=s["traceId"], span_id=s["spanId"],
                            parent=s.get("parentSpanId") or "", kind=s.get("kind", 0),
                            start=int(s["startTimeUnixNano"]), end=int(s["endTimeUnixNano"]),
                            status=(s.get("status") or {}).get("code", 0),
                            attributes=attributes_of_json(s.get("attributes", [])),
                        ))
        else:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            for rs in request.resource_spans:
                self.resources.append(attributes_of_proto(rs.resource.attributes))
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(dict(
                            name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                            parent=s.parent_span_id.hex(), kind=s.kind,
                            start=s.start_time_unix_nano, end=s.end_time_unix_nano,
                            status=s.status.code, attributes=attributes_of_proto(s.attributes),
                        ))


def attributes_of_json(attributes):
    values = {}
    for kv in attributes:
        (kind, value), = kv["value"].items()
        values[kv["key"]] = int(value) if kind == "intValue" else value
    return values


def attributes_of_proto(attributes):
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in attributes}


@pytest.fixture(scope="module", params=["http/json", "http/protobuf"])
def traced(request, tmp_path_factory):
    """A server exporting to a receiver, after one cold and one warm invoke carrying the
    caller's trace header."""
    receiver = Receiver()
    args = ["--otlp-endpoint", f"http://127.0.0.1:{receiver.port}", "--otlp-protocol", request.param]
    servers = module_server(tmp_path_factory, "traces", args)
    server = next(servers)
    lam = server.client()
    create(lam, FUNCTION, CODE)
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    parent = secrets.token_hex(8)
    header = f"Root={root};Parent={parent};Sampled=1"

    def add_trace(request, **_):
        request.headers["X-Amzn-Trace-Id"] = header

    lam.meta.events.register("request-created.lambda.Invoke", add_trace)
    invokes = []
    for _ in range(2):
        before = time.time_ns()
        response = lam.invoke(FunctionName=FUNCTION, Payload=b"{}")
        payload = json.loads(response["Payload"].read())
        invokes.append(dict(request_id=payload["request_id"],
                            api_request_id=response["ResponseMetadata"]["RequestId"],
                            trace=payload["trace"], before=before, after=time.time_ns()))
    deadline = time.monotonic() + 15
    while len(receiver.spans) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield dict(receiver=receiver, root=root, parent=parent, invokes=invokes,
               protocol=request.param, server=server)
    receiver.http.shutdown()
    next(servers, None)


def field(header, name):
    return dict(p.split("=", 1) for p in header.split(";"))[name]


def test_each_invocation_is_a_span_in_the_callers_trace(traced):
    receiver, invokes = traced["receiver"], traced["invokes"]
    content_type = "application/json" if traced["protocol"] == "http/json" else "application/x-protobuf"
    assert receiver.requests and all(r == ("/v1/traces", content_type) for r in receiver.requests)
    assert receiver.resources[0]["service.name"] == "gust"
    trace_id = traced["root"][2:].replace("-", "")
    invocations = [s for s in receiver.spans if s["name"] == FUNCTION]
    assert len(invocations) == 2, receiver.spans
    by_request = {s["attributes"]["faas.invocation_id"]: s for s in invocations}
    assert set(by_request) == {i["request_id"] for i in invokes}
    for n, invoke in enumerate(invokes):
        span = by_request[invoke["request_id"]]
        assert span["trace_id"] == trace_id
        # The runtime saw the caller's root, and a Parent that is this span: what the
        # function's own spans hang under.
        assert field(invoke["trace"], "Root") == traced["root"]
        assert span["span_id"] == field(invoke["trace"], "Parent")
        assert span["kind"] == 2  # SERVER
        assert span["status"] == 0
        assert invoke["before"] <= span["start"] <= span["end"] <= invoke["after"]
        attributes = span["attributes"]
        assert attributes["faas.coldstart"] is (n == 0)
        assert attributes["faas.name"] == FUNCTION
        assert attributes["faas.version"] == "$LATEST"
        assert attributes["faas.max_memory"] == 128 * 1024 * 1024
        assert attributes["cloud.provider"] == "aws"
        assert attributes["cloud.region"] == "us-east-1"
        assert attributes["cloud.account.id"] == "000000000000"
        assert attributes["cloud.resource_id"] == f"arn:aws:lambda:us-east-1:000000000000:function:{FUNCTION}"


def test_a_cold_start_has_an_init_child(traced):
    receiver, invokes = traced["receiver"], traced["invokes"]
    cold = next(s for s in receiver.spans if s["attributes"].get("faas.invocation_id") == invokes[0]["request_id"])
    inits = [s for s in receiver.spans if s["name"] == "Init"]
    assert len(inits) == 1, receiver.spans
    init = inits[0]
    assert init["trace_id"] == cold["trace_id"]
    assert init["parent"] == cold["span_id"]
    assert init["span_id"] not in ("", cold["span_id"])
    assert init["start"] < init["end"] == cold["start"]


def test_invocation_spans_hang_under_the_callers_span(traced):
    invocations = [s for s in traced["receiver"].spans if s["name"] == FUNCTION]
    assert invocations and all(s["parent"] == traced["parent"] for s in invocations)

#!/usr/bin/env python3
"""A Telemetry API subscriber: an HTTP listener on sandbox.localdomain:$TELEMETRY_PORT that
appends every event it receives to /tmp/telemetry.jsonl (the environment's /tmp, which the
function reads back), subscribed to the telemetry types in $TELEMETRY_TYPES (platform and
function by default). It says hello on its stdout once subscribed: an `extension` line.
With $LOGS_SCHEMA set it subscribes through the older Logs API (`2020-08-15/logs`) with that
schemaVersion ("none": without one), as the official samples' Logs API extensions do."""

import json
import os
import socket
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

RUNTIME_API = os.environ["AWS_LAMBDA_RUNTIME_API"]
PORT = int(os.environ["TELEMETRY_PORT"])
NAME = os.path.basename(sys.argv[0])
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        events = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with lock, open("/tmp/telemetry.jsonl", "a") as out:
            for event in events:
                out.write(json.dumps(event) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


try:
    host = socket.gethostbyname("sandbox.localdomain")
    resolved = "resolved"
except OSError:
    host, resolved = "127.0.0.1", "unresolved"
with open("/tmp/telemetry-host", "w") as out:
    out.write(f"{resolved} {host}")
server = HTTPServer((host, PORT), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()


def call(method, path, headers, body=None):
    request = urllib.request.Request(f"http://{RUNTIME_API}/{path}", data=body, method=method,
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=None) as response:
        return response.status, response.headers, response.read()


_, headers, _ = call("POST", "2020-01-01/extension/register", {"Lambda-Extension-Name": NAME},
                     json.dumps({"events": []}).encode())
ext_id = headers["Lambda-Extension-Identifier"]
subscription = {
    "schemaVersion": "2022-12-13",
    "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{PORT}/telemetry"},
    "types": os.environ.get("TELEMETRY_TYPES", "platform,function").split(","),
    "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
}
path = "2022-07-01/telemetry"
logs_schema = os.environ.get("LOGS_SCHEMA")
if logs_schema:
    path = "2020-08-15/logs"
    subscription.pop("schemaVersion")
    if logs_schema != "none":
        subscription["schemaVersion"] = logs_schema
status, _, body = call("PUT", path,
                       {"Lambda-Extension-Identifier": ext_id, "Content-Type": "application/json"},
                       json.dumps(subscription).encode())
with open("/tmp/telemetry-subscribed", "w") as out:
    out.write(f"{status} {body.decode()}")
print(f"{NAME} says hello", flush=True)
while True:
    call("GET", "2020-01-01/extension/event/next", {"Lambda-Extension-Identifier": ext_id})

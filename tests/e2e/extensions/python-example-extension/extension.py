#!/usr/bin/env python3
"""The aws-samples python-example-extension pattern (written here with the standard
library instead of `requests`): the name is the parent directory's, it registers for
INVOKE and SHUTDOWN, logs each event and exits on SHUTDOWN."""

import json
import os
import signal
import sys
import urllib.request
from pathlib import Path

LAMBDA_EXTENSION_NAME = Path(__file__).parent.name
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"


def handle_signal(signum, frame):
    print(f"[{LAMBDA_EXTENSION_NAME}] Received signal={signum}. Exiting.", flush=True)
    sys.exit(0)


def register_extension():
    print(f"[{LAMBDA_EXTENSION_NAME}] Registering...", flush=True)
    request = urllib.request.Request(
        f"{API}/register", method="POST",
        data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
        headers={"Lambda-Extension-Name": LAMBDA_EXTENSION_NAME})
    with urllib.request.urlopen(request) as response:
        ext_id = response.headers["Lambda-Extension-Identifier"]
    print(f"[{LAMBDA_EXTENSION_NAME}] Registered with ID: {ext_id}", flush=True)
    return ext_id


def process_events(ext_id):
    while True:
        print(f"[{LAMBDA_EXTENSION_NAME}] Waiting for event...", flush=True)
        request = urllib.request.Request(
            f"{API}/event/next", headers={"Lambda-Extension-Identifier": ext_id})
        with urllib.request.urlopen(request, timeout=None) as response:
            event = json.loads(response.read())
        if event["eventType"] == "SHUTDOWN":
            print(f"[{LAMBDA_EXTENSION_NAME}] Received SHUTDOWN event. Exiting.", flush=True)
            sys.exit(0)
        print(f"[{LAMBDA_EXTENSION_NAME}] Received event: {json.dumps(event)}", flush=True)


def main():
    signal.signal(signal.SIGINT, handle_signal)
    signal.signal(signal.SIGTERM, handle_signal)
    process_events(register_extension())


if __name__ == "__main__":
    main()

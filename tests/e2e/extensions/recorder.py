#!/usr/bin/env python3
"""An external extension of the test suite's own: registers for INVOKE and SHUTDOWN and
prints what it sees (its output is the function's log). Behaviour knobs come from the
function's environment, which extensions share: EXT_REGISTER_DELAY (seconds before it
registers), EXT_INVOKE_DELAY (seconds it works on each INVOKE before asking again) and
EXT_EXIT_ON_INVOKE (an exit status: it exits with it on its first INVOKE, as a crash)."""

import json
import os
import sys
import time
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
NAME = os.path.basename(sys.argv[0])


def say(text):
    print(f"RECORDER {text}", flush=True)


def call(method, path, headers, body=None):
    request = urllib.request.Request(f"{API}/{path}", data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=None) as response:
        return response.headers, json.loads(response.read() or b"null")


time.sleep(float(os.environ.get("EXT_REGISTER_DELAY", "0")))
headers, info = call("POST", "register", {"Lambda-Extension-Name": NAME},
                     json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode())
ext_id = headers["Lambda-Extension-Identifier"]
say(f"REGISTERED {NAME} function={info['functionName']} version={info['functionVersion']} handler={info['handler']}")
while True:
    _, event = call("GET", "event/next", {"Lambda-Extension-Identifier": ext_id})
    if event["eventType"] == "INVOKE":
        say(f"INVOKE {event['requestId']} arn={event['invokedFunctionArn']} "
            f"trace={event['tracing']['type']} deadline={event['deadlineMs']}")
        if os.environ.get("EXT_EXIT_ON_INVOKE"):
            say(f"EXITING {event['requestId']}")
            sys.exit(int(os.environ["EXT_EXIT_ON_INVOKE"]))
        delay = float(os.environ.get("EXT_INVOKE_DELAY", "0"))
        if delay:
            time.sleep(delay)
            say(f"DONE {event['requestId']}")
    else:
        say(f"SHUTDOWN {event['shutdownReason']} deadline={event['deadlineMs']}")
        # Done with SHUTDOWN: asking again tells the platform so (it then stops the environment).
        call("GET", "event/next", {"Lambda-Extension-Identifier": ext_id})

"""Function packages the end-to-end tests deploy: built as zips in memory."""

import io
import stat
import zipfile


def package(files, executables=()):
    """files: {path: text or bytes}; paths in `executables` get mode 0755."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            mode = 0o755 if name in executables else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


PYTHON_APP = r'''
import json
import logging
import os
import sys
import time
import uuid

INIT_PID = os.getpid()
# Identifies the environment (pids repeat: each environment has its own pid namespace).
ENV_ID = uuid.uuid4().hex
CALLS = 0
logger = logging.getLogger()
logger.setLevel(logging.INFO)
print("module level code runs once per environment")


def handler(event, context):
    global CALLS
    CALLS += 1
    action = event.get("action") if isinstance(event, dict) else None
    if action == "fail":
        raise ValueError("handler failed on purpose")
    if action == "sleep":
        print("sleeping", event["seconds"])
        time.sleep(event["seconds"])
    if action == "exit":
        print("about to exit", flush=True)
        os._exit(3)
    if action == "size":
        return len(event["pad"])
    if action == "big":
        return "x" * event["size"]
    if action == "log":
        print("printed line")
        print(f"round {event.get('round')}")
        logger.info("logged line")
        print("to stderr", file=sys.stderr)
    if action == "unserializable":
        return {"when": object()}
    return {
        "event": event,
        "calls": CALLS,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "env_id": ENV_ID,
        "cwd": os.getcwd(),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity": context.identity.__dict__ if context.identity else None,
            "client_context": {"custom": context.client_context.custom,
                               "env": context.client_context.env} if context.client_context else None,
        },
        "env": {k: v for k, v in os.environ.items()},
    }
'''

NODE_CJS = r'''
let calls = 0;
const initPid = process.pid;
const envId = require('crypto').randomUUID();
exports.handler = async (event, context) => {
  calls += 1;
  if (event.action === 'fail') throw new TypeError('node failed on purpose');
  if (event.action === 'sleep') await new Promise((r) => setTimeout(r, event.seconds * 1000));
  if (event.action === 'exit') process.exit(4);
  console.log('node saw', JSON.stringify(event));
  return {
    event, calls, pid: process.pid, initPid, env_id: envId,
    context: {
      functionName: context.functionName, functionVersion: context.functionVersion,
      invokedFunctionArn: context.invokedFunctionArn, memoryLimitInMB: context.memoryLimitInMB,
      awsRequestId: context.awsRequestId, logGroupName: context.logGroupName,
      logStreamName: context.logStreamName, remaining: context.getRemainingTimeInMillis(),
      clientContext: context.clientContext, callbackWaits: context.callbackWaitsForEmptyEventLoop,
    },
    env: process.env,
  };
};
'''

NODE_CALLBACK = r'''
let pending = 0;
exports.handler = function (event, context, callback) {
  if (event.noWait) context.callbackWaitsForEmptyEventLoop = false;
  // A timer still pending when the callback is called.
  setTimeout(() => { pending += 1; }, 300);
  if (event.fail) return callback(new Error('callback error'));
  callback(null, { started: Date.now(), pendingBefore: pending });
};
'''

NODE_ESM = r'''
export const handler = async (event) => ({ esm: true, event });
'''

NODE_NESTED = r'''
module.exports = { api: { handle: async () => 'nested ok' } };
'''

# A custom runtime in Python, standard library only, speaking the Runtime API itself.
PROVIDED_BOOTSTRAP = r'''#!/usr/bin/env python3
import http.client, json, os
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
conn = http.client.HTTPConnection(api)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    event = json.loads(r.read())
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    deadline = r.getheader("Lambda-Runtime-Deadline-Ms")
    print("custom runtime handling", rid, flush=True)
    if event.get("fail"):
        body = json.dumps({"errorMessage": "custom failure", "errorType": "CustomError"})
        conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/error", body,
                     {"Lambda-Runtime-Function-Error-Type": "CustomError"})
    else:
        body = json.dumps({"custom": True, "event": event, "deadline": deadline,
                           "handler": os.environ.get("_HANDLER"),
                           "arn": r.getheader("Lambda-Runtime-Invoked-Function-Arn")})
        conn.request("POST", f"/2018-06-01/runtime/invocation/{rid}/response", body)
    conn.getresponse().read()
'''

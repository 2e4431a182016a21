"""Gust's Python runtime: a Lambda Runtime API client with Lambda's handler contract.

Standard library only. Started as `python3 -u bootstrap.py` in the function's code
directory with the Lambda environment variables set; loads `_HANDLER` once (INIT), then
serves invocations from `AWS_LAMBDA_RUNTIME_API` until the process is stopped.
"""

import importlib
import importlib.util
import json
import logging
import os
import socket
import sys
import time
import traceback


def await_hand_over(fd):
    """Prime mode (a pre-started environment): everything above is loaded; block until the
    sandbox hands over the function's environment on `fd` (its working directory, then its
    variables, each a 4-byte little-endian length and its bytes, until end-of-file), then
    take it as this process's whole environment and go on as a freshly started bootstrap."""
    # What the interpreter itself added at start (PEP 538's LC_CTYPE coercion) it would add
    # again on a fresh start with the same fixed variables: kept (learnt before the wait).
    try:
        with open("/proc/self/environ", "rb") as initial:
            started_with = {entry.partition(b"=")[0] for entry in initial.read().split(b"\0")}
    except OSError:
        started_with = set(os.environb)
    wanted = {name: value for name, value in os.environb.items() if name not in started_with}
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    data = b"".join(chunks)
    if not data:
        # The environment ended before it was used.
        os._exit(0)
    items = []
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "little")
        items.append(data[offset + 4:offset + 4 + length])
        offset += 4 + length
    for item in items[1:]:
        name, _, value = item.partition(b"=")
        wanted[name] = value
    # Only what differs is changed (the fixed variables are already set as wanted, and
    # every write may cost a copied page in a forked runtime).
    for name in [name for name in os.environb if name not in wanted]:
        del os.environb[name]
    for name, value in wanted.items():
        if os.environb.get(name) != value:
            os.environb[name] = value
    time.tzset()
    os.chdir(os.fsdecode(items[0]))


PREFIX = "/2018-06-01/runtime"
_current_request_id = ""


# What every receive reads into (then copied into the client's buffer). A new bytes object
# as large per `recv` is, in glibc, a fresh mapping each time: an mmap, a page fault, an
# mremap and a munmap for every answer. Made at import, so a primed or forked runtime has it
# before its hand-over (and a forked one copies only the pages a receive writes).
_RECEIVED = memoryview(bytearray(65536))


class RuntimeClient:
    """One keep-alive HTTP/1.1 connection to the Runtime API. A small client of its own
    rather than http.client: header parsing there costs more than the whole round trip."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.address = (host, int(port))
        self.host = address
        self.sock = None
        self.buffer = bytearray()

    def _connect(self):
        self.sock = socket.create_connection(self.address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def _close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _recv(self):
        count = self.sock.recv_into(_RECEIVED)
        if not count:
            raise ConnectionError("Runtime API closed the connection")
        self.buffer += _RECEIVED[:count]

    def _read_response(self):
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._recv()
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._recv()
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        if headers.get("connection", "").lower() == "close":
            self._close()
        return status, headers, body

    def _head(self, method, path, body, headers):
        head = f"{method} {PREFIX}{path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        return head.encode("latin-1") + b"\r\n"

    def request(self, method, path, body=b"", headers=None):
        data = self._head(method, path, body, headers)
        for attempt in range(2):
            try:
                if self.sock is None:
                    self._connect()
                if len(body) < 65536:
                    self.sock.sendall(data + body)
                else:
                    self.sock.sendall(data)
                    self.sock.sendall(body)
                return self._read_response()
            except OSError:
                self._close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def next(self):
        status, headers, body = self.request("GET", "/invocation/next")
        if status != 200:
            raise RuntimeError(f"Runtime API /next answered {status}: {body!r}")
        return headers, body

    def respond(self, path, body):
        """Posts an invocation's response and asks for the next event in the same write
        (HTTP/1.1 pipelining; the Runtime API answers both in order): the runtime is woken
        once, for the event, instead of once more for the post's answer, and its `next` is
        waiting before the caller has even read the result. The next event's headers and
        body, or None when the connection ended after the post (the caller asks again).
        As with any `next`, an event the server sent on a connection that then broke is
        lost until its invocation times out; the connection is loopback, kept alive, and
        ends only with the environment."""
        headers = {"Content-Type": "application/json"}
        ask = self._head("GET", "/invocation/next", b"", None)
        try:
            if self.sock is None:
                self._connect()
            data = self._head("POST", path, body, headers)
            if len(body) < 65536:
                self.sock.sendall(data + body + ask)
            else:
                self.sock.sendall(data)
                self.sock.sendall(body)
                self.sock.sendall(ask)
            self._read_response()
        except OSError:
            # As `request` does: the post once more, on a new connection.
            self._close()
            self.request("POST", path, body=body, headers=headers)
            return None
        if self.sock is None:
            return None
        try:
            status, headers, body = self._read_response()
        except OSError:
            self._close()
            return None
        if status != 200:
            raise RuntimeError(f"Runtime API /next answered {status}: {body!r}")
        return headers, body

    def post(self, path, body, error_type=None):
        headers = {"Content-Type": "application/json"}
        if error_type:
            headers["Lambda-Runtime-Function-Error-Type"] = error_type
        self.request("POST", path, body=body, headers=headers)


class CognitoIdentity:
    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    def __init__(self, data):
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    def __init__(self, data):
        self.client = Client(data["client"]) if data.get("client") else None
        self.custom = data.get("custom")
        self.env = data.get("env")


class LambdaContext:
    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, identity):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as in Lambda's Python runtime.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = CognitoIdentity(identity) if identity else None
        self.client_context = ClientContext(client_context) if client_context else None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self):
        return (f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
                f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
                f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
                f"invoked_function_arn={self.invoked_function_arn}])")


class InitError(Exception):
    def __init__(self, error_type, message, stack=None):
        super().__init__(message)
        self.error_type = error_type
        self.stack = stack or []


class LambdaFormatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self):
        super().__init__("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                         "%Y-%m-%dT%H:%M:%S")

    def format(self, record):
        record.aws_request_id = _current_request_id
        # One log event per record, as Lambda keeps multi-line records together.
        return super().format(record).replace("\n", "\r")


class JsonFormatter(logging.Formatter):
    """Lambda's JSON log lines (LoggingConfig.LogFormat JSON)."""

    def format(self, record):
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + ".%03dZ" % record.msecs,
            "level": {"WARNING": "WARN", "CRITICAL": "FATAL"}.get(record.levelname, record.levelname),
            "message": record.getMessage(),
            "logger": record.name,
        }
        if _current_request_id:
            entry["requestId"] = _current_request_id
        if record.exc_info:
            entry["errorType"] = record.exc_info[0].__name__
            entry["errorMessage"] = str(record.exc_info[1])
            entry["stackTrace"] = traceback.format_exception(*record.exc_info)
        return json.dumps(entry, default=str)


# ApplicationLogLevel to Python's levels (TRACE has none of its own: DEBUG and below).
LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
          "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}


def install_logging():
    handler = logging.StreamHandler(sys.stdout)
    root = logging.getLogger()
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(JsonFormatter())
        root.setLevel(LEVELS.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"), logging.INFO))
    else:
        handler.setFormatter(LambdaFormatter())
    root.handlers = [handler]


def log_error(error_type, message, stack):
    text = f"[ERROR] {error_type}: {message}"
    if stack:
        text += "\rTraceback (most recent call last):\r" + "".join(stack).replace("\n", "\r")
    print(text, flush=True)


def user_stack(tb):
    """The traceback without this bootstrap's own frames."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return traceback.format_list(frames)


def load_handler(spec):
    if "." not in spec:
        raise InitError("Runtime.MalformedHandlerName",
                        f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    module_path, function_name = spec.rsplit(".", 1)
    module_name = module_path.replace("/", ".")
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise InitError("Runtime.BuiltInModuleConflict",
                        f"Cannot use built-in module {module_name} as a handler module")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}")
    except SyntaxError as error:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}",
                        user_stack(error.__traceback__))
    except Exception as error:
        # As awslambdaric: any other exception raised while importing is reported as itself.
        raise InitError(type(error).__name__, str(error), user_stack(error.__traceback__))
    handler = getattr(module, function_name, None)
    if handler is None:
        raise InitError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


def error_body(error_type, message, request_id, stack):
    return json.dumps({"errorMessage": message, "errorType": error_type,
                       "requestId": request_id, "stackTrace": stack}).encode()


def run_hook(func, args, kwargs, error_type):
    try:
        func(*args, **kwargs)
    except Exception as error:
        raise InitError(error_type, str(error), user_stack(error.__traceback__))


def snap_start(client):
    """SnapStart: run the before-snapshot hooks (newest first), wait at the snapshot point
    (`restore/next`) until the environment is restored, re-seed the random generators, and
    run the after-restore hooks (in registration order)."""
    import snapshot_restore_py
    before = snapshot_restore_py.get_before_snapshot()
    try:
        while before:
            func, args, kwargs = before.pop()
            run_hook(func, args, kwargs, "Runtime.BeforeSnapshotError")
    except InitError as error:
        log_error(error.error_type, str(error), error.stack)
        client.post("/init/error", error_body(error.error_type, str(error), "", error.stack), error.error_type)
        sys.exit(1)
    sys.stdout.flush()
    status, _, body = client.request("GET", "/restore/next")
    if status != 200:
        raise RuntimeError(f"Runtime API /restore/next answered {status}: {body!r}")
    # Restored environments must not share the snapshot's random state.
    import random
    random.seed()
    try:
        for func, args, kwargs in snapshot_restore_py.get_after_restore():
            run_hook(func, args, kwargs, "Runtime.AfterRestoreError")
    except InitError as error:
        log_error(error.error_type, str(error), error.stack)
        client.post("/restore/error", error_body(error.error_type, str(error), "", error.stack), error.error_type)
        sys.exit(1)


def main():
    global _current_request_id
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    # Lambda's order: the code, then the layers' packages (/opt), then the runtime.
    opt = sys.argv[1] if len(sys.argv) > 1 else "/opt"
    version = "python%d.%d" % sys.version_info[:2]
    sys.path[0:0] = [task_root, os.path.join(opt, "python", "lib", version, "site-packages"),
                     os.path.join(opt, "python")]
    install_logging()
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitError as error:
        log_error(error.error_type, str(error), error.stack)
        client.post("/init/error", error_body(error.error_type, str(error), "", error.stack), error.error_type)
        sys.exit(1)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        snap_start(client)

    asked = None
    while True:
        headers, body = asked or client.next()
        asked = None
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        _current_request_id = request_id
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            client_context = json.loads(headers["lambda-runtime-client-context"]) \
                if headers.get("lambda-runtime-client-context") else None
            identity = json.loads(headers["lambda-runtime-cognito-identity"]) \
                if headers.get("lambda-runtime-cognito-identity") else None
            context = LambdaContext(request_id, int(headers.get("lambda-runtime-deadline-ms", "0")),
                                    headers.get("lambda-runtime-invoked-function-arn"), client_context, identity)
            event = json.loads(body) if body else {}
        except Exception as error:
            client.post(f"/invocation/{request_id}/error",
                        error_body("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}", request_id, []),
                        "Runtime.UnmarshalError")
            continue
        try:
            result = handler(event, context)
        except Exception as error:
            error_type = type(error).__name__
            stack = user_stack(error.__traceback__)
            log_error(error_type, str(error), stack)
            client.post(f"/invocation/{request_id}/error", error_body(error_type, str(error), request_id, stack),
                        error_type)
            continue
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            log_error("Runtime.MarshalError", message, [])
            client.post(f"/invocation/{request_id}/error",
                        error_body("Runtime.MarshalError", message, request_id, []), "Runtime.MarshalError")
            continue
        asked = client.respond(f"/invocation/{request_id}/response", payload)


def warm_up():
    """Prime mode: what every start does first, done before the hand-over (its results are
    kept or cached, whatever the function): the IDNA codec a host name's connection
    imports, the resolver's first use, the compiler's, the import system's, the
    formatter's and JSON's. In a runtime forked from a zygote it runs again after the
    fork: the pages those steps write are then this process's own before the hand-over,
    not copied one fault at a time during the cold start."""
    import encodings.idna  # noqa: F401
    try:
        socket.getaddrinfo("127.0.0.1", 9001, 0, socket.SOCK_STREAM)
    except OSError:
        pass
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    compile("def handler(event, context):\n    return event\n", "<warm-up>", "exec")
    importlib.util.find_spec("_gust_warm_up_absent")
    LambdaFormatter().format(logging.LogRecord("warm-up", logging.INFO, __file__, 0, "", (), None))
    json.loads(json.dumps({"warm": ["up", 1, 2.5, None, True]}))
    os.environb[b"_GUST_WARM_UP"] = b"1"
    del os.environb[b"_GUST_WARM_UP"]
    # An answer's parsing and an invocation's context, on a response that is never sent.
    rehearsal = RuntimeClient("127.0.0.1:9001")
    rehearsal.buffer = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 b"Lambda-Runtime-Aws-Request-Id: warm-up\r\n\r\n{}")
    rehearsal._read_response()
    LambdaContext("warm-up", 0, "", None, None).get_remaining_time_in_millis()
    # The import system's whole path for a source module (finder, loader, compile, exec):
    # Gust's SnapStart hooks module, loaded again in a forked runtime (nothing registered
    # yet: no function code has run).
    if "snapshot_restore_py" in sys.modules:
        importlib.reload(sys.modules["snapshot_restore_py"])
    else:
        import snapshot_restore_py  # noqa: F401


if __name__ == "__main__":
    if "_GUST_ZYGOTE_FD" in os.environ or "_GUST_HANDOVER_FD" in os.environ:
        # Everything above is loaded (module code, classes) before the wait.
        warm_up()
    if "_GUST_ZYGOTE_FD" in os.environ:
        # A zygote: returns only in a runtime it forked, which then waits for its hand-over.
        import gust_zygote
        if gust_zygote.serve(int(os.environ.pop("_GUST_ZYGOTE_FD"))):
            warm_up()
    if "_GUST_HANDOVER_FD" in os.environ:
        await_hand_over(int(os.environ["_GUST_HANDOVER_FD"]))
    main()

"""End-to-end harness: starts the real `gust` binary on a free port with a temporary data
directory, and hands tests real clients (boto3, the aws CLI, the gust CLI) pointed at it."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
GUST_BIN = Path(os.environ.get("GUST_BIN", REPO / "target" / "debug" / "gust"))
# The Node.js releases and SDKs scripts/test installs (`gust runtimes install`), shared by
# every test server.
os.environ.setdefault("GUST_RUNTIMES_DIR", str(REPO / "target" / "gust-runtimes"))
VENV_BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `gust serve` process; can be stopped and started again on the same data dir."""

    def __init__(self, data_dir, extra_args=(), env=None):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.env = env
        self.process = None
        self.log_path = self.data_dir.parent / f"gust-{self.port}.log"

    def start(self):
        log = open(self.log_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        self.process = subprocess.Popen(
            [str(GUST_BIN), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gust exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_gust/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"gust did not become healthy:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)
        return self.process.returncode

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def credentials(self):
        if self.env and "GUST_ACCESS_KEY_ID" in self.env:
            return self.env["GUST_ACCESS_KEY_ID"], self.env["GUST_SECRET_ACCESS_KEY"]
        data = json.loads((self.data_dir / "credentials.json").read_text())
        return data["access_key_id"], data["secret_access_key"]

    def client(self, access_key=None, secret_key=None, service="lambda", **config):
        key, secret = self.credentials
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=access_key or key,
            aws_secret_access_key=secret_key or secret,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def signed_headers(self, method, path, body=b"", headers=None, service="lambda"):
        """The headers of a SigV4-signed request, for requests sent without boto3 (which
        checks what it sends, or is too slow to drive a load)."""
        key, secret = self.credentials
        request = AWSRequest(method=method, url=self.endpoint + path, data=body,
                             headers=dict(headers or {}))
        SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
        return dict(request.headers)

    def aws_env(self):
        key, secret = self.credentials
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
        return env

    def aws(self, *args, check=True):
        """Runs the real aws CLI (v1, from the test venv) against this server."""
        result = subprocess.run(
            [str(VENV_BIN / "aws"), "--endpoint-url", self.endpoint, "--output", "json", *args],
            capture_output=True, text=True, env=self.aws_env(), timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def gust(self, *args, check=True, env=None):
        """Runs the gust CLI, finding this server through its data directory."""
        full_env = dict(os.environ)
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GUST_ENDPOINT"]:
            full_env.pop(name, None)
        full_env.update(env or {})
        result = subprocess.run(
            [str(GUST_BIN), *args, "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, env=full_env, timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"gust {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def make(extra_args=(), env=None, data_dir=None):
        server = Server(data_dir or tmp_path / f"data{len(servers)}", extra_args, env)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        # Gracefully, so the server stops its environments and removes its cgroups.
        try:
            server.stop(signal.SIGTERM, timeout=20)
        except subprocess.TimeoutExpired:
            server.stop(signal.SIGKILL)


def module_server(tmp_path_factory, name, extra_args=()):
    """One server for a whole test module (a generator for a module-scoped fixture): its
    tests use their own function names, so they can share it."""
    server = Server(tmp_path_factory.mktemp(name) / "data", extra_args).start()
    yield server
    try:
        server.stop(signal.SIGTERM, timeout=20)
    except subprocess.TimeoutExpired:
        server.stop(signal.SIGKILL)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def lam(server):
    return server.client()


def make_zip(files):
    """files: {name: bytes|str}; returns zip bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


HANDLER_ZIP = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def create(lam, name, zip_bytes=HANDLER_ZIP, **kwargs):
    params = dict(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                  Code={"ZipFile": zip_bytes})
    params.update(kwargs)
    return lam.create_function(**params)


def error_of(call):
    """Runs a client call that must fail; returns (HTTP status, error code, message)."""
    with pytest.raises(Exception) as info:
        call()
    response = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]

"""A runtime id means that runtime: each `pythonX.Y` / `nodejsNN.x` runs on an interpreter of
exactly that version (or is refused at CreateFunction), and functions find the AWS SDK the
managed runtimes carry (boto3, the AWS SDK for JavaScript v3) without packaging it, while a
packaged copy still wins. Node.js releases and the SDKs come from `gust runtimes install`, into
one runtimes directory the test servers share (GUST_RUNTIMES_DIR)."""

import json
import os
import signal
import subprocess

import pytest

from conftest import GUST_BIN, REPO, ROLE, Server, error_of, make_zip  # noqa: F401

RUNTIMES_DIR = os.environ.get("GUST_RUNTIMES_DIR") or str(REPO / "target" / "gust-runtimes")
BOTO3 = {"python3.9": "1.42.97", "python3.10": "1.44.8", "python3.11": "1.44.8",
         "python3.12": "1.44.8", "python3.13": "1.44.8"}
NODE_SDK = "3.940.0"

PY_APP = '''
import sys

def handler(event, context):
    out = {"version": sys.version, "executable": sys.executable, "path": sys.path}
    if event.get("boto3"):
        import boto3
        out["boto3"] = boto3.__version__
        out["boto3_file"] = boto3.__file__
    if event.get("call"):
        import boto3
        names = [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]]
        out["functions"] = names
    return out
'''

NODE_APP = '''
exports.handler = async (event) => {
  const out = { version: process.version, execPath: process.execPath };
  if (event.sdk) {
    const { S3Client } = require('@aws-sdk/client-s3');
    const { DynamoDBDocumentClient } = require('@aws-sdk/lib-dynamodb');
    out.s3 = typeof S3Client;
    out.doc = typeof DynamoDBDocumentClient;
    out.sdk = require('@aws-sdk/client-s3/package.json').version;
    out.resolved = require.resolve('@aws-sdk/client-s3');
  }
  if (event.call) {
    const { LambdaClient, ListFunctionsCommand } = require('@aws-sdk/client-lambda');
    const listed = await new LambdaClient({}).send(new ListFunctionsCommand({}));
    out.functions = listed.Functions.map((f) => f.FunctionName);
  }
  return out;
};
'''


def gust_runtimes(*args):
    return subprocess.run([str(GUST_BIN), "runtimes", *args, "--runtimes-dir", RUNTIMES_DIR],
                          capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def listing(tmp_path_factory):
    # Pinned and checksum-verified; instant when scripts/test has installed them already.
    gust_runtimes("install", "nodejs18.x", "nodejs22.x", "sdk",
                  "--data-dir", str(tmp_path_factory.mktemp("install") / "data"))
    out = gust_runtimes("--json", "--data-dir", str(tmp_path_factory.mktemp("list") / "data"))
    return {r["runtime"]: r for r in json.loads(out.stdout)["runtimes"]}


@pytest.fixture(scope="module")
def rt_server(tmp_path_factory, listing):
    server = Server(tmp_path_factory.mktemp("runtimes") / "data",
                    env={"GUST_RUNTIMES_DIR": RUNTIMES_DIR}).start()
    yield server
    try:
        server.stop(signal.SIGTERM, timeout=20)
    except subprocess.TimeoutExpired:
        server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def rlam(rt_server):
    return rt_server.client()


def deploy(lam, name, runtime, files, handler):
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": make_zip(files)}, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)


def invoke(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_gust_runtimes_json_lists_interpreters_and_sdks(listing):
    # Which Python versions exist is the host's affair (pyenv, uv, the distribution): the suite
    # needs python3.12 (its functions' default) and one more, and checks every one found.
    pythons = [r for r in BOTO3 if listing[r]["installed"]]
    assert "python3.12" in pythons and len(pythons) >= 2, pythons
    for runtime in pythons:
        entry = listing[runtime]
        assert entry["version"].startswith(runtime[len("python"):] + "."), entry
        assert entry["sdk"] == {"name": f"boto3 {BOTO3[runtime]}", "installed": True,
                                "path": entry["sdk"]["path"]}
    for runtime in ["nodejs18.x", "nodejs22.x"]:
        entry = listing[runtime]
        assert entry["installed"] and entry["source"] == "gust-installed", entry
        assert entry["version"].startswith(runtime[6:8] + "."), entry
        assert entry["path"].startswith(RUNTIMES_DIR), entry
        assert entry["sdk"]["installed"] and entry["sdk"]["name"] == f"@aws-sdk/* {NODE_SDK}"
    assert listing["provided.al2023"]["installed"]
    missing = [r for r, e in listing.items() if not e["installed"]]
    assert missing and all(listing[r]["hint"] for r in missing)
    # The table says the same, one line per id.
    table = gust_runtimes("--data-dir", str(REPO / "target" / "gust-runtimes-table")).stdout
    assert any(line.startswith("nodejs22.x") and "gust-installed" in line for line in table.splitlines())


def test_each_python_id_runs_its_own_version(rlam, listing):
    ids = [r for r in BOTO3 if listing[r]["installed"]]
    assert "python3.12" in ids and len(ids) >= 2, ids
    for runtime in ids:
        name = "v-" + runtime.replace(".", "-")
        deploy(rlam, name, runtime, {"app.py": PY_APP}, "app.handler")
        body = invoke(rlam, name)
        assert body["version"].startswith(listing[runtime]["version"]), (runtime, body["version"])


def test_each_node_id_runs_its_own_version(rlam, listing):
    for runtime in ["nodejs18.x", "nodejs20.x", "nodejs22.x"]:
        if not listing[runtime]["installed"]:
            assert runtime == "nodejs20.x", f"{runtime} should have been installed"
            continue
        name = "v-" + runtime.replace(".", "-")
        deploy(rlam, name, runtime, {"index.js": NODE_APP}, "index.handler")
        body = invoke(rlam, name)
        assert body["version"] == "v" + listing[runtime]["version"], (runtime, body)


def test_a_runtime_not_installed_is_refused(rlam, listing):
    missing = next(r for r in ["nodejs24.x", "nodejs26.x", "python3.14", "python3.15"]
                   if not listing[r]["installed"])
    status, code, message = error_of(lambda: deploy(rlam, "nope", missing, {"app.py": PY_APP}, "app.handler"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert f"{missing} is not installed on this host" in message, message
    assert "--runtime " + missing + "=" in message and "python3.12" in message, message
    deploy(rlam, "ok-then-changed", "python3.12", {"app.py": PY_APP}, "app.handler")
    status, code, message = error_of(lambda: rlam.update_function_configuration(
        FunctionName="ok-then-changed", Runtime=missing))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "is not installed on this host" in message


def test_boto3_is_preinstalled_after_the_code_and_layers(rlam, listing):
    for runtime in [r for r in ["python3.9", "python3.12"] if listing[r]["installed"]]:
        name = "boto-" + runtime.replace(".", "-")
        deploy(rlam, name, runtime, {"app.py": PY_APP}, "app.handler")
        body = invoke(rlam, name, {"boto3": True})
        assert body["boto3"] == BOTO3[runtime], body
        # Lambda's order: the code, the layers' folders, then the runtime's packages.
        path = body["path"]
        assert path[0] == "/var/task" and path[1:3] == [
            f"/opt/python/lib/python{runtime[6:]}/site-packages", "/opt/python"], path
        assert body["boto3_file"] == "/var/runtime/sdk/python/boto3/__init__.py", body
    # The SDK really works: it calls this server with the function's credentials.
    body = invoke(rlam, "boto-python3-12", {"call": True})
    assert "boto-python3-12" in body["functions"]
    # A packaged boto3 wins over the runtime's.
    deploy(rlam, "boto-packaged", "python3.12",
           {"app.py": PY_APP, "boto3/__init__.py": "__version__ = '0.0.packaged'\n"}, "app.handler")
    assert invoke(rlam, "boto-packaged", {"boto3": True})["boto3"] == "0.0.packaged"
    # So does one in a layer (/opt/python comes before the runtime's too).
    layer = rlam.publish_layer_version(
        LayerName="old-boto3",
        Content={"ZipFile": make_zip({"python/boto3/__init__.py": "__version__ = '0.0.layer'\n"})})
    rlam.create_function(FunctionName="boto-layer", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                         Code={"ZipFile": make_zip({"app.py": PY_APP})}, Layers=[layer["LayerVersionArn"]])
    rlam.get_waiter("function_active_v2").wait(FunctionName="boto-layer")
    assert invoke(rlam, "boto-layer", {"boto3": True})["boto3"] == "0.0.layer"


def test_the_javascript_sdk_is_preinstalled(rlam):
    for runtime in ["nodejs18.x", "nodejs22.x"]:
        name = "sdk-" + runtime.replace(".", "-")
        deploy(rlam, name, runtime, {"index.js": NODE_APP}, "index.handler")
        body = invoke(rlam, name, {"sdk": True})
        assert (body["s3"], body["doc"], body["sdk"]) == ("function", "function", NODE_SDK), body
    body = invoke(rlam, "sdk-nodejs22-x", {"call": True})
    assert "sdk-nodejs22-x" in body["functions"]
    # A packaged copy wins (the code's node_modules comes first).
    deploy(rlam, "sdk-packaged", "nodejs22.x",
           {"index.js": NODE_APP,
            "node_modules/@aws-sdk/client-s3/package.json": '{"name":"@aws-sdk/client-s3","version":"0.0.1","main":"i.js"}',
            "node_modules/@aws-sdk/client-s3/i.js": "exports.S3Client = class {};",
            "node_modules/@aws-sdk/lib-dynamodb/package.json": '{"name":"@aws-sdk/lib-dynamodb","version":"0.0.1","main":"i.js"}',
            "node_modules/@aws-sdk/lib-dynamodb/i.js": "exports.DynamoDBDocumentClient = class {};"},
           "index.handler")
    assert invoke(rlam, "sdk-packaged", {"sdk": True})["sdk"] == "0.0.1"


ESM_APP = """
import { LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { greet } from 'layer-lib';

const client = new LambdaClient({});

export const handler = async () => {
  const listed = await client.send(new ListFunctionsCommand({}));
  return { functions: listed.Functions.map((f) => f.FunctionName), doc: typeof DynamoDBDocumentClient,
           greeting: greet() };
};
"""


def test_an_es_module_imports_the_sdk_and_layer_packages(rlam):
    """The Lambda console's default Node.js function is an `index.mjs` importing the SDK:
    ES modules ignore NODE_PATH, yet on Lambda the runtime's SDK and layer packages resolve."""
    layer = rlam.publish_layer_version(
        LayerName="esm-lib", Content={"ZipFile": make_zip({
            "nodejs/node_modules/layer-lib/package.json": '{"name":"layer-lib","type":"module","exports":"./i.js"}',
            "nodejs/node_modules/layer-lib/i.js": "export const greet = () => 'from the layer';"})})
    deploy(rlam, "esm-sdk", "nodejs22.x", {"index.mjs": ESM_APP}, "index.handler")
    rlam.update_function_configuration(FunctionName="esm-sdk", Layers=[layer["LayerVersionArn"]])
    rlam.get_waiter("function_updated_v2").wait(FunctionName="esm-sdk")
    body = invoke(rlam, "esm-sdk")
    assert "esm-sdk" in body["functions"] and body["doc"] == "function"
    assert body["greeting"] == "from the layer"
    # Still Node's own error for a package nobody has.
    deploy(rlam, "esm-missing", "nodejs22.x", {"index.mjs": "import 'not-anywhere';\nexport const handler = () => 1;\n"},
           "index.handler")
    response = rlam.invoke(FunctionName="esm-missing")
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "Runtime.ImportModuleError" and "not-anywhere" in error["errorMessage"], error


def test_sdks_without_isolation(make_server, listing):
    """On the host's paths (--no-isolation) the runtimes find the same SDKs where they are."""
    lam = make_server(["--no-isolation"], env={"GUST_RUNTIMES_DIR": RUNTIMES_DIR}).client()
    deploy(lam, "host-py", "python3.12", {"app.py": PY_APP}, "app.handler")
    body = invoke(lam, "host-py", {"boto3": True})
    assert body["boto3"] == BOTO3["python3.12"]
    assert body["boto3_file"].startswith(RUNTIMES_DIR), body
    deploy(lam, "host-node", "nodejs22.x", {"index.js": NODE_APP}, "index.handler")
    body = invoke(lam, "host-node", {"sdk": True})
    assert body["version"] == "v" + listing["nodejs22.x"]["version"] and body["sdk"] == NODE_SDK, body
    assert body["execPath"].startswith(RUNTIMES_DIR), body

"""Layers through boto3: publishing, reading, listing, permissions, and functions that use
them — real third-party libraries (a Python package and an npm package installed from their
registries by scripts/test), a native executable and library in /opt/bin and /opt/lib, the
order in which layers stack, the 250 MB limit, and deleted layers that keep working."""

import base64
import hashlib
import io
import json
import shutil
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import module_server, REPO, create, error_of, make_zip
from functions import PROVIDED_BOOTSTRAP, package

ACCOUNT_LAYER = "arn:aws:lambda:us-east-1:000000000000:layer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from module_server(tmp_path_factory, "layers")


@pytest.fixture(scope="module")
def lam(server):
    return server.client()


def tree_zip(root, prefix):
    """Zips the directory `root` under `prefix/` in the archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"{prefix}/{path.relative_to(root)}")
    return buffer.getvalue()


def invoke(lam, name, event=None):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}))
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_publish_get_list_and_delete(lam, server):
    content = make_zip({"python/tool.py": "X = 1\n"})
    first = lam.publish_layer_version(
        LayerName="shapes", Description="first", Content={"ZipFile": content},
        CompatibleRuntimes=["python3.12", "python3.11"], CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert first["Version"] == 1
    assert first["LayerArn"] == f"{ACCOUNT_LAYER}:shapes"
    assert first["LayerVersionArn"] == f"{ACCOUNT_LAYER}:shapes:1"
    assert first["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(content).digest()).decode()
    assert first["Content"]["CodeSize"] == len(content)
    assert (first["Description"], first["LicenseInfo"]) == ("first", "MIT")
    assert first["CompatibleRuntimes"] == ["python3.12", "python3.11"]
    with urllib.request.urlopen(first["Content"]["Location"], timeout=10) as download:
        assert download.read() == content
    second = lam.publish_layer_version(LayerName="shapes", Content={"ZipFile": content},
                                       CompatibleRuntimes=["nodejs20.x"])
    assert second["Version"] == 2 and "LicenseInfo" not in second

    got = lam.get_layer_version(LayerName="shapes", VersionNumber=1)
    assert got["LayerVersionArn"] == first["LayerVersionArn"] and got["CreatedDate"] == first["CreatedDate"]
    by_arn = lam.get_layer_version_by_arn(Arn=f"{ACCOUNT_LAYER}:shapes:2")
    assert by_arn["Version"] == 2
    versions = lam.list_layer_versions(LayerName="shapes")["LayerVersions"]
    assert [v["Version"] for v in versions] == [2, 1]
    python_only = lam.list_layer_versions(LayerName="shapes", CompatibleRuntime="python3.12")
    assert [v["Version"] for v in python_only["LayerVersions"]] == [1]
    layers = {l["LayerName"]: l for l in lam.list_layers()["Layers"]}
    assert layers["shapes"]["LatestMatchingVersion"]["Version"] == 2
    assert layers["shapes"]["LayerArn"] == f"{ACCOUNT_LAYER}:shapes"
    matching = {l["LayerName"]: l for l in lam.list_layers(CompatibleRuntime="python3.11")["Layers"]}
    assert matching["shapes"]["LatestMatchingVersion"]["Version"] == 1
    assert lam.list_layer_versions(LayerName="never-published")["LayerVersions"] == []

    status, kind, message = error_of(lambda: lam.get_layer_version(LayerName="shapes", VersionNumber=0))
    assert (status, kind, message) == (400, "InvalidParameterValueException", "Layer Version Cannot be less than 1")
    status, kind, message = error_of(lambda: lam.get_layer_version(LayerName="shapes", VersionNumber=9))
    assert (status, kind, message) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    status, kind, _ = error_of(lambda: lam.publish_layer_version(
        LayerName="shapes", Content={"ZipFile": content}, CompatibleRuntimes=["cobol"]))
    assert (status, kind) == (400, "ValidationException")
    status, kind, _ = error_of(lambda: lam.publish_layer_version(LayerName="bad name", Content={"ZipFile": content}))
    assert (status, kind) == (400, "ValidationException")
    status, kind, _ = error_of(lambda: lam.publish_layer_version(LayerName="corrupt", Content={"ZipFile": b"no zip"}))
    assert (status, kind) == (400, "InvalidParameterValueException")

    lam.delete_layer_version(LayerName="shapes", VersionNumber=2)
    lam.delete_layer_version(LayerName="shapes", VersionNumber=2)  # idempotent
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="shapes")["LayerVersions"]] == [1]
    # Numbers are never reused.
    assert lam.publish_layer_version(LayerName="shapes", Content={"ZipFile": content})["Version"] == 3


def test_permissions(lam):
    lam.publish_layer_version(LayerName="shared", Content={"ZipFile": make_zip({"a": "b"})})
    status, _, message = error_of(lambda: lam.get_layer_version_policy(LayerName="shared", VersionNumber=1))
    assert status == 404, message
    added = lam.add_layer_version_permission(LayerName="shared", VersionNumber=1, StatementId="everyone",
                                             Action="lambda:GetLayerVersion", Principal="*",
                                             OrganizationId="o-abcdefghij")
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "everyone", "Effect": "Allow", "Principal": "*", "Action": "lambda:GetLayerVersion",
        "Resource": f"{ACCOUNT_LAYER}:shared:1",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}}
    second = lam.add_layer_version_permission(LayerName="shared", VersionNumber=1, StatementId="one",
                                              Action="lambda:GetLayerVersion", Principal="123456789012",
                                              RevisionId=added["RevisionId"])
    assert json.loads(second["Statement"])["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    policy = lam.get_layer_version_policy(LayerName="shared", VersionNumber=1)
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17" and [s["Sid"] for s in document["Statement"]] == ["everyone", "one"]
    assert policy["RevisionId"] == second["RevisionId"]

    status, kind, message = error_of(lambda: lam.add_layer_version_permission(
        LayerName="shared", VersionNumber=1, StatementId="one", Action="lambda:GetLayerVersion", Principal="*"))
    assert (status, kind) == (409, "ResourceConflictException"), message
    status, kind, _ = error_of(lambda: lam.add_layer_version_permission(
        LayerName="shared", VersionNumber=1, StatementId="x", Action="lambda:InvokeFunction", Principal="*"))
    assert (status, kind) == (400, "ValidationException")
    status, kind, _ = error_of(lambda: lam.add_layer_version_permission(
        LayerName="shared", VersionNumber=1, StatementId="y", Action="lambda:GetLayerVersion",
        Principal="*", RevisionId="stale"))
    assert (status, kind) == (412, "PreconditionFailedException")

    lam.remove_layer_version_permission(LayerName="shared", VersionNumber=1, StatementId="one")
    status, kind, _ = error_of(lambda: lam.remove_layer_version_permission(
        LayerName="shared", VersionNumber=1, StatementId="one"))
    assert (status, kind) == (404, "ResourceNotFoundException")
    assert [s["Sid"] for s in json.loads(lam.get_layer_version_policy(
        LayerName="shared", VersionNumber=1)["Policy"])["Statement"]] == ["everyone"]


def site_packages():
    return Path(next(p for p in sys.path if p.endswith("site-packages")))


def test_python_and_node_functions_use_real_libraries_from_layers(lam):
    # jmespath was installed from PyPI into the test venv (tests/requirements.txt).
    jmespath = site_packages() / "jmespath"
    python_layer = lam.publish_layer_version(
        LayerName="py-deps", Content={"ZipFile": tree_zip(jmespath, "python/jmespath")},
        CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    # A second layer uses the versioned site-packages folder: the function's runtime's
    # (python3.12 runs on a Python 3.12, not on the interpreter running the tests).
    versioned = lam.publish_layer_version(LayerName="py-versioned", Content={"ZipFile": make_zip({
        "python/lib/python3.12/site-packages/deep_mod.py": "WHERE = 'deep'\n",
    })})["LayerVersionArn"]
    created = create(lam, "uses-jmespath", make_zip({"app.py": (
        "import jmespath, deep_mod\n"
        "def handler(event, context):\n"
        "    return {'found': jmespath.search('a.b', event), 'from': jmespath.__file__,\n"
        "            'deep': deep_mod.WHERE}\n"
    )}), Layers=[python_layer, versioned])
    assert [l["Arn"] for l in created["Layers"]] == [python_layer, versioned]
    assert created["Layers"][0]["CodeSize"] > 0
    body = invoke(lam, "uses-jmespath", {"a": {"b": [1, 2]}})
    assert body["found"] == [1, 2] and body["deep"] == "deep"
    assert body["from"].startswith("/opt/python/jmespath/"), body

    is_number = REPO / "target" / "e2e-node" / "node_modules" / "is-number"
    if not is_number.is_dir() or shutil.which("node") is None:
        pytest.skip("scripts/test installs is-number with npm; node or npm is missing")
    node_layer = lam.publish_layer_version(LayerName="node-deps", Content={"ZipFile": (
        merge_zips(tree_zip(is_number, "nodejs/node_modules/is-number"),
                   make_zip({"nodejs/node20/node_modules/versioned-mod/index.js":
                             "module.exports = 'from node20';\n"})))})["LayerVersionArn"]
    create(lam, "uses-is-number", make_zip({"index.js": (
        "const isNumber = require('is-number');\n"
        "const versioned = require('versioned-mod');\n"
        "exports.handler = async () => ({five: isNumber(5), text: isNumber('x'),\n"
        "  path: require.resolve('is-number'), versioned});\n"
    )}), Runtime="nodejs20.x", Handler="index.handler", Layers=[node_layer])
    body = invoke(lam, "uses-is-number")
    assert (body["five"], body["text"], body["versioned"]) == (True, False, "from node20")
    assert body["path"] == "/opt/nodejs/node_modules/is-number/index.js"


def merge_zips(*zips):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for data in zips:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    out.writestr(info, zf.read(info))
    return buffer.getvalue()


GREET_MAIN = "#include <stdio.h>\nconst char *greeting(void);\nint main(int c, char **v) { printf(\"%s %s\\n\", greeting(), c > 1 ? v[1] : \"\"); return 0; }\n"
GREET_LIB = "const char *greeting(void) { return \"hello from a layer\"; }\n"

NATIVE_BOOTSTRAP = PROVIDED_BOOTSTRAP.replace(
    "import http.client, json, os",
    "import http.client, json, os, subprocess",
).replace(
    '        body = json.dumps({"custom": True, "event": event, "deadline": deadline,',
    '        out = subprocess.run(["greet", event.get("name", "")], capture_output=True, text=True)\n'
    '        body = json.dumps({"custom": out.stdout.strip() or out.stderr, "event": event, "deadline": deadline,',
)


def test_a_native_executable_and_library_in_opt(lam, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc builds the native layer")
    (tmp_path / "greet.c").write_text(GREET_MAIN)
    (tmp_path / "libgreet.c").write_text(GREET_LIB)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", "libgreet.so", "libgreet.c"], cwd=tmp_path, check=True)
    # No rpath: the binary finds its library only through LD_LIBRARY_PATH's /opt/lib.
    subprocess.run(["gcc", "-o", "greet", "greet.c", "-L.", "-lgreet"], cwd=tmp_path, check=True)
    native = lam.publish_layer_version(LayerName="native", Content={"ZipFile": package({
        "bin/greet": (tmp_path / "greet").read_bytes(),
        "lib/libgreet.so": (tmp_path / "libgreet.so").read_bytes(),
    }, executables={"bin/greet"})}, CompatibleRuntimes=["provided.al2023"])["LayerVersionArn"]
    create(lam, "native-greeter", package({"bootstrap": NATIVE_BOOTSTRAP}, executables={"bootstrap"}),
           Runtime="provided.al2023", Handler="x", Layers=[native])
    assert invoke(lam, "native-greeter", {"name": "gust"})["custom"] == "hello from a layer gust"


def test_later_layers_win_and_the_250_mb_limit(lam):
    first = lam.publish_layer_version(LayerName="stack-a", Content={"ZipFile": make_zip({
        "python/shared.py": "WHO = 'a'\n", "python/only_a.py": "HERE = True\n"})})["LayerVersionArn"]
    second = lam.publish_layer_version(LayerName="stack-b", Content={"ZipFile": make_zip({
        "python/shared.py": "WHO = 'b'\n"})})["LayerVersionArn"]
    code = make_zip({"app.py": "import shared, only_a\ndef handler(e, c):\n    return [shared.WHO, only_a.HERE]\n"})
    create(lam, "stacked", code, Layers=[first, second])
    assert invoke(lam, "stacked") == ["b", True]
    lam.update_function_configuration(FunctionName="stacked", Layers=[second, first])
    lam.get_waiter("function_updated_v2").wait(FunctionName="stacked")
    assert invoke(lam, "stacked") == ["a", True]

    # 130 MB of zeros compresses to almost nothing; two of them exceed 250 MB unpacked.
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("blob.bin", b"\0" * (130 * 1024 * 1024))
    big1 = lam.publish_layer_version(LayerName="big1", Content={"ZipFile": big.getvalue()})["LayerVersionArn"]
    big2 = lam.publish_layer_version(LayerName="big2", Content={"ZipFile": big.getvalue()})["LayerVersionArn"]
    status, kind, message = error_of(lambda: create(lam, "too-big", code, Layers=[big1, big2]))
    assert (status, kind) == (400, "InvalidParameterValueException")
    assert message.startswith("Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is "), message
    status, _, message = error_of(lambda: lam.update_function_configuration(FunctionName="stacked", Layers=[big1, big2]))
    assert status == 400 and "combined with layers" in message
    create(lam, "just-fits", code, Layers=[big1, first])

    status, _, message = error_of(lambda: create(lam, "twice", code, Layers=[first, f"{ACCOUNT_LAYER}:stack-a:7"]))
    assert (status, message) == (400, (
        "Two different versions of the same layer are not allowed to be referenced in the same function. "
        f"{first} and {ACCOUNT_LAYER}:stack-a:7 are versions of the same layer.")), message
    missing = f"{ACCOUNT_LAYER}:stack-a:7"
    status, kind, message = error_of(lambda: create(lam, "missing", code, Layers=[missing]))
    assert (status, kind, message) == (400, "InvalidParameterValueException", f"Layer version {missing} does not exist.")
    # Layers that cannot be stacked are refused when they are attached, not at a cold start.
    as_file = lam.publish_layer_version(LayerName="as-file", Content={"ZipFile": make_zip({
        "python/clash": "a file\n"})})["LayerVersionArn"]
    as_dir = lam.publish_layer_version(LayerName="as-dir", Content={"ZipFile": make_zip({
        "python/clash/inner.py": "X = 1\n"})})["LayerVersionArn"]
    status, kind, message = error_of(lambda: create(lam, "clashing", code, Layers=[as_file, as_dir]))
    assert (status, kind) == (400, "InvalidParameterValueException")
    assert message.startswith("The layers cannot be combined in /opt"), message
    six = [f"{ACCOUNT_LAYER}:l{i}:1" for i in range(6)]
    status, _, message = error_of(lambda: create(lam, "six", code, Layers=six))
    assert (status, message) == (400, "Cannot reference more than 5 layers.")


def test_a_deleted_layer_version_keeps_working_for_its_functions(make_server):
    server = make_server()
    lam = server.client()
    arn = lam.publish_layer_version(LayerName="going", Content={"ZipFile": make_zip({
        "python/gone.py": "VALUE = 'still here'\n"})})["LayerVersionArn"]
    code = make_zip({"app.py": "import gone\ndef handler(e, c):\n    return gone.VALUE\n"})
    create(lam, "keeps-layer", code, Layers=[arn])
    lam.delete_layer_version(LayerName="going", VersionNumber=1)
    status, _, message = error_of(lambda: create(lam, "late", code, Layers=[arn]))
    assert (status, message) == (400, f"Layer version {arn} does not exist.")
    assert invoke(lam, "keeps-layer") == "still here"
    # After a crash and restart (a cold start again), it still runs.
    server.stop(signal.SIGKILL)
    server.start()
    lam = server.client()
    assert invoke(lam, "keeps-layer") == "still here"
    assert lam.get_function(FunctionName="keeps-layer")["Configuration"]["Layers"][0]["Arn"] == arn
    # Once no function uses it, its package goes.
    layer_blobs = len(list((server.data_dir / "code" / "sha256").iterdir()))
    lam.update_function_configuration(FunctionName="keeps-layer", Layers=[])
    lam.get_waiter("function_updated_v2").wait(FunctionName="keeps-layer")
    server.stop(signal.SIGTERM)
    server.start()
    assert len(list((server.data_dir / "code" / "sha256").iterdir())) == layer_blobs - 1

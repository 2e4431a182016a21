"""Reproductions of inputs that got through when the server was tried as an attacker: a zip
entry name no file system can hold, client contexts beyond ASCII, members of the wrong JSON
type, oversized values echoed back whole, and concurrent large uploads held in memory. One
server serves the whole module; each test uses its own function names."""

import base64
import concurrent.futures
import json
import os
import shutil
import urllib.request

import pytest
from conftest import module_server, create, error_of, make_zip

UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from module_server(tmp_path_factory, "input")


@pytest.fixture(scope="module")
def lam(server):
    return server.client()


def signed(server, method, path, body):
    """A raw SigV4-signed request (boto3 checks types before sending; these must not be)."""
    headers = server.signed_headers(method, path, body, {"Content-Type": "application/json"})
    raw = urllib.request.Request(server.endpoint + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(raw, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def create_body(name, **members):
    body = {"FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler",
            "Role": "arn:aws:iam::000000000000:role/r",
            "Code": {"ZipFile": base64.b64encode(make_zip({"app.py": "def handler(e, c):\n    return e\n"})).decode()}}
    body.update(members)
    return json.dumps(body).encode()


def test_an_entry_name_over_255_bytes_is_refused_at_upload(server, lam):
    """Such a package was accepted (201, Active) and every invoke then answered 500."""
    long_name = "a" * 300 + ".py"
    package = make_zip({"app.py": "def handler(e, c):\n    return 1\n", long_name: "x = 1\n"})
    status, code, message = error_of(lambda: create(lam, "long-name", package))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith(UNZIP) and "too long (303 bytes)" in message, message
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="long-name")
    # A path whose parts are each fine but which is too long as a whole.
    deep = "/".join(["d" * 200] * 11) + "/x.py"
    status, code, _ = error_of(lambda: create(lam, "deep-name", make_zip({"app.py": "", deep: ""})))
    assert (status, code) == (400, "InvalidParameterValueException")
    # The same through UpdateFunctionCode: the function keeps its code.
    create(lam, "long-update")
    status, code, _ = error_of(lambda: lam.update_function_code(FunctionName="long-update", ZipFile=package))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert json.loads(lam.invoke(FunctionName="long-update", Payload=b'{"k": 1}')["Payload"].read()) == {"k": 1}


def test_a_package_that_cannot_be_unpacked_at_invoke_is_an_invalid_zip_file_not_a_500(server, lam):
    """A stored package damaged on disk (or stored before a check that now refuses it)."""
    created = create(lam, "damaged", make_zip({"app.py": "def handler(e, c):\n    return 1\n" + "# pad\n" * 500}))
    digest = base64.b64decode(created["CodeSha256"]).hex()
    blob = server.data_dir / "code" / "sha256" / f"{digest}.zip"
    data = bytearray(blob.read_bytes())
    data[40:80] = b"\x00" * 40  # inside the compressed data of app.py
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    # The code was unpacked when the function was created: as if the damage came first.
    shutil.rmtree(server.data_dir / "code" / "unpacked" / digest)
    status, code, message = error_of(lambda: lam.invoke(FunctionName="damaged", Payload=b"{}"))
    assert (status, code) == (502, "InvalidZipFileException"), (status, code, message)
    assert message == "Lambda could not unzip the deployment package."
    assert str(server.data_dir) not in message
    assert "could not be unpacked" in server.log()


CONTEXT_PY = make_zip({"app.py": (
    "def handler(event, context):\n"
    "    c = context.client_context\n"
    "    return {'custom': c.custom, 'env': c.env, 'client': {'app_title': c.client.app_title}}\n"
)})
CONTEXT_NODE = make_zip({"index.mjs": (
    "export const handler = async (event, context) => context.clientContext;\n"
)})


@pytest.mark.parametrize("runtime,handler,package", [
    ("python3.12", "app.handler", CONTEXT_PY),
    ("nodejs20.x", "index.handler", CONTEXT_NODE),
])
def test_a_client_context_beyond_ascii_arrives_exactly(lam, runtime, handler, package):
    """It arrived as mojibake (the header was read as Latin-1), and one holding DEL was
    silently dropped."""
    name = "context-" + runtime.replace(".", "-")
    create(lam, name, package, Runtime=runtime, Handler=handler)
    context = {"custom": {"a": "é日😀", "del": "x\x7fy", "quote": "a\"b\\c",
                          "nl": "line\nbreak"},
               "env": {"locale": "fr_FR"}, "client": {"app_title": "Ünïcode"}}
    encoded = base64.b64encode(json.dumps(context, ensure_ascii=False).encode()).decode()
    response = lam.invoke(FunctionName=name, ClientContext=encoded, Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body["custom"] == context["custom"]
    assert body["env"] == context["env"]
    assert body["client"]["app_title"] == context["client"]["app_title"]


@pytest.mark.parametrize("member,value", [
    ("Environment", []),
    ("EphemeralStorage", []),
    ("ImageConfig", 1),
    ("TracingConfig", "Active"),
    ("MemorySize", "256"),
    ("Publish", "yes"),
    ("Layers", "arn"),
    ("Code", []),
])
def test_members_of_the_wrong_type_are_refused(server, member, value):
    status, headers, body = signed(server, "POST", "/2015-03-31/functions",
                                   create_body("wrong-type", **{member: value}))
    assert status == 400, body
    assert headers["x-amzn-ErrorType"].startswith("InvalidRequestContentException"), headers
    assert json.loads(body)["message"].startswith("Could not parse request body into json"), body


def test_a_body_that_is_not_an_object_is_refused(server, lam):
    create(lam, "not-an-object")
    for body in [b"[]", b"1", b'"x"', b"null", b'{"Environment": {}} trailing']:
        status, headers, answer = signed(
            server, "PUT", "/2015-03-31/functions/not-an-object/configuration", body)
        assert status == 400, (body, answer)
        assert headers["x-amzn-ErrorType"].startswith("InvalidRequestContentException")
    # The empty forms of these members are still fine (Terraform and SAM send them).
    status, _, answer = signed(server, "PUT", "/2015-03-31/functions/not-an-object/configuration",
                               b'{"Environment": {}, "ImageConfig": {}, "VpcConfig": null}')
    assert status == 200, answer


def test_an_oversized_value_is_not_echoed_back_whole(server, lam):
    """A 10 MB Description came back whole in the error body."""
    big = "d" * (5 * 1024 * 1024)
    status, _, body = signed(server, "POST", "/2015-03-31/functions",
                             create_body("big-description", Description=big))
    assert status == 400
    assert len(body) < 16 * 1024, len(body)
    message = json.loads(body)["message"]
    assert message.startswith("1 validation error detected: Value 'ddd"), message[:100]
    assert message.endswith("at 'description' failed to satisfy constraint: "
                            "Member must have length less than or equal to 256"), message[-200:]
    # A parser error quoting a huge string is bounded too.
    status, _, body = signed(server, "POST", "/2015-03-31/functions",
                             create_body("big-type-error", MemorySize=big))
    assert status == 400 and len(body) < 16 * 1024, (status, len(body))


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_concurrent_large_uploads_do_not_each_hold_their_body_in_memory(server, lam):
    """Six concurrent 63 MB uploads took the server to 1 GB (about 145 MB each): bodies now
    wait on disk and two are decoded at a time."""
    payload = os.urandom(36 * 1024 * 1024)  # incompressible: the zip is as large
    package = make_zip({"app.py": "def handler(e, c):\n    return 1\n", "blob.bin": payload})
    body_mb = len(package) * 4 / 3 / 1024 / 1024
    before = peak_rss_mb(server.process.pid)
    uploads = 6
    clients = [server.client(read_timeout=300) for _ in range(uploads)]

    def upload(i):
        return create(clients[i], f"big-{i}", package)["CodeSize"]

    with concurrent.futures.ThreadPoolExecutor(uploads) as pool:
        sizes = list(pool.map(upload, range(uploads)))
    assert sizes == [len(package)] * uploads
    grown = peak_rss_mb(server.process.pid) - before
    print(f"peak RSS grew {grown:.0f} MB for {uploads} concurrent uploads of {body_mb:.0f} MB")
    # Two decodes at a time hold a body and its zip each (about 3.5 x body_mb); the six
    # bodies alone, held at once, would be 6 x body_mb (before: about 14 x).
    assert grown < uploads * body_mb, f"peak grew {grown:.0f} MB for {uploads} uploads of {body_mb:.0f} MB"
    for i in range(uploads):
        lam.delete_function(FunctionName=f"big-{i}")
    assert not os.listdir(server.data_dir / "uploads")

"""Versions and aliases through boto3 and the aws CLI: publishing immutable snapshots,
invoking each version's own code, aliases with weighted routing, and what survives a
kill -9. One server serves the module; each test uses its own function names."""

import base64
import concurrent.futures
import json
import math
import signal
import threading

import pytest
from conftest import module_server, create, error_of, make_zip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from module_server(tmp_path_factory, "versions")


@pytest.fixture(scope="module")
def lam(server):
    return server.client(max_pool_connections=16)


def code(label):
    return make_zip({"app.py": (
        "import os\n"
        "def handler(event, context):\n"
        f"    return {{'code': {label!r}, 'version': os.environ['AWS_LAMBDA_FUNCTION_VERSION'],\n"
        "            'context_version': context.function_version,\n"
        "            'stream': context.log_stream_name, 'arn': context.invoked_function_arn}\n"
    )})


def invoke(lam, name, qualifier=None, **kwargs):
    params = dict(FunctionName=name, Payload=b"{}", **kwargs)
    if qualifier:
        params["Qualifier"] = qualifier
    response = lam.invoke(**params)
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return response, body


def arn(name, qualifier=None):
    base = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def test_each_version_runs_its_own_code(lam):
    create(lam, "pub", code("one"))
    published = lam.publish_version(FunctionName="pub", Description="first")
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert published["Version"] == "1"
    assert published["FunctionArn"] == arn("pub", "1")
    assert published["Description"] == "first"
    assert published["State"] == "Active" and "LastUpdateStatus" not in published
    lam.update_function_code(FunctionName="pub", ZipFile=code("two"))
    lam.get_waiter("function_updated_v2").wait(FunctionName="pub")

    response, body = invoke(lam, "pub", "1", LogType="Tail")
    assert body["code"] == "one"
    assert body["version"] == body["context_version"] == "1"
    assert "/[1]" in body["stream"]
    assert body["arn"] == arn("pub", "1")
    assert response["ExecutedVersion"] == "1"
    log = base64.b64decode(response["LogResult"]).decode()
    assert "Version: 1" in log, log

    response, body = invoke(lam, "pub")
    assert (body["code"], body["version"], response["ExecutedVersion"]) == ("two", "$LATEST", "$LATEST")
    assert "/[$LATEST]" in body["stream"]
    # A qualified name works as well as ?Qualifier=.
    _, body = invoke(lam, "pub:1")
    assert body["code"] == "one"
    _, body = invoke(lam, arn("pub", "$LATEST"))
    assert body["code"] == "two"

    # The version's configuration is a snapshot too.
    lam.update_function_configuration(FunctionName="pub", Environment={"Variables": {"XY": "1"}},
                                      Description="changed")
    lam.get_waiter("function_updated_v2").wait(FunctionName="pub")
    v1 = lam.get_function_configuration(FunctionName="pub", Qualifier="1")
    assert v1["Version"] == "1" and v1["FunctionArn"] == arn("pub", "1")
    assert v1["Description"] == "first" and "Environment" not in v1
    got = lam.get_function(FunctionName="pub:1")
    assert got["Configuration"]["Version"] == "1" and "Tags" not in got
    assert got["Configuration"]["CodeSha256"] == published["CodeSha256"]


def test_publishing_rules_numbers_and_listing(lam):
    created = create(lam, "numbers", code("a"))
    first = lam.publish_version(FunctionName="numbers")
    # Nothing changed: the same version again, not a new number.
    again = lam.publish_version(FunctionName="numbers")
    assert (first["Version"], again["Version"]) == ("1", "1")
    assert again["RevisionId"] == first["RevisionId"]

    status, kind, message = error_of(lambda: lam.publish_version(FunctionName="numbers", CodeSha256="AAAA"))
    assert (status, kind) == (400, "InvalidParameterValueException")
    assert message == (f"CodeSHA256 (AAAA) is different from current CodeSHA256 in $LATEST "
                       f"({created['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST.")
    status, kind, _ = error_of(lambda: lam.publish_version(FunctionName="numbers", RevisionId="stale"))
    assert (status, kind) == (412, "PreconditionFailedException")

    lam.update_function_configuration(FunctionName="numbers", MemorySize=256)
    lam.get_waiter("function_updated_v2").wait(FunctionName="numbers")
    latest = lam.get_function_configuration(FunctionName="numbers")
    second = lam.publish_version(FunctionName="numbers", CodeSha256=latest["CodeSha256"],
                                 RevisionId=latest["RevisionId"])
    assert second["Version"] == "2" and second["MemorySize"] == 256

    # A deleted number is never handed out again.
    lam.delete_function(FunctionName="numbers", Qualifier="2")
    status, kind, message = error_of(lambda: lam.get_function(FunctionName="numbers", Qualifier="2"))
    assert (status, kind, message) == (404, "ResourceNotFoundException", f"Function not found: {arn('numbers', '2')}")
    lam.update_function_configuration(FunctionName="numbers", MemorySize=512)
    lam.get_waiter("function_updated_v2").wait(FunctionName="numbers")
    assert lam.publish_version(FunctionName="numbers")["Version"] == "3"

    listed = lam.list_versions_by_function(FunctionName="numbers")["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", "1", "3"]
    assert [v["FunctionArn"] for v in listed] == [arn("numbers", q) for q in ["$LATEST", "1", "3"]]
    pages = list(lam.get_paginator("list_versions_by_function").paginate(
        FunctionName="numbers", PaginationConfig={"PageSize": 1}))
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "3"]
    assert len(pages) == 3

    everything = [f["FunctionArn"] for p in lam.get_paginator("list_functions").paginate(FunctionVersion="ALL")
                  for f in p["Functions"]]
    assert {arn("numbers", q) for q in ["$LATEST", "1", "3"]} <= set(everything)
    plain = [f["FunctionArn"] for f in lam.list_functions()["Functions"]]
    assert arn("numbers") in plain and arn("numbers", "1") not in plain

    status, kind, message = error_of(lambda: lam.delete_function(FunctionName="numbers", Qualifier="$LATEST"))
    assert (status, kind) == (400, "InvalidParameterValueException"), message
    status, kind, _ = error_of(lambda: lam.delete_function(FunctionName="numbers", Qualifier="7"))
    assert (status, kind) == (404, "ResourceNotFoundException")
    status, _, message = error_of(lambda: lam.get_function(FunctionName="numbers:1", Qualifier="3"))
    assert status == 400 and "does not match" in message


def test_publish_on_create_and_on_code_update(lam):
    created = create(lam, "eager", code("c1"), Publish=True)
    assert created["Version"] == "1" and created["FunctionArn"] == arn("eager")
    updated = lam.update_function_code(FunctionName="eager", ZipFile=code("c2"), Publish=True)
    # The answer is the published version's configuration.
    assert updated["Version"] == "2" and updated["FunctionArn"] == arn("eager", "2")
    lam.get_waiter("function_updated_v2").wait(FunctionName="eager")
    assert invoke(lam, "eager", "1")[1]["code"] == "c1"
    assert invoke(lam, "eager", "2")[1]["code"] == "c2"
    # Each version keeps its package: both are stored while both are in use.
    lam.update_function_code(FunctionName="eager", ZipFile=code("c3"))
    lam.get_waiter("function_updated_v2").wait(FunctionName="eager")
    assert invoke(lam, "eager", "1")[1]["code"] == "c1"


def test_aliases(lam):
    create(lam, "aliased", code("x1"))
    lam.publish_version(FunctionName="aliased")
    lam.update_function_code(FunctionName="aliased", ZipFile=code("x2"))
    lam.get_waiter("function_updated_v2").wait(FunctionName="aliased")
    lam.publish_version(FunctionName="aliased")

    created = lam.create_alias(FunctionName="aliased", Name="prod", FunctionVersion="1", Description="live")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == arn("aliased", "prod")
    assert (created["Name"], created["FunctionVersion"], created["Description"]) == ("prod", "1", "live")
    assert "RoutingConfig" not in created
    got = lam.get_alias(FunctionName="aliased", Name="prod")
    assert got["RevisionId"] == created["RevisionId"]

    response, body = invoke(lam, "aliased", "prod")
    assert (body["code"], response["ExecutedVersion"]) == ("x1", "1")
    assert body["arn"] == arn("aliased", "prod")
    config = lam.get_function_configuration(FunctionName="aliased", Qualifier="prod")
    assert config["Version"] == "1" and config["FunctionArn"] == arn("aliased", "prod")

    status, kind, message = error_of(lambda: lam.create_alias(FunctionName="aliased", Name="prod", FunctionVersion="2"))
    assert (status, kind, message) == (409, "ResourceConflictException", f"Alias already exists: {arn('aliased', 'prod')}")
    status, kind, message = error_of(lambda: lam.create_alias(FunctionName="aliased", Name="next", FunctionVersion="9"))
    assert (status, kind, message) == (404, "ResourceNotFoundException", f"Function not found: {arn('aliased', '9')}")
    status, kind, _ = error_of(lambda: lam.create_alias(FunctionName="aliased", Name="123", FunctionVersion="1"))
    assert (status, kind) == (400, "ValidationException")
    status, kind, message = error_of(lambda: lam.create_alias(
        FunctionName="aliased", Name="bad", FunctionVersion="$LATEST",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}))
    assert (status, message) == (400, "$LATEST is not supported for an alias pointing to more than 1 version")
    status, _, message = error_of(lambda: lam.create_alias(
        FunctionName="aliased", Name="bad", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}}))
    assert message == "Invalid function version 1. Function version 1 is already included in routing configuration."
    status, kind, message = error_of(lambda: lam.get_alias(FunctionName="aliased", Name="nope"))
    assert (status, kind, message) == (404, "ResourceNotFoundException", f"Cannot find alias arn: {arn('aliased', 'nope')}")
    status, kind, message = error_of(lambda: lam.invoke(FunctionName="aliased", Qualifier="nope"))
    assert (status, kind, message) == (404, "ResourceNotFoundException", f"Function not found: {arn('aliased', 'nope')}")
    status, _, message = error_of(lambda: lam.get_function(FunctionName="aliased", Qualifier="$latest"))
    assert (status, message) == (404, f"Function not found: {arn('aliased', '$latest')}")
    status, kind, message = error_of(lambda: lam.create_alias(
        FunctionName="aliased", Name="heavy", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}}))
    assert (status, kind) == (400, "ValidationException")
    assert "'{2=1.5}' at 'routingConfig.additionalVersionWeights'" in message, message

    status, kind, _ = error_of(lambda: lam.update_alias(FunctionName="aliased", Name="prod",
                                                       FunctionVersion="2", RevisionId="stale"))
    assert (status, kind) == (412, "PreconditionFailedException")
    updated = lam.update_alias(FunctionName="aliased", Name="prod", FunctionVersion="2",
                               RevisionId=created["RevisionId"])
    assert updated["FunctionVersion"] == "2" and updated["Description"] == "live"
    assert updated["RevisionId"] != created["RevisionId"]
    assert invoke(lam, "aliased", "prod")[1]["code"] == "x2"

    lam.create_alias(FunctionName="aliased", Name="beta", FunctionVersion="$LATEST")
    assert [a["Name"] for a in lam.list_aliases(FunctionName="aliased")["Aliases"]] == ["beta", "prod"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName="aliased", FunctionVersion="2")["Aliases"]] == ["prod"]

    status, kind, message = error_of(lambda: lam.delete_function(FunctionName="aliased", Qualifier="2"))
    assert (status, kind) == (409, "ResourceConflictException"), message
    assert "prod" in message
    lam.delete_alias(FunctionName="aliased", Name="prod")
    lam.delete_function(FunctionName="aliased", Qualifier="2")
    assert [a["Name"] for a in lam.list_aliases(FunctionName="aliased")["Aliases"]] == ["beta"]


def test_weighted_routing_and_a_canary_shift_without_failures(lam):
    create(lam, "canary", code("c1"), Publish=True)
    lam.update_function_code(FunctionName="canary", ZipFile=code("c2"), Publish=True)
    lam.create_alias(FunctionName="canary", Name="prod", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    alias = lam.get_alias(FunctionName="canary", Name="prod")
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}

    total = 2000

    def executed(_):
        response, body = invoke(lam, "canary", "prod")
        assert body["code"] == {"1": "c1", "2": "c2"}[response["ExecutedVersion"]]
        return response["ExecutedVersion"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(executed, range(total)))
    on_two = versions.count("2")
    sigma = math.sqrt(total * 0.1 * 0.9)
    assert abs(on_two - total * 0.1) <= 4 * sigma, on_two
    assert versions.count("1") + on_two == total

    # Shift prod from 1 to 2 while traffic flows: no request fails.
    stop = threading.Event()
    failures, seen = [], []

    def traffic():
        while not stop.is_set():
            try:
                response, _ = invoke(lam, "canary", "prod")
                seen.append(response["ExecutedVersion"])
            except Exception as error:  # noqa: BLE001 - every failure is the finding
                failures.append(repr(error))

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        for weight in [0.5, 0.9]:
            lam.update_alias(FunctionName="canary", Name="prod",
                             RoutingConfig={"AdditionalVersionWeights": {"2": weight}})
        lam.update_alias(FunctionName="canary", Name="prod", FunctionVersion="2",
                         RoutingConfig={"AdditionalVersionWeights": {}})
        count = len(seen)
        while len(seen) < count + 50:
            threading.Event().wait(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert failures == []
    assert set(seen[-20:]) == {"2"}
    assert "RoutingConfig" not in lam.get_alias(FunctionName="canary", Name="prod")


def test_the_aws_cli_publishes_and_aliases(server, lam):
    create(lam, "cli-versions", code("k1"))
    published = json.loads(server.aws("lambda", "publish-version", "--function-name", "cli-versions").stdout)
    assert published["Version"] == "1"
    alias = json.loads(server.aws("lambda", "create-alias", "--function-name", "cli-versions",
                                  "--name", "live", "--function-version", "1").stdout)
    assert alias["AliasArn"] == arn("cli-versions", "live")
    listed = json.loads(server.aws("lambda", "list-versions-by-function", "--function-name", "cli-versions").stdout)
    assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "1"]
    server.aws("lambda", "delete-alias", "--function-name", "cli-versions", "--name", "live")


def test_versions_and_aliases_survive_kill_9(make_server):
    server = make_server()
    lam = server.client()
    create(lam, "durable", code("d1"), Publish=True)
    lam.update_function_code(FunctionName="durable", ZipFile=code("d2"), Publish=True)
    lam.create_alias(FunctionName="durable", Name="prod", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    server.stop(signal.SIGKILL)
    server.start()
    lam = server.client()
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="durable")["Versions"]] == ["$LATEST", "1", "2"]
    alias = lam.get_alias(FunctionName="durable", Name="prod")
    assert (alias["FunctionVersion"], alias["RoutingConfig"]) == ("1", {"AdditionalVersionWeights": {"2": 0.25}})
    assert invoke(lam, "durable", "1")[1]["code"] == "d1"
    assert invoke(lam, "durable", "2")[1]["code"] == "d2"
    # Deleting the function takes its versions and aliases, and their code.
    lam.delete_function(FunctionName="durable")
    assert list((server.data_dir / "code" / "sha256").iterdir()) == []
    create(lam, "durable", code("d3"))
    assert lam.list_versions_by_function(FunctionName="durable")["Versions"][-1]["Version"] == "$LATEST"
    assert lam.list_aliases(FunctionName="durable")["Aliases"] == []
    assert lam.publish_version(FunctionName="durable")["Version"] == "1"

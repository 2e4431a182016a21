"""The whole function lifecycle through boto3, as a Lambda user would drive it."""

import base64
import hashlib
import io
import json
import threading
import time
import urllib.request
import zipfile

import pytest
from conftest import HANDLER_ZIP, ROLE, create, error_of, make_zip


def test_create_get_update_list_delete(lam):
    created = create(lam, "lifecycle", Description="first", Environment={"Variables": {"GREETING": "hi"}},
                     Tags={"team": "core"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["State"] == "Pending"
    assert created["StateReasonCode"] == "Creating"
    assert "LastUpdateStatus" not in created
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:lifecycle"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(HANDLER_ZIP).digest()).decode()
    assert created["CodeSize"] == len(HANDLER_ZIP)
    assert created["Version"] == "$LATEST"
    assert created["Environment"] == {"Variables": {"GREETING": "hi"}}
    assert created["EphemeralStorage"] == {"Size": 512}
    assert created["TracingConfig"] == {"Mode": "PassThrough"}
    assert created["Architectures"] == ["x86_64"]
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/lifecycle"}
    assert created["ResponseMetadata"]["RequestId"]

    lam.get_waiter("function_active_v2").wait(FunctionName="lifecycle", WaiterConfig={"Delay": 1})
    got = lam.get_function(FunctionName="lifecycle")
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert got["Tags"] == {"team": "core"}
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"]) as response:
        assert response.read() == HANDLER_ZIP
    # LastModified is Lambda's string form, with millis and +0000.
    assert got["Configuration"]["LastModified"].endswith("+0000")
    assert len(got["Configuration"]["LastModified"]) == len("2025-11-25T02:26:54.123+0000")

    # Partial update: only what is sent changes; Environment replaces whole.
    before = got["Configuration"]
    updated = lam.update_function_configuration(FunctionName="lifecycle", MemorySize=512, Timeout=30,
                                                Environment={"Variables": {"OTHER": "x"}})
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != before["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(FunctionName="lifecycle", WaiterConfig={"Delay": 1})
    config = lam.get_function_configuration(FunctionName="lifecycle")
    assert (config["MemorySize"], config["Timeout"]) == (512, 30)
    assert config["Environment"] == {"Variables": {"OTHER": "x"}}
    assert config["Description"] == "first"
    assert config["Handler"] == "app.handler"
    assert config["LastUpdateStatus"] == "Successful"

    # Layers replace whole too: an empty list is accepted and stays empty.
    lam.update_function_configuration(FunctionName="lifecycle", Layers=[])
    assert "Layers" not in lam.get_function_configuration(FunctionName="lifecycle")

    new_zip = make_zip({"app.py": "def handler(event, context):\n    return {'v': 2}\n"})
    code = lam.update_function_code(FunctionName="lifecycle", ZipFile=new_zip)
    assert code["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    assert code["RevisionId"] != config["RevisionId"]
    lam.get_waiter("function_updated_v2").wait(FunctionName="lifecycle", WaiterConfig={"Delay": 1})
    with urllib.request.urlopen(lam.get_function(FunctionName="lifecycle")["Code"]["Location"]) as response:
        assert response.read() == new_zip

    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert names == ["lifecycle"]

    deleted = lam.delete_function(FunctionName="lifecycle")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="lifecycle")


def test_names_partial_arns_full_arns_and_qualifiers(lam):
    create(lam, "naming")
    arn = "arn:aws:lambda:us-east-1:000000000000:function:naming"
    for name in ["naming", arn, "000000000000:function:naming"]:
        assert lam.get_function_configuration(FunctionName=name)["FunctionArn"] == arn
    latest = lam.get_function_configuration(FunctionName="naming", Qualifier="$LATEST")
    assert latest["FunctionArn"] == arn + ":$LATEST"
    assert lam.get_function(FunctionName=arn + ":$LATEST")["Configuration"]["FunctionArn"] == arn + ":$LATEST"
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.get_function(FunctionName="naming", Qualifier="1")
    assert info.value.response["Error"]["Message"] == f"Function not found: {arn}:1"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName="naming", Qualifier="$latest")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
        lam.get_function(FunctionName="arn:aws:lambda:eu-west-1:000000000000:function:naming")
    assert "not reachable in this region" in info.value.response["Error"]["Message"]
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.get_function(FunctionName="naming:$LATEST", Qualifier="prod")
    assert "derived qualifier" in info.value.response["Error"]["Message"]


def test_list_paging(lam):
    for i in range(7):
        create(lam, f"page-{i}")
    seen, marker, pages = [], None, 0
    while True:
        kwargs = {"MaxItems": 3}
        if marker:
            kwargs["Marker"] = marker
        page = lam.list_functions(**kwargs)
        pages += 1
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == [f"page-{i}" for i in range(7)]
    assert pages == 3
    # The paginator follows NextMarker the same way.
    paginated = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2})
                 for f in p["Functions"]]
    assert paginated == seen
    everything = lam.list_functions(FunctionVersion="ALL")["Functions"]
    assert all(f["FunctionArn"].endswith(":$LATEST") for f in everything)


def test_tags(lam):
    arn = create(lam, "tagged")["FunctionArn"]
    assert "Tags" not in lam.get_function(FunctionName="tagged")
    before = lam.get_function_configuration(FunctionName="tagged")["RevisionId"]
    lam.tag_resource(Resource=arn, Tags={"a": "1", "b": "2"})
    # A tag change is a change: the revision moves.
    after = lam.get_function_configuration(FunctionName="tagged")["RevisionId"]
    assert after != before
    lam.tag_resource(Resource=arn, Tags={"b": "3"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "3"}
    lam.untag_resource(Resource=arn, TagKeys=["a", "missing"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "3"}
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.list_tags(Resource=arn + ":$LATEST")
    assert "Tags on function aliases and versions are not supported" in info.value.response["Error"]["Message"]
    with pytest.raises(lam.exceptions.ClientError) as info:
        lam.list_tags(Resource="tagged")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_tags(Resource=arn.replace("tagged", "nothere"))
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.tag_resource(Resource=arn, Tags={f"k{i}": "v" for i in range(50)})
    assert info.value.response["Error"]["Message"] == "Number of tags exceeds resource tag limit."


def test_account_settings(lam):
    create(lam, "counted")
    settings = lam.get_account_settings()
    assert settings["AccountUsage"] == {"TotalCodeSize": len(HANDLER_ZIP), "FunctionCount": 1}
    limit = settings["AccountLimit"]
    assert limit["CodeSizeZipped"] == 52428800
    assert limit["CodeSizeUnzipped"] == 262144000
    assert limit["ConcurrentExecutions"] == 1000


def test_revision_id_preconditions_and_dry_run(lam):
    created = create(lam, "revisions")
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.update_function_configuration(FunctionName="revisions", RevisionId="not-it", Timeout=5)
    # The transition to Active moved the revision: the current one is read back.
    current = lam.get_function_configuration(FunctionName="revisions")["RevisionId"]
    assert current != created["RevisionId"]
    ok = lam.update_function_configuration(FunctionName="revisions", RevisionId=current, Timeout=5)
    assert ok["Timeout"] == 5
    other = make_zip({"app.py": "x = 1\n"})
    dry = lam.update_function_code(FunctionName="revisions", ZipFile=other, DryRun=True)
    assert dry["CodeSha256"] == base64.b64encode(hashlib.sha256(other).digest()).decode()
    assert lam.get_function_configuration(FunctionName="revisions")["CodeSha256"] == created["CodeSha256"]


def test_unimplemented_operations_say_so(lam):
    with pytest.raises(lam.exceptions.ClientError) as info:
        lam.list_code_signing_configs()
    error = info.value.response["Error"]
    assert error["Code"] == "NotImplementedException"
    assert "ListCodeSigningConfigs is not implemented" in error["Message"]
    create(lam, "noinvoke")
    with pytest.raises(lam.exceptions.ClientError) as info:
        lam.get_function_code_signing_config(FunctionName="noinvoke")
    assert info.value.response["Error"]["Code"] == "NotImplementedException"


def test_a_change_while_an_update_is_in_progress_is_a_conflict(lam):
    """The update stays InProgress while its code is unpacked; a change meanwhile is 409."""
    create(lam, "busy")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return 'new'\n")
        zf.writestr("blob.bin", b"\0" * (200 * 1024 * 1024))  # a moment to unpack
    done = {}
    updating = threading.Thread(target=lambda: done.update(
        code=lam.update_function_code(FunctionName="busy", ZipFile=buffer.getvalue())))
    updating.start()
    seen = None
    deadline = time.monotonic() + 60
    while seen is None and time.monotonic() < deadline and updating.is_alive():
        if lam.get_function_configuration(FunctionName="busy").get("LastUpdateStatus") == "InProgress":
            seen = error_of(lambda: lam.update_function_configuration(FunctionName="busy", Timeout=9))
        time.sleep(0.005)
    updating.join(60)
    assert seen == (409, "ResourceConflictException",
                    "The operation cannot be performed at this time. An update is in progress for resource: "
                    "arn:aws:lambda:us-east-1:000000000000:function:busy")
    assert done["code"]["LastUpdateStatus"] == "InProgress"
    config = lam.get_function_configuration(FunctionName="busy")
    assert (config["LastUpdateStatus"], config["Timeout"]) == ("Successful", 3)
    assert json.loads(lam.invoke(FunctionName="busy", Payload=b"{}")["Payload"].read()) == "new"

"""Authentication is on by default: unsigned, wrongly signed and stale requests get 403."""

import datetime
import json
import os
import stat
import urllib.error
import urllib.request
from unittest import mock

import botocore.auth
import pytest
from conftest import create


def raw_get(server, path):
    try:
        with urllib.request.urlopen(server.endpoint + path) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_credentials_are_created_private_and_printed(server):
    path = server.data_dir / "credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key, secret = server.credentials
    log = server.log()
    assert f"export AWS_ACCESS_KEY_ID={key}" in log
    assert f"export AWS_SECRET_ACCESS_KEY={secret}" in log


def test_unsigned_request_is_refused(server):
    status, headers, body = raw_get(server, "/2015-03-31/functions")
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert headers.get("x-amzn-RequestId")
    assert json.loads(body)["message"] == "Missing Authentication Token"


def test_wrong_secret_and_unknown_key(server):
    key, _ = server.credentials
    wrong_secret = server.client(access_key=key, secret_key="not-the-secret")
    with pytest.raises(wrong_secret.exceptions.ClientError) as info:
        wrong_secret.list_functions()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"

    unknown = server.client(access_key="AKIAUNKNOWNKEY000000", secret_key="whatever")
    with pytest.raises(unknown.exceptions.ClientError) as info:
        unknown.list_functions()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_stale_signature_is_refused(server):
    lam = server.client()
    stale = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: stale):
        with pytest.raises(lam.exceptions.ClientError) as info:
            lam.list_functions()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["Error"]["Message"].startswith("Signature expired")
    # Within the 15-minute window it is fine.
    recent = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: recent):
        assert lam.list_functions()["Functions"] == []


def test_signatures_cover_encoded_arns_and_queries(lam):
    # Percent-encoded ARN paths and `%24LATEST` queries are where naive canonicalisation breaks.
    arn = create(lam, "signed")["FunctionArn"]
    assert lam.get_function(FunctionName=arn, Qualifier="$LATEST")["Configuration"]["FunctionName"] == "signed"
    lam.tag_resource(Resource=arn, Tags={"a b": "c d"})
    lam.untag_resource(Resource=arn, TagKeys=["a b", "x/y"])


def test_explicit_credentials_from_environment(make_server):
    env = {"GUST_ACCESS_KEY_ID": "AKIAEXPLICIT00000000", "GUST_SECRET_ACCESS_KEY": "explicit-secret"}
    server = make_server(env=env)
    assert not (server.data_dir / "credentials.json").exists()
    assert server.client().list_functions()["Functions"] == []


def test_no_auth_flag_warns_loudly(make_server):
    server = make_server(extra_args=["--no-auth"])
    assert "authentication is OFF" in server.log()
    status, _, body = raw_get(server, "/2015-03-31/functions")
    assert status == 200
    assert json.loads(body) == {"Functions": []}

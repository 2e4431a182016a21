"""STS on Gust's endpoint: who the caller is, and session credentials the server issues
and then accepts for every service (and after a restart), refused when tampered with."""

import json

import boto3
import pytest
from botocore.config import Config

from conftest import error_of, module_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "sts")


def session_client(server, credentials, service, **changes):
    values = {"aws_access_key_id": credentials["AccessKeyId"],
              "aws_secret_access_key": credentials["SecretAccessKey"],
              "aws_session_token": credentials["SessionToken"], **changes}
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}), **values)


ROLE = "arn:aws:iam::000000000000:role/worker"


def test_caller_identity_and_assumed_roles(shared):
    sts = shared.client(service="sts")
    identity = sts.get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == ("000000000000", "arn:aws:iam::000000000000:root")
    assumed = sts.assume_role(RoleArn=ROLE, RoleSessionName="job-7", DurationSeconds=900)
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert assumed["AssumedRoleUser"]["Arn"] == "arn:aws:sts::000000000000:assumed-role/worker/job-7"
    assert assumed["AssumedRoleUser"]["AssumedRoleId"].endswith(":job-7")
    as_role = session_client(shared, credentials, "sts").get_caller_identity()
    assert as_role["Arn"] == "arn:aws:sts::000000000000:assumed-role/worker/job-7"
    # The session works for every service, in the role's account.
    sqs = session_client(shared, credentials, "sqs")
    url = sqs.create_queue(QueueName="from-a-session")["QueueUrl"]
    assert "/000000000000/from-a-session" in url
    assert "Functions" in session_client(shared, credentials, "lambda").list_functions()
    # A token changed in any way, or with another secret, is refused.
    forged = dict(credentials, SessionToken=credentials["SessionToken"][:-2] + "xx")
    assert error_of(lambda: session_client(shared, forged, "sqs").list_queues())[:2] == (403, "InvalidClientTokenId")
    wrong_secret = dict(credentials, SecretAccessKey="x" * 40)
    assert error_of(lambda: session_client(shared, wrong_secret, "sts").get_caller_identity())[0] == 403
    no_token = dict(credentials, SessionToken=None)
    assert error_of(lambda: session_client(shared, no_token, "sqs").list_queues())[0] == 403
    # Role chaining is capped at an hour; another account's role is not ours to assume.
    chained = session_client(shared, credentials, "sts")
    assert error_of(lambda: chained.assume_role(RoleArn=ROLE, RoleSessionName="again", DurationSeconds=7200))[1] == "ValidationError"
    assert "Credentials" in chained.assume_role(RoleArn=ROLE, RoleSessionName="again")
    assert error_of(lambda: chained.get_session_token())[1] == "AccessDenied"
    status, code, _ = error_of(lambda: sts.assume_role(RoleArn="arn:aws:iam::111111111111:role/other", RoleSessionName="s2"))
    assert (status, code) == (403, "AccessDenied")
    assert error_of(lambda: sts.assume_role(RoleArn="arn:aws:iam::000000000000:user/not-a-role", RoleSessionName="s1"))[1] == "ValidationError"
    assert error_of(lambda: sts.assume_role(RoleArn=ROLE, RoleSessionName="bad name!"))[1] == "ValidationError"
    token = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert session_client(shared, token, "sts").get_caller_identity()["Arn"] == "arn:aws:iam::000000000000:root"
    # The aws CLI agrees.
    cli = json.loads(shared.aws("sts", "get-caller-identity").stdout)
    assert cli["Account"] == "000000000000"


def test_sessions_outlive_a_restart(make_server):
    server = make_server()
    credentials = server.client(service="sts").assume_role(RoleArn=ROLE, RoleSessionName="kept")["Credentials"]
    server.stop()
    server.start()
    assert session_client(server, credentials, "sts").get_caller_identity()["Arn"].endswith("/worker/kept")

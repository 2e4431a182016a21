"""Resource-based policies and accounts: AddPermission/GetPolicy/RemovePermission shaped as
Lambda's, and enforced — a second account (from --accounts) cannot invoke the first one's
function or read its layer until a policy allows it, and cannot again once it is removed."""

import json
import signal

import boto3
import pytest
from botocore.config import Config
from conftest import module_server, create, error_of, make_zip

OWNER = "000000000000"
OTHER = "111111111111"
OTHER_KEY, OTHER_SECRET = "GKIAOTHERACCOUNT0001", "other-account-secret-0123456789"


def arn(name, qualifier=None, account=OWNER):
    base = f"arn:aws:lambda:us-east-1:{account}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("accounts")
    accounts = root / "accounts.json"
    accounts.write_text(json.dumps([{"account_id": OTHER, "access_key_id": OTHER_KEY,
                                     "secret_access_key": OTHER_SECRET}]))
    yield from module_server(tmp_path_factory, "accounts-server", ["--accounts", str(accounts)])


@pytest.fixture(scope="module")
def lam(server):
    return server.client()


@pytest.fixture(scope="module")
def other(server):
    return boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=OTHER_KEY, aws_secret_access_key=OTHER_SECRET,
                        config=Config(retries={"max_attempts": 1}))


def test_policy_documents_as_lambda_renders_them(lam):
    create(lam, "with-policy")
    revision = lam.get_function_configuration(FunctionName="with-policy")["RevisionId"]
    status, kind, message = error_of(lambda: lam.get_policy(FunctionName="with-policy"))
    assert (status, kind, message) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    added = lam.add_permission(FunctionName="with-policy", StatementId="s3-invoke", Action="lambda:InvokeFunction",
                               Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::my-bucket",
                               SourceAccount=OWNER, RevisionId=revision)
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "s3-invoke", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": arn("with-policy"),
        "Condition": {"StringEquals": {"AWS:SourceAccount": OWNER},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}}}
    lam.add_permission(FunctionName="with-policy", StatementId="account", Action="lambda:*", Principal=OTHER)
    policy = lam.get_policy(FunctionName="with-policy")
    document = json.loads(policy["Policy"])
    assert (document["Version"], document["Id"]) == ("2012-10-17", "default")
    assert [s["Sid"] for s in document["Statement"]] == ["s3-invoke", "account"]
    assert document["Statement"][1]["Principal"] == {"AWS": f"arn:aws:iam::{OTHER}:root"}
    # A policy change is a change of the function: its revision moved, and GetPolicy says so.
    moved = lam.get_function_configuration(FunctionName="with-policy")["RevisionId"]
    assert moved != revision and policy["RevisionId"] == moved

    status, kind, message = error_of(lambda: lam.add_permission(
        FunctionName="with-policy", StatementId="account", Action="lambda:InvokeFunction", Principal="*"))
    assert (status, kind, message) == (409, "ResourceConflictException",
                                       "The statement id (account) provided already exists. Please provide a new statement id, or remove the existing statement.")
    status, _, message = error_of(lambda: lam.add_permission(
        FunctionName="with-policy", Qualifier="$LATEST", StatementId="x", Action="lambda:InvokeFunction", Principal="*"))
    assert (status, message) == (400, "We currently do not support adding policies for $LATEST.")
    status, kind, _ = error_of(lambda: lam.add_permission(
        FunctionName="with-policy", StatementId="x", Action="invoke please", Principal="*"))
    assert (status, kind) == (400, "ValidationException")
    status, kind, _ = error_of(lambda: lam.add_permission(
        FunctionName="with-policy", StatementId="x", Action="lambda:InvokeFunction", Principal="*", RevisionId="stale"))
    assert (status, kind) == (412, "PreconditionFailedException")
    status, kind, _ = error_of(lambda: lam.add_permission(
        FunctionName="missing", StatementId="x", Action="lambda:InvokeFunction", Principal="*"))
    assert (status, kind) == (404, "ResourceNotFoundException")

    # A version's and an alias's policies are their own.
    lam.publish_version(FunctionName="with-policy")
    lam.create_alias(FunctionName="with-policy", Name="live", FunctionVersion="1")
    on_alias = lam.add_permission(FunctionName="with-policy", Qualifier="live", StatementId="a",
                                  Action="lambda:InvokeFunction", Principal="*")
    assert json.loads(on_alias["Statement"])["Resource"] == arn("with-policy", "live")
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName="with-policy:live")["Policy"])["Statement"]] == ["a"]

    status, kind, message = error_of(lambda: lam.remove_permission(FunctionName="with-policy", Qualifier="1",
                                                                  StatementId="nothing"))
    assert (status, kind, message) == (404, "ResourceNotFoundException", "No policy is associated with the given resource.")
    # The whole policy stays under Lambda's 20 KB.
    create(lam, "big-policy")
    for i in range(40):
        lam.add_permission(FunctionName="big-policy", StatementId=f"s{i:03d}", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::bucket-{'x' * 200}-{i}")
    status, kind, message = error_of(lambda: [lam.add_permission(
        FunctionName="big-policy", StatementId=f"more{i}", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn=f"arn:aws:s3:::bucket-{'y' * 200}-{i}") for i in range(100)])
    assert (status, kind) == (400, "PolicyLengthExceededException")
    assert message.startswith("The final policy size (") and message.endswith(") is bigger than the limit (20480).")
    lam.remove_permission(FunctionName="with-policy", StatementId="s3-invoke")
    status, kind, _ = error_of(lambda: lam.remove_permission(FunctionName="with-policy", StatementId="s3-invoke"))
    assert (status, kind) == (404, "ResourceNotFoundException")
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName="with-policy")["Policy"])["Statement"]] == ["account"]


def invoke(client, name):
    response = client.invoke(FunctionName=name, Payload=b'{"k": 1}')
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_another_account_invokes_only_what_a_policy_allows(lam, other):
    create(lam, "guarded", make_zip({"app.py": "def handler(e, c):\n    return {'owner': c.invoked_function_arn}\n"}))
    target = arn("guarded")
    status, kind, message = error_of(lambda: other.invoke(FunctionName=target, Payload=b"{}"))
    assert (status, kind) == (403, "AccessDeniedException")
    assert message == (f"User: arn:aws:iam::{OTHER}:root is not authorized to perform: lambda:InvokeFunction "
                       f"on resource: {target} because no resource-based policy allows the lambda:InvokeFunction action")

    lam.add_permission(FunctionName="guarded", StatementId="let-other", Action="lambda:InvokeFunction",
                       Principal=OTHER)
    assert invoke(other, target) == {"owner": target}
    # Invoking is all the policy allows: reading or changing the function is refused.
    status, kind, _ = error_of(lambda: other.get_function(FunctionName=target))
    assert (status, kind) == (403, "AccessDeniedException")
    status, kind, _ = error_of(lambda: other.delete_function(FunctionName=target))
    assert (status, kind) == (403, "AccessDeniedException")
    # What a statement grants, it grants: reading the function, once allowed, works.
    lam.add_permission(FunctionName="guarded", StatementId="let-other-read", Action="lambda:GetFunction",
                       Principal=OTHER)
    assert other.get_function(FunctionName=target)["Configuration"]["FunctionArn"] == target
    status, kind, _ = error_of(lambda: other.delete_function(FunctionName=target))
    assert (status, kind) == (403, "AccessDeniedException")
    lam.remove_permission(FunctionName="guarded", StatementId="let-other-read")
    # An alias has its own policy: the function's does not open it.
    lam.publish_version(FunctionName="guarded")
    lam.create_alias(FunctionName="guarded", Name="prod", FunctionVersion="1")
    status, kind, _ = error_of(lambda: other.invoke(FunctionName=arn("guarded", "prod"), Payload=b"{}"))
    assert (status, kind) == (403, "AccessDeniedException")
    lam.add_permission(FunctionName="guarded", Qualifier="prod", StatementId="prod-other",
                       Action="lambda:InvokeFunction", Principal=f"arn:aws:iam::{OTHER}:root")
    assert invoke(other, arn("guarded", "prod")) == {"owner": arn("guarded", "prod")}

    lam.remove_permission(FunctionName="guarded", StatementId="let-other")
    status, kind, _ = error_of(lambda: other.invoke(FunctionName=target, Payload=b"{}"))
    assert (status, kind) == (403, "AccessDeniedException")
    # An account that does not exist here is refused the same way.
    status, kind, _ = error_of(lambda: other.invoke(FunctionName=arn("guarded", account="222222222222"), Payload=b"{}"))
    assert (status, kind) == (403, "AccessDeniedException")


def test_accounts_have_their_own_functions_and_layers(server, lam, other):
    create(lam, "same-name", make_zip({"app.py": "def handler(e, c):\n    return 'owner'\n"}))
    mine = create(other, "same-name", make_zip({"app.py": "def handler(e, c):\n    return 'other'\n"}))
    assert mine["FunctionArn"] == arn("same-name", account=OTHER)
    assert invoke(lam, "same-name") == "owner" and invoke(other, "same-name") == "other"
    assert [f["FunctionName"] for f in other.list_functions()["Functions"]] == ["same-name"]

    layer = lam.publish_layer_version(LayerName="owner-lib", Content={"ZipFile": make_zip({"python/x.py": ""})})
    status, kind, _ = error_of(lambda: other.get_layer_version_by_arn(Arn=layer["LayerVersionArn"]))
    assert (status, kind) == (403, "AccessDeniedException")
    lam.add_layer_version_permission(LayerName="owner-lib", VersionNumber=1, StatementId="other",
                                     Action="lambda:GetLayerVersion", Principal=OTHER)
    assert other.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])["Version"] == 1
    assert other.get_layer_version(LayerName=layer["LayerArn"], VersionNumber=1)["Version"] == 1
    status, kind, _ = error_of(lambda: other.delete_layer_version(LayerName=layer["LayerArn"], VersionNumber=1))
    assert (status, kind) == (403, "AccessDeniedException")
    lam.remove_layer_version_permission(LayerName="owner-lib", VersionNumber=1, StatementId="other")
    status, kind, _ = error_of(lambda: other.get_layer_version_by_arn(Arn=layer["LayerVersionArn"]))
    assert (status, kind) == (403, "AccessDeniedException")

    # A function can use another account's layer version only where its permissions allow.
    shared = lam.publish_layer_version(LayerName="shared-lib", Content={"ZipFile": make_zip({
        "python/shared_mod.py": "WHO = 'owner layer'\n"})})["LayerVersionArn"]
    code = make_zip({"app.py": "import shared_mod\ndef handler(e, c):\n    return shared_mod.WHO\n"})
    status, kind, message = error_of(lambda: create(other, "uses-shared", code, Layers=[shared]))
    assert (status, kind, message) == (400, "InvalidParameterValueException", f"Layer version {shared} does not exist.")
    lam.add_layer_version_permission(LayerName="shared-lib", VersionNumber=1, StatementId="everyone",
                                     Action="lambda:GetLayerVersion", Principal="*")
    create(other, "uses-shared", code, Layers=[shared])
    assert invoke(other, "uses-shared") == "owner layer"
    # The function keeps its copy when the owner deletes the version.
    lam.delete_layer_version(LayerName="shared-lib", VersionNumber=1)
    other.update_function_configuration(FunctionName="uses-shared", MemorySize=256)
    other.get_waiter("function_updated_v2").wait(FunctionName="uses-shared")
    assert invoke(other, "uses-shared") == "owner layer"

    # A key that belongs to no account is refused, as before.
    stranger = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                            aws_access_key_id="GKIANOBODY", aws_secret_access_key="x",
                            config=Config(retries={"max_attempts": 1}))
    status, kind, _ = error_of(lambda: stranger.list_functions())
    assert (status, kind) == (403, "UnrecognizedClientException")


def test_policies_and_accounts_survive_kill_9(server, lam, other):
    create(lam, "durable-policy")
    lam.add_permission(FunctionName="durable-policy", StatementId="keep", Action="lambda:InvokeFunction",
                       Principal=OTHER)
    create(other, "other-durable")
    server.stop(signal.SIGKILL)
    server.start()
    lam = server.client()
    other = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                         aws_access_key_id=OTHER_KEY, aws_secret_access_key=OTHER_SECRET,
                         config=Config(retries={"max_attempts": 1}))
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName="durable-policy")["Policy"])["Statement"]] == ["keep"]
    assert invoke(other, arn("durable-policy")) == {"k": 1}
    assert "other-durable" in [f["FunctionName"] for f in other.list_functions()["Functions"]]

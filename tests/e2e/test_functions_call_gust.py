"""Code inside Gust calls Gust: functions get session credentials for their role and
`AWS_ENDPOINT_URL`, so plain SDK calls (boto3, the AWS SDK for JavaScript v3) reach this
server's SQS, SNS and STS with no configuration — on the host's network and with none at all."""

import io
import json
import time
import os
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, create, module_server

SITE = Path(sys.executable).parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
NODE_MODULES = REPO / "target" / "e2e-node" / "node_modules"
BOTOCORE_SERVICES = {"sqs", "sns", "sts", "lambda"}


def tree_zip(entries):
    """entries: [(path on disk, name in the zip)]; directories are added whole."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for source, target in entries:
            if source.is_file():
                zf.write(source, target)
                continue
            for root, dirs, files in os.walk(source):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                rel = Path(root).relative_to(source)
                # Only the service models the functions use: botocore's data is most of its size.
                if rel.parts[:1] == ("data",) and len(rel.parts) > 1 and source.name == "botocore" \
                        and rel.parts[1] not in BOTOCORE_SERVICES:
                    dirs[:] = []
                    continue
                for f in files:
                    zf.write(Path(root) / f, str(Path(target) / rel / f))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "calls")


@pytest.fixture(scope="module")
def boto3_layer(shared):
    """boto3 as a layer (Gust's Python runtimes do not ship it yet)."""
    lam = shared.client()
    names = ["boto3", "botocore", "jmespath", "dateutil", "s3transfer", "urllib3", "six.py"]
    content = tree_zip([(SITE / n, f"python/{n}") for n in names])
    return lam.publish_layer_version(LayerName="boto3", Content={"ZipFile": content})["LayerVersionArn"]


@pytest.fixture(scope="module")
def sdk_layer(shared):
    if not (NODE_MODULES / "@aws-sdk" / "client-sqs").exists():
        pytest.skip("the AWS SDK for JavaScript is installed by scripts/test")
    content = tree_zip([(NODE_MODULES, "nodejs/node_modules")])
    return shared.client().publish_layer_version(LayerName="aws-sdk-js", Content={"ZipFile": content})["LayerVersionArn"]


PYTHON = """
import json, os
import boto3

def handler(event, context):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=event["queue"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"from": "python"}))
    if "topic" in event:
        boto3.client("sns").publish(TopicArn=event["topic"], Message=json.dumps({"published": "python"}))
    identity = boto3.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "account": identity["Account"],
            "endpoint": os.environ["AWS_ENDPOINT_URL"], "key": os.environ["AWS_ACCESS_KEY_ID"]}
"""

NODE = """
const { SQSClient, GetQueueUrlCommand, SendMessageCommand } = require("@aws-sdk/client-sqs");
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const { SNSClient, PublishCommand } = require("@aws-sdk/client-sns");

exports.handler = async (event) => {
  const sqs = new SQSClient({});
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: event.queue }));
  await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ from: "node" }) }));
  await new SNSClient({}).send(new PublishCommand({ TopicArn: event.topic, Message: JSON.stringify({ published: "node" }) }));
  const identity = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  return { arn: identity.Arn, account: identity.Account };
};
"""

ROLE_ARN = "arn:aws:iam::000000000000:role/sender"


def invoke(lam, name, event):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def received(sqs, url, count):
    bodies = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in got]
        if len(bodies) >= count:
            break
    return bodies


def topic_into_queue(shared, name):
    """A topic whose messages land (raw) in a new queue; returns (topic ARN, queue URL)."""
    sns, sqs = shared.client(service="sns"), shared.client(service="sqs")
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=name + "-sink")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return topic, url


def test_a_python_function_calls_sqs_sns_and_sts_with_plain_boto3(shared, boto3_layer):
    lam, sqs = shared.client(), shared.client(service="sqs")
    url = sqs.create_queue(QueueName="from-python")["QueueUrl"]
    topic, sink = topic_into_queue(shared, "python-topic")
    create(lam, "py-caller", __import__("conftest").make_zip({"app.py": PYTHON}),
           Layers=[boto3_layer], Timeout=30, Role=ROLE_ARN)
    result = invoke(lam, "py-caller", {"queue": "from-python", "topic": topic})
    assert received(sqs, sink, 1) == [{"published": "python"}]
    assert result["arn"] == "arn:aws:sts::000000000000:assumed-role/sender/py-caller"
    assert result["account"] == "000000000000"
    assert result["endpoint"] == shared.endpoint
    assert result["key"].startswith("ASIA")
    sent = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageSystemAttributeNames=["AWSTraceHeader"])["Messages"]
    assert json.loads(sent[0]["Body"]) == {"from": "python"}
    # boto3 in a function sends its trace; SQS keeps it for whoever consumes the message.
    assert sent[0]["Attributes"]["AWSTraceHeader"].startswith("Root=1-")
    # The credentials are the environment's, not the function's configuration.
    variables = lam.get_function_configuration(FunctionName="py-caller").get("Environment", {}).get("Variables", {})
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(variables)


def test_a_node_function_calls_sqs_sns_and_sts_with_the_sdk_v3(shared, sdk_layer):
    lam, sqs = shared.client(), shared.client(service="sqs")
    url = sqs.create_queue(QueueName="from-node")["QueueUrl"]
    topic, sink = topic_into_queue(shared, "node-topic")
    create(lam, "node-caller", __import__("conftest").make_zip({"index.js": NODE}), Runtime="nodejs20.x",
           Handler="index.handler", Layers=[sdk_layer], Timeout=30, Role=ROLE_ARN)
    result = invoke(lam, "node-caller", {"queue": "from-node", "topic": topic})
    assert received(sqs, sink, 1) == [{"published": "node"}]
    assert result == {"arn": "arn:aws:sts::000000000000:assumed-role/sender/node-caller", "account": "000000000000"}
    assert received(sqs, url, 1) == [{"from": "node"}]


def test_without_a_network_functions_still_reach_the_api(make_server, tmp_path):
    """`--sandbox-network none`: the environment has loopback only, and the API is served
    inside its namespace at the host's address."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    server = make_server(["--sandbox-network", "none"])
    lam, sqs = server.client(), server.client(service="sqs")
    url = sqs.create_queue(QueueName="from-isolated")["QueueUrl"]
    names = ["boto3", "botocore", "jmespath", "dateutil", "s3transfer", "urllib3", "six.py"]
    layer = lam.publish_layer_version(LayerName="boto3", Content={
        "ZipFile": tree_zip([(SITE / n, f"python/{n}") for n in names])})["LayerVersionArn"]
    code = PYTHON + """
import urllib.request
def elsewhere(event, context):
    try:
        urllib.request.urlopen("http://1.1.1.1/", timeout=2)
        return "reached the internet"
    except OSError as error:
        return "no network: " + type(error).__name__
"""
    zipped = __import__("conftest").make_zip({"app.py": code})
    create(lam, "isolated", zipped, Layers=[layer], Timeout=30, Role=ROLE_ARN)
    result = invoke(lam, "isolated", {"queue": "from-isolated"})
    assert result["arn"].endswith(":assumed-role/sender/isolated")
    assert received(sqs, url, 1) == [{"from": "python"}]
    create(lam, "isolated-out", zipped, Handler="app.elsewhere", Timeout=10)
    assert invoke(lam, "isolated-out", {}).startswith("no network")


LOOP = """
import os
import boto3

def handler(event, context):
    boto3.client("sns").publish(TopicArn=os.environ["TOPIC"], Message="around again")
    return "published"
"""


def runs_of(server, name, settle=3.0, timeout=60):
    """START lines of a function's log, once their number stops growing."""
    deadline, last, stable_since = time.time() + timeout, -1, time.time()
    while time.time() < deadline:
        count = server.gust("logs", name).stdout.count("START RequestId:")
        if count != last:
            last, stable_since = count, time.time()
        elif time.time() - stable_since >= settle:
            return count
        time.sleep(0.3)
    return last


def test_a_recursive_loop_through_a_topic_is_stopped(shared, boto3_layer):
    """function → topic → the same function: Lambda stops it after 16 invocations, unless
    the function's RecursiveLoop is Allow."""
    lam, sns = shared.client(), shared.client(service="sns")
    for name, allow in [("looping", False), ("allowed-loop", True)]:
        topic = sns.create_topic(Name=f"{name}-topic")["TopicArn"]
        arn = create(lam, name, __import__("conftest").make_zip({"app.py": LOOP}), Layers=[boto3_layer],
                     Timeout=30, Role=ROLE_ARN, Environment={"Variables": {"TOPIC": topic}})["FunctionArn"]
        lam.add_permission(FunctionName=name, StatementId="sns", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com", SourceArn=topic)
        if allow:
            lam.put_function_recursion_config(FunctionName=name, RecursiveLoop="Allow")
        subscription = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)["SubscriptionArn"]
        sns.publish(TopicArn=topic, Message="start")
        if allow:
            deadline = time.time() + 60
            while shared.gust("logs", name).stdout.count("START RequestId:") <= 20 and time.time() < deadline:
                time.sleep(0.3)
            sns.unsubscribe(SubscriptionArn=subscription)
            assert shared.gust("logs", name).stdout.count("START RequestId:") > 20
        else:
            assert runs_of(shared, name) == 16

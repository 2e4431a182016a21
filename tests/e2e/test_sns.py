"""SNS on Gust's endpoint: topics and subscriptions with boto3 and the aws CLI (query
protocol), fan-out to queues and a function with filter policies, signed messages checked
against the served certificate, HTTP endpoints with the confirmation handshake, FIFO
topics, dead-letter queues, and a kill -9 right after a publish."""

import base64
import http.server
import json
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import create, error_of, make_zip, module_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "sns",
                             ["--sns-retry-base", "10ms", "--sns-http-allow", "http://127.0.0.1:"])


@pytest.fixture
def sns(shared):
    return shared.client(service="sns")


@pytest.fixture
def sqs(shared):
    return shared.client(service="sqs")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def queue(sqs, name, **attributes):
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url, count, timeout=10, **kwargs):
    messages, deadline = [], time.time() + timeout
    while len(messages) < count and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kwargs)
        for m in got.get("Messages", []):
            messages.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def canonical(message):
    """The string SNS signs (its documented order of fields)."""
    if message["Type"] == "Notification":
        fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{f}\n{message[f]}\n" for f in fields if f in message).encode()


def verify_signature(message, cert_url=None):
    url = cert_url or message.get("SigningCertURL") or message["SigningCertUrl"]
    certificate = x509.load_pem_x509_certificate(urllib.request.urlopen(url, timeout=10).read())
    digest = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    certificate.public_key().verify(base64.b64decode(message["Signature"]), canonical(message),
                                    padding.PKCS1v15(), digest)


def function_events(server, name, count, timeout=20):
    """The SNS events a function printed (one JSON line each)."""
    deadline = time.time() + timeout
    while True:
        lines = server.gust("logs", name).stdout.splitlines()
        events = []
        for line in lines:
            start = line.find('{"Records"')
            if start >= 0:
                events.append(json.loads(line[start:]))
        if len(events) >= count or time.time() > deadline:
            return events
        time.sleep(0.3)


PRINTER = make_zip({"app.py": "import json\ndef handler(event, context):\n    print(json.dumps(event))\n"})


def test_fan_out_to_queues_and_a_function_with_filter_policies(shared, sns, sqs):
    topic = sns.create_topic(Name=unique("orders"), Tags=[{"Key": "team", "Value": "core"}])["TopicArn"]
    all_url, all_arn = queue(sqs, unique("all"))
    big_url, big_arn = queue(sqs, unique("big"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=all_arn)
    big = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=big_arn, ReturnSubscriptionArn=True,
                        Attributes={"RawMessageDelivery": "true",
                                    "FilterPolicy": json.dumps({"size": ["big"], "price": [{"numeric": [">", 100]}]})})
    assert big["SubscriptionArn"].startswith(topic + ":")
    lam = shared.client()
    name = unique("printer")
    function_arn = create(lam, name, PRINTER)["FunctionArn"]
    lam.add_permission(FunctionName=name, StatementId="sns", Action="lambda:InvokeFunction",
                       Principal="sns.amazonaws.com", SourceArn=topic)
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn,
                  Attributes={"FilterPolicy": json.dumps({"size": [{"prefix": "b"}]})})
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Protocol"] for s in listed) == ["lambda", "sqs", "sqs"]
    matching = sns.publish(TopicArn=topic, Message="a big one", Subject="New order", MessageAttributes={
        "size": {"DataType": "String", "StringValue": "big"},
        "price": {"DataType": "Number", "StringValue": "150"}})["MessageId"]
    sns.publish(TopicArn=topic, Message="a small one", MessageAttributes={
        "size": {"DataType": "String", "StringValue": "small"},
        "price": {"DataType": "Number", "StringValue": "150"}})
    # Every message reaches the unfiltered queue, in SNS's signed envelope.
    envelopes = [json.loads(m["Body"]) for m in drain(sqs, all_url, 2)]
    assert sorted(e["Message"] for e in envelopes) == ["a big one", "a small one"]
    first = next(e for e in envelopes if e["MessageId"] == matching)
    assert first["Type"] == "Notification" and first["TopicArn"] == topic and first["Subject"] == "New order"
    assert first["MessageAttributes"]["size"] == {"Type": "String", "Value": "big"}
    assert first["UnsubscribeURL"].startswith(shared.endpoint)
    verify_signature(first)
    # The filtered raw subscription gets only the match, as the bare message with its attributes.
    raw = drain(sqs, big_url, 1, MessageAttributeNames=["All"])
    assert [m["Body"] for m in raw] == ["a big one"]
    assert raw[0]["MessageAttributes"]["size"]["StringValue"] == "big"
    assert drain(sqs, big_url, 1, timeout=2) == []
    # The function gets SNS's event, field for field.
    events = function_events(shared, name, 1)
    assert len(events) == 1, events
    record = events[0]["Records"][0]
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"].startswith(topic + ":")
    body = record["Sns"]
    assert body["Message"] == "a big one" and body["MessageId"] == matching
    assert set(body) >= {"Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp",
                         "SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"}
    verify_signature(body)
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "team", "Value": "core"}]


def test_topic_lifecycle_and_errors(sns, shared):
    name = unique("life")
    arn = sns.create_topic(Name=name)["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:{name}"
    assert sns.create_topic(Name=name)["TopicArn"] == arn
    attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attributes["TopicArn"] == arn and attributes["Owner"] == "000000000000"
    assert json.loads(attributes["Policy"])["Statement"]
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Life")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Life"
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    missing = arn + "-missing"
    status, code, message = error_of(lambda: sns.publish(TopicArn=missing, Message="x"))
    assert (status, code) == (404, "NotFound"), message
    assert error_of(lambda: sns.create_topic(Name="bad name"))[:2] == (400, "InvalidParameter")
    assert error_of(lambda: sns.publish(TopicArn=arn, Message="x", MessageStructure="json"))[1] == "InvalidParameter"
    assert error_of(lambda: sns.subscribe(TopicArn=arn, Protocol="carrier-pigeon", Endpoint="x"))[1] == "InvalidParameter"
    assert error_of(lambda: sns.subscribe(TopicArn=arn, Protocol="http", Endpoint="http://example.com/"))[1] == "InvalidParameter"
    assert error_of(lambda: sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "x"}, {"Id": "a", "Message": "y"}]))[1] == "BatchEntryIdsNotDistinct"
    result = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "one"}, {"Id": "b", "Message": json.dumps({"nope": 1}), "MessageStructure": "json"}])
    assert [s["Id"] for s in result["Successful"]] == ["a"]
    assert [f["Id"] for f in result["Failed"]] == ["b"]
    sns.delete_topic(TopicArn=arn)
    assert error_of(lambda: sns.get_topic_attributes(TopicArn=arn))[:2] == (404, "NotFound")
    # The aws CLI speaks the same protocol.
    cli_topic = json.loads(shared.aws("sns", "create-topic", "--name", unique("cli")).stdout)["TopicArn"]
    published = json.loads(shared.aws("sns", "publish", "--topic-arn", cli_topic, "--message", "hi").stdout)
    assert "MessageId" in published
    failed = shared.aws("sns", "get-topic-attributes", "--topic-arn", cli_topic + "x", check=False)
    assert failed.returncode != 0 and "NotFound" in failed.stderr


def test_message_structure_and_failed_deliveries_go_to_the_dead_letter_queue(shared, sns, sqs):
    topic = sns.create_topic(Name=unique("structured"))["TopicArn"]
    url, arn = queue(sqs, unique("structured"))
    dlq_url, dlq_arn = queue(sqs, unique("sub-dlq"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    # A function that does not allow SNS to invoke it: the delivery fails for good.
    lam = shared.client()
    name = unique("closed")
    function_arn = create(lam, name, PRINTER)["FunctionArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn,
                  Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
    sns.publish(TopicArn=topic, MessageStructure="json",
                Message=json.dumps({"default": "for everyone", "sqs": "for queues"}))
    assert [m["Body"] for m in drain(sqs, url, 1)] == ["for queues"]
    dead = drain(sqs, dlq_url, 1, timeout=20)
    assert len(dead) == 1
    assert json.loads(dead[0]["Body"])["Message"] == "for everyone"
    assert function_events(shared, name, 1, timeout=1) == []


class Endpoint(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Endpoint.received.append((dict(self.headers), json.loads(body) if body.startswith(b"{") else body.decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_endpoints_confirm_then_receive(sns):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}/hook"
        topic = sns.create_topic(Name=unique("web"))["TopicArn"]
        pending = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint)["SubscriptionArn"]
        assert pending == "pending confirmation"
        deadline = time.time() + 10
        while not Endpoint.received and time.time() < deadline:
            time.sleep(0.05)
        headers, confirmation = Endpoint.received.pop(0)
        assert confirmation["Type"] == "SubscriptionConfirmation"
        assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
        verify_signature(confirmation)
        # Visiting the SubscribeURL (unsigned, as an endpoint does) confirms.
        with urllib.request.urlopen(confirmation["SubscribeURL"], timeout=10) as response:
            assert response.status == 200 and b"<SubscriptionArn>" in response.read()
        sns.publish(TopicArn=topic, Message="over http")
        deadline = time.time() + 10
        while not Endpoint.received and time.time() < deadline:
            time.sleep(0.05)
        headers, notification = Endpoint.received.pop(0)
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert notification["Message"] == "over http"
        verify_signature(notification)
    finally:
        server.shutdown()


def test_fifo_topics_keep_order_and_deduplicate(sns, sqs):
    topic = sns.create_topic(Name=unique("ordered") + ".fifo", Attributes={
        "FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    url, arn = queue(sqs, unique("ordered") + ".fifo", FifoQueue="true")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sent = [sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId="g") for i in range(5)]
    assert sns.publish(TopicArn=topic, Message="m0", MessageGroupId="g")["MessageId"] == sent[0]["MessageId"]
    assert all(len(s["SequenceNumber"]) == 20 for s in sent)
    assert error_of(lambda: sns.publish(TopicArn=topic, Message="x"))[1] == "InvalidParameter"
    assert [m["Body"] for m in drain(sqs, url, 5)] == [f"m{i}" for i in range(5)]


def test_a_publish_acknowledged_before_kill_9_is_delivered_after_restart(make_server):
    server = make_server(["--sns-retry-base", "10ms"])
    sns, sqs = server.client(service="sns"), server.client(service="sqs")
    topic = sns.create_topic(Name="durable")["TopicArn"]
    url, arn = queue(sqs, "durable-target")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    published = [f"message {i}" for i in range(50)]
    for body in published:
        sns.publish(TopicArn=topic, Message=body)
    server.stop(signal.SIGKILL)
    server.start()
    sqs = server.client(service="sqs")
    # At least once: a delivery interrupted by the kill may arrive twice; none is lost.
    got, deadline = set(), time.time() + 30
    while len(got) < len(published) and time.time() < deadline:
        got |= {m["Body"] for m in drain(sqs, url, 50, timeout=2)}
    assert got == set(published)


def test_subscription_attributes_unsubscribe_links_and_tags(shared, sns, sqs):
    topic = sns.create_topic(Name=unique("subs"))["TopicArn"]
    url, arn = queue(sqs, unique("subs"))
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription)["Attributes"]
    assert (attributes["Protocol"], attributes["Endpoint"], attributes["TopicArn"]) == ("sqs", arn, topic)
    assert attributes["RawMessageDelivery"] == "false" and attributes["PendingConfirmation"] == "false"
    sns.set_subscription_attributes(SubscriptionArn=subscription, AttributeName="FilterPolicyScope",
                                    AttributeValue="MessageBody")
    sns.set_subscription_attributes(SubscriptionArn=subscription, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"order": {"kind": ["book"]}}))
    assert error_of(lambda: sns.set_subscription_attributes(
        SubscriptionArn=subscription, AttributeName="FilterPolicy", AttributeValue="{not json"))[1] == "InvalidParameter"
    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"kind": "pen"}}))
    sns.publish(TopicArn=topic, Message=json.dumps({"order": {"kind": "book"}}))
    got = [json.loads(json.loads(m["Body"])["Message"]) for m in drain(sqs, url, 1)]
    assert got == [{"order": {"kind": "book"}}]
    assert drain(sqs, url, 1, timeout=2) == []
    assert subscription in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
    # The UnsubscribeURL of a message works unsigned, as a link.
    sns.set_subscription_attributes(SubscriptionArn=subscription, AttributeName="FilterPolicy", AttributeValue="")
    sns.publish(TopicArn=topic, Message="with a link")
    envelope = json.loads(drain(sqs, url, 1)[0]["Body"])
    with urllib.request.urlopen(envelope["UnsubscribeURL"], timeout=10) as response:
        assert response.status == 200
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    status, code, _ = error_of(lambda: sns.get_subscription_attributes(SubscriptionArn=subscription))
    assert (status, code) == (404, "NotFound")
    # Other unsigned actions are refused, also behind a link's action in the query.
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{shared.endpoint}/?Action=Publish&TopicArn={topic}&Message=x", timeout=10)
    assert info.value.code == 403
    for body, headers in [
        (b"Action=CreateQueue&QueueName=sneaky", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b"Action=GetSessionToken&Version=2011-06-15", {"Content-Type": "application/x-www-form-urlencoded"}),
        (b'{"QueueName": "sneaky"}', {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.CreateQueue"}),
    ]:
        request = urllib.request.Request(f"{shared.endpoint}/?Action=ConfirmSubscription", data=body,
                                         headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 403, body
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="sneaky")
    sns.tag_resource(ResourceArn=topic, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sns.untag_resource(ResourceArn=topic, TagKeys=["a"])
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_another_account_publishes_only_where_the_topic_allows_it(make_server, tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"account_id": "111111111111", "access_key_id": "AKIDSNSOTHER0000",
                                     "secret_access_key": "sns-other-secret"}]))
    server = make_server(["--accounts", str(accounts)])
    owner = server.client(service="sns")
    other = server.client("AKIDSNSOTHER0000", "sns-other-secret", service="sns")
    topic = owner.create_topic(Name="shared")["TopicArn"]
    status, code, _ = error_of(lambda: other.publish(TopicArn=topic, Message="x"))
    assert (status, code) == (403, "AuthorizationError")
    owner.add_permission(TopicArn=topic, Label="publish", AWSAccountId=["111111111111"], ActionName=["Publish"])
    assert "MessageId" in other.publish(TopicArn=topic, Message="allowed now")
    owner.remove_permission(TopicArn=topic, Label="publish")
    assert error_of(lambda: other.publish(TopicArn=topic, Message="x"))[1] == "AuthorizationError"

"""SQS on Gust's endpoint: boto3 (JSON 1.0 protocol), hand-signed query-protocol requests
(form in, XML out), the aws CLI, and the semantics — visibility, receipts, redrive, FIFO
order and deduplication, long polling — down to a kill -9 under load."""

import hashlib
import json
import signal
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest

from conftest import Server, error_of, module_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "sqs")


@pytest.fixture
def sqs(shared):
    return shared.client(service="sqs")


def name(prefix="q"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def md5_of_attributes(attributes):
    """SQS's digest of message attributes (what Java/Go/JS SDKs check)."""
    digest = hashlib.md5()
    for key in sorted(attributes):
        value = attributes[key]
        for part in (key.encode(), value["DataType"].encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        if "BinaryValue" in value:
            digest.update(b"\x02")
            raw = value["BinaryValue"]
            digest.update(struct.pack(">I", len(raw)) + raw)
        else:
            digest.update(b"\x01")
            raw = value["StringValue"].encode()
            digest.update(struct.pack(">I", len(raw)) + raw)
    return digest.hexdigest()


def test_queue_and_message_round_trip(sqs):
    url = sqs.create_queue(QueueName=name(), Attributes={"VisibilityTimeout": "7"},
                           tags={"team": "core"})["QueueUrl"]
    assert url.startswith("http://127.0.0.1:") and "/000000000000/" in url
    assert sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1])["QueueUrl"] == url
    attributes = {"Author": {"DataType": "String", "StringValue": "John"},
                  "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffdata"},
                  "Count": {"DataType": "Number.int", "StringValue": "42"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="héllo 😀", MessageAttributes=attributes,
                            MessageSystemAttributes={"AWSTraceHeader": {
                                "DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}})
    assert sent["MD5OfMessageBody"] == hashlib.md5("héllo 😀".encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    assert "MD5OfMessageSystemAttributes" in sent
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                              MessageSystemAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert len(got) == 1
    message = got[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "héllo 😀"
    assert message["MessageAttributes"]["Blob"]["BinaryValue"] == b"\x00\xffdata"
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    system = message["Attributes"]
    assert system["ApproximateReceiveCount"] == "1"
    assert system["AWSTraceHeader"].startswith("Root=1-")
    assert abs(int(system["SentTimestamp"]) - time.time() * 1000) < 60_000
    # Only the attributes asked for.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["Au.*", "Count"],
                                AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert set(again["MessageAttributes"]) == {"Count"}
    assert again["MD5OfMessageAttributes"] == md5_of_attributes({"Count": attributes["Count"]})
    assert again["Attributes"] == {"ApproximateReceiveCount": "2"}
    assert again["ReceiptHandle"] != message["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["VisibilityTimeout"] == "7"
    assert counts["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{url.rsplit('/', 1)[1]}"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "core"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "dev"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev"}
    # Concurrent changes to one queue do not undo each other.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": str(i)}), range(16)))
    assert len(sqs.list_queue_tags(QueueUrl=url)["Tags"]) == 17
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"] == {"DelaySeconds": "2"}
    sqs.delete_queue(QueueUrl=url)
    assert error_of(lambda: sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1]))[1] == "AWS.SimpleQueueService.NonExistentQueue"


def test_batches_list_paging_and_purge(sqs):
    prefix = name("page")
    urls = [sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3)]
    page = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    assert page["QueueUrls"] == urls[:2] and "NextToken" in page
    rest = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=page["NextToken"])
    assert rest["QueueUrls"] == urls[2:] and "NextToken" not in rest
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="no-such-prefix")
    url = urls[0]
    result = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "one"},
        {"Id": "b", "MessageBody": "two", "DelaySeconds": 0},
        {"Id": "bad", "MessageBody": "x\x00y"},
    ])
    assert sorted(e["Id"] for e in result["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in result["Failed"]] == [("bad", "InvalidMessageContents", True)]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    while len(messages) < 2:
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    changed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "x", "ReceiptHandle": messages[0]["ReceiptHandle"], "VisibilityTimeout": 100},
        {"Id": "y", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 5}])
    assert [e["Id"] for e in changed["Successful"]] == ["x"]
    assert changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    assert len(deleted["Successful"]) == 2 and deleted["Failed"] == []
    sqs.send_message(QueueUrl=url, MessageBody="to purge")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    status, code, _ = error_of(lambda: sqs.purge_queue(QueueUrl=url))
    assert (status, code) == (403, "AWS.SimpleQueueService.PurgeQueueInProgress")


def test_errors_in_the_services_shapes(sqs, shared):
    url = sqs.create_queue(QueueName=name(), Attributes={"DelaySeconds": "1"})["QueueUrl"]
    queue = url.rsplit("/", 1)[1]
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="missing-queue")
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=queue, Attributes={"DelaySeconds": "2"})
    assert sqs.create_queue(QueueName=queue, Attributes={"DelaySeconds": "1"})["QueueUrl"] == url
    cases = [
        (lambda: sqs.create_queue(QueueName="bad name"), 400, "InvalidParameterValue"),
        (lambda: sqs.create_queue(QueueName="x" * 81), 400, "InvalidParameterValue"),
        (lambda: sqs.create_queue(QueueName=name(), Attributes={"VisibilityTimeout": "43201"}), 400, "InvalidAttributeValue"),
        (lambda: sqs.create_queue(QueueName=name(), Attributes={"Bogus": "1"}), 400, "InvalidAttributeName"),
        (lambda: sqs.create_queue(QueueName=name(), Attributes={"FifoQueue": "true"}), 400, "InvalidParameterValue"),
        (lambda: sqs.create_queue(QueueName=name(), Attributes={"RedrivePolicy": "{not json"}), 400, "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d"), 400, "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901), 400, "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="a\x01b"), 400, "InvalidMessageContents"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x" * (1024 * 1024 + 1)), 400, "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            "n": {"DataType": "Number", "StringValue": "abc"}}), 400, "InvalidParameterValue"),
        (lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            f"a{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)}), 400, "InvalidParameterValue"),
        (lambda: sqs.send_message_batch(QueueUrl=url, Entries=[]), 400, "AWS.SimpleQueueService.EmptyBatchRequest"),
        (lambda: sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": "x"} for i in range(11)]), 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        (lambda: sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]), 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        (lambda: sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a b", "MessageBody": "x"}]), 400, "AWS.SimpleQueueService.InvalidBatchEntryId"),
        (lambda: sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": f"e{i}", "MessageBody": "x" * 200_000} for i in range(6)]), 400, "AWS.SimpleQueueService.BatchRequestTooLong"),
        (lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11), 400, "InvalidParameterValue"),
        (lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21), 400, "InvalidParameterValue"),
        (lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage"), 400, "ReceiptHandleIsInvalid"),
        (lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Nope"]), 400, "InvalidAttributeName"),
        (lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={"QueueArn": "x"}), 400, "InvalidAttributeName"),
        (lambda: sqs.send_message(QueueUrl=url + "-missing", MessageBody="x"), 400, "AWS.SimpleQueueService.NonExistentQueue"),
    ]
    for call, status, code in cases:
        got = error_of(call)
        assert got[:2] == (status, code), got
    # A message that is not in flight cannot have its visibility changed.
    sqs.send_message(QueueUrl=url, MessageBody="v", DelaySeconds=0)
    handle = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert error_of(lambda: sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=10))[1] == "AWS.SimpleQueueService.MessageNotInflight"


def raw_request(server, body, headers, service="sqs", sign=True, path="/"):
    if sign:
        headers = server.signed_headers("POST", path, body, headers, service)
    prepared = urllib.request.Request(server.endpoint + path, data=body if isinstance(body, bytes) else body.encode(),
                                      headers=headers, method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def query(server, params, **kwargs):
    body = urllib.parse.urlencode({"Version": "2012-11-05", **params})
    return raw_request(server, body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, **kwargs)


NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}


def test_query_protocol_by_hand(shared):
    queue = name("query")
    status, _, body = query(shared, {"Action": "CreateQueue", "QueueName": queue,
                                     "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "40"})
    assert status == 200, body
    root = ET.fromstring(body)
    url = root.find("q:CreateQueueResult/q:QueueUrl", NS).text
    assert root.find("q:ResponseMetadata/q:RequestId", NS).text
    status, _, body = query(shared, {
        "Action": "SendMessage", "QueueUrl": url, "MessageBody": "a & b <c>\r\n",
        "MessageAttribute.1.Name": "Author", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "John"})
    assert status == 200, body
    result = ET.fromstring(body).find("q:SendMessageResult", NS)
    assert result.find("q:MD5OfMessageAttributes", NS).text == "88c00aa79fe478b6e6fb7ded7586b6d7"
    # The queue URL's path also names the queue.
    path = urllib.parse.urlparse(url).path
    status, _, body = query(shared, {"Action": "ReceiveMessage", "AttributeName.1": "All",
                                     "MessageAttributeName.1": "All", "WaitTimeSeconds": "1"}, path=path)
    assert status == 200, body
    message = ET.fromstring(body).find("q:ReceiveMessageResult/q:Message", NS)
    assert message.find("q:Body", NS).text == "a & b <c>\r\n"
    attributes = {a.find("q:Name", NS).text: a.find("q:Value", NS).text for a in message.findall("q:Attribute", NS)}
    assert attributes["ApproximateReceiveCount"] == "1"
    author = message.find("q:MessageAttribute", NS)
    assert author.find("q:Name", NS).text == "Author"
    assert author.find("q:Value/q:StringValue", NS).text == "John"
    status, _, body = query(shared, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "VisibilityTimeout"})
    pairs = ET.fromstring(body).findall("q:GetQueueAttributesResult/q:Attribute", NS)
    assert [(p.find("q:Name", NS).text, p.find("q:Value", NS).text) for p in pairs] == [("VisibilityTimeout", "40")]
    # Errors are <ErrorResponse> with the query codes.
    status, _, body = query(shared, {"Action": "GetQueueUrl", "QueueName": "missing-queue"})
    assert status == 400
    error = ET.fromstring(body).find("q:Error", NS)
    assert (error.find("q:Type", NS).text, error.find("q:Code", NS).text) == ("Sender", "AWS.SimpleQueueService.NonExistentQueue")
    status, _, body = query(shared, {"Action": "NoSuchAction"})
    assert status == 400 and ET.fromstring(body).find("q:Error/q:Code", NS).text == "InvalidAction"
    # A signature over other bytes, and an unknown key, are refused in the same shape.
    status, _, body = query(shared, {"Action": "ListQueues"}, sign=False)
    assert status == 403 and b"<ErrorResponse" in body
    body_text = urllib.parse.urlencode({"Action": "ListQueues", "Version": "2012-11-05"})
    headers = shared.signed_headers("POST", "/", body_text,
                                    {"Content-Type": "application/x-www-form-urlencoded"}, "sqs")
    tampered = urllib.request.Request(shared.endpoint + "/", data=(body_text + "&QueueNamePrefix=x").encode(),
                                      headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tampered, timeout=10)
    assert info.value.code == 403
    assert ET.fromstring(info.value.read()).find("q:Error/q:Code", NS).text == "SignatureDoesNotMatch"


def test_json_protocol_edges(shared):
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}
    status, response_headers, body = raw_request(shared, "{not json", headers)
    assert status == 400 and b"SerializationException" in body
    status, response_headers, body = raw_request(shared, "{}", {**headers, "X-Amz-Target": "AmazonSQS.Nope"})
    assert status == 400 and json.loads(body)["__type"].endswith("UnknownOperationException")
    status, response_headers, body = raw_request(
        shared, json.dumps({"QueueName": "missing-queue"}), {**headers, "X-Amz-Target": "AmazonSQS.GetQueueUrl"})
    assert status == 400
    assert json.loads(body) == {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."}
    assert response_headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"


def test_aws_cli(shared):
    queue = name("cli")
    url = json.loads(shared.aws("sqs", "create-queue", "--queue-name", queue).stdout)["QueueUrl"]
    shared.aws("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli")
    got = json.loads(shared.aws("sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "2").stdout)
    assert got["Messages"][0]["Body"] == "from the cli"
    listed = json.loads(shared.aws("sqs", "list-queues", "--queue-name-prefix", queue).stdout)
    assert listed["QueueUrls"] == [url]
    failed = shared.aws("sqs", "get-queue-url", "--queue-name", "missing-queue", check=False)
    assert failed.returncode != 0 and "NonExistentQueue" in failed.stderr


def test_redrive_to_a_dead_letter_queue_and_back(sqs):
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(QueueName=name("src"), Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert policy == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    sqs.send_message(QueueUrl=source, MessageBody="poison")
    for attempt in (1, 2):
        got = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])["Messages"]
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
    # The third receive moves it instead of returning it.
    assert "Messages" not in sqs.receive_message(QueueUrl=source, WaitTimeSeconds=3)
    moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2, VisibilityTimeout=0)["Messages"]
    assert moved[0]["Body"] == "poison"
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    # A queue cannot be its own dead-letter queue.
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert error_of(lambda: sqs.set_queue_attributes(QueueUrl=source, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": source_arn, "maxReceiveCount": 1})}))[1] == "InvalidParameterValue"
    # A dead-letter target that does not exist is refused.
    missing = dlq_arn + "-missing"
    assert error_of(lambda: sqs.create_queue(QueueName=name(), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": missing, "maxReceiveCount": 1})}))[1] == "InvalidParameterValue"
    # A move task sends it back to its source.
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    deadline = time.time() + 10
    while True:
        task = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
        if task["Status"] == "COMPLETED" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 1
    back = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=5)["Messages"]
    assert back[0]["Body"] == "poison"
    assert error_of(lambda: sqs.cancel_message_move_task(TaskHandle=handle))[0] == 400
    assert error_of(lambda: sqs.start_message_move_task(SourceArn=sqs.get_queue_attributes(
        QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]))[1] == "InvalidParameterValue"


def test_fifo_order_groups_and_deduplication(sqs):
    url = sqs.create_queue(QueueName=name("fifo") + ".fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sent = [sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="a") for i in range(3)]
    sent.append(sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="b"))
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="a")
    assert duplicate["MessageId"] == sent[0]["MessageId"]
    assert duplicate["SequenceNumber"] == sent[0]["SequenceNumber"]
    numbers = [int(s["SequenceNumber"]) for s in sent]
    assert numbers == sorted(numbers) and len(sent[0]["SequenceNumber"]) == 20
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in first] == ["a0", "a1"]
    assert first[0]["Attributes"]["MessageGroupId"] == "a"
    assert first[0]["Attributes"]["SequenceNumber"] == sent[0]["SequenceNumber"]
    # Group a is blocked while a0 and a1 are in flight; b is not.
    second = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in second] == ["b0"]
    for m in first + second:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # A receive retried with its attempt id gets the same messages and receipts.
    first_try = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="try-1")["Messages"]
    retried = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="try-1")["Messages"]
    assert [m["Body"] for m in first_try] == ["a2"]
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in retried] == [(m["MessageId"], m["ReceiptHandle"]) for m in first_try]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-2")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first_try[0]["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="try-1")
    assert error_of(lambda: sqs.send_message(QueueUrl=url, MessageBody="x"))[1] == "MissingParameter"
    assert error_of(lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g",
                                             DelaySeconds=5))[1] == "InvalidParameterValue"
    # A message only delayed does not hold back the visible one before it in its group.
    delayed = sqs.create_queue(QueueName=name("delayed") + ".fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true", "DelaySeconds": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=delayed, MessageBody="first", MessageGroupId="g")
    time.sleep(1.2)
    sqs.send_message(QueueUrl=delayed, MessageBody="second", MessageGroupId="g")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=delayed, MaxNumberOfMessages=10)["Messages"]] == ["first"]
    plain = sqs.create_queue(QueueName=name("nodedup") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert error_of(lambda: sqs.send_message(QueueUrl=plain, MessageBody="x", MessageGroupId="g"))[1] == "InvalidParameterValue"


def test_long_poll_returns_as_soon_as_a_message_arrives(sqs):
    url = sqs.create_queue(QueueName=name("poll"))["QueueUrl"]
    result = {}

    def receive():
        started = time.monotonic()
        result["messages"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=15).get("Messages", [])
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=receive)
    thread.start()
    time.sleep(0.5)
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    thread.join(20)
    assert [m["Body"] for m in result["messages"]] == ["wake up"]
    assert result["waited"] < 10
    # An empty long poll waits its time out, and a delayed message ends it when it is due.
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    started = time.monotonic()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
    assert [m["Body"] for m in got] == ["later"] and 1.5 < time.monotonic() - started < 8


def test_cross_account_access_follows_the_queue_policy(make_server, tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"account_id": "111111111111", "access_key_id": "AKIDOTHER0000000",
                                     "secret_access_key": "other-secret-key"}]))
    server = make_server(["--accounts", str(accounts)])
    owner = server.client(service="sqs")
    other = server.client("AKIDOTHER0000000", "other-secret-key", service="sqs")
    url = owner.create_queue(QueueName="shared")["QueueUrl"]
    assert error_of(lambda: other.send_message(QueueUrl=url, MessageBody="x"))[0] == 403
    # The other account's own queue of the same name is a different queue.
    other_url = other.create_queue(QueueName="shared")["QueueUrl"]
    assert "/111111111111/shared" in other_url
    owner.add_permission(QueueUrl=url, Label="send", AWSAccountIds=["111111111111"], Actions=["SendMessage"])
    other.send_message(QueueUrl=url, MessageBody="from 111111111111")
    assert owner.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"] == "from 111111111111"
    assert error_of(lambda: other.receive_message(QueueUrl=url))[0] == 403
    owner.remove_permission(QueueUrl=url, Label="send")
    assert error_of(lambda: other.send_message(QueueUrl=url, MessageBody="x"))[0] == 403


def test_kill_9_under_load_loses_no_acknowledged_message(make_server):
    """Senders, receivers and deleters run until the server is killed with SIGKILL; after a
    restart every acknowledged send is either deleted (its delete acknowledged) or still in
    the queue, and no message whose delete was acknowledged comes back."""
    server = make_server()
    sqs = server.client(service="sqs")
    # Long enough that no message is redelivered while its first receiver deletes it (a
    # stale receipt deletes nothing), short enough to drain the in-flight ones afterwards.
    url = sqs.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    # A delete cut off by the kill may or may not have happened: such a message may be
    # missing afterwards, and may come back, without anything being wrong.
    acknowledged, deleted, maybe_deleted = set(), set(), set()
    lock = threading.Lock()
    stop = threading.Event()

    def send(worker):
        client = server.client(service="sqs")
        n = 0
        while not stop.is_set():
            bodies = [f"{worker}-{n + i}" for i in range(10)]
            n += 10
            try:
                result = client.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
            except Exception:
                return
            with lock:
                acknowledged.update(bodies[int(e["Id"])] for e in result["Successful"])

    def consume():
        client = server.client(service="sqs")
        while not stop.is_set():
            try:
                messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                for m in messages:
                    with lock:
                        maybe_deleted.add(m["Body"])
                    client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    with lock:
                        deleted.add(m["Body"])
                        maybe_deleted.discard(m["Body"])
            except Exception:
                return

    threads = [threading.Thread(target=send, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=consume) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(3)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acknowledged) > 100, len(acknowledged)
    server.start()
    sqs = server.client(service="sqs")
    remaining = []
    deadline = time.time() + 30
    while time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                  WaitTimeSeconds=1).get("Messages", [])
        remaining.extend(m["Body"] for m in got)
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if not got and int(counts["ApproximateNumberOfMessages"]) == 0 \
                and int(counts["ApproximateNumberOfMessagesNotVisible"]) == len(remaining):
            break
    assert not set(remaining) & deleted, "a deleted message came back"
    missing = acknowledged - deleted - maybe_deleted - set(remaining)
    assert not missing, f"{len(missing)} acknowledged messages lost"

"""Event source mappings from SQS queues, driven with boto3 and the aws CLI: the API's
rules, a thousand messages in batches, partial batch failures and the queue's DLQ,
filters, FIFO order, a throttled function with a backlog, disable/enable, and a restart."""

import json
import signal
import time

import pytest

from conftest import create, error_of, make_zip, module_server

# One log line per batch; failures reported for bodies that start with "poison".
RECORDER = make_zip({"app.py": (
    "import json, time\n"
    "def handler(event, context):\n"
    "    records = event['Records']\n"
    "    print('BATCH ' + json.dumps([r['body'] for r in records]))\n"
    "    time.sleep(float(records[0]['messageAttributes'].get('sleep', {}).get('stringValue', 0)))\n"
    "    return {'batchItemFailures': [{'itemIdentifier': r['messageId']}\n"
    "                                  for r in records if r['body'].startswith('poison')]}\n")})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "mappings")


def queue(sqs, name, **attributes):
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def batches(server, function):
    out = server.gust("logs", function).stdout
    return [json.loads(line.split("BATCH ", 1)[1]) for line in out.splitlines() if "BATCH " in line]


def wait_for(check, timeout=30, every=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return check()


def queue_empty(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def state(lam, uuid):
    return lam.get_event_source_mapping(UUID=uuid)["State"]


def send(sqs, url, bodies, **extra):
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": body, **extra} for n, body in enumerate(bodies[i:i + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def test_the_api_follows_lambdas_rules(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "esm-rules", RECORDER, Timeout=10)
    _, arn = queue(sqs, "esm-rules", VisibilityTimeout=30)
    _, short = queue(sqs, "esm-short", VisibilityTimeout=5)
    # Batch sizes over 10 need a window; the window and the batch size have ranges.
    status, code, message = error_of(lambda: lam.create_event_source_mapping(
        FunctionName="esm-rules", EventSourceArn=arn, BatchSize=100))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "Maximum batch window in seconds must be greater than 0" in message
    raw = shared.client(parameter_validation=False)
    assert error_of(lambda: raw.create_event_source_mapping(
        FunctionName="esm-rules", EventSourceArn=arn, BatchSize=0, MaximumBatchingWindowInSeconds=301))[:2] == (
        400, "ValidationException")
    # Sources Gust does not have, queues that do not exist, a visibility timeout shorter
    # than the function's timeout.
    status, code, message = error_of(lambda: lam.create_event_source_mapping(
        FunctionName="esm-rules", EventSourceArn="arn:aws:kinesis:us-east-1:000000000000:stream/s",
        StartingPosition="LATEST"))
    assert (status, code) == (400, "InvalidParameterValueException") and "Kinesis" in message
    assert error_of(lambda: lam.create_event_source_mapping(
        FunctionName="esm-rules", EventSourceArn="arn:aws:sqs:us-east-1:000000000000:nope"))[:2] == (
        400, "InvalidParameterValueException")
    status, code, message = error_of(lambda: lam.create_event_source_mapping(
        FunctionName="esm-rules", EventSourceArn=short))
    assert message == "Queue visibility timeout: 5 seconds is less than Function timeout: 10 seconds"
    assert error_of(lambda: lam.create_event_source_mapping(
        FunctionName="missing", EventSourceArn=arn))[:2] == (404, "ResourceNotFoundException")
    status, code, message = error_of(lambda: lam.create_event_source_mapping(
        FunctionName="esm-rules", EventSourceArn=arn, FilterCriteria={"Filters": [{"Pattern": "not json"}]}))
    assert (status, code) == (400, "InvalidParameterValueException")
    # Created: Creating, then Enabled; listed by function and by source.
    created = lam.create_event_source_mapping(FunctionName="esm-rules", EventSourceArn=arn, BatchSize=5,
                                              FunctionResponseTypes=["ReportBatchItemFailures"],
                                              Tags={"stage": "test"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:esm-rules"
    assert created["EventSourceArn"] == arn and created["BatchSize"] == 5
    assert created["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    uuid = created["UUID"]
    assert wait_for(lambda: state(lam, uuid) == "Enabled", 10)
    assert [m["UUID"] for m in lam.list_event_source_mappings(FunctionName="esm-rules")["EventSourceMappings"]] == [uuid]
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]] == [uuid]
    # One mapping per function and queue.
    status, code, message = error_of(lambda: lam.create_event_source_mapping(FunctionName="esm-rules", EventSourceArn=arn))
    assert (status, code) == (409, "ResourceConflictException") and uuid in message
    # Updates go through Updating; disabling settles as Disabled.
    updated = lam.update_event_source_mapping(UUID=uuid, BatchSize=8, Enabled=False)
    assert updated["State"] == "Updating" and updated["BatchSize"] == 8
    assert wait_for(lambda: state(lam, uuid) == "Disabled", 10)
    # The aws CLI reads the same.
    listed = json.loads(shared.aws("lambda", "list-event-source-mappings", "--function-name", "esm-rules").stdout)
    assert listed["EventSourceMappings"][0]["State"] == "Disabled"
    # Tags, on the mapping's ARN.
    mapping_arn = lam.get_event_source_mapping(UUID=uuid)["EventSourceMappingArn"]
    assert mapping_arn == f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid}"
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"stage": "test"}
    lam.tag_resource(Resource=mapping_arn, Tags={"team": "orders"})
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {"stage": "test", "team": "orders"}
    lam.untag_resource(Resource=mapping_arn, TagKeys=["stage", "team"])
    assert lam.list_tags(Resource=mapping_arn)["Tags"] == {}
    deleted = lam.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    assert error_of(lambda: lam.get_event_source_mapping(UUID=uuid))[:2] == (404, "ResourceNotFoundException")


def test_a_thousand_messages_in_batches_with_a_window(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "esm-bulk", RECORDER)
    url, arn = queue(sqs, "esm-bulk")
    bodies = [f"m{i}" for i in range(1000)]
    send(sqs, url, bodies)
    uuid = lam.create_event_source_mapping(FunctionName="esm-bulk", EventSourceArn=arn, BatchSize=10,
                                           MaximumBatchingWindowInSeconds=1)["UUID"]
    assert wait_for(lambda: queue_empty(sqs, url), 90), "the queue was not drained"
    seen = [body for batch in batches(shared, "esm-bulk") for body in batch]
    assert sorted(seen) == sorted(bodies), f"{len(seen)} records seen for 1000 messages"
    sizes = [len(b) for b in batches(shared, "esm-bulk")]
    assert max(sizes) == 10 and sum(sizes) == 1000, "batches of at most BatchSize"
    assert lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK"


def test_partial_failures_and_poison_messages_reach_the_dlq(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "esm-partial", RECORDER, Timeout=2)
    dlq_url, dlq_arn = queue(sqs, "esm-partial-dlq")
    url, arn = queue(sqs, "esm-partial", VisibilityTimeout=2,
                     RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    send(sqs, url, ["good-1", "poison-1", "good-2", "good-3", "poison-2"])
    lam.create_event_source_mapping(FunctionName="esm-partial", EventSourceArn=arn, BatchSize=10,
                                    MaximumBatchingWindowInSeconds=1,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])

    def dead():
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in got:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
        dead.bodies += [m["Body"] for m in got]
        return sorted(dead.bodies) == ["poison-1", "poison-2"]
    dead.bodies = []
    assert wait_for(dead, 40), dead.bodies
    assert wait_for(lambda: queue_empty(sqs, url), 10)
    seen = [body for batch in batches(shared, "esm-partial") for body in batch]
    # The good ones ran once; the poison ones as often as the queue let them.
    assert sorted(b for b in seen if b.startswith("good")) == ["good-1", "good-2", "good-3"]
    assert seen.count("poison-1") == 2 and seen.count("poison-2") == 2


def test_filters_drop_what_does_not_match(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "esm-filter", RECORDER)
    url, arn = queue(sqs, "esm-filter")
    lam.create_event_source_mapping(FunctionName="esm-filter", EventSourceArn=arn,
                                    FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"keep": [True]}})}]})
    send(sqs, url, [json.dumps({"n": n, "keep": n % 2 == 0}) for n in range(10)])
    assert wait_for(lambda: queue_empty(sqs, url), 30)
    seen = [json.loads(body)["n"] for batch in batches(shared, "esm-filter") for body in batch]
    assert sorted(seen) == [0, 2, 4, 6, 8]


def test_fifo_order_per_group(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "esm-fifo", RECORDER)
    url, arn = queue(sqs, "esm-fifo.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    for group in ("a", "b"):
        for n in range(10):
            sqs.send_message(QueueUrl=url, MessageBody=f"{group}{n}", MessageGroupId=group)
    lam.create_event_source_mapping(FunctionName="esm-fifo", EventSourceArn=arn, BatchSize=3)
    assert wait_for(lambda: queue_empty(sqs, url), 30)
    seen = [body for batch in batches(shared, "esm-fifo") for body in batch]
    for group in ("a", "b"):
        assert [b for b in seen if b.startswith(group)] == [f"{group}{n}" for n in range(10)]


def test_a_throttled_function_loses_nothing(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "esm-throttled", RECORDER, Timeout=5)
    lam.put_function_concurrency(FunctionName="esm-throttled", ReservedConcurrentExecutions=1)
    url, arn = queue(sqs, "esm-throttled", VisibilityTimeout=30)
    bodies = [f"t{i}" for i in range(40)]
    send(sqs, url, bodies, MessageAttributes={"sleep": {"DataType": "Number", "StringValue": "0.05"}})
    lam.create_event_source_mapping(FunctionName="esm-throttled", EventSourceArn=arn, BatchSize=1,
                                    ScalingConfig={"MaximumConcurrency": 5})
    assert wait_for(lambda: queue_empty(sqs, url), 60)
    seen = [body for batch in batches(shared, "esm-throttled") for body in batch]
    assert sorted(seen) == sorted(bodies), "each message exactly once"


def test_disable_enable_and_a_restart(make_server):
    server = make_server()
    lam, sqs = server.client(), server.client(service="sqs")
    create(lam, "esm-life", RECORDER)
    url, arn = queue(sqs, "esm-life")
    uuid = lam.create_event_source_mapping(FunctionName="esm-life", EventSourceArn=arn)["UUID"]
    assert wait_for(lambda: state(lam, uuid) == "Enabled", 10)
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert wait_for(lambda: state(lam, uuid) == "Disabled", 10)
    send(sqs, url, ["while-disabled"])
    time.sleep(2)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "1"
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert wait_for(lambda: queue_empty(sqs, url), 20)
    # A kill -9 and a restart: the mapping is there and polls again.
    server.stop(signal.SIGKILL)
    server.process = None
    server.start()
    lam, sqs = server.client(), server.client(service="sqs")
    assert wait_for(lambda: state(lam, uuid) == "Enabled", 10)
    send(sqs, url, ["after-restart"])
    assert wait_for(lambda: queue_empty(sqs, url), 20)
    seen = [body for batch in batches(server, "esm-life") for body in batch]
    assert "while-disabled" in seen and "after-restart" in seen

"""Asynchronous invocation: 202 once the event is on disk, retries of failing functions,
dead-letter queues and destinations with Lambda's invocation record, the event invoke
configuration operations, and a kill -9 with a thousand events waiting."""

import json
import signal
import threading
import time

import pytest

from conftest import create, error_of, make_zip, module_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "async", ["--async-retry-base", "300ms"])


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url, count, timeout=20):
    messages, deadline = [], time.time() + timeout
    while len(messages) < count and time.time() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        for m in got:
            messages.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


ECHO = make_zip({"app.py": "def handler(event, context):\n    return {'got': event}\n"})
FAILING = make_zip({"app.py": "def handler(event, context):\n    raise ValueError('always ' + str(event.get('n')))\n"})


def test_events_run_and_successes_reach_destinations(shared):
    lam, sqs, sns = shared.client(), shared.client(service="sqs"), shared.client(service="sns")
    ok_url, ok_arn = queue(sqs, "ok-records")
    create(lam, "echo", ECHO)
    lam.put_function_event_invoke_config(FunctionName="echo", DestinationConfig={"OnSuccess": {"Destination": ok_arn}})
    accepted = lam.invoke(FunctionName="echo", InvocationType="Event", Payload=json.dumps({"n": 1}))
    assert accepted["StatusCode"] == 202
    request_id = accepted["ResponseMetadata"]["RequestId"]
    assert lam.invoke_async(FunctionName="echo", InvokeArgs=json.dumps({"n": 2}))["Status"] == 202
    shared.gust("invoke", "echo", "--async", "--payload", json.dumps({"n": 3}))
    records = [json.loads(m["Body"]) for m in drain(sqs, ok_url, 3)]
    assert sorted(r["requestPayload"]["n"] for r in records) == [1, 2, 3]
    first = next(r for r in records if r["requestPayload"]["n"] == 1)
    assert first["version"] == "1.0" and first["timestamp"].endswith("Z")
    assert first["requestContext"] == {
        "requestId": request_id, "condition": "Success", "approximateInvokeCount": 1,
        "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:echo:$LATEST"}
    assert first["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert first["responsePayload"] == {"got": {"n": 1}}
    # The request id of the 202 is the one the function saw.
    assert request_id in shared.gust("logs", "echo").stdout
    # Success to a topic, and to another function.
    topic = sns.create_topic(Name="async-records")["TopicArn"]
    topic_url, topic_queue = queue(sqs, "via-topic")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=topic_queue, Attributes={"RawMessageDelivery": "true"})
    create(lam, "to-topic", ECHO)
    lam.put_function_event_invoke_config(FunctionName="to-topic", DestinationConfig={"OnSuccess": {"Destination": topic}})
    create(lam, "recorder", make_zip({"app.py": "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n"}))
    recorder = lam.get_function(FunctionName="recorder")["Configuration"]["FunctionArn"]
    create(lam, "to-function", ECHO)
    lam.put_function_event_invoke_config(FunctionName="to-function", DestinationConfig={"OnSuccess": {"Destination": recorder}})
    lam.invoke(FunctionName="to-topic", InvocationType="Event", Payload=b'{"via": "topic"}')
    lam.invoke(FunctionName="to-function", InvocationType="Event", Payload=b'{"via": "function"}')
    via_topic = [json.loads(m["Body"]) for m in drain(sqs, topic_url, 1)]
    assert via_topic[0]["requestPayload"] == {"via": "topic"}
    deadline = time.time() + 20
    while "RECORD" not in shared.gust("logs", "recorder").stdout and time.time() < deadline:
        time.sleep(0.3)
    line = next(l for l in shared.gust("logs", "recorder").stdout.splitlines() if "RECORD " in l)
    assert json.loads(line.split("RECORD ", 1)[1])["requestPayload"] == {"via": "function"}


def test_failures_are_retried_then_dead_lettered_with_a_failure_record(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    dlq_url, dlq_arn = queue(sqs, "async-dlq")
    failed_url, failed_arn = queue(sqs, "failed-records")
    create(lam, "failing", FAILING, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(FunctionName="failing", MaximumRetryAttempts=2,
                                         DestinationConfig={"OnFailure": {"Destination": failed_arn}})
    request_id = lam.invoke(FunctionName="failing", InvocationType="Event",
                            Payload=json.dumps({"n": 5}))["ResponseMetadata"]["RequestId"]
    dead = drain(sqs, dlq_url, 1)
    assert json.loads(dead[0]["Body"]) == {"n": 5}
    attributes = {k: v["StringValue"] for k, v in dead[0]["MessageAttributes"].items()}
    assert attributes == {"RequestID": request_id, "ErrorCode": "200", "ErrorMessage": "always 5"}
    record = json.loads(drain(sqs, failed_url, 1)[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "always 5"
    # Exactly 1 + MaximumRetryAttempts runs, each with the event's request id.
    starts = [l for l in shared.gust("logs", "failing").stdout.splitlines() if f"START RequestId: {request_id}" in l]
    assert len(starts) == 3
    # No retries at all: one run, then the failure path.
    create(lam, "failing-once", FAILING, DeadLetterConfig={"TargetArn": dlq_arn})
    lam.put_function_event_invoke_config(FunctionName="failing-once", MaximumRetryAttempts=0)
    once = lam.invoke(FunctionName="failing-once", InvocationType="Event", Payload=b'{"n": 6}')["ResponseMetadata"]["RequestId"]
    assert json.loads(drain(sqs, dlq_url, 1)[0]["Body"]) == {"n": 6}
    assert shared.gust("logs", "failing-once").stdout.count(f"START RequestId: {once}") == 1


def test_event_invoke_configuration_operations(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    _, arn = queue(sqs, "config-target")
    create(lam, "configured", ECHO)
    lam.publish_version(FunctionName="configured")
    lam.create_alias(FunctionName="configured", Name="live", FunctionVersion="1")
    status, code, message = error_of(lambda: lam.get_function_event_invoke_config(FunctionName="configured"))
    assert (status, code) == (404, "ResourceNotFoundException")
    assert "doesn't have an EventInvokeConfig" in message
    put = lam.put_function_event_invoke_config(FunctionName="configured", MaximumRetryAttempts=1,
                                               MaximumEventAgeInSeconds=120)
    assert put["FunctionArn"].endswith(":function:configured:$LATEST")
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 120)
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    updated = lam.update_function_event_invoke_config(FunctionName="configured",
                                                      DestinationConfig={"OnFailure": {"Destination": arn}})
    assert updated["MaximumRetryAttempts"] == 1 and updated["DestinationConfig"]["OnFailure"] == {"Destination": arn}
    replaced = lam.put_function_event_invoke_config(FunctionName="configured", MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in replaced and replaced["DestinationConfig"]["OnFailure"] == {}
    lam.put_function_event_invoke_config(FunctionName="configured", Qualifier="live", MaximumRetryAttempts=2)
    listed = lam.list_function_event_invoke_configs(FunctionName="configured")["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"].rsplit(":", 1)[1] for c in listed) == ["$LATEST", "live"]
    assert len(lam.list_function_event_invoke_configs(FunctionName="configured", MaxItems=1)["FunctionEventInvokeConfigs"]) == 1
    lam.delete_function_event_invoke_config(FunctionName="configured", Qualifier="live")
    assert error_of(lambda: lam.get_function_event_invoke_config(FunctionName="configured", Qualifier="live"))[0] == 404
    function_arn = lam.get_function(FunctionName="configured")["Configuration"]["FunctionArn"]
    unchecked = shared.client(parameter_validation=False)  # boto3 would refuse some itself
    for kwargs, expected in [
        ({"MaximumRetryAttempts": 3}, "ValidationException"),
        ({"MaximumEventAgeInSeconds": 59}, "ValidationException"),
        ({"DestinationConfig": {"OnSuccess": {"Destination": function_arn}}}, "InvalidParameterValueException"),
        ({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:s3:::a-bucket"}}},
         "InvalidParameterValueException"),
        ({"DestinationConfig": {"OnFailure": {"Destination": "not-an-arn"}}}, "InvalidParameterValueException"),
    ]:
        got = error_of(lambda: unchecked.put_function_event_invoke_config(FunctionName="configured", **kwargs))
        assert got[1] == expected, (kwargs, got)
    assert error_of(lambda: lam.put_function_event_invoke_config(FunctionName="configured", Qualifier="nope"))[0] == 404
    # Events: a missing function is 404 at once; a payload over 1 MB is 413.
    assert error_of(lambda: lam.invoke(FunctionName="missing", InvocationType="Event", Payload=b"{}"))[0] == 404
    big = json.dumps({"x": "y" * (1024 * 1024)})
    assert error_of(lambda: lam.invoke(FunctionName="configured", InvocationType="Event", Payload=big))[0] == 413
    assert error_of(lambda: lam.invoke(FunctionName="configured", InvocationType="Event", Payload=b"{nope"))[0] == 400


def test_kill_9_with_a_thousand_events_waiting_runs_each_after_restart(make_server):
    slow = make_zip({"app.py": "import time\ndef handler(event, context):\n    time.sleep(0.05)\n    return event\n"})
    server = make_server(["--concurrency-limit", "2", "--async-retry-base", "300ms"])
    lam, sqs = server.client(), server.client(service="sqs")
    url, arn = queue(sqs, "ran")
    create(lam, "slow", slow)
    lam.put_function_event_invoke_config(FunctionName="slow", DestinationConfig={"OnSuccess": {"Destination": arn}})
    accepted = []
    lock = threading.Lock()

    def send(start):
        client = server.client()
        for n in range(start, start + 250):
            client.invoke(FunctionName="slow", InvocationType="Event", Payload=json.dumps({"n": n}))
            with lock:
                accepted.append(n)

    threads = [threading.Thread(target=send, args=(i * 250,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 1000
    server.stop(signal.SIGKILL)
    server.process = None
    server.extra_args = ["--concurrency-limit", "8", "--async-retry-base", "300ms"]
    server.start()
    sqs = server.client(service="sqs")
    runs = [json.loads(m["Body"])["requestPayload"]["n"] for m in drain(sqs, url, 1000, timeout=180)]
    assert set(runs) == set(range(1000)), f"{1000 - len(set(runs))} events never ran"
    # Only events in flight at the kill (at most the two that were running) may run twice.
    assert len(runs) - len(set(runs)) <= 2


TIMED = make_zip({"app.py": "import time\ndef handler(event, context):\n    start = time.time()\n"
                            "    time.sleep(event.get('sleep', 0.02))\n"
                            "    return {'n': event.get('n'), 'start': start, 'end': time.time()}\n"})


def test_reserved_concurrency_caps_sync_and_async_work(shared):
    lam, sqs = shared.client(), shared.client(service="sqs")
    create(lam, "reserved", TIMED)
    assert lam.get_function_concurrency(FunctionName="reserved").get("ReservedConcurrentExecutions") is None
    assert lam.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=2)["ReservedConcurrentExecutions"] == 2
    assert lam.get_function(FunctionName="reserved")["Concurrency"] == {"ReservedConcurrentExecutions": 2}
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == settings["ConcurrentExecutions"] - 2
    # The unreserved pool keeps at least 100.
    status, code, message = error_of(lambda: lam.put_function_concurrency(FunctionName="reserved",
                                                                         ReservedConcurrentExecutions=901))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "below its minimum value of [100]" in message
    # Synchronous: 5 slow invokes at once, reserved 2 → 2 run, 3 are throttled with the reason.
    invoke(lam, "reserved", {"sleep": 0.01})  # one warm environment
    results = []

    def call():
        try:
            lam.invoke(FunctionName="reserved", Payload=json.dumps({"sleep": 1.5}))
            results.append("ran")
        except lam.exceptions.TooManyRequestsException as error:
            results.append(error.response.get("Reason"))

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert sorted(results) == ["ReservedFunctionConcurrentInvocationLimitExceeded"] * 3 + ["ran"] * 2, results
    # Asynchronous with reserved 1: all of 100 events run, one at a time.
    url, arn = queue(sqs, "reserved-records")
    lam.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=1)
    lam.put_function_event_invoke_config(FunctionName="reserved", DestinationConfig={"OnSuccess": {"Destination": arn}})
    for n in range(100):
        lam.invoke(FunctionName="reserved", InvocationType="Event", Payload=json.dumps({"n": n}))
    runs = [json.loads(m["Body"])["responsePayload"] for m in drain(sqs, url, 100, timeout=120)]
    assert sorted(r["n"] for r in runs) == list(range(100))
    spans = sorted((r["start"], r["end"]) for r in runs)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), "two ran at once"
    # Reserved 0 stops the function: events wait (they are not lost) until it may run again.
    lam.put_function_concurrency(FunctionName="reserved", ReservedConcurrentExecutions=0)
    assert error_of(lambda: lam.invoke(FunctionName="reserved", Payload=b"{}"))[0] == 429
    for n in range(100, 103):
        lam.invoke(FunctionName="reserved", InvocationType="Event", Payload=json.dumps({"n": n}))
    assert drain(sqs, url, 1, timeout=3) == []
    lam.delete_function_concurrency(FunctionName="reserved")
    assert "Concurrency" not in lam.get_function(FunctionName="reserved")
    later = [json.loads(m["Body"])["responsePayload"]["n"] for m in drain(sqs, url, 3, timeout=60)]
    assert sorted(later) == [100, 101, 102]


def invoke(lam, name, event):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def test_events_held_back_expire_at_their_maximum_age(shared):
    """Reserved 0 holds the events back; at MaximumEventAgeInSeconds they leave through the
    failure path (EventAgeExceeded, no response: the function never ran)."""
    lam, sqs = shared.client(), shared.client(service="sqs")
    url, arn = queue(sqs, "expired-records")
    create(lam, "held", ECHO)
    lam.put_function_concurrency(FunctionName="held", ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(FunctionName="held", MaximumEventAgeInSeconds=60,
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    request_id = lam.invoke(FunctionName="held", InvocationType="Event",
                            Payload=b'{"old": true}')["ResponseMetadata"]["RequestId"]
    started = time.time()
    records = [json.loads(m["Body"]) for m in drain(sqs, url, 1, timeout=90)]
    assert time.time() - started >= 55
    record = records[0]
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == {"old": True}
    assert "responseContext" not in record and "responsePayload" not in record
    assert "START" not in shared.gust("logs", "held").stdout

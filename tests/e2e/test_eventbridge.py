"""EventBridge rules and EventBridge Scheduler, driven by boto3 and the aws CLI: events
routed by pattern to a function and a queue, Lambda's resource policy for the rule, an
`at()` schedule firing once and deleting itself, schedule groups, and restart
persistence."""

import datetime
import json
import signal
import time

import pytest

from conftest import create, error_of, make_zip, module_server

RECORDER = make_zip({"app.py": "import json\ndef handler(event, context):\n"
                               "    print('EVENT ' + json.dumps(event))\n"})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "eventbridge", ["--events-retry-base", "200ms"])


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


def logged_events(server, function):
    out = server.gust("logs", function).stdout
    return [json.loads(line.split("EVENT ", 1)[1]) for line in out.splitlines() if "EVENT " in line]


def wait_for(check, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    return check()


def test_rules_route_events_by_pattern_to_a_function_and_a_queue(shared):
    lam, sqs, events = shared.client(), shared.client(service="sqs"), shared.client(service="events")
    function_arn = create(lam, "eb-orders", RECORDER)["FunctionArn"]
    create(lam, "eb-unpermitted", RECORDER)
    url, queue_arn = queue(sqs, "eb-orders")
    pattern = {"source": ["shop"], "detail": {"amount": [{"numeric": [">", 100]}]}}
    rule_arn = events.put_rule(Name="big-orders", EventPattern=json.dumps(pattern))["RuleArn"]
    assert rule_arn == "arn:aws:events:us-east-1:000000000000:rule/big-orders"
    # The function's policy must allow events.amazonaws.com for this rule.
    lam.add_permission(FunctionName="eb-orders", StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn)
    added = events.put_targets(Rule="big-orders", Targets=[
        {"Id": "fn", "Arn": function_arn},
        {"Id": "q", "Arn": queue_arn},
        {"Id": "nope", "Arn": lam.get_function(FunctionName="eb-unpermitted")["Configuration"]["FunctionArn"]},
    ])
    assert added["FailedEntryCount"] == 0
    put = events.put_events(Entries=[
        {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"amount": 150, "id": "a"})},
        {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"amount": 5, "id": "b"})},
        {"Source": "elsewhere", "DetailType": "order", "Detail": json.dumps({"amount": 500, "id": "c"})},
        {"Source": "shop", "DetailType": "order", "Detail": "not json"},
    ])
    assert put["FailedEntryCount"] == 1
    assert [bool(e.get("EventId")) for e in put["Entries"]] == [True, True, True, False]
    assert put["Entries"][3]["ErrorCode"] == "MalformedDetail"
    # Only the matching event reaches the queue, as EventBridge's envelope.
    body = json.loads(drain(sqs, url, 1)[0]["Body"])
    assert body["detail"] == {"amount": 150, "id": "a"}
    assert (body["source"], body["detail-type"], body["account"], body["region"], body["version"]) == (
        "shop", "order", "000000000000", "us-east-1", "0")
    assert body["id"] == put["Entries"][0]["EventId"] and body["time"].endswith("Z")
    assert drain(sqs, url, 1, timeout=2) == []
    # And to the function, asynchronously; the function without permission gets nothing.
    seen = wait_for(lambda: logged_events(shared, "eb-orders"))
    assert [e["detail"]["id"] for e in seen] == ["a"]
    time.sleep(1)
    assert logged_events(shared, "eb-unpermitted") == []
    # The rule's API.
    described = events.describe_rule(Name="big-orders")
    assert described["State"] == "ENABLED" and json.loads(described["EventPattern"]) == pattern
    assert sorted(t["Id"] for t in events.list_targets_by_rule(Rule="big-orders")["Targets"]) == ["fn", "nope", "q"]
    assert events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps({
        "id": "1", "account": "000000000000", "source": "shop", "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1", "resources": [], "detail-type": "x", "detail": {"amount": 101}}))["Result"] is True
    assert error_of(lambda: events.delete_rule(Name="big-orders"))[:2] == (400, "ValidationException")
    assert error_of(lambda: events.put_rule(Name="bad", EventPattern="{\"source\": \"shop\"}"))[:2] == (
        400, "InvalidEventPatternException")
    listed = json.loads(shared.aws("events", "list-rules").stdout)
    assert [r["Name"] for r in listed["Rules"]] == ["big-orders"]
    events.disable_rule(Name="big-orders")
    events.put_events(Entries=[{"Source": "shop", "DetailType": "order", "Detail": json.dumps({"amount": 900})}])
    assert drain(sqs, url, 1, timeout=2) == [], "a disabled rule routes nothing"
    events.remove_targets(Rule="big-orders", Ids=["fn", "q", "nope"])
    events.delete_rule(Name="big-orders")


def test_an_at_schedule_fires_once_and_deletes_itself(shared):
    lam, sqs, scheduler = shared.client(), shared.client(service="sqs"), shared.client(service="scheduler")
    url, queue_arn = queue(sqs, "scheduled")
    function_arn = create(lam, "sched-fn", RECORDER)["FunctionArn"]
    at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    role = "arn:aws:iam::000000000000:role/scheduler"
    created = scheduler.create_schedule(
        Name="once", ScheduleExpression=f"at({at})", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": queue_arn, "RoleArn": role, "Input": json.dumps({"hello": "scheduler"})},
        ActionAfterCompletion="DELETE")
    assert created["ScheduleArn"] == "arn:aws:scheduler:us-east-1:000000000000:schedule/default/once"
    scheduler.create_schedule(
        Name="once-fn", ScheduleExpression=f"at({at})", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn, "RoleArn": role, "Input": json.dumps({"job": "cleanup"})})
    # The seed's nightly cleanup, in a time zone.
    scheduler.create_schedule(
        Name="nightly", ScheduleExpression="cron(0 2 * * ? *)", ScheduleExpressionTimezone="America/New_York",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
        Target={"Arn": function_arn, "RoleArn": role})
    got = scheduler.get_schedule(Name="nightly")
    assert got["ScheduleExpressionTimezone"] == "America/New_York" and got["State"] == "ENABLED"
    assert error_of(lambda: scheduler.create_schedule(
        Name="bad", ScheduleExpression="cron(0 2 * * * *)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn, "RoleArn": role}))[:2] == (400, "ValidationException")
    messages = drain(sqs, url, 1, timeout=15)
    assert [json.loads(m["Body"]) for m in messages] == [{"hello": "scheduler"}]
    assert drain(sqs, url, 1, timeout=2) == [], "fired once"
    assert wait_for(lambda: logged_events(shared, "sched-fn")) == [{"job": "cleanup"}]
    # Completed and ActionAfterCompletion DELETE: gone.
    assert wait_for(lambda: error_of(lambda: scheduler.get_schedule(Name="once"))[0] == 404, 10)
    names = {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
    assert {"once-fn", "nightly"} <= names and "once" not in names
    # Groups.
    scheduler.create_schedule_group(Name="team")
    assert {g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]} == {"default", "team"}
    assert error_of(lambda: scheduler.delete_schedule_group(Name="default"))[0] == 400
    listed = json.loads(shared.aws("scheduler", "list-schedules").stdout)
    assert {"once-fn", "nightly"} <= {s["Name"] for s in listed["Schedules"]}


def test_rules_and_schedules_survive_a_restart(make_server):
    server = make_server(["--events-retry-base", "200ms"])
    events, scheduler, sqs = server.client(service="events"), server.client(service="scheduler"), server.client(service="sqs")
    url, queue_arn = queue(sqs, "after")
    events.put_rule(Name="keep", EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="keep", Targets=[{"Id": "q", "Arn": queue_arn}])
    scheduler.create_schedule(Name="daily", ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": queue_arn, "RoleArn": "arn:aws:iam::000000000000:role/s"})
    server.stop(signal.SIGKILL)
    server.process = None
    server.start()
    events, scheduler, sqs = server.client(service="events"), server.client(service="scheduler"), server.client(service="sqs")
    assert events.describe_rule(Name="keep")["State"] == "ENABLED"
    assert scheduler.get_schedule(Name="daily")["ScheduleExpression"] == "rate(1 day)"
    events.put_events(Entries=[{"Source": "app", "DetailType": "ping", "Detail": "{}"}])
    assert json.loads(drain(sqs, url, 1)[0]["Body"])["detail-type"] == "ping"


def test_a_bus_as_an_asynchronous_destination(shared):
    lam, sqs, events = shared.client(), shared.client(service="sqs"), shared.client(service="events")
    url, queue_arn = queue(sqs, "results")
    events.put_rule(Name="lambda-results", EventPattern=json.dumps({
        "source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Success"]}))
    events.put_targets(Rule="lambda-results", Targets=[{"Id": "q", "Arn": queue_arn}])
    create(lam, "to-bus", make_zip({"app.py": "def handler(event, context):\n    return {'doubled': event['n'] * 2}\n"}))
    lam.put_function_event_invoke_config(FunctionName="to-bus", DestinationConfig={
        "OnSuccess": {"Destination": "arn:aws:events:us-east-1:000000000000:event-bus/default"}})
    lam.invoke(FunctionName="to-bus", InvocationType="Event", Payload=json.dumps({"n": 21}))
    event = json.loads(drain(sqs, url, 1)[0]["Body"])
    assert event["source"] == "lambda"
    assert event["detail-type"] == "Lambda Function Invocation Result - Success"
    assert event["detail"]["responsePayload"] == {"doubled": 42}
    assert event["detail"]["requestContext"]["condition"] == "Success"


def test_a_scheduled_rule_fires_a_scheduled_event(shared):
    """The seed's warm-up pattern at the shortest schedule a test can wait for: a rule that
    fires every minute invokes its function with AWS's "Scheduled Event"."""
    lam, events = shared.client(), shared.client(service="events")
    function_arn = create(lam, "warm-up", RECORDER)["FunctionArn"]
    rule_arn = events.put_rule(Name="every-minute", ScheduleExpression="cron(* * * * ? *)")["RuleArn"]
    lam.add_permission(FunctionName="warm-up", StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn)
    events.put_targets(Rule="every-minute", Targets=[{"Id": "fn", "Arn": function_arn}])
    assert error_of(lambda: events.put_rule(Name="too-often", ScheduleExpression="rate(30 seconds)"))[:2] == (
        400, "ValidationException")
    fired = wait_for(lambda: logged_events(shared, "warm-up"), 75)
    assert fired, "the rule did not fire within a minute"
    event = fired[0]
    assert (event["detail-type"], event["source"], event["detail"]) == ("Scheduled Event", "aws.events", {})
    assert event["resources"] == [rule_arn] and event["time"].endswith(":00Z")
    events.remove_targets(Rule="every-minute", Ids=["fn"])

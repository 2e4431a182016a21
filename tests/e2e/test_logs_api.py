"""CloudWatch Logs through boto3 and the aws CLI: groups and streams, PutLogEvents with
its rejections, GetLogEvents' tokens, FilterLogEvents with patterns, retention deleting
old events, tags, and the errors for what does not exist."""

import json
import time

import pytest

from conftest import error_of, module_server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "logs")


def now_ms():
    return int(time.time() * 1000)


def test_groups_streams_and_events(shared):
    logs = shared.client(service="logs")
    logs.create_log_group(logGroupName="/e2e/app", tags={"team": "core"})
    logs.create_log_stream(logGroupName="/e2e/app", logStreamName="web-1")
    logs.create_log_stream(logGroupName="/e2e/app", logStreamName="web-2")

    group = logs.describe_log_groups(logGroupNamePrefix="/e2e/app")["logGroups"][0]
    assert group["logGroupName"] == "/e2e/app"
    assert group["arn"].endswith(":log-group:/e2e/app:*")
    assert group["logGroupArn"] == group["arn"][:-2]
    assert group["logGroupClass"] == "STANDARD"
    assert "retentionInDays" not in group
    assert logs.list_tags_log_group(logGroupName="/e2e/app")["tags"] == {"team": "core"}
    logs.tag_resource(resourceArn=group["logGroupArn"], tags={"env": "test"})
    assert logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"] == {
        "team": "core", "env": "test"}

    t = now_ms() - 10_000
    lines = ["INFO started", "ERROR disk full", '{"level": "error", "latency": 750}',
             "WARN slow request", '{"level": "info", "latency": 20}']
    put = logs.put_log_events(logGroupName="/e2e/app", logStreamName="web-1",
                              logEvents=[{"timestamp": t + i, "message": m} for i, m in enumerate(lines)])
    assert put["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in put
    logs.put_log_events(logGroupName="/e2e/app", logStreamName="web-2",
                        logEvents=[{"timestamp": t + 100, "message": "ERROR on web-2"}])

    # Rejections: too old (15 days) and too new (3 hours ahead) in separate batches.
    old = logs.put_log_events(logGroupName="/e2e/app", logStreamName="web-2",
                              logEvents=[{"timestamp": now_ms() - 15 * 86_400_000, "message": "old"}])
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    new = logs.put_log_events(logGroupName="/e2e/app", logStreamName="web-2",
                              logEvents=[{"timestamp": now_ms(), "message": "now"},
                                         {"timestamp": now_ms() + 3 * 3_600_000, "message": "new"}])
    assert new["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}

    err = error_of(lambda: logs.put_log_events(
        logGroupName="/e2e/app", logStreamName="web-1",
        logEvents=[{"timestamp": t + 5, "message": "b"}, {"timestamp": t, "message": "a"}]))
    assert err[:2] == (400, "InvalidParameterException")
    assert "chronological order" in err[2]

    streams = logs.describe_log_streams(logGroupName="/e2e/app", orderBy="LastEventTime",
                                        descending=True)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["web-2", "web-1"]
    assert streams[1]["firstEventTimestamp"] == t
    assert streams[1]["lastEventTimestamp"] == t + 4

    # GetLogEvents: newest page first; forward tokens until the token repeats.
    page = logs.get_log_events(logGroupName="/e2e/app", logStreamName="web-1", limit=2)
    assert [e["message"] for e in page["events"]] == lines[3:]
    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName="/e2e/app", logStreamName="web-1", limit=2, **kwargs)
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == lines

    # FilterLogEvents: exactly the matching lines, across streams, in time order.
    found = logs.filter_log_events(logGroupName="/e2e/app", filterPattern="ERROR")["events"]
    assert [(e["logStreamName"], e["message"]) for e in found] == [
        ("web-1", "ERROR disk full"), ("web-2", "ERROR on web-2")]
    assert all(e["eventId"] and e["ingestionTime"] for e in found)
    found = logs.filter_log_events(logGroupName="/e2e/app",
                                   filterPattern='{ $.level = "error" && $.latency > 500 }')["events"]
    assert [e["message"] for e in found] == [lines[2]]
    found = logs.filter_log_events(logGroupName="/e2e/app", filterPattern="?WARN ?INFO",
                                   logStreamNames=["web-1"])["events"]
    assert [e["message"] for e in found] == ["INFO started", "WARN slow request"]
    paginated = [e["message"] for p in logs.get_paginator("filter_log_events").paginate(
        logGroupName="/e2e/app", startTime=t, endTime=t + 1000, PaginationConfig={"PageSize": 2})
        for e in p["events"]]
    assert paginated == lines[:5] + ["ERROR on web-2"]
    err = error_of(lambda: logs.filter_log_events(logGroupName="/e2e/app", filterPattern="{ $.a = "))
    assert err == (400, "InvalidParameterException", "Invalid filter pattern")


def test_retention_removes_old_events(shared):
    logs = shared.client(service="logs")
    logs.create_log_group(logGroupName="retained")
    logs.create_log_stream(logGroupName="retained", logStreamName="s")
    three_days = now_ms() - 3 * 86_400_000
    logs.put_log_events(logGroupName="retained", logStreamName="s",
                        logEvents=[{"timestamp": three_days + i, "message": f"old {i}"} for i in range(3)])
    logs.put_log_events(logGroupName="retained", logStreamName="s",
                        logEvents=[{"timestamp": now_ms(), "message": "fresh"}])
    assert len(logs.filter_log_events(logGroupName="retained")["events"]) == 4
    logs.put_retention_policy(logGroupName="retained", retentionInDays=1)
    assert [e["message"] for e in logs.filter_log_events(logGroupName="retained")["events"]] == ["fresh"]
    group = logs.describe_log_groups(logGroupNamePrefix="retained")["logGroups"][0]
    assert group["retentionInDays"] == 1
    err = error_of(lambda: logs.put_retention_policy(logGroupName="retained", retentionInDays=2))
    assert err[:2] == (400, "InvalidParameterException")
    logs.delete_retention_policy(logGroupName="retained")
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix="retained")["logGroups"][0]


def test_errors_for_missing_and_invalid(shared):
    logs = shared.client(service="logs")
    missing = (400, "ResourceNotFoundException", "The specified log group does not exist.")
    assert error_of(lambda: logs.describe_log_streams(logGroupName="nope")) == missing
    assert error_of(lambda: logs.get_log_events(logGroupName="nope", logStreamName="s")) == missing
    assert error_of(lambda: logs.filter_log_events(logGroupName="nope")) == missing
    assert error_of(lambda: logs.delete_log_group(logGroupName="nope")) == missing
    logs.create_log_group(logGroupName="dup")
    assert error_of(lambda: logs.create_log_group(logGroupName="dup")) == (
        400, "ResourceAlreadyExistsException", "The specified log group already exists")
    assert error_of(lambda: logs.put_log_events(
        logGroupName="dup", logStreamName="none", logEvents=[{"timestamp": now_ms(), "message": "x"}])) == (
        400, "ResourceNotFoundException", "The specified log stream does not exist.")
    err = error_of(lambda: logs.create_log_group(logGroupName="bad name"))
    assert err[:2] == (400, "InvalidParameterException")
    assert "regular expression pattern" in err[2]
    err = error_of(lambda: logs.describe_log_streams(logGroupName="dup", orderBy="LastEventTime",
                                                     logStreamNamePrefix="x"))
    assert err[:2] == (400, "InvalidParameterException")


def test_aws_cli_filter_log_events(shared):
    logs = shared.client(service="logs")
    logs.create_log_group(logGroupName="cli")
    logs.create_log_stream(logGroupName="cli", logStreamName="s")
    t = now_ms()
    logs.put_log_events(logGroupName="cli", logStreamName="s", logEvents=[
        {"timestamp": t, "message": "user=ann action=login"},
        {"timestamp": t + 1, "message": "user=bob action=logout"},
        {"timestamp": t + 2, "message": "user=ann action=logout"}])
    out = shared.aws("logs", "filter-log-events", "--log-group-name", "cli",
                     "--filter-pattern", "user=ann")
    events = json.loads(out.stdout)["events"]
    assert [e["message"] for e in events] == ["user=ann action=login", "user=ann action=logout"]
    out = shared.aws("logs", "get-log-events", "--log-group-name", "cli", "--log-stream-name", "s",
                     "--start-from-head")
    assert len(json.loads(out.stdout)["events"]) == 3

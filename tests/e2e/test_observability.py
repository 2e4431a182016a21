"""What functions produce, as a Lambda user watches it: their output and platform lines in
CloudWatch Logs (`/aws/lambda/<name>` or `LoggingConfig.LogGroup`, one stream per
execution environment named as Lambda names it), read with boto3, the aws CLI v1
(`filter-log-events`), the aws CLI v2 (`logs tail`, Debian's awscli 2 when installed) and
`gust logs`; and the AWS/Lambda metrics of real invocations through CloudWatch
(`GetMetricStatistics` sums equal the invokes made, p99 within the measured range,
`GetMetricData` with math, dimensions by version and alias). One server for the module."""

import datetime
import json
import re
import shutil
import subprocess
import time

import boto3
import pytest
from botocore.config import Config
from conftest import create, make_zip, module_server

AWS_V2 = shutil.which("aws", path="/usr/bin")

CODE = make_zip({"app.py": r'''
import json, time
def handler(event, context):
    print("handled", json.dumps(event))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"ok": True}
'''})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from module_server(tmp_path_factory, "observability")


@pytest.fixture(scope="module")
def lam(server):
    return server.client()


@pytest.fixture(scope="module")
def logs(server):
    return server.client(service="logs")


@pytest.fixture(scope="module")
def cloudwatch(server):
    return server.client(service="cloudwatch")


def invoke(lam, name, payload, qualifier=None):
    params = dict(FunctionName=name, Payload=json.dumps(payload).encode())
    if qualifier:
        params["Qualifier"] = qualifier
    response = lam.invoke(**params)
    response["Payload"].read()
    return response


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_function_output_lands_in_its_log_group(server, lam, logs):
    create(lam, "obs-logs", CODE)
    for i in range(3):
        invoke(lam, "obs-logs", {"n": i})
    group = "/aws/lambda/obs-logs"
    groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    assert groups[0]["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"

    streams = wait_for(lambda: logs.describe_log_streams(logGroupName=group)["logStreams"])
    assert len(streams) == 1, streams  # one warm environment served all three
    name = streams[0]["logStreamName"]
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
    assert re.fullmatch(re.escape(today) + r"/\[\$LATEST\][0-9a-f]{32}", name), name

    def messages():
        events = logs.get_log_events(logGroupName=group, logStreamName=name,
                                     startFromHead=True)["events"]
        return [e["message"] for e in events]

    lines = wait_for(lambda: (m := messages()) and sum("REPORT" in x for x in m) == 3 and m)
    assert lines, messages()
    assert lines[0].startswith("INIT_START Runtime Version: ") and "python3.12" in lines[0]
    starts = [line for line in lines if line.startswith("START RequestId: ")]
    ends = [line for line in lines if line.startswith("END RequestId: ")]
    assert len(starts) == len(ends) == 3
    assert sum(line.startswith('handled {"n": ') for line in lines) == 3

    # A filter pattern finds exactly the matching lines.
    found = logs.filter_log_events(logGroupName=group, filterPattern='"handled" "1"')["events"]
    assert [e["message"] for e in found] == ['handled {"n": 1}']
    assert found[0]["logStreamName"] == name
    reports = logs.filter_log_events(logGroupName=group, filterPattern="REPORT")["events"]
    assert len(reports) == 3 and all("Billed Duration" in e["message"] for e in reports)

    # The same store through the aws CLI v1 and gust logs.
    cli = json.loads(server.aws("logs", "filter-log-events", "--log-group-name", group,
                                "--filter-pattern", '?"START RequestId" ?"END RequestId"').stdout)
    assert len(cli["events"]) == 6, cli["events"]
    tail = server.gust("logs", "obs-logs").stdout
    assert 'handled {"n": 2}' in tail and "REPORT RequestId:" in tail


def test_a_custom_log_group_and_json_format(lam, logs):
    create(lam, "obs-custom", CODE,
           LoggingConfig={"LogGroup": "/custom/obs", "LogFormat": "JSON"})
    invoke(lam, "obs-custom", {"json": 1})

    def records():
        try:
            events = logs.filter_log_events(logGroupName="/custom/obs")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in events]

    lines = wait_for(lambda: (r := records()) and any('"platform.report"' in x for x in r) and r)
    assert lines, records()
    kinds = [json.loads(line).get("type") for line in lines if line.startswith("{")]
    assert {"platform.initStart", "platform.start", "platform.report"} <= set(kinds)
    # A JSON property filter on the platform records.
    found = logs.filter_log_events(logGroupName="/custom/obs",
                                   filterPattern='{ $.type = "platform.report" }')["events"]
    assert len(found) == 1
    assert json.loads(found[0]["message"])["record"]["metrics"]["durationMs"] >= 0
    none = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/obs-custom")["logGroups"]
    assert none == []


@pytest.mark.skipif(AWS_V2 is None, reason="the aws CLI v2 (Debian's awscli) is not installed")
def test_aws_cli_v2_logs_tail_follows(server, lam):
    create(lam, "obs-tail", CODE)
    invoke(lam, "obs-tail", {"first": 1})
    env = server.aws_env()
    version = subprocess.run([AWS_V2, "--version"], capture_output=True, text=True, env=env)
    assert version.stdout.startswith("aws-cli/2."), version.stdout
    # The first invocation's lines, at once.
    once = subprocess.run(
        [AWS_V2, "--endpoint-url", server.endpoint, "logs", "tail", "/aws/lambda/obs-tail",
         "--since", "10m", "--format", "short"],
        capture_output=True, text=True, env=env, timeout=60)
    assert once.returncode == 0, once.stderr
    assert 'handled {"first": 1}' in once.stdout
    # --follow sees a line logged after it started.
    follow = subprocess.Popen(
        [AWS_V2, "--endpoint-url", server.endpoint, "logs", "tail", "/aws/lambda/obs-tail",
         "--follow", "--since", "10m", "--format", "short"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(2)
        invoke(lam, "obs-tail", {"second": 2})
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline and 'handled {"second": 2}' not in seen:
            line = follow.stdout.readline()
            if not line:
                break
            seen += line
        assert 'handled {"second": 2}' in seen, seen
    finally:
        follow.kill()
        follow.wait()


def test_lambda_metrics_count_what_was_invoked(lam, cloudwatch):
    create(lam, "obs-metrics", CODE)
    lam.publish_version(FunctionName="obs-metrics")
    lam.create_alias(FunctionName="obs-metrics", Name="live", FunctionVersion="1")
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=2)
    for i in range(8):
        invoke(lam, "obs-metrics", {"i": i})
    for i in range(2):
        invoke(lam, "obs-metrics", {"fail": True})
    for i in range(5):
        invoke(lam, "obs-metrics", {"sleep": 0.02 * (i + 1)}, qualifier="live")
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)
    function = [{"Name": "FunctionName", "Value": "obs-metrics"}]

    def statistic(metric, dimensions, stats=("Sum",), extended=None):
        params = dict(Namespace="AWS/Lambda", MetricName=metric, Dimensions=dimensions,
                      StartTime=start, EndTime=end, Period=60)
        if stats:
            params["Statistics"] = list(stats)
        if extended:
            params["ExtendedStatistics"] = extended
        return cloudwatch.get_metric_statistics(**params)["Datapoints"]

    def total(metric, dimensions):
        return sum(p["Sum"] for p in statistic(metric, dimensions))

    assert wait_for(lambda: total("Invocations", function) == 15), statistic("Invocations", function)
    assert total("Errors", function) == 2
    resource = [{"Name": "FunctionName", "Value": "obs-metrics"},
                {"Name": "Resource", "Value": "obs-metrics:live"}]
    assert total("Invocations", resource) == 5
    executed = [{"Name": "FunctionName", "Value": "obs-metrics"},
                {"Name": "ExecutedVersion", "Value": "1"}]
    assert total("Invocations", executed) == 5
    # Duration: the alias's invocations slept 20..100 ms; p99 lies within what ran.
    durations = statistic("Duration", resource, stats=("Minimum", "Maximum", "SampleCount"),
                          extended=["p99"])
    assert sum(p["SampleCount"] for p in durations) == 5
    low = min(p["Minimum"] for p in durations)
    high = max(p["Maximum"] for p in durations)
    assert 20 <= low and high < 2000, durations
    for point in durations:
        assert point["Unit"] == "Milliseconds"
        assert low * 0.98 <= point["ExtendedStatistics"]["p99"] <= high * 1.02, point

    # GetMetricData: the error rate as metric math.
    data = cloudwatch.get_metric_data(
        StartTime=start, EndTime=end,
        MetricDataQueries=[
            {"Id": "invocations", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations",
                           "Dimensions": function}, "Period": 600, "Stat": "Sum"}},
            {"Id": "errors", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors",
                           "Dimensions": function}, "Period": 600, "Stat": "Sum"}},
            {"Id": "rate", "Expression": "100 * errors / invocations", "Label": "Error rate"},
        ])["MetricDataResults"]
    assert [r["Id"] for r in data] == ["rate"]
    assert data[0]["Label"] == "Error rate"
    assert sum(data[0]["Values"]) == pytest.approx(100 * 2 / 15)

    listed = cloudwatch.list_metrics(Namespace="AWS/Lambda", MetricName="Invocations",
                                     Dimensions=[{"Name": "FunctionName",
                                                  "Value": "obs-metrics"}])["Metrics"]
    dimension_sets = {tuple(sorted(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert {("FunctionName",), ("FunctionName", "Resource"),
            ("ExecutedVersion", "FunctionName")} <= dimension_sets


def test_throttles_are_counted(server, lam, cloudwatch):
    create(lam, "obs-throttled", CODE)
    key, secret = server.credentials
    # No retries at all (legacy `max_attempts` would retry a 429 once).
    lam = boto3.client("lambda", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id=key, aws_secret_access_key=secret,
                       config=Config(retries={"total_max_attempts": 1}))
    lam.put_function_concurrency(FunctionName="obs-throttled", ReservedConcurrentExecutions=0)
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    for _ in range(3):
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            lam.invoke(FunctionName="obs-throttled", Payload=b"{}")
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)

    def throttles():
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Throttles",
            Dimensions=[{"Name": "FunctionName", "Value": "obs-throttled"}],
            StartTime=start, EndTime=end, Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert wait_for(lambda: throttles() == 3), throttles()


def test_large_put_metric_data_is_gzipped_by_botocore_and_accepted(cloudwatch):
    # botocore compresses PutMetricData bodies of 10 KB or more (`requestcompression`).
    now = datetime.datetime.now(datetime.timezone.utc)
    data = [{"MetricName": "Big", "Dimensions": [{"Name": "Part", "Value": str(i % 4)}],
             "Timestamp": now, "Value": float(i), "Unit": "Count"} for i in range(400)]
    for chunk in range(0, 400, 200):
        cloudwatch.put_metric_data(Namespace="Gust/Test", MetricData=data[chunk:chunk + 200])
    total = 0
    for part in range(4):
        points = cloudwatch.get_metric_statistics(
            Namespace="Gust/Test", MetricName="Big",
            Dimensions=[{"Name": "Part", "Value": str(part)}],
            StartTime=now - datetime.timedelta(minutes=2),
            EndTime=now + datetime.timedelta(minutes=2), Period=60,
            Statistics=["SampleCount", "Sum"])["Datapoints"]
        total += sum(p["Sum"] for p in points)
    assert total == sum(range(400))


def test_the_request_id_is_the_one_the_function_sees(lam):
    create(lam, "obs-request-id", make_zip({"app.py": (
        "def handler(event, context):\n    return context.aws_request_id\n")}))
    response = lam.invoke(FunctionName="obs-request-id", Payload=b"{}")
    seen = json.loads(response["Payload"].read())
    assert seen == response["ResponseMetadata"]["RequestId"]


def test_a_bucket_named_console_is_s3s_and_the_console_stays(server):
    s3 = server.client(service="s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="console")
    s3.put_object(Bucket="console", Key="index.html", Body=b"mine")
    assert s3.get_object(Bucket="console", Key="index.html")["Body"].read() == b"mine"
    import urllib.request
    with urllib.request.urlopen(f"{server.endpoint}/console/login") as page:
        assert page.status == 200 and b"<" in page.read()


def test_content_on_the_consoles_origin_is_sandboxed(server, lam):
    """A path-form function URL shares the console's origin: what it returns runs in an
    opaque origin (CSP sandbox), so its scripts cannot use a signed-in console session."""
    create(lam, "obs-page", make_zip({"app.py": (
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'headers': {'content-type': 'text/html'},\n"
        "            'body': '<script>fetch(\"/console/api/session\")</script>'}\n")}))
    url = lam.create_function_url_config(FunctionName="obs-page", AuthType="NONE")["FunctionUrl"]
    lam.add_permission(FunctionName="obs-page", StatementId="url",
                       Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName="obs-page", StatementId="invoke",
                       Action="lambda:InvokeFunction", Principal="*", InvokedViaFunctionUrl=True)
    import urllib.request
    assert url.startswith(server.endpoint), url
    with urllib.request.urlopen(url) as page:
        policy = page.headers.get_all("Content-Security-Policy")
    assert any(p.startswith("sandbox") and "allow-same-origin" not in p for p in policy), policy
    s3 = server.client(service="s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="obs-pages")
    s3.put_object(Bucket="obs-pages", Key="a.html", Body=b"<script></script>",
                  ContentType="text/html")
    presigned = s3.generate_presigned_url("get_object",
                                          Params={"Bucket": "obs-pages", "Key": "a.html"})
    with urllib.request.urlopen(presigned) as page:
        assert page.headers["Content-Security-Policy"].startswith("sandbox")

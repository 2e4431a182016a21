"""CloudWatch metrics through boto3: PutMetricData then GetMetricStatistics (sums, a
percentile), GetMetricData with metric math, ListMetrics, and validation errors, over each
of the three protocols CloudWatch speaks (the pinned botocore picks Smithy RPC v2 CBOR;
the JSON and query variants use a copy of its model naming only that protocol)."""

import datetime
import gzip
import json
import random
import uuid
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config

from conftest import error_of, module_server

PROTOCOLS = ["smithy-rpc-v2-cbor", "json", "query"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "metrics")


def model_path(tmp_path_factory, protocol):
    """A botocore data directory whose CloudWatch model speaks only `protocol`."""
    root = tmp_path_factory.mktemp(f"model-{protocol}")
    source = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"
    model = json.loads(gzip.decompress((source / "service-2.json.gz").read_bytes()))
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    target = root / "cloudwatch" / "2010-08-01"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return root


@pytest.fixture(scope="module", params=PROTOCOLS)
def cw(request, shared, tmp_path_factory):
    key, secret = shared.credentials
    session = botocore.session.get_session()
    if request.param != PROTOCOLS[0]:
        session.set_config_variable("data_path", str(model_path(tmp_path_factory, request.param)))
    client = boto3.Session(botocore_session=session).client(
        "cloudwatch", endpoint_url=shared.endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}))
    assert client.meta.service_model.protocol == request.param
    return client


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def test_put_then_statistics(cw):
    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    dims = [{"Name": "Service", "Value": "api"}]
    at = now() - datetime.timedelta(minutes=2)
    values = [random.uniform(1, 1000) for _ in range(300)]
    for start in range(0, 300, 150):
        cw.put_metric_data(Namespace=namespace, MetricData=[{
            "MetricName": "Latency", "Dimensions": dims, "Timestamp": at,
            "Values": values[start:start + 150], "Unit": "Milliseconds"}])
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": "Latency", "Dimensions": dims, "Timestamp": at, "Value": 5.0,
         "Unit": "Milliseconds"}])
    stats = cw.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", Dimensions=dims,
        StartTime=at - datetime.timedelta(minutes=10), EndTime=now() + datetime.timedelta(minutes=1),
        Period=3600, Statistics=["Sum", "SampleCount", "Maximum"], ExtendedStatistics=["p99"])
    assert stats["Label"] == "Latency"
    [point] = stats["Datapoints"]
    assert point["SampleCount"] == 301
    assert point["Sum"] == pytest.approx(sum(values) + 5.0)
    assert point["Maximum"] == pytest.approx(max(values))
    assert point["Unit"] == "Milliseconds"
    exact = sorted(values + [5.0])[297]
    assert min(values) <= point["ExtendedStatistics"]["p99"] <= max(values)
    assert point["ExtendedStatistics"]["p99"] == pytest.approx(exact, rel=0.02)
    # Another dimension set is another metric.
    other = cw.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", StartTime=at - datetime.timedelta(minutes=10),
        EndTime=now(), Period=60, Statistics=["Sum"])
    assert other["Datapoints"] == []


def test_metric_data_math_and_list(cw):
    namespace = f"Test/{uuid.uuid4().hex[:8]}"
    base = now().replace(second=0) - datetime.timedelta(minutes=5)
    data = []
    for host, scale in [("a", 1), ("b", 10)]:
        for minute in range(3):
            data.append({"MetricName": "Requests", "Dimensions": [{"Name": "Host", "Value": host}],
                         "Timestamp": base + datetime.timedelta(minutes=minute),
                         "Value": float(scale * (minute + 1)), "Unit": "Count"})
    cw.put_metric_data(Namespace=namespace, MetricData=data)

    def stat(id, host):
        return {"Id": id, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": "Requests",
                       "Dimensions": [{"Name": "Host", "Value": host}]},
            "Period": 60, "Stat": "Sum"}}

    result = cw.get_metric_data(
        MetricDataQueries=[stat("m1", "a"), stat("m2", "b"),
                           {"Id": "total", "Expression": "SUM(METRICS())", "Label": "Total"},
                           {"Id": "ratio", "Expression": "100 * m1 / m2"}],
        StartTime=base - datetime.timedelta(minutes=10), EndTime=now() + datetime.timedelta(minutes=1),
        ScanBy="TimestampAscending")
    total, ratio = result["MetricDataResults"]
    assert (total["Id"], total["Label"], total["StatusCode"]) == ("total", "Total", "Complete")
    assert total["Values"] == [11.0, 22.0, 33.0]
    assert [t.replace(tzinfo=datetime.timezone.utc) if t.tzinfo is None else t
            for t in total["Timestamps"]][0] == base
    assert ratio["Values"] == [10.0, 10.0, 10.0]

    listed = cw.list_metrics(Namespace=namespace)["Metrics"]
    assert sorted(m["Dimensions"][0]["Value"] for m in listed) == ["a", "b"]
    assert all(m["MetricName"] == "Requests" for m in listed)
    only_b = cw.list_metrics(Namespace=namespace, Dimensions=[{"Name": "Host", "Value": "b"}])
    assert len(only_b["Metrics"]) == 1


def test_validation_errors(cw):
    at = now()
    status, code, message = error_of(lambda: cw.put_metric_data(
        Namespace="AWS/Lambda", MetricData=[{"MetricName": "x", "Value": 1.0}]))
    assert (status, code) == (400, "InvalidParameterValue")
    assert message == "The value AWS/Lambda for parameter Namespace is invalid."
    status, code, message = error_of(lambda: cw.put_metric_data(
        Namespace="Test/v", MetricData=[{"MetricName": "x", "Value": 1.0,
                                         "Timestamp": at - datetime.timedelta(days=15)}]))
    assert (status, code) == (400, "InvalidParameterValue")
    assert message == ("The parameter MetricData.member.1.Timestamp must specify a time within "
                       "the past two weeks.")
    status, code, _ = error_of(lambda: cw.put_metric_data(
        Namespace="Test/v", MetricData=[{"MetricName": "x", "Value": 1.0, "StatisticValues": {
            "SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}]))
    assert (status, code) == (400, "InvalidParameterCombination")
    status, code, message = error_of(lambda: cw.get_metric_statistics(
        Namespace="Test/v", MetricName="x", StartTime=at - datetime.timedelta(days=1), EndTime=at,
        Period=1, Statistics=["Sum"]))
    assert (status, code) == (400, "InvalidParameterCombination")
    assert message.startswith("You have requested up to 86400 datapoints, which exceeds the limit of 1440.")
    status, code, _ = error_of(lambda: cw.get_metric_data(
        MetricDataQueries=[{"Id": "e1", "Expression": "nope * 2"}],
        StartTime=at - datetime.timedelta(hours=1), EndTime=at))
    assert (status, code) == (400, "ValidationError")

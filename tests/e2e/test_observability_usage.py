"""Prometheus and usage as an operator sees them: real invocations show up in `/metrics`
(parsed with the official `prometheus_client` text parser: counters, histograms, gauges),
the scrape obeys `--metrics-access` (open, token, off), and `gust usage` reports the
account's requests, GB-seconds and AWS-equivalent price, with the free tier and with an
operator's `--prices` table."""

import json
import time
import urllib.error
import urllib.request

import pytest
from conftest import create, make_zip, module_server
from prometheus_client.parser import text_string_to_metric_families

CODE = make_zip({"app.py": r'''
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
'''})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from module_server(tmp_path_factory, "observability-usage")


@pytest.fixture(scope="module")
def lam(server):
    return server.client()


def wait_active(lam, name):
    for _ in range(100):
        if lam.get_function_configuration(FunctionName=name)["State"] == "Active":
            return
        time.sleep(0.1)


def fetch(url, headers=None):
    """(status, headers, body text) of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def scrape(server, headers=None):
    """{family name: family} of a successful scrape."""
    status, response_headers, body = fetch(f"{server.endpoint}/metrics", headers)
    assert status == 200, body
    assert response_headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(body)}


def value(families, family, sample_name, **labels):
    """The value of the sample of `family` named `sample_name` with these labels (None if
    absent)."""
    if family not in families:
        return None
    for sample in families[family].samples:
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


def invoke(lam, name, payload):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    response["Payload"].read()
    return response


def test_invocations_show_in_metrics(server, lam):
    name = "prom-fn"
    create(lam, name, CODE, MemorySize=512)
    wait_active(lam, name)
    for _ in range(3):
        invoke(lam, name, {})
    assert invoke(lam, name, {"fail": True}).get("FunctionError") == "Unhandled"
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")

    families = scrape(server)
    assert families["gust_invocations"].type == "counter"
    assert value(families, "gust_invocations", "gust_invocations_total",
                 function=name, status="error") == 1
    assert value(families, "gust_invocation_errors", "gust_invocation_errors_total",
                 function=name) == 1
    assert value(families, "gust_cold_starts", "gust_cold_starts_total", function=name) >= 1
    duration = families["gust_invocation_duration_seconds"]
    assert duration.type == "histogram"
    assert value(families, "gust_invocation_duration_seconds",
                 "gust_invocation_duration_seconds_bucket", function=name, le="+Inf") >= 4
    assert value(families, "gust_init_duration_seconds", "gust_init_duration_seconds_count",
                 function=name) >= 1
    assert families["gust_unreserved_concurrent_executions"].type == "gauge"

    # The asynchronous event is queued, attempted (its age observed) and succeeds; the
    # periodic gauges come every few seconds.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        families = scrape(server)
        successes = value(families, "gust_invocations", "gust_invocations_total",
                          function=name, status="success")
        age = value(families, "gust_async_event_age_seconds",
                    "gust_async_event_age_seconds_count", function=name)
        environments = value(families, "gust_environments", "gust_environments", state="idle")
        if successes == 4 and age == 1 and environments is not None:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"metrics did not settle: successes={successes} age={age} "
                    f"environments={environments}")
    assert value(families, "gust_async_events_received",
                 "gust_async_events_received_total", function=name) == 1
    assert value(families, "gust_concurrent_executions", "gust_concurrent_executions",
                 function=name) is not None


def test_gust_usage_reports_requests_and_cost(server, lam):
    name = "usage-fn"
    create(lam, name, CODE, MemorySize=256, Architectures=["arm64"])
    wait_active(lam, name)
    for _ in range(5):
        invoke(lam, name, {})

    report = json.loads(server.gust("usage", "--json").stdout)
    month = time.strftime("%Y-%m", time.gmtime())
    assert report["month"] == month
    rows = [f for f in report["functions"] if f["function"] == name]
    assert len(rows) == 1, report
    row = rows[0]
    assert row["architecture"] == "arm64"
    assert row["requests"] == 5
    # Billed to the millisecond: at least 1 ms × 0.25 GB each.
    assert row["gb_seconds"] >= 5 * 0.001 * 0.25
    assert row["cost_before_free_tier"] > 0
    assert report["totals"]["requests"] >= 5
    assert report["cost_before_free_tier"] > 0
    # Well within the free tier.
    assert report["free_tier"]["requests"] == 1_000_000
    assert report["free_tier"]["requests_used"] == report["totals"]["requests"]
    assert report["cost"] == 0

    text = server.gust("usage", "--month", month).stdout
    assert name in text and "arm64" in text and "Free tier" in text

    other = json.loads(server.gust("usage", "--month", "2020-01", "--json").stdout)
    assert other["functions"] == [] and other["cost"] == 0
    bad = server.gust("usage", "--month", "2026-13", check=False)
    assert bad.returncode != 0 and "YYYY-MM" in bad.stderr

    # Gust's own endpoint is signed like the rest.
    status, _, _ = fetch(f"{server.endpoint}/_gust/usage")
    assert status == 403


def test_metrics_access_token_and_off(make_server):
    token = "scrape-me-0123456789"
    guarded = make_server(["--metrics-access", "token"], env={"GUST_METRICS_TOKEN": token})
    assert fetch(f"{guarded.endpoint}/metrics")[0] == 401
    assert fetch(f"{guarded.endpoint}/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    families = scrape(guarded, {"Authorization": f"Bearer {token}"})
    assert "gust_invocations" in families

    off = make_server(["--metrics-access", "off"])
    assert fetch(f"{off.endpoint}/metrics")[0] == 404

    with pytest.raises(RuntimeError, match="metrics-token"):
        make_server(["--metrics-access", "token"])


def test_operator_price_table(make_server, tmp_path):
    prices = tmp_path / "prices.json"
    # One unit per request, nothing for duration, no free tier: the cost is the count.
    prices.write_text(json.dumps({
        "currency": "EUR",
        "requests_per_million": 1_000_000,
        "duration_gb_second": {"x86_64": 0, "arm64": 0},
        "free_tier": {"requests": 0, "gb_seconds": 0},
    }))
    priced = make_server(["--prices", str(prices)])
    lam = priced.client()
    create(lam, "priced-fn", CODE)
    wait_active(lam, "priced-fn")
    for _ in range(2):
        invoke(lam, "priced-fn", {})
    report = json.loads(priced.gust("usage", "--json").stdout)
    assert report["currency"] == "EUR"
    assert report["cost"] == pytest.approx(2.0)
    assert report["free_tier"]["savings"] == 0

    bad = tmp_path / "bad.json"
    bad.write_text('{"requests_per_million": -1}')
    with pytest.raises(RuntimeError, match="requests_per_million"):
        make_server(["--prices", str(bad)])

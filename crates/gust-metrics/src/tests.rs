use std::sync::Mutex;

use gust_model::observe::{FunctionKey, Invocation, Observer};
use time::macros::datetime;

use super::*;

/// A clock tests move by hand.
#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

const NOW: OffsetDateTime = datetime!(2026-12-06 12:00:00 UTC);
const ACCOUNT: &str = "123456789012";

fn open(dir: &Path, clock: &Arc<TestClock>) -> Arc<Metrics> {
    Metrics::open(
        &dir.join("metrics.db"),
        Arc::clone(clock) as Arc<dyn Clock>,
        "us-east-1",
        Duration::from_secs(15 * 86_400),
    )
    .unwrap()
}

fn setup() -> (tempfile::TempDir, Arc<TestClock>, Arc<Metrics>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(NOW)));
    let metrics = open(dir.path(), &clock);
    (dir, clock, metrics)
}

fn metric(name: &str, dims: &[(&str, &str)]) -> MetricId {
    let mut dimensions: Vec<(String, String)> = dims
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    dimensions.sort();
    MetricId {
        namespace: "App".into(),
        name: name.into(),
        dimensions,
    }
}

fn datum(name: &str, at: OffsetDateTime, value: f64) -> MetricDatum {
    MetricDatum {
        name: name.into(),
        dimensions: vec![("Service".into(), "api".into())],
        timestamp: Some(at),
        value: Some(value),
        unit: Some("Milliseconds".into()),
        ..MetricDatum::default()
    }
}

fn statistics(
    metrics: &Metrics,
    name: &str,
    period: i64,
    stats: &[&str],
    extended: &[&str],
) -> Vec<Datapoint> {
    metrics
        .get_metric_statistics(
            ACCOUNT,
            &StatisticsRequest {
                metric: metric(name, &[("Service", "api")]),
                start: NOW - time::Duration::hours(1),
                end: NOW + time::Duration::hours(1),
                period,
                statistics: stats.iter().map(|s| (*s).to_owned()).collect(),
                extended: extended.iter().map(|s| (*s).to_owned()).collect(),
                unit: None,
            },
        )
        .unwrap()
        .1
}

fn stat(point: &Datapoint, name: &str) -> f64 {
    point
        .statistics
        .iter()
        .chain(&point.extended)
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {name} in {point:?}"))
}

#[test]
fn aggregates_into_minutes_and_periods() {
    let (_dir, _clock, metrics) = setup();
    let base = NOW - time::Duration::minutes(10);
    let mut data = Vec::new();
    for i in 0..120 {
        // Two minutes of values 1..=120, one per second.
        data.push(datum(
            "Latency",
            base + time::Duration::seconds(i),
            (i + 1) as f64,
        ));
    }
    metrics.put_metric_data(ACCOUNT, "App", &data).unwrap();
    let points = statistics(
        &metrics,
        "Latency",
        60,
        &["Sum", "SampleCount", "Minimum", "Maximum", "Average"],
        &[],
    );
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].timestamp, base);
    assert_eq!(stat(&points[0], "SampleCount"), 60.0);
    assert_eq!(stat(&points[0], "Sum"), (1..=60).sum::<i32>() as f64);
    assert_eq!(stat(&points[1], "Minimum"), 61.0);
    assert_eq!(stat(&points[1], "Maximum"), 120.0);
    assert_eq!(points[1].unit, "Milliseconds");
    // One five-minute period holds both minutes.
    let points = statistics(&metrics, "Latency", 300, &["Sum"], &["p50", "p99", "IQM"]);
    let total: f64 = points.iter().map(|p| stat(p, "Sum")).sum();
    assert_eq!(total, 7260.0);
    let p99: f64 = points.iter().map(|p| stat(p, "p99")).fold(0.0, f64::max);
    // Within 1% of the exact p99 (119).
    assert!((117.8..=120.0).contains(&p99), "{p99}");
}

#[test]
fn percentiles_of_values_and_counts() {
    let (_dir, _clock, metrics) = setup();
    let at = NOW - time::Duration::minutes(3);
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    metrics
        .put_metric_data(
            ACCOUNT,
            "App",
            &[MetricDatum {
                values: Some(values),
                counts: Some(vec![2.0; 100]),
                value: None,
                ..datum("Sizes", at, 0.0)
            }],
        )
        .unwrap();
    let points = statistics(
        &metrics,
        "Sizes",
        60,
        &["SampleCount"],
        &["p50", "p90", "p99.9"],
    );
    assert_eq!(points.len(), 1);
    assert_eq!(stat(&points[0], "SampleCount"), 200.0);
    for (name, want) in [("p50", 50.0), ("p90", 90.0), ("p99.9", 100.0)] {
        let got = stat(&points[0], name);
        assert!(
            (got - want).abs() / want <= 0.011,
            "{name}: {got} vs {want}"
        );
    }
}

#[test]
fn high_resolution_buckets_are_seconds() {
    let (_dir, _clock, metrics) = setup();
    let base = NOW - time::Duration::minutes(5);
    let data: Vec<MetricDatum> = (0..10)
        .map(|i| MetricDatum {
            storage_resolution: Some(1),
            ..datum("Fast", base + time::Duration::seconds(i), 1.0)
        })
        .collect();
    metrics.put_metric_data(ACCOUNT, "App", &data).unwrap();
    let points = statistics(&metrics, "Fast", 5, &["Sum"], &[]);
    assert_eq!(points.len(), 2);
    assert!(points.iter().all(|p| stat(p, "Sum") == 5.0));
}

#[test]
fn validation_errors() {
    let (_dir, _clock, metrics) = setup();
    let at = NOW;
    let error = metrics
        .put_metric_data(ACCOUNT, "AWS/Lambda", &[datum("x", at, 1.0)])
        .unwrap_err();
    assert_eq!(
        error,
        MetricsError::InvalidParameterValue(
            "The value AWS/Lambda for parameter Namespace is invalid.".into()
        )
    );
    let old = datum("x", NOW - time::Duration::days(15), 1.0);
    let error = metrics
        .put_metric_data(ACCOUNT, "App", &[datum("x", at, 1.0), old])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "The parameter MetricData.member.2.Timestamp must specify a time within the past two weeks."
    );
    let both = MetricDatum {
        statistics: Some(StatisticSet {
            sample_count: 1.0,
            sum: 1.0,
            minimum: 1.0,
            maximum: 1.0,
        }),
        ..datum("x", at, 1.0)
    };
    let error = metrics
        .put_metric_data(ACCOUNT, "App", &[both])
        .unwrap_err();
    assert_eq!(error.code(), "InvalidParameterCombination");
    let mismatched = MetricDatum {
        value: None,
        values: Some(vec![1.0, 2.0]),
        counts: Some(vec![1.0]),
        ..datum("x", at, 0.0)
    };
    let error = metrics
        .put_metric_data(ACCOUNT, "App", &[mismatched])
        .unwrap_err();
    assert_eq!(error.code(), "InvalidParameterValue");
    // Nothing of a refused request was kept.
    let (page, _) = metrics
        .list_metrics(ACCOUNT, &ListRequest::default())
        .unwrap();
    assert!(page.is_empty());

    let request = |period: i64, hours: i64| StatisticsRequest {
        metric: metric("x", &[]),
        start: NOW - time::Duration::hours(hours),
        end: NOW,
        period,
        statistics: vec!["Sum".into()],
        extended: vec![],
        unit: None,
    };
    let error = metrics
        .get_metric_statistics(ACCOUNT, &request(1, 1))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "You have requested up to 3600 datapoints, which exceeds the limit of 1440. You may \
         reduce the datapoints requested by increasing Period, or decreasing the time range."
    );
    assert_eq!(error.code(), "InvalidParameterCombination");
    let error = metrics
        .get_metric_statistics(ACCOUNT, &request(90, 1))
        .unwrap_err();
    assert_eq!(error.code(), "InvalidParameterValue");
    let error = metrics
        .get_metric_statistics(
            ACCOUNT,
            &StatisticsRequest {
                extended: vec!["p101".into()],
                ..request(60, 1)
            },
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "The value p101 for parameter ExtendedStatistics is not supported."
    );
}

#[test]
fn persists_across_reopen_and_sweeps_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(NOW)));
    let metrics = open(dir.path(), &clock);
    metrics
        .put_metric_data(ACCOUNT, "App", &[datum("Kept", NOW, 5.0)])
        .unwrap();
    // Observations are written when the metrics are dropped.
    metrics.observe(Observation::Throttled {
        key: FunctionKey {
            account: ACCOUNT.into(),
            function: "f".into(),
            qualifier: None,
        },
        at: NOW,
    });
    drop(metrics);
    let metrics = open(dir.path(), &clock);
    assert_eq!(
        stat(&statistics(&metrics, "Kept", 60, &["Sum"], &[])[0], "Sum"),
        5.0
    );
    let (all, _) = metrics
        .list_metrics(ACCOUNT, &ListRequest::default())
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    clock.advance(time::Duration::days(16));
    assert!(metrics.sweep().unwrap() > 0);
    let (all, _) = metrics
        .list_metrics(ACCOUNT, &ListRequest::default())
        .unwrap();
    assert!(all.is_empty(), "{all:?}");
}

fn invocation(function: &str, ms: u64, error: bool) -> Observation {
    Observation::Invoked(Invocation {
        key: FunctionKey {
            account: ACCOUNT.into(),
            function: function.into(),
            qualifier: None,
        },
        executed_version: "$LATEST".into(),
        at: NOW - time::Duration::seconds(30),
        duration: Duration::from_millis(ms),
        billed_ms: ms,
        memory_mb: 128,
        architecture: gust_model::function::Architecture::X86_64,
        error,
        cold_start: None,
        provisioned: false,
        request_id: "r".into(),
        trace: None,
        caller_parent: None,
    })
}

#[test]
fn lambda_metrics_from_observations() {
    let (_dir, _clock, metrics) = setup();
    for i in 0..10 {
        metrics.observe(invocation("f", 100 * (i + 1), i == 0));
    }
    metrics.observe(invocation("g", 5, false));
    let request = |name: &str, dims: Vec<(String, String)>, stat: &str| StatisticsRequest {
        metric: MetricId {
            namespace: lambda::NAMESPACE.into(),
            name: name.into(),
            dimensions: dims,
        },
        start: NOW - time::Duration::hours(1),
        end: NOW,
        period: 3600,
        statistics: vec![stat.into()],
        extended: vec![],
        unit: None,
    };
    let f = vec![("FunctionName".to_owned(), "f".to_owned())];
    let sum = |name: &str, dims: Vec<(String, String)>, s: &str| {
        let (_, points) = metrics
            .get_metric_statistics(ACCOUNT, &request(name, dims, s))
            .unwrap();
        stat(&points[0], s)
    };
    assert_eq!(sum("Invocations", f.clone(), "Sum"), 10.0);
    assert_eq!(sum("Invocations", vec![], "Sum"), 11.0);
    assert_eq!(sum("Errors", f.clone(), "Sum"), 1.0);
    assert_eq!(sum("Duration", f.clone(), "Maximum"), 1000.0);
    assert_eq!(sum("Duration", f, "Average"), 550.0);
    let (names, _) = metrics
        .list_metrics(
            ACCOUNT,
            &ListRequest {
                namespace: Some(lambda::NAMESPACE.into()),
                dimensions: vec![("FunctionName".into(), Some("g".into()))],
                ..ListRequest::default()
            },
        )
        .unwrap();
    let names: Vec<&str> = names.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["Duration", "Errors", "Invocations"]);
}

fn query(id: &str, name: &str, dims: &[(&str, &str)], stat: &str) -> DataQuery {
    DataQuery {
        id: id.into(),
        label: None,
        return_data: false,
        period: None,
        kind: QueryKind::Metric {
            metric: metric(name, dims),
            period: 60,
            stat: stat.into(),
            unit: None,
        },
    }
}

fn expression(id: &str, text: &str) -> DataQuery {
    DataQuery {
        id: id.into(),
        label: None,
        return_data: true,
        period: None,
        kind: QueryKind::Expression(text.into()),
    }
}

#[test]
fn metric_data_with_math() {
    let (_dir, _clock, metrics) = setup();
    let base = NOW - time::Duration::minutes(3);
    let mut data = Vec::new();
    for (host, value) in [("a", 1.0), ("b", 10.0)] {
        for minute in 0..3 {
            data.push(MetricDatum {
                dimensions: vec![("Host".into(), host.into())],
                ..datum(
                    "Requests",
                    base + time::Duration::minutes(minute),
                    value * (minute + 1) as f64,
                )
            });
        }
    }
    metrics.put_metric_data(ACCOUNT, "App", &data).unwrap();
    let request = DataRequest {
        queries: vec![
            query("m1", "Requests", &[("Host", "a")], "Sum"),
            query("m2", "Requests", &[("Host", "b")], "Sum"),
            expression("total", "SUM(METRICS(\"m\"))"),
            expression("all", "SUM(METRICS())"),
            expression("ratio", "100 * m1 / m2"),
            DataQuery {
                return_data: true,
                label: Some("A".into()),
                ..query("shown", "Requests", &[("Host", "a")], "Sum")
            },
        ],
        start: NOW - time::Duration::hours(1),
        end: NOW,
        ascending: true,
        max_datapoints: None,
        next_token: None,
    };
    let (results, next) = metrics.get_metric_data(ACCOUNT, &request).unwrap();
    assert!(next.is_none());
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].id, "total");
    assert_eq!(results[0].values, vec![11.0, 22.0, 33.0]);
    assert_eq!(results[0].timestamps[0], base);
    // Every metric query, returned or not.
    assert_eq!(results[1].values, vec![12.0, 24.0, 36.0]);
    assert_eq!(results[2].values, vec![10.0, 10.0, 10.0]);
    assert_eq!(results[3].label, "A");
    assert_eq!(results[3].status, "Complete");

    // Newest first, two datapoints a page.
    let paged = DataRequest {
        ascending: false,
        max_datapoints: Some(2),
        ..request.clone()
    };
    let (first, next) = metrics.get_metric_data(ACCOUNT, &paged).unwrap();
    assert_eq!(first[0].values, vec![33.0, 22.0]);
    assert_eq!(first[0].status, "PartialData");
    let (second, next) = metrics
        .get_metric_data(
            ACCOUNT,
            &DataRequest {
                next_token: next,
                ..paged.clone()
            },
        )
        .unwrap();
    assert_eq!(second[0].values, vec![11.0]);
    assert_eq!(second[1].values, vec![36.0]);
    assert!(next.is_some());

    // Errors.
    let bad = |queries: Vec<DataQuery>| {
        metrics
            .get_metric_data(
                ACCOUNT,
                &DataRequest {
                    queries,
                    ..request.clone()
                },
            )
            .unwrap_err()
    };
    let error = bad(vec![expression("e1", "m9 + 1")]);
    assert_eq!(error.code(), "ValidationError");
    assert!(error.to_string().contains("m9"), "{error}");
    let error = bad(vec![expression("e1", "e2"), expression("e2", "e1")]);
    assert!(error.to_string().contains("Circular"), "{error}");
    let error = bad(vec![expression("E1", "1")]);
    assert_eq!(error.code(), "ValidationError");
}

#[test]
fn list_metrics_filters_and_pages() {
    let (_dir, clock, metrics) = setup();
    let data: Vec<MetricDatum> = (0..501)
        .map(|i| MetricDatum {
            dimensions: vec![("Host".into(), format!("h{i:03}"))],
            ..datum("Requests", NOW, 1.0)
        })
        .collect();
    metrics.put_metric_data(ACCOUNT, "App", &data).unwrap();
    let (page, next) = metrics
        .list_metrics(ACCOUNT, &ListRequest::default())
        .unwrap();
    assert_eq!(page.len(), 500);
    let (rest, none) = metrics
        .list_metrics(
            ACCOUNT,
            &ListRequest {
                next_token: next,
                ..ListRequest::default()
            },
        )
        .unwrap();
    assert_eq!((rest.len(), none), (1, None));
    let (one, _) = metrics
        .list_metrics(
            ACCOUNT,
            &ListRequest {
                dimensions: vec![("Host".into(), Some("h007".into()))],
                ..ListRequest::default()
            },
        )
        .unwrap();
    assert_eq!(one.len(), 1);
    let (other, _) = metrics
        .list_metrics("999999999999", &ListRequest::default())
        .unwrap();
    assert!(other.is_empty());
    clock.advance(time::Duration::hours(4));
    let (recent, _) = metrics
        .list_metrics(
            ACCOUNT,
            &ListRequest {
                recently_active: true,
                ..ListRequest::default()
            },
        )
        .unwrap();
    assert!(recent.is_empty());
}

/// A request of `queries` over the 100,800 seconds before `NOW`.
fn wide(queries: Vec<DataQuery>) -> DataRequest {
    DataRequest {
        queries,
        start: NOW - time::Duration::seconds(MAX_DATA_DATAPOINTS),
        end: NOW,
        ascending: true,
        max_datapoints: None,
        next_token: None,
    }
}

fn per_second(id: &str, text: &str) -> DataQuery {
    DataQuery {
        period: Some(1),
        ..expression(id, text)
    }
}

#[test]
fn scalars_stay_scalars_until_the_page_is_made() {
    let (_dir, _clock, metrics) = setup();
    // 500 scalars on a 100,800-second grid: 50 million datapoints if expanded.
    let queries: Vec<DataQuery> = (0..500)
        .map(|i| per_second(&format!("e{i}"), "1"))
        .collect();
    let request = wide(queries);
    let (results, next, computed) = metrics.metric_data(ACCOUNT, &request).unwrap();
    assert_eq!(computed, 0);
    let answered: usize = results.iter().map(|r| r.values.len()).sum();
    assert_eq!(answered, MAX_DATA_DATAPOINTS as usize);
    assert_eq!(results[0].values.len(), MAX_DATA_DATAPOINTS as usize);
    assert_eq!(results[0].timestamps[0], request.start);
    assert_eq!(results[0].status, "Complete");
    assert_eq!(
        (results[1].values.len(), results[1].status),
        (0, "PartialData")
    );
    assert_eq!(next.as_deref(), Some("100800"));
    // The last page, newest first; a page never holds more than asked.
    let (last, next) = metrics
        .get_metric_data(
            ACCOUNT,
            &DataRequest {
                ascending: false,
                max_datapoints: Some(1_000_000),
                next_token: Some((499 * MAX_DATA_DATAPOINTS).to_string()),
                ..request.clone()
            },
        )
        .unwrap();
    assert_eq!(next, None);
    assert!(last[..499].iter().all(|r| r.values.is_empty()));
    assert_eq!(last[499].values.len(), MAX_DATA_DATAPOINTS as usize);
    assert_eq!(last[499].timestamps[0], NOW - time::Duration::seconds(1));
    // A token past the end, or absurd, answers nothing rather than failing.
    let (none, next) = metrics
        .get_metric_data(
            ACCOUNT,
            &DataRequest {
                next_token: Some(usize::MAX.to_string()),
                ..request.clone()
            },
        )
        .unwrap();
    assert!(none.iter().all(|r| r.values.is_empty()) && next.is_none());
}

#[test]
fn computing_too_many_datapoints_is_refused_before_they_are_made() {
    let (_dir, _clock, metrics) = setup();
    let data: Vec<MetricDatum> = (0..3)
        .map(|i| MetricDatum {
            storage_resolution: Some(1),
            ..datum("Requests", NOW - time::Duration::seconds(10 + i), 1.0)
        })
        .collect();
    metrics.put_metric_data(ACCOUNT, "App", &data).unwrap();
    let m1 = DataQuery {
        kind: QueryKind::Metric {
            metric: metric("Requests", &[("Service", "api")]),
            period: 1,
            stat: "Sum".into(),
            unit: None,
        },
        ..query("m1", "Requests", &[], "Sum")
    };
    // One FILL is a grid's worth, and counted.
    let one = wide(vec![m1.clone(), per_second("f0", "FILL(m1, 0)")]);
    let (results, _, computed) = metrics.metric_data(ACCOUNT, &one).unwrap();
    assert_eq!(results[0].values.len(), MAX_DATA_DATAPOINTS as usize);
    assert!(
        computed <= 2 * MAX_DATA_DATAPOINTS as usize + 3,
        "{computed}"
    );
    // 500 of them would be 50 million: refused once the budget is spent.
    let mut queries = vec![m1];
    queries.extend((0..499).map(|i| per_second(&format!("f{i}"), "FILL(m1, 0) * 2")));
    let error = metrics
        .get_metric_data(ACCOUNT, &wide(queries))
        .unwrap_err();
    assert_eq!(error.code(), "ValidationError");
    assert!(error.to_string().contains("Too many datapoints"), "{error}");
}

#[test]
fn expressions_are_bounded_in_depth_and_chains_do_not_recurse() {
    let (_dir, _clock, metrics) = setup();
    let one = |text: &str| {
        metrics.get_metric_data(
            ACCOUNT,
            &DataRequest {
                queries: vec![expression("e1", text)],
                ..wide(Vec::new())
            },
        )
    };
    let parens = format!("{}1{}", "(".repeat(600), ")".repeat(600));
    let error = one(&parens).unwrap_err();
    assert_eq!(error.code(), "ValidationError");
    assert!(
        error
            .to_string()
            .starts_with("Error in expression e1: Expression is nested too deeply"),
        "{error}"
    );
    let (results, _) = one(&format!("{}1", "-".repeat(2000))).unwrap();
    assert_eq!(results[0].values.first(), Some(&1.0));

    // 500 expressions each naming the next: evaluated with a loop, so a small stack does.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut queries: Vec<DataQuery> = (0..499)
                .map(|i| DataQuery {
                    return_data: i == 0,
                    ..expression(&format!("e{i}"), &format!("e{} + 1", i + 1))
                })
                .collect();
            queries.push(DataQuery {
                return_data: false,
                ..expression("e499", "1")
            });
            metrics
                .get_metric_data(
                    ACCOUNT,
                    &DataRequest {
                        queries,
                        max_datapoints: Some(1),
                        ..wide(Vec::new())
                    },
                )
                .map(|(results, _)| results[0].values.clone())
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), Ok(vec![500.0]));
}

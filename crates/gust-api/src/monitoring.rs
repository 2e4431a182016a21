//! The CloudWatch (metrics) adapter: one handler from an operation's input (shaped as the
//! JSON protocol sends it; timestamps as epoch seconds) to its output, over
//! `gust_metrics::Metrics`. The protocols (Smithy RPC v2 CBOR, AWS JSON 1.0, query) are
//! the shared adapters'.
//!
//! Inputs are first checked against the service model (2010-08-01) as the service checks
//! them (`ValidationError`: `1 validation error detected: …`); the service's own rules
//! (reserved namespaces, timestamps, periods, statistics) answer with the query error
//! codes (`InvalidParameterValue`, `InvalidParameterCombination`, `MissingParameter`), as
//! CloudWatch is `awsQueryCompatible`. The handler commits to SQLite, so callers run it on
//! the blocking pool.

use gust_metrics::{
    DataQuery, DataRequest, MetricDatum, MetricId, Metrics, MetricsError, QueryKind, StatisticSet,
    StatisticsRequest,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::protocol::ServiceError;
use crate::validate::read::{boolean, integer, owned, string, strings, timestamp};
use crate::validate::{self, member, required, Dialect, Kind, Member, Pattern};

impl From<MetricsError> for ServiceError {
    fn from(error: MetricsError) -> Self {
        ServiceError {
            status: error.status(),
            code: error.code().to_owned(),
            shape: error.shape().to_owned(),
            message: error.to_string(),
            sender: error.status() < 500,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The input shapes, as the service model declares them.

const fn text(min: usize, max: usize) -> Kind {
    validate::text(min, max)
}

const STRING: Kind = Kind::Str {
    min: None,
    max: None,
    pattern: None,
};
const NAMESPACE: Kind = validate::patterned(
    1,
    255,
    Pattern {
        text: "[^:].*",
        matches: |text| !text.starts_with(':'),
    },
);
const METRIC_NAME: Kind = text(1, 255);
const DIMENSION_NAME: Kind = text(1, 255);
const DIMENSION_VALUE: Kind = text(1, 1024);
const DIMENSION: Kind = Kind::Struct(&[
    required("Name", &DIMENSION_NAME),
    required("Value", &DIMENSION_VALUE),
]);
const DIMENSIONS: Kind = Kind::List {
    member: &DIMENSION,
    min: None,
    max: Some(30),
};
const UNIT: Kind = Kind::Enum(&[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
]);
const DOUBLE: Kind = Kind::Double;
const DOUBLES: Kind = Kind::List {
    member: &DOUBLE,
    min: None,
    max: None,
};
const STATISTIC_SET: Kind = Kind::Struct(&[
    required("SampleCount", &DOUBLE),
    required("Sum", &DOUBLE),
    required("Minimum", &DOUBLE),
    required("Maximum", &DOUBLE),
]);
const POSITIVE: Kind = Kind::Int {
    min: Some(1),
    max: None,
};
const INTEGER: Kind = Kind::Int {
    min: None,
    max: None,
};
const DATUM: Kind = Kind::Struct(&[
    required("MetricName", &METRIC_NAME),
    member("Dimensions", &DIMENSIONS),
    member("Timestamp", &Kind::Timestamp),
    member("Value", &DOUBLE),
    member("StatisticValues", &STATISTIC_SET),
    member("Values", &DOUBLES),
    member("Counts", &DOUBLES),
    member("Unit", &UNIT),
    member("StorageResolution", &POSITIVE),
]);
const METRIC_DATA: Kind = Kind::List {
    member: &DATUM,
    min: None,
    max: None,
};
const ENTITY_METRIC_DATUM: Kind = Kind::Struct(&[
    member("Entity", &Kind::Opaque),
    member("MetricData", &METRIC_DATA),
]);
const ENTITY_METRIC_DATA: Kind = Kind::List {
    member: &ENTITY_METRIC_DATUM,
    min: None,
    max: None,
};
const PUT_METRIC_DATA: &[Member] = &[
    required("Namespace", &NAMESPACE),
    member("MetricData", &METRIC_DATA),
    member("EntityMetricData", &ENTITY_METRIC_DATA),
    member("StrictEntityValidation", &Kind::Bool),
];
const STATISTICS: Kind = Kind::List {
    member: &Kind::Enum(&["SampleCount", "Average", "Sum", "Minimum", "Maximum"]),
    min: Some(1),
    max: Some(5),
};
const EXTENDED_STATISTICS: Kind = Kind::List {
    member: &STRING,
    min: Some(1),
    max: Some(10),
};
const GET_METRIC_STATISTICS: &[Member] = &[
    required("Namespace", &NAMESPACE),
    required("MetricName", &METRIC_NAME),
    member("Dimensions", &DIMENSIONS),
    required("StartTime", &Kind::Timestamp),
    required("EndTime", &Kind::Timestamp),
    required("Period", &POSITIVE),
    member("Statistics", &STATISTICS),
    member("ExtendedStatistics", &EXTENDED_STATISTICS),
    member("Unit", &UNIT),
];
const METRIC: Kind = Kind::Struct(&[
    member("Namespace", &NAMESPACE),
    member("MetricName", &METRIC_NAME),
    member("Dimensions", &DIMENSIONS),
]);
const METRIC_STAT: Kind = Kind::Struct(&[
    required("Metric", &METRIC),
    required("Period", &POSITIVE),
    required("Stat", &STRING),
    member("Unit", &UNIT),
]);
const QUERY: Kind = Kind::Struct(&[
    required("Id", &text(1, 255)),
    member("MetricStat", &METRIC_STAT),
    member("Expression", &text(1, 2048)),
    member("Label", &STRING),
    member("ReturnData", &Kind::Bool),
    member("Period", &POSITIVE),
    member("AccountId", &text(1, 255)),
]);
const QUERIES: Kind = Kind::List {
    member: &QUERY,
    min: None,
    max: None,
};
const GET_METRIC_DATA: &[Member] = &[
    required("MetricDataQueries", &QUERIES),
    required("StartTime", &Kind::Timestamp),
    required("EndTime", &Kind::Timestamp),
    member("NextToken", &STRING),
    member(
        "ScanBy",
        &Kind::Enum(&["TimestampDescending", "TimestampAscending"]),
    ),
    member("MaxDatapoints", &INTEGER),
    member("LabelOptions", &Kind::Opaque),
];
const DIMENSION_FILTER: Kind = Kind::Struct(&[
    required("Name", &DIMENSION_NAME),
    member("Value", &DIMENSION_VALUE),
]);
const LIST_METRICS: &[Member] = &[
    member("Namespace", &NAMESPACE),
    member("MetricName", &METRIC_NAME),
    member(
        "Dimensions",
        &Kind::List {
            member: &DIMENSION_FILTER,
            min: None,
            max: Some(10),
        },
    ),
    member("NextToken", &STRING),
    member("RecentlyActive", &Kind::Enum(&["PT3H"])),
    member("IncludeLinkedAccounts", &Kind::Bool),
    member("OwningAccount", &text(1, 255)),
];

fn input_shape(operation: &str) -> Option<&'static [Member]> {
    Some(match operation {
        "PutMetricData" => PUT_METRIC_DATA,
        "GetMetricStatistics" => GET_METRIC_STATISTICS,
        "GetMetricData" => GET_METRIC_DATA,
        "ListMetrics" => LIST_METRICS,
        _ => return None,
    })
}

/// Serves one operation for `account`.
pub(crate) fn handle(
    service: &Metrics,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    let Some(shape) = input_shape(operation) else {
        return Err(ServiceError::client(
            400,
            "InvalidAction",
            format!("The action {operation} is not valid for this endpoint."),
        ));
    };
    validate::check(shape, input, &Dialect::PLAIN).map_err(|mut error| {
        // CloudWatch's code for a model constraint (the shape stays `ValidationException`).
        if error.code == "ValidationException" {
            error.code = "ValidationError".into();
        }
        error
    })?;
    Ok(match operation {
        "PutMetricData" => put_metric_data(service, account, input)?,
        "GetMetricStatistics" => get_metric_statistics(service, account, input)?,
        "GetMetricData" => get_metric_data(service, account, input)?,
        _ => list_metrics(service, account, input)?,
    })
}

fn seconds(at: OffsetDateTime) -> Value {
    json!(at.unix_timestamp())
}

fn items<'v>(input: &'v Value, name: &str) -> &'v [Value] {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn number(input: &Value, name: &str) -> Option<f64> {
    input.get(name).and_then(Value::as_f64)
}

fn numbers(input: &Value, name: &str) -> Option<Vec<f64>> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_f64).collect())
}

fn dimensions(input: &Value) -> Vec<(String, String)> {
    items(input, "Dimensions")
        .iter()
        .map(|d| {
            (
                owned(d, "Name").unwrap_or_default(),
                owned(d, "Value").unwrap_or_default(),
            )
        })
        .collect()
}

/// A metric's identity: dimensions sorted, as they are stored.
fn metric_id(namespace: &str, name: &str, input: &Value) -> MetricId {
    let mut dimensions = dimensions(input);
    dimensions.sort();
    MetricId {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        dimensions,
    }
}

fn datum(input: &Value) -> MetricDatum {
    MetricDatum {
        name: owned(input, "MetricName").unwrap_or_default(),
        dimensions: dimensions(input),
        timestamp: timestamp(input, "Timestamp"),
        value: number(input, "Value"),
        values: numbers(input, "Values"),
        counts: numbers(input, "Counts"),
        statistics: input.get("StatisticValues").map(|set| StatisticSet {
            sample_count: number(set, "SampleCount").unwrap_or_default(),
            sum: number(set, "Sum").unwrap_or_default(),
            minimum: number(set, "Minimum").unwrap_or_default(),
            maximum: number(set, "Maximum").unwrap_or_default(),
        }),
        unit: owned(input, "Unit"),
        storage_resolution: integer(input, "StorageResolution"),
    }
}

fn put_metric_data(service: &Metrics, account: &str, input: &Value) -> Result<Value, MetricsError> {
    let namespace = string(input, "Namespace").unwrap_or_default();
    let mut data: Vec<MetricDatum> = items(input, "MetricData").iter().map(datum).collect();
    // The entity of entity data is not kept; its metrics are.
    for entity in items(input, "EntityMetricData") {
        data.extend(items(entity, "MetricData").iter().map(datum));
    }
    service.put_metric_data(account, namespace, &data)?;
    Ok(json!({}))
}

fn get_metric_statistics(
    service: &Metrics,
    account: &str,
    input: &Value,
) -> Result<Value, MetricsError> {
    let namespace = string(input, "Namespace").unwrap_or_default();
    let name = string(input, "MetricName").unwrap_or_default();
    let (start, end) = times(input)?;
    let request = StatisticsRequest {
        metric: metric_id(namespace, name, input),
        start,
        end,
        period: integer(input, "Period").unwrap_or(60),
        statistics: strings(input, "Statistics"),
        extended: strings(input, "ExtendedStatistics"),
        unit: owned(input, "Unit"),
    };
    let (label, datapoints) = service.get_metric_statistics(account, &request)?;
    let datapoints: Vec<Value> = datapoints
        .into_iter()
        .map(|point| {
            let mut out = Map::new();
            out.insert("Timestamp".into(), seconds(point.timestamp));
            for (name, value) in point.statistics {
                out.insert(name, json!(value));
            }
            if !point.extended.is_empty() {
                let extended: Map<String, Value> = point
                    .extended
                    .into_iter()
                    .map(|(name, value)| (name, json!(value)))
                    .collect();
                out.insert("ExtendedStatistics".into(), Value::Object(extended));
            }
            out.insert("Unit".into(), json!(point.unit));
            Value::Object(out)
        })
        .collect();
    Ok(json!({ "Label": label, "Datapoints": datapoints }))
}

fn times(input: &Value) -> Result<(OffsetDateTime, OffsetDateTime), MetricsError> {
    let missing =
        |name: &str| MetricsError::MissingParameter(format!("The parameter {name} is required."));
    Ok((
        timestamp(input, "StartTime").ok_or_else(|| missing("StartTime"))?,
        timestamp(input, "EndTime").ok_or_else(|| missing("EndTime"))?,
    ))
}

fn get_metric_data(service: &Metrics, account: &str, input: &Value) -> Result<Value, MetricsError> {
    let (start, end) = times(input)?;
    let mut queries = Vec::new();
    for (index, query) in items(input, "MetricDataQueries").iter().enumerate() {
        let n = index + 1;
        let id = owned(query, "Id").unwrap_or_default();
        let kind = match (query.get("MetricStat"), string(query, "Expression")) {
            (Some(stat), None) => {
                let metric = stat.get("Metric").cloned().unwrap_or(Value::Null);
                QueryKind::Metric {
                    metric: metric_id(
                        string(&metric, "Namespace").unwrap_or_default(),
                        string(&metric, "MetricName").unwrap_or_default(),
                        &metric,
                    ),
                    period: integer(stat, "Period").unwrap_or(60),
                    stat: owned(stat, "Stat").unwrap_or_default(),
                    unit: owned(stat, "Unit"),
                }
            }
            (None, Some(expression)) => QueryKind::Expression(expression.to_owned()),
            _ => {
                return Err(MetricsError::Validation(format!(
                    "The parameter MetricDataQueries.member.{n} must contain exactly one of \
                     MetricStat and Expression."
                )))
            }
        };
        queries.push(DataQuery {
            id,
            label: owned(query, "Label"),
            return_data: boolean(query, "ReturnData").unwrap_or(true),
            period: integer(query, "Period"),
            kind,
        });
    }
    let request = DataRequest {
        queries,
        start,
        end,
        ascending: string(input, "ScanBy") == Some("TimestampAscending"),
        max_datapoints: integer(input, "MaxDatapoints"),
        next_token: owned(input, "NextToken"),
    };
    let (results, next) = service.get_metric_data(account, &request)?;
    let results: Vec<Value> = results
        .into_iter()
        .map(|result| {
            json!({
                "Id": result.id,
                "Label": result.label,
                "Timestamps": result.timestamps.into_iter().map(seconds).collect::<Vec<_>>(),
                "Values": result.values,
                "StatusCode": result.status,
                "Messages": [],
            })
        })
        .collect();
    let mut out = json!({ "MetricDataResults": results, "Messages": [] });
    if let Some(next) = next {
        out["NextToken"] = json!(next);
    }
    Ok(out)
}

fn list_metrics(service: &Metrics, account: &str, input: &Value) -> Result<Value, MetricsError> {
    let request = gust_metrics::ListRequest {
        namespace: owned(input, "Namespace"),
        name: owned(input, "MetricName"),
        dimensions: items(input, "Dimensions")
            .iter()
            .map(|d| (owned(d, "Name").unwrap_or_default(), owned(d, "Value")))
            .collect(),
        recently_active: string(input, "RecentlyActive").is_some(),
        next_token: owned(input, "NextToken"),
    };
    // Gust has no linked (monitoring) accounts: another owner's metrics are none.
    let other_owner = string(input, "OwningAccount").is_some_and(|owner| owner != account);
    let (metrics, next) = if other_owner {
        (Vec::new(), None)
    } else {
        service.list_metrics(account, &request)?
    };
    let owners: Vec<&str> = metrics.iter().map(|_| account).collect();
    let metrics: Vec<Value> = metrics
        .into_iter()
        .map(|m| {
            let dims: Vec<Value> = m
                .dimensions
                .into_iter()
                .map(|(name, value)| json!({ "Name": name, "Value": value }))
                .collect();
            json!({ "Namespace": m.namespace, "MetricName": m.name, "Dimensions": dims })
        })
        .collect();
    let mut out = json!({ "Metrics": metrics });
    if boolean(input, "IncludeLinkedAccounts") == Some(true) {
        out["OwningAccounts"] = json!(owners);
    }
    if let Some(next) = next {
        out["NextToken"] = json!(next);
    }
    Ok(out)
}

//! The CloudWatch Logs adapter: AWS JSON 1.1 (`X-Amz-Target: Logs_20140328.<Operation>`,
//! signing name `logs`), one handler from an operation's input to its output over
//! `gust_logs::Logs`.
//!
//! Inputs are checked against the service model (2014-03-28) as the service checks them;
//! CloudWatch Logs answers what fails with `InvalidParameterException` (the usual
//! `1 validation error detected: …` text). Timestamps are epoch milliseconds, both ways.
//! The handler is synchronous (it commits to SQLite), so callers run it on the blocking
//! pool.

use std::collections::BTreeMap;

use gust_logs::{
    Event, FilterQuery, GetEventsQuery, GroupQuery, LogGroup, LogStream, Logs, LogsError, NewEvent,
    StreamOrder, StreamQuery,
};
use serde_json::{json, Map, Value};

use crate::protocol::ServiceError;
use crate::validate::read::{boolean, integer, owned, string, string_map, strings};
use crate::validate::{self, member, required, Dialect, Kind, Member, Pattern};

impl From<LogsError> for ServiceError {
    fn from(error: LogsError) -> Self {
        ServiceError::of_service(400, error.is_internal(), error.shape(), error.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The input shapes, as the service model declares them.

/// `LogGroupName`.
const GROUP_NAME_PATTERN: Pattern = Pattern {
    text: r"[\.\-_/#A-Za-z0-9]+",
    matches: |t| !t.is_empty() && t.chars().all(group_char),
};
/// `LogGroupNamePattern`.
const GROUP_NAME_PATTERN_PATTERN: Pattern = Pattern {
    text: r"[\.\-_/#A-Za-z0-9]*",
    matches: |t| t.chars().all(group_char),
};
/// `LogStreamName`.
const STREAM_NAME_PATTERN: Pattern = Pattern {
    text: "[^:*]*",
    matches: |t| !t.contains([':', '*']),
};
/// `LogGroupIdentifier`.
const IDENTIFIER_PATTERN: Pattern = Pattern {
    text: r"[\w#+=/:,.@-]*",
    matches: |t| {
        t.chars()
            .all(|c| c.is_alphanumeric() || "_#+=/:,.@-".contains(c))
    },
};
/// `AmazonResourceName`.
const ARN_PATTERN: Pattern = Pattern {
    text: r"[\w+=/:,.@-]*",
    matches: |t| {
        t.chars()
            .all(|c| c.is_alphanumeric() || "_+=/:,.@-".contains(c))
    },
};
/// `TagKey`.
const TAG_KEY_PATTERN: Pattern = Pattern {
    text: r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$",
    matches: |t| !t.is_empty() && t.chars().all(tag_char),
};
/// `TagValue`.
const TAG_VALUE_PATTERN: Pattern = Pattern {
    text: r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$",
    matches: |t| t.chars().all(tag_char),
};
/// `AccountId`.
const ACCOUNT_PATTERN: Pattern = Pattern {
    text: r"^\d{12}$",
    matches: |t| t.len() == 12 && t.bytes().all(|b| b.is_ascii_digit()),
};

fn group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

const fn text(min: Option<usize>, max: Option<usize>, pattern: Option<Pattern>) -> Kind {
    Kind::Str { min, max, pattern }
}

const GROUP_NAME: Kind = text(Some(1), Some(512), Some(GROUP_NAME_PATTERN));
const STREAM_NAME: Kind = text(Some(1), Some(512), Some(STREAM_NAME_PATTERN));
const IDENTIFIER: Kind = text(Some(1), Some(2048), Some(IDENTIFIER_PATTERN));
const RESOURCE_ARN: Kind = text(Some(1), Some(1011), Some(ARN_PATTERN));
const NEXT_TOKEN: Kind = text(Some(1), None, None);
const DESCRIBE_LIMIT: Kind = Kind::Int {
    min: Some(1),
    max: Some(50),
};
const EVENTS_LIMIT: Kind = Kind::Int {
    min: Some(1),
    max: Some(10_000),
};
const BOOL: Kind = Kind::Bool;
const CLASS: Kind = Kind::Enum(&["STANDARD", "INFREQUENT_ACCESS", "DELIVERY", "ESSENTIALS"]);
const TAG_KEY: Kind = text(Some(1), Some(128), Some(TAG_KEY_PATTERN));
const TAGS: Kind = Kind::Map {
    key: &TAG_KEY,
    value: &text(None, Some(256), Some(TAG_VALUE_PATTERN)),
    max: Some(50),
};
const LOG_EVENT: Kind = Kind::Struct(&[required("message", &text(Some(1), None, None))]);

const CREATE_LOG_GROUP: &[Member] = &[
    required("logGroupName", &GROUP_NAME),
    member("kmsKeyId", &text(None, Some(256), None)),
    member("tags", &TAGS),
    member("logGroupClass", &CLASS),
    member("deletionProtectionEnabled", &BOOL),
];
const GROUP_ONLY: &[Member] = &[required("logGroupName", &GROUP_NAME)];
const DESCRIBE_LOG_GROUPS: &[Member] = &[
    member(
        "accountIdentifiers",
        &Kind::List {
            member: &text(Some(12), Some(12), Some(ACCOUNT_PATTERN)),
            min: Some(0),
            max: Some(20),
        },
    ),
    member("logGroupNamePrefix", &GROUP_NAME),
    member(
        "logGroupNamePattern",
        &text(Some(0), Some(512), Some(GROUP_NAME_PATTERN_PATTERN)),
    ),
    member("nextToken", &NEXT_TOKEN),
    member("limit", &DESCRIBE_LIMIT),
    member("includeLinkedAccounts", &BOOL),
    member("logGroupClass", &CLASS),
    member(
        "logGroupIdentifiers",
        &Kind::List {
            member: &IDENTIFIER,
            min: Some(1),
            max: Some(50),
        },
    ),
];
const GROUP_AND_STREAM: &[Member] = &[
    required("logGroupName", &GROUP_NAME),
    required("logStreamName", &STREAM_NAME),
];
const DESCRIBE_LOG_STREAMS: &[Member] = &[
    member("logGroupName", &GROUP_NAME),
    member("logGroupIdentifier", &IDENTIFIER),
    member("logStreamNamePrefix", &STREAM_NAME),
    member("orderBy", &Kind::Enum(&["LogStreamName", "LastEventTime"])),
    member("descending", &BOOL),
    member("nextToken", &NEXT_TOKEN),
    member("limit", &DESCRIBE_LIMIT),
];
const PUT_LOG_EVENTS: &[Member] = &[
    required("logGroupName", &GROUP_NAME),
    required("logStreamName", &STREAM_NAME),
    required(
        "logEvents",
        &Kind::List {
            member: &LOG_EVENT,
            min: Some(1),
            max: Some(10_000),
        },
    ),
    member("sequenceToken", &text(Some(1), None, None)),
    member("entity", &Kind::Opaque),
];
const GET_LOG_EVENTS: &[Member] = &[
    member("logGroupName", &GROUP_NAME),
    member("logGroupIdentifier", &IDENTIFIER),
    required("logStreamName", &STREAM_NAME),
    member("nextToken", &NEXT_TOKEN),
    member("limit", &EVENTS_LIMIT),
    member("startFromHead", &BOOL),
    member("unmask", &BOOL),
];
const FILTER_LOG_EVENTS: &[Member] = &[
    member("logGroupName", &GROUP_NAME),
    member("logGroupIdentifier", &IDENTIFIER),
    member(
        "logStreamNames",
        &Kind::List {
            member: &STREAM_NAME,
            min: Some(1),
            max: Some(100),
        },
    ),
    member("logStreamNamePrefix", &STREAM_NAME),
    member("filterPattern", &text(Some(0), Some(1024), None)),
    member("nextToken", &NEXT_TOKEN),
    member("limit", &EVENTS_LIMIT),
    member("startFromHead", &BOOL),
    member("interleaved", &BOOL),
    member("unmask", &BOOL),
];
const PUT_RETENTION_POLICY: &[Member] = &[
    required("logGroupName", &GROUP_NAME),
    required(
        "retentionInDays",
        &Kind::Int {
            min: None,
            max: None,
        },
    ),
];
const TAG_LOG_GROUP: &[Member] = &[
    required("logGroupName", &GROUP_NAME),
    required("tags", &TAGS),
];
const UNTAG_LOG_GROUP: &[Member] = &[
    required("logGroupName", &GROUP_NAME),
    required(
        "tags",
        &Kind::List {
            member: &TAG_KEY,
            min: Some(1),
            max: None,
        },
    ),
];
const TAG_RESOURCE: &[Member] = &[
    required("resourceArn", &RESOURCE_ARN),
    required("tags", &TAGS),
];
const UNTAG_RESOURCE: &[Member] = &[
    required("resourceArn", &RESOURCE_ARN),
    required(
        "tagKeys",
        &Kind::List {
            member: &TAG_KEY,
            min: Some(0),
            max: Some(50),
        },
    ),
];
const RESOURCE_ONLY: &[Member] = &[required("resourceArn", &RESOURCE_ARN)];

/// Each operation's input shape, and its `long` timestamp members (which the shared
/// checker, knowing Java `int`s only, leaves to [`check_longs`]).
fn input_shape(operation: &str) -> Option<(&'static [Member], &'static [&'static str])> {
    Some(match operation {
        "CreateLogGroup" => (CREATE_LOG_GROUP, &[]),
        "DeleteLogGroup" | "DeleteRetentionPolicy" | "ListTagsLogGroup" => (GROUP_ONLY, &[]),
        "DescribeLogGroups" => (DESCRIBE_LOG_GROUPS, &[]),
        "CreateLogStream" | "DeleteLogStream" => (GROUP_AND_STREAM, &[]),
        "DescribeLogStreams" => (DESCRIBE_LOG_STREAMS, &[]),
        "PutLogEvents" => (PUT_LOG_EVENTS, &[]),
        "GetLogEvents" => (GET_LOG_EVENTS, &["startTime", "endTime"]),
        "FilterLogEvents" => (FILTER_LOG_EVENTS, &["startTime", "endTime"]),
        "PutRetentionPolicy" => (PUT_RETENTION_POLICY, &[]),
        "TagLogGroup" => (TAG_LOG_GROUP, &[]),
        "UntagLogGroup" => (UNTAG_LOG_GROUP, &[]),
        "TagResource" => (TAG_RESOURCE, &[]),
        "UntagResource" => (UNTAG_RESOURCE, &[]),
        "ListTagsForResource" => (RESOURCE_ONLY, &[]),
        _ => return None,
    })
}

/// A `long` member: an integer (a fractional number is truncated, as Java reads it).
fn long_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f.trunc() as i64)
        }),
        _ => None,
    }
}

fn invalid_parameter(message: String) -> ServiceError {
    ServiceError::client(400, "InvalidParameterException", message)
}

/// Timestamps (`long`, at least 0): the top-level `names`, and every log event's.
fn check_longs(input: &Value, names: &[&str]) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    let mut one = |value: Option<&Value>,
                   path: String,
                   required: bool|
     -> Result<(), ServiceError> {
        match value {
            None | Some(Value::Null) if required => errors.push(format!(
                "Value null at '{path}' failed to satisfy constraint: Member must not be null"
            )),
            None | Some(Value::Null) => {}
            Some(value) => {
                let number =
                    long_of(value).ok_or_else(|| validate::serialization(value, "a Long"))?;
                if number < 0 {
                    errors.push(format!(
                        "Value '{number}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to 0"
                    ));
                }
            }
        }
        Ok(())
    };
    for name in names {
        one(input.get(*name), (*name).to_owned(), false)?;
    }
    if let Some(events) = input.get("logEvents").and_then(Value::as_array) {
        for (index, event) in events.iter().enumerate() {
            one(
                event.get("timestamp"),
                format!("logEvents.{}.member.timestamp", index + 1),
                true,
            )?;
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(invalid_parameter(format!(
            "1 validation error detected: {}",
            errors[0]
        ))),
        n => Err(invalid_parameter(format!(
            "{n} validation errors detected: {}",
            errors.join("; ")
        ))),
    }
}

/// Serves one operation for `account`.
pub(crate) fn handle(
    service: &Logs,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    let Some((shape, longs)) = input_shape(operation) else {
        return Err(ServiceError::client(
            400,
            "UnknownOperationException",
            format!("The operation {operation} is not supported."),
        ));
    };
    validate::check(shape, input, &Dialect::PLAIN).map_err(|mut error| {
        // CloudWatch Logs words model violations as the other services do, under its own
        // exception.
        if error.shape == "ValidationException" {
            error.shape = "InvalidParameterException".into();
            error.code = error.shape.clone();
        }
        error
    })?;
    check_longs(input, longs)?;
    Ok(run(service, account, operation, input)?)
}

/// The group an operation names by `logGroupName` or `logGroupIdentifier` (one of them).
fn group_of(service: &Logs, account: &str, input: &Value) -> Result<String, LogsError> {
    match (
        string(input, "logGroupName"),
        string(input, "logGroupIdentifier"),
    ) {
        (Some(_), Some(_)) => Err(LogsError::invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (Some(name), None) => Ok(name.to_owned()),
        (None, Some(identifier)) => service.group_of_identifier(account, identifier),
        (None, None) => Err(LogsError::invalid(
            "Should provide either name or ARN of the log group.",
        )),
    }
}

fn limit(input: &Value) -> Option<usize> {
    integer(input, "limit").and_then(|n| usize::try_from(n).ok())
}

fn long(input: &Value, name: &str) -> Option<i64> {
    input.get(name).and_then(long_of)
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn group_json(service: &Logs, group: &LogGroup) -> Value {
    let arn = service.group_arn(&group.account, &group.name);
    let mut out = Map::new();
    out.insert("logGroupName".into(), json!(group.name));
    out.insert("creationTime".into(), json!(group.created_ms));
    if let Some(days) = group.retention_days {
        out.insert("retentionInDays".into(), json!(days));
    }
    out.insert("metricFilterCount".into(), json!(0));
    out.insert("arn".into(), json!(format!("{arn}:*")));
    out.insert("storedBytes".into(), json!(group.stored_bytes));
    if let Some(key) = &group.kms_key_id {
        out.insert("kmsKeyId".into(), json!(key));
    }
    out.insert("logGroupClass".into(), json!(group.class));
    out.insert("logGroupArn".into(), json!(arn));
    Value::Object(out)
}

fn stream_json(service: &Logs, account: &str, group: &str, stream: &LogStream) -> Value {
    let mut out = Map::new();
    out.insert("logStreamName".into(), json!(stream.name));
    out.insert("creationTime".into(), json!(stream.created_ms));
    if let Some(first) = stream.first_event_ms {
        out.insert("firstEventTimestamp".into(), json!(first));
    }
    if let Some(last) = stream.last_event_ms {
        out.insert("lastEventTimestamp".into(), json!(last));
    }
    if let Some(ingested) = stream.last_ingestion_ms {
        out.insert("lastIngestionTime".into(), json!(ingested));
    }
    out.insert(
        "uploadSequenceToken".into(),
        json!(format!("{:056}", stream.sequence)),
    );
    out.insert(
        "arn".into(),
        json!(service.stream_arn(account, group, &stream.name)),
    );
    out.insert("storedBytes".into(), json!(0));
    Value::Object(out)
}

fn filtered_event_json(event: &Event) -> Value {
    json!({
        "logStreamName": event.stream,
        "timestamp": event.timestamp,
        "message": event.message,
        "ingestionTime": event.ingestion_ms,
        "eventId": event.event_id(),
    })
}

fn with_token(mut out: Value, token: Option<String>) -> Value {
    if let (Some(token), Some(object)) = (token, out.as_object_mut()) {
        object.insert("nextToken".into(), Value::String(token));
    }
    out
}

fn run(service: &Logs, account: &str, operation: &str, input: &Value) -> Result<Value, LogsError> {
    let group = string(input, "logGroupName").unwrap_or_default();
    let stream = string(input, "logStreamName").unwrap_or_default();
    Ok(match operation {
        "CreateLogGroup" => {
            service.create_log_group(
                account,
                group,
                string_map(input, "tags").unwrap_or_default(),
                string(input, "logGroupClass"),
                string(input, "kmsKeyId"),
            )?;
            json!({})
        }
        "DeleteLogGroup" => {
            service.delete_log_group(account, group)?;
            json!({})
        }
        "DescribeLogGroups" => {
            let page = service.describe_log_groups(
                account,
                &GroupQuery {
                    prefix: owned(input, "logGroupNamePrefix"),
                    pattern: owned(input, "logGroupNamePattern").filter(|p| !p.is_empty()),
                    class: owned(input, "logGroupClass"),
                    next_token: owned(input, "nextToken"),
                    limit: limit(input),
                },
            )?;
            let identifiers = strings(input, "logGroupIdentifiers");
            let wanted: Vec<String> = identifiers
                .iter()
                .filter_map(|i| service.group_of_identifier(account, i).ok())
                .collect();
            let groups: Vec<Value> = page
                .items
                .iter()
                .filter(|g| identifiers.is_empty() || wanted.contains(&g.name))
                .map(|g| group_json(service, g))
                .collect();
            with_token(json!({ "logGroups": groups }), page.next_token)
        }
        "CreateLogStream" => {
            service.create_log_stream(account, group, stream)?;
            json!({})
        }
        "DeleteLogStream" => {
            service.delete_log_stream(account, group, stream)?;
            json!({})
        }
        "DescribeLogStreams" => {
            let group = group_of(service, account, input)?;
            let order = match string(input, "orderBy") {
                Some("LastEventTime") => StreamOrder::LastEventTime,
                _ => StreamOrder::Name,
            };
            let page = service.describe_log_streams(
                account,
                &group,
                &StreamQuery {
                    prefix: owned(input, "logStreamNamePrefix"),
                    order,
                    descending: boolean(input, "descending").unwrap_or(false),
                    next_token: owned(input, "nextToken"),
                    limit: limit(input),
                },
            )?;
            let streams: Vec<Value> = page
                .items
                .iter()
                .map(|s| stream_json(service, account, &group, s))
                .collect();
            with_token(json!({ "logStreams": streams }), page.next_token)
        }
        "PutLogEvents" => {
            let events: Vec<NewEvent> = input
                .get("logEvents")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| NewEvent {
                            timestamp: item.get("timestamp").and_then(long_of).unwrap_or(0),
                            message: owned(item, "message").unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let outcome = service.put_log_events(account, group, stream, events)?;
            let mut out = json!({ "nextSequenceToken": outcome.next_sequence_token });
            if !outcome.rejected.is_empty() {
                let mut info = Map::new();
                let rejected = outcome.rejected;
                for (name, index) in [
                    ("tooNewLogEventStartIndex", rejected.too_new_start),
                    ("tooOldLogEventEndIndex", rejected.too_old_end),
                    ("expiredLogEventEndIndex", rejected.expired_end),
                ] {
                    if let Some(index) = index {
                        info.insert(name.into(), json!(index));
                    }
                }
                out["rejectedLogEventsInfo"] = Value::Object(info);
            }
            out
        }
        "GetLogEvents" => {
            let group = group_of(service, account, input)?;
            let page = service.get_log_events(
                account,
                &group,
                stream,
                &GetEventsQuery {
                    start_ms: long(input, "startTime"),
                    end_ms: long(input, "endTime"),
                    next_token: owned(input, "nextToken"),
                    limit: limit(input),
                    start_from_head: boolean(input, "startFromHead").unwrap_or(false),
                },
            )?;
            let events: Vec<Value> = page
                .events
                .iter()
                .map(|e| {
                    json!({
                        "timestamp": e.timestamp,
                        "message": e.message,
                        "ingestionTime": e.ingestion_ms,
                    })
                })
                .collect();
            json!({
                "events": events,
                "nextForwardToken": page.next_forward_token,
                "nextBackwardToken": page.next_backward_token,
            })
        }
        "FilterLogEvents" => {
            let group = group_of(service, account, input)?;
            let page = service.filter_log_events(
                account,
                &group,
                &FilterQuery {
                    stream_names: strings(input, "logStreamNames"),
                    stream_prefix: owned(input, "logStreamNamePrefix"),
                    start_ms: long(input, "startTime"),
                    end_ms: long(input, "endTime"),
                    pattern: owned(input, "filterPattern").unwrap_or_default(),
                    next_token: owned(input, "nextToken"),
                    limit: limit(input),
                },
            )?;
            let events: Vec<Value> = page.items.iter().map(filtered_event_json).collect();
            with_token(json!({ "events": events }), page.next_token)
        }
        "PutRetentionPolicy" => {
            let days = integer(input, "retentionInDays")
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(0);
            service.put_retention_policy(account, group, days)?;
            json!({})
        }
        "DeleteRetentionPolicy" => {
            service.delete_retention_policy(account, group)?;
            json!({})
        }
        "TagLogGroup" => {
            service.tag(
                account,
                group,
                string_map(input, "tags").unwrap_or_default(),
            )?;
            json!({})
        }
        "UntagLogGroup" => {
            service.untag(account, group, &strings(input, "tags"))?;
            json!({})
        }
        "ListTagsLogGroup" => json!({ "tags": tags_json(&service.tags(account, group)?) }),
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let arn = string(input, "resourceArn").unwrap_or_default();
            let group = service.group_of_arn(account, arn)?;
            match operation {
                "TagResource" => {
                    service.tag(
                        account,
                        &group,
                        string_map(input, "tags").unwrap_or_default(),
                    )?;
                    json!({})
                }
                "UntagResource" => {
                    service.untag(account, &group, &strings(input, "tagKeys"))?;
                    json!({})
                }
                _ => json!({ "tags": tags_json(&service.tags(account, &group)?) }),
            }
        }
        _ => json!({}),
    })
}

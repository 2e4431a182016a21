//! The EventBridge adapter: AWS JSON 1.1 (`X-Amz-Target: AWSEvents.<Operation>`, signing
//! name `events`), one handler from an operation's input to its output over
//! `gust_events::Events`.
//!
//! Inputs are first checked against the service model (2015-10-07) as the service checks
//! them (required members, lengths, patterns, enums, ranges, list sizes), answering
//! `1 validation error detected: Value … at '…' failed to satisfy constraint: …`; a member of
//! the wrong JSON type is a `SerializationException`. The semantics are the service's.
//! Timestamps are epoch seconds, both ways.
//!
//! The handler is synchronous (it commits to SQLite), so callers run it on the blocking
//! pool.

use std::collections::BTreeMap;

use gust_events::{
    CreateBusInput, EventBus, Events, EventsError, InputTransformer, Page, PutEventsEntry,
    PutRuleInput, RetryPolicy, Rule, RuleState, Target, TargetFailure,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::protocol::ServiceError;
use crate::validate::read::{integer, object, owned, string, strings};
use crate::validate::{
    self, member, required, shown, timestamp_of, Dialect, Kind, Member, Pattern,
};

impl From<EventsError> for ServiceError {
    fn from(error: EventsError) -> Self {
        ServiceError::of_service(400, error.is_internal(), error.shape(), error.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The input shapes, as the service model declares them.

/// `EventBusName`.
const BUS_NAME_PATTERN: Pattern = Pattern {
    text: r"[/\.\-_A-Za-z0-9]+",
    matches: bus_name,
};
/// `EventBusNameOrArn`.
const BUS_NAME_OR_ARN_PATTERN: Pattern = Pattern {
    text: r"(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[/\.\-_A-Za-z0-9]+",
    matches: |text| bus_name_or_arn(text, bus_name),
};
/// `NonPartnerEventBusNameOrArn`.
const NON_PARTNER_BUS_PATTERN: Pattern = Pattern {
    text: r"(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?[\.\-_A-Za-z0-9]+",
    matches: |text| bus_name_or_arn(text, plain_name),
};
/// `RuleName`, `TargetId`.
const NAME_PATTERN: Pattern = Pattern {
    text: r"[\.\-_A-Za-z0-9]+",
    matches: plain_name,
};
/// `EventSourceName`.
const EVENT_SOURCE_PATTERN: Pattern = Pattern {
    text: r"aws\.partner(/[\.\-_A-Za-z0-9]+){2,}",
    matches: |text| {
        text.strip_prefix("aws.partner/").is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('/').collect();
            parts.len() >= 2 && parts.iter().all(|p| plain_name(p))
        })
    },
};
/// `KmsKeyIdentifier`.
const KMS_KEY_PATTERN: Pattern = Pattern {
    text: r"^[a-zA-Z0-9_\-/:]*$",
    matches: |text| {
        text.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | ':'))
    },
};
/// `InputTransformerPathKey`.
const PATH_KEY_PATTERN: Pattern = Pattern {
    text: r"[A-Za-z0-9\_\-]+",
    matches: |text| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    },
};
/// `EndpointId`.
const ENDPOINT_ID_PATTERN: Pattern = Pattern {
    text: r"^[A-Za-z0-9\-]+[\.][A-Za-z0-9\-]+$",
    matches: |text| {
        text.split_once('.').is_some_and(|(a, b)| {
            let part =
                |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            part(a) && part(b)
        })
    },
};

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus\/)?<name>`.
fn bus_name_or_arn(text: &str, name: fn(&str) -> bool) -> bool {
    if !text.contains(':') {
        return name(text);
    }
    let Some(rest) = text.strip_prefix("arn:aws") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(rest) = rest.strip_prefix("events:") else {
        return false;
    };
    let Some((region, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(bus) = rest.strip_prefix("event-bus/") else {
        return false;
    };
    let region_ok = {
        let parts: Vec<&str> = region.splitn(3, '-').collect();
        parts.len() == 3
            && parts[..2]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && !parts[2].is_empty()
            && parts[2].chars().all(|c| word_char(c) || c == '-')
    };
    partition.chars().all(|c| word_char(c) || c == '-')
        && region_ok
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && name(bus)
}

fn bus_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| name_char(c) || c == '/')
}

fn plain_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(name_char)
}

const fn text(min: Option<usize>, max: Option<usize>, pattern: Option<Pattern>) -> Kind {
    Kind::Str { min, max, pattern }
}

const STRING: Kind = text(None, None, None);
const BOOL: Kind = Kind::Bool;
const EVENT_BUS_NAME: Kind = text(Some(1), Some(256), Some(BUS_NAME_PATTERN));
const EVENT_BUS_NAME_OR_ARN: Kind = text(Some(1), Some(1600), Some(BUS_NAME_OR_ARN_PATTERN));
const NON_PARTNER_BUS: Kind = text(Some(1), Some(1600), Some(NON_PARTNER_BUS_PATTERN));
const EVENT_SOURCE_NAME: Kind = text(Some(1), Some(256), Some(EVENT_SOURCE_PATTERN));
const BUS_DESCRIPTION: Kind = text(None, Some(512), None);
const KMS_KEY: Kind = text(None, Some(2048), Some(KMS_KEY_PATTERN));
const ARN: Kind = text(Some(1), Some(1600), None);
const DEAD_LETTER_CONFIG: Kind = Kind::Struct(&[member("Arn", &ARN)]);
const LOG_CONFIG: Kind = Kind::Struct(&[
    member("IncludeDetail", &Kind::Enum(&["NONE", "FULL"])),
    member("Level", &Kind::Enum(&["OFF", "ERROR", "INFO", "TRACE"])),
]);
const TAG_KEY: Kind = text(Some(1), Some(128), None);
const TAG: Kind = Kind::Struct(&[
    required("Key", &TAG_KEY),
    required("Value", &text(Some(0), Some(256), None)),
]);
const TAG_LIST: Kind = Kind::List {
    member: &TAG,
    min: None,
    max: None,
};
const NEXT_TOKEN: Kind = text(Some(1), Some(2048), None);
const LIMIT: Kind = Kind::Int {
    min: Some(1),
    max: Some(100),
};
const RULE_NAME: Kind = text(Some(1), Some(64), Some(NAME_PATTERN));
const RULE_STATE: Kind = Kind::Enum(&[
    "ENABLED",
    "DISABLED",
    "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
]);
const TARGET_ID: Kind = text(Some(1), Some(64), Some(NAME_PATTERN));
const TRANSFORMER: Kind = Kind::Struct(&[
    member(
        "InputPathsMap",
        &Kind::Map {
            key: &text(Some(1), Some(256), Some(PATH_KEY_PATTERN)),
            value: &text(None, Some(256), None),
            max: Some(100),
        },
    ),
    required("InputTemplate", &text(Some(1), Some(8192), None)),
]);
const RETRY_POLICY: Kind = Kind::Struct(&[
    member(
        "MaximumRetryAttempts",
        &Kind::Int {
            min: Some(0),
            max: Some(185),
        },
    ),
    member(
        "MaximumEventAgeInSeconds",
        &Kind::Int {
            min: Some(60),
            max: Some(86400),
        },
    ),
]);
const TARGET: Kind = Kind::Struct(&[
    required("Id", &TARGET_ID),
    required("Arn", &ARN),
    member("RoleArn", &ARN),
    member("Input", &text(None, Some(8192), None)),
    member("InputPath", &text(None, Some(256), None)),
    member("InputTransformer", &TRANSFORMER),
    member("KinesisParameters", &Kind::Opaque),
    member("RunCommandParameters", &Kind::Opaque),
    member("EcsParameters", &Kind::Opaque),
    member("BatchParameters", &Kind::Opaque),
    member(
        "SqsParameters",
        &Kind::Struct(&[member("MessageGroupId", &text(None, Some(100), None))]),
    ),
    member("HttpParameters", &Kind::Opaque),
    member("RedshiftDataParameters", &Kind::Opaque),
    member("SageMakerPipelineParameters", &Kind::Opaque),
    member("DeadLetterConfig", &DEAD_LETTER_CONFIG),
    member("RetryPolicy", &RETRY_POLICY),
    member("AppSyncParameters", &Kind::Opaque),
]);
/// The target parameters Gust keeps without acting on them.
const OTHER_TARGET_PARAMETERS: &[&str] = &[
    "KinesisParameters",
    "RunCommandParameters",
    "EcsParameters",
    "BatchParameters",
    "HttpParameters",
    "RedshiftDataParameters",
    "SageMakerPipelineParameters",
    "AppSyncParameters",
];
const EVENT_ENTRY: Kind = Kind::Struct(&[
    member("Time", &Kind::Timestamp),
    member("Source", &STRING),
    member(
        "Resources",
        &Kind::List {
            member: &text(None, Some(2048), None),
            min: None,
            max: None,
        },
    ),
    member("DetailType", &STRING),
    member("Detail", &STRING),
    member("EventBusName", &NON_PARTNER_BUS),
    member("TraceHeader", &text(Some(1), Some(500), None)),
]);
const ENTRIES: Kind = Kind::List {
    member: &EVENT_ENTRY,
    min: Some(1),
    max: Some(10),
};

const CREATE_EVENT_BUS: &[Member] = &[
    required("Name", &EVENT_BUS_NAME),
    member("EventSourceName", &EVENT_SOURCE_NAME),
    member("Description", &BUS_DESCRIPTION),
    member("KmsKeyIdentifier", &KMS_KEY),
    member("DeadLetterConfig", &DEAD_LETTER_CONFIG),
    member("LogConfig", &LOG_CONFIG),
    member("Tags", &TAG_LIST),
];
const DELETE_EVENT_BUS: &[Member] = &[required("Name", &EVENT_BUS_NAME)];
const DESCRIBE_EVENT_BUS: &[Member] = &[member("Name", &EVENT_BUS_NAME_OR_ARN)];
const LIST_EVENT_BUSES: &[Member] = &[
    member("NamePrefix", &EVENT_BUS_NAME),
    member("NextToken", &NEXT_TOKEN),
    member("Limit", &LIMIT),
];
const PUT_RULE: &[Member] = &[
    required("Name", &RULE_NAME),
    member("ScheduleExpression", &text(None, Some(256), None)),
    member("EventPattern", &text(None, Some(4096), None)),
    member("State", &RULE_STATE),
    member("Description", &text(None, Some(512), None)),
    member("RoleArn", &ARN),
    member("Tags", &TAG_LIST),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
];
const RULE_ONLY: &[Member] = &[
    required("Name", &RULE_NAME),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
];
const DELETE_RULE: &[Member] = &[
    required("Name", &RULE_NAME),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
    member("Force", &BOOL),
];
const LIST_RULES: &[Member] = &[
    member("NamePrefix", &RULE_NAME),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
    member("NextToken", &NEXT_TOKEN),
    member("Limit", &LIMIT),
];
const LIST_RULE_NAMES_BY_TARGET: &[Member] = &[
    required("TargetArn", &ARN),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
    member("NextToken", &NEXT_TOKEN),
    member("Limit", &LIMIT),
];
const PUT_TARGETS: &[Member] = &[
    required("Rule", &RULE_NAME),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
    required(
        "Targets",
        &Kind::List {
            member: &TARGET,
            min: Some(1),
            max: Some(100),
        },
    ),
];
const REMOVE_TARGETS: &[Member] = &[
    required("Rule", &RULE_NAME),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
    required(
        "Ids",
        &Kind::List {
            member: &TARGET_ID,
            min: Some(1),
            max: Some(100),
        },
    ),
    member("Force", &BOOL),
];
const LIST_TARGETS_BY_RULE: &[Member] = &[
    required("Rule", &RULE_NAME),
    member("EventBusName", &EVENT_BUS_NAME_OR_ARN),
    member("NextToken", &NEXT_TOKEN),
    member("Limit", &LIMIT),
];
const PUT_EVENTS: &[Member] = &[
    required("Entries", &ENTRIES),
    member(
        "EndpointId",
        &text(Some(1), Some(50), Some(ENDPOINT_ID_PATTERN)),
    ),
];
const TEST_EVENT_PATTERN: &[Member] = &[
    required("EventPattern", &text(None, Some(4096), None)),
    required("Event", &STRING),
];
const TAG_RESOURCE: &[Member] = &[required("ResourceARN", &ARN), required("Tags", &TAG_LIST)];
const UNTAG_RESOURCE: &[Member] = &[
    required("ResourceARN", &ARN),
    required(
        "TagKeys",
        &Kind::List {
            member: &TAG_KEY,
            min: None,
            max: None,
        },
    ),
];
const LIST_TAGS_FOR_RESOURCE: &[Member] = &[required("ResourceARN", &ARN)];

/// The input shape of an operation this adapter serves.
fn input_shape(operation: &str) -> Option<&'static [Member]> {
    Some(match operation {
        "CreateEventBus" => CREATE_EVENT_BUS,
        "DeleteEventBus" => DELETE_EVENT_BUS,
        "DescribeEventBus" => DESCRIBE_EVENT_BUS,
        "ListEventBuses" => LIST_EVENT_BUSES,
        "PutRule" => PUT_RULE,
        "DescribeRule" | "EnableRule" | "DisableRule" => RULE_ONLY,
        "DeleteRule" => DELETE_RULE,
        "ListRules" => LIST_RULES,
        "ListRuleNamesByTarget" => LIST_RULE_NAMES_BY_TARGET,
        "PutTargets" => PUT_TARGETS,
        "RemoveTargets" => REMOVE_TARGETS,
        "ListTargetsByRule" => LIST_TARGETS_BY_RULE,
        "PutEvents" => PUT_EVENTS,
        "TestEventPattern" => TEST_EVENT_PATTERN,
        "TagResource" => TAG_RESOURCE,
        "UntagResource" => UNTAG_RESOURCE,
        "ListTagsForResource" => LIST_TAGS_FOR_RESOURCE,
        _ => return None,
    })
}

/// EventBridge quotes a `PutEvents` entry as its Java object's `toString`.
const DIALECT: Dialect = Dialect {
    shown: |value, path| match value {
        Value::Array(items) if path == "entries" => format!(
            "[{}]",
            items.iter().map(shown_entry).collect::<Vec<_>>().join(", ")
        ),
        other => shown(other),
    },
    ..Dialect::PLAIN
};

/// A `PutEvents` entry as EventBridge quotes it (its Java object's `toString`).
fn shown_entry(entry: &Value) -> String {
    let field = |name: &str| entry.get(name).map_or_else(|| "null".to_owned(), shown);
    let detail = match entry.get("Detail").and_then(Value::as_str) {
        Some(text) => serde_json::from_str::<Value>(text)
            .map(|v| shown(&v))
            .unwrap_or_else(|_| text.to_owned()),
        None => "null".into(),
    };
    format!(
        "PutEventsRequestEntry(time={}, source={}, resources={}, detailType={}, detail={detail}, eventBusName={}, traceHeader={}, kmsKeyIdentifier=null, internalMetadata=null)",
        field("Time"),
        field("Source"),
        field("Resources"),
        field("DetailType"),
        field("EventBusName"),
        field("TraceHeader"),
    )
}

// ---------------------------------------------------------------------------------------
// Reading checked inputs and writing outputs.

fn tags(input: &Value) -> Vec<(String, String)> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|tag| {
                    (
                        string(tag, "Key").unwrap_or_default().to_owned(),
                        string(tag, "Value").unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

fn page(input: &Value) -> Page {
    Page {
        limit: integer(input, "Limit"),
        next_token: owned(input, "NextToken"),
    }
}

/// Epoch seconds, to the millisecond.
fn epoch(at: OffsetDateTime) -> Value {
    let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    json!(millis as f64 / 1000.0)
}

/// Inserts `value` when it is there.
fn put(out: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        out.insert(name.into(), value);
    }
}

fn bus_json(bus: &EventBus, settings: bool) -> Value {
    let mut out = Map::new();
    out.insert("Name".into(), json!(bus.name));
    out.insert("Arn".into(), json!(bus.arn));
    put(
        &mut out,
        "Description",
        bus.description.clone().map(Value::from),
    );
    if settings {
        for (name, value) in &bus.settings {
            out.insert(name.clone(), value.clone());
        }
    }
    out.insert("CreationTime".into(), epoch(bus.created));
    out.insert("LastModifiedTime".into(), epoch(bus.modified));
    Value::Object(out)
}

fn rule_json(rule: &Rule, describe: bool) -> Value {
    let mut out = Map::new();
    out.insert("Name".into(), json!(rule.name));
    out.insert("Arn".into(), json!(rule.arn));
    put(
        &mut out,
        "EventPattern",
        rule.event_pattern.clone().map(Value::from),
    );
    put(
        &mut out,
        "ScheduleExpression",
        rule.schedule_expression.clone().map(Value::from),
    );
    out.insert("State".into(), json!(rule.state.as_str()));
    put(
        &mut out,
        "Description",
        rule.description.clone().map(Value::from),
    );
    put(&mut out, "RoleArn", rule.role_arn.clone().map(Value::from));
    out.insert("EventBusName".into(), json!(rule.bus));
    if describe {
        out.insert("CreatedBy".into(), json!(rule.account));
    }
    Value::Object(out)
}

fn target_json(target: &Target) -> Value {
    let mut out = Map::new();
    out.insert("Id".into(), json!(target.id));
    out.insert("Arn".into(), json!(target.arn));
    put(
        &mut out,
        "RoleArn",
        target.role_arn.clone().map(Value::from),
    );
    put(&mut out, "Input", target.input.clone().map(Value::from));
    put(
        &mut out,
        "InputPath",
        target.input_path.clone().map(Value::from),
    );
    if let Some(transformer) = &target.input_transformer {
        let mut t = Map::new();
        if !transformer.input_paths_map.is_empty() {
            t.insert(
                "InputPathsMap".into(),
                json!(transformer.input_paths_map.clone()),
            );
        }
        t.insert("InputTemplate".into(), json!(transformer.input_template));
        out.insert("InputTransformer".into(), Value::Object(t));
    }
    if let Some(policy) = &target.retry_policy {
        let mut p = Map::new();
        put(
            &mut p,
            "MaximumRetryAttempts",
            policy.maximum_retry_attempts.map(Value::from),
        );
        put(
            &mut p,
            "MaximumEventAgeInSeconds",
            policy.maximum_event_age_in_seconds.map(Value::from),
        );
        out.insert("RetryPolicy".into(), Value::Object(p));
    }
    if let Some(queue) = &target.dead_letter_arn {
        out.insert("DeadLetterConfig".into(), json!({"Arn": queue}));
    }
    if let Some(group) = &target.message_group_id {
        out.insert("SqsParameters".into(), json!({"MessageGroupId": group}));
    }
    for (name, value) in &target.other {
        out.insert(name.clone(), value.clone());
    }
    Value::Object(out)
}

fn target_of(input: &Value) -> Target {
    let transformer = object(input, "InputTransformer").map(|t| InputTransformer {
        input_paths_map: t
            .get("InputPathsMap")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        input_template: owned(t, "InputTemplate").unwrap_or_default(),
    });
    let retry_policy = object(input, "RetryPolicy").map(|p| RetryPolicy {
        maximum_retry_attempts: integer(p, "MaximumRetryAttempts")
            .and_then(|n| u32::try_from(n).ok()),
        maximum_event_age_in_seconds: integer(p, "MaximumEventAgeInSeconds")
            .and_then(|n| u32::try_from(n).ok()),
    });
    let other = OTHER_TARGET_PARAMETERS
        .iter()
        .filter_map(|name| object(input, name).map(|v| ((*name).to_owned(), v.clone())))
        .collect();
    Target {
        id: owned(input, "Id").unwrap_or_default(),
        arn: owned(input, "Arn").unwrap_or_default(),
        role_arn: owned(input, "RoleArn"),
        input: owned(input, "Input"),
        input_path: owned(input, "InputPath"),
        input_transformer: transformer,
        retry_policy,
        dead_letter_arn: object(input, "DeadLetterConfig").and_then(|d| owned(d, "Arn")),
        message_group_id: object(input, "SqsParameters").and_then(|s| owned(s, "MessageGroupId")),
        other,
    }
}

fn failures_json(failures: &[TargetFailure]) -> Value {
    json!({
        "FailedEntryCount": failures.len(),
        "FailedEntries": failures
            .iter()
            .map(|f| json!({
                "TargetId": f.target_id,
                "ErrorCode": f.error_code,
                "ErrorMessage": f.error_message,
            }))
            .collect::<Vec<_>>(),
    })
}

fn listed(name: &str, items: Vec<Value>, next_token: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(name.into(), Value::Array(items));
    put(&mut out, "NextToken", next_token.map(Value::from));
    Value::Object(out)
}

/// Runs one operation for `account`.
pub(crate) fn handle(
    service: &Events,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    let Some(shape) = input_shape(operation) else {
        return Err(ServiceError::client(
            400,
            "UnknownOperationException",
            format!("Gust's EventBridge does not implement the operation {operation}"),
        ));
    };
    validate::check(shape, input, &DIALECT)?;
    Ok(run(service, account, operation, input)?)
}

fn run(
    service: &Events,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, EventsError> {
    let name = string(input, "Name").unwrap_or_default();
    let bus = string(input, "EventBusName");
    let rule = string(input, "Rule").unwrap_or_default();
    Ok(match operation {
        "CreateEventBus" => {
            let settings = ["KmsKeyIdentifier", "DeadLetterConfig", "LogConfig"]
                .iter()
                .filter_map(|k| input.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
            let bus = service.create_event_bus(
                account,
                CreateBusInput {
                    name: name.to_owned(),
                    event_source_name: owned(input, "EventSourceName"),
                    description: owned(input, "Description"),
                    settings,
                    tags: tags(input),
                },
            )?;
            let mut out = Map::new();
            out.insert("EventBusArn".into(), json!(bus.arn));
            put(&mut out, "Description", bus.description.map(Value::from));
            for (key, value) in bus.settings {
                out.insert(key, value);
            }
            Value::Object(out)
        }
        "DeleteEventBus" => {
            service.delete_event_bus(account, name)?;
            json!({})
        }
        "DescribeEventBus" => {
            let bus = service.describe_event_bus(account, string(input, "Name"))?;
            bus_json(&bus, true)
        }
        "ListEventBuses" => {
            let found =
                service.list_event_buses(account, string(input, "NamePrefix"), &page(input))?;
            listed(
                "EventBuses",
                found.items.iter().map(|b| bus_json(b, false)).collect(),
                found.next_token,
            )
        }
        "PutRule" => {
            let arn = service.put_rule(
                account,
                PutRuleInput {
                    name: name.to_owned(),
                    event_pattern: owned(input, "EventPattern"),
                    schedule_expression: owned(input, "ScheduleExpression"),
                    state: string(input, "State").and_then(RuleState::parse),
                    description: owned(input, "Description"),
                    role_arn: owned(input, "RoleArn"),
                    tags: tags(input),
                    event_bus_name: bus.map(str::to_owned),
                },
            )?;
            json!({"RuleArn": arn})
        }
        "DescribeRule" => rule_json(&service.describe_rule(account, name, bus)?, true),
        "ListRules" => {
            let found =
                service.list_rules(account, string(input, "NamePrefix"), bus, &page(input))?;
            listed(
                "Rules",
                found.items.iter().map(|r| rule_json(r, false)).collect(),
                found.next_token,
            )
        }
        "EnableRule" => {
            service.enable_rule(account, name, bus)?;
            json!({})
        }
        "DisableRule" => {
            service.disable_rule(account, name, bus)?;
            json!({})
        }
        "DeleteRule" => {
            service.delete_rule(account, name, bus)?;
            json!({})
        }
        "ListRuleNamesByTarget" => {
            let found = service.list_rule_names_by_target(
                account,
                string(input, "TargetArn").unwrap_or_default(),
                bus,
                &page(input),
            )?;
            listed(
                "RuleNames",
                found.items.into_iter().map(Value::from).collect(),
                found.next_token,
            )
        }
        "PutTargets" => {
            let targets = input
                .get("Targets")
                .and_then(Value::as_array)
                .map(|items| items.iter().map(target_of).collect())
                .unwrap_or_default();
            failures_json(&service.put_targets(account, rule, bus, targets)?)
        }
        "RemoveTargets" => {
            failures_json(&service.remove_targets(account, rule, bus, &strings(input, "Ids"))?)
        }
        "ListTargetsByRule" => {
            let found = service.list_targets_by_rule(account, rule, bus, &page(input))?;
            listed(
                "Targets",
                found.items.iter().map(target_json).collect(),
                found.next_token,
            )
        }
        "PutEvents" => {
            let entries: Vec<PutEventsEntry> = input
                .get("Entries")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|e| PutEventsEntry {
                            source: owned(e, "Source"),
                            detail_type: owned(e, "DetailType"),
                            detail: owned(e, "Detail"),
                            resources: strings(e, "Resources"),
                            event_bus_name: owned(e, "EventBusName"),
                            time: e.get("Time").and_then(timestamp_of),
                            trace_header: owned(e, "TraceHeader"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let output = service.put_events(account, &entries)?;
            let entries: Vec<Value> = output
                .entries
                .iter()
                .map(|e| {
                    let mut out = Map::new();
                    put(&mut out, "EventId", e.event_id.clone().map(Value::from));
                    put(&mut out, "ErrorCode", e.error_code.clone().map(Value::from));
                    put(
                        &mut out,
                        "ErrorMessage",
                        e.error_message.clone().map(Value::from),
                    );
                    Value::Object(out)
                })
                .collect();
            json!({"FailedEntryCount": output.failed_entry_count, "Entries": entries})
        }
        "TestEventPattern" => {
            let result = service.test_event_pattern(
                string(input, "EventPattern").unwrap_or_default(),
                string(input, "Event").unwrap_or_default(),
            )?;
            json!({"Result": result})
        }
        "TagResource" => {
            service.tag_resource(
                account,
                string(input, "ResourceARN").unwrap_or_default(),
                &tags(input),
            )?;
            json!({})
        }
        "UntagResource" => {
            service.untag_resource(
                account,
                string(input, "ResourceARN").unwrap_or_default(),
                &strings(input, "TagKeys"),
            )?;
            json!({})
        }
        "ListTagsForResource" => {
            let tags =
                service.list_tags(account, string(input, "ResourceARN").unwrap_or_default())?;
            json!({"Tags": tags_json(&tags)})
        }
        other => {
            return Err(EventsError::validation(format!(
                "Unsupported operation {other}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use gust_events::EventsConfig;
    use gust_model::targets::{BoxFuture, Deliver, Delivery, DeliveryError};

    use super::*;

    const ACCOUNT: &str = "123456789012";

    #[derive(Debug, Default)]
    struct Sink(Mutex<Vec<String>>);

    impl Deliver for Sink {
        fn deliver<'a>(
            &'a self,
            delivery: Delivery<'a>,
        ) -> BoxFuture<'a, Result<(), DeliveryError>> {
            self.0.lock().unwrap().push(delivery.payload);
            Box::pin(async { Ok(()) })
        }
    }

    fn service() -> (Arc<Events>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::open(
            &dir.path().join("events.db"),
            Arc::new(gust_model::SystemClock),
            "us-east-1",
            Arc::new(Sink::default()),
            EventsConfig::default(),
        )
        .unwrap();
        (events, dir)
    }

    fn call(service: &Events, operation: &str, input: Value) -> Result<Value, ServiceError> {
        handle(service, ACCOUNT, operation, &input)
    }

    #[test]
    fn events_inputs_are_checked_against_the_model() {
        let (service, _dir) = service();
        let error = call(&service, "PutRule", json!({})).unwrap_err();
        assert_eq!(error.shape, "ValidationException");
        assert_eq!(
            error.message,
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
        );
        let error = call(
            &service,
            "PutRule",
            json!({"Name": "bad name!", "State": "ON"}),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "2 validation errors detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+; Value 'ON' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]"
        );
        let error = call(
            &service,
            "PutTargets",
            json!({"Rule": "r", "Targets": [{"Id": "t", "Arn": "arn:aws:sqs:us-east-1:1:q",
                   "RetryPolicy": {"MaximumRetryAttempts": 186, "MaximumEventAgeInSeconds": 10},
                   "InputTransformer": {"InputPathsMap": {"bad key": "$.x"}, "InputTemplate": "<x>"}}]}),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "3 validation errors detected: Value '{bad key=$.x}' at 'targets.1.member.inputTransformer.inputPathsMap' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [A-Za-z0-9\\_\\-]+]; Value '186' at 'targets.1.member.retryPolicy.maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 185; Value '10' at 'targets.1.member.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 60"
        );
        let entries: Vec<Value> = (0..11)
            .map(|_| json!({"Source": "s", "DetailType": "t", "Detail": "{\"a\": 1}"}))
            .collect();
        let error = call(&service, "PutEvents", json!({"Entries": entries})).unwrap_err();
        assert!(error.message.starts_with("1 validation error detected: Value '[PutEventsRequestEntry(time=null, source=s, resources=null, detailType=t, detail={a=1}, eventBusName=null"), "{}", error.message);
        assert!(error.message.ends_with("at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10"));
        let error = call(
            &service,
            "DescribeEventBus",
            json!({"Name": "arn:aws:events:us-east-1:12:event-bus/x"}),
        )
        .unwrap_err();
        assert!(error
            .message
            .contains("Member must satisfy regular expression pattern: (arn:aws"));
        assert!(call(
            &service,
            "DescribeEventBus",
            json!({"Name": "arn:aws:events:us-east-1:123456789012:event-bus/default"})
        )
        .is_ok());
        let error = call(&service, "ListRules", json!({"Limit": "ten"})).unwrap_err();
        assert_eq!(error.shape, "SerializationException");
        let error = call(&service, "CreateArchive", json!({})).unwrap_err();
        assert_eq!(error.shape, "UnknownOperationException");
    }

    #[test]
    fn events_operations_round_trip() {
        let (service, _dir) = service();
        let created = call(
            &service,
            "CreateEventBus",
            json!({"Name": "orders", "Description": "d", "Tags": [{"Key": "k", "Value": "v"}]}),
        )
        .unwrap();
        assert_eq!(
            created["EventBusArn"],
            "arn:aws:events:us-east-1:123456789012:event-bus/orders"
        );
        let error = call(&service, "CreateEventBus", json!({"Name": "orders"})).unwrap_err();
        assert_eq!(error.shape, "ResourceAlreadyExistsException");
        assert_eq!(error.status, 400);
        let buses = call(&service, "ListEventBuses", json!({})).unwrap();
        assert_eq!(buses["EventBuses"].as_array().unwrap().len(), 2);
        let arn = call(
            &service,
            "PutRule",
            json!({"Name": "r", "EventPattern": "{\"source\": [\"app\"]}"}),
        )
        .unwrap()["RuleArn"]
            .clone();
        assert_eq!(arn, "arn:aws:events:us-east-1:123456789012:rule/r");
        let error = call(
            &service,
            "PutRule",
            json!({"Name": "r", "EventPattern": "{\"source\": \"app\"}"}),
        )
        .unwrap_err();
        assert_eq!(error.shape, "InvalidEventPatternException");
        assert_eq!(
            error.message,
            "Event pattern is not valid. Reason: \"source\" must be an object or an array"
        );
        let target = json!({"Id": "t", "Arn": "arn:aws:sqs:us-east-1:123456789012:q",
            "InputTransformer": {"InputPathsMap": {"s": "$.source"}, "InputTemplate": "\"<s>\""},
            "RetryPolicy": {"MaximumRetryAttempts": 3},
            "DeadLetterConfig": {"Arn": "arn:aws:sqs:us-east-1:123456789012:dlq"},
            "EcsParameters": {"TaskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/x"}});
        let put = call(
            &service,
            "PutTargets",
            json!({"Rule": "r", "Targets": [target, {"Id": "bad", "Arn": "nope"}]}),
        )
        .unwrap();
        assert_eq!(put["FailedEntryCount"], 1);
        assert_eq!(put["FailedEntries"][0]["TargetId"], "bad");
        assert_eq!(put["FailedEntries"][0]["ErrorCode"], "ValidationException");
        let listed = call(&service, "ListTargetsByRule", json!({"Rule": "r"})).unwrap();
        assert_eq!(listed["Targets"], json!([target]));
        let described = call(&service, "DescribeRule", json!({"Name": "r"})).unwrap();
        assert_eq!(described["State"], "ENABLED");
        assert_eq!(described["EventBusName"], "default");
        assert_eq!(described["CreatedBy"], ACCOUNT);
        let error = call(&service, "DeleteRule", json!({"Name": "r"})).unwrap_err();
        assert_eq!(error.shape, "ValidationException");
        assert_eq!(error.message, "Rule can't be deleted since it has targets.");
        let sent = call(
            &service,
            "PutEvents",
            json!({"Entries": [
                {"Source": "app", "DetailType": "t", "Detail": "{}", "Time": 1700000000},
                {"Source": "app", "DetailType": "t", "Detail": "nope"}]}),
        )
        .unwrap();
        assert_eq!(sent["FailedEntryCount"], 1);
        assert!(sent["Entries"][0]["EventId"].is_string());
        assert_eq!(sent["Entries"][1]["ErrorCode"], "MalformedDetail");
        let tested = call(
            &service,
            "TestEventPattern",
            json!({"EventPattern": "{\"source\": [\"app\"]}",
                   "Event": json!({"id": "1", "account": ACCOUNT, "source": "app", "time": "2024-01-01T00:00:00Z",
                                   "region": "us-east-1", "resources": [], "detail-type": "t", "detail": {}}).to_string()}),
        )
        .unwrap();
        assert_eq!(tested, json!({"Result": true}));
        call(
            &service,
            "TagResource",
            json!({"ResourceARN": arn, "Tags": [{"Key": "a", "Value": "b"}]}),
        )
        .unwrap();
        let tags = call(&service, "ListTagsForResource", json!({"ResourceARN": arn})).unwrap();
        assert_eq!(tags, json!({"Tags": [{"Key": "a", "Value": "b"}]}));
        let removed = call(
            &service,
            "RemoveTargets",
            json!({"Rule": "r", "Ids": ["t", "x"]}),
        )
        .unwrap();
        assert_eq!(removed["FailedEntryCount"], 1);
        call(&service, "DeleteRule", json!({"Name": "r"})).unwrap();
        let error = call(&service, "DescribeRule", json!({"Name": "r"})).unwrap_err();
        assert_eq!(error.shape, "ResourceNotFoundException");
        assert_eq!(error.message, "Rule r does not exist on EventBus default.");
    }
}

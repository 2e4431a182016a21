//! The EventBridge Scheduler adapter: REST-JSON (signing name `scheduler`), one handler from
//! a request's method, path, query and body to an operation over `gust_scheduler::Scheduler`.
//!
//! | Operation | Method and path |
//! |---|---|
//! | CreateSchedule / GetSchedule / UpdateSchedule / DeleteSchedule | `POST` / `GET` / `PUT` / `DELETE /schedules/{Name}` (`?groupName=`, `&clientToken=`) |
//! | ListSchedules | `GET /schedules?ScheduleGroup=&NamePrefix=&State=&NextToken=&MaxResults=` |
//! | CreateScheduleGroup / GetScheduleGroup / DeleteScheduleGroup | `POST` / `GET` / `DELETE /schedule-groups/{Name}` |
//! | ListScheduleGroups | `GET /schedule-groups?NamePrefix=&NextToken=&MaxResults=` |
//! | TagResource / UntagResource / ListTagsForResource | `POST` / `DELETE` (`?TagKeys=`…) / `GET /tags/{ResourceArn}` |
//!
//! Every operation answers 200 with a JSON body. Inputs (body, labels and query members,
//! gathered into one object named as the model names the members) are first checked
//! against the service model as the service checks them (required members, enums,
//! lengths, patterns, ranges), answering `1 validation error detected: Value … at '…'
//! failed to satisfy constraint: …`; a member of the wrong JSON type is a
//! `SerializationException`. The semantics are the service's. Timestamps are epoch seconds,
//! both ways. Errors are the `x-amzn-ErrorType` header and `{"Message": …}`
//! ([`error_response`]).
//!
//! The handler is synchronous: it commits to SQLite, so callers run it on the blocking pool.

use std::collections::BTreeMap;

use gust_scheduler::{
    ActionAfterCompletion, DeadLetterConfig, EventBridgeParameters, FlexibleMode,
    FlexibleTimeWindowInput, Page, RetryPolicyInput, Schedule, ScheduleFilter, ScheduleGroup,
    ScheduleInput, ScheduleState, Scheduler, SchedulerError, SqsParameters, TargetInput,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::protocol::ServiceError;
use crate::validate::read::{integer, object, owned, string, timestamp};
use crate::validate::{
    self, member, patterned, required, serialization, shown_with, text, Dialect, Kind, Member,
    Pattern,
};

impl From<SchedulerError> for ServiceError {
    fn from(error: SchedulerError) -> Self {
        ServiceError::of_service(
            error.status(),
            error.is_internal(),
            error.shape(),
            error.to_string(),
        )
    }
}

/// A `ServiceError` as Scheduler's REST-JSON error response: the status, the
/// `x-amzn-ErrorType` header's value and the body (`{"Message": …}`).
pub(crate) fn error_response(error: &ServiceError) -> (u16, String, Value) {
    (
        error.status,
        error.shape.clone(),
        json!({ "Message": error.message }),
    )
}

// ---------------------------------------------------------------------------------------
// The input shapes, as the service model (2021-06-30) declares them.

/// `Name`, `ScheduleGroupName` and the name prefixes.
const NAME_PATTERN: Pattern = Pattern {
    text: "[0-9a-zA-Z-_.]+",
    matches: |text| made_of(text, b"-_."),
};
/// `ClientToken`.
const CLIENT_TOKEN_PATTERN: Pattern = Pattern {
    text: "[a-zA-Z0-9-_]+",
    matches: |text| made_of(text, b"-_"),
};
/// `KmsKeyArn`.
const KMS_KEY_ARN_PATTERN: Pattern = Pattern {
    text: r"arn:aws[a-z-]*:kms:[a-z0-9\-]+:\d{12}:(key|alias)\/[0-9a-zA-Z-_]*",
    matches: |text| {
        arn_matches(text, "kms", true, |resource| {
            let (kind, id) = resource.split_once('/').unwrap_or((resource, "\u{0}"));
            matches!(kind, "key" | "alias") && (id.is_empty() || made_of(id, b"-_"))
        })
    },
};
/// `RoleArn`.
const ROLE_ARN_PATTERN: Pattern = Pattern {
    text: r"arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]+",
    matches: |text| {
        arn_matches(text, "iam", false, |resource| {
            resource
                .strip_prefix("role/")
                .is_some_and(|path| made_of(path, b"_+=,.@/-"))
        })
    },
};
/// `DeadLetterConfigArnString`.
const DEAD_LETTER_ARN_PATTERN: Pattern = Pattern {
    text: r"arn:aws[a-z-]*:sqs:[a-z0-9\-]+:\d{12}:[a-zA-Z0-9\-_]+",
    matches: |text| arn_matches(text, "sqs", true, |resource| made_of(resource, b"-_")),
};
/// `TagResourceArn`: a schedule group's ARN.
const GROUP_ARN_PATTERN: Pattern = Pattern {
    text: r"arn:aws[a-z-]*:scheduler:[a-z0-9\-]+:\d{12}:schedule-group\/[0-9a-zA-Z-_.]+",
    matches: |text| {
        arn_matches(text, "scheduler", true, |resource| {
            resource
                .strip_prefix("schedule-group/")
                .is_some_and(|name| made_of(name, b"-_."))
        })
    },
};
/// `EventBridgeParameters.Source`.
const SOURCE_PATTERN: Pattern = Pattern {
    text: r"(?=[/\.\-_A-Za-z0-9]+)((?!aws\.).*)|(\$(\.[\w_-]+(\[(\d+|\*)\])*)*)",
    matches: |text| {
        let plain = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
            && !text.starts_with("aws.");
        plain || json_path(text)
    },
};

/// Whether `text` is not empty and all ASCII letters, digits and `extra`.
fn made_of(text: &str, extra: &[u8]) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// `arn:aws[a-z-]*:<service>:<region>:<12 digits>:<resource>`, the region `[a-z0-9\-]+`
/// (or empty, when `regional` is false).
fn arn_matches(text: &str, service: &str, regional: bool, resource: impl Fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [prefix, partition, svc, region, account, rest] = parts[..] else {
        return false;
    };
    let partition_ok = partition
        .strip_prefix("aws")
        .is_some_and(|tail| tail.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    let region_ok = if regional {
        !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    } else {
        region.is_empty()
    };
    prefix == "arn"
        && partition_ok
        && svc == service
        && region_ok
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource(rest)
}

/// `\$(\.[\w_-]+(\[(\d+|\*)\])*)*`.
fn json_path(text: &str) -> bool {
    let Some(mut rest) = text.strip_prefix('$') else {
        return false;
    };
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix('.') else {
            return false;
        };
        let end = after.find(|c: char| !word(c)).unwrap_or(after.len());
        if end == 0 {
            return false;
        }
        rest = &after[end..];
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else {
                return false;
            };
            let index = &inner[..close];
            if !(index == "*" || (!index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))) {
                return false;
            }
            rest = &inner[close + 1..];
        }
    }
    true
}

const NAME: Kind = patterned(1, 64, NAME_PATTERN);
const CLIENT_TOKEN: Kind = patterned(1, 64, CLIENT_TOKEN_PATTERN);
const SCHEDULE_EXPRESSION: Kind = text(1, 256);
const TIMEZONE: Kind = text(1, 50);
const DESCRIPTION: Kind = text(0, 512);
const TIMESTAMP: Kind = Kind::Timestamp;
const STATE: Kind = Kind::Enum(&["ENABLED", "DISABLED"]);
const ACTION_AFTER_COMPLETION: Kind = Kind::Enum(&["NONE", "DELETE"]);
const KMS_KEY_ARN: Kind = patterned(1, 2048, KMS_KEY_ARN_PATTERN);
const TARGET_ARN: Kind = text(1, 1600);
const ROLE_ARN: Kind = patterned(1, 1600, ROLE_ARN_PATTERN);
const TARGET_INPUT: Kind = Kind::Str {
    min: Some(1),
    max: None,
    pattern: None,
};
const DEAD_LETTER_CONFIG: Kind =
    Kind::Struct(&[member("Arn", &patterned(1, 1600, DEAD_LETTER_ARN_PATTERN))]);
const RETRY_POLICY: Kind = Kind::Struct(&[
    member(
        "MaximumEventAgeInSeconds",
        &Kind::Int {
            min: Some(60),
            max: Some(86_400),
        },
    ),
    member(
        "MaximumRetryAttempts",
        &Kind::Int {
            min: Some(0),
            max: Some(185),
        },
    ),
]);
const SQS_PARAMETERS: Kind = Kind::Struct(&[member("MessageGroupId", &text(1, 128))]);
const EVENTBRIDGE_PARAMETERS: Kind = Kind::Struct(&[
    required("DetailType", &text(1, 128)),
    required("Source", &patterned(1, 256, SOURCE_PATTERN)),
]);
/// The target parameters Gust refuses (it has no ECS, Kinesis, SageMaker…).
const UNSUPPORTED_PARAMETERS: &[&str] = &[
    "EcsParameters",
    "EventBridgePutEventsV2Parameters",
    "EventBridgePutRawEventsParameters",
    "KinesisParameters",
    "SageMakerPipelineParameters",
];
const TARGET: Kind = Kind::Struct(&[
    required("Arn", &TARGET_ARN),
    required("RoleArn", &ROLE_ARN),
    member("DeadLetterConfig", &DEAD_LETTER_CONFIG),
    member("RetryPolicy", &RETRY_POLICY),
    member("Input", &TARGET_INPUT),
    member("EcsParameters", &Kind::Opaque),
    member("EventBridgeParameters", &EVENTBRIDGE_PARAMETERS),
    member("EventBridgePutEventsV2Parameters", &Kind::Opaque),
    member("EventBridgePutRawEventsParameters", &Kind::Opaque),
    member("KinesisParameters", &Kind::Opaque),
    member("SageMakerPipelineParameters", &Kind::Opaque),
    member("SqsParameters", &SQS_PARAMETERS),
]);
const FLEXIBLE_TIME_WINDOW: Kind = Kind::Struct(&[
    required("Mode", &Kind::Enum(&["OFF", "FLEXIBLE"])),
    member(
        "MaximumWindowInMinutes",
        &Kind::Int {
            min: Some(1),
            max: Some(1440),
        },
    ),
]);
const TAG_KEY: Kind = text(1, 128);
const TAG: Kind = Kind::Struct(&[required("Key", &TAG_KEY), required("Value", &text(1, 256))]);
const TAG_LIST: Kind = Kind::List {
    member: &TAG,
    min: None,
    max: Some(200),
};
const TAG_KEYS: Kind = Kind::List {
    member: &TAG_KEY,
    min: None,
    max: Some(200),
};
const TAG_RESOURCE_ARN: Kind = patterned(1, 1011, GROUP_ARN_PATTERN);
const NEXT_TOKEN: Kind = text(1, 2048);
const MAX_RESULTS: Kind = Kind::Int {
    min: Some(1),
    max: Some(100),
};

const SCHEDULE_SETTINGS: &[Member] = &[
    required("Name", &NAME),
    member("GroupName", &NAME),
    required("ScheduleExpression", &SCHEDULE_EXPRESSION),
    member("StartDate", &TIMESTAMP),
    member("EndDate", &TIMESTAMP),
    member("Description", &DESCRIPTION),
    member("ScheduleExpressionTimezone", &TIMEZONE),
    member("State", &STATE),
    member("KmsKeyArn", &KMS_KEY_ARN),
    required("Target", &TARGET),
    required("FlexibleTimeWindow", &FLEXIBLE_TIME_WINDOW),
    member("ClientToken", &CLIENT_TOKEN),
    member("ActionAfterCompletion", &ACTION_AFTER_COMPLETION),
];
const SCHEDULE_NAMED: &[Member] = &[required("Name", &NAME), member("GroupName", &NAME)];
const DELETE_SCHEDULE: &[Member] = &[
    required("Name", &NAME),
    member("GroupName", &NAME),
    member("ClientToken", &CLIENT_TOKEN),
];
const LIST_SCHEDULES: &[Member] = &[
    member("GroupName", &NAME),
    member("NamePrefix", &NAME),
    member("State", &STATE),
    member("NextToken", &NEXT_TOKEN),
    member("MaxResults", &MAX_RESULTS),
];
const CREATE_SCHEDULE_GROUP: &[Member] = &[
    required("Name", &NAME),
    member("Tags", &TAG_LIST),
    member("ClientToken", &CLIENT_TOKEN),
];
const GROUP_NAMED: &[Member] = &[required("Name", &NAME)];
const DELETE_SCHEDULE_GROUP: &[Member] = &[
    required("Name", &NAME),
    member("ClientToken", &CLIENT_TOKEN),
];
const LIST_SCHEDULE_GROUPS: &[Member] = &[
    member("NamePrefix", &NAME),
    member("NextToken", &NEXT_TOKEN),
    member("MaxResults", &MAX_RESULTS),
];
const TAG_RESOURCE: &[Member] = &[
    required("ResourceArn", &TAG_RESOURCE_ARN),
    required("Tags", &TAG_LIST),
];
const UNTAG_RESOURCE: &[Member] = &[
    required("ResourceArn", &TAG_RESOURCE_ARN),
    required("TagKeys", &TAG_KEYS),
];
const LIST_TAGS_FOR_RESOURCE: &[Member] = &[required("ResourceArn", &TAG_RESOURCE_ARN)];

/// Scheduler cuts long values in its messages, and checks a pattern only on a value long
/// enough.
const DIALECT: Dialect = Dialect {
    shown: |value, _| shown_with(value, gust_model::error::quoted),
    pattern_when_short: false,
};

// ---------------------------------------------------------------------------------------
// Operations and their routes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CreateSchedule,
    GetSchedule,
    UpdateSchedule,
    DeleteSchedule,
    ListSchedules,
    CreateScheduleGroup,
    GetScheduleGroup,
    DeleteScheduleGroup,
    ListScheduleGroups,
    TagResource,
    UntagResource,
    ListTagsForResource,
}

impl Operation {
    fn shape(self) -> &'static [Member] {
        match self {
            Operation::CreateSchedule | Operation::UpdateSchedule => SCHEDULE_SETTINGS,
            Operation::GetSchedule => SCHEDULE_NAMED,
            Operation::DeleteSchedule => DELETE_SCHEDULE,
            Operation::ListSchedules => LIST_SCHEDULES,
            Operation::CreateScheduleGroup => CREATE_SCHEDULE_GROUP,
            Operation::GetScheduleGroup => GROUP_NAMED,
            Operation::DeleteScheduleGroup => DELETE_SCHEDULE_GROUP,
            Operation::ListScheduleGroups => LIST_SCHEDULE_GROUPS,
            Operation::TagResource => TAG_RESOURCE,
            Operation::UntagResource => UNTAG_RESOURCE,
            Operation::ListTagsForResource => LIST_TAGS_FOR_RESOURCE,
        }
    }

    /// Query parameters: (wire name, member name, is a list).
    fn query(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            Operation::GetSchedule => &[("groupName", "GroupName", false)],
            Operation::DeleteSchedule => &[
                ("groupName", "GroupName", false),
                ("clientToken", "ClientToken", false),
            ],
            Operation::DeleteScheduleGroup => &[("clientToken", "ClientToken", false)],
            Operation::ListSchedules => &[
                ("ScheduleGroup", "GroupName", false),
                ("NamePrefix", "NamePrefix", false),
                ("State", "State", false),
                ("NextToken", "NextToken", false),
                ("MaxResults", "MaxResults", false),
            ],
            Operation::ListScheduleGroups => &[
                ("NamePrefix", "NamePrefix", false),
                ("NextToken", "NextToken", false),
                ("MaxResults", "MaxResults", false),
            ],
            Operation::UntagResource => &[("TagKeys", "TagKeys", true)],
            _ => &[],
        }
    }

    /// Whether the body carries members.
    fn has_body(self) -> bool {
        matches!(
            self,
            Operation::CreateSchedule
                | Operation::UpdateSchedule
                | Operation::CreateScheduleGroup
                | Operation::TagResource
        )
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The query string's parameters, in order (a name may repeat).
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    let decode_part = |s: &str| decode(&s.replace('+', " "));
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode_part(name), decode_part(value)),
            None => (decode_part(pair), String::new()),
        })
        .collect()
}

fn unknown_operation(method: &str, path: &str) -> ServiceError {
    ServiceError::client(
        404,
        "UnknownOperationException",
        format!("EventBridge Scheduler has no operation for {method} {path}"),
    )
}

/// An operation with its URI label (member name and value), if it has one.
type Routed = (Operation, Option<(&'static str, String)>);

/// The operation a request names. `None` when the path is not Scheduler's.
fn route(method: &str, raw_path: &str) -> Option<Result<Routed, ServiceError>> {
    let path = raw_path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').collect();
    let found = match segments.as_slice() {
        ["schedules"] => match method {
            "GET" => Some((Operation::ListSchedules, None)),
            _ => None,
        },
        ["schedules", name] => {
            let label = Some(("Name", decode(name)));
            match method {
                "POST" => Some((Operation::CreateSchedule, label)),
                "GET" => Some((Operation::GetSchedule, label)),
                "PUT" => Some((Operation::UpdateSchedule, label)),
                "DELETE" => Some((Operation::DeleteSchedule, label)),
                _ => None,
            }
        }
        ["schedule-groups"] => match method {
            "GET" => Some((Operation::ListScheduleGroups, None)),
            _ => None,
        },
        ["schedule-groups", name] => {
            let label = Some(("Name", decode(name)));
            match method {
                "POST" => Some((Operation::CreateScheduleGroup, label)),
                "GET" => Some((Operation::GetScheduleGroup, label)),
                "DELETE" => Some((Operation::DeleteScheduleGroup, label)),
                _ => None,
            }
        }
        ["tags", arn @ ..] if !arn.is_empty() => {
            // The ARN's `/` may come encoded or not.
            let arn = decode(&arn.join("/"));
            if !arn.contains(":scheduler:") {
                return None;
            }
            let label = Some(("ResourceArn", arn));
            match method {
                "POST" => Some((Operation::TagResource, label)),
                "GET" => Some((Operation::ListTagsForResource, label)),
                "DELETE" => Some((Operation::UntagResource, label)),
                _ => None,
            }
        }
        _ => return None,
    };
    Some(found.ok_or_else(|| unknown_operation(method, path)))
}

/// Handles a request if its path is Scheduler's: the status and JSON body of the answer,
/// or the error to render with [`error_response`].
pub(crate) fn handle(
    service: &Scheduler,
    account: &str,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    body: &[u8],
) -> Option<Result<(u16, Value), ServiceError>> {
    let (operation, label) = match route(method, raw_path)? {
        Ok(found) => found,
        Err(error) => return Some(Err(error)),
    };
    Some(
        input(operation, label, raw_query, body)
            .and_then(|input| {
                validate::check(operation.shape(), &input, &DIALECT)?;
                Ok(run(service, account, operation, &input)?)
            })
            .map(|output| (200, output)),
    )
}

/// The operation's input: the body's members, the label and the query's.
fn input(
    operation: Operation,
    label: Option<(&'static str, String)>,
    raw_query: &str,
    body: &[u8],
) -> Result<Value, ServiceError> {
    let mut object = Map::new();
    if operation.has_body() && !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => object = members,
            Ok(other) => return Err(serialization(&other, "a Structure")),
            Err(_) => {
                return Err(ServiceError::client(
                    400,
                    "SerializationException",
                    "The request body is not valid JSON",
                ))
            }
        }
    }
    let pairs = query_pairs(raw_query);
    for (wire, name, list) in operation.query() {
        let values: Vec<&String> = pairs
            .iter()
            .filter(|(k, _)| k == wire)
            .map(|(_, v)| v)
            .collect();
        if values.is_empty() {
            continue;
        }
        let value = if *list {
            Value::Array(values.into_iter().map(|v| json!(v)).collect())
        } else if *name == "MaxResults" {
            let text = values[0];
            match text.parse::<i64>() {
                Ok(number) => json!(number),
                Err(_) => {
                    return Err(ServiceError::client(
                        400,
                        "ValidationException",
                        format!("1 validation error detected: Value '{text}' at 'maxResults' failed to satisfy constraint: Member must be a number"),
                    ))
                }
            }
        } else {
            json!(values[0])
        };
        object.insert((*name).to_owned(), value);
    }
    if let Some((name, value)) = label {
        object.insert(name.to_owned(), Value::String(value));
    }
    Ok(Value::Object(object))
}

// ---------------------------------------------------------------------------------------
// Reading checked inputs and writing outputs.

fn page(input: &Value) -> Page {
    Page {
        max_results: integer(input, "MaxResults"),
        next_token: owned(input, "NextToken"),
    }
}

fn tags(input: &Value) -> BTreeMap<String, String> {
    input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|tag| Some((owned(tag, "Key")?, owned(tag, "Value")?)))
                .collect()
        })
        .unwrap_or_default()
}

fn target_input(target: &Value) -> TargetInput {
    TargetInput {
        arn: owned(target, "Arn").unwrap_or_default(),
        role_arn: owned(target, "RoleArn").unwrap_or_default(),
        input: owned(target, "Input"),
        retry_policy: object(target, "RetryPolicy").map(|policy| RetryPolicyInput {
            maximum_event_age_in_seconds: integer(policy, "MaximumEventAgeInSeconds"),
            maximum_retry_attempts: integer(policy, "MaximumRetryAttempts"),
        }),
        dead_letter_config: object(target, "DeadLetterConfig").map(|config| DeadLetterConfig {
            arn: owned(config, "Arn"),
        }),
        sqs_parameters: object(target, "SqsParameters").map(|parameters| SqsParameters {
            message_group_id: owned(parameters, "MessageGroupId"),
        }),
        eventbridge_parameters: object(target, "EventBridgeParameters").map(|parameters| {
            EventBridgeParameters {
                detail_type: owned(parameters, "DetailType").unwrap_or_default(),
                source: owned(parameters, "Source").unwrap_or_default(),
            }
        }),
        other_parameters: UNSUPPORTED_PARAMETERS
            .iter()
            .filter(|name| object(target, name).is_some())
            .map(|name| (*name).to_owned())
            .collect(),
    }
}

fn schedule_input(input: &Value) -> ScheduleInput {
    let window = object(input, "FlexibleTimeWindow").unwrap_or(&Value::Null);
    ScheduleInput {
        group: owned(input, "GroupName"),
        expression: owned(input, "ScheduleExpression").unwrap_or_default(),
        timezone: owned(input, "ScheduleExpressionTimezone"),
        start: timestamp(input, "StartDate"),
        end: timestamp(input, "EndDate"),
        description: owned(input, "Description"),
        state: string(input, "State").and_then(ScheduleState::parse),
        kms_key_arn: owned(input, "KmsKeyArn"),
        target: target_input(object(input, "Target").unwrap_or(&Value::Null)),
        flexible_time_window: FlexibleTimeWindowInput {
            mode: string(window, "Mode")
                .and_then(FlexibleMode::parse)
                .unwrap_or(FlexibleMode::Off),
            maximum_window_in_minutes: integer(window, "MaximumWindowInMinutes"),
        },
        client_token: owned(input, "ClientToken"),
        action_after_completion: string(input, "ActionAfterCompletion")
            .and_then(ActionAfterCompletion::parse),
    }
}

/// Epoch seconds, to the millisecond.
fn epoch(at: OffsetDateTime) -> Value {
    let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    json!(millis as f64 / 1000.0)
}

/// Inserts `value` under `name` when there is one.
fn put(object: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(name.to_owned(), value);
    }
}

fn group_json(group: &ScheduleGroup) -> Value {
    let mut out = Map::new();
    out.insert("Arn".into(), json!(group.arn));
    out.insert("Name".into(), json!(group.name));
    out.insert("State".into(), json!(group.state.as_str()));
    put(&mut out, "CreationDate", group.created.map(epoch));
    put(&mut out, "LastModificationDate", group.modified.map(epoch));
    Value::Object(out)
}

fn target_json(schedule: &Schedule) -> Value {
    let target = &schedule.target;
    let mut out = Map::new();
    out.insert("Arn".into(), json!(target.arn));
    out.insert("RoleArn".into(), json!(target.role_arn));
    put(&mut out, "Input", target.input.as_ref().map(|i| json!(i)));
    out.insert(
        "RetryPolicy".into(),
        json!({
            "MaximumEventAgeInSeconds": target.retry_policy.maximum_event_age_in_seconds,
            "MaximumRetryAttempts": target.retry_policy.maximum_retry_attempts,
        }),
    );
    put(
        &mut out,
        "DeadLetterConfig",
        target.dead_letter_config.as_ref().map(|config| {
            let mut c = Map::new();
            put(&mut c, "Arn", config.arn.as_ref().map(|a| json!(a)));
            Value::Object(c)
        }),
    );
    put(
        &mut out,
        "SqsParameters",
        target.sqs_parameters.as_ref().map(|parameters| {
            let mut p = Map::new();
            put(
                &mut p,
                "MessageGroupId",
                parameters.message_group_id.as_ref().map(|g| json!(g)),
            );
            Value::Object(p)
        }),
    );
    put(
        &mut out,
        "EventBridgeParameters",
        target.eventbridge_parameters.as_ref().map(
            |parameters| json!({"DetailType": parameters.detail_type, "Source": parameters.source}),
        ),
    );
    Value::Object(out)
}

fn schedule_json(schedule: &Schedule) -> Value {
    let window = schedule.flexible_time_window;
    let mut flexible = Map::new();
    flexible.insert("Mode".into(), json!(window.mode.as_str()));
    put(
        &mut flexible,
        "MaximumWindowInMinutes",
        window.maximum_window_in_minutes.map(|m| json!(m)),
    );
    let mut out = Map::new();
    out.insert("Arn".into(), json!(schedule.arn));
    out.insert("GroupName".into(), json!(schedule.group));
    out.insert("Name".into(), json!(schedule.name));
    out.insert("ScheduleExpression".into(), json!(schedule.expression));
    out.insert(
        "ScheduleExpressionTimezone".into(),
        json!(schedule.timezone.as_deref().unwrap_or("UTC")),
    );
    put(&mut out, "StartDate", schedule.start.map(epoch));
    put(&mut out, "EndDate", schedule.end.map(epoch));
    put(
        &mut out,
        "Description",
        schedule.description.as_ref().map(|d| json!(d)),
    );
    out.insert("State".into(), json!(schedule.state.as_str()));
    out.insert("CreationDate".into(), epoch(schedule.created));
    out.insert("LastModificationDate".into(), epoch(schedule.modified));
    put(
        &mut out,
        "KmsKeyArn",
        schedule.kms_key_arn.as_ref().map(|k| json!(k)),
    );
    out.insert("Target".into(), target_json(schedule));
    out.insert("FlexibleTimeWindow".into(), Value::Object(flexible));
    out.insert(
        "ActionAfterCompletion".into(),
        json!(schedule.action_after_completion.as_str()),
    );
    Value::Object(out)
}

fn schedule_summary(schedule: &Schedule) -> Value {
    json!({
        "Arn": schedule.arn,
        "Name": schedule.name,
        "GroupName": schedule.group,
        "State": schedule.state.as_str(),
        "CreationDate": epoch(schedule.created),
        "LastModificationDate": epoch(schedule.modified),
        "Target": {"Arn": schedule.target.arn},
    })
}

fn listed(name: &str, items: Vec<Value>, next_token: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(name.to_owned(), Value::Array(items));
    put(&mut out, "NextToken", next_token.map(Value::String));
    Value::Object(out)
}

fn run(
    service: &Scheduler,
    account: &str,
    operation: Operation,
    input: &Value,
) -> Result<Value, SchedulerError> {
    let name = string(input, "Name").unwrap_or_default();
    let group = string(input, "GroupName");
    let arn = string(input, "ResourceArn").unwrap_or_default();
    Ok(match operation {
        Operation::CreateSchedule => {
            let arn = service.create_schedule(account, name, &schedule_input(input))?;
            json!({ "ScheduleArn": arn })
        }
        Operation::UpdateSchedule => {
            let arn = service.update_schedule(account, name, &schedule_input(input))?;
            json!({ "ScheduleArn": arn })
        }
        Operation::GetSchedule => schedule_json(&service.get_schedule(account, group, name)?),
        Operation::DeleteSchedule => {
            service.delete_schedule(account, group, name)?;
            json!({})
        }
        Operation::ListSchedules => {
            let filter = ScheduleFilter {
                group: group.map(str::to_owned),
                name_prefix: owned(input, "NamePrefix"),
                state: string(input, "State").and_then(ScheduleState::parse),
            };
            let found = service.list_schedules(account, &filter, &page(input))?;
            listed(
                "Schedules",
                found.items.iter().map(schedule_summary).collect(),
                found.next_token,
            )
        }
        Operation::CreateScheduleGroup => {
            let arn = service.create_schedule_group(
                account,
                name,
                tags(input),
                string(input, "ClientToken"),
            )?;
            json!({ "ScheduleGroupArn": arn })
        }
        Operation::GetScheduleGroup => group_json(&service.get_schedule_group(account, name)?),
        Operation::DeleteScheduleGroup => {
            service.delete_schedule_group(account, name)?;
            json!({})
        }
        Operation::ListScheduleGroups => {
            let found =
                service.list_schedule_groups(account, string(input, "NamePrefix"), &page(input))?;
            listed(
                "ScheduleGroups",
                found.items.iter().map(group_json).collect(),
                found.next_token,
            )
        }
        Operation::TagResource => {
            service.tag_resource(account, arn, tags(input))?;
            json!({})
        }
        Operation::UntagResource => {
            let keys: Vec<String> = input
                .get("TagKeys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            service.untag_resource(account, arn, &keys)?;
            json!({})
        }
        Operation::ListTagsForResource => {
            let tags: Vec<Value> = service
                .list_tags(account, arn)?
                .into_iter()
                .map(|(key, value)| json!({"Key": key, "Value": value}))
                .collect();
            json!({ "Tags": tags })
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gust_model::targets::{BoxFuture, Deliver, Delivery, DeliveryError};

    use super::*;

    const ACCOUNT: &str = "123456789012";

    #[derive(Debug)]
    struct Nowhere;

    impl Deliver for Nowhere {
        fn deliver<'a>(&'a self, _: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn service() -> (Arc<Scheduler>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let service = Scheduler::open(
            &dir.path().join("scheduler.db"),
            Arc::new(gust_model::SystemClock),
            "us-east-1",
            Arc::new(Nowhere),
            gust_scheduler::SchedulerConfig::default(),
        )
        .unwrap();
        (service, dir)
    }

    fn call(
        service: &Scheduler,
        method: &str,
        path: &str,
        query: &str,
        body: Value,
    ) -> Result<Value, ServiceError> {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (status, output) =
            handle(service, ACCOUNT, method, path, query, &body).expect("a Scheduler path")?;
        assert_eq!(status, 200);
        Ok(output)
    }

    fn schedule_body() -> Value {
        json!({
            "ScheduleExpression": "cron(0 2 * * ? *)",
            "ScheduleExpressionTimezone": "Europe/Paris",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": "arn:aws:lambda:us-east-1:123456789012:function:cleanup",
                "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
                "Input": "{\"task\":\"cleanup\"}"
            },
            "ClientToken": "8f2c1d"
        })
    }

    #[test]
    fn routes_only_scheduler_paths() {
        let (service, _dir) = service();
        assert!(handle(&service, ACCOUNT, "GET", "/2015-03-31/functions", "", b"").is_none());
        assert!(handle(
            &service,
            ACCOUNT,
            "GET",
            "/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af",
            "",
            b""
        )
        .is_none());
        let error = handle(&service, ACCOUNT, "PATCH", "/schedules/x", "", b"")
            .unwrap()
            .unwrap_err();
        assert_eq!(error.status, 404);
    }

    #[test]
    fn creates_reads_lists_and_deletes_schedules() {
        let (service, _dir) = service();
        let created = call(&service, "POST", "/schedules/nightly", "", schedule_body()).unwrap();
        assert_eq!(
            created,
            json!({"ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly"})
        );
        // The same client token: the same answer.
        assert_eq!(
            call(&service, "POST", "/schedules/nightly", "", schedule_body()).unwrap(),
            created
        );
        let got = call(
            &service,
            "GET",
            "/schedules/nightly",
            "groupName=default",
            Value::Null,
        )
        .unwrap();
        assert_eq!(got["Name"], "nightly");
        assert_eq!(got["GroupName"], "default");
        assert_eq!(got["State"], "ENABLED");
        assert_eq!(got["ScheduleExpressionTimezone"], "Europe/Paris");
        assert_eq!(got["ActionAfterCompletion"], "NONE");
        assert_eq!(got["FlexibleTimeWindow"], json!({"Mode": "OFF"}));
        assert_eq!(
            got["Target"]["RetryPolicy"],
            json!({"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185})
        );
        assert!(got["CreationDate"].is_f64());

        let mut update = schedule_body();
        update["ScheduleExpression"] = json!("rate(5 minutes)");
        update["State"] = json!("DISABLED");
        call(&service, "PUT", "/schedules/nightly", "", update).unwrap();
        let listed = call(
            &service,
            "GET",
            "/schedules",
            "ScheduleGroup=default&State=DISABLED&MaxResults=10",
            Value::Null,
        )
        .unwrap();
        assert_eq!(listed["Schedules"][0]["Name"], "nightly");
        assert_eq!(
            listed["Schedules"][0]["Target"],
            json!({"Arn": "arn:aws:lambda:us-east-1:123456789012:function:cleanup"})
        );
        assert!(listed.get("NextToken").is_none());

        call(&service, "DELETE", "/schedules/nightly", "", Value::Null).unwrap();
        let error = call(&service, "GET", "/schedules/nightly", "", Value::Null).unwrap_err();
        assert_eq!(error.status, 404);
        assert_eq!(error.shape, "ResourceNotFoundException");
        assert_eq!(error.message, "Schedule nightly does not exist.");
        assert_eq!(
            error_response(&error),
            (
                404,
                "ResourceNotFoundException".to_owned(),
                json!({"Message": "Schedule nightly does not exist."})
            )
        );
    }

    #[test]
    fn checks_inputs_against_the_model() {
        let (service, _dir) = service();
        let error = call(&service, "POST", "/schedules/bad%20name", "", json!({})).unwrap_err();
        assert_eq!(error.shape, "ValidationException");
        assert_eq!(
            error.message,
            "4 validation errors detected: Value 'bad name' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+; Value null at 'scheduleExpression' failed to satisfy constraint: Member must not be null; Value null at 'target' failed to satisfy constraint: Member must not be null; Value null at 'flexibleTimeWindow' failed to satisfy constraint: Member must not be null"
        );
        let mut body = schedule_body();
        body["FlexibleTimeWindow"] = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 2000});
        body["Target"]["RetryPolicy"] = json!({"MaximumRetryAttempts": 186});
        let error = call(&service, "POST", "/schedules/x", "", body).unwrap_err();
        assert_eq!(
            error.message,
            "2 validation errors detected: Value '186' at 'target.retryPolicy.maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 185; Value '2000' at 'flexibleTimeWindow.maximumWindowInMinutes' failed to satisfy constraint: Member must have value less than or equal to 1440"
        );
        let mut body = schedule_body();
        body["State"] = json!("PAUSED");
        let error = call(&service, "POST", "/schedules/x", "", body).unwrap_err();
        assert!(error
            .message
            .ends_with("Member must satisfy enum value set: [ENABLED, DISABLED]"));
        let mut body = schedule_body();
        body["Target"]["RoleArn"] = json!("role");
        let error = call(&service, "POST", "/schedules/x", "", body).unwrap_err();
        assert!(
            error.message.contains("at 'target.roleArn'"),
            "{}",
            error.message
        );
        let mut body = schedule_body();
        body["Target"] = json!([]);
        let error = call(&service, "POST", "/schedules/x", "", body).unwrap_err();
        assert_eq!(error.shape, "SerializationException");
        // The service's own checks.
        let mut body = schedule_body();
        body["Target"]["EcsParameters"] = json!({"TaskDefinitionArn": "arn"});
        let error = call(&service, "POST", "/schedules/x", "", body).unwrap_err();
        assert_eq!(error.shape, "ValidationException");
        assert!(error.message.contains("EcsParameters is not supported"));
        let error = call(&service, "GET", "/schedules", "MaxResults=0", Value::Null).unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
    }

    #[test]
    fn groups_and_their_tags() {
        let (service, _dir) = service();
        let created = call(
            &service,
            "POST",
            "/schedule-groups/ops",
            "",
            json!({"Tags": [{"Key": "team", "Value": "ops"}]}),
        )
        .unwrap();
        let arn = "arn:aws:scheduler:us-east-1:123456789012:schedule-group/ops";
        assert_eq!(created, json!({"ScheduleGroupArn": arn}));
        let error = call(&service, "POST", "/schedule-groups/ops", "", Value::Null).unwrap_err();
        assert_eq!(
            (error.status, error.shape.as_str()),
            (409, "ConflictException")
        );
        let got = call(&service, "GET", "/schedule-groups/ops", "", Value::Null).unwrap();
        assert_eq!(got["State"], "ACTIVE");
        let listed = call(&service, "GET", "/schedule-groups", "", Value::Null).unwrap();
        assert_eq!(listed["ScheduleGroups"].as_array().unwrap().len(), 2);
        assert!(listed["ScheduleGroups"][0].get("CreationDate").is_none());

        let path = format!(
            "/tags/{}",
            percent_encoding::utf8_percent_encode(arn, percent_encoding::NON_ALPHANUMERIC)
        );
        call(
            &service,
            "POST",
            &path,
            "",
            json!({"Tags": [{"Key": "env", "Value": "prod"}]}),
        )
        .unwrap();
        call(
            &service,
            "DELETE",
            &path,
            "TagKeys=team&TagKeys=nope",
            Value::Null,
        )
        .unwrap();
        assert_eq!(
            call(&service, "GET", &path, "", Value::Null).unwrap(),
            json!({"Tags": [{"Key": "env", "Value": "prod"}]})
        );
        // Unencoded slashes reach the same ARN.
        assert!(call(&service, "GET", &format!("/tags/{arn}"), "", Value::Null).is_ok());
        let error = call(
            &service,
            "GET",
            "/tags/arn:aws:scheduler:us-east-1:123456789012:schedule/default/x",
            "",
            Value::Null,
        )
        .unwrap_err();
        assert_eq!(error.shape, "ValidationException");

        call(&service, "DELETE", "/schedule-groups/ops", "", Value::Null).unwrap();
        let error = call(&service, "GET", "/schedule-groups/ops", "", Value::Null).unwrap_err();
        assert_eq!(error.message, "Schedule group ops does not exist.");
    }
}

//! The service's resources and the inputs and outputs of its operations, as plain data. The
//! wire shapes (PascalCase JSON) are the API layer's; the stored ones are the store's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// The bus every account has.
pub const DEFAULT_BUS: &str = "default";

/// An event bus.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBus {
    /// The owning account.
    pub account: String,
    /// The name.
    pub name: String,
    /// `arn:aws:events:<region>:<account>:event-bus/<name>`.
    pub arn: String,
    /// `Description`.
    pub description: Option<String>,
    /// `KmsKeyIdentifier`, `DeadLetterConfig` and `LogConfig` as given (kept and described,
    /// not acted on).
    pub settings: BTreeMap<String, Value>,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it last changed.
    pub modified: OffsetDateTime,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A rule's `State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    /// `ENABLED`.
    Enabled,
    /// `DISABLED`.
    Disabled,
    /// `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS` (enabled; Gust has no CloudTrail).
    EnabledWithAllCloudtrailManagementEvents,
}

impl RuleState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Enabled => "ENABLED",
            RuleState::Disabled => "DISABLED",
            RuleState::EnabledWithAllCloudtrailManagementEvents => {
                "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
            }
        }
    }

    /// The state of a wire name.
    pub fn parse(text: &str) -> Option<RuleState> {
        match text {
            "ENABLED" => Some(RuleState::Enabled),
            "DISABLED" => Some(RuleState::Disabled),
            "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" => {
                Some(RuleState::EnabledWithAllCloudtrailManagementEvents)
            }
            _ => None,
        }
    }

    /// Whether events reach the rule's targets.
    pub fn is_enabled(self) -> bool {
        self != RuleState::Disabled
    }
}

/// `InputTransformer`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputTransformer {
    /// `InputPathsMap`: variable name → JSON path into the event.
    pub input_paths_map: BTreeMap<String, String>,
    /// `InputTemplate`.
    pub input_template: String,
}

/// `RetryPolicy` as given (absent members take EventBridge's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// `MaximumRetryAttempts` (0–185; default 185).
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumEventAgeInSeconds` (60–86400; default 86400).
    pub maximum_event_age_in_seconds: Option<u32>,
}

/// The default `MaximumRetryAttempts`.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 185;
/// The default `MaximumEventAgeInSeconds` (24 hours).
pub const DEFAULT_EVENT_AGE_SECONDS: u32 = 86_400;

impl RetryPolicy {
    /// Retries allowed after the first attempt.
    pub fn attempts(&self) -> u32 {
        self.maximum_retry_attempts
            .unwrap_or(DEFAULT_RETRY_ATTEMPTS)
    }

    /// How old an event may get while it is retried, in seconds.
    pub fn max_age(&self) -> u32 {
        self.maximum_event_age_in_seconds
            .unwrap_or(DEFAULT_EVENT_AGE_SECONDS)
    }
}

/// A rule's target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Target {
    /// `Id`, unique within the rule.
    pub id: String,
    /// `Arn`: where events go.
    pub arn: String,
    /// `RoleArn` (kept; Gust has no IAM).
    pub role_arn: Option<String>,
    /// `Input`: constant JSON text sent instead of the event.
    pub input: Option<String>,
    /// `InputPath`: the part of the event sent.
    pub input_path: Option<String>,
    /// `InputTransformer`.
    pub input_transformer: Option<InputTransformer>,
    /// `RetryPolicy`.
    pub retry_policy: Option<RetryPolicy>,
    /// `DeadLetterConfig.Arn`: an SQS queue.
    pub dead_letter_arn: Option<String>,
    /// `SqsParameters.MessageGroupId`.
    pub message_group_id: Option<String>,
    /// The target's other parameters (`KinesisParameters`, `EcsParameters`,
    /// `HttpParameters`, …) as given: listed back, not acted on.
    pub other: BTreeMap<String, Value>,
}

/// A rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The owning account.
    pub account: String,
    /// The bus's name.
    pub bus: String,
    /// The name.
    pub name: String,
    /// `arn:aws:events:<region>:<account>:rule/[<bus>/]<name>`.
    pub arn: String,
    /// `EventPattern` as given.
    pub event_pattern: Option<String>,
    /// `ScheduleExpression` as given.
    pub schedule_expression: Option<String>,
    /// `State`.
    pub state: RuleState,
    /// `Description`.
    pub description: Option<String>,
    /// `RoleArn`.
    pub role_arn: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Targets by `Id`.
    pub targets: BTreeMap<String, Target>,
    /// When it was created.
    pub created: OffsetDateTime,
    /// A schedule counts from here: when it was set, or when the rule was last enabled.
    pub schedule_from: Option<OffsetDateTime>,
    /// The scheduled time the rule last fired for.
    pub last_fired: Option<OffsetDateTime>,
}

/// `PutRule`'s input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutRuleInput {
    /// `Name`.
    pub name: String,
    /// `EventPattern`.
    pub event_pattern: Option<String>,
    /// `ScheduleExpression`.
    pub schedule_expression: Option<String>,
    /// `State` (default `ENABLED`).
    pub state: Option<RuleState>,
    /// `Description`.
    pub description: Option<String>,
    /// `RoleArn`.
    pub role_arn: Option<String>,
    /// `Tags` (applied when the rule is created).
    pub tags: Vec<(String, String)>,
    /// `EventBusName`: a name or an ARN (default `default`).
    pub event_bus_name: Option<String>,
}

/// `CreateEventBus`'s input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateBusInput {
    /// `Name`.
    pub name: String,
    /// `EventSourceName` (partner event sources: Gust has none).
    pub event_source_name: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `KmsKeyIdentifier`, `DeadLetterConfig`, `LogConfig` as given.
    pub settings: BTreeMap<String, Value>,
    /// `Tags`.
    pub tags: Vec<(String, String)>,
}

/// One `PutEvents` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutEventsEntry {
    /// `Source`.
    pub source: Option<String>,
    /// `DetailType`.
    pub detail_type: Option<String>,
    /// `Detail`: a JSON object, as text.
    pub detail: Option<String>,
    /// `Resources`.
    pub resources: Vec<String>,
    /// `EventBusName`: a name or an ARN (default `default`).
    pub event_bus_name: Option<String>,
    /// `Time` (default: now).
    pub time: Option<OffsetDateTime>,
    /// `TraceHeader` (accepted; Gust does not trace through buses).
    pub trace_header: Option<String>,
}

/// One entry's result: an event id, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutEventsResultEntry {
    /// `EventId` of an accepted entry.
    pub event_id: Option<String>,
    /// `ErrorCode` of a failed entry.
    pub error_code: Option<String>,
    /// `ErrorMessage` of a failed entry.
    pub error_message: Option<String>,
}

impl PutEventsResultEntry {
    fn failed(code: &str, message: impl Into<String>) -> Self {
        PutEventsResultEntry {
            event_id: None,
            error_code: Some(code.to_owned()),
            error_message: Some(message.into()),
        }
    }

    /// A failed entry with `InvalidArgument`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::failed("InvalidArgument", message)
    }

    /// A failed entry with `MalformedDetail`.
    pub fn malformed_detail() -> Self {
        Self::failed("MalformedDetail", "Detail is malformed.")
    }

    /// A failed entry with any code.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::failed(code, message)
    }
}

/// `PutEvents`' output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutEventsOutput {
    /// `FailedEntryCount`.
    pub failed_entry_count: usize,
    /// `Entries`, in the order of the request's.
    pub entries: Vec<PutEventsResultEntry>,
}

/// A `PutTargets` or `RemoveTargets` entry that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFailure {
    /// `TargetId`.
    pub target_id: String,
    /// `ErrorCode`.
    pub error_code: String,
    /// `ErrorMessage`.
    pub error_message: String,
}

/// A page request: `Limit` and `NextToken`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// `Limit` (1–100).
    pub limit: Option<i64>,
    /// `NextToken` from an earlier page.
    pub next_token: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// `NextToken` when there are more.
    pub next_token: Option<String>,
}

/// What an EventBridge ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsArn {
    /// `event-bus/<name>`.
    Bus {
        /// Region.
        region: String,
        /// Account.
        account: String,
        /// Bus name.
        name: String,
    },
    /// `rule/[<bus>/]<name>`.
    Rule {
        /// Region.
        region: String,
        /// Account.
        account: String,
        /// Bus name.
        bus: String,
        /// Rule name.
        name: String,
    },
}

impl EventsArn {
    /// Reads `arn:<partition>:events:<region>:<account>:(event-bus|rule)/…`.
    pub fn parse(arn: &str) -> Option<EventsArn> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(_partition), Some("events"), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let resource = parts.next()?;
        let (region, account) = (region.to_owned(), account.to_owned());
        if let Some(name) = resource.strip_prefix("event-bus/") {
            return (!name.is_empty()).then(|| EventsArn::Bus {
                region,
                account,
                name: name.to_owned(),
            });
        }
        let rest = resource.strip_prefix("rule/")?;
        let (bus, name) = match rest.rsplit_once('/') {
            Some((bus, name)) => (bus.to_owned(), name.to_owned()),
            None => (DEFAULT_BUS.to_owned(), rest.to_owned()),
        };
        (!name.is_empty() && !bus.is_empty()).then_some(EventsArn::Rule {
            region,
            account,
            bus,
            name,
        })
    }
}

/// A bus's ARN.
pub fn bus_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{name}")
}

/// A rule's ARN: `rule/<name>` on the default bus, `rule/<bus>/<name>` on another.
pub fn rule_arn(region: &str, account: &str, bus: &str, name: &str) -> String {
    if bus == DEFAULT_BUS {
        format!("arn:aws:events:{region}:{account}:rule/{name}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{bus}/{name}")
    }
}

/// An ARN's parts: partition, service, region, account, resource.
pub fn arn_parts(arn: &str) -> Option<[&str; 5]> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    (!partition.is_empty() && !service.is_empty() && !resource.is_empty())
        .then_some([partition, service, region, account, resource])
}

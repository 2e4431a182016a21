//! What EventBridge Scheduler keeps — schedule groups, schedules and their targets — and the
//! inputs of the operations that change them, with the checks the service makes of them.

use std::collections::BTreeMap;

use gust_model::schedule::{ScheduleExpression, Zone};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::SchedulerError;

/// The group every account has, and that a schedule without a `GroupName` belongs to.
pub const DEFAULT_GROUP: &str = "default";
/// `RetryPolicy.MaximumEventAgeInSeconds` when not given (24 hours).
pub const DEFAULT_MAXIMUM_EVENT_AGE: u32 = 86_400;
/// `RetryPolicy.MaximumRetryAttempts` when not given.
pub const DEFAULT_MAXIMUM_RETRY_ATTEMPTS: u32 = 185;

/// A schedule group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// In use.
    Active,
    /// Being deleted with its schedules. Gust deletes a group and its schedules in one
    /// transaction, so no caller sees this state; it is here because the API has it.
    Deleting,
}

impl GroupState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Active => "ACTIVE",
            GroupState::Deleting => "DELETING",
        }
    }
}

/// Whether a schedule invokes its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScheduleState {
    /// It does.
    #[default]
    Enabled,
    /// It does not.
    Disabled,
}

impl ScheduleState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Enabled => "ENABLED",
            ScheduleState::Disabled => "DISABLED",
        }
    }

    /// Reads a wire value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ENABLED" => Some(ScheduleState::Enabled),
            "DISABLED" => Some(ScheduleState::Disabled),
            _ => None,
        }
    }
}

/// What happens to a schedule once it has made its last invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActionAfterCompletion {
    /// It stays.
    #[default]
    None,
    /// It is deleted.
    Delete,
}

impl ActionAfterCompletion {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionAfterCompletion::None => "NONE",
            ActionAfterCompletion::Delete => "DELETE",
        }
    }

    /// Reads a wire value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NONE" => Some(ActionAfterCompletion::None),
            "DELETE" => Some(ActionAfterCompletion::Delete),
            _ => None,
        }
    }
}

/// `FlexibleTimeWindow.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlexibleMode {
    /// On time.
    #[serde(rename = "OFF")]
    Off,
    /// At a random moment within the window after the scheduled time.
    #[serde(rename = "FLEXIBLE")]
    Flexible,
}

impl FlexibleMode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            FlexibleMode::Off => "OFF",
            FlexibleMode::Flexible => "FLEXIBLE",
        }
    }

    /// Reads a wire value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "OFF" => Some(FlexibleMode::Off),
            "FLEXIBLE" => Some(FlexibleMode::Flexible),
            _ => None,
        }
    }
}

/// A schedule's flexible time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlexibleTimeWindow {
    /// `Mode`.
    pub mode: FlexibleMode,
    /// `MaximumWindowInMinutes` (1–1440; with `FLEXIBLE` only).
    pub maximum_window_in_minutes: Option<u32>,
}

impl FlexibleTimeWindow {
    /// On time.
    pub const OFF: FlexibleTimeWindow = FlexibleTimeWindow {
        mode: FlexibleMode::Off,
        maximum_window_in_minutes: None,
    };

    /// The window's length in seconds (0 when off).
    pub fn seconds(&self) -> i64 {
        match self.mode {
            FlexibleMode::Off => 0,
            FlexibleMode::Flexible => i64::from(self.maximum_window_in_minutes.unwrap_or(0)) * 60,
        }
    }
}

/// A target's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// How long, from the scheduled time, an invocation is tried (60–86400 seconds).
    pub maximum_event_age_in_seconds: u32,
    /// How many times a failed invocation is retried (0–185).
    pub maximum_retry_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            maximum_event_age_in_seconds: DEFAULT_MAXIMUM_EVENT_AGE,
            maximum_retry_attempts: DEFAULT_MAXIMUM_RETRY_ATTEMPTS,
        }
    }
}

/// `DeadLetterConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeadLetterConfig {
    /// The SQS queue's ARN.
    pub arn: Option<String>,
}

/// `SqsParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SqsParameters {
    /// A FIFO queue's message group.
    pub message_group_id: Option<String>,
}

/// `EventBridgeParameters` (an event bus target's event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBridgeParameters {
    /// The event's `detail-type`.
    pub detail_type: String,
    /// The event's `source`.
    pub source: String,
}

/// A schedule's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// A Lambda function, SQS queue, SNS topic or EventBridge event bus.
    pub arn: String,
    /// The execution role (kept; Gust has no IAM).
    pub role_arn: String,
    /// What the target receives (with context attributes); `{}` when absent.
    pub input: Option<String>,
    /// Retries (defaults filled in).
    pub retry_policy: RetryPolicy,
    /// Where failed invocations go.
    pub dead_letter_config: Option<DeadLetterConfig>,
    /// An SQS target's parameters.
    pub sqs_parameters: Option<SqsParameters>,
    /// An event bus target's parameters.
    pub eventbridge_parameters: Option<EventBridgeParameters>,
}

impl Target {
    /// The dead-letter queue, if any.
    pub fn dead_letter_arn(&self) -> Option<&str> {
        self.dead_letter_config.as_ref()?.arn.as_deref()
    }

    /// A FIFO queue target's message group.
    pub fn message_group_id(&self) -> Option<&str> {
        self.sqs_parameters.as_ref()?.message_group_id.as_deref()
    }
}

/// A schedule group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleGroup {
    /// Owner.
    pub account: String,
    /// Name.
    pub name: String,
    /// `arn:aws:scheduler:<region>:<account>:schedule-group/<name>`.
    pub arn: String,
    /// State.
    pub state: GroupState,
    /// When created (`None` for the `default` group, which nobody creates).
    pub created: Option<OffsetDateTime>,
    /// When last changed.
    pub modified: Option<OffsetDateTime>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The `ClientToken` it was created with.
    pub client_token: Option<String>,
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Owner.
    pub account: String,
    /// Its group.
    pub group: String,
    /// Its name (unique in the group).
    pub name: String,
    /// `arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>`.
    pub arn: String,
    /// `ScheduleExpression`, as given.
    pub expression: String,
    /// `ScheduleExpressionTimezone`, as given.
    pub timezone: Option<String>,
    /// `StartDate` (recurring schedules).
    pub start: Option<OffsetDateTime>,
    /// `EndDate` (recurring schedules; exclusive).
    pub end: Option<OffsetDateTime>,
    /// `Description`.
    pub description: Option<String>,
    /// `State`.
    pub state: ScheduleState,
    /// `KmsKeyArn` (kept and echoed).
    pub kms_key_arn: Option<String>,
    /// `ActionAfterCompletion`.
    pub action_after_completion: ActionAfterCompletion,
    /// `FlexibleTimeWindow`.
    pub flexible_time_window: FlexibleTimeWindow,
    /// `Target`.
    pub target: Target,
    /// `CreationDate`.
    pub created: OffsetDateTime,
    /// `LastModificationDate`: the schedule's settings restart from it.
    pub modified: OffsetDateTime,
    /// The `ClientToken` it was created with.
    pub client_token: Option<String>,
    /// Progress: every scheduled time at or before this has been dealt with (fired, or
    /// skipped as too old).
    pub evaluated_until: OffsetDateTime,
    /// The scheduled time of the last invocation, since the settings last changed.
    pub last_fired: Option<OffsetDateTime>,
}

impl Schedule {
    /// The parsed expression and zone (stored schedules were checked when put).
    pub(crate) fn compiled(&self) -> Option<(ScheduleExpression, Zone)> {
        let expression = ScheduleExpression::parse(&self.expression).ok()?;
        let zone = match &self.timezone {
            Some(name) => Zone::parse(name).ok()?,
            None => Zone::UTC,
        };
        Some((expression, zone))
    }
}

/// The first scheduled time of `schedule` strictly after `after`, within its start and end
/// dates (which a one-time schedule ignores), or `None` when there is no other.
pub(crate) fn next_time(
    schedule: &Schedule,
    expression: &ScheduleExpression,
    zone: &Zone,
    after: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let start = match expression {
        // A rate counts from its start date, or from when its settings were put.
        ScheduleExpression::Rate { .. } => Some(schedule.start.unwrap_or(schedule.modified)),
        ScheduleExpression::Cron(_) => schedule.start,
        ScheduleExpression::At(_) => None,
    };
    let at = expression.next_after(after, zone, start)?;
    if expression.is_recurring() && schedule.end.is_some_and(|end| at >= end) {
        return None;
    }
    Some(at)
}

/// `RetryPolicy` as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryPolicyInput {
    /// `MaximumEventAgeInSeconds`.
    pub maximum_event_age_in_seconds: Option<i64>,
    /// `MaximumRetryAttempts`.
    pub maximum_retry_attempts: Option<i64>,
}

/// `Target` as given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetInput {
    /// `Arn`.
    pub arn: String,
    /// `RoleArn`.
    pub role_arn: String,
    /// `Input`.
    pub input: Option<String>,
    /// `RetryPolicy`.
    pub retry_policy: Option<RetryPolicyInput>,
    /// `DeadLetterConfig`.
    pub dead_letter_config: Option<DeadLetterConfig>,
    /// `SqsParameters`.
    pub sqs_parameters: Option<SqsParameters>,
    /// `EventBridgeParameters`.
    pub eventbridge_parameters: Option<EventBridgeParameters>,
    /// The names of other target parameters given (`EcsParameters`, `KinesisParameters`…),
    /// which Gust refuses.
    pub other_parameters: Vec<String>,
}

/// `FlexibleTimeWindow` as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlexibleTimeWindowInput {
    /// `Mode`.
    pub mode: FlexibleMode,
    /// `MaximumWindowInMinutes`.
    pub maximum_window_in_minutes: Option<i64>,
}

/// The settings of `CreateSchedule` and `UpdateSchedule` (an update replaces them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleInput {
    /// `GroupName` (`default` when absent).
    pub group: Option<String>,
    /// `ScheduleExpression`.
    pub expression: String,
    /// `ScheduleExpressionTimezone`.
    pub timezone: Option<String>,
    /// `StartDate`.
    pub start: Option<OffsetDateTime>,
    /// `EndDate`.
    pub end: Option<OffsetDateTime>,
    /// `Description`.
    pub description: Option<String>,
    /// `State` (`ENABLED` when absent).
    pub state: Option<ScheduleState>,
    /// `KmsKeyArn`.
    pub kms_key_arn: Option<String>,
    /// `Target`.
    pub target: TargetInput,
    /// `FlexibleTimeWindow`.
    pub flexible_time_window: FlexibleTimeWindowInput,
    /// `ClientToken`.
    pub client_token: Option<String>,
    /// `ActionAfterCompletion` (`NONE` when absent).
    pub action_after_completion: Option<ActionAfterCompletion>,
}

impl ScheduleInput {
    /// A minimal input: this expression and target ARN, a placeholder execution role, the
    /// flexible window off.
    pub fn new(expression: &str, target_arn: &str) -> Self {
        ScheduleInput {
            group: None,
            expression: expression.to_owned(),
            timezone: None,
            start: None,
            end: None,
            description: None,
            state: None,
            kms_key_arn: None,
            target: TargetInput {
                arn: target_arn.to_owned(),
                role_arn: "arn:aws:iam::123456789012:role/scheduler".to_owned(),
                ..TargetInput::default()
            },
            flexible_time_window: FlexibleTimeWindowInput {
                mode: FlexibleMode::Off,
                maximum_window_in_minutes: None,
            },
            client_token: None,
            action_after_completion: None,
        }
    }
}

/// Which schedules `ListSchedules` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleFilter {
    /// Only this group's.
    pub group: Option<String>,
    /// Only names starting so.
    pub name_prefix: Option<String>,
    /// Only in this state.
    pub state: Option<ScheduleState>,
}

/// A page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// `MaxResults` (1–100; 100 when absent).
    pub max_results: Option<i64>,
    /// `NextToken`.
    pub next_token: Option<String>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, when there is one.
    pub next_token: Option<String>,
}

/// The kind of resource a target ARN names: what Gust can deliver to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    Lambda,
    /// `arn:aws:sqs:<region>:<account>:<queue>`.
    Sqs,
    /// `arn:aws:sns:<region>:<account>:<topic>`.
    Sns,
    /// `arn:aws:events:<region>:<account>:event-bus/<name>`.
    EventBus,
}

fn name_chars(text: &str, extra: &[u8]) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// The kind of resource `arn` names, when Gust can deliver to it.
pub fn target_kind(arn: &str) -> Option<TargetKind> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return None;
    };
    if prefix != "arn"
        || !partition.starts_with("aws")
        || region.is_empty()
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    match service {
        "lambda" => {
            let rest = resource.strip_prefix("function:")?;
            let (name, qualifier) = match rest.split_once(':') {
                Some((name, qualifier)) => (name, Some(qualifier)),
                None => (rest, None),
            };
            let qualifier_ok = qualifier.is_none_or(|q| q == "$LATEST" || name_chars(q, b"-_"));
            (name.len() <= 64 && name_chars(name, b"-_") && qualifier_ok)
                .then_some(TargetKind::Lambda)
        }
        "sqs" => {
            let base = resource.strip_suffix(".fifo").unwrap_or(resource);
            (resource.len() <= 80 && name_chars(base, b"-_")).then_some(TargetKind::Sqs)
        }
        "sns" => (resource.len() <= 256 && name_chars(resource, b"-_")).then_some(TargetKind::Sns),
        "events" => {
            let name = resource.strip_prefix("event-bus/")?;
            name_chars(name, b"-_./").then_some(TargetKind::EventBus)
        }
        _ => None,
    }
}

/// The context attributes a target's input may hold, replaced at each invocation.
pub mod context {
    /// The schedule's ARN.
    pub const SCHEDULE_ARN: &str = "<aws.scheduler.schedule-arn>";
    /// The scheduled time (`2022-03-22T18:59:43Z`).
    pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";
    /// A unique id per attempted invocation.
    pub const EXECUTION_ID: &str = "<aws.scheduler.execution-id>";
    /// The attempt's number, from 1.
    pub const ATTEMPT_NUMBER: &str = "<aws.scheduler.attempt-number>";
}

/// An instant as the scheduler writes it: `2022-03-22T18:59:43Z`.
pub fn iso_seconds(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// What the target receives: its `Input` with the context attributes replaced, or `{}`
/// when it has none (the "default notification" of a templated target).
pub fn render_input(
    input: Option<&str>,
    schedule_arn: &str,
    scheduled: OffsetDateTime,
    execution_id: &str,
    attempt: u32,
) -> String {
    let Some(input) = input else {
        return "{}".to_owned();
    };
    input
        .replace(context::SCHEDULE_ARN, schedule_arn)
        .replace(context::SCHEDULED_TIME, &iso_seconds(scheduled))
        .replace(context::EXECUTION_ID, execution_id)
        .replace(context::ATTEMPT_NUMBER, &attempt.to_string())
}

/// Checks a target as given and returns it with its defaults.
pub(crate) fn check_target(input: &TargetInput) -> Result<Target, SchedulerError> {
    if let Some(other) = input.other_parameters.first() {
        return Err(SchedulerError::validation(format!(
            "{other} is not supported by Gust: a schedule's target must be a Lambda function, an SQS queue, an SNS topic or an EventBridge event bus"
        )));
    }
    if input.arn.starts_with("arn:aws:scheduler:::aws-sdk:") {
        return Err(SchedulerError::validation(format!(
            "Invalid target {}: Gust does not support universal targets; use the ARN of a Lambda function, an SQS queue, an SNS topic or an EventBridge event bus",
            input.arn
        )));
    }
    let Some(kind) = target_kind(&input.arn) else {
        return Err(SchedulerError::validation(format!(
            "Invalid target {}: Gust delivers to Lambda functions, SQS queues, SNS topics and EventBridge event buses",
            input.arn
        )));
    };
    if input.sqs_parameters.is_some() && kind != TargetKind::Sqs {
        return Err(SchedulerError::validation(
            "SqsParameters can only be specified for an Amazon SQS queue target",
        ));
    }
    if input.eventbridge_parameters.is_some() && kind != TargetKind::EventBus {
        return Err(SchedulerError::validation(
            "EventBridgeParameters can only be specified for an EventBridge event bus target",
        ));
    }
    if let Some(parameters) = &input.eventbridge_parameters {
        if parameters.source.starts_with("aws.") {
            return Err(SchedulerError::validation(format!(
                "Invalid EventBridgeParameters.Source {}: a source cannot start with aws.",
                parameters.source
            )));
        }
    }
    if let Some(text) = &input.input {
        if matches!(kind, TargetKind::Lambda | TargetKind::EventBus) && !is_json_template(text) {
            return Err(SchedulerError::validation(
                "Target Input must be a well-formed JSON for a Lambda function or EventBridge event bus target",
            ));
        }
    }
    if let Some(arn) = input
        .dead_letter_config
        .as_ref()
        .and_then(|d| d.arn.as_ref())
    {
        if target_kind(arn) != Some(TargetKind::Sqs) || arn.ends_with(".fifo") {
            return Err(SchedulerError::validation(format!(
                "Invalid DeadLetterConfig.Arn {arn}: the dead-letter queue must be a standard Amazon SQS queue"
            )));
        }
    }
    let mut retry_policy = RetryPolicy::default();
    if let Some(given) = input.retry_policy {
        if let Some(age) = given.maximum_event_age_in_seconds {
            retry_policy.maximum_event_age_in_seconds =
                bounded(age, 60, 86_400, "RetryPolicy.MaximumEventAgeInSeconds")?;
        }
        if let Some(attempts) = given.maximum_retry_attempts {
            retry_policy.maximum_retry_attempts =
                bounded(attempts, 0, 185, "RetryPolicy.MaximumRetryAttempts")?;
        }
    }
    Ok(Target {
        arn: input.arn.clone(),
        role_arn: input.role_arn.clone(),
        input: input.input.clone(),
        retry_policy,
        dead_letter_config: input.dead_letter_config.clone(),
        sqs_parameters: input.sqs_parameters.clone(),
        eventbridge_parameters: input.eventbridge_parameters.clone(),
    })
}

fn bounded(value: i64, min: u32, max: u32, name: &str) -> Result<u32, SchedulerError> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            SchedulerError::validation(format!("{name} must be between {min} and {max}"))
        })
}

/// Whether `text` is JSON once its context attributes are replaced (the attempt number may
/// stand bare, as a number).
fn is_json_template(text: &str) -> bool {
    let sample = render_input(
        Some(text),
        "arn",
        OffsetDateTime::UNIX_EPOCH,
        "0000000000000000",
        1,
    );
    serde_json::from_str::<serde_json::Value>(&sample).is_ok()
}

/// Checks a flexible time window as given.
pub(crate) fn check_window(
    input: FlexibleTimeWindowInput,
) -> Result<FlexibleTimeWindow, SchedulerError> {
    match (input.mode, input.maximum_window_in_minutes) {
        (FlexibleMode::Off, None) => Ok(FlexibleTimeWindow::OFF),
        (FlexibleMode::Off, Some(_)) => Err(SchedulerError::validation(
            "MaximumWindowInMinutes can only be specified when Mode is FLEXIBLE",
        )),
        (FlexibleMode::Flexible, None) => Err(SchedulerError::validation(
            "MaximumWindowInMinutes must be specified when Mode is FLEXIBLE",
        )),
        (FlexibleMode::Flexible, Some(minutes)) => Ok(FlexibleTimeWindow {
            mode: FlexibleMode::Flexible,
            maximum_window_in_minutes: Some(bounded(
                minutes,
                1,
                1440,
                "FlexibleTimeWindow.MaximumWindowInMinutes",
            )?),
        }),
    }
}

/// Whether `name` is a valid schedule or group name (`[0-9a-zA-Z-_.]{1,64}`).
pub fn valid_name(name: &str) -> bool {
    name.len() <= 64 && name_chars(name, b"-_.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_kinds() {
        for (arn, kind) in [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:nightly",
                Some(TargetKind::Lambda),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:nightly:live",
                Some(TargetKind::Lambda),
            ),
            (
                "arn:aws:sqs:us-east-1:123456789012:jobs.fifo",
                Some(TargetKind::Sqs),
            ),
            ("arn:aws:sqs:us-east-1:123456789012:jo.bs", None),
            (
                "arn:aws:sqs:us-east-1:123456789012:jobs",
                Some(TargetKind::Sqs),
            ),
            (
                "arn:aws:sns:us-east-1:123456789012:alerts",
                Some(TargetKind::Sns),
            ),
            (
                "arn:aws:events:us-east-1:123456789012:event-bus/default",
                Some(TargetKind::EventBus),
            ),
            ("arn:aws:states:us-east-1:123456789012:stateMachine:x", None),
            ("arn:aws:lambda:us-east-1:1234:function:x", None),
            ("not-an-arn", None),
        ] {
            assert_eq!(target_kind(arn), kind, "{arn}");
        }
    }

    #[test]
    fn renders_context_attributes() {
        let at = time::macros::datetime!(2022-03-22 18:59:43 UTC);
        assert_eq!(render_input(None, "arn", at, "id", 1), "{}");
        assert_eq!(
            render_input(
                Some(
                    r#"{"arn":"<aws.scheduler.schedule-arn>","at":"<aws.scheduler.scheduled-time>","id":"<aws.scheduler.execution-id>","n":<aws.scheduler.attempt-number>}"#
                ),
                "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s",
                at,
                "d32c5kddcf5bb8c3",
                2
            ),
            r#"{"arn":"arn:aws:scheduler:us-east-1:123456789012:schedule/default/s","at":"2022-03-22T18:59:43Z","id":"d32c5kddcf5bb8c3","n":2}"#
        );
        assert!(is_json_template(r#"{"n":<aws.scheduler.attempt-number>}"#));
        assert!(!is_json_template("hello"));
    }
}

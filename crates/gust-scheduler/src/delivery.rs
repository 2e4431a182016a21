//! Durable deliveries: a schedule's firing is committed as a [`PendingDelivery`] before the
//! target is tried, so a crash neither loses an invocation nor fires the schedule again.
//! A delivery is retried on `DeliveryError::Retry` with exponential back-off within the
//! target's `RetryPolicy`; on `Fail`, or when the policy is exhausted, it becomes a
//! dead-letter message for the target's `DeadLetterConfig` queue.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::{iso_seconds, Target};

/// How many times a dead-letter message is tried before it is dropped.
pub const DEAD_LETTER_ATTEMPTS: u32 = 3;

/// The `ERROR_CODE` of a dead-letter message. `DeliveryError` carries a message only, so
/// every target failure has this code (see the crate documentation).
pub const TARGET_ERROR_CODE: &str = "AWS.Scheduler.TargetInvocationFailed";

/// `EXHAUSTED_RETRY_CONDITION` when the retries ran out.
pub const EXHAUSTED_ATTEMPTS: &str = "MaximumRetryAttempts";
/// `EXHAUSTED_RETRY_CONDITION` when the event grew too old.
pub const EXHAUSTED_AGE: &str = "MaximumEventAgeInSeconds";

/// One invocation of one schedule, from its firing until it is delivered or given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// Unique id.
    pub id: String,
    /// The schedule's account.
    pub account: String,
    /// The schedule's ARN.
    pub schedule_arn: String,
    /// The schedule's group's ARN.
    pub group_arn: String,
    /// The target, as it was when the schedule fired.
    pub target: Target,
    /// The scheduled time.
    pub scheduled: OffsetDateTime,
    /// When the next attempt is due.
    pub due: OffsetDateTime,
    /// Attempts made on the target so far.
    pub attempts: u32,
    /// After this the event is too old to try again (`MaximumEventAgeInSeconds`).
    pub expires: OffsetDateTime,
    /// Set once the target is given up: the message for the dead-letter queue.
    pub dead_letter: Option<DeadLetter>,
}

/// A dead-letter message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The body: the payload of the last attempt.
    pub payload: String,
    /// Its message attributes.
    pub attributes: BTreeMap<String, String>,
    /// Attempts to send it so far.
    pub attempts: u32,
}

/// Why the target was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// `DeliveryError::Fail`: not retried.
    Failed,
    /// `MaximumRetryAttempts` reached.
    Attempts,
    /// `MaximumEventAgeInSeconds` reached.
    Age,
}

/// The message attributes EventBridge Scheduler puts on a dead-letter message:
/// `ERROR_CODE`, `ERROR_MESSAGE`, `EXECUTION_ID`, `EXHAUSTED_RETRY_CONDITION` (only when a
/// retry condition ran out), `IS_PAYLOAD_TRUNCATED`, `RETRY_ATTEMPTS`, `SCHEDULED_TIME`,
/// `SCHEDULE_ARN` and `TARGET_ARN`.
pub fn dead_letter_attributes(
    delivery: &PendingDelivery,
    why: GiveUp,
    error_message: &str,
    execution_id: &str,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        attributes.insert(name.to_owned(), value);
    };
    put("ERROR_CODE", TARGET_ERROR_CODE.to_owned());
    put("ERROR_MESSAGE", error_message.to_owned());
    put("EXECUTION_ID", execution_id.to_owned());
    match why {
        GiveUp::Failed => {}
        GiveUp::Attempts => put("EXHAUSTED_RETRY_CONDITION", EXHAUSTED_ATTEMPTS.to_owned()),
        GiveUp::Age => put("EXHAUSTED_RETRY_CONDITION", EXHAUSTED_AGE.to_owned()),
    }
    put("IS_PAYLOAD_TRUNCATED", "false".to_owned());
    put(
        "RETRY_ATTEMPTS",
        delivery.attempts.saturating_sub(1).to_string(),
    );
    put("SCHEDULED_TIME", iso_seconds(delivery.scheduled));
    put("SCHEDULE_ARN", delivery.schedule_arn.clone());
    put("TARGET_ARN", delivery.target.arn.clone());
    attributes
}

/// The wait before retry number `retry` (1 for the first): `base · 2^(retry-1)`, at most
/// `max`.
pub fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// A 16-character hexadecimal execution id, as the scheduler's look.
pub fn execution_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=8).map(|n| backoff(base, max, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(base, max, 200), max);
    }
}

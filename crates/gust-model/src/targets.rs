//! The one interface through which event routers (EventBridge rules, EventBridge Scheduler)
//! hand a payload to a target (a function, a queue, a topic, a bus). The binary implements
//! it over the services it runs; the routers stay free of them.

use std::future::Future;
use std::pin::Pin;

/// A boxed future (the interface is object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who delivers, as the target's resource policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// `events.amazonaws.com` for a rule: Lambda targets need a policy statement allowing
    /// it for the rule's ARN (queues and topics: their policy, as SNS's deliveries).
    Events,
    /// EventBridge Scheduler, acting through the schedule's execution role: Gust has no
    /// IAM, so a role of the target's own account may reach it.
    Scheduler,
    /// `s3.amazonaws.com` for a bucket's notifications: the target's policy must allow it
    /// for the bucket's ARN, as for rules.
    S3,
}

impl Principal {
    /// The service principal's name.
    pub fn service(self) -> &'static str {
        match self {
            Principal::Events => "events.amazonaws.com",
            Principal::Scheduler => "scheduler.amazonaws.com",
            Principal::S3 => "s3.amazonaws.com",
        }
    }
}

/// One payload for one target.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The account of the rule or schedule that delivers.
    pub account: &'a str,
    /// The target: `arn:aws:lambda:…:function:name[:qualifier]`, `arn:aws:sqs:…`,
    /// `arn:aws:sns:…`, `arn:aws:events:…:event-bus/name`.
    pub target_arn: &'a str,
    /// What the target gets (the event, or the target's `Input` / transformed input).
    pub payload: String,
    /// Who delivers.
    pub principal: Principal,
    /// The rule's or schedule's ARN (the policy condition `AWS:SourceArn`).
    pub source_arn: &'a str,
    /// A FIFO queue target's `MessageGroupId`.
    pub message_group_id: Option<&'a str>,
    /// A FIFO queue target's `MessageDeduplicationId` (EventBridge uses the event's id;
    /// without one the queue must deduplicate on content).
    pub deduplication_id: Option<String>,
    /// String message attributes for a queue target (a dead-letter message's
    /// `ERROR_CODE`, `ERROR_MESSAGE`, …); empty for ordinary deliveries.
    pub attributes: Vec<(String, String)>,
}

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again (a throttle, the target busy or briefly unreachable).
    #[error("{0}")]
    Retry(String),
    /// Will not succeed as it is (no such target, not allowed): straight to the
    /// dead-letter queue, if any.
    #[error("{0}")]
    Fail(String),
}

/// Delivers payloads to targets.
pub trait Deliver: Send + Sync + std::fmt::Debug {
    /// Delivers one payload; `Ok` once the target has it (a function's event is queued, a
    /// message sent, a notification published).
    fn deliver<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// Checks that `delivery` would be allowed, as S3 validates a notification
    /// configuration: a function's policy is checked without invoking it; a queue or topic
    /// is sent the payload itself (S3's `s3:TestEvent`), which its policy must allow.
    fn check<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.deliver(delivery)
    }
}

//! The topic store's interface: what the SNS semantics need from durable storage. The
//! embedded implementation is SQLite ([`crate::sqlite`]); a distributed one can implement
//! the same trait. Every method is one atomic step: it happens completely and durably
//! before it returns, or not at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::delivery::RetryPolicy;
use crate::error::SnsError;
use crate::message::MessageAttributes;

/// A topic as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Its ARN (`arn:aws:sns:region:account:name`), the key.
    pub arn: String,
    /// Owning account.
    pub account: String,
    /// Name.
    pub name: String,
    /// Attributes as set (`DisplayName`, `Policy`, `FifoTopic`, ...).
    pub attributes: BTreeMap<String, String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// Its ARN (`{topic arn}:{uuid}`), the key.
    pub arn: String,
    /// The topic.
    pub topic_arn: String,
    /// The subscribing account.
    pub owner: String,
    /// `sqs`, `lambda`, `http` or `https`.
    pub protocol: String,
    /// Queue ARN, function ARN or URL.
    pub endpoint: String,
    /// Attributes as set (`FilterPolicy`, `RawMessageDelivery`, ...).
    pub attributes: BTreeMap<String, String>,
    /// Waiting for `ConfirmSubscription`.
    pub pending: bool,
    /// The confirmation token, while pending.
    pub token: Option<String>,
    /// Whether the confirmation was authenticated (`ConfirmationWasAuthenticated`).
    pub authenticated: bool,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
}

/// A published message (or a confirmation) as stored until its last delivery ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// `MessageId`.
    pub message_id: String,
    /// The topic.
    pub topic_arn: String,
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    pub kind: String,
    /// The message as published (with `structured`, the JSON of per-protocol texts).
    pub message: String,
    /// `MessageStructure=json`.
    pub structured: bool,
    /// `Subject`.
    pub subject: Option<String>,
    /// Message attributes.
    pub attributes: MessageAttributes,
    /// `Timestamp`, as rendered.
    pub timestamp: String,
    /// FIFO message group (standard topics: forwarded to SQS only).
    pub group_id: Option<String>,
    /// The deduplication id delivered to FIFO queues.
    pub dedup_id: Option<String>,
    /// FIFO: `SequenceNumber` (assigned by the store).
    pub sequence_number: Option<String>,
    /// The topic's `SignatureVersion` when published.
    pub signature_version: String,
    /// Confirmations: the token.
    pub token: Option<String>,
    /// The publisher's trace header (`X-Amzn-Trace-Id`), carried to the functions it
    /// invokes so a loop through the topic can be noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Where one delivery goes: a snapshot of its subscription taken at publish time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTarget {
    /// The subscription.
    pub subscription_arn: String,
    /// Its protocol.
    pub protocol: String,
    /// Its endpoint.
    pub endpoint: String,
    /// `RawMessageDelivery`.
    pub raw: bool,
    /// `RedrivePolicy`'s `deadLetterTargetArn`.
    pub dead_letter: Option<String>,
    /// HTTP/S: the effective retry policy.
    pub retry: Option<RetryPolicy>,
    /// HTTP/S: the `Content-Type` of requests.
    pub content_type: Option<String>,
}

/// A delivery to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Where.
    pub target: DeliveryTarget,
    /// FIFO: the message group, so deliveries to one subscription keep their order.
    pub fifo_group: Option<String>,
    /// First attempt, ms since the epoch.
    pub next_ms: i64,
}

/// One message with its deliveries, stored in one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The message.
    pub message: StoredMessage,
    /// FIFO: the key it is deduplicated by within the topic.
    pub dedup_key: Option<String>,
    /// Its deliveries.
    pub deliveries: Vec<NewDelivery>,
}

/// What `publish` did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The id (the original's when deduplicated).
    pub message_id: String,
    /// FIFO: the sequence number (the original's when deduplicated).
    pub sequence_number: Option<String>,
    /// Whether it was a duplicate and not stored.
    pub duplicate: bool,
}

/// A delivery that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The store's id.
    pub id: i64,
    /// Where.
    pub target: DeliveryTarget,
    /// What.
    pub message: StoredMessage,
    /// Attempts so far in the current stage.
    pub attempts: u32,
    /// Whether it now goes to the dead-letter queue.
    pub dead_letter_stage: bool,
}

/// Durable storage for topics, subscriptions and pending deliveries.
pub trait TopicStore: Send + Sync + std::fmt::Debug {
    /// Creates a topic, or returns the existing one with its ARN (`Ok(Err(existing))`);
    /// `TopicLimitExceeded` when the account has `max_topics` already.
    fn create_topic(
        &self,
        topic: &TopicRecord,
        max_topics: usize,
    ) -> Result<Result<TopicRecord, TopicRecord>, SnsError>;

    /// A topic and all its subscriptions.
    fn topic(&self, arn: &str) -> Result<Option<(TopicRecord, Vec<SubscriptionRecord>)>, SnsError>;

    /// ARNs of `account`'s topics after `after`, in order, at most `limit`.
    fn topic_arns(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, SnsError>;

    /// Replaces a topic's attributes and tags.
    fn update_topic(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), SnsError>;

    /// Deletes a topic with its subscriptions and their pending deliveries.
    fn delete_topic(&self, arn: &str) -> Result<(), SnsError>;

    /// Inserts or replaces a subscription; `notice` (a confirmation request) is stored
    /// with it.
    fn put_subscription(
        &self,
        subscription: &SubscriptionRecord,
        notice: Option<Publication>,
    ) -> Result<(), SnsError>;

    /// Deletes a subscription and its pending deliveries; stores `notice` (an unsubscribe
    /// confirmation) in the same step.
    fn remove_subscription(&self, arn: &str, notice: Option<Publication>) -> Result<(), SnsError>;

    /// Subscriptions owned by `account` or on its topics, by ARN after `after`.
    fn subscriptions(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, SnsError>;

    /// Stores messages with their deliveries in order, deduplicating those with a key
    /// seen within `dedup_ms`; FIFO topics number them.
    fn publish(
        &self,
        topic_arn: &str,
        publications: Vec<Publication>,
        fifo: bool,
        now_ms: i64,
        dedup_ms: i64,
    ) -> Result<Vec<Published>, SnsError>;

    /// Up to `limit` deliveries due at `now_ms`, oldest first (a FIFO delivery only when
    /// no earlier one of its group to its subscription is left), and when the next
    /// not-yet-due one is.
    fn due(&self, now_ms: i64, limit: usize) -> Result<(Vec<Delivery>, Option<i64>), SnsError>;

    /// Ends a delivery (done, or given up); a message goes with its last delivery.
    fn finish(&self, id: i64) -> Result<(), SnsError>;

    /// Schedules a delivery's next attempt.
    fn retry(
        &self,
        id: i64,
        attempts: u32,
        next_ms: i64,
        dead_letter_stage: bool,
    ) -> Result<(), SnsError>;

    /// Forgets expired deduplication keys and deletes subscriptions pending since before
    /// `pending_before_ms`; returns the topics whose subscriptions changed.
    fn expire(&self, now_ms: i64, pending_before_ms: i64) -> Result<Vec<String>, SnsError>;
}

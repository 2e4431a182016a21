//! The message store's interface: what the queue semantics need from durable storage. The
//! embedded implementation is SQLite ([`crate::sqlite`]); a distributed one (JetStream, for
//! the cluster mode) implements the same trait. Every method is one atomic step: it either
//! happens completely and durably before it returns, or not at all.

use std::collections::BTreeMap;

use base64::Engine;

use crate::attributes::QueueConfig;
use crate::error::SqsError;
use crate::message::Attributes;

/// A queue as stored.
#[derive(Debug, Clone)]
pub struct QueueRecord {
    /// The store's id (never reused).
    pub id: i64,
    /// Owning account.
    pub account: String,
    /// Name.
    pub name: String,
    /// Attributes.
    pub config: QueueConfig,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// Last attribute change, ms since the epoch.
    pub modified_ms: i64,
    /// Last purge, ms since the epoch (0 when never purged).
    pub purged_ms: i64,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Its id.
    pub message_id: String,
    /// Body.
    pub body: String,
    /// Sender's attributes.
    pub attributes: Attributes,
    /// System attributes.
    pub system_attributes: Attributes,
    /// Digests, as sent back to every receiver.
    pub md5_of_body: String,
    /// Digest of `attributes`.
    pub md5_of_attributes: Option<String>,
    /// Who sent it (`SenderId`).
    pub sender: String,
    /// When, ms since the epoch.
    pub sent_ms: i64,
    /// When it may first be received (after its delay).
    pub visible_ms: i64,
    /// Message group.
    pub group_id: Option<String>,
    /// Deduplication id.
    pub deduplication_id: Option<String>,
    /// FIFO: the key it is deduplicated by (`None`: not deduplicated).
    pub dedup_key: Option<String>,
}

/// A stored message as a receive returns it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Position in the store (FIFO order; also its sequence number).
    pub seq: i64,
    /// Its id.
    pub message_id: String,
    /// Body.
    pub body: String,
    /// Sender's attributes.
    pub attributes: Attributes,
    /// System attributes.
    pub system_attributes: Attributes,
    /// Digest of the body.
    pub md5_of_body: String,
    /// Digest of the attributes.
    pub md5_of_attributes: Option<String>,
    /// `SenderId`.
    pub sender: String,
    /// `SentTimestamp`.
    pub sent_ms: i64,
    /// Receives so far (this one included).
    pub receive_count: i64,
    /// First receive.
    pub first_receive_ms: Option<i64>,
    /// Message group.
    pub group_id: Option<String>,
    /// Deduplication id.
    pub deduplication_id: Option<String>,
    /// The receipt handle of this receive.
    pub receipt_handle: String,
}

/// How a receive claims messages.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// At most this many.
    pub max: usize,
    /// Claimed messages stay invisible this long.
    pub visibility_ms: i64,
    /// Messages sent at or before this have outlived the retention period.
    pub expired_before_ms: i64,
    /// FIFO order: one message group at a time in flight.
    pub fifo: bool,
    /// `(dead-letter queue id, max receive count)`: a message already received this often
    /// moves there instead of being returned.
    pub redrive: Option<(i64, i64)>,
}

/// What a receive found.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    /// The messages, now in flight.
    pub messages: Vec<StoredMessage>,
    /// When the next invisible message becomes visible, if any is waiting.
    pub next_visible_ms: Option<i64>,
    /// Messages moved to the dead-letter queue on the way.
    pub moved_to_dead_letter: usize,
}

/// The approximate counts of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Visible now.
    pub visible: i64,
    /// Received and not yet visible again.
    pub in_flight: i64,
    /// Delayed, never received.
    pub delayed: i64,
}

/// What `send` did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The id (the original's, when deduplicated).
    pub message_id: String,
    /// The sequence number (the original's, when deduplicated).
    pub seq: i64,
    /// Whether it was a duplicate and not stored.
    pub duplicate: bool,
}

/// A receipt handle's contents: which receive of which message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Queue id.
    pub queue_id: i64,
    /// Message position.
    pub seq: i64,
    /// The receive's random token.
    pub token: String,
}

impl Receipt {
    /// The opaque handle clients see.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "gust1:{}:{}:{}",
            self.queue_id, self.seq, self.token
        ))
    }

    /// Reads a handle; `ReceiptHandleIsInvalid` when it is not one of ours.
    pub fn decode(handle: &str) -> Result<Self, SqsError> {
        let invalid = || SqsError::ReceiptHandleIsInvalid(handle.chars().take(1024).collect());
        let raw = base64::engine::general_purpose::STANDARD
            .decode(handle.trim())
            .map_err(|_| invalid())?;
        let text = String::from_utf8(raw).map_err(|_| invalid())?;
        let mut parts = text.split(':');
        match (
            parts.next(),
            parts.next().and_then(|q| q.parse().ok()),
            parts.next().and_then(|s| s.parse().ok()),
            parts.next(),
            parts.next(),
        ) {
            (Some("gust1"), Some(queue_id), Some(seq), Some(token), None) if !token.is_empty() => {
                Ok(Receipt {
                    queue_id,
                    seq,
                    token: token.to_owned(),
                })
            }
            _ => Err(invalid()),
        }
    }
}

/// A fresh random token for a receive.
pub fn new_token() -> String {
    let mut bytes = [0u8; 12];
    // A failing OS random source leaves zeros: the token is still unique with the seq
    // and receive count it is combined with below.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// Durable storage for queues and their messages.
pub trait QueueStore: Send + Sync + std::fmt::Debug {
    /// Creates a queue, or returns the live queue of that name (`Ok(Err(existing))`).
    /// `QueueDeletedRecently` when one of that name was deleted less than `reuse_after_ms` ago.
    fn create_queue(
        &self,
        account: &str,
        name: &str,
        config: &QueueConfig,
        tags: &BTreeMap<String, String>,
        now_ms: i64,
        reuse_after_ms: i64,
    ) -> Result<Result<QueueRecord, QueueRecord>, SqsError>;

    /// The live queue `name` of `account`.
    fn queue(&self, account: &str, name: &str) -> Result<Option<QueueRecord>, SqsError>;

    /// Live queues of `account` whose names start with `prefix`, by name.
    fn queues(&self, account: &str, prefix: &str) -> Result<Vec<QueueRecord>, SqsError>;

    /// Deletes a queue and its messages.
    fn delete_queue(&self, queue_id: i64, now_ms: i64) -> Result<(), SqsError>;

    /// Replaces a queue's attributes and tags.
    fn update_queue(
        &self,
        queue_id: i64,
        config: &QueueConfig,
        tags: &BTreeMap<String, String>,
        now_ms: i64,
        attributes_changed: bool,
    ) -> Result<(), SqsError>;

    /// Stores messages in order, deduplicating those with a key seen within `dedup_ms`.
    fn send(
        &self,
        queue_id: i64,
        messages: Vec<NewMessage>,
        dedup_ms: i64,
    ) -> Result<Vec<Stored>, SqsError>;

    /// Claims visible messages: each becomes invisible with a new receipt.
    fn claim(&self, queue_id: i64, claim: &Claim) -> Result<Claimed, SqsError>;

    /// Deletes messages by receipt. A stale receipt (the message was received again since)
    /// deletes nothing and is not an error, as in SQS.
    fn delete_messages(&self, queue_id: i64, receipts: &[Receipt]) -> Result<(), SqsError>;

    /// Makes in-flight messages visible at the given times; one result per entry.
    fn change_visibility(
        &self,
        queue_id: i64,
        changes: &[(Receipt, i64)],
        now_ms: i64,
    ) -> Result<Vec<Result<(), SqsError>>, SqsError>;

    /// Deletes every message sent up to `now_ms`; `false` when the last purge was less
    /// than `every_ms` ago.
    fn purge(&self, queue_id: i64, now_ms: i64, every_ms: i64) -> Result<bool, SqsError>;

    /// The approximate counts.
    fn counts(
        &self,
        queue_id: i64,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<Counts, SqsError>;

    /// Moves up to `limit` messages stored after `after_seq` and at or before `up_to_seq`
    /// from a dead-letter queue to `destination` (or back to each message's source queue
    /// when `None`); returns how many moved and the last position looked at.
    fn move_messages(
        &self,
        from: i64,
        destination: Option<i64>,
        after_seq: i64,
        up_to_seq: i64,
        limit: usize,
        now_ms: i64,
    ) -> Result<(usize, i64), SqsError>;

    /// Makes every received, still invisible message visible now: what a previous process
    /// had in flight is in flight no more (for stores whose only consumer is this server,
    /// such as the asynchronous invocation queue). Returns how many.
    fn release_in_flight(&self, queue_id: i64, now_ms: i64) -> Result<usize, SqsError>;

    /// The highest message position in a queue (0 when empty) and the message count.
    fn extent(&self, queue_id: i64) -> Result<(i64, i64), SqsError>;

    /// Removes what has expired: messages past their queue's retention, deduplication
    /// records, old queue tombstones.
    fn expire(&self, now_ms: i64) -> Result<usize, SqsError>;
}

//! The SQS service: every operation's semantics over a [`QueueStore`], with long polling,
//! access between accounts, dead-letter redrive and message move tasks. Protocol adapters
//! turn requests into these calls; nothing here knows HTTP.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use gust_model::policy::Caller as Principal;
use gust_model::Clock;
use sha2::Digest;
use tokio::sync::Notify;

use crate::attributes::{self, check_queue_name, QueueConfig, RedrivePolicy};
use crate::error::SqsError;
use crate::message::{
    check_attributes, check_body, check_fifo_id, md5_hex, md5_of_attributes, AttributeKind,
    Attributes, Outgoing, Sent,
};
use crate::store::{Claim, NewMessage, QueueRecord, QueueStore, Receipt};

/// A name can be reused this long after its queue is deleted.
const NAME_REUSE_AFTER_MS: i64 = 60_000;
/// One purge a minute.
const PURGE_EVERY_MS: i64 = 60_000;
/// FIFO deduplication window.
const DEDUP_WINDOW_MS: i64 = 5 * 60_000;
/// Most entries in a batch.
const BATCH_MAX: usize = 10;
/// Most tags on a queue.
const TAGS_MAX: usize = 50;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account the caller acts in (its own queues are found there).
    pub account: String,
    /// Who it is, for queue policies.
    pub principal: Principal,
    /// `SenderId` of what it sends.
    pub sender_id: String,
}

impl Caller {
    /// A request signed with `account`'s credentials.
    pub fn account(account: &str, sender_id: &str) -> Self {
        Caller {
            account: account.to_owned(),
            principal: Principal::Account(account.to_owned()),
            sender_id: sender_id.to_owned(),
        }
    }
}

/// A queue's name and owner, as its URL carries them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueAddress {
    /// Owning account.
    pub account: String,
    /// Name.
    pub name: String,
}

/// `ReceiveMessage`'s options.
#[derive(Debug, Clone, Default)]
pub struct ReceiveOptions {
    /// `MaxNumberOfMessages` (1–10, default 1).
    pub max: Option<i64>,
    /// `VisibilityTimeout` for these messages (default: the queue's).
    pub visibility_timeout: Option<i64>,
    /// `WaitTimeSeconds` (default: the queue's `ReceiveMessageWaitTimeSeconds`).
    pub wait_seconds: Option<i64>,
    /// System attribute names wanted (`All` or names).
    pub system_attribute_names: Vec<String>,
    /// Message attribute names wanted (`All`, `.*`, `prefix.*` or names).
    pub message_attribute_names: Vec<String>,
    /// FIFO: a retried receive with the same id returns the same messages.
    pub attempt_id: Option<String>,
}

/// A message as `ReceiveMessage` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its id.
    pub message_id: String,
    /// The handle for this receive.
    pub receipt_handle: String,
    /// MD5 of the body.
    pub md5_of_body: String,
    /// The body.
    pub body: String,
    /// The requested system attributes.
    pub attributes: BTreeMap<String, String>,
    /// MD5 of the returned message attributes.
    pub md5_of_message_attributes: Option<String>,
    /// The requested message attributes.
    pub message_attributes: Attributes,
}

/// A message move task as `ListMessageMoveTasks` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveTask {
    /// Handle (only while running).
    pub handle: String,
    /// `RUNNING`, `COMPLETED`, `CANCELLING`, `CANCELLED` or `FAILED`.
    pub status: String,
    /// The dead-letter queue moved from.
    pub source_arn: String,
    /// Where to (absent: back to each message's source).
    pub destination_arn: Option<String>,
    /// Rate limit.
    pub max_per_second: Option<i64>,
    /// Moved so far.
    pub moved: i64,
    /// To move in all.
    pub to_move: i64,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Start, ms since the epoch.
    pub started_ms: i64,
}

/// A FIFO receive attempt: the queue and the `ReceiveRequestAttemptId`.
type AttemptKey = (i64, String);

#[derive(Debug)]
struct TaskState {
    task: MoveTask,
    cancel: bool,
}

/// The queue service.
#[derive(Debug)]
pub struct Sqs {
    store: Arc<dyn QueueStore>,
    clock: Arc<dyn Clock>,
    region: String,
    /// Live queues by address: this process is the store's only writer, so the cache is
    /// coherent; every change goes through it.
    cache: Mutex<HashMap<QueueAddress, QueueRecord>>,
    waiters: Mutex<HashMap<i64, Arc<Notify>>>,
    tasks: Mutex<Vec<Arc<Mutex<TaskState>>>>,
    /// FIFO receives by `(queue, ReceiveRequestAttemptId)`, for five minutes.
    attempts: Mutex<HashMap<AttemptKey, (i64, Vec<Received>)>>,
    /// Held by every change to a queue's record (create, attributes, tags, policy,
    /// delete): each reads the record and writes it whole, so two must not interleave.
    changes: tokio::sync::Mutex<()>,
    /// Moves on every change to the cache, so a lookup that raced a change does not put
    /// what it read before the change back.
    epoch: std::sync::atomic::AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks batch entry ids: 1–10 entries, well-formed, distinct.
pub fn check_batch_ids<'a>(
    ids: impl ExactSizeIterator<Item = &'a str>,
    entry_type: &'static str,
) -> Result<(), SqsError> {
    let count = ids.len();
    if count == 0 {
        return Err(SqsError::EmptyBatchRequest(entry_type));
    }
    if count > BATCH_MAX {
        return Err(SqsError::TooManyEntriesInBatchRequest(count));
    }
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SqsError::InvalidBatchEntryId);
        }
        if !seen.insert(id) {
            return Err(SqsError::BatchEntryIdsNotDistinct(id.to_owned()));
        }
    }
    Ok(())
}

fn range(value: i64, parameter: &str, min: i64, max: i64, reason: &str) -> Result<(), SqsError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(SqsError::invalid_value(value, parameter, reason))
    }
}

fn wants(names: &[String], name: &str) -> bool {
    names.iter().any(|n| {
        n == "All"
            || n == ".*"
            || n == name
            || n.strip_suffix(".*").is_some_and(|prefix| {
                name.starts_with(prefix) && name[prefix.len()..].starts_with('.')
            })
    })
}

impl Sqs {
    /// A service over `store`, naming queues in `region`.
    pub fn new(store: Arc<dyn QueueStore>, clock: Arc<dyn Clock>, region: &str) -> Arc<Self> {
        Arc::new(Sqs {
            store,
            clock,
            region: region.to_owned(),
            cache: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            attempts: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            epoch: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Removes expired messages every second, for as long as the service lives.
    pub fn start_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(sqs) = weak.upgrade() else { return };
                let now = sqs.now_ms();
                let store = Arc::clone(&sqs.store);
                drop(sqs);
                let _ = tokio::task::spawn_blocking(move || store.expire(now)).await;
            }
        });
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The region queues are named in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A queue's ARN.
    pub fn arn(&self, queue: &QueueAddress) -> String {
        format!(
            "arn:aws:sqs:{}:{}:{}",
            self.region, queue.account, queue.name
        )
    }

    /// The queue an ARN names, when it names one in this region.
    pub fn parse_arn(&self, arn: &str) -> Option<QueueAddress> {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", region, account, name] if *region == self.region => {
                Some(QueueAddress {
                    account: (*account).to_owned(),
                    name: (*name).to_owned(),
                })
            }
            _ => None,
        }
    }

    async fn blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn QueueStore) -> Result<R, SqsError> + Send + 'static,
    ) -> Result<R, SqsError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || job(store.as_ref()))
            .await
            .map_err(|e| SqsError::Internal(e.to_string()))?
    }

    async fn record(&self, queue: &QueueAddress) -> Result<Option<QueueRecord>, SqsError> {
        if let Some(record) = lock(&self.cache).get(queue) {
            return Ok(Some(record.clone()));
        }
        let epoch = self.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let address = queue.clone();
        let found = self
            .blocking(move |store| store.queue(&address.account, &address.name))
            .await?;
        if let Some(record) = &found {
            let mut cache = lock(&self.cache);
            if self.epoch.load(std::sync::atomic::Ordering::SeqCst) == epoch {
                cache.insert(queue.clone(), record.clone());
            }
        }
        Ok(found)
    }

    /// The queue, if `caller` may perform `action` (`sqs:SendMessage`, …) on it: its own
    /// account's, or another's whose policy allows it. A queue the caller may not see is
    /// reported as missing only when it does not exist.
    async fn queue(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        action: &str,
    ) -> Result<QueueRecord, SqsError> {
        let record = self
            .record(queue)
            .await?
            .ok_or(SqsError::QueueDoesNotExist)?;
        if caller.account == record.account {
            return Ok(record);
        }
        let allowed = record
            .config
            .map
            .get("Policy")
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .is_some_and(|policy| {
                gust_model::policy::document_allows(&policy, &caller.principal, action)
            });
        if allowed {
            Ok(record)
        } else {
            Err(SqsError::AccessDenied(self.arn(queue)))
        }
    }

    fn forget(&self, queue: &QueueAddress) {
        let mut cache = lock(&self.cache);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cache.remove(queue);
    }

    /// Puts a changed record in the cache.
    fn remember(&self, queue: &QueueAddress, record: QueueRecord) {
        let mut cache = lock(&self.cache);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cache.insert(queue.clone(), record);
    }

    fn waiter(&self, queue_id: i64) -> Arc<Notify> {
        Arc::clone(lock(&self.waiters).entry(queue_id).or_default())
    }

    fn wake(&self, queue_id: i64) {
        if let Some(waiter) = lock(&self.waiters).get(&queue_id) {
            waiter.notify_waiters();
        }
    }

    /// `CreateQueue`: idempotent for equal attributes.
    pub async fn create_queue(
        &self,
        caller: &Caller,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<QueueAddress, SqsError> {
        check_queue_name(name)?;
        let config = QueueConfig::create(name, attributes)?;
        check_tags(tags, name)?;
        if let Some(policy) = &config.redrive {
            self.check_dead_letter(caller, name, &config, policy)
                .await?;
        }
        let _change = self.changes.lock().await;
        let (account, owned_name, tags_owned, config_owned) = (
            caller.account.clone(),
            name.to_owned(),
            tags.clone(),
            config.clone(),
        );
        let now = self.now_ms();
        let created = self
            .blocking(move |store| {
                store.create_queue(
                    &account,
                    &owned_name,
                    &config_owned,
                    &tags_owned,
                    now,
                    NAME_REUSE_AFTER_MS,
                )
            })
            .await?;
        let address = QueueAddress {
            account: caller.account.clone(),
            name: name.to_owned(),
        };
        match created {
            Ok(record) => {
                self.remember(&address, record);
                Ok(address)
            }
            Err(existing) => match existing.config.differs_from(name, attributes) {
                None => Ok(address),
                Some(attribute) => Err(SqsError::QueueNameExists(format!(
                    "A queue already exists with the same name and a different value for attribute {attribute}"
                ))),
            },
        }
    }

    /// The dead-letter queue of a redrive policy must exist, be of the same type and
    /// allow this source.
    async fn check_dead_letter(
        &self,
        caller: &Caller,
        source_name: &str,
        source: &QueueConfig,
        policy: &RedrivePolicy,
    ) -> Result<QueueRecord, SqsError> {
        let invalid =
            |reason: &str| SqsError::invalid_value(policy.render(), "RedrivePolicy", reason);
        let target = self
            .parse_arn(&policy.dead_letter_target_arn)
            .ok_or_else(|| invalid("Dead-letter target does not exist."))?;
        if target.account == caller.account && target.name == source_name {
            return Err(invalid(
                "Source queue and dead-letter queue must be different.",
            ));
        }
        let record = match self.queue(caller, &target, "sqs:SendMessage").await {
            Ok(record) => record,
            Err(SqsError::QueueDoesNotExist) => {
                return Err(invalid("Dead-letter target does not exist."))
            }
            Err(error) => return Err(error),
        };
        if record.config.fifo != source.fifo {
            return Err(invalid(
                "Dead-letter queue must be same type of queue as the source.",
            ));
        }
        let source_arn = self.arn(&QueueAddress {
            account: caller.account.clone(),
            name: source_name.to_owned(),
        });
        if let Some(allow) = &record.config.redrive_allow {
            if !allow.allows(&source_arn) {
                return Err(invalid(
                    "Dead-letter target's redrive allow policy does not permit this source queue.",
                ));
            }
        }
        Ok(record)
    }

    /// `GetQueueUrl`.
    pub async fn get_queue_url(
        &self,
        caller: &Caller,
        name: &str,
        owner: Option<&str>,
    ) -> Result<QueueAddress, SqsError> {
        let address = QueueAddress {
            account: owner.unwrap_or(&caller.account).to_owned(),
            name: name.to_owned(),
        };
        self.queue(caller, &address, "sqs:GetQueueUrl").await?;
        Ok(address)
    }

    /// `ListQueues`: the caller's queues by name, `max` a page when given.
    pub async fn list_queues(
        &self,
        caller: &Caller,
        prefix: &str,
        max: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<QueueAddress>, Option<String>), SqsError> {
        if let Some(max) = max {
            range(
                max,
                "MaxResults",
                1,
                1000,
                "MaxResults must be an integer between 1 and 1000.",
            )?;
        }
        let (account, owned_prefix) = (caller.account.clone(), prefix.to_owned());
        let queues = self
            .blocking(move |store| store.queues(&account, &owned_prefix))
            .await?;
        let names: Vec<String> = queues.into_iter().map(|q| q.name).collect();
        let (page, token) = page(names, max, next_token, 1000)?;
        Ok((
            page.into_iter()
                .map(|name| QueueAddress {
                    account: caller.account.clone(),
                    name,
                })
                .collect(),
            token,
        ))
    }

    /// `DeleteQueue`.
    pub async fn delete_queue(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
    ) -> Result<(), SqsError> {
        let _change = self.changes.lock().await;
        let record = self.queue(caller, queue, "sqs:DeleteQueue").await?;
        let now = self.now_ms();
        self.forget(queue);
        self.blocking(move |store| store.delete_queue(record.id, now))
            .await?;
        self.forget(queue);
        self.wake(record.id);
        Ok(())
    }

    /// `GetQueueAttributes`.
    pub async fn get_attributes(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, SqsError> {
        if let Some(unknown) = names
            .iter()
            .find(|n| *n != "All" && !attributes::is_known(n))
        {
            return Err(SqsError::InvalidAttributeName(format!(
                "Unknown Attribute {unknown}."
            )));
        }
        let record = self.queue(caller, queue, "sqs:GetQueueAttributes").await?;
        let all = names.iter().any(|n| n == "All");
        let wanted = |name: &str| all || names.iter().any(|n| n == name);
        let mut out: BTreeMap<String, String> = record
            .config
            .map
            .iter()
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let counted = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ];
        if counted.iter().any(|n| wanted(n)) {
            let now = self.now_ms();
            let expired = now - i64::from(record.config.message_retention_period) * 1000;
            let id = record.id;
            let counts = self
                .blocking(move |store| store.counts(id, now, expired))
                .await?;
            for (name, value) in
                counted
                    .iter()
                    .zip([counts.visible, counts.in_flight, counts.delayed])
            {
                if wanted(name) {
                    out.insert((*name).to_owned(), value.to_string());
                }
            }
        }
        let computed = [
            ("QueueArn", self.arn(queue)),
            ("CreatedTimestamp", (record.created_ms / 1000).to_string()),
            (
                "LastModifiedTimestamp",
                (record.modified_ms / 1000).to_string(),
            ),
        ];
        for (name, value) in computed {
            if wanted(name) {
                out.insert(name.to_owned(), value);
            }
        }
        Ok(out)
    }

    /// `SetQueueAttributes`.
    pub async fn set_attributes(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        given: &BTreeMap<String, String>,
    ) -> Result<(), SqsError> {
        let _change = self.changes.lock().await;
        let record = self.queue(caller, queue, "sqs:SetQueueAttributes").await?;
        let config = record.config.update(given)?;
        if let Some(policy) = &config.redrive {
            if record.config.redrive.as_ref() != Some(policy) {
                self.check_dead_letter(caller, &queue.name, &config, policy)
                    .await?;
            }
        }
        self.save(queue, record, config, None).await
    }

    async fn save(
        &self,
        queue: &QueueAddress,
        record: QueueRecord,
        config: QueueConfig,
        tags: Option<BTreeMap<String, String>>,
    ) -> Result<(), SqsError> {
        let now = self.now_ms();
        let attributes_changed = tags.is_none();
        let tags = tags.unwrap_or_else(|| record.tags.clone());
        let (id, stored_config, stored_tags) = (record.id, config.clone(), tags.clone());
        self.blocking(move |store| {
            store.update_queue(id, &stored_config, &stored_tags, now, attributes_changed)
        })
        .await?;
        let mut record = record;
        record.config = config;
        record.tags = tags;
        if attributes_changed {
            record.modified_ms = now;
        }
        self.remember(queue, record);
        Ok(())
    }

    /// `SendMessage` and `SendMessageBatch`: every entry checked on its own; an entry's
    /// failure does not stop the others. All accepted entries are stored in one step.
    pub async fn send(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        entries: Vec<Outgoing>,
    ) -> Result<Vec<Result<Sent, SqsError>>, SqsError> {
        let record = self.queue(caller, queue, "sqs:SendMessage").await?;
        let config = &record.config;
        let now = self.now_ms();
        let mut results: Vec<Result<Sent, SqsError>> = Vec::with_capacity(entries.len());
        let mut accepted = Vec::new();
        for entry in entries {
            match self.prepare(caller, config, entry, now) {
                Ok((message, sent)) => {
                    accepted.push((results.len(), message));
                    results.push(Ok(sent));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let (positions, messages): (Vec<usize>, Vec<NewMessage>) = accepted.into_iter().unzip();
        let id = record.id;
        let stored = self
            .blocking(move |store| store.send(id, messages, DEDUP_WINDOW_MS))
            .await?;
        for (position, stored) in positions.into_iter().zip(stored) {
            if let Ok(sent) = &mut results[position] {
                sent.message_id = stored.message_id;
                if config.fifo {
                    sent.sequence_number = Some(format!("{:020}", stored.seq));
                }
            }
        }
        self.wake(record.id);
        Ok(results)
    }

    fn prepare(
        &self,
        caller: &Caller,
        config: &QueueConfig,
        entry: Outgoing,
        now: i64,
    ) -> Result<(NewMessage, Sent), SqsError> {
        check_body(&entry.body)?;
        let size = entry.body.len()
            + check_attributes(&entry.attributes, AttributeKind::User)?
            + check_attributes(&entry.system_attributes, AttributeKind::System)?;
        if size > config.maximum_message_size as usize {
            return Err(SqsError::InvalidParameterValue(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                config.maximum_message_size
            )));
        }
        let not_for_this_type = |value: &dyn std::fmt::Display, parameter: &str| {
            SqsError::invalid_value(
                value,
                parameter,
                "The request include parameter that is not valid for this queue type.",
            )
        };
        if let Some(delay) = entry.delay_seconds {
            if config.fifo {
                return Err(not_for_this_type(&delay, "DelaySeconds"));
            }
        }
        let delay = i64::from(entry.delay_seconds.unwrap_or(config.delay_seconds));
        if let Some(group) = &entry.group_id {
            check_fifo_id(group, "MessageGroupId")?;
        }
        // FIFO: (the key deduplication looks up, the message's deduplication id).
        let dedup = if config.fifo {
            let group = entry
                .group_id
                .as_deref()
                .ok_or_else(|| SqsError::MissingParameter("MessageGroupId".into()))?;
            let id = match &entry.deduplication_id {
                Some(id) => {
                    check_fifo_id(id, "MessageDeduplicationId")?;
                    id.clone()
                }
                None if config.content_based_deduplication => {
                    hex::encode(sha2::Sha256::digest(entry.body.as_bytes()))
                }
                None => {
                    return Err(SqsError::InvalidParameterValue(
                        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                    ))
                }
            };
            let key = if config.deduplication_scope == "messageGroup" {
                format!("{group}\u{0}{id}")
            } else {
                id.clone()
            };
            Some((key, id))
        } else {
            if let Some(id) = &entry.deduplication_id {
                return Err(not_for_this_type(id, "MessageDeduplicationId"));
            }
            None
        };
        let sent = Sent {
            message_id: uuid::Uuid::new_v4().to_string(),
            md5_of_body: md5_hex(entry.body.as_bytes()),
            md5_of_attributes: md5_of_attributes(&entry.attributes),
            md5_of_system_attributes: md5_of_attributes(&entry.system_attributes),
            sequence_number: None,
        };
        let mut system_attributes = entry.system_attributes;
        if let Some(trace) = entry.trace {
            system_attributes
                .entry("AWSTraceHeader".to_owned())
                .or_insert_with(|| crate::message::AttributeValue {
                    data_type: "String".into(),
                    string_value: Some(trace),
                    binary_value: None,
                });
        }
        let message = NewMessage {
            message_id: sent.message_id.clone(),
            md5_of_body: sent.md5_of_body.clone(),
            md5_of_attributes: sent.md5_of_attributes.clone(),
            body: entry.body,
            attributes: entry.attributes,
            system_attributes,
            sender: caller.sender_id.clone(),
            sent_ms: now,
            visible_ms: now + delay * 1000,
            group_id: entry.group_id,
            // A content-deduplicated message's id is the body's hash.
            deduplication_id: dedup.as_ref().map(|(_, id)| id.clone()),
            dedup_key: dedup.map(|(key, _)| key),
        };
        Ok((message, sent))
    }

    /// Checks a batch's total size (the sum of its messages).
    pub fn check_batch_size(entries: &[Outgoing]) -> Result<(), SqsError> {
        let sent: usize = entries
            .iter()
            .map(|e| {
                e.body.len()
                    + e.attributes
                        .iter()
                        .map(|(k, v)| {
                            k.len()
                                + v.data_type.len()
                                + v.string_value.as_ref().map_or(0, String::len)
                                + v.binary_value.as_ref().map_or(0, Vec::len)
                        })
                        .sum::<usize>()
            })
            .sum();
        let limit = attributes::MESSAGE_SIZE_MAX as usize;
        if sent > limit {
            return Err(SqsError::BatchRequestTooLong { limit, sent });
        }
        Ok(())
    }

    /// `ReceiveMessage`: waits up to the wait time for a message, returning as soon as
    /// there is one.
    pub async fn receive(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        options: &ReceiveOptions,
    ) -> Result<Vec<Received>, SqsError> {
        let max = options.max.unwrap_or(1);
        range(
            max,
            "MaxNumberOfMessages",
            1,
            10,
            "Must be between 1 and 10, if provided.",
        )?;
        if let Some(v) = options.visibility_timeout {
            range(
                v,
                "VisibilityTimeout",
                0,
                43_200,
                "Must be >= 0 and <= 43200, if provided.",
            )?;
        }
        if let Some(w) = options.wait_seconds {
            range(
                w,
                "WaitTimeSeconds",
                0,
                20,
                "Must be >= 0 and <= 20, if provided.",
            )?;
        }
        if let Some(attempt) = &options.attempt_id {
            check_fifo_id(attempt, "ReceiveRequestAttemptId")?;
        }
        let record = self.queue(caller, queue, "sqs:ReceiveMessage").await?;
        let attempt = options
            .attempt_id
            .clone()
            .filter(|_| record.config.fifo)
            .map(|id| (record.id, id));
        if let Some(key) = &attempt {
            if let Some(again) = self
                .repeat_attempt(caller, queue, &record, key, options)
                .await?
            {
                return Ok(again);
            }
        }
        let received = self.receive_new(caller, queue, &record, options).await?;
        if let Some(key) = attempt {
            let mut attempts = lock(&self.attempts);
            let now = self.now_ms();
            attempts.retain(|_, (expires, _)| *expires > now);
            if !received.is_empty() {
                attempts.insert(key, (now + DEDUP_WINDOW_MS, received.clone()));
            }
        }
        Ok(received)
    }

    /// A FIFO receive retried with its `ReceiveRequestAttemptId`: the same messages and
    /// receipts while they are all still in flight (their visibility timeout starts again),
    /// else `None` (a new receive).
    async fn repeat_attempt(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        record: &QueueRecord,
        key: &AttemptKey,
        options: &ReceiveOptions,
    ) -> Result<Option<Vec<Received>>, SqsError> {
        let earlier = {
            let attempts = lock(&self.attempts);
            attempts
                .get(key)
                .filter(|(expires, _)| *expires > self.now_ms())
                .map(|(_, received)| received.clone())
        };
        let Some(earlier) = earlier else {
            return Ok(None);
        };
        let timeout = options
            .visibility_timeout
            .unwrap_or(i64::from(record.config.visibility_timeout));
        let entries: Vec<(String, i64)> = earlier
            .iter()
            .map(|m| (m.receipt_handle.clone(), timeout))
            .collect();
        let outcomes = self.change_visibility(caller, queue, &entries).await?;
        if outcomes.iter().all(Result::is_ok) {
            Ok(Some(earlier))
        } else {
            lock(&self.attempts).remove(key);
            Ok(None)
        }
    }

    async fn receive_new(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        record: &QueueRecord,
        options: &ReceiveOptions,
    ) -> Result<Vec<Received>, SqsError> {
        let max = options.max.unwrap_or(1);
        let wait = options
            .wait_seconds
            .unwrap_or(i64::from(record.config.receive_wait_seconds));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
        let waiter = self.waiter(record.id);
        loop {
            let notified = waiter.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Attributes may have changed while waiting (or the queue gone).
            let record = self.queue(caller, queue, "sqs:ReceiveMessage").await?;
            let now = self.now_ms();
            let redrive = match &record.config.redrive {
                Some(policy) => self
                    .parse_arn(&policy.dead_letter_target_arn)
                    .map(|address| async move { self.record(&address).await })
                    .map(|lookup| (lookup, policy.max_receive_count)),
                None => None,
            };
            let redrive = match redrive {
                Some((lookup, count)) => lookup
                    .await?
                    .filter(|dlq| dlq.id != record.id)
                    .map(|dlq| (dlq.id, i64::from(count))),
                None => None,
            };
            let claim = Claim {
                now_ms: now,
                max: max as usize,
                visibility_ms: options
                    .visibility_timeout
                    .unwrap_or(i64::from(record.config.visibility_timeout))
                    * 1000,
                expired_before_ms: now - i64::from(record.config.message_retention_period) * 1000,
                fifo: record.config.fifo,
                redrive,
            };
            let id = record.id;
            let claimed = self.blocking(move |store| store.claim(id, &claim)).await?;
            if claimed.moved_to_dead_letter > 0 {
                if let Some((dlq, _)) = redrive {
                    self.wake(dlq);
                }
            }
            if !claimed.messages.is_empty() {
                return Ok(claimed
                    .messages
                    .into_iter()
                    .map(|m| self.present(m, options))
                    .collect());
            }
            let now_instant = tokio::time::Instant::now();
            if now_instant >= deadline {
                return Ok(Vec::new());
            }
            let until = claimed
                .next_visible_ms
                .map(|at| now_instant + Duration::from_millis((at - now).max(1) as u64))
                .map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    fn present(&self, message: crate::store::StoredMessage, options: &ReceiveOptions) -> Received {
        let names = &options.system_attribute_names;
        let mut attributes = BTreeMap::new();
        let mut add = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                if names.iter().any(|n| n == "All" || n == name) {
                    attributes.insert(name.to_owned(), value);
                }
            }
        };
        add("SenderId", Some(message.sender.clone()));
        add("SentTimestamp", Some(message.sent_ms.to_string()));
        add(
            "ApproximateReceiveCount",
            Some(message.receive_count.to_string()),
        );
        add(
            "ApproximateFirstReceiveTimestamp",
            message.first_receive_ms.map(|t| t.to_string()),
        );
        if message.deduplication_id.is_some() {
            add("SequenceNumber", Some(format!("{:020}", message.seq)));
        }
        add("MessageDeduplicationId", message.deduplication_id.clone());
        add("MessageGroupId", message.group_id.clone());
        add(
            "AWSTraceHeader",
            message
                .system_attributes
                .get("AWSTraceHeader")
                .and_then(|v| v.string_value.clone()),
        );
        let message_attributes: Attributes = message
            .attributes
            .into_iter()
            .filter(|(name, _)| wants(&options.message_attribute_names, name))
            .collect();
        Received {
            message_id: message.message_id,
            receipt_handle: message.receipt_handle,
            md5_of_body: message.md5_of_body,
            body: message.body,
            attributes,
            md5_of_message_attributes: md5_of_attributes(&message_attributes),
            message_attributes,
        }
    }

    fn receipts_for(record: &QueueRecord, handles: &[String]) -> Vec<Result<Receipt, SqsError>> {
        handles
            .iter()
            .map(|handle| {
                let receipt = Receipt::decode(handle)?;
                if receipt.queue_id == record.id {
                    Ok(receipt)
                } else {
                    Err(SqsError::ReceiptHandleIsInvalid(handle.clone()))
                }
            })
            .collect()
    }

    /// `DeleteMessage` and `DeleteMessageBatch`.
    pub async fn delete(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        handles: &[String],
    ) -> Result<Vec<Result<(), SqsError>>, SqsError> {
        let record = self.queue(caller, queue, "sqs:DeleteMessage").await?;
        let parsed = Self::receipts_for(&record, handles);
        let valid: Vec<Receipt> = parsed.iter().filter_map(|r| r.clone().ok()).collect();
        if !valid.is_empty() {
            let id = record.id;
            self.blocking(move |store| store.delete_messages(id, &valid))
                .await?;
            if record.config.fifo {
                self.wake(record.id);
            }
        }
        Ok(parsed.into_iter().map(|r| r.map(|_| ())).collect())
    }

    /// `ChangeMessageVisibility` and its batch.
    pub async fn change_visibility(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        entries: &[(String, i64)],
    ) -> Result<Vec<Result<(), SqsError>>, SqsError> {
        let record = self
            .queue(caller, queue, "sqs:ChangeMessageVisibility")
            .await?;
        let handles: Vec<String> = entries.iter().map(|(h, _)| h.clone()).collect();
        let parsed = Self::receipts_for(&record, &handles);
        let now = self.now_ms();
        let mut results: Vec<Result<(), SqsError>> = Vec::with_capacity(entries.len());
        let mut changes = Vec::new();
        for (position, (receipt, (_, timeout))) in parsed.into_iter().zip(entries).enumerate() {
            let checked = receipt.and_then(|receipt| {
                range(
                    *timeout,
                    "VisibilityTimeout",
                    0,
                    43_200,
                    "Must be between 0 and 43200, if provided.",
                )?;
                Ok(receipt)
            });
            match checked {
                Ok(receipt) => {
                    changes.push((position, (receipt, now + timeout * 1000)));
                    results.push(Ok(()));
                }
                Err(error) => results.push(Err(error)),
            }
        }
        if !changes.is_empty() {
            let (positions, changes): (Vec<usize>, Vec<(Receipt, i64)>) =
                changes.into_iter().unzip();
            let id = record.id;
            let outcomes = self
                .blocking(move |store| store.change_visibility(id, &changes, now))
                .await?;
            for (position, outcome) in positions.into_iter().zip(outcomes) {
                results[position] = outcome;
            }
            self.wake(record.id);
        }
        Ok(results)
    }

    /// `PurgeQueue`.
    pub async fn purge(&self, caller: &Caller, queue: &QueueAddress) -> Result<(), SqsError> {
        let record = self.queue(caller, queue, "sqs:PurgeQueue").await?;
        let (id, now) = (record.id, self.now_ms());
        let purged = self
            .blocking(move |store| store.purge(id, now, PURGE_EVERY_MS))
            .await?;
        if purged {
            Ok(())
        } else {
            Err(SqsError::PurgeQueueInProgress(record.name))
        }
    }

    /// `ListQueueTags`.
    pub async fn tags(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
    ) -> Result<BTreeMap<String, String>, SqsError> {
        Ok(self.queue(caller, queue, "sqs:ListQueueTags").await?.tags)
    }

    /// `TagQueue`.
    pub async fn tag(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), SqsError> {
        let _change = self.changes.lock().await;
        let record = self.queue(caller, queue, "sqs:TagQueue").await?;
        if tags.is_empty() {
            return Err(SqsError::MissingParameter("Tags".into()));
        }
        let mut all = record.tags.clone();
        all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        check_tags(&all, &record.name)?;
        let config = record.config.clone();
        self.save(queue, record, config, Some(all)).await
    }

    /// `UntagQueue`.
    pub async fn untag(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        keys: &[String],
    ) -> Result<(), SqsError> {
        let _change = self.changes.lock().await;
        let record = self.queue(caller, queue, "sqs:UntagQueue").await?;
        if keys.is_empty() {
            return Err(SqsError::MissingParameter("TagKeys".into()));
        }
        let mut all = record.tags.clone();
        for key in keys {
            all.remove(key);
        }
        let config = record.config.clone();
        self.save(queue, record, config, Some(all)).await
    }

    /// `AddPermission`: a statement in the queue's policy.
    pub async fn add_permission(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        label: &str,
        accounts: &[String],
        actions: &[String],
    ) -> Result<(), SqsError> {
        let _change = self.changes.lock().await;
        let record = self.queue(caller, queue, "sqs:AddPermission").await?;
        if label.is_empty()
            || label.len() > 80
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SqsError::invalid_value(
                label,
                "Label",
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            ));
        }
        if accounts.is_empty() {
            return Err(SqsError::MissingParameter("AWSAccountIds".into()));
        }
        if actions.is_empty() {
            return Err(SqsError::MissingParameter("Actions".into()));
        }
        const ACTIONS: [&str; 9] = [
            "*",
            "SendMessage",
            "ReceiveMessage",
            "DeleteMessage",
            "ChangeMessageVisibility",
            "GetQueueAttributes",
            "GetQueueUrl",
            "ListDeadLetterSourceQueues",
            "PurgeQueue",
        ];
        if let Some(bad) = actions.iter().find(|a| !ACTIONS.contains(&a.as_str())) {
            return Err(SqsError::invalid_value(
                bad,
                "ActionName.1",
                "Please refer to the appropriate WSDL for a list of valid actions.",
            ));
        }
        let mut policy: serde_json::Value = record
            .config
            .map
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_else(|| {
                serde_json::json!({"Version": "2012-10-17", "Id": format!("{}/SQSDefaultPolicy", self.arn(queue)), "Statement": []})
            });
        let statements = policy
            .get_mut("Statement")
            .and_then(|s| s.as_array_mut())
            .ok_or_else(|| {
                SqsError::InvalidParameterValue("The queue's policy has no statement list.".into())
            })?;
        if statements
            .iter()
            .any(|s| s.get("Sid").and_then(|v| v.as_str()) == Some(label))
        {
            return Err(SqsError::invalid_value(label, "Label", "Already exists."));
        }
        let principals: Vec<String> = accounts
            .iter()
            .map(|a| format!("arn:aws:iam::{a}:root"))
            .collect();
        let actions: Vec<String> = actions.iter().map(|a| format!("SQS:{a}")).collect();
        statements.push(serde_json::json!({
            "Sid": label,
            "Effect": "Allow",
            "Principal": {"AWS": if principals.len() == 1 { serde_json::json!(principals[0]) } else { serde_json::json!(principals) }},
            "Action": if actions.len() == 1 { serde_json::json!(actions[0]) } else { serde_json::json!(actions) },
            "Resource": self.arn(queue),
        }));
        let given: BTreeMap<String, String> = [("Policy".to_owned(), policy.to_string())].into();
        let config = record.config.update(&given)?;
        self.save(queue, record, config, None).await
    }

    /// `RemovePermission`.
    pub async fn remove_permission(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        label: &str,
    ) -> Result<(), SqsError> {
        let _change = self.changes.lock().await;
        let record = self.queue(caller, queue, "sqs:RemovePermission").await?;
        let mut policy: serde_json::Value = record
            .config
            .map
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let statements = policy.get_mut("Statement").and_then(|s| s.as_array_mut());
        let Some(statements) = statements else {
            return Err(SqsError::invalid_value(label, "Label", "can't find label."));
        };
        let before = statements.len();
        statements.retain(|s| s.get("Sid").and_then(|v| v.as_str()) != Some(label));
        if statements.len() == before {
            return Err(SqsError::invalid_value(label, "Label", "can't find label."));
        }
        let value = if statements.is_empty() {
            String::new()
        } else {
            policy.to_string()
        };
        let given: BTreeMap<String, String> = [("Policy".to_owned(), value)].into();
        let config = record.config.update(&given)?;
        self.save(queue, record, config, None).await
    }

    /// `ListDeadLetterSourceQueues`: the caller's queues whose redrive policy targets this one.
    pub async fn dead_letter_sources(
        &self,
        caller: &Caller,
        queue: &QueueAddress,
        max: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<QueueAddress>, Option<String>), SqsError> {
        self.queue(caller, queue, "sqs:ListDeadLetterSourceQueues")
            .await?;
        if let Some(max) = max {
            range(
                max,
                "MaxResults",
                1,
                1000,
                "MaxResults must be an integer between 1 and 1000.",
            )?;
        }
        let arn = self.arn(queue);
        let names = self.sources_of(&caller.account, &arn).await?;
        let (names, token) = page(names, max, next_token, 1000)?;
        Ok((
            names
                .into_iter()
                .map(|name| QueueAddress {
                    account: caller.account.clone(),
                    name,
                })
                .collect(),
            token,
        ))
    }

    async fn sources_of(&self, account: &str, arn: &str) -> Result<Vec<String>, SqsError> {
        let owned = account.to_owned();
        let queues = self.blocking(move |store| store.queues(&owned, "")).await?;
        Ok(queues
            .into_iter()
            .filter(|q| {
                q.config
                    .redrive
                    .as_ref()
                    .is_some_and(|r| r.dead_letter_target_arn == arn)
            })
            .map(|q| q.name)
            .collect())
    }

    /// `StartMessageMoveTask`: moves a dead-letter queue's messages back to their sources
    /// (or to `destination_arn`) in the background.
    pub async fn start_move_task(
        self: &Arc<Self>,
        caller: &Caller,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<i64>,
    ) -> Result<String, SqsError> {
        if let Some(rate) = max_per_second {
            range(
                rate,
                "MaxNumberOfMessagesPerSecond",
                1,
                500,
                "MaxNumberOfMessagesPerSecond must be between 1 and 500.",
            )?;
        }
        let source = self.parse_arn(source_arn).ok_or_else(|| {
            SqsError::invalid_value(source_arn, "SourceArn", "Source queue does not exist.")
        })?;
        let source_record = self.queue(caller, &source, "sqs:ReceiveMessage").await?;
        if self
            .sources_of(&source.account, source_arn)
            .await?
            .is_empty()
        {
            return Err(SqsError::InvalidParameterValue(
                "Source queue must be configured as a Dead Letter Queue.".into(),
            ));
        }
        let destination = match destination_arn {
            Some(arn) => {
                let address = self.parse_arn(arn).ok_or_else(|| {
                    SqsError::invalid_value(
                        arn,
                        "DestinationArn",
                        "Destination queue does not exist.",
                    )
                })?;
                Some(self.queue(caller, &address, "sqs:SendMessage").await?.id)
            }
            None => None,
        };
        {
            let tasks = lock(&self.tasks);
            if tasks.iter().any(|t| {
                let t = lock(t);
                t.task.source_arn == source_arn && t.task.status == "RUNNING"
            }) {
                return Err(SqsError::UnsupportedOperation(
                    "There is already a task running. Only one active task is allowed for a source queue arn at a given time.".into(),
                ));
            }
        }
        let id = source_record.id;
        let (up_to, count) = self.blocking(move |store| store.extent(id)).await?;
        let handle = base64::engine::general_purpose::STANDARD.encode(
            serde_json::json!({"taskId": uuid::Uuid::new_v4().to_string(), "sourceArn": source_arn})
                .to_string(),
        );
        let state = Arc::new(Mutex::new(TaskState {
            task: MoveTask {
                handle: handle.clone(),
                status: "RUNNING".into(),
                source_arn: source_arn.to_owned(),
                destination_arn: destination_arn.map(str::to_owned),
                max_per_second,
                moved: 0,
                to_move: count,
                failure_reason: None,
                started_ms: self.now_ms(),
            },
            cancel: false,
        }));
        lock(&self.tasks).push(Arc::clone(&state));
        let sqs = Arc::clone(self);
        tokio::spawn(async move {
            let step = max_per_second.unwrap_or(500) as usize;
            let mut after = 0;
            loop {
                if lock(&state).cancel {
                    lock(&state).task.status = "CANCELLED".into();
                    return;
                }
                let now = sqs.now_ms();
                let moved = sqs
                    .blocking(move |store| {
                        store.move_messages(id, destination, after, up_to, step, now)
                    })
                    .await;
                match moved {
                    Ok((_, last)) if last == after => {
                        lock(&state).task.status = "COMPLETED".into();
                        return;
                    }
                    Ok((n, last)) => {
                        after = last;
                        lock(&state).task.moved += n as i64;
                        // Messages moved back to their sources: wake their receivers.
                        let waiting: Vec<Arc<Notify>> =
                            lock(&sqs.waiters).values().cloned().collect();
                        for waiter in waiting {
                            waiter.notify_waiters();
                        }
                    }
                    Err(error) => {
                        let mut state = lock(&state);
                        state.task.status = "FAILED".into();
                        state.task.failure_reason = Some(error.to_string());
                        return;
                    }
                }
                if max_per_second.is_some() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        Ok(handle)
    }

    /// `ListMessageMoveTasks`: the newest first.
    pub async fn list_move_tasks(
        &self,
        caller: &Caller,
        source_arn: &str,
        max: Option<i64>,
    ) -> Result<Vec<MoveTask>, SqsError> {
        let max = max.unwrap_or(1);
        range(
            max,
            "MaxResults",
            1,
            10,
            "MaxResults must be between 1 and 10.",
        )?;
        let source = self.parse_arn(source_arn).ok_or_else(|| {
            SqsError::invalid_value(source_arn, "SourceArn", "Source queue does not exist.")
        })?;
        self.queue(caller, &source, "sqs:ReceiveMessage").await?;
        let tasks = lock(&self.tasks);
        Ok(tasks
            .iter()
            .rev()
            .map(|t| lock(t).task.clone())
            .filter(|t| t.source_arn == source_arn)
            .take(max as usize)
            .collect())
    }

    /// `CancelMessageMoveTask`: returns how many had moved.
    pub async fn cancel_move_task(&self, caller: &Caller, handle: &str) -> Result<i64, SqsError> {
        let task = lock(&self.tasks)
            .iter()
            .find(|t| lock(t).task.handle == handle)
            .cloned()
            .ok_or_else(|| SqsError::ResourceNotFound("Task does not exist.".into()))?;
        let source_arn = lock(&task).task.source_arn.clone();
        if let Some(source) = self.parse_arn(&source_arn) {
            self.queue(caller, &source, "sqs:ReceiveMessage").await?;
        }
        let mut state = lock(&task);
        if state.task.status != "RUNNING" {
            return Err(SqsError::ResourceNotFound(
                "Only active tasks can be cancelled.".into(),
            ));
        }
        state.cancel = true;
        state.task.status = "CANCELLING".into();
        Ok(state.task.moved)
    }
}

fn check_tags(tags: &BTreeMap<String, String>, queue: &str) -> Result<(), SqsError> {
    if tags.len() > TAGS_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Too many tags added for queue {queue}."
        )));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(SqsError::InvalidParameterValue(format!(
                "Tag key must be between 1 and 128 characters: {key}"
            )));
        }
        if value.chars().count() > 256 {
            return Err(SqsError::InvalidParameterValue(format!(
                "Tag value must be at most 256 characters: {key}"
            )));
        }
    }
    Ok(())
}

/// A page of sorted `names` after `token`; a token for the next page when `max` was given
/// and more remain.
fn page(
    names: Vec<String>,
    max: Option<i64>,
    token: Option<&str>,
    default_max: usize,
) -> Result<(Vec<String>, Option<String>), SqsError> {
    let after = match token {
        Some(token) if !token.is_empty() => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    SqsError::InvalidParameterValue("Invalid NextToken value.".into())
                })?,
        ),
        _ => None,
    };
    let size = max.map_or(default_max, |m| m as usize);
    let mut rest = names
        .into_iter()
        .filter(|n| after.as_ref().is_none_or(|a| n > a));
    let page: Vec<String> = rest.by_ref().take(size).collect();
    let token = (max.is_some() && rest.next().is_some())
        .then(|| page.last())
        .flatten()
        .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last));
    Ok((page, token))
}

//! The SNS service: every operation's semantics over a [`TopicStore`], with access between
//! accounts through topic policies. Protocol adapters turn requests into these calls;
//! delivery runs in the background workers of [`crate::worker`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use gust_model::policy::Caller as Principal;
use gust_model::Clock;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::Notify;

use crate::delivery::{
    effective_http_policy, subscription_effective_policy, topic_effective_policy, Deliverer,
    HttpSender, Renderer, SubscriptionHttpPolicy, TopicHttpPolicy,
};
use crate::error::SnsError;
use crate::filter::{FilterPolicy, FilterScope};
use crate::message::{
    check_attributes, check_fifo_id, check_structure, check_subject, timestamp, MessageAttributes,
};
use crate::signing::Signer;
use crate::store::{
    DeliveryTarget, NewDelivery, Publication, StoredMessage, SubscriptionRecord, TopicRecord,
    TopicStore,
};

/// Default and largest `MaximumMessageSize`.
const DEFAULT_MAX_MESSAGE: usize = 262_144;
const LARGEST_MAX_MESSAGE: usize = 1_048_576;
/// FIFO deduplication window.
const DEDUP_WINDOW_MS: i64 = 5 * 60_000;
/// Pending subscriptions (and their tokens) live this long.
pub(crate) const PENDING_FOR_MS: i64 = 48 * 3_600_000;
/// Page size of the list operations.
const PAGE: usize = 100;
/// Most entries in a batch.
const BATCH_MAX: usize = 10;
/// Most tags on a topic.
const TAGS_MAX: usize = 50;
/// Most subscriptions with a filter policy on one topic.
const FILTER_POLICIES_PER_TOPIC: usize = 200;
/// Most subscriptions on one topic.
const SUBSCRIPTIONS_PER_TOPIC: usize = 12_500_000;

/// The literal `SubscriptionArn` of an unconfirmed subscription in `Subscribe`'s answer.
pub const PENDING_CONFIRMATION: &str = "pending confirmation";

/// How the service runs.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// The server's public base URL (`http://127.0.0.1:9070`): `SigningCertURL`,
    /// `UnsubscribeURL` and `SubscribeURL` are under it.
    pub public_url: String,
    /// Where the signing key (PKCS#8 PEM) is kept; created on first start.
    pub signing_key_path: PathBuf,
    /// URL prefixes HTTP/S subscriptions may point at (empty: none).
    pub http_allow: Vec<String>,
    /// One "second" of SNS's retry schedules: `Duration::from_secs(1)` for SNS's real
    /// timing, a millisecond in tests.
    pub retry_base: Duration,
    /// Attempts in all (first included) for SQS and Lambda deliveries and for sends to a
    /// dead-letter queue. SNS makes 100,015 retries over 23 days; HTTP/S deliveries follow
    /// their delivery policy instead.
    pub max_attempts: u32,
    /// The delivery workers look for due deliveries at least this often.
    pub poll_interval: Duration,
    /// Deliveries in progress at once.
    pub max_in_flight: usize,
    /// An HTTP endpoint must answer within this.
    pub http_timeout: Duration,
    /// Topics per account.
    pub max_topics: usize,
}

impl SnsConfig {
    /// SNS's behaviour, serving URLs under `public_url`, the key at `signing_key_path`.
    pub fn new(public_url: &str, signing_key_path: &Path) -> Self {
        SnsConfig {
            public_url: public_url.trim_end_matches('/').to_owned(),
            signing_key_path: signing_key_path.to_owned(),
            http_allow: Vec::new(),
            retry_base: Duration::from_secs(1),
            max_attempts: 100_016,
            poll_interval: Duration::from_secs(1),
            max_in_flight: 64,
            http_timeout: Duration::from_secs(15),
            max_topics: 100_000,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account the caller acts in (its own topics are found there).
    pub account: String,
    /// Who it is, for topic policies.
    pub principal: Principal,
}

impl Caller {
    /// A request signed with `account`'s credentials.
    pub fn account(account: &str) -> Self {
        Caller {
            account: account.to_owned(),
            principal: Principal::Account(account.to_owned()),
        }
    }
}

/// `Publish`'s request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// `TopicArn`.
    pub topic_arn: Option<String>,
    /// `TargetArn` (a topic ARN; platform endpoints are not supported).
    pub target_arn: Option<String>,
    /// `Message`.
    pub message: String,
    /// `Subject`.
    pub subject: Option<String>,
    /// `MessageStructure` (`json`).
    pub message_structure: Option<String>,
    /// `MessageAttributes`.
    pub message_attributes: MessageAttributes,
    /// `MessageGroupId`.
    pub group_id: Option<String>,
    /// `MessageDeduplicationId`.
    pub dedup_id: Option<String>,
    /// The publisher's trace header.
    pub trace: Option<String>,
}

/// `Publish`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishResult {
    /// `MessageId`.
    pub message_id: String,
    /// FIFO topics: `SequenceNumber`.
    pub sequence_number: Option<String>,
}

/// One `PublishBatch` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchEntry {
    /// `Id`.
    pub id: String,
    /// `Message`.
    pub message: String,
    /// `Subject`.
    pub subject: Option<String>,
    /// `MessageStructure`.
    pub message_structure: Option<String>,
    /// `MessageAttributes`.
    pub message_attributes: MessageAttributes,
    /// `MessageGroupId`.
    pub group_id: Option<String>,
    /// `MessageDeduplicationId`.
    pub dedup_id: Option<String>,
}

/// A published batch entry (`PublishBatchResultEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSuccess {
    /// `Id`.
    pub id: String,
    /// `MessageId`.
    pub message_id: String,
    /// `SequenceNumber`.
    pub sequence_number: Option<String>,
}

/// A failed batch entry (`BatchResultErrorEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// `Id`.
    pub id: String,
    /// `Code`.
    pub code: String,
    /// `Message`.
    pub message: String,
    /// `SenderFault`.
    pub sender_fault: bool,
}

/// A subscription as the list operations show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSummary {
    /// `SubscriptionArn` (`PendingConfirmation` while pending).
    pub subscription_arn: String,
    /// `Owner`.
    pub owner: String,
    /// `Protocol`.
    pub protocol: String,
    /// `Endpoint`.
    pub endpoint: String,
    /// `TopicArn`.
    pub topic_arn: String,
}

/// A topic with its subscriptions and their parsed filter policies.
#[derive(Debug)]
pub(crate) struct TopicEntry {
    pub topic: TopicRecord,
    pub subscriptions: Vec<SubscriptionRecord>,
    filters: HashMap<String, FilterPolicy>,
}

impl TopicEntry {
    fn new(topic: TopicRecord, subscriptions: Vec<SubscriptionRecord>) -> Self {
        let filters = subscriptions
            .iter()
            .filter_map(|s| {
                let policy = s.attributes.get("FilterPolicy")?;
                let scope = scope_of(&s.attributes);
                match FilterPolicy::parse(policy, scope) {
                    Ok(parsed) => Some((s.arn.clone(), parsed)),
                    Err(error) => {
                        tracing::error!(subscription = %s.arn, %error, "stored filter policy is invalid");
                        None
                    }
                }
            })
            .collect();
        TopicEntry {
            topic,
            subscriptions,
            filters,
        }
    }

    fn fifo(&self) -> bool {
        is_fifo(&self.topic)
    }

    fn subscription(&self, arn: &str) -> Option<&SubscriptionRecord> {
        self.subscriptions.iter().find(|s| s.arn == arn)
    }
}

fn scope_of(attributes: &BTreeMap<String, String>) -> FilterScope {
    attributes
        .get("FilterPolicyScope")
        .and_then(|s| FilterScope::parse(s).ok())
        .unwrap_or_default()
}

fn is_fifo(topic: &TopicRecord) -> bool {
    topic.attributes.get("FifoTopic").map(String::as_str) == Some("true")
}

#[derive(Debug, Default)]
struct Cache {
    /// Bumped on every change, so a read that raced a change does not cache old data.
    generation: u64,
    topics: HashMap<String, Arc<TopicEntry>>,
}

/// The notification service.
#[derive(Debug)]
pub struct Sns {
    pub(crate) store: Arc<dyn TopicStore>,
    pub(crate) clock: Arc<dyn Clock>,
    region: String,
    pub(crate) deliverer: Arc<dyn Deliverer>,
    pub(crate) config: SnsConfig,
    pub(crate) signer: Signer,
    pub(crate) http: HttpSender,
    /// Topics by ARN: this process is the store's only writer, so the cache is coherent.
    cache: Mutex<Cache>,
    /// Serialises read-modify-write changes of topics and subscriptions.
    changes: tokio::sync::Mutex<()>,
    /// Wakes the delivery workers when there is new work.
    pub(crate) wake: Arc<Notify>,
    /// Whether the workers run (they are started once).
    pub(crate) started: std::sync::atomic::AtomicBool,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_true(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn boolean(name: &str, value: &str) -> Result<bool, SnsError> {
    is_true(value).ok_or_else(|| {
        SnsError::invalid(format!(
            "Attributes Reason: {name}: Invalid value [{value}]. Must be true or false."
        ))
    })
}

fn valid_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_token() -> String {
    let mut bytes = [0u8; 64];
    // A failing OS random source would leave zeros; uuid's randomness is mixed in so the
    // token still differs per subscription.
    let _ = getrandom::fill(&mut bytes);
    let salt = uuid::Uuid::new_v4();
    for (byte, extra) in bytes.iter_mut().zip(salt.as_bytes().iter().cycle()) {
        *byte ^= extra;
    }
    hex::encode(bytes)
}

fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: Option<&str>) -> Result<Option<String>, SnsError> {
    match token {
        None | Some("") => Ok(None),
        Some(token) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| SnsError::invalid("NextToken")),
    }
}

/// `(account, name)` of an ARN `arn:aws:<service>:<region>:<account>:<name>`.
fn arn_parts<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, s, region, account, rest]
            if partition.starts_with("aws")
                && *s == service
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty() =>
        {
            Some((region, account, rest))
        }
        _ => None,
    }
}

const TOPIC_ACTIONS: [&str; 8] = [
    "GetTopicAttributes",
    "SetTopicAttributes",
    "AddPermission",
    "RemovePermission",
    "DeleteTopic",
    "Subscribe",
    "ListSubscriptionsByTopic",
    "Publish",
];

const FEEDBACK_PREFIXES: [&str; 5] = ["HTTP", "Firehose", "Lambda", "Application", "SQS"];

impl Sns {
    /// A service over `store`, naming topics in `region`, delivering through `deliverer`.
    /// Loads (or creates, on first start) the signing key at `config.signing_key_path`.
    pub fn new(
        store: Arc<dyn TopicStore>,
        clock: Arc<dyn Clock>,
        region: &str,
        deliverer: Arc<dyn Deliverer>,
        config: SnsConfig,
    ) -> Result<Arc<Self>, SnsError> {
        let signer = Signer::load_or_create(&config.signing_key_path)?;
        let http = HttpSender::new(config.http_timeout);
        Ok(Arc::new(Sns {
            store,
            clock,
            region: region.to_owned(),
            deliverer,
            config,
            signer,
            http,
            cache: Mutex::new(Cache::default()),
            changes: tokio::sync::Mutex::new(()),
            wake: Arc::new(Notify::new()),
            started: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The region topics are named in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The signing certificate (PEM), to serve at `SigningCertURL`.
    pub fn signing_certificate_pem(&self) -> &str {
        self.signer.certificate_pem()
    }

    /// The path of `SigningCertURL` under the public URL.
    pub fn signing_certificate_path(&self) -> &'static str {
        "/_gust/sns/SimpleNotificationService-gust.pem"
    }

    /// A topic's ARN.
    pub fn topic_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:sns:{}:{account}:{name}", self.region)
    }

    pub(crate) fn renderer(&self) -> Renderer<'_> {
        Renderer {
            signer: &self.signer,
            public_url: &self.config.public_url,
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    pub(crate) async fn blocking<R: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn TopicStore) -> Result<R, SnsError> + Send + 'static,
    ) -> Result<R, SnsError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || job(store.as_ref()))
            .await
            .map_err(|e| SnsError::Internal(e.to_string()))?
    }

    /// Checks a topic ARN of this region; `what` names the parameter in the error.
    fn check_topic_arn(&self, arn: &str, what: &str) -> Result<(), SnsError> {
        match arn_parts(arn, "sns") {
            Some((region, _, name))
                if region == self.region
                    && valid_name(name.strip_suffix(".fifo").unwrap_or(name)) =>
            {
                Ok(())
            }
            _ => Err(SnsError::invalid(what)),
        }
    }

    async fn entry(&self, arn: &str) -> Result<Option<Arc<TopicEntry>>, SnsError> {
        let generation = {
            let cache = lock(&self.cache);
            if let Some(entry) = cache.topics.get(arn) {
                return Ok(Some(Arc::clone(entry)));
            }
            cache.generation
        };
        let owned = arn.to_owned();
        let found = self.blocking(move |store| store.topic(&owned)).await?;
        let entry =
            found.map(|(topic, subscriptions)| Arc::new(TopicEntry::new(topic, subscriptions)));
        if let Some(entry) = &entry {
            let mut cache = lock(&self.cache);
            if cache.generation == generation {
                cache.topics.insert(arn.to_owned(), Arc::clone(entry));
            }
        }
        Ok(entry)
    }

    pub(crate) fn invalidate(&self, arn: &str) {
        let mut cache = lock(&self.cache);
        cache.generation += 1;
        cache.topics.remove(arn);
    }

    fn policy_document(&self, topic: &TopicRecord) -> Value {
        topic
            .attributes
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_else(|| default_policy(&topic.arn, &topic.account))
    }

    /// Whether `caller` may perform `action` (`sns:Publish`) on `topic`: its owner, or
    /// anyone the topic's policy allows.
    fn authorize(
        &self,
        caller: &Caller,
        topic: &TopicRecord,
        action: &str,
    ) -> Result<(), SnsError> {
        if caller.account == topic.account
            || gust_model::policy::document_allows(
                &self.policy_document(topic),
                &caller.principal,
                action,
            )
        {
            return Ok(());
        }
        let who = match &caller.principal {
            Principal::Account(account) => format!("arn:aws:iam::{account}:root"),
            Principal::Service { service, .. } => service.clone(),
            Principal::Url { .. } => "anonymous".to_owned(),
        };
        let action = action.replacen("sns:", "SNS:", 1);
        Err(SnsError::AuthorizationError(format!(
            "User: {who} is not authorized to perform: {action} on resource: {} because no resource-based policy allows the {action} action",
            topic.arn
        )))
    }

    /// The topic, if it exists and `caller` may perform `action` on it.
    async fn topic_for(
        &self,
        caller: &Caller,
        arn: &str,
        action: &str,
    ) -> Result<Arc<TopicEntry>, SnsError> {
        self.check_topic_arn(arn, "TopicArn")?;
        let entry = self
            .entry(arn)
            .await?
            .ok_or_else(|| SnsError::NotFound("Topic does not exist".into()))?;
        self.authorize(caller, &entry.topic, action)?;
        Ok(entry)
    }

    // --- Topics ---

    /// `CreateTopic`: idempotent for the same name, attributes and tags.
    pub async fn create_topic(
        &self,
        caller: &Caller,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, SnsError> {
        let fifo = match attributes.get("FifoTopic") {
            Some(value) => boolean("FifoTopic", value)?,
            None => false,
        };
        if fifo {
            let ok = name
                .strip_suffix(".fifo")
                .is_some_and(|base| valid_name(base) && name.len() <= 256);
            if !ok {
                return Err(SnsError::invalid(
                    "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.",
                ));
            }
        } else if !valid_name(name) {
            return Err(SnsError::invalid("Topic Name"));
        }
        let mut stored = BTreeMap::new();
        for (key, value) in attributes {
            if key == "FifoTopic" {
                continue;
            }
            if let Some(value) = check_topic_attribute(key, value, fifo)? {
                stored.insert(key.clone(), value);
            }
        }
        if fifo {
            stored.insert("FifoTopic".into(), "true".into());
        }
        check_tags(tags)?;
        if tags.len() > TAGS_MAX {
            return Err(SnsError::TagLimitExceeded);
        }
        let record = TopicRecord {
            arn: self.topic_arn(&caller.account, name),
            account: caller.account.clone(),
            name: name.to_owned(),
            attributes: stored.clone(),
            tags: tags.clone(),
            created_ms: self.now_ms(),
        };
        let _guard = self.changes.lock().await;
        let max = self.config.max_topics;
        let owned = record.clone();
        let created = self
            .blocking(move |store| store.create_topic(&owned, max))
            .await?;
        match created {
            Ok(_) => {
                self.invalidate(&record.arn);
                Ok(record.arn)
            }
            Err(existing) => {
                let differs = stored
                    .iter()
                    .any(|(k, v)| existing.attributes.get(k) != Some(v))
                    || is_fifo(&existing) != fifo;
                if differs {
                    return Err(SnsError::invalid(
                        "Attributes Reason: Topic already exists with different attributes",
                    ));
                }
                if !tags.is_empty() && &existing.tags != tags {
                    return Err(SnsError::invalid(
                        "Tags Reason: Topic already exists with different tags",
                    ));
                }
                Ok(existing.arn)
            }
        }
    }

    /// `DeleteTopic`, with its subscriptions; a missing topic is not an error.
    pub async fn delete_topic(&self, caller: &Caller, arn: &str) -> Result<(), SnsError> {
        self.check_topic_arn(arn, "TopicArn")?;
        let _guard = self.changes.lock().await;
        let Some(entry) = self.entry(arn).await? else {
            return Ok(());
        };
        self.authorize(caller, &entry.topic, "sns:DeleteTopic")?;
        let owned = arn.to_owned();
        self.blocking(move |store| store.delete_topic(&owned))
            .await?;
        self.invalidate(arn);
        Ok(())
    }

    /// `ListTopics`: the caller's topics, 100 a page.
    pub async fn list_topics(
        &self,
        caller: &Caller,
        next_token: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), SnsError> {
        let after = decode_token(next_token)?;
        let account = caller.account.clone();
        let mut arns = self
            .blocking(move |store| store.topic_arns(&account, after.as_deref(), PAGE + 1))
            .await?;
        let token = if arns.len() > PAGE {
            arns.truncate(PAGE);
            arns.last().map(|last| encode_token(last))
        } else {
            None
        };
        Ok((arns, token))
    }

    /// `GetTopicAttributes`.
    pub async fn get_topic_attributes(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, SnsError> {
        let entry = self
            .topic_for(caller, arn, "sns:GetTopicAttributes")
            .await?;
        let topic = &entry.topic;
        let mut out = topic.attributes.clone();
        let confirmed = entry.subscriptions.iter().filter(|s| !s.pending).count();
        let pending = entry.subscriptions.len() - confirmed;
        out.insert("TopicArn".into(), topic.arn.clone());
        out.insert("Owner".into(), topic.account.clone());
        out.insert(
            "Policy".into(),
            topic
                .attributes
                .get("Policy")
                .cloned()
                .unwrap_or_else(|| default_policy(&topic.arn, &topic.account).to_string()),
        );
        out.entry("DisplayName".into()).or_default();
        out.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
        out.insert("SubscriptionsPending".into(), pending.to_string());
        out.insert("SubscriptionsDeleted".into(), "0".into());
        out.insert(
            "EffectiveDeliveryPolicy".into(),
            topic_effective_policy(topic.attributes.get("DeliveryPolicy").map(String::as_str)),
        );
        if entry.fifo() {
            out.entry("ContentBasedDeduplication".into())
                .or_insert_with(|| "false".into());
        }
        Ok(out)
    }

    /// `SetTopicAttributes`.
    pub async fn set_topic_attributes(
        &self,
        caller: &Caller,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), SnsError> {
        let _guard = self.changes.lock().await;
        let entry = self
            .topic_for(caller, arn, "sns:SetTopicAttributes")
            .await?;
        if name == "FifoTopic" {
            return Err(SnsError::invalid("AttributeName"));
        }
        let mut attributes = entry.topic.attributes.clone();
        match check_topic_attribute(name, value, entry.fifo())? {
            Some(value) => attributes.insert(name.to_owned(), value),
            None => attributes.remove(name),
        };
        if name == "MaximumMessageSize" && max_message_size(&attributes) > DEFAULT_MAX_MESSAGE {
            let only_managed = entry
                .subscriptions
                .iter()
                .all(|s| matches!(s.protocol.as_str(), "sqs" | "lambda" | "firehose"));
            if entry.subscriptions.len() > 100 || !only_managed {
                return Err(SnsError::invalid(
                    "MaximumMessageSize: a topic with a MaximumMessageSize above 262144 must have at most 100 subscriptions, all Amazon SQS, Amazon Data Firehose or Lambda",
                ));
            }
        }
        self.save_topic(&entry.topic, attributes, entry.topic.tags.clone())
            .await
    }

    async fn save_topic(
        &self,
        topic: &TopicRecord,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<(), SnsError> {
        let arn = topic.arn.clone();
        self.blocking(move |store| store.update_topic(&arn, &attributes, &tags))
            .await?;
        self.invalidate(&topic.arn);
        Ok(())
    }

    /// `AddPermission`: a statement `label` allowing `accounts` the `actions`.
    pub async fn add_permission(
        &self,
        caller: &Caller,
        arn: &str,
        label: &str,
        accounts: &[String],
        actions: &[String],
    ) -> Result<(), SnsError> {
        let _guard = self.changes.lock().await;
        let entry = self.topic_for(caller, arn, "sns:AddPermission").await?;
        if label.is_empty()
            || label.len() > 80
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SnsError::invalid("Label"));
        }
        if accounts.is_empty() {
            return Err(SnsError::invalid("AWSAccountId"));
        }
        if actions.is_empty() {
            return Err(SnsError::invalid("ActionName"));
        }
        let mut names = Vec::new();
        for action in actions {
            let bare = action
                .strip_prefix("SNS:")
                .or_else(|| action.strip_prefix("sns:"))
                .unwrap_or(action);
            let known = bare == "*" || TOPIC_ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(bare));
            if !known {
                return Err(SnsError::invalid(
                    "Policy statement action out of service scope!",
                ));
            }
            names.push(format!("SNS:{bare}"));
        }
        let mut policy = self.policy_document(&entry.topic);
        let statements = policy
            .get_mut("Statement")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| SnsError::invalid("Policy"))?;
        if statements
            .iter()
            .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label))
        {
            return Err(SnsError::invalid("Statement already exists"));
        }
        let principals: Vec<String> = accounts
            .iter()
            .map(|a| {
                if a.starts_with("arn:") {
                    a.clone()
                } else {
                    format!("arn:aws:iam::{a}:root")
                }
            })
            .collect();
        let one_or_many = |items: Vec<String>| {
            if items.len() == 1 {
                json!(items[0])
            } else {
                json!(items)
            }
        };
        statements.push(json!({
            "Sid": label,
            "Effect": "Allow",
            "Principal": {"AWS": one_or_many(principals)},
            "Action": one_or_many(names),
            "Resource": arn,
        }));
        let mut attributes = entry.topic.attributes.clone();
        attributes.insert("Policy".into(), policy.to_string());
        self.save_topic(&entry.topic, attributes, entry.topic.tags.clone())
            .await
    }

    /// `RemovePermission`.
    pub async fn remove_permission(
        &self,
        caller: &Caller,
        arn: &str,
        label: &str,
    ) -> Result<(), SnsError> {
        let _guard = self.changes.lock().await;
        let entry = self.topic_for(caller, arn, "sns:RemovePermission").await?;
        let mut policy = self.policy_document(&entry.topic);
        let Some(statements) = policy.get_mut("Statement").and_then(Value::as_array_mut) else {
            return Err(SnsError::invalid("Statement doesn't exist"));
        };
        let before = statements.len();
        statements.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(label));
        if statements.len() == before {
            return Err(SnsError::invalid("Statement doesn't exist"));
        }
        let mut attributes = entry.topic.attributes.clone();
        attributes.insert("Policy".into(), policy.to_string());
        self.save_topic(&entry.topic, attributes, entry.topic.tags.clone())
            .await
    }

    // --- Tags ---

    async fn tagged_topic(
        &self,
        caller: &Caller,
        arn: &str,
        action: &str,
    ) -> Result<Arc<TopicEntry>, SnsError> {
        if arn_parts(arn, "sns").is_none() {
            return Err(SnsError::invalid("ResourceArn"));
        }
        let entry = match self.entry(arn).await? {
            Some(entry) if self.check_topic_arn(arn, "ResourceArn").is_ok() => entry,
            _ => return Err(SnsError::ResourceNotFound("Resource does not exist".into())),
        };
        self.authorize(caller, &entry.topic, action)?;
        Ok(entry)
    }

    /// `TagResource`.
    pub async fn tag_resource(
        &self,
        caller: &Caller,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), SnsError> {
        check_tags(tags)?;
        let _guard = self.changes.lock().await;
        let entry = self.tagged_topic(caller, arn, "sns:TagResource").await?;
        let mut merged = entry.topic.tags.clone();
        merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        if merged.len() > TAGS_MAX {
            return Err(SnsError::TagLimitExceeded);
        }
        self.save_topic(&entry.topic, entry.topic.attributes.clone(), merged)
            .await
    }

    /// `UntagResource`.
    pub async fn untag_resource(
        &self,
        caller: &Caller,
        arn: &str,
        keys: &[String],
    ) -> Result<(), SnsError> {
        let _guard = self.changes.lock().await;
        let entry = self.tagged_topic(caller, arn, "sns:UntagResource").await?;
        let mut tags = entry.topic.tags.clone();
        for key in keys {
            tags.remove(key);
        }
        self.save_topic(&entry.topic, entry.topic.attributes.clone(), tags)
            .await
    }

    /// `ListTagsForResource`.
    pub async fn list_tags_for_resource(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, SnsError> {
        let entry = self
            .tagged_topic(caller, arn, "sns:ListTagsForResource")
            .await?;
        Ok(entry.topic.tags.clone())
    }

    // --- Subscriptions ---

    /// `Subscribe`. SQS and Lambda subscriptions of the caller's own endpoints are
    /// confirmed at once; HTTP/S ones (and queues of other accounts) wait for
    /// `ConfirmSubscription`, and a `SubscriptionConfirmation` is sent to the endpoint.
    /// Returns the ARN, or `pending confirmation` unless `return_subscription_arn`.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        topic_arn: &str,
        protocol: &str,
        endpoint: Option<&str>,
        attributes: &BTreeMap<String, String>,
        return_subscription_arn: bool,
    ) -> Result<String, SnsError> {
        let _guard = self.changes.lock().await;
        let entry = self.topic_for(caller, topic_arn, "sns:Subscribe").await?;
        let protocol = protocol.to_ascii_lowercase();
        let endpoint = endpoint.unwrap_or_default();
        self.check_endpoint(&entry, &protocol, endpoint)?;
        let mut stored = BTreeMap::new();
        for (name, value) in attributes {
            if let Some(value) =
                check_subscription_attribute(name, value, &protocol, entry.fifo(), attributes)?
            {
                stored.insert(name.clone(), value);
            }
        }
        if let Some(existing) = entry
            .subscriptions
            .iter()
            .find(|s| s.protocol == protocol && s.endpoint == endpoint)
        {
            if stored
                .iter()
                .any(|(k, v)| existing.attributes.get(k) != Some(v))
            {
                return Err(SnsError::invalid(
                    "Attributes Reason: Subscription already exists with different attributes",
                ));
            }
            return Ok(if existing.pending && !return_subscription_arn {
                PENDING_CONFIRMATION.to_owned()
            } else {
                existing.arn.clone()
            });
        }
        if entry.subscriptions.len() >= SUBSCRIPTIONS_PER_TOPIC {
            return Err(SnsError::SubscriptionLimitExceeded);
        }
        if stored.contains_key("FilterPolicy") && entry.filters.len() >= FILTER_POLICIES_PER_TOPIC {
            return Err(SnsError::FilterPolicyLimitExceeded);
        }
        let endpoint_account = arn_parts(endpoint, "sqs").map(|(_, account, _)| account);
        let pending = match protocol.as_str() {
            "sqs" => endpoint_account != Some(caller.account.as_str()),
            "lambda" => false,
            _ => true,
        };
        let now = self.now_ms();
        let record = SubscriptionRecord {
            arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
            topic_arn: topic_arn.to_owned(),
            owner: caller.account.clone(),
            protocol: protocol.clone(),
            endpoint: endpoint.to_owned(),
            attributes: stored,
            pending,
            token: pending.then(new_token),
            authenticated: !pending,
            created_ms: now,
        };
        let notice = record.token.as_deref().map(|token| {
            self.confirmation_notice(
                &entry.topic,
                &record,
                token,
                "SubscriptionConfirmation",
                now,
            )
        });
        let owned = record.clone();
        self.blocking(move |store| store.put_subscription(&owned, notice))
            .await?;
        self.invalidate(topic_arn);
        self.wake.notify_one();
        Ok(if pending && !return_subscription_arn {
            PENDING_CONFIRMATION.to_owned()
        } else {
            record.arn
        })
    }

    fn check_endpoint(
        &self,
        entry: &TopicEntry,
        protocol: &str,
        endpoint: &str,
    ) -> Result<(), SnsError> {
        let fifo = entry.fifo();
        match protocol {
            "sqs" => {
                let Some((_, _, queue)) = arn_parts(endpoint, "sqs") else {
                    return Err(SnsError::invalid("SQS endpoint ARN"));
                };
                if queue.ends_with(".fifo") && !fifo {
                    // SNS's own text repeats the prefix.
                    return Err(SnsError::invalid(
                        "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics",
                    ));
                }
                Ok(())
            }
            "lambda" | "http" | "https" if fifo => Err(SnsError::invalid(format!(
                "Endpoint Reason: Protocol {protocol} is not supported for FIFO topics; only Amazon SQS queues can subscribe"
            ))),
            "lambda" => {
                let ok = arn_parts(endpoint, "lambda").is_some_and(|(_, _, rest)| {
                    rest.strip_prefix("function:")
                        .is_some_and(|f| !f.is_empty() && f.split(':').count() <= 2)
                });
                if ok {
                    Ok(())
                } else {
                    Err(SnsError::invalid("Lambda endpoint ARN"))
                }
            }
            "http" | "https" => {
                let scheme_ok = endpoint
                    .get(..protocol.len() + 3)
                    .is_some_and(|s| s.eq_ignore_ascii_case(&format!("{protocol}://")))
                    && endpoint.len() > protocol.len() + 3;
                if !scheme_ok {
                    return Err(SnsError::invalid(
                        "Endpoint must match the specified protocol",
                    ));
                }
                if !self
                    .config
                    .http_allow
                    .iter()
                    .any(|prefix| endpoint.starts_with(prefix.as_str()))
                {
                    return Err(SnsError::invalid(format!(
                        "Endpoint Reason: {endpoint} is not in this server's list of allowed HTTP endpoints"
                    )));
                }
                Ok(())
            }
            "email" | "email-json" | "sms" | "application" | "firehose" => {
                Err(SnsError::invalid(format!(
                    "Protocol Reason: {protocol} subscriptions are not supported by this server"
                )))
            }
            other => Err(SnsError::invalid(format!(
                "Amazon SNS does not support this protocol string: {other}"
            ))),
        }
    }

    /// A `SubscriptionConfirmation` or `UnsubscribeConfirmation` for `subscription`.
    fn confirmation_notice(
        &self,
        topic: &TopicRecord,
        subscription: &SubscriptionRecord,
        token: &str,
        kind: &str,
        now: i64,
    ) -> Publication {
        let text = if kind == "SubscriptionConfirmation" {
            format!(
                "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                topic.arn
            )
        } else {
            format!(
                "You have chosen to deactivate subscription {}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
                subscription.arn
            )
        };
        let message = StoredMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic.arn.clone(),
            kind: kind.to_owned(),
            message: text,
            structured: false,
            subject: None,
            attributes: MessageAttributes::new(),
            timestamp: timestamp(self.clock.now()),
            group_id: None,
            dedup_id: None,
            sequence_number: None,
            signature_version: signature_version(topic),
            token: Some(token.to_owned()),
            trace: None,
        };
        Publication {
            message,
            dedup_key: None,
            deliveries: vec![NewDelivery {
                target: DeliveryTarget {
                    dead_letter: None,
                    ..target_of(topic, subscription)
                },
                fifo_group: None,
                next_ms: now,
            }],
        }
    }

    /// `ConfirmSubscription`: `caller` is `None` for an unauthenticated request (a
    /// `SubscribeURL` visit). Returns the subscription's ARN.
    pub async fn confirm_subscription(
        &self,
        caller: Option<&Caller>,
        topic_arn: &str,
        token: &str,
        authenticate_on_unsubscribe: bool,
    ) -> Result<String, SnsError> {
        self.check_topic_arn(topic_arn, "TopicArn")?;
        let _guard = self.changes.lock().await;
        let entry = self
            .entry(topic_arn)
            .await?
            .ok_or_else(|| SnsError::NotFound("Topic does not exist".into()))?;
        let now = self.now_ms();
        let subscription = entry
            .subscriptions
            .iter()
            .find(|s| s.token.as_deref() == Some(token))
            .filter(|s| !s.pending || now - s.created_ms < PENDING_FOR_MS)
            .ok_or_else(|| SnsError::invalid("Token"))?;
        if !subscription.pending {
            return Ok(subscription.arn.clone());
        }
        let mut confirmed = subscription.clone();
        confirmed.pending = false;
        confirmed.authenticated = caller.is_some();
        if authenticate_on_unsubscribe {
            confirmed
                .attributes
                .insert("AuthenticateOnUnsubscribe".into(), "true".into());
        }
        let owned = confirmed.clone();
        self.blocking(move |store| store.put_subscription(&owned, None))
            .await?;
        self.invalidate(topic_arn);
        Ok(confirmed.arn)
    }

    /// The subscription `arn` names and its topic; `NotFound` when there is none.
    async fn subscription_entry(
        &self,
        arn: &str,
    ) -> Result<(Arc<TopicEntry>, SubscriptionRecord), SnsError> {
        let (topic_arn, _) = arn
            .rsplit_once(':')
            .filter(|(t, id)| !id.is_empty() && self.check_topic_arn(t, "SubscriptionArn").is_ok())
            .ok_or_else(|| SnsError::invalid("SubscriptionArn"))?;
        let missing = || SnsError::NotFound("Subscription does not exist".into());
        let entry = self.entry(topic_arn).await?.ok_or_else(missing)?;
        let subscription = entry.subscription(arn).cloned().ok_or_else(missing)?;
        Ok((entry, subscription))
    }

    /// Subscription owners and topic owners act on a subscription; others as the topic's
    /// policy allows.
    fn authorize_subscription(
        &self,
        caller: &Caller,
        entry: &TopicEntry,
        subscription: &SubscriptionRecord,
        action: &str,
    ) -> Result<(), SnsError> {
        if caller.account == subscription.owner {
            return Ok(());
        }
        self.authorize(caller, &entry.topic, action)
    }

    /// `Unsubscribe`. A subscription that no longer exists is not an error. HTTP/S
    /// endpoints get an `UnsubscribeConfirmation`. `caller` is `None` for the unsigned
    /// `UnsubscribeURL` link, which a subscription confirmed with
    /// `AuthenticateOnUnsubscribe` refuses.
    pub async fn unsubscribe(&self, caller: Option<&Caller>, arn: &str) -> Result<(), SnsError> {
        let _guard = self.changes.lock().await;
        let (entry, subscription) = match self.subscription_entry(arn).await {
            Ok(found) => found,
            Err(SnsError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        match caller {
            Some(caller) => {
                self.authorize_subscription(caller, &entry, &subscription, "sns:Unsubscribe")?
            }
            None if subscription
                .attributes
                .get("AuthenticateOnUnsubscribe")
                .is_some_and(|v| v == "true") =>
            {
                return Err(SnsError::AuthorizationError(
                    "Only the topic owner or the subscription owner can unsubscribe this endpoint; the request must be signed.".into(),
                ))
            }
            None => {}
        }
        let notice = (matches!(subscription.protocol.as_str(), "http" | "https")
            && !subscription.pending)
            .then(|| {
                self.confirmation_notice(
                    &entry.topic,
                    &subscription,
                    &new_token(),
                    "UnsubscribeConfirmation",
                    self.now_ms(),
                )
            });
        let owned = arn.to_owned();
        self.blocking(move |store| store.remove_subscription(&owned, notice))
            .await?;
        self.invalidate(&entry.topic.arn);
        self.wake.notify_one();
        Ok(())
    }

    /// `ListSubscriptions`: subscriptions the caller owns or that are on its topics.
    pub async fn list_subscriptions(
        &self,
        caller: &Caller,
        next_token: Option<&str>,
    ) -> Result<(Vec<SubscriptionSummary>, Option<String>), SnsError> {
        let after = decode_token(next_token)?;
        let account = caller.account.clone();
        let mut subscriptions = self
            .blocking(move |store| store.subscriptions(&account, after.as_deref(), PAGE + 1))
            .await?;
        let token = if subscriptions.len() > PAGE {
            subscriptions.truncate(PAGE);
            subscriptions.last().map(|s| encode_token(&s.arn))
        } else {
            None
        };
        Ok((subscriptions.iter().map(summary).collect(), token))
    }

    /// `ListSubscriptionsByTopic`.
    pub async fn list_subscriptions_by_topic(
        &self,
        caller: &Caller,
        topic_arn: &str,
        next_token: Option<&str>,
    ) -> Result<(Vec<SubscriptionSummary>, Option<String>), SnsError> {
        let after = decode_token(next_token)?;
        let entry = self
            .topic_for(caller, topic_arn, "sns:ListSubscriptionsByTopic")
            .await?;
        let mut page: Vec<&SubscriptionRecord> = entry
            .subscriptions
            .iter()
            .filter(|s| after.as_deref().is_none_or(|a| s.arn.as_str() > a))
            .take(PAGE + 1)
            .collect();
        let token = if page.len() > PAGE {
            page.truncate(PAGE);
            page.last().map(|s| encode_token(&s.arn))
        } else {
            None
        };
        Ok((page.into_iter().map(summary).collect(), token))
    }

    /// `GetSubscriptionAttributes`.
    pub async fn get_subscription_attributes(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, SnsError> {
        let (entry, subscription) = self.subscription_entry(arn).await?;
        self.authorize_subscription(
            caller,
            &entry,
            &subscription,
            "sns:GetSubscriptionAttributes",
        )?;
        let mut out = subscription.attributes.clone();
        out.remove("AuthenticateOnUnsubscribe");
        out.insert("SubscriptionArn".into(), subscription.arn.clone());
        out.insert("TopicArn".into(), subscription.topic_arn.clone());
        out.insert("Owner".into(), subscription.owner.clone());
        out.insert("Protocol".into(), subscription.protocol.clone());
        out.insert("Endpoint".into(), subscription.endpoint.clone());
        out.insert(
            "ConfirmationWasAuthenticated".into(),
            subscription.authenticated.to_string(),
        );
        out.insert(
            "PendingConfirmation".into(),
            subscription.pending.to_string(),
        );
        out.entry("RawMessageDelivery".into())
            .or_insert_with(|| "false".into());
        if out.contains_key("FilterPolicy") {
            out.entry("FilterPolicyScope".into())
                .or_insert_with(|| FilterScope::MessageAttributes.as_str().into());
        }
        out.insert(
            "SubscriptionPrincipal".into(),
            format!("arn:aws:iam::{}:root", subscription.owner),
        );
        out.insert(
            "EffectiveDeliveryPolicy".into(),
            subscription_effective_policy(
                &subscription.protocol,
                entry
                    .topic
                    .attributes
                    .get("DeliveryPolicy")
                    .map(String::as_str),
                subscription
                    .attributes
                    .get("DeliveryPolicy")
                    .map(String::as_str),
            ),
        );
        Ok(out)
    }

    /// `SetSubscriptionAttributes`.
    pub async fn set_subscription_attributes(
        &self,
        caller: &Caller,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), SnsError> {
        let _guard = self.changes.lock().await;
        let (entry, subscription) = self.subscription_entry(arn).await?;
        self.authorize_subscription(
            caller,
            &entry,
            &subscription,
            "sns:SetSubscriptionAttributes",
        )?;
        let mut attributes = subscription.attributes.clone();
        let mut context = attributes.clone();
        context.insert(name.to_owned(), value.to_owned());
        match check_subscription_attribute(
            name,
            value,
            &subscription.protocol,
            entry.fifo(),
            &context,
        )? {
            Some(value) => attributes.insert(name.to_owned(), value),
            None => attributes.remove(name),
        };
        if name == "FilterPolicyScope" {
            // The existing policy must hold in its new scope.
            if let Some(policy) = attributes.get("FilterPolicy") {
                FilterPolicy::parse(policy, scope_of(&attributes))?;
            }
        }
        if name == "FilterPolicy"
            && attributes.contains_key("FilterPolicy")
            && !entry.filters.contains_key(arn)
            && entry.filters.len() >= FILTER_POLICIES_PER_TOPIC
        {
            return Err(SnsError::FilterPolicyLimitExceeded);
        }
        let mut updated = subscription;
        updated.attributes = attributes;
        let owned = updated.clone();
        self.blocking(move |store| store.put_subscription(&owned, None))
            .await?;
        self.invalidate(&entry.topic.arn);
        Ok(())
    }

    // --- Publishing ---

    /// `Publish`: returns once the message and one delivery per matching subscription are
    /// durably stored; delivery happens in the background.
    pub async fn publish(
        &self,
        caller: &Caller,
        request: PublishRequest,
    ) -> Result<PublishResult, SnsError> {
        let arn = match (&request.topic_arn, &request.target_arn) {
            (Some(_), Some(_)) => return Err(SnsError::invalid(
                "TopicArn or TargetArn Reason: Only one of TopicArn or TargetArn may be specified",
            )),
            (None, None) => {
                return Err(SnsError::invalid(
                    "TopicArn or TargetArn Reason: no value for required parameter",
                ))
            }
            (Some(topic), None) => topic.clone(),
            (None, Some(target)) => {
                self.check_topic_arn(target, "TargetArn")?;
                target.clone()
            }
        };
        let entry = self.topic_for(caller, &arn, "sns:Publish").await?;
        let now = self.now_ms();
        let entry_request = BatchEntry {
            id: String::new(),
            message: request.message,
            subject: request.subject,
            message_structure: request.message_structure,
            message_attributes: request.message_attributes,
            group_id: request.group_id,
            dedup_id: request.dedup_id,
        };
        let mut publication = self.prepare(&entry, entry_request, now)?;
        publication.message.trace = request.trace;
        let mut published = self
            .store_publications(&entry, vec![publication], now)
            .await?;
        let first = published
            .pop()
            .ok_or_else(|| SnsError::Internal("publish stored nothing".into()))?;
        Ok(PublishResult {
            message_id: first.message_id,
            sequence_number: first.sequence_number,
        })
    }

    /// `PublishBatch`: 1–10 entries with distinct ids, each checked on its own.
    pub async fn publish_batch(
        &self,
        caller: &Caller,
        topic_arn: &str,
        entries: Vec<BatchEntry>,
    ) -> Result<(Vec<BatchSuccess>, Vec<BatchFailure>), SnsError> {
        if entries.is_empty() {
            return Err(SnsError::EmptyBatchRequest);
        }
        if entries.len() > BATCH_MAX {
            return Err(SnsError::TooManyEntriesInBatchRequest);
        }
        let mut seen = HashSet::new();
        for entry in &entries {
            let id = entry.id.as_str();
            if id.is_empty()
                || id.len() > 80
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(SnsError::InvalidBatchEntryId);
            }
            if !seen.insert(id) {
                return Err(SnsError::BatchEntryIdsNotDistinct);
            }
        }
        let topic = self.topic_for(caller, topic_arn, "sns:Publish").await?;
        let limit = max_message_size(&topic.topic.attributes);
        let total: usize = entries
            .iter()
            .map(|e| e.message.len() + check_attributes(&e.message_attributes).unwrap_or(0))
            .sum();
        if total > limit {
            return Err(SnsError::BatchRequestTooLong);
        }
        let now = self.now_ms();
        let mut failed = Vec::new();
        let mut accepted = Vec::new();
        for entry in entries {
            let id = entry.id.clone();
            match self.prepare(&topic, entry, now) {
                Ok(publication) => accepted.push((id, publication)),
                Err(error) => failed.push(BatchFailure {
                    id,
                    code: error.code().to_owned(),
                    message: error.to_string(),
                    sender_fault: error.sender_fault(),
                }),
            }
        }
        if accepted.is_empty() {
            return Ok((Vec::new(), failed));
        }
        let (ids, publications): (Vec<String>, Vec<Publication>) = accepted.into_iter().unzip();
        let published = self.store_publications(&topic, publications, now).await?;
        let successful = ids
            .into_iter()
            .zip(published)
            .map(|(id, p)| BatchSuccess {
                id,
                message_id: p.message_id,
                sequence_number: p.sequence_number,
            })
            .collect();
        Ok((successful, failed))
    }

    async fn store_publications(
        &self,
        entry: &TopicEntry,
        publications: Vec<Publication>,
        now: i64,
    ) -> Result<Vec<crate::store::Published>, SnsError> {
        let (arn, fifo) = (entry.topic.arn.clone(), entry.fifo());
        let published = self
            .blocking(move |store| store.publish(&arn, publications, fifo, now, DEDUP_WINDOW_MS))
            .await?;
        if published.iter().any(|p| !p.duplicate) {
            self.wake.notify_one();
        }
        Ok(published)
    }

    /// Checks one message and fans it out to the confirmed subscriptions whose filter
    /// policies it passes.
    fn prepare(
        &self,
        entry: &TopicEntry,
        request: BatchEntry,
        now: i64,
    ) -> Result<Publication, SnsError> {
        if request.message.is_empty() {
            return Err(SnsError::invalid("Empty message"));
        }
        let structured = check_structure(&request.message, request.message_structure.as_deref())?;
        if let Some(subject) = &request.subject {
            check_subject(subject)?;
        }
        let size = request.message.len() + check_attributes(&request.message_attributes)?;
        if size > max_message_size(&entry.topic.attributes) {
            return Err(SnsError::invalid("Message too long"));
        }
        if let Some(group) = &request.group_id {
            check_fifo_id(group, "MessageGroupId")?;
        }
        let fifo = entry.fifo();
        let (dedup_id, dedup_key) = if fifo {
            let group = request.group_id.as_deref().ok_or_else(|| {
                SnsError::invalid("The MessageGroupId parameter is required for FIFO topics")
            })?;
            let id = match &request.dedup_id {
                Some(id) => {
                    check_fifo_id(id, "MessageDeduplicationId")?;
                    id.clone()
                }
                None if entry.topic.attributes.get("ContentBasedDeduplication").map(String::as_str)
                    == Some("true") =>
                {
                    hex::encode(sha2::Sha256::digest(request.message.as_bytes()))
                }
                None => {
                    return Err(SnsError::invalid(
                        "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ))
                }
            };
            let scope = entry
                .topic
                .attributes
                .get("FifoThroughputScope")
                .map(String::as_str);
            let key = if scope == Some("MessageGroup") {
                format!("{group}\u{0}{id}")
            } else {
                id.clone()
            };
            (Some(id), Some(key))
        } else {
            if request.dedup_id.is_some() {
                return Err(SnsError::invalid(
                    "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
                ));
            }
            (None, None)
        };
        let message = StoredMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: entry.topic.arn.clone(),
            kind: "Notification".into(),
            message: request.message,
            structured,
            subject: request.subject,
            attributes: request.message_attributes,
            timestamp: timestamp(self.clock.now()),
            group_id: request.group_id,
            dedup_id,
            sequence_number: None,
            signature_version: signature_version(&entry.topic),
            token: None,
            trace: None,
        };
        let deliveries = entry
            .subscriptions
            .iter()
            .filter(|s| !s.pending)
            .filter(|s| {
                entry.filters.get(&s.arn).is_none_or(|policy| {
                    let text = crate::message::text_for(&message.message, structured, &s.protocol);
                    policy.matches(&message.attributes, &text)
                })
            })
            .map(|s| NewDelivery {
                target: target_of(&entry.topic, s),
                fifo_group: if fifo { message.group_id.clone() } else { None },
                next_ms: now,
            })
            .collect();
        Ok(Publication {
            message,
            dedup_key,
            deliveries,
        })
    }
}

fn summary(s: &SubscriptionRecord) -> SubscriptionSummary {
    SubscriptionSummary {
        subscription_arn: if s.pending {
            "PendingConfirmation".into()
        } else {
            s.arn.clone()
        },
        owner: s.owner.clone(),
        protocol: s.protocol.clone(),
        endpoint: s.endpoint.clone(),
        topic_arn: s.topic_arn.clone(),
    }
}

fn signature_version(topic: &TopicRecord) -> String {
    topic
        .attributes
        .get("SignatureVersion")
        .cloned()
        .unwrap_or_else(|| "1".into())
}

fn max_message_size(attributes: &BTreeMap<String, String>) -> usize {
    attributes
        .get("MaximumMessageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_MESSAGE)
}

/// A delivery's snapshot of its subscription.
fn target_of(topic: &TopicRecord, subscription: &SubscriptionRecord) -> DeliveryTarget {
    let http = matches!(subscription.protocol.as_str(), "http" | "https");
    let (retry, content_type) = if http {
        let (retry, content_type) = effective_http_policy(
            topic.attributes.get("DeliveryPolicy").map(String::as_str),
            subscription
                .attributes
                .get("DeliveryPolicy")
                .map(String::as_str),
        );
        (Some(retry), Some(content_type))
    } else {
        (None, None)
    };
    DeliveryTarget {
        subscription_arn: subscription.arn.clone(),
        protocol: subscription.protocol.clone(),
        endpoint: subscription.endpoint.clone(),
        raw: subscription
            .attributes
            .get("RawMessageDelivery")
            .map(String::as_str)
            == Some("true"),
        dead_letter: subscription
            .attributes
            .get("RedrivePolicy")
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("deadLetterTargetArn")?.as_str().map(str::to_owned)),
        retry,
        content_type,
    }
}

/// The policy SNS gives a new topic: its owner's account may do everything.
pub fn default_policy(topic_arn: &str, account: &str) -> Value {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": TOPIC_ACTIONS.iter().map(|a| format!("SNS:{a}")).collect::<Vec<_>>(),
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
        }],
    })
}

/// Checks a topic attribute; returns the value to store (`None`: remove it).
fn check_topic_attribute(name: &str, value: &str, fifo: bool) -> Result<Option<String>, SnsError> {
    let fifo_only = |name: &str| -> Result<(), SnsError> {
        if fifo {
            Ok(())
        } else {
            Err(SnsError::invalid(format!(
                "Attributes Reason: {name} is only valid for FIFO topics"
            )))
        }
    };
    let json_object = |name: &str| -> Result<(), SnsError> {
        match serde_json::from_str::<Value>(value) {
            Ok(Value::Object(_)) => Ok(()),
            _ => Err(SnsError::invalid(format!("{name}: failed to parse JSON"))),
        }
    };
    let stored = |v: &str| Ok(Some(v.to_owned()));
    match name {
        "DisplayName" => {
            if value.chars().count() > 100 {
                return Err(SnsError::invalid("DisplayName"));
            }
            stored(value)
        }
        "Policy" | "DataProtectionPolicy" | "DeliveryPolicy" | "ArchivePolicy" if value.is_empty() => {
            Ok(None)
        }
        "Policy" => {
            json_object("Policy")?;
            let parsed: Value = serde_json::from_str(value).unwrap_or_default();
            if !matches!(parsed.get("Statement"), Some(Value::Array(_) | Value::Object(_))) {
                return Err(SnsError::invalid("Policy Error: null"));
            }
            stored(value)
        }
        "DataProtectionPolicy" => {
            json_object(name)?;
            stored(value)
        }
        "DeliveryPolicy" => {
            TopicHttpPolicy::parse(value)?;
            stored(value)
        }
        "ArchivePolicy" => {
            fifo_only(name)?;
            json_object(name)?;
            stored(value)
        }
        "SignatureVersion" => match value {
            "1" | "2" => stored(value),
            _ => Err(SnsError::invalid(format!(
                "Attributes Reason: SignatureVersion: Invalid value [{value}]. Must be 1 or 2."
            ))),
        },
        "TracingConfig" => match value {
            "PassThrough" | "Active" => stored(value),
            _ => Err(SnsError::invalid(format!(
                "Attributes Reason: TracingConfig: Invalid value [{value}]. Must be PassThrough or Active."
            ))),
        },
        "KmsMasterKeyId" => stored(value),
        "ContentBasedDeduplication" => {
            let flag = boolean(name, value)?;
            fifo_only(name)?;
            stored(&flag.to_string())
        }
        "FifoThroughputScope" => {
            fifo_only(name)?;
            match value {
                "Topic" | "MessageGroup" => stored(value),
                _ => Err(SnsError::invalid(format!(
                    "Attributes Reason: FifoThroughputScope: Invalid value [{value}]. Must be Topic or MessageGroup."
                ))),
            }
        }
        "MaximumMessageSize" => match value.parse::<usize>() {
            Ok(size) if (1024..=LARGEST_MAX_MESSAGE).contains(&size) => stored(value),
            _ => Err(SnsError::invalid(format!(
                "Attributes Reason: MaximumMessageSize: Invalid value [{value}]. Must be between 1024 and 1048576."
            ))),
        },
        _ => {
            let feedback = FEEDBACK_PREFIXES.iter().find_map(|p| name.strip_prefix(p));
            match feedback {
                Some("SuccessFeedbackRoleArn" | "FailureFeedbackRoleArn") => stored(value),
                Some("SuccessFeedbackSampleRate") => match value.parse::<u8>() {
                    Ok(rate) if rate <= 100 => stored(value),
                    _ => Err(SnsError::invalid(format!(
                        "Attributes Reason: {name}: Invalid value [{value}]. Must be between 0 and 100."
                    ))),
                },
                _ => Err(SnsError::invalid("AttributeName")),
            }
        }
    }
}

/// Checks a subscription attribute for `protocol`; `all` holds the other attributes being
/// set with it (the filter scope). Returns the value to store (`None`: remove it).
fn check_subscription_attribute(
    name: &str,
    value: &str,
    protocol: &str,
    fifo_topic: bool,
    all: &BTreeMap<String, String>,
) -> Result<Option<String>, SnsError> {
    match name {
        "FilterPolicy" => {
            if value.is_empty() {
                return Ok(None);
            }
            FilterPolicy::parse(value, scope_of(all))?;
            Ok(Some(value.to_owned()))
        }
        "FilterPolicyScope" => Ok(Some(FilterScope::parse(value)?.as_str().to_owned())),
        "RawMessageDelivery" => {
            let raw = boolean(name, value)?;
            if raw && !matches!(protocol, "sqs" | "http" | "https" | "firehose") {
                return Err(SnsError::invalid(format!(
                    "Delivery protocol [{protocol}] does not support raw message delivery."
                )));
            }
            Ok(Some(raw.to_string()))
        }
        "RedrivePolicy" => {
            if value.is_empty() {
                return Ok(None);
            }
            let parsed: Value = serde_json::from_str(value)
                .map_err(|_| SnsError::invalid("RedrivePolicy: failed to parse JSON."))?;
            let target = parsed
                .get("deadLetterTargetArn")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    SnsError::invalid("RedrivePolicy: deadLetterTargetArn is missing")
                })?;
            let Some((_, _, queue)) = arn_parts(target, "sqs") else {
                return Err(SnsError::invalid(
                    "RedrivePolicy: deadLetterTargetArn is an invalid arn",
                ));
            };
            if fifo_topic && !queue.ends_with(".fifo") {
                return Err(SnsError::invalid(
                    "RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription to a FIFO Topic.",
                ));
            }
            if !fifo_topic && queue.ends_with(".fifo") {
                return Err(SnsError::invalid(
                    "RedrivePolicy: must use a standard queue as DLQ for a subscription to a standard topic.",
                ));
            }
            Ok(Some(value.to_owned()))
        }
        "DeliveryPolicy" => {
            if value.is_empty() {
                return Ok(None);
            }
            if !matches!(protocol, "http" | "https") {
                return Err(SnsError::invalid(
                    "DeliveryPolicy: Delivery policy is only supported for HTTP/S subscriptions",
                ));
            }
            SubscriptionHttpPolicy::parse(value)?;
            Ok(Some(value.to_owned()))
        }
        "SubscriptionRoleArn" => Ok(Some(value.to_owned())),
        _ => Err(SnsError::invalid("AttributeName")),
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), SnsError> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(SnsError::invalid(
                "Tag keys must be between 1 and 128 characters in length.",
            ));
        }
        if value.chars().count() > 256 {
            return Err(SnsError::invalid(
                "Tag values must be between 0 and 256 characters in length.",
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(SnsError::TagPolicy(
                "Tag keys must not start with 'aws:', which is reserved for AWS use.".into(),
            ));
        }
    }
    Ok(())
}

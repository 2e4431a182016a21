//! The service over the real SQLite store, with a recording deliverer, fast retries and a
//! clock the tests can move.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use gust_model::Clock;
use rsa::pkcs1v15::Pkcs1v15Sign;
use serde_json::Value;
use sha2::Digest;
use time::OffsetDateTime;

use crate::message::{canonical_confirmation, canonical_notification, MessageAttribute};
use crate::signing::certificate_public_key;
use crate::{
    BatchEntry, BoxFuture, Caller, Deliverer, DeliveryError, PublishRequest, Sns, SnsConfig,
    SnsError, SqliteTopics, SqsDelivery, PENDING_CONFIRMATION,
};

const ACCOUNT: &str = "000000000000";
const OTHER: &str = "111111111111";

/// Real time plus an offset the tests move (the workers sleep in real time).
#[derive(Debug, Default)]
struct TestClock(Mutex<time::Duration>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += time::Duration::seconds(seconds);
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Sqs(String, SqsDelivery),
    Lambda(String, Value, String),
}

/// Records every delivery; endpoints in `failing` fail with the given error.
#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<Sent>>,
    attempts: Mutex<HashMap<String, usize>>,
    failing: Mutex<HashMap<String, DeliveryError>>,
}

impl Recorder {
    fn outcome(&self, endpoint: &str) -> Result<(), DeliveryError> {
        *self
            .attempts
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default() += 1;
        match self.failing.lock().unwrap().get(endpoint) {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn fail(&self, endpoint: &str, error: DeliveryError) {
        self.failing
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), error);
    }

    fn attempts(&self, endpoint: &str) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    fn to(&self, endpoint: &str) -> Vec<Sent> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|s| match s {
                Sent::Sqs(e, _) | Sent::Lambda(e, _, _) => e == endpoint,
            })
            .cloned()
            .collect()
    }

    fn sqs_bodies(&self, queue: &str) -> Vec<SqsDelivery> {
        self.to(queue)
            .into_iter()
            .filter_map(|s| match s {
                Sent::Sqs(_, d) => Some(d),
                Sent::Lambda(..) => None,
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }
}

impl Deliverer for Recorder {
    fn to_sqs(
        &self,
        queue_arn: &str,
        delivery: SqsDelivery,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let outcome = self.outcome(queue_arn);
        if outcome.is_ok() {
            self.sent
                .lock()
                .unwrap()
                .push(Sent::Sqs(queue_arn.to_owned(), delivery));
        }
        Box::pin(async move { outcome })
    }

    fn to_lambda(
        &self,
        function_arn: &str,
        payload: Vec<u8>,
        topic_arn: &str,
        _trace: Option<&str>,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let outcome = self.outcome(function_arn);
        if outcome.is_ok() {
            self.sent.lock().unwrap().push(Sent::Lambda(
                function_arn.to_owned(),
                serde_json::from_slice(&payload).unwrap(),
                topic_arn.to_owned(),
            ));
        }
        Box::pin(async move { outcome })
    }
}

/// One key for the whole test run: 2048-bit generation is not free.
fn key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    })
}

struct Fixture {
    sns: Arc<Sns>,
    clock: Arc<TestClock>,
    deliverer: Arc<Recorder>,
    caller: Caller,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> SnsConfig {
    let key = dir.join("sns-signing-key.pem");
    if !key.exists() {
        std::fs::write(&key, key_pem()).unwrap();
    }
    SnsConfig {
        retry_base: Duration::from_millis(1),
        max_attempts: 4,
        poll_interval: Duration::from_millis(20),
        http_allow: vec!["http://127.0.0.1:".into()],
        ..SnsConfig::new("http://127.0.0.1:9070", &key)
    }
}

fn open(dir: &std::path::Path, clock: Arc<TestClock>, deliverer: Arc<Recorder>) -> Arc<Sns> {
    let store = SqliteTopics::open(&dir.join("sns.db")).unwrap();
    Sns::new(Arc::new(store), clock, "us-east-1", deliverer, config(dir)).unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let deliverer = Arc::new(Recorder::default());
    let sns = open(dir.path(), clock.clone(), deliverer.clone());
    Fixture {
        sns,
        clock,
        deliverer,
        caller: Caller::account(ACCOUNT),
        dir,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn queue(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
}

fn function(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

async fn eventually(what: &str, test: impl Fn() -> bool) {
    for _ in 0..500 {
        if test() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

impl Fixture {
    async fn topic(&self, name: &str, attributes: &[(&str, &str)]) -> String {
        self.sns
            .create_topic(&self.caller, name, &map(attributes), &BTreeMap::new())
            .await
            .unwrap()
    }

    async fn subscribe(
        &self,
        topic: &str,
        protocol: &str,
        endpoint: &str,
        attributes: &[(&str, &str)],
    ) -> String {
        self.sns
            .subscribe(
                &self.caller,
                topic,
                protocol,
                Some(endpoint),
                &map(attributes),
                true,
            )
            .await
            .unwrap()
    }

    async fn publish(&self, topic: &str, message: &str, attributes: &[(&str, &str)]) -> String {
        self.sns
            .publish(
                &self.caller,
                PublishRequest {
                    topic_arn: Some(topic.into()),
                    message: message.into(),
                    message_attributes: attributes
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), MessageAttribute::string(v)))
                        .collect(),
                    ..PublishRequest::default()
                },
            )
            .await
            .unwrap()
            .message_id
    }

    async fn pending(&self) -> usize {
        let now = self.sns.now_ms() + 3_600_000;
        self.sns
            .blocking(move |store| store.due(now, 1000))
            .await
            .unwrap()
            .0
            .len()
    }
}

fn envelope(delivery: &SqsDelivery) -> Value {
    serde_json::from_str(&delivery.body).unwrap()
}

fn invalid(error: Result<impl std::fmt::Debug, SnsError>) -> String {
    match error {
        Err(SnsError::InvalidParameter(message)) => message,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lifecycle() {
    let f = fixture();
    let arn = f.topic("orders", &[("DisplayName", "Orders")]).await;
    assert_eq!(arn, format!("arn:aws:sns:us-east-1:{ACCOUNT}:orders"));
    // Idempotent with equal attributes, refused with others.
    assert_eq!(f.topic("orders", &[("DisplayName", "Orders")]).await, arn);
    assert_eq!(
        invalid(
            f.sns
                .create_topic(
                    &f.caller,
                    "orders",
                    &map(&[("DisplayName", "Other")]),
                    &BTreeMap::new()
                )
                .await
        ),
        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
    );
    for bad in ["", "a.b", "has space", &"x".repeat(257), "x.fifo"] {
        assert_eq!(
            invalid(
                f.sns
                    .create_topic(&f.caller, bad, &BTreeMap::new(), &BTreeMap::new())
                    .await
            ),
            "Invalid parameter: Topic Name",
            "{bad}"
        );
    }
    assert!(invalid(
        f.sns
            .create_topic(
                &f.caller,
                "nofifo",
                &map(&[("FifoTopic", "true")]),
                &BTreeMap::new()
            )
            .await
    )
    .contains("Fifo Topic names must end with .fifo"));

    let attributes = f.sns.get_topic_attributes(&f.caller, &arn).await.unwrap();
    assert_eq!(attributes["TopicArn"], arn);
    assert_eq!(attributes["Owner"], ACCOUNT);
    assert_eq!(attributes["DisplayName"], "Orders");
    assert_eq!(attributes["SubscriptionsConfirmed"], "0");
    let policy: Value = serde_json::from_str(&attributes["Policy"]).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["StringEquals"]["AWS:SourceOwner"],
        ACCOUNT
    );
    assert!(attributes["EffectiveDeliveryPolicy"].contains("defaultHealthyRetryPolicy"));
    assert!(!attributes.contains_key("FifoTopic"));

    f.sns
        .set_topic_attributes(&f.caller, &arn, "DisplayName", "Renamed")
        .await
        .unwrap();
    assert_eq!(
        f.sns.get_topic_attributes(&f.caller, &arn).await.unwrap()["DisplayName"],
        "Renamed"
    );
    assert_eq!(
        invalid(
            f.sns
                .set_topic_attributes(&f.caller, &arn, "Bogus", "1")
                .await
        ),
        "Invalid parameter: AttributeName"
    );
    assert!(f
        .sns
        .set_topic_attributes(&f.caller, &arn, "ContentBasedDeduplication", "true")
        .await
        .is_err());

    // Tags.
    f.sns
        .tag_resource(&f.caller, &arn, &map(&[("team", "a"), ("env", "dev")]))
        .await
        .unwrap();
    f.sns
        .untag_resource(&f.caller, &arn, &["env".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        f.sns.list_tags_for_resource(&f.caller, &arn).await.unwrap(),
        map(&[("team", "a")])
    );
    let missing = format!("arn:aws:sns:us-east-1:{ACCOUNT}:missing");
    assert_eq!(
        f.sns
            .list_tags_for_resource(&f.caller, &missing)
            .await
            .unwrap_err()
            .code(),
        "ResourceNotFound"
    );

    // Paging.
    for i in 0..101 {
        f.topic(&format!("t{i:03}"), &[]).await;
    }
    let (first, token) = f.sns.list_topics(&f.caller, None).await.unwrap();
    assert_eq!(first.len(), 100);
    let (rest, end) = f
        .sns
        .list_topics(&f.caller, token.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert!(end.is_none());
    assert!(f
        .sns
        .list_topics(&Caller::account(OTHER), None)
        .await
        .unwrap()
        .0
        .is_empty());

    // Other accounts need the topic policy's permission.
    let other = Caller::account(OTHER);
    let denied = f.sns.get_topic_attributes(&other, &arn).await.unwrap_err();
    assert_eq!(
        (denied.code(), denied.status()),
        ("AuthorizationError", 403)
    );
    let publish = PublishRequest {
        topic_arn: Some(arn.clone()),
        message: "hi".into(),
        ..PublishRequest::default()
    };
    assert!(f.sns.publish(&other, publish.clone()).await.is_err());
    f.sns
        .add_permission(
            &f.caller,
            &arn,
            "let-other",
            &[OTHER.to_owned()],
            &["Publish".to_owned()],
        )
        .await
        .unwrap();
    f.sns.publish(&other, publish.clone()).await.unwrap();
    assert!(f.sns.delete_topic(&other, &arn).await.is_err());
    f.sns
        .remove_permission(&f.caller, &arn, "let-other")
        .await
        .unwrap();
    assert!(f.sns.publish(&other, publish).await.is_err());

    // Deletion; deleting again is fine.
    f.sns.delete_topic(&f.caller, &arn).await.unwrap();
    f.sns.delete_topic(&f.caller, &arn).await.unwrap();
    let gone = f
        .sns
        .get_topic_attributes(&f.caller, &arn)
        .await
        .unwrap_err();
    assert_eq!(
        (gone.code(), gone.status(), gone.to_string().as_str()),
        ("NotFound", 404, "Topic does not exist")
    );
    assert_eq!(
        invalid(
            f.sns
                .get_topic_attributes(&f.caller, "arn:aws:sns:nope")
                .await
        ),
        "Invalid parameter: TopicArn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_and_unsubscribe() {
    let f = fixture();
    let topic = f.topic("events", &[]).await;
    let q = f.subscribe(&topic, "sqs", &queue("q1"), &[]).await;
    assert!(q.starts_with(&format!("{topic}:")));
    // The same endpoint again: the same subscription; other attributes: refused.
    assert_eq!(f.subscribe(&topic, "sqs", &queue("q1"), &[]).await, q);
    assert_eq!(
        invalid(
            f.sns
                .subscribe(&f.caller, &topic, "sqs", Some(&queue("q1")), &map(&[("RawMessageDelivery", "true")]), false)
                .await
        ),
        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
    );
    let l = f.subscribe(&topic, "lambda", &function("fn"), &[]).await;
    assert_eq!(
        invalid(
            f.sns
                .subscribe(
                    &f.caller,
                    &topic,
                    "lambda",
                    Some("not-an-arn"),
                    &BTreeMap::new(),
                    false
                )
                .await
        ),
        "Invalid parameter: Lambda endpoint ARN"
    );
    assert_eq!(
        invalid(
            f.sns
                .subscribe(
                    &f.caller,
                    &topic,
                    "sqs",
                    Some("queue"),
                    &BTreeMap::new(),
                    false
                )
                .await
        ),
        "Invalid parameter: SQS endpoint ARN"
    );
    assert!(invalid(
        f.sns
            .subscribe(
                &f.caller,
                &topic,
                "sqs",
                Some(&queue("q.fifo")),
                &BTreeMap::new(),
                false
            )
            .await
    )
    .contains("FIFO SQS Queues can not be subscribed to standard SNS topics"));
    assert!(invalid(
        f.sns
            .subscribe(
                &f.caller,
                &topic,
                "carrier-pigeon",
                Some("x"),
                &BTreeMap::new(),
                false
            )
            .await
    )
    .contains("does not support this protocol"));
    assert!(invalid(
        f.sns
            .subscribe(
                &f.caller,
                &topic,
                "http",
                Some("http://example.com/"),
                &BTreeMap::new(),
                false
            )
            .await
    )
    .contains("not in this server's list"));
    assert_eq!(
        invalid(
            f.sns
                .subscribe(
                    &f.caller,
                    &topic,
                    "lambda",
                    Some(&function("raw")),
                    &map(&[("RawMessageDelivery", "true")]),
                    false
                )
                .await
        ),
        "Invalid parameter: Delivery protocol [lambda] does not support raw message delivery."
    );

    // HTTP subscriptions wait for confirmation.
    let pending = f
        .sns
        .subscribe(
            &f.caller,
            &topic,
            "http",
            Some("http://127.0.0.1:1/hook"),
            &BTreeMap::new(),
            false,
        )
        .await
        .unwrap();
    assert_eq!(pending, PENDING_CONFIRMATION);
    let (listed, token) = f
        .sns
        .list_subscriptions_by_topic(&f.caller, &topic, None)
        .await
        .unwrap();
    assert!(token.is_none());
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed
            .iter()
            .filter(|s| s.subscription_arn == "PendingConfirmation")
            .count(),
        1
    );
    let attributes = f.sns.get_topic_attributes(&f.caller, &topic).await.unwrap();
    assert_eq!(attributes["SubscriptionsConfirmed"], "2");
    assert_eq!(attributes["SubscriptionsPending"], "1");

    let sub = f
        .sns
        .get_subscription_attributes(&f.caller, &q)
        .await
        .unwrap();
    assert_eq!(sub["Protocol"], "sqs");
    assert_eq!(sub["Endpoint"], queue("q1"));
    assert_eq!(sub["PendingConfirmation"], "false");
    assert_eq!(sub["ConfirmationWasAuthenticated"], "true");
    assert_eq!(sub["RawMessageDelivery"], "false");
    assert_eq!(sub["Owner"], ACCOUNT);
    assert!(sub["EffectiveDeliveryPolicy"].contains("healthyRetryPolicy"));

    f.sns
        .set_subscription_attributes(&f.caller, &q, "FilterPolicy", r#"{"a": ["b"]}"#)
        .await
        .unwrap();
    let sub = f
        .sns
        .get_subscription_attributes(&f.caller, &q)
        .await
        .unwrap();
    assert_eq!(sub["FilterPolicyScope"], "MessageAttributes");
    assert!(f
        .sns
        .set_subscription_attributes(&f.caller, &q, "FilterPolicy", r#"{"a": "b"}"#)
        .await
        .is_err());
    assert!(f
        .sns
        .set_subscription_attributes(
            &f.caller,
            &q,
            "RedrivePolicy",
            r#"{"deadLetterTargetArn": "nope"}"#
        )
        .await
        .is_err());
    assert_eq!(
        invalid(
            f.sns
                .set_subscription_attributes(&f.caller, &q, "Nope", "1")
                .await
        ),
        "Invalid parameter: AttributeName"
    );
    let (mine, _) = f.sns.list_subscriptions(&f.caller, None).await.unwrap();
    assert_eq!(mine.len(), 3);

    // Other accounts may not touch it.
    assert_eq!(
        f.sns
            .unsubscribe(Some(&Caller::account(OTHER)), &q)
            .await
            .unwrap_err()
            .code(),
        "AuthorizationError"
    );
    f.sns.unsubscribe(Some(&f.caller), &q).await.unwrap();
    f.sns.unsubscribe(Some(&f.caller), &q).await.unwrap();
    let gone = f
        .sns
        .get_subscription_attributes(&f.caller, &q)
        .await
        .unwrap_err();
    assert_eq!(gone.to_string(), "Subscription does not exist");
    // Deleting the topic removes its subscriptions.
    f.sns.delete_topic(&f.caller, &topic).await.unwrap();
    assert!(f
        .sns
        .get_subscription_attributes(&f.caller, &l)
        .await
        .is_err());
    assert!(f
        .sns
        .list_subscriptions(&f.caller, None)
        .await
        .unwrap()
        .0
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_follows_filter_policies() {
    let f = fixture();
    f.sns.start();
    let topic = f.topic("fan", &[]).await;
    let a = f.subscribe(&topic, "sqs", &queue("a"), &[]).await;
    f.subscribe(&topic, "sqs", &queue("b"), &[]).await;
    let l = f
        .subscribe(
            &topic,
            "lambda",
            &function("red"),
            &[("FilterPolicy", r#"{"color": ["red"]}"#)],
        )
        .await;

    let blue = f.publish(&topic, "a blue one", &[("color", "blue")]).await;
    eventually("blue to both queues", || f.deliverer.count() == 2).await;
    let red = f.publish(&topic, "a red one", &[("color", "red")]).await;
    eventually("red everywhere", || f.deliverer.count() == 5).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.deliverer.count(), 5);

    let to_a = f.deliverer.sqs_bodies(&queue("a"));
    assert_eq!(to_a.len(), 2);
    let first = to_a
        .iter()
        .map(envelope)
        .find(|e| e["MessageId"] == blue.as_str())
        .unwrap();
    assert_eq!(first["Type"], "Notification");
    assert_eq!(first["TopicArn"], topic.as_str());
    assert_eq!(first["Message"], "a blue one");
    assert_eq!(first["SignatureVersion"], "1");
    assert!(first.get("Subject").is_none());
    assert_eq!(
        first["SigningCertURL"],
        "http://127.0.0.1:9070/_gust/sns/SimpleNotificationService-gust.pem"
    );
    assert_eq!(
        first["UnsubscribeURL"],
        format!("http://127.0.0.1:9070/?Action=Unsubscribe&SubscriptionArn={a}").as_str()
    );
    assert_eq!(first["MessageAttributes"]["color"]["Type"], "String");
    assert_eq!(first["MessageAttributes"]["color"]["Value"], "blue");
    assert!(to_a[0]
        .body
        .starts_with("{\n  \"Type\" : \"Notification\",\n"));
    assert!(to_a[0].message_attributes.is_empty());
    assert_eq!(to_a[0].topic_arn, topic);

    let lambda = f.deliverer.to(&function("red"));
    let [Sent::Lambda(_, event, source)] = lambda.as_slice() else {
        panic!("one lambda invocation expected: {lambda:?}")
    };
    assert_eq!(source, &topic);
    let record = &event["Records"][0];
    assert_eq!(record["EventSource"], "aws:sns");
    assert_eq!(record["EventVersion"], "1.0");
    assert_eq!(record["EventSubscriptionArn"], l.as_str());
    let sns = &record["Sns"];
    assert_eq!(sns["MessageId"], red.as_str());
    assert_eq!(sns["Message"], "a red one");
    assert_eq!(sns["Subject"], Value::Null);
    assert_eq!(sns["Type"], "Notification");
    assert!(sns["SigningCertUrl"].as_str().unwrap().ends_with(".pem"));
    assert!(sns["UnsubscribeUrl"].as_str().unwrap().contains(&l));
    assert_eq!(sns["MessageAttributes"]["color"]["Value"], "red");
    let timestamp = sns["Timestamp"].as_str().unwrap();
    assert_eq!(timestamp.len(), "2019-01-02T12:45:07.000Z".len());
    assert!(timestamp.ends_with('Z'));
    // Delivered messages leave the store.
    let mut left = 1;
    for _ in 0..100 {
        left = f.pending().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_delivery_and_message_structure() {
    let f = fixture();
    f.sns.start();
    let topic = f.topic("raw", &[]).await;
    f.subscribe(
        &topic,
        "sqs",
        &queue("raw"),
        &[("RawMessageDelivery", "true")],
    )
    .await;
    f.subscribe(&topic, "sqs", &queue("wrapped"), &[]).await;
    f.subscribe(&topic, "lambda", &function("f"), &[]).await;
    f.publish(&topic, "plain text", &[("kind", "note")]).await;
    eventually("three deliveries", || f.deliverer.count() == 3).await;
    let raw = &f.deliverer.sqs_bodies(&queue("raw"))[0];
    assert_eq!(raw.body, "plain text");
    assert_eq!(
        raw.message_attributes["kind"],
        MessageAttribute::string("note")
    );

    let structured = r#"{"default": "for everyone", "sqs": "for queues"}"#;
    f.sns
        .publish(
            &f.caller,
            PublishRequest {
                topic_arn: Some(topic.clone()),
                message: structured.into(),
                message_structure: Some("json".into()),
                subject: Some("Hello".into()),
                ..PublishRequest::default()
            },
        )
        .await
        .unwrap();
    eventually("six deliveries", || f.deliverer.count() == 6).await;
    assert_eq!(f.deliverer.sqs_bodies(&queue("raw"))[1].body, "for queues");
    let wrapped = envelope(&f.deliverer.sqs_bodies(&queue("wrapped"))[1]);
    assert_eq!(wrapped["Message"], "for queues");
    assert_eq!(wrapped["Subject"], "Hello");
    let Sent::Lambda(_, event, _) = &f.deliverer.to(&function("f"))[1] else {
        panic!()
    };
    assert_eq!(event["Records"][0]["Sns"]["Message"], "for everyone");
    assert_eq!(event["Records"][0]["Sns"]["Subject"], "Hello");

    // Publish checks.
    let request = |message: &str| PublishRequest {
        topic_arn: Some(topic.clone()),
        message: message.into(),
        ..PublishRequest::default()
    };
    assert_eq!(
        invalid(
            f.sns
                .publish(
                    &f.caller,
                    PublishRequest {
                        message_structure: Some("json".into()),
                        ..request(r#"{"sqs": "x"}"#)
                    }
                )
                .await
        ),
        "Invalid parameter: Message Structure - No default entry in JSON message body"
    );
    assert_eq!(
        invalid(f.sns.publish(&f.caller, request("")).await),
        "Invalid parameter: Empty message"
    );
    assert_eq!(
        invalid(
            f.sns
                .publish(&f.caller, request(&"x".repeat(262_145)))
                .await
        ),
        "Invalid parameter: Message too long"
    );
    assert_eq!(
        invalid(
            f.sns
                .publish(
                    &f.caller,
                    PublishRequest {
                        subject: Some("s".repeat(100)),
                        ..request("x")
                    }
                )
                .await
        ),
        "Invalid parameter: Subject"
    );
    assert_eq!(
        invalid(
            f.sns
                .publish(
                    &f.caller,
                    PublishRequest {
                        topic_arn: None,
                        ..request("x")
                    }
                )
                .await
        ),
        "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter"
    );
    assert!(f
        .sns
        .publish(
            &f.caller,
            PublishRequest {
                dedup_id: Some("d".into()),
                ..request("x")
            }
        )
        .await
        .is_err());
    let missing = format!("arn:aws:sns:us-east-1:{ACCOUNT}:missing");
    assert_eq!(
        f.sns
            .publish(
                &f.caller,
                PublishRequest {
                    topic_arn: Some(missing),
                    ..request("x")
                }
            )
            .await
            .unwrap_err()
            .code(),
        "NotFound"
    );
    // TargetArn may name a topic.
    f.sns
        .publish(
            &f.caller,
            PublishRequest {
                topic_arn: None,
                target_arn: Some(topic.clone()),
                ..request("t")
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches() {
    let f = fixture();
    let topic = f.topic("batch", &[]).await;
    let entry = |id: &str, message: &str| BatchEntry {
        id: id.into(),
        message: message.into(),
        ..BatchEntry::default()
    };
    let batch = |entries: Vec<BatchEntry>| f.sns.publish_batch(&f.caller, &topic, entries);
    assert_eq!(batch(vec![]).await.unwrap_err().code(), "EmptyBatchRequest");
    let eleven = (0..11).map(|i| entry(&i.to_string(), "m")).collect();
    assert_eq!(
        batch(eleven).await.unwrap_err().code(),
        "TooManyEntriesInBatchRequest"
    );
    assert_eq!(
        batch(vec![entry("a", "m"), entry("a", "n")])
            .await
            .unwrap_err()
            .code(),
        "BatchEntryIdsNotDistinct"
    );
    assert_eq!(
        batch(vec![entry("a b", "m")]).await.unwrap_err().code(),
        "InvalidBatchEntryId"
    );
    let half = "x".repeat(140_000);
    assert_eq!(
        batch(vec![entry("a", &half), entry("b", &half)])
            .await
            .unwrap_err()
            .code(),
        "BatchRequestTooLong"
    );
    let (ok, failed) = batch(vec![entry("good", "m"), entry("bad", "")])
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].id, "good");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (
            failed[0].id.as_str(),
            failed[0].code.as_str(),
            failed[0].sender_fault
        ),
        ("bad", "InvalidParameter", true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_then_dead_letter_queue() {
    let f = fixture();
    f.sns.start();
    let topic = f.topic("flaky", &[]).await;
    let dlq = queue("dlq");
    let redrive = format!(r#"{{"deadLetterTargetArn": "{dlq}"}}"#);
    f.subscribe(
        &topic,
        "sqs",
        &queue("down"),
        &[("RedrivePolicy", &redrive)],
    )
    .await;
    f.subscribe(
        &topic,
        "lambda",
        &function("gone"),
        &[("RedrivePolicy", &redrive)],
    )
    .await;
    f.subscribe(&topic, "sqs", &queue("nodlq"), &[]).await;
    f.deliverer
        .fail(&queue("down"), DeliveryError::retryable("throttled"));
    f.deliverer.fail(
        &function("gone"),
        DeliveryError::permanent("no such function"),
    );
    f.deliverer
        .fail(&queue("nodlq"), DeliveryError::retryable("down"));
    let id = f.publish(&topic, "important", &[]).await;

    eventually("both in the dead-letter queue", || {
        f.deliverer.sqs_bodies(&dlq).len() == 2
    })
    .await;
    // max_attempts = 4 for the retryable failure; one attempt for the permanent one.
    assert_eq!(f.deliverer.attempts(&queue("down")), 4);
    assert_eq!(f.deliverer.attempts(&function("gone")), 1);
    for delivery in f.deliverer.sqs_bodies(&dlq) {
        let body = envelope(&delivery);
        assert_eq!(body["MessageId"], id.as_str());
        assert_eq!(body["Message"], "important");
    }
    eventually("the queue without a DLQ gives up", || {
        f.deliverer.attempts(&queue("nodlq")) == 4
    })
    .await;
    let mut left = 1;
    for _ in 0..100 {
        left = f.pending().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0, "nothing left pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_a_restart() {
    let f = fixture();
    let topic = f.topic("durable", &[]).await;
    f.subscribe(&topic, "sqs", &queue("later"), &[]).await;
    // Not started: as if the server died right after answering.
    let id = f.publish(&topic, "kept", &[]).await;
    assert_eq!(f.pending().await, 1);
    let Fixture {
        sns, clock, dir, ..
    } = f;
    drop(sns);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let deliverer = Arc::new(Recorder::default());
    let sns = open(dir.path(), clock, deliverer.clone());
    sns.start();
    eventually("delivery after restart", || deliverer.count() == 1).await;
    let body = envelope(&deliverer.sqs_bodies(&queue("later"))[0]);
    assert_eq!(body["MessageId"], id.as_str());
    assert_eq!(body["Message"], "kept");
    // Subscriptions and topics came back too.
    let caller = Caller::account(ACCOUNT);
    assert_eq!(
        sns.list_subscriptions_by_topic(&caller, &topic, None)
            .await
            .unwrap()
            .0
            .len(),
        1
    );
}

fn verify(certificate_pem: &str, version: &str, text: &str, signature: &str) -> bool {
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            certificate_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let key = certificate_public_key(&der).expect("certificate key");
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .unwrap();
    if version == "2" {
        key.verify(
            Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(text.as_bytes()),
            &signature,
        )
        .is_ok()
    } else {
        key.verify(
            Pkcs1v15Sign::new::<sha1::Sha1>(),
            &sha1::Sha1::digest(text.as_bytes()),
            &signature,
        )
        .is_ok()
    }
}

fn canonical(e: &Value) -> String {
    canonical_notification(
        e["Message"].as_str().unwrap(),
        e["MessageId"].as_str().unwrap(),
        e["Subject"].as_str(),
        e["Timestamp"].as_str().unwrap(),
        e["TopicArn"].as_str().unwrap(),
        e["Type"].as_str().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_with_the_certificate_key() {
    let f = fixture();
    f.sns.start();
    let v1 = f.topic("signed", &[]).await;
    let v2 = f.topic("signed2", &[("SignatureVersion", "2")]).await;
    f.subscribe(&v1, "sqs", &queue("s1"), &[]).await;
    f.subscribe(&v1, "lambda", &function("s1"), &[]).await;
    f.subscribe(&v2, "sqs", &queue("s2"), &[]).await;
    f.sns
        .publish(
            &f.caller,
            PublishRequest {
                topic_arn: Some(v1.clone()),
                message: "sign me \"please\"\n".into(),
                subject: Some("Subject here".into()),
                ..PublishRequest::default()
            },
        )
        .await
        .unwrap();
    f.publish(&v2, "version two", &[]).await;
    eventually("three deliveries", || f.deliverer.count() == 3).await;
    let pem = f.sns.signing_certificate_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));

    let e1 = envelope(&f.deliverer.sqs_bodies(&queue("s1"))[0]);
    assert!(verify(
        pem,
        "1",
        &canonical(&e1),
        e1["Signature"].as_str().unwrap()
    ));
    assert!(!verify(
        pem,
        "1",
        &canonical(&e1).replace("please", "PLEASE"),
        e1["Signature"].as_str().unwrap()
    ));
    let e2 = envelope(&f.deliverer.sqs_bodies(&queue("s2"))[0]);
    assert_eq!(e2["SignatureVersion"], "2");
    assert!(verify(
        pem,
        "2",
        &canonical(&e2),
        e2["Signature"].as_str().unwrap()
    ));
    let Sent::Lambda(_, event, _) = &f.deliverer.to(&function("s1"))[0] else {
        panic!()
    };
    let sns = &event["Records"][0]["Sns"];
    assert!(verify(
        pem,
        "1",
        &canonical(sns),
        sns["Signature"].as_str().unwrap()
    ));

    // The same key after a restart: the certificate is the same.
    let again = open(f.dir.path(), f.clock.clone(), f.deliverer.clone());
    assert_eq!(again.signing_certificate_pem(), pem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_topics() {
    let f = fixture();
    f.sns.start();
    let topic = f.topic("orders.fifo", &[("FifoTopic", "true")]).await;
    let attributes = f.sns.get_topic_attributes(&f.caller, &topic).await.unwrap();
    assert_eq!(attributes["FifoTopic"], "true");
    assert_eq!(attributes["ContentBasedDeduplication"], "false");
    assert!(invalid(
        f.sns
            .subscribe(
                &f.caller,
                &topic,
                "lambda",
                Some(&function("f")),
                &BTreeMap::new(),
                false
            )
            .await
    )
    .contains("FIFO"));
    f.subscribe(&topic, "sqs", &queue("orders.fifo"), &[]).await;
    let request = |group: Option<&str>, dedup: Option<&str>| PublishRequest {
        topic_arn: Some(topic.clone()),
        message: "order".into(),
        group_id: group.map(str::to_owned),
        dedup_id: dedup.map(str::to_owned),
        ..PublishRequest::default()
    };
    assert_eq!(
        invalid(f.sns.publish(&f.caller, request(None, Some("d"))).await),
        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    );
    assert!(
        invalid(f.sns.publish(&f.caller, request(Some("g"), None)).await)
            .contains("ContentBasedDeduplication")
    );
    let first = f
        .sns
        .publish(&f.caller, request(Some("g"), Some("d1")))
        .await
        .unwrap();
    let again = f
        .sns
        .publish(&f.caller, request(Some("g"), Some("d1")))
        .await
        .unwrap();
    assert_eq!(first, again, "deduplicated");
    let second = f
        .sns
        .publish(&f.caller, request(Some("g"), Some("d2")))
        .await
        .unwrap();
    let (s1, s2) = (
        first.sequence_number.unwrap(),
        second.sequence_number.unwrap(),
    );
    assert_eq!(s1.len(), 20);
    assert!(s2 > s1);
    eventually("two deliveries", || f.deliverer.count() == 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let bodies = f.deliverer.sqs_bodies(&queue("orders.fifo"));
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0].group_id.as_deref(), Some("g"));
    assert_eq!(bodies[0].dedup_id.as_deref(), Some("d1"));
    let e = envelope(&bodies[0]);
    assert_eq!(e["SequenceNumber"], s1.as_str());
    assert!(e.get("Signature").is_none());
    assert_eq!(envelope(&bodies[1])["SequenceNumber"], s2.as_str());

    // Content-based deduplication hashes the body.
    f.sns
        .set_topic_attributes(&f.caller, &topic, "ContentBasedDeduplication", "true")
        .await
        .unwrap();
    let a = f
        .sns
        .publish(&f.caller, request(Some("g"), None))
        .await
        .unwrap();
    let b = f
        .sns
        .publish(&f.caller, request(Some("g"), None))
        .await
        .unwrap();
    assert_eq!(a.message_id, b.message_id);
    // The window is five minutes.
    f.clock.advance(301);
    f.sns.expire().await;
    let c = f
        .sns
        .publish(&f.caller, request(Some("g"), None))
        .await
        .unwrap();
    assert_ne!(a.message_id, c.message_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_scope_filters() {
    let f = fixture();
    f.sns.start();
    let topic = f.topic("body", &[]).await;
    f.subscribe(
        &topic,
        "sqs",
        &queue("big"),
        &[
            ("FilterPolicyScope", "MessageBody"),
            (
                "FilterPolicy",
                r#"{"order": {"total": [{"numeric": [">=", 100]}]}}"#,
            ),
        ],
    )
    .await;
    f.subscribe(&topic, "sqs", &queue("all"), &[]).await;
    f.publish(&topic, r#"{"order": {"total": 50}}"#, &[]).await;
    f.publish(&topic, r#"{"order": {"total": 150}}"#, &[]).await;
    f.publish(&topic, "not json", &[]).await;
    eventually("four deliveries", || f.deliverer.count() == 4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let big = f.deliverer.sqs_bodies(&queue("big"));
    assert_eq!(big.len(), 1);
    assert_eq!(envelope(&big[0])["Message"], r#"{"order": {"total": 150}}"#);
    // A nested policy cannot move to the attributes scope.
    let (subs, _) = f
        .sns
        .list_subscriptions_by_topic(&f.caller, &topic, None)
        .await
        .unwrap();
    let big_arn = &subs
        .iter()
        .find(|s| s.endpoint == queue("big"))
        .unwrap()
        .subscription_arn;
    assert!(invalid(
        f.sns
            .set_subscription_attributes(
                &f.caller,
                big_arn,
                "FilterPolicyScope",
                "MessageAttributes"
            )
            .await
    )
    .contains("does not support nested filter policy"));
}

/// Requests an HTTP endpoint received: headers (lowercased names) and body.
type Requests = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

/// A one-route HTTP server recording requests.
async fn http_sink() -> (String, Requests) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Requests = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let headers: HashMap<String, String> = text[..end]
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(": "))
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    if buffer.len() < end + 4 + length {
                        continue;
                    }
                    let body =
                        String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string();
                    record.lock().unwrap().push((headers, body));
                    buffer.clear();
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_subscriptions_confirm_and_deliver() {
    let f = fixture();
    f.sns.start();
    let topic = f.topic("web", &[]).await;
    let (url, seen) = http_sink().await;
    let arn = f
        .sns
        .subscribe(
            &f.caller,
            &topic,
            "http",
            Some(&url),
            &BTreeMap::new(),
            true,
        )
        .await
        .unwrap();
    assert!(arn.starts_with(&topic));
    eventually("confirmation request", || seen.lock().unwrap().len() == 1).await;
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        headers["x-amz-sns-message-type"],
        "SubscriptionConfirmation"
    );
    assert_eq!(headers["x-amz-sns-topic-arn"], topic);
    assert_eq!(headers["content-type"], "text/plain; charset=UTF-8");
    let confirmation: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(confirmation["Type"], "SubscriptionConfirmation");
    let token = confirmation["Token"].as_str().unwrap();
    let subscribe_url = confirmation["SubscribeURL"].as_str().unwrap();
    assert_eq!(
        subscribe_url,
        format!("http://127.0.0.1:9070/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}")
    );
    let text = canonical_confirmation(
        confirmation["Message"].as_str().unwrap(),
        confirmation["MessageId"].as_str().unwrap(),
        subscribe_url,
        confirmation["Timestamp"].as_str().unwrap(),
        token,
        &topic,
        "SubscriptionConfirmation",
    );
    assert!(verify(
        f.sns.signing_certificate_pem(),
        "1",
        &text,
        confirmation["Signature"].as_str().unwrap()
    ));

    // Nothing is delivered before confirmation.
    f.publish(&topic, "too early", &[]).await;
    assert_eq!(
        invalid(
            f.sns
                .confirm_subscription(Some(&f.caller), &topic, "bogus", false)
                .await
        ),
        "Invalid parameter: Token"
    );
    let confirmed = f
        .sns
        .confirm_subscription(None, &topic, token, false)
        .await
        .unwrap();
    assert_eq!(confirmed, arn);
    let attributes = f
        .sns
        .get_subscription_attributes(&f.caller, &arn)
        .await
        .unwrap();
    assert_eq!(attributes["PendingConfirmation"], "false");
    assert_eq!(attributes["ConfirmationWasAuthenticated"], "false");

    let id = f.publish(&topic, "hello web", &[]).await;
    eventually("notification", || seen.lock().unwrap().len() == 2).await;
    let (headers, body) = seen.lock().unwrap()[1].clone();
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(headers["x-amz-sns-message-id"], id);
    assert_eq!(headers["x-amz-sns-subscription-arn"], arn);
    let notification: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(notification["Message"], "hello web");

    f.sns
        .set_subscription_attributes(&f.caller, &arn, "RawMessageDelivery", "true")
        .await
        .unwrap();
    f.publish(&topic, "raw web", &[]).await;
    eventually("raw notification", || seen.lock().unwrap().len() == 3).await;
    let (headers, body) = seen.lock().unwrap()[2].clone();
    assert_eq!(body, "raw web");
    assert_eq!(headers["x-amz-sns-rawdelivery"], "true");

    f.sns.unsubscribe(Some(&f.caller), &arn).await.unwrap();
    eventually("unsubscribe confirmation", || {
        seen.lock().unwrap().len() == 4
    })
    .await;
    assert_eq!(
        seen.lock().unwrap()[3].0["x-amz-sns-message-type"],
        "UnsubscribeConfirmation"
    );
}

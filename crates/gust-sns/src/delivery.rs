//! Delivery: the [`Deliverer`] the binary implements for SQS and Lambda targets, HTTP
//! delivery (done here, with hyper), the payloads each protocol receives, and the retry
//! schedules (SNS's for AWS-managed endpoints; the delivery policy's for HTTP/S).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SnsError;
use crate::message::{canonical_confirmation, canonical_notification, MessageAttributes};
use crate::signing::Signer;
use crate::store::StoredMessage;

/// A boxed future, as [`Deliverer`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Whether another attempt may succeed (throttling, a server error). A client error
    /// (the queue or function does not exist, access denied) is not retried: the message
    /// goes to the dead-letter queue at once, as in SNS.
    pub retryable: bool,
    /// What happened, for the log.
    pub message: String,
}

impl DeliveryError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A message for an SQS queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsDelivery {
    /// The body: the JSON envelope, or the message itself with raw delivery.
    pub body: String,
    /// SQS message attributes (raw delivery only).
    pub message_attributes: MessageAttributes,
    /// FIFO queues (and fair standard queues): the message group.
    pub group_id: Option<String>,
    /// FIFO queues: the deduplication id.
    pub dedup_id: Option<String>,
    /// The topic the message comes from (the `aws:SourceArn` of the send).
    pub topic_arn: String,
}

/// The targets outside this crate: the binary sends to its queues and invokes its
/// functions, each time acting as `sns.amazonaws.com` for the topic.
pub trait Deliverer: Send + Sync + std::fmt::Debug {
    /// Sends `delivery` to the SQS queue `queue_arn`.
    fn to_sqs(
        &self,
        queue_arn: &str,
        delivery: SqsDelivery,
    ) -> BoxFuture<'_, Result<(), DeliveryError>>;

    /// Invokes the Lambda function `function_arn` asynchronously with `payload` (the SNS
    /// event JSON), continuing the publisher's trace (`trace`).
    fn to_lambda(
        &self,
        function_arn: &str,
        payload: Vec<u8>,
        topic_arn: &str,
        trace: Option<&str>,
    ) -> BoxFuture<'_, Result<(), DeliveryError>>;
}

/// An HTTP/S retry policy (`healthyRetryPolicy`), in SNS's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    /// Delay of the pre-backoff phase and start of the backoff, seconds.
    pub min_delay_target: u32,
    /// End of the backoff and delay of the post-backoff phase, seconds.
    pub max_delay_target: u32,
    /// Retries in all.
    pub num_retries: u32,
    /// Retries at the maximum delay, after the backoff.
    pub num_max_delay_retries: u32,
    /// Retries without delay, first.
    pub num_no_delay_retries: u32,
    /// Retries at the minimum delay, before the backoff.
    pub num_min_delay_retries: u32,
    /// `linear`, `arithmetic`, `geometric` or `exponential`.
    pub backoff_function: String,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay_target: 20,
            max_delay_target: 20,
            num_retries: 3,
            num_max_delay_retries: 0,
            num_no_delay_retries: 0,
            num_min_delay_retries: 0,
            backoff_function: "linear".into(),
        }
    }
}

fn policy_error(text: impl std::fmt::Display) -> SnsError {
    SnsError::invalid(format!("DeliveryPolicy: {text}"))
}

impl RetryPolicy {
    fn parse(value: &Value, field: &str) -> Result<Self, SnsError> {
        let policy: RetryPolicy = serde_json::from_value(value.clone())
            .map_err(|e| policy_error(format!("{field}: {e}")))?;
        let check = |ok: bool, text: &str| {
            if ok {
                Ok(())
            } else {
                Err(policy_error(format!("{field}.{text}")))
            }
        };
        check(
            policy.num_retries <= 100,
            "numRetries must be between 0 and 100",
        )?;
        check(
            policy.min_delay_target >= 1,
            "minDelayTarget must be at least 1",
        )?;
        check(
            policy.max_delay_target <= 3600,
            "maxDelayTarget must be at most 3600",
        )?;
        check(
            policy.min_delay_target <= policy.max_delay_target,
            "minDelayTarget must be less than or equal to maxDelayTarget",
        )?;
        check(
            policy.num_no_delay_retries + policy.num_min_delay_retries + policy.num_max_delay_retries
                <= policy.num_retries,
            "numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must not exceed numRetries",
        )?;
        check(
            matches!(
                policy.backoff_function.as_str(),
                "linear" | "arithmetic" | "geometric" | "exponential"
            ),
            "backoffFunction must be one of linear, arithmetic, geometric, exponential",
        )?;
        let total: f64 = (1..=policy.num_retries)
            .filter_map(|n| policy.delay_seconds(n))
            .sum();
        check(
            total <= 3600.0,
            "total retry time must not exceed 3600 seconds",
        )?;
        Ok(policy)
    }

    /// The delay before retry `retry` (1-based), seconds; `None` when there is no such
    /// retry.
    pub fn delay_seconds(&self, retry: u32) -> Option<f64> {
        if retry == 0 || retry > self.num_retries {
            return None;
        }
        let (min, max) = (
            f64::from(self.min_delay_target),
            f64::from(self.max_delay_target),
        );
        let no_delay = self.num_no_delay_retries;
        let pre = no_delay + self.num_min_delay_retries;
        let backoff = self
            .num_retries
            .saturating_sub(pre + self.num_max_delay_retries);
        Some(if retry <= no_delay {
            0.0
        } else if retry <= pre {
            min
        } else if retry <= pre + backoff {
            let t = f64::from(retry - pre) / f64::from(backoff.max(1));
            match self.backoff_function.as_str() {
                "arithmetic" => min + (max - min) * t * t,
                "geometric" | "exponential" => min * (max / min).powf(t),
                _ => min + (max - min) * t,
            }
        } else {
            max
        })
    }
}

/// The HTTP/S part of a topic's `DeliveryPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicHttpPolicy {
    /// `defaultHealthyRetryPolicy`.
    pub retry: Option<RetryPolicy>,
    /// `disableSubscriptionOverrides`.
    pub disable_overrides: bool,
    /// `defaultRequestPolicy.headerContentType`.
    pub content_type: Option<String>,
}

/// A subscription's `DeliveryPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionHttpPolicy {
    /// `healthyRetryPolicy`.
    pub retry: Option<RetryPolicy>,
    /// `requestPolicy.headerContentType`.
    pub content_type: Option<String>,
}

fn object<'a>(
    value: &'a Value,
    field: &str,
) -> Result<&'a serde_json::Map<String, Value>, SnsError> {
    value
        .as_object()
        .ok_or_else(|| policy_error(format!("{field} must be a JSON object")))
}

fn content_type(value: Option<&Value>, field: &str) -> Result<Option<String>, SnsError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(request) => match object(request, field)?.get("headerContentType") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
            Some(_) => Err(policy_error(format!(
                "{field}.headerContentType must be a non-empty string"
            ))),
        },
    }
}

fn throttle(value: Option<&Value>, field: &str) -> Result<(), SnsError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(throttle) => match object(throttle, field)?.get("maxReceivesPerSecond") {
            None => Ok(()),
            Some(n) if n.as_u64().is_some_and(|n| n >= 1) => Ok(()),
            Some(_) => Err(policy_error(format!(
                "{field}.maxReceivesPerSecond must be a positive integer"
            ))),
        },
    }
}

impl TopicHttpPolicy {
    /// Reads and checks a topic's `DeliveryPolicy` (`{"http": {...}}`).
    pub fn parse(text: &str) -> Result<Self, SnsError> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| policy_error("failed to parse JSON"))?;
        let root = object(&value, "DeliveryPolicy")?;
        let Some(http) = root.get("http") else {
            return Ok(TopicHttpPolicy::default());
        };
        let http = object(http, "http")?;
        throttle(
            http.get("defaultThrottlePolicy"),
            "http.defaultThrottlePolicy",
        )?;
        Ok(TopicHttpPolicy {
            retry: http
                .get("defaultHealthyRetryPolicy")
                .map(|v| RetryPolicy::parse(v, "http.defaultHealthyRetryPolicy"))
                .transpose()?,
            disable_overrides: http
                .get("disableSubscriptionOverrides")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            content_type: content_type(
                http.get("defaultRequestPolicy"),
                "http.defaultRequestPolicy",
            )?,
        })
    }
}

impl SubscriptionHttpPolicy {
    /// Reads and checks a subscription's `DeliveryPolicy`.
    pub fn parse(text: &str) -> Result<Self, SnsError> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| policy_error("failed to parse JSON"))?;
        let root = object(&value, "DeliveryPolicy")?;
        throttle(root.get("throttlePolicy"), "throttlePolicy")?;
        Ok(SubscriptionHttpPolicy {
            retry: root
                .get("healthyRetryPolicy")
                .map(|v| RetryPolicy::parse(v, "healthyRetryPolicy"))
                .transpose()?,
            content_type: content_type(root.get("requestPolicy"), "requestPolicy")?,
        })
    }
}

/// The `Content-Type` SNS posts with by default.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// The effective HTTP/S policy of a subscription: its own unless the topic disables
/// overrides, then the topic's, then SNS's default.
pub fn effective_http_policy(
    topic: Option<&str>,
    subscription: Option<&str>,
) -> (RetryPolicy, String) {
    let topic = topic
        .and_then(|t| TopicHttpPolicy::parse(t).ok())
        .unwrap_or_default();
    let own = subscription
        .filter(|_| !topic.disable_overrides)
        .and_then(|s| SubscriptionHttpPolicy::parse(s).ok())
        .unwrap_or_default();
    (
        own.retry.or(topic.retry).unwrap_or_default(),
        own.content_type
            .or(topic.content_type)
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
    )
}

/// A topic's `EffectiveDeliveryPolicy`.
pub fn topic_effective_policy(delivery_policy: Option<&str>) -> String {
    let topic = delivery_policy
        .and_then(|t| TopicHttpPolicy::parse(t).ok())
        .unwrap_or_default();
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Http {
        default_healthy_retry_policy: RetryPolicy,
        disable_subscription_overrides: bool,
        default_request_policy: Request,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request {
        header_content_type: String,
    }
    serde_json::to_string(&serde_json::json!({"http": Http {
        default_healthy_retry_policy: topic.retry.unwrap_or_default(),
        disable_subscription_overrides: topic.disable_overrides,
        default_request_policy: Request {
            header_content_type: topic.content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into()),
        },
    }}))
    .unwrap_or_default()
}

/// A subscription's `EffectiveDeliveryPolicy`.
pub fn subscription_effective_policy(
    protocol: &str,
    topic: Option<&str>,
    subscription: Option<&str>,
) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Effective {
        healthy_retry_policy: RetryPolicy,
        sickly_retry_policy: Option<()>,
        throttle_policy: Option<()>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_policy: Option<Value>,
        guaranteed: bool,
    }
    let http = matches!(protocol, "http" | "https");
    let (retry, content_type) = if http {
        effective_http_policy(topic, subscription)
    } else {
        (RetryPolicy::default(), DEFAULT_CONTENT_TYPE.to_owned())
    };
    serde_json::to_string(&Effective {
        healthy_retry_policy: retry,
        sickly_retry_policy: None,
        throttle_policy: None,
        request_policy: http.then(|| serde_json::json!({"headerContentType": content_type})),
        guaranteed: false,
    })
    .unwrap_or_default()
}

/// SNS's schedule for AWS-managed endpoints (SQS, Lambda): 3 immediate retries, 2 one
/// second apart, 10 backing off exponentially from 1 to 20 seconds, then every 20
/// seconds. Returns the delay before retry `retry` (1-based), seconds.
pub fn managed_delay_seconds(retry: u32) -> f64 {
    match retry {
        0..=3 => 0.0,
        4..=5 => 1.0,
        6..=15 => 20f64.powf(f64::from(retry - 5) / 10.0),
        _ => 20.0,
    }
}

/// Renders what each protocol receives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Renderer<'a> {
    pub signer: &'a Signer,
    pub public_url: &'a str,
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// `{"Type":"String","Value":"v"}` per attribute, as SNS shows them in envelopes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeJson {
    r#type: String,
    value: String,
}

fn attributes_json(attributes: &MessageAttributes) -> BTreeMap<&str, AttributeJson> {
    attributes
        .iter()
        .map(|(name, a)| {
            (
                name.as_str(),
                AttributeJson {
                    r#type: a.data_type.clone(),
                    value: a.display_value(),
                },
            )
        })
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LambdaEvent<'a> {
    records: [LambdaRecord<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LambdaRecord<'a> {
    event_version: &'a str,
    event_subscription_arn: &'a str,
    event_source: &'a str,
    sns: LambdaSns<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LambdaSns<'a> {
    r#type: &'a str,
    message_id: &'a str,
    topic_arn: &'a str,
    subject: Option<&'a str>,
    message: &'a str,
    timestamp: &'a str,
    signature_version: &'a str,
    signature: String,
    signing_cert_url: String,
    unsubscribe_url: String,
    message_attributes: BTreeMap<&'a str, AttributeJson>,
}

impl Renderer<'_> {
    /// `SigningCertURL`.
    pub fn certificate_url(&self) -> String {
        format!(
            "{}/_gust/sns/SimpleNotificationService-gust.pem",
            self.public_url.trim_end_matches('/')
        )
    }

    /// `UnsubscribeURL`.
    pub fn unsubscribe_url(&self, subscription_arn: &str) -> String {
        format!(
            "{}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}",
            self.public_url.trim_end_matches('/')
        )
    }

    /// `SubscribeURL`.
    pub fn subscribe_url(&self, topic_arn: &str, token: &str) -> String {
        format!(
            "{}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token={token}",
            self.public_url.trim_end_matches('/')
        )
    }

    fn signature(&self, message: &StoredMessage, text: &str) -> String {
        self.signer.sign(
            &message.signature_version,
            &canonical_notification(
                text,
                &message.message_id,
                message.subject.as_deref(),
                &message.timestamp,
                &message.topic_arn,
                &message.kind,
            ),
        )
    }

    /// The JSON envelope SQS and HTTP/S endpoints receive, formatted as SNS formats it.
    /// FIFO messages carry a `SequenceNumber` and no signature.
    pub fn envelope(&self, message: &StoredMessage, text: &str, subscription_arn: &str) -> String {
        if message.kind != "Notification" {
            return self.confirmation(message, text);
        }
        let mut fields: Vec<(&str, String)> = vec![
            ("Type", json_string(&message.kind)),
            ("MessageId", json_string(&message.message_id)),
        ];
        if let Some(sequence) = &message.sequence_number {
            fields.push(("SequenceNumber", json_string(sequence)));
        }
        fields.push(("TopicArn", json_string(&message.topic_arn)));
        if let Some(subject) = &message.subject {
            fields.push(("Subject", json_string(subject)));
        }
        fields.push(("Message", json_string(text)));
        fields.push(("Timestamp", json_string(&message.timestamp)));
        if message.sequence_number.is_none() {
            fields.push(("SignatureVersion", json_string(&message.signature_version)));
            fields.push(("Signature", json_string(&self.signature(message, text))));
            fields.push(("SigningCertURL", json_string(&self.certificate_url())));
        }
        fields.push((
            "UnsubscribeURL",
            json_string(&self.unsubscribe_url(subscription_arn)),
        ));
        if !message.attributes.is_empty() {
            let lines: Vec<String> = attributes_json(&message.attributes)
                .into_iter()
                .map(|(name, value)| {
                    format!(
                        "    {} : {}",
                        json_string(name),
                        serde_json::to_string(&value).unwrap_or_default()
                    )
                })
                .collect();
            fields.push((
                "MessageAttributes",
                format!("{{\n{}\n  }}", lines.join(",\n")),
            ));
        }
        pretty(&fields)
    }

    fn confirmation(&self, message: &StoredMessage, text: &str) -> String {
        let token = message.token.as_deref().unwrap_or_default();
        let subscribe_url = self.subscribe_url(&message.topic_arn, token);
        let signature = self.signer.sign(
            &message.signature_version,
            &canonical_confirmation(
                text,
                &message.message_id,
                &subscribe_url,
                &message.timestamp,
                token,
                &message.topic_arn,
                &message.kind,
            ),
        );
        pretty(&[
            ("Type", json_string(&message.kind)),
            ("MessageId", json_string(&message.message_id)),
            ("Token", json_string(token)),
            ("TopicArn", json_string(&message.topic_arn)),
            ("Message", json_string(text)),
            ("SubscribeURL", json_string(&subscribe_url)),
            ("Timestamp", json_string(&message.timestamp)),
            ("SignatureVersion", json_string(&message.signature_version)),
            ("Signature", json_string(&signature)),
            ("SigningCertURL", json_string(&self.certificate_url())),
        ])
    }

    /// The event a Lambda function receives.
    pub fn lambda_event(
        &self,
        message: &StoredMessage,
        text: &str,
        subscription_arn: &str,
    ) -> Vec<u8> {
        let event = LambdaEvent {
            records: [LambdaRecord {
                event_version: "1.0",
                event_subscription_arn: subscription_arn,
                event_source: "aws:sns",
                sns: LambdaSns {
                    r#type: &message.kind,
                    message_id: &message.message_id,
                    topic_arn: &message.topic_arn,
                    subject: message.subject.as_deref(),
                    message: text,
                    timestamp: &message.timestamp,
                    signature_version: &message.signature_version,
                    signature: self.signature(message, text),
                    signing_cert_url: self.certificate_url(),
                    unsubscribe_url: self.unsubscribe_url(subscription_arn),
                    message_attributes: attributes_json(&message.attributes),
                },
            }],
        };
        serde_json::to_vec(&event).unwrap_or_default()
    }
}

/// `{\n  "Name" : value,\n ...\n}`, SNS's layout.
fn pretty(fields: &[(&str, String)]) -> String {
    let lines: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("  {} : {}", json_string(name), value))
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

/// Posts to HTTP endpoints. HTTPS endpoints fail permanently: this server has no TLS
/// client.
#[derive(Debug)]
pub(crate) struct HttpSender {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    timeout: Duration,
}

impl HttpSender {
    pub fn new(timeout: Duration) -> Self {
        HttpSender {
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
            timeout,
        }
    }

    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<(), DeliveryError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("invalid endpoint {url}: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(DeliveryError::permanent(format!(
                "cannot deliver to {url}: this server has no TLS client, only http:// endpoints are reachable"
            )));
        }
        let mut request = hyper::Request::post(uri)
            .header("User-Agent", "Amazon Simple Notification Service Agent");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DeliveryError::permanent(format!("bad request for {url}: {e}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| DeliveryError::retryable(format!("{url} did not answer in time")))?
            .map_err(|e| DeliveryError::retryable(format!("{url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::retryable(format!("{url} answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_seconds(1), Some(20.0));
        assert_eq!(policy.delay_seconds(3), Some(20.0));
        assert_eq!(policy.delay_seconds(4), None);
        let custom = RetryPolicy {
            min_delay_target: 1,
            max_delay_target: 10,
            num_retries: 6,
            num_no_delay_retries: 1,
            num_min_delay_retries: 1,
            num_max_delay_retries: 1,
            backoff_function: "linear".into(),
        };
        let delays: Vec<f64> = (1..=6).filter_map(|n| custom.delay_seconds(n)).collect();
        assert_eq!(delays, vec![0.0, 1.0, 4.0, 7.0, 10.0, 10.0]);
        assert_eq!(managed_delay_seconds(1), 0.0);
        assert_eq!(managed_delay_seconds(5), 1.0);
        assert!((managed_delay_seconds(15) - 20.0).abs() < 1e-9);
        assert_eq!(managed_delay_seconds(1000), 20.0);
    }

    #[test]
    fn delivery_policies_are_checked() {
        let ok = r#"{"healthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":30,"numRetries":10,"backoffFunction":"exponential"},"requestPolicy":{"headerContentType":"application/json"}}"#;
        let parsed = SubscriptionHttpPolicy::parse(ok).unwrap();
        assert_eq!(parsed.content_type.as_deref(), Some("application/json"));
        assert_eq!(parsed.retry.unwrap().num_retries, 10);
        for bad in [
            r#"{"healthyRetryPolicy":{"numRetries":101}}"#,
            r#"{"healthyRetryPolicy":{"minDelayTarget":30,"maxDelayTarget":5}}"#,
            r#"{"healthyRetryPolicy":{"backoffFunction":"random"}}"#,
            r#"{"healthyRetryPolicy":{"minDelayTarget":3600,"maxDelayTarget":3600,"numRetries":2}}"#,
            "[]",
            "nope",
        ] {
            assert!(SubscriptionHttpPolicy::parse(bad).is_err(), "{bad}");
        }
        let topic = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":2,"numRetries":5},"disableSubscriptionOverrides":true}}"#;
        let (retry, content_type) = effective_http_policy(Some(topic), Some(ok));
        assert_eq!(retry.num_retries, 5);
        assert_eq!(content_type, DEFAULT_CONTENT_TYPE);
        let effective: Value = serde_json::from_str(&topic_effective_policy(None)).unwrap();
        assert_eq!(
            effective["http"]["defaultHealthyRetryPolicy"]["numRetries"],
            3
        );
    }
}

//! Where other services deliver: this server's queues, topics and functions. SNS reaches
//! queues and functions as `sns.amazonaws.com` for the topic (a queue or function of
//! another account only where its policy allows that, as on AWS); Lambda's event queue
//! runs functions and sends their outcomes to destinations (`events.rs`). One value serves
//! both, so a queue send or an event for a function is done one way.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use gust_model::policy::Caller as Principal;
use gust_sns::{BoxFuture, DeliveryError, SqsDelivery};

/// SNS's `SenderId` on the messages it sends to queues.
const SNS_SENDER_ID: &str = "AIDAIT2UOQQY3AUEKVGXU";

/// The server's queues, topics and every account's functions.
#[derive(Debug)]
pub struct Targets {
    pub planes: HashMap<String, gust_api::Plane>,
    pub sqs: Arc<gust_sqs::Sqs>,
    /// Set once topics start (after the listener is bound).
    pub sns: OnceLock<Arc<gust_sns::Sns>>,
    /// Lambda's event queue: functions are invoked asynchronously through it.
    pub events: OnceLock<Weak<gust_async::AsyncInvoker>>,
    /// EventBridge, for destinations that are buses (set once it is open; weak, as it
    /// delivers through these targets).
    pub eventbridge: OnceLock<Weak<gust_events::Events>>,
    /// Object storage, for failure destinations that are buckets.
    pub s3: OnceLock<Arc<gust_s3::S3>>,
}

/// Why a delivery to a function failed.
pub enum EventError {
    /// Worth trying again.
    Retry(String),
    /// It will not work (no such function, not allowed).
    Refused(String),
}

fn sns_for(topic_arn: &str) -> (String, Principal) {
    let account = topic_arn.split(':').nth(4).unwrap_or_default().to_owned();
    let principal = Principal::Service {
        service: "sns.amazonaws.com".into(),
        source_arn: Some(topic_arn.to_owned()),
        source_account: Some(account.clone()),
    };
    (account, principal)
}

impl Targets {
    /// Sends one message to the queue `queue_arn` as `caller`.
    pub async fn send_to_queue(
        &self,
        queue_arn: &str,
        caller: &gust_sqs::Caller,
        message: gust_sqs::message::Outgoing,
    ) -> Result<(), gust_sqs::SqsError> {
        let queue = self
            .sqs
            .parse_arn(queue_arn)
            .ok_or(gust_sqs::SqsError::QueueDoesNotExist)?;
        let mut results = self.sqs.send(caller, &queue, vec![message]).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(gust_sqs::SqsError::Internal("no result".into())))
            .map(|_| ())
    }

    /// Queues an event for the function `function_arn` on behalf of `principal`, whose
    /// policy must allow it.
    pub async fn enqueue_event(
        &self,
        function_arn: &str,
        principal: &Principal,
        payload: String,
        trace: Option<String>,
    ) -> Result<(), EventError> {
        let account = function_arn.split(':').nth(4).unwrap_or_default();
        let plane = self
            .planes
            .get(account)
            .ok_or_else(|| EventError::Refused(format!("Function not found: {function_arn}")))?;
        let reference = plane
            .service_may_invoke(function_arn, principal)
            .await
            .map_err(|error| match error {
                gust_api::ServiceInvokeError::Failed(cause) => EventError::Retry(cause),
                other => EventError::Refused(other.to_string()),
            })?;
        let events = self
            .events
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| EventError::Retry("the event queue is not running".into()))?;
        events
            .enqueue(gust_async::AsyncEvent {
                account: account.to_owned(),
                function: reference.name.to_string(),
                qualifier: reference.qualifier.as_ref().map(ToString::to_string),
                payload,
                request_id: uuid::Uuid::new_v4().to_string(),
                trace,
            })
            .await
            .map_err(|e| EventError::Retry(e.to_string()))
    }
}

impl gust_sns::Deliverer for Targets {
    fn to_sqs(
        &self,
        queue_arn: &str,
        delivery: SqsDelivery,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let queue_arn = queue_arn.to_owned();
        Box::pin(async move {
            let (account, principal) = sns_for(&delivery.topic_arn);
            let caller = gust_sqs::Caller {
                account,
                principal,
                sender_id: SNS_SENDER_ID.into(),
            };
            let attributes = delivery
                .message_attributes
                .into_iter()
                .map(|(name, a)| {
                    (
                        name,
                        gust_sqs::message::AttributeValue {
                            data_type: a.data_type,
                            string_value: a.string_value,
                            binary_value: a.binary_value,
                        },
                    )
                })
                .collect();
            let message = gust_sqs::message::Outgoing {
                body: delivery.body,
                attributes,
                group_id: delivery.group_id,
                deduplication_id: delivery.dedup_id,
                ..Default::default()
            };
            self.send_to_queue(&queue_arn, &caller, message)
                .await
                .map_err(|error| match error {
                    gust_sqs::SqsError::Internal(message) => DeliveryError::retryable(message),
                    other => DeliveryError::permanent(format!("{}: {other}", other.query_code())),
                })
        })
    }

    fn to_lambda(
        &self,
        function_arn: &str,
        payload: Vec<u8>,
        topic_arn: &str,
        trace: Option<&str>,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let (function_arn, topic_arn) = (function_arn.to_owned(), topic_arn.to_owned());
        let trace = trace.map(str::to_owned);
        Box::pin(async move {
            // As on AWS: SNS invokes asynchronously, and the function's policy must allow it.
            let (_, principal) = sns_for(&topic_arn);
            let payload = String::from_utf8_lossy(&payload).into_owned();
            self.enqueue_event(&function_arn, &principal, payload, trace)
                .await
                .map_err(|error| match error {
                    EventError::Retry(cause) => DeliveryError::retryable(cause),
                    EventError::Refused(cause) => DeliveryError::permanent(cause),
                })
        })
    }
}

/// EventBridge's rules and Scheduler's schedules deliver through the same targets.
impl gust_model::targets::Deliver for Targets {
    fn check<'a>(
        &'a self,
        delivery: gust_model::targets::Delivery<'a>,
    ) -> gust_model::targets::BoxFuture<'a, Result<(), gust_model::targets::DeliveryError>> {
        use gust_model::targets::DeliveryError as Failure;
        let target = delivery.target_arn;
        if target.split(':').nth(2) != Some("lambda") {
            return self.deliver(delivery);
        }
        // A function is not invoked to be checked: its policy must allow the service.
        Box::pin(async move {
            let account = target.split(':').nth(4).unwrap_or_default();
            let plane = self
                .planes
                .get(account)
                .ok_or_else(|| Failure::Fail(format!("Function not found: {target}")))?;
            let principal = Principal::Service {
                service: delivery.principal.service().into(),
                source_arn: Some(delivery.source_arn.to_owned()),
                source_account: Some(delivery.account.to_owned()),
            };
            plane
                .service_may_invoke(target, &principal)
                .await
                .map(|_| ())
                .map_err(|error| Failure::Fail(error.to_string()))
        })
    }

    fn deliver<'a>(
        &'a self,
        delivery: gust_model::targets::Delivery<'a>,
    ) -> gust_model::targets::BoxFuture<'a, Result<(), gust_model::targets::DeliveryError>> {
        use gust_model::targets::{DeliveryError as Failure, Principal as Router};
        Box::pin(async move {
            let target = delivery.target_arn;
            let target_account = target.split(':').nth(4).unwrap_or_default();
            // A rule reaches a target as `events.amazonaws.com` for the rule, so the target's
            // policy decides; a schedule acts through its role, which in Gust (no IAM) is its
            // own account's.
            let from_s3 = delivery.principal == Router::S3;
            let principal = match delivery.principal {
                router @ (Router::Events | Router::S3) => Principal::Service {
                    service: router.service().into(),
                    source_arn: Some(delivery.source_arn.to_owned()),
                    source_account: Some(delivery.account.to_owned()),
                },
                Router::Scheduler => {
                    if target_account != delivery.account {
                        return Err(Failure::Fail(format!(
                            "{target} is in another account; a schedule's role reaches its own account only"
                        )));
                    }
                    Principal::Account(delivery.account.to_owned())
                }
            };
            match target.split(':').nth(2).unwrap_or_default() {
                "lambda" => self
                    .enqueue_event(target, &principal, delivery.payload, None)
                    .await
                    .map_err(|error| match error {
                        EventError::Retry(cause) => Failure::Retry(cause),
                        EventError::Refused(cause) => Failure::Fail(cause),
                    }),
                "sqs" => {
                    let fifo = target.ends_with(".fifo");
                    let caller = gust_sqs::Caller {
                        account: delivery.account.to_owned(),
                        principal,
                        sender_id: format!("AROAEVENTS:{}", delivery.account),
                    };
                    // A FIFO queue deduplicates on what the router gives (EventBridge: the
                    // event's id), else on its content setting.
                    let deduplication_id = delivery.deduplication_id.filter(|_| fifo);
                    let attributes = delivery
                        .attributes
                        .into_iter()
                        .map(|(name, value)| {
                            (
                                name,
                                gust_sqs::message::AttributeValue {
                                    data_type: "String".into(),
                                    string_value: Some(value),
                                    binary_value: None,
                                },
                            )
                        })
                        .collect();
                    let message = gust_sqs::message::Outgoing {
                        body: delivery.payload,
                        attributes,
                        group_id: delivery.message_group_id.map(str::to_owned),
                        deduplication_id,
                        ..Default::default()
                    };
                    self.send_to_queue(target, &caller, message)
                        .await
                        .map_err(|error| match error {
                            gust_sqs::SqsError::Internal(cause) => Failure::Retry(cause),
                            other => Failure::Fail(format!("{}: {other}", other.query_code())),
                        })
                }
                "sns" => {
                    let sns = self
                        .sns
                        .get()
                        .ok_or_else(|| Failure::Retry("topics have not started".into()))?;
                    let caller = gust_sns::Caller {
                        account: delivery.account.to_owned(),
                        principal,
                    };
                    let request = gust_sns::PublishRequest {
                        topic_arn: Some(target.to_owned()),
                        message: delivery.payload,
                        group_id: delivery.message_group_id.map(str::to_owned),
                        // S3's notifications come with this subject.
                        subject: from_s3.then(|| "Amazon S3 Notification".to_owned()),
                        ..Default::default()
                    };
                    sns.publish(&caller, request)
                        .await
                        .map(|_| ())
                        .map_err(|error| Failure::Fail(error.to_string()))
                }
                _ => Err(Failure::Fail(format!(
                    "Gust cannot deliver to {target}: functions, queues and topics are the targets it has"
                ))),
            }
        })
    }
}

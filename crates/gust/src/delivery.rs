//! Where SNS delivers: this server's queues and functions, each time acting as
//! `sns.amazonaws.com` for the topic (a queue or function of another account is reached
//! only where its policy allows that, as on AWS).

use std::collections::HashMap;
use std::sync::Arc;

use gust_model::policy::Caller as Principal;
use gust_sns::{BoxFuture, DeliveryError, SqsDelivery};

/// SNS's `SenderId` on the messages it sends to queues.
const SNS_SENDER_ID: &str = "AIDAIT2UOQQY3AUEKVGXU";

/// The server's queues and every account's functions.
#[derive(Debug)]
pub struct Targets {
    pub planes: HashMap<String, gust_api::Plane>,
    pub sqs: Arc<gust_sqs::Sqs>,
    /// Lambda's event queue: functions subscribed to topics are invoked through it.
    pub events: std::sync::OnceLock<std::sync::Weak<gust_async::AsyncInvoker>>,
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

impl gust_sns::Deliverer for Targets {
    fn to_sqs(
        &self,
        queue_arn: &str,
        delivery: SqsDelivery,
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let queue_arn = queue_arn.to_owned();
        Box::pin(async move {
            let queue = self.sqs.parse_arn(&queue_arn).ok_or_else(|| {
                DeliveryError::permanent(format!("{queue_arn} is not a queue of this server"))
            })?;
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
            let classify = |error: gust_sqs::SqsError| match error {
                gust_sqs::SqsError::Internal(message) => DeliveryError::retryable(message),
                other => DeliveryError::permanent(format!("{}: {other}", other.query_code())),
            };
            let mut results = self
                .sqs
                .send(&caller, &queue, vec![message])
                .await
                .map_err(classify)?;
            match results.pop() {
                Some(Ok(_)) => Ok(()),
                Some(Err(error)) => Err(classify(error)),
                None => Err(DeliveryError::retryable("no result from the queue")),
            }
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
            let account = function_arn
                .split(':')
                .nth(4)
                .unwrap_or_default()
                .to_owned();
            let plane = self.planes.get(&account).ok_or_else(|| {
                DeliveryError::permanent(format!("Function not found: {function_arn}"))
            })?;
            let (_, principal) = sns_for(&topic_arn);
            // As on AWS: SNS invokes asynchronously, and the function's policy must allow it.
            let reference = plane
                .service_may_invoke(&function_arn, &principal)
                .await
                .map_err(|error| match error {
                    gust_api::ServiceInvokeError::Failed(cause) => DeliveryError::retryable(cause),
                    other => DeliveryError::permanent(other.to_string()),
                })?;
            let events = self
                .events
                .get()
                .and_then(std::sync::Weak::upgrade)
                .ok_or_else(|| DeliveryError::retryable("the event queue is not running"))?;
            events
                .enqueue(gust_async::AsyncEvent {
                    account,
                    function: reference.name.to_string(),
                    qualifier: reference.qualifier.as_ref().map(ToString::to_string),
                    payload: String::from_utf8_lossy(&payload).into_owned(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    trace,
                })
                .await
                .map_err(|e| DeliveryError::retryable(e.to_string()))
        })
    }
}

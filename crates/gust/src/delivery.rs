//! Where SNS delivers: this server's queues and functions, each time acting as
//! `sns.amazonaws.com` for the topic (a queue or function of another account is reached
//! only where its policy allows that, as on AWS).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gust_model::policy::Caller as Principal;
use gust_sns::{BoxFuture, DeliveryError, SqsDelivery};

/// SNS's `SenderId` on the messages it sends to queues.
const SNS_SENDER_ID: &str = "AIDAIT2UOQQY3AUEKVGXU";
/// Retries of a function that fails, and their delays (Lambda's asynchronous invocation
/// retries twice; its own delays are one and two minutes).
const FUNCTION_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// The server's queues and every account's functions.
#[derive(Debug)]
pub struct Targets {
    pub planes: HashMap<String, gust_api::Plane>,
    pub sqs: Arc<gust_sqs::Sqs>,
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
    ) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let (function_arn, topic_arn) = (function_arn.to_owned(), topic_arn.to_owned());
        Box::pin(async move {
            let account = function_arn.split(':').nth(4).unwrap_or_default();
            let plane = self.planes.get(account).ok_or_else(|| {
                DeliveryError::permanent(format!("Function not found: {function_arn}"))
            })?;
            let (_, principal) = sns_for(&topic_arn);
            let payload = bytes::Bytes::from(payload);
            let mut delays = FUNCTION_RETRY_DELAYS.iter();
            loop {
                match plane
                    .invoke_for_service(&function_arn, payload.clone(), &principal)
                    .await
                {
                    Ok(outcome) if !outcome.function_error => return Ok(()),
                    // The event reached the function, which failed: retried as Lambda
                    // retries an asynchronous event, then it has been delivered.
                    Ok(outcome) => match delays.next() {
                        Some(delay) => tokio::time::sleep(*delay).await,
                        None => {
                            tracing::warn!(
                                function = %function_arn, topic = %topic_arn,
                                request_id = %outcome.request_id,
                                "an SNS event failed in its function after 3 attempts"
                            );
                            return Ok(());
                        }
                    },
                    Err(gust_api::ServiceInvokeError::Throttled) => {
                        return Err(DeliveryError::retryable("Rate Exceeded."))
                    }
                    Err(gust_api::ServiceInvokeError::Failed(cause)) => {
                        return Err(DeliveryError::retryable(cause))
                    }
                    Err(error) => return Err(DeliveryError::permanent(error.to_string())),
                }
            }
        })
    }
}

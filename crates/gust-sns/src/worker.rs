//! The delivery workers: one dispatcher task takes due deliveries from the store and runs
//! each in its own task (at most `max_in_flight` at once); an attempt's outcome is stored
//! before its delivery is looked at again. Success removes the delivery; a failure is
//! retried on its schedule, then sent to the subscription's dead-letter queue, or logged
//! as dropped when there is none.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::delivery::{managed_delay_seconds, DeliveryError, SqsDelivery, DEFAULT_CONTENT_TYPE};
use crate::message::{text_for, MessageAttributes};
use crate::service::{Sns, PENDING_FOR_MS};
use crate::store::Delivery;

/// Expired deduplication keys and stale pending subscriptions are swept this often.
const EXPIRE_EVERY_MS: i64 = 60_000;

/// What to do with a delivery after an attempt.
#[derive(Debug, PartialEq)]
enum Next {
    Finish,
    Retry {
        attempts: u32,
        at_ms: i64,
        dead_letter_stage: bool,
    },
}

impl Sns {
    /// Starts the delivery workers on the current tokio runtime. Deliveries left in the
    /// store by an earlier run are resumed at their scheduled times. The workers stop
    /// when the service is dropped. Starting twice does nothing more.
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        tokio::spawn(dispatch(Arc::downgrade(self), Arc::clone(&self.wake)));
    }

    fn after(&self, seconds: f64) -> i64 {
        let base_ms = self.config.retry_base.as_secs_f64() * 1000.0;
        self.now_ms() + (seconds * base_ms).round() as i64
    }

    /// The delay before the next attempt after `attempts` failed ones, if any is left.
    fn retry_at(&self, delivery: &Delivery, attempts: u32) -> Option<i64> {
        match &delivery.target.retry {
            Some(policy) if !delivery.dead_letter_stage => {
                policy.delay_seconds(attempts).map(|s| self.after(s))
            }
            _ => (attempts < self.config.max_attempts)
                .then(|| self.after(managed_delay_seconds(attempts))),
        }
    }

    async fn attempt(&self, delivery: &Delivery) -> Next {
        let result = if delivery.dead_letter_stage {
            self.send_dead_letter(delivery).await
        } else {
            self.send(delivery).await
        };
        let (message, target) = (&delivery.message, &delivery.target);
        let error = match result {
            Ok(()) => return Next::Finish,
            Err(error) => error,
        };
        let attempts = delivery.attempts + 1;
        if let Some(at_ms) = error
            .retryable
            .then(|| self.retry_at(delivery, attempts))
            .flatten()
        {
            tracing::warn!(
                message_id = %message.message_id,
                subscription = %target.subscription_arn,
                attempts, %error, dead_letter = delivery.dead_letter_stage,
                "SNS delivery failed; will retry"
            );
            return Next::Retry {
                attempts,
                at_ms,
                dead_letter_stage: delivery.dead_letter_stage,
            };
        }
        match (&target.dead_letter, delivery.dead_letter_stage) {
            (Some(queue), false) if message.kind == "Notification" => {
                tracing::warn!(
                    message_id = %message.message_id,
                    subscription = %target.subscription_arn,
                    dead_letter_queue = %queue, attempts, %error,
                    "SNS delivery failed for good; moving the message to the dead-letter queue"
                );
                Next::Retry {
                    attempts: 0,
                    at_ms: self.now_ms(),
                    dead_letter_stage: true,
                }
            }
            (dead_letter, _) => {
                tracing::error!(
                    message_id = %message.message_id,
                    topic = %message.topic_arn,
                    subscription = %target.subscription_arn,
                    endpoint = %target.endpoint,
                    dead_letter_queue = dead_letter.as_deref().unwrap_or("none"),
                    attempts, %error,
                    "SNS delivery failed for good; message dropped"
                );
                Next::Finish
            }
        }
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let (message, target) = (&delivery.message, &delivery.target);
        let text = text_for(&message.message, message.structured, &target.protocol);
        let renderer = self.renderer();
        let raw = target.raw && message.kind == "Notification";
        match target.protocol.as_str() {
            "sqs" => {
                let (body, message_attributes) = if raw {
                    (text, message.attributes.clone())
                } else {
                    (
                        renderer.envelope(message, &text, &target.subscription_arn),
                        MessageAttributes::new(),
                    )
                };
                let sqs = SqsDelivery {
                    body,
                    message_attributes,
                    group_id: message.group_id.clone(),
                    dedup_id: message.dedup_id.clone(),
                    topic_arn: message.topic_arn.clone(),
                };
                self.deliverer.to_sqs(&target.endpoint, sqs).await
            }
            "lambda" => {
                let payload = renderer.lambda_event(message, &text, &target.subscription_arn);
                self.deliverer
                    .to_lambda(
                        &target.endpoint,
                        payload,
                        &message.topic_arn,
                        message.trace.as_deref(),
                    )
                    .await
            }
            "http" | "https" => {
                let body = if raw {
                    text
                } else {
                    renderer.envelope(message, &text, &target.subscription_arn)
                };
                let mut headers = vec![
                    ("x-amz-sns-message-type", message.kind.clone()),
                    ("x-amz-sns-message-id", message.message_id.clone()),
                    ("x-amz-sns-topic-arn", message.topic_arn.clone()),
                    (
                        "Content-Type",
                        target
                            .content_type
                            .clone()
                            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
                    ),
                ];
                if message.kind != "SubscriptionConfirmation" {
                    headers.push((
                        "x-amz-sns-subscription-arn",
                        target.subscription_arn.clone(),
                    ));
                }
                if raw {
                    headers.push(("x-amz-sns-rawdelivery", "true".into()));
                }
                self.http.post(&target.endpoint, &headers, body).await
            }
            other => Err(DeliveryError::permanent(format!(
                "protocol {other} is not supported"
            ))),
        }
    }

    /// The dead-letter queue gets the JSON envelope SQS subscriptions receive.
    async fn send_dead_letter(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let (message, target) = (&delivery.message, &delivery.target);
        let Some(queue) = &target.dead_letter else {
            return Err(DeliveryError::permanent("no dead-letter queue"));
        };
        let text = text_for(&message.message, message.structured, &target.protocol);
        let body = self
            .renderer()
            .envelope(message, &text, &target.subscription_arn);
        let sqs = SqsDelivery {
            body,
            message_attributes: MessageAttributes::new(),
            group_id: message.group_id.clone(),
            dedup_id: message.dedup_id.clone(),
            topic_arn: message.topic_arn.clone(),
        };
        self.deliverer.to_sqs(queue, sqs).await
    }

    async fn record(&self, id: i64, next: Next) {
        let stored = match next {
            Next::Finish => self.blocking(move |store| store.finish(id)).await,
            Next::Retry {
                attempts,
                at_ms,
                dead_letter_stage,
            } => {
                self.blocking(move |store| store.retry(id, attempts, at_ms, dead_letter_stage))
                    .await
            }
        };
        if let Err(error) = stored {
            // The delivery stays as it was in the store and is attempted again.
            tracing::error!(id, %error, "cannot record an SNS delivery outcome");
        }
    }

    pub(crate) async fn expire(&self) {
        let now = self.now_ms();
        match self
            .blocking(move |store| store.expire(now, now - PENDING_FOR_MS))
            .await
        {
            Ok(topics) => {
                for topic in topics {
                    self.invalidate(&topic);
                }
            }
            Err(error) => tracing::error!(%error, "SNS expiry failed"),
        }
    }
}

/// Deliveries in flight are still in the store, so the dispatcher skips their ids. A
/// task reports its id back when its outcome is committed, and the id is forgotten only
/// before the next look at the store: a look that began earlier cannot start it again.
async fn dispatch(service: Weak<Sns>, wake: Arc<Notify>) {
    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let mut in_flight: HashSet<i64> = HashSet::new();
    let mut last_expiry = i64::MIN;
    loop {
        while let Ok(id) = finished.try_recv() {
            in_flight.remove(&id);
        }
        let Some(sns) = service.upgrade() else { return };
        let now = sns.now_ms();
        if now.saturating_sub(last_expiry) >= EXPIRE_EVERY_MS {
            last_expiry = now;
            sns.expire().await;
        }
        let mut wait = sns.config.poll_interval;
        let busy = in_flight.len();
        let capacity = sns.config.max_in_flight.saturating_sub(busy);
        if capacity > 0 {
            match sns
                .blocking(move |store| store.due(now, capacity + busy))
                .await
            {
                Ok((due, next)) => {
                    let mut started = 0;
                    for delivery in due {
                        if started == capacity {
                            wait = Duration::ZERO;
                            break;
                        }
                        if !in_flight.insert(delivery.id) {
                            continue;
                        }
                        started += 1;
                        let (sns, done) = (Arc::clone(&sns), done.clone());
                        tokio::spawn(async move {
                            let id = delivery.id;
                            let next = sns.attempt(&delivery).await;
                            sns.record(id, next).await;
                            let _ = done.send(id);
                        });
                    }
                    if let Some(next) = next {
                        let until = Duration::from_millis(next.saturating_sub(now).max(0) as u64);
                        wait = wait.min(until);
                    }
                }
                Err(error) => tracing::error!(%error, "cannot read due SNS deliveries"),
            }
        }
        drop(sns);
        tokio::select! {
            Some(id) = finished.recv() => { in_flight.remove(&id); }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

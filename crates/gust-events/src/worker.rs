//! The worker: one dispatcher task fires due scheduled rules, takes due deliveries from the
//! store and attempts each in its own task (at most `max_in_flight` at once); an attempt's
//! outcome is stored before its delivery is looked at again. A delivery leaves the store only
//! when it is done: delivered, sent to its dead-letter queue, or dropped.
//!
//! Retries follow the target's `RetryPolicy`: exponential back-off from `retry_base`, capped
//! at `retry_cap`, with jitter (half the delay fixed, half random); a delivery stops being
//! retried after `MaximumRetryAttempts` retries or once the event is older than
//! `MaximumEventAgeInSeconds`. `DeliveryError::Fail` is not retried. A delivery that failed
//! for good goes to the target's dead-letter queue (the event as the message body) or, with
//! none, is dropped with a warning.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use gust_model::targets::{Delivery as TargetDelivery, DeliveryError, Principal};
use tokio::sync::Notify;

use crate::service::Events;
use crate::sqlite::ms;
use crate::store::{Change, Delivery, Failure};

/// `EXHAUSTED_RETRY_CONDITION` values.
const MAX_ATTEMPTS: &str = "MaximumRetryAttempts";
const MAX_AGE: &str = "MaximumEventAgeInSeconds";

/// A random fraction in [0, 1).
fn random_fraction() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

impl Events {
    /// Starts the worker on the current tokio runtime: deliveries left in the store by an
    /// earlier run are resumed, scheduled rules fire from now on (a time missed while the
    /// server was down fires once, within its targets' retry window). The worker stops when
    /// the service is dropped. Starting twice does nothing more.
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(dispatch(Arc::downgrade(self), Arc::clone(&self.wake)));
    }

    /// The delay before retry number `attempts` (1-based).
    fn backoff_ms(&self, attempts: u32) -> i64 {
        let base = self.config.retry_base.as_millis() as f64;
        let cap = self.config.retry_cap.as_millis() as f64;
        let exponent = attempts.saturating_sub(1).min(40) as i32;
        let delay = (base * 2f64.powi(exponent)).min(cap);
        (delay / 2.0 + random_fraction() * delay / 2.0).round() as i64
    }

    /// Attempts one delivery and says what to store.
    pub(crate) async fn attempt(&self, stored: &Delivery) -> Change {
        let d = &stored.delivery;
        if let Some(failure) = &stored.failure {
            return self.attempt_dead_letter(stored, failure).await;
        }
        let now = ms(self.clock.now());
        let max_age_ms = i64::from(d.max_age_seconds) * 1000;
        if now - d.created_ms > max_age_ms {
            // Resumed after the event grew too old (the server was down).
            return self.failed(
                stored,
                Failure {
                    error_code: "RETRY_EXHAUSTED".into(),
                    error_message: "The event is older than the target's MaximumEventAgeInSeconds"
                        .into(),
                    exhausted_retry_condition: Some(MAX_AGE.into()),
                    retry_attempts: stored.attempts,
                },
                now,
            );
        }
        let result = self
            .deliver
            .deliver(TargetDelivery {
                account: &d.account,
                target_arn: &d.target_arn,
                payload: d.payload.clone(),
                principal: Principal::Events,
                source_arn: &d.rule_arn,
                message_group_id: d.message_group_id.as_deref(),
                // A FIFO queue deduplicates on the event's id, as EventBridge does.
                deduplication_id: serde_json::from_str::<serde_json::Value>(&d.event)
                    .ok()
                    .and_then(|e| e["id"].as_str().map(str::to_owned)),
                attributes: Vec::new(),
            })
            .await;
        let now = ms(self.clock.now());
        match result {
            Ok(()) => Change::FinishDelivery(stored.id),
            Err(DeliveryError::Fail(message)) => {
                tracing::warn!(rule = %d.rule_arn, target = %d.target_arn, %message,
                    "EventBridge delivery failed and will not be retried");
                self.failed(
                    stored,
                    Failure {
                        error_code: "SDK_CLIENT_ERROR".into(),
                        error_message: message,
                        exhausted_retry_condition: None,
                        retry_attempts: stored.attempts,
                    },
                    now,
                )
            }
            Err(DeliveryError::Retry(message)) => {
                let retries = stored.attempts + 1;
                let exhausted = |condition: &str| Failure {
                    error_code: "RETRY_EXHAUSTED".into(),
                    error_message: message.clone(),
                    exhausted_retry_condition: Some(condition.into()),
                    retry_attempts: stored.attempts,
                };
                if retries > d.max_retries {
                    return self.failed(stored, exhausted(MAX_ATTEMPTS), now);
                }
                let next_ms = now + self.backoff_ms(retries);
                if next_ms - d.created_ms > max_age_ms {
                    return self.failed(stored, exhausted(MAX_AGE), now);
                }
                tracing::debug!(rule = %d.rule_arn, target = %d.target_arn, retries, %message,
                    "EventBridge delivery failed; will retry");
                Change::RetryDelivery {
                    id: stored.id,
                    attempts: retries,
                    next_ms,
                    failure: None,
                }
            }
        }
    }

    /// A delivery that will not reach its target: to its dead-letter queue, else dropped.
    fn failed(&self, stored: &Delivery, failure: Failure, now: i64) -> Change {
        let d = &stored.delivery;
        match &d.dead_letter_arn {
            Some(queue) => {
                tracing::warn!(rule = %d.rule_arn, target = %d.target_arn, dead_letter_queue = %queue,
                    error = %failure.error_message, "EventBridge delivery failed; sending the event to the dead-letter queue");
                Change::RetryDelivery {
                    id: stored.id,
                    attempts: 0,
                    next_ms: now,
                    failure: Some(failure),
                }
            }
            None => {
                tracing::warn!(rule = %d.rule_arn, target = %d.target_arn, event = %d.event,
                    error = %failure.error_message, "EventBridge delivery failed; event dropped (no dead-letter queue)");
                Change::FinishDelivery(stored.id)
            }
        }
    }

    /// Sends the event to the dead-letter queue, with EventBridge's attributes saying why
    /// (`ERROR_CODE`, `ERROR_MESSAGE`, `EXHAUSTED_RETRY_CONDITION`, `RETRY_ATTEMPTS`,
    /// `RULE_ARN`, `TARGET_ARN`).
    async fn attempt_dead_letter(&self, stored: &Delivery, failure: &Failure) -> Change {
        let d = &stored.delivery;
        let Some(queue) = &d.dead_letter_arn else {
            return Change::FinishDelivery(stored.id);
        };
        let mut attributes = vec![
            ("ERROR_CODE".to_owned(), failure.error_code.clone()),
            ("ERROR_MESSAGE".to_owned(), failure.error_message.clone()),
            (
                "RETRY_ATTEMPTS".to_owned(),
                failure.retry_attempts.to_string(),
            ),
            ("RULE_ARN".to_owned(), d.rule_arn.clone()),
            ("TARGET_ARN".to_owned(), d.target_arn.clone()),
        ];
        if let Some(condition) = &failure.exhausted_retry_condition {
            attributes.push(("EXHAUSTED_RETRY_CONDITION".to_owned(), condition.clone()));
        }
        let result = self
            .deliver
            .deliver(TargetDelivery {
                account: &d.account,
                target_arn: queue,
                payload: d.event.clone(),
                principal: Principal::Events,
                source_arn: &d.rule_arn,
                message_group_id: None,
                deduplication_id: None,
                attributes,
            })
            .await;
        let now = ms(self.clock.now());
        let attempts = stored.attempts + 1;
        match result {
            Ok(()) => {
                tracing::info!(rule = %d.rule_arn, target = %d.target_arn, dead_letter_queue = %queue,
                    error_code = %failure.error_code, error_message = %failure.error_message,
                    exhausted_retry_condition = failure.exhausted_retry_condition.as_deref().unwrap_or(""),
                    retry_attempts = failure.retry_attempts, "event sent to the dead-letter queue");
                Change::FinishDelivery(stored.id)
            }
            Err(DeliveryError::Retry(message)) if attempts < self.config.dead_letter_attempts => {
                tracing::warn!(dead_letter_queue = %queue, %message, "sending to the dead-letter queue failed; will retry");
                Change::RetryDelivery {
                    id: stored.id,
                    attempts,
                    next_ms: now + self.backoff_ms(attempts),
                    failure: None,
                }
            }
            Err(error) => {
                tracing::error!(rule = %d.rule_arn, target = %d.target_arn, dead_letter_queue = %queue,
                    %error, event = %d.event, "sending to the dead-letter queue failed; event dropped");
                Change::FinishDelivery(stored.id)
            }
        }
    }

    /// Stores an attempt's outcome. On failure the delivery stays as it was and is
    /// attempted again.
    async fn record(self: &Arc<Self>, change: Change) {
        let store = Arc::clone(self.store());
        let result = tokio::task::spawn_blocking(move || store.commit(&[change])).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot record an EventBridge delivery outcome")
            }
            Err(error) => tracing::error!(%error, "cannot record an EventBridge delivery outcome"),
        }
    }

    /// Attempts every delivery due now, one after another, and stores the outcomes (the
    /// worker's step, run inline).
    #[cfg(test)]
    pub(crate) async fn run_due(self: &Arc<Self>) -> usize {
        let now = ms(self.clock.now());
        let (due, _) = self.store().due(now, 1000).expect("due deliveries");
        let count = due.len();
        for delivery in due {
            let change = self.attempt(&delivery).await;
            self.record(change).await;
        }
        count
    }
}

/// Deliveries in flight are still in the store, so the dispatcher skips their ids. A
/// task reports its id back when its outcome is committed, and the id is forgotten only
/// before the next look at the store: a look that began earlier cannot start it again.
async fn dispatch(service: Weak<Events>, wake: Arc<Notify>) {
    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let mut in_flight: HashSet<i64> = HashSet::new();
    loop {
        while let Ok(id) = finished.try_recv() {
            in_flight.remove(&id);
        }
        let Some(events) = service.upgrade() else {
            return;
        };
        let mut wait = events.config.poll_interval;
        let until = |events: &Events, at_ms: i64| {
            Duration::from_millis(at_ms.saturating_sub(ms(events.clock.now())).max(0) as u64)
        };

        let scheduler = Arc::clone(&events);
        match tokio::task::spawn_blocking(move || scheduler.fire_schedules()).await {
            Ok(Ok(Some(next))) => wait = wait.min(until(&events, ms(next))),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::error!(%error, "firing scheduled rules failed"),
            Err(error) => tracing::error!(%error, "firing scheduled rules failed"),
        }

        let busy = in_flight.len();
        let capacity = events.config.max_in_flight.saturating_sub(busy);
        if capacity > 0 {
            let now = ms(events.clock.now());
            let store = Arc::clone(events.store());
            match tokio::task::spawn_blocking(move || store.due(now, capacity + busy)).await {
                Ok(Ok((due, next))) => {
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
                        let (events, done) = (Arc::clone(&events), done.clone());
                        tokio::spawn(async move {
                            let id = delivery.id;
                            let change = events.attempt(&delivery).await;
                            events.record(change).await;
                            let _ = done.send(id);
                        });
                    }
                    if let Some(next) = next {
                        wait = wait.min(until(&events, next));
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "cannot read due EventBridge deliveries"),
                Err(error) => tracing::error!(%error, "cannot read due EventBridge deliveries"),
            }
        }
        drop(events);
        tokio::select! {
            Some(id) = finished.recv() => { in_flight.remove(&id); }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

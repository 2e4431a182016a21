//! The driver: fires schedules when their time comes and delivers their invocations.
//!
//! A firing commits, in one transaction, the schedule's progress and a [`PendingDelivery`];
//! only then is the target tried. So a scheduled time fires at most once, even across a
//! restart, and an invocation committed before a crash is delivered after it. A time missed
//! while the server was down fires once on start (the latest of them), if it is still
//! within the target's `MaximumEventAgeInSeconds`.

use std::sync::Arc;

use gust_model::targets::{Delivery, DeliveryError, Principal};
use time::OffsetDateTime;

use crate::delivery::{
    backoff, dead_letter_attributes, execution_id, DeadLetter, GiveUp, PendingDelivery,
    DEAD_LETTER_ATTEMPTS,
};
use crate::model::{next_time, render_input, ActionAfterCompletion, ScheduleState};
use crate::service::{lock, ScheduleKey, Scheduler};
use crate::store::Change;

/// The shortest sleep of the driver (so a failing store is not hammered).
const MIN_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// Bound on the scheduled times walked through when catching up (a day of every-minute
/// cron is 1,440).
const CATCH_UP_STEPS: usize = 100_000;

/// Removes a delivery from the in-flight set when its attempt ends, however it ends.
struct InFlight<'a> {
    scheduler: &'a Scheduler,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.scheduler.in_flight).remove(&self.id);
        self.scheduler.wake.notify_one();
    }
}

/// A uniformly random offset in `[0, seconds]`, to the millisecond.
fn random_offset(seconds: i64) -> time::Duration {
    if seconds <= 0 {
        return time::Duration::ZERO;
    }
    let span = (seconds as u128) * 1000 + 1;
    let ms = uuid::Uuid::new_v4().as_u128() % span;
    time::Duration::milliseconds(ms as i64)
}

impl Scheduler {
    /// One step of the driver at `now`, for tests: fires what is due, attempts the
    /// deliveries that are due and waits for them, then deletes completed schedules whose
    /// `ActionAfterCompletion` is `DELETE`.
    pub async fn tick(self: &Arc<Self>, now: OffsetDateTime) {
        for handle in self.step(now).await {
            let _ = handle.await;
        }
        self.blocking(move |s| s.complete(now)).await;
    }

    /// Runs the driver as a task for as long as the service lives: it sleeps until the next
    /// scheduled time or due retry (at most `poll_interval`), or until something changes.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let wake = Arc::clone(&self.wake);
        tokio::spawn(async move {
            loop {
                let Some(service) = weak.upgrade() else {
                    return;
                };
                let now = service.clock.now();
                // Deliveries run on their own; the driver goes on firing meanwhile.
                drop(service.step(now).await);
                service.blocking(move |s| s.complete(now)).await;
                let wait = service.wait(service.clock.now());
                drop(service);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = wake.notified() => {}
                }
            }
        })
    }

    /// Fires what is due and starts the due deliveries.
    async fn step(self: &Arc<Self>, now: OffsetDateTime) -> Vec<tokio::task::JoinHandle<()>> {
        self.blocking(move |s| s.fire_due(now)).await;
        self.take_due(now)
            .into_iter()
            .map(|delivery| {
                let service = Arc::clone(self);
                tokio::spawn(async move { service.attempt(delivery, now).await })
            })
            .collect()
    }

    /// Runs `work` on the blocking pool (it writes to the store).
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Scheduler) -> T + Send + 'static,
    ) -> Option<T> {
        let service = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .ok()
    }

    /// How long the driver may sleep after `now`.
    fn wait(&self, now: OffsetDateTime) -> std::time::Duration {
        let state = self.lock();
        let in_flight = lock(&self.in_flight);
        let schedules = state
            .schedules
            .values()
            .filter(|e| e.schedule.state == ScheduleState::Enabled)
            .filter_map(|e| e.next);
        let deliveries = state
            .deliveries
            .values()
            .filter(|d| !in_flight.contains(&d.id))
            .map(|d| d.due);
        let poll = self.config.poll_interval;
        match schedules.chain(deliveries).min() {
            None => poll,
            Some(next) => {
                let until = (next - now).max(time::Duration::ZERO);
                std::time::Duration::try_from(until)
                    .unwrap_or(poll)
                    .clamp(MIN_WAIT, poll.max(MIN_WAIT))
            }
        }
    }

    /// Fires every enabled schedule whose next scheduled time is at or before `now`.
    pub(crate) fn fire_due(&self, now: OffsetDateTime) {
        let due: Vec<ScheduleKey> = self
            .lock()
            .schedules
            .iter()
            .filter(|(_, e)| {
                e.schedule.state == ScheduleState::Enabled && e.next.is_some_and(|t| t <= now)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Err(error) = self.fire(&key, now) {
                tracing::warn!(%error, schedule = %key.2, group = %key.1, "firing a schedule failed");
            }
        }
    }

    fn fire(&self, key: &ScheduleKey, now: OffsetDateTime) -> Result<(), crate::SchedulerError> {
        let mut state = self.lock();
        let Some(entry) = state.schedules.get(key) else {
            return Ok(());
        };
        if entry.schedule.state != ScheduleState::Enabled || entry.next.is_none_or(|t| t > now) {
            return Ok(());
        }
        let Some((expression, zone)) = entry.compiled.clone() else {
            return Ok(());
        };
        let schedule = &entry.schedule;
        let max_age = time::Duration::seconds(i64::from(
            schedule.target.retry_policy.maximum_event_age_in_seconds,
        ));
        // The latest scheduled time not yet dealt with and not too old; older ones are
        // skipped (a schedule catching up fires once).
        let oldest = now - max_age - time::Duration::NANOSECOND;
        let mut cursor = schedule.evaluated_until.max(oldest);
        let mut latest = None;
        for _ in 0..CATCH_UP_STEPS {
            match next_time(schedule, &expression, &zone, cursor) {
                Some(at) if at <= now => {
                    latest = Some(at);
                    cursor = at;
                }
                _ => break,
            }
        }
        let mut fired = schedule.clone();
        fired.evaluated_until = now;
        let mut changes = Vec::new();
        match latest {
            Some(at) => {
                fired.last_fired = Some(at);
                let planned = at + random_offset(schedule.flexible_time_window.seconds());
                let delivery = PendingDelivery {
                    id: uuid::Uuid::new_v4().to_string(),
                    account: schedule.account.clone(),
                    schedule_arn: schedule.arn.clone(),
                    group_arn: self.group_arn(&schedule.account, &schedule.group),
                    target: schedule.target.clone(),
                    scheduled: at,
                    due: planned,
                    attempts: 0,
                    expires: planned + max_age,
                    dead_letter: None,
                };
                tracing::debug!(schedule = %schedule.arn, scheduled = %at, due = %planned, "schedule fired");
                changes.push(Change::PutSchedule(Box::new(fired)));
                changes.push(Change::PutDelivery(Box::new(delivery)));
            }
            None => {
                tracing::info!(schedule = %schedule.arn, "scheduled times missed beyond MaximumEventAgeInSeconds were skipped");
                changes.push(Change::PutSchedule(Box::new(fired)));
            }
        }
        // The firing is on disk before anything is delivered.
        self.commit(&mut state, changes)
    }

    /// Marks the deliveries due at `now` in flight and returns them.
    fn take_due(&self, now: OffsetDateTime) -> Vec<PendingDelivery> {
        let state = self.lock();
        let mut in_flight = lock(&self.in_flight);
        state
            .deliveries
            .values()
            .filter(|d| d.due <= now && !in_flight.contains(&d.id))
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .inspect(|d| {
                in_flight.insert(d.id.clone());
            })
            .collect()
    }

    /// Writes changes from an async context.
    async fn write(self: &Arc<Self>, changes: Vec<Change>) {
        let result = self
            .blocking(move |s| {
                let mut state = s.lock();
                s.commit(&mut state, changes)
            })
            .await;
        if let Some(Err(error)) = result {
            // Memory still holds the delivery as it was: it is tried again.
            tracing::warn!(%error, "recording a delivery's outcome failed");
        }
    }

    /// Attempts one delivery: the target, and the dead-letter queue when the target is
    /// given up.
    async fn attempt(self: Arc<Self>, mut delivery: PendingDelivery, now: OffsetDateTime) {
        let _in_flight = InFlight {
            scheduler: &self,
            id: delivery.id.clone(),
        };
        if let Some(letter) = delivery.dead_letter.clone() {
            self.send_dead_letter(delivery, letter, now).await;
            return;
        }
        let execution = execution_id();
        if now > delivery.expires {
            // It waited out its age (the server was down): not tried again.
            let message =
                "The event exceeded MaximumEventAgeInSeconds before it could be delivered";
            let payload = render_input(
                delivery.target.input.as_deref(),
                &delivery.schedule_arn,
                delivery.scheduled,
                &execution,
                delivery.attempts.max(1),
            );
            self.give_up(delivery, GiveUp::Age, message, &execution, payload, now)
                .await;
            return;
        }
        let number = delivery.attempts + 1;
        let payload = render_input(
            delivery.target.input.as_deref(),
            &delivery.schedule_arn,
            delivery.scheduled,
            &execution,
            number,
        );
        let result = self
            .deliver
            .deliver(Delivery {
                account: &delivery.account,
                target_arn: &delivery.target.arn,
                payload: payload.clone(),
                principal: Principal::Scheduler,
                source_arn: &delivery.schedule_arn,
                message_group_id: delivery.target.message_group_id(),
                deduplication_id: None,
                attributes: Vec::new(),
            })
            .await;
        delivery.attempts = number;
        match result {
            Ok(()) => {
                tracing::debug!(schedule = %delivery.schedule_arn, target = %delivery.target.arn, attempt = number, "delivered");
                self.write(vec![Change::DeleteDelivery(delivery.id)]).await;
            }
            Err(DeliveryError::Retry(message)) => {
                let policy = delivery.target.retry_policy;
                if delivery.attempts > policy.maximum_retry_attempts {
                    self.give_up(
                        delivery,
                        GiveUp::Attempts,
                        &message,
                        &execution,
                        payload,
                        now,
                    )
                    .await;
                    return;
                }
                let wait = backoff(
                    self.config.retry_base_delay,
                    self.config.retry_max_delay,
                    delivery.attempts,
                );
                let next = now + wait;
                if next > delivery.expires {
                    self.give_up(delivery, GiveUp::Age, &message, &execution, payload, now)
                        .await;
                    return;
                }
                tracing::debug!(schedule = %delivery.schedule_arn, target = %delivery.target.arn, attempt = number, %message, "delivery will be retried");
                delivery.due = next;
                self.write(vec![Change::PutDelivery(Box::new(delivery))])
                    .await;
            }
            Err(DeliveryError::Fail(message)) => {
                self.give_up(delivery, GiveUp::Failed, &message, &execution, payload, now)
                    .await;
            }
        }
    }

    /// Gives the target up: the invocation goes to the dead-letter queue, or is dropped
    /// when there is none.
    async fn give_up(
        self: &Arc<Self>,
        mut delivery: PendingDelivery,
        why: GiveUp,
        message: &str,
        execution: &str,
        payload: String,
        now: OffsetDateTime,
    ) {
        let attributes = dead_letter_attributes(&delivery, why, message, execution);
        if delivery.target.dead_letter_arn().is_none() {
            tracing::warn!(schedule = %delivery.schedule_arn, target = %delivery.target.arn, ?attributes, "invocation dropped: delivery failed and the target has no dead-letter queue");
            self.write(vec![Change::DeleteDelivery(delivery.id)]).await;
            return;
        }
        let letter = DeadLetter {
            payload,
            attributes,
            attempts: 0,
        };
        delivery.dead_letter = Some(letter.clone());
        delivery.due = now;
        self.write(vec![Change::PutDelivery(Box::new(delivery.clone()))])
            .await;
        self.send_dead_letter(delivery, letter, now).await;
    }

    /// Sends a dead-letter message to the target's queue.
    async fn send_dead_letter(
        self: &Arc<Self>,
        mut delivery: PendingDelivery,
        mut letter: DeadLetter,
        now: OffsetDateTime,
    ) {
        let Some(queue) = delivery.target.dead_letter_arn().map(str::to_owned) else {
            self.write(vec![Change::DeleteDelivery(delivery.id)]).await;
            return;
        };
        // `Delivery` carries no message attributes yet: they are logged.
        tracing::warn!(schedule = %delivery.schedule_arn, %queue, attributes = ?letter.attributes, "sending an invocation to its dead-letter queue");
        let result = self
            .deliver
            .deliver(Delivery {
                account: &delivery.account,
                target_arn: &queue,
                payload: letter.payload.clone(),
                principal: Principal::Scheduler,
                source_arn: &delivery.schedule_arn,
                message_group_id: None,
                deduplication_id: None,
                attributes: letter
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .await;
        match result {
            Ok(()) => {
                self.write(vec![Change::DeleteDelivery(delivery.id)]).await;
            }
            Err(DeliveryError::Retry(message)) if letter.attempts + 1 < DEAD_LETTER_ATTEMPTS => {
                letter.attempts += 1;
                tracing::debug!(%queue, %message, "dead-letter message will be retried");
                delivery.due = now
                    + backoff(
                        self.config.retry_base_delay,
                        self.config.retry_max_delay,
                        letter.attempts,
                    );
                delivery.dead_letter = Some(letter);
                self.write(vec![Change::PutDelivery(Box::new(delivery))])
                    .await;
            }
            Err(error) => {
                tracing::warn!(%queue, %error, schedule = %delivery.schedule_arn, "dead-letter message dropped");
                self.write(vec![Change::DeleteDelivery(delivery.id)]).await;
            }
        }
    }

    /// Deletes the schedules with `ActionAfterCompletion` `DELETE` that have made their last
    /// invocation (none left to make, none under way).
    pub(crate) fn complete(&self, _now: OffsetDateTime) {
        let mut state = self.lock();
        let busy: std::collections::HashSet<&str> = state
            .deliveries
            .values()
            .map(|d| d.schedule_arn.as_str())
            .collect();
        let done: Vec<Change> = state
            .schedules
            .iter()
            .filter(|(_, e)| {
                e.schedule.action_after_completion == ActionAfterCompletion::Delete
                    && e.schedule.last_fired.is_some()
                    && e.next.is_none()
                    && !busy.contains(e.schedule.arn.as_str())
            })
            .map(|((account, group, name), _)| Change::DeleteSchedule {
                account: account.clone(),
                group: group.clone(),
                name: name.clone(),
            })
            .collect();
        if done.is_empty() {
            return;
        }
        if let Err(error) = self.commit(&mut state, done) {
            tracing::warn!(%error, "deleting completed schedules failed");
        }
    }
}

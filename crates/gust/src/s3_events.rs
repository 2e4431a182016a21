//! S3 bucket notifications at work: events that gust-s3 committed to its outbox with the
//! object changes are matched against their bucket's configuration and delivered — to
//! functions as asynchronous invokes, to queues and topics as messages — through the same
//! `Deliver` as EventBridge's targets, as `s3.amazonaws.com` for the bucket. An event
//! leaves the outbox only once each configuration it matches has its delivery, or the
//! delivery failed for good; a restart delivers what was claimed and not acknowledged.

use std::sync::Arc;
use std::time::Duration;

use gust_model::notification::{self, NotificationConfiguration, ObjectChange};
use gust_model::targets::{Deliver, Delivery, DeliveryError, Principal};

/// Events taken per claim.
const BATCH: usize = 32;
/// How long a claim holds its events (a crash makes them claimable again after it).
const LEASE: Duration = Duration::from_secs(60);
/// Quick attempts at a delivery that can be retried (`RETRY_BASE`, then doubling); past
/// them the event stays in the outbox and is claimed again when its lease ends, so one
/// failing destination does not hold up the others.
const ATTEMPTS: u32 = 3;
const RETRY_BASE: Duration = Duration::from_millis(200);

/// Runs until the server stops.
pub async fn run(s3: Arc<gust_s3::S3>, targets: Arc<dyn Deliver>) {
    if let Err(error) = s3.release_events().await {
        tracing::warn!(%error, "could not release S3 events claimed before the restart");
    }
    let signal = s3.event_signal();
    loop {
        let claimed = match s3.claim_events(BATCH, LEASE).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "S3 event outbox unavailable");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            // Woken by writes; the timeout picks up events whose lease ended.
            let _ = tokio::time::timeout(Duration::from_secs(1), signal.notified()).await;
            continue;
        }
        let mut done = Vec::with_capacity(claimed.len());
        for item in claimed {
            if deliver_event(&s3, targets.as_ref(), &item.event).await {
                done.push(item.id);
            }
        }
        if let Err(error) = s3.ack_events(done).await {
            tracing::warn!(%error, "could not acknowledge delivered S3 events");
        }
    }
}

/// Delivers one event to every configuration it matches; `false` when it should be tried
/// again later (it is then left in the outbox).
async fn deliver_event(
    s3: &gust_s3::S3,
    targets: &dyn Deliver,
    event: &gust_s3::ObjectEvent,
) -> bool {
    let owner = gust_s3::Caller::account(&event.account);
    let config: NotificationConfiguration = match s3
        .bucket_notification(&owner, &event.bucket)
        .await
    {
        Ok(text) => NotificationConfiguration::from_stored(text.as_deref()),
        // The bucket is gone (or another account's now): nothing is configured for it.
        Err(gust_s3::S3Error::NoSuchBucket | gust_s3::S3Error::AccessDenied) => return true,
        Err(error) => {
            tracing::warn!(%error, bucket = %event.bucket, "S3 notification configuration unreadable; will retry");
            return false;
        }
    };
    let mut complete = true;
    let removed = event.event_name.starts_with("ObjectRemoved");
    let change = ObjectChange {
        region: event.region.clone(),
        bucket: event.bucket.clone(),
        owner: event.account.clone(),
        key: event.key.clone(),
        event_name: event.event_name.clone(),
        size: (!removed).then_some(event.size),
        etag: (!removed).then(|| event.etag.clone()),
        version_id: event.version_id.clone(),
        sequencer: event.sequencer.clone(),
        time_ms: event.time_ms,
        principal_id: format!("AWS:{}", event.requester_principal),
        source_ip: event
            .source_ip
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
        request_id: uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
    };
    let source_arn = format!("arn:aws:s3:::{}", event.bucket);
    for rule in config
        .rules
        .iter()
        .filter(|r| r.wants(&event.event_name, &event.key))
    {
        let payload = notification::record(&change, &rule.id).to_string();
        let mut delay = RETRY_BASE;
        for attempt in 1..=ATTEMPTS {
            let outcome = targets
                .deliver(Delivery {
                    account: &event.account,
                    target_arn: &rule.arn,
                    payload: payload.clone(),
                    principal: Principal::S3,
                    source_arn: &source_arn,
                    message_group_id: None,
                    deduplication_id: None,
                    attributes: Vec::new(),
                })
                .await;
            match outcome {
                Ok(()) => break,
                Err(DeliveryError::Retry(cause)) if attempt < ATTEMPTS => {
                    tracing::debug!(%cause, target = %rule.arn, attempt, "S3 notification will be retried");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(DeliveryError::Retry(cause)) => {
                    tracing::debug!(%cause, target = %rule.arn, "S3 notification left for a later claim");
                    complete = false;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, target = %rule.arn, bucket = %event.bucket, key = %event.key,
                        "S3 notification dropped");
                    break;
                }
            }
        }
    }
    complete
}

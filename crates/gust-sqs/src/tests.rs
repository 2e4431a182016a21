//! The service over the real SQLite store, with a clock the tests move.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gust_model::Clock;
use time::OffsetDateTime;

use crate::message::Outgoing;
use crate::sqlite::SqliteQueues;
use crate::{Caller, QueueAddress, ReceiveOptions, Sqs, SqsError};

#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, seconds: i64) {
        let mut now = self.0.lock().unwrap();
        *now += time::Duration::seconds(seconds);
    }
}

struct Fixture {
    sqs: Arc<Sqs>,
    clock: Arc<TestClock>,
    caller: Caller,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteQueues::open(&dir.path().join("sqs.db")).unwrap();
    let clock = Arc::new(TestClock(Mutex::new(OffsetDateTime::now_utc())));
    let sqs = Sqs::new(Arc::new(store), clock.clone(), "us-east-1");
    Fixture {
        sqs,
        clock,
        caller: Caller::account("000000000000", "AIDTEST"),
        _dir: dir,
    }
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn body(text: &str) -> Outgoing {
    Outgoing {
        body: text.into(),
        ..Outgoing::default()
    }
}

fn now_receive() -> ReceiveOptions {
    ReceiveOptions {
        max: Some(10),
        wait_seconds: Some(0),
        system_attribute_names: vec!["All".into()],
        ..ReceiveOptions::default()
    }
}

impl Fixture {
    async fn queue(&self, name: &str, attributes: &[(&str, &str)]) -> QueueAddress {
        self.sqs
            .create_queue(&self.caller, name, &attrs(attributes), &BTreeMap::new())
            .await
            .unwrap()
    }

    async fn send(
        &self,
        queue: &QueueAddress,
        entries: Vec<Outgoing>,
    ) -> Vec<Result<crate::message::Sent, SqsError>> {
        self.sqs.send(&self.caller, queue, entries).await.unwrap()
    }

    async fn receive(&self, queue: &QueueAddress) -> Vec<crate::Received> {
        self.sqs
            .receive(&self.caller, queue, &now_receive())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn visibility_receipts_and_redelivery() {
    let f = fixture();
    let q = f.queue("q", &[("VisibilityTimeout", "10")]).await;
    f.send(&q, vec![body("one")]).await;
    let first = f.receive(&q).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attributes["ApproximateReceiveCount"], "1");
    assert!(f.receive(&q).await.is_empty(), "invisible while in flight");
    f.clock.advance(11);
    let second = f.receive(&q).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attributes["ApproximateReceiveCount"], "2");
    assert_ne!(first[0].receipt_handle, second[0].receipt_handle);
    // The stale receipt deletes nothing; the current one deletes.
    f.sqs
        .delete(&f.caller, &q, &[first[0].receipt_handle.clone()])
        .await
        .unwrap();
    f.clock.advance(11);
    let third = f.receive(&q).await;
    assert_eq!(third.len(), 1, "a stale receipt must not delete");
    f.sqs
        .delete(&f.caller, &q, &[third[0].receipt_handle.clone()])
        .await
        .unwrap();
    f.clock.advance(11);
    assert!(f.receive(&q).await.is_empty());
}

#[tokio::test]
async fn redrive_moves_after_max_receives() {
    let f = fixture();
    let dlq = f.queue("dlq", &[]).await;
    let arn = f.sqs.arn(&dlq);
    let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"2"}}"#);
    let q = f
        .queue(
            "src",
            &[("VisibilityTimeout", "1"), ("RedrivePolicy", &policy)],
        )
        .await;
    f.send(&q, vec![body("poison")]).await;
    for _ in 0..2 {
        assert_eq!(f.receive(&q).await.len(), 1);
        f.clock.advance(2);
    }
    assert!(f.receive(&q).await.is_empty(), "third receive moves it");
    let moved = f.receive(&dlq).await;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].body, "poison");
    let sources = f
        .sqs
        .dead_letter_sources(&f.caller, &dlq, None, None)
        .await
        .unwrap();
    assert_eq!(sources.0, vec![q.clone()]);
}

#[tokio::test]
async fn fifo_order_groups_and_dedup() {
    let f = fixture();
    let q = f
        .queue(
            "f.fifo",
            &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")],
        )
        .await;
    let msg = |text: &str, group: &str| Outgoing {
        body: text.into(),
        group_id: Some(group.into()),
        ..Outgoing::default()
    };
    let sent = f
        .send(
            &q,
            vec![
                msg("a1", "a"),
                msg("b1", "b"),
                msg("a2", "a"),
                msg("a1", "a"),
            ],
        )
        .await;
    let ids: Vec<String> = sent
        .iter()
        .map(|s| s.as_ref().unwrap().message_id.clone())
        .collect();
    assert_eq!(ids[0], ids[3], "a duplicate gets the original's id");
    let got = f
        .sqs
        .receive(
            &f.caller,
            &q,
            &ReceiveOptions {
                max: Some(1),
                wait_seconds: Some(0),
                ..ReceiveOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(got[0].body, "a1");
    // Group a is blocked while a1 is in flight; b is free.
    let next = f.receive(&q).await;
    let bodies: Vec<&str> = next.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, vec!["b1"]);
    f.sqs
        .delete(&f.caller, &q, &[got[0].receipt_handle.clone()])
        .await
        .unwrap();
    let last = f.receive(&q).await;
    assert_eq!(
        last.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["a2"]
    );
    // Missing group, per-message delay: refused.
    let refused = f.send(&q, vec![body("x")]).await;
    assert!(matches!(refused[0], Err(SqsError::MissingParameter(_))));
}

#[tokio::test]
async fn delays_and_retention() {
    let f = fixture();
    let q = f.queue("d", &[("MessageRetentionPeriod", "60")]).await;
    f.send(
        &q,
        vec![Outgoing {
            delay_seconds: Some(5),
            ..body("later")
        }],
    )
    .await;
    assert!(f.receive(&q).await.is_empty());
    let counts = f
        .sqs
        .get_attributes(&f.caller, &q, &["All".into()])
        .await
        .unwrap();
    assert_eq!(counts["ApproximateNumberOfMessagesDelayed"], "1");
    f.clock.advance(6);
    assert_eq!(f.receive(&q).await.len(), 1);
    f.send(&q, vec![body("old")]).await;
    f.clock.advance(61);
    let options = ReceiveOptions {
        max: Some(10),
        wait_seconds: Some(0),
        visibility_timeout: Some(0),
        ..ReceiveOptions::default()
    };
    assert!(
        f.sqs
            .receive(&f.caller, &q, &options)
            .await
            .unwrap()
            .is_empty(),
        "expired"
    );
}

#[tokio::test]
async fn long_poll_returns_when_a_message_arrives() {
    let f = fixture();
    let q = f.queue("lp", &[]).await;
    let sqs = Arc::clone(&f.sqs);
    let (caller, address) = (f.caller.clone(), q.clone());
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let got = sqs
            .receive(
                &caller,
                &address,
                &ReceiveOptions {
                    wait_seconds: Some(10),
                    ..ReceiveOptions::default()
                },
            )
            .await
            .unwrap();
        (got, started.elapsed())
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    f.send(&q, vec![body("wake")]).await;
    let (got, waited) = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn queue_lifecycle_errors() {
    let f = fixture();
    let q = f.queue("life", &[("DelaySeconds", "3")]).await;
    assert!(f
        .sqs
        .create_queue(
            &f.caller,
            "life",
            &attrs(&[("DelaySeconds", "3")]),
            &BTreeMap::new()
        )
        .await
        .is_ok());
    assert!(matches!(
        f.sqs
            .create_queue(
                &f.caller,
                "life",
                &attrs(&[("DelaySeconds", "4")]),
                &BTreeMap::new()
            )
            .await,
        Err(SqsError::QueueNameExists(_))
    ));
    f.sqs.purge(&f.caller, &q).await.unwrap();
    assert!(matches!(
        f.sqs.purge(&f.caller, &q).await,
        Err(SqsError::PurgeQueueInProgress(_))
    ));
    f.sqs.delete_queue(&f.caller, &q).await.unwrap();
    assert!(matches!(
        f.sqs.get_queue_url(&f.caller, "life", None).await,
        Err(SqsError::QueueDoesNotExist)
    ));
    assert!(matches!(
        f.sqs
            .create_queue(&f.caller, "life", &BTreeMap::new(), &BTreeMap::new())
            .await,
        Err(SqsError::QueueDeletedRecently)
    ));
    f.clock.advance(61);
    f.queue("life", &[]).await;
    let other = Caller::account("111111111111", "AIDOTHER");
    assert!(matches!(
        f.sqs
            .get_queue_url(&other, "life", Some("000000000000"))
            .await,
        Err(SqsError::AccessDenied(_))
    ));
}

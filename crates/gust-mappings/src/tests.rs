//! Pollers over a real queue store, with a host that records invocations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gust_model::SystemClock;
use gust_sqs::message::Outgoing;
use gust_sqs::sqlite::SqliteQueues;

use super::*;

#[derive(Debug, Default)]
struct FakeHost {
    mappings: Mutex<Vec<ActiveMapping>>,
    /// Bodies of each batch's records.
    batches: Mutex<Vec<Vec<String>>>,
    settled: Mutex<Vec<String>>,
    /// The response the function gives (its body), or a function error for `None`.
    respond: Mutex<Option<String>>,
    throttle_first: Mutex<usize>,
}

impl Host for FakeHost {
    fn mappings(&self) -> BoxFuture<'_, Option<Vec<ActiveMapping>>> {
        Box::pin(async { Some(self.mappings.lock().unwrap().clone()) })
    }

    fn settle<'a>(&'a self, _: &'a str, uuid: &'a str, _: i64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.settled.lock().unwrap().push(uuid.to_owned());
            for mapping in self.mappings.lock().unwrap().iter_mut() {
                if mapping.uuid == uuid {
                    mapping.state = MappingState::settled(mapping.settings.enabled);
                }
            }
        })
    }

    fn record<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn invoke<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        payload: Bytes,
        _: Option<String>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            {
                let mut throttles = self.throttle_first.lock().unwrap();
                if *throttles > 0 {
                    *throttles -= 1;
                    return Outcome::Throttled;
                }
            }
            let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            let bodies = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["body"].as_str().unwrap().to_owned())
                .collect();
            self.batches.lock().unwrap().push(bodies);
            match self.respond.lock().unwrap().clone() {
                Some(body) => Outcome::Response(Bytes::from(body)),
                None => Outcome::FunctionError,
            }
        })
    }
}

struct Fixture {
    sqs: Arc<Sqs>,
    host: Arc<FakeHost>,
    pollers: Arc<Pollers>,
    queue: QueueAddress,
    caller: Caller,
    _dir: tempfile::TempDir,
}

async fn fixture(queue_attributes: &[(&str, &str)], settings: MappingSettings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteQueues::open(&dir.path().join("sqs.db")).unwrap();
    let sqs = Sqs::new(Arc::new(store), Arc::new(SystemClock), "us-east-1");
    let caller = Caller::account("000000000000", "AIDTEST");
    let attributes: BTreeMap<String, String> = queue_attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let name = if attributes.contains_key("FifoQueue") {
        "in.fifo"
    } else {
        "in"
    };
    let queue = sqs
        .create_queue(&caller, name, &attributes, &BTreeMap::new())
        .await
        .unwrap();
    let host = Arc::new(FakeHost::default());
    *host.respond.lock().unwrap() = Some(String::new());
    host.mappings.lock().unwrap().push(ActiveMapping {
        account: "000000000000".into(),
        uuid: "m-1".into(),
        function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        queue_arn: sqs.arn(&queue),
        settings,
        state: MappingState::Creating,
        version_ms: 1,
    });
    let pollers = Pollers::new(Arc::clone(&sqs), host.clone());
    Fixture {
        sqs,
        host,
        pollers,
        queue,
        caller,
        _dir: dir,
    }
}

impl Fixture {
    async fn send(&self, bodies: &[&str], group: Option<&str>) {
        let messages = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| Outgoing {
                body: (*b).to_owned(),
                group_id: group.map(str::to_owned),
                deduplication_id: group.map(|_| format!("{b}-{i}")),
                ..Outgoing::default()
            })
            .collect();
        for result in self
            .sqs
            .send(&self.caller, &self.queue, messages)
            .await
            .unwrap()
        {
            result.unwrap();
        }
    }

    async fn waiting(&self) -> (u64, u64) {
        let attributes = self
            .sqs
            .get_attributes(&self.caller, &self.queue, &["All".into()])
            .await
            .unwrap();
        let n = |name: &str| attributes[name].parse::<u64>().unwrap();
        (
            n("ApproximateNumberOfMessages"),
            n("ApproximateNumberOfMessagesNotVisible"),
        )
    }

    async fn until_empty(&self) {
        for _ in 0..200 {
            if self.waiting().await == (0, 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the queue was not drained: {:?}", self.waiting().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_invoked_and_deleted_and_the_mapping_settles() {
    let settings = MappingSettings {
        batch_size: 10,
        ..MappingSettings::default()
    };
    let f = fixture(&[], settings).await;
    let bodies: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    f.send(&refs[..10], None).await;
    f.send(&refs[10..20], None).await;
    f.send(&refs[20..], None).await;
    f.pollers.reconcile().await;
    f.until_empty().await;
    let batches = f.host.batches.lock().unwrap().clone();
    let mut seen: Vec<String> = batches.iter().flatten().cloned().collect();
    seen.sort();
    let mut expected = bodies.clone();
    expected.sort();
    assert_eq!(seen, expected, "each message once");
    assert!(batches.iter().all(|b| b.len() <= 10));
    assert_eq!(*f.host.settled.lock().unwrap(), vec!["m-1".to_owned()]);
    // Disabling stops delivery within a pass.
    f.host.mappings.lock().unwrap()[0].settings.enabled = false;
    f.host.mappings.lock().unwrap()[0].version_ms = 2;
    f.pollers.reconcile().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.send(&["late"], None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        f.waiting().await,
        (1, 0),
        "a disabled mapping leaves the queue alone"
    );
    f.pollers.stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_keep_only_the_reported_messages() {
    let settings = MappingSettings {
        batch_size: 5,
        window_s: 1,
        report_item_failures: true,
        ..MappingSettings::default()
    };
    let f = fixture(&[("VisibilityTimeout", "2")], settings).await;
    f.send(&["a", "b", "c"], None).await;
    // The function reports "b" as failed, by the message id it finds in its batch.
    #[derive(Debug)]
    struct FailSecond(Arc<FakeHost>);
    impl Host for FailSecond {
        fn mappings(&self) -> BoxFuture<'_, Option<Vec<ActiveMapping>>> {
            self.0.mappings()
        }
        fn settle<'a>(&'a self, a: &'a str, u: &'a str, v: i64) -> BoxFuture<'a, ()> {
            self.0.settle(a, u, v)
        }
        fn record<'a>(&'a self, a: &'a str, u: &'a str, r: &'a str) -> BoxFuture<'a, ()> {
            self.0.record(a, u, r)
        }
        fn invoke<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            payload: Bytes,
            _: Option<String>,
        ) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                let records = event["Records"].as_array().unwrap();
                self.0.batches.lock().unwrap().push(
                    records
                        .iter()
                        .map(|r| r["body"].as_str().unwrap().to_owned())
                        .collect(),
                );
                let failed: Vec<serde_json::Value> = records
                    .iter()
                    .filter(|r| r["body"] == "b")
                    .map(|r| serde_json::json!({"itemIdentifier": r["messageId"]}))
                    .collect();
                Outcome::Response(Bytes::from(
                    serde_json::json!({"batchItemFailures": failed}).to_string(),
                ))
            })
        }
    }
    let pollers = Pollers::new(Arc::clone(&f.sqs), Arc::new(FailSecond(f.host.clone())));
    pollers.reconcile().await;
    // "b" keeps coming back; "a" and "c" are gone after the first batch.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let batches = f.host.batches.lock().unwrap().clone();
    assert!(batches.len() >= 2, "{batches:?}");
    assert_eq!(batches[0].len(), 3);
    assert!(
        batches[1..].iter().all(|b| b == &vec!["b".to_owned()]),
        "{batches:?}"
    );
    pollers.stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_batch_is_retried_while_it_is_still_invisible() {
    let f = fixture(&[("VisibilityTimeout", "10")], MappingSettings::default()).await;
    *f.host.throttle_first.lock().unwrap() = 3;
    f.send(&["x"], None).await;
    f.pollers.reconcile().await;
    f.until_empty().await;
    assert_eq!(
        f.host.batches.lock().unwrap().clone(),
        vec![vec!["x".to_owned()]]
    );
    f.pollers.stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_stay_in_order() {
    let f = fixture(
        &[
            ("FifoQueue", "true"),
            ("ContentBasedDeduplication", "false"),
        ],
        MappingSettings {
            batch_size: 2,
            ..MappingSettings::default()
        },
    )
    .await;
    let bodies: Vec<String> = (0..9).map(|i| format!("{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    f.send(&refs, Some("g")).await;
    f.pollers.reconcile().await;
    f.until_empty().await;
    let seen: Vec<String> = f
        .host
        .batches
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(seen, bodies);
    f.pollers.stop_all();
}

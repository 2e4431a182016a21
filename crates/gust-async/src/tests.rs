//! The dispatcher over the real SQLite queue store with a scripted runner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gust_model::clock::SystemClock;
use gust_sqs::sqlite::SqliteQueues;

use super::*;

#[derive(Debug, Default)]
struct Script {
    /// Function errors before the first success (`u32::MAX`: always fails).
    failures: u32,
    settings: Option<EventSettings>,
    runs: Mutex<Vec<String>>,
    delivered: Mutex<Vec<(String, String, DeliveryAttributes)>>,
    throttles: Mutex<u32>,
}

impl Runner for Script {
    fn settings<'a>(&'a self, _: &'a AsyncEvent) -> BoxFuture<'a, Option<EventSettings>> {
        Box::pin(async move { self.settings.clone() })
    }

    fn run<'a>(&'a self, event: &'a AsyncEvent) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            {
                let mut throttles = self.throttles.lock().unwrap();
                if *throttles > 0 {
                    *throttles -= 1;
                    return Attempt::Throttled;
                }
            }
            let mut runs = self.runs.lock().unwrap();
            runs.push(event.payload.clone());
            let failed = (runs.len() as u32) <= self.failures;
            Attempt::Ran {
                body: if failed {
                    r#"{"errorMessage":"boom","errorType":"Error"}"#.into()
                } else {
                    r#"{"ok":true}"#.into()
                },
                executed_version: "$LATEST".into(),
                error: failed.then(|| "Unhandled".into()),
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        _: &'a str,
        destination: &'a str,
        body: String,
        attributes: DeliveryAttributes,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.delivered
                .lock()
                .unwrap()
                .push((destination.to_owned(), body, attributes));
            Ok(())
        })
    }
}

fn settings() -> EventSettings {
    EventSettings {
        retries: 2,
        max_age_seconds: 3600,
        on_success: Some("arn:aws:sqs:us-east-1:000000000000:ok".into()),
        on_failure: Some("arn:aws:sqs:us-east-1:000000000000:failed".into()),
        dead_letter: Some("arn:aws:sqs:us-east-1:000000000000:dlq".into()),
        function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST".into(),
        recursion_allowed: false,
    }
}

fn invoker(dir: &std::path::Path, script: Arc<Script>) -> Arc<AsyncInvoker> {
    let store = SqliteQueues::open(&dir.join("async.db")).unwrap();
    AsyncInvoker::new(
        Arc::new(store),
        script,
        Arc::new(SystemClock),
        AsyncConfig {
            retry_base: Duration::from_millis(30),
            concurrency: 4,
            ..AsyncConfig::default()
        },
    )
}

fn event(n: usize) -> AsyncEvent {
    AsyncEvent {
        account: "000000000000".into(),
        function: "f".into(),
        qualifier: None,
        payload: format!("{{\"n\":{n}}}"),
        request_id: format!("request-{n}"),
        trace: None,
    }
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out");
}

#[tokio::test]
async fn success_goes_to_the_success_destination() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        settings: Some(settings()),
        ..Script::default()
    });
    let invoker = invoker(dir.path(), Arc::clone(&script));
    invoker.start(vec![]);
    invoker.enqueue(event(1)).await.unwrap();
    until(|| !script.delivered.lock().unwrap().is_empty()).await;
    let delivered = script.delivered.lock().unwrap().clone();
    let (destination, record, _) = &delivered[0];
    assert!(destination.ends_with(":ok"));
    let record: Value = serde_json::from_str(record).unwrap();
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["requestId"], "request-1");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["requestPayload"], json!({"n": 1}));
    assert_eq!(record["responsePayload"], json!({"ok": true}));
    assert!(record["responseContext"].get("functionError").is_none());
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        failures: u32::MAX,
        settings: Some(settings()),
        throttles: Mutex::new(2),
        ..Script::default()
    });
    let invoker = invoker(dir.path(), Arc::clone(&script));
    invoker.start(vec![]);
    invoker.enqueue(event(7)).await.unwrap();
    until(|| script.delivered.lock().unwrap().len() == 2).await;
    assert_eq!(
        script.runs.lock().unwrap().len(),
        3,
        "1 + MaximumRetryAttempts runs"
    );
    let delivered = script.delivered.lock().unwrap().clone();
    let dead = delivered.iter().find(|d| d.0.ends_with(":dlq")).unwrap();
    assert_eq!(dead.1, "{\"n\":7}");
    assert!(dead
        .2
        .contains(&("ErrorMessage".into(), "String".into(), "boom".into())));
    assert!(dead
        .2
        .contains(&("RequestID".into(), "String".into(), "request-7".into())));
    let failed = delivered.iter().find(|d| d.0.ends_with(":failed")).unwrap();
    let record: Value = serde_json::from_str(&failed.1).unwrap();
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(script.runs.lock().unwrap().len(), 3, "nothing runs again");
}

#[tokio::test]
async fn old_events_expire_into_the_failure_path() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        settings: Some(EventSettings {
            max_age_seconds: 0,
            ..settings()
        }),
        ..Script::default()
    });
    let invoker = invoker(dir.path(), Arc::clone(&script));
    invoker.enqueue(event(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    invoker.start(vec![]);
    until(|| script.delivered.lock().unwrap().len() == 2).await;
    assert!(script.runs.lock().unwrap().is_empty());
    let delivered = script.delivered.lock().unwrap().clone();
    let failed = delivered.iter().find(|d| d.0.ends_with(":failed")).unwrap();
    let record: Value = serde_json::from_str(&failed.1).unwrap();
    assert_eq!(record["requestContext"]["condition"], "EventAgeExceeded");
    assert!(record.get("responseContext").is_none());
}

#[tokio::test]
async fn events_left_by_a_stopped_server_run_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = Arc::new(Script::default());
    let first = invoker(dir.path(), quiet);
    for n in 0..40 {
        first.enqueue(event(n)).await.unwrap();
    }
    drop(first);
    let script = Arc::new(Script {
        settings: Some(EventSettings {
            on_success: None,
            ..settings()
        }),
        ..Script::default()
    });
    let second = invoker(dir.path(), Arc::clone(&script));
    second.start(vec!["000000000000".into()]);
    until(|| script.runs.lock().unwrap().len() == 40).await;
    let mut runs = script.runs.lock().unwrap().clone();
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), 40, "each event once");
}

/// Remembers what it was told, by kind.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl gust_model::observe::Observer for Recorder {
    fn observe(&self, observation: Observation) {
        let kind = match observation {
            Observation::AsyncReceived { .. } => "received",
            Observation::AsyncAge { .. } => "age",
            Observation::AsyncDropped { .. } => "dropped",
            Observation::DeadLetterError { .. } => "dead-letter-error",
            Observation::DestinationFailure { .. } => "destination-failure",
            _ => "other",
        };
        self.0.lock().unwrap().push(kind.to_owned());
    }
}

#[tokio::test]
async fn received_aged_and_dropped_events_are_observed() {
    let dir = tempfile::tempdir().unwrap();
    let script = Arc::new(Script {
        failures: u32::MAX,
        settings: Some(settings()),
        ..Script::default()
    });
    let recorder = Arc::new(Recorder::default());
    let store = SqliteQueues::open(&dir.path().join("async.db")).unwrap();
    let invoker = AsyncInvoker::new(
        Arc::new(store),
        Arc::clone(&script) as Arc<dyn Runner>,
        Arc::new(SystemClock),
        AsyncConfig {
            retry_base: Duration::from_millis(30),
            concurrency: 4,
            observer: Arc::clone(&recorder) as Arc<dyn gust_model::observe::Observer>,
        },
    );
    invoker.start(vec![]);
    invoker.enqueue(event(1)).await.unwrap();
    until(|| script.delivered.lock().unwrap().len() == 2).await;
    let seen = recorder.0.lock().unwrap().clone();
    // One receipt, an age per attempt (1 + 2 retries), one drop (after the last
    // failure: its record and dead letter go on, the event itself is done).
    assert_eq!(
        seen.iter().filter(|k| *k == "received").count(),
        1,
        "{seen:?}"
    );
    assert_eq!(seen.iter().filter(|k| *k == "age").count(), 3, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|k| *k == "dropped").count(),
        1,
        "{seen:?}"
    );
}

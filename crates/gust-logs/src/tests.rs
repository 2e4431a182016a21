//! The service's behaviour over the SQLite store.

use std::sync::{Arc, Mutex};

use gust_model::Clock;
use time::OffsetDateTime;

use crate::*;

#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

const NOW_MS: i64 = 1_700_000_000_000;
const ACCOUNT: &str = "123456789012";

fn clock() -> Arc<TestClock> {
    Arc::new(TestClock(Mutex::new(gust_store::sqlite::at(NOW_MS))))
}

fn open(dir: &tempfile::TempDir) -> Arc<Logs> {
    Logs::open(&dir.path().join("logs.db"), clock(), "us-east-1").unwrap()
}

fn events(items: &[(i64, &str)]) -> Vec<NewEvent> {
    items
        .iter()
        .map(|(timestamp, message)| NewEvent {
            timestamp: *timestamp,
            message: (*message).to_owned(),
        })
        .collect()
}

fn setup(logs: &Logs, group: &str, streams: &[&str]) {
    logs.create_log_group(ACCOUNT, group, Default::default(), None, None)
        .unwrap();
    for stream in streams {
        logs.create_log_stream(ACCOUNT, group, stream).unwrap();
    }
}

/// A stream's first page, oldest first.
fn from_head(logs: &Logs, group: &str, stream: &str) -> EventsPage {
    logs.get_log_events(
        ACCOUNT,
        group,
        stream,
        &GetEventsQuery {
            start_from_head: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn messages(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.message.clone()).collect()
}

#[test]
fn groups_and_streams_exist_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "/app", &["s1"]);
    assert_eq!(
        logs.create_log_group(ACCOUNT, "/app", Default::default(), None, None),
        Err(LogsError::group_exists())
    );
    assert_eq!(
        logs.create_log_stream(ACCOUNT, "/app", "s1"),
        Err(LogsError::stream_exists())
    );
    assert_eq!(
        logs.create_log_stream(ACCOUNT, "/nope", "s1"),
        Err(LogsError::group_not_found())
    );
    assert_eq!(
        logs.delete_log_stream(ACCOUNT, "/app", "s2"),
        Err(LogsError::stream_not_found())
    );
    // Another account sees nothing.
    let other = logs
        .describe_log_groups("000000000000", &GroupQuery::default())
        .unwrap();
    assert!(other.items.is_empty());
    logs.delete_log_group(ACCOUNT, "/app").unwrap();
    assert_eq!(
        logs.delete_log_group(ACCOUNT, "/app"),
        Err(LogsError::group_not_found())
    );
}

#[test]
fn describe_log_groups_pages_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    for name in ["/a/one", "/a/two", "/b/Three", "/b/four"] {
        setup(&logs, name, &[]);
    }
    let first = logs
        .describe_log_groups(
            ACCOUNT,
            &GroupQuery {
                limit: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let second = logs
        .describe_log_groups(
            ACCOUNT,
            &GroupQuery {
                limit: Some(3),
                next_token: first.next_token.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next_token, None);
    let prefixed = logs
        .describe_log_groups(
            ACCOUNT,
            &GroupQuery {
                prefix: Some("/a/".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(prefixed.items.len(), 2);
    let patterned = logs
        .describe_log_groups(
            ACCOUNT,
            &GroupQuery {
                pattern: Some("three".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(patterned.items[0].name, "/b/Three");
}

#[test]
fn put_log_events_validates_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &["s"]);
    let unordered = logs.put_log_events(
        ACCOUNT,
        "g",
        "s",
        events(&[(NOW_MS, "b"), (NOW_MS - 1, "a")]),
    );
    assert_eq!(
        unordered.unwrap_err().to_string(),
        "Log events in a single PutLogEvents request must be in chronological order."
    );
    let span = logs.put_log_events(
        ACCOUNT,
        "g",
        "s",
        events(&[(NOW_MS - 25 * 3_600_000, "a"), (NOW_MS, "b")]),
    );
    assert!(matches!(span, Err(LogsError::InvalidParameter(_))));
    let big = "x".repeat(200_000);
    let too_large: Vec<NewEvent> = (0..6)
        .map(|i| NewEvent {
            timestamp: NOW_MS + i,
            message: big.clone(),
        })
        .collect();
    assert!(logs
        .put_log_events(ACCOUNT, "g", "s", too_large)
        .unwrap_err()
        .to_string()
        .starts_with("Upload too large"));
    assert_eq!(
        logs.put_log_events(ACCOUNT, "g", "missing", events(&[(NOW_MS, "a")])),
        Err(LogsError::stream_not_found())
    );
    assert_eq!(
        logs.put_log_events(ACCOUNT, "nope", "s", events(&[(NOW_MS, "a")])),
        Err(LogsError::group_not_found())
    );

    // Two too old (15 days), two fine, one too new (3 hours ahead).
    let batch = events(&[
        (NOW_MS - 15 * DAY_MS, "old1"),
        (NOW_MS - 15 * DAY_MS + 1, "old2"),
        (NOW_MS - 1000, "ok1"),
        (NOW_MS, "ok2"),
        (NOW_MS + 3 * 3_600_000, "new"),
    ]);
    // The span check allows 24 h at most, so the batch is split where AWS would accept it.
    let outcome = logs
        .put_log_events(ACCOUNT, "g", "s", batch[2..].to_vec())
        .unwrap();
    assert_eq!(outcome.rejected.too_new_start, Some(2));
    assert_eq!(outcome.rejected.too_old_end, None);
    let outcome2 = logs
        .put_log_events(ACCOUNT, "g", "s", batch[..2].to_vec())
        .unwrap();
    assert_eq!(outcome2.rejected.too_old_end, Some(2));
    assert_ne!(outcome.next_sequence_token, outcome2.next_sequence_token);
    let page = from_head(&logs, "g", "s");
    assert_eq!(messages(&page.events), ["ok1", "ok2"]);
}

#[test]
fn put_log_events_rejects_what_retention_expired() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &["s"]);
    logs.put_retention_policy(ACCOUNT, "g", 1).unwrap();
    let outcome = logs
        .put_log_events(
            ACCOUNT,
            "g",
            "s",
            events(&[(NOW_MS - DAY_MS - 1000, "expired"), (NOW_MS - 2000, "fine")]),
        )
        .unwrap();
    assert_eq!(outcome.rejected.expired_end, Some(1));
    let page = logs
        .get_log_events(ACCOUNT, "g", "s", &GetEventsQuery::default())
        .unwrap();
    assert_eq!(messages(&page.events), ["fine"]);
}

fn put_numbered(logs: &Logs, stream: &str, count: i64, start: i64, step: i64) {
    let batch: Vec<NewEvent> = (0..count)
        .map(|i| NewEvent {
            timestamp: start + i * step,
            message: format!("{stream} {i}"),
        })
        .collect();
    logs.put_log_events(ACCOUNT, "g", stream, batch).unwrap();
}

#[test]
fn get_log_events_pages_both_ways_and_repeats_the_token_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &["s"]);
    put_numbered(&logs, "s", 10, NOW_MS - 10_000, 1000);

    // Newest first page by default.
    let last = logs
        .get_log_events(
            ACCOUNT,
            "g",
            "s",
            &GetEventsQuery {
                limit: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(messages(&last.events), ["s 7", "s 8", "s 9"]);
    // Backward from there.
    let before = logs
        .get_log_events(
            ACCOUNT,
            "g",
            "s",
            &GetEventsQuery {
                limit: Some(3),
                next_token: Some(last.next_backward_token.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(messages(&before.events), ["s 4", "s 5", "s 6"]);

    // Forward from the head, to the end.
    let mut query = GetEventsQuery {
        limit: Some(4),
        start_from_head: true,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = logs.get_log_events(ACCOUNT, "g", "s", &query).unwrap();
        seen.extend(messages(&page.events));
        if query.next_token.as_deref() == Some(page.next_forward_token.as_str()) {
            assert!(page.events.is_empty());
            break;
        }
        query.next_token = Some(page.next_forward_token);
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0], "s 0");
    // New events show up after the end token.
    let end = query.next_token.clone();
    put_numbered(&logs, "s", 1, NOW_MS, 1);
    let more = logs.get_log_events(ACCOUNT, "g", "s", &query).unwrap();
    assert_eq!(messages(&more.events), ["s 0"]);
    assert_ne!(Some(more.next_forward_token), end);

    // A time window: startTime inclusive, endTime exclusive.
    let window = logs
        .get_log_events(
            ACCOUNT,
            "g",
            "s",
            &GetEventsQuery {
                start_ms: Some(NOW_MS - 8000),
                end_ms: Some(NOW_MS - 6000),
                start_from_head: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(messages(&window.events), ["s 2", "s 3"]);

    let bad = logs.get_log_events(
        ACCOUNT,
        "g",
        "s",
        &GetEventsQuery {
            next_token: Some("zzz".into()),
            ..Default::default()
        },
    );
    assert!(matches!(bad, Err(LogsError::InvalidParameter(_))));
}

#[test]
fn filter_log_events_pages_across_streams_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &["a", "b"]);
    put_numbered(&logs, "a", 5, NOW_MS - 10_000, 2); // even offsets
    put_numbered(&logs, "b", 5, NOW_MS - 9_999, 2); // odd offsets
    let mut query = FilterQuery {
        limit: Some(3),
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = logs.filter_log_events(ACCOUNT, "g", &query).unwrap();
        seen.extend(page.items.iter().map(|e| (e.stream.clone(), e.timestamp)));
        match page.next_token {
            Some(token) => query.next_token = Some(token),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "time order across streams"
    );
    assert_eq!(seen[0].0, "a");
    assert_eq!(seen[1].0, "b");

    let matching = logs
        .filter_log_events(
            ACCOUNT,
            "g",
            &FilterQuery {
                pattern: "\"b 3\"".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(messages(&matching.items), ["b 3"]);
    assert_eq!(matching.next_token, None);

    let only_a = logs
        .filter_log_events(
            ACCOUNT,
            "g",
            &FilterQuery {
                stream_names: vec!["a".into()],
                start_ms: Some(NOW_MS - 10_000),
                end_ms: Some(NOW_MS - 9_996),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        messages(&only_a.items),
        ["a 0", "a 1", "a 2"],
        "endTime is inclusive"
    );

    let invalid = logs.filter_log_events(
        ACCOUNT,
        "g",
        &FilterQuery {
            pattern: "{ $.x = ".into(),
            ..Default::default()
        },
    );
    assert_eq!(invalid, Err(LogsError::invalid("Invalid filter pattern")));
    assert_eq!(
        logs.filter_log_events(ACCOUNT, "missing", &FilterQuery::default()),
        Err(LogsError::group_not_found())
    );
}

#[test]
fn describe_log_streams_orders_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &["c", "a", "b"]);
    put_numbered(&logs, "c", 1, NOW_MS - 5000, 1);
    put_numbered(&logs, "a", 1, NOW_MS - 1000, 1);
    put_numbered(&logs, "b", 1, NOW_MS - 3000, 1);
    let by_time = logs
        .describe_log_streams(
            ACCOUNT,
            "g",
            &StreamQuery {
                prefix: None,
                order: StreamOrder::LastEventTime,
                descending: true,
                next_token: None,
                limit: Some(2),
            },
        )
        .unwrap();
    let names: Vec<_> = by_time.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(by_time.items[0].last_event_ms, Some(NOW_MS - 1000));
    let rest = logs
        .describe_log_streams(
            ACCOUNT,
            "g",
            &StreamQuery {
                prefix: None,
                order: StreamOrder::LastEventTime,
                descending: true,
                next_token: by_time.next_token,
                limit: Some(2),
            },
        )
        .unwrap();
    assert_eq!(rest.items[0].name, "c");
    assert_eq!(rest.next_token, None);
    let refused = logs.describe_log_streams(
        ACCOUNT,
        "g",
        &StreamQuery {
            prefix: Some("a".into()),
            order: StreamOrder::LastEventTime,
            descending: false,
            next_token: None,
            limit: None,
        },
    );
    assert!(matches!(refused, Err(LogsError::InvalidParameter(_))));
}

#[test]
fn retention_deletes_old_events_at_once_and_on_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &["s"]);
    put_numbered(&logs, "s", 2, NOW_MS - 3 * DAY_MS, 1);
    put_numbered(&logs, "s", 2, NOW_MS - 1000, 1);
    logs.put_retention_policy(ACCOUNT, "g", 1).unwrap();
    let all = logs
        .filter_log_events(ACCOUNT, "g", &FilterQuery::default())
        .unwrap();
    assert_eq!(all.items.len(), 2, "the 3-day-old events are gone");
    assert_eq!(
        logs.log_group(ACCOUNT, "g").unwrap().retention_days,
        Some(1)
    );

    // A day and a bit later the sweeper takes the rest.
    let later = gust_store::sqlite::at(NOW_MS + DAY_MS + 1000);
    assert_eq!(logs.sweep(later).unwrap(), 2);
    assert!(logs
        .filter_log_events(ACCOUNT, "g", &FilterQuery::default())
        .unwrap()
        .items
        .is_empty());
    assert_eq!(logs.log_group(ACCOUNT, "g").unwrap().stored_bytes, 0);

    assert!(logs.put_retention_policy(ACCOUNT, "g", 2).is_err());
    logs.delete_retention_policy(ACCOUNT, "g").unwrap();
    assert_eq!(logs.log_group(ACCOUNT, "g").unwrap().retention_days, None);
}

#[test]
fn put_log_events_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let logs = open(&dir);
        setup(&logs, "g", &["s"]);
        put_numbered(&logs, "s", 3, NOW_MS - 100, 1);
        // No orderly shutdown: the store is leaked as a killed process would leave it.
        std::mem::forget(logs);
    }
    let logs = open(&dir);
    let page = from_head(&logs, "g", "s");
    assert_eq!(messages(&page.events), ["s 0", "s 1", "s 2"]);
}

#[test]
fn ingest_creates_group_and_stream_and_flush_commits() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    logs.ingest(
        ACCOUNT,
        "/aws/lambda/f",
        "2024/01/01/[$LATEST]abc",
        vec![(NOW_MS, "hello".into()), (NOW_MS + 1, String::new())],
    );
    logs.flush();
    let tail = logs.tail(ACCOUNT, "/aws/lambda/f", 0, None, 10).events;
    assert_eq!(messages(&tail), ["hello"], "empty messages are skipped");
    assert_eq!(tail[0].stream, "2024/01/01/[$LATEST]abc");
    assert!(logs
        .tail(ACCOUNT, "/aws/lambda/none", 0, None, 10)
        .events
        .is_empty());

    // Drop commits what was queued.
    logs.ingest(
        ACCOUNT,
        "/aws/lambda/f",
        "s2",
        vec![(NOW_MS + 5, "bye".into())],
    );
    drop(logs);
    let logs = open(&dir);
    let tail = logs
        .tail(ACCOUNT, "/aws/lambda/f", NOW_MS + 1, None, 10)
        .events;
    assert_eq!(messages(&tail), ["bye"]);
}

#[test]
fn ingest_bounds_pending_memory() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    let line = "y".repeat(64 * 1024);
    let producer = {
        let logs = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut peak = 0;
            // 48 MiB in 1 MiB calls: more than the queue holds.
            for i in 0..48 {
                let events: Vec<(i64, String)> = (0..16)
                    .map(|j| (NOW_MS + i * 16 + j, line.clone()))
                    .collect();
                logs.ingest(ACCOUNT, "big", "s", events);
                peak = peak.max(logs.pending_bytes());
            }
            peak
        })
    };
    let peak = producer.join().unwrap();
    assert!(peak <= PENDING_MAX, "pending {peak} bytes");
    logs.flush();
    assert_eq!(logs.pending_bytes(), 0);
    let count = logs
        .filter_log_events(
            ACCOUNT,
            "big",
            &FilterQuery {
                limit: Some(10_000),
                ..Default::default()
            },
        )
        .unwrap();
    // A page holds 1 MB; count the rest through tail.
    assert!(!count.items.is_empty());
    assert_eq!(follow(&logs, "big").len(), 48 * 16);
}

/// Every event of a group through `tail`, page after page; each page within its budget.
fn follow(logs: &Logs, group: &str) -> Vec<Event> {
    let mut all: Vec<Event> = Vec::new();
    loop {
        let after = all.last().map(|e| Position {
            timestamp: e.timestamp,
            id: e.id,
        });
        let page = logs.tail(ACCOUNT, group, 0, after, 100_000);
        assert!(page_bytes(&page.events) <= TAIL_BYTES_MAX || page.events.len() == 1);
        assert!(
            !page.more || !page.events.is_empty(),
            "more without progress"
        );
        all.extend(page.events);
        if !page.more {
            return all;
        }
    }
}

/// Messages' first characters (the big ones differ there), for readable failures.
fn heads(messages: &[String]) -> Vec<&str> {
    messages.iter().map(|m| &m[..m.len().min(8)]).collect()
}

fn page_bytes(events: &[Event]) -> usize {
    events.iter().map(|e| e.message.len() + 26).sum()
}

/// Ten 200 KB events sharing one timestamp, then three small ones.
fn big_events(logs: &Logs, group: &str) -> Vec<String> {
    let mut expected = Vec::new();
    let batch: Vec<(i64, String)> = (0..10)
        .map(|i| {
            let message = format!("{i:02}{}", "z".repeat(200_000));
            expected.push(message.clone());
            (NOW_MS, message)
        })
        .chain((0..3).map(|i| (NOW_MS + 1 + i, format!("small {i}"))))
        .collect();
    expected.extend((0..3).map(|i| format!("small {i}")));
    logs.ingest(ACCOUNT, group, "s", batch);
    logs.flush();
    expected
}

#[test]
fn tail_pages_by_bytes_without_loss_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    let expected = big_events(&logs, "g");
    let first = logs.tail(ACCOUNT, "g", 0, None, 100_000);
    // 5 × (200,002 + 26) bytes fit in 1 MiB; a sixth does not.
    assert_eq!(first.events.len(), 5);
    assert!(first.more);
    assert_eq!(heads(&messages(&follow(&logs, "g"))), heads(&expected));
    // The row limit ends a page too, and says so.
    let page = logs.tail(ACCOUNT, "g", NOW_MS + 1, None, 2);
    assert_eq!(messages(&page.events), ["small 0", "small 1"]);
    assert!(page.more);
    let page = logs.tail(ACCOUNT, "g", NOW_MS + 1, None, 3);
    assert!(!page.more);
}

#[test]
fn get_log_events_pages_hold_one_megabyte() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    let expected = big_events(&logs, "g");
    let mut seen = Vec::new();
    let mut query = GetEventsQuery {
        start_from_head: true,
        ..Default::default()
    };
    loop {
        let page = logs.get_log_events(ACCOUNT, "g", "s", &query).unwrap();
        assert!(page_bytes(&page.events) <= 1_048_576);
        if page.events.is_empty() {
            break;
        }
        seen.extend(messages(&page.events));
        query.next_token = Some(page.next_forward_token);
    }
    assert_eq!(heads(&seen), heads(&expected));
    // Backward from the end: the newest events that fit, oldest first.
    let page = logs
        .get_log_events(ACCOUNT, "g", "s", &GetEventsQuery::default())
        .unwrap();
    assert_eq!(heads(&messages(&page.events)), heads(&expected[5..]));
}

#[test]
fn filter_log_events_pages_hold_one_megabyte() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    let expected = big_events(&logs, "g");
    let mut seen = Vec::new();
    let mut query = FilterQuery {
        pattern: "z".into(),
        ..Default::default()
    };
    loop {
        let page = logs.filter_log_events(ACCOUNT, "g", &query).unwrap();
        assert!(page_bytes(&page.items) <= 1_048_576);
        seen.extend(messages(&page.items));
        match page.next_token {
            Some(token) => query.next_token = Some(token),
            None => break,
        }
    }
    assert_eq!(heads(&seen), heads(&expected[..10]));
}

#[test]
fn tags_on_groups_and_arns() {
    let dir = tempfile::tempdir().unwrap();
    let logs = open(&dir);
    setup(&logs, "g", &[]);
    let arn = logs.group_arn(ACCOUNT, "g");
    assert_eq!(arn, "arn:aws:logs:us-east-1:123456789012:log-group:g");
    assert_eq!(
        logs.group_of_arn(ACCOUNT, &format!("{arn}:*")).unwrap(),
        "g"
    );
    assert_eq!(
        logs.group_of_arn("000000000000", &arn),
        Err(LogsError::group_not_found())
    );
    logs.tag(ACCOUNT, "g", [("a".to_owned(), "1".to_owned())].into())
        .unwrap();
    logs.tag(ACCOUNT, "g", [("b".to_owned(), "2".to_owned())].into())
        .unwrap();
    logs.untag(ACCOUNT, "g", &["a".to_owned()]).unwrap();
    assert_eq!(
        logs.tags(ACCOUNT, "g").unwrap(),
        [("b".to_owned(), "2".to_owned())].into()
    );
    let many: std::collections::BTreeMap<String, String> =
        (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    assert!(matches!(
        logs.tag(ACCOUNT, "g", many),
        Err(LogsError::TooManyTags(_))
    ));
    assert_eq!(
        logs.tags(ACCOUNT, "nope"),
        Err(LogsError::group_not_found())
    );
}

//! The service over the real SQLite store, with a clock the tests move and a `Deliver` that
//! records what it is given and fails as told.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gust_model::targets::{BoxFuture, Deliver, Delivery, DeliveryError, Principal};
use gust_model::Clock;
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::{
    CreateBusInput, Events, EventsConfig, EventsError, InputTransformer, Page, PutEventsEntry,
    PutRuleInput, RetryPolicy, RuleState, Target,
};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:target";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:dlq";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    account: String,
    target: String,
    payload: String,
    principal: Principal,
    source: String,
    group: Option<String>,
}

#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<Sent>>,
    /// Per target: the outcomes of its next attempts (then success).
    script: Mutex<HashMap<String, VecDeque<Result<(), DeliveryError>>>>,
}

impl Recorder {
    fn fail(&self, target: &str, outcomes: Vec<Result<(), DeliveryError>>) {
        self.script
            .lock()
            .unwrap()
            .insert(target.to_owned(), outcomes.into());
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn to(&self, target: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.target == target)
            .collect()
    }

    fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }
}

impl Deliver for Recorder {
    fn deliver<'a>(&'a self, delivery: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.sent.lock().unwrap().push(Sent {
            account: delivery.account.to_owned(),
            target: delivery.target_arn.to_owned(),
            payload: delivery.payload.clone(),
            principal: delivery.principal,
            source: delivery.source_arn.to_owned(),
            group: delivery.message_group_id.map(str::to_owned),
        });
        let outcome = self
            .script
            .lock()
            .unwrap()
            .get_mut(delivery.target_arn)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()));
        Box::pin(async move { outcome })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    recorder: Arc<Recorder>,
    events: Arc<Events>,
}

fn config() -> EventsConfig {
    EventsConfig {
        retry_base: Duration::from_millis(1000),
        retry_cap: Duration::from_secs(60),
        ..EventsConfig::default()
    }
}

fn open(path: &Path, clock: &Arc<TestClock>, recorder: &Arc<Recorder>) -> Arc<Events> {
    Events::open(path, clock.clone(), REGION, recorder.clone(), config()).unwrap()
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(Mutex::new(datetime!(2024-03-01 10:00:00 UTC))));
        let recorder = Arc::new(Recorder::default());
        let events = open(&dir.path().join("events.db"), &clock, &recorder);
        Harness {
            _dir: dir,
            clock,
            recorder,
            events,
        }
    }

    /// The service as a restart would open it.
    fn reopen(&mut self) {
        self.events = open(
            &self._dir.path().join("events.db"),
            &self.clock,
            &self.recorder,
        );
    }

    fn rule(&self, name: &str, pattern: &str) -> String {
        self.events
            .put_rule(
                ACCOUNT,
                PutRuleInput {
                    name: name.into(),
                    event_pattern: Some(pattern.into()),
                    ..Default::default()
                },
            )
            .unwrap()
    }

    fn target(&self, rule: &str, target: Target) {
        let failures = self
            .events
            .put_targets(ACCOUNT, rule, None, vec![target])
            .unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }

    fn put(&self, entries: Vec<PutEventsEntry>) -> crate::PutEventsOutput {
        self.events.put_events(ACCOUNT, &entries).unwrap()
    }

    async fn run(&self) -> usize {
        self.events.run_due().await
    }

    fn pending(&self) -> usize {
        let far = crate::sqlite::ms(self.clock.now() + time::Duration::days(3650));
        self.events.store().due(far, 10_000).unwrap().0.len()
    }
}

fn target(id: &str, arn: &str) -> Target {
    Target {
        id: id.into(),
        arn: arn.into(),
        ..Target::default()
    }
}

fn entry(source: &str, detail_type: &str, detail: Value) -> PutEventsEntry {
    PutEventsEntry {
        source: Some(source.into()),
        detail_type: Some(detail_type.into()),
        detail: Some(detail.to_string()),
        ..Default::default()
    }
}

fn page() -> Page {
    Page::default()
}

#[test]
fn default_bus_always_exists_and_custom_buses_come_and_go() {
    let h = Harness::new();
    let bus = h.events.describe_event_bus(ACCOUNT, None).unwrap();
    assert_eq!(bus.name, "default");
    assert_eq!(
        bus.arn,
        "arn:aws:events:us-east-1:123456789012:event-bus/default"
    );
    assert_eq!(
        h.events.delete_event_bus(ACCOUNT, "default").unwrap_err(),
        EventsError::Validation("Cannot delete event bus default.".into())
    );
    let created = h
        .events
        .create_event_bus(
            ACCOUNT,
            CreateBusInput {
                name: "orders".into(),
                description: Some("Orders".into()),
                tags: vec![("team".into(), "a".into())],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        created.arn,
        "arn:aws:events:us-east-1:123456789012:event-bus/orders"
    );
    let again = h.events.create_event_bus(
        ACCOUNT,
        CreateBusInput {
            name: "orders".into(),
            ..Default::default()
        },
    );
    assert_eq!(
        again.unwrap_err(),
        EventsError::ResourceAlreadyExists("Event bus orders already exists.".into())
    );
    // By ARN too.
    let described = h
        .events
        .describe_event_bus(ACCOUNT, Some(&created.arn))
        .unwrap();
    assert_eq!(described.description.as_deref(), Some("Orders"));
    for name in ["ordinary", "other"] {
        h.events
            .create_event_bus(
                ACCOUNT,
                CreateBusInput {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    let listed = h
        .events
        .list_event_buses(ACCOUNT, Some("ord"), &page())
        .unwrap();
    let names: Vec<_> = listed.items.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["orders", "ordinary"]);
    let first = h
        .events
        .list_event_buses(
            ACCOUNT,
            None,
            &Page {
                limit: Some(2),
                next_token: None,
            },
        )
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = h
        .events
        .list_event_buses(
            ACCOUNT,
            None,
            &Page {
                limit: Some(2),
                next_token: first.next_token.clone(),
            },
        )
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_token.is_none());
    // Another account has only its default bus.
    assert_eq!(
        h.events
            .list_event_buses("210987654321", None, &page())
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(h.events.delete_event_bus(ACCOUNT, "nothing").is_ok());
    h.events.delete_event_bus(ACCOUNT, "orders").unwrap();
    assert_eq!(
        h.events
            .describe_event_bus(ACCOUNT, Some("orders"))
            .unwrap_err(),
        EventsError::ResourceNotFound("Event bus orders does not exist.".into())
    );
    assert!(matches!(
        h.events.create_event_bus(
            ACCOUNT,
            CreateBusInput {
                name: "a/b".into(),
                ..Default::default()
            }
        ),
        Err(EventsError::Validation(_))
    ));
}

#[test]
fn rules_are_put_described_listed_and_replaced() {
    let h = Harness::new();
    let arn = h.rule("my-rule", r#"{"source": ["app"]}"#);
    assert_eq!(arn, "arn:aws:events:us-east-1:123456789012:rule/my-rule");
    h.events
        .create_event_bus(
            ACCOUNT,
            CreateBusInput {
                name: "orders".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let custom = h
        .events
        .put_rule(
            ACCOUNT,
            PutRuleInput {
                name: "on-orders".into(),
                event_pattern: Some(r#"{"source": ["shop"]}"#.into()),
                event_bus_name: Some("orders".into()),
                description: Some("first".into()),
                tags: vec![("k".into(), "v".into())],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        custom,
        "arn:aws:events:us-east-1:123456789012:rule/orders/on-orders"
    );
    let rule = h
        .events
        .describe_rule(ACCOUNT, "on-orders", Some("orders"))
        .unwrap();
    assert_eq!(rule.description.as_deref(), Some("first"));
    assert_eq!(rule.state, RuleState::Enabled);
    // A put replaces every setting; tags and targets stay.
    h.events
        .put_rule(
            ACCOUNT,
            PutRuleInput {
                name: "on-orders".into(),
                event_pattern: Some(r#"{"source": ["shop2"]}"#.into()),
                event_bus_name: Some(
                    "arn:aws:events:us-east-1:123456789012:event-bus/orders".into(),
                ),
                state: Some(RuleState::Disabled),
                ..Default::default()
            },
        )
        .unwrap();
    let rule = h
        .events
        .describe_rule(ACCOUNT, "on-orders", Some("orders"))
        .unwrap();
    assert_eq!(rule.description, None);
    assert_eq!(rule.state, RuleState::Disabled);
    assert_eq!(rule.tags.get("k").map(String::as_str), Some("v"));
    h.events
        .enable_rule(ACCOUNT, "on-orders", Some("orders"))
        .unwrap();
    assert_eq!(
        h.events
            .describe_rule(ACCOUNT, "on-orders", Some("orders"))
            .unwrap()
            .state,
        RuleState::Enabled
    );
    assert_eq!(
        h.events
            .describe_rule(ACCOUNT, "on-orders", None)
            .unwrap_err(),
        EventsError::ResourceNotFound("Rule on-orders does not exist on EventBus default.".into())
    );
    let listed = h
        .events
        .list_rules(ACCOUNT, Some("my"), None, &page())
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        h.events
            .list_rules(ACCOUNT, None, Some("nothing"), &page())
            .unwrap_err(),
        EventsError::ResourceNotFound("Event bus nothing does not exist.".into())
    );

    // Validation.
    let put = |input: PutRuleInput| h.events.put_rule(ACCOUNT, input);
    assert_eq!(
        put(PutRuleInput {
            name: "x".into(),
            ..Default::default()
        })
        .unwrap_err(),
        EventsError::Validation(
            "Parameter(s) EventPattern or ScheduleExpression must be specified.".into()
        )
    );
    assert_eq!(
        put(PutRuleInput {
            name: "x".into(),
            schedule_expression: Some("rate(5 minutes)".into()),
            event_bus_name: Some("orders".into()),
            ..Default::default()
        })
        .unwrap_err(),
        EventsError::Validation(
            "ScheduleExpression is supported only on the default event bus.".into()
        )
    );
    for bad in [
        "rate(0 minutes)",
        "at(2024-01-01T00:00:00)",
        "every day",
        "cron(0 12 * * * *)",
    ] {
        assert_eq!(
            put(PutRuleInput {
                name: "x".into(),
                schedule_expression: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err(),
            EventsError::Validation("Parameter ScheduleExpression is not valid.".into()),
            "{bad}"
        );
    }
    assert_eq!(
        put(PutRuleInput {
            name: "x".into(),
            event_pattern: Some(r#"{"detail": {}}"#.into()),
            ..Default::default()
        })
        .unwrap_err(),
        EventsError::InvalidEventPattern(
            "Event pattern is not valid. Reason: Empty objects are not allowed".into()
        )
    );
    assert!(put(PutRuleInput {
        name: "cron".into(),
        schedule_expression: Some("cron(0 12 * * ? *)".into()),
        ..Default::default()
    })
    .is_ok());
}

#[test]
fn targets_are_limited_validated_and_block_rule_deletion() {
    let h = Harness::new();
    h.rule("r", r#"{"source": ["app"]}"#);
    let five: Vec<Target> = (0..5).map(|i| target(&format!("t{i}"), QUEUE)).collect();
    assert!(h
        .events
        .put_targets(ACCOUNT, "r", None, five)
        .unwrap()
        .is_empty());
    // Replacing an existing Id is not a sixth target.
    assert!(h
        .events
        .put_targets(ACCOUNT, "r", None, vec![target("t0", FUNCTION)])
        .unwrap()
        .is_empty());
    assert_eq!(
        h.events
            .put_targets(ACCOUNT, "r", None, vec![target("t5", QUEUE)])
            .unwrap_err(),
        EventsError::LimitExceeded(
            "The requested resource exceeds the maximum number allowed.".into()
        )
    );
    let listed = h
        .events
        .list_targets_by_rule(ACCOUNT, "r", None, &page())
        .unwrap();
    assert_eq!(listed.items.len(), 5);
    assert_eq!(listed.items[0].arn, FUNCTION);
    assert_eq!(
        h.events
            .list_rule_names_by_target(ACCOUNT, FUNCTION, None, &page())
            .unwrap()
            .items,
        vec!["r".to_owned()]
    );

    assert_eq!(
        h.events.delete_rule(ACCOUNT, "r", None).unwrap_err(),
        EventsError::Validation("Rule can't be deleted since it has targets.".into())
    );
    let ids: Vec<String> = ["t0", "t1", "t2", "t3", "t4", "nope"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let failures = h.events.remove_targets(ACCOUNT, "r", None, &ids).unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].target_id, "nope");
    assert_eq!(failures[0].error_code, "ResourceNotFoundException");
    h.events.delete_rule(ACCOUNT, "r", None).unwrap();
    assert!(h.events.delete_rule(ACCOUNT, "r", None).is_ok());

    // Per-entry failures, and request-wide ones.
    h.rule("r", r#"{"source": ["app"]}"#);
    let failures = h
        .events
        .put_targets(
            ACCOUNT,
            "r",
            None,
            vec![
                target("bad-arn", "not-an-arn"),
                target("fifo", "arn:aws:sqs:us-east-1:123456789012:q.fifo"),
                target("ok", QUEUE),
            ],
        )
        .unwrap();
    let failed: Vec<_> = failures.iter().map(|f| f.target_id.as_str()).collect();
    assert_eq!(failed, ["bad-arn", "fifo"]);
    assert_eq!(
        failures[1].error_message,
        "Parameter(s) SqsParameters must be specified for target: fifo."
    );
    assert_eq!(
        h.events
            .list_targets_by_rule(ACCOUNT, "r", None, &page())
            .unwrap()
            .items
            .len(),
        1
    );
    let both = Target {
        input: Some("{}".into()),
        input_path: Some("$.detail".into()),
        ..target("both", QUEUE)
    };
    assert_eq!(
        h.events
            .put_targets(ACCOUNT, "r", None, vec![both])
            .unwrap_err(),
        EventsError::Validation(
            "Only one of Input, InputPath, or InputTransformer must be provided for target both."
                .into()
        )
    );
    let undefined = Target {
        input_transformer: Some(InputTransformer {
            input_paths_map: [("a".to_owned(), "$.detail.a".to_owned())].into(),
            input_template: r#"{"a": <a>, "b": <b>}"#.into(),
        }),
        ..target("tx", QUEUE)
    };
    assert_eq!(
        h.events
            .put_targets(ACCOUNT, "r", None, vec![undefined])
            .unwrap_err(),
        EventsError::Validation(
            "InputTemplate for target tx contains invalid placeholder b.".into()
        )
    );
    assert_eq!(
        h.events
            .put_targets(ACCOUNT, "missing", None, vec![target("x", QUEUE)])
            .unwrap_err(),
        EventsError::ResourceNotFound("Rule missing does not exist on EventBus default.".into())
    );
}

#[tokio::test]
async fn events_are_routed_by_pattern_to_enabled_rules_of_their_bus() {
    let h = Harness::new();
    let orders = h.rule(
        "orders",
        r#"{"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}"#,
    );
    h.target(
        "orders",
        Target {
            message_group_id: None,
            ..target("q", QUEUE)
        },
    );
    h.target("orders", target("f", FUNCTION));
    h.rule("disabled", r#"{"source": ["shop"]}"#);
    h.target(
        "disabled",
        target("q", "arn:aws:sqs:us-east-1:123456789012:disabled"),
    );
    h.events.disable_rule(ACCOUNT, "disabled", None).unwrap();
    h.events
        .create_event_bus(
            ACCOUNT,
            CreateBusInput {
                name: "other".into(),
                ..Default::default()
            },
        )
        .unwrap();
    h.events
        .put_rule(
            ACCOUNT,
            PutRuleInput {
                name: "elsewhere".into(),
                event_pattern: Some(r#"{"source": ["shop"]}"#.into()),
                event_bus_name: Some("other".into()),
                ..Default::default()
            },
        )
        .unwrap();
    h.events
        .put_targets(
            ACCOUNT,
            "elsewhere",
            Some("other"),
            vec![target("q", "arn:aws:sqs:us-east-1:123456789012:other")],
        )
        .unwrap();

    let output = h.put(vec![
        PutEventsEntry {
            resources: vec!["arn:aws:shop:::order/1".into()],
            time: Some(datetime!(2024-03-01 09:59:58.250 UTC)),
            ..entry("shop", "Order Placed", json!({"total": 250, "id": "o-1"}))
        },
        entry("shop", "Order Placed", json!({"total": 5})),
    ]);
    assert_eq!(output.failed_entry_count, 0);
    let event_id = output.entries[0].event_id.clone().unwrap();
    // Committed before put_events returned.
    assert_eq!(h.pending(), 2);
    assert_eq!(h.run().await, 2);
    assert_eq!(h.pending(), 0);
    let sent = h.recorder.sent();
    assert_eq!(sent.len(), 2);
    let mut targets: Vec<_> = sent.iter().map(|s| s.target.as_str()).collect();
    targets.sort();
    assert_eq!(targets, [FUNCTION, QUEUE]);
    for s in &sent {
        assert_eq!(s.principal, Principal::Events);
        assert_eq!(s.source, orders);
        assert_eq!(s.account, ACCOUNT);
        let event: Value = serde_json::from_str(&s.payload).unwrap();
        assert_eq!(
            event,
            json!({
                "version": "0",
                "id": event_id,
                "detail-type": "Order Placed",
                "source": "shop",
                "account": ACCOUNT,
                "time": "2024-03-01T09:59:58Z",
                "region": REGION,
                "resources": ["arn:aws:shop:::order/1"],
                "detail": {"total": 250, "id": "o-1"}
            })
        );
        // The members are in EventBridge's order.
        assert!(s.payload.starts_with(r#"{"version":"0","id":"#));
    }

    // The other bus's rule gets events sent there only.
    h.recorder.clear();
    let output = h.put(vec![PutEventsEntry {
        event_bus_name: Some("arn:aws:events:us-east-1:123456789012:event-bus/other".into()),
        ..entry("shop", "Order Placed", json!({}))
    }]);
    assert_eq!(output.failed_entry_count, 0);
    h.run().await;
    let sent = h.recorder.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].target, "arn:aws:sqs:us-east-1:123456789012:other");
    assert_eq!(
        sent[0].source,
        "arn:aws:events:us-east-1:123456789012:rule/other/elsewhere"
    );
}

#[test]
fn put_events_validates_each_entry() {
    let h = Harness::new();
    let output = h.put(vec![
        PutEventsEntry {
            source: None,
            ..entry("s", "t", json!({}))
        },
        PutEventsEntry {
            detail_type: None,
            ..entry("s", "t", json!({}))
        },
        PutEventsEntry {
            detail: None,
            ..entry("s", "t", json!({}))
        },
        PutEventsEntry {
            detail: Some("{not json".into()),
            ..entry("s", "t", json!({}))
        },
        PutEventsEntry {
            detail: Some("[1, 2]".into()),
            ..entry("s", "t", json!({}))
        },
        PutEventsEntry {
            event_bus_name: Some("no-such-bus".into()),
            ..entry("s", "t", json!({}))
        },
        entry("s", "t", json!({"ok": true})),
    ]);
    assert_eq!(output.failed_entry_count, 5);
    let codes: Vec<_> = output
        .entries
        .iter()
        .map(|e| e.error_code.as_deref())
        .collect();
    assert_eq!(
        codes,
        [
            Some("InvalidArgument"),
            Some("InvalidArgument"),
            Some("InvalidArgument"),
            Some("MalformedDetail"),
            Some("MalformedDetail"),
            None,
            None
        ]
    );
    assert_eq!(
        output.entries[0].error_message.as_deref(),
        Some("Parameter Source is not valid. Reason: Source is a required argument.")
    );
    assert_eq!(
        output.entries[3].error_message.as_deref(),
        Some("Detail is malformed.")
    );
    assert!(output.entries[5].event_id.is_some());
    let big = "x".repeat(300 * 1024);
    assert_eq!(
        h.events
            .put_events(ACCOUNT, &[entry("s", "t", json!({ "big": big }))])
            .unwrap_err(),
        EventsError::Validation(
            "Total size of the entries in the request is over the limit.".into()
        )
    );
    let eleven: Vec<_> = (0..11).map(|_| entry("s", "t", json!({}))).collect();
    assert!(matches!(
        h.events.put_events(ACCOUNT, &eleven),
        Err(EventsError::Validation(_))
    ));
}

#[tokio::test]
async fn targets_get_their_input_path_or_transformed_input() {
    let h = Harness::new();
    let rule = h.rule("ec2", r#"{"source": ["aws.ec2"]}"#);
    h.target(
        "ec2",
        Target {
            input: Some(r#"{"constant": 1}"#.into()),
            ..target("constant", "arn:aws:sqs:us-east-1:123456789012:c")
        },
    );
    h.target(
        "ec2",
        Target {
            input_path: Some("$.detail".into()),
            ..target("path", "arn:aws:sqs:us-east-1:123456789012:p")
        },
    );
    h.target(
        "ec2",
        Target {
            input_transformer: Some(InputTransformer {
                input_paths_map: [
                    ("instance".to_owned(), "$.detail.instance-id".to_owned()),
                    ("state".to_owned(), "$.detail.state".to_owned()),
                ]
                .into(),
                input_template: r#"{"instance": <instance>, "message": "instance <instance> is in <state>", "rule": <aws.events.rule-name>, "arn": "<aws.events.rule-arn>"}"#.into(),
            }),
            ..target("template", "arn:aws:sqs:us-east-1:123456789012:t")
        },
    );
    h.target(
        "ec2",
        Target {
            input_transformer: Some(InputTransformer {
                input_paths_map: [("state".to_owned(), "$.detail.state".to_owned())].into(),
                input_template: r#""the state is <state>""#.into(),
            }),
            ..target("string", "arn:aws:sqs:us-east-1:123456789012:s")
        },
    );
    h.put(vec![entry(
        "aws.ec2",
        "EC2 Instance State-change Notification",
        json!({"instance-id": "i-0123456789", "state": "RUNNING"}),
    )]);
    assert_eq!(h.run().await, 4);
    let payload = |queue: &str| {
        h.recorder
            .to(&format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))[0]
            .payload
            .clone()
    };
    assert_eq!(payload("c"), r#"{"constant": 1}"#);
    assert_eq!(
        payload("p"),
        r#"{"instance-id":"i-0123456789","state":"RUNNING"}"#
    );
    let templated: Value = serde_json::from_str(&payload("t")).unwrap();
    assert_eq!(
        templated,
        json!({"instance": "i-0123456789", "message": "instance i-0123456789 is in RUNNING", "rule": "ec2", "arn": rule})
    );
    assert_eq!(payload("s"), r#""the state is RUNNING""#);
}

#[tokio::test]
async fn retries_back_off_then_go_to_the_dead_letter_queue() {
    let h = Harness::new();
    let rule = h.rule("r", r#"{"source": ["app"]}"#);
    h.target(
        "r",
        Target {
            retry_policy: Some(RetryPolicy {
                maximum_retry_attempts: Some(2),
                maximum_event_age_in_seconds: None,
            }),
            dead_letter_arn: Some(DLQ.into()),
            ..target("flaky", QUEUE)
        },
    );
    let busy = || Err(DeliveryError::Retry("throttled".into()));
    h.recorder.fail(QUEUE, vec![busy(), busy(), busy(), busy()]);
    h.put(vec![entry("app", "thing", json!({"n": 1}))]);
    assert_eq!(h.run().await, 1);
    // Not due again until its back-off has passed.
    assert_eq!(h.run().await, 0);
    h.clock.advance(time::Duration::seconds(1));
    assert_eq!(h.run().await, 1);
    assert_eq!(h.run().await, 0);
    h.clock.advance(time::Duration::seconds(2));
    assert_eq!(h.run().await, 1);
    // Retries exhausted: the event goes to the dead-letter queue at once.
    assert_eq!(h.recorder.to(QUEUE).len(), 3);
    assert_eq!(h.run().await, 1);
    let dead = h.recorder.to(DLQ);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].source, rule);
    assert_eq!(dead[0].principal, Principal::Events);
    let event: Value = serde_json::from_str(&dead[0].payload).unwrap();
    assert_eq!(event["detail"], json!({"n": 1}));
    assert_eq!(h.pending(), 0);
}

#[tokio::test]
async fn failures_skip_retries_and_old_events_stop_being_retried() {
    let h = Harness::new();
    h.rule("r", r#"{"source": ["app"]}"#);
    h.target(
        "r",
        Target {
            dead_letter_arn: Some(DLQ.into()),
            ..target("gone", QUEUE)
        },
    );
    h.target(
        "r",
        Target {
            retry_policy: Some(RetryPolicy {
                maximum_retry_attempts: None,
                maximum_event_age_in_seconds: Some(60),
            }),
            ..target("young", FUNCTION)
        },
    );
    h.recorder.fail(
        QUEUE,
        vec![Err(DeliveryError::Fail("no such queue".into()))],
    );
    h.recorder.fail(
        FUNCTION,
        (0..100)
            .map(|_| Err(DeliveryError::Retry("busy".into())))
            .collect(),
    );
    h.put(vec![entry("app", "thing", json!({}))]);
    assert_eq!(h.run().await, 2);
    // The permanent failure goes straight to the dead-letter queue.
    assert_eq!(h.run().await, 1);
    assert_eq!(h.recorder.to(QUEUE).len(), 1);
    assert_eq!(h.recorder.to(DLQ).len(), 1);
    // The other is retried until the event is a minute old, then dropped (no DLQ).
    for _ in 0..30 {
        h.clock.advance(time::Duration::seconds(10));
        h.run().await;
    }
    assert_eq!(h.pending(), 0);
    let attempts = h.recorder.to(FUNCTION).len();
    assert!((2..=8).contains(&attempts), "{attempts}");
}

#[tokio::test]
async fn deliveries_survive_a_restart() {
    let mut h = Harness::new();
    h.rule("r", r#"{"source": ["app"]}"#);
    h.target("r", target("q", QUEUE));
    h.recorder
        .fail(QUEUE, vec![Err(DeliveryError::Retry("down".into()))]);
    h.put(vec![
        entry("app", "a", json!({})),
        entry("app", "b", json!({})),
    ]);
    assert_eq!(h.run().await, 2);
    h.reopen();
    assert_eq!(h.pending(), 1);
    h.clock.advance(time::Duration::seconds(5));
    assert_eq!(h.run().await, 1);
    assert_eq!(h.pending(), 0);
    assert_eq!(h.recorder.to(QUEUE).len(), 3);
}

#[tokio::test]
async fn scheduled_rules_fire_once_per_time_across_restarts() {
    let mut h = Harness::new();
    let arn = h
        .events
        .put_rule(
            ACCOUNT,
            PutRuleInput {
                name: "every-5".into(),
                schedule_expression: Some("rate(5 minutes)".into()),
                ..Default::default()
            },
        )
        .unwrap();
    h.target("every-5", target("q", QUEUE));
    let next = h.events.fire_schedules().unwrap();
    assert_eq!(next, Some(datetime!(2024-03-01 10:05:00 UTC)));
    assert_eq!(h.pending(), 0);

    h.clock.advance(time::Duration::minutes(5));
    h.events.fire_schedules().unwrap();
    h.events.fire_schedules().unwrap();
    h.reopen();
    h.events.fire_schedules().unwrap();
    assert_eq!(h.run().await, 1);
    let sent = h.recorder.to(QUEUE);
    assert_eq!(sent.len(), 1);
    let event: Value = serde_json::from_str(&sent[0].payload).unwrap();
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
    assert_eq!(event["time"], "2024-03-01T10:05:00Z");
    assert_eq!(event["resources"], json!([arn]));
    assert_eq!(event["detail"], json!({}));
    assert_eq!(sent[0].source, arn);

    // Down for three hours: the latest missed time fires once at start.
    h.clock
        .advance(time::Duration::hours(3) + time::Duration::seconds(30));
    h.reopen();
    h.events.fire_schedules().unwrap();
    h.events.fire_schedules().unwrap();
    assert_eq!(h.run().await, 1);
    let sent = h.recorder.to(QUEUE);
    let event: Value = serde_json::from_str(&sent[1].payload).unwrap();
    assert_eq!(event["time"], "2024-03-01T13:05:00Z");

    // A disabled rule does not fire; enabled again, it counts from then.
    h.events.disable_rule(ACCOUNT, "every-5", None).unwrap();
    h.clock.advance(time::Duration::minutes(10));
    h.events.fire_schedules().unwrap();
    assert_eq!(h.pending(), 0);
    h.events.enable_rule(ACCOUNT, "every-5", None).unwrap();
    h.events.fire_schedules().unwrap();
    assert_eq!(h.pending(), 0);
}

#[tokio::test]
async fn a_missed_time_beyond_the_retry_window_is_not_delivered() {
    let mut h = Harness::new();
    h.events
        .put_rule(
            ACCOUNT,
            PutRuleInput {
                name: "noon".into(),
                schedule_expression: Some("cron(0 12 * * ? *)".into()),
                ..Default::default()
            },
        )
        .unwrap();
    h.target(
        "noon",
        Target {
            retry_policy: Some(RetryPolicy {
                maximum_retry_attempts: None,
                maximum_event_age_in_seconds: Some(600),
            }),
            ..target("short", QUEUE)
        },
    );
    h.target("noon", target("long", FUNCTION));
    // The server is down from before noon until 12:30.
    h.clock
        .advance(time::Duration::hours(2) + time::Duration::minutes(30));
    h.reopen();
    h.events.fire_schedules().unwrap();
    assert_eq!(h.run().await, 1);
    assert_eq!(h.recorder.to(FUNCTION).len(), 1);
    assert!(h.recorder.to(QUEUE).is_empty());
    // Fired for noon: not again.
    h.events.fire_schedules().unwrap();
    assert_eq!(h.pending(), 0);
    assert_eq!(
        h.events.fire_schedules().unwrap(),
        Some(datetime!(2024-03-02 12:00:00 UTC))
    );
}

#[test]
fn tags_on_rules_and_buses() {
    let h = Harness::new();
    let rule = h.rule("r", r#"{"source": ["app"]}"#);
    let bus = h.events.describe_event_bus(ACCOUNT, None).unwrap().arn;
    for arn in [&rule, &bus] {
        h.events
            .tag_resource(
                ACCOUNT,
                arn,
                &[("a".into(), "1".into()), ("b".into(), "2".into())],
            )
            .unwrap();
        h.events
            .untag_resource(ACCOUNT, arn, &["a".into()])
            .unwrap();
        let tags = h.events.list_tags(ACCOUNT, arn).unwrap();
        assert_eq!(
            tags.into_iter().collect::<Vec<_>>(),
            vec![("b".to_owned(), "2".to_owned())]
        );
    }
    assert_eq!(
        h.events
            .list_tags(ACCOUNT, "arn:aws:events:us-east-1:123456789012:rule/nope")
            .unwrap_err(),
        EventsError::ResourceNotFound("Rule nope does not exist on EventBus default.".into())
    );
    assert!(matches!(
        h.events
            .list_tags(ACCOUNT, "arn:aws:sqs:us-east-1:123456789012:q"),
        Err(EventsError::Validation(_))
    ));
}

#[test]
fn test_event_pattern_needs_a_whole_event() {
    let h = Harness::new();
    let event = json!({
        "id": "e1", "account": ACCOUNT, "source": "app", "time": "2024-03-01T10:00:00Z",
        "region": REGION, "resources": [], "detail-type": "thing", "detail": {"n": 3}
    })
    .to_string();
    assert!(h
        .events
        .test_event_pattern(r#"{"detail": {"n": [{"numeric": [">", 2]}]}}"#, &event)
        .unwrap());
    assert!(!h
        .events
        .test_event_pattern(r#"{"source": ["other"]}"#, &event)
        .unwrap());
    assert_eq!(
        h.events
            .test_event_pattern(r#"{"source": ["app"]}"#, r#"{"source": "app"}"#)
            .unwrap_err(),
        EventsError::Validation("Parameter Event is not valid.".into())
    );
    assert!(matches!(
        h.events.test_event_pattern("[]", &event),
        Err(EventsError::InvalidEventPattern(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_delivers_and_retries_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let events = Events::open(
        &dir.path().join("events.db"),
        Arc::new(gust_model::SystemClock),
        REGION,
        recorder.clone(),
        EventsConfig {
            retry_base: Duration::from_millis(20),
            retry_cap: Duration::from_millis(100),
            poll_interval: Duration::from_millis(50),
            ..EventsConfig::default()
        },
    )
    .unwrap();
    events.start();
    events
        .put_rule(
            ACCOUNT,
            PutRuleInput {
                name: "r".into(),
                event_pattern: Some(r#"{"source": ["app"]}"#.into()),
                ..Default::default()
            },
        )
        .unwrap();
    events
        .put_targets(ACCOUNT, "r", None, vec![target("q", QUEUE)])
        .unwrap();
    let busy = || Err(DeliveryError::Retry("busy".into()));
    recorder.fail(QUEUE, vec![busy(), busy()]);
    events
        .put_events(ACCOUNT, &[entry("app", "t", json!({}))])
        .unwrap();
    for _ in 0..200 {
        if recorder.to(QUEUE).len() == 3 && events.store().due(i64::MAX, 10).unwrap().0.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("delivered {} times", recorder.to(QUEUE).len());
}

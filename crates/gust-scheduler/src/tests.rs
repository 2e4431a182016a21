//! The service over the real SQLite store, with a clock the tests move and a fake `Deliver`
//! that records what it is given and answers as scripted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gust_model::targets::{BoxFuture, Deliver, Delivery, DeliveryError, Principal};
use gust_model::Clock;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::delivery::{EXHAUSTED_AGE, EXHAUSTED_ATTEMPTS};
use crate::model::{DeadLetterConfig, FlexibleMode, RetryPolicyInput, SqsParameters};
use crate::{
    ActionAfterCompletion, Page, ScheduleFilter, ScheduleInput, ScheduleState, Scheduler,
    SchedulerConfig, SchedulerError,
};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:nightly-cleanup";
const WARMER: &str = "arn:aws:lambda:us-east-1:123456789012:function:api";
const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:jobs";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:jobs-dlq";

#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap() = at;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
    answers: Mutex<HashMap<String, VecDeque<Result<(), DeliveryError>>>>,
}

impl Recorder {
    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    fn to(&self, target: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.target == target)
            .collect()
    }

    fn answer(&self, target: &str, answers: Vec<Result<(), DeliveryError>>) {
        self.answers
            .lock()
            .unwrap()
            .entry(target.to_owned())
            .or_default()
            .extend(answers);
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
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get_mut(delivery.target_arn)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()));
        Box::pin(async move { answer })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    deliver: Arc<Recorder>,
    service: Arc<Scheduler>,
}

fn config() -> SchedulerConfig {
    SchedulerConfig {
        retry_base_delay: Duration::from_secs(1),
        retry_max_delay: Duration::from_secs(60),
        poll_interval: Duration::from_millis(50),
    }
}

fn open(path: &Path, clock: &Arc<TestClock>, deliver: &Arc<Recorder>) -> Arc<Scheduler> {
    Scheduler::open(
        path,
        Arc::clone(clock) as Arc<dyn Clock>,
        REGION,
        Arc::clone(deliver) as Arc<dyn Deliver>,
        config(),
    )
    .unwrap()
}

fn fixture(now: OffsetDateTime) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(now)));
    let deliver = Arc::new(Recorder::default());
    let service = open(&dir.path().join("scheduler.db"), &clock, &deliver);
    Fixture {
        _dir: dir,
        clock,
        deliver,
        service,
    }
}

impl Fixture {
    /// Closes the service and opens it again on the same database ("a restart").
    fn reopen(&mut self) {
        let path = self._dir.path().join("scheduler.db");
        self.service = open(&path, &self.clock, &self.deliver);
    }

    async fn tick(&self, at: OffsetDateTime) {
        self.clock.set(at);
        self.service.tick(at).await;
    }

    fn create(&self, name: &str, input: &ScheduleInput) -> String {
        self.service.create_schedule(ACCOUNT, name, input).unwrap()
    }
}

fn input(expression: &str, target: &str) -> ScheduleInput {
    ScheduleInput::new(expression, target)
}

fn payloads(sent: &[Sent]) -> Vec<String> {
    sent.iter().map(|s| s.payload.clone()).collect()
}

#[tokio::test]
async fn nightly_cleanup_fires_at_two_in_its_time_zone() {
    let f = fixture(datetime!(2024-06-01 12:00 UTC));
    let mut nightly = input("cron(0 2 * * ? *)", FUNCTION);
    nightly.timezone = Some("America/New_York".into());
    nightly.target.input =
        Some(r#"{"task":"cleanup","at":"<aws.scheduler.scheduled-time>"}"#.into());
    let arn = f.create("nightly-cleanup", &nightly);
    assert_eq!(
        arn,
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly-cleanup"
    );

    // 02:00 in New York is 06:00 UTC in summer.
    f.tick(datetime!(2024-06-02 05:59:59 UTC)).await;
    assert!(f.deliver.sent().is_empty());
    f.tick(datetime!(2024-06-02 06:00 UTC)).await;
    let sent = f.deliver.sent();
    assert_eq!(
        sent,
        vec![Sent {
            account: ACCOUNT.into(),
            target: FUNCTION.into(),
            payload: r#"{"task":"cleanup","at":"2024-06-02T06:00:00Z"}"#.into(),
            principal: Principal::Scheduler,
            source: arn.clone(),
            group: None,
        }]
    );
    // Once per scheduled time.
    f.tick(datetime!(2024-06-02 06:00:00.5 UTC)).await;
    f.tick(datetime!(2024-06-02 12:00 UTC)).await;
    assert_eq!(f.deliver.sent().len(), 1);
    f.tick(datetime!(2024-06-03 06:00 UTC)).await;
    assert_eq!(
        payloads(&f.deliver.sent())[1],
        r#"{"task":"cleanup","at":"2024-06-03T06:00:00Z"}"#
    );
    // In winter 02:00 New York is 07:00 UTC.
    f.tick(datetime!(2024-12-10 06:59 UTC)).await;
    let before = f.deliver.sent().len();
    f.tick(datetime!(2024-12-11 06:30 UTC)).await; // the 10th's 07:00 (caught up) fires
    f.tick(datetime!(2024-12-11 07:00 UTC)).await;
    let late: Vec<String> = payloads(&f.deliver.sent()[before..]);
    assert_eq!(
        late,
        vec![
            r#"{"task":"cleanup","at":"2024-12-10T07:00:00Z"}"#.to_owned(),
            r#"{"task":"cleanup","at":"2024-12-11T07:00:00Z"}"#.to_owned(),
        ]
    );
}

#[tokio::test]
async fn warm_up_fires_every_five_minutes_with_the_default_payload() {
    let t0 = datetime!(2024-06-01 12:00 UTC);
    let f = fixture(t0);
    let arn = f.create("warm-up", &input("rate(5 minutes)", WARMER));
    let minutes = |m: i64| t0 + time::Duration::minutes(m);
    f.tick(minutes(4) + time::Duration::seconds(59)).await;
    assert!(f.deliver.sent().is_empty());
    f.tick(minutes(5)).await;
    f.tick(minutes(7)).await;
    f.tick(minutes(10)).await;
    f.tick(minutes(14)).await;
    let sent = f.deliver.sent();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| s.payload == "{}" && s.source == arn));
}

#[tokio::test]
async fn a_one_time_schedule_fires_once_and_is_deleted_after() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    let mut once = input("at(2024-06-01T13:00:00)", FUNCTION);
    once.timezone = Some("Europe/Paris".into()); // 11:00 UTC
    once.action_after_completion = Some(ActionAfterCompletion::Delete);
    f.create("once", &once);
    let mut kept = once.clone();
    kept.action_after_completion = None;
    f.create("kept", &kept);

    f.tick(datetime!(2024-06-01 10:59:59 UTC)).await;
    assert!(f.deliver.sent().is_empty());
    f.tick(datetime!(2024-06-01 11:00 UTC)).await;
    assert_eq!(f.deliver.sent().len(), 2);
    assert_eq!(
        f.service.get_schedule(ACCOUNT, None, "once"),
        Err(SchedulerError::ResourceNotFound(
            "Schedule once does not exist.".into()
        ))
    );
    let kept = f.service.get_schedule(ACCOUNT, None, "kept").unwrap();
    assert_eq!(kept.last_fired, Some(datetime!(2024-06-01 11:00 UTC)));
    f.tick(datetime!(2024-06-02 11:00 UTC)).await;
    assert_eq!(f.deliver.sent().len(), 2);
}

#[tokio::test]
async fn a_schedule_deleted_after_completion_waits_for_its_retries() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    let mut once = input("at(2024-06-01T11:00:00)", QUEUE);
    once.action_after_completion = Some(ActionAfterCompletion::Delete);
    f.create("once", &once);
    f.deliver
        .answer(QUEUE, vec![Err(DeliveryError::Retry("busy".into()))]);
    f.tick(datetime!(2024-06-01 11:00 UTC)).await;
    assert!(f.service.get_schedule(ACCOUNT, None, "once").is_ok());
    f.tick(datetime!(2024-06-01 11:00:01 UTC)).await;
    assert_eq!(f.deliver.to(QUEUE).len(), 2);
    assert!(f.service.get_schedule(ACCOUNT, None, "once").is_err());
}

/// The scheduled times delivered, read from the payloads.
fn scheduled_times(sent: &[Sent]) -> Vec<String> {
    sent.iter().map(|s| s.payload.clone()).collect()
}

#[tokio::test]
async fn daylight_saving_changes_skip_the_gap_and_fire_once_in_the_overlap() {
    let f = fixture(datetime!(2024-03-08 12:00 UTC));
    let mut spring = input("cron(30 2 * * ? *)", FUNCTION);
    spring.timezone = Some("America/New_York".into());
    spring.target.input = Some(r#""<aws.scheduler.scheduled-time>""#.into());
    f.create("spring", &spring);
    let mut at = datetime!(2024-03-08 12:00 UTC);
    while at < datetime!(2024-03-12 00:00 UTC) {
        at += time::Duration::minutes(15);
        f.tick(at).await;
    }
    // 02:30 does not exist on 10 March.
    assert_eq!(
        scheduled_times(&f.deliver.sent()),
        [r#""2024-03-09T07:30:00Z""#, r#""2024-03-11T06:30:00Z""#]
    );

    let f = fixture(datetime!(2024-11-02 12:00 UTC));
    let mut autumn = input("cron(30 1 * * ? *)", FUNCTION);
    autumn.timezone = Some("America/New_York".into());
    autumn.target.input = Some(r#""<aws.scheduler.scheduled-time>""#.into());
    f.create("autumn", &autumn);
    let mut at = datetime!(2024-11-02 12:00 UTC);
    while at < datetime!(2024-11-04 12:00 UTC) {
        at += time::Duration::minutes(15);
        f.tick(at).await;
    }
    // 01:30 happens twice on 3 November: it fires at the first.
    assert_eq!(
        scheduled_times(&f.deliver.sent()),
        [r#""2024-11-03T05:30:00Z""#, r#""2024-11-04T06:30:00Z""#]
    );
}

#[tokio::test]
async fn no_double_firing_after_a_restart() {
    let t0 = datetime!(2024-06-01 12:00 UTC);
    let hours = |h: i64| t0 + time::Duration::hours(h);
    let mut f = fixture(t0);
    f.create("hourly", &input("rate(1 hour)", QUEUE));
    f.tick(hours(1)).await;
    assert_eq!(f.deliver.sent().len(), 1);

    f.reopen();
    f.tick(hours(1) + time::Duration::milliseconds(500)).await;
    f.tick(hours(1) + time::Duration::minutes(30)).await;
    assert_eq!(f.deliver.sent().len(), 1);
    f.tick(hours(2)).await;
    assert_eq!(f.deliver.sent().len(), 2);

    // A crash between the firing's commit and the delivery: the restart delivers it once
    // and does not fire again.
    f.clock.set(hours(3));
    f.service.fire_due(hours(3));
    assert_eq!(f.deliver.sent().len(), 2);
    f.reopen();
    f.tick(hours(3)).await;
    f.tick(hours(3) + time::Duration::seconds(1)).await;
    assert_eq!(f.deliver.sent().len(), 3);
    assert!(f.service.lock().deliveries.is_empty());
}

#[tokio::test]
async fn a_time_missed_while_down_fires_once_within_the_event_age() {
    let mut f = fixture(datetime!(2024-06-01 00:00 UTC));
    let mut nightly = input("cron(0 2 * * ? *)", FUNCTION);
    nightly.target.retry_policy = Some(RetryPolicyInput {
        maximum_event_age_in_seconds: Some(3600),
        maximum_retry_attempts: None,
    });
    nightly.target.input = Some(r#""<aws.scheduler.scheduled-time>""#.into());
    f.create("within", &nightly);
    nightly.target.arn = WARMER.into();
    f.create("beyond", &nightly);
    let mut frequent = input("rate(5 minutes)", QUEUE);
    frequent.target.input = Some("<aws.scheduler.scheduled-time>".into());
    f.create("frequent", &frequent);

    // Down from midnight; back at 02:30: "within" catches up (30 minutes late), the warm-up
    // fires once for the 30 times it missed, with the latest.
    f.reopen();
    f.tick(datetime!(2024-06-01 02:30 UTC)).await;
    let to_function = f.deliver.to(FUNCTION);
    assert_eq!(payloads(&to_function), [r#""2024-06-01T02:00:00Z""#]);
    assert_eq!(payloads(&f.deliver.to(QUEUE)), ["2024-06-01T02:30:00Z"]);

    // "beyond" comes back at 03:30, 90 minutes late: too old.
    let mut g = fixture(datetime!(2024-06-01 00:00 UTC));
    g.create("beyond", &nightly);
    g.reopen();
    g.tick(datetime!(2024-06-01 03:30 UTC)).await;
    assert!(g.deliver.sent().is_empty());
    g.tick(datetime!(2024-06-02 02:00 UTC)).await;
    assert_eq!(payloads(&g.deliver.sent()), [r#""2024-06-02T02:00:00Z""#]);
}

fn with_dlq(expression: &str, retries: i64, age: Option<i64>) -> ScheduleInput {
    let mut job = input(expression, QUEUE);
    job.target.retry_policy = Some(RetryPolicyInput {
        maximum_event_age_in_seconds: age,
        maximum_retry_attempts: Some(retries),
    });
    job.target.dead_letter_config = Some(DeadLetterConfig {
        arn: Some(DLQ.into()),
    });
    job.target.input = Some("attempt <aws.scheduler.attempt-number>".into());
    job
}

#[tokio::test]
async fn retries_with_back_off_then_the_dead_letter_queue() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    let arn = f.create("job", &with_dlq("at(2024-06-01T11:00:00)", 2, None));
    let busy = || Err(DeliveryError::Retry("Rate exceeded".into()));
    f.deliver.answer(QUEUE, vec![busy(), busy(), busy()]);
    // The dead-letter queue is busy once too, so the message can be looked at.
    f.deliver.answer(DLQ, vec![busy()]);
    let at = datetime!(2024-06-01 11:00 UTC);
    let seconds = |s: i64| at + time::Duration::seconds(s);

    f.tick(at).await; // attempt 1; retry in 1 s
    f.tick(seconds(1)).await; // attempt 2; retry in 2 s
    f.tick(seconds(2)).await;
    assert_eq!(f.deliver.to(QUEUE).len(), 2);
    f.tick(seconds(3)).await; // attempt 3: two retries made, the policy's all
    assert_eq!(
        payloads(&f.deliver.to(QUEUE)),
        ["attempt 1", "attempt 2", "attempt 3"]
    );
    let letter = {
        let state = f.service.lock();
        let pending: Vec<_> = state.deliveries.values().cloned().collect();
        assert_eq!(pending.len(), 1);
        pending[0].dead_letter.clone().unwrap()
    };
    assert_eq!(letter.payload, "attempt 3");
    let attribute = |name: &str| letter.attributes.get(name).cloned();
    assert_eq!(
        attribute("EXHAUSTED_RETRY_CONDITION").as_deref(),
        Some(EXHAUSTED_ATTEMPTS)
    );
    assert_eq!(attribute("RETRY_ATTEMPTS").as_deref(), Some("2"));
    assert_eq!(attribute("ERROR_MESSAGE").as_deref(), Some("Rate exceeded"));
    assert_eq!(attribute("SCHEDULE_ARN"), Some(arn.clone()));
    assert_eq!(attribute("TARGET_ARN").as_deref(), Some(QUEUE));
    assert_eq!(
        attribute("SCHEDULED_TIME").as_deref(),
        Some("2024-06-01T11:00:00Z")
    );
    assert_eq!(attribute("IS_PAYLOAD_TRUNCATED").as_deref(), Some("false"));
    assert_eq!(attribute("EXECUTION_ID").map(|id| id.len()), Some(16));

    f.tick(seconds(4)).await; // the dead-letter queue's retry
    let dead = f.deliver.to(DLQ);
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[1].payload, "attempt 3");
    assert_eq!(dead[1].source, arn);
    assert_eq!(dead[1].principal, Principal::Scheduler);
    assert!(f.service.lock().deliveries.is_empty());
    f.tick(seconds(60)).await;
    assert_eq!(f.deliver.sent().len(), 5);
}

#[tokio::test]
async fn a_failure_goes_straight_to_the_dead_letter_queue() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    f.create("job", &with_dlq("at(2024-06-01T11:00:00)", 185, None));
    f.deliver.answer(
        QUEUE,
        vec![Err(DeliveryError::Fail(
            "The specified queue does not exist".into(),
        ))],
    );
    f.deliver
        .answer(DLQ, vec![Err(DeliveryError::Retry("busy".into()))]);
    f.tick(datetime!(2024-06-01 11:00 UTC)).await;
    assert_eq!(f.deliver.to(QUEUE).len(), 1);
    let letter = f
        .service
        .lock()
        .deliveries
        .values()
        .next()
        .cloned()
        .unwrap();
    let attributes = letter.dead_letter.unwrap().attributes;
    assert!(!attributes.contains_key("EXHAUSTED_RETRY_CONDITION"));
    assert_eq!(attributes["RETRY_ATTEMPTS"], "0");
    assert_eq!(
        attributes["ERROR_MESSAGE"],
        "The specified queue does not exist"
    );
    f.tick(datetime!(2024-06-01 11:00:01 UTC)).await;
    assert_eq!(f.deliver.to(DLQ).len(), 2);
}

#[tokio::test]
async fn retries_stop_at_the_maximum_event_age() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    let service = Scheduler::open(
        &f._dir.path().join("slow.db"),
        Arc::clone(&f.clock) as Arc<dyn Clock>,
        REGION,
        Arc::clone(&f.deliver) as Arc<dyn Deliver>,
        SchedulerConfig {
            retry_base_delay: Duration::from_secs(40),
            ..config()
        },
    )
    .unwrap();
    service
        .create_schedule(
            ACCOUNT,
            "job",
            &with_dlq("at(2024-06-01T11:00:00)", 185, Some(60)),
        )
        .unwrap();
    let busy = || Err(DeliveryError::Retry("Rate exceeded".into()));
    f.deliver.answer(QUEUE, vec![busy(), busy()]);
    f.deliver.answer(DLQ, vec![busy()]);
    let at = datetime!(2024-06-01 11:00 UTC);
    service.tick(at).await; // retry in 40 s
    service.tick(at + time::Duration::seconds(40)).await; // next would be 80 s later: too old
    assert_eq!(f.deliver.to(QUEUE).len(), 2);
    let letter = service.lock().deliveries.values().next().cloned().unwrap();
    let attributes = letter.dead_letter.unwrap().attributes;
    assert_eq!(attributes["EXHAUSTED_RETRY_CONDITION"], EXHAUSTED_AGE);
    assert_eq!(attributes["RETRY_ATTEMPTS"], "1");
}

#[tokio::test]
async fn without_a_dead_letter_queue_a_failed_invocation_is_dropped() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    f.create("job", &input("at(2024-06-01T11:00:00)", QUEUE));
    f.deliver
        .answer(QUEUE, vec![Err(DeliveryError::Fail("gone".into()))]);
    f.tick(datetime!(2024-06-01 11:00 UTC)).await;
    assert_eq!(f.deliver.sent().len(), 1);
    assert!(f.service.lock().deliveries.is_empty());
}

#[tokio::test]
async fn a_flexible_window_fires_once_within_it() {
    let f = fixture(datetime!(2024-06-01 10:00 UTC));
    let mut flexible = input("at(2024-06-01T11:00:00)", QUEUE);
    flexible.flexible_time_window.mode = FlexibleMode::Flexible;
    flexible.flexible_time_window.maximum_window_in_minutes = Some(10);
    f.create("flexible", &flexible);
    let start = datetime!(2024-06-01 11:00 UTC);
    let mut fired_at = Vec::new();
    let mut at = start - time::Duration::seconds(30);
    while at <= start + time::Duration::minutes(12) {
        f.tick(at).await;
        if f.deliver.sent().len() > fired_at.len() {
            fired_at.push(at);
        }
        at += time::Duration::seconds(30);
    }
    assert_eq!(fired_at.len(), 1, "{fired_at:?}");
    assert!(fired_at[0] >= start && fired_at[0] <= start + time::Duration::seconds(630));
}

#[tokio::test]
async fn state_and_dates_bound_firing() {
    let t0 = datetime!(2024-06-01 12:00 UTC);
    let hours = |h: i64| t0 + time::Duration::hours(h);
    let f = fixture(t0);
    let mut disabled = input("rate(1 hour)", QUEUE);
    disabled.state = Some(ScheduleState::Disabled);
    f.create("disabled", &disabled);
    let mut later = input("rate(1 hour)", WARMER);
    later.start = Some(hours(2) + time::Duration::minutes(30));
    later.end = Some(hours(4) + time::Duration::minutes(30));
    f.create("later", &later);
    let mut fifo = input(
        "rate(1 hour)",
        "arn:aws:sqs:us-east-1:123456789012:jobs.fifo",
    );
    fifo.target.sqs_parameters = Some(SqsParameters {
        message_group_id: Some("nightly".into()),
    });
    f.create("fifo", &fifo);
    for h in 1..=6 {
        f.tick(hours(h)).await;
        f.tick(hours(h) + time::Duration::minutes(30)).await;
    }
    assert!(f.deliver.to(QUEUE).is_empty());
    // From its start date, before its (exclusive) end date.
    assert_eq!(f.deliver.to(WARMER).len(), 2);
    let fifo_sent = f.deliver.to("arn:aws:sqs:us-east-1:123456789012:jobs.fifo");
    assert_eq!(fifo_sent.len(), 6);
    assert_eq!(fifo_sent[0].group.as_deref(), Some("nightly"));

    // Enabling restarts it from now.
    f.clock.set(hours(7));
    let mut enabled = disabled.clone();
    enabled.state = Some(ScheduleState::Enabled);
    f.service
        .update_schedule(ACCOUNT, "disabled", &enabled)
        .unwrap();
    f.tick(hours(7) + time::Duration::minutes(59)).await;
    assert!(f.deliver.to(QUEUE).is_empty());
    f.tick(hours(8)).await;
    assert_eq!(f.deliver.to(QUEUE).len(), 1);
}

#[tokio::test]
async fn the_driver_fires_on_time_by_itself() {
    let f = fixture(OffsetDateTime::now_utc());
    let now = OffsetDateTime::now_utc();
    let service = Scheduler::open(
        &f._dir.path().join("live.db"),
        Arc::new(gust_model::SystemClock),
        REGION,
        Arc::clone(&f.deliver) as Arc<dyn Deliver>,
        config(),
    )
    .unwrap();
    let at = now + time::Duration::seconds(2);
    let expression = format!(
        "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let mut once = input(&expression, QUEUE);
    once.target.input = Some("<aws.scheduler.scheduled-time>".into());
    service.create_schedule(ACCOUNT, "soon", &once).unwrap();
    let driver = service.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while f.deliver.sent().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_at = OffsetDateTime::now_utc();
    assert_eq!(f.deliver.sent().len(), 1);
    let scheduled = at.replace_nanosecond(0).unwrap();
    assert!(delivered_at >= scheduled);
    assert!(delivered_at - scheduled < time::Duration::seconds(1));
    drop(service);
    tokio::time::timeout(Duration::from_secs(3), driver)
        .await
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Operations.

#[test]
fn groups_have_a_default_and_delete_their_schedules() {
    let f = fixture(datetime!(2024-06-01 12:00 UTC));
    let s = &f.service;
    let default = s.get_schedule_group(ACCOUNT, "default").unwrap();
    assert_eq!(
        default.arn,
        "arn:aws:scheduler:us-east-1:123456789012:schedule-group/default"
    );
    assert_eq!(default.created, None);
    let tags = BTreeMap::from([("team".to_owned(), "ops".to_owned())]);
    let arn = s
        .create_schedule_group(ACCOUNT, "ops", tags.clone(), Some("token-1"))
        .unwrap();
    assert_eq!(
        arn,
        "arn:aws:scheduler:us-east-1:123456789012:schedule-group/ops"
    );
    // The same client token answers the same group; another is a conflict.
    assert_eq!(
        s.create_schedule_group(ACCOUNT, "ops", BTreeMap::new(), Some("token-1")),
        Ok(arn.clone())
    );
    assert_eq!(
        s.create_schedule_group(ACCOUNT, "ops", BTreeMap::new(), Some("token-2")),
        Err(SchedulerError::Conflict(
            "Schedule group ops already exists.".into()
        ))
    );
    assert!(matches!(
        s.create_schedule_group(ACCOUNT, "default", BTreeMap::new(), None),
        Err(SchedulerError::Conflict(_))
    ));
    assert_eq!(s.list_tags(ACCOUNT, &arn), Ok(tags));
    let mut job = input("rate(1 hour)", QUEUE);
    job.group = Some("ops".into());
    let job_arn = s.create_schedule(ACCOUNT, "job", &job).unwrap();
    assert_eq!(
        job_arn,
        "arn:aws:scheduler:us-east-1:123456789012:schedule/ops/job"
    );
    assert!(s.get_schedule(ACCOUNT, Some("ops"), "job").is_ok());
    assert_eq!(
        s.get_schedule(ACCOUNT, None, "job"),
        Err(SchedulerError::schedule_not_found("job"))
    );

    let listed = s
        .list_schedule_groups(ACCOUNT, None, &Page::default())
        .unwrap();
    let names: Vec<&str> = listed.items.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["default", "ops"]);
    let listed = s
        .list_schedule_groups(ACCOUNT, Some("o"), &Page::default())
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    s.delete_schedule_group(ACCOUNT, "ops").unwrap();
    assert_eq!(
        s.get_schedule_group(ACCOUNT, "ops"),
        Err(SchedulerError::ResourceNotFound(
            "Schedule group ops does not exist.".into()
        ))
    );
    assert!(s.get_schedule(ACCOUNT, Some("ops"), "job").is_err());
    assert!(s
        .list_schedules(ACCOUNT, &ScheduleFilter::default(), &Page::default())
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        s.delete_schedule_group(ACCOUNT, "default"),
        Err(SchedulerError::Validation(_))
    ));
    assert!(matches!(
        s.create_schedule(ACCOUNT, "job", &job),
        Err(SchedulerError::ResourceNotFound(_))
    ));
    // Another account has its own default group only.
    assert_eq!(
        s.list_schedule_groups("210987654321", None, &Page::default())
            .unwrap()
            .items
            .len(),
        1
    );
}

#[test]
fn schedules_are_created_read_updated_listed_and_deleted() {
    let f = fixture(datetime!(2024-06-01 12:00 UTC));
    let s = &f.service;
    let mut job = input("cron(0 2 * * ? *)", FUNCTION);
    job.description = Some("nightly".into());
    job.client_token = Some("abc".into());
    job.kms_key_arn = Some("arn:aws:kms:us-east-1:123456789012:key/k".into());
    s.create_schedule(ACCOUNT, "b-job", &job).unwrap();
    // Idempotent with the same token.
    assert!(s.create_schedule(ACCOUNT, "b-job", &job).is_ok());
    job.client_token = None;
    assert_eq!(
        s.create_schedule(ACCOUNT, "b-job", &job),
        Err(SchedulerError::Conflict(
            "Schedule b-job already exists.".into()
        ))
    );
    s.create_schedule(ACCOUNT, "a-job", &input("rate(1 day)", QUEUE))
        .unwrap();
    let mut off = input("rate(1 day)", QUEUE);
    off.state = Some(ScheduleState::Disabled);
    s.create_schedule(ACCOUNT, "c-off", &off).unwrap();

    let got = s.get_schedule(ACCOUNT, None, "b-job").unwrap();
    assert_eq!(got.description.as_deref(), Some("nightly"));
    assert_eq!(got.target.retry_policy.maximum_retry_attempts, 185);
    assert_eq!(got.target.retry_policy.maximum_event_age_in_seconds, 86_400);
    assert_eq!(got.state, ScheduleState::Enabled);
    assert_eq!(got.created, datetime!(2024-06-01 12:00 UTC));

    // Update replaces everything: the description goes.
    f.clock.set(datetime!(2024-06-01 13:00 UTC));
    s.update_schedule(ACCOUNT, "b-job", &input("rate(2 hours)", QUEUE))
        .unwrap();
    let got = s.get_schedule(ACCOUNT, None, "b-job").unwrap();
    assert_eq!(got.description, None);
    assert_eq!(got.expression, "rate(2 hours)");
    assert_eq!(got.created, datetime!(2024-06-01 12:00 UTC));
    assert_eq!(got.modified, datetime!(2024-06-01 13:00 UTC));
    assert_eq!(
        s.update_schedule(ACCOUNT, "nope", &input("rate(2 hours)", QUEUE)),
        Err(SchedulerError::schedule_not_found("nope"))
    );

    let page = Page {
        max_results: Some(2),
        next_token: None,
    };
    let first = s
        .list_schedules(ACCOUNT, &ScheduleFilter::default(), &page)
        .unwrap();
    let names: Vec<&str> = first.items.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["a-job", "b-job"]);
    let second = s
        .list_schedules(
            ACCOUNT,
            &ScheduleFilter::default(),
            &Page {
                max_results: Some(2),
                next_token: first.next_token.clone(),
            },
        )
        .unwrap();
    assert_eq!(second.items[0].name, "c-off");
    assert_eq!(second.next_token, None);
    let disabled = s
        .list_schedules(
            ACCOUNT,
            &ScheduleFilter {
                state: Some(ScheduleState::Disabled),
                ..ScheduleFilter::default()
            },
            &Page::default(),
        )
        .unwrap();
    assert_eq!(disabled.items.len(), 1);
    let prefixed = s
        .list_schedules(
            ACCOUNT,
            &ScheduleFilter {
                name_prefix: Some("b-".into()),
                ..ScheduleFilter::default()
            },
            &Page::default(),
        )
        .unwrap();
    assert_eq!(prefixed.items.len(), 1);
    assert!(matches!(
        s.list_schedules(
            ACCOUNT,
            &ScheduleFilter {
                group: Some("missing".into()),
                ..ScheduleFilter::default()
            },
            &Page::default()
        ),
        Err(SchedulerError::ResourceNotFound(_))
    ));
    assert!(matches!(
        s.list_schedules(
            ACCOUNT,
            &ScheduleFilter::default(),
            &Page {
                max_results: None,
                next_token: Some("garbage".into())
            }
        ),
        Err(SchedulerError::Validation(_))
    ));

    s.delete_schedule(ACCOUNT, None, "a-job").unwrap();
    assert_eq!(
        s.delete_schedule(ACCOUNT, None, "a-job"),
        Err(SchedulerError::schedule_not_found("a-job"))
    );
    // Another account sees none of it.
    assert!(s.get_schedule("210987654321", None, "b-job").is_err());
}

#[test]
fn settings_are_checked() {
    let f = fixture(datetime!(2024-06-01 12:00 UTC));
    let s = &f.service;
    let refused = |input: &ScheduleInput, says: &str| match s.create_schedule(ACCOUNT, "x", input) {
        Err(SchedulerError::Validation(message)) => {
            assert!(message.contains(says), "{message} (wanted {says})")
        }
        other => panic!("{other:?} (wanted {says})"),
    };
    refused(&input("rate(0 minutes)", QUEUE), "positive");
    refused(&input("every day", QUEUE), "Invalid schedule expression");
    let mut zoned = input("cron(0 2 * * ? *)", QUEUE);
    zoned.timezone = Some("Mars/Olympus_Mons".into());
    refused(&zoned, "IANA");
    refused(
        &input(
            "rate(1 hour)",
            "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        ),
        "Gust delivers to Lambda functions",
    );
    refused(
        &input(
            "rate(1 hour)",
            "arn:aws:scheduler:::aws-sdk:sqs:sendMessage",
        ),
        "universal targets",
    );
    let mut ecs = input("rate(1 hour)", QUEUE);
    ecs.target.other_parameters = vec!["EcsParameters".into()];
    refused(&ecs, "EcsParameters is not supported");
    let mut sqs_params = input("rate(1 hour)", FUNCTION);
    sqs_params.target.sqs_parameters = Some(SqsParameters::default());
    refused(&sqs_params, "SqsParameters");
    let mut text = input("rate(1 hour)", FUNCTION);
    text.target.input = Some("not json".into());
    refused(&text, "well-formed JSON");
    let mut queue_text = input("rate(1 hour)", QUEUE);
    queue_text.target.input = Some("not json".into());
    assert!(s.create_schedule(ACCOUNT, "text", &queue_text).is_ok());
    let mut fifo_dlq = input("rate(1 hour)", QUEUE);
    fifo_dlq.target.dead_letter_config = Some(DeadLetterConfig {
        arn: Some("arn:aws:sqs:us-east-1:123456789012:dlq.fifo".into()),
    });
    refused(&fifo_dlq, "standard Amazon SQS queue");
    let mut flexible = input("rate(1 hour)", QUEUE);
    flexible.flexible_time_window.mode = FlexibleMode::Flexible;
    refused(&flexible, "MaximumWindowInMinutes must be specified");
    flexible.flexible_time_window.maximum_window_in_minutes = Some(1441);
    refused(&flexible, "between 1 and 1440");
    let mut retry = input("rate(1 hour)", QUEUE);
    retry.target.retry_policy = Some(RetryPolicyInput {
        maximum_event_age_in_seconds: Some(59),
        maximum_retry_attempts: None,
    });
    refused(&retry, "between 60 and 86400");
    let mut old_start = input("rate(1 hour)", QUEUE);
    old_start.start = Some(datetime!(2024-06-01 11:54 UTC));
    refused(&old_start, "cannot be earlier than 5 minutes ago");
    let mut backwards = input("rate(1 hour)", QUEUE);
    backwards.start = Some(datetime!(2024-06-02 00:00 UTC));
    backwards.end = Some(datetime!(2024-06-01 23:00 UTC));
    refused(&backwards, "later than the StartDate");
    // A one-time schedule ignores its dates.
    let mut once = input("at(2024-06-02T00:00:00)", QUEUE);
    once.start = Some(datetime!(2020-01-01 00:00 UTC));
    assert!(s.create_schedule(ACCOUNT, "once", &once).is_ok());
    assert!(matches!(
        s.create_schedule(ACCOUNT, "bad name", &input("rate(1 hour)", QUEUE)),
        Err(SchedulerError::Validation(_))
    ));
}

#[test]
fn tags_belong_to_groups() {
    let f = fixture(datetime!(2024-06-01 12:00 UTC));
    let s = &f.service;
    let arn = s
        .create_schedule_group(ACCOUNT, "ops", BTreeMap::new(), None)
        .unwrap();
    s.tag_resource(
        ACCOUNT,
        &arn,
        BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]),
    )
    .unwrap();
    s.untag_resource(ACCOUNT, &arn, &["a".to_owned(), "zzz".to_owned()])
        .unwrap();
    assert_eq!(
        s.list_tags(ACCOUNT, &arn).unwrap(),
        BTreeMap::from([("b".to_owned(), "2".to_owned())])
    );
    // The default group can be tagged too, and keeps its tags across a restart.
    let default = "arn:aws:scheduler:us-east-1:123456789012:schedule-group/default";
    s.tag_resource(
        ACCOUNT,
        default,
        BTreeMap::from([("env".to_owned(), "dev".to_owned())]),
    )
    .unwrap();
    let mut f = f;
    f.reopen();
    assert_eq!(f.service.list_tags(ACCOUNT, default).unwrap().len(), 1);
    assert_eq!(f.service.list_tags(ACCOUNT, &arn).unwrap().len(), 1);
    assert_eq!(
        f.service.list_tags(
            ACCOUNT,
            "arn:aws:scheduler:us-east-1:123456789012:schedule-group/none"
        ),
        Err(SchedulerError::group_not_found("none"))
    );
    assert!(f
        .service
        .list_tags(
            "210987654321",
            "arn:aws:scheduler:us-east-1:123456789012:schedule-group/ops"
        )
        .is_err());
}

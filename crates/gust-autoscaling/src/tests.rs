//! The service over the real SQLite store, with a clock the tests move and a fake Lambda.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gust_model::Clock;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::model::{ActivityStatus, DIMENSION, METRIC, NAMESPACE, TARGET_TRACKING};
use crate::{
    Autoscaling, AutoscalingError, Filter, Page, Provisioned, PutScalingPolicy, PutScheduledAction,
    RegisterTarget, SuspendedUpdate, TargetTrackingInput,
};

const ACCOUNT: &str = "123456789012";
const BLUE: &str = "function:my-function:BLUE";

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

type Key = (String, String, String);

#[derive(Debug, Default)]
struct FakeLambda {
    functions: Mutex<HashSet<Key>>,
    requested: Mutex<HashMap<Key, u32>>,
    utilization: Mutex<HashMap<Key, f64>>,
    sets: Mutex<Vec<u32>>,
    fail: AtomicBool,
}

fn key(account: &str, function: &str, qualifier: &str) -> Key {
    (account.into(), function.into(), qualifier.into())
}

impl FakeLambda {
    fn add(&self, function: &str, qualifier: &str) {
        self.functions
            .lock()
            .unwrap()
            .insert(key(ACCOUNT, function, qualifier));
    }

    fn requested_now(&self) -> Option<u32> {
        self.requested
            .lock()
            .unwrap()
            .get(&key(ACCOUNT, "my-function", "BLUE"))
            .copied()
    }

    fn set_now(&self, value: u32) {
        self.requested
            .lock()
            .unwrap()
            .insert(key(ACCOUNT, "my-function", "BLUE"), value);
    }

    fn set_utilization(&self, value: f64) {
        self.utilization
            .lock()
            .unwrap()
            .insert(key(ACCOUNT, "my-function", "BLUE"), value);
    }

    fn sets(&self) -> Vec<u32> {
        self.sets.lock().unwrap().clone()
    }
}

impl Provisioned for FakeLambda {
    fn exists(&self, account: &str, function: &str, qualifier: &str) -> Result<bool, String> {
        Ok(self
            .functions
            .lock()
            .unwrap()
            .contains(&key(account, function, qualifier)))
    }

    fn requested(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<u32>, String> {
        Ok(self
            .requested
            .lock()
            .unwrap()
            .get(&key(account, function, qualifier))
            .copied())
    }

    fn set_requested(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
        requested: u32,
    ) -> Result<(), String> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("Lambda is unavailable".into());
        }
        self.sets.lock().unwrap().push(requested);
        let mut map = self.requested.lock().unwrap();
        if requested == 0 {
            map.remove(&key(account, function, qualifier));
        } else {
            map.insert(key(account, function, qualifier), requested);
        }
        Ok(())
    }

    fn utilization(&self, account: &str, function: &str, qualifier: &str) -> Option<f64> {
        let allocated = self
            .requested
            .lock()
            .unwrap()
            .contains_key(&key(account, function, qualifier));
        if !allocated {
            return None;
        }
        self.utilization
            .lock()
            .unwrap()
            .get(&key(account, function, qualifier))
            .copied()
    }
}

struct Fixture {
    service: Arc<Autoscaling>,
    clock: Arc<TestClock>,
    lambda: Arc<FakeLambda>,
    dir: tempfile::TempDir,
}

const START: OffsetDateTime = datetime!(2024-06-03 10:00 UTC);

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(START)));
    let lambda = Arc::new(FakeLambda::default());
    lambda.add("my-function", "BLUE");
    lambda.add("my-function", "GREEN");
    lambda.add("other", "1");
    let service = Autoscaling::open(
        &dir.path().join("autoscaling.db"),
        clock.clone(),
        "us-east-1",
        lambda.clone(),
    )
    .unwrap();
    Fixture {
        service,
        clock,
        lambda,
        dir,
    }
}

impl Fixture {
    /// The service as a restarted process sees it.
    fn reopen(&self) -> Arc<Autoscaling> {
        Autoscaling::open(
            &self.dir.path().join("autoscaling.db"),
            self.clock.clone(),
            "us-east-1",
            self.lambda.clone(),
        )
        .unwrap()
    }

    fn register(
        &self,
        resource_id: &str,
        min: i64,
        max: i64,
    ) -> Result<crate::ScalableTarget, AutoscalingError> {
        self.service.register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            resource_id,
            DIMENSION,
            RegisterTarget {
                min_capacity: Some(min),
                max_capacity: Some(max),
                ..RegisterTarget::default()
            },
        )
    }

    fn put_action(
        &self,
        name: &str,
        schedule: &str,
        timezone: Option<&str>,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Result<(), AutoscalingError> {
        self.service.put_scheduled_action(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            PutScheduledAction {
                name: name.into(),
                schedule: Some(schedule.into()),
                timezone: timezone.map(str::to_owned),
                target_action: Some((min, max)),
                ..PutScheduledAction::default()
            },
        )
    }

    fn put_policy(
        &self,
        name: &str,
        target_value: f64,
    ) -> Result<crate::PolicyCreated, AutoscalingError> {
        self.service.put_scaling_policy(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            PutScalingPolicy {
                name: name.into(),
                policy_type: Some(TARGET_TRACKING.into()),
                target_tracking: Some(TargetTrackingInput {
                    target_value,
                    predefined: Some((METRIC.into(), None)),
                    ..TargetTrackingInput::default()
                }),
                ..PutScalingPolicy::default()
            },
        )
    }

    fn target(&self) -> crate::ScalableTarget {
        self.service
            .describe_scalable_targets(
                ACCOUNT,
                NAMESPACE,
                &Filter {
                    resource_ids: vec![BLUE.into()],
                    ..Filter::default()
                },
                &Page::default(),
            )
            .unwrap()
            .items
            .remove(0)
    }

    fn activities(&self) -> Vec<crate::ScalingActivity> {
        self.service
            .describe_scaling_activities(ACCOUNT, NAMESPACE, &Filter::default(), &Page::default())
            .unwrap()
            .items
    }

    fn at(&self, at: OffsetDateTime) {
        self.clock.set(at);
        self.service.tick(at);
    }
}

fn at_expression(at: OffsetDateTime) -> String {
    format!(
        "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn validation(result: Result<impl std::fmt::Debug, AutoscalingError>) -> String {
    match result {
        Err(AutoscalingError::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

#[test]
fn registers_validates_and_updates_targets() {
    let f = fixture();
    // A new target needs both bounds.
    let message = validation(f.service.register_scalable_target(
        ACCOUNT,
        NAMESPACE,
        BLUE,
        DIMENSION,
        RegisterTarget {
            min_capacity: Some(1),
            ..RegisterTarget::default()
        },
    ));
    assert!(
        message.contains("MinCapacity and MaxCapacity are required"),
        "{message}"
    );
    assert_eq!(
        validation(f.register(BLUE, 5, 2)),
        "Maximum capacity cannot be less than minimum capacity"
    );
    assert!(validation(f.register(BLUE, -1, 2)).contains("cannot be less than 0"));
    assert!(
        validation(f.register("function:missing:BLUE", 1, 2)).contains("has no alias or version")
    );
    assert_eq!(
        validation(f.service.register_scalable_target(
            ACCOUNT,
            "ecs",
            BLUE,
            DIMENSION,
            RegisterTarget::default()
        )),
        "Unsupported service namespace, resource type or scalable dimension"
    );

    let target = f.register(BLUE, 1, 10).unwrap();
    assert!(target.arn.starts_with(&format!(
        "arn:aws:application-autoscaling:us-east-1:{ACCOUNT}:scalable-target/"
    )));
    assert_eq!(target.arn.rsplit('/').next().unwrap().len(), 36);
    assert_eq!(
        target.role_arn(),
        format!("arn:aws:iam::{ACCOUNT}:role/aws-service-role/lambda.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency")
    );
    assert_eq!(target.created, START);
    // No configuration: registration leaves the function alone.
    assert!(f.lambda.sets().is_empty());

    // An update changes what it names, keeps the rest and the ARN.
    f.lambda.set_now(50);
    let updated = f
        .service
        .register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            RegisterTarget {
                max_capacity: Some(20),
                suspended: Some(SuspendedUpdate {
                    scheduled_scaling_suspended: Some(true),
                    ..SuspendedUpdate::default()
                }),
                ..RegisterTarget::default()
            },
        )
        .unwrap();
    assert_eq!((updated.min_capacity, updated.max_capacity), (1, 20));
    assert!(updated.suspended.scheduled_scaling_suspended);
    assert_eq!(updated.arn, target.arn);
    // ... and brings the configured concurrency within the new bounds.
    assert_eq!(f.lambda.requested_now(), Some(20));
    let activity = &f.activities()[0];
    assert_eq!(activity.description, "Setting desired concurrency to 20.");
    assert_eq!(activity.cause, "maximum capacity was set to 20");
    assert_eq!(activity.status, ActivityStatus::Successful);
    // An update cannot cross the bounds either.
    assert_eq!(
        validation(f.service.register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            RegisterTarget {
                min_capacity: Some(30),
                ..RegisterTarget::default()
            }
        )),
        "Maximum capacity cannot be less than minimum capacity"
    );
    // Tags only on create.
    assert!(validation(f.service.register_scalable_target(
        ACCOUNT,
        NAMESPACE,
        BLUE,
        DIMENSION,
        RegisterTarget {
            tags: Some(BTreeMap::from([("k".into(), "v".into())])),
            ..RegisterTarget::default()
        }
    ))
    .contains("TagResource"));
}

#[test]
fn describes_in_pages_and_deregisters_with_everything_attached() {
    let f = fixture();
    f.register(BLUE, 0, 5).unwrap();
    f.register("function:my-function:GREEN", 0, 5).unwrap();
    f.register("function:other:1", 0, 5).unwrap();
    let first = f
        .service
        .describe_scalable_targets(
            ACCOUNT,
            NAMESPACE,
            &Filter::default(),
            &Page {
                max_results: Some(2),
                next_token: None,
            },
        )
        .unwrap();
    let ids: Vec<String> = first.items.iter().map(|t| t.resource.id()).collect();
    assert_eq!(ids, [BLUE, "function:my-function:GREEN"]);
    let second = f
        .service
        .describe_scalable_targets(
            ACCOUNT,
            NAMESPACE,
            &Filter::default(),
            &Page {
                max_results: Some(2),
                next_token: first.next_token.clone(),
            },
        )
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].resource.id(), "function:other:1");
    assert_eq!(second.next_token, None);
    assert!(matches!(
        f.service.describe_scalable_targets(
            ACCOUNT,
            NAMESPACE,
            &Filter::default(),
            &Page {
                max_results: None,
                next_token: Some("nonsense".into())
            }
        ),
        Err(AutoscalingError::InvalidNextToken(_))
    ));
    assert!(validation(f.service.describe_scalable_targets(
        ACCOUNT,
        NAMESPACE,
        &Filter::default(),
        &Page {
            max_results: Some(0),
            next_token: None
        }
    ))
    .contains("MaxResults"));
    // Other accounts and namespaces see none of them.
    assert!(f
        .service
        .describe_scalable_targets(
            "999999999999",
            NAMESPACE,
            &Filter::default(),
            &Page::default()
        )
        .unwrap()
        .items
        .is_empty());
    assert!(f
        .service
        .describe_scalable_targets(ACCOUNT, "ecs", &Filter::default(), &Page::default())
        .unwrap()
        .items
        .is_empty());

    f.put_action("morning", "cron(0 8 * * ? *)", None, Some(2), None)
        .unwrap();
    f.put_policy("utilization", 0.7).unwrap();
    f.service
        .deregister_scalable_target(ACCOUNT, NAMESPACE, BLUE, DIMENSION)
        .unwrap();
    let all = Filter::default();
    assert!(f
        .service
        .describe_scheduled_actions(ACCOUNT, NAMESPACE, &all, &Page::default())
        .unwrap()
        .items
        .is_empty());
    assert!(f
        .service
        .describe_scaling_policies(ACCOUNT, NAMESPACE, &all, &Page::default())
        .unwrap()
        .items
        .is_empty());
    match f
        .service
        .deregister_scalable_target(ACCOUNT, NAMESPACE, BLUE, DIMENSION)
    {
        Err(AutoscalingError::ObjectNotFound(message)) => assert_eq!(
            message,
            "No scalable target registered for service namespace: lambda, resource ID: function:my-function:BLUE, scalable dimension: lambda:function:ProvisionedConcurrency"
        ),
        other => panic!("{other:?}"),
    }
    // Nothing attaches to a missing target.
    assert!(matches!(
        f.put_action("again", "rate(1 hour)", None, Some(1), None),
        Err(AutoscalingError::ObjectNotFound(_))
    ));
    assert!(matches!(
        f.put_policy("again", 0.5),
        Err(AutoscalingError::ObjectNotFound(_))
    ));
}

#[test]
fn a_scheduled_action_a_few_seconds_ahead_changes_capacity() {
    let f = fixture();
    f.register(BLUE, 0, 10).unwrap();
    let when = START + time::Duration::seconds(5);
    f.put_action("soon", &at_expression(when), None, Some(3), Some(5))
        .unwrap();
    let action = f
        .service
        .describe_scheduled_actions(ACCOUNT, NAMESPACE, &Filter::default(), &Page::default())
        .unwrap()
        .items
        .remove(0);
    assert!(action.arn.starts_with(&format!(
        "arn:aws:autoscaling:us-east-1:{ACCOUNT}:scheduledAction:"
    )));
    assert!(action
        .arn
        .ends_with(":resource/lambda/function:my-function:BLUE:scheduledActionName/soon"));

    f.at(START + time::Duration::seconds(2));
    assert_eq!(f.lambda.requested_now(), None);
    f.at(START + time::Duration::seconds(6));
    let target = f.target();
    assert_eq!((target.min_capacity, target.max_capacity), (3, 5));
    // No configuration counted as 0: raised to the minimum.
    assert_eq!(f.lambda.requested_now(), Some(3));
    let activities = f.activities();
    assert_eq!(activities.len(), 2);
    assert_eq!(
        activities[0].description,
        "Setting desired concurrency to 3."
    );
    assert_eq!(activities[0].cause, "minimum capacity was set to 3");
    assert_eq!(
        activities[1].description,
        "Setting min capacity to 3 and max capacity to 5"
    );
    assert_eq!(
        activities[1].cause,
        "scheduled action name soon was triggered"
    );
    // Once.
    f.at(START + time::Duration::seconds(60));
    assert_eq!(f.lambda.sets(), [3]);
    assert_eq!(f.activities().len(), 2);
}

#[test]
fn scheduled_actions_clamp_into_the_new_bounds_and_honour_suspension() {
    let f = fixture();
    f.register(BLUE, 0, 100).unwrap();
    f.lambda.set_now(40);
    // Only a maximum: the minimum stays, the concurrency comes down.
    f.put_action("cap", "rate(1 minute)", None, None, Some(25))
        .unwrap();
    f.at(START + time::Duration::seconds(61));
    assert_eq!(f.lambda.requested_now(), Some(25));
    assert_eq!(f.activities()[1].description, "Setting max capacity to 25");
    // Suspended: the next one passes without effect.
    f.service
        .register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            RegisterTarget {
                max_capacity: Some(100),
                suspended: Some(SuspendedUpdate {
                    scheduled_scaling_suspended: Some(true),
                    ..SuspendedUpdate::default()
                }),
                ..RegisterTarget::default()
            },
        )
        .unwrap();
    f.lambda.set_now(40);
    f.at(START + time::Duration::seconds(121));
    assert_eq!(f.lambda.requested_now(), Some(40));
    assert_eq!(f.target().max_capacity, 100);
    // A failing Lambda: a Failed activity, no panic.
    f.service
        .register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            RegisterTarget {
                suspended: Some(SuspendedUpdate {
                    scheduled_scaling_suspended: Some(false),
                    ..SuspendedUpdate::default()
                }),
                ..RegisterTarget::default()
            },
        )
        .unwrap();
    f.lambda.fail.store(true, Ordering::SeqCst);
    f.at(START + time::Duration::seconds(181));
    let failed = &f.activities()[0];
    assert_eq!(failed.status, ActivityStatus::Failed);
    assert!(failed
        .status_message
        .as_deref()
        .unwrap()
        .contains("Lambda is unavailable"));
}

#[test]
fn scheduled_action_validation() {
    let f = fixture();
    f.register(BLUE, 0, 10).unwrap();
    assert!(
        validation(f.put_action("a", "rate(1 minutes)", None, Some(1), None)).contains("singular")
    );
    assert!(
        validation(f.put_action("a", "cron(0 8 * * * *)", None, Some(1), None))
            .contains("must be ?")
    );
    assert!(
        validation(f.put_action("a", "rate(5 minutes)", Some("Moon/Base"), Some(1), None))
            .contains("time zone")
    );
    assert_eq!(
        validation(f.put_action("a", "rate(5 minutes)", None, None, None)),
        "At least one of minimum capacity and maximum capacity should be provided"
    );
    assert_eq!(
        validation(f.put_action("a", "rate(5 minutes)", None, Some(5), Some(2))),
        "Maximum capacity cannot be less than minimum capacity"
    );
    match f
        .service
        .delete_scheduled_action(ACCOUNT, NAMESPACE, BLUE, DIMENSION, "none")
    {
        Err(AutoscalingError::ObjectNotFound(message)) => {
            assert!(message.contains("scheduled action name: none"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // An update keeps what it does not name.
    f.put_action("a", "rate(5 minutes)", Some("Europe/Paris"), Some(2), None)
        .unwrap();
    f.service
        .put_scheduled_action(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            PutScheduledAction {
                name: "a".into(),
                schedule: Some("rate(10 minutes)".into()),
                ..PutScheduledAction::default()
            },
        )
        .unwrap();
    let action = f
        .service
        .describe_scheduled_actions(
            ACCOUNT,
            NAMESPACE,
            &Filter {
                names: vec!["a".into()],
                ..Filter::default()
            },
            &Page::default(),
        )
        .unwrap()
        .items
        .remove(0);
    assert_eq!(action.schedule, "rate(10 minutes)");
    assert_eq!(action.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(action.min_capacity, Some(2));
    f.service
        .delete_scheduled_action(ACCOUNT, NAMESPACE, BLUE, DIMENSION, "a")
        .unwrap();
}

#[test]
fn cron_in_a_time_zone_fires_on_the_local_clock() {
    let f = fixture();
    f.clock.set(datetime!(2024-03-08 12:00 UTC));
    f.register(BLUE, 0, 50).unwrap();
    f.put_action(
        "nine-in-new-york",
        "cron(0 9 * * ? *)",
        Some("America/New_York"),
        Some(7),
        None,
    )
    .unwrap();
    let reset = || {
        f.service
            .register_scalable_target(
                ACCOUNT,
                NAMESPACE,
                BLUE,
                DIMENSION,
                RegisterTarget {
                    min_capacity: Some(0),
                    ..RegisterTarget::default()
                },
            )
            .unwrap();
        f.lambda.set_now(1);
    };
    // 09:00 EST is 14:00 UTC.
    f.at(datetime!(2024-03-08 13:59:30 UTC));
    assert!(f.lambda.sets().is_empty());
    f.at(datetime!(2024-03-08 14:00:30 UTC));
    assert_eq!(f.lambda.sets(), [7]);
    reset();
    f.at(datetime!(2024-03-09 13:59:30 UTC));
    assert_eq!(f.lambda.requested_now(), Some(1));
    f.at(datetime!(2024-03-09 14:00:30 UTC));
    assert_eq!(f.lambda.requested_now(), Some(7));
    reset();
    // After the spring change, 09:00 EDT is 13:00 UTC.
    f.at(datetime!(2024-03-10 12:59:30 UTC));
    assert_eq!(f.lambda.requested_now(), Some(1));
    f.at(datetime!(2024-03-10 13:00:30 UTC));
    assert_eq!(f.lambda.requested_now(), Some(7));
}

#[test]
fn target_tracking_scales_out_under_load_and_back_in() {
    let f = fixture();
    f.register(BLUE, 2, 40).unwrap();
    f.lambda.set_now(10);
    let created = f.put_policy("utilization", 0.5).unwrap();
    assert!(created.arn.starts_with(&format!(
        "arn:aws:autoscaling:us-east-1:{ACCOUNT}:scalingPolicy:"
    )));
    assert!(created
        .arn
        .ends_with(":resource/lambda/function:my-function:BLUE:policyName/utilization"));
    assert_eq!(created.alarms.len(), 2);
    assert!(created.alarms[0]
        .name
        .starts_with("TargetTracking-function:my-function:BLUE-AlarmHigh-"));
    assert!(created.alarms[1]
        .name
        .starts_with("TargetTracking-function:my-function:BLUE-AlarmLow-"));
    assert_eq!(
        created.alarms[0].arn,
        format!(
            "arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{}",
            created.alarms[0].name
        )
    );

    // Sustained 90% against a 50% target: after three periods, 10 × 0.9 / 0.5 = 18.
    f.lambda.set_utilization(0.9);
    let mut now = START;
    for _ in 0..2 {
        now += time::Duration::minutes(1);
        f.at(now);
    }
    assert_eq!(f.lambda.requested_now(), Some(10));
    now += time::Duration::minutes(1);
    f.at(now);
    assert_eq!(f.lambda.requested_now(), Some(18));
    let out = &f.activities()[0];
    assert_eq!(out.description, "Setting desired concurrency to 18.");
    assert_eq!(
        out.cause,
        format!(
            "monitor alarm {} in state ALARM triggered policy utilization",
            created.alarms[0].name
        )
    );
    // The load eases: 15 quiet periods, then in to ceil(18 × 0.1 / 0.5) = 4.
    f.lambda.set_utilization(0.1);
    for _ in 0..14 {
        now += time::Duration::minutes(1);
        f.at(now);
    }
    assert_eq!(f.lambda.requested_now(), Some(18));
    now += time::Duration::minutes(1);
    f.at(now);
    assert_eq!(f.lambda.requested_now(), Some(4));
    assert!(f.activities()[0].cause.contains("AlarmLow"));
    // Never below the minimum.
    f.lambda.set_utilization(0.0);
    for _ in 0..15 {
        now += time::Duration::minutes(1);
        f.at(now);
    }
    assert_eq!(f.lambda.requested_now(), Some(2));
    // The policy's last scale-in survives a restart.
    let reopened = f.reopen();
    let policy = reopened
        .describe_scaling_policies(ACCOUNT, NAMESPACE, &Filter::default(), &Page::default())
        .unwrap()
        .items
        .remove(0);
    assert_eq!(policy.last_scale_in, Some(now));
    assert_eq!(policy.tracking.target_value, 0.5);
}

#[test]
fn tracking_errors_become_failed_activities() {
    let f = fixture();
    f.register(BLUE, 1, 40).unwrap();
    f.lambda.set_now(10);
    f.put_policy("utilization", 0.5).unwrap();
    f.lambda.set_utilization(1.0);
    f.lambda.fail.store(true, Ordering::SeqCst);
    let mut now = START;
    for _ in 0..3 {
        now += time::Duration::minutes(1);
        f.at(now);
    }
    let activity = &f.activities()[0];
    assert_eq!(activity.status, ActivityStatus::Failed);
    assert_eq!(f.lambda.requested_now(), Some(10));
}

#[test]
fn policy_validation() {
    let f = fixture();
    f.register(BLUE, 1, 10).unwrap();
    let put = |input: PutScalingPolicy| {
        f.service
            .put_scaling_policy(ACCOUNT, NAMESPACE, BLUE, DIMENSION, input)
    };
    let tracking = |metric: &str, target_value: f64| TargetTrackingInput {
        target_value,
        predefined: Some((metric.into(), None)),
        ..TargetTrackingInput::default()
    };
    let step = validation(put(PutScalingPolicy {
        name: "p".into(),
        policy_type: Some("StepScaling".into()),
        step_scaling: true,
        ..PutScalingPolicy::default()
    }));
    assert!(
        step.contains("Unsupported policy type StepScaling"),
        "{step}"
    );
    assert!(validation(put(PutScalingPolicy {
        name: "p".into(),
        ..PutScalingPolicy::default()
    }))
    .contains("PolicyType is required"));
    assert!(validation(put(PutScalingPolicy {
        name: "p".into(),
        policy_type: Some(TARGET_TRACKING.into()),
        ..PutScalingPolicy::default()
    }))
    .contains("TargetTrackingScalingPolicyConfiguration is required"));
    assert!(validation(put(PutScalingPolicy {
        name: "p".into(),
        policy_type: Some(TARGET_TRACKING.into()),
        target_tracking: Some(tracking("ECSServiceAverageCPUUtilization", 0.5)),
        ..PutScalingPolicy::default()
    }))
    .contains("Unsupported metric type"));
    assert!(validation(put(PutScalingPolicy {
        name: "p".into(),
        policy_type: Some(TARGET_TRACKING.into()),
        target_tracking: Some(tracking(METRIC, 0.0)),
        ..PutScalingPolicy::default()
    }))
    .contains("greater than 0"));
    assert!(validation(put(PutScalingPolicy {
        name: "p".into(),
        policy_type: Some(TARGET_TRACKING.into()),
        target_tracking: Some(TargetTrackingInput {
            target_value: 0.5,
            customized: true,
            ..TargetTrackingInput::default()
        }),
        ..PutScalingPolicy::default()
    }))
    .contains("CustomizedMetricSpecification is not supported"));
    // An update keeps the ARN and alarms.
    let first = f.put_policy("p", 0.5).unwrap();
    let second = f.put_policy("p", 0.6).unwrap();
    assert_eq!(first, second);
    assert!(matches!(
        f.service
            .delete_scaling_policy(ACCOUNT, NAMESPACE, BLUE, DIMENSION, "q"),
        Err(AutoscalingError::ObjectNotFound(_))
    ));
    f.service
        .delete_scaling_policy(ACCOUNT, NAMESPACE, BLUE, DIMENSION, "p")
        .unwrap();
}

#[test]
fn a_restart_does_not_fire_an_action_again() {
    let f = fixture();
    f.register(BLUE, 0, 10).unwrap();
    let when = START + time::Duration::seconds(5);
    f.put_action("once", &at_expression(when), None, Some(4), None)
        .unwrap();
    f.put_action("hourly", "cron(30 * * * ? *)", None, Some(2), None)
        .unwrap();
    f.at(START + time::Duration::seconds(10));
    assert_eq!(f.lambda.sets(), [4]);
    // Someone lowers the minimum; a restarted server must not raise it again.
    f.service
        .register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            RegisterTarget {
                min_capacity: Some(0),
                ..RegisterTarget::default()
            },
        )
        .unwrap();
    f.lambda.set_now(1);
    let restarted = f.reopen();
    restarted.tick(START + time::Duration::seconds(20));
    assert_eq!(f.lambda.sets(), [4]);
    assert_eq!(f.lambda.requested_now(), Some(1));
    // The cron action fires at :30, once, also across a restart right after.
    restarted.tick(datetime!(2024-06-03 10:30:05 UTC));
    assert_eq!(f.lambda.requested_now(), Some(2));
    f.lambda.set_now(1);
    let again = f.reopen();
    again.tick(datetime!(2024-06-03 10:30:40 UTC));
    assert_eq!(f.lambda.requested_now(), Some(1));
    // Missed firings while down happen once.
    again.tick(datetime!(2024-06-03 14:45:00 UTC));
    let fired: Vec<_> = again
        .describe_scaling_activities(ACCOUNT, NAMESPACE, &Filter::default(), &Page::default())
        .unwrap()
        .items
        .into_iter()
        .filter(|a| a.cause == "scheduled action name hourly was triggered")
        .collect();
    assert_eq!(fired.len(), 2);
    // Targets and history survive.
    assert_eq!(
        again
            .describe_scalable_targets(ACCOUNT, NAMESPACE, &Filter::default(), &Page::default())
            .unwrap()
            .items
            .len(),
        1
    );
}

#[test]
fn activities_page_newest_first() {
    let f = fixture();
    f.register(BLUE, 0, 100).unwrap();
    f.lambda.set_now(1);
    for min in (2..=6).rev() {
        f.service
            .register_scalable_target(
                ACCOUNT,
                NAMESPACE,
                BLUE,
                DIMENSION,
                RegisterTarget {
                    min_capacity: Some(min),
                    max_capacity: Some(100),
                    ..RegisterTarget::default()
                },
            )
            .unwrap();
        f.lambda.set_now(1);
    }
    let page = |token: Option<String>| {
        f.service
            .describe_scaling_activities(
                ACCOUNT,
                NAMESPACE,
                &Filter {
                    resource_ids: vec![BLUE.into()],
                    ..Filter::default()
                },
                &Page {
                    max_results: Some(2),
                    next_token: token,
                },
            )
            .unwrap()
    };
    let first = page(None);
    let causes: Vec<&str> = first.items.iter().map(|a| a.cause.as_str()).collect();
    assert_eq!(
        causes,
        [
            "minimum capacity was set to 2",
            "minimum capacity was set to 3"
        ]
    );
    let second = page(first.next_token);
    assert_eq!(second.items[0].cause, "minimum capacity was set to 4");
    let third = page(second.next_token);
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.next_token, None);
}

#[test]
fn tags_a_target_by_its_arn() {
    let f = fixture();
    let target = f
        .service
        .register_scalable_target(
            ACCOUNT,
            NAMESPACE,
            BLUE,
            DIMENSION,
            RegisterTarget {
                min_capacity: Some(0),
                max_capacity: Some(1),
                tags: Some(BTreeMap::from([("team".into(), "a".into())])),
                ..RegisterTarget::default()
            },
        )
        .unwrap();
    f.service
        .tag(
            ACCOUNT,
            &target.arn,
            BTreeMap::from([("env".into(), "prod".into())]),
        )
        .unwrap();
    f.service
        .untag(ACCOUNT, &target.arn, &["team".into()])
        .unwrap();
    assert_eq!(
        f.service.list_tags(ACCOUNT, &target.arn).unwrap(),
        BTreeMap::from([("env".into(), "prod".into())])
    );
    assert!(matches!(
        f.service.list_tags("999999999999", &target.arn),
        Err(AutoscalingError::ResourceNotFound(_))
    ));
    let many: BTreeMap<String, String> =
        (0..51).map(|i| (format!("k{i}"), String::new())).collect();
    assert!(matches!(
        f.service.tag(ACCOUNT, &target.arn, many),
        Err(AutoscalingError::TooManyTags(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_task_fires_on_its_own() {
    let f = fixture();
    f.register(BLUE, 0, 10).unwrap();
    f.put_action(
        "soon",
        &at_expression(START + time::Duration::seconds(1)),
        None,
        Some(6),
        None,
    )
    .unwrap();
    f.clock.set(START + time::Duration::seconds(2));
    let task = Arc::clone(&f.service).run(std::time::Duration::from_millis(20));
    for _ in 0..100 {
        if f.lambda.requested_now() == Some(6) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(f.lambda.requested_now(), Some(6));
    task.abort();
}

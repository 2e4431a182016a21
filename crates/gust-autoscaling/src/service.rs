//! The service: every operation's semantics, and the driver that fires scheduled actions and
//! evaluates target tracking policies. State lives in memory and is written through to the
//! store before an operation returns; calls to [`Provisioned`] are made without holding the
//! state's lock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gust_model::schedule::{ScheduleExpression, Zone};
use gust_model::Clock;
use time::OffsetDateTime;

use crate::error::AutoscalingError;
use crate::model::{
    check_target, ActivityStatus, Alarm, Filter, Page, Paged, PolicyCreated, PutScalingPolicy,
    PutScheduledAction, RegisterTarget, Resource, ScalableTarget, ScalingActivity, ScalingPolicy,
    ScheduledAction, TargetTracking, METRIC, NAMESPACE, TARGET_TRACKING,
};
use crate::sqlite::SqliteStore;
use crate::store::{AutoscalingStore, Change, ACTIVITY_HISTORY};
use crate::tracking::{self, Direction, Samples};
use crate::Provisioned;

/// Most scalable targets per account.
pub const MAX_TARGETS: usize = 3000;
/// Most scheduled actions per scalable target.
pub const MAX_SCHEDULED_ACTIONS: usize = 200;
/// Most scaling policies per scalable target.
pub const MAX_POLICIES: usize = 50;
/// Most tags on a scalable target.
pub const MAX_TAGS: usize = 50;
/// `MaxResults`' bound and default.
const MAX_RESULTS: i64 = 50;

/// `(account, resource ID)`.
type TargetKey = (String, String);
/// `(account, resource ID, name)`.
type NamedKey = (String, String, String);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct State {
    targets: BTreeMap<TargetKey, ScalableTarget>,
    actions: BTreeMap<NamedKey, ScheduledAction>,
    policies: BTreeMap<NamedKey, ScalingPolicy>,
    /// Each target's activities with their order of arrival, oldest first.
    activities: HashMap<TargetKey, VecDeque<(u64, ScalingActivity)>>,
    activity_seq: u64,
}

fn target_key(account: &str, resource: &Resource) -> TargetKey {
    (account.to_owned(), resource.id())
}

fn named_key(account: &str, resource: &Resource, name: &str) -> NamedKey {
    (account.to_owned(), resource.id(), name.to_owned())
}

impl State {
    fn apply(&mut self, change: Change) {
        match change {
            Change::PutTarget(t) => {
                self.targets.insert(target_key(&t.account, &t.resource), t);
            }
            Change::DeleteTarget {
                account,
                resource_id,
            } => {
                let key = (account, resource_id);
                self.targets.remove(&key);
                self.actions
                    .retain(|(a, r, _), _| (a, r) != (&key.0, &key.1));
                self.policies
                    .retain(|(a, r, _), _| (a, r) != (&key.0, &key.1));
            }
            Change::PutAction(a) => {
                self.actions
                    .insert(named_key(&a.account, &a.resource, &a.name), a);
            }
            Change::DeleteAction {
                account,
                resource_id,
                name,
            } => {
                self.actions.remove(&(account, resource_id, name));
            }
            Change::PutPolicy(p) => {
                self.policies
                    .insert(named_key(&p.account, &p.resource, &p.name), p);
            }
            Change::DeletePolicy {
                account,
                resource_id,
                name,
            } => {
                self.policies.remove(&(account, resource_id, name));
            }
            Change::AddActivity(a) => {
                self.activity_seq += 1;
                let history = self
                    .activities
                    .entry(target_key(&a.account, &a.resource))
                    .or_default();
                history.push_back((self.activity_seq, a));
                while history.len() > ACTIVITY_HISTORY {
                    history.pop_front();
                }
            }
        }
    }

    fn target(
        &self,
        account: &str,
        resource: &Resource,
    ) -> Result<&ScalableTarget, AutoscalingError> {
        self.targets
            .get(&target_key(account, resource))
            .ok_or_else(|| AutoscalingError::target_not_found(&resource.id()))
    }

    fn count_for_target<T>(
        map: &BTreeMap<NamedKey, T>,
        account: &str,
        resource: &Resource,
    ) -> usize {
        let id = resource.id();
        map.keys()
            .filter(|(a, r, _)| a == account && *r == id)
            .count()
    }
}

/// Application Auto Scaling for Lambda provisioned concurrency.
#[derive(Debug)]
pub struct Autoscaling {
    store: Arc<dyn AutoscalingStore>,
    clock: Arc<dyn Clock>,
    region: String,
    provisioned: Arc<dyn Provisioned>,
    state: Mutex<State>,
    /// Utilisation samples of targets with policies (not stored: a restart starts afresh,
    /// as after a gap in a metric).
    samples: Mutex<HashMap<TargetKey, Samples>>,
}

/// A capacity parameter as a count.
fn capacity(value: Option<i64>, which: &str) -> Result<Option<u32>, AutoscalingError> {
    match value {
        None => Ok(None),
        Some(v) if v < 0 => Err(AutoscalingError::validation(format!(
            "{which} capacity cannot be less than 0"
        ))),
        Some(v) => u32::try_from(v).map(Some).map_err(|_| {
            AutoscalingError::validation(format!(
                "{which} capacity cannot be greater than {}",
                u32::MAX
            ))
        }),
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), AutoscalingError> {
    if tags.len() > MAX_TAGS {
        return Err(AutoscalingError::TooManyTags(format!(
            "A scalable target can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(())
}

/// The page of `items` (sorted by their keys, ascending) that `page` asks for.
fn paginate<T>(items: Vec<(String, T)>, page: &Page) -> Result<Paged<T>, AutoscalingError> {
    let max = match page.max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS).contains(&n) => n,
        Some(_) => {
            return Err(AutoscalingError::validation(format!(
                "MaxResults must be between 1 and {MAX_RESULTS}"
            )))
        }
    } as usize;
    let start = match &page.next_token {
        None => 0,
        Some(token) => {
            let key = hex::decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.strip_prefix("gust1:").map(str::to_owned))
                .ok_or_else(AutoscalingError::invalid_next_token)?;
            items.partition_point(|(k, _)| *k <= key)
        }
    };
    let mut rest: Vec<(String, T)> = items.into_iter().skip(start).collect();
    let next_token = (rest.len() > max).then(|| hex::encode(format!("gust1:{}", rest[max - 1].0)));
    rest.truncate(max);
    Ok(Paged {
        items: rest.into_iter().map(|(_, item)| item).collect(),
        next_token,
    })
}

/// A 36-character hexadecimal id, as scalable target ARNs end.
fn target_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.push_str(&uuid::Uuid::new_v4().simple().to_string()[..4]);
    id
}

/// A target's bounds after a scheduled action sets some of them: a bound the action leaves
/// alone moves with the one it sets when they would cross.
fn bounds_after(target: &ScalableTarget, min: Option<u32>, max: Option<u32>) -> (u32, u32) {
    let new_min = min.unwrap_or(target.min_capacity);
    let new_max = max.unwrap_or(target.max_capacity);
    match (min, max) {
        (Some(_), None) if new_min > new_max => (new_min, new_min),
        (None, Some(_)) if new_min > new_max => (new_max, new_max),
        _ => (new_min, new_max),
    }
}

/// "min capacity to 1 and max capacity to 10", naming what the action sets.
fn bounds_text(min: Option<u32>, max: Option<u32>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("min capacity to {min} and max capacity to {max}"),
        (Some(min), None) => format!("min capacity to {min}"),
        (None, Some(max)) => format!("max capacity to {max}"),
        (None, None) => "no capacity".into(),
    }
}

/// The next time `action` fires, if that is at or before `now`.
fn due_at(action: &ScheduledAction, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let expression = ScheduleExpression::parse(&action.schedule).ok()?;
    let zone = match &action.timezone {
        Some(name) => Zone::parse(name).ok()?,
        None => Zone::UTC,
    };
    let start = match &expression {
        // A rate counts from its start time, or from when it was put.
        ScheduleExpression::Rate { .. } => Some(action.start.unwrap_or(action.updated)),
        ScheduleExpression::Cron(_) => action.start,
        ScheduleExpression::At(_) => None,
    };
    let at = expression.next_after(action.evaluated_until, &zone, start)?;
    if expression.is_recurring() && action.end.is_some_and(|end| at > end) {
        return None;
    }
    (at <= now).then_some(at)
}

impl Autoscaling {
    /// Opens the service over the SQLite database at `path` (created if missing). Scalable
    /// targets' ARNs name `region`; time comes from `clock`; `provisioned` is the Lambda
    /// side.
    pub fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        region: &str,
        provisioned: Arc<dyn Provisioned>,
    ) -> Result<Arc<Self>, AutoscalingError> {
        let store = SqliteStore::open(path)?;
        Self::with_store(Arc::new(store), clock, region, provisioned)
    }

    /// The service over any store.
    pub fn with_store(
        store: Arc<dyn AutoscalingStore>,
        clock: Arc<dyn Clock>,
        region: &str,
        provisioned: Arc<dyn Provisioned>,
    ) -> Result<Arc<Self>, AutoscalingError> {
        let snapshot = store.load()?;
        let mut state = State::default();
        for target in snapshot.targets {
            state.apply(Change::PutTarget(target));
        }
        for action in snapshot.actions {
            state.apply(Change::PutAction(action));
        }
        for policy in snapshot.policies {
            state.apply(Change::PutPolicy(policy));
        }
        for activity in snapshot.activities {
            state.apply(Change::AddActivity(activity));
        }
        Ok(Arc::new(Autoscaling {
            store,
            clock,
            region: region.to_owned(),
            provisioned,
            state: Mutex::new(state),
            samples: Mutex::new(HashMap::new()),
        }))
    }

    /// The region ARNs name.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes `changes` to the store, then to memory.
    fn commit(&self, state: &mut State, changes: Vec<Change>) -> Result<(), AutoscalingError> {
        self.store.commit(&changes)?;
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }

    fn check_exists(&self, account: &str, resource: &Resource) -> Result<(), AutoscalingError> {
        match self
            .provisioned
            .exists(account, &resource.function, &resource.qualifier)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(AutoscalingError::validation(format!(
                "Lambda function {} has no alias or version {} (resource ID {})",
                resource.function,
                resource.qualifier,
                resource.id()
            ))),
            Err(cause) => {
                tracing::error!(%cause, "looking up a function for autoscaling failed");
                Err(AutoscalingError::InternalService(
                    "The service encountered an internal error.".into(),
                ))
            }
        }
    }

    /// `RegisterScalableTarget`: creates the target, or changes the given parameters of an
    /// existing one; then brings a configured function's provisioned concurrency within
    /// the bounds.
    pub fn register_scalable_target(
        &self,
        account: &str,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        input: RegisterTarget,
    ) -> Result<ScalableTarget, AutoscalingError> {
        let resource = check_target(namespace, resource_id, dimension)?;
        let min = capacity(input.min_capacity, "Minimum")?;
        let max = capacity(input.max_capacity, "Maximum")?;
        if let Some(tags) = &input.tags {
            check_tags(tags)?;
        }
        self.check_exists(account, &resource)?;
        let now = self.clock.now();
        let target = {
            let mut state = self.lock();
            let target = match state.targets.get(&target_key(account, &resource)) {
                Some(existing) => {
                    if input.tags.as_ref().is_some_and(|t| !t.is_empty()) {
                        return Err(AutoscalingError::validation(
                            "The scalable target that you tried to tag already exists. To update tags on an existing scalable target, use the TagResource API.",
                        ));
                    }
                    let mut target = existing.clone();
                    target.min_capacity = min.unwrap_or(target.min_capacity);
                    target.max_capacity = max.unwrap_or(target.max_capacity);
                    if let Some(update) = input.suspended {
                        target.suspended = target.suspended.updated(update);
                    }
                    target
                }
                None => {
                    let (Some(min), Some(max)) = (min, max) else {
                        return Err(AutoscalingError::validation(
                            "MinCapacity and MaxCapacity are required when registering a new scalable target",
                        ));
                    };
                    let count = state.targets.keys().filter(|(a, _)| a == account).count();
                    if count >= MAX_TARGETS {
                        return Err(AutoscalingError::LimitExceeded(format!(
                            "You have reached the maximum number of scalable targets ({MAX_TARGETS}) for service namespace {NAMESPACE}"
                        )));
                    }
                    ScalableTarget {
                        account: account.to_owned(),
                        resource: resource.clone(),
                        min_capacity: min,
                        max_capacity: max,
                        suspended: input.suspended.map_or_else(Default::default, |u| {
                            crate::model::SuspendedState::default().updated(u)
                        }),
                        created: now,
                        arn: format!(
                            "arn:aws:application-autoscaling:{}:{account}:scalable-target/{}",
                            self.region,
                            target_id()
                        ),
                        tags: input.tags.clone().unwrap_or_default(),
                    }
                }
            };
            if target.min_capacity > target.max_capacity {
                return Err(AutoscalingError::validation(
                    "Maximum capacity cannot be less than minimum capacity",
                ));
            }
            self.commit(&mut state, vec![Change::PutTarget(target.clone())])?;
            target
        };
        self.bring_within(&target, false, now);
        Ok(target)
    }

    /// `DeregisterScalableTarget`: deletes the target with its scheduled actions and
    /// policies. The function's provisioned concurrency stays as it is.
    pub fn deregister_scalable_target(
        &self,
        account: &str,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
    ) -> Result<(), AutoscalingError> {
        let resource = check_target(namespace, resource_id, dimension)?;
        {
            let mut state = self.lock();
            state.target(account, &resource)?;
            self.commit(
                &mut state,
                vec![Change::DeleteTarget {
                    account: account.to_owned(),
                    resource_id: resource.id(),
                }],
            )?;
        }
        lock(&self.samples).remove(&target_key(account, &resource));
        Ok(())
    }

    /// `DescribeScalableTargets`, by resource ID.
    pub fn describe_scalable_targets(
        &self,
        account: &str,
        namespace: &str,
        filter: &Filter,
        page: &Page,
    ) -> Result<Paged<ScalableTarget>, AutoscalingError> {
        let items = if namespace == NAMESPACE {
            self.lock()
                .targets
                .iter()
                .filter(|((a, _), t)| a == account && filter.matches_target(&t.resource))
                .map(|((_, id), t)| (id.clone(), t.clone()))
                .collect()
        } else {
            Vec::new()
        };
        paginate(items, page)
    }

    /// `PutScheduledAction`: creates the action, or updates it (parameters not given stay,
    /// except `StartTime` and `EndTime`, which are cleared; its schedule restarts from now).
    pub fn put_scheduled_action(
        &self,
        account: &str,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        input: PutScheduledAction,
    ) -> Result<(), AutoscalingError> {
        let resource = check_target(namespace, resource_id, dimension)?;
        if let Some(schedule) = &input.schedule {
            ScheduleExpression::parse(schedule)
                .map_err(|e| AutoscalingError::validation(e.to_string()))?;
        }
        if let Some(zone) = &input.timezone {
            Zone::parse(zone).map_err(|e| AutoscalingError::validation(e.to_string()))?;
        }
        let bounds = match input.target_action {
            None => None,
            Some((min, max)) => {
                let (min, max) = (capacity(min, "Minimum")?, capacity(max, "Maximum")?);
                if min.is_none() && max.is_none() {
                    return Err(AutoscalingError::validation(
                        "At least one of minimum capacity and maximum capacity should be provided",
                    ));
                }
                Some((min, max))
            }
        };
        if let (Some(start), Some(end)) = (input.start, input.end) {
            if start >= end {
                return Err(AutoscalingError::validation(
                    "The start time must be before the end time",
                ));
            }
        }
        let now = self.clock.now();
        let mut state = self.lock();
        state.target(account, &resource)?;
        let key = named_key(account, &resource, &input.name);
        let action = match state.actions.get(&key) {
            Some(existing) => {
                let mut action = existing.clone();
                if let Some(schedule) = input.schedule {
                    action.schedule = schedule;
                }
                if input.timezone.is_some() {
                    action.timezone = input.timezone;
                }
                action.start = input.start;
                action.end = input.end;
                if let Some((min, max)) = bounds {
                    action.min_capacity = min;
                    action.max_capacity = max;
                }
                action.updated = now;
                action.evaluated_until = now;
                action
            }
            None => {
                let Some(schedule) = input.schedule else {
                    return Err(AutoscalingError::validation(
                        "Schedule is required when creating a scheduled action",
                    ));
                };
                let Some((min, max)) = bounds else {
                    return Err(AutoscalingError::validation(
                        "At least one of minimum capacity and maximum capacity should be provided",
                    ));
                };
                if State::count_for_target(&state.actions, account, &resource)
                    >= MAX_SCHEDULED_ACTIONS
                {
                    return Err(AutoscalingError::LimitExceeded(format!(
                        "You have reached the maximum number of scheduled actions ({MAX_SCHEDULED_ACTIONS}) for scalable target {}",
                        resource.id()
                    )));
                }
                ScheduledAction {
                    account: account.to_owned(),
                    arn: format!(
                        "arn:aws:autoscaling:{}:{account}:scheduledAction:{}:resource/{NAMESPACE}/{}:scheduledActionName/{}",
                        self.region,
                        uuid::Uuid::new_v4(),
                        resource.id(),
                        input.name
                    ),
                    resource,
                    name: input.name,
                    schedule,
                    timezone: input.timezone,
                    start: input.start,
                    end: input.end,
                    min_capacity: min,
                    max_capacity: max,
                    created: now,
                    updated: now,
                    evaluated_until: now,
                    last_fired: None,
                }
            }
        };
        if let (Some(min), Some(max)) = (action.min_capacity, action.max_capacity) {
            if min > max {
                return Err(AutoscalingError::validation(
                    "Maximum capacity cannot be less than minimum capacity",
                ));
            }
        }
        self.commit(&mut state, vec![Change::PutAction(action)])
    }

    /// `DeleteScheduledAction`.
    pub fn delete_scheduled_action(
        &self,
        account: &str,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        name: &str,
    ) -> Result<(), AutoscalingError> {
        let resource = check_target(namespace, resource_id, dimension)?;
        let mut state = self.lock();
        if !state
            .actions
            .contains_key(&named_key(account, &resource, name))
        {
            return Err(AutoscalingError::scheduled_action_not_found(
                &resource.id(),
                name,
            ));
        }
        self.commit(
            &mut state,
            vec![Change::DeleteAction {
                account: account.to_owned(),
                resource_id: resource.id(),
                name: name.to_owned(),
            }],
        )
    }

    /// `DescribeScheduledActions`, by resource ID and name.
    pub fn describe_scheduled_actions(
        &self,
        account: &str,
        namespace: &str,
        filter: &Filter,
        page: &Page,
    ) -> Result<Paged<ScheduledAction>, AutoscalingError> {
        let items = if namespace == NAMESPACE {
            self.lock()
                .actions
                .iter()
                .filter(|((a, _, _), x)| a == account && filter.matches_named(&x.resource, &x.name))
                .map(|((_, id, name), x)| (format!("{id}\u{0}{name}"), x.clone()))
                .collect()
        } else {
            Vec::new()
        };
        paginate(items, page)
    }

    /// `PutScalingPolicy`: target tracking on `LambdaProvisionedConcurrencyUtilization`.
    /// Step scaling (which needs CloudWatch alarms) and predictive scaling are refused, as
    /// AWS refuses them for Lambda.
    pub fn put_scaling_policy(
        &self,
        account: &str,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        input: PutScalingPolicy,
    ) -> Result<PolicyCreated, AutoscalingError> {
        let resource = check_target(namespace, resource_id, dimension)?;
        let now = self.clock.now();
        let mut state = self.lock();
        state.target(account, &resource)?;
        let key = named_key(account, &resource, &input.name);
        let existing = state.policies.get(&key).cloned();
        let policy_type = match (&input.policy_type, &existing) {
            (Some(t), _) => t.clone(),
            (None, Some(existing)) => existing.policy_type.clone(),
            (None, None) => {
                return Err(AutoscalingError::validation(
                    "PolicyType is required when creating a scaling policy",
                ))
            }
        };
        if policy_type != TARGET_TRACKING {
            return Err(AutoscalingError::validation(format!(
                "Unsupported policy type {policy_type} for service namespace {NAMESPACE}: only {TARGET_TRACKING} policies can scale Lambda provisioned concurrency"
            )));
        }
        if input.step_scaling || input.predictive_scaling {
            return Err(AutoscalingError::validation(format!(
                "Only a TargetTrackingScalingPolicyConfiguration may be given with policy type {TARGET_TRACKING}"
            )));
        }
        let Some(config) = input.target_tracking else {
            return Err(AutoscalingError::validation(format!(
                "TargetTrackingScalingPolicyConfiguration is required for policy type {TARGET_TRACKING}"
            )));
        };
        let (metric, resource_label) = match (config.predefined, config.customized) {
            (Some(_), true) | (None, false) => {
                return Err(AutoscalingError::validation(
                    "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified",
                ))
            }
            (None, true) => {
                return Err(AutoscalingError::validation(format!(
                    "CustomizedMetricSpecification is not supported: Gust tracks the predefined metric {METRIC} only"
                )))
            }
            (Some(predefined), false) => predefined,
        };
        if metric != METRIC {
            return Err(AutoscalingError::validation(format!(
                "Unsupported metric type {metric} for scalable dimension {}: use {METRIC}",
                crate::model::DIMENSION
            )));
        }
        if !config.target_value.is_finite() || config.target_value <= 0.0 {
            return Err(AutoscalingError::validation(
                "TargetValue must be a number greater than 0",
            ));
        }
        for (name, cooldown) in [
            ("ScaleOutCooldown", config.scale_out_cooldown),
            ("ScaleInCooldown", config.scale_in_cooldown),
        ] {
            if cooldown.is_some_and(|c| c < 0) {
                return Err(AutoscalingError::validation(format!(
                    "{name} must be greater than or equal to 0"
                )));
            }
        }
        let tracking = TargetTracking {
            target_value: config.target_value,
            predefined_metric_type: metric,
            resource_label,
            scale_out_cooldown: config.scale_out_cooldown,
            scale_in_cooldown: config.scale_in_cooldown,
            disable_scale_in: config.disable_scale_in,
        };
        let policy = match existing {
            Some(mut policy) => {
                policy.policy_type = policy_type;
                policy.tracking = tracking;
                policy
            }
            None => {
                if State::count_for_target(&state.policies, account, &resource) >= MAX_POLICIES {
                    return Err(AutoscalingError::LimitExceeded(format!(
                        "You have reached the maximum number of scaling policies ({MAX_POLICIES}) for scalable target {}",
                        resource.id()
                    )));
                }
                let alarm = |kind: &str| {
                    let name = format!(
                        "TargetTracking-{}-{kind}-{}",
                        resource.id(),
                        uuid::Uuid::new_v4()
                    );
                    Alarm {
                        arn: format!("arn:aws:cloudwatch:{}:{account}:alarm:{name}", self.region),
                        name,
                    }
                };
                ScalingPolicy {
                    account: account.to_owned(),
                    arn: format!(
                        "arn:aws:autoscaling:{}:{account}:scalingPolicy:{}:resource/{NAMESPACE}/{}:policyName/{}",
                        self.region,
                        uuid::Uuid::new_v4(),
                        resource.id(),
                        input.name
                    ),
                    alarms: vec![alarm("AlarmHigh"), alarm("AlarmLow")],
                    resource,
                    name: input.name,
                    policy_type,
                    tracking,
                    created: now,
                    last_scale_out: None,
                    last_scale_in: None,
                }
            }
        };
        let created = PolicyCreated {
            arn: policy.arn.clone(),
            alarms: policy.alarms.clone(),
        };
        self.commit(&mut state, vec![Change::PutPolicy(policy)])?;
        Ok(created)
    }

    /// `DeleteScalingPolicy`.
    pub fn delete_scaling_policy(
        &self,
        account: &str,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        name: &str,
    ) -> Result<(), AutoscalingError> {
        let resource = check_target(namespace, resource_id, dimension)?;
        let mut state = self.lock();
        if !state
            .policies
            .contains_key(&named_key(account, &resource, name))
        {
            return Err(AutoscalingError::policy_not_found(&resource.id(), name));
        }
        self.commit(
            &mut state,
            vec![Change::DeletePolicy {
                account: account.to_owned(),
                resource_id: resource.id(),
                name: name.to_owned(),
            }],
        )
    }

    /// `DescribeScalingPolicies`, by resource ID and name.
    pub fn describe_scaling_policies(
        &self,
        account: &str,
        namespace: &str,
        filter: &Filter,
        page: &Page,
    ) -> Result<Paged<ScalingPolicy>, AutoscalingError> {
        let items = if namespace == NAMESPACE {
            self.lock()
                .policies
                .iter()
                .filter(|((a, _, _), p)| a == account && filter.matches_named(&p.resource, &p.name))
                .map(|((_, id, name), p)| (format!("{id}\u{0}{name}"), p.clone()))
                .collect()
        } else {
            Vec::new()
        };
        paginate(items, page)
    }

    /// `DescribeScalingActivities`, newest first, by resource ID: the last six weeks of
    /// each target's newest [`ACTIVITY_HISTORY`] activities.
    pub fn describe_scaling_activities(
        &self,
        account: &str,
        namespace: &str,
        filter: &Filter,
        page: &Page,
    ) -> Result<Paged<ScalingActivity>, AutoscalingError> {
        let mut items: Vec<(u64, ScalingActivity)> = if namespace == NAMESPACE {
            self.lock()
                .activities
                .iter()
                .filter(|((a, _), history)| {
                    a == account
                        && history
                            .front()
                            .is_some_and(|(_, x)| filter.matches_target(&x.resource))
                })
                .flat_map(|(_, history)| history.iter().cloned())
                .collect()
        } else {
            Vec::new()
        };
        // The service keeps six weeks of history.
        let since = self.clock.now() - time::Duration::weeks(6);
        items.retain(|(_, a)| a.start >= since);
        items.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        let keyed = items
            .into_iter()
            .map(|(seq, a)| (format!("{:020}", u64::MAX - seq), a))
            .collect();
        paginate(keyed, page)
    }

    fn target_by_arn(
        state: &State,
        account: &str,
        arn: &str,
    ) -> Result<TargetKey, AutoscalingError> {
        state
            .targets
            .iter()
            .find(|((a, _), t)| a == account && t.arn == arn)
            .map(|(key, _)| key.clone())
            .ok_or_else(|| {
                AutoscalingError::ResourceNotFound(format!("Scalable target {arn} not found"))
            })
    }

    /// `ListTagsForResource` of a scalable target's ARN.
    pub fn list_tags(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, AutoscalingError> {
        let state = self.lock();
        let key = Self::target_by_arn(&state, account, arn)?;
        Ok(state.targets[&key].tags.clone())
    }

    /// `TagResource`: adds or replaces tags.
    pub fn tag(
        &self,
        account: &str,
        arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), AutoscalingError> {
        let mut state = self.lock();
        let key = Self::target_by_arn(&state, account, arn)?;
        let mut target = state.targets[&key].clone();
        target.tags.extend(tags);
        check_tags(&target.tags)?;
        self.commit(&mut state, vec![Change::PutTarget(target)])
    }

    /// `UntagResource`: removes tags (absent keys are ignored).
    pub fn untag(&self, account: &str, arn: &str, keys: &[String]) -> Result<(), AutoscalingError> {
        let mut state = self.lock();
        let key = Self::target_by_arn(&state, account, arn)?;
        let mut target = state.targets[&key].clone();
        for k in keys {
            target.tags.remove(k);
        }
        self.commit(&mut state, vec![Change::PutTarget(target)])
    }

    fn activity(
        target: &ScalableTarget,
        description: String,
        cause: String,
        now: OffsetDateTime,
        status: ActivityStatus,
        status_message: String,
    ) -> ScalingActivity {
        ScalingActivity {
            account: target.account.clone(),
            resource: target.resource.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            description,
            cause,
            start: now,
            end: Some(now),
            status,
            status_message: Some(status_message),
        }
    }

    fn record(&self, activity: ScalingActivity) {
        let mut state = self.lock();
        if let Err(error) = self.commit(&mut state, vec![Change::AddActivity(activity)]) {
            tracing::warn!(%error, "recording a scaling activity failed");
        }
    }

    /// Sets the function's provisioned concurrency and records the activity, successful or
    /// failed. Whether it succeeded.
    fn set_capacity(
        &self,
        target: &ScalableTarget,
        desired: u32,
        cause: String,
        now: OffsetDateTime,
    ) -> bool {
        let resource = &target.resource;
        let result = self.provisioned.set_requested(
            &target.account,
            &resource.function,
            &resource.qualifier,
            desired,
        );
        let (status, message) = match &result {
            Ok(()) => (
                ActivityStatus::Successful,
                format!("Successfully set desired concurrency to {desired}. Change successfully fulfilled by lambda."),
            ),
            Err(error) => {
                tracing::warn!(%error, resource = %resource.id(), desired, "setting provisioned concurrency failed");
                (
                    ActivityStatus::Failed,
                    format!("Failed to set desired concurrency to {desired}. {error}"),
                )
            }
        };
        self.record(Self::activity(
            target,
            format!("Setting desired concurrency to {desired}."),
            cause,
            now,
            status,
            message,
        ));
        result.is_ok()
    }

    /// Brings the function's provisioned concurrency within the target's bounds. Without a
    /// configuration it counts as 0 when `missing_is_zero` (a scheduled action raising the
    /// minimum creates one) and is left alone otherwise (registration changes only an
    /// active resource).
    fn bring_within(&self, target: &ScalableTarget, missing_is_zero: bool, now: OffsetDateTime) {
        let resource = &target.resource;
        let current = match self.provisioned.requested(
            &target.account,
            &resource.function,
            &resource.qualifier,
        ) {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, resource = %resource.id(), "reading provisioned concurrency failed");
                return;
            }
        };
        let Some(current) = current.or(missing_is_zero.then_some(0)) else {
            return;
        };
        let desired = current.clamp(target.min_capacity, target.max_capacity);
        if desired == current {
            return;
        }
        let cause = if desired > current {
            format!("minimum capacity was set to {}", target.min_capacity)
        } else {
            format!("maximum capacity was set to {}", target.max_capacity)
        };
        self.set_capacity(target, desired, cause, now);
    }

    /// One step of the driver: fires the scheduled actions that are due and takes one
    /// utilisation sample for the scaling policies.
    pub fn tick(&self, now: OffsetDateTime) {
        self.fire_scheduled(now);
        self.sample(now);
    }

    /// Fires every scheduled action due at or before `now`. An action missed several times
    /// (the server was down) fires once.
    pub fn fire_scheduled(&self, now: OffsetDateTime) {
        let due: Vec<(NamedKey, OffsetDateTime)> = self
            .lock()
            .actions
            .iter()
            .filter_map(|(key, action)| due_at(action, now).map(|at| (key.clone(), at)))
            .collect();
        for (key, at) in due {
            if let Err(error) = self.fire(&key, at, now) {
                tracing::warn!(%error, action = %key.2, "firing a scheduled action failed");
            }
        }
    }

    fn fire(
        &self,
        key: &NamedKey,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), AutoscalingError> {
        let target = {
            let mut state = self.lock();
            let Some(action) = state.actions.get(key).cloned() else {
                return Ok(());
            };
            // Changed since it was found due: its new schedule decides.
            if due_at(&action, now) != Some(at) {
                return Ok(());
            }
            let Some(target) = state.targets.get(&(key.0.clone(), key.1.clone())).cloned() else {
                return Ok(());
            };
            let mut fired = action.clone();
            fired.evaluated_until = now;
            if target.suspended.scheduled_scaling_suspended {
                // Skipped, not postponed.
                return self.commit(&mut state, vec![Change::PutAction(fired)]);
            }
            fired.last_fired = Some(at);
            let (min, max) = bounds_after(&target, action.min_capacity, action.max_capacity);
            let mut scaled = target.clone();
            scaled.min_capacity = min;
            scaled.max_capacity = max;
            let set = bounds_text(
                action.min_capacity.map(|_| min),
                action.max_capacity.map(|_| max),
            );
            let activity = Self::activity(
                &target,
                format!("Setting {set}"),
                format!("scheduled action name {} was triggered", action.name),
                now,
                ActivityStatus::Successful,
                format!("Successfully set {set}"),
            );
            // The firing, the new bounds and the record go to disk together, before the
            // function is touched: a crash after this point does not fire it again.
            self.commit(
                &mut state,
                vec![
                    Change::PutAction(fired),
                    Change::PutTarget(scaled.clone()),
                    Change::AddActivity(activity),
                ],
            )?;
            scaled
        };
        self.bring_within(&target, true, now);
        Ok(())
    }

    /// Takes one utilisation sample of every target with a scaling policy and scales where
    /// a policy says so.
    pub fn sample(&self, now: OffsetDateTime) {
        let work: Vec<(ScalableTarget, Vec<ScalingPolicy>)> = {
            let state = self.lock();
            let mut by_target: BTreeMap<TargetKey, Vec<ScalingPolicy>> = BTreeMap::new();
            for ((account, id, _), policy) in &state.policies {
                by_target
                    .entry((account.clone(), id.clone()))
                    .or_default()
                    .push(policy.clone());
            }
            by_target
                .into_iter()
                .filter_map(|(key, policies)| {
                    state.targets.get(&key).map(|t| (t.clone(), policies))
                })
                .collect()
        };
        let tracked: HashSet<TargetKey> = work
            .iter()
            .map(|(t, _)| target_key(&t.account, &t.resource))
            .collect();
        lock(&self.samples).retain(|key, _| tracked.contains(key));
        for (target, policies) in work {
            self.evaluate(&target, &policies, now);
        }
    }

    fn evaluate(&self, target: &ScalableTarget, policies: &[ScalingPolicy], now: OffsetDateTime) {
        let key = target_key(&target.account, &target.resource);
        let resource = &target.resource;
        let utilization = self
            .provisioned
            .utilization(&target.account, &resource.function, &resource.qualifier)
            .filter(|u| u.is_finite());
        let Some(utilization) = utilization else {
            // No data: nothing to decide on, and no stale samples to decide on later.
            lock(&self.samples).remove(&key);
            return;
        };
        let window = {
            let mut samples = lock(&self.samples);
            let window = samples.entry(key.clone()).or_default();
            window.push(utilization.clamp(0.0, 1.0));
            window.clone()
        };
        let current = match self.provisioned.requested(
            &target.account,
            &resource.function,
            &resource.qualifier,
        ) {
            Ok(Some(current)) => current,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, resource = %resource.id(), "reading provisioned concurrency failed");
                return;
            }
        };
        let Some(decision) = tracking::decide(&window, current, target, policies, now) else {
            return;
        };
        let policy = &policies[decision.policy];
        let alarm = policy
            .alarms
            .get(usize::from(decision.direction == Direction::In))
            .map_or("", |a| a.name.as_str());
        let cause = format!(
            "monitor alarm {alarm} in state ALARM triggered policy {}",
            policy.name
        );
        let succeeded = self.set_capacity(target, decision.capacity, cause, now);
        lock(&self.samples).remove(&key);
        if succeeded {
            let mut state = self.lock();
            let policy_key = named_key(&target.account, resource, &policy.name);
            if let Some(mut stored) = state.policies.get(&policy_key).cloned() {
                match decision.direction {
                    Direction::Out => stored.last_scale_out = Some(now),
                    Direction::In => stored.last_scale_in = Some(now),
                }
                if let Err(error) = self.commit(&mut state, vec![Change::PutPolicy(stored)]) {
                    tracing::warn!(%error, "recording a policy's scaling time failed");
                }
            }
        }
    }

    /// Runs the driver as a task for as long as the service lives: scheduled actions are
    /// checked every second (or every `period`, if shorter) and policies sample the
    /// utilisation every `period` (AWS: one minute).
    pub fn run(self: Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self);
        drop(self);
        let period = period.max(Duration::from_millis(10));
        let step = period.min(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(step);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_sample = tokio::time::Instant::now() + period;
            loop {
                ticker.tick().await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                let instant = tokio::time::Instant::now();
                let sample = instant >= next_sample;
                if sample {
                    next_sample = (next_sample + period).max(instant);
                }
                let _ = tokio::task::spawn_blocking(move || {
                    let now = service.clock.now();
                    service.fire_scheduled(now);
                    if sample {
                        service.sample(now);
                    }
                })
                .await;
            }
        })
    }
}

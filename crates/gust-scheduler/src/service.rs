//! The service: every operation's semantics over state kept in memory and written through
//! to the store before an operation returns. The driver that fires schedules and delivers
//! their invocations is in [`crate::driver`].

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gust_model::schedule::{ScheduleExpression, Zone};
use gust_model::targets::Deliver;
use gust_model::Clock;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::delivery::PendingDelivery;
use crate::error::SchedulerError;
use crate::model::{
    check_target, check_window, next_time, valid_name, GroupState, Page, Paged, Schedule,
    ScheduleFilter, ScheduleGroup, ScheduleInput, DEFAULT_GROUP,
};
use crate::sqlite::SqliteStore;
use crate::store::{Change, SchedulerStore};

/// Most schedules per account (AWS: 1,000,000 per Region).
pub const MAX_SCHEDULES: usize = 1_000_000;
/// Most schedule groups per account, `default` included (AWS: 500 per Region).
pub const MAX_GROUPS: usize = 500;
/// `MaxResults`' bound and default.
const MAX_RESULTS: i64 = 100;
/// How far in the past a recurring schedule's `StartDate` may be.
const START_DATE_SLACK: time::Duration = time::Duration::minutes(5);

/// Tunables of the driver.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The wait before a delivery's first retry; each further retry waits twice as long.
    pub retry_base_delay: Duration,
    /// The longest wait between retries.
    pub retry_max_delay: Duration,
    /// The longest the driver sleeps between two looks at the schedules (it wakes earlier
    /// when something is due or changes).
    pub poll_interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// `(account, name)`.
pub(crate) type GroupKey = (String, String);
/// `(account, group, name)`.
pub(crate) type ScheduleKey = (String, String, String);

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A schedule with what the driver needs of it, computed once.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) schedule: Schedule,
    pub(crate) compiled: Option<(ScheduleExpression, Zone)>,
    /// The next scheduled time after its progress.
    pub(crate) next: Option<OffsetDateTime>,
}

impl Entry {
    fn new(schedule: Schedule) -> Self {
        let compiled = schedule.compiled();
        let next = compiled
            .as_ref()
            .and_then(|(e, z)| next_time(&schedule, e, z, schedule.evaluated_until));
        Entry {
            schedule,
            compiled,
            next,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) groups: BTreeMap<GroupKey, ScheduleGroup>,
    pub(crate) schedules: BTreeMap<ScheduleKey, Entry>,
    pub(crate) deliveries: BTreeMap<String, PendingDelivery>,
}

impl State {
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::PutGroup(g) => {
                self.groups.insert((g.account.clone(), g.name.clone()), g);
            }
            Change::DeleteGroup { account, name } => {
                self.groups.remove(&(account.clone(), name.clone()));
                self.schedules
                    .retain(|(a, g, _), _| (a, g) != (&account, &name));
            }
            Change::PutSchedule(s) => {
                let key = (s.account.clone(), s.group.clone(), s.name.clone());
                self.schedules.insert(key, Entry::new(*s));
            }
            Change::DeleteSchedule {
                account,
                group,
                name,
            } => {
                self.schedules.remove(&(account, group, name));
            }
            Change::PutDelivery(d) => {
                self.deliveries.insert(d.id.clone(), *d);
            }
            Change::DeleteDelivery(id) => {
                self.deliveries.remove(&id);
            }
        }
    }
}

/// EventBridge Scheduler.
#[derive(Debug)]
pub struct Scheduler {
    pub(crate) store: Arc<dyn SchedulerStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) region: String,
    pub(crate) deliver: Arc<dyn Deliver>,
    pub(crate) config: SchedulerConfig,
    pub(crate) state: Mutex<State>,
    /// Deliveries being attempted now.
    pub(crate) in_flight: Mutex<HashSet<String>>,
    /// Wakes the driver when something changes.
    pub(crate) wake: Arc<Notify>,
}

/// The page of `items` (sorted by their keys, ascending) that `page` asks for.
fn paginate<T>(items: Vec<(String, T)>, page: &Page) -> Result<Paged<T>, SchedulerError> {
    let max = match page.max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=MAX_RESULTS).contains(&n) => n,
        Some(_) => {
            return Err(SchedulerError::validation(format!(
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
                .ok_or_else(|| SchedulerError::validation("Invalid NextToken"))?;
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

impl Scheduler {
    /// Opens the service over the SQLite database at `path` (created if missing). ARNs
    /// name `region`; time comes from `clock`; invocations go through `deliver`.
    pub fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        region: &str,
        deliver: Arc<dyn Deliver>,
        config: SchedulerConfig,
    ) -> Result<Arc<Self>, SchedulerError> {
        let store = SqliteStore::open(path)?;
        Self::with_store(Arc::new(store), clock, region, deliver, config)
    }

    /// The service over any store.
    pub fn with_store(
        store: Arc<dyn SchedulerStore>,
        clock: Arc<dyn Clock>,
        region: &str,
        deliver: Arc<dyn Deliver>,
        config: SchedulerConfig,
    ) -> Result<Arc<Self>, SchedulerError> {
        let snapshot = store.load()?;
        let mut state = State::default();
        for group in snapshot.groups {
            state.apply(Change::PutGroup(group));
        }
        for schedule in snapshot.schedules {
            state.apply(Change::PutSchedule(Box::new(schedule)));
        }
        for delivery in snapshot.deliveries {
            state.apply(Change::PutDelivery(Box::new(delivery)));
        }
        Ok(Arc::new(Scheduler {
            store,
            clock,
            region: region.to_owned(),
            deliver,
            config,
            state: Mutex::new(state),
            in_flight: Mutex::new(HashSet::new()),
            wake: Arc::new(Notify::new()),
        }))
    }

    /// The region ARNs name.
    pub fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes `changes` to the store, then to memory, and wakes the driver.
    pub(crate) fn commit(
        &self,
        state: &mut State,
        changes: Vec<Change>,
    ) -> Result<(), SchedulerError> {
        self.store.commit(&changes)?;
        for change in changes {
            state.apply(change);
        }
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn group_arn(&self, account: &str, name: &str) -> String {
        format!(
            "arn:aws:scheduler:{}:{account}:schedule-group/{name}",
            self.region
        )
    }

    fn schedule_arn(&self, account: &str, group: &str, name: &str) -> String {
        format!(
            "arn:aws:scheduler:{}:{account}:schedule/{group}/{name}",
            self.region
        )
    }

    /// The `default` group as it is before anyone tags it.
    fn default_group(&self, account: &str) -> ScheduleGroup {
        ScheduleGroup {
            account: account.to_owned(),
            name: DEFAULT_GROUP.to_owned(),
            arn: self.group_arn(account, DEFAULT_GROUP),
            state: GroupState::Active,
            created: None,
            modified: None,
            tags: BTreeMap::new(),
            client_token: None,
        }
    }

    fn find_group(&self, state: &State, account: &str, name: &str) -> Option<ScheduleGroup> {
        match state.groups.get(&(account.to_owned(), name.to_owned())) {
            Some(group) => Some(group.clone()),
            None if name == DEFAULT_GROUP => Some(self.default_group(account)),
            None => None,
        }
    }

    fn check_name(name: &str, what: &str) -> Result<(), SchedulerError> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(SchedulerError::validation(format!(
                "Invalid {what} {name}: a name is 1 to 64 characters of 0-9, a-z, A-Z, -, _ and ."
            )))
        }
    }

    // -----------------------------------------------------------------------------------
    // Schedule groups.

    /// `CreateScheduleGroup`. A repeated `ClientToken` answers the group it created.
    pub fn create_schedule_group(
        &self,
        account: &str,
        name: &str,
        tags: BTreeMap<String, String>,
        client_token: Option<&str>,
    ) -> Result<String, SchedulerError> {
        Self::check_name(name, "schedule group name")?;
        let now = self.clock.now();
        let mut state = self.lock();
        if let Some(existing) = self.find_group(&state, account, name) {
            if client_token.is_some() && existing.client_token.as_deref() == client_token {
                return Ok(existing.arn);
            }
            return Err(SchedulerError::Conflict(format!(
                "Schedule group {name} already exists."
            )));
        }
        let count = state
            .groups
            .keys()
            .filter(|(a, n)| a == account && n != DEFAULT_GROUP)
            .count()
            + 1;
        if count >= MAX_GROUPS {
            return Err(SchedulerError::ServiceQuotaExceeded(format!(
                "You have reached the maximum number of schedule groups ({MAX_GROUPS}) for this account in this Region."
            )));
        }
        let group = ScheduleGroup {
            account: account.to_owned(),
            name: name.to_owned(),
            arn: self.group_arn(account, name),
            state: GroupState::Active,
            created: Some(now),
            modified: Some(now),
            tags,
            client_token: client_token.map(str::to_owned),
        };
        let arn = group.arn.clone();
        self.commit(&mut state, vec![Change::PutGroup(group)])?;
        Ok(arn)
    }

    /// `GetScheduleGroup`.
    pub fn get_schedule_group(
        &self,
        account: &str,
        name: &str,
    ) -> Result<ScheduleGroup, SchedulerError> {
        let state = self.lock();
        self.find_group(&state, account, name)
            .ok_or_else(|| SchedulerError::group_not_found(name))
    }

    /// `DeleteScheduleGroup`: the group and its schedules go together (deliveries already
    /// under way finish).
    pub fn delete_schedule_group(&self, account: &str, name: &str) -> Result<(), SchedulerError> {
        if name == DEFAULT_GROUP {
            return Err(SchedulerError::validation(
                "The default schedule group cannot be deleted.",
            ));
        }
        let mut state = self.lock();
        if self.find_group(&state, account, name).is_none() {
            return Err(SchedulerError::group_not_found(name));
        }
        self.commit(
            &mut state,
            vec![Change::DeleteGroup {
                account: account.to_owned(),
                name: name.to_owned(),
            }],
        )
    }

    /// `ListScheduleGroups`, by name.
    pub fn list_schedule_groups(
        &self,
        account: &str,
        name_prefix: Option<&str>,
        page: &Page,
    ) -> Result<Paged<ScheduleGroup>, SchedulerError> {
        let mut groups: BTreeMap<String, ScheduleGroup> = self
            .lock()
            .groups
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|((_, name), g)| (name.clone(), g.clone()))
            .collect();
        groups
            .entry(DEFAULT_GROUP.to_owned())
            .or_insert_with(|| self.default_group(account));
        let items = groups
            .into_iter()
            .filter(|(name, _)| name_prefix.is_none_or(|p| name.starts_with(p)))
            .collect();
        paginate(items, page)
    }

    // -----------------------------------------------------------------------------------
    // Schedules.

    /// Checks a schedule's settings and builds it (progress starting `now`).
    fn build(
        &self,
        account: &str,
        name: &str,
        input: &ScheduleInput,
        now: OffsetDateTime,
    ) -> Result<Schedule, SchedulerError> {
        Self::check_name(name, "schedule name")?;
        let group = input.group.as_deref().unwrap_or(DEFAULT_GROUP);
        Self::check_name(group, "schedule group name")?;
        let expression = ScheduleExpression::parse(&input.expression)
            .map_err(|e| SchedulerError::validation(e.to_string()))?;
        if let Some(zone) = &input.timezone {
            Zone::parse(zone).map_err(|e| SchedulerError::validation(e.to_string()))?;
        }
        let target = check_target(&input.target)?;
        let flexible_time_window = check_window(input.flexible_time_window)?;
        if expression.is_recurring() {
            if let Some(start) = input.start {
                if start < now - START_DATE_SLACK {
                    return Err(SchedulerError::validation(
                        "The StartDate you specify cannot be earlier than 5 minutes ago.",
                    ));
                }
            }
            if let (Some(start), Some(end)) = (input.start, input.end) {
                if end <= start {
                    return Err(SchedulerError::validation(
                        "The EndDate you specify must be later than the StartDate.",
                    ));
                }
            }
        }
        Ok(Schedule {
            account: account.to_owned(),
            group: group.to_owned(),
            name: name.to_owned(),
            arn: self.schedule_arn(account, group, name),
            expression: input.expression.trim().to_owned(),
            timezone: input.timezone.clone(),
            start: input.start,
            end: input.end,
            description: input.description.clone(),
            state: input.state.unwrap_or_default(),
            kms_key_arn: input.kms_key_arn.clone(),
            action_after_completion: input.action_after_completion.unwrap_or_default(),
            flexible_time_window,
            target,
            created: now,
            modified: now,
            client_token: input.client_token.clone(),
            evaluated_until: now,
            last_fired: None,
        })
    }

    /// `CreateSchedule`; answers the schedule's ARN. A repeated `ClientToken` answers the
    /// schedule it created.
    pub fn create_schedule(
        &self,
        account: &str,
        name: &str,
        input: &ScheduleInput,
    ) -> Result<String, SchedulerError> {
        let now = self.clock.now();
        let schedule = self.build(account, name, input, now)?;
        let mut state = self.lock();
        if self.find_group(&state, account, &schedule.group).is_none() {
            return Err(SchedulerError::group_not_found(&schedule.group));
        }
        let key = (account.to_owned(), schedule.group.clone(), name.to_owned());
        if let Some(existing) = state.schedules.get(&key) {
            if input.client_token.is_some() && existing.schedule.client_token == input.client_token
            {
                return Ok(existing.schedule.arn.clone());
            }
            return Err(SchedulerError::Conflict(format!(
                "Schedule {name} already exists."
            )));
        }
        let count = state
            .schedules
            .keys()
            .filter(|(a, _, _)| a == account)
            .count();
        if count >= MAX_SCHEDULES {
            return Err(SchedulerError::ServiceQuotaExceeded(format!(
                "You have reached the maximum number of schedules ({MAX_SCHEDULES}) for this account in this Region."
            )));
        }
        let arn = schedule.arn.clone();
        self.commit(&mut state, vec![Change::PutSchedule(Box::new(schedule))])?;
        Ok(arn)
    }

    /// `UpdateSchedule`: replaces every setting (what is not given takes its default); the
    /// schedule restarts from now.
    pub fn update_schedule(
        &self,
        account: &str,
        name: &str,
        input: &ScheduleInput,
    ) -> Result<String, SchedulerError> {
        let now = self.clock.now();
        let mut schedule = self.build(account, name, input, now)?;
        let mut state = self.lock();
        if self.find_group(&state, account, &schedule.group).is_none() {
            return Err(SchedulerError::group_not_found(&schedule.group));
        }
        let key = (account.to_owned(), schedule.group.clone(), name.to_owned());
        let Some(existing) = state.schedules.get(&key) else {
            return Err(SchedulerError::schedule_not_found(name));
        };
        schedule.created = existing.schedule.created;
        schedule.client_token = existing.schedule.client_token.clone();
        let arn = schedule.arn.clone();
        self.commit(&mut state, vec![Change::PutSchedule(Box::new(schedule))])?;
        Ok(arn)
    }

    /// `GetSchedule` (in `default` when `group` is `None`).
    pub fn get_schedule(
        &self,
        account: &str,
        group: Option<&str>,
        name: &str,
    ) -> Result<Schedule, SchedulerError> {
        let group = group.unwrap_or(DEFAULT_GROUP);
        let state = self.lock();
        if self.find_group(&state, account, group).is_none() {
            return Err(SchedulerError::group_not_found(group));
        }
        state
            .schedules
            .get(&(account.to_owned(), group.to_owned(), name.to_owned()))
            .map(|e| e.schedule.clone())
            .ok_or_else(|| SchedulerError::schedule_not_found(name))
    }

    /// `DeleteSchedule` (in `default` when `group` is `None`). An invocation already under
    /// way finishes.
    pub fn delete_schedule(
        &self,
        account: &str,
        group: Option<&str>,
        name: &str,
    ) -> Result<(), SchedulerError> {
        let group = group.unwrap_or(DEFAULT_GROUP);
        let mut state = self.lock();
        if self.find_group(&state, account, group).is_none() {
            return Err(SchedulerError::group_not_found(group));
        }
        let key = (account.to_owned(), group.to_owned(), name.to_owned());
        if !state.schedules.contains_key(&key) {
            return Err(SchedulerError::schedule_not_found(name));
        }
        self.commit(
            &mut state,
            vec![Change::DeleteSchedule {
                account: key.0,
                group: key.1,
                name: key.2,
            }],
        )
    }

    /// `ListSchedules`, by group and name.
    pub fn list_schedules(
        &self,
        account: &str,
        filter: &ScheduleFilter,
        page: &Page,
    ) -> Result<Paged<Schedule>, SchedulerError> {
        let state = self.lock();
        if let Some(group) = &filter.group {
            if self.find_group(&state, account, group).is_none() {
                return Err(SchedulerError::group_not_found(group));
            }
        }
        let items = state
            .schedules
            .iter()
            .filter(|((a, g, n), e)| {
                a == account
                    && filter.group.as_ref().is_none_or(|want| want == g)
                    && filter
                        .name_prefix
                        .as_ref()
                        .is_none_or(|p| n.starts_with(p.as_str()))
                    && filter.state.is_none_or(|s| s == e.schedule.state)
            })
            .map(|((_, g, n), e)| (format!("{g}/{n}"), e.schedule.clone()))
            .collect();
        drop(state);
        paginate(items, page)
    }

    // -----------------------------------------------------------------------------------
    // Tags (schedule groups only).

    /// The group a tag operation's ARN names, if it is this caller's.
    fn tagged_group(
        &self,
        state: &State,
        account: &str,
        arn: &str,
    ) -> Result<ScheduleGroup, SchedulerError> {
        let prefix = format!(
            "arn:aws:scheduler:{}:{account}:schedule-group/",
            self.region
        );
        let name = arn
            .rsplit_once("schedule-group/")
            .map_or(arn, |(_, name)| name);
        if !arn.starts_with(&prefix) {
            return Err(SchedulerError::group_not_found(name));
        }
        self.find_group(state, account, name)
            .ok_or_else(|| SchedulerError::group_not_found(name))
    }

    /// `ListTagsForResource`.
    pub fn list_tags(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, SchedulerError> {
        let state = self.lock();
        Ok(self.tagged_group(&state, account, arn)?.tags)
    }

    /// `TagResource`: adds or replaces tags.
    pub fn tag_resource(
        &self,
        account: &str,
        arn: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), SchedulerError> {
        let mut state = self.lock();
        let mut group = self.tagged_group(&state, account, arn)?;
        group.tags.extend(tags);
        self.commit(&mut state, vec![Change::PutGroup(group)])
    }

    /// `UntagResource`: removes tags (absent keys are ignored).
    pub fn untag_resource(
        &self,
        account: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), SchedulerError> {
        let mut state = self.lock();
        let mut group = self.tagged_group(&state, account, arn)?;
        for key in keys {
            group.tags.remove(key);
        }
        self.commit(&mut state, vec![Change::PutGroup(group)])
    }
}

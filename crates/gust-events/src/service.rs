//! The service: every operation's semantics, routing of accepted events to rules' targets,
//! and scheduled rules' firing. Buses and rules live in memory and are written through to the
//! store before an operation returns; deliveries are written to the store in the same
//! transaction that makes them, and the worker ([`crate::worker`]) takes them from there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gust_model::pattern::{EventPattern, MAX_RULE_PATTERN_LENGTH};
use gust_model::schedule::{ScheduleExpression, Zone};
use gust_model::targets::Deliver;
use gust_model::Clock;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::error::EventsError;
use crate::model::{
    arn_parts, bus_arn, rule_arn, CreateBusInput, EventBus, EventsArn, Page, Paged, PutEventsEntry,
    PutEventsOutput, PutEventsResultEntry, PutRuleInput, Rule, RuleState, Target, TargetFailure,
    DEFAULT_BUS,
};
use crate::sqlite::{ms, SqliteStore};
use crate::store::{Change, EventsStore, NewDelivery};
use crate::transform::{self, Context, PREDEFINED};

/// Most event buses per account (the default one included).
pub const MAX_BUSES: usize = 100;
/// Most rules per event bus.
pub const MAX_RULES_PER_BUS: usize = 300;
/// Most targets per rule.
pub const MAX_TARGETS_PER_RULE: usize = 5;
/// Most tags on a bus or rule.
pub const MAX_TAGS: usize = 50;
/// Most entries in one `PutEvents` request.
pub const MAX_ENTRIES: usize = 10;
/// The most the entries of one `PutEvents` request may add up to (EventBridge's entry size).
pub const MAX_ENTRIES_SIZE: usize = 256 * 1024;
/// `Limit`'s bound and default.
const MAX_LIMIT: i64 = 100;
/// A missed scheduled time is looked for at most this far back.
const SCHEDULE_LOOKBACK: time::Duration = time::Duration::DAY;

/// How the service retries and polls.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// The first retry's delay; each later one doubles it (with jitter), up to `retry_cap`.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_cap: Duration,
    /// How often the worker looks for due deliveries and scheduled rules when nothing
    /// wakes it sooner.
    pub poll_interval: Duration,
    /// Most deliveries attempted at once.
    pub max_in_flight: usize,
    /// Attempts at sending to a dead-letter queue before the event is dropped.
    pub dead_letter_attempts: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            max_in_flight: 32,
            dead_letter_attempts: 5,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `(account, name)`.
type BusKey = (String, String);
/// `(account, bus, name)`.
type RuleKey = (String, String, String);

#[derive(Debug)]
struct RuleEntry {
    rule: Rule,
    pattern: Option<EventPattern>,
    schedule: Option<ScheduleExpression>,
}

#[derive(Debug, Default)]
struct State {
    buses: BTreeMap<BusKey, EventBus>,
    rules: BTreeMap<RuleKey, RuleEntry>,
}

fn rule_key(rule: &Rule) -> RuleKey {
    (rule.account.clone(), rule.bus.clone(), rule.name.clone())
}

impl State {
    fn apply(&mut self, change: Change) {
        match change {
            Change::PutBus(bus) => {
                self.buses
                    .insert((bus.account.clone(), bus.name.clone()), bus);
            }
            Change::DeleteBus { account, name } => {
                self.rules
                    .retain(|(a, b, _), _| !(*a == account && *b == name));
                self.buses.remove(&(account, name));
            }
            Change::PutRule(rule) => {
                let pattern = rule
                    .event_pattern
                    .as_deref()
                    .and_then(|p| EventPattern::parse(p).ok());
                let schedule = rule
                    .schedule_expression
                    .as_deref()
                    .and_then(|s| parse_schedule(s).ok());
                self.rules.insert(
                    rule_key(&rule),
                    RuleEntry {
                        rule,
                        pattern,
                        schedule,
                    },
                );
            }
            Change::DeleteRule { account, bus, name } => {
                self.rules.remove(&(account, bus, name));
            }
            Change::AddDelivery(_) | Change::FinishDelivery(_) | Change::RetryDelivery { .. } => {}
        }
    }

    fn bus(&self, account: &str, name: &str) -> Result<&EventBus, EventsError> {
        self.buses
            .get(&(account.to_owned(), name.to_owned()))
            .ok_or_else(|| EventsError::bus_not_found(name))
    }

    fn rule(&self, account: &str, bus: &str, name: &str) -> Result<&Rule, EventsError> {
        self.bus(account, bus)?;
        self.rules
            .get(&(account.to_owned(), bus.to_owned(), name.to_owned()))
            .map(|entry| &entry.rule)
            .ok_or_else(|| EventsError::rule_not_found(name, bus))
    }
}

/// A rule's schedule: `rate(…)` or `cron(…)`, evaluated in UTC (`at(…)` is Scheduler's).
fn parse_schedule(text: &str) -> Result<ScheduleExpression, EventsError> {
    match ScheduleExpression::parse(text) {
        Ok(ScheduleExpression::At(_)) | Err(_) => Err(EventsError::validation(
            "Parameter ScheduleExpression is not valid.",
        )),
        Ok(expression) => Ok(expression),
    }
}

/// RFC 3339 in UTC to the second, as events carry times.
pub(crate) fn event_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The page of `items` (sorted by their keys, ascending) that `page` asks for.
fn paginate<T>(items: Vec<(String, T)>, page: &Page) -> Result<Paged<T>, EventsError> {
    let max = match page.limit {
        None => MAX_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(EventsError::validation(format!(
                "Limit must be between 1 and {MAX_LIMIT}"
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
                .ok_or_else(|| EventsError::validation("The nextToken provided is invalid."))?;
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

fn tag_map(
    current: &BTreeMap<String, String>,
    tags: &[(String, String)],
) -> Result<BTreeMap<String, String>, EventsError> {
    let mut seen = std::collections::HashSet::new();
    if tags.iter().any(|(k, _)| !seen.insert(k)) {
        return Err(EventsError::validation(
            "Invalid parameter: Duplicated keys are not allowed.",
        ));
    }
    let mut merged = current.clone();
    merged.extend(tags.iter().cloned());
    if merged.len() > MAX_TAGS {
        return Err(EventsError::limit_exceeded());
    }
    Ok(merged)
}

/// An entry's size as EventBridge counts it.
fn entry_size(entry: &PutEventsEntry) -> usize {
    entry.time.map_or(0, |_| 14)
        + entry.source.as_deref().map_or(0, str::len)
        + entry.detail_type.as_deref().map_or(0, str::len)
        + entry.detail.as_deref().map_or(0, str::len)
        + entry.resources.iter().map(String::len).sum::<usize>()
}

/// The event envelope's JSON text, members in EventBridge's order.
#[allow(clippy::too_many_arguments)]
fn envelope(
    id: &str,
    detail_type: &str,
    source: &str,
    account: &str,
    time: &str,
    region: &str,
    resources: &[String],
    detail: &Value,
) -> String {
    let text = |s: &str| Value::from(s).to_string();
    format!(
        "{{\"version\":\"0\",\"id\":{},\"detail-type\":{},\"source\":{},\"account\":{},\"time\":{},\"region\":{},\"resources\":{},\"detail\":{}}}",
        text(id),
        text(detail_type),
        text(source),
        text(account),
        text(time),
        text(region),
        Value::from(resources.to_vec()),
        detail
    )
}

/// Whether `arn` looks like an ARN.
fn valid_arn(arn: &str) -> bool {
    arn_parts(arn).is_some()
}

fn is_sqs(arn: &str) -> bool {
    arn_parts(arn).is_some_and(|p| p[1] == "sqs")
}

/// EventBridge, self-hosted: buses, rules, targets, events and scheduled rules for every
/// account, over a durable store.
#[derive(Debug)]
pub struct Events {
    store: Arc<dyn EventsStore>,
    pub(crate) clock: Arc<dyn Clock>,
    region: String,
    pub(crate) deliver: Arc<dyn Deliver>,
    pub(crate) config: EventsConfig,
    state: Mutex<State>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) started: AtomicBool,
}

impl Events {
    /// Opens the service over the SQLite database at `path` (created if missing). ARNs name
    /// `region`; time comes from `clock`; targets are reached through `deliver`.
    pub fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        region: &str,
        deliver: Arc<dyn Deliver>,
        config: EventsConfig,
    ) -> Result<Arc<Self>, EventsError> {
        let store = SqliteStore::open(path)?;
        Self::with_store(Arc::new(store), clock, region, deliver, config)
    }

    /// The service over any store.
    pub fn with_store(
        store: Arc<dyn EventsStore>,
        clock: Arc<dyn Clock>,
        region: &str,
        deliver: Arc<dyn Deliver>,
        config: EventsConfig,
    ) -> Result<Arc<Self>, EventsError> {
        let snapshot = store.load()?;
        let mut state = State::default();
        for bus in snapshot.buses {
            state.apply(Change::PutBus(bus));
        }
        for rule in snapshot.rules {
            state.apply(Change::PutRule(rule));
        }
        Ok(Arc::new(Events {
            store,
            clock,
            region: region.to_owned(),
            deliver,
            config,
            state: Mutex::new(state),
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
        }))
    }

    /// The region ARNs name.
    pub fn region(&self) -> &str {
        &self.region
    }

    pub(crate) fn store(&self) -> &Arc<dyn EventsStore> {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Writes `changes` to the store, then to memory.
    fn commit(&self, state: &mut State, changes: Vec<Change>) -> Result<(), EventsError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.store.commit(&changes)?;
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }

    /// The account's default bus, created the first time the account is seen.
    fn ensure_default(&self, state: &mut State, account: &str) -> Result<(), EventsError> {
        if state
            .buses
            .contains_key(&(account.to_owned(), DEFAULT_BUS.to_owned()))
        {
            return Ok(());
        }
        let now = self.clock.now();
        let bus = EventBus {
            account: account.to_owned(),
            name: DEFAULT_BUS.to_owned(),
            arn: bus_arn(&self.region, account, DEFAULT_BUS),
            description: None,
            settings: BTreeMap::new(),
            created: now,
            modified: now,
            tags: BTreeMap::new(),
        };
        self.commit(state, vec![Change::PutBus(bus)])
    }

    /// The bus a `Name`/`EventBusName` parameter names: a name, or the ARN of one of the
    /// caller's buses in this region; absent is `default`.
    fn bus_name(&self, account: &str, name_or_arn: Option<&str>) -> Result<String, EventsError> {
        let Some(text) = name_or_arn else {
            return Ok(DEFAULT_BUS.to_owned());
        };
        if !text.starts_with("arn:") {
            return Ok(text.to_owned());
        }
        match EventsArn::parse(text) {
            Some(EventsArn::Bus {
                region,
                account: owner,
                name,
            }) => {
                if owner == account && region == self.region {
                    Ok(name)
                } else {
                    Err(EventsError::bus_not_found(text))
                }
            }
            _ => Err(EventsError::validation(format!(
                "Parameter {text} is not valid. Reason: Provided Arn is not in correct format."
            ))),
        }
    }

    // -------------------------------------------------------------------------------
    // Buses

    /// `CreateEventBus`.
    pub fn create_event_bus(
        &self,
        account: &str,
        input: CreateBusInput,
    ) -> Result<EventBus, EventsError> {
        let name = input.name;
        if let Some(source) = &input.event_source_name {
            return Err(EventsError::ResourceNotFound(format!(
                "Event source {source} does not exist."
            )));
        }
        if name.contains('/') {
            return Err(EventsError::validation(
                "Event bus name must not contain '/'.",
            ));
        }
        if name.starts_with("aws.") {
            return Err(EventsError::validation(
                "Event bus name must not start with 'aws.'.",
            ));
        }
        let tags = tag_map(&BTreeMap::new(), &input.tags)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        if state
            .buses
            .contains_key(&(account.to_owned(), name.clone()))
        {
            return Err(EventsError::ResourceAlreadyExists(format!(
                "Event bus {name} already exists."
            )));
        }
        if state.buses.keys().filter(|(a, _)| a == account).count() >= MAX_BUSES {
            return Err(EventsError::limit_exceeded());
        }
        let now = self.clock.now();
        let bus = EventBus {
            account: account.to_owned(),
            arn: bus_arn(&self.region, account, &name),
            name,
            description: input.description,
            settings: input.settings,
            created: now,
            modified: now,
            tags,
        };
        self.commit(&mut state, vec![Change::PutBus(bus.clone())])?;
        Ok(bus)
    }

    /// `DeleteEventBus`: the bus and its rules; deleting one that does not exist succeeds.
    pub fn delete_event_bus(&self, account: &str, name: &str) -> Result<(), EventsError> {
        if name == DEFAULT_BUS {
            return Err(EventsError::validation("Cannot delete event bus default."));
        }
        let mut state = self.lock();
        if state.bus(account, name).is_err() {
            return Ok(());
        }
        self.commit(
            &mut state,
            vec![Change::DeleteBus {
                account: account.to_owned(),
                name: name.to_owned(),
            }],
        )
    }

    /// `DescribeEventBus` (absent name: `default`).
    pub fn describe_event_bus(
        &self,
        account: &str,
        name_or_arn: Option<&str>,
    ) -> Result<EventBus, EventsError> {
        let name = self.bus_name(account, name_or_arn)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        state.bus(account, &name).cloned()
    }

    /// `ListEventBuses`, by name.
    pub fn list_event_buses(
        &self,
        account: &str,
        prefix: Option<&str>,
        page: &Page,
    ) -> Result<Paged<EventBus>, EventsError> {
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let items = state
            .buses
            .values()
            .filter(|b| b.account == account)
            .filter(|b| prefix.is_none_or(|p| b.name.starts_with(p)))
            .map(|b| (b.name.clone(), b.clone()))
            .collect();
        paginate(items, page)
    }

    // -------------------------------------------------------------------------------
    // Rules

    /// `PutRule`: creates the rule, or replaces every setting of an existing one (its
    /// targets and tags stay). Returns the rule's ARN.
    pub fn put_rule(&self, account: &str, input: PutRuleInput) -> Result<String, EventsError> {
        if input.event_pattern.is_none() && input.schedule_expression.is_none() {
            return Err(EventsError::validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ));
        }
        let bus = self.bus_name(account, input.event_bus_name.as_deref())?;
        if let Some(schedule) = &input.schedule_expression {
            if bus != DEFAULT_BUS {
                return Err(EventsError::validation(
                    "ScheduleExpression is supported only on the default event bus.",
                ));
            }
            parse_schedule(schedule)?;
        }
        if let Some(pattern) = &input.event_pattern {
            if pattern.chars().count() > MAX_RULE_PATTERN_LENGTH {
                return Err(EventsError::LimitExceeded(format!(
                    "Event pattern size exceeds the limit of {MAX_RULE_PATTERN_LENGTH} characters."
                )));
            }
            EventPattern::parse(pattern)
                .map_err(|e| EventsError::InvalidEventPattern(e.to_string()))?;
        }
        let state_value = input.state.unwrap_or(RuleState::Enabled);
        let now = self.clock.now();
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        state.bus(account, &bus)?;
        let key = (account.to_owned(), bus.clone(), input.name.clone());
        let rule = match state.rules.get(&key) {
            Some(existing) => {
                let old = &existing.rule;
                let restart = old.schedule_expression != input.schedule_expression
                    || (!old.state.is_enabled() && state_value.is_enabled());
                Rule {
                    event_pattern: input.event_pattern,
                    schedule_expression: input.schedule_expression,
                    state: state_value,
                    description: input.description,
                    role_arn: input.role_arn,
                    schedule_from: if restart {
                        Some(now)
                    } else {
                        old.schedule_from
                    },
                    ..old.clone()
                }
            }
            None => {
                let count = state
                    .rules
                    .keys()
                    .filter(|(a, b, _)| a == account && *b == bus)
                    .count();
                if count >= MAX_RULES_PER_BUS {
                    return Err(EventsError::limit_exceeded());
                }
                Rule {
                    account: account.to_owned(),
                    arn: rule_arn(&self.region, account, &bus, &input.name),
                    bus: bus.clone(),
                    name: input.name,
                    event_pattern: input.event_pattern,
                    schedule_expression: input.schedule_expression,
                    state: state_value,
                    description: input.description,
                    role_arn: input.role_arn,
                    tags: tag_map(&BTreeMap::new(), &input.tags)?,
                    targets: BTreeMap::new(),
                    created: now,
                    schedule_from: Some(now),
                    last_fired: None,
                }
            }
        };
        let arn = rule.arn.clone();
        self.commit(&mut state, vec![Change::PutRule(rule)])?;
        Ok(arn)
    }

    /// `DescribeRule`.
    pub fn describe_rule(
        &self,
        account: &str,
        name: &str,
        bus: Option<&str>,
    ) -> Result<Rule, EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        state.rule(account, &bus, name).cloned()
    }

    /// `ListRules` of a bus, by name.
    pub fn list_rules(
        &self,
        account: &str,
        prefix: Option<&str>,
        bus: Option<&str>,
        page: &Page,
    ) -> Result<Paged<Rule>, EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        state.bus(account, &bus)?;
        let items = state
            .rules
            .values()
            .map(|e| &e.rule)
            .filter(|r| r.account == account && r.bus == bus)
            .filter(|r| prefix.is_none_or(|p| r.name.starts_with(p)))
            .map(|r| (r.name.clone(), r.clone()))
            .collect();
        paginate(items, page)
    }

    fn set_state(
        &self,
        account: &str,
        name: &str,
        bus: Option<&str>,
        enabled: bool,
    ) -> Result<(), EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let mut rule = state.rule(account, &bus, name)?.clone();
        if rule.state.is_enabled() == enabled {
            return Ok(());
        }
        rule.state = if enabled {
            rule.schedule_from = Some(self.clock.now());
            RuleState::Enabled
        } else {
            RuleState::Disabled
        };
        self.commit(&mut state, vec![Change::PutRule(rule)])
    }

    /// `EnableRule`.
    pub fn enable_rule(
        &self,
        account: &str,
        name: &str,
        bus: Option<&str>,
    ) -> Result<(), EventsError> {
        self.set_state(account, name, bus, true)
    }

    /// `DisableRule`.
    pub fn disable_rule(
        &self,
        account: &str,
        name: &str,
        bus: Option<&str>,
    ) -> Result<(), EventsError> {
        self.set_state(account, name, bus, false)
    }

    /// `DeleteRule`: refused while the rule has targets; deleting one that does not exist
    /// succeeds.
    pub fn delete_rule(
        &self,
        account: &str,
        name: &str,
        bus: Option<&str>,
    ) -> Result<(), EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        state.bus(account, &bus)?;
        let Ok(rule) = state.rule(account, &bus, name) else {
            return Ok(());
        };
        if !rule.targets.is_empty() {
            return Err(EventsError::validation(
                "Rule can't be deleted since it has targets.",
            ));
        }
        self.commit(
            &mut state,
            vec![Change::DeleteRule {
                account: account.to_owned(),
                bus,
                name: name.to_owned(),
            }],
        )
    }

    /// `ListRuleNamesByTarget`: the bus's rules with a target of that ARN, by name.
    pub fn list_rule_names_by_target(
        &self,
        account: &str,
        target_arn: &str,
        bus: Option<&str>,
        page: &Page,
    ) -> Result<Paged<String>, EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        state.bus(account, &bus)?;
        let items = state
            .rules
            .values()
            .map(|e| &e.rule)
            .filter(|r| r.account == account && r.bus == bus)
            .filter(|r| r.targets.values().any(|t| t.arn == target_arn))
            .map(|r| (r.name.clone(), r.name.clone()))
            .collect();
        paginate(items, page)
    }

    // -------------------------------------------------------------------------------
    // Targets

    /// Checks that make the whole `PutTargets` request fail.
    fn check_target(target: &Target) -> Result<(), EventsError> {
        let id = &target.id;
        let inputs = [
            target.input.is_some(),
            target.input_path.is_some(),
            target.input_transformer.is_some(),
        ];
        if inputs.iter().filter(|given| **given).count() > 1 {
            return Err(EventsError::validation(format!(
                "Only one of Input, InputPath, or InputTransformer must be provided for target {id}."
            )));
        }
        if let Some(input) = &target.input {
            if serde_json::from_str::<Value>(input).is_err() {
                return Err(EventsError::validation(format!(
                    "Input for target {id} must be valid JSON text."
                )));
            }
        }
        if let Some(path) = &target.input_path {
            if !transform::is_path(path) {
                return Err(EventsError::validation(format!(
                    "InputPath for target {id} is invalid."
                )));
            }
        }
        if let Some(transformer) = &target.input_transformer {
            for (name, path) in &transformer.input_paths_map {
                if PREDEFINED.contains(&name.as_str()) {
                    return Err(EventsError::validation(format!(
                        "InputPathsMap for target {id} contains reserved placeholder {name}."
                    )));
                }
                if !transform::is_path(path) {
                    return Err(EventsError::validation(format!(
                        "InputPathsMap for target {id} contains invalid path {path}."
                    )));
                }
            }
            for name in transform::placeholders(&transformer.input_template) {
                if !transformer.input_paths_map.contains_key(&name)
                    && !PREDEFINED.contains(&name.as_str())
                {
                    return Err(EventsError::validation(format!(
                        "InputTemplate for target {id} contains invalid placeholder {name}."
                    )));
                }
            }
        }
        if let Some(policy) = &target.retry_policy {
            if policy.maximum_retry_attempts.is_some_and(|n| n > 185) {
                return Err(EventsError::validation(
                    "RetryPolicy.MaximumRetryAttempts must be between 0 and 185.",
                ));
            }
            if policy
                .maximum_event_age_in_seconds
                .is_some_and(|n| !(60..=86_400).contains(&n))
            {
                return Err(EventsError::validation(
                    "RetryPolicy.MaximumEventAgeInSeconds must be between 60 and 86400.",
                ));
            }
        }
        Ok(())
    }

    /// Checks that fail one `PutTargets` entry.
    fn target_failure(target: &Target) -> Option<TargetFailure> {
        let fail = |message: String| {
            Some(TargetFailure {
                target_id: target.id.clone(),
                error_code: "ValidationException".into(),
                error_message: message,
            })
        };
        if !valid_arn(&target.arn) {
            return fail(format!(
                "Parameter {} is not valid. Reason: Provided Arn is not in correct format.",
                target.arn
            ));
        }
        if is_sqs(&target.arn) && target.arn.ends_with(".fifo") && target.message_group_id.is_none()
        {
            return fail(format!(
                "Parameter(s) SqsParameters must be specified for target: {}.",
                target.id
            ));
        }
        if let Some(queue) = &target.dead_letter_arn {
            if !is_sqs(queue) {
                return fail(format!(
                    "Parameter DeadLetterConfig.Arn is not valid. Reason: {queue} is not an Amazon SQS queue ARN."
                ));
            }
            if queue.ends_with(".fifo") {
                return fail(
                    "Parameter DeadLetterConfig.Arn is not valid. Reason: FIFO queues are not supported as dead-letter queues.".into(),
                );
            }
        }
        None
    }

    /// `PutTargets`: adds or replaces targets by `Id`; returns the entries that failed.
    pub fn put_targets(
        &self,
        account: &str,
        rule: &str,
        bus: Option<&str>,
        targets: Vec<Target>,
    ) -> Result<Vec<TargetFailure>, EventsError> {
        for target in &targets {
            Self::check_target(target)?;
        }
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let mut updated = state.rule(account, &bus, rule)?.clone();
        let mut failures = Vec::new();
        for target in targets {
            match Self::target_failure(&target) {
                Some(failure) => failures.push(failure),
                None => {
                    updated.targets.insert(target.id.clone(), target);
                }
            }
        }
        if updated.targets.len() > MAX_TARGETS_PER_RULE {
            return Err(EventsError::limit_exceeded());
        }
        self.commit(&mut state, vec![Change::PutRule(updated)])?;
        Ok(failures)
    }

    /// `RemoveTargets`; returns the entries that failed (an `Id` the rule does not have).
    pub fn remove_targets(
        &self,
        account: &str,
        rule: &str,
        bus: Option<&str>,
        ids: &[String],
    ) -> Result<Vec<TargetFailure>, EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let mut updated = state.rule(account, &bus, rule)?.clone();
        let mut failures = Vec::new();
        for id in ids {
            if updated.targets.remove(id).is_none() {
                failures.push(TargetFailure {
                    target_id: id.clone(),
                    error_code: "ResourceNotFoundException".into(),
                    error_message: format!(
                        "Rule '{rule}' does not have a target with the Id '{id}'."
                    ),
                });
            }
        }
        self.commit(&mut state, vec![Change::PutRule(updated)])?;
        Ok(failures)
    }

    /// `ListTargetsByRule`, by `Id`.
    pub fn list_targets_by_rule(
        &self,
        account: &str,
        rule: &str,
        bus: Option<&str>,
        page: &Page,
    ) -> Result<Paged<Target>, EventsError> {
        let bus = self.bus_name(account, bus)?;
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let rule = state.rule(account, &bus, rule)?;
        let items = rule
            .targets
            .values()
            .map(|t| (t.id.clone(), t.clone()))
            .collect();
        paginate(items, page)
    }

    // -------------------------------------------------------------------------------
    // Events

    /// `TestEventPattern`.
    pub fn test_event_pattern(&self, pattern: &str, event: &str) -> Result<bool, EventsError> {
        let pattern = EventPattern::parse(pattern)
            .map_err(|e| EventsError::InvalidEventPattern(e.to_string()))?;
        let event: Value = serde_json::from_str(event)
            .map_err(|_| EventsError::validation("Parameter Event is not valid."))?;
        let mandatory = [
            "id",
            "account",
            "source",
            "time",
            "region",
            "resources",
            "detail-type",
        ];
        if !event.is_object() || mandatory.iter().any(|k| event.get(k).is_none()) {
            return Err(EventsError::validation("Parameter Event is not valid."));
        }
        Ok(pattern.matches(&event))
    }

    /// `PutEvents`: validates each entry, turns the valid ones into events, and routes each
    /// to the enabled rules of its bus whose pattern it matches. Returns once every
    /// delivery it makes is in the store. An entry for a bus that does not exist is
    /// accepted and goes nowhere, as in EventBridge.
    ///
    /// Blocking (it commits to SQLite): async callers run it on the blocking pool.
    pub fn put_events(
        &self,
        account: &str,
        entries: &[PutEventsEntry],
    ) -> Result<PutEventsOutput, EventsError> {
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            return Err(EventsError::validation(format!(
                "PutEvents takes between 1 and {MAX_ENTRIES} entries."
            )));
        }
        if entries.iter().map(entry_size).sum::<usize>() > MAX_ENTRIES_SIZE {
            return Err(EventsError::validation(
                "Total size of the entries in the request is over the limit.",
            ));
        }
        let now = self.clock.now();
        let mut output = PutEventsOutput::default();
        let mut deliveries = Vec::new();
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        for entry in entries {
            let result = match self.route(&state, account, entry, now) {
                Ok((event_id, mut routed)) => {
                    deliveries.append(&mut routed);
                    PutEventsResultEntry {
                        event_id: Some(event_id),
                        ..Default::default()
                    }
                }
                Err(failed) => {
                    output.failed_entry_count += 1;
                    failed
                }
            };
            output.entries.push(result);
        }
        if !deliveries.is_empty() {
            self.store.commit(&deliveries)?;
            self.wake.notify_one();
        }
        Ok(output)
    }

    /// One entry: its event id and deliveries, or its failed result.
    fn route(
        &self,
        state: &State,
        account: &str,
        entry: &PutEventsEntry,
        now: OffsetDateTime,
    ) -> Result<(String, Vec<Change>), PutEventsResultEntry> {
        let required = |value: &Option<String>, name: &str| match value {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => Err(PutEventsResultEntry::invalid_argument(format!(
                "Parameter {name} is not valid. Reason: {name} is a required argument."
            ))),
        };
        let source = required(&entry.source, "Source")?;
        let detail_type = required(&entry.detail_type, "DetailType")?;
        let detail_text = required(&entry.detail, "Detail")?;
        let detail: Value = match serde_json::from_str(&detail_text) {
            Ok(value @ Value::Object(_)) => value,
            _ => return Err(PutEventsResultEntry::malformed_detail()),
        };
        let bus = match self.bus_name(account, entry.event_bus_name.as_deref()) {
            Ok(bus) => bus,
            Err(_) => {
                return Err(PutEventsResultEntry::error(
                    "AccessDeniedException",
                    format!(
                        "Not authorized to put events to event bus {}.",
                        entry.event_bus_name.as_deref().unwrap_or_default()
                    ),
                ))
            }
        };
        let id = uuid::Uuid::new_v4().to_string();
        let text = envelope(
            &id,
            &detail_type,
            &source,
            account,
            &event_time(entry.time.unwrap_or(now)),
            &self.region,
            &entry.resources,
            &detail,
        );
        if state.bus(account, &bus).is_err() {
            tracing::debug!(account, bus, event_id = %id, "event for a bus that does not exist dropped");
            return Ok((id, Vec::new()));
        }
        let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ingested = event_time(now);
        let mut deliveries = Vec::new();
        let rules = state.rules.range(
            (account.to_owned(), bus.clone(), String::new())
                ..(account.to_owned(), format!("{bus}\u{0}"), String::new()),
        );
        for (_, entry) in rules {
            let rule = &entry.rule;
            if rule.bus != bus || !rule.state.is_enabled() {
                continue;
            }
            if !entry.pattern.as_ref().is_some_and(|p| p.matches(&event)) {
                continue;
            }
            let context = Context {
                event: &event,
                event_text: &text,
                rule_arn: &rule.arn,
                rule_name: &rule.name,
                ingestion_time: &ingested,
            };
            for target in rule.targets.values() {
                deliveries.push(Change::AddDelivery(new_delivery(
                    rule,
                    target,
                    &context,
                    ms(now),
                )));
            }
        }
        Ok((id, deliveries))
    }

    // -------------------------------------------------------------------------------
    // Scheduled rules

    /// Fires every enabled scheduled rule that is due: once per rule for the latest
    /// scheduled time at or before now (earlier ones missed while the server was down are
    /// not made up), delivered to each target whose retry window that time is still
    /// within. The time fired for is stored with the deliveries, so it fires at most once.
    /// Returns when the next rule is due.
    pub(crate) fn fire_schedules(&self) -> Result<Option<OffsetDateTime>, EventsError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let mut changes = Vec::new();
        let mut next_due: Option<OffsetDateTime> = None;
        for entry in state.rules.values() {
            let rule = &entry.rule;
            let Some(schedule) = &entry.schedule else {
                continue;
            };
            if rule.bus != DEFAULT_BUS || !rule.state.is_enabled() {
                continue;
            }
            let (due, next) = due_times(rule, schedule, now);
            if let Some(next) = next {
                next_due = Some(next_due.map_or(next, |n: OffsetDateTime| n.min(next)));
            }
            let Some(at) = due else { continue };
            let late = now - at;
            let id = uuid::Uuid::new_v4().to_string();
            let resources = vec![rule.arn.clone()];
            let text = envelope(
                &id,
                "Scheduled Event",
                "aws.events",
                &rule.account,
                &event_time(at),
                &self.region,
                &resources,
                &Value::Object(Default::default()),
            );
            let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let ingested = event_time(now);
            let context = Context {
                event: &event,
                event_text: &text,
                rule_arn: &rule.arn,
                rule_name: &rule.name,
                ingestion_time: &ingested,
            };
            for target in rule.targets.values() {
                let window = target.retry_policy.unwrap_or_default().max_age();
                if late > time::Duration::seconds(i64::from(window)) {
                    tracing::warn!(rule = %rule.arn, target = %target.id, scheduled = %event_time(at),
                        "scheduled time missed beyond the target's retry window; not delivered");
                    continue;
                }
                changes.push(Change::AddDelivery(new_delivery(
                    rule,
                    target,
                    &context,
                    ms(at),
                )));
            }
            let mut fired = rule.clone();
            fired.last_fired = Some(at);
            changes.push(Change::PutRule(fired));
        }
        let delivered = changes.iter().any(|c| matches!(c, Change::AddDelivery(_)));
        self.commit(&mut state, changes)?;
        if delivered {
            self.wake.notify_one();
        }
        Ok(next_due)
    }

    // -------------------------------------------------------------------------------
    // Tags

    /// The bus or rule an ARN names, as a key into the state.
    fn tagged(&self, state: &State, account: &str, arn: &str) -> Result<Tagged, EventsError> {
        let parsed = EventsArn::parse(arn).ok_or_else(|| {
            EventsError::validation(format!(
                "Parameter {arn} is not valid. Reason: Provided Arn is not in correct format."
            ))
        })?;
        match parsed {
            EventsArn::Bus {
                region,
                account: owner,
                name,
            } => {
                if owner != account || region != self.region {
                    return Err(EventsError::bus_not_found(&name));
                }
                state.bus(account, &name)?;
                Ok(Tagged::Bus((owner, name)))
            }
            EventsArn::Rule {
                region,
                account: owner,
                bus,
                name,
            } => {
                if owner != account || region != self.region {
                    return Err(EventsError::rule_not_found(&name, &bus));
                }
                state.rule(account, &bus, &name)?;
                Ok(Tagged::Rule((owner, bus, name)))
            }
        }
    }

    /// `ListTagsForResource`.
    pub fn list_tags(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, EventsError> {
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        Ok(match self.tagged(&state, account, arn)? {
            Tagged::Bus(key) => state.buses[&key].tags.clone(),
            Tagged::Rule(key) => state.rules[&key].rule.tags.clone(),
        })
    }

    /// `TagResource`.
    pub fn tag_resource(
        &self,
        account: &str,
        arn: &str,
        tags: &[(String, String)],
    ) -> Result<(), EventsError> {
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let change = match self.tagged(&state, account, arn)? {
            Tagged::Bus(key) => {
                let mut bus = state.buses[&key].clone();
                bus.tags = tag_map(&bus.tags, tags)?;
                Change::PutBus(bus)
            }
            Tagged::Rule(key) => {
                let mut rule = state.rules[&key].rule.clone();
                rule.tags = tag_map(&rule.tags, tags)?;
                Change::PutRule(rule)
            }
        };
        self.commit(&mut state, vec![change])
    }

    /// `UntagResource`.
    pub fn untag_resource(
        &self,
        account: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), EventsError> {
        let mut state = self.lock();
        self.ensure_default(&mut state, account)?;
        let change = match self.tagged(&state, account, arn)? {
            Tagged::Bus(key) => {
                let mut bus = state.buses[&key].clone();
                bus.tags.retain(|k, _| !keys.contains(k));
                Change::PutBus(bus)
            }
            Tagged::Rule(key) => {
                let mut rule = state.rules[&key].rule.clone();
                rule.tags.retain(|k, _| !keys.contains(k));
                Change::PutRule(rule)
            }
        };
        self.commit(&mut state, vec![change])
    }
}

enum Tagged {
    Bus(BusKey),
    Rule(RuleKey),
}

/// A delivery of the event in `context` to `target`.
fn new_delivery(
    rule: &Rule,
    target: &Target,
    context: &Context<'_>,
    created_ms: i64,
) -> NewDelivery {
    let policy = target.retry_policy.unwrap_or_default();
    NewDelivery {
        account: rule.account.clone(),
        rule_arn: rule.arn.clone(),
        target_id: target.id.clone(),
        target_arn: target.arn.clone(),
        payload: transform::payload(target, context),
        event: context.event_text.to_owned(),
        message_group_id: target.message_group_id.clone(),
        dead_letter_arn: target.dead_letter_arn.clone(),
        max_retries: policy.attempts(),
        max_age_seconds: policy.max_age(),
        created_ms,
    }
}

/// A scheduled rule's latest time at or before `now` it has not fired for, and its first
/// time after `now`.
fn due_times(
    rule: &Rule,
    schedule: &ScheduleExpression,
    now: OffsetDateTime,
) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let from = rule.schedule_from.unwrap_or(rule.created);
    // A rate counts from when it was set; a cron is on the calendar.
    let start = schedule.period().map(|_| from);
    let mut after = rule.last_fired.map_or(from, |fired| fired.max(from));
    // Times older than any retry window are never delivered: no need to walk them.
    after = after.max(now - SCHEDULE_LOOKBACK);
    let zone = Zone::UTC;
    let next_after = |t: OffsetDateTime| schedule.next_after(t, &zone, start);
    let Some(first) = next_after(after) else {
        return (None, None);
    };
    if first > now {
        return (None, Some(first));
    }
    let mut latest = first;
    if let Some(period) = schedule.period() {
        // The last multiple of the period at or before now.
        if let Some(candidate) = next_after(now - period) {
            if candidate <= now && candidate > latest {
                latest = candidate;
            }
        }
        return (Some(latest), next_after(latest.max(now)));
    }
    loop {
        match next_after(latest) {
            Some(next) if next <= now => latest = next,
            next => return (Some(latest), next),
        }
    }
}

//! Prometheus text exposition (format 0.0.4) of what the platform observes: counters,
//! histograms and gauges per account and function, written by hand (the format is small,
//! and the function label's cardinality must be bounded, which client libraries leave to
//! their caller).
//!
//! Cardinality: at most [`MAX_FUNCTION_LABELS`] distinct (account, function) pairs get
//! their own `function` label value, first come first served for the life of the
//! process; the others are counted together under `function="__other__"` (their
//! account's label kept).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gust_model::observe::{FunctionKey, Gauges, Observation, Observer};
use time::OffsetDateTime;

/// The most distinct (account, function) label pairs exposed.
pub const MAX_FUNCTION_LABELS: usize = 200;

/// The `function` label of the functions beyond [`MAX_FUNCTION_LABELS`].
pub const OTHER_FUNCTION: &str = "__other__";

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of `gust_invocation_duration_seconds` (Lambda's timeout is at most 900 s).
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];
/// Upper bounds of `gust_init_duration_seconds` (INIT is cut at 10 s, SnapStart restores
/// are fast).
const INIT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Upper bounds of `gust_async_event_age_seconds` (an event lives at most 6 hours).
const AGE_BUCKETS: &[f64] = &[
    0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];

/// Who may read `/metrics` (`--metrics-access`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// Not served (404).
    Off,
    /// Anyone who reaches the listener.
    #[default]
    Open,
    /// Only with `Authorization: Bearer <token>`.
    Token(String),
}

/// Why a scrape is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `/metrics` is off.
    #[error("metrics are not served")]
    Off,
    /// The bearer token is missing or wrong.
    #[error("a valid bearer token is required")]
    Unauthorized,
}

impl Access {
    /// Whether a request with this `Authorization` header may scrape.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Refused> {
        match self {
            Access::Off => Err(Refused::Off),
            Access::Open => Ok(()),
            Access::Token(token) => {
                let presented = authorization
                    .and_then(|value| {
                        let (scheme, rest) = value.trim().split_once(' ')?;
                        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                    })
                    .ok_or(Refused::Unauthorized)?;
                if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
                    Ok(())
                } else {
                    Err(Refused::Unauthorized)
                }
            }
        }
    }
}

/// Compares without stopping at the first difference (only the length can leak).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Not cumulative; one per bound, then +Inf.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        let index = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get_mut(index) {
            *count += 1;
        }
        self.sum += seconds;
    }
}

/// The counters and histograms of one (account, function label).
#[derive(Debug, Default)]
struct Series {
    successes: u64,
    errors: u64,
    throttles: u64,
    cold_starts: u64,
    async_received: u64,
    async_dropped: u64,
    dead_letter_errors: u64,
    destination_failures: u64,
    duration: Option<Histogram>,
    init: Option<Histogram>,
    async_age: Option<Histogram>,
}

/// One function's gauges.
#[derive(Debug, Default, Clone, Copy)]
struct FunctionValues {
    concurrent: u64,
    provisioned_in_use: u64,
    provisioned_ready: u64,
}

/// One account's latest gauge reading.
#[derive(Debug, Default)]
struct AccountValues {
    concurrent: u64,
    unreserved: u64,
    functions: BTreeMap<String, FunctionValues>,
    /// Its engine's environments by state.
    environments: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct State {
    /// By account, then function label.
    series: BTreeMap<String, BTreeMap<String, Series>>,
    /// The (account, function) pairs that have their own label.
    labelled: HashSet<(String, String)>,
    accounts: BTreeMap<String, AccountValues>,
}

impl State {
    /// The `function` label of a function: its name while fewer than the bound have one.
    fn label<'a>(&mut self, account: &str, function: &'a str) -> Cow<'a, str> {
        let key = (account.to_owned(), function.to_owned());
        if self.labelled.contains(&key) {
            return Cow::Borrowed(function);
        }
        if self.labelled.len() < MAX_FUNCTION_LABELS {
            self.labelled.insert(key);
            return Cow::Borrowed(function);
        }
        Cow::Borrowed(OTHER_FUNCTION)
    }

    fn series(&mut self, key: &FunctionKey) -> &mut Series {
        let label = self.label(&key.account, &key.function).into_owned();
        self.series
            .entry(key.account.clone())
            .or_default()
            .entry(label)
            .or_default()
    }
}

/// Counters, histograms and gauges for `/metrics`.
#[derive(Debug, Default)]
pub struct Exporter {
    access: Access,
    state: Mutex<State>,
}

impl Exporter {
    /// A new exporter, open to anyone.
    pub fn new() -> Self {
        Exporter::default()
    }

    /// A new exporter with this access setting.
    pub fn with_access(access: Access) -> Self {
        Exporter {
            access,
            state: Mutex::default(),
        }
    }

    /// Who may scrape.
    pub fn access(&self) -> &Access {
        &self.access
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::with_capacity(16 * 1024);
        render_counters(&mut out, &state);
        render_histograms(&mut out, &state);
        render_gauges(&mut out, &state);
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// HELP text escapes `\` and newlines.
fn escape_help(text: &str) -> Cow<'_, str> {
    if !text.contains(['\\', '\n']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace('\\', "\\\\").replace('\n', "\\n"))
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// `{a="x",b="y"}` (nothing without labels).
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape_label(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A sample value: Go's float syntax (Rust's `Display` never writes an exponent).
fn number(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{value}")
    }
}

type CounterOf = fn(&Series) -> u64;

fn render_counters(out: &mut String, state: &State) {
    let simple: [(&str, &str, CounterOf); 7] = [
        (
            "gust_invocation_errors_total",
            "Invocations that ended in a function error (handled, unhandled, timeout, crash).",
            |s| s.errors,
        ),
        (
            "gust_throttles_total",
            "Invocations refused for concurrency or rate (TooManyRequestsException).",
            |s| s.throttles,
        ),
        (
            "gust_cold_starts_total",
            "Invocations that started an execution environment (INIT or restore).",
            |s| s.cold_starts,
        ),
        (
            "gust_async_events_received_total",
            "Asynchronous events queued.",
            |s| s.async_received,
        ),
        (
            "gust_async_events_dropped_total",
            "Asynchronous events dropped without being processed.",
            |s| s.async_dropped,
        ),
        (
            "gust_dead_letter_errors_total",
            "Failed asynchronous events that could not be sent to the dead-letter queue.",
            |s| s.dead_letter_errors,
        ),
        (
            "gust_destination_delivery_failures_total",
            "Records that could not be sent to an on-success or on-failure destination.",
            |s| s.destination_failures,
        ),
    ];
    header(
        out,
        "gust_invocations_total",
        "counter",
        "Completed invocations, by outcome (status=\"success\" or \"error\").",
    );
    for (account, functions) in &state.series {
        for (function, series) in functions {
            for (status, value) in [("success", series.successes), ("error", series.errors)] {
                if value == 0 {
                    continue;
                }
                let set = labels(&[
                    ("account", account),
                    ("function", function),
                    ("status", status),
                ]);
                let _ = writeln!(out, "gust_invocations_total{set} {value}");
            }
        }
    }
    for (name, help, value_of) in simple {
        header(out, name, "counter", help);
        for (account, functions) in &state.series {
            for (function, series) in functions {
                let value = value_of(series);
                if value == 0 {
                    continue;
                }
                let set = labels(&[("account", account), ("function", function)]);
                let _ = writeln!(out, "{name}{set} {value}");
            }
        }
    }
}

type HistogramOf = fn(&Series) -> Option<&Histogram>;

fn render_histograms(out: &mut String, state: &State) {
    let histograms: [(&str, &str, HistogramOf); 3] = [
        (
            "gust_invocation_duration_seconds",
            "How long functions ran (REPORT's Duration).",
            |s| s.duration.as_ref(),
        ),
        (
            "gust_init_duration_seconds",
            "How long starting an execution environment took (Init or Restore Duration).",
            |s| s.init.as_ref(),
        ),
        (
            "gust_async_event_age_seconds",
            "How long asynchronous events waited in the queue before an attempt.",
            |s| s.async_age.as_ref(),
        ),
    ];
    for (name, help, histogram_of) in histograms {
        header(out, name, "histogram", help);
        for (account, functions) in &state.series {
            for (function, series) in functions {
                let Some(histogram) = histogram_of(series) else {
                    continue;
                };
                let mut cumulative = 0;
                let bounds = histogram
                    .bounds
                    .iter()
                    .copied()
                    .chain(std::iter::once(f64::INFINITY));
                for (bound, count) in bounds.zip(&histogram.counts) {
                    cumulative += count;
                    let le = number(bound);
                    let set = labels(&[("account", account), ("function", function), ("le", &le)]);
                    let _ = writeln!(out, "{name}_bucket{set} {cumulative}");
                }
                let set = labels(&[("account", account), ("function", function)]);
                let _ = writeln!(out, "{name}_sum{set} {}", number(histogram.sum));
                let _ = writeln!(out, "{name}_count{set} {cumulative}");
            }
        }
    }
}

type GaugeOf = fn(&FunctionValues) -> u64;
type AccountGaugeOf = fn(&AccountValues) -> u64;

fn render_gauges(out: &mut String, state: &State) {
    header(
        out,
        "gust_environments",
        "gauge",
        "Execution environments, by account and state (sum by state for the host).",
    );
    for (account, values) in &state.accounts {
        for (environment_state, count) in &values.environments {
            let set = labels(&[("account", account), ("state", environment_state)]);
            let _ = writeln!(out, "gust_environments{set} {count}");
        }
    }
    let account_gauges: [(&str, &str, AccountGaugeOf); 2] = [
        (
            "gust_account_concurrent_executions",
            "Invocations in flight in the account (ConcurrentExecutions).",
            |a| a.concurrent,
        ),
        (
            "gust_unreserved_concurrent_executions",
            "Invocations in flight in functions without reserved concurrency.",
            |a| a.unreserved,
        ),
    ];
    for (name, help, value_of) in account_gauges {
        header(out, name, "gauge", help);
        for (account, values) in &state.accounts {
            let set = labels(&[("account", account)]);
            let _ = writeln!(out, "{name}{set} {}", value_of(values));
        }
    }
    let function_gauges: [(&str, &str, GaugeOf); 3] = [
        (
            "gust_concurrent_executions",
            "Invocations in flight, per function.",
            |f| f.concurrent,
        ),
        (
            "gust_provisioned_concurrent_executions",
            "Invocations in flight on provisioned concurrency.",
            |f| f.provisioned_in_use,
        ),
        (
            "gust_provisioned_concurrency_ready",
            "Provisioned concurrency ready (environments initialised ahead of demand).",
            |f| f.provisioned_ready,
        ),
    ];
    for (name, help, value_of) in function_gauges {
        header(out, name, "gauge", help);
        for (account, values) in &state.accounts {
            for (function, function_values) in &values.functions {
                let set = labels(&[("account", account), ("function", function)]);
                let _ = writeln!(out, "{name}{set} {}", value_of(function_values));
            }
        }
    }
}

impl Observer for Exporter {
    fn observe(&self, observation: Observation) {
        let mut state = self.state();
        match observation {
            Observation::Invoked(invocation) => {
                // Its gauges read 0 until a reading catches it in flight.
                let label = state
                    .label(&invocation.key.account, &invocation.key.function)
                    .into_owned();
                state
                    .accounts
                    .entry(invocation.key.account.clone())
                    .or_default()
                    .functions
                    .entry(label)
                    .or_default();
                let series = state.series(&invocation.key);
                if invocation.error {
                    series.errors += 1;
                } else {
                    series.successes += 1;
                }
                series
                    .duration
                    .get_or_insert_with(|| Histogram::new(DURATION_BUCKETS))
                    .observe(invocation.duration);
                if let Some(init) = invocation.cold_start {
                    series.cold_starts += 1;
                    series
                        .init
                        .get_or_insert_with(|| Histogram::new(INIT_BUCKETS))
                        .observe(init);
                }
            }
            Observation::Throttled { key, .. } => state.series(&key).throttles += 1,
            Observation::AsyncReceived { key, .. } => state.series(&key).async_received += 1,
            Observation::AsyncAge { key, age, .. } => state
                .series(&key)
                .async_age
                .get_or_insert_with(|| Histogram::new(AGE_BUCKETS))
                .observe(age),
            Observation::AsyncDropped { key, .. } => state.series(&key).async_dropped += 1,
            Observation::DeadLetterError { key, .. } => state.series(&key).dead_letter_errors += 1,
            Observation::DestinationFailure { key, .. } => {
                state.series(&key).destination_failures += 1
            }
        }
    }

    fn gauges(&self, gauges: &Gauges, _at: OffsetDateTime) {
        let mut state = self.state();
        // Functions the engine no longer reports (nothing in flight, nothing provisioned)
        // read 0 rather than vanish.
        let mut functions: BTreeMap<String, FunctionValues> = state
            .accounts
            .get(&gauges.account)
            .map(|values| {
                values
                    .functions
                    .keys()
                    .map(|name| (name.clone(), FunctionValues::default()))
                    .collect()
            })
            .unwrap_or_default();
        for function in &gauges.functions {
            let label = state
                .label(&gauges.account, &function.function)
                .into_owned();
            // Folded functions add up under one label.
            let values = functions.entry(label).or_default();
            values.concurrent += u64::from(function.concurrent);
            values.provisioned_in_use += u64::from(function.provisioned_in_use);
            values.provisioned_ready += u64::from(function.provisioned_ready);
        }
        state.accounts.insert(
            gauges.account.clone(),
            AccountValues {
                concurrent: u64::from(gauges.concurrent),
                unreserved: u64::from(gauges.unreserved),
                functions,
                // Each account's engine has its own environments.
                environments: gauges
                    .environments
                    .iter()
                    .map(|(name, count)| (name.clone(), u64::from(*count)))
                    .collect(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gust_model::function::Architecture;
    use gust_model::observe::{FunctionGauges, Invocation};
    use std::collections::HashMap;

    /// One parsed sample: name, labels, value.
    type Sample = (String, BTreeMap<String, String>, f64);

    /// A small parser of the text format: enough to check what `render` writes is well
    /// formed (every sample belongs to a family announced by TYPE, labels unescape).
    fn parse(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert!(name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            let mut rest = &line[name_end..];
            let mut set = BTreeMap::new();
            if let Some(inner) = rest.strip_prefix('{') {
                let mut chars = inner.char_indices().peekable();
                loop {
                    let (start, c) = chars.next().unwrap();
                    if c == '}' {
                        rest = &inner[start + 1..];
                        break;
                    }
                    if c == ',' {
                        continue;
                    }
                    let eq = inner[start..].find('=').unwrap() + start;
                    let label = inner[start..eq].to_owned();
                    while chars.peek().unwrap().0 <= eq {
                        chars.next();
                    }
                    assert_eq!(chars.next().unwrap().1, '"');
                    let mut value = String::new();
                    loop {
                        match chars.next().unwrap().1 {
                            '\\' => match chars.next().unwrap().1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    set.insert(label, value);
                }
            }
            let value = rest.trim();
            let value = match value {
                "+Inf" => f64::INFINITY,
                other => other.parse().unwrap(),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|base| types.get(*base).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(types.contains_key(family), "no TYPE for {name}");
            samples.push((name.to_owned(), set, value));
        }
        (types, samples)
    }

    fn find(samples: &[Sample], name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|(n, set, _)| {
                n == name
                    && pairs
                        .iter()
                        .all(|(k, v)| set.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    fn key(function: &str) -> FunctionKey {
        FunctionKey {
            account: "123456789012".to_owned(),
            function: function.to_owned(),
            qualifier: None,
        }
    }

    fn invoked(function: &str, millis: u64, error: bool, cold: Option<u64>) -> Observation {
        Observation::Invoked(Invocation {
            key: key(function),
            executed_version: "$LATEST".to_owned(),
            at: OffsetDateTime::UNIX_EPOCH,
            duration: Duration::from_millis(millis),
            billed_ms: millis,
            memory_mb: 128,
            architecture: Architecture::X86_64,
            error,
            cold_start: cold.map(Duration::from_millis),
            provisioned: false,
            request_id: "r".into(),
            trace: None,
            caller_parent: None,
        })
    }

    #[test]
    fn renders_parseable_counters_histograms_and_gauges() {
        let exporter = Exporter::new();
        exporter.observe(invoked("f", 3, false, Some(200)));
        exporter.observe(invoked("f", 700, false, None));
        exporter.observe(invoked("f", 2000, true, None));
        exporter.observe(Observation::Throttled {
            key: key("f"),
            at: OffsetDateTime::UNIX_EPOCH,
        });
        exporter.observe(Observation::AsyncAge {
            key: key("g"),
            at: OffsetDateTime::UNIX_EPOCH,
            age: Duration::from_secs(2),
        });
        exporter.gauges(
            &Gauges {
                account: "123456789012".to_owned(),
                concurrent: 3,
                unreserved: 1,
                functions: vec![FunctionGauges {
                    function: "f".to_owned(),
                    concurrent: 3,
                    provisioned_in_use: 2,
                    provisioned_ready: 5,
                    memory_mb: 128,
                    architecture: None,
                }],
                environments: vec![("idle".to_owned(), 4), ("busy".to_owned(), 3)],
            },
            OffsetDateTime::UNIX_EPOCH,
        );
        let text = exporter.render();
        let (types, samples) = parse(&text);
        assert_eq!(types["gust_invocations_total"], "counter");
        assert_eq!(types["gust_invocation_duration_seconds"], "histogram");
        assert_eq!(types["gust_environments"], "gauge");
        let f = [("function", "f"), ("account", "123456789012")];
        assert_eq!(
            find(
                &samples,
                "gust_invocations_total",
                &[f[0], ("status", "success")]
            ),
            Some(2.0)
        );
        assert_eq!(
            find(
                &samples,
                "gust_invocations_total",
                &[f[0], ("status", "error")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(&samples, "gust_invocation_errors_total", &f),
            Some(1.0)
        );
        assert_eq!(find(&samples, "gust_throttles_total", &f), Some(1.0));
        assert_eq!(find(&samples, "gust_cold_starts_total", &f), Some(1.0));
        let bucket = |le| {
            find(
                &samples,
                "gust_invocation_duration_seconds_bucket",
                &[f[0], ("le", le)],
            )
        };
        assert_eq!(bucket("0.005"), Some(1.0));
        assert_eq!(bucket("1"), Some(2.0));
        assert_eq!(bucket("2.5"), Some(3.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
        assert_eq!(
            find(&samples, "gust_invocation_duration_seconds_count", &f),
            Some(3.0)
        );
        let sum = find(&samples, "gust_invocation_duration_seconds_sum", &f).unwrap();
        assert!((sum - 2.703).abs() < 1e-9);
        assert_eq!(
            find(
                &samples,
                "gust_init_duration_seconds_bucket",
                &[f[0], ("le", "0.25")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                &samples,
                "gust_async_event_age_seconds_bucket",
                &[("function", "g"), ("le", "5")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(&samples, "gust_environments", &[("state", "idle")]),
            Some(4.0)
        );
        assert_eq!(find(&samples, "gust_concurrent_executions", &f), Some(3.0));
        assert_eq!(
            find(&samples, "gust_provisioned_concurrency_ready", &f),
            Some(5.0)
        );
        assert_eq!(
            find(&samples, "gust_unreserved_concurrent_executions", &[]),
            Some(1.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let exporter = Exporter::new();
        let mut odd = key("f");
        odd.account = "a\"b\\c\nd".to_owned();
        exporter.observe(Observation::Throttled {
            key: odd,
            at: OffsetDateTime::UNIX_EPOCH,
        });
        let text = exporter.render();
        assert!(text.contains(r#"account="a\"b\\c\nd""#), "{text}");
        let (_, samples) = parse(&text);
        assert_eq!(
            find(
                &samples,
                "gust_throttles_total",
                &[("account", "a\"b\\c\nd")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn function_labels_are_bounded() {
        let exporter = Exporter::new();
        for i in 0..MAX_FUNCTION_LABELS + 50 {
            exporter.observe(invoked(&format!("fn-{i}"), 1, false, None));
        }
        // An admitted function keeps its label.
        exporter.observe(invoked("fn-0", 1, false, None));
        let (_, samples) = parse(&exporter.render());
        let functions: HashSet<&str> = samples
            .iter()
            .filter(|(n, _, _)| n == "gust_invocations_total")
            .map(|(_, set, _)| set["function"].as_str())
            .collect();
        assert_eq!(functions.len(), MAX_FUNCTION_LABELS + 1);
        assert!(functions.contains(OTHER_FUNCTION));
        assert_eq!(
            find(
                &samples,
                "gust_invocations_total",
                &[("function", OTHER_FUNCTION)]
            ),
            Some(50.0)
        );
        assert_eq!(
            find(&samples, "gust_invocations_total", &[("function", "fn-0")]),
            Some(2.0)
        );
    }

    #[test]
    fn access_checks_the_bearer_token() {
        assert_eq!(Access::Off.check(None), Err(Refused::Off));
        assert_eq!(Access::Open.check(None), Ok(()));
        let token = Access::Token("s3cret".to_owned());
        assert_eq!(token.check(Some("Bearer s3cret")), Ok(()));
        assert_eq!(token.check(Some("bearer  s3cret ")), Ok(()));
        assert_eq!(
            token.check(Some("Bearer s3cre")),
            Err(Refused::Unauthorized)
        );
        assert_eq!(
            token.check(Some("Bearer s3cretx")),
            Err(Refused::Unauthorized)
        );
        assert_eq!(
            token.check(Some("Basic s3cret")),
            Err(Refused::Unauthorized)
        );
        assert_eq!(token.check(None), Err(Refused::Unauthorized));
    }
}

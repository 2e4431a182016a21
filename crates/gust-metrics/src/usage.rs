//! Usage and cost, as the seed's section 14 counts them: per account, per month (UTC), per
//! function and architecture, the requests, the billed GB-seconds (on demand, and on
//! provisioned concurrency) and the provisioned concurrency configured, priced with AWS's
//! public prices (an operator's table can replace them) and the monthly free tier.
//!
//! Observations only add to counters in memory (they are on the invoke path); a thread
//! adds them to SQLite every few seconds, and dropping [`Usage`] writes what is left.
//! Quantities are kept as integers of MB·ms so that sums are exact; GB-seconds are
//! MB·ms / 1024 / 1000.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use gust_model::function::Architecture;
use gust_model::observe::{Gauges, Observation, Observer};
use gust_model::Clock;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Why usage could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The store failed.
    #[error("{0}")]
    Internal(String),
    /// A month is not `YYYY-MM`.
    #[error("{0}")]
    InvalidMonth(String),
    /// A price table is not valid.
    #[error("{0}")]
    InvalidPrices(String),
}

impl From<rusqlite::Error> for UsageError {
    fn from(error: rusqlite::Error) -> Self {
        UsageError::Internal(error.to_string())
    }
}

/// How often accumulated usage is written to the database.
const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The longest gap between two gauge readings counted as provisioned time: a longer one
/// means the server (or the account's engine) was not running, and nothing was ready.
const MAX_GAUGE_GAP: Duration = Duration::from_secs(60);

/// MB·ms in one GB-second.
const MB_MS_PER_GB_SECOND: f64 = 1024.0 * 1000.0;

/// The schema's version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage (
    account TEXT NOT NULL,
    month TEXT NOT NULL,
    function TEXT NOT NULL,
    architecture TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    duration_mb_ms INTEGER NOT NULL DEFAULT 0,
    provisioned_duration_mb_ms INTEGER NOT NULL DEFAULT 0,
    provisioned_mb_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, month, function, architecture)
);
";

/// A price per architecture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerArchitecture {
    /// For x86_64.
    pub x86_64: f64,
    /// For arm64.
    pub arm64: f64,
}

impl PerArchitecture {
    fn of(&self, architecture: Architecture) -> f64 {
        match architecture {
            Architecture::X86_64 => self.x86_64,
            Architecture::Arm64 => self.arm64,
        }
    }
}

/// The monthly free tier of an account.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeTierAllowance {
    /// Free requests a month.
    pub requests: u64,
    /// Free (on-demand duration) GB-seconds a month, both architectures together.
    pub gb_seconds: f64,
}

/// The price table (`--prices FILE`, JSON; every field optional, defaults are AWS's
/// public prices in US dollars).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    /// The currency named in reports.
    pub currency: String,
    /// Per million requests.
    pub requests_per_million: f64,
    /// Per GB-second of on-demand duration.
    pub duration_gb_second: PerArchitecture,
    /// Per GB-second of provisioned concurrency configured (ready).
    pub provisioned_gb_second: PerArchitecture,
    /// Per GB-second of duration of invocations that ran on provisioned concurrency.
    pub provisioned_duration_gb_second: PerArchitecture,
    /// The monthly free tier, applied to an account's totals.
    pub free_tier: FreeTierAllowance,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            currency: "USD".to_owned(),
            requests_per_million: 0.20,
            duration_gb_second: PerArchitecture {
                x86_64: 0.000_016_666_7,
                arm64: 0.000_013_333_4,
            },
            provisioned_gb_second: PerArchitecture {
                x86_64: 0.000_004_166_7,
                arm64: 0.000_003_333_4,
            },
            provisioned_duration_gb_second: PerArchitecture {
                x86_64: 0.000_009_722_2,
                arm64: 0.000_007_777_8,
            },
            free_tier: FreeTierAllowance {
                requests: 1_000_000,
                gb_seconds: 400_000.0,
            },
        }
    }
}

impl Prices {
    /// A price table from its JSON text; prices must be finite and not negative.
    pub fn from_json(text: &str) -> Result<Prices, UsageError> {
        let prices: Prices = serde_json::from_str(text)
            .map_err(|e| UsageError::InvalidPrices(format!("invalid price table: {e}")))?;
        let all = [
            ("requests_per_million", prices.requests_per_million),
            (
                "duration_gb_second.x86_64",
                prices.duration_gb_second.x86_64,
            ),
            ("duration_gb_second.arm64", prices.duration_gb_second.arm64),
            (
                "provisioned_gb_second.x86_64",
                prices.provisioned_gb_second.x86_64,
            ),
            (
                "provisioned_gb_second.arm64",
                prices.provisioned_gb_second.arm64,
            ),
            (
                "provisioned_duration_gb_second.x86_64",
                prices.provisioned_duration_gb_second.x86_64,
            ),
            (
                "provisioned_duration_gb_second.arm64",
                prices.provisioned_duration_gb_second.arm64,
            ),
            ("free_tier.gb_seconds", prices.free_tier.gb_seconds),
        ];
        if let Some((name, value)) = all.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(UsageError::InvalidPrices(format!(
                "invalid price table: {name} must be a number of at least 0, not {value}"
            )));
        }
        Ok(prices)
    }

    /// The price table in the JSON file at `path`.
    pub fn load(path: &Path) -> Result<Prices, UsageError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError::InvalidPrices(format!("cannot read {}: {e}", path.display()))
        })?;
        Prices::from_json(&text)
            .map_err(|e| UsageError::InvalidPrices(format!("{}: {e}", path.display())))
    }
}

/// A calendar month (UTC), `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month(String);

impl Month {
    /// The month `at` falls in (UTC).
    pub fn of(at: OffsetDateTime) -> Month {
        let utc = at.to_offset(time::UtcOffset::UTC);
        Month(format!("{:04}-{:02}", utc.year(), u8::from(utc.month())))
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Month, UsageError> {
        let invalid = || {
            UsageError::InvalidMonth(format!(
                "invalid month {text:?}: expected YYYY-MM, e.g. 2026-12"
            ))
        };
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let year: u16 = year.parse().map_err(|_| invalid())?;
        let month: u8 = month.parse().map_err(|_| invalid())?;
        if !(1..=12).contains(&month) || year == 0 {
            return Err(invalid());
        }
        Ok(Month(format!("{year:04}-{month:02}")))
    }

    /// `YYYY-MM`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is counted for one account, month, function and architecture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    requests: u64,
    /// Billed duration × memory of on-demand invocations.
    duration_mb_ms: u64,
    /// Billed duration × memory of invocations on provisioned concurrency.
    provisioned_duration_mb_ms: u64,
    /// Provisioned concurrency ready × memory × time.
    provisioned_mb_ms: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.duration_mb_ms = self.duration_mb_ms.saturating_add(other.duration_mb_ms);
        self.provisioned_duration_mb_ms = self
            .provisioned_duration_mb_ms
            .saturating_add(other.provisioned_duration_mb_ms);
        self.provisioned_mb_ms = self
            .provisioned_mb_ms
            .saturating_add(other.provisioned_mb_ms);
    }
}

/// (account, month, function, architecture).
type Key = (String, Month, String, &'static str);

/// The last gauge reading of a function with provisioned concurrency.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: OffsetDateTime,
    ready: u32,
    memory_mb: u32,
    architecture: Architecture,
}

#[derive(Debug, Default)]
struct Pending {
    counts: HashMap<Key, Counts>,
    /// Per (account, function).
    readings: HashMap<(String, String), Reading>,
}

/// One function's (and architecture's) usage in a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionUsage {
    /// The function's name.
    pub function: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Requests (invocations).
    pub requests: u64,
    /// Billed GB-seconds of on-demand invocations.
    pub gb_seconds: f64,
    /// Billed GB-seconds of invocations on provisioned concurrency.
    pub provisioned_duration_gb_seconds: f64,
    /// GB-seconds of provisioned concurrency configured.
    pub provisioned_gb_seconds: f64,
    /// Its price, before the free tier (which applies only to the account's total).
    pub cost_before_free_tier: f64,
}

/// An account's totals in a month.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Billed GB-seconds of on-demand invocations.
    pub gb_seconds: f64,
    /// Billed GB-seconds of invocations on provisioned concurrency.
    pub provisioned_duration_gb_seconds: f64,
    /// GB-seconds of provisioned concurrency configured.
    pub provisioned_gb_seconds: f64,
    /// Price of the requests.
    pub request_cost: f64,
    /// Price of on-demand duration.
    pub duration_cost: f64,
    /// Price of provisioned concurrency and of the duration on it.
    pub provisioned_cost: f64,
}

/// The free tier as applied to one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreeTier {
    /// The allowance of requests.
    pub requests: u64,
    /// The allowance of GB-seconds.
    pub gb_seconds: f64,
    /// Requests it covered.
    pub requests_used: u64,
    /// GB-seconds it covered (x86_64 first, the dearer).
    pub gb_seconds_used: f64,
    /// What it saved.
    pub savings: f64,
}

/// An account's usage and its price in one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The account.
    pub account: String,
    /// `YYYY-MM`.
    pub month: String,
    /// The currency of every price.
    pub currency: String,
    /// Per function and architecture, by name.
    pub functions: Vec<FunctionUsage>,
    /// The account's totals, before the free tier.
    pub totals: Totals,
    /// The price before the free tier.
    pub cost_before_free_tier: f64,
    /// The free tier.
    pub free_tier: FreeTier,
    /// The price after the free tier.
    pub cost: f64,
}

/// Requests and GB-seconds per account, month, function and architecture.
#[derive(Debug)]
pub struct Usage {
    clock: Arc<dyn Clock>,
    prices: Prices,
    pending: Mutex<Pending>,
    connection: Mutex<Connection>,
    /// Dropped with `Usage`: ends the flushing thread.
    _stop: mpsc::Sender<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn gb_seconds(mb_ms: u64) -> f64 {
    mb_ms as f64 / MB_MS_PER_GB_SECOND
}

impl Usage {
    /// Usage kept in the SQLite database at `path`, priced with AWS's public prices.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, UsageError> {
        Usage::open_with_prices(path, clock, Prices::default())
    }

    /// Usage kept in the SQLite database at `path`, priced with `prices`.
    pub fn open_with_prices(
        path: &Path,
        clock: Arc<dyn Clock>,
        prices: Prices,
    ) -> Result<Arc<Self>, UsageError> {
        let connection = gust_store::sqlite::open_versioned(path, "usage", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(UsageError::Internal))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let usage = Arc::new(Usage {
            clock,
            prices,
            pending: Mutex::new(Pending::default()),
            connection: Mutex::new(connection),
            _stop: stop,
        });
        let weak = Arc::downgrade(&usage);
        std::thread::Builder::new()
            .name("gust-usage".to_owned())
            .spawn(move || flush_periodically(&weak, &stopped))
            .map_err(|e| UsageError::Internal(format!("cannot start the usage writer: {e}")))?;
        Ok(usage)
    }

    /// The price table in use.
    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    /// The current month (UTC).
    pub fn current_month(&self) -> Month {
        Month::of(self.clock.now())
    }

    /// Writes what was counted since the last flush to the database.
    pub fn flush(&self) -> Result<(), UsageError> {
        let counts = std::mem::take(&mut lock(&self.pending).counts);
        if counts.is_empty() {
            return Ok(());
        }
        let written = self.write(&counts);
        if written.is_err() {
            // Not lost: counted again for the next flush.
            let mut pending = lock(&self.pending);
            for (key, value) in counts {
                pending.counts.entry(key).or_default().add(&value);
            }
        }
        written
    }

    fn write(&self, counts: &HashMap<Key, Counts>) -> Result<(), UsageError> {
        let mut connection = lock(&self.connection);
        let transaction = connection.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO usage (account, month, function, architecture, requests,
                     duration_mb_ms, provisioned_duration_mb_ms, provisioned_mb_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (account, month, function, architecture) DO UPDATE SET
                     requests = requests + excluded.requests,
                     duration_mb_ms = duration_mb_ms + excluded.duration_mb_ms,
                     provisioned_duration_mb_ms =
                         provisioned_duration_mb_ms + excluded.provisioned_duration_mb_ms,
                     provisioned_mb_ms = provisioned_mb_ms + excluded.provisioned_mb_ms",
            )?;
            for ((account, month, function, architecture), c) in counts {
                statement.execute(params![
                    account,
                    month.as_str(),
                    function,
                    architecture,
                    to_i64(c.requests),
                    to_i64(c.duration_mb_ms),
                    to_i64(c.provisioned_duration_mb_ms),
                    to_i64(c.provisioned_mb_ms),
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// `account`'s usage and price in `month` (what is still in memory included).
    pub fn report(&self, account: &str, month: &Month) -> Result<Report, UsageError> {
        self.flush()?;
        let rows = {
            let connection = lock(&self.connection);
            let mut statement = connection.prepare_cached(
                "SELECT function, architecture, requests, duration_mb_ms,
                        provisioned_duration_mb_ms, provisioned_mb_ms
                 FROM usage WHERE account = ?1 AND month = ?2
                 ORDER BY function, architecture",
            )?;
            let rows = statement.query_map(params![account, month.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    Counts {
                        requests: to_u64(row.get(2)?),
                        duration_mb_ms: to_u64(row.get(3)?),
                        provisioned_duration_mb_ms: to_u64(row.get(4)?),
                        provisioned_mb_ms: to_u64(row.get(5)?),
                    },
                ))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        Ok(price(&self.prices, account, month, &rows))
    }

    fn count(&self, key: Key, counts: Counts) {
        lock(&self.pending)
            .counts
            .entry(key)
            .or_default()
            .add(&counts);
    }
}

/// Prices `rows` of (function, architecture, counts) and applies the free tier to the
/// total: requests first, then GB-seconds of x86_64 (the dearer) before arm64.
fn price(
    prices: &Prices,
    account: &str,
    month: &Month,
    rows: &[(String, String, Counts)],
) -> Report {
    let mut totals = Totals::default();
    let mut functions = Vec::with_capacity(rows.len());
    // On-demand GB-seconds per architecture, for the free tier.
    let mut on_demand = [0.0_f64; 2];
    for (function, architecture_name, counts) in rows {
        // A row the build does not know the architecture of is priced as x86_64.
        let architecture = Architecture::parse(architecture_name).unwrap_or(Architecture::X86_64);
        let gb = gb_seconds(counts.duration_mb_ms);
        let provisioned_duration_gb = gb_seconds(counts.provisioned_duration_mb_ms);
        let provisioned_gb = gb_seconds(counts.provisioned_mb_ms);
        let request_cost = counts.requests as f64 / 1e6 * prices.requests_per_million;
        let duration_cost = gb * prices.duration_gb_second.of(architecture);
        let provisioned_cost = provisioned_gb * prices.provisioned_gb_second.of(architecture)
            + provisioned_duration_gb * prices.provisioned_duration_gb_second.of(architecture);
        totals.requests = totals.requests.saturating_add(counts.requests);
        totals.gb_seconds += gb;
        totals.provisioned_duration_gb_seconds += provisioned_duration_gb;
        totals.provisioned_gb_seconds += provisioned_gb;
        totals.request_cost += request_cost;
        totals.duration_cost += duration_cost;
        totals.provisioned_cost += provisioned_cost;
        on_demand[usize::from(architecture == Architecture::Arm64)] += gb;
        functions.push(FunctionUsage {
            function: function.clone(),
            architecture: architecture.as_str().to_owned(),
            requests: counts.requests,
            gb_seconds: gb,
            provisioned_duration_gb_seconds: provisioned_duration_gb,
            provisioned_gb_seconds: provisioned_gb,
            cost_before_free_tier: request_cost + duration_cost + provisioned_cost,
        });
    }
    let allowance = prices.free_tier;
    let requests_used = totals.requests.min(allowance.requests);
    let mut savings = requests_used as f64 / 1e6 * prices.requests_per_million;
    // What is left to pay is priced from what is left (not the difference of two sums,
    // whose rounding would leave a remainder where the free tier covers everything).
    let mut cost = (totals.requests - requests_used) as f64 / 1e6 * prices.requests_per_million
        + totals.provisioned_cost;
    let mut left = allowance.gb_seconds;
    let mut gb_seconds_used = 0.0;
    for (architecture, gb) in [
        (Architecture::X86_64, on_demand[0]),
        (Architecture::Arm64, on_demand[1]),
    ] {
        let used = gb.min(left);
        left -= used;
        gb_seconds_used += used;
        let price = prices.duration_gb_second.of(architecture);
        savings += used * price;
        cost += (gb - used) * price;
    }
    let cost_before_free_tier =
        totals.request_cost + totals.duration_cost + totals.provisioned_cost;
    Report {
        account: account.to_owned(),
        month: month.as_str().to_owned(),
        currency: prices.currency.clone(),
        functions,
        totals,
        cost_before_free_tier,
        free_tier: FreeTier {
            requests: allowance.requests,
            gb_seconds: allowance.gb_seconds,
            requests_used,
            gb_seconds_used,
            savings,
        },
        cost,
    }
}

fn flush_periodically(usage: &Weak<Usage>, stopped: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_EVERY) {
        let Some(usage) = usage.upgrade() else {
            return;
        };
        if let Err(error) = usage.flush() {
            tracing::warn!(%error, "cannot write usage; kept for the next try");
        }
    }
}

impl Drop for Usage {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::warn!(%error, "cannot write usage at shutdown");
        }
    }
}

impl Observer for Usage {
    fn observe(&self, observation: Observation) {
        let Observation::Invoked(invocation) = observation else {
            return;
        };
        let mb_ms = invocation
            .billed_ms
            .saturating_mul(u64::from(invocation.memory_mb));
        let counts = if invocation.provisioned {
            Counts {
                requests: 1,
                provisioned_duration_mb_ms: mb_ms,
                ..Counts::default()
            }
        } else {
            Counts {
                requests: 1,
                duration_mb_ms: mb_ms,
                ..Counts::default()
            }
        };
        let key = (
            invocation.key.account,
            Month::of(invocation.at),
            invocation.key.function,
            invocation.architecture.as_str(),
        );
        self.count(key, counts);
    }

    fn gauges(&self, gauges: &Gauges, at: OffsetDateTime) {
        let month = Month::of(at);
        let mut pending = lock(&self.pending);
        let Pending { counts, readings } = &mut *pending;
        // A function missing from this reading has no provisioned concurrency any more.
        readings.retain(|(account, function), _| {
            account != &gauges.account || gauges.functions.iter().any(|f| &f.function == function)
        });
        for function in &gauges.functions {
            let reading = Reading {
                at,
                ready: function.provisioned_ready,
                memory_mb: function.memory_mb,
                architecture: function.architecture.unwrap_or(Architecture::X86_64),
            };
            let previous =
                readings.insert((gauges.account.clone(), function.function.clone()), reading);
            // What was ready at the previous reading stayed ready until this one.
            let Some(previous) = previous.filter(|p| p.ready > 0) else {
                continue;
            };
            let gap = at - previous.at;
            if gap.is_negative() || gap > MAX_GAUGE_GAP {
                continue;
            }
            let gap_ms = u64::try_from(gap.whole_milliseconds()).unwrap_or(0);
            let mb_ms = gap_ms
                .saturating_mul(u64::from(previous.ready))
                .saturating_mul(u64::from(previous.memory_mb));
            counts
                .entry((
                    gauges.account.clone(),
                    month.clone(),
                    function.function.clone(),
                    previous.architecture.as_str(),
                ))
                .or_default()
                .add(&Counts {
                    provisioned_mb_ms: mb_ms,
                    ..Counts::default()
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gust_model::observe::{FunctionGauges, FunctionKey, Invocation};

    #[derive(Debug)]
    struct Fixed(OffsetDateTime);

    impl Clock for Fixed {
        fn now(&self) -> OffsetDateTime {
            self.0
        }
    }

    fn december() -> OffsetDateTime {
        time::macros::datetime!(2026-12-15 12:00 UTC)
    }

    fn open(dir: &tempfile::TempDir) -> Arc<Usage> {
        Usage::open(&dir.path().join("usage.db"), Arc::new(Fixed(december()))).unwrap()
    }

    fn invocation(function: &str, billed_ms: u64, memory_mb: u32) -> Invocation {
        Invocation {
            key: FunctionKey {
                account: "123456789012".to_owned(),
                function: function.to_owned(),
                qualifier: None,
            },
            executed_version: "$LATEST".to_owned(),
            at: december(),
            duration: Duration::from_millis(billed_ms),
            billed_ms,
            memory_mb,
            architecture: Architecture::X86_64,
            error: false,
            cold_start: None,
            provisioned: false,
            request_id: "r".into(),
            trace: None,
            caller_parent: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn the_seeds_worked_example() {
        let prices = Prices::default();
        let month = Month::parse("2026-12").unwrap();
        // 512 MB, 500 ms, 1,000,000 requests.
        let rows = vec![(
            "example".to_owned(),
            "x86_64".to_owned(),
            Counts {
                requests: 1_000_000,
                duration_mb_ms: 1_000_000 * 500 * 512,
                ..Counts::default()
            },
        )];
        let report = price(&prices, "123456789012", &month, &rows);
        assert!(close(report.totals.gb_seconds, 250_000.0));
        assert!(close(report.totals.duration_cost, 4.166_675));
        assert!(close(report.totals.request_cost, 0.20));
        assert!(close(report.cost_before_free_tier, 4.366_675));
        assert_eq!((report.cost_before_free_tier * 100.0).round() / 100.0, 4.37);
        assert_eq!(report.free_tier.requests_used, 1_000_000);
        assert!(close(report.free_tier.gb_seconds_used, 250_000.0));
        assert_eq!(report.cost, 0.0);
        assert!(close(report.functions[0].cost_before_free_tier, 4.366_675));
    }

    #[test]
    fn the_free_tier_applies_to_the_total_x86_first() {
        let prices = Prices::default();
        let month = Month::parse("2026-12").unwrap();
        let gb = |n: u64| n * 1024 * 1000;
        let rows = vec![
            (
                "a".to_owned(),
                "arm64".to_owned(),
                Counts {
                    requests: 700_000,
                    duration_mb_ms: gb(300_000),
                    ..Counts::default()
                },
            ),
            (
                "b".to_owned(),
                "x86_64".to_owned(),
                Counts {
                    requests: 700_000,
                    duration_mb_ms: gb(300_000),
                    ..Counts::default()
                },
            ),
        ];
        let report = price(&prices, "1", &month, &rows);
        // 400,000 requests and 200,000 arm64 GB-seconds are left to pay.
        let expected = 0.4 * 0.20 + 200_000.0 * 0.000_013_333_4;
        assert!(close(report.cost, expected), "{}", report.cost);
        assert!(close(report.free_tier.gb_seconds_used, 400_000.0));
    }

    #[test]
    fn invocations_are_counted_flushed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let usage = open(&dir);
        let month = Month::parse("2026-12").unwrap();
        for _ in 0..3 {
            usage.observe(Observation::Invoked(invocation("f", 500, 512)));
        }
        let mut provisioned = invocation("f", 100, 512);
        provisioned.provisioned = true;
        usage.observe(Observation::Invoked(provisioned));
        let report = usage.report("123456789012", &month).unwrap();
        assert_eq!(report.functions.len(), 1);
        assert_eq!(report.functions[0].requests, 4);
        assert!(close(report.functions[0].gb_seconds, 0.75));
        assert!(close(
            report.functions[0].provisioned_duration_gb_seconds,
            0.05
        ));
        // Another account and month see nothing.
        assert!(usage
            .report("999999999999", &month)
            .unwrap()
            .functions
            .is_empty());
        let other = Month::parse("2026-11").unwrap();
        assert!(usage
            .report("123456789012", &other)
            .unwrap()
            .functions
            .is_empty());
        // Counted after the report, written at drop.
        usage.observe(Observation::Invoked(invocation("g", 1, 128)));
        drop(usage);
        let usage = open(&dir);
        let report = usage.report("123456789012", &month).unwrap();
        let names: Vec<&str> = report
            .functions
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        assert_eq!(names, ["f", "g"]);
        assert_eq!(report.totals.requests, 5);
    }

    #[test]
    fn provisioned_concurrency_is_counted_between_readings() {
        let dir = tempfile::tempdir().unwrap();
        let usage = open(&dir);
        let reading = |ready| Gauges {
            account: "1".to_owned(),
            functions: vec![FunctionGauges {
                function: "p".to_owned(),
                provisioned_ready: ready,
                memory_mb: 1024,
                architecture: Some(Architecture::Arm64),
                ..FunctionGauges::default()
            }],
            ..Gauges::default()
        };
        let t = december();
        usage.gauges(&reading(2), t);
        usage.gauges(&reading(2), t + time::Duration::seconds(5));
        // A gap longer than a minute is not counted.
        usage.gauges(&reading(2), t + time::Duration::seconds(500));
        usage.gauges(&reading(0), t + time::Duration::seconds(510));
        usage.gauges(&reading(0), t + time::Duration::seconds(520));
        let report = usage.report("1", &Month::of(t)).unwrap();
        assert_eq!(report.functions.len(), 1);
        assert_eq!(report.functions[0].architecture, "arm64");
        // 2 × 1 GB × (5 s + 10 s).
        assert!(close(report.functions[0].provisioned_gb_seconds, 30.0));
        assert!(close(report.cost, 30.0 * 0.000_003_333_4));
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(Month::parse("2026-01").unwrap().as_str(), "2026-01");
        for bad in [
            "2026-13", "2026-1", "26-01", "2026/01", "", "2026-00", "abcd-ef",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Month::of(time::macros::datetime!(2026-12-31 23:30 -02:00)).as_str(),
            "2027-01"
        );
    }

    #[test]
    fn price_tables_parse_with_defaults() {
        let prices = Prices::from_json(r#"{"requests_per_million": 0.25}"#).unwrap();
        assert_eq!(prices.requests_per_million, 0.25);
        assert_eq!(
            prices.duration_gb_second,
            Prices::default().duration_gb_second
        );
        assert!(Prices::from_json(r#"{"requests_per_million": -1}"#).is_err());
        assert!(Prices::from_json(r#"{"unknown": 1}"#).is_err());
        let text = serde_json::to_string(&Prices::default()).unwrap();
        assert_eq!(Prices::from_json(&text).unwrap(), Prices::default());
    }
}

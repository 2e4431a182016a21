//! Gust's CloudWatch metrics: datapoints aggregated into per-minute (or per-second, for
//! high-resolution custom metrics) buckets of count, sum, minimum, maximum and a
//! distribution, kept in SQLite for the configured retention; statistics, percentiles and
//! metric math over any period; Lambda's `AWS/Lambda` metrics from what the engine
//! observes. Also Prometheus exposition and usage and cost (their own modules). No HTTP.
//!
//! Observations are accumulated in memory under a short lock and written every second by
//! a background thread (and on `flush` and drop); `PutMetricData` commits before it
//! answers.

pub mod lambda;
pub mod math;
pub mod prometheus;
pub mod sketch;
pub mod stat;
mod store;
pub mod usage;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use gust_model::observe::{Gauges, Observation};
use gust_model::Clock;
use time::OffsetDateTime;

pub use crate::sketch::Aggregate;
pub use crate::stat::Stat;
pub use crate::store::SeriesKey;
use crate::store::Store;

/// Why an operation failed: one variant per CloudWatch error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// `InvalidParameterValue`.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// `InvalidParameterCombination`.
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// `MissingParameter`.
    #[error("{0}")]
    MissingParameter(String),
    /// `ValidationError`.
    #[error("{0}")]
    Validation(String),
    /// `InvalidNextToken`.
    #[error("{0}")]
    InvalidNextToken(String),
    /// The store failed.
    #[error("{0}")]
    Internal(String),
}

impl MetricsError {
    /// The query protocol's error code.
    pub fn code(&self) -> &'static str {
        match self {
            MetricsError::InvalidParameterValue(_) => "InvalidParameterValue",
            MetricsError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            MetricsError::MissingParameter(_) => "MissingParameter",
            MetricsError::Validation(_) => "ValidationError",
            MetricsError::InvalidNextToken(_) => "InvalidNextToken",
            MetricsError::Internal(_) => "InternalServiceError",
        }
    }

    /// The error's shape in the service model.
    pub fn shape(&self) -> &'static str {
        match self {
            MetricsError::InvalidParameterValue(_) => "InvalidParameterValueException",
            MetricsError::InvalidParameterCombination(_) => "InvalidParameterCombinationException",
            MetricsError::MissingParameter(_) => "MissingRequiredParameterException",
            MetricsError::Validation(_) => "ValidationException",
            MetricsError::InvalidNextToken(_) => "InvalidNextToken",
            MetricsError::Internal(_) => "InternalServiceFault",
        }
    }

    /// Its HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            MetricsError::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// A statistic set (`StatisticValues`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    /// How many values.
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub minimum: f64,
    /// The largest.
    pub maximum: f64,
}

/// One datum of `PutMetricData`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDatum {
    /// The metric's name.
    pub name: String,
    /// Its dimensions, as given.
    pub dimensions: Vec<(String, String)>,
    /// When (now when absent).
    pub timestamp: Option<OffsetDateTime>,
    /// One value.
    pub value: Option<f64>,
    /// Several values…
    pub values: Option<Vec<f64>>,
    /// …each this many times (1 each when absent).
    pub counts: Option<Vec<f64>>,
    /// Or a statistic set.
    pub statistics: Option<StatisticSet>,
    /// The unit (`None` when absent).
    pub unit: Option<String>,
    /// 1 (high resolution) or 60.
    pub storage_resolution: Option<i64>,
}

/// A metric: its namespace, name and dimensions (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The dimensions.
    pub dimensions: Vec<(String, String)>,
}

/// A `GetMetricStatistics` request.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsRequest {
    /// Which metric.
    pub metric: MetricId,
    /// From (inclusive).
    pub start: OffsetDateTime,
    /// To (exclusive).
    pub end: OffsetDateTime,
    /// The period, seconds.
    pub period: i64,
    /// `Statistics`.
    pub statistics: Vec<String>,
    /// `ExtendedStatistics`.
    pub extended: Vec<String>,
    /// Only this unit.
    pub unit: Option<String>,
}

/// One datapoint of `GetMetricStatistics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    /// The period's start.
    pub timestamp: OffsetDateTime,
    /// The basic statistics asked, by name.
    pub statistics: Vec<(String, f64)>,
    /// The extended statistics asked, by name.
    pub extended: Vec<(String, f64)>,
    /// The unit.
    pub unit: String,
}

/// One query of `GetMetricData`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataQuery {
    /// Its id.
    pub id: String,
    /// Its label.
    pub label: Option<String>,
    /// Whether its result is returned.
    pub return_data: bool,
    /// The period of an expression's result (for scalars and `FILL`).
    pub period: Option<i64>,
    /// A metric or an expression.
    pub kind: QueryKind,
}

/// What a query asks.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryKind {
    /// `MetricStat`.
    Metric {
        /// Which metric.
        metric: MetricId,
        /// The period, seconds.
        period: i64,
        /// The statistic.
        stat: String,
        /// Only this unit.
        unit: Option<String>,
    },
    /// `Expression`.
    Expression(String),
}

/// A `GetMetricData` request.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRequest {
    /// The queries.
    pub queries: Vec<DataQuery>,
    /// From (inclusive).
    pub start: OffsetDateTime,
    /// To (exclusive).
    pub end: OffsetDateTime,
    /// Oldest first (`TimestampAscending`) rather than newest first.
    pub ascending: bool,
    /// At most this many datapoints in this answer.
    pub max_datapoints: Option<i64>,
    /// Where the previous page ended.
    pub next_token: Option<String>,
}

/// One result of `GetMetricData`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataResult {
    /// The query's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Timestamps, in the order asked.
    pub timestamps: Vec<OffsetDateTime>,
    /// The values at them.
    pub values: Vec<f64>,
    /// `Complete` or `PartialData` (more pages).
    pub status: &'static str,
}

/// A `ListMetrics` request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListRequest {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this name.
    pub name: Option<String>,
    /// Only metrics with these dimensions (and values, when given).
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only metrics written in the past three hours.
    pub recently_active: bool,
    /// Where the previous page ended.
    pub next_token: Option<String>,
}

/// The most datapoints `GetMetricStatistics` answers.
const MAX_STATISTICS_DATAPOINTS: i64 = 1440;
/// The most datapoints one `GetMetricData` answer holds.
const MAX_DATA_DATAPOINTS: i64 = 100_800;
/// The most datapoints one `GetMetricData` request may compute: its metric queries' and
/// expressions' time series, intermediate ones included (ten answers' worth, about 16 MB).
/// Past it the request is refused rather than the server's memory spent.
const MAX_COMPUTED_DATAPOINTS: usize = 10 * MAX_DATA_DATAPOINTS as usize;
/// Metrics per `ListMetrics` page.
const LIST_PAGE: usize = 500;

type Pending = HashMap<(SeriesKey, i64), Aggregate>;

#[derive(Debug)]
struct Shared {
    clock: Arc<dyn Clock>,
    store: Store,
    /// Observed samples not yet written, by (series, minute).
    pending: Mutex<Pending>,
    retention: Duration,
}

impl Shared {
    fn flush(&self) -> Result<(), MetricsError> {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(());
        }
        let buckets: Vec<_> = pending
            .into_iter()
            .map(|((key, ts), aggregate)| (key, 60, ts, aggregate))
            .collect();
        self.store
            .write(&buckets, gust_store::sqlite::ms(self.clock.now()))
    }

    fn sweep(&self) -> Result<usize, MetricsError> {
        let cutoff = self.clock.now().unix_timestamp()
            - i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX / 2);
        self.store.sweep(cutoff)
    }
}

/// The metrics of every account.
#[derive(Debug)]
pub struct Metrics {
    shared: Arc<Shared>,
    region: String,
    /// Dropping it stops the writer, which flushes what is pending.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Metrics {
    /// Metrics kept in the SQLite database at `path` for `retention`.
    pub fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        region: &str,
        retention: Duration,
    ) -> Result<Arc<Self>, MetricsError> {
        let shared = Arc::new(Shared {
            clock,
            store: Store::open(path)?,
            pending: Mutex::new(HashMap::new()),
            retention,
        });
        if let Err(error) = shared.sweep() {
            tracing::warn!(%error, "sweeping expired metrics failed");
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let worker = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("metrics-writer".into())
            .spawn(move || {
                let mut ticks = 0u64;
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(Duration::from_secs(1)),
                        Err(RecvTimeoutError::Timeout)
                    );
                    if let Err(error) = worker.flush() {
                        tracing::warn!(%error, "writing metrics failed");
                    }
                    if last {
                        break;
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(60) {
                        if let Err(error) = worker.sweep() {
                            tracing::warn!(%error, "sweeping expired metrics failed");
                        }
                    }
                }
            })
            .map_err(|e| MetricsError::Internal(e.to_string()))?;
        Ok(Arc::new(Metrics {
            shared,
            region: region.to_owned(),
            stop: Mutex::new(Some(stop)),
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// The region these metrics are of.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Writes what has been observed and not yet written.
    pub fn flush(&self) -> Result<(), MetricsError> {
        self.shared.flush()
    }

    /// Deletes what is older than the retention; how many buckets went.
    pub fn sweep(&self) -> Result<usize, MetricsError> {
        self.shared.sweep()
    }

    fn record(&self, samples: Vec<lambda::Sample>) {
        if samples.is_empty() {
            return;
        }
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for sample in samples {
            let ts = sample.at.unix_timestamp().div_euclid(60) * 60;
            pending
                .entry((sample.key, ts))
                .or_default()
                .add(sample.value, 1.0);
        }
    }

    /// `PutMetricData`: checks every datum, then commits them all.
    pub fn put_metric_data(
        &self,
        account: &str,
        namespace: &str,
        data: &[MetricDatum],
    ) -> Result<(), MetricsError> {
        if namespace.starts_with("AWS/") {
            return Err(MetricsError::InvalidParameterValue(format!(
                "The value {namespace} for parameter Namespace is invalid."
            )));
        }
        if data.is_empty() {
            return Err(MetricsError::MissingParameter(
                "The parameter MetricData is required.".into(),
            ));
        }
        if data.len() > 1000 {
            return Err(MetricsError::InvalidParameterValue(
                "The collection MetricData must not have a size greater than 1000.".into(),
            ));
        }
        let now = self.shared.clock.now();
        let mut buckets: HashMap<(SeriesKey, i64, i64), Aggregate> = HashMap::new();
        for (index, datum) in data.iter().enumerate() {
            let (key, resolution, ts, aggregate) =
                bucket_of(account, namespace, index + 1, datum, now)?;
            buckets
                .entry((key, resolution, ts))
                .or_default()
                .merge(&aggregate);
        }
        let buckets: Vec<_> = buckets
            .into_iter()
            .map(|((key, resolution, ts), aggregate)| (key, resolution, ts, aggregate))
            .collect();
        self.shared
            .store
            .write(&buckets, gust_store::sqlite::ms(now))
    }

    /// Emits the aggregate of each period of a metric in `[start, end)` (aligned), with its
    /// unit, oldest first. The buckets are merged as they are read: one period's aggregate
    /// is held at a time, however many buckets the range holds. An error from `emit` stops.
    fn periods(
        &self,
        account: &str,
        metric: &MetricId,
        unit: Option<&str>,
        (start, end, period): (i64, i64, i64),
        emit: &mut dyn FnMut(i64, String, Aggregate) -> Result<(), MetricsError>,
    ) -> Result<(), MetricsError> {
        self.flush()?;
        let period = period.max(1);
        let mut current: Option<(i64, String, Aggregate)> = None;
        self.shared
            .store
            .buckets(account, metric, unit, (start, end), &mut |bucket| {
                let at = start + (bucket.ts - start).div_euclid(period) * period;
                match &mut current {
                    Some((t, _, aggregate)) if *t == at => {
                        aggregate.merge(&bucket.aggregate);
                        Ok(())
                    }
                    _ => match current.replace((at, bucket.unit, bucket.aggregate)) {
                        Some((t, unit, aggregate)) => emit(t, unit, aggregate),
                        None => Ok(()),
                    },
                }
            })?;
        match current {
            Some((t, unit, aggregate)) => emit(t, unit, aggregate),
            None => Ok(()),
        }
    }

    /// `GetMetricStatistics`: the label and datapoints (oldest first).
    pub fn get_metric_statistics(
        &self,
        account: &str,
        request: &StatisticsRequest,
    ) -> Result<(String, Vec<Datapoint>), MetricsError> {
        let mut basic = Vec::new();
        for name in &request.statistics {
            let stat = Stat::basic(name).ok_or_else(|| {
                MetricsError::InvalidParameterValue(format!(
                    "The value {name} for parameter Statistics is not supported."
                ))
            })?;
            basic.push((name.clone(), stat));
        }
        let mut extended = Vec::new();
        for name in &request.extended {
            match Stat::parse(name) {
                Some(stat) if Stat::basic(name).is_none() => extended.push((name.clone(), stat)),
                _ => {
                    return Err(MetricsError::InvalidParameterValue(format!(
                        "The value {name} for parameter ExtendedStatistics is not supported."
                    )))
                }
            }
        }
        if basic.is_empty() && extended.is_empty() {
            return Err(MetricsError::InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both.".into(),
            ));
        }
        let now = self.shared.clock.now();
        let (start, end) = self.range(request.start, request.end, request.period, now, "")?;
        let requested = periods_in(end - start, request.period);
        if requested > MAX_STATISTICS_DATAPOINTS {
            return Err(MetricsError::InvalidParameterCombination(format!(
                "You have requested up to {requested} datapoints, which exceeds the limit of \
                 {MAX_STATISTICS_DATAPOINTS}. You may reduce the datapoints requested by \
                 increasing Period, or decreasing the time range."
            )));
        }
        // At most `MAX_STATISTICS_DATAPOINTS` periods, each aggregated as it is read.
        let mut datapoints = Vec::new();
        self.periods(
            account,
            &request.metric,
            request.unit.as_deref(),
            (start, end, request.period),
            &mut |ts, unit, aggregate| {
                datapoints.push(Datapoint {
                    timestamp: at(ts),
                    statistics: basic
                        .iter()
                        .filter_map(|(name, stat)| {
                            aggregate.statistic(stat).map(|v| (name.clone(), v))
                        })
                        .collect(),
                    extended: extended
                        .iter()
                        .filter_map(|(name, stat)| {
                            aggregate.statistic(stat).map(|v| (name.clone(), v))
                        })
                        .collect(),
                    unit,
                });
                Ok(())
            },
        )?;
        Ok((request.metric.name.clone(), datapoints))
    }

    /// Checks a period and a time range, and aligns the range as CloudWatch does: the start
    /// rounded down to the minute (five minutes past 15 days, the hour past 63 days), or
    /// the second for high-resolution periods. `prefix` names the period's parameter.
    fn range(
        &self,
        start: OffsetDateTime,
        end: OffsetDateTime,
        period: i64,
        now: OffsetDateTime,
        prefix: &str,
    ) -> Result<(i64, i64), MetricsError> {
        check_period(period, prefix)?;
        let (start, end) = (start.unix_timestamp(), end.unix_timestamp());
        if start >= end {
            return Err(MetricsError::InvalidParameterValue(
                "The parameter StartTime must be less than the parameter EndTime.".into(),
            ));
        }
        let age = now.unix_timestamp() - start;
        let unit = if period < 60 {
            1
        } else if age <= 15 * 86_400 {
            60
        } else if age <= 63 * 86_400 {
            300
        } else {
            3600
        };
        Ok((start.div_euclid(unit) * unit, end))
    }

    /// `GetMetricData`: the results (in the order of the queries that return data), and
    /// the token of the next page.
    pub fn get_metric_data(
        &self,
        account: &str,
        request: &DataRequest,
    ) -> Result<(Vec<DataResult>, Option<String>), MetricsError> {
        self.metric_data(account, request)
            .map(|(results, next, _)| (results, next))
    }

    /// `GetMetricData`, and how many datapoints its evaluation computed (before paging).
    fn metric_data(
        &self,
        account: &str,
        request: &DataRequest,
    ) -> Result<(Vec<DataResult>, Option<String>, usize), MetricsError> {
        if request.queries.len() > 500 {
            return Err(MetricsError::Validation(
                "The collection MetricDataQueries must not have a size greater than 500.".into(),
            ));
        }
        if request.start >= request.end {
            return Err(MetricsError::Validation(
                "The parameter StartTime must be less than the parameter EndTime.".into(),
            ));
        }
        let mut seen = HashSet::new();
        for (index, query) in request.queries.iter().enumerate() {
            let n = index + 1;
            if !valid_id(&query.id) {
                return Err(MetricsError::Validation(format!(
                    "Invalid metric_id: {}. The Id must start with a lowercase letter and \
                     contain only letters, numbers and underscores.",
                    query.id
                )));
            }
            if !seen.insert(query.id.as_str()) {
                return Err(MetricsError::Validation(format!(
                    "The value {} for parameter MetricDataQueries.member.{n}.Id is duplicated.",
                    query.id
                )));
            }
            let period = match &query.kind {
                QueryKind::Metric { period, stat, .. } => {
                    if Stat::parse(stat).is_none() {
                        return Err(MetricsError::Validation(format!(
                            "The value {stat} for parameter \
                             MetricDataQueries.member.{n}.MetricStat.Stat is invalid."
                        )));
                    }
                    Some(*period)
                }
                QueryKind::Expression(_) => query.period,
            };
            if let Some(period) = period {
                check_period(period, &format!("MetricDataQueries.member.{n}."))
                    .map_err(|e| MetricsError::Validation(e.to_string()))?;
            }
        }
        if !request.queries.iter().any(|q| q.return_data) {
            return Err(MetricsError::Validation(
                "No metrics or expressions have ReturnData set to true.".into(),
            ));
        }
        let offset = match &request.next_token {
            None => 0,
            Some(token) => token.parse::<usize>().map_err(|_| {
                MetricsError::InvalidNextToken("The service couldn't process the token.".into())
            })?,
        };
        // Every expression parsed first (the parser bounds their nesting).
        let mut parsed = Vec::with_capacity(request.queries.len());
        for query in &request.queries {
            parsed.push(match &query.kind {
                QueryKind::Metric { .. } => None,
                QueryKind::Expression(text) => Some(math::parse(text).map_err(|e| {
                    MetricsError::Validation(format!("Error in expression {}: {e}", query.id))
                })?),
            });
        }
        let mut evaluation = Evaluation {
            metrics: self,
            account,
            request,
            now: self.shared.clock.now(),
            parsed: &parsed,
            index: request
                .queries
                .iter()
                .enumerate()
                .map(|(i, q)| (q.id.as_str(), i))
                .collect(),
            cache: HashMap::new(),
            charged: 0,
        };
        let mut results: Vec<(String, String, Output)> = Vec::new();
        for (index, query) in request.queries.iter().enumerate() {
            if !query.return_data {
                continue;
            }
            let value = evaluation.value(index).map_err(MetricsError::Validation)?;
            let label = query.label.clone();
            let series = match value {
                math::Value::Series(s) => vec![s],
                math::Value::Array(items) => items,
                // A scalar stays one number: its points are made only for the page answered.
                math::Value::Scalar(value) => {
                    let grid = evaluation.grid_spec(query.period.unwrap_or(60));
                    let label = label.unwrap_or_else(|| query.id.clone());
                    results.push((query.id.clone(), label, Output::Scalar { value, grid }));
                    continue;
                }
            };
            let single = series.len() == 1;
            for s in series {
                let label = match (&label, single) {
                    (Some(label), true) => label.clone(),
                    (Some(label), false) => format!("{label} {}", s.label),
                    (None, _) if !s.label.is_empty() => s.label.clone(),
                    (None, _) => query.id.clone(),
                };
                results.push((query.id.clone(), label, Output::Points(s.points)));
            }
        }
        // Pages: `offset` datapoints (across the results, in order) were answered before.
        let max = request
            .max_datapoints
            .filter(|m| *m > 0)
            .unwrap_or(MAX_DATA_DATAPOINTS)
            .min(MAX_DATA_DATAPOINTS) as usize;
        let (mut skip, mut room) = (offset, max);
        let mut more = false;
        let mut out = Vec::new();
        for (id, label, output) in results {
            let len = output.len();
            let from = skip.min(len);
            skip -= from;
            let take = room.min(len - from);
            room -= take;
            let partial = from + take < len;
            more |= partial;
            let page = output.page(request.ascending, from, take);
            out.push(DataResult {
                id,
                label,
                timestamps: page.iter().map(|(t, _)| at(*t)).collect(),
                values: page.iter().map(|(_, v)| *v).collect(),
                status: if partial { "PartialData" } else { "Complete" },
            });
        }
        let next = more.then(|| offset.saturating_add(max).to_string());
        Ok((out, next, evaluation.charged))
    }

    /// `ListMetrics`: one page of metrics and the next page's token.
    pub fn list_metrics(
        &self,
        account: &str,
        request: &ListRequest,
    ) -> Result<(Vec<MetricId>, Option<String>), MetricsError> {
        self.flush()?;
        let offset = match &request.next_token {
            None => 0,
            Some(token) => token.parse::<usize>().map_err(|_| {
                MetricsError::InvalidNextToken("The service couldn't process the token.".into())
            })?,
        };
        let since = if request.recently_active {
            gust_store::sqlite::ms(self.shared.clock.now()) - 3 * 3600 * 1000
        } else {
            i64::MIN
        };
        // Read only up to the page's end (and one more, to know there is a next page).
        let (mut page, mut matched, mut more) = (Vec::new(), 0usize, false);
        self.shared.store.metrics(
            account,
            request.namespace.as_deref(),
            request.name.as_deref(),
            since,
            &mut |(namespace, name, dimensions)| {
                let wanted = request.dimensions.iter().all(|(name, value)| {
                    dimensions
                        .iter()
                        .any(|(n, v)| n == name && value.as_ref().is_none_or(|value| value == v))
                });
                if !wanted {
                    return true;
                }
                matched += 1;
                if matched <= offset {
                    return true;
                }
                if page.len() == LIST_PAGE {
                    more = true;
                    return false;
                }
                page.push(MetricId {
                    namespace,
                    name,
                    dimensions,
                });
                true
            },
        )?;
        let next = more.then(|| offset.saturating_add(LIST_PAGE).to_string());
        Ok((page, next))
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        drop(
            self.stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = writer.join();
        }
    }
}

impl gust_model::observe::Observer for Metrics {
    fn observe(&self, observation: Observation) {
        self.record(lambda::samples(&observation));
    }

    fn gauges(&self, gauges: &Gauges, at: OffsetDateTime) {
        self.record(lambda::gauge_samples(gauges, at));
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// How many periods of `period` seconds cover `span` seconds (the last one partly).
fn periods_in(span: i64, period: i64) -> i64 {
    let period = period.max(1);
    span.div_euclid(period) + i64::from(span.rem_euclid(period) != 0)
}

/// `^[a-z][a-zA-Z0-9_]*$`.
fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A period is 1, 5, 10 or 30 seconds (high resolution), or a multiple of 60.
fn check_period(period: i64, prefix: &str) -> Result<(), MetricsError> {
    if period >= 1 && (matches!(period, 1 | 5 | 10 | 30) || period % 60 == 0) {
        Ok(())
    } else {
        Err(MetricsError::InvalidParameterValue(format!(
            "The parameter {prefix}Period must be a multiple of 60 or one of 1, 5, 10, 30."
        )))
    }
}

/// Checks one datum of `PutMetricData` (the `n`th) and makes its bucket.
fn bucket_of(
    account: &str,
    namespace: &str,
    n: usize,
    datum: &MetricDatum,
    now: OffsetDateTime,
) -> Result<(SeriesKey, i64, i64, Aggregate), MetricsError> {
    let param = |what: &str| format!("MetricData.member.{n}.{what}");
    let mut dimensions = datum.dimensions.clone();
    dimensions.sort();
    if let Some(pair) = dimensions.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(MetricsError::InvalidParameterValue(format!(
            "The value {} for parameter {} is duplicated.",
            pair[0].0,
            param("Dimensions")
        )));
    }
    let resolution = match datum.storage_resolution {
        None | Some(60) => 60,
        Some(1) => 1,
        Some(other) => {
            return Err(MetricsError::InvalidParameterValue(format!(
                "The value {other} for parameter {} is invalid.",
                param("StorageResolution")
            )))
        }
    };
    let timestamp = datum.timestamp.unwrap_or(now);
    if timestamp < now - time::Duration::days(14) {
        return Err(MetricsError::InvalidParameterValue(format!(
            "The parameter {} must specify a time within the past two weeks.",
            param("Timestamp")
        )));
    }
    if timestamp > now + time::Duration::hours(2) {
        return Err(MetricsError::InvalidParameterValue(format!(
            "The parameter {} must specify a time no more than two hours in the future.",
            param("Timestamp")
        )));
    }
    let mut aggregate = Aggregate::default();
    match (&datum.value, &datum.values, &datum.statistics) {
        (Some(value), None, None) => aggregate.add(*value, 1.0),
        (None, Some(values), None) => {
            if values.len() > 150 {
                return Err(MetricsError::InvalidParameterValue(format!(
                    "The collection {} must not have a size greater than 150.",
                    param("Values")
                )));
            }
            let counts = match &datum.counts {
                Some(counts) if counts.len() != values.len() => {
                    return Err(MetricsError::InvalidParameterValue(format!(
                        "The parameters {} and {} must be of the same size.",
                        param("Values"),
                        param("Counts")
                    )))
                }
                Some(counts) => counts.clone(),
                None => vec![1.0; values.len()],
            };
            if counts.iter().any(|c| *c < 0.0) {
                return Err(MetricsError::InvalidParameterValue(format!(
                    "The parameter {} must not contain negative values.",
                    param("Counts")
                )));
            }
            for (value, count) in values.iter().zip(counts) {
                if count > 0.0 {
                    aggregate.add(*value, count);
                }
            }
            if aggregate.count <= 0.0 {
                return Err(MetricsError::InvalidParameterValue(format!(
                    "The parameter {} must contain at least one value with a count.",
                    param("Values")
                )));
            }
        }
        (None, None, Some(set)) => {
            if set.sample_count <= 0.0 {
                return Err(MetricsError::InvalidParameterValue(format!(
                    "The parameter {} must be greater than 0.",
                    param("StatisticValues.SampleCount")
                )));
            }
            if set.minimum > set.maximum {
                return Err(MetricsError::InvalidParameterValue(format!(
                    "The parameter {} must be greater than or equal to {}.",
                    param("StatisticValues.Maximum"),
                    param("StatisticValues.Minimum")
                )));
            }
            aggregate.add_set(set.sample_count, set.sum, set.minimum, set.maximum);
        }
        (None, None, None) => {
            return Err(MetricsError::InvalidParameterCombination(format!(
                "At least one of the parameters {}, {} or {} must be specified.",
                param("Value"),
                param("StatisticValues"),
                param("Values")
            )))
        }
        (value, values, _) => {
            let (a, b) = match (value, values) {
                (Some(_), Some(_)) => ("Value", "Values"),
                (Some(_), None) => ("Value", "StatisticValues"),
                _ => ("Values", "StatisticValues"),
            };
            return Err(MetricsError::InvalidParameterCombination(format!(
                "The parameters {} and {} are mutually exclusive and you have specified both.",
                param(a),
                param(b)
            )));
        }
    }
    let key = SeriesKey {
        account: account.to_owned(),
        namespace: namespace.to_owned(),
        name: datum.name.clone(),
        dimensions,
        unit: datum.unit.clone().unwrap_or_else(|| "None".into()),
    };
    let ts = timestamp.unix_timestamp().div_euclid(resolution) * resolution;
    Ok((key, resolution, ts, aggregate))
}

/// A request's grid for one period: `count` timestamps from `start`, `period` apart.
#[derive(Debug, Clone, Copy)]
struct Grid {
    start: i64,
    period: i64,
    count: usize,
}

impl Grid {
    fn at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.period
    }
}

/// One result's points before paging: a time series, or a scalar over the grid (whose
/// points are made only for the page).
#[derive(Debug)]
enum Output {
    Points(Arc<[(i64, f64)]>),
    Scalar { value: f64, grid: Grid },
}

impl Output {
    /// How many datapoints (a scalar or infinite value is not one).
    fn len(&self) -> usize {
        match self {
            Output::Points(points) => points.iter().filter(|(_, v)| v.is_finite()).count(),
            Output::Scalar { value, grid } if value.is_finite() => grid.count,
            Output::Scalar { .. } => 0,
        }
    }

    /// The datapoints `from..from + take`, in the order asked.
    fn page(&self, ascending: bool, from: usize, take: usize) -> Vec<(i64, f64)> {
        match self {
            Output::Points(points) => {
                let finite = |p: &&(i64, f64)| p.1.is_finite();
                if ascending {
                    Box::new(points.iter().filter(finite)) as Box<dyn Iterator<Item = _>>
                } else {
                    Box::new(points.iter().rev().filter(finite))
                }
                .skip(from)
                .take(take)
                .copied()
                .collect()
            }
            Output::Scalar { value, grid } => (from..(from + take).min(self.len()))
                .map(|i| {
                    let i = if ascending { i } else { grid.count - 1 - i };
                    (grid.at(i), *value)
                })
                .collect(),
        }
    }
}

fn too_many_datapoints() -> String {
    format!(
        "Too many datapoints: the queries of this request would compute more than \
         {MAX_COMPUTED_DATAPOINTS}. Reduce the time range, increase the period or use \
         fewer queries."
    )
}

/// The evaluation of one `GetMetricData` request's queries (each once, on demand).
struct Evaluation<'a> {
    metrics: &'a Metrics,
    account: &'a str,
    request: &'a DataRequest,
    now: OffsetDateTime,
    /// Each query's parsed expression (`None`: a metric query), in request order.
    parsed: &'a [Option<math::Expr>],
    /// Each query's index, by id.
    index: HashMap<&'a str, usize>,
    /// The queries evaluated, by index (their series shared, not copied, when read).
    cache: HashMap<usize, math::Value>,
    /// Datapoints computed so far, against `MAX_COMPUTED_DATAPOINTS`.
    charged: usize,
}

impl Evaluation<'_> {
    fn grid_spec(&self, period: i64) -> Grid {
        let period = period.max(1);
        match self
            .metrics
            .range(self.request.start, self.request.end, period, self.now, "")
        {
            Ok((start, end)) => Grid {
                start,
                period,
                count: periods_in(end - start, period).clamp(0, MAX_DATA_DATAPOINTS) as usize,
            },
            Err(_) => Grid {
                start: 0,
                period,
                count: 0,
            },
        }
    }

    fn id(&self, index: usize) -> &str {
        self.request
            .queries
            .get(index)
            .map(|q| q.id.as_str())
            .unwrap_or_default()
    }

    /// The expressions query `index`'s expression names (metric queries are leaves).
    fn dependencies(&self, index: usize) -> Vec<usize> {
        let mut names = Vec::new();
        if let Some(Some(expr)) = self.parsed.get(index) {
            math::references(expr, &mut names);
        }
        names
            .iter()
            .rev()
            .filter_map(|name| self.index.get(name.as_str()).copied())
            .filter(|i| matches!(self.parsed.get(*i), Some(Some(_))))
            .collect()
    }

    /// The value of query `index`. The expressions it names are evaluated first, deepest
    /// first, with an explicit stack: a long chain of expressions naming expressions does
    /// not recurse.
    fn value(&mut self, index: usize) -> Result<math::Value, String> {
        let mut open = HashSet::from([index]);
        let mut stack = vec![(index, self.dependencies(index))];
        while let Some((current, pending)) = stack.last_mut() {
            let current = *current;
            match pending.pop() {
                Some(next) if self.cache.contains_key(&next) => {}
                Some(next) if !open.insert(next) => {
                    return Err(format!(
                        "Error in expression {}: Circular dependency in expression {}",
                        self.id(current),
                        self.id(next)
                    ));
                }
                Some(next) => stack.push((next, self.dependencies(next))),
                None => {
                    stack.pop();
                    open.remove(&current);
                    self.compute(current)?;
                }
            }
        }
        self.cache
            .get(&index)
            .cloned()
            .ok_or_else(|| format!("Unrecognized metric or expression id {}", self.id(index)))
    }

    /// Evaluates query `index` (what its expression names already evaluated) and caches it.
    fn compute(&mut self, index: usize) -> Result<(), String> {
        if self.cache.contains_key(&index) {
            return Ok(());
        }
        let request = self.request;
        let Some(query) = request.queries.get(index) else {
            return Err(format!("Unrecognized metric or expression id {index}"));
        };
        let id = &query.id;
        let value = match (&query.kind, self.parsed.get(index)) {
            (
                QueryKind::Metric {
                    metric,
                    period,
                    stat,
                    unit,
                },
                _,
            ) => {
                let stat = Stat::parse(stat).ok_or_else(|| format!("Invalid stat {stat}"))?;
                let (start, end) = self
                    .metrics
                    .range(request.start, request.end, *period, self.now, "")
                    .map_err(|e| e.to_string())?;
                // Refused as soon as the budget is spent, not once the series is whole.
                let room = MAX_COMPUTED_DATAPOINTS.saturating_sub(self.charged);
                let mut points = Vec::new();
                self.metrics
                    .periods(
                        self.account,
                        metric,
                        unit.as_deref(),
                        (start, end, *period),
                        &mut |t, _, aggregate| {
                            if let Some(v) = aggregate.statistic(&stat) {
                                if points.len() >= room {
                                    return Err(MetricsError::Validation(too_many_datapoints()));
                                }
                                points.push((t, v));
                            }
                            Ok(())
                        },
                    )
                    .map_err(|e| e.to_string())?;
                math::Context::charge(self, points.len())?;
                math::Value::Series(math::Series {
                    label: query.label.clone().unwrap_or_else(|| metric.name.clone()),
                    period: *period,
                    points: points.into(),
                })
            }
            (QueryKind::Expression(_), Some(Some(parsed))) => {
                let mut value = math::eval(parsed, self).map_err(|e| {
                    if e.starts_with("Error in expression") {
                        e
                    } else {
                        format!("Error in expression {id}: {e}")
                    }
                })?;
                if let (math::Value::Series(s), Some(label)) = (&mut value, &query.label) {
                    s.label = label.clone();
                }
                value
            }
            (QueryKind::Expression(_), _) => {
                return Err(format!("Error in expression {id}: not parsed"));
            }
        };
        self.cache.insert(index, value);
        Ok(())
    }
}

impl math::Context for Evaluation<'_> {
    fn query(&mut self, id: &str) -> Result<Option<math::Value>, String> {
        let Some(&index) = self.index.get(id) else {
            return Ok(None);
        };
        if !self.cache.contains_key(&index) {
            // Expressions named were evaluated before this one; one that was not is on
            // the way to this one.
            if matches!(self.parsed.get(index), Some(Some(_))) {
                return Err(format!("Circular dependency in expression {id}"));
            }
            self.compute(index)?;
        }
        Ok(self.cache.get(&index).cloned())
    }

    fn metrics(&mut self, filter: &str) -> Result<Vec<math::Series>, String> {
        let indexes: Vec<usize> = self
            .request
            .queries
            .iter()
            .enumerate()
            .filter(|(_, q)| matches!(q.kind, QueryKind::Metric { .. }) && q.id.contains(filter))
            .map(|(i, _)| i)
            .collect();
        let mut out = Vec::new();
        for index in indexes {
            self.compute(index)?;
            if let Some(math::Value::Series(s)) = self.cache.get(&index) {
                out.push(s.clone());
            }
        }
        Ok(out)
    }

    fn grid(&self, period: i64) -> Vec<i64> {
        let grid = self.grid_spec(period);
        (0..grid.count).map(|i| grid.at(i)).collect()
    }

    fn charge(&mut self, points: usize) -> Result<(), String> {
        self.charged = self.charged.saturating_add(points);
        if self.charged > MAX_COMPUTED_DATAPOINTS {
            return Err(too_many_datapoints());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

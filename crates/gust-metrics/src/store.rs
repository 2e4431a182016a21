//! The metrics database: one row per series (account, namespace, name, dimensions, unit)
//! and one per (series, resolution, bucket) holding the bucket's aggregate. Writing a
//! bucket that exists merges into it (read, merge, replace) inside one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use gust_store::sqlite::open_versioned;
use rusqlite::{params, Connection, OptionalExtension};

use crate::sketch::{Aggregate, Sketch};
use crate::{MetricId, MetricsError};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    unit TEXT NOT NULL,
    last_ms INTEGER NOT NULL,
    UNIQUE (account, namespace, name, dimensions, unit)
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    count REAL NOT NULL,
    sum REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sketch BLOB NOT NULL,
    PRIMARY KEY (series, resolution, ts)
);
CREATE INDEX IF NOT EXISTS points_ts ON points(ts);
";

/// Which series: the identity of a metric plus its unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The owning account.
    pub account: String,
    /// The namespace (`AWS/Lambda`, or a custom one).
    pub namespace: String,
    /// The metric's name.
    pub name: String,
    /// The dimensions, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// The unit (`None` when unspecified).
    pub unit: String,
}

/// One bucket's aggregate of one series.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// The bucket's start, epoch seconds.
    pub ts: i64,
    /// The series' unit.
    pub unit: String,
    /// Its values.
    pub aggregate: Aggregate,
}

/// A metric's namespace, name and dimensions.
pub(crate) type MetricRow = (String, String, Vec<(String, String)>);

/// The SQLite store.
#[derive(Debug)]
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    connection: Connection,
    /// Series ids already known (cleared when a sweep deletes series).
    ids: HashMap<SeriesKey, i64>,
}

impl From<rusqlite::Error> for MetricsError {
    fn from(error: rusqlite::Error) -> Self {
        MetricsError::Internal(error.to_string())
    }
}

pub(crate) fn dimensions_text(dimensions: &[(String, String)]) -> String {
    serde_json::to_string(dimensions).unwrap_or_default()
}

impl Store {
    pub(crate) fn open(path: &Path) -> Result<Self, MetricsError> {
        let connection = open_versioned(path, "metrics", SCHEMA, SCHEMA_VERSION)
            .map_err(|error| error.into_error(MetricsError::Internal))?;
        Ok(Store {
            inner: Mutex::new(Inner {
                connection,
                ids: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Merges `buckets` ((series, resolution, start) → values) into the store, in one
    /// transaction; `now_ms` marks the series as recently active.
    pub(crate) fn write(
        &self,
        buckets: &[(SeriesKey, i64, i64, Aggregate)],
        now_ms: i64,
    ) -> Result<(), MetricsError> {
        if buckets.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        let Inner { connection, ids } = &mut *inner;
        let tx = connection.transaction()?;
        let mut fresh = Vec::new();
        for (key, resolution, ts, aggregate) in buckets {
            let id = match ids.get(key) {
                Some(id) => *id,
                None => {
                    let id = series_id(&tx, key, now_ms)?;
                    fresh.push((key.clone(), id));
                    id
                }
            };
            tx.execute(
                "UPDATE series SET last_ms = max(last_ms, ?2) WHERE id = ?1",
                params![id, now_ms],
            )?;
            let existing = tx
                .query_row(
                    "SELECT count, sum, min, max, sketch FROM points
                     WHERE series = ?1 AND resolution = ?2 AND ts = ?3",
                    params![id, resolution, ts],
                    |row| {
                        Ok(Aggregate {
                            count: row.get(0)?,
                            sum: row.get(1)?,
                            min: row.get(2)?,
                            max: row.get(3)?,
                            sketch: Sketch::decode(&row.get::<_, Vec<u8>>(4)?),
                        })
                    },
                )
                .optional()?;
            let mut merged = existing.unwrap_or_default();
            merged.merge(aggregate);
            tx.execute(
                "INSERT OR REPLACE INTO points (series, resolution, ts, count, sum, min, max, sketch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    resolution,
                    ts,
                    merged.count,
                    merged.sum,
                    merged.min,
                    merged.max,
                    merged.sketch.encode()
                ],
            )?;
        }
        tx.commit()?;
        // Cached only once committed: a rolled back insert leaves no id behind.
        ids.extend(fresh);
        Ok(())
    }

    /// Visits the buckets of a metric (every unit, or only `unit`) in `[from, to)`
    /// seconds, oldest first, one at a time: a long range is read without holding it all.
    /// An error from `visit` stops the reading and is returned.
    pub(crate) fn buckets(
        &self,
        account: &str,
        metric: &MetricId,
        unit: Option<&str>,
        (from, to): (i64, i64),
        visit: &mut dyn FnMut(Bucket) -> Result<(), MetricsError>,
    ) -> Result<(), MetricsError> {
        let inner = self.lock();
        let mut statement = inner.connection.prepare_cached(
            "SELECT p.ts, s.unit, p.count, p.sum, p.min, p.max, p.sketch
             FROM series s JOIN points p ON p.series = s.id
             WHERE s.account = ?1 AND s.namespace = ?2 AND s.name = ?3 AND s.dimensions = ?4
               AND (?5 IS NULL OR s.unit = ?5) AND p.ts >= ?6 AND p.ts < ?7
             ORDER BY p.ts",
        )?;
        let rows = statement.query_map(
            params![
                account,
                metric.namespace,
                metric.name,
                dimensions_text(&metric.dimensions),
                unit,
                from,
                to
            ],
            |row| {
                Ok(Bucket {
                    ts: row.get(0)?,
                    unit: row.get(1)?,
                    aggregate: Aggregate {
                        count: row.get(2)?,
                        sum: row.get(3)?,
                        min: row.get(4)?,
                        max: row.get(5)?,
                        sketch: Sketch::decode(&row.get::<_, Vec<u8>>(6)?),
                    },
                })
            },
        )?;
        for bucket in rows {
            visit(bucket?)?;
        }
        Ok(())
    }

    /// Visits the distinct metrics (namespace, name, dimensions) of `account`, optionally
    /// of one namespace and name, active since `since_ms`, in a stable order, until
    /// `visit` answers false: a page is read without reading every metric.
    pub(crate) fn metrics(
        &self,
        account: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        since_ms: i64,
        visit: &mut dyn FnMut(MetricRow) -> bool,
    ) -> Result<(), MetricsError> {
        let inner = self.lock();
        let mut statement = inner.connection.prepare_cached(
            "SELECT namespace, name, dimensions FROM series
             WHERE account = ?1 AND (?2 IS NULL OR namespace = ?2) AND (?3 IS NULL OR name = ?3)
             GROUP BY namespace, name, dimensions
             HAVING max(last_ms) >= ?4
             ORDER BY namespace, name, dimensions",
        )?;
        let rows = statement.query_map(params![account, namespace, name, since_ms], |row| {
            let dims: String = row.get(2)?;
            Ok((row.get(0)?, row.get(1)?, gust_store::sqlite::json(&dims)?))
        })?;
        for row in rows {
            if !visit(row?) {
                break;
            }
        }
        Ok(())
    }

    /// Deletes the buckets that start before `before` (seconds) and the series with
    /// none left that were last written before `before_ms`.
    pub(crate) fn sweep(&self, before: i64) -> Result<usize, MetricsError> {
        let mut inner = self.lock();
        let deleted = inner
            .connection
            .execute("DELETE FROM points WHERE ts < ?1", params![before])?;
        let series = inner.connection.execute(
            "DELETE FROM series WHERE last_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM points WHERE points.series = series.id)",
            params![before.saturating_mul(1000)],
        )?;
        if series > 0 {
            inner.ids.clear();
        }
        Ok(deleted)
    }
}

fn series_id(
    tx: &rusqlite::Transaction<'_>,
    key: &SeriesKey,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    let dims = dimensions_text(&key.dimensions);
    tx.execute(
        "INSERT OR IGNORE INTO series (account, namespace, name, dimensions, unit, last_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key.account, key.namespace, key.name, dims, key.unit, now_ms],
    )?;
    tx.query_row(
        "SELECT id FROM series WHERE account = ?1 AND namespace = ?2 AND name = ?3
         AND dimensions = ?4 AND unit = ?5",
        params![key.account, key.namespace, key.name, dims, key.unit],
        |row| row.get(0),
    )
}

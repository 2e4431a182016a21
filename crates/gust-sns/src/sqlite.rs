//! The embedded topic store: one SQLite database (WAL, `synchronous=FULL`) written by one
//! thread with group commit (`gust_store::group_commit`): an acknowledged publish and its
//! deliveries are on disk, and writes that arrive together share a commit.

use gust_store::group_commit::{GroupCommit, RunError};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::Path;

use crate::error::SnsError;
use crate::store::{
    Delivery, Publication, Published, StoredMessage, SubscriptionRecord, TopicRecord, TopicStore,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS topics (
    arn TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    sequence INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS topics_account ON topics(account, arn);
CREATE TABLE IF NOT EXISTS subscriptions (
    arn TEXT PRIMARY KEY,
    topic_arn TEXT NOT NULL,
    topic_account TEXT NOT NULL,
    owner TEXT NOT NULL,
    protocol TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    attributes TEXT NOT NULL,
    pending INTEGER NOT NULL,
    token TEXT,
    authenticated INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions(topic_arn);
CREATE INDEX IF NOT EXISTS subscriptions_owner ON subscriptions(owner, arn);
CREATE INDEX IF NOT EXISTS subscriptions_topic_account ON subscriptions(topic_account, arn);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    topic_arn TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    subscription_arn TEXT NOT NULL,
    target TEXT NOT NULL,
    fifo_group TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL,
    dead_letter_stage INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_ms, id);
CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries(subscription_arn, fifo_group, id);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message_id);
CREATE TABLE IF NOT EXISTS dedup (
    topic_arn TEXT NOT NULL,
    key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence TEXT,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (topic_arn, key)
);
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup(expires_ms);
";

/// The SQLite topic store.
#[derive(Debug)]
pub struct SqliteTopics {
    writer: GroupCommit,
}

impl SqliteTopics {
    /// Opens (creating) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, SnsError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        let writer = GroupCommit::start(connection, "gust-sns-writer")
            .map_err(|e| SnsError::Internal(e.to_string()))?;
        Ok(SqliteTopics { writer })
    }

    /// Runs `job` in the writer's next transaction and waits for its commit.
    fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<R, SnsError> + Send + 'static,
    ) -> Result<R, SnsError> {
        self.writer.run(job).map_err(|error| match error {
            RunError::Job(error) => error,
            RunError::Commit(cause) => SnsError::Internal(cause),
            RunError::Stopped => SnsError::Internal("the topic store has stopped".into()),
        })
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

fn from_json<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn topic_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

const TOPIC_COLUMNS: &str = "arn, account, name, attributes, tags, created_ms";

fn topic_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TopicRecord> {
    Ok(TopicRecord {
        arn: row.get(0)?,
        account: row.get(1)?,
        name: row.get(2)?,
        attributes: from_json(&row.get::<_, String>(3)?),
        tags: from_json(&row.get::<_, String>(4)?),
        created_ms: row.get(5)?,
    })
}

fn get_topic(connection: &Connection, arn: &str) -> Result<Option<TopicRecord>, SnsError> {
    Ok(connection
        .prepare_cached(&format!(
            "SELECT {TOPIC_COLUMNS} FROM topics WHERE arn = ?1"
        ))?
        .query_row(params![arn], topic_row)
        .optional()?)
}

const SUBSCRIPTION_COLUMNS: &str =
    "arn, topic_arn, owner, protocol, endpoint, attributes, pending, token, authenticated, created_ms";

fn subscription_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriptionRecord> {
    Ok(SubscriptionRecord {
        arn: row.get(0)?,
        topic_arn: row.get(1)?,
        owner: row.get(2)?,
        protocol: row.get(3)?,
        endpoint: row.get(4)?,
        attributes: from_json(&row.get::<_, String>(5)?),
        pending: row.get(6)?,
        token: row.get(7)?,
        authenticated: row.get(8)?,
        created_ms: row.get(9)?,
    })
}

fn insert_publication(connection: &Connection, publication: &Publication) -> Result<(), SnsError> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO messages (id, topic_arn, body) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            publication.message.message_id,
            publication.message.topic_arn,
            to_json(&publication.message)
        ])?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO deliveries (message_id, subscription_arn, target, fifo_group, next_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for delivery in &publication.deliveries {
        insert.execute(params![
            publication.message.message_id,
            delivery.target.subscription_arn,
            to_json(&delivery.target),
            delivery.fifo_group,
            delivery.next_ms,
        ])?;
    }
    Ok(())
}

/// Deletes messages left without deliveries.
fn drop_orphans(connection: &Connection) -> Result<(), SnsError> {
    connection.execute(
        "DELETE FROM messages WHERE NOT EXISTS \
         (SELECT 1 FROM deliveries WHERE deliveries.message_id = messages.id)",
        [],
    )?;
    Ok(())
}

impl TopicStore for SqliteTopics {
    fn create_topic(
        &self,
        topic: &TopicRecord,
        max_topics: usize,
    ) -> Result<Result<TopicRecord, TopicRecord>, SnsError> {
        let topic = topic.clone();
        self.run(move |connection| {
            if let Some(existing) = get_topic(connection, &topic.arn)? {
                return Ok(Err(existing));
            }
            let count: i64 = connection
                .prepare_cached("SELECT COUNT(*) FROM topics WHERE account = ?1")?
                .query_row(params![topic.account], |r| r.get(0))?;
            if count as usize >= max_topics {
                return Err(SnsError::TopicLimitExceeded);
            }
            connection
                .prepare_cached(
                    "INSERT INTO topics (arn, account, name, attributes, tags, created_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    topic.arn,
                    topic.account,
                    topic.name,
                    to_json(&topic.attributes),
                    to_json(&topic.tags),
                    topic.created_ms
                ])?;
            Ok(Ok(topic))
        })
    }

    fn topic(&self, arn: &str) -> Result<Option<(TopicRecord, Vec<SubscriptionRecord>)>, SnsError> {
        let arn = arn.to_owned();
        self.run(move |connection| {
            let Some(topic) = get_topic(connection, &arn)? else {
                return Ok(None);
            };
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic_arn = ?1 ORDER BY arn"
            ))?;
            let subscriptions = statement
                .query_map(params![arn], subscription_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((topic, subscriptions)))
        })
    }

    fn topic_arns(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, SnsError> {
        let (account, after) = (account.to_owned(), after.unwrap_or_default().to_owned());
        self.run(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT arn FROM topics WHERE account = ?1 AND arn > ?2 ORDER BY arn LIMIT ?3",
            )?;
            let arns = statement
                .query_map(params![account, after, limit as i64], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(arns)
        })
    }

    fn update_topic(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), SnsError> {
        let (arn, attributes, tags) = (arn.to_owned(), to_json(attributes), to_json(tags));
        self.run(move |connection| {
            connection.execute(
                "UPDATE topics SET attributes = ?2, tags = ?3 WHERE arn = ?1",
                params![arn, attributes, tags],
            )?;
            Ok(())
        })
    }

    fn delete_topic(&self, arn: &str) -> Result<(), SnsError> {
        let arn = arn.to_owned();
        self.run(move |connection| {
            connection.execute(
                "DELETE FROM deliveries WHERE subscription_arn IN \
                 (SELECT arn FROM subscriptions WHERE topic_arn = ?1)",
                params![arn],
            )?;
            connection.execute(
                "DELETE FROM subscriptions WHERE topic_arn = ?1",
                params![arn],
            )?;
            connection.execute("DELETE FROM dedup WHERE topic_arn = ?1", params![arn])?;
            connection.execute("DELETE FROM topics WHERE arn = ?1", params![arn])?;
            drop_orphans(connection)
        })
    }

    fn put_subscription(
        &self,
        subscription: &SubscriptionRecord,
        notice: Option<Publication>,
    ) -> Result<(), SnsError> {
        let subscription = subscription.clone();
        self.run(move |connection| {
            connection
                .prepare_cached(&format!(
                    "INSERT OR REPLACE INTO subscriptions ({SUBSCRIPTION_COLUMNS}, topic_account) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))?
                .execute(params![
                    subscription.arn,
                    subscription.topic_arn,
                    subscription.owner,
                    subscription.protocol,
                    subscription.endpoint,
                    to_json(&subscription.attributes),
                    subscription.pending,
                    subscription.token,
                    subscription.authenticated,
                    subscription.created_ms,
                    topic_account(&subscription.topic_arn),
                ])?;
            if let Some(notice) = &notice {
                insert_publication(connection, notice)?;
            }
            Ok(())
        })
    }

    fn remove_subscription(&self, arn: &str, notice: Option<Publication>) -> Result<(), SnsError> {
        let arn = arn.to_owned();
        self.run(move |connection| {
            let dropped = connection.execute(
                "DELETE FROM deliveries WHERE subscription_arn = ?1",
                params![arn],
            )?;
            if dropped > 0 {
                tracing::info!(subscription = %arn, dropped, "unsubscribed: pending deliveries dropped");
            }
            connection.execute("DELETE FROM subscriptions WHERE arn = ?1", params![arn])?;
            drop_orphans(connection)?;
            if let Some(notice) = &notice {
                insert_publication(connection, notice)?;
            }
            Ok(())
        })
    }

    fn subscriptions(
        &self,
        account: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SubscriptionRecord>, SnsError> {
        let (account, after) = (account.to_owned(), after.unwrap_or_default().to_owned());
        self.run(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions \
                 WHERE (owner = ?1 OR topic_account = ?1) AND arn > ?2 ORDER BY arn LIMIT ?3"
            ))?;
            let subscriptions = statement
                .query_map(params![account, after, limit as i64], subscription_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(subscriptions)
        })
    }

    fn publish(
        &self,
        topic_arn: &str,
        publications: Vec<Publication>,
        fifo: bool,
        now_ms: i64,
        dedup_ms: i64,
    ) -> Result<Vec<Published>, SnsError> {
        let topic_arn = topic_arn.to_owned();
        self.run(move |connection| {
            let mut published = Vec::with_capacity(publications.len());
            for mut publication in publications {
                if let Some(key) = &publication.dedup_key {
                    let seen: Option<(String, Option<String>)> = connection
                        .prepare_cached(
                            "SELECT message_id, sequence FROM dedup \
                             WHERE topic_arn = ?1 AND key = ?2 AND expires_ms > ?3",
                        )?
                        .query_row(params![topic_arn, key, now_ms], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()?;
                    if let Some((message_id, sequence_number)) = seen {
                        published.push(Published {
                            message_id,
                            sequence_number,
                            duplicate: true,
                        });
                        continue;
                    }
                }
                if fifo {
                    let sequence: i64 = connection
                        .prepare_cached(
                            "UPDATE topics SET sequence = sequence + 1 WHERE arn = ?1 RETURNING sequence",
                        )?
                        .query_row(params![topic_arn], |r| r.get(0))?;
                    // 20 digits, growing: SNS's are 128-bit numbers that only grow.
                    publication.message.sequence_number = Some(format!("1{sequence:019}"));
                }
                if let Some(key) = &publication.dedup_key {
                    connection
                        .prepare_cached(
                            "INSERT OR REPLACE INTO dedup (topic_arn, key, message_id, sequence, expires_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(params![
                            topic_arn,
                            key,
                            publication.message.message_id,
                            publication.message.sequence_number,
                            now_ms + dedup_ms
                        ])?;
                }
                if !publication.deliveries.is_empty() {
                    insert_publication(connection, &publication)?;
                }
                published.push(Published {
                    message_id: publication.message.message_id.clone(),
                    sequence_number: publication.message.sequence_number.clone(),
                    duplicate: false,
                });
            }
            Ok(published)
        })
    }

    fn due(&self, now_ms: i64, limit: usize) -> Result<(Vec<Delivery>, Option<i64>), SnsError> {
        self.run(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT d.id, d.target, d.attempts, d.dead_letter_stage, m.body \
                 FROM deliveries d JOIN messages m ON m.id = d.message_id \
                 WHERE d.next_ms <= ?1 AND (d.fifo_group IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM deliveries e WHERE e.subscription_arn = d.subscription_arn \
                     AND e.fifo_group = d.fifo_group AND e.id < d.id)) \
                 ORDER BY d.next_ms, d.id LIMIT ?2",
            )?;
            let rows = statement
                .query_map(params![now_ms, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut due = Vec::with_capacity(rows.len());
            for (id, target, attempts, dead_letter_stage, body) in rows {
                let parsed = serde_json::from_str(&target).and_then(|target| {
                    serde_json::from_str::<StoredMessage>(&body).map(|m| (target, m))
                });
                match parsed {
                    Ok((target, message)) => due.push(Delivery {
                        id,
                        target,
                        message,
                        attempts,
                        dead_letter_stage,
                    }),
                    Err(error) => {
                        // Unreadable rows would block the queue forever: logged and dropped.
                        tracing::error!(%error, id, "topic store: unreadable delivery dropped");
                        connection.execute("DELETE FROM deliveries WHERE id = ?1", params![id])?;
                    }
                }
            }
            let next: Option<i64> = connection
                .prepare_cached("SELECT MIN(next_ms) FROM deliveries WHERE next_ms > ?1")?
                .query_row(params![now_ms], |r| r.get(0))?;
            Ok((due, next))
        })
    }

    fn finish(&self, id: i64) -> Result<(), SnsError> {
        self.run(move |connection| {
            let message: Option<String> = connection
                .prepare_cached("DELETE FROM deliveries WHERE id = ?1 RETURNING message_id")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            if let Some(message) = message {
                connection
                    .prepare_cached(
                        "DELETE FROM messages WHERE id = ?1 AND NOT EXISTS \
                         (SELECT 1 FROM deliveries WHERE message_id = ?1)",
                    )?
                    .execute(params![message])?;
            }
            Ok(())
        })
    }

    fn retry(
        &self,
        id: i64,
        attempts: u32,
        next_ms: i64,
        dead_letter_stage: bool,
    ) -> Result<(), SnsError> {
        self.run(move |connection| {
            connection
                .prepare_cached(
                    "UPDATE deliveries SET attempts = ?2, next_ms = ?3, dead_letter_stage = ?4 WHERE id = ?1",
                )?
                .execute(params![id, attempts, next_ms, dead_letter_stage])?;
            Ok(())
        })
    }

    fn expire(&self, now_ms: i64, pending_before_ms: i64) -> Result<Vec<String>, SnsError> {
        self.run(move |connection| {
            connection.execute("DELETE FROM dedup WHERE expires_ms <= ?1", params![now_ms])?;
            let expired: Vec<(String, String)> = {
                let mut statement = connection.prepare_cached(
                    "SELECT arn, topic_arn FROM subscriptions WHERE pending AND created_ms < ?1",
                )?;
                let rows = statement
                    .query_map(params![pending_before_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            };
            let mut topics = Vec::new();
            for (arn, topic) in expired {
                tracing::info!(subscription = %arn, "unconfirmed subscription expired");
                connection.execute(
                    "DELETE FROM deliveries WHERE subscription_arn = ?1",
                    params![arn],
                )?;
                connection.execute("DELETE FROM subscriptions WHERE arn = ?1", params![arn])?;
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
            if !topics.is_empty() {
                drop_orphans(connection)?;
            }
            Ok(topics)
        })
    }
}

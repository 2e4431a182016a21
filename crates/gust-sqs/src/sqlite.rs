//! The embedded message store: one SQLite database (WAL, `synchronous=FULL`) written by one
//! thread with group commit (`gust_store::group_commit`): an acknowledged send is on disk,
//! and sends that arrive together share a commit.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use gust_store::group_commit::{GroupCommit, RunError};
use rusqlite::{params, Connection, OptionalExtension};

use crate::attributes::QueueConfig;
use crate::error::SqsError;
use crate::message::Attributes;
use crate::store::{
    new_token, Claim, Claimed, Counts, NewMessage, QueueRecord, QueueStore, Receipt, Stored,
    StoredMessage,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    purged_ms INTEGER NOT NULL DEFAULT 0,
    deleted_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS queues_live ON queues(account, name) WHERE deleted_ms IS NULL;
CREATE INDEX IF NOT EXISTS queues_deleted ON queues(account, name, deleted_ms);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT,
    system_attributes TEXT,
    md5_body TEXT NOT NULL,
    md5_attributes TEXT,
    sender TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    visible_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_receive_ms INTEGER,
    receipt TEXT,
    group_id TEXT,
    dedup_id TEXT,
    source_queue_id INTEGER
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages(queue_id, visible_ms);
CREATE INDEX IF NOT EXISTS messages_queue ON messages(queue_id);
CREATE INDEX IF NOT EXISTS messages_sent ON messages(queue_id, sent_ms);
CREATE TABLE IF NOT EXISTS dedup (
    queue_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (queue_id, key)
);
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup(expires_ms);
";

/// The SQLite message store.
#[derive(Debug)]
pub struct SqliteQueues {
    writer: GroupCommit,
}

impl SqliteQueues {
    /// Opens (creating) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, SqsError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA)?;
        let writer = GroupCommit::start(connection, "gust-sqs-writer")
            .map_err(|e| SqsError::Internal(e.to_string()))?;
        Ok(SqliteQueues { writer })
    }

    /// Runs `job` in the writer's next transaction and waits for its commit.
    fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<R, SqsError> + Send + 'static,
    ) -> Result<R, SqsError> {
        self.writer.run(job).map_err(|error| match error {
            RunError::Job(error) => error,
            RunError::Commit(cause) => SqsError::Internal(cause),
            RunError::Stopped => SqsError::Internal("the queue store has stopped".into()),
        })
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

fn attributes_json(attributes: &Attributes) -> Option<String> {
    (!attributes.is_empty()).then(|| to_json(attributes))
}

fn parse_attributes(text: Option<String>) -> Attributes {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

const QUEUE_COLUMNS: &str =
    "id, account, name, attributes, tags, created_ms, modified_ms, purged_ms";

fn queue_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRecord> {
    let attributes: String = row.get(3)?;
    let tags: String = row.get(4)?;
    Ok(QueueRecord {
        id: row.get(0)?,
        account: row.get(1)?,
        name: row.get(2)?,
        config: QueueConfig::from_map(serde_json::from_str(&attributes).unwrap_or_default()),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_ms: row.get(5)?,
        modified_ms: row.get(6)?,
        purged_ms: row.get(7)?,
    })
}

fn live_queue(
    connection: &Connection,
    account: &str,
    name: &str,
) -> Result<Option<QueueRecord>, SqsError> {
    Ok(connection
        .prepare_cached(&format!(
            "SELECT {QUEUE_COLUMNS} FROM queues WHERE account = ?1 AND name = ?2 AND deleted_ms IS NULL"
        ))?
        .query_row(params![account, name], queue_row)
        .optional()?)
}

const MESSAGE_COLUMNS: &str = "seq, message_id, body, attributes, system_attributes, md5_body, \
     md5_attributes, sender, sent_ms, receive_count, first_receive_ms, group_id, dedup_id, receipt, queue_id";

/// A message row, with its queue id and receipt token.
struct Row {
    message: StoredMessage,
    queue_id: i64,
}

fn message_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        message: StoredMessage {
            seq: row.get(0)?,
            message_id: row.get(1)?,
            body: row.get(2)?,
            attributes: parse_attributes(row.get(3)?),
            system_attributes: parse_attributes(row.get(4)?),
            md5_of_body: row.get(5)?,
            md5_of_attributes: row.get(6)?,
            sender: row.get(7)?,
            sent_ms: row.get(8)?,
            receive_count: row.get(9)?,
            first_receive_ms: row.get(10)?,
            group_id: row.get(11)?,
            deduplication_id: row.get(12)?,
            receipt_handle: row.get::<_, Option<String>>(13)?.unwrap_or_default(),
        },
        queue_id: row.get(14)?,
    })
}

/// Claims one message: a new receipt, one more receive, invisible until `visible_ms`.
fn take(connection: &Connection, row: Row, claim: &Claim) -> Result<StoredMessage, SqsError> {
    let token = new_token();
    connection
        .prepare_cached(
            "UPDATE messages SET receive_count = receive_count + 1, \
             first_receive_ms = COALESCE(first_receive_ms, ?2), visible_ms = ?3, receipt = ?4 \
             WHERE seq = ?1",
        )?
        .execute(params![
            row.message.seq,
            claim.now_ms,
            claim.now_ms + claim.visibility_ms,
            token
        ])?;
    let mut message = row.message;
    message.receive_count += 1;
    message.first_receive_ms.get_or_insert(claim.now_ms);
    message.receipt_handle = Receipt {
        queue_id: row.queue_id,
        seq: message.seq,
        token,
    }
    .encode();
    Ok(message)
}

fn move_to_dead_letter(
    connection: &Connection,
    seq: i64,
    source: i64,
    dead_letter: i64,
    now_ms: i64,
) -> Result<(), SqsError> {
    connection
        .prepare_cached(
            "UPDATE messages SET queue_id = ?2, source_queue_id = ?3, visible_ms = ?4, receipt = NULL \
             WHERE seq = ?1",
        )?
        .execute(params![seq, dead_letter, source, now_ms])?;
    Ok(())
}

fn claim_in(connection: &Connection, queue_id: i64, claim: &Claim) -> Result<Claimed, SqsError> {
    let mut claimed = Claimed::default();
    // FIFO walks the queue in order, skipping message groups with a message in flight
    // (received and not yet visible again: a message only delayed blocks nothing); the
    // skipping happens inside SQLite. A standard queue takes whatever has been visible
    // longest.
    let query = if claim.fifo {
        format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE queue_id = ?1 AND visible_ms <= ?2 \
             AND sent_ms > ?3 AND seq > ?4 AND (group_id IS NULL OR group_id NOT IN \
             (SELECT group_id FROM messages WHERE queue_id = ?1 AND visible_ms > ?2 \
             AND receive_count > 0 AND group_id IS NOT NULL)) ORDER BY seq LIMIT ?5"
        )
    } else {
        format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE queue_id = ?1 AND visible_ms <= ?2 \
             AND sent_ms > ?3 AND seq > ?4 ORDER BY visible_ms, seq LIMIT ?5"
        )
    };
    let mut after = 0i64;
    'scan: loop {
        // A standard queue takes what it returns; a FIFO scan may skip blocked groups.
        let page = if claim.fifo {
            64
        } else {
            (claim.max - claimed.messages.len()) as i64
        };
        let rows: Vec<Row> = {
            let mut statement = connection.prepare_cached(&query)?;
            let rows = statement
                .query_map(
                    params![queue_id, claim.now_ms, claim.expired_before_ms, after, page],
                    message_row,
                )?
                .collect::<Result<_, _>>()?;
            rows
        };
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if claim.fifo {
                after = row.message.seq;
            }
            if let Some((dead_letter, max)) = claim.redrive {
                if row.message.receive_count >= max {
                    move_to_dead_letter(
                        connection,
                        row.message.seq,
                        queue_id,
                        dead_letter,
                        claim.now_ms,
                    )?;
                    claimed.moved_to_dead_letter += 1;
                    continue;
                }
            }
            // Later messages of a FIFO group claimed now may come in this same receive.
            claimed.messages.push(take(connection, row, claim)?);
            if claimed.messages.len() >= claim.max {
                break 'scan;
            }
        }
        // A standard queue's claimed rows are no longer visible, so its next page starts
        // over (`after` stays 0); a FIFO scan continues after the last row seen.
    }
    claimed.next_visible_ms = connection
        .prepare_cached(
            "SELECT MIN(visible_ms) FROM messages WHERE queue_id = ?1 AND visible_ms > ?2",
        )?
        .query_row(params![queue_id, claim.now_ms], |r| r.get(0))?;
    Ok(claimed)
}

impl QueueStore for SqliteQueues {
    fn create_queue(
        &self,
        account: &str,
        name: &str,
        config: &QueueConfig,
        tags: &BTreeMap<String, String>,
        now_ms: i64,
        reuse_after_ms: i64,
    ) -> Result<Result<QueueRecord, QueueRecord>, SqsError> {
        let (account, name, attributes, tags) = (
            account.to_owned(),
            name.to_owned(),
            to_json(&config.map),
            to_json(tags),
        );
        self.run(move |connection| {
            if let Some(existing) = live_queue(connection, &account, &name)? {
                return Ok(Err(existing));
            }
            let recently: Option<i64> = connection
                .prepare_cached(
                    "SELECT MAX(deleted_ms) FROM queues WHERE account = ?1 AND name = ?2 AND deleted_ms IS NOT NULL",
                )?
                .query_row(params![account, name], |r| r.get(0))?;
            if recently.is_some_and(|at| now_ms - at < reuse_after_ms) {
                return Err(SqsError::QueueDeletedRecently);
            }
            connection
                .prepare_cached(
                    "INSERT INTO queues (account, name, attributes, tags, created_ms, modified_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                )?
                .execute(params![account, name, attributes, tags, now_ms])?;
            live_queue(connection, &account, &name)?
                .map(Ok)
                .ok_or_else(|| SqsError::Internal("created queue vanished".into()))
        })
    }

    fn queue(&self, account: &str, name: &str) -> Result<Option<QueueRecord>, SqsError> {
        let (account, name) = (account.to_owned(), name.to_owned());
        self.run(move |connection| live_queue(connection, &account, &name))
    }

    fn queues(&self, account: &str, prefix: &str) -> Result<Vec<QueueRecord>, SqsError> {
        let (account, prefix) = (account.to_owned(), prefix.to_owned());
        self.run(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {QUEUE_COLUMNS} FROM queues WHERE account = ?1 AND deleted_ms IS NULL \
                 AND substr(name, 1, length(?2)) = ?2 ORDER BY name"
            ))?;
            let queues = statement
                .query_map(params![account, prefix], queue_row)?
                .collect::<Result<_, _>>()?;
            Ok(queues)
        })
    }

    fn delete_queue(&self, queue_id: i64, now_ms: i64) -> Result<(), SqsError> {
        self.run(move |connection| {
            connection.execute(
                "UPDATE queues SET deleted_ms = ?2 WHERE id = ?1 AND deleted_ms IS NULL",
                params![queue_id, now_ms],
            )?;
            connection.execute(
                "DELETE FROM messages WHERE queue_id = ?1",
                params![queue_id],
            )?;
            connection.execute("DELETE FROM dedup WHERE queue_id = ?1", params![queue_id])?;
            Ok(())
        })
    }

    fn update_queue(
        &self,
        queue_id: i64,
        config: &QueueConfig,
        tags: &BTreeMap<String, String>,
        now_ms: i64,
        attributes_changed: bool,
    ) -> Result<(), SqsError> {
        let (attributes, tags) = (to_json(&config.map), to_json(tags));
        self.run(move |connection| {
            connection.execute(
                "UPDATE queues SET attributes = ?2, tags = ?3, \
                 modified_ms = CASE WHEN ?5 THEN ?4 ELSE modified_ms END WHERE id = ?1",
                params![queue_id, attributes, tags, now_ms, attributes_changed],
            )?;
            Ok(())
        })
    }

    fn send(
        &self,
        queue_id: i64,
        messages: Vec<NewMessage>,
        dedup_ms: i64,
    ) -> Result<Vec<Stored>, SqsError> {
        self.run(move |connection| {
            // A send racing the queue's deletion must not leave orphan messages.
            let live: Option<i64> = connection
                .prepare_cached("SELECT 1 FROM queues WHERE id = ?1 AND deleted_ms IS NULL")?
                .query_row(params![queue_id], |r| r.get(0))
                .optional()?;
            if live.is_none() {
                return Err(SqsError::QueueDoesNotExist);
            }
            let mut stored = Vec::with_capacity(messages.len());
            for message in messages {
                if let Some(key) = &message.dedup_key {
                    let seen: Option<(String, i64)> = connection
                        .prepare_cached(
                            "SELECT message_id, seq FROM dedup WHERE queue_id = ?1 AND key = ?2 AND expires_ms > ?3",
                        )?
                        .query_row(params![queue_id, key, message.sent_ms], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()?;
                    if let Some((message_id, seq)) = seen {
                        stored.push(Stored {
                            message_id,
                            seq,
                            duplicate: true,
                        });
                        continue;
                    }
                }
                connection
                    .prepare_cached(
                        "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, \
                         md5_body, md5_attributes, sender, sent_ms, visible_ms, group_id, dedup_id) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )?
                    .execute(params![
                        queue_id,
                        message.message_id,
                        message.body,
                        attributes_json(&message.attributes),
                        attributes_json(&message.system_attributes),
                        message.md5_of_body,
                        message.md5_of_attributes,
                        message.sender,
                        message.sent_ms,
                        message.visible_ms,
                        message.group_id,
                        message.deduplication_id,
                    ])?;
                let seq = connection.last_insert_rowid();
                if let Some(key) = &message.dedup_key {
                    connection
                        .prepare_cached(
                            "INSERT OR REPLACE INTO dedup (queue_id, key, message_id, seq, expires_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(params![
                            queue_id,
                            key,
                            message.message_id,
                            seq,
                            message.sent_ms + dedup_ms
                        ])?;
                }
                stored.push(Stored {
                    message_id: message.message_id,
                    seq,
                    duplicate: false,
                });
            }
            Ok(stored)
        })
    }

    fn claim(&self, queue_id: i64, claim: &Claim) -> Result<Claimed, SqsError> {
        let claim = claim.clone();
        self.run(move |connection| claim_in(connection, queue_id, &claim))
    }

    fn delete_messages(&self, queue_id: i64, receipts: &[Receipt]) -> Result<(), SqsError> {
        let receipts = receipts.to_vec();
        self.run(move |connection| {
            let mut statement = connection.prepare_cached(
                "DELETE FROM messages WHERE seq = ?1 AND queue_id = ?2 AND receipt = ?3",
            )?;
            for receipt in &receipts {
                statement.execute(params![receipt.seq, queue_id, receipt.token])?;
            }
            Ok(())
        })
    }

    fn change_visibility(
        &self,
        queue_id: i64,
        changes: &[(Receipt, i64)],
        now_ms: i64,
    ) -> Result<Vec<Result<(), SqsError>>, SqsError> {
        let changes = changes.to_vec();
        self.run(move |connection| {
            let mut results = Vec::with_capacity(changes.len());
            for (receipt, visible_ms) in &changes {
                let current: Option<(Option<String>, i64)> = connection
                    .prepare_cached(
                        "SELECT receipt, visible_ms FROM messages WHERE seq = ?1 AND queue_id = ?2",
                    )?
                    .query_row(params![receipt.seq, queue_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                let result = match current {
                    Some((Some(token), visible)) if token == receipt.token => {
                        if visible <= now_ms {
                            Err(SqsError::MessageNotInflight)
                        } else {
                            connection
                                .prepare_cached(
                                    "UPDATE messages SET visible_ms = ?2 WHERE seq = ?1",
                                )?
                                .execute(params![receipt.seq, visible_ms])?;
                            Ok(())
                        }
                    }
                    _ => Err(SqsError::invalid_value(
                        receipt.encode(),
                        "ReceiptHandle",
                        "Message does not exist or is not available for visibility timeout change.",
                    )),
                };
                results.push(result);
            }
            Ok(results)
        })
    }

    fn purge(&self, queue_id: i64, now_ms: i64, every_ms: i64) -> Result<bool, SqsError> {
        self.run(move |connection| {
            let last: i64 = connection.query_row(
                "SELECT purged_ms FROM queues WHERE id = ?1",
                params![queue_id],
                |r| r.get(0),
            )?;
            if last > 0 && now_ms - last < every_ms {
                return Ok(false);
            }
            connection.execute(
                "DELETE FROM messages WHERE queue_id = ?1 AND sent_ms <= ?2",
                params![queue_id, now_ms],
            )?;
            connection.execute(
                "UPDATE queues SET purged_ms = ?2 WHERE id = ?1",
                params![queue_id, now_ms],
            )?;
            Ok(true)
        })
    }

    fn counts(
        &self,
        queue_id: i64,
        now_ms: i64,
        expired_before_ms: i64,
    ) -> Result<Counts, SqsError> {
        self.run(move |connection| {
            Ok(connection.query_row(
                "SELECT COALESCE(SUM(visible_ms <= ?2), 0), \
                 COALESCE(SUM(visible_ms > ?2 AND receive_count > 0), 0), \
                 COALESCE(SUM(visible_ms > ?2 AND receive_count = 0), 0) \
                 FROM messages WHERE queue_id = ?1 AND sent_ms > ?3",
                params![queue_id, now_ms, expired_before_ms],
                |r| {
                    Ok(Counts {
                        visible: r.get(0)?,
                        in_flight: r.get(1)?,
                        delayed: r.get(2)?,
                    })
                },
            )?)
        })
    }

    fn move_messages(
        &self,
        from: i64,
        destination: Option<i64>,
        after_seq: i64,
        up_to_seq: i64,
        limit: usize,
        now_ms: i64,
    ) -> Result<(usize, i64), SqsError> {
        self.run(move |connection| {
            let live: HashSet<i64> = {
                let mut statement =
                    connection.prepare_cached("SELECT id FROM queues WHERE deleted_ms IS NULL")?;
                let ids = statement
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                ids
            };
            let rows: Vec<(i64, Option<i64>)> = {
                let mut statement = connection.prepare_cached(
                    "SELECT seq, source_queue_id FROM messages WHERE queue_id = ?1 AND seq > ?4 AND seq <= ?2 ORDER BY seq LIMIT ?3",
                )?;
                let rows = statement
                    .query_map(params![from, up_to_seq, limit as i64, after_seq], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?;
                rows
            };
            let (mut moved, mut last) = (0, after_seq);
            for (seq, source) in rows {
                last = seq;
                // A message whose source queue is gone stays in the dead-letter queue.
                let target = destination.or(source).filter(|id| live.contains(id));
                if let Some(target) = target {
                    connection
                        .prepare_cached(
                            "UPDATE messages SET queue_id = ?2, source_queue_id = NULL, visible_ms = ?3, \
                             receive_count = 0, first_receive_ms = NULL, receipt = NULL WHERE seq = ?1",
                        )?
                        .execute(params![seq, target, now_ms])?;
                    moved += 1;
                }
            }
            Ok((moved, last))
        })
    }

    fn release_in_flight(&self, queue_id: i64, now_ms: i64) -> Result<usize, SqsError> {
        self.run(move |connection| {
            Ok(connection.execute(
                "UPDATE messages SET visible_ms = ?2 WHERE queue_id = ?1 AND receive_count > 0 AND visible_ms > ?2",
                params![queue_id, now_ms],
            )?)
        })
    }

    fn extent(&self, queue_id: i64) -> Result<(i64, i64), SqsError> {
        self.run(move |connection| {
            Ok(connection.query_row(
                "SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM messages WHERE queue_id = ?1",
                params![queue_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
    }

    fn expire(&self, now_ms: i64) -> Result<usize, SqsError> {
        self.run(move |connection| {
            let queues: Vec<(i64, String)> = {
                let mut statement = connection
                    .prepare_cached("SELECT id, attributes FROM queues WHERE deleted_ms IS NULL")?;
                let queues = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                queues
            };
            let mut removed = 0;
            for (id, attributes) in queues {
                let config =
                    QueueConfig::from_map(serde_json::from_str(&attributes).unwrap_or_default());
                let cutoff = now_ms - i64::from(config.message_retention_period) * 1000;
                removed += connection
                    .prepare_cached("DELETE FROM messages WHERE queue_id = ?1 AND sent_ms <= ?2")?
                    .execute(params![id, cutoff])?;
            }
            connection.execute("DELETE FROM dedup WHERE expires_ms <= ?1", params![now_ms])?;
            connection.execute(
                "DELETE FROM queues WHERE deleted_ms IS NOT NULL AND deleted_ms < ?1",
                params![now_ms - 3_600_000],
            )?;
            Ok(removed)
        })
    }
}

//! One SQLite connection written by one thread with group commit, for the services whose
//! every acknowledged write must be on disk (queues, topics). Callers hand the writer a job
//! and block until the transaction holding it is committed; jobs that arrive while a commit
//! is in progress share the next one, which is what makes many small durable writes cheap.
//! Each job runs in its own savepoint: a failing (or panicking) job rolls back alone.

use std::sync::mpsc;
use std::sync::Mutex;

use rusqlite::Connection;

/// Jobs committed together at most.
const GROUP_MAX: usize = 512;

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// Why a job's result is not the job's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError<E> {
    /// The job failed (its changes were rolled back).
    Job(E),
    /// The job succeeded but the transaction holding it did not commit.
    Commit(String),
    /// The writer has stopped (a job panicked, or the thread is gone).
    Stopped,
}

/// The writer: one thread owning the connection.
#[derive(Debug)]
pub struct GroupCommit {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl GroupCommit {
    /// Starts a writer thread named `name` for `connection`.
    pub fn start(connection: Connection, name: &str) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let label = name.to_owned();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || writer(connection, receiver, &label))?;
        Ok(GroupCommit {
            jobs: Mutex::new(sender),
        })
    }

    /// Runs `job` in the writer's next transaction and waits for its commit.
    pub fn run<R: Send + 'static, E: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, RunError<E>> {
        let (reply_to, reply) = mpsc::sync_channel::<Result<R, RunError<E>>>(1);
        let boxed: Job = Box::new(move |connection| {
            let result = job(connection);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let outcome = match (committed, result) {
                    (_, Err(error)) => Err(RunError::Job(error)),
                    (Err(cause), Ok(_)) => Err(RunError::Commit(cause)),
                    (Ok(()), Ok(value)) => Ok(value),
                };
                let _ = reply_to.send(outcome);
            });
            (ok, reply)
        });
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(boxed)
            .map_err(|_| RunError::Stopped)?;
        reply.recv().map_err(|_| RunError::Stopped)?
    }
}

fn writer(connection: Connection, jobs: mpsc::Receiver<Job>, name: &str) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(%error, store = name, "cannot begin a transaction");
            // Every job of the group fails (its caller sees the store stop); nothing ran.
            drop(batch);
            continue;
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut aborted = false;
        for job in batch {
            // SQLite rolls a whole transaction back on some errors (I/O, a full disk): the
            // jobs after that would run outside it, so they do not run (their callers see
            // the store stop) and the ones before fail with the commit.
            if aborted {
                drop(job);
                continue;
            }
            let _ = connection.execute_batch("SAVEPOINT job");
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&connection)));
            match outcome {
                Ok((true, reply)) => {
                    let _ = connection.execute_batch("RELEASE job");
                    replies.push(reply);
                }
                Ok((false, reply)) => {
                    let _ = connection.execute_batch("ROLLBACK TO job; RELEASE job");
                    replies.push(reply);
                }
                Err(_) => {
                    // The job's reply channel went with it: its caller sees the store stop.
                    tracing::error!(store = name, "a job panicked; its changes are rolled back");
                    let _ = connection.execute_batch("ROLLBACK TO job; RELEASE job");
                }
            }
            aborted = connection.is_autocommit();
        }
        let committed = if aborted {
            tracing::error!(store = name, "the transaction was rolled back by SQLite");
            Err("the transaction was rolled back".to_owned())
        } else {
            connection.execute_batch("COMMIT").map_err(|error| {
                tracing::error!(%error, store = name, "commit failed");
                let _ = connection.execute_batch("ROLLBACK");
                error.to_string()
            })
        };
        for reply in replies {
            reply(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let connection = Connection::open(dir.path().join("t.db")).unwrap();
        connection
            .execute_batch("CREATE TABLE t (v INTEGER)")
            .unwrap();
        let writer = std::sync::Arc::new(GroupCommit::start(connection, "test").unwrap());
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let writer = std::sync::Arc::clone(&writer);
                std::thread::spawn(move || {
                    writer.run(move |c| {
                        c.execute("INSERT INTO t VALUES (?1)", [i])?;
                        if i % 2 == 1 {
                            return Err(rusqlite::Error::InvalidQuery);
                        }
                        Ok(i)
                    })
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
        let count: i64 = writer
            .run(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(count, 10, "only the successful jobs' rows are there");
        let panicked = writer.run(|_| -> Result<(), rusqlite::Error> { panic!("boom") });
        assert_eq!(panicked, Err(RunError::Stopped));
        assert!(
            writer.run(|_| Ok::<_, rusqlite::Error>(())).is_ok(),
            "the writer goes on"
        );
    }
}

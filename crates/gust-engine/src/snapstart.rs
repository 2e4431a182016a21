//! SnapStart (`SnapStart.ApplyOn: PublishedVersions`): for a published version with
//! SnapStart on, environments are initialised ahead of demand — INIT and the runtime's
//! before-snapshot hooks run, each in its own sandbox exactly as a cold start's
//! (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`) — and then wait, frozen, at the snapshot
//! point (the runtime's `restore/next`). A cold start of the version takes one: it is
//! thawed and *restored* (the runtime re-seeds its randomness and runs its after-restore
//! hooks), and its first invocation reports `Restore Duration` instead of
//! `Init Duration`. No process is ever shared between environments: a "snapshot" here is
//! an initialised environment kept ready, not a copy of one.
//!
//! Each SnapStart version pool keeps [`wanted`] snapshot environments ready (one, more
//! with the recent claim rate; none once the version has gone the idle timeout without a
//! claim), started by the provisioner task through the same INIT bound as provisioned
//! concurrency, from free memory only (they evict nothing), and dropped with the version.
//! Ready ones are idle environments to the rest of the engine: the idle reaper shuts them
//! down after the idle timeout, and eviction takes them after on-demand idle ones.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gust_model::FunctionConfig;
use gust_runtime::RestoreOutcome;

use crate::environment::{EnvState, Environment, Stop};
use crate::pools::{PoolKey, MAX_ENVIRONMENT_AGE};
use crate::startup::InitFailure;
use crate::{lock, ms, platform, platform_error, Engine, FREEZE_AFTER, SHUTDOWN_GRACE};

/// Claims counted for sizing are those of this last window.
const CLAIM_WINDOW: Duration = Duration::from_secs(10);
/// One more ready snapshot environment per this many claims in the window.
const CLAIMS_PER_EXTRA: usize = 5;
/// Ready snapshot environments per version at most.
const MAX_READY: usize = 4;
/// Snapshot INITs under way at once per engine.
const MAX_STARTING: u32 = 2;
/// How long a restore (the after-restore hooks) may take.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a failed snapshot INIT the next is tried ahead of demand.
const RETRY_AFTER: Duration = Duration::from_secs(300);
/// `errorType` of a restore whose after-restore hook failed.
pub(crate) const RESTORE_ERROR: &str = "Runtime.AfterRestoreError";

/// How many snapshot environments a version keeps ready, given the claims of the last
/// [`CLAIM_WINDOW`] and how long it has been `quiet` (since its last claim, or since
/// SnapStart was seen on for it if it was never claimed): none once that reaches the
/// `idle_timeout`, as an idle environment would be reaped by then.
pub(crate) fn wanted(recent_claims: usize, quiet: Duration, idle_timeout: Duration) -> usize {
    if quiet >= idle_timeout {
        return 0;
    }
    (1 + recent_claims / CLAIMS_PER_EXTRA).min(MAX_READY)
}

/// A version pool's snapshot environments.
#[derive(Debug, Default)]
pub(crate) struct SnapshotPool {
    /// The version has SnapStart on (seen in its configuration).
    pub(crate) on: bool,
    /// Initialised, frozen at the snapshot point.
    pub(crate) ready: Vec<Arc<Environment>>,
    /// Snapshot INITs under way.
    starting: u32,
    /// When a snapshot's INIT last failed: none is made ahead for [`RETRY_AFTER`] (cold
    /// starts still try; a published version's code does not change, but a failure may
    /// have been passing: memory, the host).
    failed: Option<Instant>,
    /// When environments were claimed recently.
    claims: VecDeque<Instant>,
    /// When an environment was last claimed, or SnapStart first seen on (see [`wanted`]).
    active: Option<Instant>,
}

impl SnapshotPool {
    fn recent_claims(&mut self, now: Instant) -> usize {
        while self
            .claims
            .front()
            .is_some_and(|at| now.duration_since(*at) > CLAIM_WINDOW)
        {
            self.claims.pop_front();
        }
        self.claims.len()
    }

    /// A configuration of the version was read (at the current deletions count): with
    /// SnapStart on, snapshots are kept ready from now on. `true` when that is new.
    pub(crate) fn saw(&mut self, config: &FunctionConfig, now: Instant) -> bool {
        if !config.snap_start_on() || self.on {
            return false;
        }
        self.on = true;
        self.active = Some(now);
        true
    }

    /// How many more to start now.
    fn missing(&mut self, now: Instant, idle_timeout: Duration) -> usize {
        if !self.on
            || self
                .failed
                .is_some_and(|at| now.duration_since(at) < RETRY_AFTER)
        {
            return 0;
        }
        let quiet = self
            .active
            .map_or(Duration::MAX, |at| now.saturating_duration_since(at));
        let want = wanted(self.recent_claims(now), quiet, idle_timeout);
        want.saturating_sub(self.ready.len() + self.starting as usize)
    }
}

/// How a restore went.
pub(crate) enum Restored {
    Ready(Arc<Environment>),
    /// An after-restore hook failed (the function's own error).
    Failed(InitFailure),
    /// The restore did not complete for a reason not the hooks' (the runtime died, it
    /// timed out): a snapshot taken ahead is then given up for an ordinary cold start.
    Lost(InitFailure),
}

impl Engine {
    /// A version was published (or found at start-up): if it has SnapStart on, its
    /// snapshot environments are started now, ahead of its first invocation.
    pub fn version_published(&self, function: &gust_model::FunctionName, version: u64) {
        let engine = self.clone();
        let key = (
            function.clone(),
            gust_model::FunctionVersion::Published(version),
        );
        tokio::spawn(async move {
            // Reading the configuration marks the pool (see `saw_config`).
            let _ = engine.config(&key).await;
        });
    }

    /// Finds the SnapStart versions in the store (at server start) and starts their
    /// snapshot environments.
    pub async fn discover_snap_start(&self) {
        let store = Arc::clone(&self.inner.store);
        let found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let Ok(page) = store.list_functions(marker.as_deref(), 100) else {
                    break;
                };
                // `$LATEST`'s setting says nothing of its published versions': each is looked at.
                for config in &page.functions {
                    for version in store.list_versions(&config.name).unwrap_or_default() {
                        if version.snap_start_on() {
                            if let gust_model::FunctionVersion::Published(n) = version.version {
                                found.push((config.name.clone(), n));
                            }
                        }
                    }
                }
                match page.next_marker {
                    Some(next) => marker = Some(next),
                    None => break,
                }
            }
            found
        })
        .await
        .unwrap_or_default();
        for (name, version) in found {
            self.version_published(&name, version);
        }
    }

    /// One pass of the provisioner over snapshot environments: drop dead or old ready
    /// ones, start missing ones.
    pub(crate) fn reconcile_snapshots(&self) {
        let now = Instant::now();
        let idle_timeout = self.inner.config.idle_timeout;
        let mut retire = Vec::new();
        let mut start = Vec::new();
        {
            let mut pools = lock(&self.inner.pools);
            let starting: u32 = pools.values().map(|p| p.snapshots.starting).sum();
            let mut budget = MAX_STARTING.saturating_sub(starting);
            for (key, pool) in pools.iter_mut() {
                let snapshots = &mut pool.snapshots;
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut snapshots.ready)
                    .into_iter()
                    .partition(|e| e.has_exited() || e.age() >= MAX_ENVIRONMENT_AGE);
                snapshots.ready = kept;
                retire.extend(gone);
                let n = (snapshots.missing(now, idle_timeout) as u32).min(budget);
                budget -= n;
                snapshots.starting += n;
                for _ in 0..n {
                    start.push(key.clone());
                }
            }
        }
        for env in retire {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        for key in start {
            let engine = self.clone();
            tokio::spawn(async move { engine.snapshot_one(key).await });
        }
    }

    /// Starts one snapshot environment of `key` and keeps it ready.
    async fn snapshot_one(&self, key: PoolKey) {
        let started = self.start_snapshot(&key).await;
        let mut surplus = None;
        // Another pass at once only after one was made: one that found no room (or failed)
        // waits for the periodic pass, or it would spin.
        let made = matches!(started, Ok(Some(_)));
        {
            let mut pools = lock(&self.inner.pools);
            match pools.get_mut(&key) {
                // The version is gone: what was started is not wanted.
                None => surplus = started.ok().flatten(),
                Some(pool) => {
                    let snapshots = &mut pool.snapshots;
                    snapshots.starting = snapshots.starting.saturating_sub(1);
                    match started {
                        Ok(Some(env)) => {
                            let closing = self
                                .inner
                                .closing
                                .load(std::sync::atomic::Ordering::Relaxed);
                            if !closing && env.transition(EnvState::Idle).is_ok() {
                                env.touch();
                                let period = env.idle_begins();
                                snapshots.ready.push(Arc::clone(&env));
                                // Frozen at the snapshot point: it uses no CPU until restored.
                                env.freeze_later(period, FREEZE_AFTER);
                            } else {
                                surplus = Some(env);
                            }
                        }
                        Ok(None) => {}
                        Err(()) => snapshots.failed = Some(Instant::now()),
                    }
                }
            }
        }
        if let Some(env) = surplus {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        if made {
            self.inner.provisioner.notify_one();
        }
    }

    /// INIT of one snapshot environment: `Ok(None)` when there is no room for it now (or
    /// the version is gone), `Err` when its INIT failed.
    async fn start_snapshot(&self, key: &PoolKey) -> Result<Option<Arc<Environment>>, ()> {
        let config = match self.config(key).await {
            Ok((config, generation)) if config.snap_start_on() => Ok((config, generation)),
            Ok(_) | Err(crate::EngineError::NotFound(_)) => Err(()),
            Err(_) => return Ok(None),
        };
        let Ok((config, generation)) = config else {
            // The version is gone (or has SnapStart off): no more snapshots for it.
            if let Some(pool) = lock(&self.inner.pools).get_mut(key) {
                pool.snapshots.on = false;
            }
            return Ok(None);
        };
        let Ok(_permit) = self.inner.inits.acquire().await else {
            return Ok(None);
        };
        if self
            .inner
            .closing
            .load(std::sync::atomic::Ordering::Relaxed)
            || !lock(&self.inner.pools).contains_key(key)
        {
            return Ok(None);
        }
        // Free memory only: a snapshot made ahead of demand does not evict warm
        // environments (which would then evict it back at their next cold start).
        let Some(lease) = self
            .inner
            .config
            .capacity
            .try_take(u64::from(config.memory_mb))
        else {
            tracing::debug!(function = %config.name, "no memory for a snapshot environment yet");
            return Ok(None);
        };
        self.inner
            .live
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self
            .start_environment(&config, generation, lease, None, true)
            .await
        {
            Ok(Ok(env)) => Ok(Some(env)),
            outcome => {
                self.inner
                    .live
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                match outcome {
                    Err(crate::EngineError::Internal(error)) => {
                        tracing::warn!(function = %config.name, %error, "cannot start a snapshot environment; retrying");
                        Ok(None)
                    }
                    _ => {
                        tracing::warn!(function = %config.name, "snapshot environment failed INIT");
                        Err(())
                    }
                }
            }
        }
    }

    /// A ready snapshot environment of `config`'s version, taken (and thawed) for a cold
    /// start.
    pub(crate) fn take_snapshot(
        &self,
        config: &FunctionConfig,
        generation: u64,
    ) -> Option<Arc<Environment>> {
        let mut stale = Vec::new();
        let found = {
            let mut pools = lock(&self.inner.pools);
            let pool = pools.get_mut(&(config.name.clone(), config.version))?;
            let snapshots = &mut pool.snapshots;
            let now = Instant::now();
            snapshots.claims.push_back(now);
            snapshots.active = Some(now);
            crate::pools::take_usable(&mut snapshots.ready, config, generation, true, &mut stale)
        };
        for env in stale {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        if let Some(env) = &found {
            env.idle_ends();
        }
        // A replacement starts in the background.
        self.inner.provisioner.notify_one();
        found
    }

    /// Restores a snapshot environment: RESTORE_START, the runtime's after-restore hooks,
    /// RESTORE_REPORT (in the first invocation's log). A failed restore retires the
    /// environment; a hook's failure fails the invocation ([`Restored::Failed`]), any other
    /// ([`Restored::Lost`]) lets a caller that took a ready snapshot cold-start instead.
    pub(crate) async fn restore(
        &self,
        config: &FunctionConfig,
        env: Arc<Environment>,
        runtime: &str,
    ) -> Restored {
        env.collector
            .begin(platform::restore_start(config, runtime))
            .await;
        let started = Instant::now();
        let outcome = env.api.restore();
        let outcome = tokio::select! {
            biased;
            outcome = outcome => match outcome {
                Ok(outcome) => Ok(outcome),
                Err(_) => Err("Runtime.Unknown"),
            },
            _ = env.exited() => Err("Runtime.ExitError"),
            () = tokio::time::sleep(RESTORE_TIMEOUT) => Err("Sandbox.Timedout"),
        };
        let duration = started.elapsed();
        let (body, kind, lost) = match outcome {
            Ok(RestoreOutcome::Ready) => {
                env.collector
                    .platform(platform::restore_report(config, duration, None));
                env.set_restore_duration(duration);
                return Restored::Ready(env);
            }
            Ok(RestoreOutcome::Failed { body, error_type }) => {
                let kind = error_type.unwrap_or_else(|| RESTORE_ERROR.to_owned());
                (body, kind, false)
            }
            Err(kind) => (
                platform_error(
                    kind,
                    format!(
                        "Error: the runtime did not complete its restore ({:.2} ms)",
                        ms(duration)
                    ),
                ),
                kind.to_owned(),
                true,
            ),
        };
        env.collector
            .platform(platform::restore_report(config, duration, Some(&kind)));
        self.shut_down(&env, Stop::Kill);
        let failure = InitFailure {
            body,
            environment: Some(env),
            collector: None,
        };
        if lost {
            Restored::Lost(failure)
        } else {
            Restored::Failed(failure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn one_ready_then_more_with_the_claim_rate() {
        let quiet = Duration::ZERO;
        assert_eq!(wanted(0, quiet, IDLE), 1);
        assert_eq!(wanted(4, quiet, IDLE), 1);
        assert_eq!(wanted(5, quiet, IDLE), 2);
        assert_eq!(wanted(12, quiet, IDLE), 3);
        assert_eq!(wanted(1000, quiet, IDLE), MAX_READY);
    }

    #[test]
    fn none_once_quiet_for_the_idle_timeout() {
        assert_eq!(wanted(0, IDLE - Duration::from_millis(1), IDLE), 1);
        assert_eq!(wanted(0, IDLE, IDLE), 0);
        assert_eq!(wanted(0, Duration::MAX, IDLE), 0);
    }

    #[test]
    fn missing_counts_ready_and_starting_and_forgets_old_claims() {
        let mut pool = SnapshotPool::default();
        let now = Instant::now();
        let idle = Duration::from_secs(3600);
        assert_eq!(pool.missing(now, idle), 0, "not a SnapStart version");
        pool.on = true;
        pool.active = Some(now);
        assert_eq!(pool.missing(now, idle), 1);
        pool.starting = 1;
        assert_eq!(pool.missing(now, idle), 0);
        for _ in 0..10 {
            pool.claims.push_back(now);
        }
        assert_eq!(pool.missing(now, idle), 2);
        assert_eq!(
            pool.missing(now + CLAIM_WINDOW + Duration::from_secs(1), idle),
            0
        );
        assert!(pool.claims.is_empty());
        pool.failed = Some(now);
        pool.starting = 0;
        assert_eq!(
            pool.missing(now, idle),
            0,
            "a failed INIT stops snapshots ahead"
        );
        assert_eq!(pool.missing(now + RETRY_AFTER, idle), 1, "for a while");
    }

    #[test]
    fn a_version_unclaimed_for_the_idle_timeout_keeps_none() {
        let mut pool = SnapshotPool::default();
        let seen = Instant::now();
        let idle = Duration::from_secs(2);
        // Never claimed since SnapStart was seen on: its one until the idle timeout.
        pool.on = true;
        pool.active = Some(seen);
        assert_eq!(pool.missing(seen + Duration::from_secs(1), idle), 1);
        assert_eq!(pool.missing(seen + idle, idle), 0);
        // A claim (a cold start) brings it back, for another idle timeout.
        let claimed = seen + Duration::from_secs(5);
        pool.claims.push_back(claimed);
        pool.active = Some(claimed);
        assert_eq!(pool.missing(claimed, idle), 1);
        assert_eq!(pool.missing(claimed + idle, idle), 0);
    }
}

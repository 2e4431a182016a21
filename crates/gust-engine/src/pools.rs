//! Environment pools: one per (function, version), their generations and cached
//! configurations, taking and releasing environments, retiring them when the function
//! changes or goes, and the idle reaper.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use gust_model::{FunctionConfig, FunctionName, FunctionVersion};

use crate::capacity::Lease;
use crate::environment::{EnvState, Environment, Stop};
use crate::provisioned::ProvisionedPool;
use crate::{
    lock, Engine, EngineError, CAPACITY_WAIT_MAX, FREEZE_AFTER, QUEUE_WAIT_MAX, SHUTDOWN_GRACE,
};

/// An environment is not reused after this long: the session credentials it was started
/// with last 12 hours, and an invocation started before this ends before they do.
pub(crate) const MAX_ENVIRONMENT_AGE: Duration = Duration::from_secs(11 * 3600);

/// Environments are pooled per function version: a published version's never change.
pub(crate) type PoolKey = (FunctionName, FunctionVersion);

#[derive(Debug, Default)]
pub(crate) struct Pool {
    generation: u64,
    config: Option<Arc<FunctionConfig>>,
    idle: Vec<Arc<Environment>>,
    /// Signalled when an environment enters `idle`: invokes waiting for one take it.
    pub(crate) released: Arc<tokio::sync::Notify>,
    /// Provisioned concurrency of this version.
    pub(crate) provisioned: ProvisionedPool,
    /// SnapStart's ready snapshot environments of this version.
    pub(crate) snapshots: crate::snapstart::SnapshotPool,
}

/// What an invoke got to run on.
pub(crate) enum Slot<'a> {
    /// An idle environment of the current revision.
    Warm(Arc<Environment>),
    /// The right to start one (INITs at once are bounded) and the memory it may use.
    Cold(tokio::sync::SemaphorePermit<'a>, Lease),
}

impl Engine {
    /// Every idle environment, taken out of its pool (server shutdown).
    pub(crate) fn take_all_idle(&self) -> Vec<Arc<Environment>> {
        lock(&self.inner.pools)
            .values_mut()
            .flat_map(|p| {
                let mut idle = std::mem::take(&mut p.idle);
                idle.append(&mut p.provisioned.idle);
                idle.append(&mut p.snapshots.ready);
                idle
            })
            .collect()
    }

    /// Idle environments of `function` (for tests and `gust doctor`).
    pub fn idle_environments(&self, function: &FunctionName) -> usize {
        lock(&self.inner.pools)
            .iter()
            .filter(|((name, _), _)| name == function)
            .map(|(_, pool)| pool.idle.len() + pool.provisioned.idle.len())
            .sum()
    }

    /// Per version with provisioned concurrency: (function, environments ready, of them
    /// busy, memory MB, architecture).
    pub(crate) fn provisioned_gauges(
        &self,
    ) -> Vec<(String, u32, u32, u32, gust_model::function::Architecture)> {
        lock(&self.inner.pools)
            .iter()
            .filter_map(|((name, _), pool)| {
                let ready = pool.provisioned.live_total();
                let config = pool.config.as_ref()?;
                (ready > 0).then(|| {
                    let idle = u32::try_from(pool.provisioned.idle.len()).unwrap_or(u32::MAX);
                    (
                        name.to_string(),
                        ready,
                        ready.saturating_sub(idle),
                        config.memory_mb,
                        config.architecture,
                    )
                })
            })
            .collect()
    }

    /// Environments of this engine by state: `idle` (on-demand, waiting), `provisioned`
    /// (provisioned, waiting), `snapshot` (SnapStart, frozen), `busy` (the rest of the
    /// live ones: invoking or starting).
    pub(crate) fn environments_by_state(&self) -> Vec<(String, u32)> {
        let (idle, provisioned, snapshot) =
            lock(&self.inner.pools)
                .values()
                .fold((0usize, 0usize, 0usize), |(i, p, s), pool| {
                    (
                        i + pool.idle.len(),
                        p + pool.provisioned.idle.len(),
                        s + pool.snapshots.ready.len(),
                    )
                });
        let live = self.live_environments();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        vec![
            ("idle".to_owned(), count(idle)),
            ("provisioned".to_owned(), count(provisioned)),
            ("snapshot".to_owned(), count(snapshot)),
            (
                "busy".to_owned(),
                count(live.saturating_sub(idle + provisioned + snapshot)),
            ),
        ]
    }

    /// Memory held by on-demand idle and ready snapshot environments (what eviction could
    /// give back), MiB; not the on-demand idle ones of the pool `spared`.
    pub(crate) fn idle_memory_mb(&self, spared: Option<&PoolKey>) -> u64 {
        lock(&self.inner.pools)
            .iter()
            .flat_map(|(key, pool)| {
                let evictable = Some(key) != spared;
                pool.idle
                    .iter()
                    .filter(move |_| evictable)
                    .chain(&pool.snapshots.ready)
            })
            .map(|env| env.memory_mb())
            .sum()
    }

    /// How long the on-demand environment idle longest (not of the pool `spared`) has been
    /// idle.
    pub(crate) fn longest_idle(&self, spared: Option<&PoolKey>) -> Option<Duration> {
        lock(&self.inner.pools)
            .iter()
            .filter(|(key, _)| Some(*key) != spared)
            .flat_map(|(_, pool)| pool.idle.iter().map(|env| env.idle_for()))
            .max()
    }

    /// Starts the reaper that shuts down environments idle longer than the idle timeout.
    pub fn start_reaper(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let period = (self.inner.config.idle_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                engine.reap();
            }
        })
    }

    pub(crate) fn reap(&self) {
        lock(&self.inner.scaling)
            .forget_full(self.inner.config.scaling_rate, std::time::Instant::now());
        let timeout = self.inner.config.idle_timeout;
        let mut expired = Vec::new();
        for pool in lock(&self.inner.pools).values_mut() {
            // Ready snapshot environments too: by then their version wants none (see
            // `snapstart::wanted`), unless it was claimed since, and they are made again.
            for list in [&mut pool.idle, &mut pool.snapshots.ready] {
                let (old, keep): (Vec<_>, Vec<_>) =
                    list.drain(..).partition(|env| env.idle_for() >= timeout);
                *list = keep;
                expired.extend(old);
            }
        }
        for env in expired {
            tracing::debug!(function = %env.function, stream = %env.stream, "idle timeout: shutting down environment");
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    /// Shuts down the on-demand environment idle longest (with `snapshots`, the ready
    /// snapshot environment idle longest instead), not of the pool `spared`; `false` if
    /// there is none.
    pub(crate) fn evict_one_idle(&self, snapshots: bool, spared: Option<&PoolKey>) -> bool {
        fn list(pool: &mut Pool, snapshots: bool) -> &mut Vec<Arc<Environment>> {
            if snapshots {
                &mut pool.snapshots.ready
            } else {
                &mut pool.idle
            }
        }
        let victim = {
            let mut pools = lock(&self.inner.pools);
            let oldest = longest_idle_of(
                pools
                    .iter_mut()
                    .filter(|(key, _)| Some(*key) != spared)
                    .flat_map(|(name, pool)| {
                        list(pool, snapshots)
                            .iter()
                            .enumerate()
                            .map(move |(i, env)| ((name.clone(), i), env.idle_for()))
                    }),
            );
            oldest.and_then(|(name, index)| {
                pools
                    .get_mut(&name)
                    .map(|pool| list(pool, snapshots).remove(index))
            })
        };
        match victim {
            Some(env) => {
                self.shut_down(&env, Stop::Kill);
                true
            }
            None => false,
        }
    }

    pub(crate) fn shut_down(&self, env: &Environment, how: Stop) {
        if env.stop(how) {
            self.inner.live.fetch_sub(1, Ordering::Relaxed);
            self.provisioned_gone(env);
        }
    }

    /// `$LATEST` changed: new invokes use new environments; idle ones on the old code
    /// are shut down now, busy ones when their invoke ends.
    pub fn function_changed(&self, function: &FunctionName) {
        let key = (function.clone(), FunctionVersion::Latest);
        self.retire(&key, |k| k == &key);
        // The new configuration is read now rather than by the next invoke (an invoke
        // right after a deploy is the usual case, and that read was ~0.15 ms of its cold
        // start); `config` caches it only if nothing changed meanwhile.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let engine = self.clone();
            runtime.spawn(async move {
                let _ = engine.config(&key).await;
            });
        }
    }

    /// A published version is gone: its pool goes, and its environments with it.
    pub fn version_deleted(&self, function: &FunctionName, version: u64) {
        let key = (function.clone(), FunctionVersion::Published(version));
        self.remove_pools(|k| k == &key);
        self.refresh_provisioned_floor(function);
    }

    /// The function is gone, with all its versions: their pools go.
    pub fn function_deleted(&self, function: &FunctionName) {
        self.set_reserved_concurrency(function, None);
        self.remove_pools(|(name, _)| name == function);
        self.refresh_provisioned_floor(function);
    }

    /// Removes the pools `which` selects (a function or version that is gone), shutting
    /// their idle environments down; busy ones find no pool when they finish and stop.
    pub(crate) fn remove_pools(&self, which: impl Fn(&PoolKey) -> bool) {
        let idle: Vec<Arc<Environment>> = {
            let mut pools = lock(&self.inner.pools);
            self.inner.deletions.fetch_add(1, Ordering::SeqCst);
            let keys: Vec<PoolKey> = pools.keys().filter(|k| which(k)).cloned().collect();
            keys.iter()
                .filter_map(|k| pools.remove(k))
                .flat_map(|pool| {
                    pool.idle
                        .into_iter()
                        .chain(pool.provisioned.idle)
                        .chain(pool.snapshots.ready)
                })
                .collect()
        };
        for env in idle {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    /// Bumps the generation of the pools `which` selects. `key`'s pool is made first if
    /// there is none, so a configuration read racing the change is not cached as current.
    pub(crate) fn retire(&self, key: &PoolKey, which: impl Fn(&PoolKey) -> bool) {
        let idle: Vec<Arc<Environment>> = {
            let mut pools = lock(&self.inner.pools);
            pools.entry(key.clone()).or_default();
            let mut idle = Vec::new();
            for (key, pool) in pools.iter_mut().filter(|(key, _)| which(key)) {
                tracing::trace!(function = %key.0, version = %key.1, "retiring environments");
                pool.generation += 1;
                pool.config = None;
                idle.append(&mut pool.idle);
                idle.append(&mut pool.snapshots.ready);
            }
            idle
        };
        for env in idle {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }

    /// The current configuration of a function version (cached per generation).
    pub(crate) async fn config(
        &self,
        key: &PoolKey,
    ) -> Result<(Arc<FunctionConfig>, u64), EngineError> {
        let deletions = self.inner.deletions.load(Ordering::SeqCst);
        let generation = {
            let pools = lock(&self.inner.pools);
            match pools.get(key) {
                Some(Pool {
                    generation,
                    config: Some(config),
                    ..
                }) => return Ok((Arc::clone(config), *generation)),
                Some(pool) => pool.generation,
                None => 0,
            }
        };
        let Some(config) = self.load(key).await? else {
            return Err(EngineError::NotFound(key.0.clone()));
        };
        let config = Arc::new(config);
        let mut pools = lock(&self.inner.pools);
        // Only cache what is still current: a change since the read bumped the generation,
        // a deletion the counter (the pool read before may be gone, and is not made again).
        // Nor is a SnapStart version marked then: a read racing its deletion would bring
        // its snapshots back.
        if self.inner.deletions.load(Ordering::SeqCst) == deletions {
            let pool = pools.entry(key.clone()).or_default();
            if pool.generation == generation {
                pool.config = Some(Arc::clone(&config));
            }
            if pool.snapshots.saw(&config, std::time::Instant::now()) {
                self.inner.provisioner.notify_one();
            }
        }
        Ok((config, generation))
    }

    /// The stored configuration of a function version.
    pub(crate) async fn load(&self, key: &PoolKey) -> Result<Option<FunctionConfig>, EngineError> {
        let store = Arc::clone(&self.inner.store);
        let (name, version) = key.clone();
        tokio::task::spawn_blocking(move || match version {
            FunctionVersion::Latest => store.get_function(&name).map(|f| f.map(|(c, _)| c)),
            FunctionVersion::Published(n) => store.get_version(&name, n),
        })
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?
        .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// An idle environment, or the right to start one. While INITs are at their bound the
    /// invoke waits, and takes an environment that frees up meanwhile (the wait counts
    /// toward neither its INIT nor its timeout); waiting past [`QUEUE_WAIT_MAX`] throttles.
    pub(crate) async fn acquire(
        &self,
        config: &FunctionConfig,
        generation: u64,
    ) -> Result<Slot<'_>, EngineError> {
        let key = (config.name.clone(), config.version);
        let released = Arc::clone(
            &lock(&self.inner.pools)
                .entry(key.clone())
                .or_default()
                .released,
        );
        let deadline = tokio::time::Instant::now() + QUEUE_WAIT_MAX;
        let capacity = &self.inner.config.capacity;
        let mut capacity_deadline = None;
        // A scaling allowance taken for this invoke, given back if it ends up warm or fails.
        let mut reservation: Option<RateReservation<'_>> = None;
        loop {
            // Registered before looking, so a release in between is not missed.
            let notified = released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let freed = capacity.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(env) = self.take_idle(config, generation) {
                return Ok(Slot::Warm(env));
            }
            let permit = match self.inner.inits.try_acquire() {
                Ok(permit) => permit,
                Err(_) => tokio::select! {
                    () = &mut notified => continue,
                    permit = self.inner.inits.acquire() => {
                        permit.map_err(|e| EngineError::Internal(e.to_string()))?
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(EngineError::TooManyEnvironments)
                    }
                },
            };
            // One may have freed up while this invoke waited for its turn.
            if let Some(env) = self.take_idle(config, generation) {
                return Ok(Slot::Warm(env));
            }
            // The function's scaling rate bounds how fast it adds environments: taken before
            // anything is evicted for it, and given back unless an environment is really
            // started (an invoke that waits for memory and then gets a warm environment has
            // not scaled the function).
            if reservation.is_none() {
                let rate = self.inner.config.scaling_rate;
                if !lock(&self.inner.scaling).allow(&config.name, rate, std::time::Instant::now()) {
                    return Err(EngineError::Throttled(
                        "FunctionInvocationRateLimitExceeded",
                    ));
                }
                reservation = Some(RateReservation {
                    engine: self,
                    function: &config.name,
                });
            }
            // The host's memory: idle environments make room; when none can, wait briefly
            // for one of this function to come back or memory to be given back.
            let Some(lease) =
                capacity.take_or_evict(u64::from(config.memory_mb), Some((self, &key)))
            else {
                drop(permit);
                let until = *capacity_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + CAPACITY_WAIT_MAX);
                tokio::select! {
                    () = &mut notified => continue,
                    () = &mut freed => continue,
                    () = tokio::time::sleep_until(until) => {
                        return Err(EngineError::Throttled("HostCapacityExceeded"))
                    }
                }
            };
            if let Some(reservation) = reservation.take() {
                reservation.spend();
            }
            return Ok(Slot::Cold(permit, lease));
        }
    }

    /// Whether the stored configuration is newer than `config`.
    pub(crate) async fn changed_since(&self, config: &FunctionConfig) -> bool {
        let current = self.load(&(config.name.clone(), config.version)).await;
        !matches!(current, Ok(Some(stored)) if stored.revision_id == config.revision_id)
    }

    pub(crate) fn take_idle(
        &self,
        config: &FunctionConfig,
        generation: u64,
    ) -> Option<Arc<Environment>> {
        let mut stale = Vec::new();
        let found = {
            let mut pools = lock(&self.inner.pools);
            let pool = pools.get_mut(&(config.name.clone(), config.version))?;
            // Provisioned environments serve first (and are renewed past their age, as
            // Lambda recycles them); on-demand ones take the spill-over.
            take_usable(
                &mut pool.provisioned.idle,
                config,
                generation,
                true,
                &mut stale,
            )
            .or_else(|| take_usable(&mut pool.idle, config, generation, false, &mut stale))
        };
        for env in stale {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        if let Some(env) = &found {
            env.idle_ends();
        }
        found
    }

    /// Returns an environment after an invocation: to its pool, or shut down when it is
    /// stale, old, or the server is closing. An environment lives at most
    /// [`MAX_ENVIRONMENT_AGE`], less than the credentials it was given.
    pub(crate) fn release(&self, env: Arc<Environment>) {
        if self.inner.closing.load(Ordering::Relaxed) {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
            return;
        }

        let current = {
            let mut pools = lock(&self.inner.pools);
            match pools.get_mut(&(env.function.clone(), env.version)) {
                Some(pool)
                    if pool.generation == env.generation
                        && env.age() < MAX_ENVIRONMENT_AGE
                        // A provisioned one beyond its configuration's count retires.
                        && env
                            .provisioned
                            .as_ref()
                            .is_none_or(|q| pool.provisioned.keeps(q))
                        && env.transition(EnvState::Idle).is_ok() =>
                {
                    env.touch();
                    let period = env.idle_begins();
                    if env.provisioned.is_some() {
                        pool.provisioned.idle.push(Arc::clone(&env));
                    } else {
                        pool.idle.push(Arc::clone(&env));
                    }
                    pool.released.notify_one();
                    // Frozen once it has stayed idle a moment: idle environments use no CPU
                    // and their threads do not run, while back-to-back invokes skip the
                    // freeze/thaw round trip.
                    env.freeze_later(period, FREEZE_AFTER);
                    true
                }
                _ => false,
            }
        };
        if !current {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
    }
}

/// One environment's worth of a function's scaling allowance, taken while an invoke decides
/// whether it starts one; dropped (given back) unless it was spent.
struct RateReservation<'a> {
    engine: &'a Engine,
    function: &'a gust_model::FunctionName,
}

impl RateReservation<'_> {
    /// An environment is being started: the allowance stays taken.
    fn spend(self) {
        std::mem::forget(self);
    }
}

impl Drop for RateReservation<'_> {
    fn drop(&mut self) {
        lock(&self.engine.inner.scaling)
            .refund(self.function, self.engine.inner.config.scaling_rate);
    }
}

/// The key of the longest idle of `candidates` (key, how long idle).
fn longest_idle_of<K>(candidates: impl Iterator<Item = (K, Duration)>) -> Option<K> {
    candidates.max_by_key(|(_, idle)| *idle).map(|(key, _)| key)
}

/// The newest environment of `list` that can serve `config` at `generation` now (made
/// `Busy`); the unusable ones it passes over (another revision, exited, an extension gone,
/// or, with `aged`, past [`MAX_ENVIRONMENT_AGE`]) go to `stale`, to be shut down.
pub(crate) fn take_usable(
    list: &mut Vec<Arc<Environment>>,
    config: &FunctionConfig,
    generation: u64,
    aged: bool,
    stale: &mut Vec<Arc<Environment>>,
) -> Option<Arc<Environment>> {
    while let Some(env) = list.pop() {
        if env.generation == generation
            && env.revision == config.revision_id
            && !env.has_exited()
            // One whose extension exited while it was idle is not reused (Lambda resets it).
            && env.extension_gone().is_none()
            && !(aged && env.age() >= MAX_ENVIRONMENT_AGE)
            && env.transition(EnvState::Busy).is_ok()
        {
            return Some(env);
        }
        stale.push(env);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_takes_the_longest_idle() {
        let s = Duration::from_secs;
        assert_eq!(longest_idle_of(std::iter::empty::<(u8, Duration)>()), None);
        assert_eq!(
            longest_idle_of([(1, s(3)), (2, s(9)), (3, s(5))].into_iter()),
            Some(2)
        );
    }
}

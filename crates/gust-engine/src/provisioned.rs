//! Provisioned concurrency: environments initialised ahead of any request for a published
//! version (configured on the version or on an alias routing to it), kept warm, never
//! reaped for idleness, replaced when one dies, and taken before on-demand ones.
//!
//! The control plane stores what is requested; the engine holds, per version pool and per
//! configuring qualifier, how many are wanted, alive and starting. A provisioner task
//! reconciles the two: it starts what is missing (through the same INIT bound and memory
//! budget as cold starts) and retires what is in excess, idle ones at once and busy ones
//! when their invocation ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use gust_model::{FunctionName, FunctionVersion};

use crate::environment::{EnvState, Environment, Stop};
use crate::pools::{PoolKey, MAX_ENVIRONMENT_AGE};
use crate::{lock, Engine, EngineError, FREEZE_AFTER, SHUTDOWN_GRACE};

/// How often the provisioner looks even when nothing woke it (dead idle environments,
/// memory freed up for a start that found none).
const RECONCILE_PERIOD: Duration = Duration::from_millis(500);

/// Provisioned INITs under way at once per engine (as many as INITs may run): on-demand
/// cold starts queue behind no more than these.
const MAX_STARTING: u32 = 4;

/// `StatusReason` of a configuration whose environments failed INIT.
pub const INIT_FAILURE: &str = "FUNCTION_ERROR_INIT_FAILURE";

/// A version pool's provisioned environments.
#[derive(Debug, Default)]
pub(crate) struct ProvisionedPool {
    /// Environments wanted, per configuring qualifier (an alias or the version itself).
    targets: BTreeMap<String, u32>,
    /// Ready and waiting for an invocation (most recently used last).
    pub(crate) idle: Vec<Arc<Environment>>,
    /// Initialised and alive (idle or busy), per qualifier.
    live: BTreeMap<String, u32>,
    /// INITs under way, per qualifier.
    starting: BTreeMap<String, u32>,
    /// Why INIT failed, per qualifier: no more starts until the configuration changes.
    failed: BTreeMap<String, String>,
}

impl ProvisionedPool {
    fn wanted(&self, qualifier: &str) -> u32 {
        self.targets.get(qualifier).copied().unwrap_or(0)
    }

    fn live(&self, qualifier: &str) -> u32 {
        self.live.get(qualifier).copied().unwrap_or(0)
    }

    /// Initialised and alive over every qualifier.
    pub(crate) fn live_total(&self) -> u32 {
        self.live.values().sum()
    }

    /// Whether an environment of `qualifier` coming back from an invocation is still wanted.
    pub(crate) fn keeps(&self, qualifier: &str) -> bool {
        self.live(qualifier) <= self.wanted(qualifier)
    }

    fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.live.is_empty() && self.starting.is_empty()
    }
}

/// What a provisioned-concurrency configuration has right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionedStatus {
    /// Initialised environments alive for it.
    pub allocated: u32,
    /// Of those, how many are running an invocation.
    pub busy: u32,
    /// Why its environments could not be initialised, if they could not.
    pub failure: Option<String>,
}

impl Engine {
    /// Sets a function's provisioned concurrency: for each configuring qualifier, how many
    /// environments it wants of each version (an alias spreads its configuration over the
    /// versions it routes to). Qualifiers not listed want none. The provisioner then starts
    /// or retires environments.
    pub fn set_provisioned(&self, function: &FunctionName, configs: &[(String, Vec<(u64, u32)>)]) {
        {
            let mut pools = lock(&self.inner.pools);
            for (_, versions) in configs {
                for (version, _) in versions {
                    pools
                        .entry((function.clone(), FunctionVersion::Published(*version)))
                        .or_default();
                }
            }
            for ((name, version), pool) in pools.iter_mut() {
                if name != function {
                    continue;
                }
                let mut targets = BTreeMap::new();
                if let FunctionVersion::Published(n) = version {
                    for (qualifier, versions) in configs {
                        let wanted: u32 = versions
                            .iter()
                            .filter(|(v, _)| v == n)
                            .map(|(_, count)| count)
                            .sum();
                        if wanted > 0 {
                            targets.insert(qualifier.clone(), wanted);
                        }
                    }
                }
                let provisioned = &mut pool.provisioned;
                // A changed configuration is a new chance for a failed INIT.
                provisioned
                    .failed
                    .retain(|q, _| targets.get(q) == provisioned.targets.get(q));
                provisioned.targets = targets;
            }
        }
        self.refresh_provisioned_floor(function);
        self.inner.provisioner.notify_one();
    }

    /// Admission guarantees a function the places of its provisioned concurrency.
    pub(crate) fn refresh_provisioned_floor(&self, function: &FunctionName) {
        let total: u32 = lock(&self.inner.pools)
            .iter()
            .filter(|((name, _), _)| name == function)
            .flat_map(|(_, pool)| pool.provisioned.targets.values())
            .sum();
        lock(&self.inner.admission).set_provisioned(function, total);
    }

    /// What `qualifier`'s provisioned-concurrency configuration has now, over all versions.
    pub fn provisioned_status(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> ProvisionedStatus {
        let pools = lock(&self.inner.pools);
        let mut status = ProvisionedStatus::default();
        for ((name, _), pool) in pools.iter() {
            if name != function {
                continue;
            }
            let provisioned = &pool.provisioned;
            let live = provisioned.live(qualifier);
            let idle = provisioned
                .idle
                .iter()
                .filter(|e| e.provisioned.as_deref() == Some(qualifier))
                .count() as u32;
            status.allocated += live;
            status.busy += live.saturating_sub(idle);
            if let Some(reason) = provisioned.failed.get(qualifier) {
                status.failure = Some(reason.clone());
            }
        }
        status
    }

    /// Starts the provisioner: it keeps every configuration's environments at what is
    /// wanted.
    pub fn start_provisioner(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                engine.reconcile();
                let _ = tokio::time::timeout(RECONCILE_PERIOD, engine.inner.provisioner.notified())
                    .await;
            }
        })
    }

    /// One pass: retire dead, old and excess environments, start missing ones (at most
    /// [`MAX_STARTING`] at once per engine, so on-demand cold starts still get INIT slots).
    pub(crate) fn reconcile(&self) {
        if self
            .inner
            .closing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let mut retire = Vec::new();
        let mut start: Vec<(PoolKey, String)> = Vec::new();
        {
            let mut pools = lock(&self.inner.pools);
            let starting: u32 = pools
                .values()
                .flat_map(|p| p.provisioned.starting.values())
                .sum();
            let mut budget = MAX_STARTING.saturating_sub(starting);
            for (key, pool) in pools.iter_mut() {
                let provisioned = &mut pool.provisioned;
                if provisioned.is_empty() {
                    continue;
                }
                // Idle ones whose runtime died, or too old to keep their credentials, are
                // replaced.
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut provisioned.idle)
                    .into_iter()
                    .partition(|e| e.has_exited() || e.age() >= MAX_ENVIRONMENT_AGE);
                provisioned.idle = kept;
                let qualifiers: BTreeSet<String> = provisioned
                    .targets
                    .keys()
                    .chain(provisioned.live.keys())
                    .cloned()
                    .collect();
                for qualifier in qualifiers {
                    let wanted = provisioned.wanted(&qualifier);
                    // Those retiring now still count as live until they are gone.
                    let retiring = gone
                        .iter()
                        .filter(|e| e.provisioned.as_deref() == Some(qualifier.as_str()))
                        .count() as u32;
                    let live = provisioned.live(&qualifier).saturating_sub(retiring);
                    let starting = provisioned.starting.get(&qualifier).copied().unwrap_or(0);
                    let have = live + starting;
                    if have < wanted && !provisioned.failed.contains_key(&qualifier) {
                        let n = (wanted - have).min(budget);
                        budget -= n;
                        for _ in 0..n {
                            start.push((key.clone(), qualifier.clone()));
                        }
                        if n > 0 {
                            *provisioned.starting.entry(qualifier.clone()).or_default() += n;
                        }
                    } else if live > wanted {
                        // Idle ones go now; busy ones when they come back.
                        let mut excess = live - wanted;
                        provisioned.idle.retain(|e| {
                            if excess > 0 && e.provisioned.as_deref() == Some(qualifier.as_str()) {
                                excess -= 1;
                                retire.push(Arc::clone(e));
                                false
                            } else {
                                true
                            }
                        });
                    }
                }
                retire.extend(gone);
            }
        }
        for env in retire {
            self.shut_down(&env, Stop::Terminate(SHUTDOWN_GRACE));
        }
        for (key, qualifier) in start {
            let engine = self.clone();
            tokio::spawn(async move { engine.provision_one(key, qualifier).await });
        }
        self.reconcile_snapshots();
    }

    /// Whether `key`'s pool still wants another environment for `qualifier` (the one
    /// about to start counts among `starting`).
    fn still_wanted(&self, key: &PoolKey, qualifier: &str) -> bool {
        if self
            .inner
            .closing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return false;
        }
        lock(&self.inner.pools).get(key).is_some_and(|pool| {
            let provisioned = &pool.provisioned;
            let starting = provisioned.starting.get(qualifier).copied().unwrap_or(0);
            provisioned.live(qualifier) + starting <= provisioned.wanted(qualifier)
        })
    }

    /// The version is gone: its pool wants nothing any more.
    fn forget_targets(&self, key: &PoolKey) {
        if let Some(pool) = lock(&self.inner.pools).get_mut(key) {
            pool.provisioned.targets.clear();
        }
        self.refresh_provisioned_floor(&key.0);
    }

    /// Starts one provisioned environment of `key` for `qualifier`.
    async fn provision_one(&self, key: PoolKey, qualifier: String) {
        let outcome = self.start_provisioned(&key, &qualifier).await;
        let mut surplus = None;
        {
            let mut pools = lock(&self.inner.pools);
            // The version is gone (its pool with it): what was started is not wanted.
            let Some(pool) = pools.get_mut(&key) else {
                drop(pools);
                if let Ok(Some(env)) = outcome {
                    self.discard(&env);
                }
                return;
            };
            let provisioned = &mut pool.provisioned;
            if let Some(starting) = provisioned.starting.get_mut(&qualifier) {
                *starting = starting.saturating_sub(1);
                if *starting == 0 {
                    provisioned.starting.remove(&qualifier);
                }
            }
            match outcome {
                Ok(Some(env)) => {
                    let closing = self
                        .inner
                        .closing
                        .load(std::sync::atomic::Ordering::Relaxed);
                    if !closing
                        && provisioned.live(&qualifier) < provisioned.wanted(&qualifier)
                        && env.transition(EnvState::Idle).is_ok()
                    {
                        *provisioned.live.entry(qualifier.clone()).or_default() += 1;
                        env.touch();
                        let period = env.idle_begins();
                        provisioned.idle.push(Arc::clone(&env));
                        pool.released.notify_one();
                        env.freeze_later(period, FREEZE_AFTER);
                    } else {
                        surplus = Some(env);
                    }
                }
                // No memory or INIT slot now: the next pass tries again.
                Ok(None) => {}
                Err(reason) => {
                    provisioned.failed.insert(qualifier.clone(), reason);
                }
            }
        }
        if let Some(env) = surplus {
            self.discard(&env);
        }
        // The next batch of starts, if any are missing.
        self.inner.provisioner.notify_one();
    }

    /// Shuts down an environment started for a configuration that shrank or went while it
    /// started; it never counted as one of the configuration's.
    fn discard(&self, env: &Environment) {
        if env.stop(Stop::Terminate(SHUTDOWN_GRACE)) {
            self.inner
                .live
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// INIT of one provisioned environment: `Ok(None)` when there is no room for it now,
    /// `Err` with the `StatusReason` when its INIT failed.
    async fn start_provisioned(
        &self,
        key: &PoolKey,
        qualifier: &str,
    ) -> Result<Option<Arc<Environment>>, String> {
        let (config, generation) = match self.config(key).await {
            Ok(found) => found,
            // The version is gone (a sync raced its deletion): nothing to provision.
            Err(EngineError::NotFound(_)) => {
                self.forget_targets(key);
                return Ok(None);
            }
            Err(_) => return Ok(None),
        };
        let Ok(_permit) = self.inner.inits.acquire().await else {
            return Ok(None);
        };
        // The configuration may have shrunk, or the server begun closing, meanwhile.
        if !self.still_wanted(key, qualifier) {
            return Ok(None);
        }
        let Some(lease) = self
            .inner
            .config
            .capacity
            // A provisioned environment may take an idle on-demand one's place.
            .take_or_evict(u64::from(config.memory_mb), None)
        else {
            tracing::debug!(function = %config.name, qualifier, "no memory for a provisioned environment yet");
            return Ok(None);
        };
        self.inner
            .live
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self
            .start_environment(&config, generation, lease, Some(qualifier), false)
            .await
        {
            Ok(Ok(env)) => Ok(Some(env)),
            Ok(Err(failure)) => {
                self.inner
                    .live
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(function = %config.name, qualifier, "provisioned environment failed INIT");
                drop(failure);
                Err(INIT_FAILURE.to_owned())
            }
            // The function's code cannot be used: as a failed INIT.
            Err(EngineError::InvalidZipFile(cause)) => {
                self.inner
                    .live
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(function = %config.name, qualifier, %cause, "provisioned environment cannot unpack its code");
                Err(INIT_FAILURE.to_owned())
            }
            // The server's own trouble (sockets, pipes): the next pass tries again.
            Err(error) => {
                self.inner
                    .live
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(function = %config.name, qualifier, %error, "cannot start a provisioned environment; retrying");
                Ok(None)
            }
        }
    }

    /// A provisioned environment is gone: it no longer counts, and the provisioner
    /// replaces it if it is still wanted.
    pub(crate) fn provisioned_gone(&self, env: &Environment) {
        let Some(qualifier) = &env.provisioned else {
            return;
        };
        {
            let mut pools = lock(&self.inner.pools);
            if let Some(pool) = pools.get_mut(&(env.function.clone(), env.version)) {
                if let Some(live) = pool.provisioned.live.get_mut(qualifier) {
                    *live = live.saturating_sub(1);
                    if *live == 0 {
                        pool.provisioned.live.remove(qualifier);
                    }
                }
            }
        }
        self.inner.provisioner.notify_one();
    }
}

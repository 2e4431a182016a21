//! The host's capacity: a memory budget for execution environments, shared by every
//! account's engine (one machine is not a region), and each function's scaling rate.
//!
//! An environment holds its function's `MemorySize` of the budget from the moment its
//! start is decided until it is shut down. At the budget, idle on-demand environments are
//! evicted least recently used first (any account's); provisioned ones never are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gust_model::FunctionName;

use crate::pools::PoolKey;
use crate::{lock, Engine, Inner};

/// The memory budget environments live in.
#[derive(Debug)]
pub struct Capacity {
    budget_mb: u64,
    used_mb: Mutex<u64>,
    /// Signalled when memory is given back.
    freed: tokio::sync::Notify,
    /// The engines whose idle environments may be evicted to make room.
    engines: Mutex<Vec<Weak<Inner>>>,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    capacity: Arc<Capacity>,
    mb: u64,
}

impl Lease {
    /// The memory it holds, MiB.
    pub(crate) fn mb(&self) -> u64 {
        self.mb
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        {
            let mut used = lock(&self.capacity.used_mb);
            *used = used.saturating_sub(self.mb);
        }
        self.capacity.freed.notify_waiters();
    }
}

impl Capacity {
    /// A budget of `budget_mb` MiB for the sum of live environments' `MemorySize`.
    pub fn new(budget_mb: u64) -> Arc<Self> {
        Arc::new(Capacity {
            budget_mb,
            used_mb: Mutex::new(0),
            freed: tokio::sync::Notify::new(),
            engines: Mutex::new(Vec::new()),
        })
    }

    /// The budget, MiB.
    pub fn budget_mb(&self) -> u64 {
        self.budget_mb
    }

    /// What live environments hold now, MiB.
    pub fn used_mb(&self) -> u64 {
        *lock(&self.used_mb)
    }

    pub(crate) fn register(&self, engine: &Arc<Inner>) {
        let mut engines = lock(&self.engines);
        engines.retain(|e| e.strong_count() > 0);
        engines.push(Arc::downgrade(engine));
    }

    /// Takes `mb` of the budget if it is there.
    pub(crate) fn try_take(self: &Arc<Self>, mb: u64) -> Option<Lease> {
        let mut used = lock(&self.used_mb);
        if *used + mb > self.budget_mb {
            return None;
        }
        *used += mb;
        Some(Lease {
            capacity: Arc::clone(self),
            mb,
        })
    }

    /// Takes `mb`, evicting idle environments (least recently used first, any engine's)
    /// until it fits; `None`, evicting nothing, when even evicting every idle one would
    /// not make room. The on-demand idle environments of `spare`'s pool (a function
    /// version's) are left alone: an invoke starting an environment for that pool would
    /// rather have one of them (one released just after it looked), and evicting it only
    /// to start another is a cold start and a kill instead of a warm invoke (at c=32 on 10
    /// environments' worth of budget, every environment was replaced within seconds).
    pub(crate) fn take_or_evict(
        self: &Arc<Self>,
        mb: u64,
        spare: Option<(&Engine, &PoolKey)>,
    ) -> Option<Lease> {
        if let Some(lease) = self.try_take(mb) {
            return Some(lease);
        }
        let engines = self.engines();
        let evictable: u64 = engines
            .iter()
            .map(|engine| engine.idle_memory_mb(spared(engine, spare)))
            .sum();
        if self.used_mb().saturating_sub(evictable) + mb > self.budget_mb {
            return None;
        }
        loop {
            if let Some(lease) = self.try_take(mb) {
                return Some(lease);
            }
            if !Self::evict_one(&engines, spare) {
                return None;
            }
        }
    }

    fn engines(&self) -> Vec<Engine> {
        lock(&self.engines)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|inner| Engine { inner })
            .collect()
    }

    /// A future that completes when memory is given back (register before looking).
    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Shuts down the on-demand environment idle longest on any engine; when none is
    /// idle, a ready SnapStart snapshot environment (made ahead of demand, it comes after
    /// environments that served).
    fn evict_one(engines: &[Engine], spare: Option<(&Engine, &PoolKey)>) -> bool {
        let mut candidates: Vec<(Duration, &Engine)> = engines
            .iter()
            .filter_map(|e| e.longest_idle(spared(e, spare)).map(|idle| (idle, e)))
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        candidates
            .into_iter()
            .any(|(_, engine)| engine.evict_one_idle(false, spared(engine, spare)))
            // An invoke does not take a ready snapshot while it waits for memory: its own
            // version's may go too (as before), or it would wait behind it and be throttled.
            || engines.iter().any(|engine| engine.evict_one_idle(true, None))
    }
}

/// The pool of `engine` that eviction leaves alone, if `spare` names one of its pools.
fn spared<'a>(engine: &Engine, spare: Option<(&Engine, &'a PoolKey)>) -> Option<&'a PoolKey> {
    spare
        .filter(|(owner, _)| Arc::ptr_eq(&owner.inner, &engine.inner))
        .map(|(_, key)| key)
}

/// How fast one function may add environments: `burst` at once, refilled continuously
/// at `burst` per `period` (Lambda: 1,000 every 10 seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingRate {
    /// New environments at most in one period.
    pub burst: u32,
    /// The period the burst refills over.
    pub period: Duration,
}

impl Default for ScalingRate {
    fn default() -> Self {
        ScalingRate {
            burst: 1000,
            period: Duration::from_secs(10),
        }
    }
}

impl std::str::FromStr for ScalingRate {
    type Err = String;

    /// `1000/10s`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a scaling rate like 1000/10s");
        let (burst, period) = text.split_once('/').ok_or_else(bad)?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(period.len());
        let (number, unit) = period.split_at(split);
        let number: u64 = if number.is_empty() {
            1
        } else {
            number.parse().map_err(|_| bad())?
        };
        let period = match unit {
            "ms" => Duration::from_millis(number),
            "s" | "" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        if burst == 0 || period.is_zero() {
            return Err(format!("{text:?}: the rate must be more than zero"));
        }
        Ok(ScalingRate { burst, period })
    }
}

/// One function's scaling allowance (a token bucket that never holds more than a burst).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every function's scaling allowance.
#[derive(Debug, Default)]
pub(crate) struct Scaling {
    buckets: HashMap<FunctionName, Bucket>,
}

impl Scaling {
    /// Whether `function` may add one more environment now (and counts it if so).
    pub(crate) fn allow(
        &mut self,
        function: &FunctionName,
        rate: ScalingRate,
        now: Instant,
    ) -> bool {
        let burst = f64::from(rate.burst);
        let bucket = self.buckets.entry(function.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64()
            / rate.period.as_secs_f64()
            * burst;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back one environment's allowance taken by [`Scaling::allow`] and not used.
    pub(crate) fn refund(&mut self, function: &FunctionName, rate: ScalingRate) {
        if let Some(bucket) = self.buckets.get_mut(function) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(rate.burst));
        }
    }

    /// Drops buckets that have refilled: a full bucket is the default, so the map holds
    /// only functions that are scaling.
    pub(crate) fn forget_full(&mut self, rate: ScalingRate, now: Instant) {
        let burst = f64::from(rate.burst);
        self.buckets.retain(|_, b| {
            let refill = now.saturating_duration_since(b.at).as_secs_f64()
                / rate.period.as_secs_f64()
                * burst;
            b.tokens + refill < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_taken_and_given_back() {
        let capacity = Capacity::new(256);
        let a = capacity.try_take(128).unwrap();
        let _b = capacity.try_take(128).unwrap();
        assert!(capacity.try_take(1).is_none());
        assert_eq!(capacity.used_mb(), 256);
        drop(a);
        assert_eq!(capacity.used_mb(), 128);
        assert!(capacity.try_take(128).is_some());
    }

    #[test]
    fn scaling_rate_refills_continuously() {
        let rate: ScalingRate = "3/1s".parse().unwrap();
        let f = FunctionName::parse("f").unwrap();
        let mut scaling = Scaling::default();
        let t0 = Instant::now();
        assert!((0..3).all(|_| scaling.allow(&f, rate, t0)));
        // What was taken and not used comes back.
        scaling.refund(&f, rate);
        assert!(scaling.allow(&f, rate, t0));
        assert!(
            !scaling.allow(&f, rate, t0),
            "a burst is all there is at once"
        );
        // A third of the period brings one back.
        assert!(scaling.allow(&f, rate, t0 + Duration::from_millis(340)));
        assert!(!scaling.allow(&f, rate, t0 + Duration::from_millis(340)));
        scaling.forget_full(rate, t0 + Duration::from_secs(5));
        assert!(scaling.buckets.is_empty());
        assert_eq!(
            "1000/10s".parse::<ScalingRate>(),
            Ok(ScalingRate::default())
        );
        assert!("0/10s".parse::<ScalingRate>().is_err());
        assert!("ten/10s".parse::<ScalingRate>().is_err());
    }
}

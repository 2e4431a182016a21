//! Concurrency admission: reserved concurrency guarantees and caps a function; the other
//! functions share what is left of the account's limit. An invocation holds its place
//! from admission until it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gust_model::FunctionName;

use crate::{lock, EngineError};

/// Who is running, against which limits.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    reserved: HashMap<FunctionName, u32>,
    reserved_total: u32,
    running: HashMap<FunctionName, u32>,
    unreserved_running: u32,
    /// Provisioned concurrency of functions (a floor of guaranteed places for those
    /// without a reservation; a reservation holds its function's provisioned concurrency).
    provisioned: HashMap<FunctionName, u32>,
    /// Places taken under those floors.
    provisioned_running: HashMap<FunctionName, u32>,
    /// Throttles so far, by function and reason (for metrics).
    throttles: HashMap<(FunctionName, &'static str), u64>,
}

/// Invocations in flight and throttles, as the engine counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencySnapshot {
    /// Invocations in flight in the account.
    pub account: u32,
    /// Of those, in functions without reserved concurrency.
    pub unreserved: u32,
    /// Invocations in flight per function (only functions running any).
    pub functions: Vec<(FunctionName, u32)>,
    /// Throttled invocations since the start, per function and `Reason`.
    pub throttles: Vec<(FunctionName, &'static str, u64)>,
}

/// Which share of the account a place was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    Reserved,
    Provisioned,
    Unreserved,
}

/// A place taken; given back when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Mutex<Admission>>,
    function: FunctionName,
    share: Share,
}

fn decrement(map: &mut HashMap<FunctionName, u32>, function: &FunctionName) {
    if let Some(n) = map.get_mut(function) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(function);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut admission = lock(&self.admission);
        decrement(&mut admission.running, &self.function);
        match self.share {
            Share::Reserved => {}
            Share::Provisioned => decrement(&mut admission.provisioned_running, &self.function),
            Share::Unreserved => {
                admission.unreserved_running = admission.unreserved_running.saturating_sub(1);
            }
        }
    }
}

impl Admission {
    /// Sets (or clears) a function's reservation.
    pub(crate) fn set_reserved(&mut self, function: &FunctionName, reserved: Option<u32>) {
        match reserved {
            Some(n) => {
                self.reserved.insert(function.clone(), n);
            }
            None => {
                self.reserved.remove(function);
            }
        }
        self.reserved_total = self.reserved.values().sum();
    }

    /// Sets a function's provisioned concurrency (all its configurations together).
    pub(crate) fn set_provisioned(&mut self, function: &FunctionName, total: u32) {
        if total == 0 {
            self.provisioned.remove(function);
        } else {
            self.provisioned.insert(function.clone(), total);
        }
    }

    /// Provisioned concurrency outside reservations: out of the unreserved pool.
    fn provisioned_outside_reservations(&self) -> u32 {
        self.provisioned
            .iter()
            .filter(|(f, _)| !self.reserved.contains_key(*f))
            .map(|(_, n)| n)
            .sum()
    }

    /// Counts a throttled invocation.
    pub(crate) fn throttled(&mut self, function: &FunctionName, reason: &'static str) {
        *self
            .throttles
            .entry((function.clone(), reason))
            .or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> ConcurrencySnapshot {
        let mut functions: Vec<(FunctionName, u32)> =
            self.running.iter().map(|(f, n)| (f.clone(), *n)).collect();
        functions.sort();
        let mut throttles: Vec<(FunctionName, &'static str, u64)> = self
            .throttles
            .iter()
            .map(|((f, reason), n)| (f.clone(), *reason, *n))
            .collect();
        throttles.sort();
        ConcurrencySnapshot {
            account: self.running.values().sum(),
            unreserved: self.unreserved_running,
            functions,
            throttles,
        }
    }
}

/// Takes a place for one invocation of `function`, or says why there is none.
pub(crate) fn admit(
    admission: &Arc<Mutex<Admission>>,
    function: &FunctionName,
    account_limit: usize,
) -> Result<Admitted, EngineError> {
    let mut state = lock(admission);
    let running = state.running.get(function).copied().unwrap_or(0);
    let share = match state.reserved.get(function) {
        Some(limit) => {
            if running >= *limit {
                return Err(EngineError::Throttled(
                    "ReservedFunctionConcurrentInvocationLimitExceeded",
                ));
            }
            // Reservations guarantee within the account's limit, which still caps all.
            let total: u32 = state.running.values().sum();
            if total >= account_limit as u32 {
                return Err(EngineError::Throttled("ConcurrentInvocationLimitExceeded"));
            }
            Share::Reserved
        }
        None => {
            let floor = state.provisioned.get(function).copied().unwrap_or(0);
            let under_floor = state
                .provisioned_running
                .get(function)
                .copied()
                .unwrap_or(0);
            if under_floor < floor {
                *state
                    .provisioned_running
                    .entry(function.clone())
                    .or_default() += 1;
                Share::Provisioned
            } else {
                let unreserved = (account_limit as u32)
                    .saturating_sub(state.reserved_total)
                    .saturating_sub(state.provisioned_outside_reservations());
                if state.unreserved_running >= unreserved {
                    return Err(EngineError::Throttled("ConcurrentInvocationLimitExceeded"));
                }
                state.unreserved_running += 1;
                Share::Unreserved
            }
        }
    };
    *state.running.entry(function.clone()).or_default() += 1;
    Ok(Admitted {
        admission: Arc::clone(admission),
        function: function.clone(),
        share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_caps_and_guarantees() {
        let admission = Arc::new(Mutex::new(Admission::default()));
        let (a, b) = (
            FunctionName::parse("a").unwrap(),
            FunctionName::parse("b").unwrap(),
        );
        lock(&admission).set_reserved(&a, Some(2));
        let first = admit(&admission, &a, 3).unwrap();
        let _second = admit(&admission, &a, 3).unwrap();
        assert!(matches!(
            admit(&admission, &a, 3),
            Err(EngineError::Throttled(
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            ))
        ));
        // The others share 3 - 2 = 1.
        let _other = admit(&admission, &b, 3).unwrap();
        assert!(matches!(
            admit(&admission, &b, 3),
            Err(EngineError::Throttled("ConcurrentInvocationLimitExceeded"))
        ));
        drop(first);
        assert!(admit(&admission, &a, 3).is_ok());
        lock(&admission).set_reserved(&a, Some(0));
        assert!(admit(&admission, &a, 3).is_err(), "zero stops the function");
    }

    #[test]
    fn provisioned_concurrency_is_guaranteed_and_spills_into_the_unreserved_pool() {
        let admission = Arc::new(Mutex::new(Admission::default()));
        let (a, b) = (
            FunctionName::parse("a").unwrap(),
            FunctionName::parse("b").unwrap(),
        );
        lock(&admission).set_provisioned(&a, 2);
        // Limit 3: a's 2 are its own, 1 is shared.
        let b1 = admit(&admission, &b, 3).unwrap();
        assert!(
            admit(&admission, &b, 3).is_err(),
            "b cannot take a's provisioned places"
        );
        let a1 = admit(&admission, &a, 3).unwrap();
        let _a2 = admit(&admission, &a, 3).unwrap();
        assert!(
            admit(&admission, &a, 3).is_err(),
            "the shared place is b's now"
        );
        drop(b1);
        let _a3 = admit(&admission, &a, 3).unwrap();
        drop(a1);
        assert_eq!(lock(&admission).snapshot().account, 2);
    }
}

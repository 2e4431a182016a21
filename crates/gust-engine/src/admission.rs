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
}

/// A place taken; given back when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Mutex<Admission>>,
    function: FunctionName,
    reserved: bool,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut admission = lock(&self.admission);
        if let Some(running) = admission.running.get_mut(&self.function) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                admission.running.remove(&self.function);
            }
        }
        if !self.reserved {
            admission.unreserved_running = admission.unreserved_running.saturating_sub(1);
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
}

/// Takes a place for one invocation of `function`, or says why there is none.
pub(crate) fn admit(
    admission: &Arc<Mutex<Admission>>,
    function: &FunctionName,
    account_limit: usize,
) -> Result<Admitted, EngineError> {
    let mut state = lock(admission);
    let running = state.running.get(function).copied().unwrap_or(0);
    let reserved = match state.reserved.get(function) {
        Some(limit) => {
            if running >= *limit {
                return Err(EngineError::Throttled(
                    "ReservedFunctionConcurrentInvocationLimitExceeded",
                ));
            }
            true
        }
        None => {
            let unreserved = (account_limit as u32).saturating_sub(state.reserved_total);
            if state.unreserved_running >= unreserved {
                return Err(EngineError::Throttled("ConcurrentInvocationLimitExceeded"));
            }
            state.unreserved_running += 1;
            false
        }
    };
    *state.running.entry(function.clone()).or_default() += 1;
    Ok(Admitted {
        admission: Arc::clone(admission),
        function: function.clone(),
        reserved,
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
}

//! What the engine tells its observer (`gust_model::observe`): each completed invocation,
//! each throttle, and periodic gauges. Emitting is a call on the observer, which must not
//! block.

use std::time::Duration;

use gust_model::function::FunctionConfig;
use gust_model::observe::{FunctionGauges, FunctionKey, Gauges, Invocation, Observation};

use crate::Engine;

/// The qualifier of an invoked function ARN (`…:function:name:qualifier`), when it names
/// one other than `$LATEST`: Lambda's `Resource` dimension is `name:qualifier` then.
pub(crate) fn qualifier_of(invoked_arn: &str) -> Option<String> {
    let rest = invoked_arn.split(":function:").nth(1)?;
    let (_, qualifier) = rest.split_once(':')?;
    (!qualifier.is_empty() && qualifier != "$LATEST").then(|| qualifier.to_owned())
}

/// Billed duration as REPORT states it: the duration and any INIT, rounded up to 1 ms.
pub(crate) fn billed_ms(duration: Duration, init: Option<Duration>) -> u64 {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(duration) + init.map_or(0.0, ms)).ceil() as u64
}

/// How one invocation ended, for [`Engine::observe_invoked`].
#[derive(Debug)]
pub(crate) struct Ended {
    pub qualifier: Option<String>,
    pub duration: Duration,
    pub cold_start: Option<Duration>,
    pub error: bool,
    pub provisioned: bool,
    pub request_id: String,
    pub trace: Option<String>,
    pub caller_parent: Option<String>,
}

impl Engine {
    fn key(&self, config: &FunctionConfig, qualifier: Option<String>) -> FunctionKey {
        FunctionKey {
            account: self.inner.config.scope.account_id.clone(),
            function: config.name.to_string(),
            qualifier,
        }
    }

    pub(crate) fn observe_invoked(&self, config: &FunctionConfig, ended: Ended) {
        let at = time::OffsetDateTime::now_utc();
        let observation = Observation::Invoked(Invocation {
            key: self.key(config, ended.qualifier),
            executed_version: config.version.to_string(),
            at,
            duration: ended.duration,
            billed_ms: billed_ms(ended.duration, ended.cold_start),
            memory_mb: config.memory_mb,
            architecture: config.architecture,
            error: ended.error,
            cold_start: ended.cold_start,
            provisioned: ended.provisioned,
            request_id: ended.request_id,
            trace: ended.trace,
            caller_parent: ended.caller_parent,
        });
        self.inner.config.observer.observe(observation);
    }

    pub(crate) fn observe_throttled(&self, function: &str, invoked_arn: &str) {
        self.inner.config.observer.observe(Observation::Throttled {
            key: FunctionKey {
                account: self.inner.config.scope.account_id.clone(),
                function: function.to_owned(),
                qualifier: qualifier_of(invoked_arn),
            },
            at: time::OffsetDateTime::now_utc(),
        });
    }

    /// This engine's gauges now: concurrency in flight, provisioned concurrency in use and
    /// ready, environments by state.
    pub fn gauges(&self) -> Gauges {
        let concurrency = self.concurrency();
        let mut functions: std::collections::BTreeMap<String, FunctionGauges> = concurrency
            .functions
            .iter()
            .map(|(name, in_flight)| {
                (
                    name.to_string(),
                    FunctionGauges {
                        function: name.to_string(),
                        concurrent: *in_flight,
                        ..FunctionGauges::default()
                    },
                )
            })
            .collect();
        for (name, ready, in_use, memory_mb, architecture) in self.provisioned_gauges() {
            let entry = functions
                .entry(name.clone())
                .or_insert_with(|| FunctionGauges {
                    function: name,
                    ..FunctionGauges::default()
                });
            entry.provisioned_ready += ready;
            entry.provisioned_in_use += in_use;
            entry.memory_mb = memory_mb;
            entry.architecture = Some(architecture);
        }
        Gauges {
            account: self.inner.config.scope.account_id.clone(),
            concurrent: concurrency.account,
            unreserved: concurrency.unreserved,
            functions: functions.into_values().collect(),
            environments: self.environments_by_state(),
        }
    }

    /// Reports [`Engine::gauges`] to the observer every `every`, until the engine's
    /// server shuts down (the task holds only a weak reference).
    pub fn start_gauges(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let engine = Engine { inner };
                let gauges = engine.gauges();
                engine
                    .inner
                    .config
                    .observer
                    .gauges(&gauges, time::OffsetDateTime::now_utc());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_of_invoked_arns() {
        let base = "arn:aws:lambda:us-east-1:000000000000:function:f";
        assert_eq!(qualifier_of(base), None);
        assert_eq!(qualifier_of(&format!("{base}:$LATEST")), None);
        assert_eq!(
            qualifier_of(&format!("{base}:live")).as_deref(),
            Some("live")
        );
        assert_eq!(qualifier_of(&format!("{base}:3")).as_deref(), Some("3"));
    }

    #[test]
    fn billed_rounds_up_duration_and_init() {
        assert_eq!(billed_ms(Duration::from_micros(1_200), None), 2);
        assert_eq!(
            billed_ms(
                Duration::from_millis(500),
                Some(Duration::from_micros(100_500))
            ),
            601
        );
        assert_eq!(billed_ms(Duration::ZERO, None), 0);
    }
}

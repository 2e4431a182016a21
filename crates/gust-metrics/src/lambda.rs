//! Lambda's metrics (namespace `AWS/Lambda`) from what the engine observes, with the
//! dimension sets Lambda publishes: none (the account's aggregate), `FunctionName`,
//! `FunctionName`+`Resource` (`name:qualifier`, when invoked through an alias or version)
//! and `FunctionName`+`ExecutedVersion` (when a published version ran).

use gust_model::observe::{FunctionKey, Gauges, Observation};
use time::OffsetDateTime;

use crate::store::SeriesKey;

/// Lambda's namespace.
pub const NAMESPACE: &str = "AWS/Lambda";

/// One value of one series at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Which series.
    pub key: SeriesKey,
    /// When.
    pub at: OffsetDateTime,
    /// The value.
    pub value: f64,
}

fn key(account: &str, name: &str, dimensions: Vec<(String, String)>, unit: &str) -> SeriesKey {
    let mut dimensions = dimensions;
    dimensions.sort();
    SeriesKey {
        account: account.to_owned(),
        namespace: NAMESPACE.to_owned(),
        name: name.to_owned(),
        dimensions,
        unit: unit.to_owned(),
    }
}

/// The dimension sets of an observation about `function`: none, `FunctionName`, and
/// `Resource` with a qualifier.
fn dimension_sets(function: &FunctionKey) -> Vec<Vec<(String, String)>> {
    let name = ("FunctionName".to_owned(), function.function.clone());
    let mut sets = vec![Vec::new(), vec![name.clone()]];
    if let Some(qualifier) = &function.qualifier {
        sets.push(vec![
            name,
            (
                "Resource".to_owned(),
                format!("{}:{qualifier}", function.function),
            ),
        ]);
    }
    sets
}

fn each_set(
    out: &mut Vec<Sample>,
    sets: &[Vec<(String, String)>],
    function: &FunctionKey,
    at: OffsetDateTime,
    metric: (&str, &str, f64),
) {
    let (name, unit, value) = metric;
    for dims in sets {
        out.push(Sample {
            key: key(&function.account, name, dims.clone(), unit),
            at,
            value,
        });
    }
}

/// The samples an observation stands for.
pub fn samples(observation: &Observation) -> Vec<Sample> {
    let mut out = Vec::new();
    match observation {
        Observation::Invoked(invocation) => {
            let function = &invocation.key;
            let mut sets = dimension_sets(function);
            if invocation.executed_version != "$LATEST" {
                sets.push(vec![
                    (
                        "ExecutedVersion".to_owned(),
                        invocation.executed_version.clone(),
                    ),
                    ("FunctionName".to_owned(), function.function.clone()),
                ]);
            }
            let at = invocation.at;
            let ms = invocation.duration.as_secs_f64() * 1000.0;
            let errors = if invocation.error { 1.0 } else { 0.0 };
            // Errors is published with every invocation (0 when it succeeded), as Lambda does.
            for metric in [
                ("Invocations", "Count", 1.0),
                ("Errors", "Count", errors),
                ("Duration", "Milliseconds", ms),
            ] {
                each_set(&mut out, &sets, function, at, metric);
            }
            if invocation.provisioned {
                let metric = ("ProvisionedConcurrencyInvocations", "Count", 1.0);
                each_set(&mut out, &sets, function, at, metric);
            }
        }
        Observation::Throttled { key: function, at } => {
            let metric = ("Throttles", "Count", 1.0);
            each_set(&mut out, &dimension_sets(function), function, *at, metric);
        }
        Observation::AsyncReceived { key: function, at } => {
            let metric = ("AsyncEventsReceived", "Count", 1.0);
            each_set(&mut out, &dimension_sets(function), function, *at, metric);
        }
        Observation::AsyncAge {
            key: function,
            at,
            age,
        } => {
            let metric = ("AsyncEventAge", "Milliseconds", age.as_secs_f64() * 1000.0);
            each_set(&mut out, &dimension_sets(function), function, *at, metric);
        }
        Observation::AsyncDropped { key: function, at } => {
            let metric = ("AsyncEventsDropped", "Count", 1.0);
            each_set(&mut out, &dimension_sets(function), function, *at, metric);
        }
        Observation::DeadLetterError { key: function, at } => {
            let metric = ("DeadLetterErrors", "Count", 1.0);
            each_set(&mut out, &dimension_sets(function), function, *at, metric);
        }
        Observation::DestinationFailure { key: function, at } => {
            let metric = ("DestinationDeliveryFailures", "Count", 1.0);
            each_set(&mut out, &dimension_sets(function), function, *at, metric);
        }
    }
    out
}

/// The samples of a periodic reading. Only readings with something in flight (or with
/// provisioned concurrency configured) are recorded, so idle accounts publish nothing;
/// `Maximum` over a period is the most seen in flight.
pub fn gauge_samples(gauges: &Gauges, at: OffsetDateTime) -> Vec<Sample> {
    let account = &gauges.account;
    let mut out = Vec::new();
    let mut push = |name: &str, dims: Vec<(String, String)>, unit: &str, value: f64| {
        out.push(Sample {
            key: key(account, name, dims, unit),
            at,
            value,
        })
    };
    if gauges.concurrent > 0 {
        push(
            "ConcurrentExecutions",
            Vec::new(),
            "Count",
            f64::from(gauges.concurrent),
        );
        push(
            "UnreservedConcurrentExecutions",
            Vec::new(),
            "Count",
            f64::from(gauges.unreserved),
        );
    }
    for f in &gauges.functions {
        let dims = vec![("FunctionName".to_owned(), f.function.clone())];
        if f.concurrent > 0 {
            push(
                "ConcurrentExecutions",
                dims.clone(),
                "Count",
                f64::from(f.concurrent),
            );
        }
        if f.provisioned_ready > 0 {
            push(
                "ProvisionedConcurrentExecutions",
                dims.clone(),
                "Count",
                f64::from(f.provisioned_in_use),
            );
            push(
                "ProvisionedConcurrencyUtilization",
                dims,
                "None",
                f64::from(f.provisioned_in_use) / f64::from(f.provisioned_ready),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gust_model::function::Architecture;
    use gust_model::observe::{FunctionGauges, Invocation};

    use super::*;

    fn function(qualifier: Option<&str>) -> FunctionKey {
        FunctionKey {
            account: "123456789012".into(),
            function: "f".into(),
            qualifier: qualifier.map(str::to_owned),
        }
    }

    fn dims(sample: &Sample) -> Vec<(&str, &str)> {
        sample
            .key
            .dimensions
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn an_invocation_through_an_alias_of_a_version() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let samples = samples(&Observation::Invoked(Invocation {
            key: function(Some("live")),
            executed_version: "3".into(),
            at,
            duration: Duration::from_millis(250),
            billed_ms: 250,
            memory_mb: 128,
            architecture: Architecture::X86_64,
            error: true,
            cold_start: None,
            provisioned: false,
            request_id: "r".into(),
            trace: None,
            caller_parent: None,
        }));
        // 3 metrics × 4 dimension sets.
        assert_eq!(samples.len(), 12);
        let durations: Vec<_> = samples
            .iter()
            .filter(|s| s.key.name == "Duration")
            .collect();
        assert!(durations
            .iter()
            .all(|s| s.value == 250.0 && s.key.unit == "Milliseconds"));
        let sets: Vec<_> = durations.iter().map(|s| dims(s)).collect();
        assert_eq!(
            sets,
            vec![
                vec![],
                vec![("FunctionName", "f")],
                vec![("FunctionName", "f"), ("Resource", "f:live")],
                vec![("ExecutedVersion", "3"), ("FunctionName", "f")],
            ]
        );
        assert!(samples
            .iter()
            .filter(|s| s.key.name == "Errors")
            .all(|s| s.value == 1.0 && s.key.namespace == NAMESPACE));
    }

    #[test]
    fn throttles_and_async_have_no_executed_version() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let s = samples(&Observation::Throttled {
            key: function(None),
            at,
        });
        assert_eq!(s.len(), 2);
        assert!(s
            .iter()
            .all(|s| s.key.name == "Throttles" && s.value == 1.0));
        let s = samples(&Observation::AsyncAge {
            key: function(Some("1")),
            at,
            age: Duration::from_secs(2),
        });
        assert_eq!(s.len(), 3);
        assert!(s
            .iter()
            .all(|s| s.key.name == "AsyncEventAge" && s.value == 2000.0));
        assert_eq!(
            dims(&s[2]),
            vec![("FunctionName", "f"), ("Resource", "f:1")]
        );
    }

    #[test]
    fn gauges_record_what_is_in_flight() {
        let at = OffsetDateTime::UNIX_EPOCH;
        assert!(gauge_samples(&Gauges::default(), at).is_empty());
        let gauges = Gauges {
            account: "a".into(),
            concurrent: 3,
            unreserved: 1,
            functions: vec![FunctionGauges {
                function: "f".into(),
                concurrent: 3,
                provisioned_in_use: 1,
                provisioned_ready: 4,
                ..FunctionGauges::default()
            }],
            environments: Vec::new(),
        };
        let s = gauge_samples(&gauges, at);
        let find = |name: &str, with_function: bool| {
            s.iter()
                .find(|s| s.key.name == name && s.key.dimensions.is_empty() != with_function)
                .map(|s| s.value)
        };
        assert_eq!(find("ConcurrentExecutions", false), Some(3.0));
        assert_eq!(find("UnreservedConcurrentExecutions", false), Some(1.0));
        assert_eq!(find("ConcurrentExecutions", true), Some(3.0));
        assert_eq!(find("ProvisionedConcurrentExecutions", true), Some(1.0));
        assert_eq!(find("ProvisionedConcurrencyUtilization", true), Some(0.25));
    }
}

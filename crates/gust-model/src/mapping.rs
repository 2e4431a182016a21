//! Event source mappings: a function reading a queue in batches. The settings as Lambda
//! validates them for an SQS source, and the mapping's lifecycle.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Violations};

/// Most records per batch from a standard queue (with a batching window).
pub const BATCH_SIZE_MAX: i64 = 10_000;
/// Most records per batch without a window, and from a FIFO queue.
pub const BATCH_SIZE_UNWINDOWED: i64 = 10;
/// Lambda's default batch size for SQS.
pub const BATCH_SIZE_DEFAULT: u32 = 10;
/// Most filter patterns on one SQS mapping.
pub const FILTERS_MAX: usize = 5;
/// The largest batch payload, bytes (a synchronous invoke's limit).
pub const BATCH_BYTES_MAX: usize = 6 * 1024 * 1024;

/// Where a mapping is in its life. Transitions are methods; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MappingState {
    /// Just created; its pollers are starting.
    Creating,
    /// Polling.
    Enabled,
    /// Stopped by the user.
    Disabled,
    /// Being turned on.
    Enabling,
    /// Being turned off.
    Disabling,
    /// A settings change is being applied.
    Updating,
    /// Going away.
    Deleting,
}

/// A state change the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event source mapping cannot go from {from:?} to {to:?}")]
pub struct InvalidMappingTransition {
    /// Where it was.
    pub from: MappingState,
    /// Where it was asked to go.
    pub to: MappingState,
}

impl MappingState {
    /// Lambda's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingState::Creating => "Creating",
            MappingState::Enabled => "Enabled",
            MappingState::Disabled => "Disabled",
            MappingState::Enabling => "Enabling",
            MappingState::Disabling => "Disabling",
            MappingState::Updating => "Updating",
            MappingState::Deleting => "Deleting",
        }
    }

    /// The next state for `to`, if the move is legal.
    pub fn transition(self, to: MappingState) -> Result<MappingState, InvalidMappingTransition> {
        use MappingState::*;
        let legal = match (self, to) {
            (_, Deleting) => self != Deleting,
            // A change is accepted in any settled or changing state but Deleting.
            (Creating | Enabled | Disabled | Enabling | Disabling | Updating, Updating) => true,
            (Creating | Updating | Enabling, Enabled | Disabled) => true,
            (Enabled | Updating | Creating, Disabling) => true,
            (Disabled | Updating | Creating, Enabling) => true,
            (Disabling, Disabled) => true,
            _ => false,
        };
        if legal {
            Ok(to)
        } else {
            Err(InvalidMappingTransition { from: self, to })
        }
    }

    /// The settled state a mapping reaches: `Enabled` or `Disabled`.
    pub fn settled(enabled: bool) -> MappingState {
        if enabled {
            MappingState::Enabled
        } else {
            MappingState::Disabled
        }
    }

    /// Whether pollers should run.
    pub fn polls(self) -> bool {
        matches!(
            self,
            MappingState::Creating
                | MappingState::Enabled
                | MappingState::Enabling
                | MappingState::Updating
        )
    }
}

/// A mapping's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingSettings {
    /// Records per batch.
    pub batch_size: u32,
    /// How long to gather a batch, seconds (0: invoke with what one poll returns).
    pub window_s: u32,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, as given.
    pub filters: Vec<String>,
    /// `ScalingConfig.MaximumConcurrency`.
    pub maximum_concurrency: Option<u32>,
    /// `Enabled`.
    pub enabled: bool,
}

impl Default for MappingSettings {
    fn default() -> Self {
        MappingSettings {
            batch_size: BATCH_SIZE_DEFAULT,
            window_s: 0,
            report_item_failures: false,
            filters: Vec::new(),
            maximum_concurrency: None,
            enabled: true,
        }
    }
}

/// A change to a mapping's settings as requested (create is a change applied to the
/// defaults); `None` leaves a member as it is.
#[derive(Debug, Clone, Default)]
pub struct MappingChange {
    /// `BatchSize`.
    pub batch_size: Option<i64>,
    /// `MaximumBatchingWindowInSeconds`.
    pub window_s: Option<i64>,
    /// `FunctionResponseTypes`.
    pub response_types: Option<Vec<String>>,
    /// `FilterCriteria.Filters[].Pattern` (`Some(empty)` clears).
    pub filters: Option<Vec<String>>,
    /// `ScalingConfig.MaximumConcurrency` (`Some(None)` clears).
    pub maximum_concurrency: Option<Option<i64>>,
    /// `Enabled`.
    pub enabled: Option<bool>,
}

impl MappingSettings {
    /// Applies `change` for a queue (`fifo` for a FIFO queue), with Lambda's checks: the
    /// model's ranges first (all violations together), then the rules between members.
    /// `check_pattern` validates one filter pattern (EventBridge's language).
    pub fn apply(
        &self,
        change: &MappingChange,
        fifo: bool,
        check_pattern: impl Fn(&str) -> Result<(), String>,
    ) -> Result<MappingSettings, ModelError> {
        let mut violations = Violations::default();
        if let Some(size) = change.batch_size {
            violations.range(size, "batchSize", 1, BATCH_SIZE_MAX);
        }
        if let Some(window) = change.window_s {
            violations.range(window, "maximumBatchingWindowInSeconds", 0, 300);
        }
        if let Some(Some(concurrency)) = change.maximum_concurrency {
            violations.range(concurrency, "scalingConfig.maximumConcurrency", 2, 1000);
        }
        violations.finish()?;
        let mut next = self.clone();
        if let Some(size) = change.batch_size {
            next.batch_size = size as u32;
        }
        if let Some(window) = change.window_s {
            next.window_s = window as u32;
        }
        if let Some(types) = &change.response_types {
            if let Some(other) = types.iter().find(|t| *t != "ReportBatchItemFailures") {
                return Err(ModelError::constraint(
                    format!("[{other}]"),
                    "functionResponseTypes",
                    "Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]",
                ));
            }
            next.report_item_failures = !types.is_empty();
        }
        if let Some(filters) = &change.filters {
            if filters.len() > FILTERS_MAX {
                return Err(ModelError::invalid(format!(
                    "The maximum number of filters for this event source is {FILTERS_MAX}."
                )));
            }
            for pattern in filters {
                check_pattern(pattern).map_err(|reason| {
                    ModelError::invalid(format!("Invalid filter pattern definition. {reason}"))
                })?;
            }
            next.filters = filters.clone();
        }
        if let Some(concurrency) = change.maximum_concurrency {
            next.maximum_concurrency = concurrency.map(|c| c as u32);
        }
        if let Some(enabled) = change.enabled {
            next.enabled = enabled;
        }
        if fifo {
            if i64::from(next.batch_size) > BATCH_SIZE_UNWINDOWED {
                return Err(ModelError::invalid(format!(
                    "Batch size for FIFO queues must be between 1 and {BATCH_SIZE_UNWINDOWED}."
                )));
            }
            if next.window_s > 0 {
                return Err(ModelError::invalid(
                    "Batching window is not supported for FIFO queues.",
                ));
            }
        } else if i64::from(next.batch_size) > BATCH_SIZE_UNWINDOWED && next.window_s == 0 {
            return Err(ModelError::invalid(
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
            ));
        }
        Ok(next)
    }
}

/// Why a source cannot be mapped: Lambda's other poll-based sources are not in Gust yet.
pub fn unsupported_source(arn: &str) -> Option<&'static str> {
    let service = arn.split(':').nth(2).unwrap_or_default();
    match service {
        "sqs" => None,
        "kinesis" => Some("Kinesis streams"),
        "dynamodb" => Some("DynamoDB streams"),
        "kafka" => Some("Amazon MSK clusters"),
        "mq" => Some("Amazon MQ brokers"),
        "rds" | "docdb" => Some("DocumentDB change streams"),
        _ => Some("this kind of event source"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &str) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn batch_rules_are_lambdas() {
        let base = MappingSettings::default();
        let big = MappingChange {
            batch_size: Some(100),
            ..Default::default()
        };
        let error = base.apply(&big, false, ok).unwrap_err().to_string();
        assert!(
            error.contains("greater than 0 if maximum batch size is greater than 10"),
            "{error}"
        );
        let windowed = MappingChange {
            batch_size: Some(100),
            window_s: Some(1),
            ..Default::default()
        };
        assert_eq!(base.apply(&windowed, false, ok).unwrap().batch_size, 100);
        assert!(base.apply(&windowed, true, ok).is_err(), "FIFO: 10 at most");
        let out_of_range = MappingChange {
            batch_size: Some(0),
            window_s: Some(301),
            maximum_concurrency: Some(Some(1)),
            ..Default::default()
        };
        let error = base
            .apply(&out_of_range, false, ok)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("3 validation errors detected"), "{error}");
        let too_many = MappingChange {
            filters: Some(vec!["{}".into(); 6]),
            ..Default::default()
        };
        assert!(base.apply(&too_many, false, ok).is_err());
        let bad = MappingChange {
            filters: Some(vec!["nope".into()]),
            ..Default::default()
        };
        assert!(base
            .apply(&bad, false, |_| Err("not JSON".into()))
            .unwrap_err()
            .to_string()
            .contains("Invalid filter pattern definition"));
    }

    #[test]
    fn lifecycle() {
        use MappingState::*;
        assert_eq!(Creating.transition(Enabled), Ok(Enabled));
        assert_eq!(Enabled.transition(Updating), Ok(Updating));
        assert_eq!(Updating.transition(Disabled), Ok(Disabled));
        assert!(Deleting.transition(Enabled).is_err());
        assert!(Deleting.transition(Deleting).is_err());
        assert!(
            Disabled.transition(Enabled).is_err(),
            "through Enabling or Updating"
        );
        assert!(unsupported_source("arn:aws:sqs:us-east-1:000000000000:q").is_none());
        assert!(unsupported_source("arn:aws:kinesis:us-east-1:000000000000:stream/s").is_some());
    }
}

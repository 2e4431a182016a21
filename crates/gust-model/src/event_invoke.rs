//! Asynchronous invocation settings (`PutFunctionEventInvokeConfig`): how often a failed
//! event is retried, how old it may get, and where outcomes go.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Violations};

/// Most retries of a failed event.
pub const MAX_RETRY_ATTEMPTS: u32 = 2;
/// Oldest an event may get, seconds (and the default).
pub const MAX_EVENT_AGE: u32 = 21_600;
/// Youngest maximum age, seconds.
pub const MIN_EVENT_AGE: u32 = 60;

/// A function's (or a qualifier's) asynchronous invocation settings as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    /// `MaximumRetryAttempts` (default 2).
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumEventAgeInSeconds` (default 21,600).
    pub maximum_event_age_seconds: Option<u32>,
    /// `DestinationConfig.OnSuccess.Destination`.
    pub on_success: Option<String>,
    /// `DestinationConfig.OnFailure.Destination`.
    pub on_failure: Option<String>,
    /// When it last changed, ms since the epoch.
    pub last_modified_ms: i64,
}

impl EventInvokeConfig {
    /// Retries of a function error.
    pub fn retries(&self) -> u32 {
        self.maximum_retry_attempts.unwrap_or(MAX_RETRY_ATTEMPTS)
    }

    /// Oldest an event may get, seconds.
    pub fn max_age(&self) -> u32 {
        self.maximum_event_age_seconds.unwrap_or(MAX_EVENT_AGE)
    }
}

/// The kinds of destination an outcome can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// An SQS queue.
    Queue,
    /// An SNS topic.
    Topic,
    /// A Lambda function (invoked asynchronously with the record).
    Function,
    /// An EventBridge bus (the record as an event's detail).
    Bus,
    /// An S3 bucket (failures only: the record as an object).
    Bucket,
}

/// The kind of destination an ARN names, if Gust can deliver to it.
pub fn destination_kind(arn: &str) -> Result<DestinationKind, ModelError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() => Ok(DestinationKind::Queue),
        ["arn", _, "sns", _, _, name] if !name.is_empty() => Ok(DestinationKind::Topic),
        ["arn", _, "lambda", _, _, rest] if rest.starts_with("function:") => {
            Ok(DestinationKind::Function)
        }
        ["arn", _, "events", _, _, rest]
            if rest.len() > "event-bus/".len() && rest.starts_with("event-bus/") =>
        {
            Ok(DestinationKind::Bus)
        }
        ["arn", _, "s3", "", "", bucket] if !bucket.is_empty() && !bucket.contains('/') => {
            Ok(DestinationKind::Bucket)
        }
        _ => Err(ModelError::invalid(format!(
            "The destination ARN {arn} is invalid."
        ))),
    }
}

/// Checks the settings of a put or an update; `function_arn` is the function configured
/// (a function may not be its own destination).
pub fn validate(config: &EventInvokeConfig, function_arn: &str) -> Result<(), ModelError> {
    let mut violations = Violations::default();
    if let Some(retries) = config.maximum_retry_attempts {
        violations.range(
            i64::from(retries),
            "maximumRetryAttempts",
            0,
            i64::from(MAX_RETRY_ATTEMPTS),
        );
    }
    if let Some(age) = config.maximum_event_age_seconds {
        violations.range(
            i64::from(age),
            "maximumEventAgeInSeconds",
            i64::from(MIN_EVENT_AGE),
            i64::from(MAX_EVENT_AGE),
        );
    }
    for destination in [&config.on_success, &config.on_failure]
        .into_iter()
        .flatten()
    {
        violations.length(destination, "destination", 0, 350);
    }
    violations.finish()?;
    if let Some(success) = &config.on_success {
        if destination_kind(success)? == DestinationKind::Bucket {
            return Err(ModelError::invalid(
                "S3 buckets are supported only for on-failure destinations. To retain records of successful invocations, use another destination type.",
            ));
        }
    }
    let unqualified = |arn: &str| {
        let parts: Vec<&str> = arn.split(':').collect();
        parts.iter().take(7).copied().collect::<Vec<_>>().join(":")
    };
    for destination in [&config.on_success, &config.on_failure]
        .into_iter()
        .flatten()
    {
        if destination_kind(destination)? == DestinationKind::Function
            && unqualified(destination) == unqualified(function_arn)
        {
            return Err(ModelError::invalid(
                "You can't specify the function as a destination for itself.",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

    #[test]
    fn limits_and_destinations() {
        let ok = EventInvokeConfig {
            maximum_retry_attempts: Some(0),
            maximum_event_age_seconds: Some(60),
            on_success: Some("arn:aws:sqs:us-east-1:000000000000:q".into()),
            on_failure: Some("arn:aws:sns:us-east-1:000000000000:t".into()),
            last_modified_ms: 0,
        };
        assert!(validate(&ok, ARN).is_ok());
        let too_many = EventInvokeConfig {
            maximum_retry_attempts: Some(3),
            maximum_event_age_seconds: Some(59),
            ..ok.clone()
        };
        let message = validate(&too_many, ARN).unwrap_err().to_string();
        assert!(
            message.starts_with("2 validation errors detected"),
            "{message}"
        );
        let itself = EventInvokeConfig {
            on_success: Some(format!("{ARN}:$LATEST")),
            ..ok.clone()
        };
        assert!(validate(&itself, ARN).is_err());
        let bus = EventInvokeConfig {
            on_failure: Some("arn:aws:events:us-east-1:000000000000:event-bus/default".into()),
            ..ok.clone()
        };
        assert!(validate(&bus, ARN).is_ok());
        let bucket = EventInvokeConfig {
            on_failure: Some("arn:aws:s3:::bucket".into()),
            ..ok.clone()
        };
        assert!(validate(&bucket, ARN).is_ok());
        let bucket_on_success = EventInvokeConfig {
            on_success: Some("arn:aws:s3:::bucket".into()),
            ..ok
        };
        assert!(validate(&bucket_on_success, ARN).is_err());
        assert_eq!(EventInvokeConfig::default().retries(), 2);
        assert_eq!(EventInvokeConfig::default().max_age(), 21_600);
    }
}

//! Application Auto Scaling's errors: one variant per exception shape of the service, so the
//! protocol adapter answers with the shape's name and the message as AWS words it.

use crate::model::{DIMENSION, NAMESPACE};

/// Why an Application Auto Scaling operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoscalingError {
    /// A parameter is invalid, or the request cannot be done as asked.
    #[error("{0}")]
    Validation(String),
    /// The scalable target, scheduled action or scaling policy does not exist.
    #[error("{0}")]
    ObjectNotFound(String),
    /// Another change to the same resource is in progress.
    #[error("{0}")]
    ConcurrentUpdate(String),
    /// A quota (targets, scheduled actions, policies) would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// A `NextToken` this service did not issue.
    #[error("{0}")]
    InvalidNextToken(String),
    /// The tagged resource (a scalable target's ARN) does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// More tags than a resource may carry.
    #[error("{0}")]
    TooManyTags(String),
    /// The store failed; the cause is logged, not sent.
    #[error("{0}")]
    InternalService(String),
}

impl AutoscalingError {
    /// The exception's shape name (the JSON protocol's `__type`).
    pub fn shape(&self) -> &'static str {
        match self {
            AutoscalingError::Validation(_) => "ValidationException",
            AutoscalingError::ObjectNotFound(_) => "ObjectNotFoundException",
            AutoscalingError::ConcurrentUpdate(_) => "ConcurrentUpdateException",
            AutoscalingError::LimitExceeded(_) => "LimitExceededException",
            AutoscalingError::InvalidNextToken(_) => "InvalidNextTokenException",
            AutoscalingError::ResourceNotFound(_) => "ResourceNotFoundException",
            AutoscalingError::TooManyTags(_) => "TooManyTagsException",
            AutoscalingError::InternalService(_) => "InternalServiceException",
        }
    }

    /// Whether the service, not the caller, is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, AutoscalingError::InternalService(_))
    }

    /// `ObjectNotFoundException` for a target that is not registered.
    pub fn target_not_found(resource_id: &str) -> Self {
        AutoscalingError::ObjectNotFound(format!(
            "No scalable target registered for service namespace: {NAMESPACE}, resource ID: {resource_id}, scalable dimension: {DIMENSION}"
        ))
    }

    /// `ObjectNotFoundException` for a scheduled action that does not exist.
    pub fn scheduled_action_not_found(resource_id: &str, name: &str) -> Self {
        AutoscalingError::ObjectNotFound(format!(
            "No scheduled action found for service namespace: {NAMESPACE}, resource ID: {resource_id}, scalable dimension: {DIMENSION}, scheduled action name: {name}"
        ))
    }

    /// `ObjectNotFoundException` for a scaling policy that does not exist.
    pub fn policy_not_found(resource_id: &str, name: &str) -> Self {
        AutoscalingError::ObjectNotFound(format!(
            "No scaling policy found for service namespace: {NAMESPACE}, resource ID: {resource_id}, scalable dimension: {DIMENSION}, policy name: {name}"
        ))
    }

    /// `InvalidNextTokenException`.
    pub fn invalid_next_token() -> Self {
        AutoscalingError::InvalidNextToken("Invalid NextToken".into())
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        AutoscalingError::Validation(message.into())
    }

    fn internal() -> Self {
        AutoscalingError::InternalService("The service encountered an internal error.".into())
    }
}

impl From<rusqlite::Error> for AutoscalingError {
    fn from(error: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, _) = &error {
            if matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) {
                return AutoscalingError::ConcurrentUpdate(
                    "Concurrent updates to the same resource. Try again.".into(),
                );
            }
        }
        tracing::error!(%error, "autoscaling store failed");
        AutoscalingError::internal()
    }
}

impl From<serde_json::Error> for AutoscalingError {
    fn from(error: serde_json::Error) -> Self {
        tracing::error!(%error, "autoscaling record unreadable");
        AutoscalingError::internal()
    }
}

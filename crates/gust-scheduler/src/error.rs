//! EventBridge Scheduler's errors: one variant per exception of the service, so the protocol
//! adapter answers with the exception's name, its status and the message as AWS words it.

/// Why a Scheduler operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// A parameter is invalid (400).
    #[error("{0}")]
    Validation(String),
    /// The schedule or schedule group does not exist (404).
    #[error("{0}")]
    ResourceNotFound(String),
    /// The resource exists already, or is changing (409).
    #[error("{0}")]
    Conflict(String),
    /// A quota (schedules, schedule groups) would be exceeded (402).
    #[error("{0}")]
    ServiceQuotaExceeded(String),
    /// The store failed; the cause is logged, not sent (500).
    #[error("{0}")]
    InternalServer(String),
}

/// The message EventBridge Scheduler gives for its own failures.
pub const INTERNAL_MESSAGE: &str = "Unexpected error occurred while processing the request";

impl SchedulerError {
    /// The exception's shape name (`x-amzn-ErrorType`).
    pub fn shape(&self) -> &'static str {
        match self {
            SchedulerError::Validation(_) => "ValidationException",
            SchedulerError::ResourceNotFound(_) => "ResourceNotFoundException",
            SchedulerError::Conflict(_) => "ConflictException",
            SchedulerError::ServiceQuotaExceeded(_) => "ServiceQuotaExceededException",
            SchedulerError::InternalServer(_) => "InternalServerException",
        }
    }

    /// The HTTP status the service model gives the exception.
    pub fn status(&self) -> u16 {
        match self {
            SchedulerError::Validation(_) => 400,
            SchedulerError::ResourceNotFound(_) => 404,
            SchedulerError::Conflict(_) => 409,
            SchedulerError::ServiceQuotaExceeded(_) => 402,
            SchedulerError::InternalServer(_) => 500,
        }
    }

    /// Whether the service, not the caller, is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, SchedulerError::InternalServer(_))
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        SchedulerError::Validation(message.into())
    }

    /// `ResourceNotFoundException` for a schedule.
    pub fn schedule_not_found(name: &str) -> Self {
        SchedulerError::ResourceNotFound(format!("Schedule {name} does not exist."))
    }

    /// `ResourceNotFoundException` for a schedule group.
    pub fn group_not_found(name: &str) -> Self {
        SchedulerError::ResourceNotFound(format!("Schedule group {name} does not exist."))
    }

    /// `InternalServerException`.
    pub fn internal() -> Self {
        SchedulerError::InternalServer(INTERNAL_MESSAGE.into())
    }
}

impl From<rusqlite::Error> for SchedulerError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "scheduler store failed");
        SchedulerError::internal()
    }
}

impl From<serde_json::Error> for SchedulerError {
    fn from(error: serde_json::Error) -> Self {
        tracing::error!(%error, "scheduler record unreadable");
        SchedulerError::internal()
    }
}

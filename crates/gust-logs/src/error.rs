//! CloudWatch Logs' errors: one variant per exception shape, worded as the service words
//! them, so the protocol adapter answers with the shape's name and this message.

/// Why a CloudWatch Logs operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    /// A parameter is invalid.
    #[error("{0}")]
    InvalidParameter(String),
    /// The log group or stream does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The log group or stream already exists.
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// A resource would have more than 50 tags.
    #[error("{0}")]
    TooManyTags(String),
    /// The store failed; the cause is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl LogsError {
    /// The exception's shape name (the JSON protocol's `__type`).
    pub fn shape(&self) -> &'static str {
        match self {
            LogsError::InvalidParameter(_) => "InvalidParameterException",
            LogsError::ResourceNotFound(_) => "ResourceNotFoundException",
            LogsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            LogsError::LimitExceeded(_) => "LimitExceededException",
            LogsError::TooManyTags(_) => "TooManyTagsException",
            LogsError::Internal(_) => "ServiceUnavailableException",
        }
    }

    /// Whether the service, not the caller, is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, LogsError::Internal(_))
    }

    /// `InvalidParameterException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        LogsError::InvalidParameter(message.into())
    }

    /// `ResourceNotFoundException` for a log group.
    pub fn group_not_found() -> Self {
        LogsError::ResourceNotFound("The specified log group does not exist.".into())
    }

    /// `ResourceNotFoundException` for a log stream.
    pub fn stream_not_found() -> Self {
        LogsError::ResourceNotFound("The specified log stream does not exist.".into())
    }

    /// `ResourceAlreadyExistsException` for a log group.
    pub fn group_exists() -> Self {
        LogsError::ResourceAlreadyExists("The specified log group already exists".into())
    }

    /// `ResourceAlreadyExistsException` for a log stream.
    pub fn stream_exists() -> Self {
        LogsError::ResourceAlreadyExists("The specified log stream already exists".into())
    }

    /// `ServiceUnavailableException`.
    pub fn internal() -> Self {
        LogsError::Internal("The service cannot complete the request.".into())
    }
}

impl From<rusqlite::Error> for LogsError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "log store failed");
        LogsError::internal()
    }
}

impl From<serde_json::Error> for LogsError {
    fn from(error: serde_json::Error) -> Self {
        tracing::error!(%error, "log store record unreadable");
        LogsError::internal()
    }
}

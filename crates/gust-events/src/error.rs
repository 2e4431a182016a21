//! EventBridge's errors: one variant per exception shape of the service, so the protocol
//! adapter answers with the shape's name and the message as AWS words it.

/// Why an EventBridge operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// A parameter is invalid, or the request cannot be done as asked.
    #[error("{0}")]
    Validation(String),
    /// The event bus, rule or target does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The event bus already exists.
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// Another change to the same resource is in progress.
    #[error("{0}")]
    ConcurrentModification(String),
    /// A quota (buses, rules, targets, tags, pattern size) would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The event pattern is not valid (`Event pattern is not valid. Reason: …`).
    #[error("{0}")]
    InvalidEventPattern(String),
    /// The rule is managed by an AWS service (Gust has none; kept for the shape).
    #[error("{0}")]
    ManagedRule(String),
    /// The store failed; the cause is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl EventsError {
    /// The exception's shape name (the JSON protocol's `__type`).
    pub fn shape(&self) -> &'static str {
        match self {
            EventsError::Validation(_) => "ValidationException",
            EventsError::ResourceNotFound(_) => "ResourceNotFoundException",
            EventsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            EventsError::ConcurrentModification(_) => "ConcurrentModificationException",
            EventsError::LimitExceeded(_) => "LimitExceededException",
            EventsError::InvalidEventPattern(_) => "InvalidEventPatternException",
            EventsError::ManagedRule(_) => "ManagedRuleException",
            EventsError::Internal(_) => "InternalException",
        }
    }

    /// Whether the service, not the caller, is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, EventsError::Internal(_))
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        EventsError::Validation(message.into())
    }

    /// `ResourceNotFoundException` for a bus.
    pub fn bus_not_found(name: &str) -> Self {
        EventsError::ResourceNotFound(format!("Event bus {name} does not exist."))
    }

    /// `ResourceNotFoundException` for a rule.
    pub fn rule_not_found(name: &str, bus: &str) -> Self {
        EventsError::ResourceNotFound(format!("Rule {name} does not exist on EventBus {bus}."))
    }

    /// `LimitExceededException`, as EventBridge words it for every quota.
    pub fn limit_exceeded() -> Self {
        EventsError::LimitExceeded(
            "The requested resource exceeds the maximum number allowed.".into(),
        )
    }

    /// `InternalException`.
    pub fn internal() -> Self {
        EventsError::Internal("An internal error occurred.".into())
    }
}

impl From<rusqlite::Error> for EventsError {
    fn from(error: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, _) = &error {
            if matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) {
                return EventsError::ConcurrentModification(
                    "Concurrent modification detected. Try again.".into(),
                );
            }
        }
        tracing::error!(%error, "events store failed");
        EventsError::internal()
    }
}

impl From<serde_json::Error> for EventsError {
    fn from(error: serde_json::Error) -> Self {
        tracing::error!(%error, "events record unreadable");
        EventsError::internal()
    }
}

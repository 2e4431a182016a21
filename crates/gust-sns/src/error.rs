//! SNS's errors: each variant is one of the service's error shapes, with its query-protocol
//! code, its status and its fault side, so the protocol adapter renders them as SNS does.

/// Why an SNS operation failed, as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    /// A parameter breaks a constraint (`Invalid parameter: TopicArn`, ...). The text is
    /// the whole message.
    #[error("{0}")]
    InvalidParameter(String),
    /// A parameter's value is invalid (message attributes, mostly).
    #[error("{0}")]
    InvalidParameterValue(String),
    /// No such topic or subscription (`Topic does not exist`).
    #[error("{0}")]
    NotFound(String),
    /// No such resource, for the tagging operations.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The caller may not act on this resource.
    #[error("{0}")]
    AuthorizationError(String),
    /// Too many topics in the account.
    #[error("Topic limit exceeded")]
    TopicLimitExceeded,
    /// Too many subscriptions on the topic.
    #[error("Subscription limit exceeded")]
    SubscriptionLimitExceeded,
    /// Too many filter policies on the topic.
    #[error("Filter policy limit exceeded")]
    FilterPolicyLimitExceeded,
    /// More than 50 tags on a topic.
    #[error("Could not complete request: tag quota of per resource exceeded")]
    TagLimitExceeded,
    /// A tag that breaks the tagging rules.
    #[error("{0}")]
    TagPolicy(String),
    /// A batch entry id outside `[A-Za-z0-9_-]{1,80}`.
    #[error("The Id of a batch entry in a batch request doesn't abide by the specification.")]
    InvalidBatchEntryId,
    /// Two entries with one id.
    #[error("Two or more batch entries in the request have the same Id.")]
    BatchEntryIdsNotDistinct,
    /// A batch without entries.
    #[error("The batch request doesn't contain any entries.")]
    EmptyBatchRequest,
    /// More than 10 entries.
    #[error("The batch request contains more entries than permissible.")]
    TooManyEntriesInBatchRequest,
    /// Entries together larger than the topic's maximum message size.
    #[error("The length of all the batch messages put together is more than the limit.")]
    BatchRequestTooLong,
    /// The store failed; the cause is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl SnsError {
    /// `InvalidParameter` with SNS's `Invalid parameter: ` prefix.
    pub fn invalid(what: impl std::fmt::Display) -> Self {
        SnsError::InvalidParameter(format!("Invalid parameter: {what}"))
    }

    /// The query protocol's error code (`<Code>`).
    pub fn code(&self) -> &'static str {
        match self {
            SnsError::InvalidParameter(_) => "InvalidParameter",
            SnsError::InvalidParameterValue(_) => "ParameterValueInvalid",
            SnsError::NotFound(_) => "NotFound",
            SnsError::ResourceNotFound(_) => "ResourceNotFound",
            SnsError::AuthorizationError(_) => "AuthorizationError",
            SnsError::TopicLimitExceeded => "TopicLimitExceeded",
            SnsError::SubscriptionLimitExceeded => "SubscriptionLimitExceeded",
            SnsError::FilterPolicyLimitExceeded => "FilterPolicyLimitExceeded",
            SnsError::TagLimitExceeded => "TagLimitExceeded",
            SnsError::TagPolicy(_) => "TagPolicy",
            SnsError::InvalidBatchEntryId => "InvalidBatchEntryId",
            SnsError::BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            SnsError::EmptyBatchRequest => "EmptyBatchRequest",
            SnsError::TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            SnsError::BatchRequestTooLong => "BatchRequestTooLong",
            SnsError::Internal(_) => "InternalError",
        }
    }

    /// The error's shape name in the service model (`NotFoundException`, ...).
    pub fn shape(&self) -> &'static str {
        match self {
            SnsError::InvalidParameter(_) => "InvalidParameterException",
            SnsError::InvalidParameterValue(_) => "InvalidParameterValueException",
            SnsError::NotFound(_) => "NotFoundException",
            SnsError::ResourceNotFound(_) => "ResourceNotFoundException",
            SnsError::AuthorizationError(_) => "AuthorizationErrorException",
            SnsError::TopicLimitExceeded => "TopicLimitExceededException",
            SnsError::SubscriptionLimitExceeded => "SubscriptionLimitExceededException",
            SnsError::FilterPolicyLimitExceeded => "FilterPolicyLimitExceededException",
            SnsError::TagLimitExceeded => "TagLimitExceededException",
            SnsError::TagPolicy(_) => "TagPolicyException",
            SnsError::InvalidBatchEntryId => "InvalidBatchEntryIdException",
            SnsError::BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinctException",
            SnsError::EmptyBatchRequest => "EmptyBatchRequestException",
            SnsError::TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequestException",
            SnsError::BatchRequestTooLong => "BatchRequestTooLongException",
            SnsError::Internal(_) => "InternalErrorException",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            SnsError::NotFound(_) | SnsError::ResourceNotFound(_) => 404,
            SnsError::AuthorizationError(_)
            | SnsError::TopicLimitExceeded
            | SnsError::SubscriptionLimitExceeded
            | SnsError::FilterPolicyLimitExceeded => 403,
            SnsError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// Whether the caller is at fault (`Sender`) rather than the service (`Receiver`).
    pub fn sender_fault(&self) -> bool {
        !matches!(self, SnsError::Internal(_))
    }
}

impl From<rusqlite::Error> for SnsError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "topic store failed");
        SnsError::Internal("Internal error".into())
    }
}

//! SQS's errors: each variant is one of the service's error shapes, with its JSON `__type`
//! name, its query-protocol code and its status, so every protocol adapter answers alike.

/// Why an SQS operation failed, as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqsError {
    /// No such queue (or not one the caller may see).
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    /// `CreateQueue` of an existing name with other attributes.
    #[error("{0}")]
    QueueNameExists(String),
    /// A name reused within 60 seconds of its queue's deletion.
    #[error("You must wait 60 seconds after deleting a queue before you can create another queue with the same name.")]
    QueueDeletedRecently,
    /// A second purge within 60 seconds.
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    /// A limit on in-flight messages or on queues.
    #[error("{0}")]
    OverLimit(String),
    /// A receipt handle this server never issued.
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    /// `ChangeMessageVisibility` of a message that is not in flight.
    #[error("Message not inflight.")]
    MessageNotInflight,
    /// More than 10 entries in a batch.
    #[error("Maximum number of entries per request are 10. You have sent {0}.")]
    TooManyEntriesInBatchRequest(usize),
    /// A batch without entries; the text names the entry type.
    #[error("There should be at least one {0} in the request.")]
    EmptyBatchRequest(&'static str),
    /// Two entries with one id.
    #[error("Id {0} repeated.")]
    BatchEntryIdsNotDistinct(String),
    /// An entry id outside `[A-Za-z0-9_-]{1,80}`.
    #[error("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")]
    InvalidBatchEntryId,
    /// A batch whose messages together exceed the limit.
    #[error("Batch requests cannot be longer than {limit} bytes. You have sent {sent} bytes.")]
    BatchRequestTooLong {
        /// The limit.
        limit: usize,
        /// What was sent.
        sent: usize,
    },
    /// An attribute name the operation does not know.
    #[error("{0}")]
    InvalidAttributeName(String),
    /// An attribute value out of range or malformed.
    #[error("{0}")]
    InvalidAttributeValue(String),
    /// A body with characters outside XML's.
    #[error("{0}")]
    InvalidMessageContents(String),
    /// A parameter's value is invalid.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// A required parameter is missing.
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(String),
    /// An operation the queue's type does not support.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// A message move task or other named resource that does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The caller may not act on another account's queue.
    #[error("Access to the resource {0} is denied.")]
    AccessDenied(String),
    /// The store failed; the cause is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl SqsError {
    /// The error's shape name (the JSON protocol's `__type`, after `com.amazonaws.sqs#`).
    pub fn shape(&self) -> &'static str {
        match self {
            SqsError::QueueDoesNotExist => "QueueDoesNotExist",
            SqsError::QueueNameExists(_) => "QueueNameExists",
            SqsError::QueueDeletedRecently => "QueueDeletedRecently",
            SqsError::PurgeQueueInProgress(_) => "PurgeQueueInProgress",
            SqsError::OverLimit(_) => "OverLimit",
            SqsError::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            SqsError::MessageNotInflight => "MessageNotInflight",
            SqsError::TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            SqsError::EmptyBatchRequest(_) => "EmptyBatchRequest",
            SqsError::BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            SqsError::InvalidBatchEntryId => "InvalidBatchEntryId",
            SqsError::BatchRequestTooLong { .. } => "BatchRequestTooLong",
            SqsError::InvalidAttributeName(_) => "InvalidAttributeName",
            SqsError::InvalidAttributeValue(_) => "InvalidAttributeValue",
            SqsError::InvalidMessageContents(_) => "InvalidMessageContents",
            SqsError::InvalidParameterValue(_) => "InvalidParameterValueException",
            SqsError::MissingParameter(_) => "MissingRequiredParameterException",
            SqsError::UnsupportedOperation(_) => "UnsupportedOperation",
            SqsError::ResourceNotFound(_) => "ResourceNotFoundException",
            SqsError::AccessDenied(_) => "AccessDeniedException",
            SqsError::Internal(_) => "InternalError",
        }
    }

    /// The query protocol's error code (also sent by the JSON protocol in
    /// `x-amzn-query-error`, which botocore reports as the error's code).
    pub fn query_code(&self) -> &'static str {
        match self {
            SqsError::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            SqsError::QueueNameExists(_) => "QueueAlreadyExists",
            SqsError::QueueDeletedRecently => "AWS.SimpleQueueService.QueueDeletedRecently",
            SqsError::PurgeQueueInProgress(_) => "AWS.SimpleQueueService.PurgeQueueInProgress",
            SqsError::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            SqsError::TooManyEntriesInBatchRequest(_) => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            SqsError::EmptyBatchRequest(_) => "AWS.SimpleQueueService.EmptyBatchRequest",
            SqsError::BatchEntryIdsNotDistinct(_) => {
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
            }
            SqsError::InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            SqsError::BatchRequestTooLong { .. } => "AWS.SimpleQueueService.BatchRequestTooLong",
            SqsError::UnsupportedOperation(_) => "AWS.SimpleQueueService.UnsupportedOperation",
            SqsError::InvalidParameterValue(_) => "InvalidParameterValue",
            SqsError::MissingParameter(_) => "MissingParameter",
            SqsError::ResourceNotFound(_) => "ResourceNotFoundException",
            SqsError::AccessDenied(_) => "AccessDenied",
            other => other.shape(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            SqsError::PurgeQueueInProgress(_)
            | SqsError::OverLimit(_)
            | SqsError::AccessDenied(_) => 403,
            SqsError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// Whether the caller is at fault (`Sender`) rather than the service (`Receiver`).
    pub fn sender_fault(&self) -> bool {
        !matches!(self, SqsError::Internal(_))
    }

    /// `InvalidParameterValue` in the service's "Value … for parameter … is invalid" form.
    pub fn invalid_value(value: impl std::fmt::Display, parameter: &str, reason: &str) -> Self {
        SqsError::InvalidParameterValue(format!(
            "Value {value} for parameter {parameter} is invalid. Reason: {reason}"
        ))
    }
}

impl From<rusqlite::Error> for SqsError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "queue store failed");
        SqsError::Internal("We encountered an internal error. Please try again.".into())
    }
}

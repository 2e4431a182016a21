//! S3's errors. Each variant is one of the service's error codes (`code()`), with S3's
//! message as its text; the HTTP status of each code is the API layer's business.

/// Why an S3 operation failed, as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// The bucket does not exist.
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    /// The key does not exist.
    #[error("The specified key does not exist.")]
    NoSuchKey,
    /// The multipart upload does not exist (or was completed or aborted).
    #[error("The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")]
    NoSuchUpload,
    /// A version other than the current (`null`) one, in an unversioned bucket.
    #[error("Invalid version id specified")]
    InvalidVersion,
    /// Another account owns a bucket of that name (names are global on this server).
    #[error("The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")]
    BucketAlreadyExists,
    /// The caller already owns a bucket of that name.
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    /// `DeleteBucket` of a bucket that still holds objects.
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    /// A bucket name outside S3's naming rules.
    #[error("The specified bucket is not valid.")]
    InvalidBucketName,
    /// The bucket belongs to another account (Gust has no bucket policies or ACLs yet).
    #[error("Access Denied")]
    AccessDenied,
    /// A key over 1,024 bytes (or empty).
    #[error("Your key is too long")]
    KeyTooLong,
    /// A range that starts at or past the object's end.
    #[error("The requested range is not satisfiable")]
    InvalidRange {
        /// The object's size.
        size: u64,
    },
    /// A conditional request's condition did not hold.
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    /// A conditional read found the object unchanged (304).
    #[error("Not Modified")]
    NotModified,
    /// A part named in `CompleteMultipartUpload` is missing or has another ETag.
    #[error("One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")]
    InvalidPart,
    /// `CompleteMultipartUpload`'s parts are not in ascending order.
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    /// A part other than the last is under 5 MiB.
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    EntityTooSmall,
    /// A body over the limit (5 GiB for one PUT or part).
    #[error("Your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge,
    /// An object too large for the reader that asked for it (`read_object_bytes`).
    #[error("The object is {size} bytes, more than the {max} bytes that can be read")]
    ObjectTooLarge {
        /// The object's size.
        size: u64,
        /// The reader's limit.
        max: u64,
    },
    /// The body ended before its declared length.
    #[error(
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )]
    IncompleteBody,
    /// The body does not match its `Content-MD5`.
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest,
    /// A `Content-MD5` that is not the base64 of 16 bytes.
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    /// User metadata over 2 KB.
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge,
    /// An invalid tag set.
    #[error("{0}")]
    InvalidTag(String),
    /// A parameter's value is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// A request S3 refuses as a whole (a copy onto itself without changes, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// A malformed request document (an empty part list, too many keys to delete, ...).
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema"
    )]
    MalformedXml,
    /// A `LocationConstraint` this server does not serve.
    #[error("{0}")]
    InvalidLocationConstraint(String),
    /// No location constraint where the server's region needs one.
    #[error("The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.")]
    IllegalLocationConstraint,
    /// Something S3 has that Gust does not.
    #[error("{0}")]
    NotImplemented(String),
    /// The store failed; the cause is logged, never sent.
    #[error("We encountered an internal error. Please try again.")]
    Internal(String),
}

impl S3Error {
    /// S3's error code.
    pub fn code(&self) -> &'static str {
        match self {
            S3Error::NoSuchBucket => "NoSuchBucket",
            S3Error::NoSuchKey => "NoSuchKey",
            S3Error::NoSuchUpload => "NoSuchUpload",
            S3Error::InvalidVersion => "InvalidArgument",
            S3Error::BucketAlreadyExists => "BucketAlreadyExists",
            S3Error::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            S3Error::BucketNotEmpty => "BucketNotEmpty",
            S3Error::InvalidBucketName => "InvalidBucketName",
            S3Error::AccessDenied => "AccessDenied",
            S3Error::KeyTooLong => "KeyTooLongError",
            S3Error::InvalidRange { .. } => "InvalidRange",
            S3Error::PreconditionFailed => "PreconditionFailed",
            S3Error::NotModified => "NotModified",
            S3Error::InvalidPart => "InvalidPart",
            S3Error::InvalidPartOrder => "InvalidPartOrder",
            S3Error::EntityTooSmall => "EntityTooSmall",
            S3Error::EntityTooLarge | S3Error::ObjectTooLarge { .. } => "EntityTooLarge",
            S3Error::IncompleteBody => "IncompleteBody",
            S3Error::BadDigest => "BadDigest",
            S3Error::InvalidDigest => "InvalidDigest",
            S3Error::MetadataTooLarge => "MetadataTooLarge",
            S3Error::InvalidTag(_) => "InvalidTag",
            S3Error::InvalidArgument(_) => "InvalidArgument",
            S3Error::InvalidRequest(_) => "InvalidRequest",
            S3Error::MalformedXml => "MalformedXML",
            S3Error::InvalidLocationConstraint(_) => "InvalidLocationConstraint",
            S3Error::IllegalLocationConstraint => "IllegalLocationConstraintException",
            S3Error::NotImplemented(_) => "NotImplemented",
            S3Error::Internal(_) => "InternalError",
        }
    }

    /// An internal error with its cause (for the log).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        S3Error::Internal(cause.to_string())
    }
}

impl From<rusqlite::Error> for S3Error {
    fn from(error: rusqlite::Error) -> Self {
        S3Error::Internal(format!("sqlite: {error}"))
    }
}

impl From<std::io::Error> for S3Error {
    fn from(error: std::io::Error) -> Self {
        S3Error::Internal(format!("i/o: {error}"))
    }
}

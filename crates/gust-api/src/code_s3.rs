//! Lambda code from S3: `CreateFunction`'s `Code`, `UpdateFunctionCode` and
//! `PublishLayerVersion`'s `Content` may name `S3Bucket`, `S3Key` and `S3ObjectVersion`
//! instead of a zip. The package is read from this server's buckets as the calling
//! account (which must own the bucket) before the operation runs, bounded by Lambda's
//! 250 MB unzipped limit rather than the 50 MB of a direct upload.

use bytes::Bytes;
use gust_model::limits;

use crate::error::ApiError;
use crate::routes::Operation;

/// Where a package is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) version: Option<String>,
}

/// The S3 location an operation's body names, if it names one. Only bodies that mention
/// `S3Bucket` are parsed here (a zip upload's body is large and has none).
pub(crate) fn location(operation: &Operation, body: &[u8]) -> Option<Location> {
    let member = match operation {
        Operation::CreateFunction => Some("Code"),
        Operation::UpdateFunctionCode(_) => None,
        Operation::PublishLayerVersion(_) => Some("Content"),
        _ => return None,
    };
    if !body.windows(8).any(|w| w == b"S3Bucket") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let holder = match member {
        Some(name) => value.get(name)?,
        None => &value,
    };
    let text = |name: &str| holder.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Some(Location {
        bucket: text("S3Bucket")?,
        key: text("S3Key")?,
        version: text("S3ObjectVersion"),
    })
}

/// Reads the package as `account`, with Lambda's wording for what S3 refused.
pub(crate) async fn fetch(
    s3: &gust_s3::S3,
    account: &str,
    location: &Location,
) -> Result<Bytes, ApiError> {
    let read = s3
        .read_object_bytes(
            account,
            &location.bucket,
            &location.key,
            location.version.as_deref(),
            limits::CODE_UNZIPPED_MAX_BYTES,
        )
        .await;
    match read {
        Ok((_, bytes)) => Ok(Bytes::from(bytes)),
        Err(gust_s3::S3Error::ObjectTooLarge { .. }) => Err(ApiError::invalid_parameter(format!(
            "Unzipped size must be smaller than {} bytes",
            limits::CODE_UNZIPPED_MAX_BYTES
        ))),
        Err(error) if error.code() == "InternalError" => Err(ApiError::internal(&error)),
        Err(error) => Err(ApiError::invalid_parameter(format!(
            "Error occurred while GetObject. S3 Error Code: {}. S3 Error Message: {error}",
            error.code()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_from_the_operations_member() {
        let create = br#"{"FunctionName":"f","Code":{"S3Bucket":"b","S3Key":"k.zip","S3ObjectVersion":"3"}}"#;
        assert_eq!(
            location(&Operation::CreateFunction, create),
            Some(Location {
                bucket: "b".into(),
                key: "k.zip".into(),
                version: Some("3".into())
            })
        );
        let update = br#"{"S3Bucket":"b","S3Key":"k.zip"}"#;
        assert!(location(&Operation::UpdateFunctionCode("f".into()), update).is_some());
        let layer = br#"{"Content":{"S3Bucket":"b","S3Key":"l.zip"}}"#;
        assert!(location(&Operation::PublishLayerVersion("l".into()), layer).is_some());
        assert_eq!(
            location(
                &Operation::CreateFunction,
                br#"{"Code":{"ZipFile":"UEs="}}"#
            ),
            None
        );
        // A bucket without a key is left to the operation's own checks.
        assert_eq!(
            location(&Operation::CreateFunction, br#"{"Code":{"S3Bucket":"b"}}"#),
            None
        );
    }
}

//! The one mapping from failures to AWS error responses: status, `x-amzn-ErrorType`, and a
//! JSON body whose message key has the casing each exception's model uses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gust_control::ControlError;
use gust_model::ModelError;
use gust_store::PackageError;

use crate::sigv4::AuthError;

/// Which key carries the message (`Message` or `message`), per exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageKey {
    Upper,
    Lower,
}

/// Longest message sent back, in bytes: messages quote input (parser errors quote whole
/// strings), and an error must not cost as much as the request that caused it.
const MESSAGE_MAX_BYTES: usize = 8 * 1024;

fn bounded(mut message: String) -> String {
    if message.len() > MESSAGE_MAX_BYTES {
        let mut cut = MESSAGE_MAX_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

/// An error as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    error_type: &'static str,
    message: String,
    key: MessageKey,
    service_fault: bool,
    /// `Reason` of a `TooManyRequestsException`.
    reason: Option<&'static str>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        error_type: &'static str,
        key: MessageKey,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            error_type,
            message: bounded(message.into()),
            key,
            service_fault: status.is_server_error(),
            reason: None,
        }
    }

    /// 400 `InvalidParameterValueException`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            MessageKey::Lower,
            message,
        )
    }

    /// 400 `InvalidRequestContentException` (a body that is not the JSON expected).
    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            MessageKey::Lower,
            message,
        )
    }

    /// 408: the client stopped sending its request body.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            MessageKey::Lower,
            "The request body was not received in time.",
        )
    }

    /// 413 `RequestEntityTooLargeException`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            MessageKey::Lower,
            message,
        )
    }

    /// 413 `RequestTooLargeException` (an invoke payload over the limit).
    pub fn request_too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            MessageKey::Lower,
            message,
        )
    }

    /// 429 `TooManyRequestsException` with its `Reason`.
    pub fn too_many_requests(reason: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            MessageKey::Lower,
            "Rate Exceeded.",
        );
        error.reason = Some(reason);
        error
    }

    /// 404 `UnknownOperationException`: no Lambda operation has this method and path.
    pub fn unknown_operation() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            MessageKey::Lower,
            "Unknown operation",
        )
    }

    /// 501 for a Lambda operation Gust does not implement yet (never a fake success).
    pub fn not_implemented(operation: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplementedException",
            MessageKey::Lower,
            format!("{operation} is not implemented by this Gust server yet."),
        )
    }

    /// 502 `InvalidZipFileException`: a stored package could not be unpacked at a cold
    /// start. The cause (a host path may be in it) is logged, not sent.
    pub fn invalid_zip_file(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%cause, "a function's package could not be unpacked");
        Self::new(
            StatusCode::BAD_GATEWAY,
            "InvalidZipFileException",
            MessageKey::Upper,
            "Lambda could not unzip the deployment package.",
        )
    }

    /// 403 `AccessDeniedException`: another account's resource whose policy does not let
    /// the caller's account do this.
    pub fn access_denied(caller: &str, action: &str, resource: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            MessageKey::Upper,
            format!(
                "User: arn:aws:iam::{caller}:root is not authorized to perform: {action} on resource: {resource} because no resource-based policy allows the {action} action"
            ),
        )
    }

    /// 500 `ServiceException`; the cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed inside the server");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            MessageKey::Upper,
            "The service encountered an internal error. Please try again.",
        )
    }

    /// The same error under another AWS error type.
    pub fn with_type(mut self, error_type: &'static str) -> Self {
        self.error_type = error_type;
        self
    }

    /// The AWS error type.
    pub fn error_type(&self) -> &'static str {
        self.error_type
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ModelError> for ApiError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Constraints(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                MessageKey::Lower,
                error.to_string(),
            ),
            ModelError::InvalidParameter(message) => Self::invalid_parameter(message),
            ModelError::NameTooLong(_) | ModelError::NoSuchName(_) => {
                Self::invalid_parameter(error.to_string())
            }
            ModelError::ServiceLimit { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                MessageKey::Lower,
                error.to_string(),
            ),
        }
    }
}

const UNZIP_MESSAGE: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::Invalid(model) => model.into(),
            ControlError::NotFound(message) => Self::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                MessageKey::Upper,
                message,
            ),
            ControlError::ProvisionedNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "ProvisionedConcurrencyConfigNotFoundException",
                MessageKey::Lower,
                error.to_string(),
            ),
            ControlError::Conflict(message) => Self::new(
                StatusCode::CONFLICT,
                "ResourceConflictException",
                MessageKey::Lower,
                message,
            ),
            ControlError::PreconditionFailed => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailedException",
                MessageKey::Lower,
                error.to_string(),
            ),
            ControlError::CodeTooLarge => Self::too_large(error.to_string()),
            ControlError::PolicyTooLarge(message) => Self::new(
                StatusCode::BAD_REQUEST,
                "PolicyLengthExceededException",
                MessageKey::Lower,
                message,
            ),
            ControlError::Package(package) => match package {
                PackageError::Corrupt(_) => Self::invalid_parameter(UNZIP_MESSAGE),
                PackageError::NameTooLong { .. } => Self::invalid_parameter(format!(
                    "{UNZIP_MESSAGE} The package is unusable: {package}."
                )),
                PackageError::UnzippedTooLarge { limit } => Self::invalid_parameter(format!(
                    "Unzipped size must be smaller than {limit} bytes"
                )),
                PackageError::EscapingEntry(_) | PackageError::EscapingSymlink { .. } => {
                    Self::invalid_parameter(format!(
                        "{UNZIP_MESSAGE} The package is unsafe: {package}."
                    ))
                }
            },
            ControlError::Store(_) | ControlError::Lifecycle(_) => Self::internal(&error),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            error.error_type(),
            MessageKey::Lower,
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let key = match self.key {
            MessageKey::Upper => "Message",
            MessageKey::Lower => "message",
        };
        let fault = if self.service_fault {
            "Service"
        } else {
            "User"
        };
        let mut body = serde_json::json!({ "Type": fault, key: self.message });
        if let Some(reason) = self.reason {
            body["Reason"] = serde_json::Value::from(reason);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.error_type),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, String, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let kind = response.headers()["x-amzn-ErrorType"]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, kind, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn message_key_casing_follows_the_exception() {
        let (status, kind, body) =
            body_of(ControlError::NotFound("Function not found: x".into()).into()).await;
        assert_eq!(
            (status.as_u16(), kind.as_str()),
            (404, "ResourceNotFoundException")
        );
        assert_eq!(
            body,
            serde_json::json!({"Type": "User", "Message": "Function not found: x"})
        );

        let (status, kind, body) = body_of(ModelError::invalid("bad").into()).await;
        assert_eq!(
            (status.as_u16(), kind.as_str()),
            (400, "InvalidParameterValueException")
        );
        assert_eq!(body, serde_json::json!({"Type": "User", "message": "bad"}));

        let (_, kind, body) = body_of(ModelError::constraint("x", "timeout", "c").into()).await;
        assert_eq!(kind, "ValidationException");
        assert!(body["message"]
            .as_str()
            .unwrap()
            .starts_with("1 validation error detected"));

        let (status, kind, body) = body_of(AuthError::UnknownKey.into()).await;
        assert_eq!(
            (status.as_u16(), kind.as_str()),
            (403, "UnrecognizedClientException")
        );
        assert_eq!(
            body["message"],
            "The security token included in the request is invalid."
        );
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_causes() {
        let error: ApiError =
            ControlError::Store(gust_store::StoreError::NotFound("secret-detail".into())).into();
        let (status, kind, body) = body_of(error).await;
        assert_eq!((status.as_u16(), kind.as_str()), (500, "ServiceException"));
        assert_eq!(body["Type"], "Service");
        assert!(!body.to_string().contains("secret-detail"));
    }
}

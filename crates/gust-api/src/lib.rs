//! Gust's HTTP edge: the AWS Lambda REST API (`/2015-03-31/functions/...` and friends),
//! SigV4 verification, AWS wire shapes and the single error mapping. It parses, checks the
//! signature and delegates to `gust-control`; it holds no business rules.
//!
//! Requests are routed by hand on the *raw* path: each segment is percent-decoded only
//! after splitting, so ARNs (`arn%3Aaws%3A…`) and `%24LATEST` arrive intact, and the
//! signature is checked against exactly the bytes the client signed.

pub mod code_url;
pub mod dto;
pub mod error;
mod invoke;
mod routes;
pub mod server;
pub mod sigv4;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use gust_control::ControlPlane;
use gust_model::Clock;

pub use error::ApiError;
pub use routes::Operation;
use routes::{route, Route};
pub use sigv4::Credentials;

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Every control-plane request must be SigV4-signed with these credentials.
    SigV4(Credentials),
    /// No checks at all (`--no-auth`, local experiments only).
    Disabled,
}

/// What the HTTP edge needs besides the control plane.
#[derive(Debug)]
pub struct ApiConfig {
    /// Request authentication.
    pub auth: Auth,
    /// Key for the pre-signed code download URLs GetFunction hands out.
    pub code_url_key: [u8; 32],
    /// Clock for signature skew and URL expiry.
    pub clock: Arc<dyn Clock>,
    /// A request body that sends nothing for this long is abandoned (a stalled upload
    /// must not hold a connection and its buffer forever).
    pub body_timeout: std::time::Duration,
}

#[derive(Debug)]
struct ApiState {
    control: Arc<ControlPlane>,
    engine: gust_engine::Engine,
    config: ApiConfig,
}

/// The service router: every path goes through one dispatcher.
pub fn router(
    control: Arc<ControlPlane>,
    engine: gust_engine::Engine,
    config: ApiConfig,
) -> Router {
    let state = Arc::new(ApiState {
        control,
        engine,
        config,
    });
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = match handle(&state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

/// Largest body of any operation but code uploads.
const DEFAULT_BODY_LIMIT: usize = 6 * 1024 * 1024;

async fn handle(state: &ApiState, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let route = route(&parts.method, &raw_path, &raw_query);

    // Gust's own unauthenticated endpoints.
    match &route {
        Route::Health => return Ok((StatusCode::OK, "ok\n").into_response()),
        Route::CodeDownload(file) => {
            return code_url::serve(&state.control, &state.config, file, &raw_query).await;
        }
        _ => {}
    }

    let limit = match &route {
        Route::Lambda(Operation::CreateFunction | Operation::UpdateFunctionCode(_)) => {
            gust_model::limits::CREATE_FUNCTION_REQUEST_MAX_BYTES
        }
        Route::Lambda(Operation::Invoke(_)) => invoke::MAX_SYNC_PAYLOAD,
        _ => DEFAULT_BODY_LIMIT,
    };
    let is_invoke = matches!(route, Route::Lambda(Operation::Invoke(_)));
    let too_large = || {
        let message = format!(
            "Request must be smaller than {limit} bytes for the {} operation",
            route.operation_name()
        );
        if is_invoke {
            ApiError::request_too_large(message)
        } else {
            ApiError::too_large(message)
        }
    };
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Auth::SigV4(credentials) = &state.config.auth {
        sigv4::precheck(&headers, credentials)?;
    }
    let body = match read_body(body, limit, state.config.body_timeout).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Stalled) => return Err(ApiError::request_timeout()),
        Err(BodyError::Broken) => {
            return Err(ApiError::invalid_content(
                "The request body could not be read.",
            ))
        }
    };

    if let Auth::SigV4(credentials) = &state.config.auth {
        let request_parts = sigv4::RequestParts {
            method: parts.method.as_str(),
            raw_path: &raw_path,
            raw_query: &raw_query,
            headers: &headers,
        };
        sigv4::verify(
            &request_parts,
            &body,
            credentials,
            "lambda",
            state.config.clock.now(),
        )?;
    }

    let operation = match route {
        Route::Lambda(operation) => operation,
        Route::NotImplemented(name) => return Err(ApiError::not_implemented(name)),
        _ => return Err(ApiError::unknown_operation()),
    };
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let query = routes::Query::parse(&raw_query);
    match &operation {
        Operation::Invoke(function) => {
            return invoke::invoke(state, function, &query, &parts.headers, body).await;
        }
        Operation::GustLogs(function) => {
            return invoke::logs(&state.engine, function, &query).await
        }
        _ => {}
    }
    let context = routes::Context {
        control: Arc::clone(&state.control),
        code_url_key: state.config.code_url_key,
        now: state.config.clock.now(),
        host,
    };
    tokio::task::spawn_blocking(move || routes::execute(&context, operation, &query, &body))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

#[derive(Debug)]
enum BodyError {
    TooLarge,
    /// Nothing arrived for the body timeout.
    Stalled,
    Broken,
}

/// Reads a whole body of at most `limit` bytes, giving up when the client sends nothing
/// for `idle` (a slow but moving upload is fine).
async fn read_body(
    body: Body,
    limit: usize,
    idle: std::time::Duration,
) -> Result<bytes::Bytes, BodyError> {
    use http_body_util::BodyExt;
    let mut body = http_body_util::Limited::new(body, limit);
    let mut collected = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Stalled),
            Ok(None) => return Ok(collected.freeze()),
            Ok(Some(Err(error))) => {
                return Err(if error.is::<http_body_util::LengthLimitError>() {
                    BodyError::TooLarge
                } else {
                    BodyError::Broken
                })
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    collected.extend_from_slice(&data);
                }
            }
        }
    }
}

/// A JSON response with `status`.
fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(&e))?;
    Response::builder()
        .status(status)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .map_err(|e| ApiError::internal(&e))
}

/// An empty response (204).
fn no_content() -> Result<Response, ApiError> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The methods a Lambda route can have (used by the router's tables).
fn is_method(method: &Method, name: &str) -> bool {
    method.as_str() == name
}

#[cfg(test)]
mod tests;

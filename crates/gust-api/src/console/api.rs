//! The console's JSON API (`/console/api/...`), as the session's account:
//!
//! - `GET  session`, `POST login` (`{accessKeyId, secretAccessKey}`), `POST logout`
//! - `GET  lambda/<Lambda REST path>`: any of Lambda's read operations, answered exactly
//!   as the Lambda API answers it (the page reads AWS's shapes)
//! - `POST invoke/<function>`: a synchronous invocation with `LogType: Tail`
//! - `POST logs/<Operation>`, `POST metrics/<Operation>`: CloudWatch Logs' and metrics'
//!   read operations with their JSON input and output
//! - `GET  triggers/<function>`: EventBridge rules, Scheduler schedules, SNS subscriptions
//!   and S3 bucket notifications that target the function
//! - `GET  queues`, `topics`, `schedules`, `cost`
//!
//! Everything but `login` needs a live session; every POST its CSRF token.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use super::limit::{SignInLimiter, Source};
use super::session::{self, Session, Sessions};
use super::{error, json_response, set_cookie};
use crate::routes::{self, Operation, Query, Route};
use crate::{ApiError, ApiState, Auth, Received};

/// Largest body of a console call but an invocation.
const BODY_LIMIT: usize = 256 * 1024;
/// Lambda's read operations, which `lambda/...` passes through.
fn is_read(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::ListFunctions
            | Operation::GetFunction(_)
            | Operation::GetFunctionConfiguration(_)
            | Operation::ListTags(_)
            | Operation::GetAccountSettings
            | Operation::GetFunctionConcurrency(_)
            | Operation::ListEventSourceMappings
            | Operation::GetEventSourceMapping(_)
            | Operation::GetProvisionedConcurrencyConfig(_)
            | Operation::GetFunctionEventInvokeConfig(_)
            | Operation::ListFunctionEventInvokeConfigs(_)
            | Operation::ListVersionsByFunction(_)
            | Operation::ListAliases(_)
            | Operation::GetAlias(..)
            | Operation::GetPolicy(_)
            | Operation::GetFunctionUrlConfig(_)
            | Operation::ListFunctionUrlConfigs(_)
            | Operation::ListLayers
            | Operation::ListLayerVersions(_)
            | Operation::GetLayerVersion(..)
    )
}

/// CloudWatch Logs operations the console may call.
const LOGS_READS: &[&str] = &["FilterLogEvents", "GetLogEvents", "DescribeLogStreams"];
/// CloudWatch metrics operations the console may call.
const METRICS_READS: &[&str] = &["GetMetricData", "ListMetrics", "GetMetricStatistics"];

pub(super) async fn serve(
    state: &ApiState,
    sessions: &Sessions,
    limiter: &SignInLimiter,
    parts: Parts,
    body: Body,
    rest: &str,
) -> Response {
    let now = state.config.clock.now();
    if rest == "login" {
        return login(state, sessions, limiter, &parts, body).await;
    }
    let admitted = session::admit(
        sessions,
        &state.config.auth,
        &parts.method,
        &parts.headers,
        now,
    );
    let (id, session) = match admitted {
        Ok(found) => found,
        // Under --no-auth the session call opens one (the page asks for it first).
        Err(session::Refusal::NotSignedIn)
            if rest == "session"
                && parts.method == Method::GET
                && matches!(state.config.auth, Auth::Disabled) =>
        {
            let (id, session) = sessions.open(state.planes.default_account(), None, now);
            let mut response = session_json(state, &session);
            set_cookie(&mut response, &session::set_cookie(&id));
            return response;
        }
        Err(session::Refusal::NotSignedIn) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "NotSignedIn",
                "Sign in to use the console.",
            )
        }
        Err(session::Refusal::CrossSite(refused)) => {
            return error(StatusCode::FORBIDDEN, "CsrfRefused", &refused.to_string())
        }
    };
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let account = session.account.clone();
    match (&parts.method, head) {
        (&Method::GET, "session") => session_json(state, &session),
        (&Method::POST, "logout") => {
            sessions.close(&id);
            let mut response = json_response(StatusCode::OK, &json!({}));
            set_cookie(&mut response, &session::clear_cookie());
            response
        }
        (&Method::GET, "lambda") => lambda_read(state, &account, tail, &raw_query).await,
        (&Method::POST, "invoke") => {
            let body = match read(state, &parts, body, crate::invoke::MAX_SYNC_PAYLOAD).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            invoke(state, &account, tail, &raw_query, body).await
        }
        (&Method::POST, "logs" | "metrics") => {
            let body = match read(state, &parts, body, BODY_LIMIT).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            cloudwatch(state, account, head, tail, body).await
        }
        (&Method::GET, "triggers") => match super::api_lists::triggers(state, &account, tail).await
        {
            Ok(value) => json_response(StatusCode::OK, &value),
            Err(message) => error(StatusCode::BAD_REQUEST, "ListFailed", &message),
        },
        (&Method::GET, "queues" | "topics" | "schedules" | "cost") => {
            match super::api_lists::list(state, &account, head).await {
                Ok(value) => json_response(StatusCode::OK, &value),
                Err(message) => error(StatusCode::BAD_REQUEST, "ListFailed", &message),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "No such console API."),
    }
}

fn session_json(state: &ApiState, session: &Session) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "account": session.account,
            "csrfToken": session.csrf,
            "authDisabled": matches!(state.config.auth, Auth::Disabled),
            "expires": session.expires.unix_timestamp(),
        }),
    )
}

/// Reads a request body of at most `limit` bytes.
async fn read(
    state: &ApiState,
    parts: &Parts,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, Response> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TooLarge",
            &format!("The request must be smaller than {limit} bytes."),
        )
    };
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match crate::read_body(body, limit, declared, state.config.body_timeout).await {
        Ok(Received::Memory(body)) => Ok(body),
        Err(crate::BodyError::TooLarge) => Err(too_large()),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadBody",
            "The request body could not be read.",
        )),
    }
}

/// The longest access key id a failure is counted under (AWS's are 16 to 128 characters),
/// so made-up ids cannot make the limiter's records large.
const KEY_ID_MAX: usize = 128;

/// What a sign-in's failures count against: the peer's address (an IPv6 peer's /64, which
/// one host holds whole), together with the key id it named. Never the key id alone: key
/// ids are not secret, so counting them across addresses would let anyone lock an owner
/// out, and secrets (40 random characters) are not guessed at 10 a minute anyway.
fn sign_in_sources(parts: &Parts, access_key_id: &str) -> Vec<Source> {
    let Some(peer) = parts.extensions.get::<crate::server::Peer>() else {
        return Vec::new();
    };
    let address = match peer.0.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                std::net::IpAddr::V6(std::net::Ipv6Addr::from(segments))
            }
        },
        v4 => v4,
    };
    let id: String = access_key_id.chars().take(KEY_ID_MAX).collect();
    vec![
        Source::Address(address),
        Source::KeyId(format!("{id}@{address}")),
    ]
}

fn too_many(until: time::OffsetDateTime, now: time::OffsetDateTime) -> Response {
    let seconds = (until - now).whole_seconds().max(1);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManySignInAttempts",
        &format!("Too many failed sign-ins. Try again in {seconds} seconds."),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn login(
    state: &ApiState,
    sessions: &Sessions,
    limiter: &SignInLimiter,
    parts: &Parts,
    body: Body,
) -> Response {
    if parts.method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Sign in with POST.",
        );
    }
    // No session yet, so no token: the origin check alone stops another site's form from
    // signing the browser in (login CSRF).
    if let Err(refused) = session::check_same_origin(&parts.headers) {
        return error(StatusCode::FORBIDDEN, "CsrfRefused", &refused.to_string());
    }
    let body = match read(state, parts, body, 16 * 1024).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |name: &str| input.get(name).and_then(Value::as_str).unwrap_or("");
    let now = state.config.clock.now();
    let (account, key_id) = match &state.config.auth {
        // Nothing to guess without authentication, so nothing to limit.
        Auth::Disabled => (state.planes.default_account().to_owned(), None),
        Auth::SigV4(keys) => {
            let sources = sign_in_sources(parts, field("accessKeyId"));
            // A locked-out source is refused before its key is looked at, so it learns
            // nothing about the key until the lockout ends.
            if let Some(until) = limiter.locked(&sources, now) {
                return too_many(until, now);
            }
            match session::check_key(keys, field("accessKeyId"), field("secretAccessKey")) {
                Ok(key) => {
                    limiter.succeeded(&sources);
                    (
                        key.account_id.clone(),
                        Some(key.credentials.access_key_id.clone()),
                    )
                }
                Err(refused) => {
                    limiter.failed(&sources, now);
                    return error(
                        StatusCode::UNAUTHORIZED,
                        "InvalidCredentials",
                        &refused.to_string(),
                    );
                }
            }
        }
    };
    if state.planes.get(&account).is_none() {
        return error(
            StatusCode::UNAUTHORIZED,
            "InvalidCredentials",
            "The key's account is not served here.",
        );
    }
    let (id, session) = sessions.open(&account, key_id.as_deref(), now);
    let mut response = session_json(state, &session);
    set_cookie(&mut response, &session::set_cookie(&id));
    response
}

/// A Lambda read operation, answered as Lambda answers it.
async fn lambda_read(state: &ApiState, account: &str, tail: &str, raw_query: &str) -> Response {
    let raw_path = format!("/{tail}");
    let operation = match routes::route(&Method::GET, &raw_path, raw_query) {
        Route::Lambda(operation) if is_read(&operation) => operation,
        _ => return error(StatusCode::NOT_FOUND, "NotFound", "No such Lambda read."),
    };
    let mut response = match lambda_run(state, account, operation, raw_query).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn lambda_run(
    state: &ApiState,
    account: &str,
    operation: Operation,
    raw_query: &str,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw_query);
    let plane = state
        .planes
        .for_operation(account, &operation, &query)
        .await?;
    match &operation {
        Operation::GetFunctionConcurrency(function) => {
            return crate::concurrency::handle(&plane, &operation, function, &[]).await;
        }
        Operation::ListEventSourceMappings | Operation::GetEventSourceMapping(_) => {
            return crate::mappings::handle(&plane, &state.services.sqs, &operation, &query, &[])
                .await;
        }
        Operation::GetProvisionedConcurrencyConfig(function) => {
            return crate::provisioned::handle(&plane, &operation, function, &query, &[]).await;
        }
        Operation::GetFunctionUrlConfig(function) | Operation::ListFunctionUrlConfigs(function) => {
            let base = crate::urls::UrlBase {
                domain: state.config.url_domain.as_ref(),
                host: "127.0.0.1",
            };
            return crate::urls::handle(&plane, base, &operation, function, &query, &[]).await;
        }
        _ => {}
    }
    let context = routes::Context {
        control: std::sync::Arc::clone(&plane.control),
        code_url_key: state.config.code_url_key,
        now: state.config.clock.now(),
        host: "127.0.0.1".to_owned(),
        from_s3: None,
    };
    tokio::task::spawn_blocking(move || routes::execute(&context, operation, &query, &[]))
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// A synchronous invocation with the log tail: `{statusCode, executedVersion,
/// functionError, payload, logTail}` (the error's own JSON as `payload` when Lambda
/// refused the call).
async fn invoke(
    state: &ApiState,
    account: &str,
    function: &str,
    raw_query: &str,
    body: bytes::Bytes,
) -> Response {
    let function = match percent_encoding::percent_decode_str(function).decode_utf8() {
        Ok(name) if !name.is_empty() && !name.contains('/') => name.into_owned(),
        _ => return error(StatusCode::BAD_REQUEST, "BadName", "Name a function."),
    };
    let query = Query::parse(raw_query);
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-log-type", HeaderValue::from_static("Tail"));
    headers.insert(
        "x-amz-invocation-type",
        HeaderValue::from_static("RequestResponse"),
    );
    let operation = Operation::Invoke(function.clone());
    let answered = match state
        .planes
        .for_operation(account, &operation, &query)
        .await
    {
        Ok(plane) => crate::invoke::invoke(
            &plane,
            &state.services.events,
            &request_id,
            &function,
            &query,
            &headers,
            body,
        )
        .await
        .unwrap_or_else(IntoResponse::into_response),
        Err(error) => error.into_response(),
    };
    let status = answered.status().as_u16();
    let headers = answered.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let log_tail = header("x-amz-log-result").and_then(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    });
    let executed = header("x-amz-executed-version");
    let function_error = header("x-amz-function-error");
    let error_type = header("x-amzn-errortype");
    drop(headers);
    let payload = match http_body_util::BodyExt::collect(answered.into_body()).await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "statusCode": status,
            "executedVersion": executed,
            "functionError": function_error,
            "errorType": error_type,
            "payload": payload,
            "logTail": log_tail,
            "requestId": request_id,
        }),
    )
}

/// A CloudWatch Logs or metrics read with its JSON input, answered as the service's JSON
/// protocol answers it (`{"code", "message"}` on failure, `code` being the exception's
/// name). The handlers read SQLite (metrics flush pending datapoints first), so they run
/// on the blocking pool.
async fn cloudwatch(
    state: &ApiState,
    account: String,
    service: &str,
    operation: &str,
    body: bytes::Bytes,
) -> Response {
    let allowed = if service == "logs" {
        LOGS_READS
    } else {
        METRICS_READS
    };
    if !allowed.contains(&operation) {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such console API.");
    }
    let input: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "The input must be a JSON object.",
            )
        }
    };
    let operation = operation.to_owned();
    let result = if service == "logs" {
        let logs = std::sync::Arc::clone(&state.services.logs);
        tokio::task::spawn_blocking(move || {
            crate::logs::handle(&logs, &account, &operation, &input)
        })
        .await
    } else {
        let metrics = std::sync::Arc::clone(&state.services.metrics);
        tokio::task::spawn_blocking(move || {
            crate::monitoring::handle(&metrics, &account, &operation, &input)
        })
        .await
    };
    let Ok(result) = result else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The read failed.",
        );
    };
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(failed) => json_response(
            StatusCode::from_u16(failed.status).unwrap_or(StatusCode::BAD_REQUEST),
            &json!({"code": failed.shape, "message": failed.message}),
        ),
    }
}

//! `Invoke` and Gust's log query: the operations served on the async path, since they wait
//! on execution environments rather than on the store.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use gust_engine::{EngineError, InvokeRequest};
use gust_model::{FunctionVersion, IdKind, ModelError, Qualifier};

use crate::error::ApiError;
use crate::routes::Query;
use crate::Plane;

/// Largest synchronous request payload (6 MB).
pub const MAX_SYNC_PAYLOAD: usize = 6_291_456;
/// Largest `X-Amz-Client-Context` (base64 text).
const MAX_CLIENT_CONTEXT: usize = 3583;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn decode_client_context(encoded: &str) -> Result<String, ApiError> {
    let invalid =
        || ApiError::invalid_content("Client context must be a valid Base64-encoded JSON object.");
    if encoded.len() > MAX_CLIENT_CONTEXT {
        return Err(ApiError::invalid_content(format!(
            "Client context must be no larger than {MAX_CLIENT_CONTEXT} bytes of base64."
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        _ => Err(invalid()),
    }
}

/// Uniform in `[0, 1)`, for weighted alias routing.
fn uniform_sample() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or_default();
    }
    // The top 53 bits, the precision of an f64 in [0, 1).
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

fn engine_error(
    plane: &Plane,
    function: &gust_model::FunctionName,
    version: FunctionVersion,
    error: EngineError,
) -> ApiError {
    match error {
        EngineError::NotFound(_) => ApiError::from(gust_control::ControlError::NotFound(format!(
            "Function not found: {}",
            plane.control.arn(function, Some(&version.qualifier()))
        ))),
        EngineError::NotReady(_) => {
            ApiError::from(gust_control::ControlError::Conflict(error.to_string()))
        }
        EngineError::TooManyEnvironments => {
            ApiError::too_many_requests("ConcurrentInvocationLimitExceeded")
        }
        EngineError::Throttled(reason) => ApiError::too_many_requests(reason),
        EngineError::InvalidZipFile(cause) => ApiError::invalid_zip_file(&cause),
        EngineError::Internal(cause) => ApiError::internal(&cause),
    }
}

/// A synchronous invocation whose inputs were checked.
struct Call {
    request: InvokeRequest,
    /// `X-Amz-Log-Type: Tail`.
    log_tail: bool,
    reference: gust_model::FunctionRef,
    version: FunctionVersion,
}

/// An invoke request after its checks: an invocation to run, or its answer already (an
/// asynchronous event queued, a dry run).
enum Checked {
    Run(Call),
    Answered(Response),
}

/// Checks an `Invoke` or `InvokeWithResponseStream` request (`streaming`: the latter, which
/// has no `Event` invocation type) and resolves the version it runs.
#[allow(clippy::too_many_arguments)]
async fn check(
    plane: &Plane,
    events: &gust_async::AsyncInvoker,
    request_id: &str,
    function: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
    streaming: bool,
) -> Result<Checked, ApiError> {
    let reference = plane
        .control
        .resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let invocation_type = header(headers, "x-amz-invocation-type").unwrap_or("RequestResponse");
    let log_type = header(headers, "x-amz-log-type").unwrap_or("None");
    // Both headers are checked together, so one message lists every violation.
    let mut violations = gust_model::error::Violations::default();
    let (types, enum_text): (&[&str], _) = if streaming {
        (
            &["RequestResponse", "DryRun"],
            "Member must satisfy enum value set: [RequestResponse, DryRun]",
        )
    } else {
        (
            &["Event", "RequestResponse", "DryRun"],
            "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
        )
    };
    if !types.contains(&invocation_type) {
        violations.push(invocation_type, "invocationType", enum_text);
    }
    if !["None", "Tail"].contains(&log_type) {
        violations.push(
            log_type,
            "logType",
            "Member must satisfy enum value set: [None, Tail]",
        );
    }
    violations.finish()?;
    if invocation_type == "Event" {
        let trace = header(headers, "x-amzn-trace-id");
        enqueue(plane, events, request_id, &reference, body, trace).await?;
        return Ok(Checked::Answered(StatusCode::ACCEPTED.into_response()));
    }
    let client_context = header(headers, "x-amz-client-context")
        .map(decode_client_context)
        .transpose()?;
    // An empty body is the event `{}`; anything else must be JSON.
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(|e| {
            ApiError::invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ))
        })?;
        body
    };
    if invocation_type == "DryRun" {
        let control = std::sync::Arc::clone(&plane.control);
        let r = reference.clone();
        tokio::task::spawn_blocking(move || control.get_function(&r))
            .await
            .map_err(|e| ApiError::internal(&e))??;
        return Ok(Checked::Answered(StatusCode::NO_CONTENT.into_response()));
    }
    let version = pick_version(plane, &reference).await?;
    let request = InvokeRequest {
        function: reference.name.clone(),
        version,
        invoked_arn: plane
            .control
            .arn(&reference.name, reference.qualifier.as_ref()),
        payload,
        client_context,
        // The caller's `x-amzn-RequestId` is the request id the function sees, as on AWS.
        request_id: Some(request_id.to_owned()),
        // Only within the caller's own trace (a header without a root starts a new one).
        caller_parent: header(headers, "x-amzn-trace-id")
            .filter(|h| h.split(';').any(|p| p.trim().starts_with("Root=")))
            .and_then(gust_model::trace::parent_of)
            .map(str::to_owned),
        // A trace header the caller sent (one SDKs inside functions send) continues
        // its chain, with this function counted in its lineage.
        trace_id: Some(
            gust_model::trace::advance(
                header(headers, "x-amzn-trace-id"),
                &format!("{}:{}", plane.account_id(), reference.name),
                &gust_engine::trace_root(),
                &gust_engine::trace_parent(),
            )
            .0,
        ),
        log_tail: log_type == "Tail",
    };
    Ok(Checked::Run(Call {
        request,
        log_tail: log_type == "Tail",
        reference,
        version,
    }))
}

/// The version an invocation of `reference` runs: an alias picks between its versions by
/// weight (read from the store).
pub(crate) async fn pick_version(
    plane: &Plane,
    reference: &gust_model::FunctionRef,
) -> Result<FunctionVersion, ApiError> {
    match &reference.qualifier {
        Some(Qualifier::Alias(_)) => {
            let control = std::sync::Arc::clone(&plane.control);
            let r = reference.clone();
            Ok(
                tokio::task::spawn_blocking(move || control.invoke_target(&r, uniform_sample()))
                    .await
                    .map_err(|e| ApiError::internal(&e))??,
            )
        }
        _ => Ok(plane.control.invoke_target(reference, 0.0)?),
    }
}

/// `POST /2015-03-31/functions/{fn}/invocations`.
pub(crate) async fn invoke(
    plane: &Plane,
    events: &gust_async::AsyncInvoker,
    request_id: &str,
    function: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let call = match check(
        plane, events, request_id, function, query, headers, body, false,
    )
    .await?
    {
        Checked::Run(call) => call,
        Checked::Answered(response) => return Ok(response),
    };
    let outcome = plane
        .engine
        .invoke(call.request)
        .await
        .map_err(|e| engine_error(plane, &call.reference.name, call.version, e))?;
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .header("x-amz-executed-version", outcome.executed_version.as_str());
    if outcome.function_error {
        response = response.header("x-amz-function-error", "Unhandled");
    }
    if call.log_tail {
        let encoded = base64::engine::general_purpose::STANDARD.encode(outcome.log_tail.as_bytes());
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            response = response.header("x-amz-log-result", value);
        }
    }
    response
        .body(Body::from(outcome.body))
        .map_err(|e| ApiError::internal(&e))
}

/// `POST /2021-11-15/functions/{fn}/response-streaming-invocations`: the response as an
/// event stream of `PayloadChunk`s and a final `InvokeComplete`, each chunk sent as the
/// function writes it. A function that does not stream gives one chunk.
pub(crate) async fn invoke_with_response_stream(
    plane: &Plane,
    events: &gust_async::AsyncInvoker,
    request_id: &str,
    function: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let call = match check(
        plane, events, request_id, function, query, headers, body, true,
    )
    .await?
    {
        Checked::Run(call) => call,
        Checked::Answered(response) => return Ok(response),
    };
    let invoked = plane
        .engine
        .invoke_streaming(call.request)
        .await
        .map_err(|e| engine_error(plane, &call.reference.name, call.version, e))?;
    let (executed, content_type, body) = match invoked {
        gust_engine::Invoked::Streaming(stream) => (
            stream.executed_version.clone(),
            stream.content_type.clone(),
            crate::streaming::EventStreamBody::new(stream, call.log_tail),
        ),
        gust_engine::Invoked::Buffered(outcome) => {
            let error = outcome
                .function_error
                .then(|| gust_engine::stream_error(&outcome.body));
            (
                outcome.executed_version.clone(),
                "application/json".to_owned(),
                crate::streaming::EventStreamBody::buffered(
                    outcome.body,
                    error,
                    call.log_tail.then_some(outcome.log_tail),
                ),
            )
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        // botocore reads this header as `ResponseStreamContentType`; the body is the event
        // stream whatever it says.
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .header("x-amz-executed-version", executed)
        .body(Body::new(body))
        .map_err(|e| ApiError::internal(&e))
}

/// Checks an asynchronous event and queues it durably: the function (and qualifier) must
/// exist and the payload be JSON of at most 1 MB.
async fn enqueue(
    plane: &Plane,
    events: &gust_async::AsyncInvoker,
    request_id: &str,
    reference: &gust_model::FunctionRef,
    body: Bytes,
    trace: Option<&str>,
) -> Result<(), ApiError> {
    if body.len() > gust_async::MAX_PAYLOAD {
        return Err(ApiError::request_too_large(format!(
            "Request must be smaller than {} bytes for the InvokeAsync operation",
            gust_async::MAX_PAYLOAD
        )));
    }
    let payload = if body.iter().all(u8::is_ascii_whitespace) {
        "{}".to_owned()
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(|e| {
            ApiError::invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            ))
        })?;
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::invalid_content("Could not parse request body into json"))?
    };
    // The function, version or alias must exist now; the version is chosen per attempt.
    // A version is checked through the engine's configuration cache, an alias in the store.
    let version = match &reference.qualifier {
        None | Some(Qualifier::Latest) => Some(FunctionVersion::Latest),
        Some(Qualifier::Version(n)) => Some(FunctionVersion::Published(*n)),
        Some(Qualifier::Alias(_)) => None,
    };
    match version {
        Some(version) => plane
            .engine
            .exists(&reference.name, version)
            .await
            .map_err(|e| engine_error(plane, &reference.name, version, e))?,
        None => {
            let control = std::sync::Arc::clone(&plane.control);
            let r = reference.clone();
            tokio::task::spawn_blocking(move || control.invoke_target(&r, 0.0))
                .await
                .map_err(|e| ApiError::internal(&e))??;
        }
    }
    events
        .enqueue(gust_async::AsyncEvent {
            account: plane.account_id().to_owned(),
            function: reference.name.to_string(),
            qualifier: reference.qualifier.as_ref().map(ToString::to_string),
            payload,
            request_id: request_id.to_owned(),
            trace: trace.map(str::to_owned),
        })
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// `POST /2014-11-13/functions/{fn}/invoke-async/` (deprecated): queues the event, 202
/// `{"Status": 202}`.
pub(crate) async fn invoke_async(
    plane: &Plane,
    events: &gust_async::AsyncInvoker,
    request_id: &str,
    function: &str,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reference = plane.control.resolve(function, None, IdKind::Namespaced)?;
    enqueue(plane, events, request_id, &reference, body, None).await?;
    let mut response = crate::json(StatusCode::ACCEPTED, &serde_json::json!({"Status": 202}))?;
    *response.status_mut() = StatusCode::ACCEPTED;
    Ok(response)
}

/// `GET /_gust/logs/{fn}?since=<epoch ms>&limit=<n>`: the function's log events.
pub(crate) async fn logs(
    plane: &crate::Plane,
    logs: &std::sync::Arc<gust_logs::Logs>,
    function: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let reference =
        gust_model::FunctionRef::parse(function, gust_model::names::IdKind::Namespaced)?;
    let number = |key: &'static str, default: i64| -> Result<i64, ApiError> {
        query
            .get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ModelError::constraint(v, key, "Member must be an integer").into())
            })
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let since = number("since", 0)?;
    // With `after_id`, the page starts after the event at (since, after_id): a cursor
    // that neither repeats nor skips events sharing a timestamp.
    let after = query
        .get("after_id")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ModelError::constraint(v, "after_id", "Member must be an integer"))
        })
        .transpose()?
        .map(|id| gust_logs::Position {
            timestamp: since,
            id,
        });
    let limit = usize::try_from(number("limit", 10_000)?.clamp(1, 100_000)).unwrap_or(10_000);
    let control = std::sync::Arc::clone(&plane.control);
    let logs = std::sync::Arc::clone(logs);
    let account = plane.account_id().to_owned();
    // The function's own log group (`LoggingConfig.LogGroup`), in the CloudWatch Logs store;
    // a page holds at most `limit` events and `gust_logs::TAIL_BYTES_MAX` bytes.
    // Output already handed to the store is committed first, so `gust logs` right after
    // an invoke shows that invoke's lines.
    let page = tokio::task::spawn_blocking(move || {
        let details = control.get_function(&reference)?;
        logs.flush();
        Ok::<_, ApiError>(logs.tail(&account, &details.config.log_group, since, after, limit))
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    // Where the next page starts: after the last event, or where this one did.
    let next = match page.events.last() {
        Some(last) => serde_json::json!({ "since": last.timestamp, "after_id": last.id }),
        None => serde_json::json!({ "since": since, "after_id": after.map(|a| a.id) }),
    };
    let events: Vec<serde_json::Value> = page
        .events
        .into_iter()
        .map(|e| serde_json::json!({ "timestamp": e.timestamp, "stream": e.stream, "message": e.message, "id": e.id }))
        .collect();
    crate::json(
        StatusCode::OK,
        &serde_json::json!({ "events": events, "more": page.more, "next": next }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_context_must_be_base64_json_object() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":1}}"#);
        assert_eq!(
            decode_client_context(&encoded).unwrap(),
            r#"{"custom":{"a":1}}"#
        );
        assert!(decode_client_context("%%%").is_err());
        assert!(
            decode_client_context(&base64::engine::general_purpose::STANDARD.encode("[1]"))
                .is_err()
        );
        assert!(decode_client_context(&"A".repeat(MAX_CLIENT_CONTEXT + 1)).is_err());
    }
}

/// Why an invoke on behalf of another service did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceInvokeError {
    /// No such function, version or alias.
    #[error("{0}")]
    NotFound(String),
    /// The function's policy does not allow the service.
    #[error("{0}")]
    AccessDenied(String),
    /// No capacity now; worth retrying.
    #[error("Rate Exceeded.")]
    Throttled,
    /// Anything else (the cause is logged).
    #[error("{0}")]
    Failed(String),
}

impl Plane {
    /// Whether `caller` (another AWS service acting for its resource) may invoke
    /// `function`: it exists and its policy allows `lambda:InvokeFunction`.
    pub async fn service_may_invoke(
        &self,
        function: &str,
        caller: &gust_model::policy::Caller,
    ) -> Result<gust_model::FunctionRef, ServiceInvokeError> {
        let control = std::sync::Arc::clone(&self.control);
        let (text, who) = (function.to_owned(), caller.clone());
        tokio::task::spawn_blocking(move || {
            let reference = control
                .resolve(&text, None, IdKind::Namespaced)
                .map_err(|e| ServiceInvokeError::NotFound(e.to_string()))?;
            control
                .get_function(&reference)
                .map_err(|e| ServiceInvokeError::NotFound(e.to_string()))?;
            match control.allowed(&reference, &who, "lambda:InvokeFunction") {
                Ok(true) => Ok(reference),
                Ok(false) => Err(ServiceInvokeError::AccessDenied(format!(
                    "The resource policy of {text} does not allow lambda:InvokeFunction for this caller"
                ))),
                Err(error) => Err(ServiceInvokeError::NotFound(error.to_string())),
            }
        })
        .await
        .map_err(|e| ServiceInvokeError::Failed(e.to_string()))?
    }

    /// Invokes `function` (a function ARN, possibly qualified) for `caller`, another AWS
    /// service acting for its resource: the function's policy must allow it
    /// (`lambda:InvokeFunction`), as on AWS. Returns the invocation's outcome, function
    /// errors included.
    pub async fn invoke_for_service(
        &self,
        function: &str,
        payload: Bytes,
        caller: &gust_model::policy::Caller,
        request_id: Option<String>,
        trace_id: Option<String>,
    ) -> Result<gust_engine::InvokeOutcome, ServiceInvokeError> {
        let control = std::sync::Arc::clone(&self.control);
        let (text, who) = (function.to_owned(), caller.clone());
        let version = tokio::task::spawn_blocking(move || {
            let reference = control
                .resolve(&text, None, IdKind::Namespaced)
                .map_err(|e| ServiceInvokeError::NotFound(e.to_string()))?;
            match control.allowed(&reference, &who, "lambda:InvokeFunction") {
                Ok(true) => {}
                Ok(false) => {
                    return Err(ServiceInvokeError::AccessDenied(format!(
                        "The resource policy of {text} does not allow lambda:InvokeFunction for this caller"
                    )))
                }
                Err(error) => return Err(ServiceInvokeError::NotFound(error.to_string())),
            }
            let version = control
                .invoke_target(&reference, uniform_sample())
                .map_err(|e| ServiceInvokeError::NotFound(e.to_string()))?;
            Ok((reference, version))
        })
        .await
        .map_err(|e| ServiceInvokeError::Failed(e.to_string()))?;
        let (reference, version) = version?;
        self.engine
            .invoke(InvokeRequest {
                function: reference.name.clone(),
                version,
                invoked_arn: self
                    .control
                    .arn(&reference.name, reference.qualifier.as_ref()),
                payload,
                client_context: None,
                request_id,
                trace_id,
                caller_parent: None,
                log_tail: false,
            })
            .await
            .map_err(|error| match error {
                EngineError::NotFound(what) => ServiceInvokeError::NotFound(what.to_string()),
                EngineError::TooManyEnvironments
                | EngineError::Throttled(_)
                | EngineError::NotReady(_) => ServiceInvokeError::Throttled,
                other => ServiceInvokeError::Failed(other.to_string()),
            })
    }
}

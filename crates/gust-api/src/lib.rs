//! Gust's HTTP edge: the AWS Lambda REST API (`/2015-03-31/functions/...` and friends),
//! SigV4 verification, AWS wire shapes and the single error mapping. It parses, checks the
//! signature and delegates to `gust-control`; it holds no business rules.
//!
//! Requests are routed by hand on the *raw* path: each segment is percent-decoded only
//! after splitting, so ARNs (`arn%3Aaws%3A…`) and `%24LATEST` arrive intact, and the
//! signature is checked against exactly the bytes the client signed.

mod accounts;
mod apigw;
mod autoscaling;
mod aws;
mod cbor;
mod code_s3;
pub mod code_url;
mod concurrency;
mod console;
pub mod dto;
pub mod error;
mod event_invoke;
mod events;
mod eventstream;
pub mod front;
mod invoke;
mod layers;
mod logs;
mod mappings;
mod monitoring;
mod policies;
pub mod protocol;
mod provisioned;
mod routes;
mod s3;
mod s3_notify;
mod scheduler;
pub mod server;
mod settings;
pub mod sigv4;
mod sns;
mod sqs;
mod streaming;
mod sts;
mod urls;
mod usage;
mod validate;
mod versions;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use gust_control::ControlPlane;
use gust_model::Clock;

pub use accounts::Plane;
pub use aws::Services;
pub use error::ApiError;
pub use invoke::ServiceInvokeError;
pub use routes::Operation;
use routes::{route, Route};
pub use sigv4::Credentials;

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Every control-plane request must be SigV4-signed with one of these keys; the key
    /// says which account the request comes from.
    SigV4(Vec<AccountKey>),
    /// No checks at all (`--no-auth`, local experiments only): every request comes from
    /// the default account.
    Disabled,
}

/// An access key and the account it belongs to.
#[derive(Debug, Clone)]
pub struct AccountKey {
    /// The key.
    pub credentials: Credentials,
    /// Its account id.
    pub account_id: String,
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
    /// Where code uploads wait, as unlinked files, until they are decoded.
    pub upload_dir: std::path::PathBuf,
    /// Issues and checks session credentials (STS, execution roles).
    pub sessions: Arc<gust_sts::Issuer>,
    /// The domain of host-based function URLs and API endpoints (`--url-domain`).
    pub url_domain: Option<front::UrlDomain>,
}

/// Code uploads decoded at once. Decoding holds the request, the zip and the checks in
/// memory (about 2.5 times the body), so the server's memory follows this number and not
/// the number of uploads in flight; the bodies of the others wait on disk.
const UPLOADS_DECODED_AT_ONCE: usize = 2;

#[derive(Debug)]
struct ApiState {
    planes: accounts::Planes,
    /// Function URLs' index.
    front: front::Front,
    config: ApiConfig,
    services: Services,
    uploads: Arc<tokio::sync::Semaphore>,
}

/// The service router: every path goes through one dispatcher. `planes` are the
/// accounts' control planes and engines, the default account's first; `services` the
/// other AWS services served on the same listener.
pub fn router(planes: Vec<Plane>, config: ApiConfig, services: Services) -> Router {
    let state = Arc::new(ApiState {
        planes: accounts::Planes::new(planes),
        front: front::Front::default(),
        config,
        services,
        uploads: Arc::new(tokio::sync::Semaphore::new(UPLOADS_DECODED_AT_ONCE)),
    });
    Router::new().fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = match handle(&state, request, &request_id).await {
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

async fn handle(
    state: &ApiState,
    request: Request,
    request_id: &str,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let headers = header_list(&parts.headers);
    // SNS's signing certificate, named in every message it signs (`SigningCertURL`).
    if parts.method == Method::GET && raw_path == state.services.sns.signing_certificate_path() {
        return Response::builder()
            .header(axum::http::header::CONTENT_TYPE, "application/x-pem-file")
            .body(Body::from(
                state.services.sns.signing_certificate_pem().to_owned(),
            ))
            .map_err(|e| ApiError::internal(&e));
    }
    // A function URL's or HTTP API's own host (`--url-domain`) serves nothing else: an
    // S3 request (a presigned URL, say) to it must not put a bucket's content there.
    let host_header = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let mut front_target =
        front::host_target(host_header, &raw_path, state.config.url_domain.as_ref());
    // S3 next: a path-style `/bucket/key` may look like any route. Its body streams to s3s,
    // unread and unlimited here (see s3.rs).
    if front_target.is_none() && s3::is_s3(&parts, state) {
        let mut response = s3::serve(state, parts, body, request_id).await;
        sandboxed(&mut response);
        return Ok(response);
    }
    // The web console has its own sessions; it is never SigV4-signed (a signed request
    // for `/console/...` is S3's, for a bucket of that name, and went above).
    if front_target.is_none() && (raw_path == "/console" || raw_path.starts_with("/console/")) {
        return Ok(console::serve(state, parts, body).await);
    }
    // Then the path form of function URLs and HTTP APIs.
    let path_form = front_target.is_none();
    if path_form {
        front_target = front::path_target(&raw_path);
    }
    let mut served = match front_target {
        Some(front::Target::Url { id, path }) => {
            front::serve_url(state, parts, body, &id, &path, request_id).await
        }
        Some(front::Target::Api { id, path }) => {
            front::serve_api(state, parts, body, &id, &path, request_id).await
        }
        None => {
            return handle_api(state, parts, body, headers, raw_path, raw_query, request_id).await
        }
    };
    if path_form {
        sandboxed(&mut served);
    }
    Ok(served)
}

/// What functions and buckets return on the server's own origin (path-form URLs and APIs,
/// path-style S3) is content of theirs, not the console's: a document from it runs in an
/// opaque origin of its own, so its scripts cannot use the console's session.
fn sandboxed(response: &mut Response) {
    response.headers_mut().append(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads",
        ),
    );
}

/// The AWS APIs and Gust's own endpoints.
async fn handle_api(
    state: &ApiState,
    parts: axum::http::request::Parts,
    body: Body,
    headers: Vec<(String, String)>,
    raw_path: String,
    raw_query: String,
    request_id: &str,
) -> Result<Response, ApiError> {
    if let Some(detected) = aws::detect(&parts, &headers, &raw_query) {
        return Ok(aws::handle(state, parts, headers, body, detected, request_id).await);
    }
    let route = route(&parts.method, &raw_path, &raw_query);

    // Gust's own unauthenticated endpoints.
    match &route {
        Route::Health => return Ok((StatusCode::OK, "ok\n").into_response()),
        Route::Metrics => return usage::metrics(&state.services.prometheus, &parts.headers),
        Route::CodeDownload(file) => {
            let stores: Vec<Arc<ControlPlane>> =
                state.planes.all().map(|p| Arc::clone(&p.control)).collect();
            return code_url::serve(&stores, &state.config, file, &raw_query).await;
        }
        _ => {}
    }

    let limit = match &route {
        Route::Lambda(
            Operation::CreateFunction
            | Operation::UpdateFunctionCode(_)
            | Operation::PublishLayerVersion(_),
        ) => gust_model::limits::CREATE_FUNCTION_REQUEST_MAX_BYTES,
        Route::Lambda(Operation::Invoke(_) | Operation::InvokeWithResponseStream(_)) => {
            invoke::MAX_SYNC_PAYLOAD
        }
        _ => DEFAULT_BODY_LIMIT,
    };
    let is_invoke = matches!(
        route,
        Route::Lambda(Operation::Invoke(_) | Operation::InvokeWithResponseStream(_))
    );
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
    // The key names the account; it is checked before a (possibly large) body is read.
    let key = authenticate(state, &headers)?;
    let caller = key.as_ref().map_or_else(
        || state.planes.default_account().to_owned(),
        |k| k.account_id.clone(),
    );
    let is_upload = matches!(
        route,
        Route::Lambda(
            Operation::CreateFunction
                | Operation::UpdateFunctionCode(_)
                | Operation::PublishLayerVersion(_)
        )
    );
    let received = if is_upload {
        spool_body(
            body,
            limit,
            state.config.body_timeout,
            &state.config.upload_dir,
        )
        .await
    } else {
        read_body(body, limit, declared, state.config.body_timeout).await
    };
    let received = match received {
        Ok(received) => received,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Stalled) => return Err(ApiError::request_timeout()),
        Err(BodyError::Broken) => {
            return Err(ApiError::invalid_content(
                "The request body could not be read.",
            ))
        }
        Err(BodyError::Spool(error)) => return Err(ApiError::internal(&error)),
    };

    if let Some(key) = key {
        let request_parts = sigv4::RequestParts {
            method: parts.method.as_str(),
            raw_path: &raw_path,
            raw_query: &raw_query,
            headers: &headers,
        };
        let hash = match &received {
            Received::Memory(body) => sigv4::payload_hash(body),
            Received::Spooled { sha256, .. } => sha256.clone(),
        };
        sigv4::verify_session(
            &request_parts,
            hash,
            &key.credentials,
            key.token.as_deref(),
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
    let plane = state
        .planes
        .for_operation(&caller, &operation, &query)
        .await?;
    // A spooled upload is read back only once its turn to be decoded comes.
    let (body, upload_turn) = match received {
        Received::Memory(body) => (body, None),
        Received::Spooled { file, .. } => {
            let turn = Arc::clone(&state.uploads)
                .acquire_owned()
                .await
                .map_err(|e| ApiError::internal(&e))?;
            let body = tokio::task::spawn_blocking(move || read_spooled(file))
                .await
                .map_err(|e| ApiError::internal(&e))?
                .map_err(|e| ApiError::internal(&e))?;
            (body, Some(turn))
        }
    };
    match &operation {
        Operation::Invoke(function) => {
            return invoke::invoke(
                &plane,
                &state.services.events,
                request_id,
                function,
                &query,
                &parts.headers,
                body,
            )
            .await;
        }
        Operation::InvokeWithResponseStream(function) => {
            return invoke::invoke_with_response_stream(
                &plane,
                &state.services.events,
                request_id,
                function,
                &query,
                &parts.headers,
                body,
            )
            .await;
        }
        Operation::CreateFunctionUrlConfig(function)
        | Operation::GetFunctionUrlConfig(function)
        | Operation::UpdateFunctionUrlConfig(function)
        | Operation::DeleteFunctionUrlConfig(function)
        | Operation::ListFunctionUrlConfigs(function) => {
            let base = urls::UrlBase {
                domain: state.config.url_domain.as_ref(),
                host: &host,
            };
            let response = urls::handle(&plane, base, &operation, function, &query, &body).await?;
            if matches!(operation, Operation::CreateFunctionUrlConfig(_)) {
                state.front.note_created(&plane);
            }
            return Ok(response);
        }
        Operation::InvokeAsync(function) => {
            return invoke::invoke_async(
                &plane,
                &state.services.events,
                request_id,
                function,
                body,
            )
            .await;
        }
        Operation::PutFunctionConcurrency(function)
        | Operation::GetFunctionConcurrency(function)
        | Operation::DeleteFunctionConcurrency(function) => {
            return concurrency::handle(&plane, &operation, function, &body).await;
        }
        Operation::CreateEventSourceMapping
        | Operation::ListEventSourceMappings
        | Operation::GetEventSourceMapping(_)
        | Operation::UpdateEventSourceMapping(_)
        | Operation::DeleteEventSourceMapping(_) => {
            return mappings::handle(&plane, &state.services.sqs, &operation, &query, &body).await;
        }
        Operation::PutProvisionedConcurrencyConfig(function)
        | Operation::GetProvisionedConcurrencyConfig(function)
        | Operation::DeleteProvisionedConcurrencyConfig(function) => {
            return provisioned::handle(&plane, &operation, function, &query, &body).await;
        }
        Operation::GustLogs(function) => {
            return invoke::logs(&plane, &state.services.logs, function, &query).await
        }
        Operation::GustUsage => {
            return usage::report(&state.services.usage, &caller, &query).await;
        }
        _ => {}
    }
    // Lambda code from S3: the object is read (as the caller's account) before the
    // operation runs.
    let mut upload_turn = upload_turn;
    let from_s3 = match code_s3::location(&operation, &body) {
        Some(location) => {
            // As the caller: another account's function is updated with the caller's own
            // objects, never the function owner's. One package is held at a time per
            // decoding turn, as uploads are.
            let turn = Arc::clone(&state.uploads)
                .acquire_owned()
                .await
                .map_err(|e| ApiError::internal(&e))?;
            let package = code_s3::fetch(&state.services.s3, &caller, &location).await?;
            upload_turn = Some(turn);
            Some(package)
        }
        None => None,
    };
    let context = routes::Context {
        control: Arc::clone(&plane.control),
        code_url_key: state.config.code_url_key,
        now: state.config.clock.now(),
        host,
        from_s3,
    };
    tokio::task::spawn_blocking(move || {
        // Held until the decoded upload is stored, even if the client has gone.
        let _turn = upload_turn;
        routes::execute(&context, operation, &query, &body)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

/// Who signed a request.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The key pair the signature must verify with.
    pub(crate) credentials: Credentials,
    /// The session token that must come with it (session credentials only).
    pub(crate) token: Option<String>,
    /// The account acted in.
    pub(crate) account_id: String,
    /// The session, for session credentials.
    pub(crate) session: Option<gust_sts::Session>,
}

/// The identity a request presents (before its signature is checked): one of the
/// accounts' keys, or session credentials this server issued. `None` without
/// authentication.
pub(crate) fn authenticate(
    state: &ApiState,
    headers: &[(String, String)],
) -> Result<Option<Identity>, sigv4::AuthError> {
    let Auth::SigV4(keys) = &state.config.auth else {
        return Ok(None);
    };
    let presented = sigv4::presented_key(headers)?;
    if let Some(key) = keys
        .iter()
        .find(|k| k.credentials.access_key_id == presented)
    {
        sigv4::precheck(headers, &key.credentials)?;
        return Ok(Some(Identity {
            credentials: key.credentials.clone(),
            token: None,
            account_id: key.account_id.clone(),
            session: None,
        }));
    }
    let token = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
        .map(|(_, v)| v.as_str())
        .ok_or(sigv4::AuthError::UnknownKey)?;
    let session = state
        .config
        .sessions
        .open(&presented, token, state.config.clock.now())
        .map_err(|error| match error {
            gust_sts::StsError::ExpiredToken => sigv4::AuthError::ExpiredToken,
            _ => sigv4::AuthError::UnknownKey,
        })?;
    if state.planes.get(&session.account).is_none() {
        return Err(sigv4::AuthError::UnknownKey);
    }
    Ok(Some(Identity {
        credentials: Credentials {
            access_key_id: session.access_key_id.clone(),
            secret_access_key: session.secret_access_key.clone(),
        },
        token: Some(session.session_token.clone()),
        account_id: session.account.clone(),
        session: Some(session),
    }))
}

/// Headers as (name, value) text pairs, for signatures.
fn header_list(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[derive(Debug)]
enum BodyError {
    TooLarge,
    /// Nothing arrived for the body timeout.
    Stalled,
    Broken,
    /// The upload could not be written to disk.
    Spool(std::io::Error),
}

/// A request body as received.
#[derive(Debug)]
enum Received {
    Memory(bytes::Bytes),
    /// On disk, in an unlinked file (nothing is left behind by a crash).
    Spooled {
        file: std::fs::File,
        /// Hex SHA-256, for the signature.
        sha256: String,
    },
}

/// The next chunk of a body of at most its limit, or `None` at its end; gives up when the
/// client sends nothing for `idle` (a slow but moving upload is fine).
async fn next_chunk(
    body: &mut http_body_util::Limited<Body>,
    idle: std::time::Duration,
) -> Result<Option<bytes::Bytes>, BodyError> {
    use http_body_util::BodyExt;
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Stalled),
            Ok(None) => return Ok(None),
            Ok(Some(Err(error))) => {
                return Err(if error.is::<http_body_util::LengthLimitError>() {
                    BodyError::TooLarge
                } else {
                    BodyError::Broken
                })
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Reads a whole body into memory (its declared length, within the limit, is reserved
/// at once rather than grown by doubling).
async fn read_body(
    body: Body,
    limit: usize,
    declared: Option<u64>,
    idle: std::time::Duration,
) -> Result<Received, BodyError> {
    let reserve = declared.map_or(0, |len| usize::try_from(len).unwrap_or(limit).min(limit));
    let mut collected = bytes::BytesMut::with_capacity(reserve);
    let mut body = http_body_util::Limited::new(body, limit);
    while let Some(data) = next_chunk(&mut body, idle).await? {
        collected.extend_from_slice(&data);
    }
    Ok(Received::Memory(collected.freeze()))
}

/// Writes a body to an unlinked file in `dir` as it arrives, hashing it on the way.
async fn spool_body(
    body: Body,
    limit: usize,
    idle: std::time::Duration,
    dir: &std::path::Path,
) -> Result<Received, BodyError> {
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let file = tempfile::tempfile_in(dir).map_err(BodyError::Spool)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    let mut hasher = sha2::Sha256::new();
    let mut body = http_body_util::Limited::new(body, limit);
    while let Some(data) = next_chunk(&mut body, idle).await? {
        hasher.update(&data);
        out.write_all(&data).await.map_err(BodyError::Spool)?;
    }
    out.flush().await.map_err(BodyError::Spool)?;
    Ok(Received::Spooled {
        file: out.into_inner().into_std().await,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn read_spooled(mut file: std::fs::File) -> std::io::Result<bytes::Bytes> {
    use std::io::{Read, Seek};
    let len = file.seek(std::io::SeekFrom::End(0))?;
    file.rewind()?;
    let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut body)?;
    Ok(body.into())
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

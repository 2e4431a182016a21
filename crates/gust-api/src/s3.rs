//! The S3 wire protocol, on the `s3s` crate: it parses requests (path-style, and
//! virtual-hosted style under `--url-domain`), verifies every SigV4 form (header, presigned
//! query, `aws-chunked` streaming payloads with chunk signatures or trailers) and writes
//! S3's XML; this adapter maps its operations to `gust_s3::S3` and its errors to S3's codes.
//!
//! A request is S3's when its credential scope names the `s3` service (`Authorization:
//! … Credential=<key>/<date>/<region>/s3/aws4_request`, or a presigned URL's
//! `X-Amz-Credential`; SigV2's `AWS <key>:…` and `AWSAccessKeyId=` are S3-only too), or
//! under `--url-domain` when its host is `s3.<region>.<domain>` or
//! `<bucket>.s3.<region>.<domain>` (any port). Bodies are handed to `s3s` as they arrive
//! (no size limit but S3's own, an idle timeout of `--body-timeout`), and objects stream
//! back from their files.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use gust_s3::{ByteRange, Caller, Conditions, EtagMatch, ObjectInfo, ObjectMeta, WriteCondition};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use s3s::dto;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::ApiState;

/// Whether a request is for S3 (see the module's documentation).
pub(crate) fn is_s3(parts: &Parts, state: &ApiState) -> bool {
    let query = parts.uri.query().unwrap_or("");
    if presented(&parts.headers, query).is_some_and(|(_, service)| service == "s3") {
        return true;
    }
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    match (host, state.config.url_domain.as_ref()) {
        (Some(host), Some(domain)) => {
            virtual_host(host, domain.domain(), state.services.s3.region()).is_some()
        }
        _ => false,
    }
}

/// The access key and signing service a request presents: SigV4's credential scope (header
/// or presigned query), or SigV2's key (an S3-only scheme).
fn presented(headers: &axum::http::HeaderMap, query: &str) -> Option<(String, String)> {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256") {
            let credential = rest
                .split(',')
                .find_map(|p| p.trim().strip_prefix("Credential="))?;
            return scope(credential);
        }
        if let Some(rest) = value.strip_prefix("AWS ") {
            let key = rest.split(':').next()?.trim();
            return Some((key.to_owned(), "s3".to_owned()));
        }
        return None;
    }
    let mut v2_key = None;
    let mut v2_signed = false;
    let mut v4_credential = None;
    let mut v4_signed = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        match name {
            "X-Amz-Credential" => v4_credential = Some(value.into_owned()),
            // A presigned URL without its signature is nobody's: not taken as S3's.
            "X-Amz-Signature" => v4_signed = true,
            "AWSAccessKeyId" => v2_key = Some(value.into_owned()),
            "Signature" => v2_signed = true,
            _ => {}
        }
    }
    if let Some(credential) = v4_credential.filter(|_| v4_signed) {
        return scope(&credential);
    }
    v2_key
        .filter(|_| v2_signed)
        .map(|key| (key, "s3".to_owned()))
}

/// `<key>/<date>/<region>/<service>/aws4_request` → (key, service).
fn scope(credential: &str) -> Option<(String, String)> {
    let mut parts = credential.trim().split('/');
    let key = parts.next()?.to_owned();
    let service = parts.nth(2)?.to_owned();
    Some((key, service))
}

/// The bucket a virtual-hosted host names: `Some(None)` for `s3.<region>.<domain>`,
/// `Some(Some(bucket))` for `<bucket>.s3.<region>.<domain>`, `None` for other hosts.
fn virtual_host(host: &str, domain: &str, region: &str) -> Option<Option<String>> {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    let base = format!("s3.{region}.{domain}");
    if host == base {
        return Some(None);
    }
    let bucket = host.strip_suffix(&base)?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| Some(bucket.to_owned()))
}

/// `s3s`'s view of hosts: buckets in `<bucket>.s3.<region>.<domain>`, path-style
/// everywhere else.
#[derive(Debug)]
struct Hosts {
    domain: String,
    region: String,
}

impl s3s::host::S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<s3s::host::VirtualHost<'a>> {
        Ok(match virtual_host(host, &self.domain, &self.region) {
            Some(Some(bucket)) => s3s::host::VirtualHost::new(host).with_bucket(bucket),
            _ => s3s::host::VirtualHost::new(host),
        })
    }
}

/// Who may sign: the accounts' keys and the session this request presents.
#[derive(Debug)]
struct Signers {
    keys: Vec<crate::AccountKey>,
    session: Option<gust_sts::Session>,
}

/// The signers as `s3s` asks for them.
#[derive(Debug)]
struct SignerAuth(Arc<Signers>);

#[async_trait::async_trait]
impl s3s::auth::S3Auth for SignerAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<s3s::auth::SecretKey> {
        if let Some(key) = self
            .0
            .keys
            .iter()
            .find(|k| k.credentials.access_key_id == access_key)
        {
            return Ok(key.credentials.secret_access_key.clone().into());
        }
        match &self.0.session {
            Some(session) if session.access_key_id == access_key => {
                Ok(session.secret_access_key.clone().into())
            }
            _ => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// Checks every signed request's time (presigned URLs' expiry is `s3s`'s) and refuses
/// anonymous ones: Gust has no public buckets.
#[derive(Debug)]
struct Access {
    clock: Arc<dyn gust_model::Clock>,
}

/// How far a header-signed request's time may be from the server's.
const MAX_SKEW: time::Duration = time::Duration::minutes(15);

#[async_trait::async_trait]
impl s3s::access::S3Access for Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        if cx.headers().contains_key(axum::http::header::AUTHORIZATION) {
            let date = cx
                .headers()
                .get("x-amz-date")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_amz_date);
            if let Some(date) = date {
                if (self.clock.now() - date).abs() > MAX_SKEW {
                    return Err(s3_error!(
                        RequestTimeTooSkewed,
                        "The difference between the request time and the current time is too large."
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_amz_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// What one request's operations know besides their input.
#[derive(Debug)]
struct RequestContext {
    signers: Arc<Signers>,
    /// `--no-auth`: every request acts in this account.
    open_account: Option<String>,
    source_ip: Option<String>,
    /// Set when the request body stopped arriving for the body timeout.
    body_stalled: Arc<AtomicBool>,
    /// Why the request body broke off (a chunk signature, a payload hash), if it did.
    body_failure: Arc<std::sync::Mutex<Option<String>>>,
}

/// The `s3s::S3` implementation for one request.
#[derive(Debug)]
struct Adapter {
    s3: Arc<gust_s3::S3>,
    cx: Arc<RequestContext>,
    /// Checks notification destinations (`None`: a server without targets refuses
    /// configurations that name any).
    destinations: Option<Arc<dyn gust_model::targets::Deliver>>,
    clock: Arc<dyn gust_model::Clock>,
    request_id: String,
}

/// Serves one S3 request.
pub(crate) async fn serve(
    state: &ApiState,
    mut parts: Parts,
    body: Body,
    request_id: &str,
) -> Response {
    // POST Object (browser form uploads) is not built; s3s would read the whole form into
    // memory before any access check, so it is refused before anything is read.
    let form = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if parts.method == axum::http::Method::POST && form {
        let error = s3_error!(
            NotImplemented,
            "POST Object (browser-based uploads) is not implemented by this Gust server."
        );
        return with_request_id(error_response(error), request_id);
    }
    let source_ip = parts
        .extensions
        .get::<crate::server::Peer>()
        .map(|p| p.0.ip().to_string());
    let (keys, open_account) = match &state.config.auth {
        crate::Auth::SigV4(keys) => (keys.clone(), None),
        crate::Auth::Disabled => (Vec::new(), Some(state.planes.default_account().to_owned())),
    };
    let mut session = None;
    if open_account.is_some() {
        // Without authentication signatures are not checked: they are removed, so `s3s`
        // takes the request as anonymous (and this adapter as the default account's).
        if let Err(response) = strip_signature(&mut parts) {
            return with_request_id(*response, request_id);
        }
    } else if let Some(token) = session_token(&parts) {
        let query = parts.uri.query().unwrap_or("");
        if let Some((key, _)) = presented(&parts.headers, query) {
            if !keys.iter().any(|k| k.credentials.access_key_id == key) {
                match state
                    .config
                    .sessions
                    .open(&key, &token, state.config.clock.now())
                {
                    Ok(opened) if state.planes.get(&opened.account).is_some() => {
                        session = Some(opened);
                    }
                    Ok(_) => {}
                    Err(gust_sts::StsError::ExpiredToken) => {
                        let error = s3_error!(ExpiredToken, "The provided token has expired.");
                        return with_request_id(error_response(error), request_id);
                    }
                    Err(_) => {
                        let error = s3_error!(
                            InvalidToken,
                            "The provided token is malformed or otherwise invalid."
                        );
                        return with_request_id(error_response(error), request_id);
                    }
                }
            }
        }
    }
    let body_stalled = Arc::new(AtomicBool::new(false));
    let cx = Arc::new(RequestContext {
        signers: Arc::new(Signers { keys, session }),
        open_account,
        source_ip,
        body_stalled: Arc::clone(&body_stalled),
        body_failure: Arc::default(),
    });
    let mut builder = s3s::service::S3ServiceBuilder::new(Adapter {
        s3: Arc::clone(&state.services.s3),
        cx: Arc::clone(&cx),
        destinations: state.services.s3_destinations.clone(),
        clock: Arc::clone(&state.config.clock),
        request_id: request_id.to_owned(),
    });
    if cx.open_account.is_none() {
        builder.set_auth(SignerAuth(Arc::clone(&cx.signers)));
        builder.set_access(Access {
            clock: Arc::clone(&state.config.clock),
        });
    }
    if let Some(domain) = &state.config.url_domain {
        builder.set_host(Hosts {
            domain: domain.domain().to_owned(),
            region: state.services.s3.region().to_owned(),
        });
    }
    let service = builder.build();
    let body = IdleBody {
        inner: body,
        idle: state.config.body_timeout,
        sleep: Box::pin(tokio::time::sleep(state.config.body_timeout)),
        waiting: false,
        stalled: body_stalled,
    };
    let head = parts.method == axum::http::Method::HEAD;
    let request = axum::http::Request::from_parts(parts, s3s::Body::http_body_unsync(body));
    let response = match service.call(request).await {
        Ok(mut response) => {
            // A ranged HEAD is partial content too (s3s answers it 200).
            if head
                && response.status() == axum::http::StatusCode::OK
                && response
                    .headers()
                    .contains_key(axum::http::header::CONTENT_RANGE)
            {
                *response.status_mut() = axum::http::StatusCode::PARTIAL_CONTENT;
            }
            if response.status().is_client_error() || response.status().is_server_error() {
                fill_message(&mut response);
            }
            response.map(Body::new)
        }
        Err(error) => {
            tracing::error!(?error, "the S3 service failed");
            error_response(s3_error!(
                InternalError,
                "We encountered an internal error. Please try again."
            ))
        }
    };
    with_request_id(response, request_id)
}

/// S3 sends a `Message` with every error; `s3s` leaves it out of those it raises itself
/// (signature and path checks): the usual one is added.
fn fill_message(response: &mut s3s::HttpResponse) {
    let Some(body) = response.body().bytes() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return;
    };
    if text.contains("<Message>") {
        return;
    }
    let Some((code, at)) = text.find("<Code>").and_then(|start| {
        let rest = &text[start + 6..];
        let end = rest.find("</Code>")?;
        Some((&rest[..end], start + 6 + end + 7))
    }) else {
        return;
    };
    let message = match code {
        "SignatureDoesNotMatch" => "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "AccessDenied" => "Access Denied",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "KeyTooLongError" => "Your key is too long",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "IncompleteBody" => "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        "XAmzContentSHA256Mismatch" => "The provided 'x-amz-content-sha256' header does not match what was computed.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema",
        "MaxMessageLengthExceeded" => "Your request was too big.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented",
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "InternalError" => "We encountered an internal error. Please try again.",
        _ => "The request is not valid.",
    };
    let filled = format!("{}<Message>{message}</Message>{}", &text[..at], &text[at..]);
    let length = filled.len();
    *response.body_mut() = s3s::Body::from(filled);
    if let Ok(value) = HeaderValue::from_str(&length.to_string()) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_LENGTH, value);
    }
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amz-request-id", value);
    }
    response
}

fn error_response(error: s3s::S3Error) -> Response {
    match error.to_http_response() {
        Ok(response) => response.map(Body::new),
        Err(_) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// The session token a request carries (header, or presigned query).
fn session_token(parts: &Parts) -> Option<String> {
    if let Some(token) = parts
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
    {
        return Some(token.to_owned());
    }
    parts.uri.query().unwrap_or("").split('&').find_map(|pair| {
        let value = pair.strip_prefix("X-Amz-Security-Token=")?;
        Some(
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned(),
        )
    })
}

/// Removes a request's signature (`--no-auth`). A body with chunk signatures cannot be
/// decoded without the signing key: such a request is refused.
fn strip_signature(parts: &mut Parts) -> Result<(), Box<Response>> {
    let streaming = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if streaming {
        return Err(Box::new(error_response(s3_error!(
            NotImplemented,
            "Without authentication (--no-auth) Gust cannot decode aws-chunked uploads; send the payload unsigned or its SHA-256."
        ))));
    }
    parts.headers.remove(axum::http::header::AUTHORIZATION);
    if let Some(query) = parts.uri.query() {
        let signed = query
            .split('&')
            .any(|p| p.starts_with("X-Amz-Signature=") || p.starts_with("Signature="));
        if signed {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| {
                    let name = p.split('=').next().unwrap_or("");
                    !(name.starts_with("X-Amz-")
                        || matches!(name, "AWSAccessKeyId" | "Signature" | "Expires"))
                })
                .collect();
            let path = parts.uri.path().to_owned();
            let uri = if kept.is_empty() {
                path
            } else {
                format!("{path}?{}", kept.join("&"))
            };
            if let Ok(uri) = uri.parse() {
                parts.uri = uri;
            }
        }
    }
    Ok(())
}

/// A request body that fails when nothing arrives for `idle`.
struct IdleBody {
    inner: Body,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// A poll found nothing and the timer runs.
    waiting: bool,
    stalled: Arc<AtomicBool>,
}

/// Why a request body ended early.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BodyError(String);

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        // Only time spent waiting for the client counts, from the first poll that finds
        // nothing (the server's own pauses between reads do not).
        if !this.waiting {
            this.waiting = true;
            let deadline = tokio::time::Instant::now() + this.idle;
            this.sleep.as_mut().reset(deadline);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(|e| BodyError(e.to_string()))))
            }
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_ready() {
                    this.stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(BodyError(
                        "the request body stopped arriving".into(),
                    ))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An object body from `s3s`, remembering the error it ended with.
struct Watched {
    inner: dto::StreamingBlob,
    failure: Arc<std::sync::Mutex<Option<String>>>,
}

impl futures_core::Stream for Watched {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Err(error))) = &polled {
            *self
                .failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
        }
        polled
    }
}

// --- Mapping ------------------------------------------------------------------------------

impl Adapter {
    /// The caller of a verified request: the signing key's account, or the session's.
    fn caller<T>(&self, request: &S3Request<T>) -> S3Result<Caller> {
        let source_ip = self.cx.source_ip.clone();
        if let Some(account) = &self.cx.open_account {
            return Ok(Caller {
                account: account.clone(),
                principal: account.clone(),
                source_ip,
            });
        }
        let credentials = request
            .credentials
            .as_ref()
            .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        if let Some(key) = self
            .cx
            .signers
            .keys
            .iter()
            .find(|k| k.credentials.access_key_id == credentials.access_key)
        {
            return Ok(Caller {
                account: key.account_id.clone(),
                principal: credentials.access_key.clone(),
                source_ip,
            });
        }
        match &self.cx.signers.session {
            Some(session) if session.access_key_id == credentials.access_key => Ok(Caller {
                account: session.account.clone(),
                principal: session.assumed_role_id(),
                source_ip,
            }),
            _ => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }

    /// A request body that records why it broke off.
    fn watch(&self, body: Option<dto::StreamingBlob>) -> Watched {
        Watched {
            inner: body.unwrap_or_else(|| dto::StreamingBlob::from(s3s::Body::empty())),
            failure: Arc::clone(&self.cx.body_failure),
        }
    }

    /// An error of a write, its body's failure told apart: a stalled upload, a chunk
    /// whose signature does not match, a payload whose SHA-256 does not.
    fn error(&self, error: gust_s3::S3Error) -> s3s::S3Error {
        if error != gust_s3::S3Error::IncompleteBody {
            return map_error(error);
        }
        if self.cx.body_stalled.load(Ordering::Relaxed) {
            return s3_error!(
                RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."
            );
        }
        let failure = self
            .cx
            .body_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        if failure.contains("SignatureMismatch") {
            return s3_error!(
                SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            );
        }
        if failure.contains("Sha256Mismatch") {
            let code = s3s::S3ErrorCode::from_bytes(b"XAmzContentSHA256Mismatch")
                .unwrap_or(s3s::S3ErrorCode::BadDigest);
            let mut mismatch = s3s::S3Error::with_message(
                code,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            );
            mismatch.set_status_code(axum::http::StatusCode::BAD_REQUEST);
            return mismatch;
        }
        map_error(error)
    }
}

/// `gust_s3`'s errors as S3's (code, message, status).
fn map_error(error: gust_s3::S3Error) -> s3s::S3Error {
    if let gust_s3::S3Error::Internal(cause) = &error {
        tracing::error!(%cause, "S3 operation failed");
        return s3_error!(
            InternalError,
            "We encountered an internal error. Please try again."
        );
    }
    let code = s3s::S3ErrorCode::from_bytes(error.code().as_bytes())
        .unwrap_or(s3s::S3ErrorCode::InternalError);
    let mut mapped = s3s::S3Error::with_message(code, error.to_string());
    match &error {
        gust_s3::S3Error::InvalidRange { size } => {
            mapped.set_status_code(axum::http::StatusCode::RANGE_NOT_SATISFIABLE);
            let mut headers = axum::http::HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(axum::http::header::CONTENT_RANGE, value);
                mapped.set_headers(headers);
            }
        }
        gust_s3::S3Error::InvalidLocationConstraint(_)
        | gust_s3::S3Error::IllegalLocationConstraint
        | gust_s3::S3Error::InvalidVersion => {
            mapped.set_status_code(axum::http::StatusCode::BAD_REQUEST);
        }
        gust_s3::S3Error::NotImplemented(_) => {
            mapped.set_status_code(axum::http::StatusCode::NOT_IMPLEMENTED);
        }
        _ => {}
    }
    mapped
}

fn etag(value: &str) -> dto::ETag {
    dto::ETag::Strong(value.to_owned())
}

fn timestamp(at: time::OffsetDateTime) -> dto::Timestamp {
    dto::Timestamp::from(at)
}

fn etag_match(condition: Option<dto::ETagCondition>) -> Option<EtagMatch> {
    condition.map(|c| match c {
        dto::ETagCondition::Any => EtagMatch::Any,
        dto::ETagCondition::ETag(tag) => EtagMatch::Tags(vec![tag.value().to_owned()]),
    })
}

fn time_of(value: Option<dto::Timestamp>) -> Option<time::OffsetDateTime> {
    value.map(time::OffsetDateTime::from)
}

fn byte_range(range: Option<dto::Range>) -> Option<ByteRange> {
    range.map(|r| match r {
        dto::Range::Int { first, last } => ByteRange::From { first, last },
        dto::Range::Suffix { length } => ByteRange::Suffix { length },
    })
}

fn owner(account: &str) -> dto::Owner {
    dto::Owner {
        id: Some(account.to_owned()),
        display_name: Some(account.to_owned()),
    }
}

/// The content headers and user metadata of a write.
#[allow(clippy::too_many_arguments)]
fn object_meta(
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<dto::Timestamp>,
    storage_class: Option<dto::StorageClass>,
    metadata: Option<dto::Metadata>,
) -> ObjectMeta {
    ObjectMeta {
        content_type: content_type.filter(|t| !t.is_empty()),
        cache_control,
        content_disposition,
        content_encoding,
        content_language,
        expires_ms: time_of(expires).map(gust_store::sqlite::ms),
        storage_class: storage_class
            .map(|c| c.as_str().to_owned())
            .filter(|c| c != "STANDARD"),
        user: metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    }
}

/// What a write asks for beyond Gust's S3: ACLs (buckets are `BucketOwnerEnforced`, as new
/// S3 buckets are), server-side encryption other than S3's default, object lock, website
/// redirects. Refused, never ignored.
struct Extras<'a> {
    acl: Option<&'a str>,
    grants: bool,
    encryption: Option<&'a str>,
    customer_key: bool,
    kms_key: bool,
    lock: bool,
    redirect: bool,
}

fn refuse_extras(extras: &Extras<'_>) -> S3Result<()> {
    if extras.grants
        || extras
            .acl
            .is_some_and(|a| a != "private" && a != "bucket-owner-full-control")
    {
        return Err(s3_error!(
            AccessControlListNotSupported,
            "The bucket does not allow ACLs"
        ));
    }
    if extras.customer_key || extras.kms_key || extras.encryption.is_some_and(|e| e != "AES256") {
        return Err(s3_error!(
            NotImplemented,
            "Gust does not implement server-side encryption with KMS or customer-provided keys."
        ));
    }
    if extras.lock {
        return Err(s3_error!(
            NotImplemented,
            "Gust does not implement object lock."
        ));
    }
    if extras.redirect {
        return Err(s3_error!(
            NotImplemented,
            "Gust does not implement website redirects."
        ));
    }
    Ok(())
}

fn tags_header(header: Option<String>) -> S3Result<gust_s3::Tags> {
    match header {
        Some(text) => gust_s3::names::parse_tagging_header(&text).map_err(map_error),
        None => Ok(Vec::new()),
    }
}

fn tag_set(tags: &gust_s3::Tags) -> Vec<dto::Tag> {
    tags.iter()
        .map(|(k, v)| dto::Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

fn content_length(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

/// Keys, prefixes and markers in a listing with `EncodingType=url`: percent-encoded
/// except unreserved characters and `/` (botocore decodes them).
fn url_encode(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

fn list_encoder(encoding: Option<&dto::EncodingType>) -> fn(&str) -> String {
    match encoding {
        Some(e) if e.as_str() == "url" => url_encode,
        _ => str::to_owned,
    }
}

fn max_keys(value: Option<i32>) -> S3Result<usize> {
    match value {
        None => Ok(gust_s3::MAX_KEYS),
        Some(n) => usize::try_from(n).map_err(|_| {
            s3_error!(
                InvalidArgument,
                "Provided max-keys not an integer or within integer range"
            )
        }),
    }
}

/// A listing's `CommonPrefixes` (every list operation answers them alike).
fn common_prefixes(prefixes: &[String], encode: fn(&str) -> String) -> Vec<dto::CommonPrefix> {
    prefixes
        .iter()
        .map(|p| dto::CommonPrefix {
            prefix: Some(encode(p)),
        })
        .collect()
}

fn listed_object(object: &ObjectInfo, with_owner: bool, encode: fn(&str) -> String) -> dto::Object {
    dto::Object {
        key: Some(encode(&object.key)),
        last_modified: Some(timestamp(object.last_modified)),
        e_tag: Some(etag(&object.etag)),
        size: Some(i64::try_from(object.size).unwrap_or(i64::MAX)),
        storage_class: Some(dto::ObjectStorageClass::from(
            object
                .meta
                .storage_class
                .clone()
                .unwrap_or_else(|| "STANDARD".to_owned()),
        )),
        owner: with_owner.then(|| owner(&object.owner)),
        ..Default::default()
    }
}

fn copy_source(source: &dto::CopySource) -> S3Result<(String, String, Option<String>)> {
    match source {
        dto::CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_ref().map(ToString::to_string),
        )),
        dto::CopySource::AccessPoint { .. } => {
            Err(s3_error!(NotImplemented, "Gust has no access points."))
        }
    }
}

/// Objects up to this size are completed before the answer starts; larger ones get S3's
/// long-running answer (200 at once, whitespace while the parts are joined, then the
/// result or an error document).
const COMPLETE_IN_PLACE: u64 = 256 * 1024 * 1024;

fn object_stream(file: std::fs::File, length: u64) -> dto::StreamingBlob {
    use tokio::io::AsyncReadExt;
    let reader = tokio::fs::File::from_std(file).take(length);
    dto::StreamingBlob::wrap(tokio_util::io::ReaderStream::with_capacity(
        reader,
        256 * 1024,
    ))
}

#[async_trait::async_trait]
impl s3s::S3 for Adapter {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let caller = self.caller(&req)?;
        let input = &req.input;
        let grants = input.grant_full_control.is_some()
            || input.grant_read.is_some()
            || input.grant_read_acp.is_some()
            || input.grant_write.is_some()
            || input.grant_write_acp.is_some();
        if grants || input.acl.as_ref().is_some_and(|a| a.as_str() != "private") {
            return Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            ));
        }
        if input.object_lock_enabled_for_bucket == Some(true) {
            return Err(s3_error!(
                NotImplemented,
                "Gust does not implement object lock."
            ));
        }
        if input
            .object_ownership
            .as_ref()
            .is_some_and(|o| o.as_str() != "BucketOwnerEnforced")
        {
            return Err(s3_error!(
                NotImplemented,
                "Gust's buckets are BucketOwnerEnforced: ACLs are not available."
            ));
        }
        let location = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|l| l.as_str().to_owned());
        let bucket = self
            .s3
            .create_bucket(&caller, &req.input.bucket, location.as_deref())
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{}", bucket.name)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let caller = self.caller(&req)?;
        self.s3
            .delete_bucket(&caller, &req.input.bucket)
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::DeleteBucketOutput::default()))
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let caller = self.caller(&req)?;
        let bucket = self
            .s3
            .head_bucket(&caller, &req.input.bucket)
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(bucket.region),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        let caller = self.caller(&req)?;
        let bucket = self
            .s3
            .head_bucket(&caller, &req.input.bucket)
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::GetBucketLocationOutput {
            location_constraint: (bucket.region != "us-east-1")
                .then(|| dto::BucketLocationConstraint::from(bucket.region)),
        }))
    }

    async fn put_bucket_notification_configuration(
        &self,
        req: S3Request<dto::PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<dto::PutBucketNotificationConfigurationOutput>> {
        let caller = self.caller(&req)?;
        let bucket = self
            .s3
            .owned_bucket(&caller, &req.input.bucket)
            .await
            .map_err(map_error)?;
        let invalid = |error: gust_model::notification::InvalidConfiguration| {
            let mut message = error.message;
            for (name, value) in &error.arguments {
                message.push_str(&format!(" ({name}: {value})"));
            }
            s3s::S3Error::with_message(s3s::S3ErrorCode::InvalidArgument, message)
        };
        let config =
            crate::s3_notify::to_domain(&req.input.notification_configuration).map_err(invalid)?;
        if !req.input.skip_destination_validation.unwrap_or(false) && !config.rules.is_empty() {
            let Some(destinations) = &self.destinations else {
                return Err(s3_error!(
                    InvalidArgument,
                    "Unable to validate the following destination configurations"
                ));
            };
            let now_ms =
                i64::try_from(self.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            crate::s3_notify::validate(
                destinations.as_ref(),
                &bucket.account,
                &bucket.name,
                &config,
                &self.request_id,
                now_ms,
            )
            .await
            .map_err(invalid)?;
        }
        self.s3
            .set_bucket_notification(&caller, &bucket.name, config.stored())
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(
            dto::PutBucketNotificationConfigurationOutput::default(),
        ))
    }

    async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<dto::GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetBucketNotificationConfigurationOutput>> {
        let caller = self.caller(&req)?;
        let stored = self
            .s3
            .bucket_notification(&caller, &req.input.bucket)
            .await
            .map_err(map_error)?;
        let config =
            gust_model::notification::NotificationConfiguration::from_stored(stored.as_deref());
        let wire = crate::s3_notify::to_wire(&config);
        Ok(S3Response::new(
            dto::GetBucketNotificationConfigurationOutput {
                event_bridge_configuration: wire.event_bridge_configuration,
                lambda_function_configurations: wire.lambda_function_configurations,
                queue_configurations: wire.queue_configurations,
                topic_configurations: wire.topic_configurations,
            },
        ))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        let caller = self.caller(&req)?;
        self.s3
            .head_bucket(&caller, &req.input.bucket)
            .await
            .map_err(map_error)?;
        // Never versioned: S3 answers such a bucket with an empty configuration.
        Ok(S3Response::new(dto::GetBucketVersioningOutput::default()))
    }

    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let caller = self.caller(&req)?;
        let input = &req.input;
        let mut buckets = self
            .s3
            .list_buckets(&caller, input.prefix.as_deref())
            .await
            .map_err(map_error)?;
        if let Some(region) = &input.bucket_region {
            buckets.retain(|b| &b.region == region);
        }
        if let Some(after) = &input.continuation_token {
            buckets.retain(|b| &b.name > after);
        }
        let mut continuation = None;
        if let Some(max) = input.max_buckets {
            let max = usize::try_from(max).unwrap_or(0).clamp(1, 10_000);
            if buckets.len() > max {
                buckets.truncate(max);
                continuation = buckets.last().map(|b| b.name.clone());
            }
        }
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|b| dto::Bucket {
                        name: Some(b.name),
                        creation_date: Some(timestamp(b.created)),
                        bucket_region: Some(b.region),
                    })
                    .collect(),
            ),
            owner: Some(owner(&caller.account)),
            prefix: input.prefix.clone(),
            continuation_token: continuation,
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        refuse_extras(&Extras {
            acl: input.acl.as_ref().map(|a| a.as_str()),
            grants: input.grant_full_control.is_some()
                || input.grant_read.is_some()
                || input.grant_read_acp.is_some()
                || input.grant_write_acp.is_some(),
            encryption: input.server_side_encryption.as_ref().map(|e| e.as_str()),
            customer_key: input.sse_customer_algorithm.is_some(),
            kms_key: input.ssekms_key_id.is_some(),
            lock: input.object_lock_mode.is_some()
                || input.object_lock_legal_hold_status.is_some()
                || input.object_lock_retain_until_date.is_some(),
            redirect: input.website_redirect_location.is_some(),
        })?;
        let put = gust_s3::PutObject {
            bucket: input.bucket,
            key: input.key,
            meta: object_meta(
                input.content_type,
                input.cache_control,
                input.content_disposition,
                input.content_encoding,
                input.content_language,
                input.expires,
                input.storage_class,
                input.metadata,
            ),
            tags: tags_header(input.tagging)?,
            content_length: content_length(input.content_length),
            content_md5: input.content_md5,
            condition: WriteCondition {
                if_match: etag_match(input.if_match),
                if_none_match: etag_match(input.if_none_match),
            },
        };
        let body = self.watch(input.body);
        let object = self
            .s3
            .put_object(&caller, put, body)
            .await
            .map_err(|e| self.error(e))?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag(&object.etag)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        if input.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Gust does not read objects by part number; use a range."
            ));
        }
        if input.sse_customer_algorithm.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Gust does not implement server-side encryption with customer-provided keys."
            ));
        }
        let conditions = Conditions {
            if_match: etag_match(input.if_match),
            if_none_match: etag_match(input.if_none_match),
            if_modified_since: time_of(input.if_modified_since),
            if_unmodified_since: time_of(input.if_unmodified_since),
        };
        let read = self
            .s3
            .get_object(
                &caller,
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                &conditions,
                byte_range(input.range),
            )
            .await
            .map_err(map_error)?;
        let info = &read.info;
        let output = dto::GetObjectOutput {
            body: Some(object_stream(read.file, read.length)),
            content_length: Some(i64::try_from(read.length).unwrap_or(i64::MAX)),
            content_range: read
                .range
                .map(|(first, last)| format!("bytes {first}-{last}/{}", info.size)),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(etag(&info.etag)),
            last_modified: Some(timestamp(info.last_modified)),
            content_type: info.meta.content_type.clone(),
            cache_control: info.meta.cache_control.clone(),
            content_disposition: info.meta.content_disposition.clone(),
            content_encoding: info.meta.content_encoding.clone(),
            content_language: info.meta.content_language.clone(),
            expires: info
                .meta
                .expires_ms
                .map(|ms| timestamp(gust_store::sqlite::at(ms))),
            metadata: (!info.meta.user.is_empty())
                .then(|| info.meta.user.clone().into_iter().collect()),
            tag_count: (!info.tags.is_empty()).then_some(info.tags.len() as i32),
            storage_class: info.meta.storage_class.clone().map(dto::StorageClass::from),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        if input.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Gust does not read objects by part number; use a range."
            ));
        }
        let conditions = Conditions {
            if_match: etag_match(input.if_match),
            if_none_match: etag_match(input.if_none_match),
            if_modified_since: time_of(input.if_modified_since),
            if_unmodified_since: time_of(input.if_unmodified_since),
        };
        let (info, span) = self
            .s3
            .head_object(
                &caller,
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                &conditions,
                byte_range(input.range),
            )
            .await
            .map_err(map_error)?;
        let length = span.map_or(info.size, |(first, last)| last - first + 1);
        let output = dto::HeadObjectOutput {
            content_length: Some(i64::try_from(length).unwrap_or(i64::MAX)),
            content_range: span.map(|(first, last)| format!("bytes {first}-{last}/{}", info.size)),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(etag(&info.etag)),
            last_modified: Some(timestamp(info.last_modified)),
            content_type: info.meta.content_type.clone(),
            cache_control: info.meta.cache_control.clone(),
            content_disposition: info.meta.content_disposition.clone(),
            content_encoding: info.meta.content_encoding.clone(),
            content_language: info.meta.content_language.clone(),
            expires: info
                .meta
                .expires_ms
                .map(|ms| timestamp(gust_store::sqlite::at(ms))),
            metadata: (!info.meta.user.is_empty())
                .then(|| info.meta.user.clone().into_iter().collect()),
            storage_class: info.meta.storage_class.clone().map(dto::StorageClass::from),
            ..Default::default()
        };
        let mut response = S3Response::new(output);
        if span.is_some() {
            response.status = Some(axum::http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(response)
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let caller = self.caller(&req)?;
        let input = &req.input;
        self.s3
            .delete_object(
                &caller,
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
            )
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let quiet = input.delete.quiet.unwrap_or(false);
        let entries = input
            .delete
            .objects
            .into_iter()
            .map(|o| gust_s3::DeleteEntry {
                key: o.key,
                version: o.version_id,
            })
            .collect();
        let outcomes = self
            .s3
            .delete_objects(&caller, &input.bucket, entries)
            .await
            .map_err(map_error)?;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(entry) if !quiet => deleted.push(dto::DeletedObject {
                    key: Some(entry.key),
                    version_id: entry.version,
                    ..Default::default()
                }),
                Ok(_) => {}
                Err(failure) => errors.push(dto::Error {
                    code: Some(failure.code),
                    key: Some(failure.key),
                    message: Some(failure.message),
                    version_id: failure.version,
                }),
            }
        }
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        refuse_extras(&Extras {
            acl: input.acl.as_ref().map(|a| a.as_str()),
            grants: input.grant_full_control.is_some()
                || input.grant_read.is_some()
                || input.grant_read_acp.is_some()
                || input.grant_write_acp.is_some(),
            encryption: input.server_side_encryption.as_ref().map(|e| e.as_str()),
            customer_key: input.sse_customer_algorithm.is_some()
                || input.copy_source_sse_customer_algorithm.is_some(),
            kms_key: input.ssekms_key_id.is_some(),
            lock: input.object_lock_mode.is_some()
                || input.object_lock_legal_hold_status.is_some()
                || input.object_lock_retain_until_date.is_some(),
            redirect: input.website_redirect_location.is_some(),
        })?;
        let (source_bucket, source_key, source_version) = copy_source(&input.copy_source)?;
        let replace = |directive: Option<&str>| directive == Some("REPLACE");
        let storage_class = input.storage_class.as_ref().map(|c| c.as_str().to_owned());
        let replace_meta =
            replace(input.metadata_directive.as_ref().map(|d| d.as_str())).then(|| {
                object_meta(
                    input.content_type.clone(),
                    input.cache_control.clone(),
                    input.content_disposition.clone(),
                    input.content_encoding.clone(),
                    input.content_language.clone(),
                    input.expires.clone(),
                    input.storage_class.clone(),
                    input.metadata.clone(),
                )
            });
        let replace_tags = if replace(input.tagging_directive.as_ref().map(|d| d.as_str())) {
            Some(tags_header(input.tagging)?)
        } else {
            None
        };
        let copy = gust_s3::CopyObject {
            source_bucket,
            source_key,
            source_version,
            source_conditions: Conditions {
                if_match: etag_match(input.copy_source_if_match),
                if_none_match: etag_match(input.copy_source_if_none_match),
                if_modified_since: time_of(input.copy_source_if_modified_since),
                if_unmodified_since: time_of(input.copy_source_if_unmodified_since),
            },
            bucket: input.bucket,
            key: input.key,
            replace_meta,
            storage_class: storage_class.filter(|c| c != "STANDARD"),
            replace_tags,
            condition: WriteCondition::default(),
        };
        let object = self
            .s3
            .copy_object(&caller, copy)
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: Some(etag(&object.etag)),
                last_modified: Some(timestamp(object.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let max = max_keys(input.max_keys)?;
        let start = match (&input.continuation_token, &input.start_after) {
            (Some(token), _) => gust_s3::ListStart::Token(token.clone()),
            (None, Some(after)) if !after.is_empty() => gust_s3::ListStart::After(after.clone()),
            _ => gust_s3::ListStart::Beginning,
        };
        let listing = self
            .s3
            .list_objects(
                &caller,
                &input.bucket,
                gust_s3::ListQuery {
                    prefix: input.prefix.clone().unwrap_or_default(),
                    delimiter: input.delimiter.clone(),
                    max_keys: max,
                    start,
                },
            )
            .await
            .map_err(map_error)?;
        let encode = list_encoder(input.encoding_type.as_ref());
        let with_owner = input.fetch_owner.unwrap_or(false);
        let key_count = listing.objects.len() + listing.common_prefixes.len();
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode(input.prefix.as_deref().unwrap_or(""))),
            delimiter: input.delimiter.as_deref().map(encode),
            max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
            key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token,
            next_continuation_token: listing.next_token.clone(),
            start_after: input.start_after.as_deref().map(encode),
            is_truncated: Some(listing.is_truncated),
            contents: Some(
                listing
                    .objects
                    .iter()
                    .map(|o| listed_object(o, with_owner, encode))
                    .collect(),
            ),
            common_prefixes: Some(common_prefixes(&listing.common_prefixes, encode)),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let max = max_keys(input.max_keys)?;
        let start = match &input.marker {
            Some(marker) if !marker.is_empty() => gust_s3::ListStart::After(marker.clone()),
            _ => gust_s3::ListStart::Beginning,
        };
        let listing = self
            .s3
            .list_objects(
                &caller,
                &input.bucket,
                gust_s3::ListQuery {
                    prefix: input.prefix.clone().unwrap_or_default(),
                    delimiter: input.delimiter.clone(),
                    max_keys: max,
                    start,
                },
            )
            .await
            .map_err(map_error)?;
        let encode = list_encoder(input.encoding_type.as_ref());
        let delimited = input.delimiter.as_deref().is_some_and(|d| !d.is_empty());
        Ok(S3Response::new(dto::ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode(input.prefix.as_deref().unwrap_or(""))),
            marker: Some(encode(input.marker.as_deref().unwrap_or(""))),
            delimiter: input.delimiter.as_deref().map(encode),
            max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
            is_truncated: Some(listing.is_truncated),
            // S3 sends NextMarker only with a delimiter (clients use the last key).
            next_marker: listing
                .next_marker
                .as_deref()
                .filter(|_| delimited)
                .map(encode),
            contents: Some(
                listing
                    .objects
                    .iter()
                    .map(|o| listed_object(o, true, encode))
                    .collect(),
            ),
            common_prefixes: Some(common_prefixes(&listing.common_prefixes, encode)),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<dto::GetObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::GetObjectTaggingOutput>> {
        let caller = self.caller(&req)?;
        let input = &req.input;
        let tags = self
            .s3
            .get_tags(
                &caller,
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
            )
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::GetObjectTaggingOutput {
            tag_set: tag_set(&tags),
            version_id: None,
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<dto::PutObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::PutObjectTaggingOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let tags = input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        self.s3
            .put_tags(
                &caller,
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                tags,
            )
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::PutObjectTaggingOutput::default()))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<dto::DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectTaggingOutput>> {
        let caller = self.caller(&req)?;
        let input = &req.input;
        self.s3
            .put_tags(
                &caller,
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                Vec::new(),
            )
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::DeleteObjectTaggingOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        refuse_extras(&Extras {
            acl: input.acl.as_ref().map(|a| a.as_str()),
            grants: input.grant_full_control.is_some()
                || input.grant_read.is_some()
                || input.grant_read_acp.is_some()
                || input.grant_write_acp.is_some(),
            encryption: input.server_side_encryption.as_ref().map(|e| e.as_str()),
            customer_key: input.sse_customer_algorithm.is_some(),
            kms_key: input.ssekms_key_id.is_some(),
            lock: input.object_lock_mode.is_some()
                || input.object_lock_legal_hold_status.is_some()
                || input.object_lock_retain_until_date.is_some(),
            redirect: input.website_redirect_location.is_some(),
        })?;
        let meta = object_meta(
            input.content_type,
            input.cache_control,
            input.content_disposition,
            input.content_encoding,
            input.content_language,
            input.expires,
            input.storage_class,
            input.metadata,
        );
        let tags = tags_header(input.tagging)?;
        let upload = self
            .s3
            .create_upload(&caller, &input.bucket, &input.key, meta, tags)
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(upload.bucket),
            key: Some(upload.key),
            upload_id: Some(upload.upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let body = self.watch(input.body);
        let part = self
            .s3
            .upload_part(
                &caller,
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
                content_length(input.content_length),
                input.content_md5.as_deref(),
                body,
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let (bucket, key, version) = copy_source(&input.copy_source)?;
        let conditions = Conditions {
            if_match: etag_match(input.copy_source_if_match),
            if_none_match: etag_match(input.copy_source_if_none_match),
            if_modified_since: time_of(input.copy_source_if_modified_since),
            if_unmodified_since: time_of(input.copy_source_if_unmodified_since),
        };
        let part = self
            .s3
            .upload_part_copy(
                &caller,
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
                (&bucket, &key, version.as_deref()),
                &conditions,
                input.copy_source_range.as_deref(),
            )
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::UploadPartCopyOutput {
            copy_part_result: Some(dto::CopyPartResult {
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(timestamp(part.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let listed: Vec<(i32, String)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0),
                    p.e_tag.map(|e| e.value().to_owned()).unwrap_or_default(),
                )
            })
            .collect();
        let plan = self
            .s3
            .plan_completion(&caller, &input.bucket, &input.key, &input.upload_id, listed)
            .await
            .map_err(map_error)?;
        let condition = WriteCondition {
            if_match: etag_match(input.if_match),
            if_none_match: etag_match(input.if_none_match),
        };
        let output = |object: ObjectInfo| dto::CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", object.bucket, url_encode(&object.key))),
            e_tag: Some(etag(&object.etag)),
            bucket: Some(object.bucket),
            key: Some(object.key),
            ..Default::default()
        };
        if plan.object().size <= COMPLETE_IN_PLACE {
            let object = self
                .s3
                .finish_completion(plan, condition)
                .await
                .map_err(map_error)?;
            return Ok(S3Response::new(output(object)));
        }
        let s3 = Arc::clone(&self.s3);
        let future = async move {
            s3.finish_completion(plan, condition)
                .await
                .map(output)
                .map_err(map_error)
        };
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            future: Some(Box::pin(future)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let caller = self.caller(&req)?;
        let input = &req.input;
        self.s3
            .abort_upload(&caller, &input.bucket, &input.key, &input.upload_id)
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let marker = input
            .part_number_marker
            .map_or(0, |m| u32::try_from(m).unwrap_or(0));
        let max = input
            .max_parts
            .map_or(gust_s3::MAX_KEYS, |m| usize::try_from(m).unwrap_or(0));
        let page = self
            .s3
            .list_parts(
                &caller,
                &input.bucket,
                &input.key,
                &input.upload_id,
                marker,
                max,
            )
            .await
            .map_err(map_error)?;
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: page.next_marker.map(|m| m as i32),
            max_parts: Some(i32::try_from(max.min(gust_s3::MAX_KEYS)).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            parts: Some(
                page.parts
                    .iter()
                    .map(|p| dto::Part {
                        part_number: Some(p.number as i32),
                        e_tag: Some(etag(&p.etag)),
                        size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                        last_modified: Some(timestamp(p.last_modified)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            initiator: Some(dto::Initiator {
                id: Some(page.upload.initiator.clone()),
                display_name: Some(page.upload.initiator.clone()),
            }),
            owner: Some(owner(&page.upload.owner)),
            storage_class: Some(dto::StorageClass::from(
                page.upload
                    .meta
                    .storage_class
                    .clone()
                    .unwrap_or_else(|| "STANDARD".to_owned()),
            )),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let caller = self.caller(&req)?;
        let input = req.input;
        let max = input
            .max_uploads
            .map_or(gust_s3::MAX_KEYS, |m| usize::try_from(m).unwrap_or(0));
        let listing = self
            .s3
            .list_uploads(
                &caller,
                &input.bucket,
                gust_s3::UploadsQuery {
                    prefix: input.prefix.clone().unwrap_or_default(),
                    delimiter: input.delimiter.clone(),
                    key_marker: input.key_marker.clone().filter(|m| !m.is_empty()),
                    upload_id_marker: input.upload_id_marker.clone().filter(|m| !m.is_empty()),
                    max_uploads: max,
                },
            )
            .await
            .map_err(map_error)?;
        let encode = list_encoder(input.encoding_type.as_ref());
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix.as_deref().map(encode),
            delimiter: input.delimiter.as_deref().map(encode),
            key_marker: input.key_marker.as_deref().map(encode),
            upload_id_marker: input.upload_id_marker,
            next_key_marker: listing.next_key_marker.as_deref().map(encode),
            next_upload_id_marker: listing.next_upload_id_marker,
            max_uploads: Some(i32::try_from(max.min(gust_s3::MAX_KEYS)).unwrap_or(1000)),
            is_truncated: Some(listing.is_truncated),
            uploads: Some(
                listing
                    .uploads
                    .iter()
                    .map(|u| dto::MultipartUpload {
                        key: Some(encode(&u.key)),
                        upload_id: Some(u.upload_id.clone()),
                        initiated: Some(timestamp(u.initiated)),
                        initiator: Some(dto::Initiator {
                            id: Some(u.initiator.clone()),
                            display_name: Some(u.initiator.clone()),
                        }),
                        owner: Some(owner(&u.owner)),
                        storage_class: Some(dto::StorageClass::from(
                            u.meta
                                .storage_class
                                .clone()
                                .unwrap_or_else(|| "STANDARD".to_owned()),
                        )),
                        ..Default::default()
                    })
                    .collect(),
            ),
            common_prefixes: Some(common_prefixes(&listing.common_prefixes, encode)),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_their_scope() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(presented(&headers, ""), Some(("AKID".into(), "s3".into())));
        headers.insert(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(presented(&headers, "").unwrap().1, "lambda");
        let empty = axum::http::HeaderMap::new();
        assert_eq!(
            presented(
                &empty,
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=00"
            ),
            Some(("AKID".into(), "s3".into()))
        );
        assert_eq!(
            presented(&empty, "AWSAccessKeyId=AKID&Expires=1&Signature=x"),
            Some(("AKID".into(), "s3".into()))
        );
        assert_eq!(presented(&empty, "Action=ListQueues"), None);
    }

    #[test]
    fn virtual_hosts() {
        let vh = |host| virtual_host(host, "example.com", "us-east-1");
        assert_eq!(vh("s3.us-east-1.example.com"), Some(None));
        assert_eq!(vh("s3.us-east-1.example.com:9070"), Some(None));
        assert_eq!(
            vh("my.bucket.s3.us-east-1.example.com:9070"),
            Some(Some("my.bucket".into()))
        );
        assert_eq!(vh("abc.lambda-url.us-east-1.example.com"), None);
        assert_eq!(vh("127.0.0.1:9070"), None);
        assert_eq!(vh("xs3.us-east-1.example.com"), None);
    }

    #[test]
    fn listing_keys_are_url_encoded_as_s3_does() {
        assert_eq!(url_encode("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
    }
}

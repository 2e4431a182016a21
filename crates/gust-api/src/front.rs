//! The HTTP front: function URLs and HTTP APIs, served to any HTTP client on the same
//! listener as the AWS APIs.
//!
//! A function URL is `http://<host>/lambda-url/<url-id>/` and an HTTP API's endpoint
//! `http://<host>/execute-api/<api-id>`, so both work as returned on a machine without DNS
//! set-up (`<host>` is the `Host` the control-plane request came to). With
//! `--url-domain`, they are AWS's host-based forms instead
//! (`<url-id>.lambda-url.<region>.<domain>`, `<api-id>.execute-api.<region>.<domain>`), for
//! an operator who puts a wildcard DNS name and a reverse proxy in front; both forms are
//! always served.

/// Path prefix of function URLs.
pub(crate) const URL_PREFIX: &str = "lambda-url";
/// Path prefix of HTTP APIs.
pub(crate) const API_PREFIX: &str = "execute-api";

/// The domain of host-based URLs (`--url-domain`): `example.com`, or with a scheme and
/// port, `http://gust.test:9070`. Without a scheme it is `https` (a reverse proxy
/// terminating TLS is the usual set-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlDomain {
    scheme: String,
    /// The domain, without a port.
    domain: String,
    /// `:port`, or empty.
    port: String,
}

impl UrlDomain {
    /// Parses `--url-domain`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            Some((other, _)) => {
                return Err(format!("unsupported scheme {other:?} (http or https)"))
            }
            None => ("https", text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (domain, port) = match rest.rsplit_once(':') {
            Some((domain, port)) => {
                port.parse::<u16>()
                    .map_err(|_| format!("invalid port in {text:?}"))?;
                (domain, format!(":{port}"))
            }
            None => (rest, String::new()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if domain.is_empty() || !domain.split('.').all(label_ok) {
            return Err(format!("{text:?} is not a domain name"));
        }
        Ok(UrlDomain {
            scheme: scheme.to_owned(),
            domain: domain.to_ascii_lowercase(),
            port,
        })
    }

    /// The domain, without scheme or port.
    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }
}

/// `<scheme>://<id>.<kind>.<region>.<domain>[:port]`, or `http://<host>/<kind>/<id>`.
fn base(domain: Option<&UrlDomain>, host: &str, kind: &str, region: &str, id: &str) -> String {
    match domain {
        Some(d) => format!("{}://{id}.{kind}.{region}.{}{}", d.scheme, d.domain, d.port),
        None => format!("http://{host}/{kind}/{id}"),
    }
}

/// A function URL as Lambda returns it (it ends with `/`).
pub(crate) fn function_url(
    domain: Option<&UrlDomain>,
    host: &str,
    region: &str,
    url_id: &str,
) -> String {
    format!("{}/", base(domain, host, URL_PREFIX, region, url_id))
}

/// An HTTP API's `ApiEndpoint` (no trailing `/`, as API Gateway returns it).
pub(crate) fn api_endpoint(
    domain: Option<&UrlDomain>,
    host: &str,
    region: &str,
    api_id: &str,
) -> String {
    base(domain, host, API_PREFIX, region, api_id)
}

/// What a request to the front is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A function URL: its id and the path below it.
    Url { id: String, path: String },
    /// An HTTP API: its id and the path below its endpoint.
    Api { id: String, path: String },
}

/// An id as URLs and APIs have them (`[a-z0-9]`, bounded).
fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A request to the path form (`/lambda-url/<id>/…`, `/execute-api/<id>/…`).
pub(crate) fn path_target(raw_path: &str) -> Option<Target> {
    let rest = raw_path.strip_prefix('/')?;
    let (first, after) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
    if first != URL_PREFIX && first != API_PREFIX {
        return None;
    }
    let (id, path) = after
        .split_once('/')
        .map_or((after, String::new()), |(a, b)| (a, format!("/{b}")));
    if !id_ok(id) {
        return None;
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    let id = id.to_owned();
    Some(if first == URL_PREFIX {
        Target::Url { id, path }
    } else {
        Target::Api { id, path }
    })
}

/// A request to the host form under `--url-domain`
/// (`<id>.lambda-url.<region>.<domain>`, `<id>.execute-api.<region>.<domain>`). Such a host
/// is the URL's or API's alone: nothing else (S3 included) is served on it.
pub(crate) fn host_target(
    host: Option<&str>,
    raw_path: &str,
    domain: Option<&UrlDomain>,
) -> Option<Target> {
    let domain = domain?;
    let host = host?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    let labels = host.strip_suffix(domain.domain())?.strip_suffix('.')?;
    let mut parts = labels.splitn(3, '.');
    let (id, kind, _region) = (parts.next()?, parts.next()?, parts.next()?);
    if !id_ok(id) {
        return None;
    }
    let path = if raw_path.is_empty() {
        "/".to_owned()
    } else {
        raw_path.to_owned()
    };
    match kind {
        URL_PREFIX => Some(Target::Url {
            id: id.to_owned(),
            path,
        }),
        API_PREFIX => Some(Target::Api {
            id: id.to_owned(),
            path,
        }),
        _ => None,
    }
}

/// Where a function URL leads.
#[derive(Debug, Clone)]
struct UrlEntry {
    account: String,
    function: gust_model::FunctionName,
    qualifier: String,
}

/// The front's state: an index of function URL ids. Built from every account's store on
/// first use and dropped whenever this server creates a URL (it is the only writer);
/// every hit is checked against the store, so deleted URLs, functions and aliases are
/// never served.
#[derive(Debug, Default)]
pub(crate) struct Front {
    urls: std::sync::RwLock<Option<Arc<UrlIndex>>>,
    /// Moves at every URL this server creates: an index read across a move is not kept.
    generation: std::sync::atomic::AtomicU64,
    /// One rebuild at a time; the others wait for it rather than scan too.
    rebuilding: tokio::sync::Mutex<()>,
}

type UrlIndex = std::collections::HashMap<String, UrlEntry>;

/// Every account's URLs, read from the stores.
fn read_index(
    controls: &[(String, Arc<gust_control::ControlPlane>)],
) -> Result<UrlIndex, ApiError> {
    let mut index = UrlIndex::new();
    for (account, control) in controls {
        for config in control.all_function_urls()? {
            index.insert(
                config.url_id.clone(),
                UrlEntry {
                    account: account.clone(),
                    function: config.function.clone(),
                    qualifier: config.alias.clone().unwrap_or_default(),
                },
            );
        }
    }
    Ok(index)
}

impl Front {
    /// A URL was created: the index is read again on the next request.
    pub(crate) fn note_created(&self, _plane: &crate::Plane) {
        use std::sync::atomic::Ordering;
        // Under the lock, so a rebuild's compare-and-store cannot fall between the two.
        let mut urls = self
            .urls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::SeqCst);
        *urls = None;
    }

    fn cached(&self) -> Option<Arc<UrlIndex>> {
        self.urls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The current index: the cached one, or one read from the stores and kept unless a
    /// URL was created meanwhile.
    async fn index(&self, planes: &crate::accounts::Planes) -> Result<Arc<UrlIndex>, ApiError> {
        use std::sync::atomic::Ordering;
        if let Some(index) = self.cached() {
            return Ok(index);
        }
        let _turn = self.rebuilding.lock().await;
        if let Some(index) = self.cached() {
            return Ok(index);
        }
        let controls: Vec<(String, Arc<gust_control::ControlPlane>)> = planes
            .all()
            .map(|p| (p.account_id().to_owned(), Arc::clone(&p.control)))
            .collect();
        let before = self.generation.load(Ordering::SeqCst);
        let index = Arc::new(
            tokio::task::spawn_blocking(move || read_index(&controls))
                .await
                .map_err(|e| ApiError::internal(&e))??,
        );
        let mut urls = self
            .urls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(Ordering::SeqCst) == before {
            *urls = Some(Arc::clone(&index));
        }
        Ok(index)
    }

    /// The plane and configuration of URL `id`, checked against the store.
    async fn lookup(
        &self,
        planes: &crate::accounts::Planes,
        id: &str,
    ) -> Result<Option<(crate::Plane, gust_control::FunctionUrlConfig)>, ApiError> {
        let index = self.index(planes).await?;
        let Some(entry) = index.get(id).cloned() else {
            return Ok(None);
        };
        let Some(plane) = planes.get(&entry.account).cloned() else {
            return Ok(None);
        };
        let control = Arc::clone(&plane.control);
        let config = tokio::task::spawn_blocking(move || {
            control.function_url_at(&entry.function, &entry.qualifier)
        })
        .await
        .map_err(|e| ApiError::internal(&e))??;
        let id = id.to_owned();
        Ok(config.filter(|c| c.url_id == id).map(|c| (plane, c)))
    }
}

use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::Response;
use gust_model::http::{Cors, HttpRequest, HttpResponse, RequestContext};
use gust_model::policy::Caller;

use crate::error::ApiError;

/// The largest request body a function URL or HTTP API takes (6 MB, as Lambda's payload).
const MAX_REQUEST_BODY: usize = 6 * 1024 * 1024;

/// An HTTP response from a status, headers and body.
fn respond(response: HttpResponse) -> Response {
    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from(response.body)).unwrap_or_else(|_| {
        plain(
            502,
            "application/json",
            r#"{"Message":"Internal Server Error"}"#,
        )
    })
}

fn plain(status: u16, content_type: &str, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    if let Ok(value) = axum::http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, value);
    }
    response
}

/// A function URL's own answers (not the function's).
mod url_errors {
    pub(super) const FORBIDDEN: (u16, &str) = (403, r#"{"Message":"Forbidden"}"#);
    pub(super) const NOT_FOUND: (u16, &str) = (404, r#"{"Message":"Not Found"}"#);
    pub(super) const BAD_REQUEST: (u16, &str) = (400, r#"{"Message":"Bad Request"}"#);
    pub(super) const TOO_LARGE: (u16, &str) = (413, r#"{"Message":"Request Entity Too Large"}"#);
    pub(super) const THROTTLED: (u16, &str) = (429, r#"{"Message":"Rate Exceeded."}"#);
    pub(super) const FUNCTION_ERROR: (u16, &str) = (502, r#"{"Message":"Internal Server Error"}"#);
}

fn url_error((status, body): (u16, &str)) -> Response {
    plain(status, "application/json", body)
}

/// Why a request's body was not read.
#[derive(Debug, Clone, Copy)]
enum Unread {
    /// Over the limit (declared or sent).
    TooLarge,
    /// It stopped arriving, or broke off.
    Broken,
}

/// The request as the payload formats see it (body read within the limit).
async fn read_request(
    state: &crate::ApiState,
    parts: &Parts,
    headers: &[(String, String)],
    body: Body,
    path: &str,
) -> Result<HttpRequest, Unread> {
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BODY as u64) {
        return Err(Unread::TooLarge);
    }
    let body =
        match crate::read_body(body, MAX_REQUEST_BODY, declared, state.config.body_timeout).await {
            Ok(crate::Received::Memory(body)) => body.to_vec(),
            Ok(crate::Received::Spooled { .. }) => Vec::new(),
            Err(crate::BodyError::TooLarge) => return Err(Unread::TooLarge),
            Err(_) => return Err(Unread::Broken),
        };
    let source_ip = parts
        .extensions
        .get::<crate::server::Peer>()
        .map_or_else(|| "127.0.0.1".to_owned(), |p| p.0.ip().to_string());
    let protocol = format!("{:?}", parts.version);
    Ok(HttpRequest {
        method: parts.method.as_str().to_owned(),
        raw_path: path.to_owned(),
        raw_query: parts.uri.query().unwrap_or("").to_owned(),
        headers: headers.to_vec(),
        body,
        source_ip,
        protocol,
    })
}

/// The headers AWS's front adds before the function sees a request.
fn forwarded_headers(request: &mut HttpRequest, host: &str, trace: &str) {
    let forwarded_for = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        .map(|(_, v)| format!("{v}, {}", request.source_ip))
        .unwrap_or_else(|| request.source_ip.clone());
    request.headers.retain(|(n, _)| {
        ![
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-port",
            "x-amzn-trace-id",
        ]
        .iter()
        .any(|h| n.eq_ignore_ascii_case(h))
    });
    let port = host
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| "80".to_owned());
    request
        .headers
        .push(("x-amzn-trace-id".into(), trace.to_owned()));
    request
        .headers
        .push(("x-forwarded-for".into(), forwarded_for));
    request
        .headers
        .push(("x-forwarded-proto".into(), "http".into()));
    request.headers.push(("x-forwarded-port".into(), port));
}

/// What the front adds to every request before its function sees it: the forwarding
/// headers and a trace header. Returns the `Host` the client used, the trace root and the
/// arrival time (epoch milliseconds).
fn forward(
    state: &crate::ApiState,
    parts: &Parts,
    request: &mut HttpRequest,
) -> (String, String, i64) {
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let trace = format!("Root={}", gust_engine::trace_root());
    forwarded_headers(request, &host, &trace);
    let now_ms = state.config.clock.now().unix_timestamp_nanos() / 1_000_000;
    (host, trace, i64::try_from(now_ms).unwrap_or(0))
}

/// Who called a URL, for its policy and `authorizer.iam`: `Err` is the 403 answer.
fn url_caller(
    state: &crate::ApiState,
    parts: &Parts,
    headers: &[(String, String)],
    body: &[u8],
    auth_type: &str,
) -> Result<(Caller, Option<serde_json::Value>), Box<Response>> {
    if auth_type == "NONE" {
        return Ok((
            Caller::Url {
                account: None,
                auth_type: "NONE".into(),
            },
            None,
        ));
    }
    let forbidden = || Box::new(url_error(url_errors::FORBIDDEN));
    let identity = match crate::authenticate(state, headers) {
        Ok(Some(identity)) => identity,
        // `--no-auth`: requests come from the default account.
        Ok(None) => {
            let account = state.planes.default_account().to_owned();
            return Ok((
                Caller::Url {
                    account: Some(account),
                    auth_type: auth_type.into(),
                },
                None,
            ));
        }
        Err(_) => return Err(forbidden()),
    };
    let request_parts = crate::sigv4::RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers,
    };
    crate::sigv4::verify_session(
        &request_parts,
        crate::sigv4::payload_hash(body),
        &identity.credentials,
        identity.token.as_deref(),
        "lambda",
        state.config.clock.now(),
    )
    .map_err(|_| forbidden())?;
    let account = identity.account_id.clone();
    let (user_arn, user_id, caller_id) = match &identity.session {
        Some(session) => (
            format!(
                "arn:aws:sts::{account}:assumed-role/{}/{}",
                session.role_arn.rsplit('/').next().unwrap_or_default(),
                session.session_name
            ),
            format!("{}:{}", session.access_key_id, session.session_name),
            format!("{}:{}", session.access_key_id, session.session_name),
        ),
        None => (
            format!("arn:aws:iam::{account}:root"),
            account.clone(),
            account.clone(),
        ),
    };
    let authorizer = serde_json::json!({"iam": {
        "accessKey": identity.credentials.access_key_id,
        "accountId": account,
        "callerId": caller_id,
        "cognitoIdentity": null,
        "principalOrgId": null,
        "userArn": user_arn,
        "userId": user_id,
    }});
    Ok((
        Caller::Url {
            account: Some(account),
            auth_type: auth_type.into(),
        },
        Some(authorizer),
    ))
}

/// Serves a request to function URL `id`.
pub(crate) async fn serve_url(
    state: &crate::ApiState,
    parts: Parts,
    body: Body,
    id: &str,
    path: &str,
    request_id: &str,
) -> Response {
    let headers = crate::header_list(&parts.headers);
    let (plane, config) = match state.front.lookup(&state.planes, id).await {
        Ok(Some(found)) => found,
        Ok(None) => return url_error(url_errors::NOT_FOUND),
        Err(error) => return axum::response::IntoResponse::into_response(error),
    };
    let mut request = match read_request(state, &parts, &headers, body, path).await {
        Ok(request) => request,
        Err(Unread::TooLarge) => return url_error(url_errors::TOO_LARGE),
        Err(Unread::Broken) => return url_error(url_errors::BAD_REQUEST),
    };
    if let Some(cors) = &config.cors {
        if Cors::is_preflight(&request) {
            return respond(cors.preflight(&request));
        }
    }
    let (caller, authorizer) =
        match url_caller(state, &parts, &headers, &request.body, &config.auth_type) {
            Ok(found) => found,
            Err(response) => return *response,
        };
    let reference = gust_model::FunctionRef {
        name: config.function.clone(),
        qualifier: config.alias.clone().map(gust_model::Qualifier::Alias),
        region: None,
        account_id: None,
    };
    let owner = plane.account_id().to_owned();
    let same_account = matches!(&caller, Caller::Url { account: Some(a), .. } if *a == owner);
    if !same_account {
        let control = Arc::clone(&plane.control);
        let (r, who) = (reference.clone(), caller.clone());
        let allowed = tokio::task::spawn_blocking(move || {
            Ok::<_, gust_control::ControlError>(
                control.allowed(&r, &who, "lambda:InvokeFunctionUrl")?
                    && control.allowed(&r, &who, "lambda:InvokeFunction")?,
            )
        })
        .await;
        if !matches!(allowed, Ok(Ok(true))) {
            return url_error(url_errors::FORBIDDEN);
        }
    }
    let (host, trace, now_ms) = forward(state, &parts, &mut request);
    let context = RequestContext {
        account_id: if config.auth_type == "NONE" {
            "anonymous".into()
        } else {
            owner.clone()
        },
        api_id: id.to_owned(),
        domain_name: host.clone(),
        domain_prefix: id.to_owned(),
        request_id: request_id.to_owned(),
        time_epoch_ms: now_ms,
        stage: "$default".into(),
        route_key: "$default".into(),
        authorizer,
        ..RequestContext::default()
    };
    let event = gust_model::http::event_v2(&request, &context);
    let version = match crate::invoke::pick_version(&plane, &reference).await {
        Ok(version) => version,
        Err(_) => return url_error(url_errors::NOT_FOUND),
    };
    let invoke = gust_engine::InvokeRequest {
        function: reference.name.clone(),
        version,
        invoked_arn: plane
            .control
            .arn(&reference.name, reference.qualifier.as_ref()),
        payload: bytes::Bytes::from(event.to_string()),
        client_context: None,
        request_id: Some(request_id.to_owned()),
        trace_id: Some(format!(
            "{trace};Parent={};Sampled=0",
            gust_engine::trace_parent()
        )),
        caller_parent: None,
        log_tail: false,
    };
    let cors = config.cors.clone();
    let finish = |mut response: HttpResponse| {
        if let Some(cors) = &cors {
            cors.apply(&request, &mut response);
        }
        respond(response)
    };
    if config.invoke_mode == "RESPONSE_STREAM" {
        return match plane.engine.invoke_streaming(invoke).await {
            Ok(gust_engine::Invoked::Buffered(outcome)) => finish_buffered(outcome, finish),
            Ok(gust_engine::Invoked::Streaming(stream)) => {
                let head = crate::streaming::head(stream).await;
                if head.failed {
                    return url_error(url_errors::FUNCTION_ERROR);
                }
                let mut response = match &head.prelude {
                    Some(prelude) => {
                        match gust_model::http::stream_prelude(prelude, "application/octet-stream")
                        {
                            Ok(response) => response,
                            Err(_) => return url_error(url_errors::FUNCTION_ERROR),
                        }
                    }
                    None => HttpResponse::new(200, &head.content_type, Vec::new()),
                };
                if let Some(cors) = &cors {
                    cors.apply(&request, &mut response);
                }
                let mut builder = Response::builder().status(response.status);
                for (name, value) in &response.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder
                    .body(Body::new(head.body))
                    .unwrap_or_else(|_| url_error(url_errors::FUNCTION_ERROR))
            }
            Err(error) => engine_failure(&error),
        };
    }
    match plane.engine.invoke(invoke).await {
        Ok(outcome) => finish_buffered(outcome, finish),
        Err(error) => engine_failure(&error),
    }
}

fn finish_buffered(
    outcome: gust_engine::InvokeOutcome,
    finish: impl FnOnce(HttpResponse) -> Response,
) -> Response {
    if outcome.function_error {
        return url_error(url_errors::FUNCTION_ERROR);
    }
    match gust_model::http::response_v2(&outcome.body) {
        Ok(response) => finish(response),
        Err(error) => {
            tracing::debug!(%error, "function URL response refused");
            url_error(url_errors::FUNCTION_ERROR)
        }
    }
}

fn engine_failure(error: &gust_engine::EngineError) -> Response {
    use gust_engine::EngineError;
    match error {
        EngineError::Throttled(_) | EngineError::TooManyEnvironments => {
            url_error(url_errors::THROTTLED)
        }
        EngineError::NotFound(_) => url_error(url_errors::NOT_FOUND),
        _ => url_error(url_errors::FUNCTION_ERROR),
    }
}

/// An HTTP API's own answers (API Gateway's shapes: `{"message": …}`).
fn api_error(status: u16, message: &str) -> Response {
    plain(
        status,
        "application/json",
        &serde_json::json!({ "message": message }).to_string(),
    )
}

fn cors_of(config: &gust_apigw::CorsConfiguration) -> Cors {
    Cors {
        allow_credentials: config.allow_credentials,
        allow_headers: config.allow_headers.clone().unwrap_or_default(),
        allow_methods: config.allow_methods.clone().unwrap_or_default(),
        allow_origins: config.allow_origins.clone().unwrap_or_default(),
        expose_headers: config.expose_headers.clone().unwrap_or_default(),
        max_age: config.max_age.filter(|age| *age >= 0),
    }
}

/// Serves a request to HTTP API `id`: the stage and route API Gateway's rules select, the
/// integration's function invoked as `apigateway.amazonaws.com` (its policy must allow the
/// route's source ARN), payload format 1.0 or 2.0 both ways.
pub(crate) async fn serve_api(
    state: &crate::ApiState,
    parts: Parts,
    body: Body,
    id: &str,
    path: &str,
    request_id: &str,
) -> Response {
    let apigw = &state.services.apigw;
    let Some(serving) = apigw.serving(id) else {
        return api_error(404, "Not Found");
    };
    if serving.disable_execute_api_endpoint {
        return api_error(403, "Forbidden");
    }
    let headers = crate::header_list(&parts.headers);
    let mut request = match read_request(state, &parts, &headers, body, path).await {
        Ok(request) => request,
        Err(Unread::TooLarge) => return api_error(413, "Request Entity Too Large"),
        Err(Unread::Broken) => return api_error(400, "Bad Request"),
    };
    let cors = serving.cors.as_ref().map(cors_of);
    if let Some(cors) = &cors {
        // API Gateway answers preflights itself once CORS is configured, whatever the routes.
        if Cors::is_preflight(&request) {
            let mut answer = cors.preflight(&request);
            answer.status = 204;
            return respond(answer);
        }
    }
    let Some(resolved) = apigw.resolve(id, &request.method, path) else {
        return api_error(404, "Not Found");
    };
    // The function sees the path as sent, a named stage's segment included (as on AWS;
    // frameworks strip it using `requestContext.stage`).
    let mut authorizer = None;
    if resolved.authorization_type == "AWS_IAM" {
        let identity = match crate::authenticate(state, &headers) {
            Ok(Some(identity)) => {
                let request_parts = crate::sigv4::RequestParts {
                    method: parts.method.as_str(),
                    raw_path: parts.uri.path(),
                    raw_query: parts.uri.query().unwrap_or(""),
                    headers: &headers,
                };
                if crate::sigv4::verify_session(
                    &request_parts,
                    crate::sigv4::payload_hash(&request.body),
                    &identity.credentials,
                    identity.token.as_deref(),
                    "execute-api",
                    state.config.clock.now(),
                )
                .is_err()
                {
                    return api_error(403, "Forbidden");
                }
                (identity.credentials.access_key_id, identity.account_id)
            }
            // `--no-auth`: requests come from the default account.
            Ok(None) => (String::new(), state.planes.default_account().to_owned()),
            Err(_) => return api_error(403, "Missing Authentication Token"),
        };
        let (access_key, account) = identity;
        authorizer = Some(serde_json::json!({"iam": {
            "accessKey": access_key,
            "accountId": account,
            "callerId": account,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": format!("arn:aws:iam::{account}:root"),
            "userId": account,
        }}));
    }
    // The function's account: the integration's ARN names it.
    let function_account = resolved
        .integration
        .function_arn
        .split(':')
        .nth(4)
        .unwrap_or(&resolved.account)
        .to_owned();
    let Some(plane) = state.planes.get(&function_account).cloned() else {
        return api_error(500, "Internal Server Error");
    };
    let (host, trace, now_ms) = forward(state, &parts, &mut request);
    let context = RequestContext {
        account_id: resolved.account.clone(),
        api_id: id.to_owned(),
        domain_name: host,
        domain_prefix: id.to_owned(),
        request_id: request_id.to_owned(),
        time_epoch_ms: now_ms,
        stage: resolved.stage.clone(),
        route_key: resolved.route_key.clone(),
        authorizer,
        path_parameters: resolved.path_parameters.clone(),
        stage_variables: resolved.stage_variables.clone(),
    };
    let version_1 = resolved.integration.payload_format_version == "1.0";
    let event = if version_1 {
        gust_model::http::event_v1(&request, &context)
    } else {
        gust_model::http::event_v2(&request, &context)
    };
    let caller = Caller::Service {
        service: "apigateway.amazonaws.com".into(),
        source_arn: Some(resolved.source_arn.clone()),
        source_account: Some(resolved.account.clone()),
    };
    let invoked = plane.invoke_for_service(
        &resolved.integration.function_arn,
        bytes::Bytes::from(event.to_string()),
        &caller,
        Some(request_id.to_owned()),
        Some(format!(
            "{trace};Parent={};Sampled=0",
            gust_engine::trace_parent()
        )),
    );
    let timeout = std::time::Duration::from_millis(u64::from(resolved.integration.timeout_ms));
    // The invocation goes on in its own task past the integration's timeout, as on AWS.
    let outcome = match tokio::time::timeout(timeout, invoked).await {
        Err(_) => return api_error(503, "Service Unavailable"),
        Ok(Err(crate::ServiceInvokeError::Throttled)) => {
            return api_error(429, "Too Many Requests")
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, api = id, "HTTP API integration failed");
            return api_error(500, "Internal Server Error");
        }
        Ok(Ok(outcome)) => outcome,
    };
    if outcome.function_error {
        return api_error(500, "Internal Server Error");
    }
    let parsed = if version_1 {
        gust_model::http::response_v1(&outcome.body)
    } else {
        gust_model::http::response_v2(&outcome.body)
    };
    match parsed {
        Ok(mut response) => {
            if let Some(cors) = &cors {
                cors.apply(&request, &mut response);
            }
            respond(response)
        }
        Err(error) => {
            tracing::debug!(%error, api = id, "HTTP API response refused");
            api_error(500, "Internal Server Error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_work_without_dns_or_in_the_host_form() {
        assert_eq!(
            function_url(None, "127.0.0.1:9070", "us-east-1", "abc"),
            "http://127.0.0.1:9070/lambda-url/abc/"
        );
        let d = UrlDomain::parse("example.com").unwrap();
        assert_eq!(
            function_url(Some(&d), "ignored", "eu-west-1", "abc"),
            "https://abc.lambda-url.eu-west-1.example.com/"
        );
        let d = UrlDomain::parse("http://gust.test:9070/").unwrap();
        assert_eq!(
            api_endpoint(Some(&d), "x", "us-east-1", "a1b2c3d4e5"),
            "http://a1b2c3d4e5.execute-api.us-east-1.gust.test:9070"
        );
        assert!(UrlDomain::parse("ftp://x.com").is_err());
        assert!(UrlDomain::parse("bad_domain.com").is_err());
        assert!(UrlDomain::parse("x.com:99999").is_err());
    }
}

//! The services other than Lambda on the same listener (SQS, SNS, STS, Application Auto
//! Scaling), told apart as AWS
//! tells them: `X-Amz-Target` (JSON protocols), the SigV4 credential scope's service, and
//! the query protocol's `Action`. Each request is authenticated exactly as a Lambda request
//! is, read into its operation's input, handled, and answered in the caller's protocol with
//! errors in that protocol's shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::Value;

use crate::protocol::{self, ServiceError};
use crate::sigv4::{self, AuthError};
use crate::{
    apigw, autoscaling, events, logs, monitoring, scheduler, sns, sqs, sts, ApiState, BodyError,
    Received,
};

/// An AWS service served here besides Lambda.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Sqs,
    Sns,
    Sts,
    /// Application Auto Scaling (AWS JSON 1.1 only).
    Autoscaling,
    /// EventBridge (AWS JSON 1.1).
    Events,
    /// EventBridge Scheduler (REST-JSON).
    Scheduler,
    /// API Gateway v2, HTTP APIs' control plane (REST-JSON).
    Apigw,
    /// CloudWatch Logs (AWS JSON 1.1).
    Logs,
    /// CloudWatch metrics (Smithy RPC v2 CBOR, AWS JSON 1.0, query).
    Monitoring,
}

impl Service {
    /// The SigV4 signing name.
    fn signing_name(self) -> &'static str {
        match self {
            Service::Sqs => "sqs",
            Service::Sns => "sns",
            Service::Sts => "sts",
            Service::Autoscaling => "application-autoscaling",
            Service::Events => "events",
            Service::Scheduler => "scheduler",
            Service::Apigw => "apigateway",
            Service::Logs => "logs",
            Service::Monitoring => "monitoring",
        }
    }

    /// The query protocol's model (Application Auto Scaling speaks JSON only, and its
    /// adapter checks its own operations).
    fn model(self) -> Option<&'static protocol::Model> {
        match self {
            Service::Sqs => Some(protocol::model("sqs")),
            Service::Sns => Some(protocol::model("sns")),
            Service::Sts => Some(protocol::model("sts")),
            Service::Monitoring => Some(protocol::model("cloudwatch")),
            Service::Autoscaling
            | Service::Events
            | Service::Scheduler
            | Service::Apigw
            | Service::Logs => None,
        }
    }

    /// The JSON protocol's content type.
    fn json_content_type(self) -> &'static str {
        match self {
            Service::Autoscaling | Service::Events | Service::Logs => "application/x-amz-json-1.1",
            Service::Scheduler | Service::Apigw => "application/json",
            _ => "application/x-amz-json-1.0",
        }
    }

    fn by_signing_name(name: &str) -> Option<Self> {
        match name {
            "sqs" => Some(Service::Sqs),
            "sns" => Some(Service::Sns),
            "sts" => Some(Service::Sts),
            "application-autoscaling" => Some(Service::Autoscaling),
            "events" => Some(Service::Events),
            "scheduler" => Some(Service::Scheduler),
            "apigateway" => Some(Service::Apigw),
            "logs" => Some(Service::Logs),
            "monitoring" => Some(Service::Monitoring),
            _ => None,
        }
    }
}

/// How the request is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// AWS JSON 1.0 with `X-Amz-Target: <prefix>.<Operation>`.
    Json { operation: String },
    /// Form-encoded `Action=…`, XML responses.
    Query,
    /// REST-JSON: the method and path name the operation (EventBridge Scheduler).
    Rest,
    /// Smithy RPC v2 CBOR: `POST /service/<Service>/operation/<Operation>` (CloudWatch).
    Cbor { operation: String },
}

/// Which service a request is for, if not Lambda's REST API. `None` when nothing marks it
/// (then it is a Lambda request, or an unknown path).
pub(crate) fn detect(
    parts: &Parts,
    headers: &[(String, String)],
    raw_query: &str,
) -> Option<(Option<Service>, Protocol)> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if header("smithy-protocol").is_some_and(|p| p.eq_ignore_ascii_case("rpc-v2-cbor")) {
        let rest = parts.uri.path().strip_prefix("/service/")?;
        let (service, operation) = rest.split_once("/operation/")?;
        let service = match service {
            "GraniteServiceVersion20100801" => Some(Service::Monitoring),
            _ => None,
        };
        return Some((
            service,
            Protocol::Cbor {
                operation: operation.to_owned(),
            },
        ));
    }
    if let Some(target) = header("x-amz-target") {
        let (prefix, operation) = target.split_once('.')?;
        let service = match prefix {
            "AmazonSQS" => Some(Service::Sqs),
            "AnyScaleFrontendService" => Some(Service::Autoscaling),
            "AWSEvents" => Some(Service::Events),
            "Logs_20140328" => Some(Service::Logs),
            "GraniteServiceVersion20100801" => Some(Service::Monitoring),
            _ => None,
        };
        return Some((
            service,
            Protocol::Json {
                operation: operation.to_owned(),
            },
        ));
    }
    if let Some(name) = sigv4::scope_service(headers) {
        return match Service::by_signing_name(&name) {
            // The REST APIs (Scheduler, API Gateway): the method and path name the
            // operation.
            Some(rest @ (Service::Scheduler | Service::Apigw)) => {
                Some((Some(rest), Protocol::Rest))
            }
            other => other
                .filter(|s| s.model().is_some())
                .map(|s| (Some(s), Protocol::Query)),
        };
    }
    let form = header("content-type").is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let query_action = raw_query.split('&').any(|p| p.starts_with("Action="));
    let lambda_path = parts.uri.path().starts_with("/20") || parts.uri.path().starts_with("/gust");
    ((form || query_action) && !lambda_path).then_some((None, Protocol::Query))
}

/// The service whose model has `action` (for unsigned query requests under `--no-auth`).
fn service_of_action(action: &str) -> Option<Service> {
    [
        Service::Sqs,
        Service::Sns,
        Service::Sts,
        Service::Monitoring,
    ]
    .into_iter()
    .find(|s| s.model().is_some_and(|m| m.has_operation(action)))
}

fn auth_error(error: &AuthError) -> ServiceError {
    let code = match error {
        AuthError::Missing => "MissingAuthenticationToken",
        AuthError::Incomplete(_) => "IncompleteSignature",
        AuthError::UnknownKey => "InvalidClientTokenId",
        AuthError::ExpiredToken => "ExpiredToken",
        AuthError::Mismatch | AuthError::Expired { .. } | AuthError::NotYetCurrent { .. } => {
            "SignatureDoesNotMatch"
        }
    };
    ServiceError {
        status: 403,
        code: code.to_owned(),
        shape: format!("com.amazon.coral.service#{}", error.error_type()),
        message: error.to_string(),
        sender: true,
    }
}

/// How errors and results are written for this request.
struct Writer {
    service: Option<Service>,
    json: bool,
    /// Smithy RPC v2 CBOR.
    cbor: bool,
    /// REST-JSON (the success status is the operation's).
    rest: bool,
    status: u16,
    operation: String,
    request_id: String,
}

impl Writer {
    fn error(&self, error: &ServiceError) -> Response {
        let service = self.service.unwrap_or(Service::Sqs);
        if self.rest {
            let (status, error_type, body) = match service {
                Service::Apigw => apigw::error_response(error),
                _ => scheduler::error_response(error),
            };
            let mut response = protocol::json_response(&body, "application/json");
            *response.status_mut() = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
            if let Ok(value) = axum::http::HeaderValue::from_str(&error_type) {
                response.headers_mut().insert("x-amzn-errortype", value);
            }
            return response;
        }
        if self.cbor {
            let shape = error
                .shape
                .rsplit_once('#')
                .map_or(error.shape.as_str(), |(_, shape)| shape);
            let error = ServiceError {
                shape: shape.to_owned(),
                ..error.clone()
            };
            return crate::cbor::error(&error, "com.amazonaws.cloudwatch");
        }
        if self.json {
            let (namespace, shape) = match error.shape.split_once('#') {
                Some((ns, shape)) => (ns.to_owned(), shape.to_owned()),
                None => (
                    match service {
                        Service::Sqs => sqs::NAMESPACE.to_owned(),
                        Service::Sns => "com.amazonaws.sns".to_owned(),
                        Service::Sts => "com.amazonaws.sts".to_owned(),
                        Service::Autoscaling => "com.amazonaws.applicationautoscaling".to_owned(),
                        Service::Events => "com.amazonaws.events".to_owned(),
                        Service::Scheduler => "com.amazonaws.scheduler".to_owned(),
                        Service::Apigw => "com.amazonaws.apigatewayv2".to_owned(),
                        Service::Logs => "com.amazonaws.logs".to_owned(),
                        Service::Monitoring => "com.amazonaws.cloudwatch".to_owned(),
                    },
                    error.shape.clone(),
                ),
            };
            let error = ServiceError {
                shape,
                ..error.clone()
            };
            // SQS's and CloudWatch's JSON protocols are query-compatible (clients read the
            // query code).
            let query_compatible = matches!(service, Service::Sqs | Service::Monitoring);
            protocol::json_error(
                &error,
                &namespace,
                service.json_content_type(),
                query_compatible,
            )
        } else {
            let model = service.model().unwrap_or_else(|| protocol::model("sqs"));
            protocol::query_error(model, error, &self.request_id)
        }
    }

    fn result(&self, value: &Value) -> Response {
        let service = self.service.unwrap_or(Service::Sqs);
        if self.rest {
            // A 204 (API Gateway's deletes) has no body.
            let mut response = if self.status == 204 {
                Response::new(Body::empty())
            } else {
                protocol::json_response(value, "application/json")
            };
            *response.status_mut() =
                axum::http::StatusCode::from_u16(self.status).unwrap_or(axum::http::StatusCode::OK);
            return response;
        }
        if self.cbor {
            let model = service
                .model()
                .unwrap_or_else(|| protocol::model("cloudwatch"));
            return crate::cbor::response(model, &self.operation, value);
        }
        if self.json {
            protocol::json_response(value, service.json_content_type())
        } else {
            let model = service.model().unwrap_or_else(|| protocol::model("sqs"));
            protocol::query_response(model, &self.operation, value, &self.request_id)
        }
    }
}

/// Serves one request for a service other than Lambda.
pub(crate) async fn handle(
    state: &ApiState,
    parts: Parts,
    headers: Vec<(String, String)>,
    body: Body,
    detected: (Option<Service>, Protocol),
    request_id: &str,
) -> Response {
    let (service, protocol) = detected;
    let mut writer = Writer {
        service,
        json: matches!(protocol, Protocol::Json { .. }),
        cbor: matches!(protocol, Protocol::Cbor { .. }),
        rest: protocol == Protocol::Rest,
        status: 200,
        operation: match &protocol {
            Protocol::Json { operation } | Protocol::Cbor { operation } => operation.clone(),
            Protocol::Query | Protocol::Rest => String::new(),
        },
        request_id: request_id.to_owned(),
    };
    match serve(state, &parts, &headers, body, protocol, &mut writer).await {
        Ok(value) => writer.result(&value),
        Err(error) => writer.error(&error),
    }
}

async fn serve(
    state: &ApiState,
    parts: &Parts,
    headers: &[(String, String)],
    body: Body,
    protocol: Protocol,
    writer: &mut Writer,
) -> Result<Value, ServiceError> {
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    // SNS's SubscribeURL and UnsubscribeURL are plain links: those two actions may come
    // unsigned (checked once the operation is known), and then act only through the token
    // or the subscription they name.
    let (key, unsigned) = match crate::authenticate(state, headers) {
        Ok(key) => (key, false),
        Err(AuthError::Missing) if protocol == Protocol::Query => (None, true),
        Err(error) => return Err(auth_error(&error)),
    };
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // An unsigned request (only ever an SNS link) has no body to read.
    let limit = if unsigned {
        0
    } else {
        crate::DEFAULT_BODY_LIMIT
    };
    let too_large = || {
        ServiceError::client(
            413,
            "RequestEntityTooLarge",
            format!("Request must be smaller than {limit} bytes."),
        )
    };
    if unsigned && declared.is_some_and(|len| len > 0) {
        return Err(auth_error(&AuthError::Missing));
    }
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let body = match crate::read_body(body, limit, declared, state.config.body_timeout).await {
        Ok(Received::Memory(body)) => body,
        Ok(Received::Spooled { .. }) => return Err(ServiceError::internal(&"unexpected spool")),
        Err(BodyError::TooLarge) if unsigned => return Err(auth_error(&AuthError::Missing)),
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Stalled) => {
            return Err(ServiceError::client(
                408,
                "RequestTimeout",
                "The request timed out.",
            ))
        }
        Err(_) => {
            return Err(ServiceError::client(
                400,
                "MalformedInput",
                "The request body could not be read.",
            ))
        }
    };
    // A body the client compressed (botocore gzips large PutMetricData requests): the
    // signature covers the bytes sent, the operation reads them decompressed.
    let signed_body = body.clone();
    let body = decode_content(parts, body, limit)?;
    // The operation and its input.
    let (operation, input) = match &protocol {
        Protocol::Json { operation } => {
            let input: Value = if body.is_empty() {
                Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_slice(&body).map_err(|_| {
                    ServiceError::client(
                        400,
                        "SerializationException",
                        "Failed to parse the request body as JSON.",
                    )
                })?
            };
            if !input.is_object() {
                return Err(ServiceError::client(
                    400,
                    "SerializationException",
                    "The request body must be a JSON object.",
                ));
            }
            (operation.clone(), input)
        }
        Protocol::Rest => (String::new(), Value::Null),
        Protocol::Cbor { operation } => {
            let model = writer
                .service
                .and_then(Service::model)
                .unwrap_or_else(|| protocol::model("cloudwatch"));
            (
                operation.clone(),
                crate::cbor::input(model, operation, &body)?,
            )
        }
        Protocol::Query => {
            let mut params = protocol::parse_form(raw_query);
            if !body.is_empty() {
                params.extend(protocol::parse_form(&String::from_utf8_lossy(&body)));
            }
            let action = params.get("Action").cloned().unwrap_or_default();
            if writer.service.is_none() {
                writer.service = service_of_action(&action);
            }
            writer.operation = action.clone();
            (action, query_params_input(writer, &params)?)
        }
    };
    let service = writer.service.ok_or_else(|| {
        ServiceError::client(
            400,
            "InvalidAction",
            format!("The action {operation} is not valid for this endpoint."),
        )
    })?;
    // An unsigned request is only ever one of SNS's links: that exact action, named in
    // the query string, with no body that could name another.
    let link = service == Service::Sns
        && body.is_empty()
        && sns::unsigned_allowed(&operation)
        && protocol::parse_form(raw_query).get("Action") == Some(&operation);
    if unsigned && !link {
        return Err(auth_error(&AuthError::Missing));
    }
    if service
        .model()
        .is_some_and(|model| !model.has_operation(&operation))
    {
        return Err(ServiceError {
            status: 400,
            code: "InvalidAction".into(),
            shape: "com.amazon.coral.service#UnknownOperationException".into(),
            message: format!("The action {operation} is not valid for this endpoint."),
            sender: true,
        });
    }
    if let Some(key) = &key {
        let request_parts = sigv4::RequestParts {
            method: parts.method.as_str(),
            raw_path,
            raw_query,
            headers,
        };
        sigv4::verify_session(
            &request_parts,
            sigv4::payload_hash(&signed_body),
            &key.credentials,
            key.token.as_deref(),
            service.signing_name(),
            state.config.clock.now(),
        )
        .map_err(|e| auth_error(&e))?;
    }
    let account = key.as_ref().map_or_else(
        || state.planes.default_account().to_owned(),
        |k| k.account_id.clone(),
    );
    let sender = match &key {
        Some(crate::Identity {
            session: Some(session),
            ..
        }) => session.assumed_role_id(),
        Some(key) => key.credentials.access_key_id.clone(),
        None => account.clone(),
    };
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    // SDKs inside functions send their trace; SQS keeps it on what is sent and SNS carries
    // it to the functions a topic invokes (recursive loop detection).
    let trace = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amzn-trace-id"))
        .map(|(_, v)| v.as_str());
    match service {
        Service::Sqs => {
            let request = sqs::Request {
                caller: gust_sqs::Caller::account(&account, &sender),
                host: &host,
                path_queue: sqs::path_queue(raw_path),
                trace,
            };
            sqs::handle(&state.services.sqs, &operation, &input, &request).await
        }
        Service::Sns => {
            let caller = gust_sns::Caller::account(&account);
            let caller = (!unsigned).then_some(&caller);
            sns::handle(&state.services.sns, caller, &operation, &input, trace).await
        }
        Service::Sts => {
            let caller = sts::Caller {
                identity: key.as_ref(),
                account: &account,
            };
            sts::handle(
                &state.config.sessions,
                state.config.clock.now(),
                &caller,
                &operation,
                &input,
            )
        }
        Service::Events => {
            let service = Arc::clone(&state.services.eventbridge);
            tokio::task::spawn_blocking(move || {
                events::handle(&service, &account, &operation, &input)
            })
            .await
            .map_err(|e| ServiceError::internal(&e))?
        }
        Service::Scheduler => {
            let service = Arc::clone(&state.services.scheduler);
            let method = parts.method.as_str().to_owned();
            let (path, query) = (raw_path.to_owned(), raw_query.to_owned());
            let answer = tokio::task::spawn_blocking(move || {
                scheduler::handle(&service, &account, &method, &path, &query, &body)
            })
            .await
            .map_err(|e| ServiceError::internal(&e))?;
            let (status, value) = answer.unwrap_or_else(|| {
                Err(ServiceError::client(
                    404,
                    "UnknownOperationException",
                    "The requested operation is not supported by EventBridge Scheduler.",
                ))
            })?;
            writer.status = status;
            Ok(value)
        }
        Service::Apigw => {
            let service = Arc::clone(&state.services.apigw);
            let endpoints = apigw::Endpoints {
                domain: state.config.url_domain.clone(),
                host,
            };
            let method = parts.method.as_str().to_owned();
            let (path, query) = (raw_path.to_owned(), raw_query.to_owned());
            let answer = tokio::task::spawn_blocking(move || {
                apigw::handle(
                    &service, &account, &endpoints, &method, &path, &query, &body,
                )
            })
            .await
            .map_err(|e| ServiceError::internal(&e))?;
            let (status, value) = answer.unwrap_or_else(|| {
                Err(ServiceError::client(
                    404,
                    "NotFoundException",
                    "The requested operation is not supported by API Gateway.",
                ))
            })?;
            writer.status = status;
            Ok(value)
        }
        Service::Logs => {
            let service = Arc::clone(&state.services.logs);
            tokio::task::spawn_blocking(move || {
                logs::handle(&service, &account, &operation, &input)
            })
            .await
            .map_err(|e| ServiceError::internal(&e))?
        }
        Service::Monitoring => {
            let service = Arc::clone(&state.services.metrics);
            tokio::task::spawn_blocking(move || {
                monitoring::handle(&service, &account, &operation, &input)
            })
            .await
            .map_err(|e| ServiceError::internal(&e))?
        }
        Service::Autoscaling => {
            let service = Arc::clone(&state.services.autoscaling);
            tokio::task::spawn_blocking(move || {
                autoscaling::handle(&service, &account, &operation, &input)
            })
            .await
            .map_err(|e| ServiceError::internal(&e))?
        }
    }
}

/// The body as the operation reads it: decompressed when `Content-Encoding: gzip` says it
/// was compressed, within the same size limit as a plain body.
fn decode_content(
    parts: &Parts,
    body: bytes::Bytes,
    limit: usize,
) -> Result<bytes::Bytes, ServiceError> {
    let gzip = parts
        .headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
    if !gzip || body.is_empty() {
        return Ok(body);
    }
    use std::io::Read;
    let mut decoded = Vec::new();
    let read = flate2::read::GzDecoder::new(&body[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded);
    match read {
        Ok(_) if decoded.len() > limit => Err(ServiceError::client(
            413,
            "RequestEntityTooLarge",
            format!("Request must be smaller than {limit} bytes."),
        )),
        Ok(_) => Ok(decoded.into()),
        Err(_) => Err(ServiceError::client(
            400,
            "SerializationException",
            "The request body is not valid gzip.",
        )),
    }
}

fn query_params_input(
    writer: &Writer,
    params: &BTreeMap<String, String>,
) -> Result<Value, ServiceError> {
    let service = writer.service.ok_or_else(|| {
        ServiceError::client(
            400,
            "InvalidAction",
            format!(
                "The action {} is not valid for this endpoint.",
                writer.operation
            ),
        )
    })?;
    if writer.operation.is_empty() {
        return Err(ServiceError::client(
            400,
            "MissingAction",
            "The request must contain the parameter Action.",
        ));
    }
    let model = service.model().ok_or_else(|| {
        ServiceError::client(
            400,
            "InvalidAction",
            format!(
                "The action {} is not valid for this endpoint.",
                writer.operation
            ),
        )
    })?;
    Ok(protocol::query_input(model, &writer.operation, params))
}

/// The services this edge serves besides Lambda.
#[derive(Debug, Clone)]
pub struct Services {
    /// Queues.
    pub sqs: Arc<gust_sqs::Sqs>,
    /// Topics.
    pub sns: Arc<gust_sns::Sns>,
    /// Lambda's asynchronous event queue.
    pub events: Arc<gust_async::AsyncInvoker>,
    /// Application Auto Scaling of provisioned concurrency.
    pub autoscaling: Arc<gust_autoscaling::Autoscaling>,
    /// EventBridge buses, rules and targets.
    pub eventbridge: Arc<gust_events::Events>,
    /// EventBridge Scheduler.
    pub scheduler: Arc<gust_scheduler::Scheduler>,
    /// API Gateway's HTTP APIs (their control plane; the HTTP front serves them).
    pub apigw: Arc<gust_apigw::Apigw>,
    /// S3's buckets and objects.
    pub s3: Arc<gust_s3::S3>,
    /// What checks S3 notification destinations (the binary's targets).
    pub s3_destinations: Option<Arc<dyn gust_model::targets::Deliver>>,
    /// CloudWatch Logs: every function's output, and the Logs API.
    pub logs: Arc<gust_logs::Logs>,
    /// CloudWatch metrics: Lambda's and those put with PutMetricData.
    pub metrics: Arc<gust_metrics::Metrics>,
    /// Usage and cost.
    pub usage: Arc<gust_metrics::usage::Usage>,
    /// Prometheus exposition (`/metrics`).
    pub prometheus: Arc<gust_metrics::prometheus::Exporter>,
}

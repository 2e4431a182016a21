//! HTTP requests as Lambda events and function results as HTTP responses: the payload
//! formats 1.0 and 2.0 that function URLs and API Gateway's HTTP APIs send, and the
//! response rules they apply, field for field; and CORS as both answer it from their
//! configuration. No I/O and no HTTP library: requests and responses are plain values.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One HTTP request as received.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path below the URL or API endpoint, as sent (percent-encoded), from `/`.
    pub raw_path: String,
    /// The query string without `?`, as sent.
    pub raw_query: String,
    /// Header (name, value) pairs in the order received; names in any case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address.
    pub source_ip: String,
    /// `HTTP/1.1`, …
    pub protocol: String,
}

/// What the platform adds to the event: where and when the request arrived.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// `requestContext.accountId`.
    pub account_id: String,
    /// The URL id or API id.
    pub api_id: String,
    /// `requestContext.domainName`.
    pub domain_name: String,
    /// `requestContext.domainPrefix` (the URL or API id).
    pub domain_prefix: String,
    /// `requestContext.requestId`.
    pub request_id: String,
    /// When the request arrived (Unix epoch milliseconds).
    pub time_epoch_ms: i64,
    /// `$default` or the stage's name.
    pub stage: String,
    /// `$default`, or the matched route's key (`GET /items/{id}`).
    pub route_key: String,
    /// `authorizer` (`{"iam": {…}}` for signed requests).
    pub authorizer: Option<Value>,
    /// The route's path parameters (decoded).
    pub path_parameters: BTreeMap<String, String>,
    /// The stage's variables.
    pub stage_variables: BTreeMap<String, String>,
}

/// A response as it goes back to the HTTP client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers, in order; a name may repeat (`set-cookie`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a body and its content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// Whether a header is present (any case).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// The function's result is not a response the format allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Lambda proxy response: {0}")]
pub struct MalformedResponse(pub String);

/// `07/Sep/2021:22:50:22 +0000`, the `requestContext.time` format.
pub fn request_time(epoch_ms: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000)) else {
        return String::new();
    };
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    at.format(&format).unwrap_or_default()
}

/// `%XX` escapes decoded (invalid ones kept as they are); `+` stays `+`, as API Gateway
/// and function URLs leave it.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters in order, decoded; a key without `=` has the empty value.
fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Whether a body of this content type travels as text: `text/*`, JSON, XML, JavaScript
/// and YAML (with `+json`/`+xml` suffixes); anything else, or no type, is base64.
pub fn is_text_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/yaml"
                | "application/x-yaml"
                | "application/graphql"
        )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The body as the event carries it: (text or base64, is base64).
fn event_body(request: &HttpRequest) -> Option<(String, bool)> {
    if request.body.is_empty() {
        return None;
    }
    let text_type = is_text_content_type(header(&request.headers, "content-type"));
    match std::str::from_utf8(&request.body) {
        Ok(text) if text_type => Some((text.to_owned(), false)),
        _ => {
            use base64::Engine as _;
            Some((
                base64::engine::general_purpose::STANDARD.encode(&request.body),
                true,
            ))
        }
    }
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        json!(map)
    }
}

/// The payload format 2.0 event (function URLs, HTTP APIs).
pub fn event_v2(request: &HttpRequest, context: &RequestContext) -> Value {
    // Header names lower-cased, repeated ones joined with commas; cookies go to `cookies`.
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let mut query: Map<String, Value> = Map::new();
    for (key, value) in query_pairs(&request.raw_query) {
        match query.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(key, Value::String(value));
            }
        }
    }
    let user_agent = header(&request.headers, "user-agent").unwrap_or_default();
    let mut request_context = json!({
        "accountId": context.account_id,
        "apiId": context.api_id,
        "domainName": context.domain_name,
        "domainPrefix": context.domain_prefix,
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": user_agent,
        },
        "requestId": context.request_id,
        "routeKey": context.route_key,
        "stage": context.stage,
        "time": request_time(context.time_epoch_ms),
        "timeEpoch": context.time_epoch_ms,
    });
    if let Some(authorizer) = &context.authorizer {
        request_context["authorizer"] = authorizer.clone();
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": context.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    event["headers"] = Value::Object(headers);
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    event["requestContext"] = request_context;
    let body = event_body(request);
    if let Some((body, _)) = &body {
        event["body"] = json!(body);
    }
    if !context.path_parameters.is_empty() {
        event["pathParameters"] = json!(context.path_parameters);
    }
    event["isBase64Encoded"] = json!(body.is_some_and(|(_, b64)| b64));
    if !context.stage_variables.is_empty() {
        event["stageVariables"] = json!(context.stage_variables);
    }
    event
}

/// The payload format 1.0 event (HTTP APIs' `PayloadFormatVersion: 1.0`, as REST APIs
/// send it): the route's resource path, single- and multi-value headers and query
/// parameters.
pub fn event_v1(request: &HttpRequest, context: &RequestContext) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    for (name, value) in &request.headers {
        // REST APIs keep the case the client sent; the last value wins the single map.
        headers.insert(name.clone(), json!(value));
        match multi_headers.get_mut(name) {
            Some(Value::Array(all)) => all.push(json!(value)),
            _ => {
                multi_headers.insert(name.clone(), json!([value]));
            }
        }
    }
    let mut query: Map<String, Value> = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    for (key, value) in query_pairs(&request.raw_query) {
        query.insert(key.clone(), json!(value));
        match multi_query.get_mut(&key) {
            Some(Value::Array(all)) => all.push(json!(value)),
            _ => {
                multi_query.insert(key, json!([value]));
            }
        }
    }
    let resource = match context.route_key.split_once(' ') {
        Some((_, path)) => path.to_owned(),
        None => context.route_key.clone(),
    };
    let user_agent = header(&request.headers, "user-agent");
    let mut request_context = json!({
        "accountId": context.account_id,
        "apiId": context.api_id,
        "domainName": context.domain_name,
        "domainPrefix": context.domain_prefix,
        "extendedRequestId": context.request_id,
        "httpMethod": request.method,
        "identity": {
            "accessKey": null, "accountId": null, "caller": null, "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null, "cognitoIdentityId": null, "cognitoIdentityPoolId": null,
            "principalOrgId": null, "sourceIp": request.source_ip, "user": null,
            "userAgent": user_agent, "userArn": null,
        },
        "path": request.raw_path,
        "protocol": request.protocol,
        "requestId": context.request_id,
        "requestTime": request_time(context.time_epoch_ms),
        "requestTimeEpoch": context.time_epoch_ms,
        "resourceId": context.route_key,
        "resourcePath": resource,
        "stage": context.stage,
    });
    if let Some(authorizer) = &context.authorizer {
        request_context["authorizer"] = authorizer.clone();
    }
    let body = event_body(request);
    json!({
        "version": "1.0",
        "resource": resource,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { Value::Object(multi_query) },
        "requestContext": request_context,
        "pathParameters": string_map(&context.path_parameters),
        "stageVariables": string_map(&context.stage_variables),
        "body": body.as_ref().map(|(b, _)| b.clone()),
        "isBase64Encoded": body.is_some_and(|(_, b64)| b64),
    })
}

fn status_of(value: &Value) -> Result<u16, MalformedResponse> {
    let status = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    status
        // Informational answers (1xx) would leave the client waiting for the real one.
        .filter(|s| (200..=599).contains(s))
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| MalformedResponse(format!("invalid statusCode {value}")))
}

/// Headers that describe the connection or the framing, which the server sets itself: a
/// function's own (copied from an upstream response, say) would break the reply.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A finished response: framing headers dropped, and no body where the status has none.
fn finished(status: u16, mut headers: Vec<(String, String)>, body: Vec<u8>) -> HttpResponse {
    headers.retain(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()));
    let body = if matches!(status, 204 | 304) {
        Vec::new()
    } else {
        body
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

fn response_body(object: &Map<String, Value>) -> Result<Vec<u8>, MalformedResponse> {
    let body = match object.get("body") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if object.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| MalformedResponse("body is not valid base64".into()))
    } else {
        Ok(body.into_bytes())
    }
}

/// A payload format 2.0 response: an object with `statusCode` is a response
/// (`headers`, `cookies`, `body`, `isBase64Encoded`); any other JSON value is a 200
/// `application/json` body (a JSON string as its text).
pub fn response_v2(payload: &[u8]) -> Result<HttpResponse, MalformedResponse> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| MalformedResponse(format!("the result is not JSON: {e}")))?;
    let object = match &value {
        Value::Object(object) if object.contains_key("statusCode") => object,
        Value::String(text) => {
            return Ok(HttpResponse::new(200, "application/json", text.as_bytes()))
        }
        other => {
            return Ok(HttpResponse::new(
                200,
                "application/json",
                other.to_string(),
            ))
        }
    };
    let status = status_of(&object["statusCode"])?;
    let mut headers = head_of(object)?;
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(finished(status, headers, response_body(object)?))
}

/// A 2.0 response's `headers` and `cookies` (as `set-cookie` headers).
fn head_of(object: &Map<String, Value>) -> Result<Vec<(String, String)>, MalformedResponse> {
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let text = header_text(value)
                    .ok_or_else(|| MalformedResponse(format!("header {name} is not a string")))?;
                headers.push((name.to_ascii_lowercase(), text));
            }
        }
        Some(_) => return Err(MalformedResponse("headers is not an object".into())),
    }
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(all)) => {
            for cookie in all {
                let text = cookie
                    .as_str()
                    .ok_or_else(|| MalformedResponse("a cookie is not a string".into()))?;
                headers.push(("set-cookie".into(), text.to_owned()));
            }
        }
        Some(_) => return Err(MalformedResponse("cookies is not an array".into())),
    }
    Ok(headers)
}

/// The prelude of a streamed function URL response (`HttpResponseStream.from`):
/// `statusCode` (200 when absent), `headers` and `cookies`, with the stream's own content
/// type when the prelude names none.
pub fn stream_prelude(
    prelude: &[u8],
    content_type: &str,
) -> Result<HttpResponse, MalformedResponse> {
    let value: Value = serde_json::from_slice(prelude)
        .map_err(|e| MalformedResponse(format!("the prelude is not JSON: {e}")))?;
    let Value::Object(object) = &value else {
        return Err(MalformedResponse("the prelude is not an object".into()));
    };
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(value) => status_of(value)?,
    };
    let mut headers = head_of(object)?;
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), content_type.into()));
    }
    Ok(finished(status, headers, Vec::new()))
}

/// A payload format 1.0 response: `statusCode` is required; `headers` and
/// `multiValueHeaders` are merged.
pub fn response_v1(payload: &[u8]) -> Result<HttpResponse, MalformedResponse> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| MalformedResponse(format!("the result is not JSON: {e}")))?;
    let Value::Object(object) = &value else {
        return Err(MalformedResponse("the result is not an object".into()));
    };
    let status = status_of(
        object
            .get("statusCode")
            .ok_or_else(|| MalformedResponse("statusCode is missing".into()))?,
    )?;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(multi)) = object.get("multiValueHeaders") {
        for (name, values) in multi {
            let Value::Array(values) = values else {
                return Err(MalformedResponse(format!(
                    "multiValueHeaders.{name} is not a list"
                )));
            };
            for value in values {
                let text = header_text(value)
                    .ok_or_else(|| MalformedResponse(format!("header {name} is not a string")))?;
                headers.push((name.to_ascii_lowercase(), text));
            }
        }
    }
    if let Some(Value::Object(single)) = object.get("headers") {
        for (name, value) in single {
            let lower = name.to_ascii_lowercase();
            if headers.iter().any(|(n, _)| *n == lower) {
                continue;
            }
            let text = header_text(value)
                .ok_or_else(|| MalformedResponse(format!("header {name} is not a string")))?;
            headers.push((lower, text));
        }
    }
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(finished(status, headers, response_body(object)?))
}

/// A CORS configuration (a function URL's `Cors`, an HTTP API's `CorsConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cors {
    /// `AllowCredentials`.
    pub allow_credentials: Option<bool>,
    /// `AllowHeaders`.
    pub allow_headers: Vec<String>,
    /// `AllowMethods`.
    pub allow_methods: Vec<String>,
    /// `AllowOrigins`.
    pub allow_origins: Vec<String>,
    /// `ExposeHeaders`.
    pub expose_headers: Vec<String>,
    /// `MaxAge` (seconds).
    pub max_age: Option<i64>,
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for `origin`, when it is allowed.
    fn allowed_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == "*") {
            // With credentials a wildcard cannot be answered; the origin itself is.
            return Some(if self.allow_credentials == Some(true) {
                origin.to_owned()
            } else {
                "*".to_owned()
            });
        }
        self.allow_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin) || wildcard_origin(o, origin))
            .then(|| origin.to_owned())
    }

    /// Whether `request` is a CORS preflight this configuration answers (an `OPTIONS` with
    /// `Origin` and `Access-Control-Request-Method`).
    pub fn is_preflight(request: &HttpRequest) -> bool {
        request.method.eq_ignore_ascii_case("OPTIONS")
            && header(&request.headers, "origin").is_some()
            && header(&request.headers, "access-control-request-method").is_some()
    }

    /// The answer to a preflight: 200 with the allowed origin, methods, headers and max
    /// age when the origin, method and headers are allowed; 200 without CORS headers
    /// otherwise (the browser then refuses the request).
    pub fn preflight(&self, request: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let origin = header(&request.headers, "origin").unwrap_or_default();
        let method = header(&request.headers, "access-control-request-method").unwrap_or_default();
        let Some(allowed) = self.allowed_origin(origin) else {
            return response;
        };
        let method_ok = self
            .allow_methods
            .iter()
            .any(|m| m == "*" || m.eq_ignore_ascii_case(method));
        let requested: Vec<String> = header(&request.headers, "access-control-request-headers")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let headers_ok = requested.iter().all(|h| {
            self.allow_headers
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(h))
        });
        if !method_ok || !headers_ok {
            return response;
        }
        let allowed_is_specific = allowed != "*";
        let h = &mut response.headers;
        h.push(("access-control-allow-origin".into(), allowed));
        h.push((
            "access-control-allow-methods".into(),
            if self.allow_methods.iter().any(|m| m == "*") {
                method.to_owned()
            } else {
                self.allow_methods.join(",")
            },
        ));
        if !requested.is_empty() {
            h.push((
                "access-control-allow-headers".into(),
                if self.allow_headers.iter().any(|a| a == "*") {
                    requested.join(",")
                } else {
                    self.allow_headers
                        .iter()
                        .map(|a| a.to_ascii_lowercase())
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ));
        }
        if self.allow_credentials == Some(true) {
            h.push(("access-control-allow-credentials".into(), "true".into()));
        }
        if let Some(age) = self.max_age {
            h.push(("access-control-max-age".into(), age.to_string()));
        }
        if allowed_is_specific {
            h.push(("vary".into(), "Origin".into()));
        }
        response
    }

    /// Adds the CORS headers of an actual (non-preflight) request's response: they replace
    /// any the function set.
    pub fn apply(&self, request: &HttpRequest, response: &mut HttpResponse) {
        let Some(origin) = header(&request.headers, "origin") else {
            return;
        };
        let Some(allowed) = self.allowed_origin(origin) else {
            return;
        };
        response
            .headers
            .retain(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control-"));
        let wildcard = allowed == "*";
        response
            .headers
            .push(("access-control-allow-origin".into(), allowed));
        if !self.expose_headers.is_empty() {
            response.headers.push((
                "access-control-expose-headers".into(),
                self.expose_headers.join(","),
            ));
        }
        if self.allow_credentials == Some(true) {
            response
                .headers
                .push(("access-control-allow-credentials".into(), "true".into()));
        }
        if !wildcard {
            response.headers.push(("vary".into(), "Origin".into()));
        }
    }
}

/// `https://*.example.com` allows any subdomain's origin.
fn wildcard_origin(pattern: &str, origin: &str) -> bool {
    let Some((scheme, rest)) = pattern.split_once("://*.") else {
        return false;
    };
    origin.split_once("://").is_some_and(|(s, host)| {
        s.eq_ignore_ascii_case(scheme) && host.ends_with(&format!(".{rest}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            raw_path: "/my/path".into(),
            raw_query: "a=1&a=2&b=x%20y".into(),
            headers: vec![
                ("Host".into(), "abc.lambda-url.us-east-1.on.aws".into()),
                ("Content-Type".into(), "application/json".into()),
                ("X-Multi".into(), "one".into()),
                ("x-multi".into(), "two".into()),
                ("Cookie".into(), "c1=v1; c2=v2".into()),
                ("User-Agent".into(), "curl/8".into()),
            ],
            body: br#"{"k":1}"#.to_vec(),
            source_ip: "1.2.3.4".into(),
            protocol: "HTTP/1.1".into(),
        }
    }

    fn context() -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            api_id: "abc".into(),
            domain_name: "abc.lambda-url.us-east-1.on.aws".into(),
            domain_prefix: "abc".into(),
            request_id: "rid".into(),
            time_epoch_ms: 1_631_055_022_677,
            stage: "$default".into(),
            route_key: "$default".into(),
            ..RequestContext::default()
        }
    }

    #[test]
    fn the_2_0_event_is_lambdas_field_for_field() {
        let event = event_v2(&request(), &context());
        assert_eq!(
            event,
            json!({
                "version": "2.0", "routeKey": "$default", "rawPath": "/my/path",
                "rawQueryString": "a=1&a=2&b=x%20y", "cookies": ["c1=v1", "c2=v2"],
                "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "content-type": "application/json",
                            "x-multi": "one,two", "user-agent": "curl/8"},
                "queryStringParameters": {"a": "1,2", "b": "x y"},
                "requestContext": {"accountId": "123456789012", "apiId": "abc",
                    "domainName": "abc.lambda-url.us-east-1.on.aws", "domainPrefix": "abc",
                    "http": {"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1",
                             "sourceIp": "1.2.3.4", "userAgent": "curl/8"},
                    "requestId": "rid", "routeKey": "$default", "stage": "$default",
                    "time": "07/Sep/2021:22:50:22 +0000", "timeEpoch": 1_631_055_022_677_i64},
                "body": "{\"k\":1}", "isBase64Encoded": false
            })
        );
        let mut binary = request();
        binary.headers[1].1 = "application/octet-stream".into();
        binary.body = vec![0, 159, 146, 150];
        binary.raw_query.clear();
        let event = event_v2(&binary, &context());
        assert_eq!(event["body"], json!("AJ+Slg=="));
        assert_eq!(event["isBase64Encoded"], json!(true));
        assert!(event.get("queryStringParameters").is_none());
    }

    #[test]
    fn the_1_0_event_has_resource_and_multi_values() {
        let mut ctx = context();
        ctx.route_key = "POST /my/{thing}".into();
        ctx.path_parameters.insert("thing".into(), "path".into());
        let event = event_v1(&request(), &ctx);
        assert_eq!(event["resource"], json!("/my/{thing}"));
        assert_eq!(event["httpMethod"], json!("POST"));
        assert_eq!(
            event["multiValueQueryStringParameters"]["a"],
            json!(["1", "2"])
        );
        assert_eq!(event["queryStringParameters"]["a"], json!("2"));
        assert_eq!(event["multiValueHeaders"]["X-Multi"], json!(["one"]));
        assert_eq!(event["pathParameters"], json!({"thing": "path"}));
        assert_eq!(event["stageVariables"], Value::Null);
        assert_eq!(
            event["requestContext"]["resourcePath"],
            json!("/my/{thing}")
        );
    }

    #[test]
    fn responses_follow_the_formats_rules() {
        let r = response_v2(br#"{"statusCode":201,"headers":{"X-A":"v"},"cookies":["k=v; Secure"],"body":"aGk=","isBase64Encoded":true}"#).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hi");
        assert!(r
            .headers
            .contains(&("set-cookie".into(), "k=v; Secure".into())));
        assert!(r.headers.contains(&("x-a".into(), "v".into())));
        assert_eq!(response_v2(br#""hello""#).unwrap().body, b"hello");
        assert_eq!(response_v2(b"3").unwrap().body, b"3");
        let object = response_v2(br#"{"hello":"world"}"#).unwrap();
        assert_eq!(
            (object.status, object.body.as_slice()),
            (200, &br#"{"hello":"world"}"#[..])
        );
        assert!(response_v2(b"not json").is_err());
        assert!(response_v2(br#"{"statusCode":"abc"}"#).is_err());
        assert!(response_v1(br#"{"body":"x"}"#).is_err());
        assert!(response_v2(br#"{"statusCode":101}"#).is_err());
        let framed = response_v2(
            br#"{"statusCode":204,"headers":{"Transfer-Encoding":"chunked","Content-Length":"99","x-k":"v"},"body":"gone"}"#,
        )
        .unwrap();
        assert!(framed.body.is_empty() && framed.has_header("x-k"));
        assert!(!framed.has_header("transfer-encoding") && !framed.has_header("content-length"));
        let v1 = response_v1(
            br#"{"statusCode":200,"multiValueHeaders":{"Set-Cookie":["a=1","b=2"]},"body":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            v1.headers.iter().filter(|(n, _)| n == "set-cookie").count(),
            2
        );
    }

    #[test]
    fn cors_preflights_and_headers() {
        let cors = Cors {
            allow_origins: vec!["https://app.example".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["X-Custom".into()],
            expose_headers: vec!["x-total".into()],
            max_age: Some(300),
            allow_credentials: Some(true),
        };
        let preflight = HttpRequest {
            method: "OPTIONS".into(),
            headers: vec![
                ("Origin".into(), "https://app.example".into()),
                ("Access-Control-Request-Method".into(), "POST".into()),
                ("Access-Control-Request-Headers".into(), "x-custom".into()),
            ],
            ..HttpRequest::default()
        };
        assert!(Cors::is_preflight(&preflight));
        let answer = cors.preflight(&preflight);
        assert!(answer.headers.contains(&(
            "access-control-allow-origin".into(),
            "https://app.example".into()
        )));
        assert!(answer
            .headers
            .contains(&("access-control-max-age".into(), "300".into())));
        let mut other = preflight.clone();
        other.headers[0].1 = "https://evil.example".into();
        assert!(!cors
            .preflight(&other)
            .has_header("access-control-allow-origin"));
        let mut response = HttpResponse::new(200, "text/plain", "x");
        cors.apply(&preflight, &mut response);
        assert!(response
            .headers
            .contains(&("access-control-expose-headers".into(), "x-total".into())));
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(percent_decode("a%2Fb%zz+"), "a/b%zz+");
    }
}

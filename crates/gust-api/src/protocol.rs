//! The AWS protocols other than Lambda's REST-JSON, as shared adapters: requests become a
//! JSON value shaped like the operation's input (the JSON protocol's own body, or a query
//! protocol form read through the service model), a service answers with a JSON value shaped
//! like the output, and the adapter writes it back in the caller's protocol (JSON, or XML
//! through the model). Services therefore implement one JSON-in, JSON-out handler and get
//! both protocols.
//!
//! The query protocol's names (flattened lists, `member`, map `entry`/`key`/`value` and
//! their `locationName`s) come from botocore's service models, stripped of documentation and
//! embedded (`models/`, written by `scripts/models`), and follow botocore's serializer and
//! parser rule for rule.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

/// A service's error, in the terms every protocol needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// HTTP status.
    pub status: u16,
    /// The query protocol's code (`<Code>`, and `x-amzn-query-error` in JSON).
    pub code: String,
    /// The error shape's name (the JSON protocol's `__type`).
    pub shape: String,
    /// The message.
    pub message: String,
    /// Whether the caller is at fault.
    pub sender: bool,
}

impl ServiceError {
    /// A client error whose code and shape are the same.
    pub fn client(status: u16, code: &str, message: impl Into<String>) -> Self {
        ServiceError {
            status,
            code: code.to_owned(),
            shape: code.to_owned(),
            message: message.into(),
            sender: true,
        }
    }

    /// A service's own error, named by its shape: the caller's fault with `status`, or
    /// (`internal`) the service's, as a 500.
    pub fn of_service(status: u16, internal: bool, shape: &str, message: String) -> Self {
        ServiceError {
            status: if internal { 500 } else { status },
            code: shape.to_owned(),
            shape: shape.to_owned(),
            message,
            sender: !internal,
        }
    }

    /// A server fault; the cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ServiceError {
            status: 500,
            code: "InternalFailure".into(),
            shape: "InternalFailure".into(),
            message: "The request processing has failed because of an unknown error, exception or failure.".into(),
            sender: false,
        }
    }
}

/// A service model: its shapes and operations, as botocore describes them.
#[derive(Debug)]
pub struct Model {
    value: Value,
    /// The XML namespace of responses.
    pub namespace: String,
}

/// The embedded models, parsed once.
pub fn model(name: &str) -> &'static Model {
    static SQS: OnceLock<Model> = OnceLock::new();
    static SNS: OnceLock<Model> = OnceLock::new();
    static STS: OnceLock<Model> = OnceLock::new();
    static CLOUDWATCH: OnceLock<Model> = OnceLock::new();
    let (cell, text) = match name {
        "sqs" => (&SQS, include_str!("../models/sqs-query.json")),
        "sns" => (&SNS, include_str!("../models/sns.json")),
        "cloudwatch" => (&CLOUDWATCH, include_str!("../models/cloudwatch.json")),
        _ => (&STS, include_str!("../models/sts.json")),
    };
    cell.get_or_init(|| {
        let value: Value = serde_json::from_str(text).unwrap_or_default();
        let namespace = value["metadata"]["xmlNamespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Model { value, namespace }
    })
}

impl Model {
    /// Whether the service has this operation.
    pub fn has_operation(&self, name: &str) -> bool {
        self.value["operations"].get(name).is_some()
    }

    /// A shape's botocore definition (`Null` when the model has none of that name).
    pub(crate) fn shape(&self, name: &str) -> &Value {
        &self.value["shapes"][name]
    }

    /// An operation's botocore definition (`Null` when unknown).
    pub(crate) fn operation(&self, name: &str) -> &Value {
        &self.value["operations"][name]
    }
}

/// A form body or query string, decoded (`+` is a space).
pub fn parse_form(text: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// A member's serialized name: the `locationName` of the reference or else of the shape it
/// targets (botocore merges the two), else `name`.
fn location<'a>(model: &'a Model, member: &'a Value, name: &'a str) -> &'a str {
    member["locationName"]
        .as_str()
        .or_else(|| {
            model.shape(member["shape"].as_str().unwrap_or_default())["locationName"].as_str()
        })
        .unwrap_or(name)
}

/// The serialized name of a list's items, when it has one.
fn item_location<'a>(model: &'a Model, member: &'a Value) -> Option<&'a str> {
    let name = location(model, member, "");
    (!name.is_empty()).then_some(name)
}

fn has_under(params: &BTreeMap<String, String>, prefix: &str) -> bool {
    params.contains_key(prefix)
        || params
            .range(format!("{prefix}.")..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&format!("{prefix}.")))
}

/// Reads a query request's parameters as the input of `operation`: a JSON value shaped as
/// the JSON protocol would send it. Malformed scalars are kept as strings, for the service's
/// own validation to name them.
pub fn query_input(model: &Model, operation: &str, params: &BTreeMap<String, String>) -> Value {
    let Some(input) = model.operation(operation)["input"]["shape"].as_str() else {
        return Value::Object(Map::new());
    };
    read_structure(model, model.shape(input), "", params)
}

fn read_structure(
    model: &Model,
    shape: &Value,
    prefix: &str,
    params: &BTreeMap<String, String>,
) -> Value {
    let mut out = Map::new();
    if let Some(members) = shape["members"].as_object() {
        for (name, member) in members {
            let key = location(model, member, name);
            let full = if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            let target = member["shape"].as_str().unwrap_or_default();
            if let Some(value) = read_value(model, target, &full, params) {
                out.insert(name.clone(), value);
            }
        }
    }
    Value::Object(out)
}

fn read_value(
    model: &Model,
    shape_name: &str,
    prefix: &str,
    params: &BTreeMap<String, String>,
) -> Option<Value> {
    let shape = model.shape(shape_name);
    match shape["type"].as_str().unwrap_or("string") {
        "structure" => {
            has_under(params, prefix).then(|| read_structure(model, shape, prefix, params))
        }
        "list" => {
            let member = &shape["member"];
            let list_prefix = if shape["flattened"].as_bool() == Some(true) {
                match item_location(model, member) {
                    Some(name) => match prefix.rsplit_once('.') {
                        Some((parent, _)) => format!("{parent}.{name}"),
                        None => name.to_owned(),
                    },
                    None => prefix.to_owned(),
                }
            } else {
                format!(
                    "{prefix}.{}",
                    item_location(model, member).unwrap_or("member")
                )
            };
            if !has_under(params, &list_prefix) {
                // An empty list is sent as the bare name with no value.
                return params
                    .get(prefix)
                    .filter(|v| v.is_empty())
                    .map(|_| Value::Array(Vec::new()));
            }
            let target = member["shape"].as_str().unwrap_or_default();
            let mut items = Vec::new();
            for index in 1.. {
                let item = format!("{list_prefix}.{index}");
                match read_value(model, target, &item, params) {
                    Some(value) => items.push(value),
                    None => break,
                }
            }
            Some(Value::Array(items))
        }
        "map" => {
            let base = if shape["flattened"].as_bool() == Some(true) {
                prefix.to_owned()
            } else {
                format!("{prefix}.entry")
            };
            if !has_under(params, &base) {
                return None;
            }
            let key_name = shape["key"]["locationName"].as_str().unwrap_or("key");
            let value_name = shape["value"]["locationName"].as_str().unwrap_or("value");
            let value_shape = shape["value"]["shape"].as_str().unwrap_or_default();
            let mut map = Map::new();
            for index in 1.. {
                let Some(key) = params.get(&format!("{base}.{index}.{key_name}")) else {
                    break;
                };
                let value = read_value(
                    model,
                    value_shape,
                    &format!("{base}.{index}.{value_name}"),
                    params,
                )
                .unwrap_or(Value::Null);
                map.insert(key.clone(), value);
            }
            Some(Value::Object(map))
        }
        kind => params.get(prefix).map(|text| scalar(kind, text)),
    }
}

fn scalar(kind: &str, text: &str) -> Value {
    match kind {
        "integer" | "long" => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(text)),
        "boolean" => match text.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::from(text),
        },
        "double" | "float" => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::from(text)),
        // The JSON protocols carry epoch seconds, which the handlers read.
        "timestamp" => epoch_seconds(text).unwrap_or_else(|| Value::from(text)),
        _ => Value::from(text),
    }
}

/// An ISO 8601 timestamp as botocore's query serializer writes it
/// (`2026-12-06T18:00:00Z`, `2026-12-06T18:00:00.250000Z`, or with an offset), or plain
/// epoch seconds, as the JSON protocols' epoch seconds: an integer when whole, else with
/// the fraction (to the millisecond, AWS's resolution).
pub(crate) fn epoch_seconds(text: &str) -> Option<Value> {
    let text = text.trim();
    let millis =
        match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
            Ok(at) => i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?,
            Err(_) => {
                let seconds = text.parse::<f64>().ok().filter(|s| s.is_finite())?;
                (seconds * 1000.0).round() as i64
            }
        };
    Some(millis_value(millis))
}

/// Epoch milliseconds as epoch seconds: an integer when whole.
fn millis_value(millis: i64) -> Value {
    if millis % 1000 == 0 {
        Value::from(millis / 1000)
    } else {
        serde_json::Number::from_f64(millis as f64 / 1000.0).map_or(Value::Null, Value::Number)
    }
}

/// Epoch seconds as the query protocol writes a timestamp (ISO 8601 in UTC, with
/// milliseconds only when there are any); `None` when out of range.
pub(crate) fn iso8601(seconds: f64) -> Option<String> {
    if !seconds.is_finite() {
        return None;
    }
    let millis = (seconds * 1000.0).round() as i128;
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(millis.checked_mul(1_000_000)?).ok()?;
    let text = if millis % 1000 == 0 {
        at.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
    } else {
        at.format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
    };
    text.ok()
}

/// Escapes text for XML, keeping carriage returns (a parser would fold them into newlines).
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            // Characters XML 1.0 cannot carry at all (messages may quote any input).
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

fn element(name: &str, inner: impl FnOnce(&mut String), out: &mut String) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    inner(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn write_value(model: &Model, shape_name: &str, name: &str, value: &Value, out: &mut String) {
    let shape = model.shape(shape_name);
    match shape["type"].as_str().unwrap_or("string") {
        "structure" => element(name, |out| write_members(model, shape, value, out), out),
        "list" => {
            let member = &shape["member"];
            let target = member["shape"].as_str().unwrap_or_default();
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            if shape["flattened"].as_bool() == Some(true) {
                let item_name = item_location(model, member).unwrap_or(name);
                for item in items {
                    write_value(model, target, item_name, item, out);
                }
            } else {
                let item_name = item_location(model, member).unwrap_or("member");
                element(
                    name,
                    |out| {
                        for item in items {
                            write_value(model, target, item_name, item, out);
                        }
                    },
                    out,
                );
            }
        }
        "map" => {
            let key_name = shape["key"]["locationName"].as_str().unwrap_or("key");
            let value_name = shape["value"]["locationName"].as_str().unwrap_or("value");
            let value_shape = shape["value"]["shape"].as_str().unwrap_or_default();
            let entries = value.as_object().cloned().unwrap_or_default();
            let write_entry = |key: &str, v: &Value, out: &mut String| {
                element(key_name, |out| escape(key, out), out);
                write_value(model, value_shape, value_name, v, out);
            };
            if shape["flattened"].as_bool() == Some(true) {
                for (key, v) in &entries {
                    element(name, |out| write_entry(key, v, out), out);
                }
            } else {
                element(
                    name,
                    |out| {
                        for (key, v) in &entries {
                            element("entry", |out| write_entry(key, v, out), out);
                        }
                    },
                    out,
                );
            }
        }
        kind => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => return,
                // Handlers give timestamps as the JSON protocols' epoch seconds; the query
                // protocol writes ISO 8601 (strings, as STS's handler gives, pass as they are).
                Value::Number(n) if kind == "timestamp" => n
                    .as_f64()
                    .and_then(iso8601)
                    .unwrap_or_else(|| n.to_string()),
                other => other.to_string(),
            };
            element(name, |out| escape(&text, out), out);
        }
    }
}

fn write_members(model: &Model, shape: &Value, value: &Value, out: &mut String) {
    let Some(members) = shape["members"].as_object() else {
        return;
    };
    for (name, member) in members {
        let Some(v) = value.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let target = member["shape"].as_str().unwrap_or_default();
        // A flattened list's items carry their own element name (botocore's
        // `_member_key_name`); everything else is named by the member.
        write_value(model, target, location(model, member, name), v, out);
    }
}

/// The query protocol's XML response for `operation`'s output `value`.
pub fn query_response(model: &Model, operation: &str, value: &Value, request_id: &str) -> Response {
    let mut out = String::with_capacity(512);
    out.push_str(&format!(
        "<?xml version=\"1.0\"?><{operation}Response xmlns=\"{}\">",
        model.namespace
    ));
    let output = &model.operation(operation)["output"];
    if let Some(shape_name) = output["shape"].as_str() {
        let shape = model.shape(shape_name);
        let wrapper = output["resultWrapper"]
            .as_str()
            .map_or_else(|| format!("{operation}Result"), str::to_owned);
        element(
            &wrapper,
            |out| write_members(model, shape, value, out),
            &mut out,
        );
    }
    element(
        "ResponseMetadata",
        |out| element("RequestId", |out| escape(request_id, out), out),
        &mut out,
    );
    out.push_str(&format!("</{operation}Response>"));
    xml(StatusCode::OK, out)
}

/// The query protocol's `<ErrorResponse>`.
pub fn query_error(model: &Model, error: &ServiceError, request_id: &str) -> Response {
    let mut out = format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{}\"><Error>",
        model.namespace
    );
    element(
        "Type",
        |o| o.push_str(if error.sender { "Sender" } else { "Receiver" }),
        &mut out,
    );
    element("Code", |o| escape(&error.code, o), &mut out);
    element("Message", |o| escape(&error.message, o), &mut out);
    out.push_str("<Detail/></Error>");
    element("RequestId", |o| escape(request_id, o), &mut out);
    out.push_str("</ErrorResponse>");
    xml(
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
        out,
    )
}

fn xml(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/xml"),
    );
    response
}

/// An AWS JSON 1.0/1.1 response.
pub fn json_response(value: &Value, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    response
}

/// An AWS JSON error: `__type` with the service's namespace, and — for services compatible
/// with their query protocol (SQS) — the query code in `x-amzn-query-error`, which botocore
/// reports as the error code.
pub fn json_error(
    error: &ServiceError,
    namespace: &str,
    content_type: &'static str,
    query_compatible: bool,
) -> Response {
    let body = serde_json::json!({
        "__type": format!("{namespace}#{}", error.shape),
        "message": error.message,
    });
    let mut response = json_response(&body, content_type);
    *response.status_mut() = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    if query_compatible {
        let fault = if error.sender { "Sender" } else { "Receiver" };
        if let Ok(value) = axum::http::HeaderValue::from_str(&format!("{};{fault}", error.code)) {
            response.headers_mut().insert("x-amzn-query-error", value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_forms_read_through_the_model() {
        let form = parse_form(
            "Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5\
             &Attribute.2.Name=VisibilityTimeout&Attribute.2.Value=60&Tag.1.Key=team&Tag.1.Value=a+b",
        );
        let input = query_input(model("sqs"), "CreateQueue", &form);
        assert_eq!(
            input,
            serde_json::json!({"QueueName": "q",
                "Attributes": {"DelaySeconds": "5", "VisibilityTimeout": "60"},
                "tags": {"team": "a b"}})
        );
        let form = parse_form(
            "QueueUrl=u&AttributeName.1=All&MaxNumberOfMessages=3&MessageAttributeName.1=a.*",
        );
        let input = query_input(model("sqs"), "ReceiveMessage", &form);
        assert_eq!(input["AttributeNames"], serde_json::json!(["All"]));
        assert_eq!(input["MaxNumberOfMessages"], 3);
        assert_eq!(input["MessageAttributeNames"], serde_json::json!(["a.*"]));
        let form = parse_form(
            "QueueUrl=u&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=n\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v",
        );
        let input = query_input(model("sqs"), "SendMessageBatch", &form);
        assert_eq!(
            input["Entries"],
            serde_json::json!([{"Id": "a", "MessageBody": "x",
                "MessageAttributes": {"n": {"DataType": "String", "StringValue": "v"}}}])
        );
    }

    #[tokio::test]
    async fn responses_write_through_the_model() {
        let value = serde_json::json!({"Messages": [{"MessageId": "m", "Body": "a<b\r",
            "Attributes": {"SentTimestamp": "1"},
            "MessageAttributes": {"n": {"DataType": "String", "StringValue": "v"}}}]});
        let response = query_response(model("sqs"), "ReceiveMessage", &value, "rid");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        for part in [
            "<ReceiveMessageResult><Message>",
            "<MessageId>m</MessageId>",
            "<Body>a&lt;b&#xD;</Body>",
            "<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute>",
            "<MessageAttribute><Name>n</Name><Value><DataType>String</DataType><StringValue>v</StringValue></Value></MessageAttribute>",
            "</Message></ReceiveMessageResult>",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let value = serde_json::json!({"QueueUrls": ["a", "b"]});
        let response = query_response(model("sqs"), "ListQueues", &value, "rid");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains(
                "<ListQueuesResult><QueueUrl>a</QueueUrl><QueueUrl>b</QueueUrl></ListQueuesResult>"
            ),
            "{text}"
        );
    }
}

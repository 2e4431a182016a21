//! Smithy RPC v2 CBOR (`POST /service/<Service>/operation/<Operation>`, header
//! `smithy-protocol: rpc-v2-cbor`), as a shared adapter: a request body becomes the same
//! JSON value the JSON protocol would carry, and a JSON value result or error is written
//! back as CBOR, guided by the service model.
//!
//! The JSON protocols' conventions are the meeting point: timestamps are epoch seconds
//! (CBOR tag 1), blobs are base64 text (CBOR byte strings), and the special floats are the
//! strings `NaN`, `Infinity` and `-Infinity` (CBOR floats). Anything that does not match
//! its modelled type passes through as its natural JSON, for the handlers' own validation
//! to name, as it would through the JSON protocol.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use ciborium::Value as Cbor;
use serde_json::{Map, Value};

use crate::protocol::{epoch_seconds, Model, ServiceError};

const CONTENT_TYPE: &str = "application/cbor";
const PROTOCOL: &str = "rpc-v2-cbor";

/// CBOR major types (RFC 8949 §3.1).
const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
/// Tag 1: epoch-based date/time, the protocol's timestamps.
const EPOCH_TAG: u8 = 0xc1;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
/// A double-precision float follows (the protocol wants no half floats on the wire).
const DOUBLE: u8 = 0xfb;

fn malformed(message: &str) -> ServiceError {
    ServiceError::client(400, "SerializationException", message)
}

/// The operation's input read from a CBOR body, shaped as the JSON protocol sends it.
pub(crate) fn input(model: &Model, operation: &str, body: &[u8]) -> Result<Value, ServiceError> {
    if !model.has_operation(operation) {
        // As the other adapters answer an unknown action (CloudWatch is query-compatible:
        // clients read the query code).
        return Err(ServiceError {
            status: 400,
            code: "InvalidAction".into(),
            shape: "UnknownOperationException".into(),
            message: format!("The action {operation} is not valid for this endpoint."),
            sender: true,
        });
    }
    // An operation without input has no body.
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let mut rest = body;
    // ciborium bounds nesting (256 levels), so reading the tree below cannot run deep.
    let item: Cbor = ciborium::de::from_reader(&mut rest)
        .map_err(|_| malformed("The request body is not well-formed CBOR."))?;
    if !rest.is_empty() {
        return Err(malformed(
            "The request body has data after its CBOR data item.",
        ));
    }
    if !matches!(item, Cbor::Map(_)) {
        return Err(malformed("The request body must be a CBOR map."));
    }
    match model.operation(operation)["input"]["shape"].as_str() {
        Some(shape) => read(model, shape, item),
        None => Ok(Value::Object(Map::new())),
    }
}

/// A data item as the JSON protocol carries a value of `shape_name`.
fn read(model: &Model, shape_name: &str, item: Cbor) -> Result<Value, ServiceError> {
    let shape = model.shape(shape_name);
    match (shape["type"].as_str().unwrap_or_default(), item) {
        ("structure", Cbor::Map(entries)) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let key = text_key(key)?;
                // Unknown members are ignored, as every AWS protocol does.
                let Some((name, member)) = member_by_key(shape, &key) else {
                    continue;
                };
                let value = read(model, member["shape"].as_str().unwrap_or_default(), value)?;
                // Null means absent.
                if !value.is_null() {
                    out.insert(name.to_owned(), value);
                }
            }
            Ok(Value::Object(out))
        }
        ("list", Cbor::Array(items)) => {
            let target = shape["member"]["shape"].as_str().unwrap_or_default();
            items
                .into_iter()
                .map(|item| read(model, target, item))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        ("map", Cbor::Map(entries)) => {
            let target = shape["value"]["shape"].as_str().unwrap_or_default();
            let mut out = Map::new();
            for (key, value) in entries {
                out.insert(text_key(key)?, read(model, target, value)?);
            }
            Ok(Value::Object(out))
        }
        ("timestamp", Cbor::Tag(1, inner)) => match *inner {
            item @ (Cbor::Integer(_) | Cbor::Float(_)) => timestamp(item),
            _ => Err(malformed("A timestamp must be a number of epoch seconds.")),
        },
        // Untagged epoch seconds are read too: the tag adds nothing to the value.
        ("timestamp", item @ (Cbor::Integer(_) | Cbor::Float(_))) => timestamp(item),
        (_, item) => plain(item),
    }
}

fn timestamp(item: Cbor) -> Result<Value, ServiceError> {
    match plain(item)? {
        Value::Number(n) => Ok(Value::Number(n)),
        _ => Err(malformed(
            "A timestamp must be a finite number of epoch seconds.",
        )),
    }
}

/// The member of a structure named `key` on the wire (its `locationName` if it has one,
/// as botocore's serializer writes it).
fn member_by_key<'a>(shape: &'a Value, key: &str) -> Option<(&'a str, &'a Value)> {
    let members = shape["members"].as_object()?;
    members
        .iter()
        .find(|(name, member)| member["locationName"].as_str().unwrap_or(name.as_str()) == key)
        .map(|(name, member)| (name.as_str(), member))
}

fn text_key(key: Cbor) -> Result<String, ServiceError> {
    match key {
        Cbor::Text(key) => Ok(key),
        _ => Err(malformed("Map keys must be text strings.")),
    }
}

/// A data item as its natural JSON: byte strings as base64, special floats as the JSON
/// protocol's strings, tags dropped.
fn plain(item: Cbor) -> Result<Value, ServiceError> {
    Ok(match item {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(i) = i64::try_from(i) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(i) {
                Value::from(u)
            } else {
                return Err(malformed("An integer is out of range."));
            }
        }
        Cbor::Float(f) => float(f),
        Cbor::Text(s) => Value::String(s),
        Cbor::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Cbor::Array(items) => Value::Array(items.into_iter().map(plain).collect::<Result<_, _>>()?),
        Cbor::Map(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                out.insert(text_key(key)?, plain(value)?);
            }
            Value::Object(out)
        }
        Cbor::Tag(_, inner) => plain(*inner)?,
        _ => return Err(malformed("The request body has an unsupported CBOR value.")),
    })
}

/// A float as JSON: the JSON protocol's strings for the values JSON cannot carry.
fn float(f: f64) -> Value {
    match serde_json::Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::from("NaN"),
        None if f > 0.0 => Value::from("Infinity"),
        None => Value::from("-Infinity"),
    }
}

/// A result as CBOR.
pub(crate) fn response(model: &Model, operation: &str, value: &Value) -> Response {
    let Some(shape) = model.operation(operation)["output"]["shape"].as_str() else {
        // An operation without output answers with no body and no content type.
        let mut response = Response::new(Body::empty());
        protocol_header(&mut response);
        return response;
    };
    let mut out = Vec::with_capacity(256);
    write_shape(model, shape, value, &mut out);
    cbor_response(StatusCode::OK, out)
}

/// An error as CBOR: `__type` is the error's absolute shape id, and — CloudWatch being
/// compatible with its query protocol, the one service on this protocol —
/// `x-amzn-query-error` carries the query code, which clients report as the error code.
pub(crate) fn error(error: &ServiceError, namespace: &str) -> Response {
    let shape = if error.shape.contains('#') {
        error.shape.clone()
    } else {
        format!("{namespace}#{}", error.shape)
    };
    let mut out = Vec::with_capacity(64 + error.message.len());
    head(MAP, 2, &mut out);
    text("__type", &mut out);
    text(&shape, &mut out);
    text("message", &mut out);
    text(&error.message, &mut out);
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = cbor_response(status, out);
    let fault = if error.sender { "Sender" } else { "Receiver" };
    if let Ok(value) = HeaderValue::from_str(&format!("{};{fault}", error.code)) {
        response.headers_mut().insert("x-amzn-query-error", value);
    }
    response
}

fn protocol_header(response: &mut Response) {
    response
        .headers_mut()
        .insert("smithy-protocol", HeaderValue::from_static(PROTOCOL));
}

fn cbor_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    protocol_header(&mut response);
    response
}

/// Writes `value`, shaped as the JSON protocol's, as CBOR of `shape_name`.
fn write_shape(model: &Model, shape_name: &str, value: &Value, out: &mut Vec<u8>) {
    let shape = model.shape(shape_name);
    match (shape["type"].as_str().unwrap_or_default(), value) {
        ("structure", value) => {
            // Only modelled members, and no nulls (null means absent).
            let empty = Map::new();
            let fields = value.as_object().unwrap_or(&empty);
            let members: Vec<(&str, &str, &Value)> = shape["members"]
                .as_object()
                .map(|members| {
                    members
                        .iter()
                        .filter_map(|(name, member)| {
                            let v = fields.get(name).filter(|v| !v.is_null())?;
                            let key = member["locationName"].as_str().unwrap_or(name);
                            Some((key, member["shape"].as_str().unwrap_or_default(), v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            head(MAP, members.len() as u64, out);
            for (key, target, v) in members {
                text(key, out);
                write_shape(model, target, v, out);
            }
        }
        ("list", Value::Array(items)) => {
            let target = shape["member"]["shape"].as_str().unwrap_or_default();
            head(ARRAY, items.len() as u64, out);
            for item in items {
                write_shape(model, target, item, out);
            }
        }
        ("map", Value::Object(entries)) => {
            let target = shape["value"]["shape"].as_str().unwrap_or_default();
            head(MAP, entries.len() as u64, out);
            for (key, v) in entries {
                text(key, out);
                write_shape(model, target, v, out);
            }
        }
        ("timestamp", Value::Number(n)) => {
            out.push(EPOCH_TAG);
            write_epoch(n, out);
        }
        ("timestamp", Value::String(s)) => match epoch_seconds(s) {
            Some(Value::Number(n)) => {
                out.push(EPOCH_TAG);
                write_epoch(&n, out);
            }
            _ => text(s, out),
        },
        ("blob", Value::String(s)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_else(|_| s.as_bytes().to_vec());
            head(BYTES, bytes.len() as u64, out);
            out.extend_from_slice(&bytes);
        }
        ("double" | "float", Value::Number(n)) => double(n.as_f64().unwrap_or(f64::NAN), out),
        ("double" | "float", Value::String(s))
            if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") =>
        {
            double(s.parse().unwrap_or(f64::NAN), out);
        }
        (_, value) => write_plain(value, out),
    }
}

/// Epoch seconds: an integer when whole, else a double.
fn write_epoch(n: &serde_json::Number, out: &mut Vec<u8>) {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => integer(i, out),
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => integer(f as i64, out),
        (None, f) => double(f.unwrap_or(f64::NAN), out),
    }
}

/// A JSON value as its natural CBOR.
fn write_plain(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => integer(i, out),
            (None, Some(u)) => head(UNSIGNED, u, out),
            (None, None) => double(n.as_f64().unwrap_or(f64::NAN), out),
        },
        Value::String(s) => text(s, out),
        Value::Array(items) => {
            head(ARRAY, items.len() as u64, out);
            for item in items {
                write_plain(item, out);
            }
        }
        Value::Object(entries) => {
            head(MAP, entries.len() as u64, out);
            for (key, v) in entries {
                text(key, out);
                write_plain(v, out);
            }
        }
    }
}

/// A data item's head: its major type and argument, in the shortest form (RFC 8949 §4.2.1).
fn head(major: u8, argument: u64, out: &mut Vec<u8>) {
    let major = major << 5;
    if argument < 24 {
        out.push(major | argument as u8);
    } else if let Ok(a) = u8::try_from(argument) {
        out.extend_from_slice(&[major | 24, a]);
    } else if let Ok(a) = u16::try_from(argument) {
        out.push(major | 25);
        out.extend_from_slice(&a.to_be_bytes());
    } else if let Ok(a) = u32::try_from(argument) {
        out.push(major | 26);
        out.extend_from_slice(&a.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&argument.to_be_bytes());
    }
}

fn integer(i: i64, out: &mut Vec<u8>) {
    match u64::try_from(i) {
        Ok(u) => head(UNSIGNED, u, out),
        // A negative integer n is written as -1 - n, which fits: -1 - i64::MIN = i64::MAX.
        Err(_) => head(NEGATIVE, (-1 - i) as u64, out),
    }
}

fn double(f: f64, out: &mut Vec<u8>) {
    out.push(DOUBLE);
    out.extend_from_slice(&f.to_be_bytes());
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(TEXT, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model;
    use serde_json::json;

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec()
    }

    /// botocore 1.44.8's CBOR body for a PutMetricData call (timestamps whole and
    /// fractional, NaN and the infinities as half floats, a list of doubles).
    const PUT_METRIC_DATA: &str = "a2694e616d657370616365684170702f546573746a4d65747269634461746182a76a4d65747269634e616d65674c6174656e63796a44696d656e73696f6e7381a2644e616d6567536572766963656556616c7565636170696954696d657374616d70c11a6b15a2a06656616c75657383fb3ff8000000000000fb4000000000000000fbc00a00000000000066436f756e747383fb3ff0000000000000fb4000000000000000fb3ff000000000000064556e69746c4d696c6c697365636f6e64737153746f726167655265736f6c7574696f6e01a46a4d65747269634e616d6565436f756e746556616c7565f97e006954696d657374616d70c1fb41dac568a81000006f53746174697374696356616c756573a46b53616d706c65436f756e74fb40080000000000006353756dfb7e37e43c8800759c674d696e696d756df9fc00674d6178696d756df97c00";

    /// botocore 1.44.8's CBOR body for a GetMetricData call.
    const GET_METRIC_DATA: &str = "a5714d6574726963446174615175657269657382a36249646271316a4d657472696353746174a3664d6574726963a3694e616d657370616365684170702f546573746a4d65747269634e616d65674c6174656e63796a44696d656e73696f6e7381a2644e616d6567536572766963656556616c75656361706966506572696f64183c6453746174637039396a52657475726e44617461f5a46249646265316a45787072657373696f6e6471312a32654c6162656c66646f75626c656a52657475726e44617461f469537461727454696d65c11a6b15a2a067456e6454696d65c11a6b15b0b06d4d617844617461706f696e74731864665363616e42797354696d657374616d7044657363656e64696e67";

    fn put_metric_data_json() -> Value {
        // What botocore's JSON serializer sends for the same call.
        serde_json::from_str(
            r#"{"Namespace": "App/Test", "MetricData": [{"MetricName": "Latency",
            "Dimensions": [{"Name": "Service", "Value": "api"}], "Timestamp": 1796580000,
            "Values": [1.5, 2.0, -3.25], "Counts": [1.0, 2.0, 1.0], "Unit": "Milliseconds",
            "StorageResolution": 1}, {"MetricName": "Count", "Value": "NaN",
            "Timestamp": 1796580000.25, "StatisticValues": {"SampleCount": 3.0, "Sum": 1e+300,
            "Minimum": "-Infinity", "Maximum": "Infinity"}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn botocore_requests_read_as_the_json_protocol_sends_them() {
        let cloudwatch = model("cloudwatch");
        let body = hex::decode(PUT_METRIC_DATA).unwrap();
        let read = super::input(cloudwatch, "PutMetricData", &body).unwrap();
        assert_eq!(read, put_metric_data_json());
        let body = hex::decode(GET_METRIC_DATA).unwrap();
        let read = super::input(cloudwatch, "GetMetricData", &body).unwrap();
        let expected: Value = serde_json::from_str(
            r#"{"MetricDataQueries": [{"Id": "q1", "MetricStat": {"Metric": {"Namespace":
            "App/Test", "MetricName": "Latency", "Dimensions": [{"Name": "Service",
            "Value": "api"}]}, "Period": 60, "Stat": "p99"}, "ReturnData": true}, {"Id": "e1",
            "Expression": "q1*2", "Label": "double", "ReturnData": false}],
            "StartTime": 1796580000, "EndTime": 1796583600, "MaxDatapoints": 100,
            "ScanBy": "TimestampDescending"}"#,
        )
        .unwrap();
        assert_eq!(read, expected);
        // An empty input is an empty map; no body at all reads the same.
        assert_eq!(input_of("ListMetrics", &[0xa0]), json!({}));
        assert_eq!(input_of("ListMetrics", &[]), json!({}));
    }

    fn input_of(operation: &str, body: &[u8]) -> Value {
        input(model("cloudwatch"), operation, body).unwrap()
    }

    fn encode(shape: &str, value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write_shape(model("cloudwatch"), shape, value, &mut out);
        out
    }

    #[test]
    fn inputs_round_trip_through_the_model() {
        let value = put_metric_data_json();
        let body = encode("PutMetricDataInput", &value);
        assert_eq!(input_of("PutMetricData", &body), value);
        // Timestamps go as tag 1, doubles as doubles even when whole, integers as integers.
        let decoded: Cbor = ciborium::de::from_reader(body.as_slice()).unwrap();
        let datum = &decoded.as_map().unwrap()[0].1.as_array().unwrap()[0];
        let field = |name: &str| {
            datum
                .as_map()
                .unwrap()
                .iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            field("Timestamp"),
            Cbor::Tag(1, Box::new(Cbor::Integer(1_796_580_000.into())))
        );
        assert_eq!(field("Counts").as_array().unwrap()[1], Cbor::Float(2.0));
        assert_eq!(field("StorageResolution"), Cbor::Integer(1.into()));
    }

    #[test]
    fn inputs_tolerate_what_the_json_protocol_would() {
        // Unknown members are ignored, nulls are absent, indefinite lengths are read, and
        // a half-float timestamp and an untagged one are epoch seconds.
        let mut body = vec![0xbf];
        text("Namespace", &mut body);
        text("ns", &mut body);
        text("Unknown", &mut body);
        body.extend_from_slice(&[0x9f, 0x01, 0xff]);
        text("MetricData", &mut body);
        body.push(0x9f);
        head(MAP, 3, &mut body);
        text("MetricName", &mut body);
        text("m", &mut body);
        text("Unit", &mut body);
        body.push(NULL);
        text("Timestamp", &mut body);
        body.extend_from_slice(&[0xc1, 0xf9, 0x3e, 0x00]);
        body.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(
            input_of("PutMetricData", &body),
            json!({"Namespace": "ns", "MetricData": [{"MetricName": "m", "Timestamp": 1.5}]})
        );
        // A mistyped value passes as its natural JSON, for the handler's validation.
        let mut body = Vec::new();
        head(MAP, 2, &mut body);
        text("Namespace", &mut body);
        integer(-7, &mut body);
        text("MetricData", &mut body);
        text("x", &mut body);
        assert_eq!(
            input_of("PutMetricData", &body),
            json!({"Namespace": -7, "MetricData": "x"})
        );
    }

    #[test]
    fn malformed_bodies_and_unknown_operations_are_rejected() {
        let cloudwatch = model("cloudwatch");
        let full = hex::decode(PUT_METRIC_DATA).unwrap();
        let mut trailing = full.clone();
        trailing.push(0x00);
        let mut string_key = vec![0xa1, 0x01];
        text("x", &mut string_key);
        let mut bad_timestamp = vec![0xa1];
        text("StartTime", &mut bad_timestamp);
        bad_timestamp.push(EPOCH_TAG);
        text("2026", &mut bad_timestamp);
        for body in [
            &full[..full.len() - 1],
            &trailing[..],
            &[0x83, 0x01, 0x02, 0x03][..],
            &[0x1f, 0x8b, 0x08][..],
            &[0xff][..],
            &string_key[..],
        ] {
            let error = super::input(cloudwatch, "PutMetricData", body).unwrap_err();
            assert_eq!(
                (error.status, error.code.as_str()),
                (400, "SerializationException")
            );
        }
        let error = super::input(cloudwatch, "GetMetricData", &bad_timestamp).unwrap_err();
        assert_eq!(error.code, "SerializationException");
        // Nesting past ciborium's bound is refused, not recursed into.
        let deep = [vec![0x81; 100_000], vec![0x00]].concat();
        let mut body = vec![0xa1];
        text("Namespace", &mut body);
        body.extend_from_slice(&deep);
        assert!(input(cloudwatch, "PutMetricData", &body).is_err());
        let error = super::input(cloudwatch, "NoSuchOperation", &[0xa0]).unwrap_err();
        assert_eq!((error.status, error.code.as_str()), (400, "InvalidAction"));
    }

    /// A GetMetricStatistics result as the handler gives it, and the bytes written for it
    /// (checked during development to parse in botocore 1.44.8 to the same datapoints).
    fn statistics() -> (Value, &'static str) {
        (
            json!({"Label": "Latency", "Datapoints": [
                {"Timestamp": 1796580000, "SampleCount": 3.0, "Average": 2.5, "Sum": 7.5,
                 "Minimum": 1, "Maximum": 4.0, "Unit": "Milliseconds",
                 "ExtendedStatistics": {"p99": 3.96}},
                {"Timestamp": 1796580060.5, "Sum": "NaN", "Maximum": "Infinity",
                 "Unit": null, "Unmodelled": 1}]}),
            "a26a44617461706f696e747382a86741766572616765fb400400000000000072457874656e64656453\
             746174697374696373a163703939fb400fae147ae147ae674d6178696d756dfb4010000000000000674d\
             696e696d756dfb3ff00000000000006b53616d706c65436f756e74fb40080000000000006353756dfb40\
             1e0000000000006954696d657374616d70c11a6b15a2a064556e69746c4d696c6c697365636f6e6473a3\
             674d6178696d756dfb7ff00000000000006353756dfb7ff80000000000006954696d657374616d70c1fb\
             41dac568b7200000654c6162656c674c6174656e6379",
        )
    }

    #[tokio::test]
    async fn outputs_write_through_the_model() {
        let (value, golden) = statistics();
        let response = super::response(model("cloudwatch"), "GetMetricStatistics", &value);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/cbor");
        assert_eq!(response.headers()["smithy-protocol"], "rpc-v2-cbor");
        let bytes = body(response).await;
        assert_eq!(hex::encode(&bytes), golden);
        // Reading it back through the model (the output shape) gives the value, less what
        // the model does not have.
        let decoded: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let read = read(model("cloudwatch"), "GetMetricStatisticsOutput", decoded).unwrap();
        assert_eq!(
            read,
            json!({"Label": "Latency", "Datapoints": [
                {"Timestamp": 1796580000, "SampleCount": 3.0, "Average": 2.5, "Sum": 7.5,
                 "Minimum": 1.0, "Maximum": 4.0, "Unit": "Milliseconds",
                 "ExtendedStatistics": {"p99": 3.96}},
                {"Timestamp": 1796580060.5, "Sum": "NaN", "Maximum": "Infinity"}]})
        );
        // A blob is a byte string; an ISO 8601 timestamp from a handler is still tag 1.
        let bytes = encode(
            "GetMetricWidgetImageOutput",
            &json!({"MetricWidgetImage": "iVBORw=="}),
        );
        assert_eq!(
            hex::encode(&bytes),
            "a1714d6574726963576964676574496d6167654489504e47"
        );
        let bytes = encode("Datapoint", &json!({"Timestamp": "2026-12-06T18:00:00Z"}));
        assert_eq!(hex::encode(&bytes), "a16954696d657374616d70c11a6b15a2a0");
        // An operation without output answers 200 with no body and no content type.
        let response = super::response(model("cloudwatch"), "PutMetricData", &json!({}));
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("content-type").is_none());
        assert_eq!(response.headers()["smithy-protocol"], "rpc-v2-cbor");
        assert!(body(response).await.is_empty());
        // An empty output is an empty map.
        let response = super::response(model("cloudwatch"), "DeleteDashboards", &Value::Null);
        assert_eq!(body(response).await, vec![0xa0]);
    }

    #[tokio::test]
    async fn errors_carry_the_shape_and_the_query_code() {
        let error = ServiceError {
            status: 400,
            code: "InvalidParameterValue".into(),
            shape: "InvalidParameterValueException".into(),
            message: "The value 1 for parameter Period is not valid.".into(),
            sender: true,
        };
        let response = super::error(&error, "com.amazonaws.cloudwatch");
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["content-type"], "application/cbor");
        assert_eq!(response.headers()["smithy-protocol"], "rpc-v2-cbor");
        assert_eq!(
            response.headers()["x-amzn-query-error"],
            "InvalidParameterValue;Sender"
        );
        let bytes = body(response).await;
        // Checked during development to parse in botocore 1.44.8 as a ClientError with the
        // code InvalidParameterValue.
        assert_eq!(
            hex::encode(&bytes),
            "a2665f5f747970657837636f6d2e616d617a6f6e6177732e636c6f7564776174636823496e76616c6964\
             506172616d6574657256616c7565457863657074696f6e676d657373616765782e5468652076616c7565\
             203120666f7220706172616d6574657220506572696f64206973206e6f742076616c69642e"
        );
        let decoded: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(
            plain(decoded).unwrap(),
            json!({"__type": "com.amazonaws.cloudwatch#InvalidParameterValueException",
                   "message": "The value 1 for parameter Period is not valid."})
        );
        let response = super::error(&ServiceError::internal(&"boom"), "com.amazonaws.cloudwatch");
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()["x-amzn-query-error"],
            "InternalFailure;Receiver"
        );
    }

    #[tokio::test]
    async fn query_timestamps_are_epoch_seconds_in_and_iso_8601_out() {
        let cloudwatch = model("cloudwatch");
        let form = crate::protocol::parse_form(
            "Action=GetMetricStatistics&Namespace=n&MetricName=m\
             &StartTime=2026-12-06T18%3A00%3A00Z&EndTime=2026-12-06T18%3A00%3A00.250000Z\
             &Period=60&Statistics.member.1=Sum",
        );
        let input = crate::protocol::query_input(cloudwatch, "GetMetricStatistics", &form);
        assert_eq!(input["StartTime"], json!(1796580000));
        assert_eq!(input["EndTime"], json!(1796580000.25));
        assert_eq!(input["Period"], json!(60));
        // What is not a timestamp is kept, for the service's validation to name.
        let form = crate::protocol::parse_form("StartTime=yesterday");
        let input = crate::protocol::query_input(cloudwatch, "GetMetricStatistics", &form);
        assert_eq!(input["StartTime"], json!("yesterday"));
        let (value, _) = statistics();
        let response =
            crate::protocol::query_response(cloudwatch, "GetMetricStatistics", &value, "rid");
        let text = String::from_utf8(body(response).await).unwrap();
        for part in [
            "<Timestamp>2026-12-06T18:00:00Z</Timestamp>",
            "<Timestamp>2026-12-06T18:01:00.500Z</Timestamp>",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
    }
}

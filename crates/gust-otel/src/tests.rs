use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use gust_model::function::Architecture;
use gust_model::observe::{FunctionKey, Invocation, Observation, Observer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;

use super::*;
use crate::span::{invocation_spans, xray_root_to_trace_id, TraceContext, INIT_SPAN};

const HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=abcd1234:1";

fn invocation(cold: Option<Duration>, error: bool) -> Invocation {
    Invocation {
        key: FunctionKey {
            account: "123456789012".into(),
            function: "hello".into(),
            qualifier: Some("live".into()),
        },
        executed_version: "3".into(),
        at: time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        duration: Duration::from_millis(250),
        billed_ms: 250,
        memory_mb: 128,
        architecture: Architecture::Arm64,
        error,
        cold_start: cold,
        provisioned: false,
        request_id: "c6af9ac6-7b61-11e6-9a41-93e812345678".into(),
        trace: Some(HEADER.into()),
        caller_parent: Some("0123456789abcdef".into()),
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv: &&KeyValue| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Value::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn xray_root_becomes_a_w3c_trace_id() {
    let id = xray_root_to_trace_id("1-5759e988-bd862e3fe1be46a994272793").unwrap();
    assert_eq!(hex::encode(id), "5759e988bd862e3fe1be46a994272793");
    for bad in [
        "5759e988-bd862e3fe1be46a994272793",
        "1-5759e98-bd862e3fe1be46a994272793",
        "1-5759e988-bd862e3fe1be46a99427279",
        "1-5759e988-bd862e3fe1be46a99427279z",
        "1-00000000-000000000000000000000000",
        "",
    ] {
        assert_eq!(xray_root_to_trace_id(bad), None, "{bad}");
    }
    let context = TraceContext::from_header(HEADER).unwrap();
    assert_eq!(hex::encode(context.parent.unwrap()), "53995c3f42cd8ad8");
    let context = TraceContext::from_header("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
    assert_eq!(context.parent, None);
    assert_eq!(TraceContext::from_header("Parent=53995c3f42cd8ad8"), None);
    assert_eq!(
        TraceContext::from_header("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz")
            .unwrap()
            .parent,
        None
    );
}

#[test]
fn invocation_span_follows_the_faas_conventions() {
    let spans = invocation_spans(&invocation(None, false), "eu-west-1");
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "hello");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(
        hex::encode(&span.trace_id),
        "5759e988bd862e3fe1be46a994272793"
    );
    // The segment the runtime was handed is the invocation span itself, so the
    // function's own spans nest under it.
    assert_eq!(hex::encode(&span.span_id), "53995c3f42cd8ad8");
    // Its parent is the caller's segment.
    assert_eq!(hex::encode(&span.parent_span_id), "0123456789abcdef");
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(span.start_time_unix_nano, 1_699_999_999_750_000_000);
    assert_eq!(span.status, None);
    assert_eq!(
        text(span, "faas.invocation_id"),
        "c6af9ac6-7b61-11e6-9a41-93e812345678"
    );
    assert_eq!(text(span, "faas.name"), "hello");
    assert_eq!(text(span, "faas.version"), "3");
    assert_eq!(text(span, "cloud.provider"), "aws");
    assert_eq!(text(span, "cloud.region"), "eu-west-1");
    assert_eq!(text(span, "cloud.account.id"), "123456789012");
    assert_eq!(
        text(span, "cloud.resource_id"),
        "arn:aws:lambda:eu-west-1:123456789012:function:hello:3"
    );
    assert_eq!(
        text(span, "aws.lambda.invoked_arn"),
        "arn:aws:lambda:eu-west-1:123456789012:function:hello:live"
    );
    assert_eq!(text(span, "host.arch"), "arm64");
    assert_eq!(attr(span, "faas.coldstart"), Some(&Value::BoolValue(false)));
    assert_eq!(
        attr(span, "faas.max_memory"),
        Some(&Value::IntValue(134_217_728))
    );
}

#[test]
fn errors_set_the_status_and_latest_is_unqualified() {
    let mut failed = invocation(None, true);
    failed.executed_version = "$LATEST".into();
    failed.key.qualifier = None;
    let span = &invocation_spans(&failed, "us-east-1")[0];
    assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Error as i32);
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:hello";
    assert_eq!(text(span, "cloud.resource_id"), arn);
    assert_eq!(text(span, "aws.lambda.invoked_arn"), arn);
}

#[test]
fn a_cold_start_adds_an_init_child_before_the_invocation() {
    let spans = invocation_spans(&invocation(Some(Duration::from_millis(120)), false), "r");
    assert_eq!(spans.len(), 2);
    let (invoke, init) = (&spans[0], &spans[1]);
    assert_eq!(
        attr(invoke, "faas.coldstart"),
        Some(&Value::BoolValue(true))
    );
    assert_eq!(init.name, INIT_SPAN);
    assert_eq!(init.kind, SpanKind::Internal as i32);
    assert_eq!(init.trace_id, invoke.trace_id);
    assert_eq!(init.parent_span_id, invoke.span_id);
    assert_ne!(init.span_id, invoke.span_id);
    assert_eq!(init.end_time_unix_nano, invoke.start_time_unix_nano);
    assert_eq!(
        invoke.start_time_unix_nano - init.start_time_unix_nano,
        120_000_000
    );
}

#[test]
fn without_a_trace_header_ids_are_random() {
    let mut untraced = invocation(None, false);
    untraced.trace = None;
    let a = &invocation_spans(&untraced, "r")[0];
    let b = &invocation_spans(&untraced, "r")[0];
    assert_eq!((a.trace_id.len(), a.span_id.len()), (16, 8));
    assert_ne!(a.trace_id, b.trace_id);
    assert_ne!(a.span_id, vec![0; 8]);
}

#[test]
fn a_full_queue_drops_and_counts() {
    let (exporter, mut receiver) = OtlpExporter::unstarted(2);
    for _ in 0..5 {
        exporter.observe(Observation::Invoked(invocation(None, false)));
    }
    exporter.observe(Observation::Throttled {
        key: invocation(None, false).key,
        at: time::OffsetDateTime::UNIX_EPOCH,
    });
    assert_eq!(exporter.stats().dropped, 3);
    assert!(receiver.try_recv().is_ok());
    assert!(receiver.try_recv().is_ok());
    assert!(receiver.try_recv().is_err());
}

#[test]
fn endpoints_and_protocols() {
    assert_eq!(
        traces_endpoint(Some("http://c:4318/"), None).as_deref(),
        Some("http://c:4318/v1/traces")
    );
    assert_eq!(
        traces_endpoint(Some("http://c:4318"), Some("http://t/x")).as_deref(),
        Some("http://t/x")
    );
    assert_eq!(traces_endpoint(Some(" "), None), None);
    assert_eq!(traces_endpoint(None, None), None);
    assert_eq!(Protocol::parse("http/json").unwrap(), Protocol::HttpJson);
    assert!(matches!(
        Protocol::parse("grpc"),
        Err(OtelError::Protocol(_))
    ));
    let start = |endpoint: &str| OtlpExporter::start(Config::new(endpoint.into(), "r"));
    assert!(matches!(
        start("https://c/v1/traces"),
        Err(OtelError::Https(_))
    ));
    assert!(matches!(start("c:4318"), Err(OtelError::Endpoint(..))));
    assert!(matches!(start("not a url"), Err(OtelError::Endpoint(..))));
}

#[test]
fn json_uses_otlps_hex_ids() {
    let config = Config::new("http://c/v1/traces".into(), "r");
    let body = export::request(&config, &[invocation(None, false)]);
    let (bytes, content_type) = export::encode(Protocol::HttpJson, &body);
    assert_eq!(content_type, "application/json");
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "5759e988bd862e3fe1be46a994272793");
    assert_eq!(span["spanId"], "53995c3f42cd8ad8");
    assert_eq!(span["kind"], 2);
    let resource = &json["resourceSpans"][0]["resource"]["attributes"][0];
    assert_eq!(resource["key"], "service.name");
    assert_eq!(resource["value"]["stringValue"], "gust");
}

/// Answers one OTLP request with 200 and hands back its path, content type and body.
fn receive_one(listener: TcpListener) -> (String, String, Vec<u8>) {
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap().to_owned();
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "content-type" => content_type = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    reader
        .get_mut()
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        .unwrap();
    (path, content_type, body)
}

#[test]
fn batches_go_out_as_protobuf() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || receive_one(listener));
    let endpoint = traces_endpoint(Some(&format!("http://127.0.0.1:{port}")), None).unwrap();
    let mut config = Config::new(endpoint, "us-east-1");
    config.delay = Duration::from_millis(200);
    let exporter = OtlpExporter::start(config).unwrap();
    exporter.observe(Observation::Invoked(invocation(
        Some(Duration::from_millis(5)),
        false,
    )));
    exporter.observe(Observation::Invoked(invocation(None, true)));
    let (path, content_type, body) = receiver.join().unwrap();
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
    let spans = &request.resource_spans[0].scope_spans[0].spans;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["hello", INIT_SPAN, "hello"]);
    for _ in 0..100 {
        if exporter.stats().exported == 3 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{:?}", exporter.stats());
}

//! One invocation as OTLP spans, following OpenTelemetry's FaaS and AWS Lambda semantic
//! conventions, in the trace the X-Ray header names.

use gust_model::function::Architecture;
use gust_model::observe::Invocation;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span, Status};

/// The name of the span covering an environment's INIT phase (no OTel convention names
/// it; Lambda's REPORT calls it `Init Duration`).
pub const INIT_SPAN: &str = "Init";

/// W3C trace flags: sampled. Every span handed to the exporter is exported.
const SAMPLED: u32 = 0x01;

/// The ids an invocation's spans take from its `X-Amzn-Trace-Id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The W3C trace id: the X-Ray root without its `1-` and dash.
    pub trace_id: [u8; 16],
    /// The header's `Parent=`: the segment the function's own instrumentation parents
    /// its spans under.
    pub parent: Option<[u8; 8]>,
}

impl TraceContext {
    /// Reads `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;…`; `None` without a usable root.
    pub fn from_header(header: &str) -> Option<TraceContext> {
        let mut trace_id = None;
        let mut parent = None;
        for part in header.split(';') {
            let part = part.trim();
            if let Some(root) = part.strip_prefix("Root=") {
                trace_id = xray_root_to_trace_id(root);
            } else if let Some(value) = part.strip_prefix("Parent=") {
                parent = decode_id::<8>(value);
            }
        }
        Some(TraceContext {
            trace_id: trace_id?,
            parent,
        })
    }
}

/// `1-5759e988-bd862e3fe1be46a994272793` → `5759e988bd862e3fe1be46a994272793`, how
/// X-Ray and OpenTelemetry share a trace (the epoch seconds, then the unique part).
pub fn xray_root_to_trace_id(root: &str) -> Option<[u8; 16]> {
    let rest = root.strip_prefix("1-")?;
    let (epoch, unique) = rest.split_once('-')?;
    if epoch.len() != 8 || unique.len() != 24 {
        return None;
    }
    decode_id::<16>(&format!("{epoch}{unique}"))
}

/// A hex id of N bytes; all zeros is invalid in W3C and OTLP.
fn decode_id<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut id = [0u8; N];
    hex::decode_to_slice(text, &mut id).ok()?;
    (id != [0u8; N]).then_some(id)
}

/// A random non-zero id.
pub(crate) fn random_id<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    // Without the OS's randomness, a clock-derived id still keeps spans apart.
    if getrandom::fill(&mut id).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(1);
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    if id == [0u8; N] {
        id[N - 1] = 1;
    }
    id
}

/// The spans of one invocation: the invocation (kind SERVER, named after the function)
/// and, when it started an environment, its `Init` child just before it.
///
/// The invocation span takes the header's `Parent=` as its own id: that is the segment
/// the runtime was handed, so spans the function emits (through the X-Ray propagator)
/// nest under it, as they nest under the function segment in X-Ray. Its parent is the
/// caller's segment, when the caller sent one.
pub fn invocation_spans(invocation: &Invocation, region: &str) -> Vec<Span> {
    let context = invocation
        .trace
        .as_deref()
        .and_then(TraceContext::from_header);
    let trace_id = context.map_or_else(random_id::<16>, |c| c.trace_id);
    let span_id = context
        .and_then(|c| c.parent)
        .unwrap_or_else(random_id::<8>);
    let caller = invocation
        .caller_parent
        .as_deref()
        .and_then(decode_id::<8>)
        .map(|id| id.to_vec())
        .unwrap_or_default();

    let end = unix_nanos(invocation.at);
    let start = end.saturating_sub(nanos(invocation.duration));
    let key = &invocation.key;
    let function_arn = format!(
        "arn:aws:lambda:{region}:{}:function:{}",
        key.account, key.function
    );
    // cloud.resource_id names the version that ran, never an alias (the convention).
    let resource_id = if invocation.executed_version == "$LATEST" {
        function_arn.clone()
    } else {
        format!("{function_arn}:{}", invocation.executed_version)
    };
    let invoked_arn = match &key.qualifier {
        Some(qualifier) => format!("{function_arn}:{qualifier}"),
        None => function_arn,
    };
    let attributes = vec![
        string("faas.name", &key.function),
        string("faas.version", &invocation.executed_version),
        string("faas.invocation_id", &invocation.request_id),
        boolean("faas.coldstart", invocation.cold_start.is_some()),
        int(
            "faas.max_memory",
            i64::from(invocation.memory_mb) * 1024 * 1024,
        ),
        string("cloud.provider", "aws"),
        string("cloud.platform", "aws_lambda"),
        string("cloud.region", region),
        string("cloud.account.id", &key.account),
        string("cloud.resource_id", &resource_id),
        string("aws.lambda.invoked_arn", &invoked_arn),
        string(
            "host.arch",
            match invocation.architecture {
                Architecture::X86_64 => "amd64",
                Architecture::Arm64 => "arm64",
            },
        ),
        int(
            "gust.billed_duration_ms",
            i64::try_from(invocation.billed_ms).unwrap_or(i64::MAX),
        ),
        boolean("gust.provisioned", invocation.provisioned),
    ];
    let status = invocation.error.then(|| Status {
        code: StatusCode::Error as i32,
        message: "function error".to_owned(),
    });
    let mut spans = vec![Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: caller,
        flags: SAMPLED,
        name: key.function.clone(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status,
        ..Span::default()
    }];
    if let Some(init) = invocation.cold_start {
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: random_id::<8>().to_vec(),
            parent_span_id: span_id.to_vec(),
            flags: SAMPLED,
            name: INIT_SPAN.to_owned(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start.saturating_sub(nanos(init)),
            end_time_unix_nano: start,
            attributes: vec![
                string("faas.name", &key.function),
                string("faas.version", &invocation.executed_version),
            ],
            ..Span::default()
        });
    }
    spans
}

fn unix_nanos(at: time::OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos()).unwrap_or(0)
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn string(key: &str, value: &str) -> KeyValue {
    attribute(key, any_value::Value::StringValue(value.to_owned()))
}

fn boolean(key: &str, value: bool) -> KeyValue {
    attribute(key, any_value::Value::BoolValue(value))
}

fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, any_value::Value::IntValue(value))
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

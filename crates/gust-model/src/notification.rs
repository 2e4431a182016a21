//! S3 bucket notifications: the configuration (`LambdaFunctionConfigurations`,
//! `QueueConfigurations`, `TopicConfigurations`) with S3's checks, which configurations an
//! object event matches, and the event record S3 delivers. No I/O: the storage keeps the
//! configuration and the events, a worker delivers them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where a configuration delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationKind {
    /// `LambdaFunctionConfigurations`: an asynchronous invoke.
    Function,
    /// `QueueConfigurations`: an SQS message.
    Queue,
    /// `TopicConfigurations`: an SNS publish.
    Topic,
}

/// One notification configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRule {
    /// `Id` (generated when the request has none).
    pub id: String,
    /// Which list it came in.
    pub kind: DestinationKind,
    /// The function, queue or topic ARN.
    pub arn: String,
    /// `Events`, as given (`s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, …).
    pub events: Vec<String>,
    /// The key-name filter's `prefix` rule.
    pub prefix: Option<String>,
    /// The key-name filter's `suffix` rule.
    pub suffix: Option<String>,
}

/// A bucket's whole notification configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationConfiguration {
    /// Every configuration, in the order given.
    pub rules: Vec<NotificationRule>,
    /// `EventBridgeConfiguration` present (stored and echoed; Gust does not send bucket
    /// events to EventBridge).
    pub event_bridge: bool,
}

impl NotificationConfiguration {
    /// The stored form (JSON text); `None` for an empty configuration.
    pub fn stored(&self) -> Option<String> {
        (!self.rules.is_empty() || self.event_bridge)
            .then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// A stored configuration read back (an unreadable one is no configuration).
    pub fn from_stored(text: Option<&str>) -> Self {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }
}

/// Why a configuration is refused: S3 answers 400 `InvalidArgument` with this message (and,
/// for a destination, the argument's name and value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidConfiguration {
    /// The message.
    pub message: String,
    /// `ArgumentName1`/`ArgumentValue1` pairs S3 adds for destinations it could not
    /// validate.
    pub arguments: Vec<(String, String)>,
}

impl InvalidConfiguration {
    fn new(message: impl Into<String>) -> Self {
        InvalidConfiguration {
            message: message.into(),
            arguments: Vec::new(),
        }
    }
}

/// The event types S3 can notify about.
const EVENT_TYPES: &[&str] = &[
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
];

/// Whether configured event type `pattern` covers `event` (`ObjectCreated:Put`, as records
/// name it, without the `s3:` prefix).
pub fn event_matches(pattern: &str, event: &str) -> bool {
    let pattern = pattern.strip_prefix("s3:").unwrap_or(pattern);
    match pattern.strip_suffix('*') {
        Some(family) => event.starts_with(family),
        None => pattern == event,
    }
}

/// Whether two event types can both match one event.
fn events_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.strip_prefix("s3:").unwrap_or(a),
        b.strip_prefix("s3:").unwrap_or(b),
    );
    let family = |e: &str| e.rsplit_once(':').map_or(e, |(f, _)| f).to_owned();
    match (a.ends_with('*'), b.ends_with('*')) {
        (false, false) => a == b,
        _ => family(a) == family(b),
    }
}

/// Whether two key filters can both match one key.
fn filters_overlap(a: &NotificationRule, b: &NotificationRule) -> bool {
    let prefixes = match (&a.prefix, &b.prefix) {
        (Some(x), Some(y)) => x.starts_with(y.as_str()) || y.starts_with(x.as_str()),
        _ => true,
    };
    let suffixes = match (&a.suffix, &b.suffix) {
        (Some(x), Some(y)) => x.ends_with(y.as_str()) || y.ends_with(x.as_str()),
        _ => true,
    };
    prefixes && suffixes
}

impl NotificationRule {
    /// Whether this configuration wants event `event` (`ObjectCreated:Put`) on `key`.
    pub fn wants(&self, event: &str, key: &str) -> bool {
        self.events.iter().any(|e| event_matches(e, event))
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }
}

/// One `FilterRule` as given: (`Name`, `Value`).
pub type FilterRule = (String, String);

/// Builds a rule from its request members, with S3's checks of the event types and
/// filter rules. `id` is generated by the caller when absent.
pub fn rule(
    id: String,
    kind: DestinationKind,
    arn: String,
    events: Vec<String>,
    filter_rules: &[FilterRule],
) -> Result<NotificationRule, InvalidConfiguration> {
    if events.is_empty() {
        return Err(InvalidConfiguration::new(
            "A notification configuration must specify at least one event",
        ));
    }
    for event in &events {
        if !EVENT_TYPES.contains(&event.as_str()) {
            return Err(InvalidConfiguration::new(
                "The event is not supported for notifications",
            ));
        }
    }
    let (mut prefix, mut suffix) = (None, None);
    for (name, value) in filter_rules {
        let slot = match name.to_ascii_lowercase().as_str() {
            "prefix" => &mut prefix,
            "suffix" => &mut suffix,
            _ => {
                return Err(InvalidConfiguration::new(
                    "filter rule name must be either prefix or suffix",
                ))
            }
        };
        if slot.is_some() {
            return Err(InvalidConfiguration::new(format!(
                "Cannot specify more than one {} rule in a filter.",
                name.to_ascii_lowercase()
            )));
        }
        if value.len() > 1024 {
            return Err(InvalidConfiguration::new(
                "filter rule value must be at most 1024 characters",
            ));
        }
        *slot = Some(value.clone());
    }
    let service = match kind {
        DestinationKind::Function => "lambda",
        DestinationKind::Queue => "sqs",
        DestinationKind::Topic => "sns",
    };
    if arn.split(':').nth(2) != Some(service) || arn.split(':').count() < 6 {
        return Err(InvalidConfiguration {
            message: "Unable to validate the following destination configurations".into(),
            arguments: vec![(arn.clone(), "The destination ARN is not valid".into())],
        });
    }
    Ok(NotificationRule {
        id,
        kind,
        arn,
        events,
        prefix,
        suffix,
    })
}

/// Checks a whole configuration: unique ids, and no two configurations that share an event
/// type with overlapping key filters.
pub fn check(configuration: &NotificationConfiguration) -> Result<(), InvalidConfiguration> {
    let rules = &configuration.rules;
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.id == b.id {
                return Err(InvalidConfiguration::new(
                    "Configuration Id must be unique in a notification configuration",
                ));
            }
            let shared = a
                .events
                .iter()
                .any(|x| b.events.iter().any(|y| events_overlap(x, y)));
            if shared && filters_overlap(a, b) {
                return Err(InvalidConfiguration::new(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                ));
            }
        }
    }
    Ok(())
}

/// What happened to an object, as the storage reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChange {
    /// The bucket's region.
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// The bucket owner's account.
    pub owner: String,
    /// The key, as stored.
    pub key: String,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, `ObjectRemoved:Delete`, …
    pub event_name: String,
    /// The object's size (created objects).
    pub size: Option<u64>,
    /// The ETag without quotes (created objects).
    pub etag: Option<String>,
    /// The version id, where the bucket has versioning.
    pub version_id: Option<String>,
    /// Orders the events of one key: a hex string that grows.
    pub sequencer: String,
    /// When (epoch milliseconds).
    pub time_ms: i64,
    /// Who made the request (`AWS:<account or key id>`).
    pub principal_id: String,
    /// The requester's address.
    pub source_ip: String,
    /// The request's id.
    pub request_id: String,
}

/// An object key as S3's event records carry it: URL-encoded, a space as `+`.
pub fn record_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn iso_ms(epoch_ms: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
    else {
        return String::new();
    };
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format).unwrap_or_default()
}

/// The event S3 delivers for `change` under configuration `configuration_id`:
/// `{"Records": [ … ]}` with one record.
pub fn record(change: &ObjectChange, configuration_id: &str) -> Value {
    let mut object = json!({"key": record_key(&change.key), "sequencer": change.sequencer});
    if let Some(size) = change.size {
        object["size"] = json!(size);
    }
    if let Some(etag) = &change.etag {
        object["eTag"] = json!(etag);
    }
    if let Some(version) = &change.version_id {
        object["versionId"] = json!(version);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": change.region,
        "eventTime": iso_ms(change.time_ms),
        "eventName": change.event_name,
        "userIdentity": {"principalId": change.principal_id},
        "requestParameters": {"sourceIPAddress": change.source_ip},
        "responseElements": {"x-amz-request-id": change.request_id, "x-amz-id-2": change.request_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": change.bucket,
                "ownerIdentity": {"principalId": change.owner},
                "arn": format!("arn:aws:s3:::{}", change.bucket),
            },
            "object": object,
        },
    }]})
}

/// The `s3:TestEvent` S3 sends to queues and topics when a configuration is put.
pub fn test_event(bucket: &str, time_ms: i64, request_id: &str) -> Value {
    json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": iso_ms(time_ms),
           "Bucket": bucket, "RequestId": request_id, "HostId": request_id})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, events: &[&str], filters: &[(&str, &str)]) -> NotificationRule {
        rule(
            id.into(),
            DestinationKind::Function,
            "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            events.iter().map(|e| (*e).to_owned()).collect(),
            &filters
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn events_and_filters_match_as_s3_matches_them() {
        let rule = r(
            "a",
            &["s3:ObjectCreated:*"],
            &[("prefix", "uploads/"), ("Suffix", ".jpg")],
        );
        assert!(rule.wants("ObjectCreated:Put", "uploads/cat.jpg"));
        assert!(rule.wants("ObjectCreated:CompleteMultipartUpload", "uploads/x.jpg"));
        assert!(!rule.wants("ObjectRemoved:Delete", "uploads/cat.jpg"));
        assert!(!rule.wants("ObjectCreated:Put", "thumbnails/cat.jpg"));
        assert!(!rule.wants("ObjectCreated:Put", "uploads/cat.png"));
        let exact = r("b", &["s3:ObjectRemoved:Delete"], &[]);
        assert!(
            exact.wants("ObjectRemoved:Delete", "k")
                && !exact.wants("ObjectRemoved:DeleteMarkerCreated", "k")
        );
    }

    #[test]
    fn s3s_checks() {
        let err = |events: &[&str], filters: &[(&str, &str)]| {
            rule(
                "x".into(),
                DestinationKind::Queue,
                "arn:aws:sqs:us-east-1:000000000000:q".into(),
                events.iter().map(|e| (*e).to_owned()).collect(),
                &filters
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect::<Vec<_>>(),
            )
            .unwrap_err()
            .message
        };
        assert_eq!(
            err(&["s3:Nope"], &[]),
            "The event is not supported for notifications"
        );
        assert_eq!(
            err(&["s3:ObjectCreated:*"], &[("prefix", "a"), ("prefix", "b")]),
            "Cannot specify more than one prefix rule in a filter."
        );
        let overlapping = NotificationConfiguration {
            rules: vec![
                r("a", &["s3:ObjectCreated:*"], &[("prefix", "uploads/")]),
                r(
                    "b",
                    &["s3:ObjectCreated:Put"],
                    &[("prefix", "uploads/images/")],
                ),
            ],
            event_bridge: false,
        };
        assert!(check(&overlapping)
            .unwrap_err()
            .message
            .starts_with("Configurations overlap."));
        let apart = NotificationConfiguration {
            rules: vec![
                r("a", &["s3:ObjectCreated:*"], &[("prefix", "uploads/")]),
                r("b", &["s3:ObjectCreated:*"], &[("prefix", "thumbnails/")]),
                r("c", &["s3:ObjectRemoved:*"], &[("prefix", "uploads/")]),
            ],
            event_bridge: false,
        };
        assert!(check(&apart).is_ok());
    }

    #[test]
    fn records_are_s3s() {
        let change = ObjectChange {
            region: "us-east-1".into(),
            bucket: "photos".into(),
            owner: "000000000000".into(),
            key: "uploads/my cat+1é.jpg".into(),
            event_name: "ObjectCreated:Put".into(),
            size: Some(1024),
            etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            version_id: None,
            sequencer: "0055AED6DCD90281E5".into(),
            time_ms: 0,
            principal_id: "AWS:000000000000".into(),
            source_ip: "127.0.0.1".into(),
            request_id: "req".into(),
        };
        let record = &record(&change, "thumbs")["Records"][0];
        assert_eq!(record["eventTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(
            record["s3"]["object"]["key"],
            "uploads/my+cat%2B1%C3%A9.jpg"
        );
        assert_eq!(record["s3"]["object"]["size"], 1024);
        assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::photos");
        assert_eq!(record["s3"]["configurationId"], "thumbs");
        assert!(record["s3"]["object"].get("versionId").is_none());
        assert_eq!(test_event("photos", 0, "r")["Event"], "s3:TestEvent");
    }
}

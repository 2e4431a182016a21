//! Queue attributes: which names exist, their ranges and defaults, and the checks SQS makes
//! when a queue is created or changed. The stored form is the map of settable attributes
//! with every default filled in, values as SQS prints them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::SqsError;

/// Longest queue name.
pub const QUEUE_NAME_MAX: usize = 80;
/// Largest message the service accepts (and the default `MaximumMessageSize`).
pub const MESSAGE_SIZE_MAX: u32 = 1_048_576;

/// An integer attribute: name, range, default.
struct Ranged {
    name: &'static str,
    min: u64,
    max: u64,
    default: u64,
}

const RANGED: [Ranged; 5] = [
    Ranged {
        name: "DelaySeconds",
        min: 0,
        max: 900,
        default: 0,
    },
    Ranged {
        name: "MaximumMessageSize",
        min: 1024,
        max: MESSAGE_SIZE_MAX as u64,
        default: MESSAGE_SIZE_MAX as u64,
    },
    Ranged {
        name: "MessageRetentionPeriod",
        min: 60,
        max: 1_209_600,
        default: 345_600,
    },
    Ranged {
        name: "ReceiveMessageWaitTimeSeconds",
        min: 0,
        max: 20,
        default: 0,
    },
    Ranged {
        name: "VisibilityTimeout",
        min: 0,
        max: 43_200,
        default: 30,
    },
];

/// `KmsDataKeyReusePeriodSeconds`: 60 s to 24 h, 300 by default (shown only with a key).
const KMS_REUSE: Ranged = Ranged {
    name: "KmsDataKeyReusePeriodSeconds",
    min: 60,
    max: 86_400,
    default: 300,
};

/// Attributes only FIFO queues have.
const FIFO_ONLY: [&str; 3] = [
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Attributes computed by the service: readable, never settable.
pub const READ_ONLY: [&str; 6] = [
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
];

/// Every attribute name `GetQueueAttributes` knows, besides `All`.
pub fn is_known(name: &str) -> bool {
    RANGED.iter().any(|r| r.name == name)
        || READ_ONLY.contains(&name)
        || FIFO_ONLY.contains(&name)
        || matches!(
            name,
            "RedrivePolicy"
                | "RedriveAllowPolicy"
                | "Policy"
                | "FifoQueue"
                | "KmsMasterKeyId"
                | "KmsDataKeyReusePeriodSeconds"
                | "SqsManagedSseEnabled"
        )
}

fn unknown(name: &str) -> SqsError {
    SqsError::InvalidAttributeName(format!("Unknown Attribute {name}."))
}

fn invalid(name: &str) -> SqsError {
    SqsError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, SqsError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(name))
    }
}

fn parse_ranged(range: &Ranged, value: &str) -> Result<u64, SqsError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| (range.min..=range.max).contains(v))
        .ok_or_else(|| invalid(range.name))
}

/// A queue's redrive policy: where messages go after `max_receive_count` receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// The dead-letter queue's ARN.
    pub dead_letter_target_arn: String,
    /// Receives before a message moves.
    pub max_receive_count: u32,
}

impl RedrivePolicy {
    /// Parses the attribute's JSON (`maxReceiveCount` as a number or a string, as clients
    /// send either).
    pub fn parse(text: &str) -> Result<Self, SqsError> {
        let bad = |reason: &str| SqsError::invalid_value(text, "RedrivePolicy", reason);
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| bad("Redrive policy is not a valid JSON map."))?;
        let map = value
            .as_object()
            .ok_or_else(|| bad("Redrive policy is not a valid JSON map."))?;
        for key in map.keys() {
            if key != "deadLetterTargetArn" && key != "maxReceiveCount" {
                return Err(bad(&format!(
                    "Only following keys are allowed: [deadLetterTargetArn, maxReceiveCount]. Found: {key}"
                )));
            }
        }
        let arn = map
            .get("deadLetterTargetArn")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
            })?;
        let count = match map.get("maxReceiveCount") {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
            None => {
                return Err(bad(
                    "Redrive policy does not contain mandatory attribute: maxReceiveCount.",
                ))
            }
            _ => None,
        };
        let count = count.filter(|c| (1..=1000).contains(c)).ok_or_else(|| {
            bad(&format!(
                "Invalid value for maxReceiveCount: {}, valid values are from 1 to 1000 both inclusive.",
                map.get("maxReceiveCount").map(|v| v.to_string()).unwrap_or_default()
            ))
        })?;
        Ok(RedrivePolicy {
            dead_letter_target_arn: arn.to_owned(),
            max_receive_count: count as u32,
        })
    }

    /// The form SQS prints (the count as a number).
    pub fn render(&self) -> String {
        serde_json::json!({
            "deadLetterTargetArn": self.dead_letter_target_arn,
            "maxReceiveCount": self.max_receive_count,
        })
        .to_string()
    }
}

/// Which source queues may use a queue as their dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedriveAllowPolicy {
    /// `allowAll`, `denyAll` or `byQueue`.
    pub redrive_permission: String,
    /// For `byQueue`: up to 10 source queue ARNs.
    #[serde(default)]
    pub source_queue_arns: Vec<String>,
}

impl RedriveAllowPolicy {
    /// Parses and checks the attribute's JSON.
    pub fn parse(text: &str) -> Result<Self, SqsError> {
        let bad = |reason: &str| SqsError::invalid_value(text, "RedriveAllowPolicy", reason);
        let policy: RedriveAllowPolicy = serde_json::from_str(text)
            .map_err(|_| bad("Amazon SQS can't parse the RedriveAllowPolicy JSON."))?;
        match policy.redrive_permission.as_str() {
            "allowAll" | "denyAll" if policy.source_queue_arns.is_empty() => Ok(policy),
            "allowAll" | "denyAll" => Err(bad(
                "Only when the redrivePermission is byQueue can you specify sourceQueueArns.",
            )),
            "byQueue" if policy.source_queue_arns.is_empty() => Err(bad(
                "When the redrivePermission is byQueue, you must specify sourceQueueArns.",
            )),
            "byQueue" if policy.source_queue_arns.len() > 10 => {
                Err(bad("You can specify up to 10 sourceQueueArns."))
            }
            "byQueue" => Ok(policy),
            _ => Err(bad(
                "The redrivePermission must be one of allowAll, denyAll, byQueue.",
            )),
        }
    }

    /// Whether `source_arn` may send its failures here.
    pub fn allows(&self, source_arn: &str) -> bool {
        match self.redrive_permission.as_str() {
            "allowAll" => true,
            "byQueue" => self.source_queue_arns.iter().any(|a| a == source_arn),
            _ => false,
        }
    }
}

/// A queue's settable attributes, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Whether the queue is FIFO.
    pub fifo: bool,
    /// Default delay of new messages, seconds.
    pub delay_seconds: u32,
    /// Largest message body plus attributes, bytes.
    pub maximum_message_size: u32,
    /// How long a message is kept, seconds.
    pub message_retention_period: u32,
    /// Default long-poll wait, seconds.
    pub receive_wait_seconds: u32,
    /// Default visibility timeout, seconds.
    pub visibility_timeout: u32,
    /// Where messages received too often go.
    pub redrive: Option<RedrivePolicy>,
    /// Who may use this queue as a dead-letter queue.
    pub redrive_allow: Option<RedriveAllowPolicy>,
    /// FIFO: deduplicate by a hash of the body when no id is given.
    pub content_based_deduplication: bool,
    /// FIFO: deduplication per `queue` or per `messageGroup`.
    pub deduplication_scope: String,
    /// The stored map, values as printed.
    pub map: BTreeMap<String, String>,
}

fn number(map: &BTreeMap<String, String>, name: &str) -> u32 {
    map.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl QueueConfig {
    /// The typed view of a stored map.
    pub fn from_map(map: BTreeMap<String, String>) -> Self {
        QueueConfig {
            fifo: map.get("FifoQueue").is_some_and(|v| v == "true"),
            delay_seconds: number(&map, "DelaySeconds"),
            maximum_message_size: number(&map, "MaximumMessageSize"),
            message_retention_period: number(&map, "MessageRetentionPeriod"),
            receive_wait_seconds: number(&map, "ReceiveMessageWaitTimeSeconds"),
            visibility_timeout: number(&map, "VisibilityTimeout"),
            redrive: map
                .get("RedrivePolicy")
                .and_then(|v| RedrivePolicy::parse(v).ok()),
            redrive_allow: map
                .get("RedriveAllowPolicy")
                .and_then(|v| RedriveAllowPolicy::parse(v).ok()),
            content_based_deduplication: map
                .get("ContentBasedDeduplication")
                .is_some_and(|v| v == "true"),
            deduplication_scope: map
                .get("DeduplicationScope")
                .cloned()
                .unwrap_or_else(|| "queue".into()),
            map,
        }
    }

    /// The attributes of a new queue named `name`: defaults, then `given`.
    pub fn create(name: &str, given: &BTreeMap<String, String>) -> Result<Self, SqsError> {
        let fifo_name = name.ends_with(".fifo");
        let fifo = match given.get("FifoQueue") {
            Some(value) => parse_bool("FifoQueue", value)?,
            None => false,
        };
        if fifo != fifo_name {
            return Err(SqsError::InvalidParameterValue(if fifo {
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into()
            } else {
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length".into()
            }));
        }
        let mut map: BTreeMap<String, String> = RANGED
            .iter()
            .map(|r| (r.name.to_owned(), r.default.to_string()))
            .collect();
        map.insert("SqsManagedSseEnabled".into(), "true".into());
        if fifo {
            map.insert("FifoQueue".into(), "true".into());
            map.insert("ContentBasedDeduplication".into(), "false".into());
            map.insert("DeduplicationScope".into(), "queue".into());
            map.insert("FifoThroughputLimit".into(), "perQueue".into());
        }
        let given: BTreeMap<String, String> = given
            .iter()
            .filter(|(k, _)| k.as_str() != "FifoQueue")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Self::apply(map, fifo, &given)
    }

    /// These attributes changed by `given` (`SetQueueAttributes`).
    pub fn update(&self, given: &BTreeMap<String, String>) -> Result<Self, SqsError> {
        if given.contains_key("FifoQueue") {
            return Err(unknown("FifoQueue"));
        }
        Self::apply(self.map.clone(), self.fifo, given)
    }

    fn apply(
        mut map: BTreeMap<String, String>,
        fifo: bool,
        given: &BTreeMap<String, String>,
    ) -> Result<Self, SqsError> {
        for (name, value) in given {
            let name = name.as_str();
            if let Some(range) = RANGED.iter().find(|r| r.name == name) {
                map.insert(name.into(), parse_ranged(range, value)?.to_string());
                continue;
            }
            match name {
                "RedrivePolicy" if value.is_empty() => {
                    map.remove(name);
                }
                "RedrivePolicy" => {
                    let policy = RedrivePolicy::parse(value)?;
                    map.insert(name.into(), policy.render());
                }
                "RedriveAllowPolicy" if value.is_empty() => {
                    map.remove(name);
                }
                "RedriveAllowPolicy" => {
                    RedriveAllowPolicy::parse(value)?;
                    map.insert(name.into(), value.clone());
                }
                "Policy" if value.is_empty() => {
                    map.remove(name);
                }
                "Policy" => {
                    let parsed: serde_json::Value =
                        serde_json::from_str(value).map_err(|_| invalid("Policy"))?;
                    if !parsed.is_object() {
                        return Err(invalid("Policy"));
                    }
                    map.insert(name.into(), value.clone());
                }
                "ContentBasedDeduplication" if fifo => {
                    map.insert(name.into(), parse_bool(name, value)?.to_string());
                }
                "DeduplicationScope" if fifo => match value.as_str() {
                    "queue" | "messageGroup" => {
                        map.insert(name.into(), value.clone());
                    }
                    _ => return Err(invalid(name)),
                },
                "FifoThroughputLimit" if fifo => match value.as_str() {
                    "perQueue" | "perMessageGroupId" => {
                        map.insert(name.into(), value.clone());
                    }
                    _ => return Err(invalid(name)),
                },
                "KmsMasterKeyId" if value.is_empty() => {
                    map.remove(name);
                    map.remove(KMS_REUSE.name);
                }
                "KmsMasterKeyId" => {
                    map.insert(name.into(), value.clone());
                    map.insert("SqsManagedSseEnabled".into(), "false".into());
                    map.entry(KMS_REUSE.name.into())
                        .or_insert_with(|| KMS_REUSE.default.to_string());
                }
                "KmsDataKeyReusePeriodSeconds" => {
                    map.insert(name.into(), parse_ranged(&KMS_REUSE, value)?.to_string());
                }
                "SqsManagedSseEnabled" => {
                    let enabled = parse_bool(name, value)?;
                    if enabled && given.get("KmsMasterKeyId").is_some_and(|k| !k.is_empty()) {
                        return Err(SqsError::InvalidAttributeName(
                            "You can use one type of server-side encryption (SSE) at one time. You can either enable KMS SSE or SQS SSE.".into(),
                        ));
                    }
                    if enabled {
                        map.remove("KmsMasterKeyId");
                        map.remove(KMS_REUSE.name);
                    }
                    map.insert(name.into(), enabled.to_string());
                }
                _ => return Err(unknown(name)),
            }
        }
        if fifo
            && map.get("FifoThroughputLimit").map(String::as_str) == Some("perMessageGroupId")
            && map.get("DeduplicationScope").map(String::as_str) != Some("messageGroup")
        {
            return Err(SqsError::InvalidAttributeValue(
                "The perMessageGroupId value is allowed only when the value for DeduplicationScope is messageGroup".into(),
            ));
        }
        Ok(Self::from_map(map))
    }

    /// Whether `given` (a `CreateQueue` of an existing name) matches these attributes; the
    /// first attribute that differs otherwise.
    pub fn differs_from(&self, name: &str, given: &BTreeMap<String, String>) -> Option<String> {
        let wanted = match Self::create(name, given) {
            Ok(wanted) => wanted,
            Err(_) => return given.keys().next().cloned(),
        };
        given
            .keys()
            .find(|key| key.as_str() != "FifoQueue" && wanted.map.get(*key) != self.map.get(*key))
            .cloned()
    }
}

/// Checks a queue name: up to 80 of `[A-Za-z0-9_-]`, plus `.fifo` at the end of FIFO names.
pub fn check_queue_name(name: &str) -> Result<(), SqsError> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = !stem.is_empty()
        && name.len() <= QUEUE_NAME_MAX
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else if name.ends_with(".fifo") {
        Err(SqsError::InvalidParameterValue(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into(),
        ))
    } else {
        Err(SqsError::InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_and_ranges() {
        let config = QueueConfig::create("q", &BTreeMap::new()).unwrap();
        assert_eq!(config.visibility_timeout, 30);
        assert_eq!(config.maximum_message_size, 1_048_576);
        assert_eq!(config.map["SqsManagedSseEnabled"], "true");
        assert!(!config.map.contains_key("FifoQueue"));
        let error = QueueConfig::create("q", &attrs(&[("VisibilityTimeout", "43201")]));
        assert_eq!(
            error.unwrap_err().to_string(),
            "Invalid value for the parameter VisibilityTimeout."
        );
        let error = QueueConfig::create("q", &attrs(&[("Nope", "1")])).unwrap_err();
        assert_eq!(error.shape(), "InvalidAttributeName");
        let error =
            QueueConfig::create("q", &attrs(&[("ContentBasedDeduplication", "true")])).unwrap_err();
        assert_eq!(error.shape(), "InvalidAttributeName");
    }

    #[test]
    fn fifo_names_and_flags_agree() {
        assert!(
            QueueConfig::create("q.fifo", &attrs(&[("FifoQueue", "true")]))
                .unwrap()
                .fifo
        );
        assert!(QueueConfig::create("q", &attrs(&[("FifoQueue", "true")])).is_err());
        assert!(QueueConfig::create("q.fifo", &BTreeMap::new()).is_err());
        assert!(check_queue_name("a.fifo").is_ok());
        assert!(check_queue_name(".fifo").is_err());
        assert!(check_queue_name(&"a".repeat(81)).is_err());
        assert!(check_queue_name("a b").is_err());
    }

    #[test]
    fn redrive_policy_accepts_string_counts() {
        let policy =
            RedrivePolicy::parse(r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":"3"}"#)
                .unwrap();
        assert_eq!(policy.max_receive_count, 3);
        assert_eq!(
            policy.render(),
            r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":3}"#
        );
        assert!(
            RedrivePolicy::parse(r#"{"deadLetterTargetArn":"a","maxReceiveCount":0}"#).is_err()
        );
        assert!(RedrivePolicy::parse("[]").is_err());
    }

    #[test]
    fn create_is_idempotent_only_for_equal_attributes() {
        let config = QueueConfig::create("q", &attrs(&[("DelaySeconds", "5")])).unwrap();
        assert_eq!(
            config.differs_from("q", &attrs(&[("DelaySeconds", "5")])),
            None
        );
        assert_eq!(config.differs_from("q", &BTreeMap::new()), None);
        assert_eq!(
            config.differs_from("q", &attrs(&[("DelaySeconds", "6")])),
            Some("DelaySeconds".into())
        );
    }
}

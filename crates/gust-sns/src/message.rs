//! What a publisher sends: message attributes and their checks, the message itself (plain
//! or `MessageStructure=json`), the subject, and the text SNS signs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SnsError;

/// A message attribute as published (`MessageAttributeValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageAttribute {
    /// `String`, `String.Array`, `Number` or `Binary`.
    pub data_type: String,
    /// The value of a `String`, `String.Array` or `Number` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// The value of a `Binary` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<Vec<u8>>,
}

impl MessageAttribute {
    /// A `String` attribute.
    pub fn string(value: &str) -> Self {
        MessageAttribute {
            data_type: "String".into(),
            string_value: Some(value.to_owned()),
            binary_value: None,
        }
    }

    /// A `Number` attribute.
    pub fn number(value: &str) -> Self {
        MessageAttribute {
            data_type: "Number".into(),
            ..MessageAttribute::string(value)
        }
    }

    /// The value as SNS shows it in JSON envelopes: the string, or Base64 for binary.
    pub fn display_value(&self) -> String {
        use base64::Engine;
        match (&self.string_value, &self.binary_value) {
            (Some(text), _) => text.clone(),
            (None, Some(bytes)) => base64::engine::general_purpose::STANDARD.encode(bytes),
            (None, None) => String::new(),
        }
    }
}

/// Message attributes by name.
pub type MessageAttributes = BTreeMap<String, MessageAttribute>;

fn value_invalid(text: String) -> SnsError {
    SnsError::InvalidParameterValue(text)
}

/// Checks message attributes as SNS does; returns their size in bytes (names, types and
/// values), which counts towards the message size limit.
pub fn check_attributes(attributes: &MessageAttributes) -> Result<usize, SnsError> {
    let mut size = 0;
    for (name, attribute) in attributes {
        check_attribute_name(name)?;
        let data_type = attribute.data_type.as_str();
        let base = data_type.split('.').next().unwrap_or_default();
        let known = matches!(data_type, "String" | "String.Array" | "Number" | "Binary");
        if !known {
            return Err(value_invalid(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        let empty = || {
            value_invalid(format!(
                "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{data_type}'."
            ))
        };
        let value_len = if base == "Binary" {
            match &attribute.binary_value {
                Some(bytes) if !bytes.is_empty() => bytes.len(),
                _ => return Err(empty()),
            }
        } else {
            let text = match &attribute.string_value {
                Some(text) if !text.is_empty() => text,
                _ => return Err(empty()),
            };
            if data_type == "Number" && text.trim().parse::<f64>().is_err() {
                return Err(value_invalid(format!(
                    "Could not cast message attribute '{name}' value to number."
                )));
            }
            if data_type == "String.Array"
                && !matches!(serde_json::from_str::<Value>(text), Ok(Value::Array(items))
                    if items.iter().all(|i| !matches!(i, Value::Object(_) | Value::Array(_))))
            {
                return Err(SnsError::invalid(format!(
                    "Message attribute '{name}' with type 'String.Array' must be a JSON array of strings, numbers, true, false or null."
                )));
            }
            text.len()
        };
        size += name.len() + data_type.len() + value_len;
    }
    Ok(size)
}

fn check_attribute_name(name: &str) -> Result<(), SnsError> {
    if name.is_empty() {
        return Err(value_invalid(
            "The message attribute name must not be empty.".into(),
        ));
    }
    if name.len() > 256 {
        return Err(value_invalid(
            "Length of message attribute name must be less than 256 bytes.".into(),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(value_invalid(format!(
            "Invalid non-alphanumeric character '#x{:X}' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
            u32::from(bad)
        )));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(value_invalid(format!(
            "Invalid message attribute name '{name}': it must not start or end with a period or contain two periods in a row."
        )));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err(value_invalid(format!(
            "The message attribute name '{name}' is reserved: names must not start with 'AWS.' or 'Amazon.'."
        )));
    }
    Ok(())
}

/// Checks a `Subject`: 1–99 characters of UTF-8 text without line breaks or controls.
pub fn check_subject(subject: &str) -> Result<(), SnsError> {
    let count = subject.chars().count();
    if count == 0 || count >= 100 || subject.chars().any(char::is_control) {
        return Err(SnsError::invalid("Subject"));
    }
    Ok(())
}

/// Checks a `MessageStructure` and the message it describes.
pub fn check_structure(message: &str, structure: Option<&str>) -> Result<bool, SnsError> {
    match structure {
        None => Ok(false),
        Some("json") => {
            let parsed: Value = serde_json::from_str(message).map_err(|_| {
                SnsError::invalid("Message Structure - JSON message body failed to parse")
            })?;
            match parsed.get("default") {
                Some(Value::String(_)) if parsed.is_object() => Ok(true),
                _ => Err(SnsError::invalid(
                    "Message Structure - No default entry in JSON message body",
                )),
            }
        }
        Some(_) => Err(SnsError::invalid("MessageStructure")),
    }
}

/// The text a protocol receives: with `MessageStructure=json`, its own key's string or
/// the `default` one.
pub fn text_for(message: &str, structured: bool, protocol: &str) -> String {
    if !structured {
        return message.to_owned();
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(message) else {
        return message.to_owned();
    };
    match (map.get(protocol), map.get("default")) {
        (Some(Value::String(own)), _) => own.clone(),
        (_, Some(Value::String(default))) => default.clone(),
        _ => String::new(),
    }
}

/// Checks a `MessageGroupId` or `MessageDeduplicationId`: 1–128 alphanumerics and
/// punctuation.
pub fn check_fifo_id(value: &str, parameter: &str) -> Result<(), SnsError> {
    let ok = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(SnsError::invalid(format!(
            "{parameter} Reason: {parameter} can only contain alphanumeric characters and punctuation, and be at most 128 characters long"
        )))
    }
}

/// SNS's timestamp: `2019-01-02T12:45:07.000Z`.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The text SNS signs for a notification: name/value lines in byte order of the names,
/// `Subject` only when there is one.
pub fn canonical_notification(
    message: &str,
    message_id: &str,
    subject: Option<&str>,
    timestamp: &str,
    topic_arn: &str,
    kind: &str,
) -> String {
    let mut text = format!("Message\n{message}\nMessageId\n{message_id}\n");
    if let Some(subject) = subject {
        text.push_str(&format!("Subject\n{subject}\n"));
    }
    text.push_str(&format!(
        "Timestamp\n{timestamp}\nTopicArn\n{topic_arn}\nType\n{kind}\n"
    ));
    text
}

/// The text SNS signs for a subscription or unsubscribe confirmation.
pub fn canonical_confirmation(
    message: &str,
    message_id: &str,
    subscribe_url: &str,
    timestamp: &str,
    token: &str,
    topic_arn: &str,
    kind: &str,
) -> String {
    format!(
        "Message\n{message}\nMessageId\n{message_id}\nSubscribeURL\n{subscribe_url}\nTimestamp\n{timestamp}\nToken\n{token}\nTopicArn\n{topic_arn}\nType\n{kind}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_checked_and_sized() {
        let mut attributes = MessageAttributes::new();
        attributes.insert("color".into(), MessageAttribute::string("red"));
        attributes.insert("size".into(), MessageAttribute::number("12.5"));
        assert_eq!(
            check_attributes(&attributes).unwrap(),
            5 + 6 + 3 + 4 + 6 + 4
        );
        attributes.insert("n".into(), MessageAttribute::number("twelve"));
        assert!(matches!(
            check_attributes(&attributes),
            Err(SnsError::InvalidParameterValue(m)) if m.contains("cast")
        ));
        let mut bad = MessageAttributes::new();
        bad.insert(
            "x".into(),
            MessageAttribute {
                data_type: "Text".into(),
                string_value: Some("v".into()),
                binary_value: None,
            },
        );
        assert!(check_attributes(&bad).is_err());
        for name in ["AWS.x", "a..b", ".a", "a b"] {
            let mut one = MessageAttributes::new();
            one.insert(name.into(), MessageAttribute::string("v"));
            assert!(check_attributes(&one).is_err(), "{name}");
        }
        let mut array = MessageAttributes::new();
        array.insert(
            "tags".into(),
            MessageAttribute {
                data_type: "String.Array".into(),
                string_value: Some("[\"a\", 1, true]".into()),
                binary_value: None,
            },
        );
        assert!(check_attributes(&array).is_ok());
    }

    #[test]
    fn structure_picks_the_protocol_or_default() {
        let message = r#"{"default":"d","sqs":"q","lambda":7}"#;
        assert!(check_structure(message, Some("json")).unwrap());
        assert_eq!(text_for(message, true, "sqs"), "q");
        assert_eq!(text_for(message, true, "lambda"), "d");
        assert_eq!(text_for(message, true, "http"), "d");
        assert_eq!(
            check_structure(r#"{"sqs":"q"}"#, Some("json")).unwrap_err(),
            SnsError::InvalidParameter(
                "Invalid parameter: Message Structure - No default entry in JSON message body"
                    .into()
            )
        );
        assert!(check_structure("nope", Some("json")).is_err());
        assert!(check_subject("hello").is_ok());
        assert!(check_subject("two\nlines").is_err());
        assert!(check_subject(&"x".repeat(100)).is_err());
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let at = time::macros::datetime!(2019-01-02 12:45:07.5 UTC);
        assert_eq!(timestamp(at), "2019-01-02T12:45:07.500Z");
    }
}

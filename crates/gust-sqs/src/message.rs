//! Messages as senders give them: bodies, message attributes and system attributes, the
//! checks SQS makes on them, and the MD5 digests SDKs verify.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::SqsError;

/// Most message attributes on one message.
pub const ATTRIBUTES_MAX: usize = 10;

/// One message attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    /// `String`, `Number` or `Binary`, optionally with a `.custom` suffix.
    pub data_type: String,
    /// For `String` and `Number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// For `Binary`: the raw bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_bytes"
    )]
    pub binary_value: Option<Vec<u8>>,
}

/// Attributes by name (sorted, as the digest needs them).
pub type Attributes = BTreeMap<String, AttributeValue>;

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => {
                serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// Hex MD5 of a body.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// The digest SQS computes over attributes: for each, sorted by name, the length-prefixed
/// name, type, a transport byte (1 string, 2 binary) and the length-prefixed value.
pub fn md5_of_attributes(attributes: &Attributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut hasher = Md5::new();
    let field = |hasher: &mut Md5, bytes: &[u8]| {
        hasher.update((bytes.len() as u32).to_be_bytes());
        hasher.update(bytes);
    };
    for (name, value) in attributes {
        field(&mut hasher, name.as_bytes());
        field(&mut hasher, value.data_type.as_bytes());
        match &value.binary_value {
            Some(binary) => {
                hasher.update([2u8]);
                field(&mut hasher, binary);
            }
            None => {
                hasher.update([1u8]);
                field(
                    &mut hasher,
                    value.string_value.as_deref().unwrap_or("").as_bytes(),
                );
            }
        }
    }
    Some(hex::encode(hasher.finalize()))
}

/// Characters XML allows (SQS refuses the others in bodies and attribute values).
fn is_allowed_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn check_characters(text: &str, what: &str) -> Result<(), SqsError> {
    match text.chars().find(|c| !is_allowed_char(*c)) {
        None => Ok(()),
        Some(c) => Err(SqsError::InvalidMessageContents(format!(
            "Invalid binary character '#x{:X}' was found in the {what}, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            c as u32
        ))),
    }
}

/// Checks a body; an empty one is missing.
pub fn check_body(body: &str) -> Result<(), SqsError> {
    if body.is_empty() {
        return Err(SqsError::MissingParameter("MessageBody".into()));
    }
    check_characters(body, "message body")
}

/// Which attributes are checked: the sender's or the service-defined system ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    /// `MessageAttributes`.
    User,
    /// `MessageSystemAttributes` (only `AWSTraceHeader`).
    System,
}

impl AttributeKind {
    fn label(self) -> &'static str {
        match self {
            AttributeKind::User => "message (user)",
            AttributeKind::System => "message system",
        }
    }
}

/// Checks attributes and returns the bytes they count toward the message size.
pub fn check_attributes(attributes: &Attributes, kind: AttributeKind) -> Result<usize, SqsError> {
    let label = kind.label();
    if attributes.len() > ATTRIBUTES_MAX {
        return Err(SqsError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{ATTRIBUTES_MAX}].",
            attributes.len()
        )));
    }
    let mut size = 0;
    for (name, value) in attributes {
        match kind {
            AttributeKind::System if name != "AWSTraceHeader" => {
                return Err(SqsError::InvalidParameterValue(format!(
                    "Message system attribute name '{name}' is invalid."
                )))
            }
            AttributeKind::System => {}
            AttributeKind::User => check_attribute_name(name)?,
        }
        let base = value.data_type.split('.').next().unwrap_or("");
        if value.data_type.len() > 256 || !matches!(base, "String" | "Number" | "Binary") {
            return Err(SqsError::InvalidParameterValue(format!(
                "The type of {label} attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
            )));
        }
        let missing = || {
            SqsError::InvalidParameterValue(format!(
                "The {label} attribute '{name}' must contain a non-empty message attribute value for message attribute type '{base}'."
            ))
        };
        let value_len = if base == "Binary" {
            match &value.binary_value {
                Some(bytes) if !bytes.is_empty() && value.string_value.is_none() => bytes.len(),
                _ => return Err(missing()),
            }
        } else {
            match &value.string_value {
                Some(text) if !text.is_empty() && value.binary_value.is_none() => {
                    check_characters(text, &format!("{label} attribute '{name}'"))?;
                    if base == "Number" && !is_number(text) {
                        return Err(SqsError::InvalidParameterValue(format!(
                            "Can't cast the value of {label} attribute '{name}' to a number."
                        )));
                    }
                    text.len()
                }
                _ => return Err(missing()),
            }
        };
        size += name.len() + value.data_type.len() + value_len;
    }
    Ok(size)
}

fn check_attribute_name(name: &str) -> Result<(), SqsError> {
    let invalid = |why: &str| {
        Err(SqsError::InvalidParameterValue(format!(
            "Message (user) attribute name '{name}' is invalid. {why}"
        )))
    };
    if name.is_empty() || name.len() > 256 {
        return invalid("The name must be between 1 and 256 characters long.");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(SqsError::InvalidParameterValue(format!(
            "Invalid non-alphanumeric character '#x{:X}' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.",
            c as u32
        )));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return invalid(
            "The attribute name can't start with AWS-reserved prefixes 'AWS.' or 'Amazon.'.",
        );
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return invalid(
            "The attribute name can't start or end with a period, or contain successive periods.",
        );
    }
    Ok(())
}

/// A `Number` attribute: a decimal with up to 38 significant digits.
fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (digits, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let significant = format!("{whole}{fraction}");
    !significant.is_empty()
        && all_digits(whole)
        && all_digits(fraction)
        && significant.trim_start_matches('0').len() <= 38
        && exponent.is_none_or(|e| {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && all_digits(e)
        })
}

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// The body.
    pub body: String,
    /// Per-message delay (standard queues only).
    pub delay_seconds: Option<u32>,
    /// The sender's attributes.
    pub attributes: Attributes,
    /// System attributes (`AWSTraceHeader`).
    pub system_attributes: Attributes,
    /// FIFO (and fair standard queues): the message group.
    pub group_id: Option<String>,
    /// FIFO: the deduplication id.
    pub deduplication_id: Option<String>,
    /// The sender's trace header, kept as `AWSTraceHeader` when the system attributes
    /// carry none (it is not part of their digest: the sender did not send it as one).
    pub trace: Option<String>,
}

/// What `SendMessage` reports for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message's id.
    pub message_id: String,
    /// MD5 of the body.
    pub md5_of_body: String,
    /// MD5 of the attributes, when there are some.
    pub md5_of_attributes: Option<String>,
    /// MD5 of the system attributes, when there are some.
    pub md5_of_system_attributes: Option<String>,
    /// FIFO: the sequence number.
    pub sequence_number: Option<String>,
}

/// A group or deduplication id: 1–128 printable ASCII characters.
pub fn check_fifo_id(value: &str, parameter: &str) -> Result<(), SqsError> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(SqsError::invalid_value(
            value,
            parameter,
            &format!("{parameter} can only include alphanumeric and punctuation characters. 1 to 128 in length."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(data_type: &str, value: &str) -> AttributeValue {
        AttributeValue {
            data_type: data_type.into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    #[test]
    fn digests_match_the_service() {
        assert_eq!(md5_hex(b"test"), "098f6bcd4621d373cade4e832627b4f6");
        let attributes: Attributes = [("Author".to_owned(), string("String", "John"))].into();
        assert_eq!(
            md5_of_attributes(&attributes).unwrap(),
            "88c00aa79fe478b6e6fb7ded7586b6d7"
        );
        assert_eq!(md5_of_attributes(&Attributes::new()), None);
    }

    #[test]
    fn attribute_checks() {
        let ok: Attributes = [("a.b-c_d".to_owned(), string("Number.int", "-1.5e3"))].into();
        assert_eq!(
            check_attributes(&ok, AttributeKind::User).unwrap(),
            7 + 10 + 6
        );
        for (name, value) in [
            ("AWS.x", string("String", "v")),
            ("a..b", string("String", "v")),
            ("a b", string("String", "v")),
            ("n", string("Number", "abc")),
            ("n", string("Text", "v")),
            ("n", string("String", "")),
        ] {
            let attributes: Attributes = [(name.to_owned(), value)].into();
            assert!(
                check_attributes(&attributes, AttributeKind::User).is_err(),
                "{name}"
            );
        }
        let system: Attributes = [("Other".to_owned(), string("String", "v"))].into();
        assert!(check_attributes(&system, AttributeKind::System).is_err());
    }

    #[test]
    fn bodies_must_be_xml_characters() {
        assert!(check_body("héllo\n\t😀").is_ok());
        assert_eq!(
            check_body("a\u{0}b").unwrap_err().shape(),
            "InvalidMessageContents"
        );
        assert_eq!(
            check_body("").unwrap_err().shape(),
            "MissingRequiredParameterException"
        );
    }
}

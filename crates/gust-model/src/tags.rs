//! Resource tags and their limits.

use std::collections::BTreeMap;

use crate::error::{ModelError, Violations};
use crate::limits::{TAGS_MAX, TAG_KEY_MAX_LEN, TAG_VALUE_MAX_LEN};

/// A function's tags, ordered by key.
pub type Tags = BTreeMap<String, String>;

/// The model's pattern for tag keys and values (`TagKey`, `TagValue`).
const TAG_PATTERN: &str = "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)";

/// Whether `text` matches [`TAG_PATTERN`]: letters, separators, numbers and `_.:/=+-@`.
fn tag_text(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c) || c == '\u{a0}'
    })
}

/// Validates tags to add; `existing` counts toward the per-resource limit.
///
/// Reported as the front end reports a map: the whole map (Java's `{k=v}`), then every
/// constraint its keys, and then its values, break.
pub fn validate_new_tags(new: &Tags, existing: &Tags) -> Result<(), ModelError> {
    let mut violations = Violations::default();
    let shown = format!(
        "{{{}}}",
        new.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let bad_key = new
        .keys()
        .any(|k| k.is_empty() || k.chars().count() > TAG_KEY_MAX_LEN || !tag_text(k));
    if bad_key {
        violations.push(
            shown.as_str(),
            "tags",
            format!("Map keys must satisfy constraint: [Member must have length less than or equal to {TAG_KEY_MAX_LEN}, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: {TAG_PATTERN}]"),
        );
    }
    let bad_value = new
        .values()
        .any(|v| v.chars().count() > TAG_VALUE_MAX_LEN || !tag_text(v));
    if bad_value {
        violations.push(
            shown.as_str(),
            "tags",
            format!("Map value must satisfy constraint: [Member must have length less than or equal to {TAG_VALUE_MAX_LEN}, Member must have length greater than or equal to 0, Member must satisfy regular expression pattern: {TAG_PATTERN}]"),
        );
    }
    violations.finish()?;
    if let Some(key) = new
        .keys()
        .find(|k| k.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(ModelError::invalid(format!(
            "The tag key '{key}' is invalid: the prefix 'aws:' is reserved for use by AWS."
        )));
    }
    let total = existing
        .keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if total > TAGS_MAX {
        return Err(ModelError::invalid(
            "Number of tags exceeds resource tag limit.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn limits() {
        assert!(validate_new_tags(&tags(&[("team", "a"), ("empty", "")]), &Tags::new()).is_ok());
        assert!(validate_new_tags(&tags(&[("", "a")]), &Tags::new()).is_err());
        assert!(validate_new_tags(&tags(&[(&"k".repeat(129), "a")]), &Tags::new()).is_err());
        assert!(validate_new_tags(&tags(&[("k", &"v".repeat(257))]), &Tags::new()).is_err());
        assert!(validate_new_tags(&tags(&[("aws:x", "v")]), &Tags::new()).is_err());
        let err = validate_new_tags(&tags(&[("bad!", "v#")]), &Tags::new())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("2 validation errors detected: Value '{bad!=v#}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128"), "{err}");
        assert!(
            validate_new_tags(&tags(&[("Name", "my app: v1.2/x=y+z@w")]), &Tags::new()).is_ok()
        );
        let fifty: Tags = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(validate_new_tags(&Tags::new(), &fifty).is_ok());
        assert!(validate_new_tags(&tags(&[("k0", "overwrite")]), &fifty).is_ok());
        let err = validate_new_tags(&tags(&[("one-more", "")]), &fifty).unwrap_err();
        assert_eq!(
            err,
            ModelError::invalid("Number of tags exceeds resource tag limit.")
        );
    }
}

//! Resource tags and their limits.

use std::collections::BTreeMap;

use crate::error::{ModelError, Violations};
use crate::limits::{TAGS_MAX, TAG_KEY_MAX_LEN, TAG_VALUE_MAX_LEN};

/// A function's tags, ordered by key.
pub type Tags = BTreeMap<String, String>;

/// Validates tags to add; `existing` counts toward the per-resource limit.
pub fn validate_new_tags(new: &Tags, existing: &Tags) -> Result<(), ModelError> {
    let mut violations = Violations::default();
    for (key, value) in new {
        violations.length(key, "tags", 1, TAG_KEY_MAX_LEN);
        if value.chars().count() > TAG_VALUE_MAX_LEN {
            violations.push(
                value.as_str(),
                "tags",
                format!("Member must have length less than or equal to {TAG_VALUE_MAX_LEN}"),
            );
        }
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

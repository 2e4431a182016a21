//! Checking an input against a service model's input shape, as AWS's JSON services check
//! them (required members, enums, lengths, patterns, ranges, list and map sizes), shared by
//! the Application Auto Scaling, EventBridge and Scheduler adapters.
//!
//! Each adapter keeps its shape tables (members, enums, lengths and its own patterns, each
//! a matcher and the model's regular expression); this module walks them and words what
//! fails as the service does: `1 validation error detected: Value … at '…' failed to satisfy
//! constraint: …` (a `ValidationException`), or a `SerializationException` for a member of
//! the wrong JSON type. Where the services word things differently, the adapter says how
//! in its [`Dialect`].

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::protocol::ServiceError;

/// A string pattern of a model, checked without a regex engine (as a whole-value match).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pattern {
    /// The model's regular expression, as messages quote it.
    pub(crate) text: &'static str,
    /// Whether a value matches it.
    pub(crate) matches: fn(&str) -> bool,
}

/// A shape of a model.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Str {
        min: Option<usize>,
        max: Option<usize>,
        pattern: Option<Pattern>,
    },
    Enum(&'static [&'static str]),
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Double,
    Bool,
    /// Epoch seconds.
    Timestamp,
    List {
        member: &'static Kind,
        min: Option<usize>,
        max: Option<usize>,
    },
    /// A map of strings to strings.
    Map {
        key: &'static Kind,
        value: &'static Kind,
        max: Option<usize>,
    },
    Struct(&'static [Member]),
    /// A structure Gust does not look into.
    Opaque,
}

/// A structure's member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static Kind,
    pub(crate) required: bool,
}

pub(crate) const fn member(name: &'static str, kind: &'static Kind) -> Member {
    Member {
        name,
        kind,
        required: false,
    }
}

pub(crate) const fn required(name: &'static str, kind: &'static Kind) -> Member {
    Member {
        name,
        kind,
        required: true,
    }
}

/// A string of `min..=max` characters.
pub(crate) const fn text(min: usize, max: usize) -> Kind {
    Kind::Str {
        min: Some(min),
        max: Some(max),
        pattern: None,
    }
}

/// A string of `min..=max` characters matching `pattern`.
pub(crate) const fn patterned(min: usize, max: usize, pattern: Pattern) -> Kind {
    Kind::Str {
        min: Some(min),
        max: Some(max),
        pattern: Some(pattern),
    }
}

/// How a service words what it refuses, where the services differ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// A (non-null) value as a message quotes it, given its path.
    pub(crate) shown: fn(&Value, &str) -> String,
    /// Whether a string shorter than its shape's minimum is also checked against the
    /// shape's pattern (Scheduler does not).
    pub(crate) pattern_when_short: bool,
}

impl Dialect {
    /// Values as [`shown`] renders them; every pattern checked.
    pub(crate) const PLAIN: Dialect = Dialect {
        shown: plain,
        pattern_when_short: true,
    };
}

fn plain(value: &Value, _path: &str) -> String {
    shown(value)
}

/// A `SerializationException`: `value` is not the JSON type the shape wants.
pub(crate) fn serialization(value: &Value, target: &str) -> ServiceError {
    let found = match value {
        Value::String(_) => "STRING_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
        Value::Null => "NULL_VALUE",
    };
    ServiceError::client(
        400,
        "SerializationException",
        format!("{found} can not be converted to {target}"),
    )
}

/// A value as the service quotes it in a message (Java's rendering).
pub(crate) fn shown(value: &Value) -> String {
    shown_with(value, |text| text)
}

/// A value as [`shown`] renders it, `finish` applied to every part (and the whole).
pub(crate) fn shown_with(value: &Value, finish: fn(String) -> String) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|item| shown_with(item, finish))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", shown_with(v, finish)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Null => "null".into(),
        other => other.to_string(),
    };
    finish(text)
}

/// A member's name in a message path: `ServiceNamespace` is `serviceNamespace`.
fn camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// What a string breaks of a string or enum shape, as the service words it.
fn string_violations(kind: &Kind, text: &str, pattern_when_short: bool) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        Kind::Str { min, max, pattern } => {
            let length = text.chars().count();
            if let Some(max) = max {
                if length > *max {
                    out.push(format!(
                        "Member must have length less than or equal to {max}"
                    ));
                }
            }
            let short = min.filter(|min| length < *min);
            if let Some(min) = short {
                out.push(format!(
                    "Member must have length greater than or equal to {min}"
                ));
            }
            if let Some(pattern) = pattern {
                if (pattern_when_short || short.is_none()) && !(pattern.matches)(text) {
                    out.push(format!(
                        "Member must satisfy regular expression pattern: {}",
                        pattern.text
                    ));
                }
            }
        }
        Kind::Enum(values) if !values.contains(&text) => {
            out.push(format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ));
        }
        _ => {}
    }
    out
}

/// Every constraint of a string shape (for the service's map key and value messages).
fn string_constraints(kind: &Kind) -> Vec<String> {
    let mut out = Vec::new();
    if let Kind::Str { min, max, pattern } = kind {
        if let Some(max) = max {
            out.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
        if let Some(min) = min {
            out.push(format!(
                "Member must have length greater than or equal to {min}"
            ));
        }
        if let Some(pattern) = pattern {
            out.push(format!(
                "Member must satisfy regular expression pattern: {}",
                pattern.text
            ));
        }
    }
    out
}

struct Checker<'d> {
    dialect: &'d Dialect,
    errors: Vec<String>,
}

impl Checker<'_> {
    fn violation(&mut self, value: &Value, path: &str, constraint: &str) {
        let value = match value {
            Value::Null => "null".to_owned(),
            other => format!("'{}'", (self.dialect.shown)(other, path)),
        };
        self.errors.push(format!(
            "Value {value} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A broken bound on a value's `what` (`value`, `length`), the upper one first.
    fn bounds<T: PartialOrd + std::fmt::Display>(
        &mut self,
        (value, path): (&Value, &str),
        what: &str,
        found: T,
        min: Option<T>,
        max: Option<T>,
    ) {
        if let Some(max) = max.filter(|max| found > *max) {
            let constraint = format!("Member must have {what} less than or equal to {max}");
            self.violation(value, path, &constraint);
        }
        if let Some(min) = min.filter(|min| found < *min) {
            let constraint = format!("Member must have {what} greater than or equal to {min}");
            self.violation(value, path, &constraint);
        }
    }

    fn structure(
        &mut self,
        members: &[Member],
        object: &Map<String, Value>,
        path: &str,
    ) -> Result<(), ServiceError> {
        for m in members {
            let here = if path.is_empty() {
                camel(m.name)
            } else {
                format!("{path}.{}", camel(m.name))
            };
            match object.get(m.name) {
                None | Some(Value::Null) => {
                    if m.required {
                        self.violation(&Value::Null, &here, "Member must not be null");
                    }
                }
                Some(value) => self.value(m.kind, value, &here)?,
            }
        }
        Ok(())
    }

    fn value(&mut self, kind: &Kind, value: &Value, path: &str) -> Result<(), ServiceError> {
        match kind {
            Kind::Str { .. } | Kind::Enum(_) => {
                let text = value
                    .as_str()
                    .ok_or_else(|| serialization(value, "a String"))?;
                for constraint in string_violations(kind, text, self.dialect.pattern_when_short) {
                    self.violation(value, path, &constraint);
                }
            }
            Kind::Int { min, max } => {
                let number = integer_of(value).ok_or_else(|| serialization(value, "an Integer"))?;
                self.bounds((value, path), "value", number, *min, *max);
            }
            Kind::Double => {
                value
                    .as_f64()
                    .ok_or_else(|| serialization(value, "a Double"))?;
            }
            Kind::Bool => {
                value
                    .as_bool()
                    .ok_or_else(|| serialization(value, "a Boolean"))?;
            }
            Kind::Timestamp => {
                timestamp_of(value).ok_or_else(|| serialization(value, "a Timestamp"))?;
            }
            Kind::List { member, min, max } => {
                let items = value
                    .as_array()
                    .ok_or_else(|| serialization(value, "a List"))?;
                self.bounds((value, path), "length", items.len(), *min, *max);
                for (index, item) in items.iter().enumerate() {
                    let here = format!("{path}.{}.member", index + 1);
                    if item.is_null() {
                        self.violation(item, &here, "Member must not be null");
                    } else {
                        self.value(member, item, &here)?;
                    }
                }
            }
            Kind::Map {
                key,
                value: item,
                max,
            } => {
                let map = value
                    .as_object()
                    .ok_or_else(|| serialization(value, "a Map"))?;
                self.bounds((value, path), "length", map.len(), None, *max);
                let when_short = self.dialect.pattern_when_short;
                let mut keys_bad = false;
                let mut values_bad = false;
                for (k, v) in map {
                    keys_bad |= !string_violations(key, k, when_short).is_empty();
                    let text = v.as_str().ok_or_else(|| serialization(v, "a String"))?;
                    values_bad |= !string_violations(item, text, when_short).is_empty();
                }
                if keys_bad {
                    let constraint = format!(
                        "Map keys must satisfy constraint: [{}]",
                        string_constraints(key).join(", ")
                    );
                    self.violation(value, path, &constraint);
                }
                if values_bad {
                    let constraint = format!(
                        "Map value must satisfy constraint: [{}]",
                        string_constraints(item).join(", ")
                    );
                    self.violation(value, path, &constraint);
                }
            }
            Kind::Struct(members) => {
                let object = value
                    .as_object()
                    .ok_or_else(|| serialization(value, "a Structure"))?;
                self.structure(members, object, path)?;
            }
            Kind::Opaque => {
                value
                    .as_object()
                    .ok_or_else(|| serialization(value, "a Structure"))?;
            }
        }
        Ok(())
    }
}

/// An integer member (the service truncates a fractional number), within Java's `int`.
pub(crate) fn integer_of(value: &Value) -> Option<i64> {
    let number = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(f64::trunc).map(|f| f as i64))?,
        _ => return None,
    };
    i32::try_from(number).ok().map(i64::from)
}

/// A timestamp member: epoch seconds.
pub(crate) fn timestamp_of(value: &Value) -> Option<OffsetDateTime> {
    let seconds = value.as_f64().filter(|s| s.is_finite())?;
    OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9).round() as i128).ok()
}

/// Checks `input` (an object, or null for none) against an operation's input shape.
pub(crate) fn check(
    members: &[Member],
    input: &Value,
    dialect: &Dialect,
) -> Result<(), ServiceError> {
    let empty = Map::new();
    let object = match input {
        Value::Null => &empty,
        Value::Object(object) => object,
        other => return Err(serialization(other, "a Structure")),
    };
    let mut checker = Checker {
        dialect,
        errors: Vec::new(),
    };
    checker.structure(members, object, "")?;
    match checker.errors.len() {
        0 => Ok(()),
        1 => Err(ServiceError::client(
            400,
            "ValidationException",
            format!("1 validation error detected: {}", checker.errors[0]),
        )),
        n => Err(ServiceError::client(
            400,
            "ValidationException",
            format!(
                "{n} validation errors detected: {}",
                checker.errors.join("; ")
            ),
        )),
    }
}

/// Reading members of an input that `check` has already accepted.
pub(crate) mod read {
    use std::collections::BTreeMap;

    use serde_json::Value;
    use time::OffsetDateTime;

    use super::{integer_of, timestamp_of};

    pub(crate) fn string<'v>(input: &'v Value, name: &str) -> Option<&'v str> {
        input.get(name).and_then(Value::as_str)
    }

    pub(crate) fn owned(input: &Value, name: &str) -> Option<String> {
        string(input, name).map(str::to_owned)
    }

    pub(crate) fn integer(input: &Value, name: &str) -> Option<i64> {
        input.get(name).and_then(integer_of)
    }

    pub(crate) fn boolean(input: &Value, name: &str) -> Option<bool> {
        input.get(name).and_then(Value::as_bool)
    }

    pub(crate) fn timestamp(input: &Value, name: &str) -> Option<OffsetDateTime> {
        input.get(name).and_then(timestamp_of)
    }

    pub(crate) fn object<'v>(input: &'v Value, name: &str) -> Option<&'v Value> {
        input.get(name).filter(|v| v.is_object())
    }

    pub(crate) fn strings(input: &Value, name: &str) -> Vec<String> {
        input
            .get(name)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn string_map(input: &Value, name: &str) -> Option<BTreeMap<String, String>> {
        input.get(name).and_then(Value::as_object).map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
    }
}

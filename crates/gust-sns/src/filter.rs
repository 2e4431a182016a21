//! Subscription filter policies: SNS's matching language over message attributes
//! (`FilterPolicyScope=MessageAttributes`, the default) or over the JSON message body
//! (`MessageBody`, with nested keys).
//!
//! Semantics: the keys of a policy object are ANDed; the values in a key's array are
//! ORed; `$or` holds alternatives of policy objects. A value with several elements (a
//! `String.Array` attribute, a JSON array in the body) matches when one element does.
//! Matchers: exact strings, numbers, booleans and null; `prefix`, `suffix`,
//! `equals-ignore-case`, `anything-but` (values, `prefix`, `suffix`,
//! `equals-ignore-case`), `numeric` comparisons and ranges, `exists`, and `cidr`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::error::SnsError;
use crate::message::MessageAttributes;

/// Most keys (leaf attribute names or body paths) in one policy.
const MAX_KEYS: usize = 5;
/// Most value combinations (the product of the array sizes).
const MAX_COMBINATIONS: usize = 150;

/// What a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterScope {
    /// The message attributes.
    #[default]
    MessageAttributes,
    /// The message body, parsed as a JSON object.
    MessageBody,
}

impl FilterScope {
    /// Reads `FilterPolicyScope`.
    pub fn parse(value: &str) -> Result<Self, SnsError> {
        match value {
            "MessageAttributes" => Ok(FilterScope::MessageAttributes),
            "MessageBody" => Ok(FilterScope::MessageBody),
            other => Err(SnsError::invalid(format!(
                "Attributes Reason: FilterPolicyScope: Invalid value [{other}]. Please use either MessageBody or MessageAttributes"
            ))),
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterScope::MessageAttributes => "MessageAttributes",
            FilterScope::MessageBody => "MessageBody",
        }
    }
}

/// A value a matcher compares with.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

impl Literal {
    fn from_json(value: &Value) -> Option<Literal> {
        match value {
            Value::String(s) => Some(Literal::Str(s.clone())),
            Value::Number(n) => n.as_f64().map(Literal::Num),
            Value::Bool(b) => Some(Literal::Bool(*b)),
            Value::Null => Some(Literal::Null),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Exclusion {
    Values(Vec<Literal>),
    Prefix(String),
    Suffix(String),
    IgnoreCase(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Literal),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Exclusion),
    Numeric {
        lower: Option<(f64, bool)>,
        upper: Option<(f64, bool)>,
        equal: Option<f64>,
    },
    Exists(bool),
    Cidr(IpAddr, u8),
}

/// Keys ANDed, `$or` alternatives each of which must hold one branch.
#[derive(Debug, Clone, PartialEq, Default)]
struct Conjunction {
    leaves: Vec<(Vec<String>, Vec<Matcher>)>,
    alternatives: Vec<Vec<Conjunction>>,
}

/// A parsed, validated filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    root: Conjunction,
    scope: FilterScope,
}

fn policy_error(text: impl std::fmt::Display) -> SnsError {
    SnsError::invalid(format!("FilterPolicy: {text}"))
}

impl FilterPolicy {
    /// Parses and validates a policy for `scope`, with SNS's messages.
    pub fn parse(text: &str, scope: FilterScope) -> Result<Self, SnsError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| policy_error(format!("failed to parse JSON. {e}")))?;
        let Value::Object(object) = value else {
            return Err(policy_error("Filter policy must be a JSON object"));
        };
        let root = parse_object(&object, &[], scope)?;
        let mut keys = BTreeSet::new();
        root.keys(&mut keys);
        if keys.len() > MAX_KEYS {
            return Err(policy_error(format!(
                "Filter policy can not have more than {MAX_KEYS} keys"
            )));
        }
        if root.combinations() > MAX_COMBINATIONS {
            return Err(policy_error("Filter policy is too complex"));
        }
        Ok(FilterPolicy { root, scope })
    }

    /// The scope it was parsed for.
    pub fn scope(&self) -> FilterScope {
        self.scope
    }

    /// Whether a message with these attributes and this body passes.
    pub fn matches(&self, attributes: &MessageAttributes, body: &str) -> bool {
        if self.root == Conjunction::default() {
            return true;
        }
        match self.scope {
            FilterScope::MessageAttributes => self
                .root
                .holds(&|path: &[String]| attribute_values(attributes, path)),
            FilterScope::MessageBody => match serde_json::from_str::<Value>(body) {
                Ok(body @ Value::Object(_)) => {
                    self.root.holds(&|path: &[String]| body_values(&body, path))
                }
                _ => false,
            },
        }
    }
}

fn parse_object(
    object: &Map<String, Value>,
    path: &[String],
    scope: FilterScope,
) -> Result<Conjunction, SnsError> {
    let mut conjunction = Conjunction::default();
    for (key, value) in object {
        if key == "$or" {
            let Value::Array(branches) = value else {
                return Err(policy_error("\"$or\" must be an array"));
            };
            if branches.len() < 2 {
                return Err(policy_error("Or statement must have at least 2 elements"));
            }
            let mut parsed = Vec::with_capacity(branches.len());
            for branch in branches {
                let Value::Object(branch) = branch else {
                    return Err(policy_error("Or statement elements must be objects"));
                };
                parsed.push(parse_object(branch, path, scope)?);
            }
            conjunction.alternatives.push(parsed);
            continue;
        }
        let mut key_path = path.to_vec();
        key_path.push(key.clone());
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(policy_error("Empty arrays are not allowed"));
                }
                let matchers = items
                    .iter()
                    .map(parse_matcher)
                    .collect::<Result<Vec<_>, _>>()?;
                conjunction.leaves.push((key_path, matchers));
            }
            Value::Object(nested) => {
                if scope == FilterScope::MessageAttributes {
                    return Err(policy_error(
                        "Filter policy scope MessageAttributes does not support nested filter policy",
                    ));
                }
                let inner = parse_object(nested, &key_path, scope)?;
                conjunction.leaves.extend(inner.leaves);
                conjunction.alternatives.extend(inner.alternatives);
            }
            _ => {
                return Err(policy_error(format!(
                    "\"{key}\" must be an object or an array"
                )))
            }
        }
    }
    Ok(conjunction)
}

fn parse_matcher(item: &Value) -> Result<Matcher, SnsError> {
    if let Some(literal) = Literal::from_json(item) {
        return Ok(Matcher::Exact(literal));
    }
    let Value::Object(object) = item else {
        return Err(policy_error(
            "Match value must be String, number, true, false, or null",
        ));
    };
    if object.len() != 1 {
        return Err(policy_error("Only one key allowed in match expression"));
    }
    let Some((operator, operand)) = object.iter().next() else {
        return Err(policy_error("Only one key allowed in match expression"));
    };
    let string = |what: &str| {
        operand
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| policy_error(format!("{what} match pattern must be a string")))
    };
    match operator.as_str() {
        "prefix" => Ok(Matcher::Prefix(string("prefix")?)),
        "suffix" => Ok(Matcher::Suffix(string("suffix")?)),
        "equals-ignore-case" => Ok(Matcher::EqualsIgnoreCase(string("equals-ignore-case")?)),
        "exists" => match operand {
            Value::Bool(b) => Ok(Matcher::Exists(*b)),
            _ => Err(policy_error(
                "exists match pattern must be either true or false.",
            )),
        },
        "anything-but" => parse_anything_but(operand).map(Matcher::AnythingBut),
        "numeric" => parse_numeric(operand),
        "cidr" => parse_cidr(operand),
        other => Err(policy_error(format!("Unrecognized match type {other}"))),
    }
}

fn parse_anything_but(operand: &Value) -> Result<Exclusion, SnsError> {
    let invalid =
        || policy_error("Value of anything-but must be an array or single string/number value.");
    match operand {
        Value::String(_) | Value::Number(_) => {
            Ok(Exclusion::Values(vec![
                Literal::from_json(operand).ok_or_else(invalid)?
            ]))
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Err(policy_error("Empty arrays are not allowed"));
            }
            items
                .iter()
                .map(|i| match i {
                    Value::String(_) | Value::Number(_) => {
                        Literal::from_json(i).ok_or_else(invalid)
                    }
                    _ => Err(invalid()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Exclusion::Values)
        }
        Value::Object(object) if object.len() == 1 => {
            let Some((operator, inner)) = object.iter().next() else {
                return Err(invalid());
            };
            match (operator.as_str(), inner) {
                ("prefix", Value::String(p)) => Ok(Exclusion::Prefix(p.clone())),
                ("suffix", Value::String(s)) => Ok(Exclusion::Suffix(s.clone())),
                ("equals-ignore-case", Value::String(s)) => {
                    Ok(Exclusion::IgnoreCase(vec![s.clone()]))
                }
                ("equals-ignore-case", Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).ok_or_else(invalid))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Exclusion::IgnoreCase),
                ("prefix" | "suffix" | "equals-ignore-case", _) => Err(policy_error(format!(
                    "{operator} match pattern must be a string"
                ))),
                (other, _) => Err(policy_error(format!(
                    "Unsupported anything-but pattern: {other}"
                ))),
            }
        }
        _ => Err(invalid()),
    }
}

fn parse_numeric(operand: &Value) -> Result<Matcher, SnsError> {
    let Value::Array(items) = operand else {
        return Err(policy_error("Value of numeric must be an array."));
    };
    if items.is_empty() || items.len() % 2 != 0 {
        return Err(policy_error("Invalid member in numeric match: ]"));
    }
    if items.len() > 4 {
        return Err(policy_error("Too many elements in numeric expression"));
    }
    let (mut lower, mut upper, mut equal) = (None, None, None);
    for pair in items.chunks(2) {
        let operator = pair[0].as_str().ok_or_else(|| {
            policy_error(format!("Unrecognized numeric range operator: {}", pair[0]))
        })?;
        let value = pair[1]
            .as_f64()
            .ok_or_else(|| policy_error(format!("Value of {operator} must be numeric")))?;
        let slot = match operator {
            "=" => {
                if items.len() > 2 {
                    return Err(policy_error("Too many elements in numeric expression"));
                }
                equal = Some(value);
                continue;
            }
            ">" | ">=" => &mut lower,
            "<" | "<=" => &mut upper,
            other => {
                return Err(policy_error(format!(
                    "Unrecognized numeric range operator: {other}"
                )))
            }
        };
        if slot.is_some() {
            return Err(policy_error(format!(
                "Bad numeric range operator: {operator}"
            )));
        }
        *slot = Some((value, operator.ends_with('=')));
    }
    if let (Some((bottom, _)), Some((top, _))) = (lower, upper) {
        if bottom >= top {
            return Err(policy_error("Bottom must be less than top"));
        }
    }
    Ok(Matcher::Numeric {
        lower,
        upper,
        equal,
    })
}

fn parse_cidr(operand: &Value) -> Result<Matcher, SnsError> {
    let malformed = || policy_error(format!("Malformed CIDR, one '/' required: {operand}"));
    let text = operand.as_str().ok_or_else(malformed)?;
    let (address, bits) = text.split_once('/').ok_or_else(malformed)?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| policy_error(format!("Nonstandard IP address: {address}")))?;
    let bits: u8 = bits.parse().map_err(|_| malformed())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return Err(policy_error(format!("Invalid prefix length: {bits}")));
    }
    Ok(Matcher::Cidr(address, bits))
}

impl Conjunction {
    fn keys(&self, out: &mut BTreeSet<Vec<String>>) {
        for (path, _) in &self.leaves {
            out.insert(path.clone());
        }
        for branches in &self.alternatives {
            for branch in branches {
                branch.keys(out);
            }
        }
    }

    fn combinations(&self) -> usize {
        let leaves = self
            .leaves
            .iter()
            .fold(1usize, |acc, (_, m)| acc.saturating_mul(m.len()));
        self.alternatives.iter().fold(leaves, |acc, branches| {
            let sum = branches
                .iter()
                .fold(0usize, |s, b| s.saturating_add(b.combinations()));
            acc.saturating_mul(sum)
        })
    }

    /// `values(path)`: the values at `path`, `None` when the key is absent.
    fn holds(&self, values: &dyn Fn(&[String]) -> Option<Vec<Literal>>) -> bool {
        self.leaves.iter().all(|(path, matchers)| {
            let found = values(path);
            matchers.iter().any(|m| m.accepts(found.as_deref()))
        }) && self
            .alternatives
            .iter()
            .all(|branches| branches.iter().any(|b| b.holds(values)))
    }
}

impl Matcher {
    fn accepts(&self, found: Option<&[Literal]>) -> bool {
        match (self, found) {
            (Matcher::Exists(wanted), found) => found.is_some() == *wanted,
            (_, None) => false,
            (matcher, Some(values)) => values.iter().any(|v| matcher.accepts_one(v)),
        }
    }

    fn accepts_one(&self, value: &Literal) -> bool {
        match (self, value) {
            (Matcher::Exact(expected), value) => expected == value,
            (Matcher::Prefix(p), Literal::Str(s)) => s.starts_with(p.as_str()),
            (Matcher::Suffix(p), Literal::Str(s)) => s.ends_with(p.as_str()),
            (Matcher::EqualsIgnoreCase(p), Literal::Str(s)) => p.to_lowercase() == s.to_lowercase(),
            (Matcher::AnythingBut(exclusion), value) => match (exclusion, value) {
                (Exclusion::Values(excluded), value) => !excluded.contains(value),
                (Exclusion::Prefix(p), Literal::Str(s)) => !s.starts_with(p.as_str()),
                (Exclusion::Suffix(p), Literal::Str(s)) => !s.ends_with(p.as_str()),
                (Exclusion::IgnoreCase(excluded), Literal::Str(s)) => {
                    let s = s.to_lowercase();
                    !excluded.iter().any(|e| e.to_lowercase() == s)
                }
                _ => false,
            },
            (
                Matcher::Numeric {
                    lower,
                    upper,
                    equal,
                },
                Literal::Num(n),
            ) => {
                equal.is_none_or(|e| *n == e)
                    && lower.is_none_or(|(b, inclusive)| if inclusive { *n >= b } else { *n > b })
                    && upper.is_none_or(|(t, inclusive)| if inclusive { *n <= t } else { *n < t })
            }
            (Matcher::Cidr(network, bits), Literal::Str(s)) => s
                .parse::<IpAddr>()
                .is_ok_and(|address| in_network(address, *network, *bits)),
            _ => false,
        }
    }
}

fn in_network(address: IpAddr, network: IpAddr, bits: u8) -> bool {
    let (address, network, width) = match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(n)), 32u32)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128u32),
        _ => return false,
    };
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (address >> shift) == (network >> shift)
}

fn attribute_values(attributes: &MessageAttributes, path: &[String]) -> Option<Vec<Literal>> {
    let [name] = path else { return None };
    let attribute = attributes.get(name)?;
    let text = attribute.string_value.as_deref().unwrap_or_default();
    Some(match attribute.data_type.as_str() {
        "String" => vec![Literal::Str(text.to_owned())],
        "Number" => text
            .trim()
            .parse::<f64>()
            .map(Literal::Num)
            .into_iter()
            .collect(),
        "String.Array" => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items.iter().filter_map(Literal::from_json).collect(),
            _ => Vec::new(),
        },
        // Binary attributes exist but match no value.
        _ => Vec::new(),
    })
}

fn body_values(body: &Value, path: &[String]) -> Option<Vec<Literal>> {
    let mut current = vec![body];
    for key in path {
        let mut next = Vec::new();
        for value in current {
            collect_key(value, key, &mut next);
        }
        current = next;
    }
    let mut leaves = Vec::new();
    for value in current {
        flatten(value, &mut leaves);
    }
    (!leaves.is_empty()).then_some(leaves)
}

/// `key` of an object, or of every object in an array (arrays of objects are searched).
fn collect_key<'a>(value: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if let Some(found) = map.get(key) {
                out.push(found);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_key(item, key, out);
            }
        }
        _ => {}
    }
}

fn flatten(value: &Value, out: &mut Vec<Literal>) {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, out);
            }
        }
        Value::Object(_) => {}
        other => out.extend(Literal::from_json(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageAttribute;

    fn attrs(pairs: &[(&str, &str, &str)]) -> MessageAttributes {
        pairs
            .iter()
            .map(|(name, kind, value)| {
                (
                    (*name).to_owned(),
                    MessageAttribute {
                        data_type: (*kind).to_owned(),
                        string_value: Some((*value).to_owned()),
                        binary_value: None,
                    },
                )
            })
            .collect()
    }

    fn on_attributes(policy: &str, pairs: &[(&str, &str, &str)]) -> bool {
        FilterPolicy::parse(policy, FilterScope::MessageAttributes)
            .unwrap()
            .matches(&attrs(pairs), "")
    }

    fn on_body(policy: &str, body: &str) -> bool {
        FilterPolicy::parse(policy, FilterScope::MessageBody)
            .unwrap()
            .matches(&MessageAttributes::new(), body)
    }

    fn error(policy: &str, scope: FilterScope) -> String {
        FilterPolicy::parse(policy, scope).unwrap_err().to_string()
    }

    #[test]
    fn exact_values_are_ored_and_keys_anded() {
        let policy = r#"{"color": ["red", "blue"], "size": [10]}"#;
        assert!(on_attributes(
            policy,
            &[("color", "String", "red"), ("size", "Number", "10.0")]
        ));
        assert!(!on_attributes(policy, &[("color", "String", "red")]));
        assert!(!on_attributes(
            policy,
            &[("color", "String", "green"), ("size", "Number", "10")]
        ));
        // A number policy value matches only Number attributes.
        assert!(!on_attributes(
            policy,
            &[("color", "String", "red"), ("size", "String", "10")]
        ));
        assert!(on_attributes("{}", &[]));
    }

    #[test]
    fn string_arrays_match_any_element() {
        let policy = r#"{"tags": ["b", 3, true]}"#;
        assert!(on_attributes(
            policy,
            &[("tags", "String.Array", r#"["a","b"]"#)]
        ));
        assert!(on_attributes(policy, &[("tags", "String.Array", "[1,3]")]));
        assert!(on_attributes(policy, &[("tags", "String.Array", "[true]")]));
        assert!(!on_attributes(
            policy,
            &[("tags", "String.Array", r#"["a","c"]"#)]
        ));
    }

    #[test]
    fn string_operators() {
        let p = r#"{"k": [{"prefix": "ab"}, {"suffix": ".png"}, {"equals-ignore-case": "HeLLo"}]}"#;
        for (value, expected) in [
            ("abc", true),
            ("x.png", true),
            ("hello", true),
            ("zzz", false),
        ] {
            assert_eq!(
                on_attributes(p, &[("k", "String", value)]),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn anything_but_forms() {
        let values = r#"{"k": [{"anything-but": ["a", "b"]}]}"#;
        assert!(on_attributes(values, &[("k", "String", "c")]));
        assert!(!on_attributes(values, &[("k", "String", "a")]));
        assert!(!on_attributes(values, &[]), "absent keys never match");
        let single = r#"{"k": [{"anything-but": 5}]}"#;
        assert!(!on_attributes(single, &[("k", "Number", "5")]));
        assert!(on_attributes(single, &[("k", "Number", "6")]));
        let prefix = r#"{"k": [{"anything-but": {"prefix": "tmp-"}}]}"#;
        assert!(on_attributes(prefix, &[("k", "String", "real")]));
        assert!(!on_attributes(prefix, &[("k", "String", "tmp-1")]));
        let ignore = r#"{"k": [{"anything-but": {"equals-ignore-case": ["X"]}}]}"#;
        assert!(!on_attributes(ignore, &[("k", "String", "x")]));
    }

    #[test]
    fn numeric_ranges() {
        let range = r#"{"p": [{"numeric": [">", 0, "<=", 150]}]}"#;
        for (value, expected) in [("0", false), ("0.5", true), ("150", true), ("151", false)] {
            assert_eq!(
                on_attributes(range, &[("p", "Number", value)]),
                expected,
                "{value}"
            );
        }
        let equal = r#"{"p": [{"numeric": ["=", 3e2]}]}"#;
        assert!(on_attributes(equal, &[("p", "Number", "300")]));
        assert!(!on_attributes(equal, &[("p", "String", "300")]));
    }

    #[test]
    fn exists_and_cidr() {
        let present = r#"{"k": [{"exists": true}]}"#;
        let absent = r#"{"k": [{"exists": false}]}"#;
        assert!(on_attributes(present, &[("k", "String", "v")]));
        assert!(!on_attributes(present, &[]));
        assert!(on_attributes(absent, &[]));
        assert!(!on_attributes(absent, &[("k", "String", "v")]));
        let cidr = r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#;
        assert!(on_attributes(cidr, &[("ip", "String", "10.0.0.255")]));
        assert!(!on_attributes(cidr, &[("ip", "String", "10.0.1.1")]));
    }

    #[test]
    fn or_alternatives() {
        let policy = r#"{"source": ["shop"], "$or": [{"kind": ["order"]}, {"total": [{"numeric": [">", 100]}]}]}"#;
        assert!(on_attributes(
            policy,
            &[("source", "String", "shop"), ("kind", "String", "order")]
        ));
        assert!(on_attributes(
            policy,
            &[("source", "String", "shop"), ("total", "Number", "101")]
        ));
        assert!(!on_attributes(
            policy,
            &[("source", "String", "shop"), ("total", "Number", "5")]
        ));
    }

    #[test]
    fn body_scope_nested_keys_and_arrays() {
        let policy = r#"{"store": {"city": ["Paris"], "items": {"sku": [{"prefix": "A"}]}}, "paid": [true]}"#;
        let body = r#"{"store": {"city": "Paris", "items": [{"sku": "B1"}, {"sku": "A7"}]}, "paid": true}"#;
        assert!(on_body(policy, body));
        let other = r#"{"store": {"city": "Rome", "items": [{"sku": "A7"}]}, "paid": true}"#;
        assert!(!on_body(policy, other));
        assert!(!on_body(policy, "not json"));
        assert!(on_body(r#"{"n": [null]}"#, r#"{"n": null}"#));
        assert!(on_body(
            r#"{"a": {"b": [{"exists": false}]}}"#,
            r#"{"a": {"c": 1}}"#
        ));
        assert!(on_body(r#"{"tags": ["x"]}"#, r#"{"tags": ["w", "x"]}"#));
    }

    #[test]
    fn validation_messages() {
        use FilterScope::*;
        assert_eq!(
            error(r#"{"a": {"b": ["c"]}}"#, MessageAttributes),
            "Invalid parameter: FilterPolicy: Filter policy scope MessageAttributes does not support nested filter policy"
        );
        assert_eq!(
            error(r#"{"a": [{"nope": 1}]}"#, MessageAttributes),
            "Invalid parameter: FilterPolicy: Unrecognized match type nope"
        );
        assert_eq!(
            error(r#"{"a": []}"#, MessageAttributes),
            "Invalid parameter: FilterPolicy: Empty arrays are not allowed"
        );
        assert_eq!(
            error(r#"{"a": [{"exists": "yes"}]}"#, MessageAttributes),
            "Invalid parameter: FilterPolicy: exists match pattern must be either true or false."
        );
        assert_eq!(
            error(
                r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#,
                MessageAttributes
            ),
            "Invalid parameter: FilterPolicy: Bottom must be less than top"
        );
        assert_eq!(
            error(r#"{"a": [{"numeric": [">", "x"]}]}"#, MessageAttributes),
            "Invalid parameter: FilterPolicy: Value of > must be numeric"
        );
        assert_eq!(
            error(r#"{"a": "b"}"#, MessageBody),
            "Invalid parameter: FilterPolicy: \"a\" must be an object or an array"
        );
        assert_eq!(
            error(
                r#"{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}"#,
                MessageAttributes
            ),
            "Invalid parameter: FilterPolicy: Filter policy can not have more than 5 keys"
        );
        let many: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let big = format!(r#"{{"a": {0:?}, "b": {0:?}}}"#, many);
        assert_eq!(
            error(&big, MessageAttributes),
            "Invalid parameter: FilterPolicy: Filter policy is too complex"
        );
        assert!(error("{", MessageAttributes)
            .starts_with("Invalid parameter: FilterPolicy: failed to parse JSON"));
    }
}

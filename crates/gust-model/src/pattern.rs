//! EventBridge's event pattern language: one implementation for rules (`gust-events`) and
//! for Lambda event-source-mapping filters.
//!
//! A pattern is a JSON object whose leaves are arrays of match values; an event matches when
//! every field the pattern names matches one of the field's values (`$or` makes branches).
//! The semantics and the validation messages follow `aws/event-ruler`, the library
//! EventBridge matches with:
//!
//! - exact strings, numbers (compared numerically: `5` equals `5.0`), `true`, `false`,
//!   `null`; a string that is an IP address also matches other spellings of that address;
//! - `prefix` and `suffix` (each also `{"equals-ignore-case": …}`), `equals-ignore-case`,
//!   `wildcard` (`*` is any run of characters; `\*` and `\\` escape), `anything-but` (a value,
//!   a list of strings or of numbers, or `{"prefix" | "suffix" | "equals-ignore-case" |
//!   "wildcard": value-or-list}`), `numeric` (`=`, or `>`/`>=` and/or `<`/`<=`), `exists`,
//!   `cidr` (IPv4 and IPv6), and `$or` (an array of at least two objects);
//! - arrays in the event: a field matches if any element matches, and the fields a match
//!   uses must come from the same element of any array they share ("array consistency");
//! - nested objects are paths joined with `.`, so `{"a": {"b": …}}` and `{"a.b": …}` name the
//!   same field (Ruler's documented quirk); `exists` only sees leaves, so a field holding an
//!   object does not "exist" and one holding `[]` neither.
//!
//! [`EventPattern::parse`] rejects what Ruler rejects, with its reasons, wrapped as EventBridge
//! words `InvalidEventPatternException` (`Event pattern is not valid. Reason: …`). The
//! per-service length limits (a rule's pattern: [`MAX_RULE_PATTERN_LENGTH`]) are the caller's
//! to apply; the wildcard complexity limit is applied here.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// EventBridge's quota on a rule's event pattern: 2048 characters.
pub const MAX_RULE_PATTERN_LENGTH: usize = 2048;

/// The largest magnitude a number in a numeric comparison may have (Ruler's
/// `ComparableNumber`: ±5.0e9, six decimal places).
pub const NUMERIC_LIMIT: f64 = 5e9;

/// The most wildcard prefixes one input value may keep alive at once, per field (Ruler's
/// `MachineComplexityEvaluator` measure). EventBridge does not publish its limit; this one
/// accepts every documented example and rejects patterns whose matching cost explodes.
pub const MAX_WILDCARD_COMPLEXITY: usize = 100;

/// Matching gives up on array consistency past this many steps and falls back to matching
/// each field on its own (what Ruler's older matcher did), so no event can make it slow.
const SEARCH_BUDGET: usize = 100_000;

/// Why a pattern is not valid. `Display` is EventBridge's message; [`PatternError::reason`]
/// is Ruler's reason alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The text is not JSON.
    #[error("Event pattern is not valid. Reason: {0}")]
    Json(String),
    /// The JSON breaks a rule of the pattern language.
    #[error("Event pattern is not valid. Reason: {0}")]
    Invalid(String),
    /// Its wildcards would make matching too expensive.
    #[error("Event pattern is not valid. Reason: Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character")]
    TooComplex,
}

impl PatternError {
    /// What is wrong, without EventBridge's preamble.
    pub fn reason(&self) -> String {
        match self {
            PatternError::Json(reason) | PatternError::Invalid(reason) => reason.clone(),
            PatternError::TooComplex => "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character".into(),
        }
    }
}

fn invalid<T>(reason: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::Invalid(reason.into()))
}

// ---------------------------------------------------------------------------------------
// JSON with its members in document order (Ruler reads tokens in order, so which problem
// it reports first depends on it; serde_json's map sorts).

#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The token's text, as Ruler quotes it in messages.
    fn text(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.to_string(),
            Json::String(s) => s.clone(),
            Json::Array(_) => "[".into(),
            Json::Object(_) => "{".into(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JsonVisitor;

        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Json;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::String(v))
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Json>()? {
                    members.push((key, value));
                }
                Ok(Json::Object(members))
            }
        }

        deserializer.deserialize_any(JsonVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// The compiled pattern.

/// A parsed, validated event pattern.
#[derive(Debug, Clone)]
pub struct EventPattern {
    /// The `$or` branches; the pattern matches when any does. Each is its fields by path.
    branches: Vec<Vec<FieldRule>>,
    /// Every path a branch names, and each path's `.`-prefixes: the parts of an event that
    /// matching needs to look at.
    wanted: HashSet<String>,
}

#[derive(Debug, Clone)]
struct FieldRule {
    path: String,
    matchers: Vec<Matcher>,
    /// `{"exists": false}` is among the values: the field may be absent.
    absent_ok: bool,
}

#[derive(Debug, Clone)]
enum Matcher {
    String(String),
    /// A string that is an IP address: any spelling of the same address.
    Ip(String, Vec<u8>),
    Number {
        value: f64,
        text: String,
    },
    Bool(bool),
    Null,
    Prefix(String),
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Range),
    Exists,
    Cidr {
        low: Vec<u8>,
        high: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    Prefixes(Vec<String>),
    Suffixes(Vec<String>),
    IgnoreCase(Vec<String>),
    Wildcards(Vec<Wildcard>),
}

#[derive(Debug, Clone, Copy)]
struct Bound {
    value: f64,
    open: bool,
}

#[derive(Debug, Clone, Copy)]
struct Range {
    bottom: Option<Bound>,
    top: Option<Bound>,
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        let above = self
            .bottom
            .is_none_or(|b| if b.open { x > b.value } else { x >= b.value });
        let below = self
            .top
            .is_none_or(|t| if t.open { x < t.value } else { x <= t.value });
        above && below
    }
}

/// A wildcard value: literal characters and `*`s.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wildcard {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Token {
    Char(char),
    Star,
}

impl Wildcard {
    /// Ruler's `WildcardParser`: no `**`; a backslash escapes only `*` or `\`. Positions are
    /// bytes of the value as Ruler quotes it (one more than in the bare text).
    fn parse(text: &str) -> Result<Wildcard, PatternError> {
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '*' => {
                    if bytes.get(at + 1) == Some(&b'*') {
                        return invalid(format!(
                            "Consecutive wildcard characters at pos {}",
                            at + 1
                        ));
                    }
                    tokens.push(Token::Star);
                }
                '\\' => match chars.peek() {
                    Some(&(_, next @ ('*' | '\\'))) => {
                        tokens.push(Token::Char(next));
                        chars.next();
                    }
                    _ => return invalid(format!("Invalid escape character at pos {}", at + 1)),
                },
                other => tokens.push(Token::Char(other)),
            }
        }
        Ok(Wildcard {
            text: text.to_owned(),
            tokens,
        })
    }

    fn matches(&self, value: &str) -> bool {
        let input: Vec<char> = value.chars().collect();
        let tokens = &self.tokens;
        let (mut t, mut i) = (0usize, 0usize);
        // The last star seen, and the input position its match currently ends at.
        let mut star: Option<(usize, usize)> = None;
        while i < input.len() {
            match tokens.get(t) {
                Some(Token::Char(c)) if *c == input[i] => {
                    t += 1;
                    i += 1;
                }
                Some(Token::Star) => {
                    star = Some((t, i));
                    t += 1;
                }
                _ => match star {
                    Some((star_at, matched_to)) => {
                        t = star_at + 1;
                        i = matched_to + 1;
                        star = Some((star_at, matched_to + 1));
                    }
                    None => return false,
                },
            }
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

// ---------------------------------------------------------------------------------------
// Parsing.

/// Field names Ruler reserves inside `$or` branches.
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

type Branch = Vec<(String, Vec<Matcher>, bool)>;

impl EventPattern {
    /// Parses and validates a pattern as EventBridge does.
    pub fn parse(json: &str) -> Result<EventPattern, PatternError> {
        let root: Json = serde_json::from_str(json)
            .map_err(|e| PatternError::Json(format!("Filter is not valid JSON: {e}")))?;
        let Json::Object(members) = root else {
            return invalid("Filter is not an object");
        };
        let mut branches: Vec<Branch> = Vec::new();
        parse_object(&mut branches, "", &members, false)?;
        let branches: Vec<Vec<FieldRule>> = branches
            .into_iter()
            .map(|branch| {
                branch
                    .into_iter()
                    .map(|(path, matchers, absent_ok)| FieldRule {
                        path,
                        matchers,
                        absent_ok,
                    })
                    .collect()
            })
            .collect();
        check_complexity(&branches)?;
        let mut wanted = HashSet::new();
        for rule in branches.iter().flatten() {
            let path = rule.path.as_str();
            for (at, _) in path.match_indices('.') {
                wanted.insert(path[..at].to_owned());
            }
            wanted.insert(path.to_owned());
        }
        Ok(EventPattern { branches, wanted })
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Value) -> bool {
        let mut fields = Fields::default();
        fields.flatten(event, "", &mut Vec::new(), &self.wanted);
        self.branches
            .iter()
            .any(|branch| branch_matches(branch, &fields))
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn parse_object(
    branches: &mut Vec<Branch>,
    path: &str,
    members: &[(String, Json)],
    inside_or: bool,
) -> Result<(), PatternError> {
    if members.is_empty() {
        return invalid("Empty objects are not allowed");
    }
    for (name, value) in members {
        if name == "$or" {
            parse_or(branches, path, value)?;
            continue;
        }
        if inside_or && RESERVED_IN_OR.contains(&name.as_str()) {
            return invalid(format!(
                "{name} is Ruler reserved fieldName which cannot be used inside $or."
            ));
        }
        match value {
            Json::Object(inner) => parse_object(branches, &join(path, name), inner, inside_or)?,
            Json::Array(values) => {
                let (matchers, absent_ok) = parse_values(values)?;
                if branches.is_empty() {
                    branches.push(Vec::new());
                }
                let full = join(path, name);
                for branch in branches.iter_mut() {
                    // A later mention of a path replaces an earlier one.
                    branch.retain(|(p, _, _)| *p != full);
                    branch.push((full.clone(), matchers.clone(), absent_ok));
                }
            }
            _ => return invalid(format!("\"{name}\" must be an object or an array")),
        }
    }
    Ok(())
}

fn parse_or(branches: &mut Vec<Branch>, path: &str, value: &Json) -> Result<(), PatternError> {
    let Json::Array(alternatives) = value else {
        return invalid("It must be an Array followed with $or.");
    };
    let current = std::mem::take(branches);
    for alternative in alternatives {
        let Json::Object(members) = alternative else {
            return invalid("Only JSON object is allowed in array of $or relationship.");
        };
        let mut forked = current.clone();
        if forked.is_empty() {
            forked.push(Vec::new());
        }
        parse_object(&mut forked, path, members, true)?;
        branches.extend(forked);
    }
    if alternatives.len() < 2 {
        return invalid("There must have at least 2 Objects in $or relationship.");
    }
    Ok(())
}

fn parse_values(values: &[Json]) -> Result<(Vec<Matcher>, bool), PatternError> {
    if values.is_empty() {
        return invalid("Empty arrays are not allowed");
    }
    let mut matchers = Vec::new();
    let mut absent_ok = false;
    for value in values {
        match value {
            Json::Object(members) => match parse_expression(members)? {
                Expression::Matcher(m) => matchers.push(m),
                Expression::Absent => absent_ok = true,
            },
            Json::String(s) => matchers.push(match ip_bytes(s) {
                Some(bytes) => Matcher::Ip(s.clone(), bytes),
                None => Matcher::String(s.clone()),
            }),
            Json::Number(n) => matchers.push(Matcher::Number {
                value: n.as_f64().unwrap_or(f64::NAN),
                text: n.to_string(),
            }),
            Json::Bool(b) => matchers.push(Matcher::Bool(*b)),
            Json::Null => matchers.push(Matcher::Null),
            Json::Array(_) => {
                return invalid("Match value must be String, number, true, false, or null")
            }
        }
    }
    Ok((matchers, absent_ok))
}

enum Expression {
    Matcher(Matcher),
    Absent,
}

/// The members after the first must not exist.
fn only_one(members: &[(String, Json)], reason: &str) -> Result<(), PatternError> {
    if members.len() > 1 {
        return invalid(reason);
    }
    Ok(())
}

const ONE_KEY: &str = "Only one key allowed in match expression";
const TOO_MANY_NUMERIC: &str = "Too many elements in numeric expression";

fn parse_expression(members: &[(String, Json)]) -> Result<Expression, PatternError> {
    let Some((name, value)) = members.first() else {
        return invalid("Match expression name not found");
    };
    let matcher = match name.as_str() {
        "exactly" => {
            let Json::String(s) = value else {
                return invalid("exact match pattern must be a string");
            };
            only_one(members, ONE_KEY)?;
            Matcher::String(s.clone())
        }
        "prefix" | "suffix" => {
            let prefix = name == "prefix";
            let matcher = match value {
                Json::Object(inner) => {
                    let Some((op, text)) = inner.first() else {
                        return invalid(if prefix {
                            "Prefix expression name not found"
                        } else {
                            "Suffix expression name not found"
                        });
                    };
                    if op != "equals-ignore-case" {
                        return invalid(format!(
                            "Unsupported {} pattern: {op}",
                            if prefix { "prefix" } else { "suffix" }
                        ));
                    }
                    let Json::String(text) = text else {
                        return invalid("equals-ignore-case match pattern must be a string");
                    };
                    only_one(inner, ONE_KEY)?;
                    let folded = text.to_lowercase();
                    if prefix {
                        Matcher::PrefixIgnoreCase(folded)
                    } else {
                        Matcher::SuffixIgnoreCase(folded)
                    }
                }
                Json::String(text) if prefix => Matcher::Prefix(text.clone()),
                Json::String(text) => Matcher::Suffix(text.clone()),
                _ => return invalid(format!("{name} match pattern must be a string")),
            };
            only_one(members, ONE_KEY)?;
            matcher
        }
        "equals-ignore-case" => {
            let Json::String(s) = value else {
                return invalid("equals-ignore-case match pattern must be a string");
            };
            only_one(members, ONE_KEY)?;
            Matcher::EqualsIgnoreCase(s.to_lowercase())
        }
        "wildcard" => {
            let Json::String(s) = value else {
                return invalid("wildcard match pattern must be a string");
            };
            let wildcard = Wildcard::parse(s)?;
            only_one(members, ONE_KEY)?;
            Matcher::Wildcard(wildcard)
        }
        "numeric" => {
            let Json::Array(items) = value else {
                return invalid("Value of numeric must be an array.");
            };
            let range = parse_numeric(items)?;
            only_one(members, TOO_MANY_NUMERIC)?;
            Matcher::Numeric(range)
        }
        "anything-but" => {
            let anything_but = parse_anything_but(value)?;
            only_one(members, TOO_MANY_NUMERIC)?;
            Matcher::AnythingBut(anything_but)
        }
        "exists" => {
            let exists = match value {
                Json::Bool(b) => *b,
                _ => return invalid("exists match pattern must be either true or false."),
            };
            only_one(members, ONE_KEY)?;
            if !exists {
                return Ok(Expression::Absent);
            }
            Matcher::Exists
        }
        "cidr" => {
            let Json::String(s) = value else {
                // Ruler's wording.
                return invalid("prefix match pattern must be a string");
            };
            let (low, high) = parse_cidr(s)?;
            only_one(members, ONE_KEY)?;
            Matcher::Cidr { low, high }
        }
        other => return invalid(format!("Unrecognized match type {other}")),
    };
    Ok(Expression::Matcher(matcher))
}

fn comparable(value: f64) -> Result<f64, PatternError> {
    if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&value) {
        return invalid("Value must be between -5.0E9 and 5.0E9, inclusive");
    }
    Ok(value)
}

fn parse_numeric(items: &[Json]) -> Result<Range, PatternError> {
    let mut items = items.iter();
    let operator = match items.next() {
        Some(Json::String(op)) => op.clone(),
        Some(other) => {
            return invalid(format!("Invalid member in numeric match: {}", other.text()))
        }
        None => return invalid("Invalid member in numeric match: ]"),
    };
    let shown = if operator == "=" {
        "equals"
    } else {
        operator.as_str()
    };
    let must_be_numeric = || PatternError::Invalid(format!("Value of {shown} must be numeric"));
    match operator.as_str() {
        "=" | "<" | "<=" | ">" | ">=" => {}
        other => return invalid(format!("Unrecognized numeric range operator: {other}")),
    }
    let value = comparable(
        items
            .next()
            .and_then(Json::number)
            .ok_or_else(must_be_numeric)?,
    )?;
    let bound = |open| Bound { value, open };
    let range = match operator.as_str() {
        "=" => Range {
            bottom: Some(bound(false)),
            top: Some(bound(false)),
        },
        "<" | "<=" => Range {
            bottom: None,
            top: Some(bound(operator == "<")),
        },
        _ => {
            let bottom = Some(bound(operator == ">"));
            let Some(next) = items.next() else {
                return Ok(Range { bottom, top: None });
            };
            let Json::String(second) = next else {
                return invalid(format!("Bad value in numeric range: {}", next.text()));
            };
            if second != "<" && second != "<=" {
                return invalid(format!("Bad numeric range operator: {second}"));
            }
            let top = items.next().and_then(Json::number).ok_or_else(|| {
                PatternError::Invalid(format!("Value of {second} must be numeric"))
            })?;
            let top = comparable(top)?;
            if items.next().is_some() {
                return invalid("Too many terms in numeric range expression");
            }
            if top <= value {
                return invalid("Bottom must be less than top");
            }
            return Ok(Range {
                bottom,
                top: Some(Bound {
                    value: top,
                    open: second == "<",
                }),
            });
        }
    };
    if items.next().is_some() {
        return invalid(TOO_MANY_NUMERIC);
    }
    Ok(range)
}

fn parse_anything_but(value: &Json) -> Result<AnythingBut, PatternError> {
    const SHAPE: &str = "Value of anything-but must be an array or single string/number value.";
    match value {
        Json::Object(inner) => {
            let Some((op, operand)) = inner.first() else {
                return invalid("Anything-But expression name not found");
            };
            if !matches!(
                op.as_str(),
                "equals-ignore-case" | "prefix" | "suffix" | "wildcard"
            ) {
                return invalid(format!("Unsupported anything-but pattern: {op}"));
            }
            let not_string = || {
                match op.as_str() {
                "equals-ignore-case" => PatternError::Invalid(
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.".into(),
                ),
                "wildcard" => {
                    PatternError::Invalid("wildcard match pattern must be a string".into())
                }
                _ => PatternError::Invalid("prefix/suffix match pattern must be a string".into()),
            }
            };
            let texts: Vec<&String> = match operand {
                Json::String(s) => vec![s],
                Json::Number(_) => return Err(not_string()),
                Json::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Json::String(s) => Ok(s),
                        _ => Err(not_string()),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return invalid(SHAPE),
            };
            if matches!(op.as_str(), "prefix" | "suffix") && texts.iter().any(|t| t.is_empty()) {
                return invalid("Null prefix/suffix not allowed");
            }
            let owned = || texts.iter().map(|t| (*t).clone()).collect::<Vec<_>>();
            let result = match op.as_str() {
                "equals-ignore-case" => {
                    AnythingBut::IgnoreCase(texts.iter().map(|t| t.to_lowercase()).collect())
                }
                "prefix" => AnythingBut::Prefixes(owned()),
                "suffix" => AnythingBut::Suffixes(owned()),
                _ => AnythingBut::Wildcards(
                    texts
                        .iter()
                        .map(|t| Wildcard::parse(t))
                        .collect::<Result<_, _>>()?,
                ),
            };
            only_one(inner, TOO_MANY_NUMERIC)?;
            Ok(result)
        }
        Json::Array(items) => {
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for item in items {
                match item {
                    Json::String(s) => strings.push(s.clone()),
                    Json::Number(n) => numbers.push(comparable(n.as_f64().unwrap_or(f64::NAN))?),
                    _ => {
                        return invalid(
                            "Inside anything but list, start|null|boolean is not supported.",
                        )
                    }
                }
            }
            match (strings.is_empty(), numbers.is_empty()) {
                (false, true) => Ok(AnythingBut::Strings(strings)),
                (true, false) => Ok(AnythingBut::Numbers(numbers)),
                _ => invalid(
                    "Inside anything but list, either all values are number or string, mixed type is not supported",
                ),
            }
        }
        Json::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Json::Number(n) => Ok(AnythingBut::Numbers(vec![comparable(
            n.as_f64().unwrap_or(f64::NAN),
        )?])),
        _ => invalid(SHAPE),
    }
}

/// An IP address literal's bytes (4 or 16), when the text is one. Like Ruler, only text
/// shaped like an address is tried.
fn ip_bytes(text: &str) -> Option<Vec<u8>> {
    let v4_shape = {
        let parts: Vec<&str> = text.split('.').collect();
        parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let v6_shape = text.contains(':') && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    if !v4_shape && !v6_shape {
        return None;
    }
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(ip) => Some(ip.octets().to_vec()),
        IpAddr::V6(ip) => Some(ip.octets().to_vec()),
    }
}

/// Ruler's `CIDR.cidr`: from the address as written to the address with its host bits set.
fn parse_cidr(text: &str) -> Result<(Vec<u8>, Vec<u8>), PatternError> {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() != 2 {
        return invalid("Malformed CIDR, one '/' required");
    }
    let bits: i64 = parts[1].parse().map_err(|_| {
        PatternError::Invalid("Malformed CIDR, mask bits must be an integer".into())
    })?;
    if bits < 0 {
        return invalid("Malformed CIDR, mask bits must not be negative");
    }
    let Some(low) = ip_bytes(parts[0]) else {
        return invalid(format!("Nonstandard IP address: {}", parts[0]));
    };
    if low.len() == 4 && bits > 31 {
        return invalid("IPv4 mask bits must be < 32");
    }
    if low.len() == 16 && bits > 127 {
        return invalid("IPv6 mask bits must be < 128");
    }
    let mut host_bits = low.len() as i64 * 8 - bits;
    let mut high = low.clone();
    for byte in high.iter_mut().rev() {
        if host_bits >= 8 {
            *byte = 0xff;
        } else if host_bits > 0 {
            *byte |= (1u8 << host_bits) - 1;
        }
        host_bits -= 8;
    }
    Ok((low, high))
}

// ---------------------------------------------------------------------------------------
// Wildcard complexity: per field, the most states a worst-case value can keep alive in the
// automaton of that field's wildcard patterns, each counted for the patterns it can still
// reach (Ruler's measure).

fn check_complexity(branches: &[Vec<FieldRule>]) -> Result<(), PatternError> {
    let mut by_path: HashMap<&str, Vec<&Wildcard>> = HashMap::new();
    for rule in branches.iter().flatten() {
        for matcher in &rule.matchers {
            if let Matcher::Wildcard(w) = matcher {
                let list = by_path.entry(rule.path.as_str()).or_default();
                if !list.contains(&w) {
                    list.push(w);
                }
            }
        }
    }
    for patterns in by_path.values() {
        if complexity(patterns) >= MAX_WILDCARD_COMPLEXITY {
            return Err(PatternError::TooComplex);
        }
    }
    Ok(())
}

fn complexity(patterns: &[&Wildcard]) -> usize {
    // A state is (pattern, tokens matched so far); a set of states is what one input
    // prefix leaves alive. Explore every set the input can reach.
    let closure = |set: &mut Vec<(usize, usize)>| {
        let mut i = 0;
        while i < set.len() {
            let (p, at) = set[i];
            if patterns[p].tokens.get(at) == Some(&Token::Star) && !set.contains(&(p, at + 1)) {
                set.push((p, at + 1));
            }
            i += 1;
        }
        set.sort_unstable();
        set.dedup();
    };
    let mut alphabet: Vec<Option<char>> = patterns
        .iter()
        .flat_map(|w| w.tokens.iter())
        .filter_map(|t| match t {
            Token::Char(c) => Some(Some(*c)),
            Token::Star => None,
        })
        .collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    alphabet.push(None); // any character no pattern names
    let mut start: Vec<(usize, usize)> = (0..patterns.len()).map(|p| (p, 0)).collect();
    closure(&mut start);
    let mut seen: HashSet<Vec<(usize, usize)>> = HashSet::new();
    let mut queue = vec![start];
    let mut worst = 0;
    while let Some(set) = queue.pop() {
        if !seen.insert(set.clone()) {
            continue;
        }
        worst = worst.max(set.len());
        if worst >= MAX_WILDCARD_COMPLEXITY || seen.len() > 20_000 {
            return MAX_WILDCARD_COMPLEXITY;
        }
        for c in &alphabet {
            let mut next = Vec::new();
            for &(p, at) in &set {
                match patterns[p].tokens.get(at) {
                    Some(Token::Star) => next.push((p, at)),
                    Some(Token::Char(t)) if Some(*t) == *c => next.push((p, at + 1)),
                    _ => {}
                }
            }
            closure(&mut next);
            if !next.is_empty() && !seen.contains(&next) {
                queue.push(next);
            }
        }
    }
    worst
}

// ---------------------------------------------------------------------------------------
// Matching.

/// Which element of which array a leaf sits in, for every array above it.
type Membership = Vec<(u32, u32)>;

#[derive(Debug, Default)]
struct Fields<'e> {
    by_path: HashMap<String, Vec<(&'e Value, Membership)>>,
    next_array: u32,
}

impl<'e> Fields<'e> {
    fn flatten(
        &mut self,
        value: &'e Value,
        path: &str,
        membership: &mut Membership,
        wanted: &HashSet<String>,
    ) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = join(path, key);
                    if wanted.contains(&child_path) {
                        self.flatten(child, &child_path, membership, wanted);
                    }
                }
            }
            Value::Array(items) => {
                let id = self.next_array;
                self.next_array += 1;
                for (index, item) in items.iter().enumerate() {
                    membership.push((id, index as u32));
                    self.flatten(item, path, membership, wanted);
                    membership.pop();
                }
            }
            leaf => {
                if !path.is_empty() {
                    self.by_path
                        .entry(path.to_owned())
                        .or_default()
                        .push((leaf, membership.clone()));
                }
            }
        }
    }

    fn at(&self, path: &str) -> &[(&'e Value, Membership)] {
        self.by_path.get(path).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn consistent(a: &Membership, b: &Membership) -> bool {
    a.iter()
        .all(|(id, index)| b.iter().all(|(other, at)| other != id || at == index))
}

fn branch_matches(rules: &[FieldRule], fields: &Fields<'_>) -> bool {
    // Each rule's options: the fields that match it, and "absent" where allowed.
    let mut options: Vec<(&FieldRule, Vec<Option<&Membership>>)> = Vec::new();
    for rule in rules {
        let mut choices: Vec<Option<&Membership>> = fields
            .at(&rule.path)
            .iter()
            .filter(|(value, _)| rule.matchers.iter().any(|m| m.matches(value)))
            .map(|(_, membership)| Some(membership))
            .collect();
        if rule.absent_ok {
            choices.push(None);
        }
        if choices.is_empty() {
            return false;
        }
        options.push((rule, choices));
    }
    options.sort_by_key(|(_, choices)| choices.len());
    let mut budget = SEARCH_BUDGET;
    match search(
        &options,
        0,
        &mut Vec::new(),
        &mut Vec::new(),
        fields,
        &mut budget,
    ) {
        Some(found) => found,
        // Too many combinations to try: match each field on its own.
        None => options.iter().all(|(rule, choices)| {
            choices
                .iter()
                .any(|choice| choice.is_some() || fields.at(&rule.path).is_empty())
        }),
    }
}

/// Chooses an option per rule, keeping the memberships consistent; `None` when the budget
/// ran out.
fn search<'a>(
    options: &[(&'a FieldRule, Vec<Option<&'a Membership>>)],
    index: usize,
    joined: &mut Membership,
    absent: &mut Vec<&'a str>,
    fields: &Fields<'_>,
    budget: &mut usize,
) -> Option<bool> {
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    let Some((rule, choices)) = options.get(index) else {
        // Absent fields must have no leaf consistent with the chosen elements.
        return Some(absent.iter().all(|path| {
            fields
                .at(path)
                .iter()
                .all(|(_, membership)| !consistent(membership, joined))
        }));
    };
    for choice in choices {
        match choice {
            Some(membership) => {
                if !consistent(membership, joined) {
                    continue;
                }
                let before = joined.len();
                for pair in membership.iter() {
                    if !joined.contains(pair) {
                        joined.push(*pair);
                    }
                }
                let found = search(options, index + 1, joined, absent, fields, budget);
                joined.truncate(before);
                if found != Some(false) {
                    return found;
                }
            }
            None => {
                absent.push(rule.path.as_str());
                let found = search(options, index + 1, joined, absent, fields, budget);
                absent.pop();
                if found != Some(false) {
                    return found;
                }
            }
        }
    }
    Some(false)
}

fn numbers_equal(a: f64, b: f64) -> bool {
    a.is_finite() && b.is_finite() && a == b
}

impl Matcher {
    fn matches(&self, value: &Value) -> bool {
        match self {
            Matcher::String(s) => value.as_str() == Some(s.as_str()),
            Matcher::Ip(s, bytes) => value
                .as_str()
                .is_some_and(|v| v == s || ip_bytes(v).as_ref() == Some(bytes)),
            Matcher::Number { value: n, text } => match value {
                Value::Number(v) => {
                    v.as_f64().is_some_and(|v| numbers_equal(v, *n)) || v.to_string() == *text
                }
                _ => false,
            },
            Matcher::Bool(b) => value.as_bool() == Some(*b),
            Matcher::Null => value.is_null(),
            Matcher::Prefix(p) => value.as_str().is_some_and(|v| v.starts_with(p.as_str())),
            Matcher::PrefixIgnoreCase(p) => value
                .as_str()
                .is_some_and(|v| v.to_lowercase().starts_with(p.as_str())),
            Matcher::Suffix(s) => value.as_str().is_some_and(|v| v.ends_with(s.as_str())),
            Matcher::SuffixIgnoreCase(s) => value
                .as_str()
                .is_some_and(|v| v.to_lowercase().ends_with(s.as_str())),
            Matcher::EqualsIgnoreCase(s) => value.as_str().is_some_and(|v| v.to_lowercase() == *s),
            Matcher::Wildcard(w) => value.as_str().is_some_and(|v| w.matches(v)),
            Matcher::AnythingBut(but) => but.matches(value),
            Matcher::Numeric(range) => value.as_f64().is_some_and(|v| range.contains(v)),
            Matcher::Exists => true,
            Matcher::Cidr { low, high } => value
                .as_str()
                .and_then(ip_bytes)
                .is_some_and(|ip| ip.len() == low.len() && *low <= ip && ip <= *high),
        }
    }
}

impl AnythingBut {
    /// Anything-but matches every value it does not exclude, of any type.
    fn matches(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            AnythingBut::Strings(list) => !text.is_some_and(|v| list.iter().any(|s| s == v)),
            AnythingBut::Numbers(list) => !value
                .as_f64()
                .is_some_and(|v| list.iter().any(|n| numbers_equal(*n, v))),
            AnythingBut::Prefixes(list) => {
                !text.is_some_and(|v| list.iter().any(|p| v.starts_with(p.as_str())))
            }
            AnythingBut::Suffixes(list) => {
                !text.is_some_and(|v| list.iter().any(|s| v.ends_with(s.as_str())))
            }
            AnythingBut::IgnoreCase(list) => {
                !text.is_some_and(|v| list.contains(&v.to_lowercase()))
            }
            AnythingBut::Wildcards(list) => {
                !text.is_some_and(|v| list.iter().any(|w| w.matches(v)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The event of Ruler's README and EventBridge's content-filtering page.
    fn ec2_event() -> Value {
        json!({
            "version": "0",
            "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "012345679012",
            "time": "2017-10-02T16:24:49Z",
            "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {
                "c-count": 5,
                "d-count": 3,
                "x-limit": 301.8,
                "source-ip": "10.0.0.33",
                "instance-id": "i-000000aaaaaa00000",
                "state": "running"
            }
        })
    }

    fn matches(pattern: &str, event: &Value) -> bool {
        EventPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(event)
    }

    fn reason(pattern: &str) -> String {
        EventPattern::parse(pattern)
            .err()
            .unwrap_or_else(|| panic!("{pattern} should be invalid"))
            .reason()
    }

    #[test]
    fn pattern_documented_examples_match() {
        let event = ec2_event();
        for pattern in [
            r#"{"detail-type": ["EC2 Instance State-change Notification"],
                "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
                "detail": {"state": ["initializing", "running"]}}"#,
            r#"{"time": [{"prefix": "2017-10-02"}]}"#,
            r#"{"source": [{"suffix": "ec2"}]}"#,
            r#"{"source": [{"equals-ignore-case": "AWS.EC2"}]}"#,
            r#"{"source": [{"wildcard": "aws.*"}]}"#,
            r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#,
            r#"{"detail": {"x-limit": [{"anything-but": 123}]}}"#,
            r#"{"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}"#,
            r#"{"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}"#,
            r#"{"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}"#,
            r#"{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"numeric": ["=", 3.018e2]}]}}"#,
            r#"{"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}"#,
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"time": [{"prefix": "2017-10-02"}],
                "detail": {"state": [{"anything-but": "initializing"}],
                           "c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"anything-but": [100, 200, 300]}],
                           "source-ip": [{"cidr": "10.0.0.0/8"}]}}"#,
            r#"{"source": ["aws.ec2"], "$or": [{"detail": {"state": ["stopped"]}},
                                               {"detail": {"c-count": [5]}}]}"#,
        ] {
            assert!(matches(pattern, &event), "{pattern}");
        }
        for pattern in [
            r#"{"detail": {"state": [{"anything-but": "running"}]}}"#,
            r#"{"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}"#,
            r#"{"detail": {"c-count": [{"numeric": [">", 5]}]}}"#,
            r#"{"detail": {"c-count": [{"exists": false}]}}"#,
            r#"{"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}"#,
            r#"{"source": [{"prefix": "ec2"}]}"#,
            r#"{"source": ["AWS.EC2"]}"#,
            r#"{"detail": {"missing": ["x"]}}"#,
        ] {
            assert!(!matches(pattern, &event), "{pattern}");
        }
    }

    #[test]
    fn pattern_exists_sees_only_leaves() {
        // EventBridge's exists examples.
        let absent = r#"{"detail": {"c-count": [{"exists": false}]}}"#;
        let no_count = json!({"detail": {"state": ["initializing", "running"]}});
        let object_count = json!({"detail": {"state": ["initializing"], "c-count": {"c1": 100}}});
        assert!(matches(absent, &no_count));
        assert!(matches(absent, &object_count));
        let present = r#"{"detail": {"state": [{"exists": true}]}}"#;
        let pending = json!({"detail": {"instance-id": "i-abcd1111", "state": "pending"}});
        assert!(matches(present, &pending));
        assert!(!matches(
            present,
            &json!({"detail": {"c-count": {"c1": 100}}})
        ));
        assert!(matches(
            r#"{"detail": {"state": [{"exists": false}]}}"#,
            &json!({"detail": {"state": []}})
        ));
        // Absent or a value.
        let either = r#"{"a": [{"exists": false}, "x"]}"#;
        assert!(matches(either, &json!({})));
        assert!(matches(either, &json!({"a": "x"})));
        assert!(!matches(either, &json!({"a": "y"})));
    }

    #[test]
    fn pattern_null_and_empty_strings_differ() {
        let event = json!({"detail": {"eventVersion": "", "responseElements": null}});
        assert!(matches(r#"{"detail": {"eventVersion": [""]}}"#, &event));
        assert!(matches(
            r#"{"detail": {"responseElements": [null]}}"#,
            &event
        ));
        assert!(!matches(
            r#"{"detail": {"responseElements": [""]}}"#,
            &event
        ));
        assert!(!matches(r#"{"detail": {"eventVersion": [null]}}"#, &event));
        assert!(!matches(r#"{"detail": {"other": [null]}}"#, &event));
    }

    #[test]
    fn pattern_arrays_intersect_and_stay_consistent() {
        let pattern = r#"{"resources": [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
            "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}"#;
        let event = json!({"resources": [
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]});
        assert!(matches(pattern, &event));
        assert!(!matches(pattern, &json!({"resources": []})));

        let employees = json!({"employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"}]});
        assert!(matches(
            r#"{"employees": {"firstName": ["Anna"]}}"#,
            &employees
        ));
        assert!(matches(
            r#"{"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}"#,
            &employees
        ));
        assert!(!matches(
            r#"{"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}"#,
            &employees
        ));
        let nested = json!({"employees": [
            [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
            [{"firstName": "Peter", "lastName": "Jones"}]]});
        assert!(matches(
            r#"{"employees": {"firstName": ["Anna"]}}"#,
            &nested
        ));
        assert!(!matches(
            r#"{"employees": {"firstName": ["John"], "lastName": ["Jones"]}}"#,
            &nested
        ));
    }

    #[test]
    fn pattern_numbers_compare_numerically() {
        assert!(matches(r#"{"n": [5]}"#, &json!({"n": 5.0})));
        assert!(matches(r#"{"n": [5.0]}"#, &json!({"n": 5})));
        assert!(matches(r#"{"n": [3.018e2]}"#, &json!({"n": 301.8})));
        assert!(!matches(r#"{"n": [5]}"#, &json!({"n": "5"})));
        assert!(!matches(r#"{"n": ["5"]}"#, &json!({"n": 5})));
        assert!(matches(
            r#"{"account": [123456789012]}"#,
            &json!({"account": 123456789012u64})
        ));
        assert!(matches(
            r#"{"n": [{"numeric": [">=", 10]}]}"#,
            &json!({"n": 10})
        ));
        assert!(!matches(
            r#"{"n": [{"numeric": [">", 10]}]}"#,
            &json!({"n": 10})
        ));
        assert!(matches(
            r#"{"n": [{"numeric": [">", 0, "<", 1]}]}"#,
            &json!({"n": 0.5})
        ));
        assert!(!matches(
            r#"{"n": [{"numeric": ["<", 1]}]}"#,
            &json!({"n": "0"})
        ));
        assert!(!matches(
            r#"{"n": [{"anything-but": [5]}]}"#,
            &json!({"n": 5.0})
        ));
        assert!(matches(
            r#"{"n": [{"anything-but": [5]}]}"#,
            &json!({"n": "5"})
        ));
        assert!(matches(
            r#"{"b": [true], "z": [null]}"#,
            &json!({"b": true, "z": null})
        ));
        assert!(!matches(r#"{"b": [true]}"#, &json!({"b": "true"})));
    }

    #[test]
    fn pattern_string_operators() {
        let event = json!({"detail": {"service": "EVENTBRIDGE", "FileName": "image.PNG",
                                      "state": "INITIALIZING", "FilePath": "/usr/lib/x.jar"}});
        assert!(matches(
            r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}"#,
            &event
        ));
        assert!(matches(
            r#"{"detail": {"service": [{"suffix": {"equals-ignore-case": "tbridge"}}]}}"#,
            &event
        ));
        assert!(matches(
            r#"{"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#,
            &event
        ));
        assert!(!matches(
            r#"{"detail": {"FileName": [{"suffix": ".png"}]}}"#,
            &event
        ));
        assert!(!matches(
            r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}}"#,
            &event
        ));
        assert!(matches(
            r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": ["a", "b"]}}]}}"#,
            &event
        ));
        assert!(!matches(
            r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}"#,
            &event
        ));
        assert!(matches(
            r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": "*/bin/*.jar"}}]}}"#,
            &event
        ));
        assert!(!matches(
            r#"{"detail": {"FileName": [{"anything-but": {"suffix": ".PNG"}}]}}"#,
            &event
        ));
        assert!(matches(
            r#"{"detail": {"FileName": [{"anything-but": {"prefix": ["x", "y"]}}]}}"#,
            &event
        ));
        assert!(matches(
            r#"{"detail": {"service": [{"exactly": "EVENTBRIDGE"}]}}"#,
            &event
        ));
    }

    #[test]
    fn pattern_wildcards() {
        let w = |p: &str, v: &str| Wildcard::parse(p).unwrap().matches(v);
        assert!(w("Simple*Service", "SimpleService"));
        assert!(w("Simple*Service", "Simple Queue Service"));
        assert!(!w("Simple*Service", "Simple Queue Services"));
        assert!(w("*", ""));
        assert!(w("a*b*c", "aXbYbZc"));
        assert!(!w("a*b*c", "aXbYbZ"));
        assert!(w(r"a\*b", "a*b"));
        assert!(!w(r"a\*b", "aXb"));
        assert!(w(r"a\\b", r"a\b"));
        assert!(w("*.png", ".png"));
        assert_eq!(
            reason(r#"{"a": [{"wildcard": "a**"}]}"#),
            "Consecutive wildcard characters at pos 2"
        );
        assert_eq!(
            reason(r#"{"a": [{"wildcard": "a\\b"}]}"#),
            "Invalid escape character at pos 2"
        );
        assert!(EventPattern::parse(r#"{"a": [{"wildcard": "\\**"}]}"#).is_ok());
    }

    #[test]
    fn pattern_cidr_and_ip_values() {
        let m = |p: &str, ip: &str| matches(p, &json!({"ip": ip}));
        assert!(m(r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#, "10.0.0.255"));
        assert!(!m(r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#, "10.0.1.0"));
        assert!(!m(r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#, "not an ip"));
        assert!(m(
            r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#,
            "2001:db8:ffff::1"
        ));
        assert!(!m(r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#, "2001:db9::1"));
        assert!(!m(r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#, "10.0.0.1"));
        assert!(m(r#"{"ip": ["2001:db8::1"]}"#, "2001:0db8:0:0:0:0:0:1"));
        assert_eq!(
            reason(r#"{"ip": [{"cidr": "10.0.0.0"}]}"#),
            "Malformed CIDR, one '/' required"
        );
        assert_eq!(
            reason(r#"{"ip": [{"cidr": "10.0.0.0/x"}]}"#),
            "Malformed CIDR, mask bits must be an integer"
        );
        assert_eq!(
            reason(r#"{"ip": [{"cidr": "10.0.0.0/32"}]}"#),
            "IPv4 mask bits must be < 32"
        );
        assert_eq!(
            reason(r#"{"ip": [{"cidr": "host/8"}]}"#),
            "Nonstandard IP address: host"
        );
    }

    #[test]
    fn pattern_or_branches() {
        // Ruler's examples.
        let nested = r#"{"source": ["aws.cloudwatch"], "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {"metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"],
             "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]},
            {"scope": ["Service"]}]}"#;
        let cw = |extra: Value| {
            let mut event = json!({"source": "aws.cloudwatch"});
            for (k, v) in extra.as_object().unwrap() {
                event[k] = v.clone();
            }
            event
        };
        assert!(matches(nested, &cw(json!({"metricName": "ReadLatency"}))));
        assert!(matches(nested, &cw(json!({"scope": "Service"}))));
        assert!(matches(
            nested,
            &cw(json!({"metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1000}))
        ));
        assert!(!matches(
            nested,
            &cw(json!({"metricType": "MetricType", "namespace": "AWS/ES"}))
        ));
        assert!(!matches(
            nested,
            &json!({"source": "aws.ec2", "scope": "Service"})
        ));
        let parallel = r#"{"$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
                           "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]}}"#;
        assert!(matches(
            parallel,
            &json!({"namespace": "AWS/EC2", "detail": {"detail-type": "CloudWatch Alarm State Change"}})
        ));
        assert!(!matches(parallel, &json!({"namespace": "AWS/EC2"})));
    }

    #[test]
    fn pattern_dotted_names_and_last_duplicate() {
        assert!(matches(
            r#"{"detail": {"state.status": ["running"]}}"#,
            &json!({"detail": {"state": {"status": "running"}}})
        ));
        assert!(matches(
            r#"{"detail": {"state": {"status": ["running"]}}}"#,
            &json!({"detail": {"state.status": "running"}})
        ));
        // EventBridge: the last mention of a key is the one used.
        let pattern = r#"{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}"#;
        assert!(matches(
            pattern,
            &json!({"detail": {"location": "eu-west"}})
        ));
        assert!(!matches(
            pattern,
            &json!({"detail": {"location": "us-east"}})
        ));
    }

    #[test]
    fn pattern_validation_reasons() {
        for (pattern, expected) in [
            ("[1]", "Filter is not an object"),
            (r#"{"detail": {}}"#, "Empty objects are not allowed"),
            (r#"{"source": []}"#, "Empty arrays are not allowed"),
            (r#"{"pipeline": {"slug": "some-pipeline"}}"#, "\"slug\" must be an object or an array"),
            (r#"{"a": [[1]]}"#, "Match value must be String, number, true, false, or null"),
            (r#"{"a": [{}]}"#, "Match expression name not found"),
            (r#"{"a": [{"regex": "x"}]}"#, "Unrecognized match type regex"),
            (r#"{"a": [{"prefix": 1}]}"#, "prefix match pattern must be a string"),
            (r#"{"a": [{"suffix": ["created"]}]}"#, "suffix match pattern must be a string"),
            (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, "Only one key allowed in match expression"),
            (r#"{"a": [{"prefix": {"x": "y"}}]}"#, "Unsupported prefix pattern: x"),
            (r#"{"a": [{"exists": "yes"}]}"#, "exists match pattern must be either true or false."),
            (r#"{"a": [{"numeric": 5}]}"#, "Value of numeric must be an array."),
            (r#"{"a": [{"numeric": []}]}"#, "Invalid member in numeric match: ]"),
            (r#"{"a": [{"numeric": [5]}]}"#, "Invalid member in numeric match: 5"),
            (r#"{"a": [{"numeric": ["!", 5]}]}"#, "Unrecognized numeric range operator: !"),
            (r#"{"a": [{"numeric": ["=", "x"]}]}"#, "Value of equals must be numeric"),
            (r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, "Too many elements in numeric expression"),
            (r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, "Bottom must be less than top"),
            (r#"{"a": [{"numeric": [">", 5, ">", 10]}]}"#, "Bad numeric range operator: >"),
            (r#"{"a": [{"numeric": [">", 5, 6]}]}"#, "Bad value in numeric range: 6"),
            (r#"{"a": [{"numeric": [">", 1, "<", 5, 6]}]}"#, "Too many terms in numeric range expression"),
            (r#"{"a": [{"numeric": [">", 6e9]}]}"#, "Value must be between -5.0E9 and 5.0E9, inclusive"),
            (r#"{"a": [{"anything-but": true}]}"#, "Value of anything-but must be an array or single string/number value."),
            (r#"{"a": [{"anything-but": ["x", 1]}]}"#, "Inside anything but list, either all values are number or string, mixed type is not supported"),
            (r#"{"a": [{"anything-but": [null]}]}"#, "Inside anything but list, start|null|boolean is not supported."),
            (r#"{"a": [{"anything-but": {"exists": true}}]}"#, "Unsupported anything-but pattern: exists"),
            (r#"{"a": [{"anything-but": {"prefix": ""}}]}"#, "Null prefix/suffix not allowed"),
            (r#"{"a": [{"anything-but": {"prefix": 5}}]}"#, "prefix/suffix match pattern must be a string"),
            (r#"{"a": [{"anything-but": {"equals-ignore-case": [5]}}]}"#, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
            (r#"{"$or": [{"a": ["x"]}]}"#, "There must have at least 2 Objects in $or relationship."),
            (r#"{"$or": {"a": ["x"]}}"#, "It must be an Array followed with $or."),
            (r#"{"$or": [{"a": ["x"]}, "b"]}"#, "Only JSON object is allowed in array of $or relationship."),
            (r#"{"$or": [{"numeric": [1]}, {"b": ["x"]}]}"#, "numeric is Ruler reserved fieldName which cannot be used inside $or."),
        ] {
            assert_eq!(reason(pattern), expected, "{pattern}");
        }
        let error = EventPattern::parse("{").unwrap_err();
        assert!(error
            .to_string()
            .starts_with("Event pattern is not valid. Reason: "));
    }

    #[test]
    fn pattern_wildcard_complexity_is_bounded() {
        assert!(
            EventPattern::parse(r#"{"a": [{"wildcard": "*/lib/*"}, {"wildcard": "*.png"}]}"#)
                .is_ok()
        );
        let many: Vec<String> = (0..60)
            .map(|i| format!(r#"{{"wildcard": "*a*{i}*"}}"#))
            .collect();
        let pattern = format!(r#"{{"a": [{}]}}"#, many.join(","));
        assert_eq!(
            EventPattern::parse(&pattern).unwrap_err(),
            PatternError::TooComplex
        );
        // The limit is per field.
        let spread: Vec<String> = (0..30)
            .map(|i| format!(r#""f{i}": [{{"wildcard": "*a*b*"}}]"#))
            .collect();
        assert!(EventPattern::parse(&format!("{{{}}}", spread.join(","))).is_ok());
    }
}

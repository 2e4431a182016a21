//! CloudWatch Logs filter patterns (`FilterAndPatternSyntax`): parsing a pattern once and
//! matching messages against it.
//!
//! Three forms, told apart by the first character:
//! - unstructured terms: `ERROR "exact phrase" ?either ?or -excluded` — every plain term
//!   must occur (case-sensitive substring), at least one `?` term when there are any, and
//!   no `-` term;
//! - JSON: `{ $.a.b[0] = "x*" && ($.n > 3 || $.f IS TRUE) }` — only messages that are JSON
//!   objects (or arrays) can match;
//! - space-delimited: `[ip, user, ..., status = 4*, size > 100]` — the message split on
//!   spaces (a `"…"` or `[…]` run is one field), fields named by position, `...` standing
//!   for any number of fields.
//!
//! The empty (or blank) pattern matches everything.

use serde_json::Value;

/// Why a pattern is refused (the service answers only `Invalid filter pattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern: {0}")]
pub struct PatternError(String);

fn invalid<T>(why: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(why.into()))
}

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPattern {
    form: Form,
}

#[derive(Debug, Clone, PartialEq)]
enum Form {
    All,
    Terms {
        required: Vec<String>,
        any: Vec<String>,
        excluded: Vec<String>,
    },
    Json(Expr),
    Spaced {
        fields: Vec<Slot>,
        condition: Option<Expr>,
    },
}

/// A position of a space-delimited pattern.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Named(String),
    Ellipsis,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Test(Selector, Test),
}

#[derive(Debug, Clone, PartialEq)]
enum Selector {
    /// A JSON path: keys and array indices from the root.
    Json(Vec<Step>),
    /// A space-delimited field's name.
    Field(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Compare(Op, Literal),
    IsNull,
    NotExists,
    IsBool(bool),
}

#[derive(Debug, Clone, PartialEq)]
struct Literal {
    text: String,
    number: Option<f64>,
    /// Written in quotes (never a number then).
    quoted: bool,
}

impl FilterPattern {
    /// Parses `pattern`.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let trimmed = pattern.trim();
        let form = if trimmed.is_empty() {
            Form::All
        } else if trimmed.starts_with('{') {
            let inner = trimmed
                .strip_suffix('}')
                .and_then(|t| t.strip_prefix('{'))
                .map_or_else(|| invalid("unclosed '{'"), Ok)?;
            let mut parser = Parser::new(inner, true);
            let expr = parser.expression()?;
            parser.end()?;
            Form::Json(expr)
        } else if trimmed.starts_with('[') {
            spaced(trimmed)?
        } else {
            terms(trimmed)?
        };
        Ok(FilterPattern { form })
    }

    /// Whether the pattern is the empty one (everything matches).
    pub fn matches_everything(&self) -> bool {
        self.form == Form::All
    }

    /// Whether `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.form {
            Form::All => true,
            Form::Terms {
                required,
                any,
                excluded,
            } => {
                required.iter().all(|t| message.contains(t.as_str()))
                    && (any.is_empty() || any.iter().any(|t| message.contains(t.as_str())))
                    && !excluded.iter().any(|t| message.contains(t.as_str()))
            }
            Form::Json(expr) => match serde_json::from_str::<Value>(message.trim()) {
                Ok(value @ (Value::Object(_) | Value::Array(_))) => {
                    expr.eval(&|s| lookup_json(&value, s))
                }
                _ => false,
            },
            Form::Spaced { fields, condition } => {
                let words = split_fields(message);
                let Some(bound) = bind(fields, &words) else {
                    return false;
                };
                condition.as_ref().is_none_or(|c| {
                    c.eval(&|s| match s {
                        Selector::Field(name) => bound
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, w)| Found::Value(Value::String((*w).to_owned())))
                            .unwrap_or(Found::Missing),
                        Selector::Json(_) => Found::Missing,
                    })
                })
            }
        }
    }
}

/// Unstructured terms.
fn terms(text: &str) -> Result<Form, PatternError> {
    let mut required = Vec::new();
    let mut any = Vec::new();
    let mut excluded = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let list = match chars[i] {
            '?' => {
                i += 1;
                &mut any
            }
            '-' if chars.get(i + 1).is_some_and(|c| !c.is_whitespace()) => {
                i += 1;
                &mut excluded
            }
            _ => &mut required,
        };
        let term = if chars.get(i) == Some(&'"') {
            let (term, next) = quoted(&chars, i)?;
            i = next;
            term
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '"' {
                    return invalid("a quote inside a term");
                }
                i += 1;
            }
            chars[start..i].iter().collect()
        };
        if term.is_empty() {
            return invalid("an empty term");
        }
        if term.len() > 1 && term.starts_with('%') && term.ends_with('%') {
            // Regular-expression terms are not supported; refusing beats matching wrongly.
            return invalid("regular expressions are not supported");
        }
        list.push(term);
    }
    Ok(Form::Terms {
        required,
        any,
        excluded,
    })
}

/// The quoted string starting at `chars[start] == '"'`, and the index after it.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), PatternError> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '"' => return Ok((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    invalid("unclosed quote")
}

/// `[a, b = 1, ..., c]`: slots, and the conditions written on them joined with `&&`.
fn spaced(text: &str) -> Result<Form, PatternError> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .map_or_else(|| invalid("unclosed '['"), Ok)?;
    let mut fields = Vec::new();
    let mut condition: Option<Expr> = None;
    for part in split_top_level(inner)? {
        let part = part.trim();
        if part.is_empty() {
            return invalid("an empty field");
        }
        if part == "..." {
            fields.push(Slot::Ellipsis);
            continue;
        }
        let name_end = part
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(part.len());
        let name = &part[..name_end];
        if name.is_empty() {
            return invalid("a field without a name");
        }
        if fields
            .iter()
            .any(|s| matches!(s, Slot::Named(n) if n == name))
        {
            return invalid("a field named twice");
        }
        fields.push(Slot::Named(name.to_owned()));
        if part[name_end..].trim().is_empty() {
            continue;
        }
        let mut parser = Parser::new(part, false);
        let expr = parser.expression()?;
        parser.end()?;
        condition = Some(match condition {
            None => expr,
            Some(before) => Expr::And(Box::new(before), Box::new(expr)),
        });
    }
    if fields.is_empty() {
        return invalid("no fields");
    }
    Ok(Form::Spaced { fields, condition })
}

/// Splits on commas outside quotes.
fn split_top_level(text: &str) -> Result<Vec<String>, PatternError> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            current.push(c);
            continue;
        }
        match c {
            '\\' if in_quotes => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                in_quotes = !in_quotes;
                current.push(c);
            }
            ',' if !in_quotes => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if in_quotes {
        return invalid("unclosed quote");
    }
    parts.push(current);
    Ok(parts)
}

/// A message's space-delimited fields: a `"…"` or `[…]` run is one field, without its
/// delimiters.
fn split_fields(message: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = message.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let close = match bytes[i] {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        if let Some(close) = close {
            if let Some(len) = bytes[i + 1..].iter().position(|&b| b == close) {
                // Delimiters are ASCII, so these indices are char boundaries.
                out.push(&message[i + 1..i + 1 + len]);
                i += len + 2;
                continue;
            }
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        out.push(&message[start..i]);
    }
    out
}

/// Binds slot names to words; `None` when the counts cannot line up. An ellipsis takes as
/// few words as it can while the slots after it still fit (leftmost binding).
fn bind<'m>(slots: &[Slot], words: &[&'m str]) -> Option<Vec<(String, &'m str)>> {
    fn go<'m>(slots: &[Slot], words: &[&'m str], bound: &mut Vec<(String, &'m str)>) -> bool {
        match slots.split_first() {
            None => words.is_empty(),
            Some((Slot::Named(name), rest)) => match words.split_first() {
                Some((word, others)) => {
                    bound.push((name.clone(), word));
                    if go(rest, others, bound) {
                        return true;
                    }
                    bound.pop();
                    false
                }
                None => false,
            },
            Some((Slot::Ellipsis, rest)) => {
                let needed = rest.iter().filter(|s| matches!(s, Slot::Named(_))).count();
                let has_more_ellipses = rest.iter().any(|s| matches!(s, Slot::Ellipsis));
                if !has_more_ellipses {
                    return words.len() >= needed
                        && go(rest, &words[words.len() - needed..], bound);
                }
                (0..=words.len()).any(|skip| go(rest, &words[skip..], bound))
            }
        }
    }
    let mut bound = Vec::new();
    go(slots, words, &mut bound).then_some(bound)
}

/// What a selector found.
enum Found {
    Missing,
    Value(Value),
}

fn lookup_json(root: &Value, selector: &Selector) -> Found {
    let Selector::Json(steps) = selector else {
        return Found::Missing;
    };
    let mut here = root;
    for step in steps {
        let next = match step {
            Step::Key(key) => here.get(key.as_str()),
            Step::Index(index) => here.get(*index),
        };
        match next {
            Some(value) => here = value,
            None => return Found::Missing,
        }
    }
    Found::Value(here.clone())
}

impl Expr {
    fn eval(&self, lookup: &dyn Fn(&Selector) -> Found) -> bool {
        match self {
            Expr::And(a, b) => a.eval(lookup) && b.eval(lookup),
            Expr::Or(a, b) => a.eval(lookup) || b.eval(lookup),
            Expr::Test(selector, test) => {
                let found = lookup(selector);
                match (test, found) {
                    (Test::NotExists, found) => matches!(found, Found::Missing),
                    (_, Found::Missing) => false,
                    (Test::IsNull, Found::Value(v)) => v.is_null(),
                    (Test::IsBool(b), Found::Value(v)) => v.as_bool() == Some(*b),
                    (Test::Compare(op, literal), Found::Value(v)) => compare(*op, literal, &v),
                }
            }
        }
    }
}

fn compare(op: Op, literal: &Literal, value: &Value) -> bool {
    let as_number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if !literal.quoted => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match op {
        Op::Eq | Op::Ne => {
            let equal = match (literal.number, as_number) {
                (Some(want), Some(have)) => want == have,
                _ => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => value.to_string(),
                        // Objects, arrays and null never equal a string.
                        _ => return false,
                    };
                    wildcard(&literal.text, &text)
                }
            };
            (op == Op::Eq) == equal
        }
        _ => match (literal.number, as_number) {
            (Some(want), Some(have)) => match op {
                Op::Lt => have < want,
                Op::Gt => have > want,
                Op::Le => have <= want,
                Op::Ge => have >= want,
                Op::Eq | Op::Ne => false,
            },
            _ => false,
        },
    }
}

/// `pattern` with `*` for any run of characters, matched against the whole of `text`.
fn wildcard(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return true,
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// A recursive-descent parser for the expressions of JSON and space-delimited patterns.
struct Parser {
    chars: Vec<char>,
    at: usize,
    /// Selectors are `$.paths` (JSON) rather than field names.
    json: bool,
}

impl Parser {
    fn new(text: &str, json: bool) -> Self {
        Parser {
            chars: text.chars().collect(),
            at: 0,
            json,
        }
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        let token: Vec<char> = token.chars().collect();
        if self.chars[self.at..].starts_with(&token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    /// Eats a keyword (case-insensitive, followed by a non-word character).
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let end = self.at + word.len();
        if end > self.chars.len() {
            return false;
        }
        let text: String = self.chars[self.at..end].iter().collect();
        let boundary = self
            .chars
            .get(end)
            .is_none_or(|c| !(c.is_alphanumeric() || *c == '_'));
        if text.eq_ignore_ascii_case(word) && boundary {
            self.at = end;
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Result<(), PatternError> {
        self.skip_space();
        if self.at == self.chars.len() {
            Ok(())
        } else {
            invalid("unexpected text")
        }
    }

    fn expression(&mut self) -> Result<Expr, PatternError> {
        let mut left = self.conjunction()?;
        while self.eat("||") {
            let right = self.conjunction()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Expr, PatternError> {
        let mut left = self.primary()?;
        while self.eat("&&") {
            let right = self.primary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, PatternError> {
        if self.eat("(") {
            let inner = self.expression()?;
            if !self.eat(")") {
                return invalid("unclosed '('");
            }
            return Ok(inner);
        }
        let selector = self.selector()?;
        if self.keyword("IS") {
            let test = if self.keyword("NULL") {
                Test::IsNull
            } else if self.keyword("TRUE") {
                Test::IsBool(true)
            } else if self.keyword("FALSE") {
                Test::IsBool(false)
            } else {
                return invalid("IS takes NULL, TRUE or FALSE");
            };
            return Ok(Expr::Test(selector, test));
        }
        if self.keyword("NOT") {
            if self.keyword("EXISTS") {
                return Ok(Expr::Test(selector, Test::NotExists));
            }
            return invalid("NOT takes EXISTS");
        }
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            return invalid("a comparison operator is missing");
        };
        let literal = self.literal()?;
        if !matches!(op, Op::Eq | Op::Ne) && literal.number.is_none() {
            return invalid("a numeric comparison needs a number");
        }
        Ok(Expr::Test(selector, Test::Compare(op, literal)))
    }

    fn selector(&mut self) -> Result<Selector, PatternError> {
        self.skip_space();
        if !self.json {
            let start = self.at;
            while self
                .chars
                .get(self.at)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
            {
                self.at += 1;
            }
            if start == self.at {
                return invalid("a field name is missing");
            }
            return Ok(Selector::Field(self.chars[start..self.at].iter().collect()));
        }
        if self.chars.get(self.at) != Some(&'$') {
            return invalid("a selector must start with '$'");
        }
        self.at += 1;
        let mut steps = Vec::new();
        loop {
            match self.chars.get(self.at) {
                Some('.') => {
                    self.at += 1;
                    let start = self.at;
                    while self
                        .chars
                        .get(self.at)
                        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | ':'))
                    {
                        self.at += 1;
                    }
                    if start == self.at {
                        return invalid("an empty key");
                    }
                    steps.push(Step::Key(self.chars[start..self.at].iter().collect()));
                }
                Some('[') => {
                    self.at += 1;
                    let start = self.at;
                    while self.chars.get(self.at).is_some_and(char::is_ascii_digit) {
                        self.at += 1;
                    }
                    let digits: String = self.chars[start..self.at].iter().collect();
                    let index = digits
                        .parse::<usize>()
                        .map_or_else(|_| invalid("a bad array index"), Ok)?;
                    if self.chars.get(self.at) != Some(&']') {
                        return invalid("unclosed '['");
                    }
                    self.at += 1;
                    steps.push(Step::Index(index));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return invalid("a selector needs a key");
        }
        Ok(Selector::Json(steps))
    }

    fn literal(&mut self) -> Result<Literal, PatternError> {
        self.skip_space();
        if self.chars.get(self.at) == Some(&'"') {
            let (text, next) = quoted(&self.chars, self.at)?;
            self.at = next;
            return Ok(Literal {
                text,
                number: None,
                quoted: true,
            });
        }
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| !c.is_whitespace() && !matches!(c, ')' | '(' | '&' | '|' | '"'))
        {
            self.at += 1;
        }
        if start == self.at {
            return invalid("a value is missing");
        }
        let text: String = self.chars[start..self.at].iter().collect();
        let number = text.parse::<f64>().ok().filter(|n| n.is_finite());
        Ok(Literal {
            text,
            number,
            quoted: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(message)
    }

    fn bad(pattern: &str) {
        assert!(
            FilterPattern::parse(pattern).is_err(),
            "{pattern} should be refused"
        );
    }

    #[test]
    fn empty_matches_everything() {
        assert!(m("", "anything"));
        assert!(m("   ", ""));
        assert!(FilterPattern::parse("").unwrap().matches_everything());
    }

    #[test]
    fn terms_all_must_match_case_sensitively() {
        assert!(m("ERROR", "2024 ERROR disk full"));
        assert!(!m("ERROR", "2024 error disk full"));
        assert!(m("ERROR disk", "ERROR: disk full"));
        assert!(!m("ERROR memory", "ERROR: disk full"));
        assert!(m("ERR", "ERROR"), "terms match inside words");
    }

    #[test]
    fn quoted_phrases_and_special_characters() {
        assert!(m("\"disk full\"", "ERROR: disk full"));
        assert!(!m("\"full disk\"", "ERROR: disk full"));
        assert!(m("\"ERROR:\" \"[main]\"", "ERROR: [main] boom"));
        assert!(m(r#""say \"hi\"""#, r#"they say "hi" often"#));
        bad("\"unclosed");
        bad("a\"b");
    }

    #[test]
    fn alternatives_and_exclusions() {
        assert!(m("?ERROR ?WARN", "WARN low disk"));
        assert!(m("?ERROR ?WARN", "ERROR low disk"));
        assert!(!m("?ERROR ?WARN", "INFO fine"));
        assert!(m("ERROR -Exiting", "ERROR retrying"));
        assert!(!m("ERROR -Exiting", "ERROR Exiting now"));
        assert!(m("-DEBUG", "INFO x"));
        assert!(!m("-DEBUG", "DEBUG x"));
        assert!(m("?\"time out\" ?refused", "connection time out"));
        assert!(m("a - b", "a - b"), "a lone '-' is a term");
    }

    #[test]
    fn regular_expressions_are_refused() {
        bad("%ERR[0-9]%");
    }

    #[test]
    fn json_strings_and_wildcards() {
        let event = r#"{"eventType":"UpdateTrail","ip":"123.123.4.5","user":{"name":"ann"}}"#;
        assert!(m(r#"{ $.eventType = "UpdateTrail" }"#, event));
        assert!(m("{ $.eventType = UpdateTrail }", event));
        assert!(!m(r#"{ $.eventType = "Update" }"#, event));
        assert!(m(r#"{ $.eventType = "Update*" }"#, event));
        assert!(m(r#"{ $.eventType = "*Trail" }"#, event));
        assert!(m(r#"{ $.eventType = "U*T*l" }"#, event));
        assert!(m("{ $.ip != 10.0.* }", event));
        assert!(!m("{ $.ip != 123.123.* }", event));
        assert!(m(r#"{ $.user.name = "ann" }"#, event));
        assert!(!m(r#"{ $.user.missing = "ann" }"#, event));
        assert!(m(r#"{ $.eventType = "*" }"#, event));
        assert!(!m(r#"{ $.eventType = "x" }"#, "not json"));
        assert!(
            !m(r#"{ $.a = 1 }"#, "42"),
            "a scalar document has no fields"
        );
    }

    #[test]
    fn json_numbers() {
        let event = r#"{"latency": 750, "code": "200", "ratio": 0.5}"#;
        assert!(m("{ $.latency > 500 }", event));
        assert!(m("{ $.latency >= 750 }", event));
        assert!(!m("{ $.latency < 750 }", event));
        assert!(m("{ $.latency <= 750 }", event));
        assert!(m("{ $.latency = 750 }", event));
        assert!(m("{ $.latency = 750.0 }", event));
        assert!(m("{ $.latency != 751 }", event));
        assert!(m("{ $.ratio < 1 }", event));
        assert!(m("{ $.code = 200 }", event));
        assert!(!m(r#"{ $.missing > 1 }"#, event));
        bad("{ $.latency > fast }");
    }

    #[test]
    fn json_logic_and_grouping() {
        let event = r#"{"a": 1, "b": "x", "c": true}"#;
        assert!(m(r#"{ $.a = 1 && $.b = "x" }"#, event));
        assert!(!m(r#"{ $.a = 2 && $.b = "x" }"#, event));
        assert!(m(r#"{ $.a = 2 || $.b = "x" }"#, event));
        assert!(m(r#"{ ($.a = 2 || $.b = "x") && $.c IS TRUE }"#, event));
        assert!(!m(r#"{ ($.a = 2 || $.b = "y") && $.c IS TRUE }"#, event));
        assert!(m(
            r#"{ $.a = 2 || $.b = "x" && $.c IS FALSE || $.a = 1 }"#,
            event
        ));
    }

    #[test]
    fn json_arrays_null_exists_booleans() {
        let event = r#"{"list":["first",{"id":2}],"gone":null,"ok":false}"#;
        assert!(m(r#"{ $.list[0] = "first" }"#, event));
        assert!(m("{ $.list[1].id = 2 }", event));
        assert!(!m("{ $.list[5].id = 2 }", event));
        assert!(m("{ $.gone IS NULL }", event));
        assert!(!m("{ $.ok IS NULL }", event));
        assert!(!m("{ $.nothing IS NULL }", event));
        assert!(m("{ $.nothing NOT EXISTS }", event));
        assert!(!m("{ $.gone NOT EXISTS }", event));
        assert!(m("{ $.ok IS FALSE }", event));
        assert!(!m("{ $.ok IS TRUE }", event));
        assert!(
            m("{ $.ok is false }", event),
            "keywords are case-insensitive"
        );
    }

    #[test]
    fn invalid_json_patterns() {
        bad("{ $.a = 1");
        bad("{ a = 1 }");
        bad("{ $.a = }");
        bad("{ $.a }");
        bad("{ $.a = 1 && }");
        bad("{ ($.a = 1 }");
        bad("{ $.a IS MAYBE }");
        bad("{ $. = 1 }");
        bad("{ $.a[x] = 1 }");
        bad("{ $.a = 1 } trailing");
    }

    #[test]
    fn space_delimited() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 404 1534"#;
        let pattern = "[ip, user, username, timestamp, request, status_code, bytes]";
        assert!(m(pattern, line));
        assert!(m(
            "[ip, user, username, timestamp, request, status_code = 4*, bytes > 1000]",
            line
        ));
        assert!(!m(
            "[ip, user, username, timestamp, request, status_code = 5*, bytes]",
            line
        ));
        assert!(!m(
            "[ip, user, username, timestamp, request, status_code, bytes < 1000]",
            line
        ));
        assert!(m("[..., status_code = 404, bytes]", line));
        assert!(m("[ip = 127.0.0.1, ...]", line));
        assert!(m(r#"[ip, ..., request = "*apache*", status, size]"#, line));
        assert!(!m("[ip, user]", line), "too few slots");
        assert!(m(
            "[ip, user, username, timestamp, request, status_code = 404 || status_code = 500, bytes]",
            line
        ));
        assert!(m("[ip, ..., code != 200, ...]", line));
        bad("[ip, user");
        bad("[ip, , user]");
        bad("[ip, ip]");
        bad("[ip = ]");
    }

    #[test]
    fn wildcard_edges() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a*", "a"));
        assert!(!wildcard("a*b", "ab_"));
        assert!(wildcard("a*b*b", "abb"));
        assert!(!wildcard("ab*ba", "aba"));
    }
}

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

/// A condition. `&&` and `||` chains are flat lists rather than nested pairs, so the
/// tree is only as deep as the parentheses, which the parser bounds by [`DEPTH_MAX`]:
/// evaluating and dropping it cannot overflow the stack.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Test(Selector, Test),
}

/// Parentheses nested this deep at most.
const DEPTH_MAX: usize = 64;

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
    let mut conditions: Vec<Expr> = Vec::new();
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
        conditions.push(parser.expression()?);
        parser.end()?;
    }
    if fields.is_empty() {
        return invalid("no fields");
    }
    let condition = (!conditions.is_empty()).then(|| joined(conditions, Expr::And));
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

/// Binds slot names to words; `None` when the counts cannot line up. Every ellipsis but
/// the last takes no words and the last takes whatever the named slots leave (the leftmost
/// binding). Named slots take any word, so the counts alone decide: no search is needed.
fn bind<'m>(slots: &[Slot], words: &[&'m str]) -> Option<Vec<(String, &'m str)>> {
    let named = slots.iter().filter(|s| matches!(s, Slot::Named(_))).count();
    let last_ellipsis = slots.iter().rposition(|s| matches!(s, Slot::Ellipsis));
    let spare = words.len().checked_sub(named)?;
    if last_ellipsis.is_none() && spare != 0 {
        return None;
    }
    let mut bound = Vec::with_capacity(named);
    let mut at = 0;
    for (index, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Named(name) => {
                bound.push((name.clone(), *words.get(at)?));
                at += 1;
            }
            Slot::Ellipsis if Some(index) == last_ellipsis => at += spare,
            Slot::Ellipsis => {}
        }
    }
    Some(bound)
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
            Expr::And(all) => all.iter().all(|e| e.eval(lookup)),
            Expr::Or(any) => any.iter().any(|e| e.eval(lookup)),
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

/// One expression as itself, several joined by `join`.
fn joined(mut items: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    join(items)
}

/// A recursive-descent parser for the expressions of JSON and space-delimited patterns.
struct Parser {
    chars: Vec<char>,
    at: usize,
    /// Selectors are `$.paths` (JSON) rather than field names.
    json: bool,
    /// Parentheses open at this point.
    depth: usize,
}

impl Parser {
    fn new(text: &str, json: bool) -> Self {
        Parser {
            chars: text.chars().collect(),
            at: 0,
            json,
            depth: 0,
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
        let mut any = vec![self.conjunction()?];
        while self.eat("||") {
            any.push(self.conjunction()?);
        }
        Ok(joined(any, Expr::Or))
    }

    fn conjunction(&mut self) -> Result<Expr, PatternError> {
        let mut all = vec![self.primary()?];
        while self.eat("&&") {
            all.push(self.primary()?);
        }
        Ok(joined(all, Expr::And))
    }

    fn primary(&mut self) -> Result<Expr, PatternError> {
        if self.eat("(") {
            // Bounded so that parsing (recursive) cannot exhaust the stack.
            if self.depth >= DEPTH_MAX {
                return invalid("parentheses nested too deeply");
            }
            self.depth += 1;
            let inner = self.expression()?;
            self.depth -= 1;
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
    fn space_delimited_binding_is_linear() {
        // Many ellipses and more named fields than words: refused at once.
        let fields: Vec<String> = (0..140).map(|i| format!("a{i},...")).collect();
        let pattern = format!("[{},z]", fields.join(","));
        let parsed = FilterPattern::parse(&pattern).unwrap();
        let started = std::time::Instant::now();
        assert!(!parsed.matches(&vec!["w"; 26].join(" ")));
        // Enough words: bound in one pass, however many ways the ellipses could split them.
        let long = vec!["w"; 5_000].join(" ");
        assert!(parsed.matches(&long));
        for _ in 0..100 {
            assert!(!parsed.matches(&vec!["w"; 140].join(" ")));
        }
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
        // The leftmost binding: early ellipses take nothing, the last takes the rest.
        assert!(m("[a, ..., b = 2, ..., c = 9]", "1 2 3 4 5 6 7 8 9"));
        assert!(!m("[a, ..., b = 3, ..., c = 9]", "1 2 3 4 5 6 7 8 9"));
        assert!(m("[..., a = 1, b = 2, ...]", "1 2"));
        assert!(!m("[a, b, c]", "1 2"));
        assert!(!m("[a, b]", "1 2 3"));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{{ {}$.a = 1{} }}", "(".repeat(n), ")".repeat(n));
        assert!(m(&nested(DEPTH_MAX), r#"{"a": 1}"#));
        bad(&nested(DEPTH_MAX + 1));
        bad(&nested(505));
        bad(&format!("{{ {}$.a = 1 }}", "(".repeat(100_000)));
        bad(&format!("[a = {}1]", "(".repeat(100_000)));
        // Long chains stay flat: matching and dropping them needs no deep recursion.
        let chain = vec!["$.a = 1"; 20_000].join(" && ");
        assert!(m(&format!("{{ {chain} }}"), r#"{"a": 1}"#));
        let chain = vec!["$.a = 2"; 20_000].join(" || ");
        assert!(!m(&format!("{{ {chain} }}"), r#"{"a": 1}"#));
        let mixed = vec!["($.a = 1 || $.b = 2) && $.a = 1"; 5_000].join(" || ");
        assert!(m(&format!("{{ {mixed} }}"), r#"{"a": 1}"#));
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

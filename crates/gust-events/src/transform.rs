//! What a target receives: the event, the target's constant `Input`, the part of the event its
//! `InputPath` names, or its `InputTransformer`'s template filled in.
//!
//! Paths are the JSONPath subset EventBridge documents: `$`, `.name`, `['name']` and `[index]`
//! steps. A template's `<name>` placeholders take the values `InputPathsMap` extracts, or
//! the predefined ones (`aws.events.rule-arn`, `aws.events.rule-name`, `aws.events.event`,
//! `aws.events.event.json`, `aws.events.event.ingestion-time`). Outside a JSON string a
//! placeholder becomes its value as JSON (a string quoted); inside one, the value's text as
//! it is (EventBridge does not escape it). A path the event lacks gives `null` outside a
//! string and nothing inside one.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::Target;

/// The placeholders EventBridge defines; they cannot be redefined.
pub(crate) const PREDEFINED: [&str; 5] = [
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event",
    "aws.events.event.json",
    "aws.events.event.ingestion-time",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The steps of a path, `None` when it is not one.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                steps.push(Step::Key(chars[start..end].iter().collect()));
                i = end;
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                let quoted = |q: char| {
                    inner
                        .strip_prefix(q)
                        .and_then(|s| s.strip_suffix(q))
                        .map(str::to_owned)
                };
                if let Some(key) = quoted('\'').or_else(|| quoted('"')) {
                    steps.push(Step::Key(key));
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Whether `path` is a path this module can follow.
pub(crate) fn is_path(path: &str) -> bool {
    parse_path(path).is_some()
}

/// The value `path` names in `event`.
pub(crate) fn lookup(event: &Value, path: &str) -> Option<Value> {
    let mut at = event;
    for step in parse_path(path)? {
        at = match step {
            Step::Key(key) => at.get(key.as_str())?,
            Step::Index(index) => at.get(index)?,
        };
    }
    Some(at.clone())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The placeholder starting at `chars[at]` (a `<`): its name and the index after its `>`.
fn placeholder_at(chars: &[char], at: usize) -> Option<(String, usize)> {
    let close = chars[at + 1..].iter().position(|c| *c == '>')? + at + 1;
    let name: String = chars[at + 1..close].iter().collect();
    (!name.is_empty() && name.chars().all(is_name_char)).then_some((name, close + 1))
}

/// The placeholders a template uses, in order.
pub(crate) fn placeholders(template: &str) -> Vec<String> {
    let chars: Vec<char> = template.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '<' {
            if let Some((name, next)) = placeholder_at(&chars, i) {
                found.push(name);
                i = next;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// The event and rule a payload is made for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The event.
    pub event: &'a Value,
    /// The event as sent (its JSON text).
    pub event_text: &'a str,
    /// The rule's ARN.
    pub rule_arn: &'a str,
    /// The rule's name.
    pub rule_name: &'a str,
    /// When EventBridge received the event (RFC 3339).
    pub ingestion_time: &'a str,
}

/// What `target` receives for the event.
pub(crate) fn payload(target: &Target, context: &Context<'_>) -> String {
    if let Some(input) = &target.input {
        return input.clone();
    }
    if let Some(path) = &target.input_path {
        return lookup(context.event, path)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into());
    }
    if let Some(transformer) = &target.input_transformer {
        let mut values: HashMap<String, Option<Value>> = transformer
            .input_paths_map
            .iter()
            .map(|(name, path)| (name.clone(), lookup(context.event, path)))
            .collect();
        let mut event_only = context.event.clone();
        if let Some(object) = event_only.as_object_mut() {
            object.remove("detail");
            if let Some(detail_type) = object.remove("detail-type") {
                object.insert("detailType".into(), detail_type);
            }
        }
        let predefined = [
            ("aws.events.rule-arn", Value::from(context.rule_arn)),
            ("aws.events.rule-name", Value::from(context.rule_name)),
            (
                "aws.events.event.ingestion-time",
                Value::from(context.ingestion_time),
            ),
            ("aws.events.event", event_only),
            ("aws.events.event.json", context.event.clone()),
        ];
        for (name, value) in predefined {
            values.insert(name.to_owned(), Some(value));
        }
        return fill(&transformer.input_template, &values);
    }
    context.event_text.to_owned()
}

/// The template with its placeholders replaced.
fn fill(template: &str, values: &HashMap<String, Option<Value>>) -> String {
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '<' {
            if let Some((name, next)) = placeholder_at(&chars, i) {
                if let Some(value) = values.get(&name) {
                    match (value, in_string) {
                        (Some(Value::String(s)), true) => out.push_str(s),
                        (Some(other), true) => out.push_str(&other.to_string()),
                        (None, true) => {}
                        (Some(v), false) => out.push_str(&v.to_string()),
                        (None, false) => out.push_str("null"),
                    }
                    i = next;
                    continue;
                }
            }
        }
        out.push(c);
        if in_string && c == '\\' {
            if let Some(&escaped) = chars.get(i + 1) {
                out.push(escaped);
                i += 2;
                continue;
            }
        }
        if c == '"' {
            in_string = !in_string;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InputTransformer;
    use serde_json::json;

    /// EventBridge's input transformer example event.
    fn event() -> Value {
        json!({
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "123456789012",
            "time": "2015-11-11T21:29:54Z",
            "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {"instance-id": "i-0123456789", "state": "RUNNING"}
        })
    }

    fn transformed(template: &str) -> String {
        let event = event();
        let text = event.to_string();
        let target = Target {
            id: "t".into(),
            arn: "arn:aws:sqs:us-east-1:123456789012:q".into(),
            input_transformer: Some(InputTransformer {
                input_paths_map: [
                    ("timestamp", "$.time"),
                    ("instance", "$.detail.instance-id"),
                    ("state", "$.detail.state"),
                    ("resource", "$.resources[0]"),
                    ("missing", "$.detail.nothing"),
                    ("detail", "$.detail"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                input_template: template.into(),
            }),
            ..Target::default()
        };
        payload(
            &target,
            &Context {
                event: &event,
                event_text: &text,
                rule_arn: "arn:aws:events:us-east-2:123456789012:rule/example",
                rule_name: "example",
                ingestion_time: "2015-11-11T21:29:55Z",
            },
        )
    }

    #[test]
    fn documented_templates() {
        assert_eq!(
            transformed(r#""instance <instance> is in <state>""#),
            r#""instance i-0123456789 is in RUNNING""#
        );
        assert_eq!(
            transformed(r#""instance \"<instance>\" is in <state>""#),
            r#""instance \"i-0123456789\" is in RUNNING""#
        );
        let simple: Value = serde_json::from_str(&transformed(
            r#"{"instance" : <instance>, "state": <state>}"#,
        ))
        .unwrap();
        assert_eq!(
            simple,
            json!({"instance": "i-0123456789", "state": "RUNNING"})
        );
        let mixed: Value = serde_json::from_str(&transformed(
            r#"{"instance" : <instance>, "state": [ 9, <state>, true ], "Transformed" : "Yes"}"#,
        ))
        .unwrap();
        assert_eq!(
            mixed,
            json!({"instance": "i-0123456789", "state": [9, "RUNNING", true], "Transformed": "Yes"})
        );
        let strings: Value = serde_json::from_str(&transformed(
            r#"{"instance" : <instance>, "state": "<state>", "instanceStatus": "instance \"<instance>\" is in <state>"}"#,
        ))
        .unwrap();
        assert_eq!(strings["state"], "RUNNING");
        assert_eq!(
            strings["instanceStatus"],
            "instance \"i-0123456789\" is in RUNNING"
        );
        let reserved: Value = serde_json::from_str(&transformed(
            r#"{"ruleArn" : <aws.events.rule-arn>, "ruleName" : <aws.events.rule-name>, "originalEvent" : <aws.events.event.json>, "event": <aws.events.event>}"#,
        ))
        .unwrap();
        assert_eq!(
            reserved["ruleArn"],
            "arn:aws:events:us-east-2:123456789012:rule/example"
        );
        assert_eq!(reserved["ruleName"], "example");
        assert_eq!(reserved["originalEvent"], event());
        assert_eq!(
            reserved["event"]["detailType"],
            "EC2 Instance State-change Notification"
        );
        assert!(reserved["event"].get("detail").is_none());
        assert_eq!(
            transformed(r#""<aws.events.rule-name> triggered""#),
            r#""example triggered""#
        );
    }

    #[test]
    fn paths_missing_values_and_objects() {
        assert_eq!(
            transformed(r#"{"r": <resource>}"#),
            r#"{"r": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"}"#
        );
        assert_eq!(
            transformed(r#"{"m": <missing>, "s": "x<missing>y"}"#),
            r#"{"m": null, "s": "xy"}"#
        );
        assert_eq!(
            transformed(r#"{"d": <detail>}"#),
            r#"{"d": {"instance-id":"i-0123456789","state":"RUNNING"}}"#
        );
        // Text that is not a placeholder stays.
        assert_eq!(transformed(r#""a < b > c""#), r#""a < b > c""#);
        assert_eq!(lookup(&event(), "$"), Some(event()));
        assert_eq!(
            lookup(&event(), "$.detail['instance-id']"),
            Some(json!("i-0123456789"))
        );
        assert!(!is_path("detail.state"));
        assert!(!is_path("$..x"));
        assert_eq!(
            placeholders("<a> and <b.c> but not < d >"),
            vec!["a", "b.c"]
        );
    }
}

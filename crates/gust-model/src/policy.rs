//! Resource-based policies: the statements AddPermission writes, rendered as Lambda renders
//! them, and the one check every caller of a function or layer goes through ("may this
//! principal do this action on this resource?"). Event sources and function URLs will ask
//! the same question for their service principals.

use serde_json::{json, Map, Value};

use crate::error::{ModelError, Violations};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A request signed with an account's credentials.
    Account(String),
    /// An AWS service acting for a resource (`s3.amazonaws.com` for bucket `SourceArn`).
    Service {
        /// The service principal.
        service: String,
        /// The resource the event comes from.
        source_arn: Option<String>,
        /// The account owning that resource.
        source_account: Option<String>,
    },
    /// An HTTP request to a function URL: anyone (`NONE`), or a signed request from an
    /// account (`AWS_IAM`). Statements for it carry `lambda:FunctionUrlAuthType` and
    /// `lambda:InvokedViaFunctionUrl` conditions.
    Url {
        /// The signing account (`AWS_IAM`); `None` for an anonymous request.
        account: Option<String>,
        /// The URL's `AuthType`.
        auth_type: String,
    },
}

/// An AddPermission request, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// `StatementId`.
    pub statement_id: String,
    /// `Action`: `lambda:InvokeFunction`, `lambda:*`, ...
    pub action: String,
    /// `Principal`: `*`, an account id, an account or role ARN, or a service.
    pub principal: String,
    /// `SourceArn`.
    pub source_arn: Option<String>,
    /// `SourceAccount`.
    pub source_account: Option<String>,
    /// `EventSourceToken`.
    pub event_source_token: Option<String>,
    /// `PrincipalOrgID`.
    pub principal_org_id: Option<String>,
    /// `FunctionUrlAuthType`.
    pub function_url_auth_type: Option<String>,
    /// `InvokedViaFunctionUrl`.
    pub invoked_via_function_url: Option<bool>,
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

/// Checks a statement id (`AddPermission`'s `StatementId`).
pub fn validate_statement_id(id: &str, violations: &mut Violations) {
    violations.length(id, "statementId", 1, 100);
    if !id.is_empty()
        && !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        violations.push(
            id,
            "statementId",
            "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
        );
    }
}

impl Permission {
    /// The statement granting this permission on `resource`, as Lambda renders it.
    pub fn statement(&self, resource: &str) -> Result<Value, ModelError> {
        let mut violations = Violations::default();
        validate_statement_id(&self.statement_id, &mut violations);
        violations.length(&self.action, "action", 0, 10000);
        violations.length(&self.principal, "principal", 0, 2048);
        if let Some(token) = &self.event_source_token {
            violations.length(token, "eventSourceToken", 0, 256);
            if !token.is_empty()
                && !token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                violations.push(
                    token.as_str(),
                    "eventSourceToken",
                    "Member must satisfy regular expression pattern: [a-zA-Z0-9._\\-]+",
                );
            }
        }
        let action_ok = self.action == "*"
            || self.action.strip_prefix("lambda:").is_some_and(|a| {
                a == "*" || (!a.is_empty() && a.chars().all(|c| c.is_ascii_alphabetic()))
            });
        if !action_ok {
            violations.push(
                self.action.as_str(),
                "action",
                "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
            );
        }
        if self.principal.is_empty() || self.principal.chars().any(char::is_whitespace) {
            violations.push(
                self.principal.as_str(),
                "principal",
                "Member must satisfy regular expression pattern: [^\\s]+",
            );
        }
        if let Some(account) = &self.source_account {
            if !is_account(account) {
                violations.push(
                    account.as_str(),
                    "sourceAccount",
                    "Member must satisfy regular expression pattern: \\d{12}",
                );
            }
        }
        if let Some(arn) = &self.source_arn {
            if !source_arn_well_formed(arn) {
                violations.push(
                    arn.as_str(),
                    "sourceArn",
                    "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
                );
            }
        }
        if let Some(org) = &self.principal_org_id {
            violations.length(org, "principalOrgID", 12, 34);
            let ok = org.strip_prefix("o-").is_some_and(|rest| {
                (10..=32).contains(&rest.len())
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
            if !ok {
                violations.push(
                    org.as_str(),
                    "principalOrgID",
                    "Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}",
                );
            }
        }
        if let Some(auth) = &self.function_url_auth_type {
            if auth != "NONE" && auth != "AWS_IAM" {
                violations.push(
                    auth.as_str(),
                    "functionUrlAuthType",
                    "Member must satisfy enum value set: [NONE, AWS_IAM]",
                );
            }
        }
        violations.finish()?;

        let principal = if self.principal == "*" {
            json!("*")
        } else if is_account(&self.principal) {
            json!({"AWS": format!("arn:aws:iam::{}:root", self.principal)})
        } else if self.principal.starts_with("arn:aws:iam::") {
            json!({"AWS": self.principal})
        } else if self.principal.contains('.') {
            json!({"Service": self.principal})
        } else {
            return Err(ModelError::invalid(format!(
                "The provided principal was invalid. Please check the principal and try again. Principal: {}",
                self.principal
            )));
        };
        let mut conditions: Map<String, Value> = Map::new();
        let mut string_equals = Map::new();
        if let Some(account) = &self.source_account {
            string_equals.insert("AWS:SourceAccount".into(), json!(account));
        }
        if let Some(token) = &self.event_source_token {
            string_equals.insert("lambda:EventSourceToken".into(), json!(token));
        }
        if let Some(org) = &self.principal_org_id {
            string_equals.insert("aws:PrincipalOrgID".into(), json!(org));
        }
        if let Some(auth) = &self.function_url_auth_type {
            string_equals.insert("lambda:FunctionUrlAuthType".into(), json!(auth));
        }
        if !string_equals.is_empty() {
            conditions.insert("StringEquals".into(), Value::Object(string_equals));
        }
        if let Some(arn) = &self.source_arn {
            conditions.insert("ArnLike".into(), json!({"AWS:SourceArn": arn}));
        }
        if self.invoked_via_function_url == Some(true) {
            conditions.insert(
                "Bool".into(),
                json!({"lambda:InvokedViaFunctionUrl": "true"}),
            );
        }
        let mut statement = json!({
            "Sid": self.statement_id,
            "Effect": "Allow",
            "Principal": principal,
            "Action": self.action,
            "Resource": resource,
        });
        if !conditions.is_empty() {
            statement["Condition"] = Value::Object(conditions);
        }
        Ok(statement)
    }
}

/// `arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:(region)?:(\d{12})?:(.*)`, the model's `Arn`.
fn source_arn_well_formed(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, _rest] = parts.as_slice() else {
        return false;
    };
    *prefix == "arn"
        && partition
            .strip_prefix("aws")
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && (region.is_empty() || crate::names::is_region(region))
        && (account.is_empty() || is_account(account))
}

/// The policy document of a resource, as GetPolicy returns it (`Policy` is this, as text).
pub fn document(statements: &[Value]) -> Value {
    json!({"Version": "2012-10-17", "Id": "default", "Statement": statements})
}

/// `*` and `?` wildcards, as IAM's `ArnLike` matches them.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `value` (a string or a list of strings) has an element `test` accepts.
fn one_of(value: &Value, test: impl Fn(&str) -> bool) -> bool {
    match value {
        Value::String(one) => test(one),
        Value::Array(all) => all.iter().filter_map(Value::as_str).any(test),
        _ => false,
    }
}

fn principal_matches(principal: &Value, caller: &Caller) -> bool {
    match (principal, caller) {
        (Value::String(any), _) => any == "*",
        (Value::Object(map), Caller::Account(account)) => map.get("AWS").is_some_and(|aws| {
            one_of(aws, |arn| {
                arn == "*" || arn == account || arn.split(':').nth(4) == Some(account.as_str())
            })
        }),
        (Value::Object(map), Caller::Service { service, .. }) => map
            .get("Service")
            .is_some_and(|s| one_of(s, |name| name == service)),
        (
            Value::Object(map),
            Caller::Url {
                account: Some(account),
                ..
            },
        ) => principal_matches(
            &Value::Object(map.clone()),
            &Caller::Account(account.clone()),
        ),
        _ => false,
    }
}

fn action_matches(action: &Value, wanted: &str) -> bool {
    // `service:*` covers the service's actions; IAM compares actions case-insensitively.
    let service_wildcard = wanted
        .split_once(':')
        .map(|(service, _)| format!("{service}:*"));
    let one = |a: &str| {
        a == "*"
            || a.eq_ignore_ascii_case(wanted)
            || service_wildcard
                .as_deref()
                .is_some_and(|w| a.eq_ignore_ascii_case(w))
    };
    match action {
        Value::String(a) => one(a),
        Value::Array(all) => all.iter().filter_map(Value::as_str).any(one),
        _ => false,
    }
}

/// Whether every condition holds for `caller`. Conditions on what Gust cannot know (an
/// organization, a function URL, an event source token) do not hold.
fn conditions_hold(conditions: Option<&Value>, caller: &Caller) -> bool {
    let Some(Value::Object(conditions)) = conditions else {
        return true;
    };
    let (source_arn, source_account) = match caller {
        Caller::Service {
            source_arn,
            source_account,
            ..
        } => (source_arn.as_deref(), source_account.as_deref()),
        Caller::Account(_) | Caller::Url { .. } => (None, None),
    };
    let url_auth = match caller {
        Caller::Url { auth_type, .. } => Some(auth_type.as_str()),
        _ => None,
    };
    conditions.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().all(|(key, expected)| {
            let expected = expected.as_str().unwrap_or_default();
            match (operator.as_str(), key.to_ascii_lowercase().as_str()) {
                ("ArnLike" | "ArnEquals", "aws:sourcearn") => {
                    source_arn.is_some_and(|arn| wildcard_match(expected, arn))
                }
                ("StringEquals", "aws:sourceaccount") => source_account == Some(expected),
                ("StringEquals", "lambda:functionurlauthtype") => url_auth == Some(expected),
                ("Bool", "lambda:invokedviafunctionurl") => {
                    expected.eq_ignore_ascii_case("true") == url_auth.is_some()
                }
                _ => false,
            }
        })
    })
}

/// Whether a whole policy document (`{"Statement": [...]}` or a single statement object,
/// as SQS and SNS store them) lets `caller` perform `action`.
pub fn document_allows(document: &Value, caller: &Caller, action: &str) -> bool {
    match document.get("Statement") {
        Some(Value::Array(statements)) => allows(statements, caller, action),
        Some(statement @ Value::Object(_)) => {
            allows(std::slice::from_ref(statement), caller, action)
        }
        _ => false,
    }
}

/// Whether `statements` (a resource's policy) let `caller` perform `action`: some `Allow`
/// statement matches and no `Deny` does. A `Deny` whose conditions Gust cannot evaluate is
/// taken to match (failing closed); an `Allow` with such conditions does not.
pub fn allows(statements: &[Value], caller: &Caller, action: &str) -> bool {
    let applies = |statement: &Value| {
        statement
            .get("Principal")
            .is_some_and(|p| principal_matches(p, caller))
            && statement
                .get("Action")
                .is_some_and(|a| action_matches(a, action))
    };
    fn effect(statement: &Value) -> Option<&str> {
        statement.get("Effect").and_then(Value::as_str)
    }
    let denied = statements.iter().any(|statement| {
        effect(statement) == Some("Deny")
            && applies(statement)
            && (statement.get("Condition").is_none()
                || conditions_hold(statement.get("Condition"), caller)
                || !conditions_understood(statement.get("Condition")))
    });
    !denied
        && statements.iter().any(|statement| {
            effect(statement) == Some("Allow")
                && applies(statement)
                && conditions_hold(statement.get("Condition"), caller)
        })
}

/// Whether every condition is one [`conditions_hold`] can evaluate.
fn conditions_understood(conditions: Option<&Value>) -> bool {
    let Some(Value::Object(conditions)) = conditions else {
        return conditions.is_none();
    };
    conditions.iter().all(|(operator, keys)| {
        keys.as_object().is_some_and(|keys| {
            keys.keys().all(|key| {
                matches!(
                    (operator.as_str(), key.to_ascii_lowercase().as_str()),
                    ("ArnLike" | "ArnEquals", "aws:sourcearn")
                        | ("StringEquals", "aws:sourceaccount")
                        | ("StringEquals", "lambda:functionurlauthtype")
                        | ("Bool", "lambda:invokedviafunctionurl")
                )
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(principal: &str) -> Permission {
        Permission {
            statement_id: "s".into(),
            action: "lambda:InvokeFunction".into(),
            principal: principal.into(),
            ..Permission::default()
        }
    }

    #[test]
    fn function_url_callers_need_both_url_statements() {
        let resource = "arn:aws:lambda:us-east-1:000000000000:function:f";
        let url = Permission {
            action: "lambda:InvokeFunctionUrl".into(),
            function_url_auth_type: Some("NONE".into()),
            ..permission("*")
        }
        .statement(resource)
        .unwrap();
        let invoke = Permission {
            statement_id: "i".into(),
            invoked_via_function_url: Some(true),
            ..permission("*")
        }
        .statement(resource)
        .unwrap();
        let anonymous = Caller::Url {
            account: None,
            auth_type: "NONE".into(),
        };
        let both = [url.clone(), invoke.clone()];
        assert!(allows(&both, &anonymous, "lambda:InvokeFunctionUrl"));
        assert!(allows(&both, &anonymous, "lambda:InvokeFunction"));
        // The InvokedViaFunctionUrl statement does not open plain Invoke to anyone.
        assert!(!allows(
            &both,
            &Caller::Account("111111111111".into()),
            "lambda:InvokeFunction"
        ));
        // A statement for NONE does not admit an IAM-signed URL, nor the other way round.
        let signed = Caller::Url {
            account: Some("111111111111".into()),
            auth_type: "AWS_IAM".into(),
        };
        assert!(!allows(&both, &signed, "lambda:InvokeFunctionUrl"));
        let account_grant = Permission {
            action: "lambda:InvokeFunctionUrl".into(),
            function_url_auth_type: Some("AWS_IAM".into()),
            ..permission("111111111111")
        }
        .statement(resource)
        .unwrap();
        assert!(allows(
            std::slice::from_ref(&account_grant),
            &signed,
            "lambda:InvokeFunctionUrl"
        ));
        let other = Caller::Url {
            account: Some("222222222222".into()),
            auth_type: "AWS_IAM".into(),
        };
        assert!(!allows(
            &[account_grant],
            &other,
            "lambda:InvokeFunctionUrl"
        ));
    }

    #[test]
    fn statements_render_as_lambda_renders_them() {
        let resource = "arn:aws:lambda:us-east-1:000000000000:function:f";
        let s3 = Permission {
            source_arn: Some("arn:aws:s3:::bucket".into()),
            source_account: Some("111111111111".into()),
            ..permission("s3.amazonaws.com")
        };
        assert_eq!(
            s3.statement(resource).unwrap(),
            json!({"Sid": "s", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                   "Action": "lambda:InvokeFunction", "Resource": resource,
                   "Condition": {"StringEquals": {"AWS:SourceAccount": "111111111111"},
                                 "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"}}})
        );
        assert_eq!(
            permission("222222222222").statement(resource).unwrap()["Principal"],
            json!({"AWS": "arn:aws:iam::222222222222:root"})
        );
        assert_eq!(
            permission("*").statement(resource).unwrap()["Principal"],
            json!("*")
        );
        assert!(permission("nonsense").statement(resource).is_err());
        assert!(source_arn_well_formed("arn:aws:s3:::bucket"));
        assert!(source_arn_well_formed(
            "arn:aws:sqs:us-east-1:123456789012:q"
        ));
        assert!(!source_arn_well_formed("arn:aws:s3:nowhere::bucket"));
        assert!(!source_arn_well_formed("arn:aws:s3::1234:bucket"));
        assert!(matches!(
            Permission {
                action: "lambda:Invoke Function".into(),
                ..permission("*")
            }
            .statement(resource),
            Err(ModelError::Constraints(_))
        ));
    }

    #[test]
    fn the_check() {
        let resource = "arn:aws:lambda:us-east-1:000000000000:function:f";
        let account = permission("222222222222").statement(resource).unwrap();
        let s3 = Permission {
            source_arn: Some("arn:aws:s3:::bucket-*".into()),
            ..permission("s3.amazonaws.com")
        }
        .statement(resource)
        .unwrap();
        let policy = vec![account, s3];
        let invoke = "lambda:InvokeFunction";
        assert!(allows(
            &policy,
            &Caller::Account("222222222222".into()),
            invoke
        ));
        assert!(!allows(
            &policy,
            &Caller::Account("333333333333".into()),
            invoke
        ));
        assert!(!allows(
            &policy,
            &Caller::Account("222222222222".into()),
            "lambda:GetFunction"
        ));
        let from = |arn: &str| Caller::Service {
            service: "s3.amazonaws.com".into(),
            source_arn: Some(arn.into()),
            source_account: None,
        };
        assert!(allows(&policy, &from("arn:aws:s3:::bucket-a"), invoke));
        assert!(!allows(&policy, &from("arn:aws:s3:::other"), invoke));
        assert!(!allows(
            &[],
            &Caller::Account("222222222222".into()),
            invoke
        ));
        let deny =
            json!({"Effect": "Deny", "Principal": {"AWS": "222222222222"}, "Action": "lambda:*"});
        let with_deny = vec![policy[0].clone(), deny];
        assert!(!allows(
            &with_deny,
            &Caller::Account("222222222222".into()),
            invoke
        ));
        let unknown = json!({"Effect": "Deny", "Principal": "*", "Action": "*",
                             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}});
        assert!(
            !allows(
                &[policy[0].clone(), unknown],
                &Caller::Account("222222222222".into()),
                invoke
            ),
            "a Deny Gust cannot evaluate fails closed"
        );
        assert!(wildcard_match("a*c?e", "abbbcde"));
        assert!(!wildcard_match("a*c", "abd"));
    }
}

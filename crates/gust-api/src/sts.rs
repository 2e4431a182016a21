//! The STS adapter: who the caller is (`GetCallerIdentity`) and session credentials
//! (`AssumeRole`, `GetSessionToken`) that this server then accepts. Roles are names, not
//! permissions: a session acts with its account's rights, and only in its own account.

use gust_sts::{check_assume_role, Issuer, Session, StsError};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::protocol::ServiceError;
use crate::Identity;

impl From<StsError> for ServiceError {
    fn from(error: StsError) -> Self {
        let (status, code) = match &error {
            StsError::Validation(_) => (400, "ValidationError"),
            StsError::AccessDenied(_) => (403, "AccessDenied"),
            StsError::ExpiredToken => (400, "ExpiredToken"),
            StsError::InvalidToken => (403, "InvalidClientTokenId"),
        };
        ServiceError::client(status, code, error.to_string())
    }
}

/// The caller as STS describes it.
pub(crate) struct Caller<'a> {
    /// The signing identity (`None` without authentication).
    pub(crate) identity: Option<&'a Identity>,
    /// The account acted in.
    pub(crate) account: &'a str,
}

impl Caller<'_> {
    fn session(&self) -> Option<&Session> {
        self.identity
            .and_then(|i| i.session.as_ref())
            .filter(|s| !s.role_arn.is_empty())
    }

    fn arn(&self) -> String {
        match self.session() {
            Some(session) => session.assumed_role_arn(),
            None => format!("arn:aws:iam::{}:root", self.account),
        }
    }

    fn user_id(&self) -> String {
        match self.session() {
            Some(session) => session.assumed_role_id(),
            None => self.account.to_owned(),
        }
    }
}

fn timestamp(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn credentials(session: &Session) -> Value {
    json!({
        "AccessKeyId": session.access_key_id,
        "SecretAccessKey": session.secret_access_key,
        "SessionToken": session.session_token,
        "Expiration": timestamp(session.expires),
    })
}

fn string<'v>(input: &'v Value, name: &str) -> Option<&'v str> {
    input.get(name).and_then(Value::as_str)
}

fn integer(input: &Value, name: &str) -> Result<Option<i64>, StsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_i64()),
        Some(other) => Err(StsError::Validation(format!(
            "1 validation error detected: Value '{}' at '{name}' failed to satisfy constraint: Member must be a number",
            other.as_str().unwrap_or_default()
        ))),
    }
}

/// Runs one operation.
pub(crate) fn handle(
    issuer: &Issuer,
    now: OffsetDateTime,
    caller: &Caller<'_>,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    match operation {
        "GetCallerIdentity" => Ok(json!({
            "UserId": caller.user_id(),
            "Account": caller.account,
            "Arn": caller.arn(),
        })),
        "AssumeRole" => {
            let role_arn = string(input, "RoleArn").ok_or_else(|| {
                StsError::Validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null".into())
            })?;
            let session_name = string(input, "RoleSessionName").ok_or_else(|| {
                StsError::Validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null".into())
            })?;
            let duration = integer(input, "DurationSeconds")?;
            check_assume_role(role_arn, session_name, duration)?;
            let role_account = role_arn.split(':').nth(4).unwrap_or_default();
            if role_account != caller.account {
                return Err(StsError::AccessDenied(format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                    caller.arn()
                ))
                .into());
            }
            // Role chaining (session credentials assuming a role) is capped at an hour,
            // as STS caps it.
            let chained = caller.identity.is_some_and(|i| i.session.is_some());
            if chained && duration.is_some_and(|d| d > 3600) {
                return Err(StsError::Validation(
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
                )
                .into());
            }
            let session = issuer.issue(
                caller.account,
                role_arn,
                session_name,
                now,
                duration.unwrap_or(3600),
            );
            Ok(json!({
                "Credentials": credentials(&session),
                "AssumedRoleUser": {
                    "AssumedRoleId": session.assumed_role_id(),
                    "Arn": session.assumed_role_arn(),
                },
            }))
        }
        "GetSessionToken" => {
            if caller.identity.is_some_and(|i| i.session.is_some()) {
                return Err(StsError::AccessDenied(
                    "Cannot call GetSessionToken with session credentials".into(),
                )
                .into());
            }
            let duration = integer(input, "DurationSeconds")?.unwrap_or(43_200);
            if !(900..=129_600).contains(&duration) {
                return Err(StsError::Validation(format!(
                    "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 129600"
                ))
                .into());
            }
            // No role: the session acts as the account itself.
            let session = issuer.issue(caller.account, "", "session", now, duration);
            Ok(json!({"Credentials": credentials(&session)}))
        }
        other => Err(ServiceError::client(
            400,
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

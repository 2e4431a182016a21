//! Validation failures, in the two shapes Lambda reports them.

use std::fmt;

/// One failed constraint on one input member, as Lambda's front end reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintViolation {
    /// The offending value, as the message shows it.
    pub value: Shown,
    /// The member's name in the API's lowerCamelCase (`functionName`, `memorySize`).
    pub member: &'static str,
    /// The constraint, e.g. `Member must have value less than or equal to 10240`.
    pub constraint: String,
}

/// How a violation shows the value it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Quoted, as the user sent it (cut when long).
    Value(String),
    /// Not echoed (environment variables).
    Hidden,
    /// The member is missing: `null`, written bare, as the front end writes it.
    Null,
}

impl fmt::Display for ConstraintViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Shown::Value(value) => write!(f, "Value '{value}' at "),
            Shown::Hidden => f.write_str("Value at "),
            Shown::Null => f.write_str("Value null at "),
        }?;
        write!(
            f,
            "'{}' failed to satisfy constraint: {}",
            self.member, self.constraint
        )
    }
}

/// Longest value a message quotes back, in characters: past it the value is cut and ends
/// in `...`, so an oversized input is not echoed whole (a 10 MB description would be).
pub const QUOTED_VALUE_MAX_CHARS: usize = 2048;

/// `value` as a message may quote it.
pub fn quoted(value: String) -> String {
    match value.char_indices().nth(QUOTED_VALUE_MAX_CHARS) {
        None => value,
        Some((cut, _)) => format!("{}...", &value[..cut]),
    }
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Pattern, length, range or enum failures: Lambda's `ValidationException`.
    #[error("{}", format_violations(.0))]
    Constraints(Vec<ConstraintViolation>),
    /// A semantically invalid parameter: Lambda's `InvalidParameterValueException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// A well-formed function name longer than 64 characters: Lambda refuses it on create
    /// (`InvalidParameterValueException`) and finds no such function elsewhere.
    #[error("1 validation error detected: Value '{}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64", quoted(.0.clone()))]
    NameTooLong(String),
    /// A value the model allows but the service's limit does not: Lambda's
    /// `ValidationException` in its own form (`'MemorySize' value failed to satisfy
    /// constraint: …`).
    #[error("'{member}' value failed to satisfy constraint: Member must have value less than or equal to {max}")]
    ServiceLimit {
        /// The member as the message names it (`MemorySize`).
        member: &'static str,
        /// The service's limit.
        max: i64,
    },
    /// A name the read and invoke operations accept but no function can have (it holds a
    /// `.`): whatever asks for it finds nothing.
    #[error("no function can be named {0}")]
    NoSuchName(String),
}

impl ModelError {
    /// A single constraint violation.
    pub fn constraint(
        value: impl Into<String>,
        member: &'static str,
        constraint: impl Into<String>,
    ) -> Self {
        ModelError::Constraints(vec![ConstraintViolation {
            value: Shown::Value(quoted(value.into())),
            member,
            constraint: constraint.into(),
        }])
    }

    /// A required member that is missing.
    pub fn missing(member: &'static str) -> Self {
        let mut violations = Violations::default();
        violations.missing(member);
        ModelError::Constraints(violations.0)
    }

    /// An `InvalidParameterValueException` with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        ModelError::InvalidParameter(message.into())
    }
}

fn format_violations(violations: &[ConstraintViolation]) -> String {
    let count = violations.len();
    let noun = if count == 1 { "error" } else { "errors" };
    let details: Vec<String> = violations.iter().map(ToString::to_string).collect();
    format!("{count} validation {noun} detected: {}", details.join("; "))
}

/// Collects constraint violations across members so one response lists them all,
/// as Lambda does ("2 validation errors detected: …; …").
#[derive(Debug, Default)]
pub struct Violations(Vec<ConstraintViolation>);

impl Violations {
    /// Records a violation.
    pub fn push(
        &mut self,
        value: impl Into<String>,
        member: &'static str,
        constraint: impl Into<String>,
    ) {
        self.0.push(ConstraintViolation {
            value: Shown::Value(quoted(value.into())),
            member,
            constraint: constraint.into(),
        });
    }

    /// Records a required member that is missing.
    pub fn missing(&mut self, member: &'static str) {
        self.0.push(ConstraintViolation {
            value: Shown::Null,
            member,
            constraint: "Member must not be null".into(),
        });
    }

    /// Records a violation whose value must not be echoed back.
    pub fn push_hidden(&mut self, member: &'static str, constraint: impl Into<String>) {
        self.0.push(ConstraintViolation {
            value: Shown::Hidden,
            member,
            constraint: constraint.into(),
        });
    }

    /// Checks an integer range, recording a violation when it is outside.
    pub fn range(&mut self, value: i64, member: &'static str, min: i64, max: i64) {
        if value < min {
            self.push(
                value.to_string(),
                member,
                format!("Member must have value greater than or equal to {min}"),
            );
        } else if value > max {
            self.push(
                value.to_string(),
                member,
                format!("Member must have value less than or equal to {max}"),
            );
        }
    }

    /// Checks a string's length in characters.
    pub fn length(&mut self, value: &str, member: &'static str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min {
            self.push(
                value,
                member,
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.push(
                value,
                member,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    /// `Ok(())` when nothing was recorded, else a [`ModelError::Constraints`].
    pub fn finish(self) -> Result<(), ModelError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ModelError::Constraints(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_many_violations_read_like_lambda() {
        let one = ModelError::constraint(
            "x y",
            "functionName",
            "Member must satisfy regular expression pattern: p",
        );
        assert_eq!(
            one.to_string(),
            "1 validation error detected: Value 'x y' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: p"
        );
        let mut many = Violations::default();
        many.range(100, "memorySize", 128, 10240);
        many.range(901, "timeout", 1, 900);
        let text = many.finish().unwrap_err().to_string();
        assert!(
            text.starts_with("2 validation errors detected: Value '100' at 'memorySize'"),
            "{text}"
        );
        assert!(text.contains("; Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900"));
    }
}

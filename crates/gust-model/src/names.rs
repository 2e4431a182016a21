//! Function names, qualifiers and ARNs, and how Lambda resolves the `FunctionName` input.

use std::fmt;

use crate::error::ModelError;
use crate::limits::{FUNCTION_ID_MAX_LEN, FUNCTION_NAME_MAX_LEN, NAMESPACED_FUNCTION_ID_MAX_LEN};

/// The pattern Lambda reports for a bad `FunctionName` (shape `FunctionName`).
pub const FUNCTION_NAME_PATTERN: &str = "(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

/// The pattern of the read and invoke operations' `FunctionName` (shape
/// `NamespacedFunctionName`): names may hold `.`, and `$LATEST.PUBLISHED` is a qualifier.
pub const NAMESPACED_FUNCTION_NAME_PATTERN: &str = "(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";

/// Where functions live: one region and one account per server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// e.g. `us-east-1`.
    pub region: String,
    /// Twelve digits.
    pub account_id: String,
}

impl Scope {
    /// A scope after checking the region and account id forms.
    pub fn parse(region: &str, account_id: &str) -> Result<Self, ModelError> {
        if !is_region(region) {
            return Err(ModelError::invalid(format!(
                "'{region}' is not a region name (expected a form like us-east-1)"
            )));
        }
        if !is_account_id(account_id) {
            return Err(ModelError::invalid(format!(
                "'{account_id}' is not an account id (expected 12 digits)"
            )));
        }
        Ok(Scope {
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        })
    }

    /// `arn:aws:lambda:{region}:{account}:function:{name}`, with `:{qualifier}` when given.
    pub fn function_arn(&self, name: &FunctionName, qualifier: Option<&Qualifier>) -> String {
        let base = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, name
        );
        match qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }

    /// The log group Lambda uses for a function.
    pub fn log_group(name: &FunctionName) -> String {
        format!("/aws/lambda/{name}")
    }
}

/// A bare function name: 1–64 of `[a-zA-Z0-9-_]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionName(String);

impl FunctionName {
    /// Validates a bare name (no ARN, no qualifier).
    pub fn parse(name: &str) -> Result<Self, ModelError> {
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(pattern_error(name, IdKind::Mutating));
        }
        if name.len() > FUNCTION_NAME_MAX_LEN {
            return Err(ModelError::NameTooLong(name.to_owned()));
        }
        Ok(FunctionName(name.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a qualified function reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// The mutable, unpublished version.
    Latest,
    /// A published version number (1, 2, …).
    Version(u64),
    /// An alias name (not all digits).
    Alias(String),
}

impl Qualifier {
    /// Parses a qualifier as Lambda does: case-sensitive `$LATEST`, digits, or an alias name.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        if text == "$LATEST" {
            return Ok(Qualifier::Latest);
        }
        // Length first, then the model's pattern. It allows `$` anywhere, so `$latest` (or
        // `$LATEST.PUBLISHED`, or version `0`) is a well-formed qualifier that names
        // nothing: Lambda answers 404 for it, not 400.
        let mut violations = crate::error::Violations::default();
        violations.length(text, "qualifier", 1, 128);
        violations.finish()?;
        let well_formed =
            text == "$LATEST.PUBLISHED" || text.chars().all(|c| is_name_char(c) || c == '$');
        if !well_formed {
            return Err(ModelError::constraint(
                text,
                "qualifier",
                "Member must satisfy regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+",
            ));
        }
        match text.parse::<u64>() {
            Ok(n) if n > 0 && text.chars().all(|c| c.is_ascii_digit()) => Ok(Qualifier::Version(n)),
            _ => Ok(Qualifier::Alias(text.to_owned())),
        }
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Latest => f.write_str("$LATEST"),
            Qualifier::Version(n) => write!(f, "{n}"),
            Qualifier::Alias(a) => f.write_str(a),
        }
    }
}

/// A parsed `FunctionName` input: the name plus whatever the caller spelled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The bare name.
    pub name: FunctionName,
    /// `:qualifier` from the name or ARN, if any.
    pub qualifier: Option<Qualifier>,
    /// Region from a full ARN, if any.
    pub region: Option<String>,
    /// Account id from an ARN or partial ARN, if any.
    pub account_id: Option<String>,
}

/// Which limit applies to a function identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Create and update operations (shape `FunctionName`, ≤ 140).
    Mutating,
    /// Read and invoke operations (shape `NamespacedFunctionName`, ≤ 256).
    Namespaced,
}

impl FunctionRef {
    /// Parses `name`, `name:qualifier`, `123456789012:function:name[:q]` or a full ARN.
    pub fn parse(input: &str, kind: IdKind) -> Result<Self, ModelError> {
        let max = match kind {
            IdKind::Mutating => FUNCTION_ID_MAX_LEN,
            IdKind::Namespaced => NAMESPACED_FUNCTION_ID_MAX_LEN,
        };
        if input.is_empty() {
            return Err(ModelError::constraint(
                input,
                "functionName",
                "Member must have length greater than or equal to 1",
            ));
        }
        if input.chars().count() > max {
            return Err(ModelError::constraint(
                input,
                "functionName",
                format!("Member must have length less than or equal to {max}"),
            ));
        }
        match parse_tokens(input) {
            Some(parsed) => parsed,
            // The read and invoke operations take names with `.`, which no function can
            // have: well-formed there, and so a function that is not found.
            None if kind == IdKind::Namespaced && namespaced_name(input).is_some() => Err(
                ModelError::NoSuchName(namespaced_name(input).unwrap_or_default()),
            ),
            None => Err(pattern_error(input, kind)),
        }
    }

    /// Combines the qualifier spelled in the name with a `?Qualifier=` parameter.
    pub fn with_qualifier_param(mut self, param: Option<&str>) -> Result<Self, ModelError> {
        let Some(param) = param else {
            return Ok(self);
        };
        let from_param = Qualifier::parse(param)?;
        match &self.qualifier {
            Some(existing) if *existing != from_param => Err(ModelError::invalid(
                "The derived qualifier from the function name does not match the specified qualifier.",
            )),
            _ => {
                self.qualifier = Some(from_param);
                Ok(self)
            }
        }
    }
}

/// Splits on `:` and consumes the optional ARN parts left to right.
/// Returns `None` when the shape does not match the pattern at all.
fn parse_tokens(input: &str) -> Option<Result<FunctionRef, ModelError>> {
    let tokens: Vec<&str> = input.split(':').collect();
    let mut rest: &[&str] = &tokens;
    let mut region = None;
    let mut account_id = None;
    if rest.first() == Some(&"arn") {
        if rest.len() < 3 || !is_partition(rest[1]) || rest[2] != "lambda" {
            return None;
        }
        rest = &rest[3..];
    }
    let is_arn_like = rest.len() != tokens.len();
    // A bare `name:qualifier` is two tokens; region/account/`function` only make sense before a name.
    if is_arn_like || rest.len() > 2 {
        if rest.len() > 1 && is_region(rest[0]) {
            region = Some(rest[0].to_owned());
            rest = &rest[1..];
        }
        if rest.len() > 1 && is_account_id(rest[0]) {
            account_id = Some(rest[0].to_owned());
            rest = &rest[1..];
        }
        if rest.len() > 1 && rest[0] == "function" {
            rest = &rest[1..];
        }
    }
    let (name, qualifier) = match rest {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        _ => return None,
    };
    if name.is_empty() || !name.chars().all(is_name_char) {
        return None;
    }
    if let Some(q) = qualifier {
        if q != "$LATEST" && (q.is_empty() || !q.chars().all(is_name_char)) {
            return None;
        }
    }
    let parsed = (|| {
        Ok(FunctionRef {
            name: FunctionName::parse(name)?,
            qualifier: qualifier.map(Qualifier::parse).transpose()?,
            region,
            account_id,
        })
    })();
    Some(parsed)
}

fn pattern_error(input: &str, kind: IdKind) -> ModelError {
    let pattern = match kind {
        IdKind::Mutating => FUNCTION_NAME_PATTERN,
        IdKind::Namespaced => NAMESPACED_FUNCTION_NAME_PATTERN,
    };
    ModelError::constraint(
        input,
        "functionName",
        format!("Member must satisfy regular expression pattern: {pattern}"),
    )
}

/// The name in `input` when it matches the namespaced pattern only (a `.` in the name, or
/// `$LATEST.PUBLISHED`): the last ARN part holding a `.`, or a bare dotted name.
fn namespaced_name(input: &str) -> Option<String> {
    let tokens: Vec<&str> = input.split(':').collect();
    let dotted = |t: &&str| {
        !t.is_empty() && t.chars().all(|c| is_name_char(c) || c == '.') && t.contains('.')
    };
    let name = match tokens.as_slice() {
        [name] | [name, _] if dotted(name) => *name,
        [.., "function", name] | [.., "function", name, _] if dotted(name) => *name,
        [.., name, "$LATEST.PUBLISHED"] if name.chars().all(is_name_char) => *name,
        _ => return None,
    };
    Some(name.to_owned())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_partition(text: &str) -> bool {
    text.is_empty()
        || (text.starts_with("aws")
            && text[3..]
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '-'))
}

/// `[a-z]{2}((-gov)|(-iso[a-z]?))?-[a-z]+-\d`
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let lower = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase());
    let digit = |s: &str| s.len() == 1 && s.chars().all(|c| c.is_ascii_digit());
    let two = |s: &str| s.len() == 2 && lower(s);
    let special = |s: &str| s == "gov" || (s.starts_with("iso") && s.len() <= 4 && lower(s));
    let parts = match parts.as_slice() {
        ["eusc", rest @ ..] => rest.to_vec(),
        _ => parts,
    };
    match parts.as_slice() {
        [cc, area, n] => two(cc) && lower(area) && digit(n),
        [cc, sp, area, n] => two(cc) && special(sp) && lower(area) && digit(n),
        _ => false,
    }
}

/// Exactly twelve ASCII digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<FunctionRef, ModelError> {
        FunctionRef::parse(input, IdKind::Namespaced)
    }

    fn check(
        input: &str,
        name: &str,
        qualifier: Option<Qualifier>,
        region: Option<&str>,
        account: Option<&str>,
    ) {
        let got = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got.name.as_str(), name, "{input}");
        assert_eq!(got.qualifier, qualifier, "{input}");
        assert_eq!(got.region.as_deref(), region, "{input}");
        assert_eq!(got.account_id.as_deref(), account, "{input}");
    }

    #[test]
    fn accepts_every_form_lambda_accepts() {
        check("my-fn", "my-fn", None, None, None);
        check(
            "my_fn:$LATEST",
            "my_fn",
            Some(Qualifier::Latest),
            None,
            None,
        );
        check("my-fn:7", "my-fn", Some(Qualifier::Version(7)), None, None);
        check(
            "my-fn:prod",
            "my-fn",
            Some(Qualifier::Alias("prod".into())),
            None,
            None,
        );
        check(
            "123456789012:function:my-fn",
            "my-fn",
            None,
            None,
            Some("123456789012"),
        );
        check(
            "123456789012:function:my-fn:prod",
            "my-fn",
            Some(Qualifier::Alias("prod".into())),
            None,
            Some("123456789012"),
        );
        check(
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
            "my-fn",
            None,
            Some("us-east-1"),
            Some("123456789012"),
        );
        check(
            "arn:aws:lambda:eu-west-1:123456789012:function:my-fn:$LATEST",
            "my-fn",
            Some(Qualifier::Latest),
            Some("eu-west-1"),
            Some("123456789012"),
        );
        check(
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f",
            "f",
            None,
            Some("us-gov-west-1"),
            Some("123456789012"),
        );
        // A name that looks like a region is still a name when nothing follows it.
        check("us-east-1", "us-east-1", None, None, None);
        check("function", "function", None, None, None);
    }

    #[test]
    fn rejects_what_the_pattern_rejects() {
        for bad in [
            "",
            "has space",
            "a/b",
            "arn:aws:s3:::bucket",
            "a:b:c:d:e",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "fn:",
            "fn:$latest!",
            "é",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = "a".repeat(65);
        let err = parse(&long).unwrap_err().to_string();
        assert!(
            err.contains("Member must have length less than or equal to 64"),
            "{err}"
        );
        let too_long = "a".repeat(141);
        let err = FunctionRef::parse(&too_long, IdKind::Mutating)
            .unwrap_err()
            .to_string();
        assert!(err.contains("less than or equal to 140"), "{err}");
    }

    #[test]
    fn qualifier_is_case_sensitive_and_versions_are_positive() {
        assert_eq!(Qualifier::parse("$LATEST").unwrap(), Qualifier::Latest);
        assert_eq!(
            Qualifier::parse("$latest").unwrap(),
            Qualifier::Alias("$latest".into())
        );
        assert!(Qualifier::parse("a b").is_err());
        assert_eq!(
            Qualifier::parse("latest").unwrap(),
            Qualifier::Alias("latest".into())
        );
        // Well-formed, naming nothing: a 404 later, not a 400 here.
        assert_eq!(Qualifier::parse("0").unwrap(), Qualifier::Alias("0".into()));
        assert_eq!(Qualifier::parse("12").unwrap(), Qualifier::Version(12));
        let long = Qualifier::parse(&"a".repeat(129)).unwrap_err().to_string();
        assert!(
            long.ends_with("Member must have length less than or equal to 128"),
            "{long}"
        );
        let bad = Qualifier::parse("a.b").unwrap_err().to_string();
        assert!(
            bad.ends_with("pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"),
            "{bad}"
        );
    }

    #[test]
    fn qualifier_from_name_and_parameter_must_agree() {
        let r = parse("fn:prod").unwrap();
        assert!(r.clone().with_qualifier_param(Some("prod")).is_ok());
        let err = r.with_qualifier_param(Some("$LATEST")).unwrap_err();
        assert_eq!(err, ModelError::invalid("The derived qualifier from the function name does not match the specified qualifier."));
        let r = parse("fn")
            .unwrap()
            .with_qualifier_param(Some("%24LATEST".replace("%24", "$").as_str()))
            .unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Latest));
    }

    #[test]
    fn arns_are_formatted_unqualified_and_qualified() {
        let scope = Scope::parse("us-east-1", "000000000000").unwrap();
        let name = FunctionName::parse("f").unwrap();
        assert_eq!(
            scope.function_arn(&name, None),
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        assert_eq!(
            scope.function_arn(&name, Some(&Qualifier::Latest)),
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
        );
        assert!(Scope::parse("useast", "000000000000").is_err());
        assert!(Scope::parse("us-east-1", "0").is_err());
    }

    #[test]
    fn region_forms() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "us-isob-east-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "US-east-1",
            "use-east-1",
            "us-east-12",
            "us-foo-bar-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}

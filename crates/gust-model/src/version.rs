//! Published versions and aliases: which version a configuration is, and an alias's
//! pointer to one version (or two, with a weight on the second), validated as Lambda does.

use std::fmt;

use time::OffsetDateTime;

use crate::error::{ModelError, Violations};
use crate::function::{FunctionConfig, FunctionState, InvalidTransition};
use crate::names::Qualifier;

/// Which version of a function a configuration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FunctionVersion {
    /// The unpublished, mutable `$LATEST`.
    Latest,
    /// A published, immutable version (1, 2, …).
    Published(u64),
}

impl FunctionVersion {
    /// The qualifier that names this version.
    pub fn qualifier(self) -> Qualifier {
        match self {
            FunctionVersion::Latest => Qualifier::Latest,
            FunctionVersion::Published(n) => Qualifier::Version(n),
        }
    }

    /// Parses `$LATEST` or a version number, as the `FunctionVersion` members take them.
    pub fn parse(text: &str, member: &'static str) -> Result<Self, ModelError> {
        if text == "$LATEST" {
            return Ok(FunctionVersion::Latest);
        }
        let mut violations = Violations::default();
        violations.length(text, member, 1, 1024);
        if !text.is_empty() && !text.chars().all(|c| c.is_ascii_digit()) {
            violations.push(
                text,
                member,
                "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
            );
        }
        violations.finish()?;
        match text.parse::<u64>() {
            Ok(n) if n > 0 => Ok(FunctionVersion::Published(n)),
            _ => Err(ModelError::invalid(format!(
                "Invalid function version {text}."
            ))),
        }
    }
}

impl fmt::Display for FunctionVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionVersion::Latest => f.write_str("$LATEST"),
            FunctionVersion::Published(n) => write!(f, "{n}"),
        }
    }
}

impl FunctionConfig {
    /// The immutable snapshot of this `$LATEST` published as version `number`: its own
    /// revision and time, `Active` and `Successful`, and `description` when one is given.
    pub fn published_as(
        &self,
        number: u64,
        description: Option<&str>,
        revision_id: String,
        now: OffsetDateTime,
    ) -> FunctionConfig {
        FunctionConfig {
            version: FunctionVersion::Published(number),
            description: description.map_or_else(|| self.description.clone(), str::to_owned),
            revision_id,
            last_modified: now,
            state: FunctionState::Active,
            // A version is never updated: Lambda shows no LastUpdateStatus for one.
            last_update: None,
            ..self.clone()
        }
    }

    /// Whether publishing is allowed now: only an `Active` function with no update in
    /// progress can be published.
    pub fn check_publishable(&self) -> Result<(), InvalidTransition> {
        if self.state == FunctionState::Active && !self.is_updating() {
            Ok(())
        } else {
            Err(InvalidTransition {
                from: self.state.as_str(),
                to: "published",
            })
        }
    }
}

/// The longest alias name.
pub const ALIAS_NAME_MAX: usize = 128;
/// The longest alias description.
pub const ALIAS_DESCRIPTION_MAX: usize = 256;

/// Checks an alias name: 1–128 of `[a-zA-Z0-9-_]`, not all digits (that would read as a
/// version number).
pub fn validate_alias_name(name: &str, violations: &mut Violations) {
    violations.length(name, "name", 1, ALIAS_NAME_MAX);
    let well_formed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.chars().all(|c| c.is_ascii_digit());
    if !name.is_empty() && !well_formed {
        violations.push(
            name,
            "name",
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        );
    }
}

/// An alias: a name for one published version (or `$LATEST`), optionally sending a share
/// of its invocations to a second version.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The alias name.
    pub name: String,
    /// The version it points at.
    pub function_version: FunctionVersion,
    /// Free text, `""` when unset.
    pub description: String,
    /// The second version and the share of invocations it gets (0.0–1.0).
    pub additional_version: Option<(u64, f64)>,
    /// Changes on every update.
    pub revision_id: String,
}

/// An alias change as requested; `None` leaves a member as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AliasUpdate {
    /// `FunctionVersion`.
    pub function_version: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `RoutingConfig.AdditionalVersionWeights` (`Some(empty)` clears it).
    pub weights: Option<Vec<(String, f64)>>,
}

impl Alias {
    /// A new alias from a create request (`function_version` is required there).
    pub fn create(
        name: &str,
        update: &AliasUpdate,
        revision_id: String,
    ) -> Result<Alias, ModelError> {
        let mut violations = Violations::default();
        validate_alias_name(name, &mut violations);
        if update.function_version.is_none() {
            violations.missing("functionVersion");
        }
        violations.finish()?;
        let mut alias = Alias {
            name: name.to_owned(),
            function_version: FunctionVersion::Latest,
            description: String::new(),
            additional_version: None,
            revision_id,
        };
        alias.apply(update)?;
        Ok(alias)
    }

    /// Applies an update, checking each member and the routing rules as Lambda does.
    pub fn apply(&mut self, update: &AliasUpdate) -> Result<(), ModelError> {
        let mut violations = Violations::default();
        if let Some(description) = &update.description {
            violations.length(description, "description", 0, ALIAS_DESCRIPTION_MAX);
        }
        if let Some(version) = &update.function_version {
            violations.length(version, "functionVersion", 1, 1024);
            let well_formed = version == "$LATEST" || version.chars().all(|c| c.is_ascii_digit());
            if !version.is_empty() && !well_formed {
                violations.push(
                    version.as_str(),
                    "functionVersion",
                    "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
                );
            }
        }
        if let Some(weights) = &update.weights {
            // Reported as the front end does: the whole map (Java's `{2=0.5}`), then which
            // part of it broke its constraint.
            let shown = format!(
                "{{{}}}",
                weights
                    .iter()
                    .map(|(v, w)| format!("{v}={w:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let bad_key = weights.iter().any(|(version, _)| {
                version.is_empty()
                    || version.len() > 1024
                    || !version.chars().all(|c| c.is_ascii_digit())
            });
            if bad_key {
                violations.push(
                    shown.as_str(),
                    "routingConfig.additionalVersionWeights",
                    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]",
                );
            }
            if weights.iter().any(|(_, w)| !(0.0..=1.0).contains(w)) {
                violations.push(
                    shown.as_str(),
                    "routingConfig.additionalVersionWeights",
                    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]",
                );
            }
        }
        violations.finish()?;

        if let Some(version) = &update.function_version {
            self.function_version = FunctionVersion::parse(version, "functionVersion")?;
        }
        if let Some(description) = &update.description {
            self.description.clone_from(description);
        }
        if let Some(weights) = &update.weights {
            if weights.len() > 1 {
                return Err(ModelError::invalid(
                    "Number of items in AdditionalVersionWeights cannot be greater than 1",
                ));
            }
            self.additional_version = match weights.first() {
                None => None,
                Some((version, weight)) => {
                    match FunctionVersion::parse(version, "additionalVersion")? {
                        FunctionVersion::Published(n) => Some((n, *weight)),
                        FunctionVersion::Latest => unreachable!("digits only"),
                    }
                }
            };
        }
        if let Some((extra, _)) = self.additional_version {
            match self.function_version {
                FunctionVersion::Latest => {
                    return Err(ModelError::invalid(
                        "$LATEST is not supported for an alias pointing to more than 1 version",
                    ))
                }
                FunctionVersion::Published(primary) if primary == extra => {
                    return Err(ModelError::invalid(format!(
                        "Invalid function version {extra}. Function version {extra} is already included in routing configuration."
                    )))
                }
                FunctionVersion::Published(_) => {}
            }
        }
        Ok(())
    }

    /// The published versions this alias routes to.
    pub fn versions(&self) -> impl Iterator<Item = FunctionVersion> + '_ {
        std::iter::once(self.function_version).chain(
            self.additional_version
                .map(|(n, _)| FunctionVersion::Published(n)),
        )
    }

    /// Whether the alias routes any invocation to `version`.
    pub fn routes_to(&self, version: u64) -> bool {
        self.versions()
            .any(|v| v == FunctionVersion::Published(version))
    }

    /// The version one invocation goes to, given a uniform sample in `[0, 1)`.
    pub fn pick(&self, sample: f64) -> FunctionVersion {
        match self.additional_version {
            Some((extra, weight)) if sample < weight => FunctionVersion::Published(extra),
            _ => self.function_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(version: &str, weights: &[(&str, f64)]) -> AliasUpdate {
        AliasUpdate {
            function_version: Some(version.into()),
            description: None,
            weights: Some(weights.iter().map(|(v, w)| ((*v).into(), *w)).collect()),
        }
    }

    #[test]
    fn alias_names_follow_the_pattern() {
        for good in ["prod", "live-1", "a_b", "1a"] {
            assert!(
                Alias::create(good, &update("1", &[]), String::new()).is_ok(),
                "{good}"
            );
        }
        for bad in ["", "123", "with space", "x$", &"a".repeat(129)] {
            let error = Alias::create(bad, &update("1", &[]), String::new()).unwrap_err();
            assert!(
                matches!(error, ModelError::Constraints(_)),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn routing_rules() {
        let ok = Alias::create("a", &update("1", &[("2", 0.25)]), String::new()).unwrap();
        assert_eq!(ok.additional_version, Some((2, 0.25)));
        assert_eq!(ok.pick(0.1), FunctionVersion::Published(2));
        assert_eq!(ok.pick(0.3), FunctionVersion::Published(1));
        assert!(ok.routes_to(2) && ok.routes_to(1) && !ok.routes_to(3));
        let error = |version, weights: &[(&str, f64)]| {
            Alias::create("a", &update(version, weights), String::new())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("1", &[("2", 0.1), ("3", 0.1)]),
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        );
        assert_eq!(
            error("$LATEST", &[("2", 0.1)]),
            "$LATEST is not supported for an alias pointing to more than 1 version"
        );
        assert_eq!(
            error("2", &[("2", 0.1)]),
            "Invalid function version 2. Function version 2 is already included in routing configuration."
        );
        assert!(error("1", &[("2", 1.5)]).contains(
            "Value '{2=1.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy"
        ));
        assert!(error("x", &[]).contains("(\\$LATEST|[0-9]+)"));
    }

    #[test]
    fn clearing_the_weights() {
        let mut alias = Alias::create("a", &update("1", &[("2", 0.5)]), String::new()).unwrap();
        alias.apply(&update("3", &[])).unwrap();
        assert_eq!(alias.additional_version, None);
        assert_eq!(alias.function_version, FunctionVersion::Published(3));
    }
}

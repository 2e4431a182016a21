//! Layers: named, numbered packages unpacked into `/opt` of the functions that use them,
//! with the names, ARNs and publish rules Lambda applies.

use time::OffsetDateTime;

use crate::error::{ModelError, Violations};
use crate::function::CodeRef;
use crate::names::Scope;

/// The longest layer name.
pub const LAYER_NAME_MAX: usize = 140;
/// The longest `LicenseInfo`.
pub const LICENSE_INFO_MAX: usize = 512;
/// At most this many `CompatibleRuntimes`.
pub const COMPATIBLE_RUNTIMES_MAX: usize = 15;

const LAYER_NAME_PATTERN: &str = "(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]{1,140}|[a-zA-Z0-9-_]{1,140})";
const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_layer_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= LAYER_NAME_MAX && name.chars().all(is_name_char)
}

/// A layer named by the `{LayerName}` label: a bare name or a layer ARN, with the region and
/// account the ARN gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// The bare name.
    pub name: String,
    /// Region and account from an ARN, if any.
    pub owner: Option<(String, String)>,
}

impl LayerRef {
    /// Parses a `LayerNameOrArn`.
    pub fn parse(input: &str) -> Result<Self, ModelError> {
        let mut violations = Violations::default();
        violations.length(input, "layerName", 1, 2048);
        violations.finish()?;
        if is_layer_name(input) {
            return Ok(LayerRef {
                name: input.to_owned(),
                owner: None,
            });
        }
        match parse_layer_arn(input) {
            Some((region, account, name, None)) => Ok(LayerRef {
                name: name.to_owned(),
                owner: Some((region.to_owned(), account.to_owned())),
            }),
            _ => Err(ModelError::constraint(
                input,
                "layerName",
                format!("Member must satisfy regular expression pattern: {LAYER_NAME_PATTERN}"),
            )),
        }
    }
}

/// Splits `arn:aws:lambda:{region}:{account}:layer:{name}[:{version}]`.
fn parse_layer_arn(arn: &str) -> Option<(&str, &str, &str, Option<&str>)> {
    let parts: Vec<&str> = arn.split(':').collect();
    let (region, account, name) = match parts.as_slice() {
        ["arn", partition, "lambda", region, account, "layer", name, ..]
            if partition.starts_with("aws") =>
        {
            (*region, *account, *name)
        }
        _ => return None,
    };
    let valid = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && is_layer_name(name);
    match (valid, parts.len()) {
        (true, 7) => Some((region, account, name, None)),
        (true, 8) => Some((region, account, name, Some(parts[7]))),
        _ => None,
    }
}

/// A layer version ARN as functions reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersionArn {
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// Layer name.
    pub name: String,
    /// Version number.
    pub version: u64,
}

impl LayerVersionArn {
    /// Parses `arn:aws:lambda:{region}:{account}:layer:{name}:{version}`; `None` when it
    /// is not one.
    pub fn parse(arn: &str) -> Option<Self> {
        let (region, account, name, version) = parse_layer_arn(arn)?;
        let version = version?;
        if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(LayerVersionArn {
            region: region.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            version: version.parse().ok()?,
        })
    }
}

impl std::fmt::Display for LayerVersionArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arn:aws:lambda:{}:{}:layer:{}:{}",
            self.region, self.account, self.name, self.version
        )
    }
}

impl Scope {
    /// `arn:aws:lambda:{region}:{account}:layer:{name}`.
    pub fn layer_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:layer:{name}",
            self.region, self.account_id
        )
    }

    /// The ARN of version `version` of layer `name`.
    pub fn layer_version_arn(&self, name: &str, version: u64) -> String {
        format!("{}:{version}", self.layer_arn(name))
    }
}

/// A layer version as a function's configuration references it: its ARN and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLayer {
    /// The layer version ARN.
    pub arn: String,
    /// Its package.
    pub code: CodeRef,
}

/// What a PublishLayerVersion request sets besides the content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerSettings {
    /// `Description`.
    pub description: Option<String>,
    /// `CompatibleRuntimes`.
    pub compatible_runtimes: Option<Vec<String>>,
    /// `CompatibleArchitectures`.
    pub compatible_architectures: Option<Vec<String>>,
    /// `LicenseInfo`.
    pub license_info: Option<String>,
}

impl LayerSettings {
    /// Checks the members as Lambda does (lengths, enums, list sizes).
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut violations = Violations::default();
        if let Some(description) = &self.description {
            violations.length(description, "description", 0, 256);
        }
        if let Some(license) = &self.license_info {
            violations.length(license, "licenseInfo", 0, LICENSE_INFO_MAX);
        }
        if let Some(runtimes) = &self.compatible_runtimes {
            if runtimes.len() > COMPATIBLE_RUNTIMES_MAX {
                violations.push(
                    format!("[{}]", runtimes.join(", ")),
                    "compatibleRuntimes",
                    format!(
                        "Member must have length less than or equal to {COMPATIBLE_RUNTIMES_MAX}"
                    ),
                );
            }
            for runtime in runtimes {
                if !crate::runtime::LAMBDA_RUNTIMES.contains(&runtime.as_str()) {
                    violations.push(
                        format!("[{}]", runtimes.join(", ")),
                        "compatibleRuntimes",
                        format!(
                            "Member must satisfy constraint: [Member must satisfy enum value set: [{}], Member must not be null]",
                            crate::runtime::LAMBDA_RUNTIMES.join(", ")
                        ),
                    );
                    break;
                }
            }
        }
        if let Some(architectures) = &self.compatible_architectures {
            if architectures.len() > ARCHITECTURES.len() {
                violations.push(
                    format!("[{}]", architectures.join(", ")),
                    "compatibleArchitectures",
                    "Member must have length less than or equal to 2",
                );
            }
            if architectures
                .iter()
                .any(|a| !ARCHITECTURES.contains(&a.as_str()))
            {
                violations.push(
                    format!("[{}]", architectures.join(", ")),
                    "compatibleArchitectures",
                    "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
                );
            }
        }
        violations.finish()
    }
}

/// One published version of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersion {
    /// The layer's name.
    pub name: String,
    /// Its number (from 1, never reused).
    pub version: u64,
    /// `Description` (`""` when unset).
    pub description: String,
    /// `CompatibleRuntimes`.
    pub compatible_runtimes: Vec<String>,
    /// `CompatibleArchitectures`.
    pub compatible_architectures: Vec<String>,
    /// `LicenseInfo`.
    pub license_info: Option<String>,
    /// The package.
    pub code: CodeRef,
    /// Bytes once unpacked (counts toward a function's 250 MB).
    pub unzipped_size: u64,
    /// When it was published.
    pub created: OffsetDateTime,
}

impl LayerVersion {
    /// Whether it matches ListLayers/ListLayerVersions filters (an absent filter matches).
    pub fn matches(&self, runtime: Option<&str>, architecture: Option<&str>) -> bool {
        runtime.is_none_or(|r| self.compatible_runtimes.iter().any(|c| c == r))
            && architecture.is_none_or(|a| self.compatible_architectures.iter().any(|c| c == a))
    }
}

/// Checks a function's `Layers` list: at most 5 layer version ARNs, well formed, and no
/// layer twice.
pub fn validate_function_layers(layers: &[String]) -> Result<Vec<LayerVersionArn>, ModelError> {
    if layers.len() > crate::limits::LAYERS_MAX {
        return Err(ModelError::invalid("Cannot reference more than 5 layers."));
    }
    let parsed: Option<Vec<LayerVersionArn>> = layers
        .iter()
        .map(|arn| LayerVersionArn::parse(arn))
        .collect();
    let Some(parsed) = parsed else {
        return Err(ModelError::constraint(
            format!("[{}]", layers.join(", ")),
            "layers",
            "Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: ((arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)), Member must not be null]",
        ));
    };
    for (i, layer) in parsed.iter().enumerate() {
        if parsed[..i]
            .iter()
            .any(|l| l.name == layer.name && l.account == layer.account && l.region == layer.region)
        {
            return Err(ModelError::invalid(format!(
                "Two different versions of the same layer are not allowed to be referenced in the same function. {} and {} are versions of the same layer.",
                parsed[..i].iter().find(|l| l.name == layer.name).map(ToString::to_string).unwrap_or_default(),
                layer
            )));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_and_arns() {
        assert_eq!(LayerRef::parse("deps").unwrap().name, "deps");
        let arn = LayerRef::parse("arn:aws:lambda:us-east-1:123456789012:layer:deps").unwrap();
        assert_eq!(arn.owner, Some(("us-east-1".into(), "123456789012".into())));
        assert!(LayerRef::parse("bad name").is_err());
        assert!(LayerRef::parse(&"a".repeat(141)).is_err());
        let v =
            LayerVersionArn::parse("arn:aws:lambda:us-east-1:123456789012:layer:deps:3").unwrap();
        assert_eq!((v.name.as_str(), v.version), ("deps", 3));
        assert_eq!(
            v.to_string(),
            "arn:aws:lambda:us-east-1:123456789012:layer:deps:3"
        );
        assert!(
            LayerVersionArn::parse("arn:aws:lambda:us-east-1:123456789012:layer:deps").is_none()
        );
        assert!(
            LayerVersionArn::parse("arn:aws:lambda:us-east-1:123456789012:layer:deps:x").is_none()
        );
    }

    #[test]
    fn function_layer_lists() {
        let arn = |n: &str, v: u64| format!("arn:aws:lambda:us-east-1:123456789012:layer:{n}:{v}");
        assert_eq!(
            validate_function_layers(&[arn("a", 1), arn("b", 2)])
                .unwrap()
                .len(),
            2
        );
        let six: Vec<String> = (1..=6).map(|i| arn(&format!("l{i}"), 1)).collect();
        assert_eq!(
            validate_function_layers(&six).unwrap_err().to_string(),
            "Cannot reference more than 5 layers."
        );
        assert!(validate_function_layers(&[arn("a", 1), arn("a", 2)])
            .unwrap_err()
            .to_string()
            .contains("same layer"));
        assert!(matches!(
            validate_function_layers(&["nope".into()]),
            Err(ModelError::Constraints(_))
        ));
    }

    #[test]
    fn publish_settings() {
        let ok = LayerSettings {
            compatible_runtimes: Some(vec!["python3.12".into(), "nodejs20.x".into()]),
            compatible_architectures: Some(vec!["x86_64".into()]),
            ..LayerSettings::default()
        };
        assert!(ok.validate().is_ok());
        let bad = LayerSettings {
            compatible_runtimes: Some(vec!["cobol".into()]),
            compatible_architectures: Some(vec!["sparc".into()]),
            ..LayerSettings::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("2 validation errors"));
    }
}

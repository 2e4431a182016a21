//! Runtime identifiers: the set Lambda knows, and the subset this host can run.

use std::fmt;

use crate::error::ModelError;

/// Every runtime id in Lambda's `Runtime` enum (botocore 1.44), in the model's order;
/// the error message for an unknown runtime lists them.
pub const LAMBDA_RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "java8.al2",
    "java11",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
    "provided.al2",
    "nodejs18.x",
    "python3.10",
    "java17",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "python3.11",
    "nodejs20.x",
    "provided.al2023",
    "python3.12",
    "java21",
    "python3.13",
    "nodejs22.x",
    "nodejs24.x",
    "python3.14",
    "java25",
    "dotnet10",
];

/// The kinds of runtime Gust can provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuntimeFamily {
    /// `python3.x`: Gust's Python bootstrap on a host `python3`.
    Python,
    /// `nodejsN.x`: Gust's Node.js bootstrap on a host `node`.
    Nodejs,
    /// `provided*`: the package's own `bootstrap` executable.
    Provided,
}

/// A runtime id that Lambda knows and Gust has a family for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Runtime {
    id: String,
    family: RuntimeFamily,
}

impl Runtime {
    /// Parses a runtime id. Unknown ids get Lambda's enum message; known ids that Gust has
    /// no family for (java, ruby, dotnet, python2, bare `nodejs`) are refused by
    /// [`RuntimeCatalog::check`], which lists what the host can run.
    pub fn parse(id: &str) -> Result<Self, ModelError> {
        if !LAMBDA_RUNTIMES.contains(&id) {
            return Err(ModelError::invalid(format!(
                "Value {id} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
                LAMBDA_RUNTIMES.join(", ")
            )));
        }
        let family = if id.starts_with("python3.") {
            Some(RuntimeFamily::Python)
        } else if id.starts_with("nodejs") && id.ends_with(".x") {
            Some(RuntimeFamily::Nodejs)
        } else if id.starts_with("provided") {
            Some(RuntimeFamily::Provided)
        } else {
            None
        };
        Ok(Runtime {
            id: id.to_owned(),
            family: family.ok_or_else(|| unsupported(id, None))?,
        })
    }

    /// The id as the user wrote it (`python3.12`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which bootstrap runs it.
    pub fn family(&self) -> RuntimeFamily {
        self.family
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The runtime families this host can run, found at server start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCatalog {
    families: Vec<RuntimeFamily>,
}

impl RuntimeCatalog {
    /// A catalog of the given families (`Provided` needs nothing from the host and is always there).
    pub fn new(mut families: Vec<RuntimeFamily>) -> Self {
        families.push(RuntimeFamily::Provided);
        families.sort();
        families.dedup();
        RuntimeCatalog { families }
    }

    /// The runtime ids this host accepts, grouped by family and in version order, for
    /// messages and `gust doctor`.
    pub fn supported_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<(RuntimeFamily, Vec<u32>, &'static str)> = LAMBDA_RUNTIMES
            .iter()
            .filter_map(|id| {
                Runtime::parse(id)
                    .ok()
                    .map(|r| (r.family, version_key(id), *id))
            })
            .filter(|(family, _, _)| self.families.contains(family))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, _, id)| id).collect()
    }

    /// Parses `id` and checks the host can run it.
    pub fn check(&self, id: &str) -> Result<Runtime, ModelError> {
        let runtime = Runtime::parse(id).map_err(|e| match e {
            ModelError::InvalidParameter(m) if m.starts_with("The runtime parameter") => {
                unsupported(id, Some(self))
            }
            other => other,
        })?;
        if self.families.contains(&runtime.family) {
            Ok(runtime)
        } else {
            Err(unsupported(id, Some(self)))
        }
    }
}

/// The numbers in an id (`python3.12` → [3, 12]), so 3.9 sorts before 3.10.
fn version_key(id: &str) -> Vec<u32> {
    id.split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect()
}

fn unsupported(id: &str, catalog: Option<&RuntimeCatalog>) -> ModelError {
    let list = catalog
        .map(|c| c.supported_ids().join(", "))
        .unwrap_or_else(|| "python3.x, nodejs*.x, provided, provided.al2, provided.al2023".into());
    ModelError::invalid(format!(
        "The runtime parameter of {id} is not supported by this Gust server. Runtimes this host can run: [{list}]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_id() {
        assert_eq!(
            Runtime::parse("python3.12").unwrap().family(),
            RuntimeFamily::Python
        );
        assert_eq!(
            Runtime::parse("nodejs20.x").unwrap().family(),
            RuntimeFamily::Nodejs
        );
        assert_eq!(
            Runtime::parse("provided.al2023").unwrap().family(),
            RuntimeFamily::Provided
        );
    }

    #[test]
    fn unknown_runtime_lists_the_enum() {
        let err = Runtime::parse("cobol9").unwrap_err().to_string();
        assert!(err.starts_with("Value cobol9 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [nodejs, "), "{err}");
        assert!(err.ends_with("dotnet10] or be a valid ARN"), "{err}");
    }

    #[test]
    fn host_catalog_refuses_what_it_cannot_run_and_says_what_it_can() {
        let catalog = RuntimeCatalog::new(vec![RuntimeFamily::Python]);
        assert!(catalog.check("python3.11").is_ok());
        assert!(catalog.check("provided.al2").is_ok());
        let err = catalog.check("nodejs20.x").unwrap_err().to_string();
        assert!(err.contains("not supported by this Gust server"), "{err}");
        assert!(
            err.contains("python3.12")
                && err.contains("provided.al2023")
                && !err.contains("nodejs20.x]"),
            "{err}"
        );
        let err = catalog.check("java21").unwrap_err().to_string();
        assert!(
            err.contains("Runtimes this host can run: [python3.6"),
            "{err}"
        );
    }
}

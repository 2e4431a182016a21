//! Runtime identifiers: the set Lambda knows, and the subset this host can run.

use std::fmt;

use crate::error::ModelError;

/// Every runtime id in Lambda's `Runtime` enum (the pinned botocore 1.44.8), in the model's order;
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
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "dotnet10",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
    "provided",
    "provided.al2",
    "provided.al2023",
    "nodejs26.x",
    "python3.15",
    "java8.al2023",
    "java11.al2023",
    "java17.al2023",
    "custom",
];

/// A calendar day as (year, month, day).
type Day = (i32, u8, u8);

/// Runtimes Lambda has deprecated: the first day it refused to create functions on them,
/// and the first day it refused to update them (AWS's runtime deprecation table, as
/// (year, month, day); dates the table moved since are the latest known).
const BLOCKED: &[(&str, Day, Day)] = &[
    ("nodejs", (2016, 10, 31), (2016, 10, 31)),
    ("nodejs4.3", (2020, 3, 6), (2020, 3, 6)),
    ("nodejs4.3-edge", (2020, 3, 6), (2020, 3, 6)),
    ("nodejs6.10", (2019, 8, 12), (2019, 8, 12)),
    ("nodejs8.10", (2020, 1, 6), (2020, 2, 3)),
    ("nodejs10.x", (2021, 7, 30), (2022, 2, 14)),
    ("nodejs12.x", (2023, 3, 31), (2023, 4, 30)),
    ("nodejs14.x", (2024, 1, 9), (2024, 2, 8)),
    ("nodejs16.x", (2026, 2, 28), (2026, 3, 31)),
    ("python2.7", (2021, 7, 15), (2022, 5, 30)),
    ("python3.6", (2022, 8, 17), (2022, 9, 16)),
    ("python3.7", (2024, 1, 9), (2024, 2, 8)),
    ("python3.8", (2026, 2, 28), (2026, 3, 31)),
    ("java8", (2024, 2, 8), (2024, 3, 12)),
    ("go1.x", (2024, 2, 8), (2024, 3, 12)),
    ("provided", (2024, 2, 8), (2024, 3, 12)),
    ("ruby2.5", (2021, 8, 30), (2021, 8, 30)),
    ("ruby2.7", (2024, 2, 8), (2024, 3, 12)),
    ("dotnetcore1.0", (2019, 7, 30), (2019, 7, 30)),
    ("dotnetcore2.0", (2019, 5, 30), (2019, 5, 30)),
    ("dotnetcore2.1", (2021, 9, 20), (2021, 9, 20)),
    ("dotnetcore3.1", (2023, 3, 31), (2023, 4, 30)),
    ("dotnet6", (2026, 2, 28), (2026, 3, 31)),
];

/// What Lambda recommends instead of a blocked runtime: the newest of its language.
fn successor(id: &str) -> &'static str {
    match id {
        _ if id.starts_with("nodejs") => "nodejs24.x",
        _ if id.starts_with("python") => "python3.14",
        _ if id.starts_with("java") => "java25",
        _ if id.starts_with("dotnet") => "dotnet10",
        _ if id.starts_with("ruby") => "ruby3.4",
        _ => "provided.al2023",
    }
}

/// Lambda's refusal of a deprecated runtime on `day`: for creating a function (`update`
/// false) or for updating one (true); `None` while it is still allowed.
pub fn blocked(id: &str, day: time::Date, update: bool) -> Option<ModelError> {
    let (_, create, change) = BLOCKED.iter().find(|(blocked, _, _)| *blocked == id)?;
    let (year, month, d) = if update { *change } else { *create };
    let from = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, d).ok()?;
    (day >= from).then(|| {
        ModelError::invalid(format!(
            "The runtime parameter of {id} is no longer supported for creating or updating AWS Lambda functions. We recommend you use the new runtime ({}) while creating or updating functions.",
            successor(id)
        ))
    })
}

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

/// The runtimes this host can run, found at server start: whole families (every id of
/// the family), or, as the server builds it, exactly the ids an interpreter of that
/// language version was found for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCatalog {
    families: Vec<RuntimeFamily>,
    /// When set, only these ids of the interpreted families (Python, Node.js) are runnable.
    installed: Option<Vec<String>>,
}

impl RuntimeCatalog {
    /// A catalog of the given families (`Provided` needs nothing from the host and is always there).
    pub fn new(mut families: Vec<RuntimeFamily>) -> Self {
        families.push(RuntimeFamily::Provided);
        families.sort();
        families.dedup();
        RuntimeCatalog {
            families,
            installed: None,
        }
    }

    /// A catalog of exactly the given interpreted runtime ids (`python3.12`, `nodejs22.x`),
    /// each backed by an interpreter of its language version, and the `provided*` family.
    pub fn of_installed<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let installed: Vec<String> = ids.into_iter().map(Into::into).collect();
        let families = installed
            .iter()
            .filter_map(|id| Runtime::parse(id).ok().map(|r| r.family))
            .collect();
        RuntimeCatalog {
            installed: Some(installed),
            ..RuntimeCatalog::new(families)
        }
    }

    fn runs(&self, runtime: &Runtime) -> bool {
        self.families.contains(&runtime.family)
            && match (&self.installed, runtime.family) {
                (_, RuntimeFamily::Provided) | (None, _) => true,
                (Some(ids), _) => ids.iter().any(|id| id == runtime.id()),
            }
    }

    /// The runtime ids this host accepts, grouped by family and in version order, for
    /// messages and `gust doctor`.
    pub fn supported_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<(RuntimeFamily, Vec<u32>, &'static str)> = LAMBDA_RUNTIMES
            .iter()
            .filter_map(|id| Runtime::parse(id).ok().map(|r| (r, *id)))
            .filter(|(runtime, _)| self.runs(runtime))
            .map(|(runtime, id)| (runtime.family, version_key(id), id))
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
        if self.runs(&runtime) {
            Ok(runtime)
        } else if self.installed.is_some() && runtime.family != RuntimeFamily::Provided {
            Err(not_installed(&runtime, self))
        } else {
            Err(unsupported(id, Some(self)))
        }
    }
}

/// How to make `runtime` runnable on this host, for messages.
pub fn install_hint(runtime: &Runtime) -> String {
    let id = runtime.id();
    match runtime.family {
        RuntimeFamily::Python => {
            let version = id.trim_start_matches("python");
            format!(
                "install Python {version} (pyenv install {version}, uv python install {version}, or the distribution's python{version}) or start the server with --runtime {id}=/path/to/python{version}"
            )
        }
        RuntimeFamily::Nodejs => format!(
            "run `gust runtimes install {id}` or start the server with --runtime {id}=/path/to/node"
        ),
        RuntimeFamily::Provided => "nothing to install".to_owned(),
    }
}

fn not_installed(runtime: &Runtime, catalog: &RuntimeCatalog) -> ModelError {
    let id = runtime.id();
    ModelError::invalid(format!(
        "The runtime parameter of {id} is not supported by this Gust server: {id} is not installed on this host ({}; `gust runtimes` lists what is found). Runtimes this host can run: [{}]",
        install_hint(runtime),
        catalog.supported_ids().join(", ")
    ))
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
        assert!(
            err.ends_with("java17.al2023, custom] or be a valid ARN"),
            "{err}"
        );
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

    #[test]
    fn installed_catalog_accepts_exactly_its_ids() {
        let catalog = RuntimeCatalog::of_installed(["python3.11", "nodejs20.x"]);
        assert_eq!(catalog.check("python3.11").unwrap().id(), "python3.11");
        assert!(catalog.check("nodejs20.x").is_ok() && catalog.check("provided.al2023").is_ok());
        let err = catalog.check("python3.12").unwrap_err();
        assert!(matches!(err, ModelError::InvalidParameter(_)));
        let err = err.to_string();
        assert!(
            err.starts_with("The runtime parameter of python3.12 is not supported by this Gust server: python3.12 is not installed on this host (install Python 3.12"),
            "{err}"
        );
        assert!(
            err.contains("--runtime python3.12=/path/to/python3.12"),
            "{err}"
        );
        assert!(
            err.ends_with("Runtimes this host can run: [python3.11, nodejs20.x, provided, provided.al2, provided.al2023]"),
            "{err}"
        );
        let err = catalog.check("nodejs22.x").unwrap_err().to_string();
        assert!(err.contains("gust runtimes install nodejs22.x"), "{err}");
        // A family with nothing installed is refused the same way, with its hint.
        let err = RuntimeCatalog::of_installed(Vec::<String>::new())
            .check("nodejs22.x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not installed on this host"), "{err}");
        assert!(catalog
            .check("java21")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
    }

    #[test]
    fn deprecated_runtimes_are_refused_from_their_dates() {
        let day = |y, m, d| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
        };
        let err = blocked("nodejs14.x", day(2026, 12, 6), false)
            .unwrap()
            .to_string();
        assert_eq!(err, "The runtime parameter of nodejs14.x is no longer supported for creating or updating AWS Lambda functions. We recommend you use the new runtime (nodejs24.x) while creating or updating functions.");
        assert!(blocked("nodejs14.x", day(2024, 1, 8), false).is_none());
        assert!(blocked("nodejs14.x", day(2024, 1, 20), true).is_none());
        assert!(blocked("nodejs14.x", day(2024, 1, 20), false).is_some());
        assert!(blocked("python3.12", day(2030, 1, 1), false).is_none());
    }
}

//! The stored form of a function configuration (schema version 1). Changing a field here
//! means a new schema version and a migration in `db.rs`.

use gust_model::function::{Architecture, LogFormat, TracingMode};
use gust_model::{
    Alias, CodeDigest, CodeRef, EnvironmentVariables, FunctionConfig, FunctionLayer, FunctionName,
    FunctionState, FunctionVersion, LastUpdateStatus, LogLevels, Runtime,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A layer version a function uses, with its package (kept while referenced).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FunctionLayerRecord {
    pub arn: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FunctionRecord {
    pub runtime: String,
    pub role: String,
    pub handler: String,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    pub ephemeral_mb: u32,
    pub environment: Option<EnvironmentVariables>,
    pub architecture: String,
    /// Schema 1 wrote `[]` here always (no layer could exist), which reads as these.
    pub layers: Vec<FunctionLayerRecord>,
    pub tracing_mode: String,
    pub dead_letter_target: Option<String>,
    pub log_format: String,
    /// (application, system); absent in records written before log levels existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_levels: Option<(String, String)>,
    pub log_group: String,
    /// `SnapStart.ApplyOn` is `PublishedVersions`; absent (false) in records written
    /// before SnapStart existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub snap_start: bool,
    /// Unix time in milliseconds.
    pub last_modified_ms: i64,
    pub state: String,
    pub last_update: Option<String>,
}

impl FunctionRecord {
    pub(crate) fn from_config(config: &FunctionConfig) -> Self {
        FunctionRecord {
            runtime: config.runtime.id().to_owned(),
            role: config.role.clone(),
            handler: config.handler.clone(),
            description: config.description.clone(),
            timeout_s: config.timeout_s,
            memory_mb: config.memory_mb,
            ephemeral_mb: config.ephemeral_mb,
            environment: config.environment.clone(),
            architecture: config.architecture.as_str().to_owned(),
            layers: config
                .layers
                .iter()
                .map(|l| FunctionLayerRecord {
                    arn: l.arn.clone(),
                    sha256: l.code.digest.to_hex(),
                    size: l.code.size,
                })
                .collect(),
            tracing_mode: config.tracing_mode.as_str().to_owned(),
            dead_letter_target: config.dead_letter_target.clone(),
            log_format: config.log_format.as_str().to_owned(),
            log_levels: config
                .log_levels
                .as_ref()
                .map(|l| (l.application.clone(), l.system.clone())),
            log_group: config.log_group.clone(),
            snap_start: config.snap_start,
            last_modified_ms: unix_millis(config.last_modified),
            state: config.state.as_str().to_owned(),
            last_update: config.last_update.map(|s| s.as_str().to_owned()),
        }
    }

    /// Rebuilds the domain type. The runtime is parsed, not checked against this host:
    /// a function stays readable when the host loses an interpreter.
    pub(crate) fn into_config(
        self,
        name: &str,
        revision_id: String,
        code_sha256: &str,
        code_size: i64,
    ) -> Result<FunctionConfig, String> {
        let bad = |what: &str, value: &str| format!("bad {what} {value:?}");
        Ok(FunctionConfig {
            name: FunctionName::parse(name).map_err(|e| e.to_string())?,
            // A published version's row sets its number after decoding.
            version: FunctionVersion::Latest,
            runtime: Runtime::parse(&self.runtime).map_err(|e| e.to_string())?,
            role: self.role,
            handler: self.handler,
            description: self.description,
            timeout_s: self.timeout_s,
            memory_mb: self.memory_mb,
            ephemeral_mb: self.ephemeral_mb,
            environment: self.environment,
            architecture: Architecture::parse(&self.architecture)
                .ok_or_else(|| bad("architecture", &self.architecture))?,
            layers: self
                .layers
                .into_iter()
                .map(|l| {
                    Ok(FunctionLayer {
                        code: CodeRef {
                            digest: CodeDigest::from_hex(&l.sha256)
                                .ok_or_else(|| bad("layer digest", &l.sha256))?,
                            size: l.size,
                        },
                        arn: l.arn,
                    })
                })
                .collect::<Result<_, String>>()?,
            tracing_mode: TracingMode::parse(&self.tracing_mode)
                .ok_or_else(|| bad("tracing mode", &self.tracing_mode))?,
            dead_letter_target: self.dead_letter_target,
            log_format: LogFormat::parse(&self.log_format)
                .ok_or_else(|| bad("log format", &self.log_format))?,
            log_levels: self.log_levels.map(|(application, system)| LogLevels {
                application,
                system,
            }),
            log_group: self.log_group,
            snap_start: self.snap_start,
            code: CodeRef {
                digest: CodeDigest::from_hex(code_sha256)
                    .ok_or_else(|| bad("code digest", code_sha256))?,
                size: u64::try_from(code_size)
                    .map_err(|_| bad("code size", &code_size.to_string()))?,
            },
            revision_id,
            last_modified: OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(self.last_modified_ms) * 1_000_000,
            )
            .map_err(|e| e.to_string())?,
            state: FunctionState::parse(&self.state).ok_or_else(|| bad("state", &self.state))?,
            last_update: match self.last_update {
                None => None,
                Some(s) => {
                    Some(LastUpdateStatus::parse(&s).ok_or_else(|| bad("last update status", &s))?)
                }
            },
        })
    }
}

fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What publishing compares: the configuration and code of `$LATEST`, without what changes
/// with every write (revision, time, lifecycle). Equal prints mean nothing changed.
pub(crate) fn fingerprint(config: &FunctionConfig) -> String {
    let mut record = FunctionRecord::from_config(config);
    record.last_modified_ms = 0;
    record.state = String::new();
    record.last_update = None;
    format!(
        "{}:{}",
        config.code.digest.to_hex(),
        serde_json::to_string(&record).unwrap_or_default()
    )
}

/// The stored form of an alias (its name and function are the row's key).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AliasRecord {
    pub function_version: String,
    pub description: String,
    pub additional_version: Option<u64>,
    pub additional_weight: Option<f64>,
    pub revision_id: String,
}

impl AliasRecord {
    pub(crate) fn from_alias(alias: &Alias) -> Self {
        AliasRecord {
            function_version: alias.function_version.to_string(),
            description: alias.description.clone(),
            additional_version: alias.additional_version.map(|(v, _)| v),
            additional_weight: alias.additional_version.map(|(_, w)| w),
            revision_id: alias.revision_id.clone(),
        }
    }

    pub(crate) fn into_alias(self, name: String) -> Result<Alias, String> {
        let function_version = FunctionVersion::parse(&self.function_version, "functionVersion")
            .map_err(|e| e.to_string())?;
        let additional_version = match (self.additional_version, self.additional_weight) {
            (Some(version), Some(weight)) => Some((version, weight)),
            (None, None) => None,
            _ => return Err("routing version without weight".into()),
        };
        Ok(Alias {
            name,
            function_version,
            description: self.description,
            additional_version,
            revision_id: self.revision_id,
        })
    }
}

/// The stored form of a layer version's settings (name, number and code are columns).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayerVersionRecord {
    pub description: String,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub unzipped_size: u64,
    /// Unix time in milliseconds.
    pub created_ms: i64,
}

impl LayerVersionRecord {
    pub(crate) fn from_layer(layer: &gust_model::LayerVersion) -> Self {
        LayerVersionRecord {
            description: layer.description.clone(),
            compatible_runtimes: layer.compatible_runtimes.clone(),
            compatible_architectures: layer.compatible_architectures.clone(),
            license_info: layer.license_info.clone(),
            unzipped_size: layer.unzipped_size,
            created_ms: unix_millis(layer.created),
        }
    }

    pub(crate) fn into_layer(
        self,
        name: String,
        version: u64,
        code: CodeRef,
    ) -> Result<gust_model::LayerVersion, String> {
        Ok(gust_model::LayerVersion {
            name,
            version,
            description: self.description,
            compatible_runtimes: self.compatible_runtimes,
            compatible_architectures: self.compatible_architectures,
            license_info: self.license_info,
            code,
            unzipped_size: self.unzipped_size,
            created: OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(self.created_ms) * 1_000_000,
            )
            .map_err(|e| e.to_string())?,
        })
    }
}

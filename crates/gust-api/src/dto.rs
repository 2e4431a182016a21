//! AWS Lambda wire shapes (PascalCase JSON) and the hand-written conversions to and from
//! the domain types. Compatibility decisions show up here.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use gust_control::AccountSettings;
use gust_model::{
    limits, CreateFunction, FunctionConfig, FunctionUpdate, ModelError, Qualifier, Scope,
};
use serde::{Deserialize, Serialize};
use time::macros::format_description;

use crate::error::ApiError;

/// `LastModified` as Lambda writes it: `2025-11-25T02:26:54.123+0000`.
pub fn lambda_timestamp(t: time::OffsetDateTime) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

// ---- requests ----

/// Nested members must be JSON objects. serde's derived structs also accept an array of
/// their fields, so `"Environment": []` would pass as an empty environment; Lambda refuses
/// it as unparseable, and so do these.
pub(crate) mod strict {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::value::MapAccessDeserializer;
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    /// An optional member that must be an object (or `null`, meaning absent).
    pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_any(ObjectVisitor(PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnvironmentDto {
    pub variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EphemeralStorageDto {
    pub size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TracingConfigDto {
    pub mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeadLetterConfigDto {
    pub target_arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LoggingConfigDto {
    pub log_format: Option<String>,
    pub log_group: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VpcConfigDto {
    pub subnet_ids: Option<Vec<String>>,
    pub security_group_ids: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SnapStartDto {
    pub apply_on: Option<String>,
}

/// A string borrowed from the request body where it can be (it has no escapes): a zip's
/// base64 is up to 70 MB. A newtype, because serde borrows a `Cow` only as a field's
/// whole type, never inside an `Option`.
#[derive(Debug, Deserialize)]
pub struct BodyText<'a>(#[serde(borrow)] pub Cow<'a, str>);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FunctionCodeDto<'a> {
    #[serde(borrow)]
    pub zip_file: Option<BodyText<'a>>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    pub s3_object_version: Option<String>,
    pub image_uri: Option<String>,
}

/// Members CreateFunction and UpdateFunctionConfiguration share.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SettingsDto {
    pub runtime: Option<String>,
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    #[serde(deserialize_with = "strict::object")]
    pub environment: Option<EnvironmentDto>,
    #[serde(deserialize_with = "strict::object")]
    pub ephemeral_storage: Option<EphemeralStorageDto>,
    pub layers: Option<Vec<String>>,
    #[serde(deserialize_with = "strict::object")]
    pub tracing_config: Option<TracingConfigDto>,
    #[serde(deserialize_with = "strict::object")]
    pub dead_letter_config: Option<DeadLetterConfigDto>,
    #[serde(deserialize_with = "strict::object")]
    pub logging_config: Option<LoggingConfigDto>,
    // Accepted only in their empty/default form; see `refuse_unsupported`.
    #[serde(deserialize_with = "strict::object")]
    pub vpc_config: Option<VpcConfigDto>,
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: Option<String>,
    pub file_system_configs: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    #[serde(deserialize_with = "strict::object")]
    pub image_config: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(deserialize_with = "strict::object")]
    pub snap_start: Option<SnapStartDto>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateFunctionRequest<'a> {
    pub function_name: Option<String>,
    #[serde(borrow, deserialize_with = "strict::object")]
    pub code: Option<FunctionCodeDto<'a>>,
    pub publish: Option<bool>,
    pub package_type: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub tags: Option<BTreeMap<String, String>>,
    pub code_signing_config_arn: Option<String>,
    #[serde(flatten)]
    pub settings: SettingsDto,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateFunctionConfigurationRequest {
    pub revision_id: Option<String>,
    #[serde(flatten)]
    pub settings: SettingsDto,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateFunctionCodeRequest<'a> {
    #[serde(borrow)]
    pub zip_file: Option<BodyText<'a>>,
    #[serde(rename = "S3Bucket")]
    pub s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    pub s3_key: Option<String>,
    #[serde(rename = "S3ObjectVersion")]
    pub s3_object_version: Option<String>,
    pub image_uri: Option<String>,
    pub publish: Option<bool>,
    pub dry_run: Option<bool>,
    pub revision_id: Option<String>,
    pub architectures: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagResourceRequest {
    pub tags: Option<BTreeMap<String, String>>,
}

fn unsupported(what: &str) -> ApiError {
    ApiError::invalid_parameter(format!("{what} is not supported by this Gust server."))
}

impl SettingsDto {
    /// Refuses settings Gust cannot honour rather than ignoring them; empty forms (as
    /// Terraform and SAM send) are fine.
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        if let Some(vpc) = &self.vpc_config {
            let has = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|l| !l.is_empty());
            if has(&vpc.subnet_ids) || has(&vpc.security_group_ids) {
                return Err(unsupported("VpcConfig (VPC networking)"));
            }
        }
        if self.kms_key_arn.as_deref().is_some_and(|k| !k.is_empty()) {
            return Err(unsupported("KMSKeyArn"));
        }
        if self
            .file_system_configs
            .as_ref()
            .is_some_and(|f| !f.is_empty())
        {
            return Err(unsupported("FileSystemConfigs (EFS)"));
        }
        if self.image_config.as_ref().is_some_and(|i| !i.is_empty()) {
            return Err(unsupported("ImageConfig"));
        }
        Ok(())
    }

    fn into_update(self, architectures: Option<Vec<String>>) -> Result<FunctionUpdate, ApiError> {
        self.refuse_unsupported()?;
        let logging = self.logging_config.unwrap_or_default();
        Ok(FunctionUpdate {
            runtime: self.runtime,
            role: self.role,
            handler: self.handler,
            description: self.description,
            timeout: self.timeout,
            memory_size: self.memory_size,
            ephemeral_storage: self.ephemeral_storage.and_then(|e| e.size),
            // `Environment: {}` means no variables, as an empty map.
            environment: self.environment.map(|e| e.variables.unwrap_or_default()),
            architectures,
            layers: self.layers,
            tracing_mode: self.tracing_config.and_then(|t| t.mode),
            dead_letter_target: self
                .dead_letter_config
                .map(|d| d.target_arn.unwrap_or_default()),
            log_format: logging.log_format,
            application_log_level: logging.application_log_level,
            system_log_level: logging.system_log_level,
            log_group: logging.log_group,
            snap_start_apply_on: self.snap_start.and_then(|s| s.apply_on),
        })
    }
}

fn decode_zip(base64_zip: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(base64_zip)
        .map_err(|e| {
            ApiError::invalid_content(format!("Could not decode ZipFile: not valid base64 ({e})"))
        })
}

fn zip_too_large() -> ApiError {
    ApiError::too_large(format!(
        "Zipped size must be smaller than {} bytes",
        limits::CODE_ZIPPED_MAX_BYTES
    ))
}

/// Decodes base64 without building more than the zip limit (base64 is 4/3 of the bytes).
pub(crate) fn decode_bounded_zip(base64_zip: &str) -> Result<Vec<u8>, ApiError> {
    let max_encoded =
        usize::try_from(limits::CODE_ZIPPED_MAX_BYTES.div_ceil(3) * 4).unwrap_or(usize::MAX);
    if base64_zip.len() > max_encoded {
        return Err(zip_too_large());
    }
    decode_zip(base64_zip)
}

impl CreateFunctionRequest<'_> {
    /// The domain request, the package and where it came from (`from_s3`: the object its
    /// `Code.S3Bucket`/`S3Key` name, read already).
    pub fn into_domain(
        self,
        from_s3: Option<bytes::Bytes>,
    ) -> Result<(CreateFunction, Vec<u8>, gust_control::PackageOrigin), ApiError> {
        // Every missing required member in one message, as the front end reports them.
        crate::routes::require(&[
            (self.function_name.is_some(), "functionName"),
            (self.settings.role.is_some(), "role"),
            (self.code.is_some(), "code"),
        ])?;
        let function_name = self.function_name.unwrap_or_default();
        if let Some(kind) = self.package_type.as_deref() {
            if kind != "Zip" && kind != "Image" {
                return Err(ModelError::constraint(
                    kind,
                    "packageType",
                    "Member must satisfy enum value set: [Zip, Image]",
                )
                .into());
            }
        }
        if self.package_type.as_deref().is_some_and(|p| p != "Zip") {
            return Err(unsupported("PackageType Image (container images)"));
        }
        if self
            .code_signing_config_arn
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            return Err(unsupported("CodeSigningConfigArn"));
        }
        let code = self
            .code
            .ok_or_else(|| ApiError::from(ModelError::missing("code")))?;
        let (zip, origin) = code_bytes(
            code.zip_file,
            code.s3_bucket.or(code.s3_key),
            code.image_uri,
            from_s3,
        )?;
        let request = CreateFunction {
            function_name,
            settings: self.settings.into_update(self.architectures)?,
            tags: self.tags.unwrap_or_default(),
            publish: self.publish.unwrap_or(false),
        };
        Ok((request, zip, origin))
    }
}

/// The package a request names: its `ZipFile`, or the object its `S3Bucket`/`S3Key` name
/// (read before the operation runs: `from_s3`).
fn code_bytes(
    zip: Option<BodyText<'_>>,
    s3: Option<String>,
    image: Option<String>,
    from_s3: Option<bytes::Bytes>,
) -> Result<(Vec<u8>, gust_control::PackageOrigin), ApiError> {
    if image.is_some() {
        return Err(unsupported("ImageUri (container images)"));
    }
    if s3.is_some() {
        if zip.is_some() {
            return Err(ApiError::invalid_parameter(
                "Please don't provide both ZipFile and S3 fields for function code.",
            ));
        }
        return match from_s3 {
            Some(package) => Ok((package.to_vec(), gust_control::PackageOrigin::S3)),
            // A bucket without its key.
            None => Err(ApiError::invalid_parameter(
                "Please provide a source for function code.",
            )),
        };
    }
    match zip {
        Some(zip) => Ok((
            decode_bounded_zip(&zip.0)?,
            gust_control::PackageOrigin::Upload,
        )),
        None => Err(ApiError::invalid_parameter(
            "Please provide a source for function code.",
        )),
    }
}

impl UpdateFunctionConfigurationRequest {
    /// The domain update and the revision precondition.
    pub fn into_domain(self) -> Result<(FunctionUpdate, Option<String>), ApiError> {
        Ok((self.settings.into_update(None)?, self.revision_id))
    }
}

impl UpdateFunctionCodeRequest<'_> {
    /// The domain request.
    pub fn into_domain(
        self,
        from_s3: Option<bytes::Bytes>,
    ) -> Result<gust_control::UpdateCode, ApiError> {
        let (zip, origin) = code_bytes(
            self.zip_file,
            self.s3_bucket.or(self.s3_key),
            self.image_uri,
            from_s3,
        )?;
        Ok(gust_control::UpdateCode {
            zip,
            origin,
            publish: self.publish.unwrap_or(false),
            dry_run: self.dry_run.unwrap_or(false),
            revision_id: self.revision_id,
            architectures: self.architectures,
        })
    }
}

// ---- responses ----

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentOut {
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModeOut {
    pub mode: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SizeOut {
    pub size: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetOut {
    pub target_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapStartOut {
    pub apply_on: &'static str,
    pub optimization_status: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingOut {
    pub log_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    pub log_group: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerOut {
    pub arn: String,
    pub code_size: u64,
}

/// `FunctionConfiguration`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: String,
    pub runtime: String,
    pub role: String,
    pub handler: String,
    pub code_size: u64,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    pub last_modified: String,
    pub code_sha256: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<TargetOut>,
    pub tracing_config: ModeOut,
    pub revision_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerOut>,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason_code: Option<&'static str>,
    pub package_type: &'static str,
    pub architectures: Vec<&'static str>,
    pub ephemeral_storage: SizeOut,
    pub snap_start: SnapStartOut,
    pub logging_config: LoggingOut,
    pub runtime_version_config: RuntimeVersionOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeVersionOut {
    pub runtime_version_arn: String,
}

impl FunctionConfiguration {
    /// The wire form of `config`, with the ARN qualified by `qualifier` when the caller
    /// asked for one.
    pub fn from_domain(
        config: &FunctionConfig,
        scope: &Scope,
        qualifier: Option<&Qualifier>,
    ) -> Self {
        use gust_model::{FunctionState, LastUpdateStatus};
        let pending = config.state == FunctionState::Pending;
        let updating = config.last_update == Some(LastUpdateStatus::InProgress);
        FunctionConfiguration {
            function_name: config.name.to_string(),
            function_arn: scope.function_arn(&config.name, qualifier),
            runtime: config.runtime.id().to_owned(),
            role: config.role.clone(),
            handler: config.handler.clone(),
            code_size: config.code.size,
            description: config.description.clone(),
            timeout: config.timeout_s,
            memory_size: config.memory_mb,
            last_modified: lambda_timestamp(config.last_modified),
            code_sha256: base64::engine::general_purpose::STANDARD.encode(config.code.digest.0),
            version: config.version.to_string(),
            environment: config.environment.as_ref().map(|v| EnvironmentOut {
                variables: v.clone(),
            }),
            dead_letter_config: config.dead_letter_target.as_ref().map(|t| TargetOut {
                target_arn: t.clone(),
            }),
            tracing_config: ModeOut {
                mode: config.tracing_mode.as_str(),
            },
            revision_id: config.revision_id.clone(),
            layers: config
                .layers
                .iter()
                .map(|layer| LayerOut {
                    arn: layer.arn.clone(),
                    code_size: layer.code.size,
                })
                .collect(),
            state: config.state.as_str(),
            state_reason: pending.then_some("The function is being created."),
            state_reason_code: pending.then_some("Creating"),
            last_update_status: config.last_update.map(LastUpdateStatus::as_str),
            last_update_status_reason: updating.then_some("The function is being created."),
            last_update_status_reason_code: updating.then_some("Creating"),
            package_type: "Zip",
            architectures: vec![config.architecture.as_str()],
            ephemeral_storage: SizeOut {
                size: config.ephemeral_mb,
            },
            snap_start: SnapStartOut {
                apply_on: if config.snap_start {
                    "PublishedVersions"
                } else {
                    "None"
                },
                optimization_status: if config.snap_start_on() { "On" } else { "Off" },
            },
            runtime_version_config: RuntimeVersionOut {
                runtime_version_arn: gust_control::runtime_version_arn(scope, config.runtime.id()),
            },
            logging_config: LoggingOut {
                log_format: config.log_format.as_str(),
                application_log_level: config.log_levels.as_ref().map(|l| l.application.clone()),
                system_log_level: config.log_levels.as_ref().map(|l| l.system.clone()),
                log_group: config.log_group.clone(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeLocation {
    pub repository_type: &'static str,
    pub location: String,
}

/// GetFunction's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetFunctionResponse {
    pub configuration: FunctionConfiguration,
    pub code: CodeLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// `{"ReservedConcurrentExecutions": n}` when the function reserves concurrency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<serde_json::Value>,
}

/// ListFunctions' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionsResponse {
    pub functions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagsResponse {
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    pub total_code_size: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u32,
    pub unreserved_concurrent_executions: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsageOut {
    pub total_code_size: u64,
    pub function_count: u64,
}

/// GetAccountSettings' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettingsResponse {
    pub account_limit: AccountLimit,
    pub account_usage: AccountUsageOut,
}

impl From<AccountSettings> for AccountSettingsResponse {
    fn from(settings: AccountSettings) -> Self {
        AccountSettingsResponse {
            account_limit: AccountLimit {
                total_code_size: limits::TOTAL_CODE_SIZE_BYTES,
                code_size_unzipped: limits::CODE_UNZIPPED_MAX_BYTES,
                code_size_zipped: limits::CODE_ZIPPED_MAX_BYTES,
                concurrent_executions: settings.concurrency_limit,
                unreserved_concurrent_executions: settings.unreserved_concurrency,
            },
            account_usage: AccountUsageOut {
                total_code_size: settings.usage.total_code_size,
                function_count: settings.usage.function_count,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millis_and_plus_0000() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_764_037_614_123_456_789).unwrap();
        assert_eq!(lambda_timestamp(t), "2025-11-25T02:26:54.123+0000");
    }

    #[test]
    fn unsupported_settings_are_refused_but_empty_forms_pass() {
        let json = |v: serde_json::Value| -> SettingsDto { serde_json::from_value(v).unwrap() };
        assert!(
            json(serde_json::json!({"VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}))
                .refuse_unsupported()
                .is_ok()
        );
        assert!(
            json(serde_json::json!({"VpcConfig": {"SubnetIds": ["subnet-1"]}}))
                .refuse_unsupported()
                .is_err()
        );
        assert!(json(serde_json::json!({"KMSKeyArn": ""}))
            .refuse_unsupported()
            .is_ok());
        assert!(json(serde_json::json!({"KMSKeyArn": "arn:aws:kms:x"}))
            .refuse_unsupported()
            .is_err());
        assert!(json(serde_json::json!({"SnapStart": {"ApplyOn": "None"}}))
            .refuse_unsupported()
            .is_ok());
        // SnapStart is offered (the model checks the runtime).
        assert!(
            json(serde_json::json!({"SnapStart": {"ApplyOn": "PublishedVersions"}}))
                .refuse_unsupported()
                .is_ok()
        );
    }

    #[test]
    fn create_request_decodes_code() {
        let text = serde_json::json!({
            "FunctionName": "f", "Runtime": "python3.12", "Role": "arn:aws:iam::000000000000:role/r",
            "Handler": "app.handler", "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="},
            "Environment": {"Variables": {"A1": "b"}}, "Tags": {"t": "v"}, "MemorySize": 256
        })
        .to_string();
        let request: CreateFunctionRequest = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            request.code.as_ref().and_then(|c| c.zip_file.as_ref()),
            Some(BodyText(Cow::Borrowed(_)))
        ));
        let (domain, zip, _) = request.into_domain(None).unwrap();
        assert_eq!(zip.len(), 22);
        assert_eq!(domain.settings.memory_size, Some(256));
        assert_eq!(domain.settings.environment.unwrap()["A1"], "b");
        assert_eq!(domain.tags["t"], "v");

        let no_code: CreateFunctionRequest =
            serde_json::from_str(r#"{"FunctionName": "f"}"#).unwrap();
        assert_eq!(
            no_code.into_domain(None).unwrap_err().error_type(),
            "ValidationException"
        );
        let s3: CreateFunctionRequest = serde_json::from_str(
            r#"{"FunctionName": "f", "Role": "r", "Code": {"S3Bucket": "b", "S3Key": "k"}}"#,
        )
        .unwrap();
        // The object the request names is read before: it becomes the package.
        let (_, zip, origin) = s3
            .into_domain(Some(bytes::Bytes::from_static(b"PK")))
            .unwrap();
        assert_eq!(
            (zip.as_slice(), origin),
            (&b"PK"[..], gust_control::PackageOrigin::S3)
        );
        let bad64: CreateFunctionRequest = serde_json::from_str(
            r#"{"FunctionName": "f", "Role": "r", "Code": {"ZipFile": "%%%"}}"#,
        )
        .unwrap();
        assert_eq!(
            bad64.into_domain(None).unwrap_err().error_type(),
            "InvalidRequestContentException"
        );
    }
}

//! Layers: publishing, reading, listing and deleting layer versions, their permission
//! statements, and resolving a function's `Layers` list against them.

use gust_model::error::Violations;
use gust_model::layer::validate_function_layers;
use gust_model::{
    limits, FunctionLayer, LayerRef, LayerSettings, LayerVersion, LayerVersionArn, ModelError,
};
use gust_store::StoreError;

use crate::versions::Page;
use crate::{ControlError, ControlPlane, Result};

/// Most items a layer listing returns at once.
const LAYER_LIST_MAX: i64 = 50;

/// A layer version's resource policy as GetLayerVersionPolicy returns it.
#[derive(Debug, Clone)]
pub struct LayerPolicy {
    /// The policy document (JSON text).
    pub policy: String,
    /// Changes with every statement added or removed.
    pub revision_id: String,
}

/// An AddLayerVersionPermission request.
#[derive(Debug, Clone, Default)]
pub struct LayerPermission {
    /// `StatementId`.
    pub statement_id: String,
    /// `Action` (only `lambda:GetLayerVersion`).
    pub action: String,
    /// `Principal`: an account id, `*`, or an account root ARN.
    pub principal: String,
    /// `OrganizationId`.
    pub organization_id: Option<String>,
    /// `RevisionId` precondition.
    pub revision_id: Option<String>,
}

fn resource_missing() -> ControlError {
    ControlError::NotFound("The resource you requested does not exist.".into())
}

fn check_version_number(version: i64) -> Result<u64> {
    u64::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ModelError::invalid("Layer Version Cannot be less than 1").into())
}

impl ControlPlane {
    /// A `{LayerName}` label of this server's region and account.
    fn layer_name(&self, input: &str) -> Result<String> {
        let layer = LayerRef::parse(input)?;
        match &layer.owner {
            Some((region, account))
                if *region != self.scope.region || *account != self.scope.account_id =>
            {
                Err(resource_missing())
            }
            _ => Ok(layer.name),
        }
    }

    /// PublishLayerVersion.
    pub fn publish_layer_version(
        &self,
        layer: &str,
        settings: &LayerSettings,
        zip: &[u8],
    ) -> Result<LayerVersion> {
        self.publish_layer_version_from(layer, settings, zip, crate::PackageOrigin::Upload)
    }

    /// PublishLayerVersion with content of the given origin.
    pub fn publish_layer_version_from(
        &self,
        layer: &str,
        settings: &LayerSettings,
        zip: &[u8],
        origin: crate::PackageOrigin,
    ) -> Result<LayerVersion> {
        let name = self.layer_name(layer)?;
        settings.validate()?;
        let (staged, unzipped_size) = self.check_zip(zip, origin)?;
        let code = staged.code.clone();
        let now = self.clock.now();
        let published =
            self.store
                .publish_layer_version(&name, staged, &Self::new_revision(), |version| {
                    LayerVersion {
                        name: name.clone(),
                        version,
                        description: settings.description.clone().unwrap_or_default(),
                        compatible_runtimes: settings
                            .compatible_runtimes
                            .clone()
                            .unwrap_or_default(),
                        compatible_architectures: settings
                            .compatible_architectures
                            .clone()
                            .unwrap_or_default(),
                        license_info: settings.license_info.clone(),
                        code,
                        unzipped_size,
                        created: now,
                    }
                })?;
        Ok(published)
    }

    /// GetLayerVersion.
    pub fn get_layer_version(&self, layer: &str, version: i64) -> Result<LayerVersion> {
        let name = self.layer_name(layer)?;
        let version = check_version_number(version)?;
        self.store
            .get_layer_version(&name, version)?
            .ok_or_else(resource_missing)
    }

    /// GetLayerVersionByArn.
    pub fn get_layer_version_by_arn(&self, arn: &str) -> Result<LayerVersion> {
        let parsed = LayerVersionArn::parse(arn).ok_or_else(|| {
            ModelError::constraint(
                arn,
                "arn",
                "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)",
            )
        })?;
        if parsed.region != self.scope.region || parsed.account != self.scope.account_id {
            return Err(resource_missing());
        }
        self.store
            .get_layer_version(&parsed.name, parsed.version)?
            .ok_or_else(resource_missing)
    }

    /// ListLayers: each layer with its newest version matching the filters.
    pub fn list_layers(
        &self,
        runtime: Option<&str>,
        architecture: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<LayerVersion>> {
        check_filters(runtime, architecture)?;
        let mut latest: Vec<LayerVersion> = Vec::new();
        for version in self.store.all_layer_versions()? {
            let seen = latest.last().is_some_and(|l| l.name == version.name);
            if !seen && version.matches(runtime, architecture) {
                latest.push(version);
            }
        }
        page_layers(latest, |l| l.name.clone(), marker, max_items)
    }

    /// ListLayerVersions: newest first (an unknown layer lists nothing).
    pub fn list_layer_versions(
        &self,
        layer: &str,
        runtime: Option<&str>,
        architecture: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<LayerVersion>> {
        let name = self.layer_name(layer)?;
        check_filters(runtime, architecture)?;
        let versions = self
            .store
            .list_layer_versions(&name)?
            .into_iter()
            .filter(|v| v.matches(runtime, architecture))
            .collect();
        page_layers(versions, |v| v.version.to_string(), marker, max_items)
    }

    /// DeleteLayerVersion (idempotent). Functions using it keep its code.
    pub fn delete_layer_version(&self, layer: &str, version: i64) -> Result<()> {
        let name = self.layer_name(layer)?;
        let version = check_version_number(version)?;
        Ok(self.store.delete_layer_version(&name, version)?)
    }

    /// AddLayerVersionPermission: returns the statement (JSON text) and the policy revision.
    pub fn add_layer_version_permission(
        &self,
        layer: &str,
        version: i64,
        permission: &LayerPermission,
    ) -> Result<(String, String)> {
        let name = self.layer_name(layer)?;
        let version = check_version_number(version)?;
        let mut violations = Violations::default();
        gust_model::policy::validate_statement_id(&permission.statement_id, &mut violations);
        if permission.action != "lambda:GetLayerVersion" {
            violations.push(
                permission.action.as_str(),
                "action",
                "Member must satisfy regular expression pattern: lambda:GetLayerVersion",
            );
        }
        let principal = principal_json(&permission.principal);
        if principal.is_none() {
            violations.push(
                permission.principal.as_str(),
                "principal",
                "Member must satisfy regular expression pattern: \\d{12}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{12}:root",
            );
        }
        if let Some(org) = &permission.organization_id {
            let well_formed = org.len() <= 34
                && org.strip_prefix("o-").is_some_and(|rest| {
                    (10..=32).contains(&rest.len())
                        && rest
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                });
            if !well_formed {
                violations.push(
                    org.as_str(),
                    "organizationId",
                    "Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}",
                );
            }
        }
        violations.finish()?;
        if permission.organization_id.is_some() && permission.principal != "*" {
            return Err(ModelError::invalid(
                "OrganizationId can only be specified with Principal '*'.",
            )
            .into());
        }
        let mut statement = serde_json::json!({
            "Sid": permission.statement_id,
            "Effect": "Allow",
            "Principal": principal.unwrap_or_default(),
            "Action": "lambda:GetLayerVersion",
            "Resource": self.scope.layer_version_arn(&name, version),
        });
        if let Some(org) = &permission.organization_id {
            statement["Condition"] =
                serde_json::json!({"StringEquals": {"aws:PrincipalOrgID": org}});
        }
        let statement = statement.to_string();
        let revision = self
            .store
            .add_layer_version_statement(
                &name,
                version,
                &permission.statement_id,
                &statement,
                (permission.revision_id.as_deref(), &Self::new_revision()),
            )
            .map_err(|e| statement_error(e, &permission.statement_id))?;
        Ok((statement, revision))
    }

    /// RemoveLayerVersionPermission.
    pub fn remove_layer_version_permission(
        &self,
        layer: &str,
        version: i64,
        statement_id: &str,
        revision_id: Option<&str>,
    ) -> Result<()> {
        let name = self.layer_name(layer)?;
        let version = check_version_number(version)?;
        let mut violations = Violations::default();
        gust_model::policy::validate_statement_id(statement_id, &mut violations);
        violations.finish()?;
        self.store
            .remove_layer_version_statement(
                &name,
                version,
                statement_id,
                (revision_id, &Self::new_revision()),
            )
            .map_err(|e| statement_error(e, statement_id))
    }

    /// GetLayerVersionPolicy.
    pub fn get_layer_version_policy(&self, layer: &str, version: i64) -> Result<LayerPolicy> {
        let name = self.layer_name(layer)?;
        let version = check_version_number(version)?;
        let (statements, revision_id) = self
            .store
            .layer_version_policy(&name, version)?
            .ok_or_else(resource_missing)?;
        if statements.is_empty() {
            return Err(ControlError::NotFound(
                "No policy is associated with the given resource.".into(),
            ));
        }
        let statements: Vec<serde_json::Value> = statements
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": statements,
        });
        Ok(LayerPolicy {
            policy: policy.to_string(),
            revision_id,
        })
    }

    /// Whether `caller`, from outside this account, may use version `version` of layer
    /// `name` (its permissions must allow `lambda:GetLayerVersion`).
    pub fn layer_allowed(
        &self,
        name: &str,
        version: u64,
        caller: &gust_model::policy::Caller,
    ) -> Result<bool> {
        if *caller == gust_model::policy::Caller::Account(self.scope.account_id.clone()) {
            return Ok(true);
        }
        let Some((statements, _)) = self.store.layer_version_policy(name, version)? else {
            return Ok(false);
        };
        let statements: Vec<serde_json::Value> = statements
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
        Ok(gust_model::policy::allows(
            &statements,
            caller,
            "lambda:GetLayerVersion",
        ))
    }

    /// Resolves a function's `Layers` (already checked for form by the model) to the layer
    /// versions they name, and checks the code plus every layer stays within 250 MB
    /// unpacked (`code_unzipped`: the function's own package).
    pub(crate) fn resolve_layers(
        &self,
        arns: &[String],
        code_unzipped: u64,
    ) -> Result<Vec<FunctionLayer>> {
        let mut total = code_unzipped;
        let mut layers = Vec::new();
        for (arn, parsed) in arns.iter().zip(validate_function_layers(arns)?) {
            let missing = || ModelError::invalid(format!("Layer version {arn} does not exist."));
            if parsed.region != self.scope.region {
                return Err(missing().into());
            }
            let (layer, code) = if parsed.account == self.scope.account_id {
                let layer = self
                    .store
                    .get_layer_version(&parsed.name, parsed.version)?
                    .ok_or_else(missing)?;
                let code = layer.code.clone();
                (layer, code)
            } else {
                self.foreign_layer(&parsed)?.ok_or_else(missing)?
            };
            total = total.saturating_add(layer.unzipped_size);
            layers.push(FunctionLayer {
                arn: arn.clone(),
                code,
            });
        }
        check_total_unzipped(total)?;
        // Stacked once now: layers that cannot be combined (a file where an earlier layer
        // has a directory, a path through an earlier layer's link) are refused here rather
        // than at every cold start, and the first cold start finds the tree ready.
        if !layers.is_empty() {
            let digests: Vec<_> = layers.iter().map(|l| l.code.digest).collect();
            self.store.unpacked_layers(&digests).map_err(|e| match e {
                StoreError::Unpack(reason) => ControlError::Invalid(ModelError::invalid(format!(
                    "The layers cannot be combined in /opt: {reason}."
                ))),
                other => other.into(),
            })?;
        }
        Ok(layers)
    }

    /// Another account's layer version, if its permissions let this account use it: its
    /// record, and its package copied into this account's store (the function keeps its
    /// copy however the owner later changes or deletes the version).
    fn foreign_layer(
        &self,
        arn: &LayerVersionArn,
    ) -> Result<Option<(LayerVersion, gust_model::CodeRef)>> {
        let Some(owner) = self.accounts.as_ref().and_then(|a| a.plane(&arn.account)) else {
            return Ok(None);
        };
        let caller = gust_model::policy::Caller::Account(self.scope.account_id.clone());
        if !owner.layer_allowed(&arn.name, arn.version, &caller)? {
            return Ok(None);
        }
        let Some(layer) = owner.store.get_layer_version(&arn.name, arn.version)? else {
            return Ok(None);
        };
        let bytes = owner.store.read_package(&layer.code.digest)?;
        let code = self.store.import_package(&bytes)?;
        Ok(Some((layer, code)))
    }

    /// The unpacked size of the layers a function already uses (a deleted version counts
    /// nothing: its size is no longer listed).
    pub(crate) fn layers_unzipped(&self, layers: &[FunctionLayer]) -> Result<u64> {
        let mut total = 0u64;
        for layer in layers {
            if let Some(parsed) = LayerVersionArn::parse(&layer.arn) {
                if let Some(version) = self.store.get_layer_version(&parsed.name, parsed.version)? {
                    total = total.saturating_add(version.unzipped_size);
                }
            }
        }
        Ok(total)
    }
}

/// Lambda's limit on a function's code and layers together, unpacked.
pub(crate) fn check_total_unzipped(total: u64) -> Result<()> {
    if total > limits::CODE_UNZIPPED_MAX_BYTES {
        return Err(ModelError::invalid(format!(
            "Function code combined with layers exceeds the maximum allowed size of {} bytes. The actual size is {total} bytes.",
            limits::CODE_UNZIPPED_MAX_BYTES
        ))
        .into());
    }
    Ok(())
}

fn check_filters(runtime: Option<&str>, architecture: Option<&str>) -> Result<()> {
    let mut violations = Violations::default();
    if let Some(runtime) = runtime {
        if !gust_model::runtime::LAMBDA_RUNTIMES.contains(&runtime) {
            violations.push(
                runtime,
                "compatibleRuntime",
                format!(
                    "Member must satisfy enum value set: [{}]",
                    gust_model::runtime::LAMBDA_RUNTIMES.join(", ")
                ),
            );
        }
    }
    if let Some(architecture) = architecture {
        if !["x86_64", "arm64"].contains(&architecture) {
            violations.push(
                architecture,
                "compatibleArchitecture",
                "Member must satisfy enum value set: [x86_64, arm64]",
            );
        }
    }
    Ok(violations.finish()?)
}

fn page_layers<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    marker: Option<&str>,
    max_items: Option<i64>,
) -> Result<Page<T>> {
    let max = max_items.unwrap_or(LAYER_LIST_MAX);
    let mut violations = Violations::default();
    violations.range(max, "maxItems", 1, LAYER_LIST_MAX);
    violations.finish()?;
    crate::versions::page(items, key, marker, Some(max))
}

/// The policy `Principal` for a request's principal; `None` when malformed.
fn principal_json(principal: &str) -> Option<serde_json::Value> {
    let is_account = |a: &str| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit());
    if principal == "*" {
        return Some(serde_json::json!("*"));
    }
    if is_account(principal) {
        return Some(serde_json::json!({"AWS": format!("arn:aws:iam::{principal}:root")}));
    }
    let account = principal
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))?;
    is_account(account).then(|| serde_json::json!({"AWS": principal}))
}

fn statement_error(error: StoreError, statement_id: &str) -> ControlError {
    match error {
        StoreError::AlreadyExists(_) => ControlError::Conflict(format!(
            "The statement id ({statement_id}) provided already exists. Please provide a new statement id, or remove the existing statement."
        )),
        StoreError::NotFound(what) if what == statement_id => ControlError::NotFound(format!(
            "Statement {statement_id} is not found in resource policy."
        )),
        StoreError::NotFound(_) => resource_missing(),
        StoreError::RevisionMismatch(_) => ControlError::PreconditionFailed,
        other => other.into(),
    }
}

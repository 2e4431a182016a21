//! Small per-function settings: the recursion loop setting and runtime management.

use gust_model::{FunctionRef, ModelError, Qualifier, Scope};
use gust_store::StoreError;

use crate::{ControlPlane, Result};

const RECURSIVE_LOOP: &str = "recursive_loop";
const UPDATE_RUNTIME_ON: &str = "update_runtime_on";
const RUNTIME_VERSION_ARN: &str = "runtime_version_arn";

/// A function's runtime management configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeManagement {
    /// `Auto`, `FunctionUpdate` or `Manual`.
    pub update_runtime_on: String,
    /// The pinned runtime version (`Manual` only).
    pub runtime_version_arn: Option<String>,
}

/// The runtime version ARN of a runtime on this server (Lambda's form,
/// `arn:aws:lambda:{region}::runtime:{64 hex}`), stable for a runtime id.
pub fn runtime_version_arn(scope: &Scope, runtime: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("gust runtime {runtime}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("arn:aws:lambda:{}::runtime:{hex}", scope.region)
}

impl ControlPlane {
    fn setting_key(&self, reference: &FunctionRef) -> Result<String> {
        let not_found = || self.not_found(&reference.name, reference.qualifier.as_ref());
        let (_, _) = self
            .store
            .get_function(&reference.name)?
            .ok_or_else(not_found)?;
        Ok(match &reference.qualifier {
            None | Some(Qualifier::Latest) => String::new(),
            Some(q @ Qualifier::Version(n)) => {
                self.store
                    .get_version(&reference.name, *n)?
                    .ok_or_else(not_found)?;
                q.to_string()
            }
            Some(Qualifier::Alias(_)) => {
                return Err(ModelError::invalid(
                    "Runtime management configuration applies to $LATEST and published versions, not to aliases.",
                )
                .into())
            }
        })
    }

    fn setting_missing(&self, reference: &FunctionRef, error: StoreError) -> crate::ControlError {
        match error {
            StoreError::NotFound(_) => self.not_found(&reference.name, None),
            other => other.into(),
        }
    }

    /// GetFunctionRecursionConfig (`Terminate` unless set).
    pub fn recursion_config(&self, reference: &FunctionRef) -> Result<String> {
        if self.store.get_function(&reference.name)?.is_none() {
            return Err(self.not_found(&reference.name, None));
        }
        Ok(self
            .store
            .function_setting(&reference.name, "", RECURSIVE_LOOP)?
            .unwrap_or_else(|| "Terminate".into()))
    }

    /// PutFunctionRecursionConfig.
    pub fn put_recursion_config(&self, reference: &FunctionRef, value: &str) -> Result<String> {
        if !["Allow", "Terminate"].contains(&value) {
            return Err(ModelError::constraint(
                value,
                "recursiveLoop",
                "Member must satisfy enum value set: [Allow, Terminate]",
            )
            .into());
        }
        self.store
            .put_function_setting(&reference.name, "", RECURSIVE_LOOP, value)
            .map_err(|e| self.setting_missing(reference, e))?;
        Ok(value.to_owned())
    }

    /// GetRuntimeManagementConfig (`Auto` unless set).
    pub fn runtime_management(&self, reference: &FunctionRef) -> Result<RuntimeManagement> {
        let key = self.setting_key(reference)?;
        let update_runtime_on = self
            .store
            .function_setting(&reference.name, &key, UPDATE_RUNTIME_ON)?
            .unwrap_or_else(|| "Auto".into());
        let runtime_version_arn = if update_runtime_on == "Manual" {
            self.store
                .function_setting(&reference.name, &key, RUNTIME_VERSION_ARN)?
        } else {
            None
        };
        Ok(RuntimeManagement {
            update_runtime_on,
            runtime_version_arn,
        })
    }

    /// PutRuntimeManagementConfig.
    pub fn put_runtime_management(
        &self,
        reference: &FunctionRef,
        update: &RuntimeManagement,
    ) -> Result<RuntimeManagement> {
        if !["Auto", "FunctionUpdate", "Manual"].contains(&update.update_runtime_on.as_str()) {
            return Err(ModelError::constraint(
                update.update_runtime_on.as_str(),
                "updateRuntimeOn",
                "Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]",
            )
            .into());
        }
        match (&*update.update_runtime_on, &update.runtime_version_arn) {
            ("Manual", None) => {
                return Err(ModelError::invalid(
                    "RuntimeVersionArn is required when UpdateRuntimeOn is Manual.",
                )
                .into())
            }
            ("Auto" | "FunctionUpdate", Some(_)) => {
                return Err(ModelError::invalid(
                    "RuntimeVersionArn can only be specified when UpdateRuntimeOn is Manual.",
                )
                .into())
            }
            _ => {}
        }
        if let Some(arn) = &update.runtime_version_arn {
            if arn.len() < 26 || !arn.starts_with("arn:aws") || !arn.contains(":runtime") {
                return Err(ModelError::constraint(
                    arn.as_str(),
                    "runtimeVersionArn",
                    "Member must satisfy regular expression pattern: ((arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}::runtime:.+)|(arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:runtime/[A-Za-z0-9_.-]{1,128}/version/[A-Za-z0-9_.-]{1,128}))",
                )
                .into());
            }
        }
        let key = self.setting_key(reference)?;
        // Both together: a pinned version is never left behind without `Manual`.
        self.store
            .put_function_settings(
                &reference.name,
                &key,
                &[
                    (UPDATE_RUNTIME_ON, Some(update.update_runtime_on.as_str())),
                    (RUNTIME_VERSION_ARN, update.runtime_version_arn.as_deref()),
                ],
            )
            .map_err(|e| self.setting_missing(reference, e))?;
        Ok(update.clone())
    }
}

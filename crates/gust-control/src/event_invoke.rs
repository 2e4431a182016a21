//! Asynchronous invocation settings per function, version or alias
//! (`*FunctionEventInvokeConfig`), and what the asynchronous dispatcher needs to run an
//! event: the settings that apply, the dead-letter target and the qualified ARN.

use gust_model::event_invoke::{self, EventInvokeConfig};
use gust_model::{FunctionName, FunctionRef, Qualifier};

use crate::{ControlError, ControlPlane, Result};

const EVENT_INVOKE_CONFIG: &str = "event_invoke_config";

/// What runs an asynchronous event needs from the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncSettings {
    /// The settings that apply (defaults when none are set).
    pub config: EventInvokeConfig,
    /// `DeadLetterConfig.TargetArn` of the version that runs.
    pub dead_letter: Option<String>,
    /// The function's ARN with the qualifier invoked (`:$LATEST` when none).
    pub function_arn: String,
    /// `RecursiveLoop: Allow` (`PutFunctionRecursionConfig`).
    pub recursion_allowed: bool,
}

impl ControlPlane {
    /// The settings key of a reference: `$LATEST`, a version number or an alias name,
    /// each of which must exist.
    fn event_key(&self, reference: &FunctionRef) -> Result<String> {
        let not_found = || self.not_found(&reference.name, reference.qualifier.as_ref());
        self.store
            .get_function(&reference.name)?
            .ok_or_else(not_found)?;
        Ok(match &reference.qualifier {
            None | Some(Qualifier::Latest) => "$LATEST".into(),
            Some(Qualifier::Version(n)) => {
                self.store
                    .get_version(&reference.name, *n)?
                    .ok_or_else(not_found)?;
                n.to_string()
            }
            Some(Qualifier::Alias(alias)) => {
                self.store
                    .get_alias(&reference.name, alias)?
                    .ok_or_else(not_found)?;
                alias.to_string()
            }
        })
    }

    fn qualified_arn(&self, name: &FunctionName, key: &str) -> String {
        format!("{}:{key}", self.arn(name, None))
    }

    /// `GetFunctionEventInvokeConfig`: the settings and the qualified ARN.
    pub fn event_invoke_config(
        &self,
        reference: &FunctionRef,
    ) -> Result<(EventInvokeConfig, String)> {
        let key = self.event_key(reference)?;
        let arn = self.qualified_arn(&reference.name, &key);
        let stored = self
            .store
            .function_setting(&reference.name, &key, EVENT_INVOKE_CONFIG)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "The function {arn} doesn't have an EventInvokeConfig"
                ))
            })?;
        Ok((stored, arn))
    }

    /// `PutFunctionEventInvokeConfig` (replaces) and `UpdateFunctionEventInvokeConfig`
    /// (`merge`: only the members given change).
    pub fn put_event_invoke_config(
        &self,
        reference: &FunctionRef,
        given: &EventInvokeConfig,
        merge: bool,
    ) -> Result<(EventInvokeConfig, String)> {
        let key = self.event_key(reference)?;
        let arn = self.qualified_arn(&reference.name, &key);
        event_invoke::validate(given, &arn)?;
        let mut config = if merge {
            self.store
                .function_setting(&reference.name, &key, EVENT_INVOKE_CONFIG)?
                .and_then(|text| serde_json::from_str::<EventInvokeConfig>(&text).ok())
                .unwrap_or_default()
        } else {
            EventInvokeConfig::default()
        };
        if !merge || given.maximum_retry_attempts.is_some() {
            config.maximum_retry_attempts = given.maximum_retry_attempts;
        }
        if !merge || given.maximum_event_age_seconds.is_some() {
            config.maximum_event_age_seconds = given.maximum_event_age_seconds;
        }
        if !merge || given.on_success.is_some() {
            config.on_success = given.on_success.clone().filter(|d| !d.is_empty());
        }
        if !merge || given.on_failure.is_some() {
            config.on_failure = given.on_failure.clone().filter(|d| !d.is_empty());
        }
        config.last_modified_ms = (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
        // Plain data: serialising it cannot fail.
        let text = serde_json::to_string(&config).unwrap_or_default();
        self.store
            .put_function_setting(&reference.name, &key, EVENT_INVOKE_CONFIG, &text)?;
        Ok((config, arn))
    }

    /// `DeleteFunctionEventInvokeConfig`.
    pub fn delete_event_invoke_config(&self, reference: &FunctionRef) -> Result<()> {
        let (_, _) = self.event_invoke_config(reference)?;
        let key = self.event_key(reference)?;
        self.store
            .put_function_settings(&reference.name, &key, &[(EVENT_INVOKE_CONFIG, None)])?;
        Ok(())
    }

    /// `ListFunctionEventInvokeConfigs`: every qualifier's settings, with its ARN.
    pub fn list_event_invoke_configs(
        &self,
        name: &FunctionName,
    ) -> Result<Vec<(EventInvokeConfig, String)>> {
        self.store
            .get_function(name)?
            .ok_or_else(|| self.not_found(name, None))?;
        Ok(self
            .store
            .function_settings_by_key(name, EVENT_INVOKE_CONFIG)?
            .into_iter()
            .filter_map(|(key, text)| {
                serde_json::from_str(&text)
                    .ok()
                    .map(|config| (config, self.qualified_arn(name, &key)))
            })
            .collect())
    }

    /// What an asynchronous event of `reference` runs with: the qualifier's settings (an
    /// unqualified event uses `$LATEST`'s), and the dead-letter target of the function.
    pub fn async_settings(&self, reference: &FunctionRef) -> Result<AsyncSettings> {
        let key = self.event_key(reference)?;
        let config = self
            .store
            .function_setting(&reference.name, &key, EVENT_INVOKE_CONFIG)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let dead_letter = self.get_function(reference)?.config.dead_letter_target;
        Ok(AsyncSettings {
            config,
            dead_letter,
            function_arn: self.qualified_arn(&reference.name, &key),
            recursion_allowed: self.recursion_config(reference)? == "Allow",
        })
    }
}

//! Function URL configurations (`Create/Get/Update/Delete/ListFunctionUrlConfigs`): one per
//! function (`$LATEST`) or alias, with its auth type, CORS and invoke mode. Stored as a
//! function setting of its qualifier, so deleting the function or the alias deletes it.

use gust_model::http::Cors;
use gust_model::{FunctionName, FunctionRef, ModelError, Qualifier};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::versions::page;
use crate::{ControlError, ControlPlane, Page, Result};

const FUNCTION_URL: &str = "function_url";

/// A function URL's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrlConfig {
    /// The function.
    pub function: FunctionName,
    /// The alias it is on; `None` for the function (`$LATEST`).
    pub alias: Option<String>,
    /// The URL's id: 32 characters `[a-z0-9]`, unique on this server.
    pub url_id: String,
    /// `NONE` or `AWS_IAM`.
    pub auth_type: String,
    /// The CORS settings, when set.
    pub cors: Option<Cors>,
    /// `BUFFERED` or `RESPONSE_STREAM`.
    pub invoke_mode: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it was last changed.
    pub modified: OffsetDateTime,
}

/// What Create or Update is given (absent members keep their value on update).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionUrlChange {
    /// `AuthType` (required on create).
    pub auth_type: Option<String>,
    /// `Cors`.
    pub cors: Option<Cors>,
    /// `InvokeMode`.
    pub invoke_mode: Option<String>,
}

/// The stored record.
#[derive(Debug, Deserialize)]
struct Stored {
    url_id: String,
    auth_type: String,
    cors: Option<Cors>,
    invoke_mode: String,
    created_ms: i64,
    modified_ms: i64,
}

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn ms_of(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn parse(function: &FunctionName, qualifier: &str, value: &str) -> Option<FunctionUrlConfig> {
    let stored: Stored = serde_json::from_str(value).ok()?;
    Some(FunctionUrlConfig {
        function: function.clone(),
        alias: (!qualifier.is_empty()).then(|| qualifier.to_owned()),
        url_id: stored.url_id,
        auth_type: stored.auth_type,
        cors: stored.cors,
        invoke_mode: stored.invoke_mode,
        created: at_ms(stored.created_ms),
        modified: at_ms(stored.modified_ms),
    })
}

fn check_change(change: &FunctionUrlChange) -> Result<()> {
    let mut violations = gust_model::error::Violations::default();
    if let Some(auth) = &change.auth_type {
        if !["NONE", "AWS_IAM"].contains(&auth.as_str()) {
            violations.push(
                auth.as_str(),
                "authType",
                "Member must satisfy enum value set: [AWS_IAM, NONE]",
            );
        }
    }
    if let Some(mode) = &change.invoke_mode {
        if !["BUFFERED", "RESPONSE_STREAM"].contains(&mode.as_str()) {
            violations.push(
                mode.as_str(),
                "invokeMode",
                "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]",
            );
        }
    }
    if let Some(cors) = &change.cors {
        let list = |violations: &mut gust_model::error::Violations,
                    items: &[String],
                    field: &'static str,
                    max_items: usize,
                    min_len: usize,
                    max_len: usize| {
            if items.len() > max_items {
                violations.push(
                    format!("{items:?}"),
                    field,
                    format!("Member must have length less than or equal to {max_items}"),
                );
            }
            for item in items {
                let len = item.chars().count();
                if len > max_len {
                    violations.push(
                        item.as_str(),
                        field,
                        format!("Member must have length less than or equal to {max_len}"),
                    );
                } else if len < min_len {
                    violations.push(
                        item.as_str(),
                        field,
                        format!("Member must have length greater than or equal to {min_len}"),
                    );
                }
            }
        };
        list(
            &mut violations,
            &cors.allow_headers,
            "cors.allowHeaders",
            100,
            0,
            1024,
        );
        list(
            &mut violations,
            &cors.allow_methods,
            "cors.allowMethods",
            6,
            0,
            6,
        );
        list(
            &mut violations,
            &cors.allow_origins,
            "cors.allowOrigins",
            100,
            1,
            253,
        );
        list(
            &mut violations,
            &cors.expose_headers,
            "cors.exposeHeaders",
            100,
            0,
            1024,
        );
        if let Some(age) = cors.max_age {
            if age > 86_400 {
                violations.push(
                    age.to_string(),
                    "cors.maxAge",
                    "Member must have value less than or equal to 86400",
                );
            } else if age < 0 {
                violations.push(
                    age.to_string(),
                    "cors.maxAge",
                    "Member must have value greater than or equal to 0",
                );
            }
        }
    }
    violations.finish()?;
    if let Some(cors) = &change.cors {
        // Lambda refuses methods it cannot route rather than storing them.
        for method in &cors.allow_methods {
            let known = [
                "GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "*",
            ];
            if !known.contains(&method.to_ascii_uppercase().as_str()) {
                return Err(ModelError::invalid(format!(
                    "AllowMethods contains an invalid HTTP method: {method}"
                ))
                .into());
            }
        }
    }
    Ok(())
}

impl ControlPlane {
    /// The setting's qualifier for a URL reference: `""` for the function, or an existing
    /// alias's name. Versions and `$LATEST` cannot have URLs (the API's pattern refuses
    /// them before this).
    fn url_qualifier(&self, reference: &FunctionRef) -> Result<String> {
        let name = &reference.name;
        let missing = || ControlError::NotFound("Function does not exist".into());
        self.store.get_function(name)?.ok_or_else(missing)?;
        match &reference.qualifier {
            None => Ok(String::new()),
            Some(Qualifier::Alias(alias)) => {
                self.store.get_alias(name, alias)?.ok_or_else(missing)?;
                Ok(alias.clone())
            }
            Some(q) => Err(ModelError::constraint(
                q.to_string(),
                "qualifier",
                "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
            )
            .into()),
        }
    }

    fn store_url(&self, config: &FunctionUrlConfig) -> Result<()> {
        // Strings and numbers only: serialising cannot fail.
        let value = serde_json::json!({
            "url_id": config.url_id,
            "auth_type": config.auth_type,
            "cors": config.cors.as_ref().map(|c| serde_json::to_value(c).unwrap_or_default()),
            "invoke_mode": config.invoke_mode,
            "created_ms": ms_of(config.created),
            "modified_ms": ms_of(config.modified),
        })
        .to_string();
        self.store.put_function_setting(
            &config.function,
            config.alias.as_deref().unwrap_or(""),
            FUNCTION_URL,
            &value,
        )?;
        Ok(())
    }

    /// `CreateFunctionUrlConfig`.
    pub fn create_function_url(
        &self,
        reference: &FunctionRef,
        change: FunctionUrlChange,
    ) -> Result<FunctionUrlConfig> {
        check_change(&change)?;
        let auth_type = change
            .auth_type
            .clone()
            .ok_or_else(|| ControlError::from(ModelError::missing("authType")))?;
        let _writes = self.url_writes();
        let qualifier = self.url_qualifier(reference)?;
        if self
            .store
            .function_setting(&reference.name, &qualifier, FUNCTION_URL)?
            .is_some()
        {
            return Err(ControlError::Conflict(format!(
                "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
                self.url_arn(&reference.name, &qualifier)
            )));
        }
        let now = self.clock.now();
        let config = FunctionUrlConfig {
            function: reference.name.clone(),
            alias: (!qualifier.is_empty()).then_some(qualifier),
            url_id: uuid::Uuid::new_v4().simple().to_string(),
            auth_type,
            cors: change.cors,
            invoke_mode: change.invoke_mode.unwrap_or_else(|| "BUFFERED".into()),
            created: now,
            modified: now,
        };
        self.store_url(&config)?;
        Ok(config)
    }

    /// `GetFunctionUrlConfig`.
    pub fn function_url(&self, reference: &FunctionRef) -> Result<FunctionUrlConfig> {
        let qualifier = self.url_qualifier(reference).map_err(|e| match e {
            ControlError::NotFound(_) => url_missing(),
            other => other,
        })?;
        self.function_url_at(&reference.name, &qualifier)?
            .ok_or_else(url_missing)
    }

    /// The URL configuration on a function (`""`) or alias, if any: the data plane's
    /// check that a URL still exists as it was indexed.
    pub fn function_url_at(
        &self,
        function: &FunctionName,
        qualifier: &str,
    ) -> Result<Option<FunctionUrlConfig>> {
        Ok(self
            .store
            .function_setting(function, qualifier, FUNCTION_URL)?
            .and_then(|value| parse(function, qualifier, &value)))
    }

    /// `UpdateFunctionUrlConfig`.
    pub fn update_function_url(
        &self,
        reference: &FunctionRef,
        change: FunctionUrlChange,
    ) -> Result<FunctionUrlConfig> {
        check_change(&change)?;
        let _writes = self.url_writes();
        let qualifier = self.url_qualifier(reference)?;
        let mut config = self
            .function_url_at(&reference.name, &qualifier)?
            .ok_or_else(url_missing)?;
        if let Some(auth) = change.auth_type {
            config.auth_type = auth;
        }
        if let Some(cors) = change.cors {
            config.cors = Some(cors);
        }
        if let Some(mode) = change.invoke_mode {
            config.invoke_mode = mode;
        }
        config.modified = self.clock.now();
        self.store_url(&config)?;
        Ok(config)
    }

    /// `DeleteFunctionUrlConfig`.
    pub fn delete_function_url(&self, reference: &FunctionRef) -> Result<()> {
        let _writes = self.url_writes();
        let qualifier = self.url_qualifier(reference).map_err(|e| match e {
            ControlError::NotFound(_) => url_missing(),
            other => other,
        })?;
        if self.function_url_at(&reference.name, &qualifier)?.is_none() {
            return Err(url_missing());
        }
        self.store
            .put_function_settings(&reference.name, &qualifier, &[(FUNCTION_URL, None)])?;
        Ok(())
    }

    /// `ListFunctionUrlConfigs`: the function's and its aliases' URLs.
    pub fn list_function_urls(
        &self,
        reference: &FunctionRef,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<FunctionUrlConfig>> {
        let name = &reference.name;
        if self.store.get_function(name)?.is_none() {
            return Err(ControlError::NotFound("Function does not exist".into()));
        }
        let all: Vec<FunctionUrlConfig> = self
            .store
            .function_settings_by_key(name, FUNCTION_URL)?
            .into_iter()
            .filter_map(|(qualifier, value)| parse(name, &qualifier, &value))
            .collect();
        page(all, |c| c.url_id.clone(), marker, max_items)
    }

    /// Every URL of every function of the account (the data plane's index).
    pub fn all_function_urls(&self) -> Result<Vec<FunctionUrlConfig>> {
        Ok(self
            .store
            .settings_everywhere(FUNCTION_URL)?
            .into_iter()
            .filter_map(|(name, qualifier, value)| {
                parse(&FunctionName::parse(&name).ok()?, &qualifier, &value)
            })
            .collect())
    }

    /// The ARN a URL configuration reports: the function's, with the alias.
    pub fn url_arn(&self, function: &FunctionName, qualifier: &str) -> String {
        if qualifier.is_empty() {
            self.arn(function, None)
        } else {
            format!("{}:{qualifier}", self.arn(function, None))
        }
    }
}

impl ControlPlane {
    /// Serialises a URL configuration's read-change-write.
    fn url_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.url_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn url_missing() -> ControlError {
    ControlError::NotFound("The resource you requested does not exist.".into())
}

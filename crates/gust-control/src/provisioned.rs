//! Provisioned concurrency configurations (`Put/Get/Delete/ListProvisionedConcurrencyConfigs`):
//! what is requested for a published version or an alias. The engine keeps that many
//! environments initialised; this module stores the request and checks Lambda's rules.

use gust_model::{FunctionName, FunctionRef, FunctionVersion, ModelError, Qualifier};
use time::OffsetDateTime;

use crate::concurrency::unreserved_minimum;
use crate::versions::page;
use crate::{ControlError, ControlPlane, Page, Result};

const PROVISIONED: &str = "provisioned_concurrency";

/// One configuration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConfig {
    /// The version number or alias name it is configured on.
    pub qualifier: String,
    /// `RequestedProvisionedConcurrentExecutions`.
    pub requested: u32,
    /// When it was last put.
    pub last_modified: OffsetDateTime,
}

/// The stored form: `{"requested": n, "last_modified": epoch milliseconds}`.
fn parse(qualifier: String, value: &str) -> Option<ProvisionedConfig> {
    let stored: serde_json::Value = serde_json::from_str(value).ok()?;
    Some(ProvisionedConfig {
        qualifier,
        requested: u32::try_from(stored.get("requested")?.as_u64()?).ok()?,
        last_modified: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(stored.get("last_modified")?.as_i64()?) * 1_000_000,
        )
        .ok()?,
    })
}

impl ControlPlane {
    /// The qualifier a configuration is put on: a published version or an alias of an
    /// existing function (never `$LATEST`, nor an alias routing to it).
    fn provisioned_qualifier(&self, reference: &FunctionRef) -> Result<String> {
        let name = &reference.name;
        let not_found = || self.not_found(name, reference.qualifier.as_ref());
        self.store.get_function(name)?.ok_or_else(not_found)?;
        let unpublished = || {
            ControlError::from(ModelError::invalid(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
            ))
        };
        match &reference.qualifier {
            None | Some(Qualifier::Latest) => Err(unpublished()),
            Some(Qualifier::Version(n)) => {
                self.store.get_version(name, *n)?.ok_or_else(not_found)?;
                Ok(n.to_string())
            }
            Some(Qualifier::Alias(alias)) => {
                let alias = self.store.get_alias(name, alias)?.ok_or_else(not_found)?;
                if alias.versions().any(|v| v == FunctionVersion::Latest) {
                    return Err(unpublished());
                }
                Ok(alias.name)
            }
        }
    }

    /// Every configuration of a function, by qualifier.
    pub fn provisioned_configs(&self, name: &FunctionName) -> Result<Vec<ProvisionedConfig>> {
        Ok(self
            .store
            .function_settings_by_key(name, PROVISIONED)?
            .into_iter()
            .filter_map(|(qualifier, value)| parse(qualifier, &value))
            .collect())
    }

    /// Every configuration of every function (the engine's state at start).
    pub fn all_provisioned(&self) -> Result<Vec<(FunctionName, ProvisionedConfig)>> {
        Ok(self
            .store
            .settings_everywhere(PROVISIONED)?
            .into_iter()
            .filter_map(|(name, qualifier, value)| {
                Some((FunctionName::parse(&name).ok()?, parse(qualifier, &value)?))
            })
            .collect())
    }

    /// Provisioned concurrency requested by functions without a reservation of their own:
    /// it comes out of the account's unreserved pool.
    pub(crate) fn unreserved_provisioned_total(&self) -> Result<u32> {
        let reserved: std::collections::HashSet<String> = self
            .reservations()?
            .into_iter()
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(self
            .store
            .settings_everywhere(PROVISIONED)?
            .into_iter()
            .filter(|(name, _, _)| !reserved.contains(name))
            .filter_map(|(_, qualifier, value)| parse(qualifier, &value).map(|c| c.requested))
            .sum())
    }

    /// Every function's provisioned concurrency, summed over its configurations.
    pub fn provisioned_by_function(&self) -> Result<Vec<(FunctionName, u32)>> {
        let mut totals: std::collections::BTreeMap<String, u32> = Default::default();
        for (name, qualifier, value) in self.store.settings_everywhere(PROVISIONED)? {
            if let Some(config) = parse(qualifier, &value) {
                *totals.entry(name).or_default() += config.requested;
            }
        }
        Ok(totals
            .into_iter()
            .filter_map(|(name, n)| Some((FunctionName::parse(&name).ok()?, n)))
            .collect())
    }

    /// `PutProvisionedConcurrencyConfig`.
    pub fn put_provisioned_concurrency(
        &self,
        reference: &FunctionRef,
        requested: i64,
    ) -> Result<ProvisionedConfig> {
        if requested < 1 {
            return Err(ModelError::constraint(
                requested.to_string(),
                "provisionedConcurrentExecutions",
                "Member must have value greater than or equal to 1",
            )
            .into());
        }
        let requested = u32::try_from(requested).unwrap_or(u32::MAX);
        let qualifier = self.provisioned_qualifier(reference)?;
        let name = &reference.name;
        let configs = self.provisioned_configs(name)?;
        // An alias and the version it routes to cannot both be provisioned.
        match &reference.qualifier {
            Some(Qualifier::Alias(alias)) => {
                let alias = self.load_alias(name, alias)?;
                if configs.iter().any(|c| {
                    c.qualifier != alias.name
                        && c.qualifier.parse::<u64>().is_ok_and(|v| alias.routes_to(v))
                }) {
                    return Err(ControlError::Conflict(
                        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version".into(),
                    ));
                }
            }
            Some(Qualifier::Version(version)) => {
                for config in &configs {
                    if config.qualifier.parse::<u64>().is_ok() {
                        continue;
                    }
                    if self
                        .store
                        .get_alias(name, &config.qualifier)?
                        .is_some_and(|a| a.routes_to(*version))
                    {
                        return Err(ControlError::Conflict(
                            "Version is pointed by a Provisioned Concurrency alias".into(),
                        ));
                    }
                }
            }
            _ => {}
        }
        let others: u32 = configs
            .iter()
            .filter(|c| c.qualifier != qualifier)
            .map(|c| c.requested)
            .sum();
        let limit = self.concurrency_limit;
        match self.reserved_concurrency(name)? {
            Some(reserved) => {
                if u64::from(others) + u64::from(requested) > u64::from(reserved) {
                    return Err(ModelError::invalid(
                        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
                    )
                    .into());
                }
            }
            None => {
                // Out of the unreserved pool, which keeps its minimum.
                let previous = configs
                    .iter()
                    .find(|c| c.qualifier == qualifier)
                    .map_or(0, |c| c.requested);
                let taken = u64::from(self.reserved_total()?)
                    + u64::from(self.unreserved_provisioned_total()?)
                    - u64::from(previous);
                if taken + u64::from(requested) + u64::from(unreserved_minimum(limit))
                    > u64::from(limit)
                {
                    return Err(ModelError::invalid(format!(
                        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{}].",
                        unreserved_minimum(limit)
                    ))
                    .into());
                }
            }
        }
        let now = self.clock.now();
        let millis = now.unix_timestamp_nanos() / 1_000_000;
        let value =
            serde_json::json!({"requested": requested, "last_modified": millis as i64}).to_string();
        self.store
            .put_function_setting(name, &qualifier, PROVISIONED, &value)?;
        // A version or alias deleted since it was checked took its settings with it, but
        // not this one: remove it again and answer as if it had been gone already.
        if let Err(gone) = self.provisioned_qualifier(reference) {
            self.store
                .put_function_settings(name, &qualifier, &[(PROVISIONED, None)])?;
            return Err(gone);
        }
        self.sync_provisioned(name)?;
        Ok(ProvisionedConfig {
            qualifier,
            requested,
            last_modified: OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000)
                .unwrap_or(now),
        })
    }

    /// `GetProvisionedConcurrencyConfig`.
    pub fn provisioned_concurrency(&self, reference: &FunctionRef) -> Result<ProvisionedConfig> {
        let qualifier = self.provisioned_qualifier(reference)?;
        self.store
            .function_setting(&reference.name, &qualifier, PROVISIONED)?
            .and_then(|value| parse(qualifier, &value))
            .ok_or(ControlError::ProvisionedNotFound)
    }

    /// `DeleteProvisionedConcurrencyConfig`.
    pub fn delete_provisioned_concurrency(&self, reference: &FunctionRef) -> Result<String> {
        let qualifier = self.provisioned_qualifier(reference)?;
        if self
            .store
            .function_setting(&reference.name, &qualifier, PROVISIONED)?
            .is_none()
        {
            // DeleteProvisionedConcurrencyConfig's errors do not include the
            // configuration's own not-found exception.
            return Err(ControlError::NotFound(
                "No Provisioned Concurrency Config found for this function".into(),
            ));
        }
        self.store
            .put_function_settings(&reference.name, &qualifier, &[(PROVISIONED, None)])?;
        self.sync_provisioned(&reference.name)?;
        Ok(qualifier)
    }

    /// `ListProvisionedConcurrencyConfigs`.
    pub fn list_provisioned_concurrency(
        &self,
        reference: &FunctionRef,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<ProvisionedConfig>> {
        let name = &reference.name;
        self.store
            .get_function(name)?
            .ok_or_else(|| self.not_found(name, None))?;
        page(
            self.provisioned_configs(name)?,
            |c| c.qualifier.clone(),
            marker,
            max_items,
        )
    }

    pub(crate) fn provisioned_sync(&self) -> std::sync::MutexGuard<'_, ()> {
        self.provisioned_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tells the observer (the engine) what `name`'s provisioned concurrency is now (read
    /// and told under one lock, so concurrent changes reach the engine in order).
    pub fn sync_provisioned(&self, name: &FunctionName) -> Result<()> {
        let _sync = self.provisioned_sync();
        let mut configs = Vec::new();
        for config in self.provisioned_configs(name)? {
            let versions =
                self.provisioned_allocation(name, &config.qualifier, config.requested)?;
            configs.push((config.qualifier, versions));
        }
        self.notify(|o| o.provisioned_changed(name, &configs));
        Ok(())
    }

    /// How a configuration on `qualifier` spreads over versions: all on a version, or over
    /// the versions an alias routes to in proportion to their weights.
    pub fn provisioned_allocation(
        &self,
        name: &FunctionName,
        qualifier: &str,
        requested: u32,
    ) -> Result<Vec<(u64, u32)>> {
        if let Ok(version) = qualifier.parse::<u64>() {
            return Ok(vec![(version, requested)]);
        }
        let Some(alias) = self.store.get_alias(name, qualifier)? else {
            return Ok(Vec::new());
        };
        let FunctionVersion::Published(primary) = alias.function_version else {
            return Ok(Vec::new());
        };
        Ok(match alias.additional_version {
            Some((extra, weight)) => {
                let extra_count = (f64::from(requested) * weight).round() as u32;
                let extra_count = extra_count.min(requested);
                vec![(primary, requested - extra_count), (extra, extra_count)]
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect()
            }
            None => vec![(primary, requested)],
        })
    }
}

//! Publishing versions and managing aliases.

use base64::Engine as _;
use gust_model::error::Violations;
use gust_model::version::{validate_alias_name, ALIAS_DESCRIPTION_MAX};
use gust_model::{
    limits, Alias, AliasUpdate, FunctionConfig, FunctionName, FunctionRef, FunctionVersion,
    ModelError, Qualifier,
};
use gust_store::StoreError;

use crate::{ControlError, ControlPlane, Result};

/// Most versions ListVersionsByFunction returns at once.
const VERSIONS_PAGE_MAX: i64 = 50;

/// A PublishVersion request.
#[derive(Debug, Clone, Default)]
pub struct PublishVersion {
    /// `CodeSha256`: publish only if `$LATEST`'s code is this (base64 SHA-256).
    pub code_sha256: Option<String>,
    /// `Description` of the version (else `$LATEST`'s).
    pub description: Option<String>,
    /// `RevisionId` precondition on `$LATEST`.
    pub revision_id: Option<String>,
}

/// One page of a listing and where the next starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The marker for the next page, when there is one.
    pub next_marker: Option<String>,
}

/// Pages `items` by a marker that is the key of the last item of the previous page.
pub(crate) fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    marker: Option<&str>,
    max_items: Option<i64>,
) -> Result<Page<T>> {
    let max_items = max_items.unwrap_or(limits::LIST_MAX_ITEMS_DEFAULT as i64);
    let mut violations = Violations::default();
    violations.range(max_items, "maxItems", 1, limits::LIST_MAX_ITEMS);
    violations.finish()?;
    let limit = usize::try_from(max_items).unwrap_or(limits::LIST_MAX_ITEMS_DEFAULT);
    let start = match marker {
        None | Some("") => 0,
        Some(marker) => items
            .iter()
            .position(|item| key(item) == marker)
            .map_or(items.len(), |i| i + 1),
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    let items: Vec<T> = rest.into_iter().take(limit).collect();
    let next_marker = if more { items.last().map(&key) } else { None };
    Ok(Page { items, next_marker })
}

impl ControlPlane {
    /// PublishVersion: a snapshot of `$LATEST` with the next number, or the newest version
    /// again when nothing changed since it was published.
    pub fn publish_version(
        &self,
        reference: &FunctionRef,
        request: &PublishVersion,
    ) -> Result<FunctionConfig> {
        self.require_unqualified_or_latest(reference)?;
        let mut violations = Violations::default();
        if let Some(description) = &request.description {
            violations.length(description, "description", 0, ALIAS_DESCRIPTION_MAX);
        }
        violations.finish()?;
        let latest = self.load(reference)?.config;
        crate::check_revision(&latest, request.revision_id.as_deref())?;
        if let Some(expected) = &request.code_sha256 {
            let actual = base64::engine::general_purpose::STANDARD.encode(latest.code.digest.0);
            if *expected != actual {
                return Err(ModelError::invalid(format!(
                    "CodeSHA256 ({expected}) is different from current CodeSHA256 in $LATEST ({actual}). Please try again with the CodeSHA256 in $LATEST."
                ))
                .into());
            }
        }
        self.publish(
            &latest,
            request.description.as_deref(),
            request.revision_id.as_deref(),
        )
    }

    /// Publishes `latest` if it is still the stored `$LATEST` (`expected_revision`: the
    /// caller's precondition, if any, which decides the error when it is not).
    pub(crate) fn publish(
        &self,
        latest: &FunctionConfig,
        description: Option<&str>,
        expected_revision: Option<&str>,
    ) -> Result<FunctionConfig> {
        if latest.check_publishable().is_err() {
            return Err(self.update_in_progress(&latest.name));
        }
        let now = self.clock.now();
        let (version, new) = self
            .store
            .publish_version(latest, |number| {
                latest.published_as(number, description, Self::new_revision(), now)
            })
            .map_err(|e| match e {
                // $LATEST changed between the read and the write.
                StoreError::RevisionMismatch(_) if expected_revision.is_some() => {
                    ControlError::PreconditionFailed
                }
                StoreError::RevisionMismatch(_) => self.update_in_progress(&latest.name),
                StoreError::NotFound(_) => self.not_found(&latest.name, None),
                other => other.into(),
            })?;
        if new {
            if let gust_model::FunctionVersion::Published(number) = version.version {
                self.notify(|o| o.version_published(&version.name, number));
            }
        }
        Ok(version)
    }

    /// ListVersionsByFunction: `$LATEST`, then each published version in order.
    pub fn list_versions(
        &self,
        reference: &FunctionRef,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<FunctionConfig>> {
        let (latest, _) = self
            .store
            .get_function(&reference.name)?
            .ok_or_else(|| self.not_found(&reference.name, None))?;
        let mut all = vec![latest];
        all.extend(self.store.list_versions(&reference.name)?);
        // MaxItems is checked as the model says (1-10000); Lambda then returns at most 50
        // versions a call.
        let mut violations = Violations::default();
        if let Some(max) = max_items {
            violations.range(max, "maxItems", 1, limits::LIST_MAX_ITEMS);
        }
        violations.finish()?;
        let max_items = max_items.map_or(VERSIONS_PAGE_MAX, |m| m.min(VERSIONS_PAGE_MAX));
        page(all, |c| c.version.to_string(), marker, Some(max_items))
    }

    /// Every version of a function, `$LATEST` first (ListFunctions with `FunctionVersion=ALL`).
    pub fn all_versions(&self, latest: FunctionConfig) -> Result<Vec<FunctionConfig>> {
        let mut all = self.store.list_versions(&latest.name)?;
        all.insert(0, latest);
        Ok(all)
    }

    fn alias_arn(&self, name: &FunctionName, alias: &str) -> String {
        self.arn(name, Some(&Qualifier::Alias(alias.to_owned())))
    }

    fn alias_not_found(&self, name: &FunctionName, alias: &str) -> ControlError {
        ControlError::NotFound(format!(
            "Cannot find alias arn: {}",
            self.alias_arn(name, alias)
        ))
    }

    /// The function an alias operation addresses: an unqualified reference to an existing
    /// function.
    fn alias_function(&self, reference: &FunctionRef) -> Result<FunctionName> {
        if reference.qualifier.is_some() {
            return Err(ModelError::invalid(
                "Alias operations take an unqualified function name or ARN.",
            )
            .into());
        }
        Ok(reference.name.clone())
    }

    fn alias_error(&self, name: &FunctionName, alias: &str, error: StoreError) -> ControlError {
        match error {
            StoreError::AlreadyExists(_) => ControlError::Conflict(format!(
                "Alias already exists: {}",
                self.alias_arn(name, alias)
            )),
            StoreError::VersionNotFound(n) => self.not_found(name, Some(&Qualifier::Version(n))),
            StoreError::NotFound(_) => self.alias_not_found(name, alias),
            StoreError::RevisionMismatch(_) => ControlError::PreconditionFailed,
            other => other.into(),
        }
    }

    /// Reads an alias of an existing function.
    pub(crate) fn load_alias(&self, name: &FunctionName, alias: &str) -> Result<Alias> {
        self.store
            .get_alias(name, alias)?
            .ok_or_else(|| self.alias_not_found(name, alias))
    }

    /// CreateAlias.
    pub fn create_alias(
        &self,
        reference: &FunctionRef,
        alias_name: &str,
        update: &AliasUpdate,
    ) -> Result<Alias> {
        let name = self.alias_function(reference)?;
        // The front end's checks first (a 400 before a 404), Lambda's rules after.
        if let Err(error @ ModelError::Constraints(_)) =
            Alias::create(alias_name, update, String::new())
        {
            return Err(error.into());
        }
        if self.store.get_function(&name)?.is_none() {
            return Err(self.not_found(&name, None));
        }
        let alias = Alias::create(alias_name, update, Self::new_revision())?;
        self.store
            .insert_alias(&name, &alias)
            .map_err(|e| self.alias_error(&name, alias_name, e))?;
        Ok(alias)
    }

    /// GetAlias.
    pub fn get_alias(&self, reference: &FunctionRef, alias_name: &str) -> Result<Alias> {
        let name = self.alias_function(reference)?;
        check_alias_name(alias_name)?;
        if self.store.get_function(&name)?.is_none() {
            return Err(self.not_found(&name, None));
        }
        self.load_alias(&name, alias_name)
    }

    /// UpdateAlias (with an optional `RevisionId` precondition).
    pub fn update_alias(
        &self,
        reference: &FunctionRef,
        alias_name: &str,
        update: &AliasUpdate,
        revision_id: Option<&str>,
    ) -> Result<Alias> {
        check_alias_name(alias_name)?;
        // The front end's checks first (a 400 before a 404 or a 412), Lambda's rules after.
        let mut probe = Alias {
            name: alias_name.to_owned(),
            function_version: FunctionVersion::Published(1),
            description: String::new(),
            additional_version: None,
            revision_id: String::new(),
        };
        if let Err(error @ ModelError::Constraints(_)) = probe.apply(update) {
            return Err(error.into());
        }
        let current = self.get_alias(reference, alias_name)?;
        if revision_id.is_some_and(|r| r != current.revision_id) {
            return Err(ControlError::PreconditionFailed);
        }
        let mut next = current.clone();
        next.apply(update)?;
        next.revision_id = Self::new_revision();
        self.store
            .replace_alias(&reference.name, &next, &current.revision_id)
            .map_err(|e| self.alias_error(&reference.name, alias_name, e))?;
        // Its provisioned concurrency follows the alias to its new versions.
        self.sync_provisioned(&reference.name)?;
        Ok(next)
    }

    /// DeleteAlias (deleting one that does not exist succeeds, as on Lambda).
    pub fn delete_alias(&self, reference: &FunctionRef, alias_name: &str) -> Result<()> {
        let name = self.alias_function(reference)?;
        check_alias_name(alias_name)?;
        if self.store.get_function(&name)?.is_none() {
            return Err(self.not_found(&name, None));
        }
        self.store.delete_alias(&name, alias_name)?;
        self.sync_provisioned(&name)?;
        Ok(())
    }

    /// ListAliases, optionally only those routing to `function_version`.
    pub fn list_aliases(
        &self,
        reference: &FunctionRef,
        function_version: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<Alias>> {
        let name = self.alias_function(reference)?;
        let filter = function_version
            .map(|v| FunctionVersion::parse(v, "functionVersion"))
            .transpose()?;
        if self.store.get_function(&name)?.is_none() {
            return Err(self.not_found(&name, None));
        }
        let aliases: Vec<Alias> = self
            .store
            .list_aliases(&name)?
            .into_iter()
            .filter(|a| filter.is_none_or(|v| a.versions().any(|routed| routed == v)))
            .collect();
        page(aliases, |a| a.name.clone(), marker, max_items)
    }

    /// The version an invocation of `reference` runs: `$LATEST`, the version named, or
    /// one an alias routes to (`sample`, uniform in `[0, 1)`, picks by weight).
    pub fn invoke_target(&self, reference: &FunctionRef, sample: f64) -> Result<FunctionVersion> {
        Ok(match &reference.qualifier {
            None | Some(Qualifier::Latest) => FunctionVersion::Latest,
            Some(Qualifier::Version(n)) => FunctionVersion::Published(*n),
            Some(q @ Qualifier::Alias(alias)) => self
                .store
                .get_alias(&reference.name, alias)?
                .ok_or_else(|| self.not_found(&reference.name, Some(q)))?
                .pick(sample),
        })
    }
}

fn check_alias_name(name: &str) -> Result<()> {
    let mut violations = Violations::default();
    validate_alias_name(name, &mut violations);
    Ok(violations.finish()?)
}

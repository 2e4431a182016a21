//! Control-plane operations on functions: resolve the caller's function reference, validate
//! the change against the model, check the code package, store it, and move the function
//! through its lifecycle. No HTTP here: `gust-api` translates requests into these calls and
//! [`ControlError`] into AWS errors.

use std::sync::Arc;

use gust_model::function::InvalidTransition;
use gust_model::{
    limits, Clock, CreateFunction, FunctionConfig, FunctionRef, FunctionUpdate, FunctionVersion,
    IdKind, LastUpdateStatus, ModelError, Qualifier, RuntimeCatalog, Scope, Tags,
};
use gust_store::{
    package, AccountUsage, FunctionPage, PackageError, StagedBlob, Store, StoreError,
};

pub use gust_model::FunctionName;

/// Why a control-plane operation failed. Each variant maps to one AWS error type.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Input failed validation.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// No such function (or version/alias); the message is Lambda's.
    #[error("{0}")]
    NotFound(String),
    /// The function exists already, or an update is in progress.
    #[error("{0}")]
    Conflict(String),
    /// `RevisionId` did not match.
    #[error("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")]
    PreconditionFailed,
    /// A resource policy would grow past Lambda's quota; the message is Lambda's.
    #[error("{0}")]
    PolicyTooLarge(String),
    /// The zipped package is larger than a direct upload may be.
    #[error(
        "Zipped size must be smaller than {} bytes",
        limits::CODE_ZIPPED_MAX_BYTES
    )]
    CodeTooLarge,
    /// The package is unusable.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The store failed; not the caller's fault.
    #[error("store: {0}")]
    Store(#[source] StoreError),
    /// A lifecycle rule was broken by the server itself.
    #[error(transparent)]
    Lifecycle(#[from] InvalidTransition),
    /// The qualifier has no provisioned concurrency configuration.
    #[error("No Provisioned Concurrency Config found for this function")]
    ProvisionedNotFound,
}

impl From<StoreError> for ControlError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LayerGone(arn) => ControlError::Invalid(ModelError::invalid(format!(
                "Layer version {arn} does not exist."
            ))),
            other => ControlError::Store(other),
        }
    }
}

type Result<T, E = ControlError> = std::result::Result<T, E>;

/// A function as GetFunction returns it.
#[derive(Debug, Clone)]
pub struct FunctionDetails {
    /// `$LATEST`'s configuration.
    pub config: FunctionConfig,
    /// Its tags.
    pub tags: Tags,
}

/// An UpdateFunctionCode request, decoded.
#[derive(Debug, Clone, Default)]
pub struct UpdateCode {
    /// The new zip.
    pub zip: Vec<u8>,
    /// Where it came from (an upload is bounded by the direct-upload limit).
    pub origin: PackageOrigin,
    /// `Publish`.
    pub publish: bool,
    /// `DryRun`: validate only.
    pub dry_run: bool,
    /// `RevisionId` precondition.
    pub revision_id: Option<String>,
    /// `Architectures`.
    pub architectures: Option<Vec<String>>,
}

/// Where a code package came from: Lambda bounds a direct upload to 50 MB zipped, a package
/// read from S3 only by the 250 MB unzipped limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PackageOrigin {
    /// `ZipFile` in the request.
    #[default]
    Upload,
    /// `S3Bucket`/`S3Key`.
    S3,
}

/// Account limits and usage for GetAccountSettings.
#[derive(Debug, Clone, Copy)]
pub struct AccountSettings {
    /// Current usage.
    pub usage: AccountUsage,
    /// The account's concurrency limit.
    pub concurrency_limit: u32,
    /// What is left unreserved: the limit less reservations and the provisioned
    /// concurrency of functions without one.
    pub unreserved_concurrency: u32,
}

/// Told about every committed change to a function, so running environments of old code
/// can be retired (the engine implements it).
pub trait FunctionObserver: Send + Sync + std::fmt::Debug {
    /// `name`'s configuration or code changed.
    fn function_changed(&self, name: &FunctionName);
    /// `name` was deleted.
    fn function_deleted(&self, name: &FunctionName);
    /// Version `version` of `name` was deleted.
    fn version_deleted(&self, name: &FunctionName, version: u64);
    /// `name`'s provisioned concurrency is now `configs`: per configuring qualifier, the
    /// environments wanted of each version.
    fn provisioned_changed(&self, _name: &FunctionName, _configs: &[(String, Vec<(u64, u32)>)]) {}
    /// Version `version` of `name` was published (a SnapStart version's snapshots are made
    /// now, ahead of its first invoke).
    fn version_published(&self, _name: &FunctionName, _version: u64) {}
}

/// The control plane of one server: one region, one account.
#[derive(Debug)]
pub struct ControlPlane {
    store: Arc<Store>,
    scope: Scope,
    catalog: RuntimeCatalog,
    clock: Arc<dyn Clock>,
    observer: Option<Arc<dyn FunctionObserver>>,
    accounts: Option<Arc<dyn Accounts>>,
    /// The account's concurrency limit (reservations and provisioned concurrency are
    /// checked against it).
    concurrency_limit: u32,
    /// Serialises telling the engine about provisioned concurrency with the deletions that
    /// change it, so the engine never ends on an older picture.
    provisioned_sync: std::sync::Mutex<()>,
    /// Serialises changes to event source mappings (read, change, write).
    mapping_writes: std::sync::Mutex<()>,
    /// Serialises function URL configuration changes.
    url_writes: std::sync::Mutex<()>,
}

/// The other accounts of this server, as a control plane reaches them: only to use a
/// layer version their permissions share (the server wires one directory into every plane).
pub trait Accounts: Send + Sync + std::fmt::Debug {
    /// The control plane of `account`, if this server has it.
    fn plane(&self, account: &str) -> Option<Arc<ControlPlane>>;
}

impl ControlPlane {
    /// Wires the control plane to its store, scope, host runtimes and clock.
    pub fn new(
        store: Arc<Store>,
        scope: Scope,
        catalog: RuntimeCatalog,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ControlPlane {
            store,
            scope,
            catalog,
            clock,
            observer: None,
            accounts: None,
            concurrency_limit: limits::ACCOUNT_CONCURRENT_EXECUTIONS,
            provisioned_sync: std::sync::Mutex::new(()),
            mapping_writes: std::sync::Mutex::new(()),
            url_writes: std::sync::Mutex::new(()),
        }
    }

    /// Lets functions use other accounts' layer versions where their permissions allow.
    pub fn with_accounts(mut self, accounts: Arc<dyn Accounts>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// Sets the account's concurrency limit (Lambda's default is 1,000).
    pub fn with_concurrency_limit(mut self, limit: u32) -> Self {
        self.concurrency_limit = limit;
        self
    }

    /// The account's concurrency limit.
    pub fn concurrency_limit(&self) -> u32 {
        self.concurrency_limit
    }

    /// Reports committed changes to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn FunctionObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn notify(&self, event: impl FnOnce(&dyn FunctionObserver)) {
        if let Some(observer) = &self.observer {
            event(observer.as_ref());
        }
    }

    fn changed(&self, name: &FunctionName) {
        if let Some(observer) = &self.observer {
            observer.function_changed(name);
        }
    }

    /// The region and account this server answers for.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The runtimes this host can run.
    pub fn catalog(&self) -> &RuntimeCatalog {
        &self.catalog
    }

    /// The store (the code download route reads packages from it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The ARN of a function, qualified when `qualifier` is given.
    pub fn arn(&self, name: &FunctionName, qualifier: Option<&Qualifier>) -> String {
        self.scope.function_arn(name, qualifier)
    }

    /// Parses a `FunctionName` path label plus an optional `?Qualifier=` and checks that it
    /// addresses this server's region and account.
    pub fn resolve(
        &self,
        input: &str,
        qualifier_param: Option<&str>,
        kind: IdKind,
    ) -> Result<FunctionRef> {
        let reference = match FunctionRef::parse(input, kind) {
            // No function can have such a name: reading, changing or invoking one finds
            // nothing (creating one is refused by `create_function`).
            Err(ModelError::NameTooLong(name) | ModelError::NoSuchName(name)) => {
                return Err(ControlError::NotFound(format!(
                    "Function not found: arn:aws:lambda:{}:{}:function:{name}",
                    self.scope.region, self.scope.account_id
                )))
            }
            other => other?,
        }
        .with_qualifier_param(qualifier_param)?;
        if let Some(region) = &reference.region {
            if *region != self.scope.region {
                return Err(ControlError::NotFound(format!(
                    "Functions from '{region}' are not reachable in this region ('{}')",
                    self.scope.region
                )));
            }
        }
        if let Some(account) = &reference.account_id {
            if *account != self.scope.account_id {
                let arn = format!(
                    "arn:aws:lambda:{}:{account}:function:{}",
                    self.scope.region, reference.name
                );
                return Err(ControlError::NotFound(format!("Function not found: {arn}")));
            }
        }
        Ok(reference)
    }

    fn not_found(&self, name: &FunctionName, qualifier: Option<&Qualifier>) -> ControlError {
        ControlError::NotFound(format!("Function not found: {}", self.arn(name, qualifier)))
    }

    /// Loads what a reference names: `$LATEST`, a published version, or the version an
    /// alias points at (its primary one), with the function's tags.
    fn load(&self, reference: &FunctionRef) -> Result<FunctionDetails> {
        let name = &reference.name;
        let not_found = || self.not_found(name, reference.qualifier.as_ref());
        let (latest, tags) = self.store.get_function(name)?.ok_or_else(not_found)?;
        let config = match &reference.qualifier {
            None | Some(Qualifier::Latest) => latest,
            Some(Qualifier::Version(n)) => {
                self.store.get_version(name, *n)?.ok_or_else(not_found)?
            }
            Some(Qualifier::Alias(alias)) => {
                // A qualifier naming no alias is a function that is not found.
                let alias = self.store.get_alias(name, alias)?.ok_or_else(not_found)?;
                match alias.function_version {
                    FunctionVersion::Latest => latest,
                    FunctionVersion::Published(n) => {
                        self.store.get_version(name, n)?.ok_or_else(not_found)?
                    }
                }
            }
        };
        Ok(FunctionDetails { config, tags })
    }

    /// Refuses references that point at a version or alias, for operations on `$LATEST` only.
    fn require_unqualified_or_latest(&self, reference: &FunctionRef) -> Result<()> {
        match &reference.qualifier {
            None | Some(Qualifier::Latest) => Ok(()),
            Some(q) => Err(self.not_found(&reference.name, Some(q))),
        }
    }

    /// Checks and stages a package; returns it with its unpacked size.
    fn check_zip(&self, zip: &[u8], origin: PackageOrigin) -> Result<(StagedBlob, u64)> {
        if origin == PackageOrigin::Upload && zip.len() as u64 > limits::CODE_ZIPPED_MAX_BYTES {
            return Err(ControlError::CodeTooLarge);
        }
        let summary = package::inspect(zip, limits::CODE_UNZIPPED_MAX_BYTES)?;
        Ok((self.store.stage_package(zip)?, summary.unzipped_size))
    }

    /// The preparation between a change's first write (Pending / InProgress) and its last:
    /// the code is unpacked (once per digest, shared by every environment), so the first
    /// cold start does not pay for it. A failure here (the package was checked at upload,
    /// so only the disk can fail now) is left for that cold start to report.
    fn prepare(&self, config: &FunctionConfig) {
        if let Err(error) = self.store.unpacked_code(&config.code.digest) {
            tracing::warn!(function = %config.name, %error, "could not unpack the code ahead of its first cold start");
        }
    }

    /// The front end's checks (lengths, patterns, enums, ranges: `ValidationException`)
    /// come before the function is looked up, as on Lambda: a bad member of a missing
    /// function is a 400, not a 404. The update is tried on a stand-in configuration; only
    /// its constraint failures count here, the rest is decided against the real one.
    fn check_constraints_first(&self, name: &FunctionName, update: &FunctionUpdate) -> Result<()> {
        let stand_in = self.probe(
            name,
            &FunctionUpdate {
                runtime: Some("provided.al2023".into()),
                role: Some("arn:aws:iam::000000000000:role/stand-in".into()),
                handler: Some("stand-in".into()),
                ..FunctionUpdate::default()
            },
        );
        if let Ok(mut stand_in) = stand_in {
            if let Err(error @ ModelError::Constraints(_)) = stand_in.apply(update, &self.catalog) {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// A configuration made from `settings` before any package exists (its code digest is
    /// zeros): the settings' checks, without the package's.
    fn probe(
        &self,
        name: &FunctionName,
        settings: &FunctionUpdate,
    ) -> std::result::Result<FunctionConfig, ModelError> {
        FunctionConfig::create(
            name.clone(),
            settings,
            gust_model::CodeRef {
                digest: gust_model::CodeDigest([0; 32]),
                size: 0,
            },
            &self.catalog,
            String::new(),
            self.clock.now(),
        )
    }

    /// Refuses a runtime Lambda has stopped creating (or updating) functions on, from its
    /// date on this server's clock.
    fn refuse_blocked(&self, runtime: &str, update: bool) -> Result<()> {
        match gust_model::runtime::blocked(runtime, self.clock.now().date(), update) {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    fn new_revision() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// CreateFunction. Returns the configuration as it was created (`State: Pending`); the
    /// stored function is `Active` by the time this returns.
    pub fn create_function(&self, request: &CreateFunction, zip: &[u8]) -> Result<FunctionConfig> {
        self.create_function_from(request, zip, PackageOrigin::Upload)
    }

    /// CreateFunction with a package of the given origin.
    pub fn create_function_from(
        &self,
        request: &CreateFunction,
        zip: &[u8],
        origin: PackageOrigin,
    ) -> Result<FunctionConfig> {
        // Parsed first: a name too long is refused here, where `resolve` would call it
        // a function that is not found.
        FunctionRef::parse(&request.function_name, IdKind::Mutating)?;
        let reference = self.resolve(&request.function_name, None, IdKind::Mutating)?;
        if reference.qualifier.is_some() {
            return Err(ModelError::invalid(
                "Function name may not contain a qualifier when creating a function.",
            )
            .into());
        }
        gust_model::tags::validate_new_tags(&request.tags, &Tags::new())?;
        if let Some(runtime) = &request.settings.runtime {
            self.refuse_blocked(runtime, false)?;
        }
        // Cheap checks before the package is decompressed.
        let probe = self.probe(&reference.name, &request.settings)?;
        let (staged, unzipped) = self.check_zip(zip, origin)?;
        let layers = match &request.settings.layers {
            Some(arns) => self.resolve_layers(arns, unzipped)?,
            None => Vec::new(),
        };
        let created = FunctionConfig {
            code: staged.code.clone(),
            revision_id: Self::new_revision(),
            layers,
            ..probe
        };
        self.store
            .insert_function(&created, &request.tags, staged)
            .map_err(|e| match e {
                StoreError::AlreadyExists(name) => {
                    ControlError::Conflict(format!("Function already exist: {name}"))
                }
                other => other.into(),
            })?;
        // Pending until what it runs on is ready: another change meanwhile is refused.
        self.prepare(&created);
        let active = self.activate(&created)?;
        self.changed(&created.name);
        if request.publish {
            // Exactly what was created is published (a concurrent update makes this fail
            // rather than publish someone else's change). The response shows the
            // unqualified function with the version it published.
            let published = self.publish(&active, None, None)?;
            return Ok(FunctionConfig {
                version: published.version,
                ..created
            });
        }
        Ok(created)
    }

    /// Pending → Active. There is nothing to prepare beyond the stored package yet; the
    /// engine will hook its code unpacking in here.
    fn activate(&self, created: &FunctionConfig) -> Result<FunctionConfig> {
        let mut active = created.clone();
        active.activate()?;
        active.revision_id = Self::new_revision();
        match self
            .store
            .replace_function(&active, &created.revision_id, None)
        {
            // Deleted (or replaced) in the meantime: nothing left to activate.
            Err(StoreError::NotFound(_) | StoreError::RevisionMismatch(_)) => Ok(active),
            other => {
                other?;
                Ok(active)
            }
        }
    }

    /// Finishes transitions a crash interrupted (a function stuck `Pending` or with an
    /// update `InProgress`), so it can be invoked and updated again. Run at start.
    pub fn recover(&self) -> Result<usize> {
        let mut recovered = 0;
        let mut marker: Option<String> = None;
        loop {
            let page = self.store.list_functions(marker.as_deref(), 500)?;
            for config in &page.functions {
                let mut fixed = config.clone();
                if fixed.state == gust_model::FunctionState::Pending {
                    fixed.activate()?;
                }
                if fixed.is_updating() {
                    fixed.finish_update(LastUpdateStatus::Successful)?;
                }
                if fixed != *config {
                    fixed.revision_id = Self::new_revision();
                    self.store
                        .replace_function(&fixed, &config.revision_id, None)?;
                    tracing::warn!(function = %config.name, "finished a transition interrupted by a crash");
                    recovered += 1;
                }
            }
            match page.next_marker {
                Some(next) => marker = Some(next),
                None => return Ok(recovered),
            }
        }
    }

    /// GetFunction.
    pub fn get_function(&self, reference: &FunctionRef) -> Result<FunctionDetails> {
        self.load(reference)
    }

    /// ListFunctions.
    pub fn list_functions(
        &self,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<FunctionPage> {
        let max_items = max_items.unwrap_or(limits::LIST_MAX_ITEMS_DEFAULT as i64);
        let mut violations = gust_model::error::Violations::default();
        violations.range(max_items, "maxItems", 1, limits::LIST_MAX_ITEMS);
        violations.finish()?;
        let limit = usize::try_from(max_items).unwrap_or(limits::LIST_MAX_ITEMS_DEFAULT);
        Ok(self.store.list_functions(marker, limit)?)
    }

    /// UpdateFunctionConfiguration.
    pub fn update_configuration(
        &self,
        reference: &FunctionRef,
        update: &FunctionUpdate,
        revision_id: Option<&str>,
    ) -> Result<FunctionConfig> {
        self.require_unqualified_or_latest(reference)?;
        if update.architectures.is_some() {
            return Err(ModelError::invalid(
                "Architectures can only be changed with UpdateFunctionCode.",
            )
            .into());
        }
        self.check_constraints_first(&reference.name, update)?;
        let current = self.load(reference)?.config;
        let runtime = update.runtime.as_deref().unwrap_or(current.runtime.id());
        self.refuse_blocked(runtime, true)?;
        let mut next = current.clone();
        next.apply(update, &self.catalog)?;
        if let Some(arns) = &update.layers {
            let code_unzipped = self.store.unzipped_size(&current.code.digest)?;
            next.layers = self.resolve_layers(arns, code_unzipped)?;
        }
        self.commit_update(current, next, revision_id, None)
    }

    /// UpdateFunctionCode.
    pub fn update_code(
        &self,
        reference: &FunctionRef,
        request: &UpdateCode,
    ) -> Result<FunctionConfig> {
        self.require_unqualified_or_latest(reference)?;
        let current = self.load(reference)?.config;
        self.refuse_blocked(current.runtime.id(), true)?;
        let mut next = current.clone();
        if request.architectures.is_some() {
            let change = FunctionUpdate {
                architectures: request.architectures.clone(),
                ..FunctionUpdate::default()
            };
            next.apply(&change, &self.catalog)?;
        }
        let (staged, unzipped) = self.check_zip(&request.zip, request.origin)?;
        layers::check_total_unzipped(unzipped.saturating_add(self.layers_unzipped(&next.layers)?))?;
        next.code = staged.code.clone();
        if request.dry_run {
            check_revision(&current, request.revision_id.as_deref())?;
            return Ok(next);
        }
        let (updated, done) = self.commit_update_finished(
            current,
            next,
            request.revision_id.as_deref(),
            Some(staged),
        )?;
        if request.publish {
            // The update as committed (finished) is what gets published; the answer is
            // the published version's configuration.
            return self.publish(&done, None, None);
        }
        Ok(updated)
    }

    /// Stores `next` as an update of `current` (InProgress, new revision), then finishes it.
    /// Returns the InProgress snapshot, as Lambda's update responses show.
    fn commit_update(
        &self,
        current: FunctionConfig,
        next: FunctionConfig,
        revision_id: Option<&str>,
        code: Option<StagedBlob>,
    ) -> Result<FunctionConfig> {
        Ok(self
            .commit_update_finished(current, next, revision_id, code)?
            .0)
    }

    /// [`Self::commit_update`], returning also the finished configuration as stored
    /// (`Successful`, with a revision of its own: every change moves the revision).
    fn commit_update_finished(
        &self,
        current: FunctionConfig,
        mut next: FunctionConfig,
        revision_id: Option<&str>,
        code: Option<StagedBlob>,
    ) -> Result<(FunctionConfig, FunctionConfig)> {
        check_revision(&current, revision_id)?;
        let in_progress = self.update_in_progress(&current.name);
        if current.state == gust_model::FunctionState::Pending {
            return Err(in_progress);
        }
        next.begin_update()
            .map_err(|_| self.update_in_progress(&current.name))?;
        next.revision_id = Self::new_revision();
        next.last_modified = self.clock.now();
        let new_code = code.is_some();
        self.store
            .replace_function(&next, &current.revision_id, code)
            .map_err(|e| match e {
                StoreError::RevisionMismatch(_) => self.update_in_progress(&current.name),
                StoreError::NotFound(_) => self.not_found(&current.name, None),
                other => other.into(),
            })?;
        let snapshot = next.clone();
        // InProgress until the new code is ready: another change meanwhile is refused.
        if new_code {
            self.prepare(&next);
        }
        next.finish_update(LastUpdateStatus::Successful)?;
        next.revision_id = Self::new_revision();
        match self
            .store
            .replace_function(&next, &snapshot.revision_id, None)
        {
            Err(StoreError::NotFound(_) | StoreError::RevisionMismatch(_)) => {}
            other => other?,
        }
        self.changed(&next.name);
        Ok((snapshot, next))
    }

    fn update_in_progress(&self, name: &FunctionName) -> ControlError {
        ControlError::Conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {}",
            self.arn(name, None)
        ))
    }

    /// DeleteFunction.
    pub fn delete_function(&self, reference: &FunctionRef) -> Result<()> {
        match &reference.qualifier {
            None => {}
            Some(Qualifier::Latest) => {
                return Err(ModelError::invalid(
                    "$LATEST version cannot be deleted without deleting the function.",
                )
                .into())
            }
            Some(Qualifier::Alias(_)) => {
                return Err(
                    ModelError::invalid("Deletion of aliases is not currently supported.").into(),
                )
            }
            Some(q @ Qualifier::Version(n)) => {
                let deleted =
                    self.store
                        .delete_version(&reference.name, *n)
                        .map_err(|e| match e {
                            StoreError::VersionInUse { aliases } => {
                                ControlError::Conflict(format!(
                        "Unable to delete version because the following aliases reference it: [{}]",
                        aliases.join(", ")
                    ))
                            }
                            other => other.into(),
                        })?;
                if !deleted {
                    return Err(self.not_found(&reference.name, Some(q)));
                }
                self.notify(|o| o.version_deleted(&reference.name, *n));
                self.sync_provisioned(&reference.name)?;
                return Ok(());
            }
        }
        let _sync = self.provisioned_sync();
        if self.store.delete_function(&reference.name)? {
            self.notify(|o| o.function_deleted(&reference.name));
            Ok(())
        } else {
            Err(self.not_found(&reference.name, None))
        }
    }

    /// Parses the `{ARN}` of the tagging operations: an unqualified function ARN.
    pub fn resolve_tag_resource(&self, resource: &str) -> Result<FunctionName> {
        if !resource.starts_with("arn:") {
            return Err(ModelError::constraint(
                resource,
                "resource",
                "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
            )
            .into());
        }
        let reference = self.resolve(resource, None, IdKind::Namespaced)?;
        if reference.qualifier.is_some() {
            return Err(ModelError::invalid(
                "Tags on function aliases and versions are not supported. Please specify a function ARN.",
            )
            .into());
        }
        Ok(reference.name)
    }

    /// TagResource.
    pub fn tag_resource(&self, resource: &str, tags: &Tags) -> Result<()> {
        if let Some(uuid) = self.mapping_of_arn(resource) {
            if tags.is_empty() {
                return Err(ModelError::invalid("Tags must not be empty.").into());
            }
            return self.tag_mapping(&uuid, tags);
        }
        let name = self.resolve_tag_resource(resource)?;
        if tags.is_empty() {
            return Err(ModelError::invalid("Tags must not be empty.").into());
        }
        let existing = self.tags_of(&name)?;
        gust_model::tags::validate_new_tags(tags, &existing)?;
        // A tag change is a change of the function: its revision moves.
        self.store
            .put_tags(&name, tags, &Self::new_revision())
            .map_err(|e| match e {
                StoreError::NotFound(_) => self.not_found(&name, None),
                other => other.into(),
            })
    }

    /// UntagResource.
    pub fn untag_resource(&self, resource: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Err(ModelError::missing("tagKeys").into());
        }
        if let Some(uuid) = self.mapping_of_arn(resource) {
            return self.untag_mapping(&uuid, keys);
        }
        let name = self.resolve_tag_resource(resource)?;
        self.tags_of(&name)?;
        Ok(self.store.remove_tags(&name, keys, &Self::new_revision())?)
    }

    /// ListTags.
    pub fn list_tags(&self, resource: &str) -> Result<Tags> {
        if let Some(uuid) = self.mapping_of_arn(resource) {
            return Ok(self.mapping(&uuid)?.tags);
        }
        let name = self.resolve_tag_resource(resource)?;
        self.tags_of(&name)
    }

    fn tags_of(&self, name: &FunctionName) -> Result<Tags> {
        self.store
            .get_function(name)?
            .map(|(_, tags)| tags)
            .ok_or_else(|| self.not_found(name, None))
    }

    /// GetAccountSettings.
    pub fn account_settings(&self) -> Result<AccountSettings> {
        let taken = self.reserved_total()? + self.unreserved_provisioned_total()?;
        Ok(AccountSettings {
            usage: self.store.account_usage()?,
            concurrency_limit: self.concurrency_limit,
            unreserved_concurrency: self.concurrency_limit.saturating_sub(taken),
        })
    }
}

fn check_revision(current: &FunctionConfig, expected: Option<&str>) -> Result<()> {
    match expected {
        Some(revision) if revision != current.revision_id => Err(ControlError::PreconditionFailed),
        _ => Ok(()),
    }
}

mod concurrency;
mod event_invoke;
mod layers;
mod mappings;
mod policies;
mod provisioned;
mod settings;
mod urls;
mod versions;
pub use concurrency::UNRESERVED_MINIMUM;
pub use event_invoke::AsyncSettings;
pub use layers::{LayerPermission, LayerPolicy};
pub use mappings::{EventSourceMapping, QueueFacts, NO_RECORDS, USER_INITIATED};
pub use policies::FunctionPolicy;
pub use provisioned::ProvisionedConfig;
pub use settings::{runtime_version_arn, RuntimeManagement};
pub use urls::{FunctionUrlChange, FunctionUrlConfig};
pub use versions::{Page, PublishVersion};

#[cfg(test)]
mod tests;

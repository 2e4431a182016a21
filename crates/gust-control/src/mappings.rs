//! Event source mappings (`Create/Get/Update/Delete/ListEventSourceMappings`): which
//! function reads which queue, with which settings, and where the mapping is in its life.
//! The pollers (`gust-mappings`) read them from here and report back.

use gust_model::mapping::{unsupported_source, MappingChange, MappingSettings, MappingState};
use gust_model::{FunctionName, FunctionRef, IdKind, ModelError, Qualifier};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::versions::page;
use crate::{ControlError, ControlPlane, Page, Result};

/// What Lambda's state field says a user did.
pub const USER_INITIATED: &str = "USER_INITIATED";
/// `LastProcessingResult` before any batch.
pub const NO_RECORDS: &str = "No records processed";

/// What a mapping's queue is like (found by the caller, which knows the queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFacts {
    /// A FIFO queue.
    pub fifo: bool,
    /// Its default visibility timeout, seconds.
    pub visibility_timeout_s: u32,
}

/// One mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSourceMapping {
    /// `UUID`.
    pub uuid: String,
    /// The function it invokes.
    pub function: String,
    /// The version or alias it invokes, if not `$LATEST`.
    pub qualifier: Option<String>,
    /// The queue's ARN.
    pub source_arn: String,
    /// Settings.
    pub settings: MappingSettings,
    /// Where it is in its life.
    pub state: MappingState,
    /// `StateTransitionReason`.
    pub state_reason: String,
    /// `LastModified`, epoch milliseconds.
    pub last_modified_ms: i64,
    /// `LastProcessingResult`.
    pub last_processing_result: String,
    /// Its tags.
    #[serde(default)]
    pub tags: gust_model::Tags,
}

impl EventSourceMapping {
    /// `LastModified`.
    pub fn last_modified(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.last_modified_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn not_found() -> ControlError {
    ControlError::NotFound("The resource you requested does not exist.".into())
}

impl ControlPlane {
    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The function a mapping invokes: an existing function, version or alias.
    fn mapping_target(&self, function: &str) -> Result<FunctionRef> {
        let reference = self.resolve(function, None, IdKind::Namespaced)?;
        self.get_function(&reference)?;
        Ok(reference)
    }

    /// The function's ARN as a mapping names it (qualified when a qualifier was given).
    pub fn mapping_function_arn(&self, mapping: &EventSourceMapping) -> String {
        let name = FunctionName::parse(&mapping.function).ok();
        match name {
            Some(name) => {
                let qualifier = mapping
                    .qualifier
                    .as_deref()
                    .and_then(|q| Qualifier::parse(q).ok());
                self.arn(&name, qualifier.as_ref())
            }
            None => mapping.function.clone(),
        }
    }

    fn mapping_record(mapping: &EventSourceMapping) -> Result<(FunctionName, String)> {
        let name = FunctionName::parse(&mapping.function).map_err(ControlError::from)?;
        let record = serde_json::to_string(mapping).map_err(|e| {
            ControlError::Store(gust_store::StoreError::Io {
                context: "event source mapping record".into(),
                source: std::io::Error::other(e),
            })
        })?;
        Ok((name, record))
    }

    /// Stores a change to an existing mapping (never bringing a deleted one back).
    fn store_mapping(&self, mapping: &EventSourceMapping) -> Result<()> {
        let (name, record) = Self::mapping_record(mapping)?;
        if !self.store.update_mapping(&mapping.uuid, &name, &record)? {
            return Err(not_found());
        }
        Ok(())
    }

    /// Serialises a mapping's read-change-write against other changes of this process
    /// (the pollers' reports, the API's updates, tags, deletes).
    fn mapping_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.mapping_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every mapping of this account (oldest first).
    pub fn all_mappings(&self) -> Result<Vec<EventSourceMapping>> {
        Ok(self
            .store
            .mappings()?
            .into_iter()
            .filter_map(|(_, _, _, record)| serde_json::from_str(&record).ok())
            .collect())
    }

    /// `GetEventSourceMapping`.
    pub fn mapping(&self, uuid: &str) -> Result<EventSourceMapping> {
        self.all_mappings()?
            .into_iter()
            .find(|m| m.uuid == uuid)
            .ok_or_else(not_found)
    }

    /// `CreateEventSourceMapping` for a queue described by `queue` (`None`: it does not
    /// exist).
    pub fn create_mapping(
        &self,
        function: &str,
        source_arn: Option<&str>,
        change: &MappingChange,
        tags: &gust_model::Tags,
        queue: Option<QueueFacts>,
        check_pattern: impl Fn(&str) -> std::result::Result<(), String>,
    ) -> Result<EventSourceMapping> {
        gust_model::tags::validate_new_tags(tags, &gust_model::Tags::new())?;
        let source_arn = source_arn.ok_or_else(|| {
            ModelError::invalid(
                "Unrecognized event source, must be kinesis, dynamodb stream, sqs, MSK or Kafka.",
            )
        })?;
        if let Some(kind) = unsupported_source(source_arn) {
            return Err(ModelError::invalid(format!(
                "Gust does not support {kind} as an event source yet; SQS queues are supported."
            ))
            .into());
        }
        let reference = self.mapping_target(function)?;
        let queue = queue.ok_or_else(|| {
            ModelError::invalid(
                "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist.",
            )
        })?;
        let settings = MappingSettings::default().apply(change, queue.fifo, check_pattern)?;
        self.check_visibility(&reference, queue)?;
        let existing = self.all_mappings()?;
        if let Some(other) = existing.iter().find(|m| {
            m.source_arn == source_arn
                && m.function == reference.name.as_str()
                && m.qualifier == reference.qualifier.as_ref().map(ToString::to_string)
        }) {
            return Err(ControlError::Conflict(format!(
                "The event source arn (\" {source_arn} \") and function (\" {} \") provided mapping already exists. Please update or delete the existing mapping with UUID {}",
                reference.name, other.uuid
            )));
        }
        let mapping = EventSourceMapping {
            uuid: uuid::Uuid::new_v4().to_string(),
            function: reference.name.to_string(),
            qualifier: reference.qualifier.as_ref().map(ToString::to_string),
            source_arn: source_arn.to_owned(),
            settings,
            state: MappingState::Creating,
            state_reason: USER_INITIATED.into(),
            last_modified_ms: self.now_ms(),
            last_processing_result: NO_RECORDS.into(),
            tags: tags.clone(),
        };
        let (name, record) = Self::mapping_record(&mapping)?;
        self.store
            .put_mapping(&mapping.uuid, &name, &mapping.source_arn, &record)?;
        Ok(mapping)
    }

    /// The mapping an ARN of this account names (`…:event-source-mapping:<UUID>`).
    pub(crate) fn mapping_of_arn(&self, arn: &str) -> Option<String> {
        let prefix = format!(
            "arn:aws:lambda:{}:{}:event-source-mapping:",
            self.scope.region, self.scope.account_id
        );
        arn.strip_prefix(&prefix).map(str::to_owned)
    }

    pub(crate) fn tag_mapping(&self, uuid: &str, tags: &gust_model::Tags) -> Result<()> {
        let _writes = self.mapping_writes();
        let mut mapping = self.mapping(uuid)?;
        gust_model::tags::validate_new_tags(tags, &mapping.tags)?;
        mapping
            .tags
            .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.store_mapping(&mapping)
    }

    pub(crate) fn untag_mapping(&self, uuid: &str, keys: &[String]) -> Result<()> {
        let _writes = self.mapping_writes();
        let mut mapping = self.mapping(uuid)?;
        mapping.tags.retain(|k, _| !keys.contains(k));
        self.store_mapping(&mapping)
    }

    /// Lambda refuses a queue whose visibility timeout is shorter than the function's
    /// timeout: a batch would become visible again while it is still being processed.
    fn check_visibility(&self, reference: &FunctionRef, queue: QueueFacts) -> Result<()> {
        let timeout = self.get_function(reference)?.config.timeout_s;
        if queue.visibility_timeout_s < timeout {
            return Err(ModelError::invalid(format!(
                "Queue visibility timeout: {} seconds is less than Function timeout: {timeout} seconds",
                queue.visibility_timeout_s
            ))
            .into());
        }
        Ok(())
    }

    /// `UpdateEventSourceMapping`: new settings (and perhaps another function).
    pub fn update_mapping(
        &self,
        uuid: &str,
        function: Option<&str>,
        change: &MappingChange,
        queue: Option<QueueFacts>,
        check_pattern: impl Fn(&str) -> std::result::Result<(), String>,
    ) -> Result<EventSourceMapping> {
        let _writes = self.mapping_writes();
        let mut mapping = self.mapping(uuid)?;
        if mapping.state == MappingState::Deleting {
            return Err(ControlError::Conflict(format!(
                "The resource you requested is currently in use. Mapping {uuid} is being deleted."
            )));
        }
        let queue = queue.unwrap_or(QueueFacts {
            fifo: mapping.source_arn.ends_with(".fifo"),
            visibility_timeout_s: u32::MAX,
        });
        let settings = mapping.settings.apply(change, queue.fifo, check_pattern)?;
        if let Some(function) = function {
            let reference = self.mapping_target(function)?;
            self.check_visibility(&reference, queue)?;
            mapping.function = reference.name.to_string();
            mapping.qualifier = reference.qualifier.as_ref().map(ToString::to_string);
        }
        mapping.settings = settings;
        mapping.state = mapping
            .state
            .transition(MappingState::Updating)
            .map_err(|e| ControlError::Conflict(e.to_string()))?;
        mapping.state_reason = USER_INITIATED.into();
        mapping.last_modified_ms = self.now_ms();
        self.store_mapping(&mapping)?;
        Ok(mapping)
    }

    /// `DeleteEventSourceMapping`: the mapping as it was, in state `Deleting`.
    pub fn delete_mapping(&self, uuid: &str) -> Result<EventSourceMapping> {
        let _writes = self.mapping_writes();
        let mut mapping = self.mapping(uuid)?;
        mapping.state = MappingState::Deleting;
        if !self.store.delete_mapping(uuid)? {
            return Err(not_found());
        }
        Ok(mapping)
    }

    /// `ListEventSourceMappings`, optionally for one function and/or one source.
    pub fn list_mappings(
        &self,
        function: Option<&str>,
        source_arn: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<EventSourceMapping>> {
        let function = match function {
            Some(text) => {
                let reference = self.resolve(text, None, IdKind::Namespaced)?;
                Some((
                    reference.name.to_string(),
                    reference.qualifier.as_ref().map(ToString::to_string),
                ))
            }
            None => None,
        };
        let all: Vec<EventSourceMapping> = self
            .all_mappings()?
            .into_iter()
            .filter(|m| {
                function.as_ref().is_none_or(|(name, qualifier)| {
                    m.function == *name && (qualifier.is_none() || m.qualifier == *qualifier)
                })
            })
            .filter(|m| source_arn.is_none_or(|arn| m.source_arn == arn))
            .collect();
        page(
            all,
            |m| m.uuid.clone(),
            marker,
            max_items.map(|n| n.min(100)),
        )
    }

    /// The pollers settled a mapping (`Enabled` or `Disabled` after a create or update).
    /// Nothing happens if it changed again meanwhile (`seen_ms` is the version they saw).
    pub fn settle_mapping(&self, uuid: &str, seen_ms: i64) -> Result<()> {
        let _writes = self.mapping_writes();
        let Ok(mut mapping) = self.mapping(uuid) else {
            return Ok(());
        };
        if mapping.last_modified_ms != seen_ms {
            return Ok(());
        }
        let settled = MappingState::settled(mapping.settings.enabled);
        if mapping.state == settled {
            return Ok(());
        }
        let target = match (mapping.state, settled) {
            // Settling from a change goes straight to where the settings say.
            (MappingState::Enabled, MappingState::Disabled) => MappingState::Disabling,
            (MappingState::Disabled, MappingState::Enabled) => MappingState::Enabling,
            _ => settled,
        };
        mapping.state = mapping
            .state
            .transition(target)
            .map_err(|e| ControlError::Conflict(e.to_string()))?;
        if mapping.state != settled {
            mapping.state = mapping
                .state
                .transition(settled)
                .map_err(|e| ControlError::Conflict(e.to_string()))?;
        }
        self.store_mapping(&mapping)
    }

    /// Records a batch's outcome (`OK`, `PROBLEM: …`) when it differs from the last one.
    pub fn record_mapping_result(&self, uuid: &str, result: &str) -> Result<()> {
        let _writes = self.mapping_writes();
        let Ok(mut mapping) = self.mapping(uuid) else {
            return Ok(());
        };
        if mapping.last_processing_result == result {
            return Ok(());
        }
        mapping.last_processing_result = result.to_owned();
        self.store_mapping(&mapping)
    }
}

//! `Create/Get/Update/Delete/ListEventSourceMappings`: the control plane keeps the
//! mappings; the queue's facts (FIFO, visibility timeout) come from SQS; the pollers
//! (`gust-mappings`) pick changes up within a second.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use gust_control::{EventSourceMapping, QueueFacts};
use gust_model::mapping::MappingChange;
use gust_model::pattern::EventPattern;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::routes::{max_items, parse_body, Operation, Query};
use crate::{json, Plane};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Filter {
    pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct FilterCriteria {
    filters: Option<Vec<Filter>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ScalingConfig {
    maximum_concurrency: Option<i64>,
}

/// The members of Create and Update that matter for an SQS source; the stream- and
/// Kafka-only ones are refused when given.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Request {
    function_name: Option<String>,
    event_source_arn: Option<String>,
    enabled: Option<bool>,
    batch_size: Option<i64>,
    maximum_batching_window_in_seconds: Option<i64>,
    function_response_types: Option<Vec<String>>,
    filter_criteria: Option<FilterCriteria>,
    scaling_config: Option<ScalingConfig>,
    starting_position: Option<Value>,
    starting_position_timestamp: Option<Value>,
    parallelization_factor: Option<Value>,
    maximum_record_age_in_seconds: Option<Value>,
    bisect_batch_on_function_error: Option<Value>,
    maximum_retry_attempts: Option<Value>,
    tumbling_window_in_seconds: Option<Value>,
    destination_config: Option<Value>,
    topics: Option<Value>,
    queues: Option<Value>,
    source_access_configurations: Option<Value>,
    self_managed_event_source: Option<Value>,
    tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "KMSKeyArn")]
    kms_key_arn: Option<Value>,
    metrics_config: Option<Value>,
    logging_config: Option<Value>,
    provisioned_poller_config: Option<Value>,
}

impl Request {
    /// A stream- or Kafka-only member given for a queue.
    fn unsupported(&self) -> Option<&'static str> {
        [
            (self.starting_position.is_some(), "StartingPosition"),
            (
                self.starting_position_timestamp.is_some(),
                "StartingPositionTimestamp",
            ),
            (
                self.parallelization_factor.is_some(),
                "ParallelizationFactor",
            ),
            (
                self.maximum_record_age_in_seconds.is_some(),
                "MaximumRecordAgeInSeconds",
            ),
            (
                self.bisect_batch_on_function_error.is_some(),
                "BisectBatchOnFunctionError",
            ),
            (
                self.maximum_retry_attempts.is_some(),
                "MaximumRetryAttempts",
            ),
            (
                self.tumbling_window_in_seconds.is_some(),
                "TumblingWindowInSeconds",
            ),
            (self.destination_config.is_some(), "DestinationConfig"),
            (self.topics.is_some(), "Topics"),
            (self.queues.is_some(), "Queues"),
            (
                self.source_access_configurations.is_some(),
                "SourceAccessConfigurations",
            ),
            (
                self.self_managed_event_source.is_some(),
                "SelfManagedEventSource",
            ),
            (self.kms_key_arn.is_some(), "KMSKeyArn"),
            (self.metrics_config.is_some(), "MetricsConfig"),
            (self.logging_config.is_some(), "LoggingConfig"),
            (
                self.provisioned_poller_config.is_some(),
                "ProvisionedPollerConfig",
            ),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    fn change(&self) -> MappingChange {
        MappingChange {
            batch_size: self.batch_size,
            window_s: self.maximum_batching_window_in_seconds,
            response_types: self.function_response_types.clone(),
            filters: self.filter_criteria.as_ref().map(|c| {
                c.filters
                    .iter()
                    .flatten()
                    .map(|f| f.pattern.clone().unwrap_or_default())
                    .collect()
            }),
            maximum_concurrency: self.scaling_config.as_ref().map(|s| s.maximum_concurrency),
            enabled: self.enabled,
        }
    }
}

fn check_pattern(pattern: &str) -> Result<(), String> {
    EventPattern::parse(pattern)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The mapping as Lambda renders it.
pub(crate) fn render(plane: &Plane, mapping: &EventSourceMapping) -> Value {
    let scope = plane.control.scope();
    let settings = &mapping.settings;
    let mut out = json!({
        "UUID": mapping.uuid,
        "BatchSize": settings.batch_size,
        "MaximumBatchingWindowInSeconds": settings.window_s,
        "EventSourceArn": mapping.source_arn,
        "FunctionArn": plane.control.mapping_function_arn(mapping),
        "LastModified": mapping.last_modified().unix_timestamp_nanos() as f64 / 1e9,
        "LastProcessingResult": mapping.last_processing_result,
        "State": mapping.state.as_str(),
        "StateTransitionReason": mapping.state_reason,
        "FunctionResponseTypes": if settings.report_item_failures {
            json!(["ReportBatchItemFailures"])
        } else {
            json!([])
        },
        "EventSourceMappingArn": format!(
            "arn:aws:lambda:{}:{}:event-source-mapping:{}",
            scope.region, scope.account_id, mapping.uuid
        ),
    });
    if !settings.filters.is_empty() {
        out["FilterCriteria"] = json!({
            "Filters": settings.filters.iter().map(|p| json!({"Pattern": p})).collect::<Vec<_>>()
        });
    }
    if let Some(n) = settings.maximum_concurrency {
        out["ScalingConfig"] = json!({"MaximumConcurrency": n});
    }
    out
}

/// What the queue behind `arn` is like, if it exists in the caller's account.
async fn queue_facts(sqs: &gust_sqs::Sqs, account: &str, arn: &str) -> Option<QueueFacts> {
    let queue = sqs.parse_arn(arn)?;
    let caller = gust_sqs::Caller::account(account, account);
    let attributes = sqs
        .get_attributes(
            &caller,
            &queue,
            &["FifoQueue".into(), "VisibilityTimeout".into()],
        )
        .await
        .ok()?;
    Some(QueueFacts {
        fifo: attributes.get("FifoQueue").is_some_and(|v| v == "true"),
        visibility_timeout_s: attributes
            .get("VisibilityTimeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    })
}

pub(crate) async fn handle(
    plane: &Plane,
    sqs: &gust_sqs::Sqs,
    operation: &Operation,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = Arc::clone(&plane.control);
    let account = control.scope().account_id.clone();
    let request: Request = parse_body(body)?;
    match operation {
        Operation::CreateEventSourceMapping => {
            let function = request
                .function_name
                .clone()
                .ok_or_else(|| ApiError::from(gust_model::ModelError::missing("functionName")))?;
            // A source Gust does not have is refused as such by the control plane.
            let sqs_source = request
                .event_source_arn
                .as_deref()
                .is_some_and(|arn| gust_model::mapping::unsupported_source(arn).is_none());
            if let Some(member) = request.unsupported().filter(|_| sqs_source) {
                return Err(gust_model::ModelError::invalid(format!(
                    "Unsupported parameter for SQS event sources in Gust: {member}."
                ))
                .into());
            }
            let facts = match &request.event_source_arn {
                Some(arn) => queue_facts(sqs, &account, arn).await,
                None => None,
            };
            let change = request.change();
            let tags = request.tags.clone().unwrap_or_default();
            let created = tokio::task::spawn_blocking(move || {
                control.create_mapping(
                    &function,
                    request.event_source_arn.as_deref(),
                    &change,
                    &tags,
                    facts,
                    check_pattern,
                )
            })
            .await
            .map_err(|e| ApiError::internal(&e))??;
            json(StatusCode::ACCEPTED, &render(plane, &created))
        }
        Operation::UpdateEventSourceMapping(uuid) => {
            if let Some(member) = request.unsupported() {
                return Err(gust_model::ModelError::invalid(format!(
                    "Unsupported parameter for SQS event sources in Gust: {member}."
                ))
                .into());
            }
            let current = {
                let control = Arc::clone(&control);
                let uuid = uuid.clone();
                tokio::task::spawn_blocking(move || control.mapping(&uuid))
                    .await
                    .map_err(|e| ApiError::internal(&e))??
            };
            let facts = queue_facts(sqs, &account, &current.source_arn).await;
            let (uuid, change) = (uuid.clone(), request.change());
            let function = request.function_name.clone();
            let updated = tokio::task::spawn_blocking(move || {
                control.update_mapping(&uuid, function.as_deref(), &change, facts, check_pattern)
            })
            .await
            .map_err(|e| ApiError::internal(&e))??;
            json(StatusCode::ACCEPTED, &render(plane, &updated))
        }
        Operation::DeleteEventSourceMapping(uuid) => {
            let uuid = uuid.clone();
            let deleted = tokio::task::spawn_blocking(move || control.delete_mapping(&uuid))
                .await
                .map_err(|e| ApiError::internal(&e))??;
            json(StatusCode::ACCEPTED, &render(plane, &deleted))
        }
        Operation::GetEventSourceMapping(uuid) => {
            let uuid = uuid.clone();
            let found = tokio::task::spawn_blocking(move || control.mapping(&uuid))
                .await
                .map_err(|e| ApiError::internal(&e))??;
            json(StatusCode::OK, &render(plane, &found))
        }
        _ => {
            let function = query.get("FunctionName").map(str::to_owned);
            let source = query.get("EventSourceArn").map(str::to_owned);
            let marker = query.get("Marker").map(str::to_owned);
            let max = max_items(query)?;
            let page = tokio::task::spawn_blocking(move || {
                control.list_mappings(
                    function.as_deref(),
                    source.as_deref(),
                    marker.as_deref(),
                    max,
                )
            })
            .await
            .map_err(|e| ApiError::internal(&e))??;
            let mut out = json!({
                "EventSourceMappings": page.items.iter().map(|m| render(plane, m)).collect::<Vec<_>>()
            });
            if let Some(marker) = page.next_marker {
                out["NextMarker"] = json!(marker);
            }
            json(StatusCode::OK, &out)
        }
    }
}

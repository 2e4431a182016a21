//! `*FunctionEventInvokeConfig`: wire shapes and handlers.

use axum::http::StatusCode;
use axum::response::Response;
use gust_model::event_invoke::EventInvokeConfig;
use gust_model::IdKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::routes::{max_items, parse_body, Context, Query};
use crate::{json, no_content};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DestinationDto {
    destination: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DestinationConfigDto {
    on_success: Option<DestinationDto>,
    on_failure: Option<DestinationDto>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConfigRequest {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfigDto>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    function_event_invoke_configs: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

/// The response shape: `LastModified` in epoch seconds, `DestinationConfig` always with
/// both members.
fn render(config: &EventInvokeConfig, arn: &str) -> Value {
    let destination = |d: &Option<String>| match d {
        Some(arn) => json!({"Destination": arn}),
        None => json!({}),
    };
    let mut out = json!({
        "LastModified": config.last_modified_ms as f64 / 1000.0,
        "FunctionArn": arn,
        "DestinationConfig": {
            "OnSuccess": destination(&config.on_success),
            "OnFailure": destination(&config.on_failure),
        },
    });
    if let Some(retries) = config.maximum_retry_attempts {
        out["MaximumRetryAttempts"] = json!(retries);
    }
    if let Some(age) = config.maximum_event_age_seconds {
        out["MaximumEventAgeInSeconds"] = json!(age);
    }
    out
}

/// Out-of-range numbers still reach the model's check (as their own value), so the
/// message quotes them as Lambda does.
fn clamp(value: Option<i64>) -> Option<u32> {
    value.map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX))
}

/// `PUT` (replace) and `POST` (update) of `.../event-invoke-config`.
pub(crate) fn put(
    context: &Context,
    function: &str,
    query: &Query,
    body: &[u8],
    merge: bool,
) -> Result<Response, ApiError> {
    let reference =
        context
            .control
            .resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let request: ConfigRequest = parse_body(body)?;
    if request.maximum_retry_attempts.is_some_and(|v| v < 0) {
        return Err(gust_model::ModelError::constraint(
            request
                .maximum_retry_attempts
                .unwrap_or_default()
                .to_string(),
            "maximumRetryAttempts",
            "Member must have value greater than or equal to 0",
        )
        .into());
    }
    let destinations = request.destination_config.unwrap_or_default();
    let given = EventInvokeConfig {
        maximum_retry_attempts: clamp(request.maximum_retry_attempts),
        maximum_event_age_seconds: clamp(request.maximum_event_age_in_seconds),
        on_success: destinations
            .on_success
            .map(|d| d.destination.unwrap_or_default()),
        on_failure: destinations
            .on_failure
            .map(|d| d.destination.unwrap_or_default()),
        last_modified_ms: 0,
    };
    let (config, arn) = context
        .control
        .put_event_invoke_config(&reference, &given, merge)?;
    json(StatusCode::OK, &render(&config, &arn))
}

/// `GET .../event-invoke-config`.
pub(crate) fn get(context: &Context, function: &str, query: &Query) -> Result<Response, ApiError> {
    let reference =
        context
            .control
            .resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let (config, arn) = context.control.event_invoke_config(&reference)?;
    json(StatusCode::OK, &render(&config, &arn))
}

/// `DELETE .../event-invoke-config`.
pub(crate) fn delete(
    context: &Context,
    function: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let reference =
        context
            .control
            .resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    context.control.delete_event_invoke_config(&reference)?;
    no_content()
}

/// `GET .../event-invoke-config/list`: `Marker` is the ARN the previous page ended with.
pub(crate) fn list(context: &Context, function: &str, query: &Query) -> Result<Response, ApiError> {
    let reference = context.control.resolve(function, None, IdKind::Mutating)?;
    let max = max_items(query)?.unwrap_or(50).clamp(1, 50) as usize;
    let all = context.control.list_event_invoke_configs(&reference.name)?;
    let start = match query.get("Marker") {
        Some(marker) => all
            .iter()
            .position(|(_, arn)| arn == marker)
            .map_or(all.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<_> = all.iter().skip(start).take(max).collect();
    let next_marker = (start + page.len() < all.len())
        .then(|| page.last().map(|(_, arn)| arn.clone()))
        .flatten();
    json(
        StatusCode::OK,
        &ListResponse {
            function_event_invoke_configs: page.iter().map(|(c, arn)| render(c, arn)).collect(),
            next_marker,
        },
    )
}

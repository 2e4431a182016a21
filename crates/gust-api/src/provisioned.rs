//! `Put/Get/Delete/ListProvisionedConcurrencyConfigs`: the control plane stores what is
//! requested (and tells the engine); the status comes from the engine's environments.

use axum::http::StatusCode;
use axum::response::Response;
use gust_control::ProvisionedConfig;
use gust_model::{FunctionName, IdKind, ModelError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::dto::lambda_timestamp;
use crate::error::ApiError;
use crate::routes::{max_items_to_50, parse_body, Operation, Query};
use crate::{json, no_content, Plane};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PutRequest {
    provisioned_concurrent_executions: Option<i64>,
}

/// A configuration with what the engine has for it.
fn render(plane: &Plane, name: &FunctionName, config: &ProvisionedConfig) -> Value {
    let status = plane.engine.provisioned_status(name, &config.qualifier);
    // Environments beyond a lowered request are retiring; they no longer count.
    let allocated = status.allocated.min(config.requested);
    let (state, reason) = match status.failure {
        Some(reason) if allocated < config.requested => ("FAILED", Some(reason)),
        _ if allocated >= config.requested => ("READY", None),
        _ => ("IN_PROGRESS", None),
    };
    let mut out = json!({
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": state,
        "LastModified": lambda_timestamp(config.last_modified),
    });
    if let Some(reason) = reason {
        out["StatusReason"] = json!(reason);
    }
    out
}

pub(crate) async fn handle(
    plane: &Plane,
    operation: &Operation,
    function: &str,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = std::sync::Arc::clone(&plane.control);
    let list = query.get("List").is_some();
    let qualifier = query.get("Qualifier").map(str::to_owned);
    let kind = if list {
        IdKind::Mutating
    } else {
        IdKind::Namespaced
    };
    let reference = control.resolve(function, qualifier.as_deref(), kind)?;
    if !list && reference.qualifier.is_none() {
        return Err(ModelError::missing("qualifier").into());
    }
    let name = reference.name.clone();
    let operation = operation.clone();
    let request: PutRequest = parse_body(body)?;
    let marker = query.get("Marker").map(str::to_owned);
    let max = max_items_to_50(query)?;
    enum Done {
        One(StatusCode, ProvisionedConfig),
        Deleted,
        Page(gust_control::Page<ProvisionedConfig>),
    }
    let done = tokio::task::spawn_blocking(move || match operation {
        Operation::PutProvisionedConcurrencyConfig(_) => {
            let wanted = request.provisioned_concurrent_executions.ok_or_else(|| {
                ApiError::from(ModelError::missing("provisionedConcurrentExecutions"))
            })?;
            let config = control.put_provisioned_concurrency(&reference, wanted)?;
            Ok::<_, ApiError>(Done::One(StatusCode::ACCEPTED, config))
        }
        Operation::DeleteProvisionedConcurrencyConfig(_) => {
            control.delete_provisioned_concurrency(&reference)?;
            Ok(Done::Deleted)
        }
        _ if list => Ok(Done::Page(control.list_provisioned_concurrency(
            &reference,
            marker.as_deref(),
            max,
        )?)),
        _ => Ok(Done::One(
            StatusCode::OK,
            control.provisioned_concurrency(&reference)?,
        )),
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    match done {
        Done::One(status, config) => json(status, &render(plane, &name, &config)),
        Done::Deleted => no_content(),
        Done::Page(page) => {
            let configs: Vec<Value> = page
                .items
                .iter()
                .map(|config| {
                    let mut out = render(plane, &name, config);
                    out["FunctionArn"] = json!(format!(
                        "{}:{}",
                        plane.control.arn(&name, None),
                        config.qualifier
                    ));
                    out
                })
                .collect();
            let mut out = json!({ "ProvisionedConcurrencyConfigs": configs });
            if let Some(marker) = page.next_marker {
                out["NextMarker"] = json!(marker);
            }
            json(StatusCode::OK, &out)
        }
    }
}

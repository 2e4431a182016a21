//! `Put/Get/DeleteFunctionConcurrency`: the control plane stores the reservation, the
//! engine enforces it from the moment the call returns.

use axum::http::StatusCode;
use axum::response::Response;
use gust_model::{IdKind, ModelError};
use serde::Deserialize;

use crate::error::ApiError;
use crate::routes::{parse_body, Operation};
use crate::{json, no_content, Plane};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PutRequest {
    reserved_concurrent_executions: Option<i64>,
}

pub(crate) async fn handle(
    plane: &Plane,
    operation: &Operation,
    function: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = std::sync::Arc::clone(&plane.control);
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    let name = reference.name.clone();
    let operation = operation.clone();
    let request: PutRequest = parse_body(body)?;
    let (response, reserved) = tokio::task::spawn_blocking(move || match operation {
        Operation::PutFunctionConcurrency(_) => {
            let wanted = request.reserved_concurrent_executions.ok_or_else(|| {
                ApiError::from(ModelError::missing("reservedConcurrentExecutions"))
            })?;
            let reserved = control.put_reserved_concurrency(&reference, wanted)?;
            let response = json(
                StatusCode::OK,
                &serde_json::json!({"ReservedConcurrentExecutions": reserved}),
            )?;
            Ok::<_, ApiError>((response, Some(Some(reserved))))
        }
        Operation::DeleteFunctionConcurrency(_) => {
            control.delete_reserved_concurrency(&reference)?;
            Ok((no_content()?, Some(None)))
        }
        _ => {
            control.get_function(&reference)?;
            let body = match control.reserved_concurrency(&reference.name)? {
                Some(n) => serde_json::json!({"ReservedConcurrentExecutions": n}),
                None => serde_json::json!({}),
            };
            Ok((json(StatusCode::OK, &body)?, None))
        }
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    if let Some(reserved) = reserved {
        plane.engine.set_reserved_concurrency(&name, reserved);
    }
    Ok(response)
}

//! The recursion and runtime management settings: wire shapes and handlers.

use axum::http::StatusCode;
use axum::response::Response;
use gust_control::RuntimeManagement;
use gust_model::{IdKind, ModelError};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::json;
use crate::routes::{parse_body, Context, Query};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RecursionRequest {
    recursive_loop: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RecursionResponse {
    recursive_loop: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RuntimeManagementRequest {
    update_runtime_on: Option<String>,
    runtime_version_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuntimeManagementResponse {
    update_runtime_on: String,
    function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_version_arn: Option<String>,
}

/// `GET /2024-08-31/functions/{fn}/recursion-config`.
pub(crate) fn get_recursion(context: &Context, function: &str) -> Result<Response, ApiError> {
    let reference = context.control.resolve(function, None, IdKind::Mutating)?;
    let recursive_loop = context.control.recursion_config(&reference)?;
    json(StatusCode::OK, &RecursionResponse { recursive_loop })
}

/// `PUT /2024-08-31/functions/{fn}/recursion-config`.
pub(crate) fn put_recursion(
    context: &Context,
    function: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let reference = context.control.resolve(function, None, IdKind::Mutating)?;
    let request: RecursionRequest = parse_body(body)?;
    let value = request
        .recursive_loop
        .ok_or_else(|| ApiError::from(ModelError::missing("recursiveLoop")))?;
    let recursive_loop = context.control.put_recursion_config(&reference, &value)?;
    json(StatusCode::OK, &RecursionResponse { recursive_loop })
}

fn answer(
    context: &Context,
    reference: &gust_model::FunctionRef,
    settings: RuntimeManagement,
) -> Result<Response, ApiError> {
    json(
        StatusCode::OK,
        &RuntimeManagementResponse {
            update_runtime_on: settings.update_runtime_on,
            function_arn: context
                .control
                .arn(&reference.name, reference.qualifier.as_ref()),
            runtime_version_arn: settings.runtime_version_arn,
        },
    )
}

/// `GET /2021-07-20/functions/{fn}/runtime-management-config`.
pub(crate) fn get_runtime_management(
    context: &Context,
    function: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let reference =
        context
            .control
            .resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let settings = context.control.runtime_management(&reference)?;
    answer(context, &reference, settings)
}

/// `PUT /2021-07-20/functions/{fn}/runtime-management-config`.
pub(crate) fn put_runtime_management(
    context: &Context,
    function: &str,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let reference =
        context
            .control
            .resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let request: RuntimeManagementRequest = parse_body(body)?;
    let update_runtime_on = request
        .update_runtime_on
        .ok_or_else(|| ApiError::from(ModelError::missing("updateRuntimeOn")))?;
    let settings = context.control.put_runtime_management(
        &reference,
        &RuntimeManagement {
            update_runtime_on,
            runtime_version_arn: request.runtime_version_arn,
        },
    )?;
    answer(context, &reference, settings)
}

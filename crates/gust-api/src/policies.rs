//! AddPermission, GetPolicy and RemovePermission: wire shapes and handlers.

use axum::http::StatusCode;
use axum::response::Response;
use gust_model::policy::Permission;
use gust_model::IdKind;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::routes::{parse_body, Context, Query};
use crate::{json, no_content};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AddPermissionRequest {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    source_arn: Option<String>,
    source_account: Option<String>,
    event_source_token: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    principal_org_id: Option<String>,
    function_url_auth_type: Option<String>,
    invoked_via_function_url: Option<bool>,
    revision_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatementResponse {
    statement: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyResponse {
    policy: String,
    revision_id: String,
}

/// `POST /2015-03-31/functions/{fn}/policy`.
pub(crate) fn add_permission(
    context: &Context,
    function: &str,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let request: AddPermissionRequest = parse_body(body)?;
    crate::routes::require(&[
        (request.statement_id.is_some(), "statementId"),
        (request.action.is_some(), "action"),
        (request.principal.is_some(), "principal"),
    ])?;
    let permission = Permission {
        statement_id: request.statement_id.unwrap_or_default(),
        action: request.action.unwrap_or_default(),
        principal: request.principal.unwrap_or_default(),
        source_arn: request.source_arn,
        source_account: request.source_account,
        event_source_token: request.event_source_token,
        principal_org_id: request.principal_org_id,
        function_url_auth_type: request.function_url_auth_type,
        invoked_via_function_url: request.invoked_via_function_url,
    };
    let statement =
        control.add_permission(&reference, &permission, request.revision_id.as_deref())?;
    json(StatusCode::CREATED, &StatementResponse { statement })
}

/// `GET /2015-03-31/functions/{fn}/policy`.
pub(crate) fn get_policy(
    context: &Context,
    function: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    let policy = control.get_policy(&reference)?;
    json(
        StatusCode::OK,
        &PolicyResponse {
            policy: policy.policy,
            revision_id: policy.revision_id,
        },
    )
}

/// `DELETE /2015-03-31/functions/{fn}/policy/{sid}`.
pub(crate) fn remove_permission(
    context: &Context,
    function: &str,
    statement_id: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, query.get("Qualifier"), IdKind::Namespaced)?;
    control.remove_permission(&reference, statement_id, query.get("RevisionId"))?;
    no_content()
}

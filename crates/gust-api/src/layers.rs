//! The layer operations: their wire shapes and handlers.

use axum::http::StatusCode;
use axum::response::Response;
use gust_control::{LayerPermission, Page};
use gust_model::{LayerSettings, LayerVersion, ModelError};
use serde::{Deserialize, Serialize};

use crate::dto::{decode_bounded_zip, lambda_timestamp, strict, BodyText};
use crate::error::ApiError;
use crate::routes::{max_items, parse_body, Context, Query};
use crate::{code_url, json, no_content};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ContentDto<'a> {
    #[serde(borrow)]
    zip_file: Option<BodyText<'a>>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PublishLayerVersionRequest<'a> {
    description: Option<String>,
    #[serde(borrow, deserialize_with = "strict::object")]
    content: Option<ContentDto<'a>>,
    compatible_runtimes: Option<Vec<String>>,
    compatible_architectures: Option<Vec<String>>,
    license_info: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PermissionRequest {
    statement_id: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    organization_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContentOut {
    location: String,
    code_sha256: String,
    code_size: u64,
}

/// The members every layer version shape shares.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct VersionItem {
    layer_version_arn: String,
    version: u64,
    description: String,
    created_date: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compatible_runtimes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compatible_architectures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_info: Option<String>,
}

/// PublishLayerVersion's and GetLayerVersion's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LayerVersionOut {
    content: ContentOut,
    layer_arn: String,
    #[serde(flatten)]
    item: VersionItem,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LayersListItem {
    layer_name: String,
    layer_arn: String,
    latest_matching_version: VersionItem,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListLayersResponse {
    layers: Vec<LayersListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListLayerVersionsResponse {
    layer_versions: Vec<VersionItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatementResponse {
    statement: String,
    revision_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyResponse {
    policy: String,
    revision_id: String,
}

fn item(context: &Context, layer: &LayerVersion) -> VersionItem {
    VersionItem {
        layer_version_arn: context
            .control
            .scope()
            .layer_version_arn(&layer.name, layer.version),
        version: layer.version,
        description: layer.description.clone(),
        created_date: lambda_timestamp(layer.created),
        compatible_runtimes: layer.compatible_runtimes.clone(),
        compatible_architectures: layer.compatible_architectures.clone(),
        license_info: layer.license_info.clone(),
    }
}

fn version_out(context: &Context, layer: &LayerVersion) -> LayerVersionOut {
    use base64::Engine as _;
    LayerVersionOut {
        content: ContentOut {
            location: code_url::presign(
                &context.host,
                &layer.code.digest,
                &context.code_url_key,
                context.now,
            ),
            code_sha256: base64::engine::general_purpose::STANDARD.encode(layer.code.digest.0),
            code_size: layer.code.size,
        },
        layer_arn: context.control.scope().layer_arn(&layer.name),
        item: item(context, layer),
    }
}

/// A `{VersionNumber}` label.
fn version_number(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|_| {
        ModelError::constraint(text, "versionNumber", "Member must be a number").into()
    })
}

/// `POST /2018-10-31/layers/{name}/versions`.
pub(crate) fn publish(context: &Context, layer: &str, body: &[u8]) -> Result<Response, ApiError> {
    let request: PublishLayerVersionRequest = parse_body(body)?;
    let content = request
        .content
        .ok_or_else(|| ApiError::from(ModelError::missing("content")))?;
    let missing = || ApiError::invalid_parameter("Please provide a source for layer content.");
    let from_s3 = content.s3_bucket.is_some() || content.s3_key.is_some();
    let (zip, origin) = match (&content.zip_file, from_s3) {
        (Some(_), true) => {
            return Err(ApiError::invalid_parameter(
                "Please don't provide both ZipFile and S3 fields for layer content.",
            ))
        }
        (Some(zip), false) => (
            decode_bounded_zip(&zip.0)?,
            gust_control::PackageOrigin::Upload,
        ),
        // Read before the operation ran (`S3Bucket` with its `S3Key`).
        (None, true) => (
            context.from_s3.as_ref().ok_or_else(missing)?.to_vec(),
            gust_control::PackageOrigin::S3,
        ),
        (None, false) => return Err(missing()),
    };
    let settings = LayerSettings {
        description: request.description,
        compatible_runtimes: request.compatible_runtimes,
        compatible_architectures: request.compatible_architectures,
        license_info: request.license_info,
    };
    let published = context
        .control
        .publish_layer_version_from(layer, &settings, &zip, origin)?;
    json(StatusCode::CREATED, &version_out(context, &published))
}

/// `GET /2018-10-31/layers/{name}/versions/{n}`.
pub(crate) fn get(context: &Context, layer: &str, version: &str) -> Result<Response, ApiError> {
    let found = context
        .control
        .get_layer_version(layer, version_number(version)?)?;
    json(StatusCode::OK, &version_out(context, &found))
}

/// `GET /2018-10-31/layers?find=LayerVersion&Arn=…`.
pub(crate) fn get_by_arn(context: &Context, query: &Query) -> Result<Response, ApiError> {
    let arn = query
        .get("Arn")
        .ok_or_else(|| ApiError::from(ModelError::missing("arn")))?;
    let found = context.control.get_layer_version_by_arn(arn)?;
    json(StatusCode::OK, &version_out(context, &found))
}

/// `GET /2018-10-31/layers`.
pub(crate) fn list(context: &Context, query: &Query) -> Result<Response, ApiError> {
    let page: Page<LayerVersion> = context.control.list_layers(
        query.get("CompatibleRuntime"),
        query.get("CompatibleArchitecture"),
        query.get("Marker"),
        max_items(query)?,
    )?;
    let layers = page
        .items
        .iter()
        .map(|latest| LayersListItem {
            layer_name: latest.name.clone(),
            layer_arn: context.control.scope().layer_arn(&latest.name),
            latest_matching_version: item(context, latest),
        })
        .collect();
    json(
        StatusCode::OK,
        &ListLayersResponse {
            layers,
            next_marker: page.next_marker,
        },
    )
}

/// `GET /2018-10-31/layers/{name}/versions`.
pub(crate) fn list_versions(
    context: &Context,
    layer: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let page = context.control.list_layer_versions(
        layer,
        query.get("CompatibleRuntime"),
        query.get("CompatibleArchitecture"),
        query.get("Marker"),
        max_items(query)?,
    )?;
    json(
        StatusCode::OK,
        &ListLayerVersionsResponse {
            layer_versions: page.items.iter().map(|v| item(context, v)).collect(),
            next_marker: page.next_marker,
        },
    )
}

/// `DELETE /2018-10-31/layers/{name}/versions/{n}`.
pub(crate) fn delete(context: &Context, layer: &str, version: &str) -> Result<Response, ApiError> {
    context
        .control
        .delete_layer_version(layer, version_number(version)?)?;
    no_content()
}

/// `POST /2018-10-31/layers/{name}/versions/{n}/policy`.
pub(crate) fn add_permission(
    context: &Context,
    layer: &str,
    version: &str,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request: PermissionRequest = parse_body(body)?;
    crate::routes::require(&[
        (request.statement_id.is_some(), "statementId"),
        (request.action.is_some(), "action"),
        (request.principal.is_some(), "principal"),
    ])?;
    let permission = LayerPermission {
        statement_id: request.statement_id.unwrap_or_default(),
        action: request.action.unwrap_or_default(),
        principal: request.principal.unwrap_or_default(),
        organization_id: request.organization_id,
        revision_id: query.get("RevisionId").map(str::to_owned),
    };
    let (statement, revision_id) = context.control.add_layer_version_permission(
        layer,
        version_number(version)?,
        &permission,
    )?;
    json(
        StatusCode::CREATED,
        &StatementResponse {
            statement,
            revision_id,
        },
    )
}

/// `DELETE /2018-10-31/layers/{name}/versions/{n}/policy/{sid}`.
pub(crate) fn remove_permission(
    context: &Context,
    layer: &str,
    version: &str,
    statement_id: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    context.control.remove_layer_version_permission(
        layer,
        version_number(version)?,
        statement_id,
        query.get("RevisionId"),
    )?;
    no_content()
}

/// `GET /2018-10-31/layers/{name}/versions/{n}/policy`.
pub(crate) fn policy(context: &Context, layer: &str, version: &str) -> Result<Response, ApiError> {
    let policy = context
        .control
        .get_layer_version_policy(layer, version_number(version)?)?;
    json(
        StatusCode::OK,
        &PolicyResponse {
            policy: policy.policy,
            revision_id: policy.revision_id,
        },
    )
}

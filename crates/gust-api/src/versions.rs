//! PublishVersion, ListVersionsByFunction and the alias operations: their wire shapes and
//! handlers.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use gust_model::{Alias, AliasUpdate, IdKind, Qualifier};
use serde::{Deserialize, Serialize};

use crate::dto::{strict, FunctionConfiguration};
use crate::error::ApiError;
use crate::routes::{max_items, parse_body, Context, Query};
use crate::{json, no_content};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PublishVersionRequest {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
    publish_to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RoutingConfigDto {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AliasRequest {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    #[serde(deserialize_with = "strict::object")]
    routing_config: Option<RoutingConfigDto>,
    revision_id: Option<String>,
}

impl AliasRequest {
    fn update(&self) -> AliasUpdate {
        AliasUpdate {
            function_version: self.function_version.clone(),
            description: self.description.clone(),
            weights: self.routing_config.as_ref().map(|r| {
                r.additional_version_weights
                    .iter()
                    .flatten()
                    .map(|(v, w)| (v.clone(), *w))
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingConfigOut {
    additional_version_weights: BTreeMap<String, f64>,
}

/// An alias as Lambda returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AliasConfiguration {
    alias_arn: String,
    name: String,
    function_version: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing_config: Option<RoutingConfigOut>,
    revision_id: String,
}

impl AliasConfiguration {
    fn new(context: &Context, function: &gust_model::FunctionName, alias: &Alias) -> Self {
        AliasConfiguration {
            alias_arn: context
                .control
                .arn(function, Some(&Qualifier::Alias(alias.name.clone()))),
            name: alias.name.clone(),
            function_version: alias.function_version.to_string(),
            description: alias.description.clone(),
            routing_config: alias
                .additional_version
                .map(|(version, weight)| RoutingConfigOut {
                    additional_version_weights: BTreeMap::from([(version.to_string(), weight)]),
                }),
            revision_id: alias.revision_id.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsResponse {
    versions: Vec<FunctionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesResponse {
    aliases: Vec<AliasConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

/// `POST /2015-03-31/functions/{fn}/versions`.
pub(crate) fn publish_version(
    context: &Context,
    function: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    let request: PublishVersionRequest = parse_body(body)?;
    if request.publish_to.is_some() {
        return Err(ApiError::invalid_parameter(
            "PublishTo is not supported by this Gust server.",
        ));
    }
    let version = control.publish_version(
        &reference,
        &gust_control::PublishVersion {
            code_sha256: request.code_sha256,
            description: request.description,
            revision_id: request.revision_id,
        },
    )?;
    let qualifier = version.version.qualifier();
    json(
        StatusCode::CREATED,
        &FunctionConfiguration::from_domain(&version, control.scope(), Some(&qualifier)),
    )
}

/// `GET /2015-03-31/functions/{fn}/versions`.
pub(crate) fn list_versions(
    context: &Context,
    function: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Namespaced)?;
    let page = control.list_versions(&reference, query.get("Marker"), max_items(query)?)?;
    let versions = page
        .items
        .iter()
        .map(|c| {
            FunctionConfiguration::from_domain(c, control.scope(), Some(&c.version.qualifier()))
        })
        .collect();
    json(
        StatusCode::OK,
        &ListVersionsResponse {
            versions,
            next_marker: page.next_marker,
        },
    )
}

fn alias_response(
    context: &Context,
    status: StatusCode,
    function: &gust_model::FunctionName,
    alias: &Alias,
) -> Result<Response, ApiError> {
    json(status, &AliasConfiguration::new(context, function, alias))
}

/// `POST /2015-03-31/functions/{fn}/aliases`.
pub(crate) fn create_alias(
    context: &Context,
    function: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    let request: AliasRequest = parse_body(body)?;
    crate::routes::require(&[(request.name.is_some(), "name")])?;
    let name = request.name.as_deref().unwrap_or_default();
    let alias = control.create_alias(&reference, name, &request.update())?;
    alias_response(context, StatusCode::CREATED, &reference.name, &alias)
}

/// `GET /2015-03-31/functions/{fn}/aliases/{name}`.
pub(crate) fn get_alias(
    context: &Context,
    function: &str,
    name: &str,
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    let alias = control.get_alias(&reference, name)?;
    alias_response(context, StatusCode::OK, &reference.name, &alias)
}

/// `PUT /2015-03-31/functions/{fn}/aliases/{name}`.
pub(crate) fn update_alias(
    context: &Context,
    function: &str,
    name: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    let request: AliasRequest = parse_body(body)?;
    let alias = control.update_alias(
        &reference,
        name,
        &request.update(),
        request.revision_id.as_deref(),
    )?;
    alias_response(context, StatusCode::OK, &reference.name, &alias)
}

/// `DELETE /2015-03-31/functions/{fn}/aliases/{name}`.
pub(crate) fn delete_alias(
    context: &Context,
    function: &str,
    name: &str,
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    control.delete_alias(&reference, name)?;
    no_content()
}

/// `GET /2015-03-31/functions/{fn}/aliases`.
pub(crate) fn list_aliases(
    context: &Context,
    function: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let control = &context.control;
    let reference = control.resolve(function, None, IdKind::Mutating)?;
    let page = control.list_aliases(
        &reference,
        query.get("FunctionVersion"),
        query.get("Marker"),
        max_items(query)?,
    )?;
    let aliases = page
        .items
        .iter()
        .map(|a| AliasConfiguration::new(context, &reference.name, a))
        .collect();
    json(
        StatusCode::OK,
        &ListAliasesResponse {
            aliases,
            next_marker: page.next_marker,
        },
    )
}

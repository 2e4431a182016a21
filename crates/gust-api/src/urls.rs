//! `Create/Get/Update/Delete/ListFunctionUrlConfigs`: the wire shapes of function URL
//! configurations. The control plane keeps them; the URL itself is served by `front.rs`.

use axum::http::StatusCode;
use axum::response::Response;
use gust_control::{FunctionUrlChange, FunctionUrlConfig};
use gust_model::http::Cors;
use gust_model::{IdKind, ModelError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::dto::lambda_timestamp;
use crate::error::ApiError;
use crate::routes::{max_items_to_50, Operation, Query};
use crate::{json, no_content, Plane};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
struct CorsDto {
    allow_credentials: Option<bool>,
    allow_headers: Option<Vec<String>>,
    allow_methods: Option<Vec<String>>,
    allow_origins: Option<Vec<String>>,
    expose_headers: Option<Vec<String>>,
    max_age: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UrlRequest {
    auth_type: Option<String>,
    cors: Option<CorsDto>,
    invoke_mode: Option<String>,
}

fn cors_of(dto: CorsDto) -> Cors {
    Cors {
        allow_credentials: dto.allow_credentials,
        allow_headers: dto.allow_headers.unwrap_or_default(),
        allow_methods: dto.allow_methods.unwrap_or_default(),
        allow_origins: dto.allow_origins.unwrap_or_default(),
        expose_headers: dto.expose_headers.unwrap_or_default(),
        max_age: dto.max_age,
    }
}

fn render_cors(cors: &Cors) -> Value {
    let mut out = json!({});
    if let Some(credentials) = cors.allow_credentials {
        out["AllowCredentials"] = json!(credentials);
    }
    for (name, list) in [
        ("AllowHeaders", &cors.allow_headers),
        ("AllowMethods", &cors.allow_methods),
        ("AllowOrigins", &cors.allow_origins),
        ("ExposeHeaders", &cors.expose_headers),
    ] {
        if !list.is_empty() {
            out[name] = json!(list);
        }
    }
    if let Some(age) = cors.max_age {
        out["MaxAge"] = json!(age);
    }
    out
}

/// Where the URL is reached: the control-plane request's host, or `--url-domain`.
#[derive(Debug, Clone)]
pub(crate) struct UrlBase<'a> {
    pub(crate) domain: Option<&'a crate::front::UrlDomain>,
    pub(crate) host: &'a str,
}

fn render(plane: &Plane, base: &UrlBase<'_>, config: &FunctionUrlConfig, modified: bool) -> Value {
    let mut out = json!({
        "FunctionUrl": crate::front::function_url(
            base.domain,
            base.host,
            &plane.control.scope().region,
            &config.url_id,
        ),
        "FunctionArn": plane
            .control
            .url_arn(&config.function, config.alias.as_deref().unwrap_or("")),
        "AuthType": config.auth_type,
        "CreationTime": lambda_timestamp(config.created),
        "InvokeMode": config.invoke_mode,
    });
    if modified {
        out["LastModifiedTime"] = json!(lambda_timestamp(config.modified));
    }
    if let Some(cors) = &config.cors {
        out["Cors"] = render_cors(cors);
    }
    out
}

/// Checks `?Qualifier=` as the URL operations' model does (an alias name: not a number,
/// not `$LATEST`).
fn check_qualifier(qualifier: Option<&str>) -> Result<(), ApiError> {
    let Some(q) = qualifier else { return Ok(()) };
    let ok = !q.is_empty()
        && q.len() <= 128
        && !q.chars().all(|c| c.is_ascii_digit())
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ModelError::constraint(
            q,
            "qualifier",
            "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)",
        )
        .into())
    }
}

pub(crate) async fn handle(
    plane: &Plane,
    base: UrlBase<'_>,
    operation: &Operation,
    function: &str,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let qualifier = query.get("Qualifier");
    check_qualifier(qualifier)?;
    let control = std::sync::Arc::clone(&plane.control);
    let reference = control.resolve(function, qualifier, IdKind::Namespaced)?;
    let request: UrlRequest = if body.iter().all(u8::is_ascii_whitespace) {
        UrlRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::invalid_content(format!("Could not parse request body into json: {e}"))
        })?
    };
    let change = FunctionUrlChange {
        auth_type: request.auth_type,
        cors: request.cors.map(cors_of),
        invoke_mode: request.invoke_mode,
    };
    let marker = query.get("Marker").map(str::to_owned);
    let max = max_items_to_50(query)?;
    enum Done {
        Created(FunctionUrlConfig),
        One(FunctionUrlConfig),
        Deleted,
        Page(gust_control::Page<FunctionUrlConfig>),
    }
    let operation = operation.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<Done, ApiError> {
        Ok(match operation {
            Operation::CreateFunctionUrlConfig(_) => {
                Done::Created(control.create_function_url(&reference, change)?)
            }
            Operation::UpdateFunctionUrlConfig(_) => {
                Done::One(control.update_function_url(&reference, change)?)
            }
            Operation::DeleteFunctionUrlConfig(_) => {
                control.delete_function_url(&reference)?;
                Done::Deleted
            }
            Operation::ListFunctionUrlConfigs(_) => {
                Done::Page(control.list_function_urls(&reference, marker.as_deref(), max)?)
            }
            _ => Done::One(control.function_url(&reference)?),
        })
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    match done {
        Done::Created(config) => json(StatusCode::CREATED, &render(plane, &base, &config, false)),
        Done::One(config) => json(StatusCode::OK, &render(plane, &base, &config, true)),
        Done::Deleted => no_content(),
        Done::Page(page) => {
            let configs: Vec<Value> = page
                .items
                .iter()
                .map(|c| render(plane, &base, c, true))
                .collect();
            let mut out = json!({ "FunctionUrlConfigs": configs });
            if let Some(marker) = page.next_marker {
                out["NextMarker"] = json!(marker);
            }
            json(StatusCode::OK, &out)
        }
    }
}

//! Which Lambda operation a method and raw path name, and running it.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use gust_control::ControlPlane;
use gust_model::{IdKind, ModelError};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::dto::{self, FunctionConfiguration};
use crate::error::ApiError;
use crate::{code_url, is_method, json, no_content};

/// A Lambda operation Gust implements, with its decoded path label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `POST /2015-03-31/functions`
    CreateFunction,
    /// `GET /2015-03-31/functions`
    ListFunctions,
    /// `GET /2015-03-31/functions/{fn}`
    GetFunction(String),
    /// `DELETE /2015-03-31/functions/{fn}`
    DeleteFunction(String),
    /// `GET /2015-03-31/functions/{fn}/configuration`
    GetFunctionConfiguration(String),
    /// `PUT /2015-03-31/functions/{fn}/configuration`
    UpdateFunctionConfiguration(String),
    /// `PUT /2015-03-31/functions/{fn}/code`
    UpdateFunctionCode(String),
    /// `POST /2017-03-31/tags/{arn}`
    TagResource(String),
    /// `DELETE /2017-03-31/tags/{arn}`
    UntagResource(String),
    /// `GET /2017-03-31/tags/{arn}`
    ListTags(String),
    /// `GET /2016-08-19/account-settings`
    GetAccountSettings,
    /// `POST /2015-03-31/functions/{fn}/invocations`
    Invoke(String),
    /// `GET /_gust/logs/{fn}`: Gust's own log query (SigV4-signed like the rest).
    GustLogs(String),
    /// `GET /_gust/usage?month=YYYY-MM`: the caller's usage and cost (SigV4-signed).
    GustUsage,
    /// `POST /2014-11-13/functions/{fn}/invoke-async` (deprecated).
    InvokeAsync(String),
    /// `PUT /2017-10-31/functions/{fn}/concurrency`
    PutFunctionConcurrency(String),
    /// `GET /2019-09-30/functions/{fn}/concurrency`
    GetFunctionConcurrency(String),
    /// `DELETE /2017-10-31/functions/{fn}/concurrency`
    DeleteFunctionConcurrency(String),
    /// `POST /2015-03-31/event-source-mappings`
    CreateEventSourceMapping,
    /// `GET /2015-03-31/event-source-mappings`
    ListEventSourceMappings,
    /// `GET /2015-03-31/event-source-mappings/{UUID}`
    GetEventSourceMapping(String),
    /// `PUT /2015-03-31/event-source-mappings/{UUID}`
    UpdateEventSourceMapping(String),
    /// `DELETE /2015-03-31/event-source-mappings/{UUID}`
    DeleteEventSourceMapping(String),
    /// `PUT /2019-09-30/functions/{fn}/provisioned-concurrency?Qualifier=`
    PutProvisionedConcurrencyConfig(String),
    /// `GET /2019-09-30/functions/{fn}/provisioned-concurrency?Qualifier=` (and, with
    /// `List=ALL`, ListProvisionedConcurrencyConfigs)
    GetProvisionedConcurrencyConfig(String),
    /// `DELETE /2019-09-30/functions/{fn}/provisioned-concurrency?Qualifier=`
    DeleteProvisionedConcurrencyConfig(String),
    /// `PUT /2019-09-25/functions/{fn}/event-invoke-config`
    PutFunctionEventInvokeConfig(String),
    /// `POST /2019-09-25/functions/{fn}/event-invoke-config`
    UpdateFunctionEventInvokeConfig(String),
    /// `GET /2019-09-25/functions/{fn}/event-invoke-config`
    GetFunctionEventInvokeConfig(String),
    /// `DELETE /2019-09-25/functions/{fn}/event-invoke-config`
    DeleteFunctionEventInvokeConfig(String),
    /// `GET /2019-09-25/functions/{fn}/event-invoke-config/list`
    ListFunctionEventInvokeConfigs(String),
    /// `POST /2015-03-31/functions/{fn}/versions`
    PublishVersion(String),
    /// `GET /2015-03-31/functions/{fn}/versions`
    ListVersionsByFunction(String),
    /// `POST /2015-03-31/functions/{fn}/aliases`
    CreateAlias(String),
    /// `GET /2015-03-31/functions/{fn}/aliases`
    ListAliases(String),
    /// `GET /2015-03-31/functions/{fn}/aliases/{name}`
    GetAlias(String, String),
    /// `PUT /2015-03-31/functions/{fn}/aliases/{name}`
    UpdateAlias(String, String),
    /// `DELETE /2015-03-31/functions/{fn}/aliases/{name}`
    DeleteAlias(String, String),
    /// `POST /2015-03-31/functions/{fn}/policy`
    AddPermission(String),
    /// `GET /2015-03-31/functions/{fn}/policy`
    GetPolicy(String),
    /// `DELETE /2015-03-31/functions/{fn}/policy/{sid}`
    RemovePermission(String, String),
    /// `GET /2024-08-31/functions/{fn}/recursion-config`
    GetFunctionRecursionConfig(String),
    /// `PUT /2024-08-31/functions/{fn}/recursion-config`
    PutFunctionRecursionConfig(String),
    /// `GET /2021-07-20/functions/{fn}/runtime-management-config`
    GetRuntimeManagementConfig(String),
    /// `PUT /2021-07-20/functions/{fn}/runtime-management-config`
    PutRuntimeManagementConfig(String),
    /// `POST /2018-10-31/layers/{name}/versions`
    PublishLayerVersion(String),
    /// `GET /2018-10-31/layers/{name}/versions`
    ListLayerVersions(String),
    /// `GET /2018-10-31/layers`
    ListLayers,
    /// `GET /2018-10-31/layers?find=LayerVersion&Arn=…`
    GetLayerVersionByArn,
    /// `GET /2018-10-31/layers/{name}/versions/{n}`
    GetLayerVersion(String, String),
    /// `DELETE /2018-10-31/layers/{name}/versions/{n}`
    DeleteLayerVersion(String, String),
    /// `POST /2018-10-31/layers/{name}/versions/{n}/policy`
    AddLayerVersionPermission(String, String),
    /// `GET /2018-10-31/layers/{name}/versions/{n}/policy`
    GetLayerVersionPolicy(String, String),
    /// `DELETE /2018-10-31/layers/{name}/versions/{n}/policy/{sid}`
    RemoveLayerVersionPermission(String, String, String),
    /// `POST /2021-10-31/functions/{fn}/url`
    CreateFunctionUrlConfig(String),
    /// `GET /2021-10-31/functions/{fn}/url`
    GetFunctionUrlConfig(String),
    /// `PUT /2021-10-31/functions/{fn}/url`
    UpdateFunctionUrlConfig(String),
    /// `DELETE /2021-10-31/functions/{fn}/url`
    DeleteFunctionUrlConfig(String),
    /// `GET /2021-10-31/functions/{fn}/urls`
    ListFunctionUrlConfigs(String),
    /// `POST /2021-11-15/functions/{fn}/response-streaming-invocations`
    InvokeWithResponseStream(String),
}

impl Operation {
    /// The `{FunctionName}` label of a function-scoped operation.
    pub(crate) fn function_label(&self) -> Option<&str> {
        use Operation::*;
        match self {
            GetFunction(f)
            | DeleteFunction(f)
            | GetFunctionConfiguration(f)
            | UpdateFunctionConfiguration(f)
            | UpdateFunctionCode(f)
            | Invoke(f)
            | InvokeAsync(f)
            | PutFunctionConcurrency(f)
            | GetFunctionConcurrency(f)
            | DeleteFunctionConcurrency(f)
            | PutProvisionedConcurrencyConfig(f)
            | GetProvisionedConcurrencyConfig(f)
            | DeleteProvisionedConcurrencyConfig(f)
            | PutFunctionEventInvokeConfig(f)
            | UpdateFunctionEventInvokeConfig(f)
            | GetFunctionEventInvokeConfig(f)
            | DeleteFunctionEventInvokeConfig(f)
            | ListFunctionEventInvokeConfigs(f)
            | GustLogs(f)
            | PublishVersion(f)
            | ListVersionsByFunction(f)
            | CreateAlias(f)
            | ListAliases(f)
            | GetAlias(f, _)
            | UpdateAlias(f, _)
            | DeleteAlias(f, _)
            | AddPermission(f)
            | GetPolicy(f)
            | RemovePermission(f, _)
            | GetFunctionRecursionConfig(f)
            | PutFunctionRecursionConfig(f)
            | GetRuntimeManagementConfig(f)
            | PutRuntimeManagementConfig(f)
            | CreateFunctionUrlConfig(f)
            | GetFunctionUrlConfig(f)
            | UpdateFunctionUrlConfig(f)
            | DeleteFunctionUrlConfig(f)
            | ListFunctionUrlConfigs(f)
            | InvokeWithResponseStream(f) => Some(f),
            _ => None,
        }
    }

    /// The `{LayerName}` label (and `{VersionNumber}`) of a layer-scoped operation.
    pub(crate) fn layer_label(&self) -> Option<(&str, Option<&str>)> {
        use Operation::*;
        match self {
            PublishLayerVersion(l) | ListLayerVersions(l) => Some((l, None)),
            GetLayerVersion(l, n)
            | DeleteLayerVersion(l, n)
            | AddLayerVersionPermission(l, n)
            | GetLayerVersionPolicy(l, n)
            | RemoveLayerVersionPermission(l, n, _) => Some((l, Some(n))),
            _ => None,
        }
    }

    /// The IAM action a resource policy would have to allow.
    pub(crate) fn iam_action(&self) -> &'static str {
        use Operation::*;
        match self {
            Invoke(_) | InvokeAsync(_) | InvokeWithResponseStream(_) => "lambda:InvokeFunction",
            CreateFunctionUrlConfig(_) => "lambda:CreateFunctionUrlConfig",
            GetFunctionUrlConfig(_) => "lambda:GetFunctionUrlConfig",
            UpdateFunctionUrlConfig(_) => "lambda:UpdateFunctionUrlConfig",
            DeleteFunctionUrlConfig(_) => "lambda:DeleteFunctionUrlConfig",
            ListFunctionUrlConfigs(_) => "lambda:ListFunctionUrlConfigs",
            GetFunction(_) => "lambda:GetFunction",
            GetFunctionConfiguration(_) => "lambda:GetFunctionConfiguration",
            DeleteFunction(_) => "lambda:DeleteFunction",
            UpdateFunctionConfiguration(_) => "lambda:UpdateFunctionConfiguration",
            UpdateFunctionCode(_) => "lambda:UpdateFunctionCode",
            PublishVersion(_) => "lambda:PublishVersion",
            ListVersionsByFunction(_) => "lambda:ListVersionsByFunction",
            CreateAlias(_) => "lambda:CreateAlias",
            ListAliases(_) => "lambda:ListAliases",
            GetAlias(..) => "lambda:GetAlias",
            UpdateAlias(..) => "lambda:UpdateAlias",
            DeleteAlias(..) => "lambda:DeleteAlias",
            AddPermission(_) => "lambda:AddPermission",
            GetPolicy(_) => "lambda:GetPolicy",
            RemovePermission(..) => "lambda:RemovePermission",
            GetLayerVersion(..) | GetLayerVersionByArn => "lambda:GetLayerVersion",
            _ => "lambda:*",
        }
    }
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// An implemented Lambda operation.
    Lambda(Operation),
    /// A Lambda operation that exists in AWS but not in Gust yet.
    NotImplemented(&'static str),
    /// Gust's liveness probe.
    Health,
    /// A pre-signed code package download (`/_gust/code/{file}`).
    CodeDownload(String),
    /// The Prometheus scrape (`GET /metrics`), guarded by its own access setting.
    Metrics,
    /// Nothing Lambda has.
    Unknown,
}

impl Route {
    pub(crate) fn operation_name(&self) -> &'static str {
        match self {
            Route::Lambda(Operation::CreateFunction) => "CreateFunction",
            Route::Lambda(Operation::UpdateFunctionCode(_)) => "UpdateFunctionCode",
            Route::Lambda(Operation::PublishLayerVersion(_)) => "PublishLayerVersion",
            Route::Lambda(Operation::Invoke(_)) => "InvokeFunction",
            Route::Lambda(Operation::InvokeWithResponseStream(_)) => "InvokeWithResponseStream",
            Route::NotImplemented(name) => name,
            _ => "requested",
        }
    }
}

/// Lambda operations Gust does not have yet: (method, path pattern, name). `*` matches one
/// segment. Answered with 501 `NotImplementedException`, never a fake success.
const NOT_YET: &[(&str, &str, &str)] = &[
    (
        "GET",
        "2020-06-30/functions/*/code-signing-config",
        "GetFunctionCodeSigningConfig",
    ),
    (
        "PUT",
        "2020-06-30/functions/*/code-signing-config",
        "PutFunctionCodeSigningConfig",
    ),
    (
        "GET",
        "2020-04-22/code-signing-configs",
        "ListCodeSigningConfigs",
    ),
    (
        "POST",
        "2020-04-22/code-signing-configs",
        "CreateCodeSigningConfig",
    ),
];

fn decode_segment(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Splits the raw path on `/` and decodes each segment. A trailing slash (older clients)
/// is ignored. `None` when a segment is not UTF-8.
fn segments(raw_path: &str) -> Option<Vec<String>> {
    let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    trimmed.split('/').map(decode_segment).collect()
}

fn matches_pattern(pattern: &str, segments: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('/').collect();
    parts.len() == segments.len() && parts.iter().zip(segments).all(|(p, s)| *p == "*" || p == s)
}

pub(crate) fn route(method: &Method, raw_path: &str, raw_query: &str) -> Route {
    let Some(segs) = segments(raw_path) else {
        return Route::Unknown;
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.as_str();
    let op = match (m, s.as_slice()) {
        ("GET", ["_gust", "health"]) => return Route::Health,
        ("GET", ["_gust", "code", file]) => return Route::CodeDownload((*file).to_owned()),
        ("GET", ["metrics"]) => return Route::Metrics,
        ("POST", ["2015-03-31", "functions"]) => Operation::CreateFunction,
        ("GET", ["2015-03-31", "functions"]) => Operation::ListFunctions,
        ("GET", ["2015-03-31", "functions", f]) => Operation::GetFunction((*f).to_owned()),
        ("DELETE", ["2015-03-31", "functions", f]) => Operation::DeleteFunction((*f).to_owned()),
        ("GET", ["2015-03-31", "functions", f, "configuration"]) => {
            Operation::GetFunctionConfiguration((*f).to_owned())
        }
        ("PUT", ["2015-03-31", "functions", f, "configuration"]) => {
            Operation::UpdateFunctionConfiguration((*f).to_owned())
        }
        ("PUT", ["2015-03-31", "functions", f, "code"]) => {
            Operation::UpdateFunctionCode((*f).to_owned())
        }
        ("POST", ["2017-03-31", "tags", arn]) => Operation::TagResource((*arn).to_owned()),
        ("DELETE", ["2017-03-31", "tags", arn]) => Operation::UntagResource((*arn).to_owned()),
        ("GET", ["2017-03-31", "tags", arn]) => Operation::ListTags((*arn).to_owned()),
        ("GET", ["2016-08-19", "account-settings"]) => Operation::GetAccountSettings,
        ("POST", ["2015-03-31", "functions", f, "invocations"]) => {
            Operation::Invoke((*f).to_owned())
        }
        ("GET", ["_gust", "logs", f]) => Operation::GustLogs((*f).to_owned()),
        ("GET", ["_gust", "usage"]) => Operation::GustUsage,
        ("POST", ["2014-11-13", "functions", f, "invoke-async"]) => {
            Operation::InvokeAsync((*f).to_owned())
        }
        ("PUT", ["2017-10-31", "functions", f, "concurrency"]) => {
            Operation::PutFunctionConcurrency((*f).to_owned())
        }
        ("GET", ["2019-09-30", "functions", f, "concurrency"]) => {
            Operation::GetFunctionConcurrency((*f).to_owned())
        }
        ("DELETE", ["2017-10-31", "functions", f, "concurrency"]) => {
            Operation::DeleteFunctionConcurrency((*f).to_owned())
        }
        ("POST", ["2015-03-31", "event-source-mappings"]) => Operation::CreateEventSourceMapping,
        ("GET", ["2015-03-31", "event-source-mappings"]) => Operation::ListEventSourceMappings,
        ("GET", ["2015-03-31", "event-source-mappings", id]) => {
            Operation::GetEventSourceMapping((*id).to_owned())
        }
        ("PUT", ["2015-03-31", "event-source-mappings", id]) => {
            Operation::UpdateEventSourceMapping((*id).to_owned())
        }
        ("DELETE", ["2015-03-31", "event-source-mappings", id]) => {
            Operation::DeleteEventSourceMapping((*id).to_owned())
        }
        ("PUT", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            Operation::PutProvisionedConcurrencyConfig((*f).to_owned())
        }
        ("GET", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            Operation::GetProvisionedConcurrencyConfig((*f).to_owned())
        }
        ("DELETE", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            Operation::DeleteProvisionedConcurrencyConfig((*f).to_owned())
        }
        ("PUT", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            Operation::PutFunctionEventInvokeConfig((*f).to_owned())
        }
        ("POST", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            Operation::UpdateFunctionEventInvokeConfig((*f).to_owned())
        }
        ("GET", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            Operation::GetFunctionEventInvokeConfig((*f).to_owned())
        }
        ("DELETE", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            Operation::DeleteFunctionEventInvokeConfig((*f).to_owned())
        }
        ("GET", ["2019-09-25", "functions", f, "event-invoke-config", "list"]) => {
            Operation::ListFunctionEventInvokeConfigs((*f).to_owned())
        }
        ("POST", ["2015-03-31", "functions", f, "versions"]) => {
            Operation::PublishVersion((*f).to_owned())
        }
        ("GET", ["2015-03-31", "functions", f, "versions"]) => {
            Operation::ListVersionsByFunction((*f).to_owned())
        }
        ("POST", ["2015-03-31", "functions", f, "aliases"]) => {
            Operation::CreateAlias((*f).to_owned())
        }
        ("GET", ["2015-03-31", "functions", f, "aliases"]) => {
            Operation::ListAliases((*f).to_owned())
        }
        ("GET", ["2015-03-31", "functions", f, "aliases", a]) => {
            Operation::GetAlias((*f).to_owned(), (*a).to_owned())
        }
        ("PUT", ["2015-03-31", "functions", f, "aliases", a]) => {
            Operation::UpdateAlias((*f).to_owned(), (*a).to_owned())
        }
        ("DELETE", ["2015-03-31", "functions", f, "aliases", a]) => {
            Operation::DeleteAlias((*f).to_owned(), (*a).to_owned())
        }
        ("POST", ["2015-03-31", "functions", f, "policy"]) => {
            Operation::AddPermission((*f).to_owned())
        }
        ("GET", ["2015-03-31", "functions", f, "policy"]) => Operation::GetPolicy((*f).to_owned()),
        ("POST", ["2021-10-31", "functions", f, "url"]) => {
            Operation::CreateFunctionUrlConfig((*f).to_owned())
        }
        ("GET", ["2021-10-31", "functions", f, "url"]) => {
            Operation::GetFunctionUrlConfig((*f).to_owned())
        }
        ("PUT", ["2021-10-31", "functions", f, "url"]) => {
            Operation::UpdateFunctionUrlConfig((*f).to_owned())
        }
        ("DELETE", ["2021-10-31", "functions", f, "url"]) => {
            Operation::DeleteFunctionUrlConfig((*f).to_owned())
        }
        ("GET", ["2021-10-31", "functions", f, "urls"]) => {
            Operation::ListFunctionUrlConfigs((*f).to_owned())
        }
        ("POST", ["2021-11-15", "functions", f, "response-streaming-invocations"]) => {
            Operation::InvokeWithResponseStream((*f).to_owned())
        }
        ("DELETE", ["2015-03-31", "functions", f, "policy", sid]) => {
            Operation::RemovePermission((*f).to_owned(), (*sid).to_owned())
        }
        ("GET", ["2024-08-31", "functions", f, "recursion-config"]) => {
            Operation::GetFunctionRecursionConfig((*f).to_owned())
        }
        ("PUT", ["2024-08-31", "functions", f, "recursion-config"]) => {
            Operation::PutFunctionRecursionConfig((*f).to_owned())
        }
        ("GET", ["2021-07-20", "functions", f, "runtime-management-config"]) => {
            Operation::GetRuntimeManagementConfig((*f).to_owned())
        }
        ("PUT", ["2021-07-20", "functions", f, "runtime-management-config"]) => {
            Operation::PutRuntimeManagementConfig((*f).to_owned())
        }
        // GetLayerVersionByArn dispatches on a literal query.
        ("GET", ["2018-10-31", "layers"]) if raw_query.contains("find=LayerVersion") => {
            Operation::GetLayerVersionByArn
        }
        ("GET", ["2018-10-31", "layers"]) => Operation::ListLayers,
        ("POST", ["2018-10-31", "layers", l, "versions"]) => {
            Operation::PublishLayerVersion((*l).to_owned())
        }
        ("GET", ["2018-10-31", "layers", l, "versions"]) => {
            Operation::ListLayerVersions((*l).to_owned())
        }
        ("GET", ["2018-10-31", "layers", l, "versions", n]) => {
            Operation::GetLayerVersion((*l).to_owned(), (*n).to_owned())
        }
        ("DELETE", ["2018-10-31", "layers", l, "versions", n]) => {
            Operation::DeleteLayerVersion((*l).to_owned(), (*n).to_owned())
        }
        ("POST", ["2018-10-31", "layers", l, "versions", n, "policy"]) => {
            Operation::AddLayerVersionPermission((*l).to_owned(), (*n).to_owned())
        }
        ("GET", ["2018-10-31", "layers", l, "versions", n, "policy"]) => {
            Operation::GetLayerVersionPolicy((*l).to_owned(), (*n).to_owned())
        }
        ("DELETE", ["2018-10-31", "layers", l, "versions", n, "policy", sid]) => {
            Operation::RemoveLayerVersionPermission(
                (*l).to_owned(),
                (*n).to_owned(),
                (*sid).to_owned(),
            )
        }
        _ => {
            return NOT_YET
                .iter()
                .find(|(pm, pattern, _)| is_method(method, pm) && matches_pattern(pattern, &segs))
                .map_or(Route::Unknown, |(_, _, name)| Route::NotImplemented(name));
        }
    };
    Route::Lambda(op)
}

/// Decoded query parameters, in order (keys may repeat).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: &str) -> Self {
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (
                        decode_segment(k).unwrap_or_default(),
                        decode_segment(v).unwrap_or_default(),
                    )
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Refuses a request missing any of these required members (all are reported).
pub(crate) fn require(members: &[(bool, &'static str)]) -> Result<(), ApiError> {
    let mut missing = gust_model::error::Violations::default();
    for (present, member) in members {
        if !present {
            missing.missing(member);
        }
    }
    Ok(missing.finish()?)
}

/// `MaxItems` as an integer, when given.
pub(crate) fn max_items(query: &Query) -> Result<Option<i64>, ApiError> {
    Ok(query
        .get("MaxItems")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ModelError::constraint(v, "maxItems", "Member must be an integer"))
        })
        .transpose()?)
}

/// `?MaxItems=` of an operation whose model bounds it to 1–50.
pub(crate) fn max_items_to_50(query: &Query) -> Result<Option<i64>, ApiError> {
    let max = max_items(query)?;
    if let Some(max) = max {
        if !(1..=50).contains(&max) {
            return Err(ModelError::constraint(
                max.to_string(),
                "maxItems",
                if max < 1 {
                    "Member must have value greater than or equal to 1"
                } else {
                    "Member must have value less than or equal to 50"
                },
            )
            .into());
        }
    }
    Ok(max)
}

/// What an operation runs with.
#[derive(Debug)]
pub(crate) struct Context {
    pub control: Arc<ControlPlane>,
    pub code_url_key: [u8; 32],
    pub now: OffsetDateTime,
    /// The `Host` the client used, for URLs handed back to it.
    pub host: String,
    /// The code package an operation's `S3Bucket`/`S3Key` name, read before it runs.
    pub from_s3: Option<bytes::Bytes>,
}

/// A request body: empty, or one JSON object of the operation's shape (members of the
/// wrong type, nested arrays for objects included, are refused as unparseable).
pub(crate) fn parse_body<'a, T: Deserialize<'a> + Default>(body: &'a [u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let unparseable = |e: serde_json::Error| {
        ApiError::invalid_content(format!("Could not parse request body into json: {e}"))
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Option<T> = dto::strict::object(&mut deserializer).map_err(unparseable)?;
    deserializer.end().map_err(unparseable)?;
    parsed.ok_or_else(|| {
        ApiError::invalid_content("Could not parse request body into json: expected a JSON object")
    })
}

fn configuration(
    context: &Context,
    config: &gust_model::FunctionConfig,
    qualifier: Option<&gust_model::Qualifier>,
) -> FunctionConfiguration {
    FunctionConfiguration::from_domain(config, context.control.scope(), qualifier)
}

/// Runs an operation on a blocking thread (the store does synchronous disk I/O).
pub(crate) fn execute(
    context: &Context,
    operation: Operation,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let control = &context.control;
    let qualifier = query.get("Qualifier");
    match operation {
        Operation::CreateFunction => {
            let request: dto::CreateFunctionRequest = parse_body(body)?;
            let (create, zip, origin) = request.into_domain(context.from_s3.clone())?;
            let created = control.create_function_from(&create, &zip, origin)?;
            json(StatusCode::CREATED, &configuration(context, &created, None))
        }
        Operation::ListFunctions => {
            let max_items = max_items(query)?;
            // Only Lambda@Edge replicas have a master region; Gust has none, but the value
            // is still checked as the model says.
            if let Some(region) = query.get("MasterRegion") {
                let parts: Vec<&str> = region
                    .strip_prefix("eusc-")
                    .unwrap_or(region)
                    .split('-')
                    .collect();
                let well_formed = region == "ALL"
                    || (parts.len() >= 3
                        && parts[0].len() == 2
                        && parts.last().is_some_and(|n| {
                            n.len() == 1 && n.chars().all(|c| c.is_ascii_digit())
                        })
                        && region
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                if !well_formed {
                    return Err(ModelError::constraint(
                        region,
                        "masterRegion",
                        "Member must satisfy regular expression pattern: ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}",
                    )
                    .into());
                }
            }
            let all_versions = match query.get("FunctionVersion") {
                None => false,
                Some("ALL") => true,
                Some(other) => {
                    return Err(ModelError::constraint(
                        other,
                        "functionVersion",
                        "Member must satisfy enum value set: [ALL]",
                    )
                    .into())
                }
            };
            let page = control.list_functions(query.get("Marker"), max_items)?;
            // With FunctionVersion=ALL every version of each function is listed, qualified.
            let mut functions = Vec::new();
            for latest in page.functions {
                if all_versions {
                    for version in control.all_versions(latest)? {
                        let qualifier = version.version.qualifier();
                        functions.push(configuration(context, &version, Some(&qualifier)));
                    }
                } else {
                    functions.push(configuration(context, &latest, None));
                }
            }
            json(
                StatusCode::OK,
                &dto::ListFunctionsResponse {
                    functions,
                    next_marker: page.next_marker,
                },
            )
        }
        Operation::GetFunction(function) => {
            let reference = control.resolve(&function, qualifier, IdKind::Namespaced)?;
            let details = control.get_function(&reference)?;
            let location = code_url::presign(
                &context.host,
                &details.config.code.digest,
                &context.code_url_key,
                context.now,
            );
            let response = dto::GetFunctionResponse {
                configuration: configuration(
                    context,
                    &details.config,
                    reference.qualifier.as_ref(),
                ),
                code: dto::CodeLocation {
                    repository_type: "S3",
                    location,
                },
                // Only for the function itself, and left out when it has none (as Lambda).
                tags: (reference.qualifier.is_none() && !details.tags.is_empty())
                    .then_some(details.tags),
                concurrency: control
                    .reserved_concurrency(&reference.name)?
                    .map(|n| serde_json::json!({"ReservedConcurrentExecutions": n})),
            };
            json(StatusCode::OK, &response)
        }
        Operation::GetFunctionConfiguration(function) => {
            let reference = control.resolve(&function, qualifier, IdKind::Namespaced)?;
            let details = control.get_function(&reference)?;
            json(
                StatusCode::OK,
                &configuration(context, &details.config, reference.qualifier.as_ref()),
            )
        }
        Operation::UpdateFunctionConfiguration(function) => {
            let reference = control.resolve(&function, None, IdKind::Mutating)?;
            let request: dto::UpdateFunctionConfigurationRequest = parse_body(body)?;
            let (update, revision) = request.into_domain()?;
            let updated = control.update_configuration(&reference, &update, revision.as_deref())?;
            json(StatusCode::OK, &configuration(context, &updated, None))
        }
        Operation::UpdateFunctionCode(function) => {
            let reference = control.resolve(&function, None, IdKind::Mutating)?;
            let request: dto::UpdateFunctionCodeRequest = parse_body(body)?;
            let updated =
                control.update_code(&reference, &request.into_domain(context.from_s3.clone())?)?;
            // With Publish, the published version: its ARN is qualified.
            let qualifier = matches!(updated.version, gust_model::FunctionVersion::Published(_))
                .then(|| updated.version.qualifier());
            json(
                StatusCode::OK,
                &configuration(context, &updated, qualifier.as_ref()),
            )
        }
        Operation::DeleteFunction(function) => {
            let reference = control.resolve(&function, qualifier, IdKind::Mutating)?;
            control.delete_function(&reference)?;
            no_content()
        }
        Operation::TagResource(resource) => {
            let request: dto::TagResourceRequest = parse_body(body)?;
            let tags = request.tags.ok_or_else(|| ModelError::missing("tags"))?;
            control.tag_resource(&resource, &tags)?;
            no_content()
        }
        Operation::UntagResource(resource) => {
            control.untag_resource(&resource, &query.all("tagKeys"))?;
            no_content()
        }
        Operation::ListTags(resource) => {
            let tags = control.list_tags(&resource)?;
            json(StatusCode::OK, &dto::TagsResponse { tags })
        }
        Operation::GetAccountSettings => {
            let settings = control.account_settings()?;
            json(
                StatusCode::OK,
                &dto::AccountSettingsResponse::from(settings),
            )
        }
        Operation::PublishVersion(function) => {
            crate::versions::publish_version(context, &function, body)
        }
        Operation::ListVersionsByFunction(function) => {
            crate::versions::list_versions(context, &function, query)
        }
        Operation::CreateAlias(function) => crate::versions::create_alias(context, &function, body),
        Operation::ListAliases(function) => {
            crate::versions::list_aliases(context, &function, query)
        }
        Operation::GetAlias(function, name) => {
            crate::versions::get_alias(context, &function, &name)
        }
        Operation::UpdateAlias(function, name) => {
            crate::versions::update_alias(context, &function, &name, body)
        }
        Operation::DeleteAlias(function, name) => {
            crate::versions::delete_alias(context, &function, &name)
        }
        Operation::AddPermission(function) => {
            crate::policies::add_permission(context, &function, query, body)
        }
        Operation::GetPolicy(function) => crate::policies::get_policy(context, &function, query),
        Operation::RemovePermission(function, sid) => {
            crate::policies::remove_permission(context, &function, &sid, query)
        }
        Operation::GetFunctionRecursionConfig(function) => {
            crate::settings::get_recursion(context, &function)
        }
        Operation::PutFunctionRecursionConfig(function) => {
            crate::settings::put_recursion(context, &function, body)
        }
        Operation::GetRuntimeManagementConfig(function) => {
            crate::settings::get_runtime_management(context, &function, query)
        }
        Operation::PutRuntimeManagementConfig(function) => {
            crate::settings::put_runtime_management(context, &function, query, body)
        }
        Operation::PublishLayerVersion(layer) => crate::layers::publish(context, &layer, body),
        Operation::ListLayerVersions(layer) => crate::layers::list_versions(context, &layer, query),
        Operation::ListLayers => crate::layers::list(context, query),
        Operation::GetLayerVersionByArn => crate::layers::get_by_arn(context, query),
        Operation::GetLayerVersion(layer, n) => crate::layers::get(context, &layer, &n),
        Operation::DeleteLayerVersion(layer, n) => crate::layers::delete(context, &layer, &n),
        Operation::AddLayerVersionPermission(layer, n) => {
            crate::layers::add_permission(context, &layer, &n, query, body)
        }
        Operation::GetLayerVersionPolicy(layer, n) => crate::layers::policy(context, &layer, &n),
        Operation::RemoveLayerVersionPermission(layer, n, sid) => {
            crate::layers::remove_permission(context, &layer, &n, &sid, query)
        }
        Operation::PutFunctionEventInvokeConfig(function) => {
            crate::event_invoke::put(context, &function, query, body, false)
        }
        Operation::UpdateFunctionEventInvokeConfig(function) => {
            crate::event_invoke::put(context, &function, query, body, true)
        }
        Operation::GetFunctionEventInvokeConfig(function) => {
            crate::event_invoke::get(context, &function, query)
        }
        Operation::DeleteFunctionEventInvokeConfig(function) => {
            crate::event_invoke::delete(context, &function, query)
        }
        Operation::ListFunctionEventInvokeConfigs(function) => {
            crate::event_invoke::list(context, &function, query)
        }
        // Served on the async path (crate::invoke) before blocking work is dispatched.
        Operation::Invoke(_)
        | Operation::InvokeAsync(_)
        | Operation::InvokeWithResponseStream(_)
        | Operation::CreateFunctionUrlConfig(_)
        | Operation::GetFunctionUrlConfig(_)
        | Operation::UpdateFunctionUrlConfig(_)
        | Operation::DeleteFunctionUrlConfig(_)
        | Operation::ListFunctionUrlConfigs(_)
        | Operation::GustLogs(_)
        | Operation::GustUsage
        | Operation::PutFunctionConcurrency(_)
        | Operation::GetFunctionConcurrency(_)
        | Operation::DeleteFunctionConcurrency(_)
        | Operation::PutProvisionedConcurrencyConfig(_)
        | Operation::GetProvisionedConcurrencyConfig(_)
        | Operation::DeleteProvisionedConcurrencyConfig(_)
        | Operation::CreateEventSourceMapping
        | Operation::ListEventSourceMappings
        | Operation::GetEventSourceMapping(_)
        | Operation::UpdateEventSourceMapping(_)
        | Operation::DeleteEventSourceMapping(_) => Err(ApiError::unknown_operation()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Route {
        route(&method, path, "")
    }

    #[test]
    fn routes_with_and_without_trailing_slashes() {
        assert_eq!(
            r(Method::GET, "/2015-03-31/functions"),
            Route::Lambda(Operation::ListFunctions)
        );
        assert_eq!(
            r(Method::GET, "/2015-03-31/functions/"),
            Route::Lambda(Operation::ListFunctions)
        );
        assert_eq!(
            r(Method::GET, "/2016-08-19/account-settings/"),
            Route::Lambda(Operation::GetAccountSettings)
        );
        assert_eq!(
            r(Method::GET, "/2016-08-19/account-settings"),
            Route::Lambda(Operation::GetAccountSettings)
        );
    }

    #[test]
    fn labels_are_decoded_after_splitting() {
        let arn = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af%3A%24LATEST/configuration";
        assert_eq!(
            r(Method::GET, arn),
            Route::Lambda(Operation::GetFunctionConfiguration(
                "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST".into()
            ))
        );
        // An encoded slash stays inside its segment instead of making a new one.
        assert_eq!(
            r(Method::GET, "/2015-03-31/functions/a%2Fb"),
            Route::Lambda(Operation::GetFunction("a/b".into()))
        );
        assert_eq!(r(Method::GET, "/2015-03-31/functions/%FF"), Route::Unknown);
    }

    #[test]
    fn unimplemented_and_unknown_operations() {
        assert_eq!(
            r(Method::POST, "/2015-03-31/functions/f/invocations"),
            Route::Lambda(Operation::Invoke("f".into()))
        );
        assert_eq!(
            r(Method::POST, "/2014-11-13/functions/f/invoke-async/"),
            Route::Lambda(Operation::InvokeAsync("f".into()))
        );
        assert_eq!(
            r(Method::GET, "/2015-03-31/event-source-mappings/"),
            Route::Lambda(Operation::ListEventSourceMappings)
        );
        assert_eq!(
            r(Method::GET, "/2021-10-31/functions/f/url"),
            Route::Lambda(Operation::GetFunctionUrlConfig("f".into()))
        );
        assert_eq!(
            r(Method::GET, "/2020-04-22/code-signing-configs"),
            Route::NotImplemented("ListCodeSigningConfigs")
        );
        assert_eq!(
            route(
                &Method::GET,
                "/2018-10-31/layers",
                "find=LayerVersion&Arn=x"
            ),
            Route::Lambda(Operation::GetLayerVersionByArn)
        );
        assert_eq!(
            r(Method::GET, "/2018-10-31/layers"),
            Route::Lambda(Operation::ListLayers)
        );
        assert_eq!(
            r(Method::DELETE, "/2018-10-31/layers/l/versions/2/policy/s"),
            Route::Lambda(Operation::RemoveLayerVersionPermission(
                "l".into(),
                "2".into(),
                "s".into()
            ))
        );
        assert_eq!(r(Method::PATCH, "/2015-03-31/functions/f"), Route::Unknown);
        assert_eq!(r(Method::GET, "/nope"), Route::Unknown);
    }

    #[test]
    fn query_keeps_repeated_keys() {
        let q = Query::parse("tagKeys=a&tagKeys=b%20c&Qualifier=%24LATEST");
        assert_eq!(q.all("tagKeys"), ["a", "b c"]);
        assert_eq!(q.get("Qualifier"), Some("$LATEST"));
    }
}

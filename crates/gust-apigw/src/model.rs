//! What API Gateway keeps for an HTTP API — the API, its routes, integrations, stages and
//! deployments — and the inputs of the operations that change them, with the checks the
//! service makes of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ApigwError;
use crate::routing::RouteKey;

/// The stage served at the API's root, and the route that catches what no other matches.
pub const DEFAULT: &str = "$default";
/// The only route selection expression of an HTTP API.
pub const ROUTE_SELECTION_EXPRESSION: &str = "${request.method} ${request.path}";
/// The same expression in the older spelling API Gateway also accepts.
const ROUTE_SELECTION_EXPRESSION_PLAIN: &str = "$request.method $request.path";
/// `ApiKeySelectionExpression` when none is given.
pub const API_KEY_SELECTION_EXPRESSION: &str = "$request.header.x-api-key";
/// The other API key selection expression API Gateway knows.
const API_KEY_SELECTION_AUTHORIZER: &str = "$context.authorizer.usageIdentifierKey";
/// `TimeoutInMillis` when none is given (HTTP APIs: 30 seconds).
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;
/// The only integration type Gust serves: Lambda proxy.
pub const AWS_PROXY: &str = "AWS_PROXY";

/// Most APIs per account (API Gateway: 600 HTTP APIs per Region).
pub const MAX_APIS: usize = 600;
/// Most routes per API.
pub const MAX_ROUTES: usize = 300;
/// Most integrations per API.
pub const MAX_INTEGRATIONS: usize = 300;
/// Most stages per API.
pub const MAX_STAGES: usize = 10;
/// Most tags per resource.
pub const MAX_TAGS: usize = 50;
/// Most stage variables per stage.
pub const MAX_STAGE_VARIABLES: usize = 100;

/// Times are kept as epoch milliseconds in stored records.
pub(crate) mod epoch_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(gust_store::sqlite::ms(*at))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        Ok(gust_store::sqlite::at(i64::deserialize(d)?))
    }
}

/// An HTTP API's `CorsConfiguration`. Members are kept as given (absent stays absent), so
/// they are answered as they were set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfiguration {
    /// `AllowCredentials`.
    pub allow_credentials: Option<bool>,
    /// `AllowHeaders`.
    pub allow_headers: Option<Vec<String>>,
    /// `AllowMethods`.
    pub allow_methods: Option<Vec<String>>,
    /// `AllowOrigins`.
    pub allow_origins: Option<Vec<String>>,
    /// `ExposeHeaders`.
    pub expose_headers: Option<Vec<String>>,
    /// `MaxAge` in seconds (-1 to 86400).
    pub max_age: Option<i64>,
}

impl CorsConfiguration {
    fn check(&self) -> Result<(), ApigwError> {
        let wildcard = self
            .allow_origins
            .as_ref()
            .is_some_and(|origins| origins.iter().any(|o| o == "*"));
        if self.allow_credentials == Some(true) && wildcard {
            return Err(ApigwError::bad_request(
                "allow-credentials is not supported if 'allow-origin' is *",
            ));
        }
        if let Some(age) = self.max_age {
            if !(-1..=86_400).contains(&age) {
                return Err(ApigwError::bad_request(format!(
                    "Invalid maxAge {age}: it must be between -1 and 86400"
                )));
            }
        }
        Ok(())
    }
}

/// An HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    /// The owning account.
    pub account: String,
    /// `ApiId`: 10 characters of `[a-z0-9]`, unique in the server.
    pub api_id: String,
    /// `Name`.
    pub name: String,
    /// `ProtocolType` (always `HTTP`).
    pub protocol_type: String,
    /// `Description`.
    pub description: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `RouteSelectionExpression`.
    pub route_selection_expression: String,
    /// `ApiKeySelectionExpression`.
    pub api_key_selection_expression: String,
    /// `CorsConfiguration`.
    pub cors: Option<CorsConfiguration>,
    /// `DisableExecuteApiEndpoint`.
    pub disable_execute_api_endpoint: bool,
    /// `IpAddressType` (`ipv4` or `dualstack`).
    pub ip_address_type: String,
    /// `CreatedDate`.
    #[serde(with = "epoch_ms")]
    pub created: OffsetDateTime,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
}

/// The members of `CreateApi` and `UpdateApi` (all optional: an update changes only what
/// it names; create checks the required ones).
#[derive(Debug, Clone, Default)]
pub struct ApiInput {
    /// `Name`.
    pub name: Option<String>,
    /// `ProtocolType` (create only).
    pub protocol_type: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `RouteSelectionExpression`.
    pub route_selection_expression: Option<String>,
    /// `ApiKeySelectionExpression`.
    pub api_key_selection_expression: Option<String>,
    /// `CorsConfiguration` (replaces the whole configuration).
    pub cors: Option<CorsConfiguration>,
    /// `DisableExecuteApiEndpoint`.
    pub disable_execute_api_endpoint: Option<bool>,
    /// `IpAddressType`.
    pub ip_address_type: Option<String>,
    /// `RouteKey` of quick create.
    pub route_key: Option<String>,
    /// `Target` of quick create: a Lambda function ARN.
    pub target: Option<String>,
    /// `Tags` (create only).
    pub tags: BTreeMap<String, String>,
}

/// A route of an HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// `RouteId`.
    pub route_id: String,
    /// `RouteKey`: `$default` or `METHOD /path`.
    pub route_key: String,
    /// `Target`: `integrations/<IntegrationId>`, if any.
    pub target: Option<String>,
    /// `AuthorizationType`: `NONE` or `AWS_IAM`.
    pub authorization_type: String,
    /// `ApiKeyRequired` (always false: HTTP APIs have no API keys).
    pub api_key_required: bool,
    /// `OperationName`.
    pub operation_name: Option<String>,
    /// `ApiGatewayManaged`: made by quick create (its route key cannot change).
    pub api_gateway_managed: bool,
}

impl Route {
    /// The integration the target names.
    pub fn integration_id(&self) -> Option<&str> {
        self.target
            .as_deref()
            .and_then(|t| t.strip_prefix("integrations/"))
    }
}

/// The members of `CreateRoute` and `UpdateRoute`.
#[derive(Debug, Clone, Default)]
pub struct RouteInput {
    /// `RouteKey`.
    pub route_key: Option<String>,
    /// `Target` (an empty string removes it).
    pub target: Option<String>,
    /// `AuthorizationType`.
    pub authorization_type: Option<String>,
    /// `AuthorizerId`.
    pub authorizer_id: Option<String>,
    /// `AuthorizationScopes`.
    pub authorization_scopes: Option<Vec<String>>,
    /// `ApiKeyRequired`.
    pub api_key_required: Option<bool>,
    /// `OperationName`.
    pub operation_name: Option<String>,
}

/// A Lambda proxy integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    /// `IntegrationId`.
    pub integration_id: String,
    /// `IntegrationType` (`AWS_PROXY`).
    pub integration_type: String,
    /// `IntegrationUri`, as given: a function ARN or API Gateway's Lambda path form.
    pub integration_uri: String,
    /// `IntegrationMethod` (`POST`).
    pub integration_method: String,
    /// `PayloadFormatVersion`: `1.0` or `2.0`.
    pub payload_format_version: String,
    /// `TimeoutInMillis`: 50 to 30000.
    pub timeout_ms: u32,
    /// `ConnectionType` (`INTERNET`).
    pub connection_type: String,
    /// `Description`.
    pub description: Option<String>,
    /// `ApiGatewayManaged`: made by quick create (it cannot be deleted).
    pub api_gateway_managed: bool,
}

impl Integration {
    /// The function ARN the URI names (the inner ARN of the `apigateway` form).
    pub fn function_arn(&self) -> String {
        function_arn_of(&self.integration_uri).unwrap_or_default()
    }
}

/// The members of `CreateIntegration` and `UpdateIntegration`.
#[derive(Debug, Clone, Default)]
pub struct IntegrationInput {
    /// `IntegrationType`.
    pub integration_type: Option<String>,
    /// `IntegrationUri`.
    pub integration_uri: Option<String>,
    /// `IntegrationMethod`.
    pub integration_method: Option<String>,
    /// `PayloadFormatVersion`.
    pub payload_format_version: Option<String>,
    /// `TimeoutInMillis`.
    pub timeout_ms: Option<i64>,
    /// `ConnectionType`.
    pub connection_type: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `CredentialsArn`.
    pub credentials_arn: Option<String>,
}

/// A stage's (or a route's) `RouteSettings`: kept and answered; Gust does not throttle
/// nor log per route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteSettings {
    /// `DataTraceEnabled`.
    pub data_trace_enabled: Option<bool>,
    /// `DetailedMetricsEnabled`.
    pub detailed_metrics_enabled: Option<bool>,
    /// `LoggingLevel`: `ERROR`, `INFO` or `OFF`.
    pub logging_level: Option<String>,
    /// `ThrottlingBurstLimit`.
    pub throttling_burst_limit: Option<i64>,
    /// `ThrottlingRateLimit`.
    pub throttling_rate_limit: Option<f64>,
}

/// A stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// `StageName`: `$default` or a name.
    pub stage_name: String,
    /// `AutoDeploy`: the stage serves the API's current routes.
    pub auto_deploy: bool,
    /// `DeploymentId`: the deployment a stage without `AutoDeploy` serves.
    pub deployment_id: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `StageVariables`.
    pub stage_variables: BTreeMap<String, String>,
    /// `DefaultRouteSettings`.
    pub default_route_settings: Option<RouteSettings>,
    /// `RouteSettings` by route key.
    pub route_settings: BTreeMap<String, RouteSettings>,
    /// `CreatedDate`.
    #[serde(with = "epoch_ms")]
    pub created: OffsetDateTime,
    /// `LastUpdatedDate`.
    #[serde(with = "epoch_ms")]
    pub last_updated: OffsetDateTime,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
    /// `ApiGatewayManaged`: the `$default` stage of quick create.
    pub api_gateway_managed: bool,
}

/// The members of `CreateStage` and `UpdateStage`.
#[derive(Debug, Clone, Default)]
pub struct StageInput {
    /// `StageName` (create only).
    pub stage_name: Option<String>,
    /// `AutoDeploy`.
    pub auto_deploy: Option<bool>,
    /// `DeploymentId`.
    pub deployment_id: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `StageVariables`; on update merged in, an empty value removing a variable.
    pub stage_variables: Option<BTreeMap<String, String>>,
    /// `DefaultRouteSettings`.
    pub default_route_settings: Option<RouteSettings>,
    /// `RouteSettings`; on update merged in by route key.
    pub route_settings: Option<BTreeMap<String, RouteSettings>>,
    /// `Tags` (create only).
    pub tags: BTreeMap<String, String>,
}

/// A deployment: a snapshot of the API's routes and integrations that stages without
/// `AutoDeploy` serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// `DeploymentId`.
    pub deployment_id: String,
    /// `Description`.
    pub description: Option<String>,
    /// `CreatedDate`.
    #[serde(with = "epoch_ms")]
    pub created: OffsetDateTime,
    /// `AutoDeployed`.
    pub auto_deployed: bool,
    /// The routes as they were.
    pub routes: Vec<Route>,
    /// The integrations as they were.
    pub integrations: Vec<Integration>,
}

/// `MaxResults` and `NextToken` of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// `MaxResults` as sent (the model makes it a string).
    pub max_results: Option<String>,
    /// `NextToken`.
    pub next_token: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next_token: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Checks.

/// `value` (at `path`) has `min..=max` characters, worded as API Gateway's validation.
pub(crate) fn length(value: &str, path: &str, min: usize, max: usize) -> Result<(), ApigwError> {
    let n = value.chars().count();
    let constraint = if n > max {
        format!("Member must have length less than or equal to {max}")
    } else if n < min {
        format!("Member must have length greater than or equal to {min}")
    } else {
        return Ok(());
    };
    let shown: String = value.chars().take(256).collect();
    Err(ApigwError::bad_request(format!(
        "1 validation error detected: Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"
    )))
}

/// A resource's tags.
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApigwError> {
    if tags.len() > MAX_TAGS {
        return Err(ApigwError::bad_request(format!(
            "Too many tags: a resource can have at most {MAX_TAGS} tags"
        )));
    }
    for (key, value) in tags {
        length(key, "tags.key", 1, 128)?;
        length(value, "tags.value", 0, 256)?;
        if key.starts_with("aws:") {
            return Err(ApigwError::bad_request(format!(
                "Invalid tag key {key}: keys beginning with aws: are reserved"
            )));
        }
    }
    Ok(())
}

/// The members `CreateApi` and `UpdateApi` share.
pub(crate) fn check_api_input(input: &ApiInput) -> Result<(), ApigwError> {
    if let Some(name) = &input.name {
        length(name, "name", 1, 128)?;
    }
    if let Some(description) = &input.description {
        length(description, "description", 0, 1024)?;
    }
    if let Some(version) = &input.version {
        length(version, "version", 1, 64)?;
    }
    if let Some(protocol) = &input.protocol_type {
        match protocol.as_str() {
            "HTTP" => {}
            "WEBSOCKET" => {
                return Err(ApigwError::bad_request(
                    "Unsupported protocol type WEBSOCKET: Gust serves HTTP APIs only",
                ))
            }
            other => {
                return Err(ApigwError::bad_request(format!(
                    "Invalid protocol specified {other}. Must be one of [HTTP, WEBSOCKET]"
                )))
            }
        }
    }
    if let Some(expression) = &input.route_selection_expression {
        route_selection_expression(expression)?;
    }
    if let Some(expression) = &input.api_key_selection_expression {
        if expression != API_KEY_SELECTION_EXPRESSION && expression != API_KEY_SELECTION_AUTHORIZER
        {
            return Err(ApigwError::bad_request(format!(
                "Invalid API key selection expression specified: {expression}. Supported expressions are {API_KEY_SELECTION_EXPRESSION} and {API_KEY_SELECTION_AUTHORIZER}"
            )));
        }
    }
    if let Some(kind) = &input.ip_address_type {
        if kind != "ipv4" && kind != "dualstack" {
            return Err(ApigwError::bad_request(format!(
                "Invalid ipAddressType {kind}: must be ipv4 or dualstack"
            )));
        }
    }
    if let Some(cors) = &input.cors {
        cors.check()?;
    }
    if let Some(key) = &input.route_key {
        RouteKey::parse(key)?;
    }
    if let Some(target) = &input.target {
        quick_create_target(target)?;
    }
    check_tags(&input.tags)
}

/// The route selection expression, in its canonical spelling.
pub(crate) fn route_selection_expression(expression: &str) -> Result<String, ApigwError> {
    if expression == ROUTE_SELECTION_EXPRESSION || expression == ROUTE_SELECTION_EXPRESSION_PLAIN {
        Ok(ROUTE_SELECTION_EXPRESSION.to_owned())
    } else {
        Err(ApigwError::bad_request(format!(
            "Invalid route selection expression specified: {expression}. For HTTP APIs it must be {ROUTE_SELECTION_EXPRESSION}"
        )))
    }
}

/// Quick create's `Target`: a Lambda function ARN.
pub(crate) fn quick_create_target(target: &str) -> Result<(), ApigwError> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return Err(ApigwError::bad_request(
            "HTTP_PROXY integrations are not supported by Gust: the target must be a Lambda function ARN",
        ));
    }
    if lambda_function_arn(target) {
        Ok(())
    } else {
        Err(ApigwError::bad_request(format!(
            "Invalid target specified {target}: it must be a Lambda function ARN"
        )))
    }
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
pub(crate) fn lambda_function_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    let (head, qualifier) = match parts.len() {
        7 => (&parts[..], None),
        8 => (&parts[..7], Some(parts[7])),
        _ => return false,
    };
    let [arn, partition, service, region, account, function, name] = head else {
        return false;
    };
    *arn == "arn"
        && partition.starts_with("aws")
        && *service == "lambda"
        && gust_model::names::is_region(region)
        && gust_model::names::is_account_id(account)
        && *function == "function"
        && gust_model::FunctionName::parse(name).is_ok()
        && qualifier.is_none_or(|q| gust_model::Qualifier::parse(q).is_ok())
}

/// The function ARN an integration URI names: the ARN itself, or the one inside
/// `arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations`.
pub fn function_arn_of(uri: &str) -> Option<String> {
    if lambda_function_arn(uri) {
        return Some(uri.to_owned());
    }
    let parts: Vec<&str> = uri.splitn(6, ':').collect();
    let [arn, partition, service, region, lambda, path] = parts[..] else {
        return None;
    };
    let inner = path
        .strip_prefix("path/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    let ok = arn == "arn"
        && partition.starts_with("aws")
        && service == "apigateway"
        && gust_model::names::is_region(region)
        && lambda == "lambda"
        && lambda_function_arn(inner);
    ok.then(|| inner.to_owned())
}

/// A stage name: `$default`, or 1 to 128 of `[A-Za-z0-9_-]`.
pub(crate) fn check_stage_name(name: &str) -> Result<(), ApigwError> {
    length(name, "stageName", 1, 128)?;
    let ok = name == DEFAULT
        || name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApigwError::bad_request(format!(
            "Invalid stage name {name}: a stage name is $default or only a-zA-Z0-9_-"
        )))
    }
}

/// Stage variables: names of `[A-Za-z0-9_]` (at most 64), values matching
/// `[A-Za-z0-9-._~:/?#&=,]+` (at most 2048); an empty value only where it removes one.
pub(crate) fn check_stage_variables(
    variables: &BTreeMap<String, String>,
    empty_removes: bool,
) -> Result<(), ApigwError> {
    for (name, value) in variables {
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(ApigwError::bad_request(format!(
                "Invalid stage variable name {name}: names are 1 to 64 characters of [A-Za-z0-9_]"
            )));
        }
        if value.is_empty() && empty_removes {
            continue;
        }
        let value_ok = !value.is_empty()
            && value.chars().count() <= 2048
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b));
        if !value_ok {
            return Err(ApigwError::bad_request(format!(
                "Invalid stage variable value {value} for {name}: values are 1 to 2048 characters matching [A-Za-z0-9-._~:/?#&=,]+"
            )));
        }
    }
    Ok(())
}

/// `RouteSettings.LoggingLevel`.
pub(crate) fn check_route_settings(settings: &RouteSettings) -> Result<(), ApigwError> {
    if let Some(level) = &settings.logging_level {
        if !matches!(level.as_str(), "ERROR" | "INFO" | "OFF") {
            return Err(ApigwError::bad_request(format!(
                "Invalid logging level {level}: must be one of [ERROR, INFO, OFF]"
            )));
        }
    }
    Ok(())
}

/// An integration as `CreateIntegration` or `UpdateIntegration` leaves it: `current` (on
/// update) with `input` applied, checked.
pub(crate) fn integration_from(
    integration_id: &str,
    current: Option<&Integration>,
    input: &IntegrationInput,
) -> Result<Integration, ApigwError> {
    if input.credentials_arn.is_some() {
        return Err(ApigwError::bad_request(
            "CredentialsArn is not supported by Gust: functions are invoked under their resource-based policy",
        ));
    }
    let integration_type = input
        .integration_type
        .clone()
        .or_else(|| current.map(|c| c.integration_type.clone()))
        .ok_or_else(|| ApigwError::bad_request("IntegrationType is required"))?;
    match integration_type.as_str() {
        AWS_PROXY => {}
        "AWS" | "HTTP" | "MOCK" | "HTTP_PROXY" => {
            return Err(ApigwError::bad_request(format!(
                "Integration type {integration_type} is not supported by Gust: only AWS_PROXY (Lambda proxy) integrations are"
            )))
        }
        other => {
            return Err(ApigwError::bad_request(format!(
                "Invalid integration type specified {other}"
            )))
        }
    }
    let integration_uri = input
        .integration_uri
        .clone()
        .or_else(|| current.map(|c| c.integration_uri.clone()))
        .ok_or_else(|| {
            ApigwError::bad_request("IntegrationUri is required for AWS_PROXY integrations")
        })?;
    if function_arn_of(&integration_uri).is_none() {
        return Err(ApigwError::bad_request(format!(
            "Invalid integration URI specified {integration_uri}: it must be a Lambda function ARN or arn:aws:apigateway:{{region}}:lambda:path/2015-03-31/functions/{{functionArn}}/invocations"
        )));
    }
    let integration_method = input
        .integration_method
        .clone()
        .or_else(|| current.map(|c| c.integration_method.clone()))
        .unwrap_or_else(|| "POST".to_owned());
    if integration_method != "POST" {
        return Err(ApigwError::bad_request(format!(
            "Invalid integration method {integration_method}: Lambda proxy integrations use POST"
        )));
    }
    let payload_format_version = input
        .payload_format_version
        .clone()
        .or_else(|| current.map(|c| c.payload_format_version.clone()))
        .ok_or_else(|| {
            ApigwError::bad_request(
                "PayloadFormatVersion is required for AWS_PROXY integrations of HTTP APIs",
            )
        })?;
    if payload_format_version != "1.0" && payload_format_version != "2.0" {
        return Err(ApigwError::bad_request(format!(
            "Invalid payload format version specified {payload_format_version}: Lambda proxy integrations support 1.0 and 2.0"
        )));
    }
    let timeout_ms = match input.timeout_ms {
        Some(ms) if (50..=30_000).contains(&ms) => ms as u32,
        Some(ms) => {
            return Err(ApigwError::bad_request(format!(
                "Invalid timeoutInMillis {ms}: it must be between 50 and 30000 for HTTP APIs"
            )))
        }
        None => current.map_or(DEFAULT_TIMEOUT_MS, |c| c.timeout_ms),
    };
    let connection_type = input
        .connection_type
        .clone()
        .or_else(|| current.map(|c| c.connection_type.clone()))
        .unwrap_or_else(|| "INTERNET".to_owned());
    if connection_type != "INTERNET" {
        return Err(ApigwError::bad_request(format!(
            "Connection type {connection_type} is not supported by Gust: Lambda integrations use INTERNET"
        )));
    }
    let description = match &input.description {
        Some(d) => {
            length(d, "description", 0, 1024)?;
            Some(d.clone())
        }
        None => current.and_then(|c| c.description.clone()),
    };
    Ok(Integration {
        integration_id: integration_id.to_owned(),
        integration_type,
        integration_uri,
        integration_method,
        payload_format_version,
        timeout_ms,
        connection_type,
        description,
        api_gateway_managed: current.is_some_and(|c| c.api_gateway_managed),
    })
}

/// The route members other than key and target: `current` (on update) with `input`
/// applied, checked.
pub(crate) fn route_settings_from(
    current: Option<&Route>,
    input: &RouteInput,
) -> Result<(String, bool, Option<String>), ApigwError> {
    if input.authorizer_id.is_some() || input.authorization_scopes.is_some() {
        return Err(ApigwError::bad_request(
            "Authorizers are not supported by Gust: routes are authorized with NONE or AWS_IAM",
        ));
    }
    let authorization_type = input
        .authorization_type
        .clone()
        .or_else(|| current.map(|c| c.authorization_type.clone()))
        .unwrap_or_else(|| "NONE".to_owned());
    match authorization_type.as_str() {
        "NONE" | "AWS_IAM" => {}
        "JWT" | "CUSTOM" => {
            return Err(ApigwError::bad_request(format!(
                "Authorization type {authorization_type} is not supported by Gust: routes are authorized with NONE or AWS_IAM"
            )))
        }
        other => {
            return Err(ApigwError::bad_request(format!(
                "Invalid authorization type specified {other}"
            )))
        }
    }
    if input.api_key_required == Some(true) {
        return Err(ApigwError::bad_request(
            "API keys are not supported for HTTP APIs: apiKeyRequired must be false",
        ));
    }
    let operation_name = match &input.operation_name {
        Some(name) => {
            length(name, "operationName", 1, 64)?;
            Some(name.clone())
        }
        None => current.and_then(|c| c.operation_name.clone()),
    };
    Ok((authorization_type, false, operation_name))
}

/// `integrations/<id>` → `<id>`.
pub(crate) fn target_integration(target: &str) -> Result<&str, ApigwError> {
    target
        .strip_prefix("integrations/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            ApigwError::bad_request(format!(
                "Invalid target specified {target}: a route's target is integrations/{{integrationId}}"
            ))
        })
}

/// A random identifier of `len` characters of `[a-z0-9]`, as API Gateway's.
pub(crate) fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            // 252 = 7 × 36: rejecting the rest keeps every character equally likely.
            if *byte < 252 && out.len() < len {
                out.push(ALPHABET[usize::from(*byte % 36)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_uris() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:echo";
        assert_eq!(function_arn_of(arn).as_deref(), Some(arn));
        assert_eq!(
            function_arn_of(&format!("{arn}:live")).as_deref(),
            Some(&*format!("{arn}:live"))
        );
        let wrapped = format!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}:7/invocations"
        );
        assert_eq!(function_arn_of(&wrapped), Some(format!("{arn}:7")));
        for bad in [
            "echo",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:1234:function:echo",
            "arn:aws:sqs:us-east-1:123456789012:queue",
            "arn:aws:lambda:us-east-1:123456789012:function:echo:a:b",
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/echo/invocations",
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:echo",
        ] {
            assert_eq!(function_arn_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn stage_names_and_variables() {
        assert!(check_stage_name("$default").is_ok());
        assert!(check_stage_name("prod-2_b").is_ok());
        assert!(check_stage_name("$prod").is_err());
        assert!(check_stage_name("a b").is_err());
        assert!(check_stage_name(&"a".repeat(129)).is_err());
        let vars = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(check_stage_variables(&vars("alias", "live"), false).is_ok());
        assert!(check_stage_variables(&vars("url", "https://x.com/a?b=c&d=e,f"), false).is_ok());
        assert!(check_stage_variables(&vars("bad-name", "x"), false).is_err());
        assert!(check_stage_variables(&vars("a", "white space"), false).is_err());
        assert!(check_stage_variables(&vars("a", ""), false).is_err());
        assert!(check_stage_variables(&vars("a", ""), true).is_ok());
    }

    #[test]
    fn integration_checks() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:echo";
        let input = IntegrationInput {
            integration_type: Some("AWS_PROXY".into()),
            integration_uri: Some(arn.into()),
            payload_format_version: Some("2.0".into()),
            ..Default::default()
        };
        let made = integration_from("abc1234", None, &input).unwrap();
        assert_eq!(made.timeout_ms, 30_000);
        assert_eq!(made.integration_method, "POST");
        assert_eq!(made.connection_type, "INTERNET");
        assert_eq!(made.function_arn(), arn);
        let refused = |change: fn(&mut IntegrationInput)| {
            let mut input = input.clone();
            change(&mut input);
            integration_from("abc1234", None, &input).unwrap_err()
        };
        assert!(refused(|i| i.integration_type = Some("HTTP_PROXY".into()))
            .to_string()
            .contains("not supported"));
        assert!(refused(|i| i.payload_format_version = None)
            .to_string()
            .contains("PayloadFormatVersion is required"));
        assert!(refused(|i| i.payload_format_version = Some("3.0".into()))
            .to_string()
            .contains("1.0 and 2.0"));
        assert!(refused(|i| i.timeout_ms = Some(49))
            .to_string()
            .contains("between 50 and 30000"));
        assert!(refused(|i| i.timeout_ms = Some(30_001))
            .to_string()
            .contains("between 50 and 30000"));
        assert!(
            refused(|i| i.integration_uri = Some("https://example.com".into()))
                .to_string()
                .starts_with("Invalid integration URI specified")
        );
        assert!(refused(|i| i.integration_method = Some("GET".into()))
            .to_string()
            .contains("POST"));
        assert!(refused(|i| i.connection_type = Some("VPC_LINK".into()))
            .to_string()
            .contains("INTERNET"));
        // An update keeps what it does not name.
        let update = IntegrationInput {
            timeout_ms: Some(5_000),
            ..Default::default()
        };
        let updated = integration_from("abc1234", Some(&made), &update).unwrap();
        assert_eq!(updated.timeout_ms, 5_000);
        assert_eq!(updated.payload_format_version, "2.0");
    }

    #[test]
    fn api_checks() {
        let ok = ApiInput {
            name: Some("shop".into()),
            protocol_type: Some("HTTP".into()),
            ..Default::default()
        };
        assert!(check_api_input(&ok).is_ok());
        let websocket = ApiInput {
            protocol_type: Some("WEBSOCKET".into()),
            ..ok.clone()
        };
        let error = check_api_input(&websocket).unwrap_err();
        assert_eq!(error.shape(), "BadRequestException");
        assert!(error.to_string().contains("WEBSOCKET"));
        let long = ApiInput {
            name: Some("n".repeat(129)),
            ..ok.clone()
        };
        assert!(check_api_input(&long)
            .unwrap_err()
            .to_string()
            .contains("at 'name' failed to satisfy constraint"));
        let cors = ApiInput {
            cors: Some(CorsConfiguration {
                allow_credentials: Some(true),
                allow_origins: Some(vec!["*".into()]),
                ..Default::default()
            }),
            ..ok.clone()
        };
        assert_eq!(
            check_api_input(&cors).unwrap_err().to_string(),
            "allow-credentials is not supported if 'allow-origin' is *"
        );
        let expression = ApiInput {
            route_selection_expression: Some("$request.body.action".into()),
            ..ok.clone()
        };
        assert!(check_api_input(&expression).is_err());
        assert_eq!(
            route_selection_expression("$request.method $request.path").unwrap(),
            ROUTE_SELECTION_EXPRESSION
        );
        let http_target = ApiInput {
            target: Some("https://example.com".into()),
            ..ok
        };
        assert!(check_api_input(&http_target)
            .unwrap_err()
            .to_string()
            .contains("HTTP_PROXY"));
    }

    #[test]
    fn random_ids() {
        let id = random_id(10);
        assert_eq!(id.len(), 10);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random_id(10), id);
    }
}

//! The API Gateway v2 adapter (HTTP APIs' control plane): REST-JSON as the `apigatewayv2`
//! clients speak it (signing name `apigateway`), one handler from a request's method, path,
//! query and body to an operation over `gust_apigw::Apigw`.
//!
//! | Operations | Method and path |
//! |---|---|
//! | CreateApi / GetApis | `POST` / `GET /v2/apis` |
//! | GetApi / UpdateApi / DeleteApi | `GET` / `PATCH` / `DELETE /v2/apis/{apiId}` |
//! | DeleteCorsConfiguration | `DELETE /v2/apis/{apiId}/cors` |
//! | CreateRoute / GetRoutes, GetRoute / UpdateRoute / DeleteRoute | `/v2/apis/{apiId}/routes[/{routeId}]` |
//! | …Integration(s) | `/v2/apis/{apiId}/integrations[/{integrationId}]` |
//! | …Stage(s) | `/v2/apis/{apiId}/stages[/{stageName}]` |
//! | …Deployment(s) | `/v2/apis/{apiId}/deployments[/{deploymentId}]` |
//! | TagResource / UntagResource (`?tagKeys=`…) / GetTags | `POST` / `DELETE` / `GET /v2/tags/{resource-arn}` |
//!
//! Members are camelCase on the wire (the model's `locationName`s); the status is the
//! model's (`Create*` and `TagResource` 201, `Delete*` and `UntagResource` 204, the rest
//! 200). Inputs (body, labels and query members, gathered into one object under their wire
//! names) are first checked against the model's shapes (required members, enums, ranges,
//! JSON types); API Gateway answers every such failure as a `BadRequestException`. Members
//! of features Gust does not have (parameter mapping, authorizers, access logs,
//! WebSocket-only settings) are refused rather than ignored. Timestamps are ISO 8601.
//! Errors are the `x-amzn-ErrorType` header and `{"message": …}` ([`error_response`]).
//!
//! The handler is synchronous: it commits to SQLite, so callers run it on the blocking pool.

use std::collections::BTreeMap;

use gust_apigw::{
    Api, ApiInput, Apigw, ApigwError, CorsConfiguration, Deployment, Integration, IntegrationInput,
    Page, Route, RouteInput, RouteSettings, Stage, StageInput,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::front::UrlDomain;
use crate::protocol::ServiceError;
use crate::validate::read::{boolean, integer, object, owned, string, string_map, strings};
use crate::validate::{self, member, required, shown, Dialect, Kind, Member};

impl From<ApigwError> for ServiceError {
    fn from(error: ApigwError) -> Self {
        ServiceError::of_service(
            error.status(),
            error.is_internal(),
            error.shape(),
            error.to_string(),
        )
    }
}

/// A `ServiceError` as API Gateway's REST-JSON error response: the status, the
/// `x-amzn-ErrorType` header's value and the body (`{"message": …}`).
pub(crate) fn error_response(error: &ServiceError) -> (u16, String, Value) {
    (
        error.status,
        error.shape.clone(),
        json!({ "message": error.message }),
    )
}

/// Where an API's endpoint is (its `ApiEndpoint`): under the host the request came to,
/// or the host-based form of `--url-domain`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// `--url-domain`.
    pub(crate) domain: Option<UrlDomain>,
    /// The request's `Host`.
    pub(crate) host: String,
}

impl Endpoints {
    fn of(&self, region: &str, api_id: &str) -> String {
        crate::front::api_endpoint(self.domain.as_ref(), &self.host, region, api_id)
    }
}

// ---------------------------------------------------------------------------------------
// The input shapes, as the service model (2018-11-29) declares them. Its strings carry no
// length or pattern; the service's own checks are in `gust_apigw`.

const STRING: Kind = Kind::Str {
    min: None,
    max: None,
    pattern: None,
};
const BOOL: Kind = Kind::Bool;
const STRINGS: Kind = Kind::List {
    member: &STRING,
    min: None,
    max: None,
};
const STRING_MAP: Kind = Kind::Map {
    key: &STRING,
    value: &STRING,
    max: None,
};
const CORS: Kind = Kind::Struct(&[
    member("allowCredentials", &BOOL),
    member("allowHeaders", &STRINGS),
    member("allowMethods", &STRINGS),
    member("allowOrigins", &STRINGS),
    member("exposeHeaders", &STRINGS),
    member(
        "maxAge",
        &Kind::Int {
            min: Some(-1),
            max: Some(86_400),
        },
    ),
]);
const PROTOCOL_TYPE: Kind = Kind::Enum(&["WEBSOCKET", "HTTP"]);
const IP_ADDRESS_TYPE: Kind = Kind::Enum(&["ipv4", "dualstack"]);
const AUTHORIZATION_TYPE: Kind = Kind::Enum(&["NONE", "AWS_IAM", "CUSTOM", "JWT"]);
const INTEGRATION_TYPE: Kind = Kind::Enum(&["AWS", "HTTP", "MOCK", "HTTP_PROXY", "AWS_PROXY"]);
const CONNECTION_TYPE: Kind = Kind::Enum(&["INTERNET", "VPC_LINK"]);
const CONTENT_HANDLING: Kind = Kind::Enum(&["CONVERT_TO_BINARY", "CONVERT_TO_TEXT"]);
const PASSTHROUGH: Kind = Kind::Enum(&["WHEN_NO_MATCH", "NEVER", "WHEN_NO_TEMPLATES"]);
const TIMEOUT: Kind = Kind::Int {
    min: Some(50),
    max: Some(30_000),
};
const ROUTE_SETTINGS_MEMBERS: &[Member] = &[
    member("dataTraceEnabled", &BOOL),
    member("detailedMetricsEnabled", &BOOL),
    member("loggingLevel", &Kind::Enum(&["ERROR", "INFO", "OFF"])),
    member(
        "throttlingBurstLimit",
        &Kind::Int {
            min: None,
            max: None,
        },
    ),
    member("throttlingRateLimit", &Kind::Double),
];
const ROUTE_SETTINGS: Kind = Kind::Struct(ROUTE_SETTINGS_MEMBERS);
const ACCESS_LOG_SETTINGS: Kind =
    Kind::Struct(&[member("destinationArn", &STRING), member("format", &STRING)]);

const PAGE: [Member; 2] = [member("maxResults", &STRING), member("nextToken", &STRING)];

const CREATE_API: &[Member] = &[
    member("apiKeySelectionExpression", &STRING),
    member("corsConfiguration", &CORS),
    member("credentialsArn", &STRING),
    member("description", &STRING),
    member("disableSchemaValidation", &BOOL),
    member("disableExecuteApiEndpoint", &BOOL),
    member("ipAddressType", &IP_ADDRESS_TYPE),
    required("name", &STRING),
    required("protocolType", &PROTOCOL_TYPE),
    member("routeKey", &STRING),
    member("routeSelectionExpression", &STRING),
    member("tags", &STRING_MAP),
    member("target", &STRING),
    member("version", &STRING),
];
const API_NAMED: &[Member] = &[required("apiId", &STRING)];
const GET_APIS: &[Member] = &PAGE;
const UPDATE_API: &[Member] = &[
    required("apiId", &STRING),
    member("apiKeySelectionExpression", &STRING),
    member("corsConfiguration", &CORS),
    member("credentialsArn", &STRING),
    member("description", &STRING),
    member("disableSchemaValidation", &BOOL),
    member("disableExecuteApiEndpoint", &BOOL),
    member("ipAddressType", &IP_ADDRESS_TYPE),
    member("name", &STRING),
    member("routeKey", &STRING),
    member("routeSelectionExpression", &STRING),
    member("target", &STRING),
    member("version", &STRING),
];
const LIST_OF_API: &[Member] = &[
    required("apiId", &STRING),
    member("maxResults", &STRING),
    member("nextToken", &STRING),
];
const ROUTE_MEMBERS: [Member; 11] = [
    member("apiKeyRequired", &BOOL),
    member("authorizationScopes", &STRINGS),
    member("authorizationType", &AUTHORIZATION_TYPE),
    member("authorizerId", &STRING),
    member("modelSelectionExpression", &STRING),
    member("operationName", &STRING),
    member("requestModels", &STRING_MAP),
    member("requestParameters", &Kind::Opaque),
    member("routeResponseSelectionExpression", &STRING),
    member("target", &STRING),
    required("apiId", &STRING),
];
const CREATE_ROUTE: &[Member] = &[
    ROUTE_MEMBERS[0],
    ROUTE_MEMBERS[1],
    ROUTE_MEMBERS[2],
    ROUTE_MEMBERS[3],
    ROUTE_MEMBERS[4],
    ROUTE_MEMBERS[5],
    ROUTE_MEMBERS[6],
    ROUTE_MEMBERS[7],
    ROUTE_MEMBERS[8],
    ROUTE_MEMBERS[9],
    ROUTE_MEMBERS[10],
    required("routeKey", &STRING),
];
const ROUTE_NAMED: &[Member] = &[required("apiId", &STRING), required("routeId", &STRING)];
const UPDATE_ROUTE: &[Member] = &[
    ROUTE_MEMBERS[0],
    ROUTE_MEMBERS[1],
    ROUTE_MEMBERS[2],
    ROUTE_MEMBERS[3],
    ROUTE_MEMBERS[4],
    ROUTE_MEMBERS[5],
    ROUTE_MEMBERS[6],
    ROUTE_MEMBERS[7],
    ROUTE_MEMBERS[8],
    ROUTE_MEMBERS[9],
    ROUTE_MEMBERS[10],
    required("routeId", &STRING),
    member("routeKey", &STRING),
];
const INTEGRATION_MEMBERS: [Member; 17] = [
    required("apiId", &STRING),
    member("connectionId", &STRING),
    member("connectionType", &CONNECTION_TYPE),
    member("contentHandlingStrategy", &CONTENT_HANDLING),
    member("credentialsArn", &STRING),
    member("description", &STRING),
    member("integrationMethod", &STRING),
    member("integrationSubtype", &STRING),
    member("integrationUri", &STRING),
    member("passthroughBehavior", &PASSTHROUGH),
    member("payloadFormatVersion", &STRING),
    member("requestParameters", &STRING_MAP),
    member("requestTemplates", &STRING_MAP),
    member("responseParameters", &Kind::Opaque),
    member("templateSelectionExpression", &STRING),
    member("timeoutInMillis", &TIMEOUT),
    member("tlsConfig", &Kind::Opaque),
];
const CREATE_INTEGRATION: &[Member] = &[
    INTEGRATION_MEMBERS[0],
    INTEGRATION_MEMBERS[1],
    INTEGRATION_MEMBERS[2],
    INTEGRATION_MEMBERS[3],
    INTEGRATION_MEMBERS[4],
    INTEGRATION_MEMBERS[5],
    INTEGRATION_MEMBERS[6],
    INTEGRATION_MEMBERS[7],
    INTEGRATION_MEMBERS[8],
    INTEGRATION_MEMBERS[9],
    INTEGRATION_MEMBERS[10],
    INTEGRATION_MEMBERS[11],
    INTEGRATION_MEMBERS[12],
    INTEGRATION_MEMBERS[13],
    INTEGRATION_MEMBERS[14],
    INTEGRATION_MEMBERS[15],
    INTEGRATION_MEMBERS[16],
    required("integrationType", &INTEGRATION_TYPE),
];
const INTEGRATION_NAMED: &[Member] = &[
    required("apiId", &STRING),
    required("integrationId", &STRING),
];
const UPDATE_INTEGRATION: &[Member] = &[
    INTEGRATION_MEMBERS[0],
    INTEGRATION_MEMBERS[1],
    INTEGRATION_MEMBERS[2],
    INTEGRATION_MEMBERS[3],
    INTEGRATION_MEMBERS[4],
    INTEGRATION_MEMBERS[5],
    INTEGRATION_MEMBERS[6],
    INTEGRATION_MEMBERS[7],
    INTEGRATION_MEMBERS[8],
    INTEGRATION_MEMBERS[9],
    INTEGRATION_MEMBERS[10],
    INTEGRATION_MEMBERS[11],
    INTEGRATION_MEMBERS[12],
    INTEGRATION_MEMBERS[13],
    INTEGRATION_MEMBERS[14],
    INTEGRATION_MEMBERS[15],
    INTEGRATION_MEMBERS[16],
    required("integrationId", &STRING),
    member("integrationType", &INTEGRATION_TYPE),
];
const STAGE_MEMBERS: [Member; 10] = [
    member("accessLogSettings", &ACCESS_LOG_SETTINGS),
    required("apiId", &STRING),
    member("autoDeploy", &BOOL),
    member("clientCertificateId", &STRING),
    member("defaultRouteSettings", &ROUTE_SETTINGS),
    member("deploymentId", &STRING),
    member("description", &STRING),
    member("routeSettings", &Kind::Opaque),
    required("stageName", &STRING),
    member("stageVariables", &STRING_MAP),
];
const CREATE_STAGE: &[Member] = &[
    STAGE_MEMBERS[0],
    STAGE_MEMBERS[1],
    STAGE_MEMBERS[2],
    STAGE_MEMBERS[3],
    STAGE_MEMBERS[4],
    STAGE_MEMBERS[5],
    STAGE_MEMBERS[6],
    STAGE_MEMBERS[7],
    STAGE_MEMBERS[8],
    STAGE_MEMBERS[9],
    member("tags", &STRING_MAP),
];
const UPDATE_STAGE: &[Member] = &STAGE_MEMBERS;
const STAGE_NAMED: &[Member] = &[required("apiId", &STRING), required("stageName", &STRING)];
const CREATE_DEPLOYMENT: &[Member] = &[
    required("apiId", &STRING),
    member("description", &STRING),
    member("stageName", &STRING),
];
const DEPLOYMENT_NAMED: &[Member] = &[
    required("apiId", &STRING),
    required("deploymentId", &STRING),
];
const UPDATE_DEPLOYMENT: &[Member] = &[
    required("apiId", &STRING),
    required("deploymentId", &STRING),
    member("description", &STRING),
];
const TAG_RESOURCE: &[Member] = &[
    required("resourceArn", &STRING),
    member("tags", &STRING_MAP),
];
const UNTAG_RESOURCE: &[Member] = &[
    required("resourceArn", &STRING),
    required("tagKeys", &STRINGS),
];
const GET_TAGS: &[Member] = &[required("resourceArn", &STRING)];

/// Members of features Gust does not have, refused when given (non-empty), with why.
const UNSUPPORTED_API: &[(&str, &str)] = &[(
    "credentialsArn",
    "functions are invoked under their resource-based policy",
)];
const UNSUPPORTED_ROUTE: &[(&str, &str)] = &[
    ("modelSelectionExpression", "it is a WebSocket API setting"),
    ("requestModels", "it is a WebSocket API setting"),
    ("requestParameters", "it is a WebSocket API setting"),
    (
        "routeResponseSelectionExpression",
        "it is a WebSocket API setting",
    ),
];
const UNSUPPORTED_INTEGRATION: &[(&str, &str)] = &[
    ("connectionId", "Lambda integrations need no VPC link"),
    ("contentHandlingStrategy", "it is a WebSocket API setting"),
    (
        "integrationSubtype",
        "only Lambda proxy integrations are served",
    ),
    ("passthroughBehavior", "it is a WebSocket API setting"),
    ("requestParameters", "Gust does no parameter mapping"),
    ("requestTemplates", "it is a WebSocket API setting"),
    ("responseParameters", "Gust does no parameter mapping"),
    (
        "templateSelectionExpression",
        "it is a WebSocket API setting",
    ),
    ("tlsConfig", "it is a private integration setting"),
];
const UNSUPPORTED_STAGE: &[(&str, &str)] = &[
    ("accessLogSettings", "Gust writes no access logs"),
    ("clientCertificateId", "it is a WebSocket API setting"),
];

/// API Gateway quotes values as given and checks every pattern.
const DIALECT: Dialect = Dialect {
    shown: |value, _| shown(value),
    pattern_when_short: true,
};

// ---------------------------------------------------------------------------------------
// Operations and their routes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CreateApi,
    GetApi,
    GetApis,
    UpdateApi,
    DeleteApi,
    DeleteCorsConfiguration,
    CreateRoute,
    GetRoute,
    GetRoutes,
    UpdateRoute,
    DeleteRoute,
    CreateIntegration,
    GetIntegration,
    GetIntegrations,
    UpdateIntegration,
    DeleteIntegration,
    CreateStage,
    GetStage,
    GetStages,
    UpdateStage,
    DeleteStage,
    CreateDeployment,
    GetDeployment,
    GetDeployments,
    UpdateDeployment,
    DeleteDeployment,
    TagResource,
    UntagResource,
    GetTags,
}

impl Operation {
    fn shape(self) -> &'static [Member] {
        use Operation::*;
        match self {
            CreateApi => CREATE_API,
            GetApi | DeleteApi | DeleteCorsConfiguration => API_NAMED,
            GetApis => GET_APIS,
            UpdateApi => UPDATE_API,
            CreateRoute => CREATE_ROUTE,
            GetRoute | DeleteRoute => ROUTE_NAMED,
            GetRoutes | GetIntegrations | GetStages | GetDeployments => LIST_OF_API,
            UpdateRoute => UPDATE_ROUTE,
            CreateIntegration => CREATE_INTEGRATION,
            GetIntegration | DeleteIntegration => INTEGRATION_NAMED,
            UpdateIntegration => UPDATE_INTEGRATION,
            CreateStage => CREATE_STAGE,
            GetStage | DeleteStage => STAGE_NAMED,
            UpdateStage => UPDATE_STAGE,
            CreateDeployment => CREATE_DEPLOYMENT,
            GetDeployment | DeleteDeployment => DEPLOYMENT_NAMED,
            UpdateDeployment => UPDATE_DEPLOYMENT,
            TagResource => TAG_RESOURCE,
            UntagResource => UNTAG_RESOURCE,
            GetTags => GET_TAGS,
        }
    }

    fn unsupported(self) -> &'static [(&'static str, &'static str)] {
        use Operation::*;
        match self {
            CreateApi | UpdateApi => UNSUPPORTED_API,
            CreateRoute | UpdateRoute => UNSUPPORTED_ROUTE,
            CreateIntegration | UpdateIntegration => UNSUPPORTED_INTEGRATION,
            CreateStage | UpdateStage => UNSUPPORTED_STAGE,
            _ => &[],
        }
    }

    /// The success status the model gives.
    fn status(self) -> u16 {
        use Operation::*;
        match self {
            CreateApi | CreateRoute | CreateIntegration | CreateStage | CreateDeployment
            | TagResource => 201,
            DeleteApi
            | DeleteCorsConfiguration
            | DeleteRoute
            | DeleteIntegration
            | DeleteStage
            | DeleteDeployment
            | UntagResource => 204,
            _ => 200,
        }
    }

    /// Whether the body carries members.
    fn has_body(self) -> bool {
        use Operation::*;
        matches!(
            self,
            CreateApi
                | UpdateApi
                | CreateRoute
                | UpdateRoute
                | CreateIntegration
                | UpdateIntegration
                | CreateStage
                | UpdateStage
                | CreateDeployment
                | UpdateDeployment
                | TagResource
        )
    }

    /// Query parameters: (wire name, is a list).
    fn query(self) -> &'static [(&'static str, bool)] {
        use Operation::*;
        match self {
            GetApis | GetRoutes | GetIntegrations | GetStages | GetDeployments => {
                &[("maxResults", false), ("nextToken", false)]
            }
            UntagResource => &[("tagKeys", true)],
            _ => &[],
        }
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The query string's parameters, in order (a name may repeat).
fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    let decode_part = |s: &str| decode(&s.replace('+', " "));
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode_part(name), decode_part(value)),
            None => (decode_part(pair), String::new()),
        })
        .collect()
}

/// An operation with its URI labels (wire name, value).
type Routed = (Operation, Vec<(&'static str, String)>);

/// The operation a request names. `None` when the path is not API Gateway v2's.
fn route(method: &str, raw_path: &str) -> Option<Result<Routed, ServiceError>> {
    use Operation::*;
    let rest = raw_path.strip_prefix("/v2/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let label = |name: &'static str, raw: &str| (name, decode(raw));
    let found: Option<Routed> = match segments.as_slice() {
        ["apis"] => match method {
            "POST" => Some((CreateApi, vec![])),
            "GET" => Some((GetApis, vec![])),
            _ => None,
        },
        ["apis", api] => {
            let labels = vec![label("apiId", api)];
            match method {
                "GET" => Some((GetApi, labels)),
                "PATCH" => Some((UpdateApi, labels)),
                "DELETE" => Some((DeleteApi, labels)),
                _ => None,
            }
        }
        ["apis", api, "cors"] => {
            (method == "DELETE").then(|| (DeleteCorsConfiguration, vec![label("apiId", api)]))
        }
        ["apis", api, collection] => {
            let labels = vec![label("apiId", api)];
            let (create, list) = match *collection {
                "routes" => (CreateRoute, GetRoutes),
                "integrations" => (CreateIntegration, GetIntegrations),
                "stages" => (CreateStage, GetStages),
                "deployments" => (CreateDeployment, GetDeployments),
                _ => return None,
            };
            match method {
                "POST" => Some((create, labels)),
                "GET" => Some((list, labels)),
                _ => None,
            }
        }
        ["apis", api, collection, id] => {
            let (name, get, update, delete) = match *collection {
                "routes" => ("routeId", GetRoute, UpdateRoute, DeleteRoute),
                "integrations" => (
                    "integrationId",
                    GetIntegration,
                    UpdateIntegration,
                    DeleteIntegration,
                ),
                "stages" => ("stageName", GetStage, UpdateStage, DeleteStage),
                "deployments" => (
                    "deploymentId",
                    GetDeployment,
                    UpdateDeployment,
                    DeleteDeployment,
                ),
                _ => return None,
            };
            let labels = vec![label("apiId", api), label(name, id)];
            match method {
                "GET" => Some((get, labels)),
                "PATCH" => Some((update, labels)),
                "DELETE" => Some((delete, labels)),
                _ => None,
            }
        }
        ["tags", arn @ ..] if !arn.is_empty() => {
            // The ARN's `/` may come encoded or not.
            let labels = vec![("resourceArn", decode(&arn.join("/")))];
            match method {
                "POST" => Some((TagResource, labels)),
                "GET" => Some((GetTags, labels)),
                "DELETE" => Some((UntagResource, labels)),
                _ => None,
            }
        }
        _ => return None,
    };
    Some(found.ok_or_else(|| {
        ServiceError::client(
            404,
            "NotFoundException",
            format!("API Gateway has no operation for {method} {raw_path}"),
        )
    }))
}

/// Handles a request if its path is API Gateway v2's: the status and JSON body of the
/// answer (`Null` for none), or the error to render with [`error_response`].
pub(crate) fn handle(
    service: &Apigw,
    account: &str,
    endpoints: &Endpoints,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    body: &[u8],
) -> Option<Result<(u16, Value), ServiceError>> {
    let (operation, labels) = match route(method, raw_path)? {
        Ok(found) => found,
        Err(error) => return Some(Err(error)),
    };
    Some(
        input(operation, labels, raw_query, body)
            .and_then(|input| {
                check(operation, &input)?;
                Ok(run(service, account, endpoints, operation, &input)?)
            })
            .map(|output| (operation.status(), output)),
    )
}

/// A `BadRequestException` with `message`.
fn bad_request(message: impl Into<String>) -> ServiceError {
    ServiceError::client(400, "BadRequestException", message)
}

/// Checks the input against the operation's shape, and refuses what Gust does not have.
fn check(operation: Operation, input: &Value) -> Result<(), ServiceError> {
    // API Gateway answers both the model's violations and unreadable members as bad
    // requests.
    let as_bad_request = |error: ServiceError| bad_request(error.message);
    validate::check(operation.shape(), input, &DIALECT).map_err(as_bad_request)?;
    if let Some(settings) = input.get("routeSettings").and_then(Value::as_object) {
        for (key, value) in settings {
            validate::check(ROUTE_SETTINGS_MEMBERS, value, &DIALECT)
                .map_err(|e| bad_request(format!("routeSettings[{key}]: {}", e.message)))?;
        }
    }
    for (name, why) in operation.unsupported() {
        let given = match input.get(*name) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Object(map)) => !map.is_empty(),
            Some(Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
        };
        if given {
            return Err(bad_request(format!(
                "{name} is not supported by Gust: {why}"
            )));
        }
    }
    if input.get("disableSchemaValidation") == Some(&Value::Bool(true)) {
        return Err(bad_request(
            "disableSchemaValidation is supported only for WebSocket APIs",
        ));
    }
    Ok(())
}

/// The operation's input: the body's members, the labels and the query's.
fn input(
    operation: Operation,
    labels: Vec<(&'static str, String)>,
    raw_query: &str,
    body: &[u8],
) -> Result<Value, ServiceError> {
    let mut object = Map::new();
    if operation.has_body() && !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => object = members,
            Ok(_) | Err(_) => {
                return Err(bad_request(
                    "Could not parse request body into json: the body must be a JSON object",
                ))
            }
        }
    }
    let pairs = query_pairs(raw_query);
    for (wire, list) in operation.query() {
        let values: Vec<&String> = pairs
            .iter()
            .filter(|(k, _)| k == wire)
            .map(|(_, v)| v)
            .collect();
        if values.is_empty() {
            continue;
        }
        let value = if *list {
            Value::Array(values.into_iter().map(|v| json!(v)).collect())
        } else {
            json!(values[0])
        };
        object.insert((*wire).to_owned(), value);
    }
    for (name, value) in labels {
        object.insert(name.to_owned(), Value::String(value));
    }
    Ok(Value::Object(object))
}

// ---------------------------------------------------------------------------------------
// Reading checked inputs.

fn page(input: &Value) -> Page {
    Page {
        max_results: owned(input, "maxResults"),
        next_token: owned(input, "nextToken"),
    }
}

fn optional_strings(input: &Value, name: &str) -> Option<Vec<String>> {
    input
        .get(name)
        .filter(|v| v.is_array())
        .map(|_| strings(input, name))
}

fn cors(value: &Value) -> CorsConfiguration {
    CorsConfiguration {
        allow_credentials: boolean(value, "allowCredentials"),
        allow_headers: optional_strings(value, "allowHeaders"),
        allow_methods: optional_strings(value, "allowMethods"),
        allow_origins: optional_strings(value, "allowOrigins"),
        expose_headers: optional_strings(value, "exposeHeaders"),
        max_age: integer(value, "maxAge"),
    }
}

fn api_input(input: &Value) -> ApiInput {
    ApiInput {
        name: owned(input, "name"),
        protocol_type: owned(input, "protocolType"),
        description: owned(input, "description"),
        version: owned(input, "version"),
        route_selection_expression: owned(input, "routeSelectionExpression"),
        api_key_selection_expression: owned(input, "apiKeySelectionExpression"),
        cors: object(input, "corsConfiguration").map(cors),
        disable_execute_api_endpoint: boolean(input, "disableExecuteApiEndpoint"),
        ip_address_type: owned(input, "ipAddressType"),
        route_key: owned(input, "routeKey"),
        target: owned(input, "target"),
        tags: string_map(input, "tags").unwrap_or_default(),
    }
}

fn route_input(input: &Value) -> RouteInput {
    RouteInput {
        route_key: owned(input, "routeKey"),
        target: owned(input, "target"),
        authorization_type: owned(input, "authorizationType"),
        authorizer_id: owned(input, "authorizerId"),
        authorization_scopes: optional_strings(input, "authorizationScopes"),
        api_key_required: boolean(input, "apiKeyRequired"),
        operation_name: owned(input, "operationName"),
    }
}

fn integration_input(input: &Value) -> IntegrationInput {
    IntegrationInput {
        integration_type: owned(input, "integrationType"),
        integration_uri: owned(input, "integrationUri"),
        integration_method: owned(input, "integrationMethod"),
        payload_format_version: owned(input, "payloadFormatVersion"),
        timeout_ms: integer(input, "timeoutInMillis"),
        connection_type: owned(input, "connectionType"),
        description: owned(input, "description"),
        credentials_arn: owned(input, "credentialsArn"),
    }
}

fn route_settings(value: &Value) -> RouteSettings {
    RouteSettings {
        data_trace_enabled: boolean(value, "dataTraceEnabled"),
        detailed_metrics_enabled: boolean(value, "detailedMetricsEnabled"),
        logging_level: owned(value, "loggingLevel"),
        throttling_burst_limit: integer(value, "throttlingBurstLimit"),
        throttling_rate_limit: value.get("throttlingRateLimit").and_then(Value::as_f64),
    }
}

fn stage_input(input: &Value) -> StageInput {
    StageInput {
        stage_name: owned(input, "stageName"),
        auto_deploy: boolean(input, "autoDeploy"),
        deployment_id: owned(input, "deploymentId"),
        description: owned(input, "description"),
        stage_variables: string_map(input, "stageVariables"),
        default_route_settings: object(input, "defaultRouteSettings").map(route_settings),
        route_settings: input
            .get("routeSettings")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), route_settings(v)))
                    .collect()
            }),
        tags: string_map(input, "tags").unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------
// Writing outputs.

/// ISO 8601 to the second, as API Gateway writes its dates.
fn date(at: OffsetDateTime) -> Value {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    json!(at
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default())
}

/// Inserts `value` under `name` when there is one.
fn put(object: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(name.to_owned(), value);
    }
}

fn string_map_json(map: &BTreeMap<String, String>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn cors_json(cors: &CorsConfiguration) -> Value {
    let mut out = Map::new();
    put(
        &mut out,
        "allowCredentials",
        cors.allow_credentials.map(|b| json!(b)),
    );
    put(
        &mut out,
        "allowHeaders",
        cors.allow_headers.as_ref().map(|v| json!(v)),
    );
    put(
        &mut out,
        "allowMethods",
        cors.allow_methods.as_ref().map(|v| json!(v)),
    );
    put(
        &mut out,
        "allowOrigins",
        cors.allow_origins.as_ref().map(|v| json!(v)),
    );
    put(
        &mut out,
        "exposeHeaders",
        cors.expose_headers.as_ref().map(|v| json!(v)),
    );
    put(&mut out, "maxAge", cors.max_age.map(|v| json!(v)));
    Value::Object(out)
}

fn api_json(api: &Api, endpoint: String) -> Value {
    let mut out = Map::new();
    out.insert("apiEndpoint".into(), json!(endpoint));
    out.insert("apiId".into(), json!(api.api_id));
    out.insert(
        "apiKeySelectionExpression".into(),
        json!(api.api_key_selection_expression),
    );
    put(
        &mut out,
        "corsConfiguration",
        api.cors.as_ref().map(cors_json),
    );
    out.insert("createdDate".into(), date(api.created));
    put(
        &mut out,
        "description",
        api.description.as_ref().map(|d| json!(d)),
    );
    out.insert(
        "disableExecuteApiEndpoint".into(),
        json!(api.disable_execute_api_endpoint),
    );
    out.insert("ipAddressType".into(), json!(api.ip_address_type));
    out.insert("name".into(), json!(api.name));
    out.insert("protocolType".into(), json!(api.protocol_type));
    out.insert(
        "routeSelectionExpression".into(),
        json!(api.route_selection_expression),
    );
    out.insert("tags".into(), string_map_json(&api.tags));
    put(&mut out, "version", api.version.as_ref().map(|v| json!(v)));
    Value::Object(out)
}

fn route_json(route: &Route) -> Value {
    let mut out = Map::new();
    out.insert("apiGatewayManaged".into(), json!(route.api_gateway_managed));
    out.insert("apiKeyRequired".into(), json!(route.api_key_required));
    out.insert("authorizationType".into(), json!(route.authorization_type));
    put(
        &mut out,
        "operationName",
        route.operation_name.as_ref().map(|n| json!(n)),
    );
    out.insert("routeId".into(), json!(route.route_id));
    out.insert("routeKey".into(), json!(route.route_key));
    put(&mut out, "target", route.target.as_ref().map(|t| json!(t)));
    Value::Object(out)
}

fn integration_json(integration: &Integration) -> Value {
    let mut out = Map::new();
    out.insert(
        "apiGatewayManaged".into(),
        json!(integration.api_gateway_managed),
    );
    out.insert("connectionType".into(), json!(integration.connection_type));
    put(
        &mut out,
        "description",
        integration.description.as_ref().map(|d| json!(d)),
    );
    out.insert("integrationId".into(), json!(integration.integration_id));
    out.insert(
        "integrationMethod".into(),
        json!(integration.integration_method),
    );
    out.insert(
        "integrationType".into(),
        json!(integration.integration_type),
    );
    out.insert("integrationUri".into(), json!(integration.integration_uri));
    out.insert(
        "payloadFormatVersion".into(),
        json!(integration.payload_format_version),
    );
    out.insert("timeoutInMillis".into(), json!(integration.timeout_ms));
    Value::Object(out)
}

fn route_settings_json(settings: &RouteSettings) -> Value {
    let mut out = Map::new();
    put(
        &mut out,
        "dataTraceEnabled",
        settings.data_trace_enabled.map(|b| json!(b)),
    );
    put(
        &mut out,
        "detailedMetricsEnabled",
        settings.detailed_metrics_enabled.map(|b| json!(b)),
    );
    put(
        &mut out,
        "loggingLevel",
        settings.logging_level.as_ref().map(|l| json!(l)),
    );
    put(
        &mut out,
        "throttlingBurstLimit",
        settings.throttling_burst_limit.map(|n| json!(n)),
    );
    put(
        &mut out,
        "throttlingRateLimit",
        settings.throttling_rate_limit.map(|n| json!(n)),
    );
    Value::Object(out)
}

fn stage_json(stage: &Stage) -> Value {
    let mut out = Map::new();
    out.insert("apiGatewayManaged".into(), json!(stage.api_gateway_managed));
    out.insert("autoDeploy".into(), json!(stage.auto_deploy));
    out.insert("createdDate".into(), date(stage.created));
    out.insert(
        "defaultRouteSettings".into(),
        route_settings_json(&stage.default_route_settings.clone().unwrap_or_default()),
    );
    put(
        &mut out,
        "deploymentId",
        stage.deployment_id.as_ref().map(|d| json!(d)),
    );
    put(
        &mut out,
        "description",
        stage.description.as_ref().map(|d| json!(d)),
    );
    out.insert("lastUpdatedDate".into(), date(stage.last_updated));
    out.insert(
        "routeSettings".into(),
        Value::Object(
            stage
                .route_settings
                .iter()
                .map(|(k, v)| (k.clone(), route_settings_json(v)))
                .collect(),
        ),
    );
    out.insert("stageName".into(), json!(stage.stage_name));
    out.insert(
        "stageVariables".into(),
        string_map_json(&stage.stage_variables),
    );
    out.insert("tags".into(), string_map_json(&stage.tags));
    Value::Object(out)
}

fn deployment_json(deployment: &Deployment) -> Value {
    let mut out = Map::new();
    out.insert("autoDeployed".into(), json!(deployment.auto_deployed));
    out.insert("createdDate".into(), date(deployment.created));
    out.insert("deploymentId".into(), json!(deployment.deployment_id));
    out.insert("deploymentStatus".into(), json!("DEPLOYED"));
    put(
        &mut out,
        "description",
        deployment.description.as_ref().map(|d| json!(d)),
    );
    Value::Object(out)
}

fn listed(items: Vec<Value>, next_token: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert("items".into(), Value::Array(items));
    put(&mut out, "nextToken", next_token.map(Value::String));
    Value::Object(out)
}

fn run(
    service: &Apigw,
    account: &str,
    endpoints: &Endpoints,
    operation: Operation,
    input: &Value,
) -> Result<Value, ApigwError> {
    use Operation::*;
    let api_id = string(input, "apiId").unwrap_or_default();
    let api = |api: &Api| api_json(api, endpoints.of(service.region(), &api.api_id));
    let arn = string(input, "resourceArn").unwrap_or_default();
    Ok(match operation {
        CreateApi => api(&service.create_api(account, &api_input(input))?),
        GetApi => api(&service.get_api(account, api_id)?),
        GetApis => {
            let found = service.get_apis(account, &page(input))?;
            listed(found.items.iter().map(api).collect(), found.next_token)
        }
        UpdateApi => api(&service.update_api(account, api_id, &api_input(input))?),
        DeleteApi => {
            service.delete_api(account, api_id)?;
            Value::Null
        }
        DeleteCorsConfiguration => {
            service.delete_cors_configuration(account, api_id)?;
            Value::Null
        }
        CreateRoute => route_json(&service.create_route(account, api_id, &route_input(input))?),
        GetRoute => route_json(&service.get_route(
            account,
            api_id,
            string(input, "routeId").unwrap_or_default(),
        )?),
        GetRoutes => {
            let found = service.get_routes(account, api_id, &page(input))?;
            listed(
                found.items.iter().map(route_json).collect(),
                found.next_token,
            )
        }
        UpdateRoute => route_json(&service.update_route(
            account,
            api_id,
            string(input, "routeId").unwrap_or_default(),
            &route_input(input),
        )?),
        DeleteRoute => {
            service.delete_route(
                account,
                api_id,
                string(input, "routeId").unwrap_or_default(),
            )?;
            Value::Null
        }
        CreateIntegration => integration_json(&service.create_integration(
            account,
            api_id,
            &integration_input(input),
        )?),
        GetIntegration => integration_json(&service.get_integration(
            account,
            api_id,
            string(input, "integrationId").unwrap_or_default(),
        )?),
        GetIntegrations => {
            let found = service.get_integrations(account, api_id, &page(input))?;
            listed(
                found.items.iter().map(integration_json).collect(),
                found.next_token,
            )
        }
        UpdateIntegration => integration_json(&service.update_integration(
            account,
            api_id,
            string(input, "integrationId").unwrap_or_default(),
            &integration_input(input),
        )?),
        DeleteIntegration => {
            service.delete_integration(
                account,
                api_id,
                string(input, "integrationId").unwrap_or_default(),
            )?;
            Value::Null
        }
        CreateStage => stage_json(&service.create_stage(account, api_id, &stage_input(input))?),
        GetStage => stage_json(&service.get_stage(
            account,
            api_id,
            string(input, "stageName").unwrap_or_default(),
        )?),
        GetStages => {
            let found = service.get_stages(account, api_id, &page(input))?;
            listed(
                found.items.iter().map(stage_json).collect(),
                found.next_token,
            )
        }
        UpdateStage => {
            let mut changes = stage_input(input);
            // The label names the stage; it is not a new name.
            let name = changes.stage_name.take().unwrap_or_default();
            stage_json(&service.update_stage(account, api_id, &name, &changes)?)
        }
        DeleteStage => {
            service.delete_stage(
                account,
                api_id,
                string(input, "stageName").unwrap_or_default(),
            )?;
            Value::Null
        }
        CreateDeployment => deployment_json(&service.create_deployment(
            account,
            api_id,
            string(input, "description"),
            string(input, "stageName"),
        )?),
        GetDeployment => deployment_json(&service.get_deployment(
            account,
            api_id,
            string(input, "deploymentId").unwrap_or_default(),
        )?),
        GetDeployments => {
            let found = service.get_deployments(account, api_id, &page(input))?;
            listed(
                found.items.iter().map(deployment_json).collect(),
                found.next_token,
            )
        }
        UpdateDeployment => deployment_json(&service.update_deployment(
            account,
            api_id,
            string(input, "deploymentId").unwrap_or_default(),
            string(input, "description"),
        )?),
        DeleteDeployment => {
            service.delete_deployment(
                account,
                api_id,
                string(input, "deploymentId").unwrap_or_default(),
            )?;
            Value::Null
        }
        TagResource => {
            let tags = string_map(input, "tags").unwrap_or_default();
            service.tag_resource(account, arn, &tags)?;
            json!({})
        }
        UntagResource => {
            service.untag_resource(account, arn, &strings(input, "tagKeys"))?;
            Value::Null
        }
        GetTags => json!({ "tags": string_map_json(&service.get_tags(account, arn)?) }),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const ACCOUNT: &str = "123456789012";
    const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

    fn service() -> (Arc<Apigw>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let service = Apigw::open(
            &dir.path().join("apigw.db"),
            Arc::new(gust_model::SystemClock),
            "us-east-1",
        )
        .unwrap();
        (service, dir)
    }

    fn endpoints() -> Endpoints {
        Endpoints {
            domain: None,
            host: "127.0.0.1:9070".into(),
        }
    }

    fn call(
        service: &Apigw,
        method: &str,
        path: &str,
        query: &str,
        body: Value,
    ) -> Result<(u16, Value), ServiceError> {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        handle(service, ACCOUNT, &endpoints(), method, path, query, &body)
            .expect("an API Gateway path")
    }

    #[test]
    fn routes_only_v2_paths() {
        let (service, _dir) = service();
        assert!(call_raw(&service, "GET", "/2015-03-31/functions").is_none());
        assert!(call_raw(&service, "GET", "/v2/apis/x/models").is_none());
        let error = call(&service, "PUT", "/v2/apis", "", Value::Null).unwrap_err();
        assert_eq!(
            (error.status, error.shape.as_str()),
            (404, "NotFoundException")
        );
    }

    fn call_raw(service: &Apigw, method: &str, path: &str) -> Option<()> {
        handle(service, ACCOUNT, &endpoints(), method, path, "", b"").map(|_| ())
    }

    #[test]
    fn quick_create_and_reads_in_camel_case() {
        let (service, _dir) = service();
        let (status, api) = call(
            &service,
            "POST",
            "/v2/apis",
            "",
            json!({"name": "quick", "protocolType": "HTTP", "target": FUNCTION,
                   "tags": {"team": "web"}}),
        )
        .unwrap();
        assert_eq!(status, 201);
        let id = api["apiId"].as_str().unwrap().to_owned();
        assert_eq!(
            api["apiEndpoint"],
            format!("http://127.0.0.1:9070/execute-api/{id}")
        );
        assert_eq!(
            api["routeSelectionExpression"],
            "${request.method} ${request.path}"
        );
        assert_eq!(
            api["apiKeySelectionExpression"],
            "$request.header.x-api-key"
        );
        assert_eq!(api["protocolType"], "HTTP");
        assert_eq!(api["tags"], json!({"team": "web"}));
        assert_eq!(api["disableExecuteApiEndpoint"], false);
        let created = api["createdDate"].as_str().unwrap();
        assert!(
            created.len() == 20 && created.ends_with('Z') && created.contains('T'),
            "{created}"
        );

        let (_, routes) = call(
            &service,
            "GET",
            &format!("/v2/apis/{id}/routes"),
            "",
            Value::Null,
        )
        .unwrap();
        let route = &routes["items"][0];
        assert_eq!(route["routeKey"], "$default");
        assert_eq!(route["apiGatewayManaged"], true);
        assert_eq!(route["authorizationType"], "NONE");
        let (_, integrations) = call(
            &service,
            "GET",
            &format!("/v2/apis/{id}/integrations"),
            "",
            Value::Null,
        )
        .unwrap();
        let integration = &integrations["items"][0];
        assert_eq!(integration["integrationType"], "AWS_PROXY");
        assert_eq!(integration["payloadFormatVersion"], "2.0");
        assert_eq!(integration["timeoutInMillis"], 30000);
        assert_eq!(integration["integrationUri"], FUNCTION);
        assert_eq!(
            route["target"],
            format!(
                "integrations/{}",
                integration["integrationId"].as_str().unwrap()
            )
        );
        let (_, stage) = call(
            &service,
            "GET",
            &format!("/v2/apis/{id}/stages/%24default"),
            "",
            Value::Null,
        )
        .unwrap();
        assert_eq!(stage["stageName"], "$default");
        assert_eq!(stage["autoDeploy"], true);
        assert_eq!(stage["stageVariables"], json!({}));

        let (status, body) = call(
            &service,
            "DELETE",
            &format!("/v2/apis/{id}"),
            "",
            Value::Null,
        )
        .unwrap();
        assert_eq!((status, body), (204, Value::Null));
        let error = call(&service, "GET", &format!("/v2/apis/{id}"), "", Value::Null).unwrap_err();
        assert_eq!(error.status, 404);
        assert_eq!(
            error_response(&error),
            (
                404,
                "NotFoundException".to_owned(),
                json!({"message": format!("Invalid API identifier specified {ACCOUNT}:{id}")})
            )
        );
    }

    #[test]
    fn checks_inputs_against_the_model() {
        let (service, _dir) = service();
        let error = call(&service, "POST", "/v2/apis", "", json!({"name": "x"})).unwrap_err();
        assert_eq!(error.shape, "BadRequestException");
        assert_eq!(
            error.message,
            "1 validation error detected: Value null at 'protocolType' failed to satisfy constraint: Member must not be null"
        );
        let error = call(
            &service,
            "POST",
            "/v2/apis",
            "",
            json!({"name": "x", "protocolType": "GRPC"}),
        )
        .unwrap_err();
        assert!(error
            .message
            .ends_with("Member must satisfy enum value set: [WEBSOCKET, HTTP]"));
        let error = call(
            &service,
            "POST",
            "/v2/apis",
            "",
            json!({"name": "x", "protocolType": "WEBSOCKET", "routeSelectionExpression": "$request.body.action"}),
        )
        .unwrap_err();
        assert_eq!(error.shape, "BadRequestException");
        assert!(error.message.contains("WEBSOCKET"));
        let error = call(
            &service,
            "POST",
            "/v2/apis",
            "",
            json!({"name": 5, "protocolType": "HTTP"}),
        )
        .unwrap_err();
        assert_eq!(error.shape, "BadRequestException");
        let error = call(&service, "POST", "/v2/apis", "", json!([1])).unwrap_err();
        assert_eq!(error.shape, "BadRequestException");
        let (_, api) = call(
            &service,
            "POST",
            "/v2/apis",
            "",
            json!({"name": "x", "protocolType": "HTTP",
                   "corsConfiguration": {"allowOrigins": ["https://a.example"], "maxAge": 60}}),
        )
        .unwrap();
        assert_eq!(
            api["corsConfiguration"],
            json!({"allowOrigins": ["https://a.example"], "maxAge": 60})
        );
        let id = api["apiId"].as_str().unwrap();
        let error = call(
            &service,
            "POST",
            &format!("/v2/apis/{id}/integrations"),
            "",
            json!({"integrationType": "AWS_PROXY", "integrationUri": FUNCTION,
                   "payloadFormatVersion": "2.0", "timeoutInMillis": 40000}),
        )
        .unwrap_err();
        assert!(error
            .message
            .contains("Member must have value less than or equal to 30000"));
        let error = call(
            &service,
            "POST",
            &format!("/v2/apis/{id}/integrations"),
            "",
            json!({"integrationType": "AWS_PROXY", "integrationUri": FUNCTION,
                   "payloadFormatVersion": "2.0", "requestParameters": {"overwrite:path": "/x"}}),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "requestParameters is not supported by Gust: Gust does no parameter mapping"
        );
        let error = call(
            &service,
            "POST",
            &format!("/v2/apis/{id}/stages"),
            "",
            json!({"stageName": "prod", "routeSettings": {"GET /x": {"loggingLevel": "LOUD"}}}),
        )
        .unwrap_err();
        assert!(
            error.message.starts_with("routeSettings[GET /x]:"),
            "{}",
            error.message
        );
        let error = call(
            &service,
            "POST",
            &format!("/v2/apis/{id}/stages"),
            "",
            json!({"stageName": "prod", "accessLogSettings": {"destinationArn": "arn", "format": "$context.requestId"}}),
        )
        .unwrap_err();
        assert!(error
            .message
            .starts_with("accessLogSettings is not supported"));
        let error = call(&service, "GET", "/v2/apis", "maxResults=abc", Value::Null).unwrap_err();
        assert_eq!(error.shape, "BadRequestException");
    }

    #[test]
    fn routes_stages_deployments_and_tags() {
        let (service, _dir) = service();
        let (_, api) = call(
            &service,
            "POST",
            "/v2/apis",
            "",
            json!({"name": "shop", "protocolType": "HTTP"}),
        )
        .unwrap();
        let id = api["apiId"].as_str().unwrap().to_owned();
        let base = format!("/v2/apis/{id}");
        let (status, integration) = call(
            &service,
            "POST",
            &format!("{base}/integrations"),
            "",
            json!({"integrationType": "AWS_PROXY", "integrationUri": FUNCTION,
                   "payloadFormatVersion": "1.0", "description": "echo"}),
        )
        .unwrap();
        assert_eq!(status, 201);
        let integration_id = integration["integrationId"].as_str().unwrap();
        let (_, route) = call(
            &service,
            "POST",
            &format!("{base}/routes"),
            "",
            json!({"routeKey": "GET /items/{id}", "target": format!("integrations/{integration_id}")}),
        )
        .unwrap();
        let route_id = route["routeId"].as_str().unwrap();
        let error = call(
            &service,
            "POST",
            &format!("{base}/routes"),
            "",
            json!({"routeKey": "GET /items/{id}"}),
        )
        .unwrap_err();
        assert_eq!(
            (error.status, error.shape.as_str()),
            (409, "ConflictException")
        );
        let (status, updated) = call(
            &service,
            "PATCH",
            &format!("{base}/routes/{route_id}"),
            "",
            json!({"authorizationType": "AWS_IAM"}),
        )
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(updated["authorizationType"], "AWS_IAM");

        let (_, stage) = call(
            &service,
            "POST",
            &format!("{base}/stages"),
            "",
            json!({"stageName": "prod", "stageVariables": {"alias": "live"},
                   "routeSettings": {"GET /items/{id}": {"throttlingBurstLimit": 5}}}),
        )
        .unwrap();
        assert_eq!(stage["autoDeploy"], false);
        assert_eq!(
            stage["routeSettings"],
            json!({"GET /items/{id}": {"throttlingBurstLimit": 5}})
        );
        let (status, deployment) = call(
            &service,
            "POST",
            &format!("{base}/deployments"),
            "",
            json!({"stageName": "prod", "description": "v1"}),
        )
        .unwrap();
        assert_eq!(status, 201);
        assert_eq!(deployment["deploymentStatus"], "DEPLOYED");
        assert_eq!(deployment["autoDeployed"], false);
        let deployment_id = deployment["deploymentId"].as_str().unwrap();
        let (_, stage) = call(
            &service,
            "GET",
            &format!("{base}/stages/prod"),
            "",
            Value::Null,
        )
        .unwrap();
        assert_eq!(stage["deploymentId"], deployment_id);
        let resolved = service.resolve(&id, "GET", "/prod/items/42").unwrap();
        assert_eq!(resolved.path_parameters["id"], "42");
        assert_eq!(resolved.authorization_type, "AWS_IAM");

        let (_, listed) = call(
            &service,
            "GET",
            &format!("{base}/deployments"),
            "maxResults=1",
            Value::Null,
        )
        .unwrap();
        assert_eq!(listed["items"].as_array().unwrap().len(), 1);
        assert!(listed.get("nextToken").is_none());

        // Tags: the API's ARN, its `/` encoded or not.
        let arn = format!("arn:aws:apigateway:us-east-1::/apis/{id}");
        let encoded =
            percent_encoding::utf8_percent_encode(&arn, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let (status, body) = call(
            &service,
            "POST",
            &format!("/v2/tags/{encoded}"),
            "",
            json!({"tags": {"env": "prod", "team": "web"}}),
        )
        .unwrap();
        assert_eq!((status, body), (201, json!({})));
        let (status, _) = call(
            &service,
            "DELETE",
            &format!("/v2/tags/{arn}"),
            "tagKeys=team",
            Value::Null,
        )
        .unwrap();
        assert_eq!(status, 204);
        let (_, tags) = call(
            &service,
            "GET",
            &format!("/v2/tags/{encoded}"),
            "",
            Value::Null,
        )
        .unwrap();
        assert_eq!(tags, json!({"tags": {"env": "prod"}}));

        let (status, _) =
            call(&service, "DELETE", &format!("{base}/cors"), "", Value::Null).unwrap();
        assert_eq!(status, 204);
        let error = call(
            &service,
            "DELETE",
            &format!("{base}/integrations/{integration_id}"),
            "",
            Value::Null,
        )
        .unwrap_err();
        assert_eq!(error.shape, "ConflictException");
    }
}

//! Route keys, and how a request finds its stage and route: the lookup the HTTP data plane
//! makes for every request, from tables compiled when the API changes (no store access,
//! no lock held while matching).
//!
//! Stage selection, as API Gateway's: when the path's first segment names a stage of the
//! API other than `$default`, that stage serves the rest of the path; otherwise the
//! `$default` stage serves the whole path; with neither, nothing serves.
//!
//! Route selection, as API Gateway documents for HTTP APIs ("Routing API requests"):
//!
//! 1. A full match of a route's path and method. Among the paths that match, the one
//!    with a literal segment where another has a `{variable}`, at the first position
//!    where they differ, is more specific.
//! 2. A route ending in a greedy variable (`{proxy+}`, which takes one or more
//!    segments): the longest literal-and-variable prefix first, then as in 1.
//! 3. The `$default` route.
//!
//! At each level a route naming the request's method goes before an `ANY` route of the
//! same path. The most specific route is the answer even if it has no integration (it
//! then serves nothing: API Gateway answers 404).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::ApigwError;
use crate::model::{
    Api, CorsConfiguration, Deployment, Integration, Route, Stage, AWS_PROXY, DEFAULT,
};

/// The methods a route key may name.
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

/// A path segment of a route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Matches itself (case-sensitively, against the decoded request segment).
    Literal(String),
    /// `{name}`: matches any one non-empty segment.
    Var(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteKey {
    /// `$default`.
    Default,
    /// `METHOD /path`.
    Http {
        /// The method; `None` for `ANY`.
        method: Option<String>,
        /// The segments before a greedy variable.
        segments: Vec<Segment>,
        /// The greedy variable's name (`proxy` of `{proxy+}`), when the path ends in one.
        greedy: Option<String>,
    },
}

fn bad_key(key: &str, reason: &str) -> ApigwError {
    ApigwError::bad_request(format!("Invalid route key {key}: {reason}"))
}

fn variable_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl RouteKey {
    /// Parses and checks a route key: `$default`, or an HTTP method (`GET`, `POST`, `PUT`,
    /// `PATCH`, `DELETE`, `HEAD`, `OPTIONS` or `ANY`), one space and a path of literal
    /// segments and `{variables}`, optionally ending in a greedy `{variable+}`.
    pub(crate) fn parse(key: &str) -> Result<Self, ApigwError> {
        if key == DEFAULT {
            return Ok(RouteKey::Default);
        }
        let (method, path) = key.split_once(' ').ok_or_else(|| {
            bad_key(
                key,
                "a route key is $default or an HTTP method followed by a space and a path",
            )
        })?;
        if !METHODS.contains(&method) {
            return Err(bad_key(
                key,
                "the method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY",
            ));
        }
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| bad_key(key, "the path must start with /"))?;
        let mut segments = Vec::new();
        let mut greedy = None;
        let mut names: Vec<&str> = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (index, part) in parts.iter().enumerate() {
                if part.is_empty() {
                    return Err(bad_key(
                        key,
                        "the path must not have empty segments nor end with /",
                    ));
                }
                if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    let (name, is_greedy) = match inner.strip_suffix('+') {
                        Some(name) => (name, true),
                        None => (inner, false),
                    };
                    if !variable_name_ok(name) {
                        return Err(bad_key(
                            key,
                            "a path variable's name is made of letters, digits, _, - and .",
                        ));
                    }
                    if names.contains(&name) {
                        return Err(bad_key(key, "a path variable's name must be unique"));
                    }
                    names.push(name);
                    if is_greedy {
                        if index + 1 != parts.len() {
                            return Err(bad_key(
                                key,
                                "a greedy path variable must be the last segment of the path",
                            ));
                        }
                        greedy = Some(name.to_owned());
                    } else {
                        segments.push(Segment::Var(name.to_owned()));
                    }
                } else if part.chars().any(|c| {
                    matches!(c, '{' | '}' | '?' | '#') || c.is_whitespace() || c.is_control()
                }) {
                    return Err(bad_key(
                        key,
                        "a path segment is a literal (without {, }, ?, # or spaces) or a whole {variable}",
                    ));
                } else {
                    segments.push(Segment::Literal((*part).to_owned()));
                }
            }
        }
        Ok(RouteKey::Http {
            method: (method != "ANY").then(|| method.to_owned()),
            segments,
            greedy,
        })
    }

    /// What no two routes of an API may share: the method and the path with its variables'
    /// names left out (`GET /pets/{id}` and `GET /pets/{name}` would match the same
    /// requests, and neither would be more specific).
    pub(crate) fn shape(&self) -> String {
        match self {
            RouteKey::Default => DEFAULT.to_owned(),
            RouteKey::Http {
                method,
                segments,
                greedy,
            } => {
                let mut out = method.clone().unwrap_or_else(|| "ANY".to_owned());
                out.push(' ');
                for segment in segments {
                    out.push('/');
                    match segment {
                        Segment::Literal(text) => out.push_str(text),
                        Segment::Var(_) => out.push_str("{}"),
                    }
                }
                if greedy.is_some() {
                    out.push_str("/{+}");
                }
                if segments.is_empty() && greedy.is_none() {
                    out.push('/');
                }
                out
            }
        }
    }
}

/// The integration a request goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedIntegration {
    /// `IntegrationId`.
    pub integration_id: String,
    /// The Lambda function ARN (qualified when the URI is), extracted from either URI
    /// form.
    pub function_arn: String,
    /// `1.0` or `2.0`.
    pub payload_format_version: String,
    /// `TimeoutInMillis`.
    pub timeout_ms: u32,
}

/// What serves a request: the answer of [`crate::Apigw::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The API's account.
    pub account: String,
    /// The API.
    pub api_id: String,
    /// `$default` or the stage's name.
    pub stage: String,
    /// The path as the function sees it, as sent (not decoded): the stage's segment
    /// removed for a named stage.
    pub path: String,
    /// `GET /items/{id}`, or `$default`.
    pub route_key: String,
    /// The route's id.
    pub route_id: String,
    /// Path variables, decoded; a greedy variable holds the rest of the path (`a/b`).
    pub path_parameters: BTreeMap<String, String>,
    /// The stage's variables.
    pub stage_variables: BTreeMap<String, String>,
    /// Where the request goes.
    pub integration: ResolvedIntegration,
    /// The API's CORS configuration.
    pub cors: Option<CorsConfiguration>,
    /// `NONE` or `AWS_IAM`.
    pub authorization_type: String,
    /// `arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD or *}/{route path
    /// without its leading /}`, or `…/{stage}/$default` for the `$default` route: the
    /// source ARN a function's policy is checked against.
    pub source_arn: String,
}

/// What the data plane needs of an API before (or besides) a route: its account, CORS
/// (API Gateway answers preflight requests itself) and whether its endpoint is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The API's account.
    pub account: String,
    /// The API.
    pub api_id: String,
    /// `CorsConfiguration`.
    pub cors: Option<CorsConfiguration>,
    /// `DisableExecuteApiEndpoint`: the endpoint answers 403 `{"message":"Forbidden"}`.
    pub disable_execute_api_endpoint: bool,
}

/// A route ready to match.
#[derive(Debug)]
struct Compiled {
    route_id: String,
    route_key: String,
    /// `None` for `ANY`.
    method: Option<String>,
    segments: Vec<Segment>,
    greedy: Option<String>,
    integration: Option<ResolvedIntegration>,
    authorization_type: String,
    /// The part of the source ARN after the stage.
    arn_suffix: String,
}

impl Compiled {
    fn new(route: &Route, integrations: &HashMap<&str, &Integration>) -> Option<Self> {
        let (method, segments, greedy) = match RouteKey::parse(&route.route_key).ok()? {
            RouteKey::Default => (None, Vec::new(), None),
            RouteKey::Http {
                method,
                segments,
                greedy,
            } => (method, segments, greedy),
        };
        let arn_suffix = match route.route_key.split_once(' ') {
            Some((m, path)) => {
                let m = if m == "ANY" { "*" } else { m };
                format!("{m}/{}", path.strip_prefix('/').unwrap_or(path))
            }
            None => DEFAULT.to_owned(),
        };
        let integration = route
            .integration_id()
            .and_then(|id| integrations.get(id))
            .filter(|i| i.integration_type == AWS_PROXY)
            .and_then(|i| {
                Some(ResolvedIntegration {
                    integration_id: i.integration_id.clone(),
                    function_arn: crate::model::function_arn_of(&i.integration_uri)?,
                    payload_format_version: i.payload_format_version.clone(),
                    timeout_ms: i.timeout_ms,
                })
            });
        Some(Compiled {
            route_id: route.route_id.clone(),
            route_key: route.route_key.clone(),
            method,
            segments,
            greedy,
            integration,
            authorization_type: route.authorization_type.clone(),
            arn_suffix,
        })
    }

    /// The order of [`RouteTable::routes`]: full matches before greedy ones, longer
    /// prefixes (for greedy ones) first, a literal before a variable at the first position
    /// they differ, a method before `ANY`.
    fn precedence(&self) -> (bool, Reverse<usize>, Vec<bool>, bool) {
        (
            self.greedy.is_some(),
            Reverse(self.segments.len()),
            self.segments
                .iter()
                .map(|s| matches!(s, Segment::Var(_)))
                .collect(),
            self.method.is_none(),
        )
    }

    /// The path parameters when this route matches the request.
    fn matches(
        &self,
        method: &str,
        raw: &[&str],
        decoded: &[String],
    ) -> Option<BTreeMap<String, String>> {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return None;
        }
        let n = self.segments.len();
        let fits = match self.greedy {
            None => raw.len() == n,
            Some(_) => raw.len() > n,
        };
        if !fits {
            return None;
        }
        let mut parameters = BTreeMap::new();
        for (segment, value) in self.segments.iter().zip(decoded) {
            match segment {
                Segment::Literal(text) if text == value => {}
                Segment::Var(name) if !value.is_empty() => {
                    parameters.insert(name.clone(), value.clone());
                }
                _ => return None,
            }
        }
        if let Some(name) = &self.greedy {
            let rest = raw[n..].join("/");
            if rest.is_empty() {
                return None;
            }
            parameters.insert(name.clone(), gust_model::http::percent_decode(&rest));
        }
        Some(parameters)
    }
}

/// The routes a stage serves, in the order they are tried.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Compiled>,
    default: Option<Compiled>,
}

impl RouteTable {
    pub(crate) fn compile<'a>(
        routes: impl IntoIterator<Item = &'a Route>,
        integrations: impl IntoIterator<Item = &'a Integration>,
    ) -> Self {
        let integrations: HashMap<&str, &Integration> = integrations
            .into_iter()
            .map(|i| (i.integration_id.as_str(), i))
            .collect();
        let mut table = RouteTable::default();
        for route in routes {
            let Some(compiled) = Compiled::new(route, &integrations) else {
                continue;
            };
            if route.route_key == DEFAULT {
                table.default = Some(compiled);
            } else {
                table.routes.push(compiled);
            }
        }
        table.routes.sort_by(|a, b| {
            a.precedence()
                .cmp(&b.precedence())
                .then_with(|| a.route_key.cmp(&b.route_key))
        });
        table
    }

    /// The most specific route for the request, with its path parameters.
    fn find(&self, method: &str, path: &str) -> Option<(&Compiled, BTreeMap<String, String>)> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let raw: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let decoded: Vec<String> = raw
            .iter()
            .map(|s| gust_model::http::percent_decode(s))
            .collect();
        self.routes
            .iter()
            .find_map(|route| {
                route
                    .matches(method, &raw, &decoded)
                    .map(|params| (route, params))
            })
            .or_else(|| self.default.as_ref().map(|d| (d, BTreeMap::new())))
    }
}

/// A stage as it serves.
#[derive(Debug)]
struct ServedStage {
    variables: BTreeMap<String, String>,
    /// `None`: a stage without `AutoDeploy` that no deployment was made for.
    table: Option<Arc<RouteTable>>,
}

/// An API as it serves: rebuilt whenever it changes, read by every request.
#[derive(Debug)]
pub(crate) struct ServedApi {
    region: String,
    serving: Serving,
    stages: HashMap<String, ServedStage>,
}

impl ServedApi {
    pub(crate) fn build(
        region: &str,
        api: &Api,
        routes: &BTreeMap<String, Route>,
        integrations: &BTreeMap<String, Integration>,
        stages: &BTreeMap<String, Stage>,
        deployments: &BTreeMap<String, Deployment>,
    ) -> Self {
        let current = Arc::new(RouteTable::compile(routes.values(), integrations.values()));
        let mut snapshots: HashMap<&str, Arc<RouteTable>> = HashMap::new();
        let mut served = HashMap::new();
        for stage in stages.values() {
            let table = if stage.auto_deploy {
                Some(Arc::clone(&current))
            } else {
                stage
                    .deployment_id
                    .as_deref()
                    .and_then(|id| deployments.get(id))
                    .map(|deployment| {
                        Arc::clone(
                            snapshots
                                .entry(deployment.deployment_id.as_str())
                                .or_insert_with(|| {
                                    Arc::new(RouteTable::compile(
                                        &deployment.routes,
                                        &deployment.integrations,
                                    ))
                                }),
                        )
                    })
            };
            served.insert(
                stage.stage_name.clone(),
                ServedStage {
                    variables: stage.stage_variables.clone(),
                    table,
                },
            );
        }
        ServedApi {
            region: region.to_owned(),
            serving: Serving {
                account: api.account.clone(),
                api_id: api.api_id.clone(),
                cors: api.cors.clone(),
                disable_execute_api_endpoint: api.disable_execute_api_endpoint,
            },
            stages: served,
        }
    }

    pub(crate) fn serving(&self) -> &Serving {
        &self.serving
    }

    pub(crate) fn resolve(&self, method: &str, path: &str) -> Option<Resolved> {
        if self.serving.disable_execute_api_endpoint {
            return None;
        }
        let path = if path.is_empty() { "/" } else { path };
        let after_slash = path.strip_prefix('/').unwrap_or(path);
        let first = after_slash.split('/').next().unwrap_or_default();
        let named = (!first.is_empty() && first != DEFAULT)
            .then(|| self.stages.get_key_value(first))
            .flatten();
        let (stage_name, stage, path) = match named {
            Some((name, stage)) => {
                let rest = &after_slash[first.len()..];
                (
                    name.as_str(),
                    stage,
                    if rest.is_empty() { "/" } else { rest },
                )
            }
            None => {
                let (name, stage) = self.stages.get_key_value(DEFAULT)?;
                (name.as_str(), stage, path)
            }
        };
        let table = stage.table.as_ref()?;
        let (route, path_parameters) = table.find(method, path)?;
        let integration = route.integration.clone()?;
        Some(Resolved {
            account: self.serving.account.clone(),
            api_id: self.serving.api_id.clone(),
            stage: stage_name.to_owned(),
            path: path.to_owned(),
            route_key: route.route_key.clone(),
            route_id: route.route_id.clone(),
            path_parameters,
            stage_variables: stage.variables.clone(),
            integration,
            cors: self.serving.cors.clone(),
            authorization_type: route.authorization_type.clone(),
            source_arn: format!(
                "arn:aws:execute-api:{}:{}:{}/{stage_name}/{}",
                self.region, self.serving.account, self.serving.api_id, route.arn_suffix
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys() {
        assert_eq!(RouteKey::parse("$default").unwrap(), RouteKey::Default);
        assert_eq!(
            RouteKey::parse("GET /").unwrap(),
            RouteKey::Http {
                method: Some("GET".into()),
                segments: vec![],
                greedy: None
            }
        );
        assert_eq!(
            RouteKey::parse("ANY /pets/{id}/{proxy+}").unwrap(),
            RouteKey::Http {
                method: None,
                segments: vec![Segment::Literal("pets".into()), Segment::Var("id".into())],
                greedy: Some("proxy".into())
            }
        );
        for bad in [
            "",
            "GET",
            "GET pets",
            "get /pets",
            "FETCH /pets",
            "GET  /pets",
            "GET /pets/",
            "GET /pets//x",
            "GET /{proxy+}/x",
            "GET /pets/{}",
            "GET /pets/{id}/{id}",
            "GET /pe{ts",
            "GET /a b",
            "GET /pets?x=1",
            "$DEFAULT",
        ] {
            let error = RouteKey::parse(bad).unwrap_err();
            assert_eq!(error.shape(), "BadRequestException", "{bad}");
        }
        assert_eq!(
            RouteKey::parse("GET /pets/{id}").unwrap().shape(),
            RouteKey::parse("GET /pets/{name}").unwrap().shape()
        );
        assert_ne!(
            RouteKey::parse("GET /pets/{id}").unwrap().shape(),
            RouteKey::parse("ANY /pets/{id}").unwrap().shape()
        );
        assert_eq!(RouteKey::parse("GET /").unwrap().shape(), "GET /");
    }

    fn route(id: &str, key: &str) -> Route {
        Route {
            route_id: id.into(),
            route_key: key.into(),
            target: Some("integrations/i1".into()),
            authorization_type: "NONE".into(),
            api_key_required: false,
            operation_name: None,
            api_gateway_managed: false,
        }
    }

    fn integration() -> Integration {
        Integration {
            integration_id: "i1".into(),
            integration_type: AWS_PROXY.into(),
            integration_uri: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            integration_method: "POST".into(),
            payload_format_version: "2.0".into(),
            timeout_ms: 30_000,
            connection_type: "INTERNET".into(),
            description: None,
            api_gateway_managed: false,
        }
    }

    fn table(keys: &[&str]) -> RouteTable {
        let routes: Vec<Route> = keys.iter().map(|k| route(k, k)).collect();
        RouteTable::compile(&routes, &[integration()])
    }

    fn pick(table: &RouteTable, method: &str, path: &str) -> Option<String> {
        table.find(method, path).map(|(r, _)| r.route_key.clone())
    }

    #[test]
    fn the_documented_example() {
        let t = table(&[
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ]);
        assert_eq!(pick(&t, "GET", "/pets/dog/1").unwrap(), "GET /pets/dog/1");
        assert_eq!(
            pick(&t, "GET", "/pets/dog/2").unwrap(),
            "GET /pets/dog/{id}"
        );
        assert_eq!(
            pick(&t, "GET", "/pets/cat/1").unwrap(),
            "GET /pets/{proxy+}"
        );
        assert_eq!(pick(&t, "POST", "/test/5").unwrap(), "ANY /{proxy+}");
        // A greedy variable takes one segment or more: `/` is left to `$default`.
        assert_eq!(pick(&t, "GET", "/").unwrap(), "$default");
    }

    #[test]
    fn literals_before_variables_from_the_left() {
        let t = table(&[
            "GET /a/{x}/c",
            "GET /{y}/b/c",
            "GET /{y}/{z}/{w}",
            "GET /a/b/{v}",
        ]);
        assert_eq!(pick(&t, "GET", "/a/b/c").unwrap(), "GET /a/b/{v}");
        assert_eq!(pick(&t, "GET", "/a/q/c").unwrap(), "GET /a/{x}/c");
        assert_eq!(pick(&t, "GET", "/q/b/c").unwrap(), "GET /{y}/b/c");
        assert_eq!(pick(&t, "GET", "/q/r/s").unwrap(), "GET /{y}/{z}/{w}");
        assert_eq!(pick(&t, "GET", "/a/b"), None);
        assert_eq!(pick(&t, "GET", "/a/b/c/d"), None);
    }

    #[test]
    fn methods_before_any_and_full_matches_before_greedy() {
        let t = table(&[
            "ANY /items",
            "GET /items",
            "ANY /items/{id}",
            "GET /{proxy+}",
            "ANY /items/{proxy+}",
            "POST /items/{a}/{proxy+}",
        ]);
        assert_eq!(pick(&t, "GET", "/items").unwrap(), "GET /items");
        assert_eq!(pick(&t, "DELETE", "/items").unwrap(), "ANY /items");
        // A full match with ANY beats a greedy match naming the method.
        assert_eq!(pick(&t, "GET", "/items/7").unwrap(), "ANY /items/{id}");
        // The longest prefix before the greedy variable wins…
        assert_eq!(
            pick(&t, "POST", "/items/7/x/y").unwrap(),
            "POST /items/{a}/{proxy+}"
        );
        assert_eq!(
            pick(&t, "GET", "/items/7/x").unwrap(),
            "ANY /items/{proxy+}"
        );
        assert_eq!(pick(&t, "GET", "/other/x").unwrap(), "GET /{proxy+}");
        // …and nothing matches a method no route has.
        assert_eq!(pick(&t, "PUT", "/other/x"), None);
        // Methods are matched as sent.
        assert_eq!(pick(&t, "get", "/other/x"), None);
    }

    #[test]
    fn greedy_prefix_with_literals() {
        let t = table(&[
            "GET /a/{x}/{proxy+}",
            "GET /a/b/{proxy+}",
            "GET /a/{proxy+}",
        ]);
        assert_eq!(pick(&t, "GET", "/a/b/c").unwrap(), "GET /a/b/{proxy+}");
        assert_eq!(pick(&t, "GET", "/a/z/c").unwrap(), "GET /a/{x}/{proxy+}");
        assert_eq!(pick(&t, "GET", "/a/b").unwrap(), "GET /a/{proxy+}");
        assert_eq!(pick(&t, "GET", "/a"), None);
    }

    #[test]
    fn parameters_are_decoded_and_greedy_takes_the_rest() {
        let t = table(&["GET /items/{id}", "GET /files/{path+}"]);
        let (_, p) = t.find("GET", "/items/a%20b").unwrap();
        assert_eq!(p, BTreeMap::from([("id".into(), "a b".into())]));
        let (_, p) = t.find("GET", "/files/a/b%2Fc/d.txt").unwrap();
        assert_eq!(p, BTreeMap::from([("path".into(), "a/b/c/d.txt".into())]));
        // Literal segments are compared decoded too.
        let t = table(&["GET /café"]);
        assert_eq!(pick(&t, "GET", "/caf%C3%A9").unwrap(), "GET /café");
        // A trailing slash is an empty segment: no literal or variable takes it.
        let t = table(&["GET /items", "GET /items/{id}", "GET /files/{p+}"]);
        assert_eq!(pick(&t, "GET", "/items/"), None);
        assert_eq!(pick(&t, "GET", "/files/"), None);
        let (_, p) = t.find("GET", "/files/a/").unwrap();
        assert_eq!(p["p"], "a/");
    }

    fn api() -> Api {
        Api {
            account: "123456789012".into(),
            api_id: "a1b2c3d4e5".into(),
            name: "shop".into(),
            protocol_type: "HTTP".into(),
            description: None,
            version: None,
            route_selection_expression: crate::model::ROUTE_SELECTION_EXPRESSION.into(),
            api_key_selection_expression: crate::model::API_KEY_SELECTION_EXPRESSION.into(),
            cors: None,
            disable_execute_api_endpoint: false,
            ip_address_type: "ipv4".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            tags: BTreeMap::new(),
        }
    }

    fn stage(name: &str, auto: bool, deployment: Option<&str>) -> Stage {
        Stage {
            stage_name: name.into(),
            auto_deploy: auto,
            deployment_id: deployment.map(str::to_owned),
            description: None,
            stage_variables: BTreeMap::from([("who".to_owned(), name.to_owned())]),
            default_route_settings: None,
            route_settings: BTreeMap::new(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            last_updated: time::OffsetDateTime::UNIX_EPOCH,
            tags: BTreeMap::new(),
            api_gateway_managed: false,
        }
    }

    fn served(stages: &[Stage], routes: &[Route], deployments: &[Deployment]) -> ServedApi {
        let by_id = |routes: &[Route]| {
            routes
                .iter()
                .map(|r| (r.route_id.clone(), r.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        ServedApi::build(
            "us-east-1",
            &api(),
            &by_id(routes),
            &BTreeMap::from([("i1".to_owned(), integration())]),
            &stages
                .iter()
                .map(|s| (s.stage_name.clone(), s.clone()))
                .collect(),
            &deployments
                .iter()
                .map(|d| (d.deployment_id.clone(), d.clone()))
                .collect(),
        )
    }

    #[test]
    fn stages_select_by_first_segment() {
        let routes = [route("r1", "GET /items/{id}"), route("r2", "$default")];
        let api = served(
            &[stage("$default", true, None), stage("prod", true, None)],
            &routes,
            &[],
        );
        let r = api.resolve("GET", "/prod/items/7").unwrap();
        assert_eq!(r.stage, "prod");
        assert_eq!(r.path, "/items/7");
        assert_eq!(r.route_key, "GET /items/{id}");
        assert_eq!(r.path_parameters["id"], "7");
        assert_eq!(r.stage_variables["who"], "prod");
        assert_eq!(
            r.source_arn,
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/items/{id}"
        );
        assert_eq!(
            r.integration.function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
        // Not a stage: the $default stage serves the whole path.
        let r = api.resolve("GET", "/items/7").unwrap();
        assert_eq!(
            (r.stage.as_str(), r.path.as_str()),
            ("$default", "/items/7")
        );
        let r = api.resolve("GET", "/staging/items/7").unwrap();
        assert_eq!(r.stage, "$default");
        assert_eq!(r.route_key, "$default");
        assert_eq!(
            r.source_arn,
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/$default/$default"
        );
        // `$default` is never a path segment naming a stage.
        assert_eq!(
            api.resolve("GET", "/$default/items/7").unwrap().route_key,
            "$default"
        );
        // The stage's own root.
        let r = api.resolve("GET", "/prod").unwrap();
        assert_eq!((r.stage.as_str(), r.path.as_str()), ("prod", "/"));
        assert_eq!(api.resolve("GET", "").unwrap().path, "/");
        // Stage names are matched as sent, case-sensitively.
        assert_eq!(
            api.resolve("GET", "/PROD/items/7").unwrap().stage,
            "$default"
        );
    }

    #[test]
    fn no_default_stage_serves_only_named_stages() {
        let routes = [route("r1", "ANY /{proxy+}")];
        let api = served(&[stage("prod", true, None)], &routes, &[]);
        assert!(api.resolve("GET", "/prod/x").is_some());
        assert!(api.resolve("GET", "/x").is_none());
        let r = api.resolve("POST", "/prod/a/b").unwrap();
        assert_eq!(r.path_parameters["proxy"], "a/b");
        assert_eq!(
            r.source_arn,
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/*/{proxy+}"
        );
    }

    #[test]
    fn stages_without_auto_deploy_serve_their_deployment() {
        let old = Deployment {
            deployment_id: "d1".into(),
            description: None,
            created: time::OffsetDateTime::UNIX_EPOCH,
            auto_deployed: false,
            routes: vec![route("r1", "GET /old")],
            integrations: vec![integration()],
        };
        let routes = [route("r2", "GET /new")];
        let api = served(
            &[
                stage("$default", true, None),
                stage("v1", false, Some("d1")),
                stage("v0", false, None),
            ],
            &routes,
            &[old],
        );
        assert_eq!(api.resolve("GET", "/v1/old").unwrap().route_key, "GET /old");
        assert!(api.resolve("GET", "/v1/new").is_none());
        assert_eq!(api.resolve("GET", "/new").unwrap().route_key, "GET /new");
        assert!(api.resolve("GET", "/old").is_none());
        // A stage never deployed serves nothing.
        assert!(api.resolve("GET", "/v0/new").is_none());
    }

    #[test]
    fn routes_without_integrations_serve_nothing() {
        let mut orphan = route("r1", "GET /items/{id}");
        orphan.target = None;
        let mut dangling = route("r2", "GET /items/special");
        dangling.target = Some("integrations/gone".into());
        let routes = [orphan, dangling, route("r3", "$default")];
        let api = served(&[stage("$default", true, None)], &routes, &[]);
        // The most specific route answers, even when it cannot serve.
        assert!(api.resolve("GET", "/items/7").is_none());
        assert!(api.resolve("GET", "/items/special").is_none());
        assert_eq!(api.resolve("GET", "/other").unwrap().route_key, "$default");
    }

    #[test]
    fn a_disabled_endpoint_serves_nothing() {
        let mut disabled = api();
        disabled.disable_execute_api_endpoint = true;
        let served = ServedApi::build(
            "us-east-1",
            &disabled,
            &BTreeMap::from([("r".to_owned(), route("r", "$default"))]),
            &BTreeMap::from([("i1".to_owned(), integration())]),
            &BTreeMap::from([("$default".to_owned(), stage("$default", true, None))]),
            &BTreeMap::new(),
        );
        assert!(served.resolve("GET", "/").is_none());
        assert!(served.serving().disable_execute_api_endpoint);
    }
}

//! The service's operations end to end over a real SQLite store: quick create, the
//! resources' rules, stages and deployments as the data plane sees them, and state that
//! survives a reopen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::*;

const ACCOUNT: &str = "123456789012";
const OTHER: &str = "210987654321";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

#[derive(Debug)]
struct Fixed(Mutex<OffsetDateTime>);

impl gust_model::Clock for Fixed {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

fn clock() -> Arc<Fixed> {
    Arc::new(Fixed(Mutex::new(
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    )))
}

fn open(dir: &tempfile::TempDir) -> Arc<Apigw> {
    Apigw::open(&dir.path().join("apigw.db"), clock(), "us-east-1").unwrap()
}

fn http_api(name: &str) -> ApiInput {
    ApiInput {
        name: Some(name.into()),
        protocol_type: Some("HTTP".into()),
        ..Default::default()
    }
}

fn lambda(version: &str) -> IntegrationInput {
    IntegrationInput {
        integration_type: Some("AWS_PROXY".into()),
        integration_uri: Some(FUNCTION.into()),
        payload_format_version: Some(version.into()),
        ..Default::default()
    }
}

fn route_to(key: &str, integration: &Integration) -> RouteInput {
    RouteInput {
        route_key: Some(key.into()),
        target: Some(format!("integrations/{}", integration.integration_id)),
        ..Default::default()
    }
}

fn stage(name: &str, auto: bool) -> StageInput {
    StageInput {
        stage_name: Some(name.into()),
        auto_deploy: Some(auto),
        ..Default::default()
    }
}

#[test]
fn quick_create_serves_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir);
    let api = service
        .create_api(
            ACCOUNT,
            &ApiInput {
                target: Some(FUNCTION.into()),
                ..http_api("quick")
            },
        )
        .unwrap();
    assert_eq!(api.api_id.len(), 10);
    assert!(api
        .api_id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(
        api.route_selection_expression,
        "${request.method} ${request.path}"
    );
    assert_eq!(
        api.api_key_selection_expression,
        "$request.header.x-api-key"
    );

    let routes = service
        .get_routes(ACCOUNT, &api.api_id, &Page::default())
        .unwrap();
    assert_eq!(routes.items.len(), 1);
    let route = &routes.items[0];
    assert_eq!(route.route_key, "$default");
    assert!(route.api_gateway_managed);
    let integrations = service
        .get_integrations(ACCOUNT, &api.api_id, &Page::default())
        .unwrap()
        .items;
    assert_eq!(integrations.len(), 1);
    let integration = &integrations[0];
    assert_eq!(integration.integration_type, "AWS_PROXY");
    assert_eq!(integration.payload_format_version, "2.0");
    assert_eq!(integration.timeout_ms, 30_000);
    assert_eq!(
        route.target.as_deref(),
        Some(&*format!("integrations/{}", integration.integration_id))
    );
    let default_stage = service.get_stage(ACCOUNT, &api.api_id, "$default").unwrap();
    assert!(default_stage.auto_deploy);
    assert!(default_stage.api_gateway_managed);

    let resolved = service.resolve(&api.api_id, "POST", "/any/path").unwrap();
    assert_eq!(resolved.account, ACCOUNT);
    assert_eq!(resolved.stage, "$default");
    assert_eq!(resolved.route_key, "$default");
    assert_eq!(resolved.path, "/any/path");
    assert_eq!(resolved.integration.function_arn, FUNCTION);
    assert_eq!(resolved.integration.payload_format_version, "2.0");
    assert_eq!(
        resolved.source_arn,
        format!(
            "arn:aws:execute-api:us-east-1:{ACCOUNT}:{}/$default/$default",
            api.api_id
        )
    );

    // Quick create with a route key.
    let keyed = service
        .create_api(
            ACCOUNT,
            &ApiInput {
                target: Some(FUNCTION.into()),
                route_key: Some("GET /hello".into()),
                ..http_api("keyed")
            },
        )
        .unwrap();
    assert_eq!(
        service
            .resolve(&keyed.api_id, "GET", "/hello")
            .unwrap()
            .route_key,
        "GET /hello"
    );
    assert!(service.resolve(&keyed.api_id, "GET", "/other").is_none());
    // The managed route's key can't change, nor the managed integration be deleted.
    let managed = &service
        .get_routes(ACCOUNT, &keyed.api_id, &Page::default())
        .unwrap()
        .items[0];
    let error = service
        .update_route(
            ACCOUNT,
            &keyed.api_id,
            &managed.route_id,
            &RouteInput {
                route_key: Some("GET /bye".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    service
        .delete_route(ACCOUNT, &keyed.api_id, &managed.route_id)
        .unwrap();
    let integration_id = managed.integration_id().unwrap();
    let error = service
        .delete_integration(ACCOUNT, &keyed.api_id, integration_id)
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    // UpdateApi's Target moves the managed integration.
    let other = "arn:aws:lambda:us-east-1:123456789012:function:other:live";
    service
        .update_api(
            ACCOUNT,
            &api.api_id,
            &ApiInput {
                target: Some(other.into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        service
            .resolve(&api.api_id, "GET", "/")
            .unwrap()
            .integration
            .function_arn,
        other
    );
    // RouteKey without Target is no quick create.
    let error = service
        .create_api(
            ACCOUNT,
            &ApiInput {
                route_key: Some("GET /x".into()),
                ..http_api("x")
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
}

#[test]
fn apis_are_per_account_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir);
    let mut ids: Vec<String> = (0..5)
        .map(|i| {
            service
                .create_api(ACCOUNT, &http_api(&format!("api{i}")))
                .unwrap()
                .api_id
        })
        .collect();
    ids.sort();
    let other = service.create_api(OTHER, &http_api("theirs")).unwrap();
    let error = service.get_api(ACCOUNT, &other.api_id).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "Invalid API identifier specified {ACCOUNT}:{}",
            other.api_id
        )
    );
    assert_eq!(error.status(), 404);
    // Another account's API resolves all the same (the data plane serves any account).
    assert!(service.serving(&other.api_id).is_some());

    let first = service
        .get_apis(
            ACCOUNT,
            &Page {
                max_results: Some("2".into()),
                next_token: None,
            },
        )
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let mut seen: Vec<String> = first.items.iter().map(|a| a.api_id.clone()).collect();
    let mut token = first.next_token;
    while let Some(t) = token {
        let page = service
            .get_apis(
                ACCOUNT,
                &Page {
                    max_results: Some("2".into()),
                    next_token: Some(t),
                },
            )
            .unwrap();
        seen.extend(page.items.iter().map(|a| a.api_id.clone()));
        token = page.next_token;
    }
    assert_eq!(seen, ids);
    for bad in ["0", "501", "x"] {
        let error = service
            .get_apis(
                ACCOUNT,
                &Page {
                    max_results: Some(bad.into()),
                    next_token: None,
                },
            )
            .unwrap_err();
        assert_eq!(error.shape(), "BadRequestException");
    }
    let error = service
        .get_apis(
            ACCOUNT,
            &Page {
                max_results: None,
                next_token: Some("zz".into()),
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");

    // Update and delete.
    let updated = service
        .update_api(
            ACCOUNT,
            &ids[0],
            &ApiInput {
                name: Some("renamed".into()),
                description: Some("d".into()),
                cors: Some(CorsConfiguration {
                    allow_origins: Some(vec!["https://example.com".into()]),
                    max_age: Some(300),
                    ..Default::default()
                }),
                disable_execute_api_endpoint: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(updated.name, "renamed");
    let serving = service.serving(&ids[0]).unwrap();
    assert!(serving.disable_execute_api_endpoint);
    assert_eq!(serving.cors.unwrap().max_age, Some(300));
    service.delete_cors_configuration(ACCOUNT, &ids[0]).unwrap();
    assert_eq!(service.get_api(ACCOUNT, &ids[0]).unwrap().cors, None);
    service.delete_api(ACCOUNT, &ids[0]).unwrap();
    assert!(service.get_api(ACCOUNT, &ids[0]).is_err());
    assert!(service.serving(&ids[0]).is_none());
    assert!(service.delete_api(ACCOUNT, &ids[0]).is_err());
}

#[test]
fn routes_and_integrations_follow_api_gateways_rules() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir);
    let api = service
        .create_api(ACCOUNT, &http_api("shop"))
        .unwrap()
        .api_id;
    let integration = service
        .create_integration(ACCOUNT, &api, &lambda("1.0"))
        .unwrap();
    assert_eq!(integration.integration_id.len(), 7);
    let route = service
        .create_route(ACCOUNT, &api, &route_to("GET /items/{id}", &integration))
        .unwrap();
    assert_eq!(route.authorization_type, "NONE");

    // Duplicates and routes matching the same requests conflict.
    for key in ["GET /items/{id}", "GET /items/{name}"] {
        let error = service
            .create_route(ACCOUNT, &api, &route_to(key, &integration))
            .unwrap_err();
        assert_eq!(
            (error.status(), error.shape()),
            (409, "ConflictException"),
            "{key}"
        );
    }
    assert!(service
        .create_route(ACCOUNT, &api, &route_to("ANY /items/{id}", &integration))
        .is_ok());
    // A target must name an existing integration.
    let error = service
        .create_route(
            ACCOUNT,
            &api,
            &RouteInput {
                route_key: Some("GET /x".into()),
                target: Some("integrations/nope123".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "NotFoundException");
    let error = service
        .create_route(
            ACCOUNT,
            &api,
            &RouteInput {
                route_key: Some("GET /x".into()),
                target: Some(integration.integration_id.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    // Invalid keys, unsupported authorization.
    for key in ["GET /items/", "FETCH /x", "/x"] {
        let error = service
            .create_route(ACCOUNT, &api, &route_to(key, &integration))
            .unwrap_err();
        assert_eq!(error.shape(), "BadRequestException", "{key}");
    }
    for authorization in ["JWT", "CUSTOM", "BASIC"] {
        let error = service
            .create_route(
                ACCOUNT,
                &api,
                &RouteInput {
                    authorization_type: Some(authorization.into()),
                    ..route_to("GET /auth", &integration)
                },
            )
            .unwrap_err();
        assert_eq!(error.shape(), "BadRequestException");
    }
    let iam = service
        .create_route(
            ACCOUNT,
            &api,
            &RouteInput {
                authorization_type: Some("AWS_IAM".into()),
                operation_name: Some("ListThings".into()),
                ..route_to("GET /things", &integration)
            },
        )
        .unwrap();
    assert_eq!(iam.authorization_type, "AWS_IAM");

    // Updates: key (checked against the others), target removal.
    let error = service
        .update_route(
            ACCOUNT,
            &api,
            &iam.route_id,
            &RouteInput {
                route_key: Some("GET /items/{other}".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "ConflictException");
    let moved = service
        .update_route(
            ACCOUNT,
            &api,
            &iam.route_id,
            &RouteInput {
                route_key: Some("GET /stuff".into()),
                target: Some(String::new()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(moved.route_key, "GET /stuff");
    assert_eq!(moved.target, None);
    assert_eq!(moved.authorization_type, "AWS_IAM");
    assert_eq!(moved.operation_name.as_deref(), Some("ListThings"));

    // An integration in use can't be deleted; once unused, it can.
    let error = service
        .delete_integration(ACCOUNT, &api, &integration.integration_id)
        .unwrap_err();
    assert_eq!(error.shape(), "ConflictException");
    let updated = service
        .update_integration(
            ACCOUNT,
            &api,
            &integration.integration_id,
            &IntegrationInput {
                timeout_ms: Some(1_000),
                payload_format_version: Some("2.0".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(updated.timeout_ms, 1_000);
    assert_eq!(updated.integration_uri, FUNCTION);
    let routes = service
        .get_routes(ACCOUNT, &api, &Page::default())
        .unwrap()
        .items;
    for r in &routes {
        service.delete_route(ACCOUNT, &api, &r.route_id).unwrap();
    }
    service
        .delete_integration(ACCOUNT, &api, &integration.integration_id)
        .unwrap();
    let error = service
        .get_integration(ACCOUNT, &api, &integration.integration_id)
        .unwrap_err();
    assert_eq!(error.shape(), "NotFoundException");
    let error = service.get_route(ACCOUNT, &api, &iam.route_id).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Invalid Route identifier specified {}", iam.route_id)
    );
    // Other integration types are refused clearly.
    let error = service
        .create_integration(
            ACCOUNT,
            &api,
            &IntegrationInput {
                integration_type: Some("HTTP_PROXY".into()),
                integration_uri: Some("https://example.com".into()),
                payload_format_version: Some("1.0".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(error.to_string().contains("not supported"));
}

#[test]
fn stages_and_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir);
    let api = service
        .create_api(ACCOUNT, &http_api("shop"))
        .unwrap()
        .api_id;
    // Nothing to deploy yet.
    let error = service
        .create_deployment(ACCOUNT, &api, None, None)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Unable to deploy API because no routes exists in this API"
    );
    let v1 = service
        .create_integration(ACCOUNT, &api, &lambda("1.0"))
        .unwrap();
    let items = service
        .create_route(ACCOUNT, &api, &route_to("GET /items", &v1))
        .unwrap();

    service
        .create_stage(ACCOUNT, &api, &stage("$default", true))
        .unwrap();
    let prod = service
        .create_stage(
            ACCOUNT,
            &api,
            &StageInput {
                stage_variables: Some(BTreeMap::from([("alias".into(), "live".into())])),
                description: Some("production".into()),
                ..stage("prod", false)
            },
        )
        .unwrap();
    assert_eq!(prod.deployment_id, None);
    let error = service
        .create_stage(ACCOUNT, &api, &stage("prod", false))
        .unwrap_err();
    assert_eq!(error.shape(), "ConflictException");
    // prod serves nothing until deployed; $default serves the current routes.
    assert!(service.resolve(&api, "GET", "/prod/items").is_none());
    assert_eq!(
        service.resolve(&api, "GET", "/items").unwrap().stage,
        "$default"
    );

    let deployment = service
        .create_deployment(ACCOUNT, &api, Some("first"), Some("prod"))
        .unwrap();
    assert_eq!(deployment.deployment_id.len(), 6);
    assert_eq!(
        service
            .get_stage(ACCOUNT, &api, "prod")
            .unwrap()
            .deployment_id,
        Some(deployment.deployment_id.clone())
    );
    let served = service.resolve(&api, "GET", "/prod/items").unwrap();
    assert_eq!(served.stage, "prod");
    assert_eq!(served.path, "/items");
    assert_eq!(served.stage_variables["alias"], "live");
    assert_eq!(served.integration.payload_format_version, "1.0");

    // Changes reach $default at once, prod only with its next deployment.
    service
        .update_integration(
            ACCOUNT,
            &api,
            &v1.integration_id,
            &IntegrationInput {
                payload_format_version: Some("2.0".into()),
                ..Default::default()
            },
        )
        .unwrap();
    service
        .create_route(ACCOUNT, &api, &route_to("POST /items", &v1))
        .unwrap();
    assert_eq!(
        service
            .resolve(&api, "GET", "/items")
            .unwrap()
            .integration
            .payload_format_version,
        "2.0"
    );
    assert!(service.resolve(&api, "POST", "/items").is_some());
    assert_eq!(
        service
            .resolve(&api, "GET", "/prod/items")
            .unwrap()
            .integration
            .payload_format_version,
        "1.0"
    );
    assert!(service.resolve(&api, "POST", "/prod/items").is_none());
    // Deleting a route does not change a deployment either.
    service
        .delete_route(ACCOUNT, &api, &items.route_id)
        .unwrap();
    assert!(service.resolve(&api, "GET", "/items").is_none());
    assert!(service.resolve(&api, "GET", "/prod/items").is_some());

    // A deployment a stage serves can't be deleted.
    let error = service
        .delete_deployment(ACCOUNT, &api, &deployment.deployment_id)
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    let second = service
        .create_deployment(ACCOUNT, &api, None, None)
        .unwrap();
    service
        .update_stage(
            ACCOUNT,
            &api,
            "prod",
            &StageInput {
                deployment_id: Some(second.deployment_id.clone()),
                stage_variables: Some(BTreeMap::from([
                    ("alias".into(), String::new()),
                    ("color".into(), "blue".into()),
                ])),
                ..Default::default()
            },
        )
        .unwrap();
    let served = service.resolve(&api, "POST", "/prod/items").unwrap();
    assert_eq!(
        served.stage_variables,
        BTreeMap::from([("color".to_owned(), "blue".to_owned())])
    );
    assert!(service.resolve(&api, "GET", "/prod/items").is_none());
    service
        .delete_deployment(ACCOUNT, &api, &deployment.deployment_id)
        .unwrap();
    assert_eq!(
        service
            .get_deployments(ACCOUNT, &api, &Page::default())
            .unwrap()
            .items
            .len(),
        1
    );
    let error = service
        .get_deployment(ACCOUNT, &api, &deployment.deployment_id)
        .unwrap_err();
    assert_eq!(error.shape(), "NotFoundException");

    // An auto-deploying stage takes no deployment…
    let error = service
        .create_deployment(ACCOUNT, &api, None, Some("$default"))
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    let error = service
        .update_stage(
            ACCOUNT,
            &api,
            "$default",
            &StageInput {
                deployment_id: Some(second.deployment_id.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    // …and when it stops auto-deploying, it keeps serving the routes as they were.
    let stopped = service
        .update_stage(
            ACCOUNT,
            &api,
            "$default",
            &StageInput {
                auto_deploy: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    let last = stopped.deployment_id.clone().unwrap();
    assert!(
        service
            .get_deployment(ACCOUNT, &api, &last)
            .unwrap()
            .auto_deployed
    );
    service
        .create_route(ACCOUNT, &api, &route_to("GET /later", &v1))
        .unwrap();
    assert!(service.resolve(&api, "POST", "/items").is_some());
    assert!(service.resolve(&api, "GET", "/later").is_none());

    // Route settings name existing routes.
    let error = service
        .update_stage(
            ACCOUNT,
            &api,
            "prod",
            &StageInput {
                route_settings: Some(BTreeMap::from([(
                    "GET /nope".into(),
                    RouteSettings::default(),
                )])),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Unable to find Route by key GET /nope within the provided RouteSettings"
    );
    let settled = service
        .update_stage(
            ACCOUNT,
            &api,
            "prod",
            &StageInput {
                route_settings: Some(BTreeMap::from([(
                    "POST /items".into(),
                    RouteSettings {
                        throttling_burst_limit: Some(10),
                        ..Default::default()
                    },
                )])),
                default_route_settings: Some(RouteSettings {
                    detailed_metrics_enabled: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        settled.route_settings["POST /items"].throttling_burst_limit,
        Some(10)
    );
    // Stage names and variables are checked.
    assert!(service
        .create_stage(ACCOUNT, &api, &stage("bad name", false))
        .is_err());
    let error = service
        .create_stage(
            ACCOUNT,
            &api,
            &StageInput {
                stage_variables: Some(BTreeMap::from([("x".into(), "a b".into())])),
                ..stage("dev", false)
            },
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
    service.delete_stage(ACCOUNT, &api, "prod").unwrap();
    assert!(service.resolve(&api, "POST", "/prod/items").is_none());
    let error = service.get_stage(ACCOUNT, &api, "prod").unwrap_err();
    assert_eq!(error.status(), 404);
}

#[test]
fn tags_of_apis_and_stages() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir);
    let api = service
        .create_api(
            ACCOUNT,
            &ApiInput {
                tags: BTreeMap::from([("team".into(), "web".into())]),
                ..http_api("tagged")
            },
        )
        .unwrap()
        .api_id;
    service
        .create_stage(ACCOUNT, &api, &stage("prod", true))
        .unwrap();
    let api_arn = service.api_arn(&api);
    assert_eq!(
        api_arn,
        format!("arn:aws:apigateway:us-east-1::/apis/{api}")
    );
    service
        .tag_resource(
            ACCOUNT,
            &api_arn,
            &BTreeMap::from([("env".into(), "prod".into())]),
        )
        .unwrap();
    service
        .untag_resource(ACCOUNT, &api_arn, &["team".into(), "absent".into()])
        .unwrap();
    assert_eq!(
        service.get_tags(ACCOUNT, &api_arn).unwrap(),
        BTreeMap::from([("env".to_owned(), "prod".to_owned())])
    );
    assert_eq!(service.get_api(ACCOUNT, &api).unwrap().tags.len(), 1);
    let stage_arn = format!("{api_arn}/stages/prod");
    service
        .tag_resource(
            ACCOUNT,
            &stage_arn,
            &BTreeMap::from([("tier".into(), "1".into())]),
        )
        .unwrap();
    assert_eq!(
        service.get_stage(ACCOUNT, &api, "prod").unwrap().tags["tier"],
        "1"
    );
    for (arn, shape) in [
        (
            "arn:aws:apigateway:us-east-1::/apis/nope",
            "NotFoundException",
        ),
        (&*format!("{api_arn}/stages/nope"), "NotFoundException"),
        ("arn:aws:apigateway:eu-west-1::/apis/x", "NotFoundException"),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "BadRequestException",
        ),
        (
            "arn:aws:apigateway:us-east-1::/restapis/x",
            "BadRequestException",
        ),
    ] {
        assert_eq!(
            service.get_tags(ACCOUNT, arn).unwrap_err().shape(),
            shape,
            "{arn}"
        );
    }
    // Another account's API is not found.
    assert_eq!(
        service.get_tags(OTHER, &api_arn).unwrap_err().shape(),
        "NotFoundException"
    );
    let many: BTreeMap<String, String> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
    assert!(service.tag_resource(ACCOUNT, &api_arn, &many).is_err());
    let error = service
        .tag_resource(
            ACCOUNT,
            &api_arn,
            &BTreeMap::from([("aws:reserved".into(), "x".into())]),
        )
        .unwrap_err();
    assert_eq!(error.shape(), "BadRequestException");
}

#[test]
fn limits_answer_too_many_requests() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir);
    let api = service
        .create_api(ACCOUNT, &http_api("big"))
        .unwrap()
        .api_id;
    for i in 0..10 {
        service
            .create_stage(ACCOUNT, &api, &stage(&format!("s{i}"), true))
            .unwrap();
    }
    let error = service
        .create_stage(ACCOUNT, &api, &stage("s10", true))
        .unwrap_err();
    assert_eq!(
        (error.status(), error.shape()),
        (429, "TooManyRequestsException")
    );
    assert!(matches!(
        error,
        ApigwError::TooManyRequests {
            limit_type: "Stages per API",
            ..
        }
    ));
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (api, deployment) = {
        let service = open(&dir);
        let api = service
            .create_api(
                ACCOUNT,
                &ApiInput {
                    cors: Some(CorsConfiguration {
                        allow_origins: Some(vec!["*".into()]),
                        allow_methods: Some(vec!["GET".into()]),
                        ..Default::default()
                    }),
                    tags: BTreeMap::from([("k".into(), "v".into())]),
                    ..http_api("durable")
                },
            )
            .unwrap();
        let integration = service
            .create_integration(ACCOUNT, &api.api_id, &lambda("1.0"))
            .unwrap();
        service
            .create_route(ACCOUNT, &api.api_id, &route_to("GET /a/{id}", &integration))
            .unwrap();
        service
            .create_stage(ACCOUNT, &api.api_id, &stage("$default", true))
            .unwrap();
        service
            .create_stage(ACCOUNT, &api.api_id, &stage("v1", false))
            .unwrap();
        let deployment = service
            .create_deployment(ACCOUNT, &api.api_id, Some("d"), Some("v1"))
            .unwrap();
        // After the deployment: only $default sees it.
        service
            .create_route(ACCOUNT, &api.api_id, &route_to("GET /b", &integration))
            .unwrap();
        (api, deployment)
    };
    let service = open(&dir);
    assert_eq!(service.get_api(ACCOUNT, &api.api_id).unwrap(), api);
    assert_eq!(
        service
            .get_deployment(ACCOUNT, &api.api_id, &deployment.deployment_id)
            .unwrap(),
        deployment
    );
    assert_eq!(
        service
            .resolve(&api.api_id, "GET", "/a/1")
            .unwrap()
            .path_parameters["id"],
        "1"
    );
    assert!(service.resolve(&api.api_id, "GET", "/b").is_some());
    assert!(service.resolve(&api.api_id, "GET", "/v1/a/1").is_some());
    assert!(service.resolve(&api.api_id, "GET", "/v1/b").is_none());
    assert_eq!(
        service
            .serving(&api.api_id)
            .unwrap()
            .cors
            .unwrap()
            .allow_methods,
        Some(vec!["GET".to_owned()])
    );
    service.delete_api(ACCOUNT, &api.api_id).unwrap();
    drop(service);
    let service = open(&dir);
    assert!(service.get_api(ACCOUNT, &api.api_id).is_err());
    assert!(service.resolve(&api.api_id, "GET", "/a/1").is_none());
}

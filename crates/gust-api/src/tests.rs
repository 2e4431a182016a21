//! In-process tests of the whole edge: routing, SigV4, wire shapes and errors, through the
//! real router with a real store in a temporary directory.

use std::io::Write;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use gust_model::{RuntimeCatalog, RuntimeFamily, Scope};
use gust_store::Store;
use time::OffsetDateTime;
use tower::ServiceExt;

use super::*;

/// A clock tests can move.
#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    router: Router,
    clock: Arc<TestClock>,
}

/// Topics in these tests deliver nowhere.
#[derive(Debug)]
struct NoTargets;

impl gust_sns::Deliverer for NoTargets {
    fn to_sqs(
        &self,
        _: &str,
        _: gust_sns::SqsDelivery,
    ) -> gust_sns::BoxFuture<'_, Result<(), gust_sns::DeliveryError>> {
        Box::pin(async { Err(gust_sns::DeliveryError::permanent("no queues here")) })
    }

    fn to_lambda(
        &self,
        _: &str,
        _: Vec<u8>,
        _: &str,
        _: Option<&str>,
    ) -> gust_sns::BoxFuture<'_, Result<(), gust_sns::DeliveryError>> {
        Box::pin(async { Err(gust_sns::DeliveryError::permanent("no functions here")) })
    }
}

/// Application Auto Scaling in these tests finds no function.
#[derive(Debug)]
struct NoProvisioned;

impl gust_autoscaling::Provisioned for NoProvisioned {
    fn exists(&self, _: &str, _: &str, _: &str) -> Result<bool, String> {
        Ok(false)
    }

    fn requested(&self, _: &str, _: &str, _: &str) -> Result<Option<u32>, String> {
        Ok(None)
    }

    fn set_requested(&self, _: &str, _: &str, _: &str, _: u32) -> Result<(), String> {
        Err("no functions here".to_owned())
    }

    fn utilization(&self, _: &str, _: &str, _: &str) -> Option<f64> {
        None
    }
}

/// Rules and schedules in these tests reach no target.
#[derive(Debug)]
struct NoTargetsAnywhere;

impl gust_model::targets::Deliver for NoTargetsAnywhere {
    fn deliver<'a>(
        &'a self,
        _: gust_model::targets::Delivery<'a>,
    ) -> gust_model::targets::BoxFuture<'a, Result<(), gust_model::targets::DeliveryError>> {
        Box::pin(async {
            Err(gust_model::targets::DeliveryError::Fail(
                "no targets here".into(),
            ))
        })
    }
}

/// Asynchronous events in these tests are accepted and never run.
#[derive(Debug)]
struct NoFunctions;

impl gust_async::Runner for NoFunctions {
    fn settings<'a>(
        &'a self,
        _: &'a gust_async::AsyncEvent,
    ) -> gust_async::BoxFuture<'a, Option<gust_async::EventSettings>> {
        Box::pin(async { None })
    }

    fn run<'a>(
        &'a self,
        _: &'a gust_async::AsyncEvent,
    ) -> gust_async::BoxFuture<'a, gust_async::Attempt> {
        Box::pin(async { gust_async::Attempt::Gone })
    }

    fn deliver<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: String,
        _: gust_async::DeliveryAttributes,
    ) -> gust_async::BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("no destinations here".to_owned()) })
    }
}

fn credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIDTEST".into(),
        secret_access_key: "test-secret".into(),
    }
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(Mutex::new(
        OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
    )));
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let engine = gust_engine::Engine::new(
        gust_engine::EngineConfig {
            scope: Scope::parse("us-east-1", "000000000000").unwrap(),
            idle_timeout: std::time::Duration::from_secs(60),
            concurrency_limit: 10,
            capacity: gust_engine::Capacity::new(4096),
            scaling_rate: gust_engine::ScalingRate::default(),
            logs_dir: dir.path().join("logs"),
            log_sink: None,
            observer: Arc::new(gust_model::observe::NoObserver),
            services: None,
        },
        store.clone(),
        Arc::new(gust_sandbox::ProcessSandbox::default()),
        gust_runtime::RuntimeRegistry::install(
            &dir.path().join("runtime"),
            &std::env::var("PATH").unwrap_or_default(),
        )
        .unwrap(),
    )
    .unwrap();
    let control = Arc::new(ControlPlane::new(
        store,
        Scope::parse("us-east-1", "000000000000").unwrap(),
        RuntimeCatalog::new(vec![RuntimeFamily::Python]),
        clock.clone(),
    ));
    let router = router(
        vec![crate::Plane { control, engine }],
        ApiConfig {
            auth: Auth::SigV4(vec![crate::AccountKey {
                credentials: credentials(),
                account_id: "000000000000".into(),
            }]),
            code_url_key: [9; 32],
            clock: clock.clone(),
            body_timeout: std::time::Duration::from_secs(20),
            upload_dir: dir.path().to_owned(),
            sessions: Arc::new(gust_sts::Issuer::new([3; 32])),
            url_domain: None,
        },
        crate::Services {
            sqs: gust_sqs::Sqs::new(
                Arc::new(gust_sqs::sqlite::SqliteQueues::open(&dir.path().join("sqs.db")).unwrap()),
                clock.clone(),
                "us-east-1",
            ),
            sns: gust_sns::Sns::new(
                Arc::new(gust_sns::SqliteTopics::open(&dir.path().join("sns.db")).unwrap()),
                clock.clone(),
                "us-east-1",
                Arc::new(NoTargets),
                gust_sns::SnsConfig::new("http://127.0.0.1:9070", &dir.path().join("sns.pem")),
            )
            .unwrap(),
            events: gust_async::AsyncInvoker::new(
                Arc::new(
                    gust_sqs::sqlite::SqliteQueues::open(&dir.path().join("async.db")).unwrap(),
                ),
                Arc::new(NoFunctions),
                clock.clone(),
                gust_async::AsyncConfig::default(),
            ),
            autoscaling: gust_autoscaling::Autoscaling::open(
                &dir.path().join("autoscaling.db"),
                clock.clone(),
                "us-east-1",
                Arc::new(NoProvisioned),
            )
            .unwrap(),
            eventbridge: gust_events::Events::open(
                &dir.path().join("events.db"),
                clock.clone(),
                "us-east-1",
                Arc::new(NoTargetsAnywhere),
                gust_events::EventsConfig::default(),
            )
            .unwrap(),
            scheduler: gust_scheduler::Scheduler::open(
                &dir.path().join("scheduler.db"),
                clock.clone(),
                "us-east-1",
                Arc::new(NoTargetsAnywhere),
                gust_scheduler::SchedulerConfig::default(),
            )
            .unwrap(),
            apigw: gust_apigw::Apigw::open(
                &dir.path().join("apigw.db"),
                clock.clone(),
                "us-east-1",
            )
            .unwrap(),
            s3: gust_s3::S3::new(
                Arc::new(
                    gust_s3::LocalStore::open(
                        &dir.path().join("s3.db"),
                        &dir.path().join("s3").join("objects"),
                    )
                    .unwrap(),
                ),
                clock.clone(),
                "us-east-1",
            ),
            s3_destinations: None,
            logs: gust_logs::Logs::open(&dir.path().join("logs.db"), clock.clone(), "us-east-1")
                .unwrap(),
            metrics: gust_metrics::Metrics::open(
                &dir.path().join("metrics.db"),
                clock.clone(),
                "us-east-1",
                std::time::Duration::from_secs(15 * 86_400),
            )
            .unwrap(),
            usage: gust_metrics::usage::Usage::open(&dir.path().join("usage.db"), clock.clone())
                .unwrap(),
            prometheus: Arc::new(gust_metrics::prometheus::Exporter::new()),
        },
    );
    Harness {
        _dir: dir,
        router,
        clock,
    }
}

impl Harness {
    async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
        signed: bool,
    ) -> (u16, axum::http::HeaderMap, Vec<u8>) {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", "127.0.0.1:9070");
        if signed {
            let headers = vec![("host".to_string(), "127.0.0.1:9070".to_string())];
            let parts = sigv4::RequestParts {
                method,
                raw_path: path,
                raw_query: query,
                headers: &headers,
            };
            let (authorization, date) = sigv4::sign(
                &parts,
                &body,
                &credentials(),
                "us-east-1",
                "lambda",
                self.clock.now(),
            );
            builder = builder
                .header("authorization", authorization)
                .header("x-amz-date", date);
        }
        let response = self
            .router
            .clone()
            .oneshot(builder.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, headers, bytes)
    }

    async fn json(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let (status, _, out) = self.send(method, path, bytes, true).await;
        let value = if out.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&out).unwrap()
        };
        (status, value)
    }
}

fn zip_b64() -> String {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("app.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    writer
        .write_all(b"def handler(e, c):\n    return e\n")
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(writer.finish().unwrap().into_inner())
}

fn create_body(name: &str) -> serde_json::Value {
    serde_json::json!({
        "FunctionName": name, "Runtime": "python3.12", "Role": "arn:aws:iam::000000000000:role/r",
        "Handler": "app.handler", "Code": {"ZipFile": zip_b64()}
    })
}

#[tokio::test]
async fn create_get_and_download_code() {
    let h = harness();
    let (status, created) = h
        .json("POST", "/2015-03-31/functions", create_body("f"))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["State"], "Pending");
    assert_eq!(
        created["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:f"
    );
    assert!(created.get("LastUpdateStatus").is_none());

    let (status, got) = h.json("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af?Qualifier=%24LATEST", serde_json::Value::Null).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["Configuration"]["State"], "Active");
    assert_eq!(
        got["Configuration"]["FunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
    );
    assert!(
        got.get("Tags").is_none(),
        "tags only for unqualified requests"
    );

    let location = got["Code"]["Location"].as_str().unwrap().to_owned();
    let path = location.strip_prefix("http://127.0.0.1:9070").unwrap();
    let (status, headers, zip) = h.send("GET", path, Vec::new(), false).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/zip");
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&zip),
        zip_b64()
    );

    let forged = path.replace("Signature=", "Signature=0");
    assert_eq!(h.send("GET", &forged, Vec::new(), false).await.0, 403);
    *h.clock.0.lock().unwrap() += time::Duration::seconds(code_url::VALIDITY_SECONDS + 1);
    let (status, headers, _) = h.send("GET", path, Vec::new(), false).await;
    assert_eq!(
        (status, headers["x-amzn-ErrorType"].to_str().unwrap()),
        (403, "AccessDeniedException")
    );
}

#[tokio::test]
async fn unsigned_and_badly_signed_requests_are_refused() {
    let h = harness();
    let (status, headers, body) = h
        .send("GET", "/2015-03-31/functions", Vec::new(), false)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        headers["x-amzn-ErrorType"],
        "MissingAuthenticationTokenException"
    );
    assert!(headers.contains_key("x-amzn-RequestId"));
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("Missing Authentication Token"));

    let request = Request::builder()
        .method("GET")
        .uri("/2015-03-31/functions")
        .header("host", "127.0.0.1:9070")
        .header("x-amz-date", "20260101T000000Z")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
        .body(Body::empty())
        .unwrap();
    let response = h.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    // The date is months away from the test clock: expired before the signature is checked.
    assert_eq!(
        response.headers()["x-amzn-ErrorType"],
        "InvalidSignatureException"
    );
}

#[tokio::test]
async fn errors_have_aws_shapes() {
    let h = harness();
    let (status, body) = h
        .json("GET", "/2015-03-31/functions/nope", serde_json::Value::Null)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["Message"],
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    );

    let (status, body) = h
        .json(
            "POST",
            "/2020-04-22/code-signing-configs",
            serde_json::json!({"AllowedPublishers": {"SigningProfileVersionArns": []}}),
        )
        .await;
    assert_eq!(status, 501);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("CreateCodeSigningConfig is not implemented"));

    let (status, _, body) = h
        .send("POST", "/2015-03-31/functions", b"{not json".to_vec(), true)
        .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("Could not parse request body into json"));

    let mut bad = create_body("f");
    bad["MemorySize"] = serde_json::json!(64);
    let (status, body) = h.json("POST", "/2015-03-31/functions", bad).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("'memorySize'"),
        "{body}"
    );

    let (status, _) = h
        .json("GET", "/2099-01-01/whatever", serde_json::Value::Null)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn oversized_requests_get_413_before_the_body_is_read() {
    let h = harness();
    let request = Request::builder()
        .method("PUT")
        .uri("/2015-03-31/functions/f/configuration")
        .header("host", "127.0.0.1:9070")
        .header("content-length", (DEFAULT_BODY_LIMIT + 1).to_string())
        .body(Body::empty())
        .unwrap();
    let response = h.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.headers()["x-amzn-ErrorType"],
        "RequestEntityTooLargeException"
    );
}

#[tokio::test]
async fn list_tags_and_account_settings() {
    let h = harness();
    for name in ["a", "b", "c"] {
        assert_eq!(
            h.json("POST", "/2015-03-31/functions/", create_body(name))
                .await
                .0,
            201
        );
    }
    let (_, page) = h
        .json(
            "GET",
            "/2015-03-31/functions/?MaxItems=2",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(page["Functions"].as_array().unwrap().len(), 2);
    let marker = page["NextMarker"].as_str().unwrap();
    let (_, rest) = h
        .json(
            "GET",
            &format!("/2015-03-31/functions?Marker={marker}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(rest["Functions"][0]["FunctionName"], "c");
    assert!(rest.get("NextMarker").is_none());

    let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aa";
    let (status, _) = h
        .json(
            "POST",
            &format!("/2017-03-31/tags/{arn}"),
            serde_json::json!({"Tags": {"k1": "v1", "k2": "v2"}}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = h
        .json(
            "DELETE",
            &format!("/2017-03-31/tags/{arn}?tagKeys=k1"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    let (_, tags) = h
        .json(
            "GET",
            &format!("/2017-03-31/tags/{arn}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(tags, serde_json::json!({"Tags": {"k2": "v2"}}));

    let (_, settings) = h
        .json(
            "GET",
            "/2016-08-19/account-settings/",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(settings["AccountUsage"]["FunctionCount"], 3);
    assert_eq!(settings["AccountLimit"]["CodeSizeZipped"], 52_428_800);
}

impl Harness {
    /// A request signed for S3 (`x-amz-content-sha256` signed with the rest).
    async fn s3(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
        key: &Credentials,
    ) -> (u16, axum::http::HeaderMap, Vec<u8>) {
        self.s3_at(method, path_and_query, body, key, self.clock.now())
            .await
    }

    /// An S3 request signed at `at`.
    async fn s3_at(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
        key: &Credentials,
        at: OffsetDateTime,
    ) -> (u16, axum::http::HeaderMap, Vec<u8>) {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let headers = vec![
            ("host".to_string(), "127.0.0.1:9070".to_string()),
            (
                "x-amz-content-sha256".to_string(),
                sigv4::payload_hash(&body),
            ),
        ];
        let parts = sigv4::RequestParts {
            method,
            raw_path: path,
            raw_query: query,
            headers: &headers,
        };
        let (authorization, date) = sigv4::sign(&parts, &body, key, "us-east-1", "s3", at);
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("authorization", authorization)
            .header("x-amz-date", date);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        let response = self
            .router
            .clone()
            .oneshot(builder.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, headers, bytes)
    }
}

#[tokio::test]
async fn s3_requests_are_routed_by_their_signing_service() {
    let h = harness();
    // A bucket named like the Lambda API's first path segment: S3's, by its signature.
    let (status, _, body) = h.s3("PUT", "/2015-03-31", Vec::new(), &credentials()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, headers, _) = h
        .s3(
            "PUT",
            "/2015-03-31/functions",
            b"hello world".to_vec(),
            &credentials(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["etag"], "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert!(headers.contains_key("x-amz-request-id"));
    let (status, _, body) = h
        .s3("GET", "/2015-03-31/functions", Vec::new(), &credentials())
        .await;
    assert_eq!((status, body.as_slice()), (200, b"hello world".as_slice()));
    let (status, _, body) = h
        .s3("GET", "/2015-03-31?list-type=2", Vec::new(), &credentials())
        .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Key>functions</Key>"));
    // The same path signed for Lambda is Lambda's.
    let (status, listed) = h
        .json("GET", "/2015-03-31/functions", serde_json::Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["Functions"], serde_json::json!([]));
    // Unknown keys and skewed clocks are refused with S3's errors, each with a message.
    let stranger = Credentials {
        access_key_id: "AKIDSTRANGER".into(),
        secret_access_key: "nope".into(),
    };
    let (status, _, body) = h.s3("GET", "/", Vec::new(), &stranger).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403);
    assert!(
        text.contains("<Code>InvalidAccessKeyId</Code><Message>"),
        "{text}"
    );
    let wrong = Credentials {
        secret_access_key: "wrong".into(),
        ..credentials()
    };
    let (status, _, body) = h.s3("GET", "/", Vec::new(), &wrong).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403);
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code><Message>"),
        "{text}"
    );
    let early = h.clock.now() - time::Duration::minutes(20);
    let (status, _, body) = h.s3_at("GET", "/", Vec::new(), &credentials(), early).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("RequestTimeTooSkewed"));
}

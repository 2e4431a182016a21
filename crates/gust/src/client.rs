//! A small Lambda API client for the CLI: finds the server, signs with SigV4, and turns
//! AWS error responses into readable errors.

use anyhow::{anyhow, Context, Result};
use gust_api::{sigv4, Credentials};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::datadir;
use crate::ConnectArgs;

/// An error answer from the server.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub error_type: String,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error_type, self.status, self.message)
    }
}

impl std::error::Error for ApiFailure {}

/// A connection to one Gust server.
#[derive(Debug)]
pub struct Client {
    endpoint: String,
    authority: String,
    region: String,
    credentials: Option<Credentials>,
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Client {
    /// Finds the endpoint, region and credentials: flags and `GUST_*` variables first, then
    /// the `AWS_*` variables, then the data directory of a local server.
    pub fn connect(args: &ConnectArgs) -> Result<Self> {
        let info = datadir::read_server_info(&args.data_dir);
        let endpoint = match (&args.endpoint, &info) {
            (Some(endpoint), _) => endpoint.trim_end_matches('/').to_owned(),
            (None, Ok(info)) => info.endpoint.clone(),
            (None, Err(e)) => return Err(anyhow!("{e:#}")),
        };
        let authority = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("endpoint {endpoint} must start with http://"))?
            .to_owned();
        let region = args
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| info.as_ref().ok().map(|i| i.region.clone()))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let no_auth = info.as_ref().is_ok_and(|i| i.no_auth) && args.endpoint.is_none();
        let credentials = if no_auth {
            None
        } else {
            Some(find_credentials(args)?)
        };
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
        Ok(Client {
            endpoint,
            authority,
            region,
            credentials,
            http,
        })
    }

    /// Sends one request; `raw_path` is already percent-encoded. Returns the JSON body
    /// (`Null` for empty answers) or an [`ApiFailure`].
    pub async fn call(
        &self,
        method: &str,
        raw_path: &str,
        raw_query: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let body_bytes = match body {
            Some(value) => serde_json::to_vec(value)?,
            None => Vec::new(),
        };
        let content_type = body.map(|_| ("content-type", "application/json"));
        let answer = self
            .send(
                method,
                raw_path,
                raw_query,
                body_bytes,
                content_type.as_slice(),
            )
            .await?;
        if answer.bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&answer.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.bytes).into_owned())))
    }

    /// Sends one request with a raw body and extra (signed) headers; a non-2xx answer is an
    /// [`ApiFailure`].
    pub async fn send(
        &self,
        method: &str,
        raw_path: &str,
        raw_query: &str,
        body: Vec<u8>,
        extra_headers: &[(&str, &str)],
    ) -> Result<Answer> {
        let mut headers = vec![("host".to_owned(), self.authority.clone())];
        headers.extend(
            extra_headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        if let Some(credentials) = &self.credentials {
            let parts = sigv4::RequestParts {
                method,
                raw_path,
                raw_query,
                headers: &headers,
            };
            let (authorization, date) = sigv4::sign(
                &parts,
                &body,
                credentials,
                &self.region,
                "lambda",
                time::OffsetDateTime::now_utc(),
            );
            headers.push(("x-amz-date".to_owned(), date));
            headers.push(("authorization".to_owned(), authorization));
        }
        let uri = if raw_query.is_empty() {
            format!("{}{raw_path}", self.endpoint)
        } else {
            format!("{}{raw_path}?{raw_query}", self.endpoint)
        };
        let mut request = hyper::Request::builder().method(method).uri(&uri);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let response = self
            .http
            .request(request)
            .await
            .with_context(|| format!("cannot reach Gust at {}", self.endpoint))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status.is_success() {
            return Ok(Answer { headers, bytes });
        }
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = value
            .get("message")
            .or_else(|| value.get("Message"))
            .and_then(Value::as_str)
            .map_or_else(
                || String::from_utf8_lossy(&bytes).into_owned(),
                str::to_owned,
            );
        let error_type = headers
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Error")
            .to_owned();
        Err(ApiFailure {
            status: status.as_u16(),
            error_type,
            message,
        }
        .into())
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Response headers.
    pub headers: hyper::HeaderMap,
    /// Response body.
    pub bytes: Bytes,
}

fn find_credentials(args: &ConnectArgs) -> Result<Credentials> {
    let pair = |id: &str, secret: &str| match (env(id), env(secret)) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
        }),
        _ => None,
    };
    if let Some(credentials) = pair("GUST_ACCESS_KEY_ID", "GUST_SECRET_ACCESS_KEY") {
        return Ok(credentials);
    }
    if let Some(credentials) = pair("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") {
        return Ok(credentials);
    }
    datadir::read_credentials(&args.data_dir).context(
        "no credentials: set GUST_ACCESS_KEY_ID and GUST_SECRET_ACCESS_KEY, or run where the server's data directory is (--data-dir)",
    )
}

/// Percent-encodes a path label as the AWS SDKs do.
pub fn encode_label(label: &str) -> String {
    const STRICT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(label, STRICT).to_string()
}

/// Whether an error is the server saying "no such function".
pub fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<ApiFailure>()
        .is_some_and(|f| f.error_type == "ResourceNotFoundException")
}

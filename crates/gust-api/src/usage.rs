//! Gust's own observability endpoints: the usage and cost report (`GET /_gust/usage`,
//! SigV4-signed like the rest) and the Prometheus scrape (`GET /metrics`, allowed by
//! `--metrics-access`, before any SigV4 check).

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use gust_metrics::prometheus::{Exporter, Refused, CONTENT_TYPE};
use gust_metrics::usage::{Month, Usage, UsageError};
use std::sync::Arc;

use crate::error::ApiError;
use crate::routes::Query;

/// `GET /_gust/usage?month=YYYY-MM`: the caller's account's usage and price in the month
/// (default: the current one, UTC).
pub(crate) async fn report(
    usage: &Arc<Usage>,
    account: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let month = match query.get("month") {
        Some(text) => Month::parse(text).map_err(|e| ApiError::invalid_parameter(e.to_string()))?,
        None => usage.current_month(),
    };
    let usage = Arc::clone(usage);
    let account = account.to_owned();
    // Reading flushes to SQLite: not on the async workers.
    let report = tokio::task::spawn_blocking(move || usage.report(&account, &month))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| match e {
            UsageError::InvalidMonth(message) => ApiError::invalid_parameter(message),
            other => ApiError::internal(&other),
        })?;
    crate::json(StatusCode::OK, &report)
}

/// `GET /metrics`: the Prometheus text exposition, if the access setting allows.
pub(crate) fn metrics(exporter: &Exporter, headers: &HeaderMap) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let builder = Response::builder();
    let response = match exporter.access().check(authorization) {
        Ok(()) => builder
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Body::from(exporter.render())),
        Err(Refused::Off) => builder
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(
                "metrics are not served (--metrics-access off)\n",
            )),
        Err(Refused::Unauthorized) => builder
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Bearer")
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("a valid bearer token is required\n")),
    };
    response.map_err(|e| ApiError::internal(&e))
}

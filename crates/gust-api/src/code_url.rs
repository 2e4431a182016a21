//! Pre-signed code download URLs: GetFunction's `Code.Location`. A URL names a package by
//! digest and carries an expiry and an HMAC over both, so it works without SigV4 (as an S3
//! pre-signed URL does) and only until it expires.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use gust_control::ControlPlane;
use gust_model::CodeDigest;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::routes::Query;
use crate::ApiConfig;

/// How long a URL stays valid (as Lambda's, about ten minutes).
pub const VALIDITY_SECONDS: i64 = 600;

fn mac(key: &[u8; 32], digest_hex: &str, expires: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{digest_hex}\n{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The URL for a package, reachable at `host` (the address the client used).
pub fn presign(host: &str, digest: &CodeDigest, key: &[u8; 32], now: OffsetDateTime) -> String {
    let hex = digest.to_hex();
    let expires = now.unix_timestamp() + VALIDITY_SECONDS;
    format!(
        "http://{host}/_gust/code/{hex}.zip?Expires={expires}&Signature={}",
        mac(key, &hex, expires)
    )
}

fn denied(message: &str) -> ApiError {
    ApiError::from(crate::sigv4::AuthError::Incomplete(message.to_owned()))
        .with_type("AccessDeniedException")
}

/// Serves a package if the URL's signature is valid and unexpired.
pub(crate) async fn serve(
    planes: &[std::sync::Arc<ControlPlane>],
    config: &ApiConfig,
    file: &str,
    raw_query: &str,
) -> Result<Response, ApiError> {
    let query = Query::parse(raw_query);
    let digest_hex = file.strip_suffix(".zip").unwrap_or(file);
    let digest = CodeDigest::from_hex(digest_hex).ok_or_else(|| denied("Invalid code URL"))?;
    let expires: i64 = query
        .get("Expires")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| denied("Invalid code URL"))?;
    let signature = query.get("Signature").unwrap_or("");
    let expected = mac(&config.code_url_key, &digest.to_hex(), expires);
    let valid = expected.len() == signature.len()
        && expected
            .bytes()
            .zip(signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !valid {
        return Err(denied("The code URL signature is not valid"));
    }
    if config.clock.now().unix_timestamp() > expires {
        return Err(denied("Request has expired"));
    }
    // The account whose store holds it (a digest signed by this server is in one of them).
    let path = planes
        .iter()
        .map(|p| p.store().code_path(&digest))
        .find(|path| path.exists())
        .unwrap_or_default();
    let bytes = tokio::fs::read(path).await.map_err(|_| {
        ApiError::from(gust_control::ControlError::NotFound(
            "The code package no longer exists.".into(),
        ))
    })?;
    Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/zip")
        .body(Body::from(bytes))
        .map_err(|e| ApiError::internal(&e))
}

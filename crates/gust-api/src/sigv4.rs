//! AWS Signature Version 4: verifying requests (server) and signing them (Gust's CLI).
//! Canonicalisation follows what botocore does on the wire: the raw path is dot-normalised
//! and percent-encoded again (so `%3A` is signed as `%253A`); query pairs are decoded,
//! re-encoded with the strict set and sorted; only the headers named in `SignedHeaders`
//! are signed.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm SigV4 has.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::minutes(15);

/// Characters left as they are by SigV4's URI encoding (RFC 3986 unreserved).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (for paths).
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// A key pair requests are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA…`-style id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The parts of a request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as sent, without `?`.
    pub raw_query: &'a str,
    /// All headers, names in any case.
    pub headers: &'a [(String, String)],
}

/// Why a request's signature was refused. Each maps to the AWS error clients expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    Missing,
    /// The header or the date is malformed.
    #[error("{0}")]
    Incomplete(String),
    /// The access key is not this server's (or carries a session token it never issued).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The signature does not match.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
    /// The request's date is too far from the server's clock.
    #[error("Signature expired: {request} is now earlier than {earliest} ({now} - 15 min.)")]
    Expired {
        /// The request's `X-Amz-Date`.
        request: String,
        /// The oldest date accepted now.
        earliest: String,
        /// The server's time.
        now: String,
    },
    /// Session credentials past their expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// The request's date is too far in the future.
    #[error("Signature not yet current: {request} is still later than {latest} ({now} + 15 min.)")]
    NotYetCurrent {
        /// The request's `X-Amz-Date`.
        request: String,
        /// The newest date accepted now.
        latest: String,
        /// The server's time.
        now: String,
    },
}

impl AuthError {
    /// The AWS error type (`x-amzn-ErrorType`).
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::ExpiredToken => "ExpiredTokenException",
            AuthError::Mismatch | AuthError::Expired { .. } | AuthError::NotYetCurrent { .. } => {
                "InvalidSignatureException"
            }
        }
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let incomplete = |what: &str| {
        AuthError::Incomplete(format!(
            "Authorization header requires {what}. Authorization={value}"
        ))
    };
    let rest = value.strip_prefix(ALGORITHM).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Unsupported authorization type: only {ALGORITHM} is accepted"
        ))
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| incomplete("'Credential' parameter"))?;
    let signed = signed.ok_or_else(|| incomplete("'SignedHeaders' parameter"))?;
    let signature = signature.ok_or_else(|| incomplete("'Signature' parameter"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope.as_slice() else {
        return Err(incomplete(
            "a Credential of the form AKID/yyyymmdd/region/service/aws4_request",
        ));
    };
    if *terminator != "aws4_request" || access_key_id.is_empty() {
        return Err(incomplete(
            "a Credential of the form AKID/yyyymmdd/region/service/aws4_request",
        ));
    }
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

fn header<'h>(headers: &'h [(String, String)], name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn first_header<'h>(headers: &'h [(String, String)], name: &'h str) -> Option<&'h str> {
    header(headers, name).next()
}

/// Dot-segment removal as botocore does it (also drops empty segments), keeping a leading
/// and trailing slash.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let first = if path.starts_with('/') { "/" } else { "" };
    let last = if path.ends_with('/') && !out.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{first}{}{last}", out.join("/"))
}

/// The canonical URI: the raw path normalised, then encoded once more.
pub fn canonical_uri(raw_path: &str) -> String {
    utf8_percent_encode(&normalize_path(raw_path), PATH).to_string()
}

fn strict_encode(text: &str) -> String {
    utf8_percent_encode(text, STRICT).to_string()
}

/// Decodes a query component (`+` is a space only in forms; SigV4 clients never send it
/// for a space, so it is kept as `+`).
fn decode_component(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The canonical query string.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                strict_encode(&decode_component(key)),
                strict_encode(&decode_component(value)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: Vec<&str>) -> String {
    values
        .iter()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

/// The canonical request for `parts`, signing exactly `signed_headers` (lowercase).
pub fn canonical_request(
    parts: &RequestParts<'_>,
    signed_headers: &[&str],
    payload_hash: &str,
) -> String {
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    names.sort();
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<&str> = header(parts.headers, name).collect();
        canonical_headers.push_str(&format!("{name}:{}\n", canonical_header_value(values)));
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method,
        canonical_uri(parts.raw_path),
        canonical_query(parts.raw_query),
        canonical_headers,
        names.join(";"),
        payload_hash
    )
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign))
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// Hex SHA-256 of a body.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

const AMZ_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Formats a time as `X-Amz-Date` (`20261129T005801Z`).
pub fn amz_date(t: OffsetDateTime) -> String {
    t.format(AMZ_DATE).unwrap_or_default()
}

fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, AMZ_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The service a request's credential scope names (`lambda`, `sqs`, ...), if it is signed.
pub fn scope_service(headers: &[(String, String)]) -> Option<String> {
    let authorization = first_header(headers, "authorization")?;
    parse_authorization(authorization)
        .ok()
        .map(|a| a.service.to_owned())
}

/// The access key id a request's `Authorization` header presents.
pub fn presented_key(headers: &[(String, String)]) -> Result<String, AuthError> {
    let authorization = first_header(headers, "authorization").ok_or(AuthError::Missing)?;
    Ok(parse_authorization(authorization)?.access_key_id.to_owned())
}

/// The checks that need no body: an `Authorization` header naming this server's key.
/// Done before a (possibly large) body is read, so unauthenticated clients cannot make the
/// server buffer it.
pub fn precheck(headers: &[(String, String)], credentials: &Credentials) -> Result<(), AuthError> {
    let authorization = first_header(headers, "authorization").ok_or(AuthError::Missing)?;
    let auth = parse_authorization(authorization)?;
    if auth.access_key_id != credentials.access_key_id {
        return Err(AuthError::UnknownKey);
    }
    Ok(())
}

/// Verifies a header-signed request for `service` against `credentials` at time `now`.
pub fn verify(
    parts: &RequestParts<'_>,
    body: &[u8],
    credentials: &Credentials,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    verify_hashed(parts, payload_hash(body), credentials, service, now)
}

/// [`verify`] for a body already hashed (hex SHA-256), as a spooled upload is.
pub fn verify_hashed(
    parts: &RequestParts<'_>,
    actual_hash: String,
    credentials: &Credentials,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    verify_session(parts, actual_hash, credentials, None, service, now)
}

/// [`verify_hashed`] for credentials that come with a session token: the request must
/// carry exactly that token (and no token at all when `token` is `None`).
pub fn verify_session(
    parts: &RequestParts<'_>,
    actual_hash: String,
    credentials: &Credentials,
    token: Option<&str>,
    service: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let authorization = first_header(parts.headers, "authorization").ok_or(AuthError::Missing)?;
    let auth = parse_authorization(authorization)?;
    let amz_date_text = first_header(parts.headers, "x-amz-date").ok_or_else(|| {
        AuthError::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        )
    })?;
    let request_time = parse_amz_date(amz_date_text).ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Invalid X-Amz-Date {amz_date_text:?}: expected yyyyMMddTHHmmssZ"
        ))
    })?;
    if !amz_date_text.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(AuthError::Incomplete(format!(
            "Credential date {} does not match X-Amz-Date {amz_date_text}",
            auth.date
        )));
    }
    if !auth
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(AuthError::Incomplete(
            "'Host' must be a signed header".into(),
        ));
    }
    if auth.service != service {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    if auth.access_key_id != credentials.access_key_id
        || first_header(parts.headers, "x-amz-security-token") != token
    {
        return Err(AuthError::UnknownKey);
    }
    if request_time < now - MAX_SKEW {
        return Err(AuthError::Expired {
            request: amz_date_text.to_owned(),
            earliest: amz_date(now - MAX_SKEW),
            now: amz_date(now),
        });
    }
    if request_time > now + MAX_SKEW {
        return Err(AuthError::NotYetCurrent {
            request: amz_date_text.to_owned(),
            latest: amz_date(now + MAX_SKEW),
            now: amz_date(now),
        });
    }
    let hash = match first_header(parts.headers, "x-amz-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_owned(),
        Some(declared) if declared.eq_ignore_ascii_case(&actual_hash) => declared.to_owned(),
        // A declared hash that is not the body's: the body was changed after signing.
        Some(_) => return Err(AuthError::Mismatch),
        None => actual_hash,
    };
    let canonical = canonical_request(parts, &auth.signed_headers, &hash);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let expected = signature(
        &credentials.secret_access_key,
        auth.date,
        auth.region,
        auth.service,
        &string_to_sign(amz_date_text, &scope, &canonical),
    );
    if constant_time_eq(
        expected.as_bytes(),
        auth.signature.to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

/// Signs a request: returns the `Authorization` and `X-Amz-Date` header values. `headers`
/// must include `host`; every header passed is signed.
pub fn sign(
    parts: &RequestParts<'_>,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: OffsetDateTime,
) -> (String, String) {
    let date_time = amz_date(now);
    let date = &date_time[..8];
    let mut headers = parts.headers.to_vec();
    headers.push(("x-amz-date".into(), date_time.clone()));
    let signed: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    let signed_refs: Vec<&str> = signed.iter().map(String::as_str).collect();
    let with_date = RequestParts {
        headers: &headers,
        ..*parts
    };
    let canonical = canonical_request(&with_date, &signed_refs, &payload_hash(body));
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sig = signature(
        &credentials.secret_access_key,
        date,
        region,
        service,
        &string_to_sign(&date_time, &scope, &canonical),
    );
    let mut names = signed.clone();
    names.sort();
    names.dedup();
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
        credentials.access_key_id,
        names.join(";")
    );
    (authorization, date_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_reference_worked_example() {
        // lambda-wire.md §6.3: botocore invoke with an ARN and ?Qualifier=$LATEST.
        let headers = h(&[
            ("Host", "localhost:9001"),
            ("X-Amz-Date", "20261129T005801Z"),
            ("X-Amz-Log-Type", "Tail"),
            ("User-Agent", "Boto3/1.44.8"),
        ]);
        let parts = RequestParts {
            method: "POST",
            raw_path: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/invocations",
            raw_query: "Qualifier=%24LATEST",
            headers: &headers,
        };
        let canonical = canonical_request(
            &parts,
            &["host", "x-amz-date", "x-amz-log-type"],
            "f9d86028c6e0d64e225186f96acb69338b2c59764df79162107f5c4bb34d1310",
        );
        assert_eq!(
            canonical,
            "POST\n/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Amy-fn/invocations\nQualifier=%24LATEST\nhost:localhost:9001\nx-amz-date:20261129T005801Z\nx-amz-log-type:Tail\n\nhost;x-amz-date;x-amz-log-type\nf9d86028c6e0d64e225186f96acb69338b2c59764df79162107f5c4bb34d1310"
        );
    }

    #[test]
    fn aws_documentation_get_vanilla_vector() {
        // The "get-vanilla" case of the AWS SigV4 test suite.
        let headers = h(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ]);
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
        };
        let canonical = canonical_request(&parts, &["host", "x-amz-date"], EMPTY_SHA256);
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        let sig = signature(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
            &sts,
        );
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn canonical_paths() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(
            canonical_uri("/2015-03-31/functions/"),
            "/2015-03-31/functions/"
        );
        assert_eq!(canonical_uri("/a/./b/../c//d"), "/a/c/d");
        assert_eq!(canonical_uri("/f/%24LATEST"), "/f/%2524LATEST");
        assert_eq!(canonical_uri("/with space"), "/with%20space");
        assert_eq!(canonical_uri("/~tilde"), "/~tilde");
    }

    #[test]
    fn canonical_queries() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
        assert_eq!(
            canonical_query("tagKeys=z&tagKeys=a"),
            "tagKeys=a&tagKeys=z"
        );
        assert_eq!(
            canonical_query("Qualifier=%24LATEST"),
            "Qualifier=%24LATEST"
        );
        assert_eq!(canonical_query("Qualifier=$LATEST"), "Qualifier=%24LATEST");
        assert_eq!(canonical_query("List=ALL&x"), "List=ALL&x=");
        assert_eq!(canonical_query("k=a%20b"), "k=a%20b");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let headers = h(&[("Host", "h"), ("X-Multi", "  a   b  "), ("x-multi", "c")]);
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
        };
        let canonical = canonical_request(&parts, &["host", "x-multi"], EMPTY_SHA256);
        assert!(canonical.contains("\nx-multi:a b,c\n"), "{canonical}");
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDGUST".into(),
            secret_access_key: "secret".into(),
        }
    }

    fn signed_request(now: OffsetDateTime, body: &[u8]) -> Vec<(String, String)> {
        let mut headers = h(&[
            ("host", "127.0.0.1:9070"),
            ("content-type", "application/json"),
        ]);
        let parts = RequestParts {
            method: "POST",
            raw_path: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/configuration",
            raw_query: "Qualifier=%24LATEST",
            headers: &headers,
        };
        let (authorization, date) = sign(&parts, body, &creds(), "us-east-1", "lambda", now);
        headers.push(("x-amz-date".into(), date));
        headers.push(("authorization".into(), authorization));
        headers.push(("user-agent".into(), "unsigned".into()));
        headers
    }

    fn parts(headers: &[(String, String)]) -> RequestParts<'_> {
        RequestParts {
            method: "POST",
            raw_path: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/configuration",
            raw_query: "Qualifier=%24LATEST",
            headers,
        }
    }

    #[test]
    fn sign_then_verify_and_every_way_to_fail() {
        let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        let body = br#"{"MemorySize":256}"#;
        let headers = signed_request(now, body);
        assert_eq!(
            verify(&parts(&headers), body, &creds(), "lambda", now),
            Ok(())
        );
        // Within the skew window either way.
        assert_eq!(
            verify(
                &parts(&headers),
                body,
                &creds(),
                "lambda",
                now + Duration::minutes(14)
            ),
            Ok(())
        );

        let tampered_body = br#"{"MemorySize":512}"#;
        assert_eq!(
            verify(&parts(&headers), tampered_body, &creds(), "lambda", now),
            Err(AuthError::Mismatch)
        );
        let mut tampered = parts(&headers);
        tampered.raw_query = "Qualifier=1";
        assert_eq!(
            verify(&tampered, body, &creds(), "lambda", now),
            Err(AuthError::Mismatch)
        );
        let wrong_secret = Credentials {
            secret_access_key: "other".into(),
            ..creds()
        };
        assert_eq!(
            verify(&parts(&headers), body, &wrong_secret, "lambda", now),
            Err(AuthError::Mismatch)
        );
        let wrong_key = Credentials {
            access_key_id: "AKIDOTHER".into(),
            ..creds()
        };
        assert_eq!(
            verify(&parts(&headers), body, &wrong_key, "lambda", now),
            Err(AuthError::UnknownKey)
        );
        assert_eq!(
            verify(&parts(&headers), body, &creds(), "sqs", now)
                .unwrap_err()
                .error_type(),
            "IncompleteSignatureException"
        );

        let stale = verify(
            &parts(&headers),
            body,
            &creds(),
            "lambda",
            now + Duration::minutes(16),
        )
        .unwrap_err();
        assert!(matches!(stale, AuthError::Expired { .. }));
        assert!(
            stale.to_string().starts_with("Signature expired: "),
            "{stale}"
        );
        let future = verify(
            &parts(&headers),
            body,
            &creds(),
            "lambda",
            now - Duration::minutes(16),
        )
        .unwrap_err();
        assert!(matches!(future, AuthError::NotYetCurrent { .. }));

        let no_auth: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n != "authorization")
            .cloned()
            .collect();
        assert_eq!(
            verify(&parts(&no_auth), body, &creds(), "lambda", now),
            Err(AuthError::Missing)
        );
        let mut garbage = no_auth.clone();
        garbage.push(("authorization".into(), "AWS4-HMAC-SHA256 nonsense".into()));
        assert!(matches!(
            verify(&parts(&garbage), body, &creds(), "lambda", now),
            Err(AuthError::Incomplete(_))
        ));
        let mut basic = no_auth.clone();
        basic.push(("authorization".into(), "Basic dXNlcjpwYXNz".into()));
        assert!(matches!(
            verify(&parts(&basic), body, &creds(), "lambda", now),
            Err(AuthError::Incomplete(_))
        ));
        let mut with_token = headers.clone();
        with_token.push(("x-amz-security-token".into(), "token".into()));
        assert_eq!(
            verify(&parts(&with_token), body, &creds(), "lambda", now),
            Err(AuthError::UnknownKey)
        );
        let mut wrong_declared = headers.clone();
        wrong_declared.push(("x-amz-content-sha256".into(), EMPTY_SHA256.into()));
        assert_eq!(
            verify(&parts(&wrong_declared), body, &creds(), "lambda", now),
            Err(AuthError::Mismatch)
        );
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        assert!(!format!("{:?}", creds()).contains("secret\""));
    }
}

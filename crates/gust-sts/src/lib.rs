//! Session credentials: what STS `AssumeRole` returns and what every execution environment
//! is given for its function's role. A session token is self-contained — the session's
//! account, role, name, access key and expiry, signed with the server's key — so the server
//! keeps no table of sessions and tokens stay valid across restarts while the key does. The
//! secret key is derived from the same key and the token, so only this server can produce
//! a signature that verifies.
//!
//! Roles name an identity; they grant nothing (Gust has no IAM): a session acts with its
//! account's rights.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;

/// Shortest session, seconds.
pub const MIN_DURATION: i64 = 900;
/// Longest session, seconds.
pub const MAX_DURATION: i64 = 43_200;

/// Why a token or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// The token is not one of this server's (or does not go with the access key).
    #[error("The security token included in the request is invalid.")]
    InvalidToken,
    /// The token's time is up.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// A parameter is out of bounds.
    #[error("{0}")]
    Validation(String),
    /// The caller may not assume the role.
    #[error("{0}")]
    AccessDenied(String),
}

/// A session: its credentials and whose they are.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The derived secret.
    pub secret_access_key: String,
    /// The token clients send as `X-Amz-Security-Token`.
    pub session_token: String,
    /// The account acted in.
    pub account: String,
    /// The role assumed.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// When it ends.
    pub expires: OffsetDateTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("account", &self.account)
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The role's name (the last part of its ARN's path).
    pub fn role_name(&self) -> &str {
        self.role_arn.rsplit('/').next().unwrap_or(&self.role_arn)
    }

    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub fn assumed_role_arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.account,
            self.role_name(),
            self.session_name
        )
    }

    /// `AROA…:SESSION`: a stable id for the role, then the session's name.
    pub fn assumed_role_id(&self) -> String {
        format!("{}:{}", role_id(&self.role_arn), self.session_name)
    }
}

/// A stable `AROA…` id for a role ARN.
pub fn role_id(role_arn: &str) -> String {
    use sha2::Digest;
    let digest = Sha256::digest(role_arn.as_bytes());
    format!("AROA{}", base32(&digest[..10]))
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    out
}

#[derive(Serialize, Deserialize)]
struct Claims {
    k: String,
    a: String,
    r: String,
    s: String,
    e: i64,
}

/// Issues and checks session credentials with one secret key.
pub struct Issuer {
    key: [u8; 32],
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issuer { key: <redacted> }")
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
        mac.update(b"\x00");
    }
    mac.finalize().into_bytes().to_vec()
}

impl Issuer {
    /// An issuer with `key` (keep it across restarts for tokens to outlive them).
    pub fn new(key: [u8; 32]) -> Self {
        Issuer { key }
    }

    /// New credentials for `role_arn` in `account`, valid for `duration_seconds`.
    pub fn issue(
        &self,
        account: &str,
        role_arn: &str,
        session_name: &str,
        now: OffsetDateTime,
        duration_seconds: i64,
    ) -> Session {
        let mut random = [0u8; 10];
        // Without OS randomness the id still differs by time and session below.
        let _ = getrandom::fill(&mut random);
        let seed = mac(
            &self.key,
            &[
                &random,
                &now.unix_timestamp_nanos().to_be_bytes(),
                session_name.as_bytes(),
            ],
        );
        let access_key_id = format!("ASIA{}", base32(&seed[..10]));
        // Whole seconds: what the token carries.
        let expires =
            now.replace_nanosecond(0).unwrap_or(now) + time::Duration::seconds(duration_seconds);
        let claims = Claims {
            k: access_key_id.clone(),
            a: account.to_owned(),
            r: role_arn.to_owned(),
            s: session_name.to_owned(),
            e: expires.unix_timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signature = URL_SAFE_NO_PAD.encode(mac(&self.key, &[b"token", payload.as_bytes()]));
        let session_token = format!("{payload}.{signature}");
        Session {
            secret_access_key: self.secret(&session_token),
            access_key_id,
            session_token,
            account: account.to_owned(),
            role_arn: role_arn.to_owned(),
            session_name: session_name.to_owned(),
            expires,
        }
    }

    fn secret(&self, token: &str) -> String {
        let mut secret = URL_SAFE_NO_PAD.encode(mac(&self.key, &[b"secret", token.as_bytes()]));
        secret.truncate(40);
        secret
    }

    /// The session a presented access key and token belong to, if this server issued them
    /// and they have not expired.
    pub fn open(
        &self,
        access_key_id: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Session, StsError> {
        let (payload, signature) = token.split_once('.').ok_or(StsError::InvalidToken)?;
        let expected = mac(&self.key, &[b"token", payload.as_bytes()]);
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| StsError::InvalidToken)?;
        let differs = expected.len() != given.len()
            || expected
                .iter()
                .zip(&given)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differs {
            return Err(StsError::InvalidToken);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(StsError::InvalidToken)?;
        if claims.k != access_key_id {
            return Err(StsError::InvalidToken);
        }
        let expires =
            OffsetDateTime::from_unix_timestamp(claims.e).map_err(|_| StsError::InvalidToken)?;
        if expires <= now {
            return Err(StsError::ExpiredToken);
        }
        Ok(Session {
            access_key_id: claims.k,
            secret_access_key: self.secret(token),
            session_token: token.to_owned(),
            account: claims.a,
            role_arn: claims.r,
            session_name: claims.s,
            expires,
        })
    }
}

/// Checks `AssumeRole`'s parameters as STS does.
pub fn check_assume_role(
    role_arn: &str,
    session_name: &str,
    duration_seconds: Option<i64>,
) -> Result<(), StsError> {
    let role_ok = {
        let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
        matches!(parts.as_slice(), ["arn", _, "iam", "", account, resource]
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
    };
    if role_arn.len() < 20 || role_arn.len() > 2048 || !role_ok {
        return Err(StsError::Validation(format!("{role_arn} is invalid")));
    }
    let name_ok = (2..=64).contains(&session_name.len())
        && session_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if !name_ok {
        return Err(StsError::Validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    if let Some(duration) = duration_seconds {
        if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
            return Err(StsError::Validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value {} than or equal to {}",
                if duration < MIN_DURATION { "greater" } else { "less" },
                if duration < MIN_DURATION { MIN_DURATION } else { MAX_DURATION }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let issuer = Issuer::new([7; 32]);
        let now = OffsetDateTime::now_utc();
        let session = issuer.issue(
            "000000000000",
            "arn:aws:iam::000000000000:role/app",
            "s1",
            now,
            900,
        );
        assert!(session.access_key_id.starts_with("ASIA"));
        assert_eq!(session.access_key_id.len(), 20);
        let opened = issuer
            .open(&session.access_key_id, &session.session_token, now)
            .unwrap();
        assert_eq!(opened, session);
        assert_eq!(
            opened.assumed_role_arn(),
            "arn:aws:sts::000000000000:assumed-role/app/s1"
        );
        assert_eq!(
            issuer.open("ASIAOTHER", &session.session_token, now),
            Err(StsError::InvalidToken)
        );
        let mut forged = session.session_token.clone();
        forged.insert(3, 'x');
        assert_eq!(
            issuer.open(&session.access_key_id, &forged, now),
            Err(StsError::InvalidToken)
        );
        assert_eq!(
            Issuer::new([8; 32]).open(&session.access_key_id, &session.session_token, now),
            Err(StsError::InvalidToken)
        );
        assert_eq!(
            issuer.open(
                &session.access_key_id,
                &session.session_token,
                now + time::Duration::seconds(901)
            ),
            Err(StsError::ExpiredToken)
        );
    }

    #[test]
    fn assume_role_parameters() {
        assert!(
            check_assume_role("arn:aws:iam::123456789012:role/x", "ok-name", Some(900)).is_ok()
        );
        assert!(check_assume_role("arn:aws:iam::123:role/x", "ok", None).is_err());
        assert!(check_assume_role("arn:aws:iam::123456789012:role/x", "a", None).is_err());
        assert!(check_assume_role("arn:aws:iam::123456789012:role/x", "ok", Some(899)).is_err());
    }
}

//! The console's sign-in sessions: a random id in an HttpOnly cookie names a server-side
//! record (account, the key it was opened with, a CSRF token, an expiry). Nothing about
//! the session is in the cookie itself, so signing out or a restart ends it for good.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};
use time::{Duration, OffsetDateTime};

use crate::{AccountKey, Auth};

/// The cookie's name.
pub(crate) const COOKIE: &str = "gust_console";
/// The header every state-changing request carries its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lives from sign-in.
pub(crate) const LIFETIME: Duration = Duration::hours(12);
/// Sessions kept at once: at the cap the oldest goes (only holders of a key can open
/// sessions, but a script signing in in a loop must not grow the table without bound).
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The account the console acts in.
    pub(crate) account: String,
    /// The access key id it signed in with (`None` under `--no-auth`): the session ends
    /// when the server no longer has that key for that account.
    pub(crate) key_id: Option<String>,
    /// What state-changing requests must echo in [`CSRF_HEADER`].
    pub(crate) csrf: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) expires: OffsetDateTime,
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SignInError {
    #[error("The access key id or secret access key is not valid.")]
    InvalidKey,
}

/// The session table.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex (256 bits: not guessable).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS generator failing leaves zeros; uuid v4 (also OS-random) is mixed in so a
    // failure cannot yield a fixed, guessable id.
    let _ = getrandom::fill(&mut bytes);
    let extra = uuid::Uuid::new_v4();
    for (b, e) in bytes.iter_mut().zip(extra.as_bytes().iter().cycle()) {
        *b ^= e;
    }
    hex::encode(bytes)
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key pair that signs in, as `auth` knows it.
pub(crate) fn check_key<'a>(
    keys: &'a [AccountKey],
    access_key_id: &str,
    secret: &str,
) -> Result<&'a AccountKey, SignInError> {
    // Every key is compared, so the time taken does not tell which ids exist.
    let mut found = None;
    for key in keys {
        let id_ok = same_secret(&key.credentials.access_key_id, access_key_id);
        let secret_ok = same_secret(&key.credentials.secret_access_key, secret);
        if id_ok && secret_ok && found.is_none() {
            found = Some(key);
        }
    }
    found.ok_or(SignInError::InvalidKey)
}

impl Sessions {
    /// Opens a session for `account`.
    pub(crate) fn open(
        &self,
        account: &str,
        key_id: Option<&str>,
        now: OffsetDateTime,
    ) -> (String, Session) {
        let id = random_token();
        let session = Session {
            account: account.to_owned(),
            key_id: key_id.map(str::to_owned),
            csrf: random_token(),
            created: now,
            expires: now + LIFETIME,
        };
        let mut table = self.lock();
        table.retain(|_, s| s.expires > now);
        if table.len() >= MAX_SESSIONS {
            if let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
            {
                table.remove(&oldest);
            }
        }
        table.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session `id` names, if the server still accepts how it was opened.
    pub(crate) fn get(&self, id: &str, auth: &Auth, now: OffsetDateTime) -> Option<Session> {
        let mut table = self.lock();
        let session = table.get(id)?.clone();
        let still_valid = session.expires > now
            && match (auth, &session.key_id) {
                (Auth::Disabled, None) => true,
                (Auth::SigV4(keys), Some(key_id)) => keys.iter().any(|k| {
                    k.credentials.access_key_id == *key_id && k.account_id == session.account
                }),
                _ => false,
            };
        if still_valid {
            Some(session)
        } else {
            table.remove(id);
            None
        }
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a table that is still consistent (every
        // change is one map operation).
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session id the request's cookie carries.
pub(crate) fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value of a session.
pub(crate) fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.whole_seconds()
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a method changes state (and so needs the CSRF token).
pub(crate) fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a state-changing request was refused as cross-site.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CrossSite {
    #[error("The request came from another site.")]
    ForeignOrigin,
    #[error("The request has no valid CSRF token.")]
    MissingToken,
}

/// Checks that a state-changing request comes from the console's own pages: `Origin` (when
/// sent) is this host, `Sec-Fetch-Site` (when sent) is `same-origin`.
pub(crate) fn check_same_origin(headers: &HeaderMap) -> Result<(), CrossSite> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        if site != "same-origin" {
            return Err(CrossSite::ForeignOrigin);
        }
    }
    if let Some(origin) = header("origin") {
        let host = header("host").ok_or(CrossSite::ForeignOrigin)?;
        let bare = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .ok_or(CrossSite::ForeignOrigin)?;
        if !bare.eq_ignore_ascii_case(host) {
            return Err(CrossSite::ForeignOrigin);
        }
    }
    Ok(())
}

/// Checks a state-changing request's CSRF token and origin against its session.
pub(crate) fn check_csrf(headers: &HeaderMap, session: &Session) -> Result<(), CrossSite> {
    check_same_origin(headers)?;
    let token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(CrossSite::MissingToken)?;
    if same_secret(token, &session.csrf) {
        Ok(())
    } else {
        Err(CrossSite::MissingToken)
    }
}

/// Why an API call was refused before it ran.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Refusal {
    #[error("Sign in to use the console.")]
    NotSignedIn,
    #[error("{0}")]
    CrossSite(#[from] CrossSite),
}

/// The gate of every API call but sign-in: a live session, and for a state-changing
/// method its CSRF token from the console's own origin.
pub(crate) fn admit(
    sessions: &Sessions,
    auth: &Auth,
    method: &Method,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(String, Session), Refusal> {
    let id = cookie_id(headers).ok_or(Refusal::NotSignedIn)?;
    let session = sessions.get(&id, auth, now).ok_or(Refusal::NotSignedIn)?;
    if is_state_changing(method) {
        check_csrf(headers, &session)?;
    }
    Ok((id, session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credentials;

    fn keys() -> Vec<AccountKey> {
        vec![
            AccountKey {
                credentials: Credentials {
                    access_key_id: "AKIDONE".into(),
                    secret_access_key: "secret-one".into(),
                },
                account_id: "111111111111".into(),
            },
            AccountKey {
                credentials: Credentials {
                    access_key_id: "AKIDTWO".into(),
                    secret_access_key: "secret-two".into(),
                },
                account_id: "222222222222".into(),
            },
        ]
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid")
    }

    #[test]
    fn sign_in_takes_the_keys_account_and_refuses_wrong_secrets() {
        let keys = keys();
        let key = check_key(&keys, "AKIDTWO", "secret-two").expect("valid key");
        assert_eq!(key.account_id, "222222222222");
        assert_eq!(
            check_key(&keys, "AKIDTWO", "secret-one").map(|k| &k.account_id),
            Err(SignInError::InvalidKey)
        );
        assert_eq!(
            check_key(&keys, "AKIDNONE", "secret-one").map(|k| &k.account_id),
            Err(SignInError::InvalidKey)
        );
        assert!(check_key(&keys, "", "").is_err());
    }

    #[test]
    fn sessions_expire_and_follow_the_configured_keys() {
        let sessions = Sessions::default();
        let auth = Auth::SigV4(keys());
        let (id, session) = sessions.open("111111111111", Some("AKIDONE"), t0());
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf);
        assert_eq!(
            sessions.get(&id, &auth, t0() + Duration::hours(11)),
            Some(session.clone())
        );
        // Unknown ids, another server's configuration, and expiry all end it.
        assert_eq!(sessions.get("nope", &auth, t0()), None);
        assert_eq!(sessions.get(&id, &Auth::Disabled, t0()), None);
        let (id, _) = sessions.open("111111111111", Some("AKIDONE"), t0());
        assert_eq!(sessions.get(&id, &auth, t0() + Duration::hours(12)), None);
        // A key that moved to another account no longer opens the old account.
        let (id, _) = sessions.open("222222222222", Some("AKIDONE"), t0());
        assert_eq!(sessions.get(&id, &auth, t0()), None);
        let (id, _) = sessions.open("111111111111", Some("AKIDONE"), t0());
        sessions.close(&id);
        assert_eq!(sessions.get(&id, &auth, t0()), None);
    }

    #[test]
    fn no_auth_sessions_only_under_no_auth() {
        let sessions = Sessions::default();
        let (id, _) = sessions.open("000000000000", None, t0());
        assert!(sessions.get(&id, &Auth::Disabled, t0()).is_some());
        assert!(sessions.get(&id, &Auth::SigV4(keys()), t0()).is_none());
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn csrf_needs_the_token_and_the_same_origin() {
        let sessions = Sessions::default();
        let (_, session) = sessions.open("111111111111", Some("AKIDONE"), t0());
        let token = session.csrf.clone();
        let good = headers(&[
            ("host", "127.0.0.1:9000"),
            ("origin", "http://127.0.0.1:9000"),
            ("sec-fetch-site", "same-origin"),
            ("x-csrf-token", &token),
        ]);
        assert_eq!(check_csrf(&good, &session), Ok(()));
        // Without Origin and Sec-Fetch-Site (a non-browser client) the token suffices.
        let bare = headers(&[("host", "127.0.0.1:9000"), ("x-csrf-token", &token)]);
        assert_eq!(check_csrf(&bare, &session), Ok(()));
        let missing = headers(&[("host", "127.0.0.1:9000")]);
        assert_eq!(check_csrf(&missing, &session), Err(CrossSite::MissingToken));
        let wrong = headers(&[("host", "127.0.0.1:9000"), ("x-csrf-token", "0000")]);
        assert_eq!(check_csrf(&wrong, &session), Err(CrossSite::MissingToken));
        let foreign = headers(&[
            ("host", "127.0.0.1:9000"),
            ("origin", "http://evil.example"),
            ("x-csrf-token", &token),
        ]);
        assert_eq!(
            check_csrf(&foreign, &session),
            Err(CrossSite::ForeignOrigin)
        );
        let cross = headers(&[
            ("host", "127.0.0.1:9000"),
            ("sec-fetch-site", "cross-site"),
            ("x-csrf-token", &token),
        ]);
        assert_eq!(check_csrf(&cross, &session), Err(CrossSite::ForeignOrigin));
    }

    #[test]
    fn cookie_is_read_among_others_and_set_strictly() {
        let h = headers(&[("cookie", "a=1; gust_console=abc123; b=2")]);
        assert_eq!(cookie_id(&h), Some("abc123".into()));
        assert_eq!(cookie_id(&headers(&[("cookie", "gust_console=")])), None);
        let set = set_cookie("abc");
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/console",
            "Max-Age=43200",
        ] {
            assert!(set.contains(part), "{set}");
        }
    }

    #[test]
    fn the_gate_refuses_without_a_session_and_posts_without_the_token() {
        let sessions = Sessions::default();
        let auth = Auth::SigV4(keys());
        let none = headers(&[("host", "h")]);
        assert_eq!(
            admit(&sessions, &auth, &Method::GET, &none, t0()).map(|_| ()),
            Err(Refusal::NotSignedIn)
        );
        let forged = headers(&[("host", "h"), ("cookie", "gust_console=forged")]);
        assert_eq!(
            admit(&sessions, &auth, &Method::GET, &forged, t0()).map(|_| ()),
            Err(Refusal::NotSignedIn)
        );
        let (id, session) = sessions.open("111111111111", Some("AKIDONE"), t0());
        let cookie = format!("gust_console={id}");
        let signed_in = headers(&[("host", "h"), ("cookie", &cookie)]);
        assert!(admit(&sessions, &auth, &Method::GET, &signed_in, t0()).is_ok());
        assert_eq!(
            admit(&sessions, &auth, &Method::POST, &signed_in, t0()).map(|_| ()),
            Err(Refusal::CrossSite(CrossSite::MissingToken))
        );
        assert_eq!(
            admit(&sessions, &auth, &Method::DELETE, &signed_in, t0()).map(|_| ()),
            Err(Refusal::CrossSite(CrossSite::MissingToken))
        );
        let with_token = headers(&[
            ("host", "h"),
            ("cookie", &cookie),
            ("x-csrf-token", &session.csrf),
        ]);
        assert!(admit(&sessions, &auth, &Method::POST, &with_token, t0()).is_ok());
        // After expiry nothing passes.
        assert_eq!(
            admit(&sessions, &auth, &Method::GET, &signed_in, t0() + LIFETIME).map(|_| ()),
            Err(Refusal::NotSignedIn)
        );
    }
}

//! The web console at `/console`: a single-page app (embedded in the binary) and its JSON
//! API under `/console/api/`. Signing in takes an access key pair the server is configured
//! with and opens a server-side session named by an HttpOnly, SameSite=Strict cookie;
//! every API call needs that session, and every state-changing one its CSRF token. Failed
//! sign-ins are rate-limited per remote address and per access key id (see [`limit`]).
//!
//! Under `--no-auth` (`Auth::Disabled`) the console is open to whoever reaches the
//! listener, as the AWS APIs are: loading `/console/` (or `GET /console/api/session`)
//! opens a session for the default account without asking for a key, and `login` opens one
//! whatever it is sent. Such sessions are honoured only while the server runs without
//! authentication, and state-changing calls still need the session's CSRF token (another
//! site must not drive the console through the visitor's browser). The sign-out button is
//! hidden, since the next page load would open a new session anyway.
//!
//! The API reuses the service adapters as they are (Lambda's REST operations, the Logs and
//! metrics JSON handlers, the service crates' list functions), acting as the session's
//! account, so the console sees exactly what an SDK signed with the same key sees.

mod api;
mod api_lists;
mod assets;
mod limit;
pub(crate) mod session;

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::{ApiState, Auth};
use limit::SignInLimiter;
use session::{Session, Sessions};

/// The sessions of this process. One table serves every router in the process: a session
/// remembers the key it was opened with and is honoured only while the serving router's
/// configuration still has that key for that account (see [`Sessions::get`]).
static SESSIONS: LazyLock<Sessions> = LazyLock::new(Sessions::default);
/// The process's failed sign-ins.
static SIGN_IN_LIMITER: LazyLock<SignInLimiter> = LazyLock::new(SignInLimiter::default);

/// Serves a request whose path is `/console` or under `/console/`.
pub(crate) async fn serve(state: &ApiState, parts: Parts, body: Body) -> Response {
    serve_with(state, &SESSIONS, &SIGN_IN_LIMITER, parts, body).await
}

async fn serve_with(
    state: &ApiState,
    sessions: &Sessions,
    limiter: &SignInLimiter,
    parts: Parts,
    body: Body,
) -> Response {
    let path = parts.uri.path().to_owned();
    if let Some(rest) = path.strip_prefix("/console/api/") {
        let rest = rest.to_owned();
        return api::serve(state, sessions, limiter, parts, body, &rest).await;
    }
    if path == "/console/api" {
        return error(StatusCode::NOT_FOUND, "NotFound", "No such console API.");
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The console's pages are read with GET.",
        );
    }
    if let Some(name) = path.strip_prefix("/console/assets/") {
        return assets::serve(name);
    }
    match path.as_str() {
        "/console" => redirect("/console/", None),
        "/console/login" => assets::serve("index.html"),
        "/console/" => {
            let now = state.config.clock.now();
            if current(state, sessions, &parts).is_some() {
                return assets::serve("index.html");
            }
            // Without authentication the console opens at once, for the default account
            // (see the module's comment).
            if matches!(state.config.auth, Auth::Disabled) {
                let (id, _) = sessions.open(state.planes.default_account(), None, now);
                let mut response = assets::serve("index.html");
                set_cookie(&mut response, &session::set_cookie(&id));
                return response;
            }
            redirect("/console/login", None)
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "No such console page."),
    }
}

/// The request's live session.
fn current(state: &ApiState, sessions: &Sessions, parts: &Parts) -> Option<(String, Session)> {
    let id = session::cookie_id(&parts.headers)?;
    let session = sessions.get(&id, &state.config.auth, state.config.clock.now())?;
    Some((id, session))
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn redirect(to: &'static str, cookie: Option<&str>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        set_cookie(&mut response, cookie);
    }
    response
}

/// A JSON answer, never cached.
fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The console API's error shape: `{"code", "message"}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"code": code, "message": message}))
}

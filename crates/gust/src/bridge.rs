//! How functions call this server: each execution environment gets session credentials for
//! its function's role in its account and `AWS_ENDPOINT_URL`, and — when environments have
//! no network — the API served on a listener inside the environment's own namespace (at
//! the same address it has on the host), so SDK calls work unchanged in both modes.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gust_model::Clock;

/// Credentials handed to environments last this long (Lambda's longest session).
const ENVIRONMENT_SESSION_SECONDS: i64 = gust_sts::MAX_DURATION;

/// What every account's environments share: the issuer, and — once the server is
/// listening — its address and router.
#[derive(Debug)]
pub struct Shared {
    pub sessions: Arc<gust_sts::Issuer>,
    pub clock: Arc<dyn Clock>,
    pub endpoint: OnceLock<(String, u16)>,
    pub router: OnceLock<axum::Router>,
    pub header_timeout: Duration,
}

/// One account's view of [`Shared`].
#[derive(Debug)]
pub struct FunctionAccess {
    pub shared: Arc<Shared>,
    pub account: String,
}

impl gust_engine::ServiceAccess for FunctionAccess {
    fn credentials(&self, role: &str, function: &str) -> Vec<(String, String)> {
        // The session is named after the function, as Lambda names it.
        let session = self.shared.sessions.issue(
            &self.account,
            role,
            function,
            self.shared.clock.now(),
            ENVIRONMENT_SESSION_SECONDS,
        );
        vec![
            ("AWS_ACCESS_KEY_ID".into(), session.access_key_id),
            ("AWS_SECRET_ACCESS_KEY".into(), session.secret_access_key),
            ("AWS_SESSION_TOKEN".into(), session.session_token),
        ]
    }

    fn endpoint(&self) -> Option<(String, u16)> {
        self.shared.endpoint.get().cloned()
    }

    fn bridge(&self, listener: std::net::TcpListener) -> Box<dyn std::any::Any + Send + Sync> {
        let Some(router) = self.shared.router.get().cloned() else {
            return Box::new(());
        };
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot serve the API inside an environment's network");
                return Box::new(());
            }
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = gust_api::server::ConnectionLimits {
            max_connections: 64,
            header_timeout: self.shared.header_timeout,
        };
        tokio::spawn(gust_api::server::serve(
            listener,
            router,
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        // Dropped with the environment: the sender's drop ends the listener.
        Box::new(stop)
    }
}

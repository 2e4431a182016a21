//! The Extensions API (`/2020-01-01/extension/...`) of one environment: registration,
//! `event/next` long polls with `INVOKE` and `SHUTDOWN` events, `init/error` and
//! `exit/error`, as Lambda's.
//!
//! [`Extensions`] is the state machine; the HTTP handlers at the bottom only translate.
//! External extensions are the executables the engine started from `/opt/extensions`
//! ([`Extensions::expect`]): INIT is complete only when each has registered and called
//! `next`. Any other name registering during INIT is an internal extension (one the
//! runtime process registers itself); INIT then waits for its `next` too. An event is
//! queued for every subscribed extension and the extension is *busy* until it calls
//! `next` again: an invocation is complete when the runtime answered and no extension
//! subscribed to `INVOKE` is busy; SHUTDOWN waits the same way (bounded by the engine).
//!
//! Without extensions nothing of this runs: [`Extensions::active`] is one atomic load.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{watch, Notify};

/// Lambda's limit of extensions per function.
pub const MAX_EXTENSIONS: usize = 10;

/// What a `register` answers with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionInfo {
    /// `functionName`.
    pub function_name: String,
    /// `functionVersion`.
    pub function_version: String,
    /// `handler`.
    pub handler: String,
    /// `accountId` (sent when the request asks for it with `Lambda-Extension-Accept-Feature`).
    pub account_id: String,
}

/// Where an extension is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    /// Registered, has not asked for an event yet.
    Registered,
    /// Waiting in `next` (or about to): done with every event it got.
    Ready,
    /// Has an event it has not finished with (it has not called `next` since).
    Busy,
    /// Reported `init/error` with this type.
    InitError(String),
    /// Reported `exit/error` with this type.
    ExitError(String),
}

impl AgentState {
    /// Lambda's name for the state (`EXTENSION ... State: Ready`).
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::Registered => "Registered",
            AgentState::Ready | AgentState::Busy => "Ready",
            AgentState::InitError(_) => "InitError",
            AgentState::ExitError(_) => "ExitError",
        }
    }

    fn failed(&self) -> bool {
        matches!(self, AgentState::InitError(_) | AgentState::ExitError(_))
    }
}

/// An extension as the platform's log line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSummary {
    /// `Lambda-Extension-Name`.
    pub name: String,
    /// Its identifier.
    pub id: String,
    /// Started from `/opt/extensions` (else registered by the runtime process).
    pub external: bool,
    /// Lambda's state name.
    pub state: &'static str,
    /// Subscribed events, `INVOKE` before `SHUTDOWN`.
    pub events: Vec<&'static str>,
    /// The error type it reported, if any.
    pub error_type: Option<String>,
}

#[derive(Debug)]
struct Agent {
    id: String,
    name: String,
    external: bool,
    invoke: bool,
    shutdown: bool,
    state: AgentState,
    queue: VecDeque<Bytes>,
    wake: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    expected: Vec<String>,
    info: FunctionInfo,
    /// Registration is open until INIT ends.
    closed: bool,
    agents: Vec<Agent>,
    /// The first `init/error` or `exit/error` during INIT: (name, error type).
    init_error: Option<(String, String)>,
}

/// Why a request to the Extensions API was refused: status 403 (or 400) with Lambda's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// `errorType`.
    pub error_type: &'static str,
    /// `errorMessage`.
    pub message: String,
}

fn forbidden(error_type: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        status: 403,
        error_type,
        message: message.into(),
    }
}

/// How INIT stands as far as extensions are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitState {
    /// Some expected extension has not registered, or one has not called `next` yet.
    Waiting,
    /// Every extension is ready.
    Ready,
    /// An extension reported an error: (its name, the error type it sent, Lambda's type).
    Failed(String, String, &'static str),
}

/// The extensions of one environment.
#[derive(Debug)]
pub struct Extensions {
    active: AtomicBool,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            active: AtomicBool::new(false),
            state: Mutex::default(),
            changed: watch::channel(0).0,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `text` is a UUID as Lambda's identifiers are (`8-4-4-4-12` hex digits).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Extensions {
    /// Whether any extension is expected or registered (the warm path's only check).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Sets what `register` answers, and the external extensions INIT waits for (their
    /// executables' file names).
    pub fn expect(&self, info: FunctionInfo, names: Vec<String>) {
        let mut state = lock(&self.state);
        state.info = info;
        if !names.is_empty() {
            self.active.store(true, Ordering::Release);
        }
        state.expected = names;
    }

    /// `POST register`: the new extension's identifier and the body to answer with.
    pub fn register(
        &self,
        name: &str,
        body: &[u8],
        account_feature: bool,
    ) -> Result<(String, serde_json::Value), Refused> {
        if name.is_empty() {
            return Err(forbidden(
                "Extension.InvalidExtensionName",
                "Empty extension name",
            ));
        }
        let events = parse_events(body)?;
        let mut state = lock(&self.state);
        let external = state.expected.iter().any(|n| n == name);
        for event in &events {
            if !matches!(event.as_str(), "INVOKE" | "SHUTDOWN")
                || (!external && event == "SHUTDOWN")
            {
                let why = if event == "SHUTDOWN" {
                    "internal extensions cannot subscribe to SHUTDOWN"
                } else {
                    "unknown event type"
                };
                return Err(forbidden(
                    "Extension.InvalidEventType",
                    format!("{event}: {why}"),
                ));
            }
        }
        if state.closed {
            return Err(forbidden(
                "Extension.RegistrationClosed",
                "Extension registration closed already",
            ));
        }
        if let Some(agent) = state.agents.iter().find(|a| a.name == name) {
            return Err(forbidden(
                "Extension.InvalidExtensionState",
                format!(
                    "State transition from {} to Registered failed for extension {name}. Error: State transition is not allowed",
                    agent.state.name()
                ),
            ));
        }
        if state.agents.len() >= MAX_EXTENSIONS {
            return Err(forbidden(
                "Extension.TooManyExtensions",
                format!("Extension limit ({MAX_EXTENSIONS}) reached"),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        state.agents.push(Agent {
            id: id.clone(),
            name: name.to_owned(),
            external,
            invoke: events.iter().any(|e| e == "INVOKE"),
            shutdown: events.iter().any(|e| e == "SHUTDOWN"),
            state: AgentState::Registered,
            queue: VecDeque::new(),
            wake: Arc::new(Notify::new()),
        });
        let info = &state.info;
        let mut answer = serde_json::json!({
            "functionName": info.function_name,
            "functionVersion": info.function_version,
            "handler": info.handler,
        });
        if account_feature {
            answer["accountId"] = serde_json::json!(info.account_id);
        }
        drop(state);
        self.active.store(true, Ordering::Release);
        self.bump();
        Ok((id, answer))
    }

    /// The registered extension `id` names (checks the header's form first).
    pub fn check_id(&self, id: Option<&str>) -> Result<String, Refused> {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return Err(forbidden(
                "Extension.MissingExtensionIdentifier",
                "Missing Lambda-Extension-Identifier header",
            ));
        };
        if !is_uuid(id) {
            return Err(forbidden(
                "Extension.InvalidExtensionIdentifier",
                "Invalid Lambda-Extension-Identifier",
            ));
        }
        let state = lock(&self.state);
        match state.agents.iter().find(|a| a.id == id) {
            Some(agent) => Ok(agent.name.clone()),
            None => Err(forbidden(
                "Extension.UnknownExtensionIdentifier",
                format!("Unknown extension {id}"),
            )),
        }
    }

    /// The start of `GET event/next`: the extension is done with its events. Returns what
    /// to wait on for its next event (see [`Extensions::take_event`]).
    pub fn next_begins(&self, id: &str) -> Result<Arc<Notify>, Refused> {
        let mut state = lock(&self.state);
        let Some(agent) = state.agents.iter_mut().find(|a| a.id == id) else {
            return Err(forbidden(
                "Extension.UnknownExtensionIdentifier",
                format!("Unknown extension {id}"),
            ));
        };
        if agent.state.failed() {
            return Err(forbidden(
                "Extension.InvalidExtensionState",
                format!(
                    "State transition from {} to Ready failed for extension {id}. Error: State transition is not allowed",
                    agent.state.name()
                ),
            ));
        }
        if agent.queue.is_empty() {
            agent.state = AgentState::Ready;
        }
        let wake = Arc::clone(&agent.wake);
        drop(state);
        self.bump();
        Ok(wake)
    }

    /// The extension's next queued event, if there is one.
    pub fn take_event(&self, id: &str) -> Option<Bytes> {
        let mut state = lock(&self.state);
        state
            .agents
            .iter_mut()
            .find(|a| a.id == id)
            .and_then(|a| a.queue.pop_front())
    }

    /// Waits for extension `id`'s next event (after [`Extensions::next_begins`]).
    pub async fn next_event(&self, id: &str, wake: &Notify) -> Bytes {
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(event) = self.take_event(id) {
                return event;
            }
            notified.await;
        }
    }

    /// `POST init/error` (`exit` false) or `POST exit/error` (`exit` true).
    pub fn report_error(&self, id: &str, error_type: &str, exit: bool) -> Result<(), Refused> {
        let mut state = lock(&self.state);
        let in_init = !state.closed;
        let Some(agent) = state.agents.iter_mut().find(|a| a.id == id) else {
            return Err(forbidden(
                "Extension.UnknownExtensionIdentifier",
                "Unknown Lambda-Extension-Identifier",
            ));
        };
        let (to, allowed) = if exit {
            ("ExitError", !agent.state.failed())
        } else {
            ("InitError", in_init && !agent.state.failed())
        };
        if !allowed {
            return Err(forbidden(
                "Extension.InvalidExtensionState",
                format!(
                    "State transition from {} to {to} failed for extension {id}. Error: State transition is not allowed",
                    agent.state.name()
                ),
            ));
        }
        agent.state = if exit {
            AgentState::ExitError(error_type.to_owned())
        } else {
            AgentState::InitError(error_type.to_owned())
        };
        let name = agent.name.clone();
        if in_init && state.init_error.is_none() {
            state.init_error = Some((name, error_type.to_owned()));
        }
        drop(state);
        self.bump();
        Ok(())
    }

    /// Where INIT stands for the extensions.
    pub fn init_state(&self) -> InitState {
        let state = lock(&self.state);
        if let Some((name, error_type)) = &state.init_error {
            let kind = match state.agents.iter().find(|a| &a.name == name) {
                Some(Agent {
                    state: AgentState::ExitError(_),
                    ..
                }) => "Extension.ExitError",
                _ => "Extension.InitError",
            };
            return InitState::Failed(name.clone(), error_type.clone(), kind);
        }
        let registered = state
            .expected
            .iter()
            .all(|name| state.agents.iter().any(|a| &a.name == name));
        let ready = state
            .agents
            .iter()
            .all(|a| matches!(a.state, AgentState::Ready | AgentState::Busy));
        if registered && ready {
            InitState::Ready
        } else {
            InitState::Waiting
        }
    }

    /// INIT is over: registration closes.
    pub fn close_registration(&self) {
        lock(&self.state).closed = true;
    }

    /// Every extension, in registration order.
    pub fn summary(&self) -> Vec<AgentSummary> {
        let state = lock(&self.state);
        state
            .agents
            .iter()
            .map(|a| AgentSummary {
                name: a.name.clone(),
                id: a.id.clone(),
                external: a.external,
                state: a.state.name(),
                events: [("INVOKE", a.invoke), ("SHUTDOWN", a.shutdown)]
                    .into_iter()
                    .filter_map(|(e, on)| on.then_some(e))
                    .collect(),
                error_type: match &a.state {
                    AgentState::InitError(t) | AgentState::ExitError(t) => Some(t.clone()),
                    _ => None,
                },
            })
            .collect()
    }

    /// The names of expected extensions that have not registered.
    pub fn missing(&self) -> Vec<String> {
        let state = lock(&self.state);
        state
            .expected
            .iter()
            .filter(|n| !state.agents.iter().any(|a| &a.name == *n))
            .cloned()
            .collect()
    }

    /// Whether some extension reported `exit/error` (the environment is not reused).
    pub fn broken(&self) -> bool {
        lock(&self.state)
            .agents
            .iter()
            .any(|a| matches!(a.state, AgentState::ExitError(_)))
    }

    /// Whether an extension is subscribed to `INVOKE` (or, `shutdown`, to `SHUTDOWN`).
    pub fn subscribed(&self, shutdown: bool) -> bool {
        self.active()
            && lock(&self.state)
                .agents
                .iter()
                .any(|a| !a.state.failed() && if shutdown { a.shutdown } else { a.invoke })
    }

    /// Queues `event` for every extension subscribed to it; `true` if any was.
    fn deliver(&self, shutdown: bool, event: &Bytes) -> bool {
        let mut state = lock(&self.state);
        let mut any = false;
        for agent in state.agents.iter_mut() {
            let wanted = if shutdown {
                agent.shutdown
            } else {
                agent.invoke
            };
            if wanted && !agent.state.failed() {
                agent.queue.push_back(event.clone());
                agent.state = AgentState::Busy;
                agent.wake.notify_one();
                any = true;
            }
        }
        drop(state);
        if any {
            self.bump();
        }
        any
    }

    /// Sends the `INVOKE` event (the runtime has just been given the invocation).
    pub fn invoke(&self, request_id: &str, deadline_ms: u64, arn: &str, trace_id: &str) -> bool {
        // Lambda's member order (serde_json's maps would sort them).
        let text = |value: &str| serde_json::Value::from(value).to_string();
        let event = format!(
            r#"{{"eventType":"INVOKE","deadlineMs":{deadline_ms},"requestId":{},"invokedFunctionArn":{},"tracing":{{"type":"X-Amzn-Trace-Id","value":{}}}}}"#,
            text(request_id),
            text(arn),
            text(trace_id)
        );
        self.deliver(false, &Bytes::from(event))
    }

    /// Sends the `SHUTDOWN` event (`spindown`, `timeout` or `failure`).
    pub fn shutdown(&self, reason: &str, deadline_ms: u64) -> bool {
        let event = format!(
            r#"{{"eventType":"SHUTDOWN","shutdownReason":{},"deadlineMs":{deadline_ms}}}"#,
            serde_json::Value::from(reason)
        );
        self.deliver(true, &Bytes::from(event))
    }

    /// Whether no extension subscribed to `INVOKE` (or `SHUTDOWN`) is still busy.
    pub fn idle(&self, shutdown: bool) -> bool {
        lock(&self.state).agents.iter().all(|a| {
            let wanted = if shutdown { a.shutdown } else { a.invoke };
            !wanted || a.state.failed() || a.state != AgentState::Busy
        })
    }

    /// Waits until [`Extensions::idle`] (callers bound it with a timeout).
    pub async fn wait_idle(&self, shutdown: bool) {
        let mut changed = self.changed.subscribe();
        loop {
            changed.borrow_and_update();
            if self.idle(shutdown) {
                return;
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// A receiver that sees every change (for INIT's wait).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

fn parse_events(body: &[u8]) -> Result<Vec<String>, Refused> {
    let invalid = |message: String| Refused {
        status: 403,
        error_type: "InvalidRequestFormat",
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    if value
        .get("configurationKeys")
        .and_then(|k| k.as_array())
        .is_some_and(|k| !k.is_empty())
    {
        return Err(invalid(
            "configurationKeys are deprecated; use environment variables instead".into(),
        ));
    }
    match value.get("events") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(events)) => events
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("events must be strings".into()))
            })
            .collect(),
        Some(_) => Err(invalid("events must be an array".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> FunctionInfo {
        FunctionInfo {
            function_name: "f".into(),
            function_version: "$LATEST".into(),
            handler: "app.handler".into(),
            account_id: "000000000000".into(),
        }
    }

    #[test]
    fn registration_rules() {
        let ext = Extensions::default();
        assert!(!ext.active());
        ext.expect(info(), vec!["ext-a".into()]);
        assert!(ext.active());
        let (id, body) = ext
            .register("ext-a", br#"{"events":["INVOKE","SHUTDOWN"]}"#, false)
            .unwrap();
        assert!(is_uuid(&id));
        assert_eq!(
            body,
            serde_json::json!({"functionName":"f","functionVersion":"$LATEST","handler":"app.handler"})
        );
        // Twice under one name, unknown events, SHUTDOWN for an internal extension.
        let again = ext
            .register("ext-a", br#"{"events":[]}"#, false)
            .unwrap_err();
        assert_eq!(again.error_type, "Extension.InvalidExtensionState");
        let bad = ext
            .register("x", br#"{"events":["BOOT"]}"#, false)
            .unwrap_err();
        assert_eq!(bad.error_type, "Extension.InvalidEventType");
        let internal = ext
            .register("inside", br#"{"events":["SHUTDOWN"]}"#, false)
            .unwrap_err();
        assert_eq!(internal.error_type, "Extension.InvalidEventType");
        let unparsable = ext.register("x", b"nope", false).unwrap_err();
        assert_eq!(unparsable.error_type, "InvalidRequestFormat");
        assert_eq!(
            ext.register("", b"{}", false).unwrap_err().error_type,
            "Extension.InvalidExtensionName"
        );
        let (_, with_account) = ext
            .register("inside", br#"{"events":["INVOKE"]}"#, true)
            .unwrap();
        assert_eq!(with_account["accountId"], "000000000000");
        ext.close_registration();
        assert_eq!(
            ext.register("late", b"{}", false).unwrap_err().error_type,
            "Extension.RegistrationClosed"
        );
        // Identifier checks.
        assert_eq!(
            ext.check_id(None).unwrap_err().error_type,
            "Extension.MissingExtensionIdentifier"
        );
        assert_eq!(
            ext.check_id(Some("nope")).unwrap_err().error_type,
            "Extension.InvalidExtensionIdentifier"
        );
        assert_eq!(
            ext.check_id(Some("00000000-0000-4000-8000-000000000000"))
                .unwrap_err()
                .error_type,
            "Extension.UnknownExtensionIdentifier"
        );
        assert_eq!(ext.check_id(Some(&id)).unwrap(), "ext-a");
    }

    #[test]
    fn init_waits_for_every_registration_and_next() {
        let ext = Extensions::default();
        ext.expect(info(), vec!["a".into(), "b".into()]);
        assert_eq!(ext.init_state(), InitState::Waiting);
        let (a, _) = ext
            .register("a", br#"{"events":["INVOKE"]}"#, false)
            .unwrap();
        ext.next_begins(&a).unwrap();
        assert_eq!(ext.init_state(), InitState::Waiting, "b has not registered");
        assert_eq!(ext.missing(), vec!["b".to_owned()]);
        let (b, _) = ext.register("b", br#"{"events":[]}"#, false).unwrap();
        assert_eq!(
            ext.init_state(),
            InitState::Waiting,
            "b has not called next"
        );
        ext.next_begins(&b).unwrap();
        assert_eq!(ext.init_state(), InitState::Ready);
        let summary = ext.summary();
        assert_eq!(summary[0].events, vec!["INVOKE"]);
        assert_eq!(summary[1].state, "Ready");
    }

    #[test]
    fn an_init_error_fails_init() {
        let ext = Extensions::default();
        ext.expect(info(), vec!["a".into()]);
        let (a, _) = ext.register("a", b"{}", false).unwrap();
        ext.report_error(&a, "Extension.Boom", false).unwrap();
        assert_eq!(
            ext.init_state(),
            InitState::Failed("a".into(), "Extension.Boom".into(), "Extension.InitError")
        );
        assert_eq!(
            ext.summary()[0].error_type.as_deref(),
            Some("Extension.Boom")
        );
        // No second error, and no next after it.
        assert!(ext.report_error(&a, "x", false).is_err());
        assert!(ext.next_begins(&a).is_err());
    }

    #[tokio::test]
    async fn invoke_completes_when_every_subscriber_calls_next_again() {
        let ext = Arc::new(Extensions::default());
        ext.expect(info(), vec!["a".into(), "b".into()]);
        let (a, _) = ext
            .register("a", br#"{"events":["INVOKE","SHUTDOWN"]}"#, false)
            .unwrap();
        let (b, _) = ext
            .register("b", br#"{"events":["SHUTDOWN"]}"#, false)
            .unwrap();
        let wake_a = ext.next_begins(&a).unwrap();
        ext.next_begins(&b).unwrap();
        assert!(ext.idle(false));
        assert!(ext.subscribed(false) && ext.subscribed(true));
        // The waiting `next` gets the INVOKE event; `a` is busy until it asks again.
        let waiting = {
            let ext = Arc::clone(&ext);
            let a = a.clone();
            tokio::spawn(async move { ext.next_event(&a, &wake_a).await })
        };
        assert!(ext.invoke("req-1", 5, "arn", "Root=1"));
        let event: serde_json::Value = serde_json::from_slice(&waiting.await.unwrap()).unwrap();
        assert_eq!(event["eventType"], "INVOKE");
        assert_eq!(event["requestId"], "req-1");
        assert_eq!(event["tracing"]["type"], "X-Amzn-Trace-Id");
        assert!(!ext.idle(false));
        let done = {
            let ext = Arc::clone(&ext);
            tokio::spawn(async move { ext.wait_idle(false).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!done.is_finished());
        ext.next_begins(&a).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), done)
            .await
            .unwrap()
            .unwrap();
        // SHUTDOWN goes to both; each is busy until it calls next (or the engine stops waiting).
        assert!(ext.shutdown("spindown", 9));
        assert!(!ext.idle(true));
        let event: serde_json::Value =
            serde_json::from_slice(&ext.take_event(&b).unwrap()).unwrap();
        assert_eq!(event["shutdownReason"], "spindown");
        ext.next_begins(&b).unwrap();
        assert!(!ext.idle(true), "a still has its SHUTDOWN");
        assert!(ext.take_event(&a).is_some());
        ext.next_begins(&a).unwrap();
        assert!(ext.idle(true));
        // An extension that reports exit/error no longer holds anything up.
        ext.close_registration();
        ext.invoke("req-2", 5, "arn", "Root=1");
        ext.report_error(&a, "Extension.Bye", true).unwrap();
        assert!(ext.idle(false) && ext.broken());
    }
}

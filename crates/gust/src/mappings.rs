//! What the event source mappings' pollers need from this server: every account's
//! mappings (from its control plane) and synchronous invocations of their functions, with
//! the queue's trace continued so a loop through a queue is stopped as Lambda stops it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use gust_mappings::{ActiveMapping, BoxFuture, Outcome};
use gust_model::policy::Caller;
use gust_model::IdKind;

/// Every account's planes.
#[derive(Debug)]
pub struct MappingHost {
    pub planes: HashMap<String, gust_api::Plane>,
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    let _ = getrandom::fill(&mut buffer);
    hex::encode(buffer)
}

impl gust_mappings::Host for MappingHost {
    fn mappings(&self) -> BoxFuture<'_, Option<Vec<ActiveMapping>>> {
        Box::pin(async move {
            let mut all = Vec::new();
            for (account, plane) in &self.planes {
                let control = Arc::clone(&plane.control);
                let found = tokio::task::spawn_blocking(move || {
                    control.all_mappings().map(|mappings| {
                        mappings
                            .into_iter()
                            .map(|m| (control.mapping_function_arn(&m), m))
                            .collect::<Vec<_>>()
                    })
                })
                .await;
                let Ok(Ok(mappings)) = found else {
                    tracing::warn!(%account, "cannot read event source mappings");
                    return None;
                };
                all.extend(mappings.into_iter().map(|(function_arn, m)| ActiveMapping {
                    account: account.clone(),
                    uuid: m.uuid,
                    function_arn,
                    queue_arn: m.source_arn,
                    settings: m.settings,
                    state: m.state,
                    version_ms: m.last_modified_ms,
                }));
            }
            Some(all)
        })
    }

    fn settle<'a>(&'a self, account: &'a str, uuid: &'a str, version_ms: i64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(plane) = self.planes.get(account) else {
                return;
            };
            let (control, uuid) = (Arc::clone(&plane.control), uuid.to_owned());
            let done =
                tokio::task::spawn_blocking(move || control.settle_mapping(&uuid, version_ms))
                    .await;
            if !matches!(done, Ok(Ok(()))) {
                tracing::warn!(%account, "cannot settle an event source mapping");
            }
        })
    }

    fn record<'a>(&'a self, account: &'a str, uuid: &'a str, result: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(plane) = self.planes.get(account) else {
                return;
            };
            let control = Arc::clone(&plane.control);
            let (uuid, result) = (uuid.to_owned(), result.to_owned());
            let _ =
                tokio::task::spawn_blocking(move || control.record_mapping_result(&uuid, &result))
                    .await;
        })
    }

    fn invoke<'a>(
        &'a self,
        account: &'a str,
        function_arn: &'a str,
        payload: Bytes,
        trace: Option<String>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some(plane) = self.planes.get(account) else {
                return Outcome::Failed(format!("Function not found: {function_arn}"));
            };
            // The chain the first message belongs to, one step further.
            let control = Arc::clone(&plane.control);
            let arn = function_arn.to_owned();
            let recursion_allowed = tokio::task::spawn_blocking(move || {
                let reference = control.resolve(&arn, None, IdKind::Namespaced).ok()?;
                let allowed = control.async_settings(&reference).ok()?.recursion_allowed;
                Some((reference.name.to_string(), allowed))
            })
            .await
            .ok()
            .flatten();
            let Some((name, allowed)) = recursion_allowed else {
                return Outcome::Failed(format!("Function not found: {function_arn}"));
            };
            let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
            let (trace, count) = gust_model::trace::advance(
                trace.as_deref(),
                &format!("{account}:{name}"),
                &format!("1-{seconds:08x}-{}", random_hex(12)),
                &random_hex(8),
            );
            if count > gust_model::trace::RECURSION_LIMIT && !allowed {
                tracing::warn!(
                    function = %function_arn,
                    "Lambda has detected that the function is part of a recursive loop through a queue and stopped its invocation (RecursiveLoop: Terminate)"
                );
                return Outcome::Recursive;
            }
            let caller = Caller::Account(account.to_owned());
            match plane
                .invoke_for_service(function_arn, payload, &caller, None, Some(trace))
                .await
            {
                Ok(outcome) if outcome.function_error => Outcome::FunctionError,
                Ok(outcome) => Outcome::Response(outcome.body),
                Err(gust_api::ServiceInvokeError::Throttled) => Outcome::Throttled,
                Err(error) => Outcome::Failed(error.to_string()),
            }
        })
    }
}

//! What Lambda's asynchronous event queue runs on: every account's functions (their
//! settings and engines) and the destinations an outcome goes to (this server's queues,
//! topics and functions).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use gust_async::{AsyncEvent, AsyncInvoker, Attempt, BoxFuture, DeliveryAttributes, EventSettings};
use gust_model::event_invoke::{destination_kind, DestinationKind};
use gust_model::policy::Caller as Principal;

/// The functions and the destinations.
#[derive(Debug)]
pub struct Functions {
    pub planes: HashMap<String, gust_api::Plane>,
    pub sqs: Arc<gust_sqs::Sqs>,
    /// Set once topics start (after the listener is bound).
    pub sns: OnceLock<Arc<gust_sns::Sns>>,
    /// The queue itself, for function destinations.
    pub events: OnceLock<Weak<AsyncInvoker>>,
}

fn qualified(event: &AsyncEvent) -> String {
    match &event.qualifier {
        Some(qualifier) => format!("{}:{qualifier}", event.function),
        None => event.function.clone(),
    }
}

impl gust_async::Runner for Functions {
    fn settings<'a>(&'a self, event: &'a AsyncEvent) -> BoxFuture<'a, Option<EventSettings>> {
        Box::pin(async move {
            let plane = self.planes.get(&event.account)?;
            let control = Arc::clone(&plane.control);
            let name = qualified(event);
            let settings = tokio::task::spawn_blocking(move || {
                let reference = control
                    .resolve(&name, None, gust_model::IdKind::Namespaced)
                    .ok()?;
                control.async_settings(&reference).ok()
            })
            .await
            .ok()??;
            Some(EventSettings {
                retries: settings.config.retries(),
                max_age_seconds: settings.config.max_age(),
                on_success: settings.config.on_success,
                on_failure: settings.config.on_failure,
                dead_letter: settings.dead_letter,
                function_arn: settings.function_arn,
                recursion_allowed: settings.recursion_allowed,
            })
        })
    }

    fn run<'a>(&'a self, event: &'a AsyncEvent) -> BoxFuture<'a, Attempt> {
        Box::pin(async move {
            let Some(plane) = self.planes.get(&event.account) else {
                return Attempt::Gone;
            };
            let outcome = plane
                .invoke_for_service(
                    &qualified(event),
                    bytes::Bytes::from(event.payload.clone()),
                    &Principal::Account(event.account.clone()),
                    Some(event.request_id.clone()),
                    event.trace.clone(),
                )
                .await;
            match outcome {
                Ok(outcome) => Attempt::Ran {
                    body: String::from_utf8_lossy(&outcome.body).into_owned(),
                    executed_version: outcome.executed_version,
                    error: outcome.function_error.then(|| "Unhandled".to_owned()),
                },
                Err(gust_api::ServiceInvokeError::Throttled) => Attempt::Throttled,
                Err(gust_api::ServiceInvokeError::Failed(cause)) => Attempt::Failed(cause),
                Err(_) => Attempt::Gone,
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        account: &'a str,
        destination: &'a str,
        body: String,
        attributes: DeliveryAttributes,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            match destination_kind(destination).map_err(|e| e.to_string())? {
                DestinationKind::Queue => {
                    let queue = self
                        .sqs
                        .parse_arn(destination)
                        .ok_or_else(|| format!("{destination} is not a queue of this server"))?;
                    let caller = gust_sqs::Caller {
                        account: account.to_owned(),
                        principal: Principal::Service {
                            service: "lambda.amazonaws.com".into(),
                            source_arn: None,
                            source_account: Some(account.to_owned()),
                        },
                        sender_id: format!("lambda:{account}"),
                    };
                    let message = gust_sqs::message::Outgoing {
                        body,
                        attributes: attributes
                            .into_iter()
                            .map(|(name, data_type, value)| {
                                (
                                    name,
                                    gust_sqs::message::AttributeValue {
                                        data_type,
                                        string_value: Some(value),
                                        binary_value: None,
                                    },
                                )
                            })
                            .collect(),
                        ..Default::default()
                    };
                    let mut results = self
                        .sqs
                        .send(&caller, &queue, vec![message])
                        .await
                        .map_err(|e| e.to_string())?;
                    results
                        .pop()
                        .unwrap_or_else(|| Err(gust_sqs::SqsError::Internal("no result".into())))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                DestinationKind::Topic => {
                    let sns = self.sns.get().ok_or("topics have not started")?;
                    let request = gust_sns::PublishRequest {
                        topic_arn: Some(destination.to_owned()),
                        message: body,
                        message_attributes: attributes
                            .into_iter()
                            .map(|(name, data_type, value)| {
                                (
                                    name,
                                    gust_sns::MessageAttribute {
                                        data_type,
                                        string_value: Some(value),
                                        binary_value: None,
                                    },
                                )
                            })
                            .collect(),
                        ..Default::default()
                    };
                    sns.publish(&gust_sns::Caller::account(account), request)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                DestinationKind::Function => {
                    let events = self
                        .events
                        .get()
                        .and_then(Weak::upgrade)
                        .ok_or("the event queue has stopped")?;
                    let target_account = destination.split(':').nth(4).unwrap_or_default();
                    if target_account != account {
                        return Err(format!(
                            "{destination} is in another account; function destinations must be in the function's own"
                        ));
                    }
                    let plane = self.planes.get(account).ok_or("no such account")?;
                    let reference = plane
                        .service_may_invoke(destination, &Principal::Account(account.to_owned()))
                        .await
                        .map_err(|e| e.to_string())?;
                    events
                        .enqueue(AsyncEvent {
                            account: account.to_owned(),
                            function: reference.name.to_string(),
                            qualifier: reference.qualifier.as_ref().map(ToString::to_string),
                            payload: body,
                            request_id: uuid::Uuid::new_v4().to_string(),
                            trace: None,
                        })
                        .await
                        .map_err(|e| e.to_string())
                }
            }
        })
    }
}

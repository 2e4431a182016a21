//! What Lambda's asynchronous event queue runs on: every account's functions (their
//! settings and engines) and the destinations an outcome goes to (this server's queues,
//! topics and functions), through the same [`Targets`] SNS delivers with.

use std::sync::Arc;

use gust_async::{AsyncEvent, Attempt, BoxFuture, DeliveryAttributes, EventSettings};
use gust_model::event_invoke::{destination_kind, DestinationKind};
use gust_model::policy::Caller as Principal;

use crate::delivery::{EventError, Targets};

fn qualified(event: &AsyncEvent) -> String {
    match &event.qualifier {
        Some(qualifier) => format!("{}:{qualifier}", event.function),
        None => event.function.clone(),
    }
}

impl gust_async::Runner for Targets {
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
                    self.send_to_queue(destination, &caller, message)
                        .await
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
                // As on Lambda: an event from `lambda` whose detail is the record.
                DestinationKind::Bus => {
                    if destination.split(':').nth(4) != Some(account) {
                        return Err(format!(
                            "{destination} is in another account; bus destinations must be in the function's own"
                        ));
                    }
                    let bus = self
                        .eventbridge
                        .get()
                        .and_then(std::sync::Weak::upgrade)
                        .ok_or("EventBridge has not started")?;
                    let record: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let outcome = if record["requestContext"]["condition"] == "Success" {
                        "Success"
                    } else {
                        "Failure"
                    };
                    let function = record["requestContext"]["functionArn"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let entry = gust_events::PutEventsEntry {
                        source: Some("lambda".into()),
                        detail_type: Some(format!("Lambda Function Invocation Result - {outcome}")),
                        detail: Some(body),
                        resources: vec![destination.to_owned(), function],
                        event_bus_name: Some(destination.to_owned()),
                        ..Default::default()
                    };
                    let account = account.to_owned();
                    let output =
                        tokio::task::spawn_blocking(move || bus.put_events(&account, &[entry]))
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())?;
                    match output.entries.first() {
                        Some(entry) if entry.event_id.is_some() => Ok(()),
                        Some(entry) => Err(entry.error_message.clone().unwrap_or_default()),
                        None => Err("EventBridge returned no result".into()),
                    }
                }
                // The record as an object of the function's account's bucket.
                DestinationKind::Bucket => {
                    let s3 = self.s3.get().ok_or("object storage has not started")?;
                    let bucket = destination.rsplit(':').next().unwrap_or_default();
                    let record: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let function = record["requestContext"]["functionArn"]
                        .as_str()
                        .and_then(|arn| arn.split(':').nth(6))
                        .unwrap_or("function")
                        .to_owned();
                    let request_id = record["requestContext"]["requestId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let now = time::OffsetDateTime::now_utc();
                    let key = format!(
                        "aws/lambda/async/{function}/{:04}/{:02}/{:02}/{:04}-{:02}-{:02}T{:02}.{:02}.{:02}-{request_id}",
                        now.year(), u8::from(now.month()), now.day(),
                        now.year(), u8::from(now.month()), now.day(),
                        now.hour(), now.minute(), now.second(),
                    );
                    s3.put_bytes(account, bucket, &key, "application/json", body.into())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                DestinationKind::Function => {
                    if destination.split(':').nth(4) != Some(account) {
                        return Err(format!(
                            "{destination} is in another account; function destinations must be in the function's own"
                        ));
                    }
                    self.enqueue_event(
                        destination,
                        &Principal::Account(account.to_owned()),
                        body,
                        None,
                    )
                    .await
                    .map_err(|(EventError::Retry(cause) | EventError::Refused(cause))| cause)
                }
            }
        })
    }
}

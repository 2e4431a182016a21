//! Echoes the event with the context the runtime saw; fails on request, so both the
//! success and the error paths of `lambda_runtime` run against Gust.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if payload.get("fail").and_then(Value::as_bool) == Some(true) {
        return Err("asked to fail".into());
    }
    Ok(json!({
        "echo": payload,
        "request_id": context.request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "deadline": context.deadline,
        "function_name": context.env_config.function_name,
        "memory": context.env_config.memory,
        "version": context.env_config.version,
        "client_context": context.client_context.map(|c| c.custom),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

//! Streams its response with the official `lambda_runtime` crate's streaming API: three
//! chunks `chunk-0\n`, `chunk-1\n`, `chunk-2\n` with 200 ms pauses between them, so a
//! caller can see the first bytes long before the last. With `{"fail": true}` it streams
//! one chunk and then fails the stream (a mid-stream error).
//!
//! `lambda_runtime` 1.x sends every streamed response as
//! `application/vnd.awslambda.http-integration-response`: a JSON prelude
//! (`{"statusCode":200,"headers":{"content-type":"text/plain"},"cookies":[]}` here) and
//! eight NUL bytes come before the chunks.

use std::time::Duration;

use lambda_runtime::streaming::{channel, Body, Response};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

const CHUNKS: usize = 3;
const PAUSE: Duration = Duration::from_millis(200);

async fn handler(event: LambdaEvent<Value>) -> Result<Response<Body>, Error> {
    let fail = event.payload.get("fail").and_then(Value::as_bool) == Some(true);
    let (mut tx, rx) = channel();
    tokio::spawn(async move {
        for n in 0..CHUNKS {
            if n > 0 {
                tokio::time::sleep(PAUSE).await;
            }
            if tx.send_data(format!("chunk-{n}\n").into()).await.is_err() {
                return;
            }
            if fail {
                tokio::time::sleep(PAUSE).await;
                // lambda_runtime's way to fail a body mid-stream ("user body write aborted").
                tx.abort();
                return;
            }
        }
    });
    let mut response = Response::from(rx);
    response
        .metadata_prelude
        .headers
        .insert("content-type", "text/plain".parse()?);
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

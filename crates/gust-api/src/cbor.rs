//! Smithy RPC v2 CBOR (`POST /service/<Service>/operation/<Operation>`, header
//! `smithy-protocol: rpc-v2-cbor`), as a shared adapter: a request body becomes the same
//! JSON value the JSON protocol would carry, and a JSON value result or error is written
//! back as CBOR, guided by the service model (being written).

use axum::response::Response;
use serde_json::Value;

use crate::protocol::{Model, ServiceError};

/// The operation's input read from a CBOR body, shaped as the JSON protocol sends it.
pub(crate) fn input(model: &Model, operation: &str, body: &[u8]) -> Result<Value, ServiceError> {
    let _ = (model, operation, body);
    Err(ServiceError::client(
        400,
        "SerializationException",
        "CBOR is not supported yet.",
    ))
}

/// A result as CBOR.
pub(crate) fn response(model: &Model, operation: &str, value: &Value) -> Response {
    let _ = (model, operation);
    crate::protocol::json_response(value, "application/cbor")
}

/// An error as CBOR.
pub(crate) fn error(error: &ServiceError, namespace: &str) -> Response {
    crate::protocol::json_error(error, namespace, "application/cbor", true)
}

//! The CloudWatch (metrics) adapter: one handler from an operation's input (shaped as the
//! JSON protocol sends it; timestamps as epoch seconds) to its output, over
//! `gust_metrics::Metrics`. The protocols (Smithy RPC v2 CBOR, AWS JSON 1.0, query) are
//! the shared adapters' (being written).

use serde_json::Value;

use crate::protocol::ServiceError;

/// Serves one operation for `account`.
pub(crate) fn handle(
    service: &gust_metrics::Metrics,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    let _ = (service, account, input);
    Err(ServiceError::client(
        400,
        "InvalidAction",
        format!("The action {operation} is not valid for this endpoint."),
    ))
}

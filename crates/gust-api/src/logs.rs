//! The CloudWatch Logs adapter: AWS JSON 1.1 (`X-Amz-Target: Logs_20140328.<Operation>`,
//! signing name `logs`), one handler from an operation's input to its output over
//! `gust_logs::Logs` (being written).

use serde_json::Value;

use crate::protocol::ServiceError;

/// Serves one operation for `account`.
pub(crate) fn handle(
    service: &gust_logs::Logs,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    let _ = (service, account, input);
    Err(ServiceError::client(
        400,
        "UnknownOperationException",
        format!("The operation {operation} is not supported."),
    ))
}

//! The SQS adapter: one handler from an operation's input (a JSON value, from either
//! protocol) to its output, over `gust_sqs::Sqs`. Wire names and shapes are the service
//! model's; semantics are the service's.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use gust_sqs::message::{AttributeValue, Attributes, Outgoing, Sent};
use gust_sqs::{check_batch_ids, Caller, QueueAddress, ReceiveOptions, Sqs, SqsError};
use serde_json::{json, Map, Value};

use crate::protocol::ServiceError;

/// The JSON protocol's error namespace.
pub const NAMESPACE: &str = "com.amazonaws.sqs";

impl From<SqsError> for ServiceError {
    fn from(error: SqsError) -> Self {
        if let SqsError::Internal(cause) = &error {
            return ServiceError::internal(cause);
        }
        ServiceError {
            status: error.status(),
            code: error.query_code().to_owned(),
            shape: error.shape().to_owned(),
            message: error.to_string(),
            sender: error.sender_fault(),
        }
    }
}

/// What a request needs besides its input.
#[derive(Debug)]
pub struct Request<'a> {
    /// The caller.
    pub caller: Caller,
    /// `Host` of the request (queue URLs are built on it).
    pub host: &'a str,
    /// The queue named by the request's path (query protocol requests to a queue URL).
    pub path_queue: Option<QueueAddress>,
    /// The sender's trace header (`X-Amzn-Trace-Id`): SQS keeps it as a sent message's
    /// `AWSTraceHeader` system attribute when the sender gives none.
    pub trace: Option<&'a str>,
}

fn missing(name: &str) -> SqsError {
    SqsError::MissingParameter(name.to_owned())
}

fn string<'v>(input: &'v Value, name: &str) -> Result<Option<&'v str>, SqsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(SqsError::invalid_value(
            other,
            name,
            "The value must be a string.",
        )),
    }
}

fn required<'v>(input: &'v Value, name: &str) -> Result<&'v str, SqsError> {
    string(input, name)?.ok_or_else(|| missing(name))
}

fn integer(input: &Value, name: &str) -> Result<Option<i64>, SqsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(other) => Err(SqsError::invalid_value(
            other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned),
            name,
            "The value must be an integer.",
        )),
    }
}

fn strings(input: &Value, name: &str) -> Result<Vec<String>, SqsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SqsError::invalid_value(v, name, "The value must be a string."))
            })
            .collect(),
        Some(other) => Err(SqsError::invalid_value(
            other,
            name,
            "The value must be a list.",
        )),
    }
}

fn string_map(input: &Value, name: &str) -> Result<BTreeMap<String, String>, SqsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                other => Err(SqsError::invalid_value(
                    other,
                    name,
                    "The value must be a string.",
                )),
            })
            .collect(),
        Some(other) => Err(SqsError::invalid_value(
            other,
            name,
            "The value must be a map.",
        )),
    }
}

fn message_attributes(input: &Value, name: &str) -> Result<Attributes, SqsError> {
    let Some(map) = input.get(name).filter(|v| !v.is_null()) else {
        return Ok(Attributes::new());
    };
    let map = map
        .as_object()
        .ok_or_else(|| SqsError::invalid_value(map, name, "The value must be a map."))?;
    map.iter()
        .map(|(key, value)| {
            let binary = match string(value, "BinaryValue")? {
                Some(text) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|_| {
                            SqsError::InvalidParameterValue(format!(
                                "The binary value of message attribute '{key}' is not valid base64."
                            ))
                        })?,
                ),
                None => None,
            };
            Ok((
                key.clone(),
                AttributeValue {
                    data_type: string(value, "DataType")?.unwrap_or_default().to_owned(),
                    string_value: string(value, "StringValue")?.map(str::to_owned),
                    binary_value: binary,
                },
            ))
        })
        .collect()
}

fn render_attributes(attributes: &Attributes) -> Value {
    let mut out = Map::new();
    for (name, value) in attributes {
        let mut entry = Map::new();
        entry.insert("DataType".into(), json!(value.data_type));
        if let Some(text) = &value.string_value {
            entry.insert("StringValue".into(), json!(text));
        }
        if let Some(bytes) = &value.binary_value {
            entry.insert(
                "BinaryValue".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
        out.insert(name.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// A queue URL: `http://host/{account}/{name}` (any scheme and host; the path decides).
fn parse_url(url: &str) -> Result<QueueAddress, SqsError> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let mut segments = path.trim_end_matches('/').rsplit('/');
    match (segments.next(), segments.next()) {
        (Some(name), Some(account)) if !name.is_empty() && !account.is_empty() => {
            Ok(QueueAddress {
                account: account.to_owned(),
                name: name.to_owned(),
            })
        }
        _ => Err(SqsError::QueueDoesNotExist),
    }
}

/// The queue a path names (`/{account}/{name}`), for query requests sent to a queue URL.
pub fn path_queue(raw_path: &str) -> Option<QueueAddress> {
    let segments: Vec<&str> = raw_path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [account, name] if !account.is_empty() && !name.is_empty() => Some(QueueAddress {
            account: (*account).to_owned(),
            name: (*name).to_owned(),
        }),
        _ => None,
    }
}

fn url(host: &str, queue: &QueueAddress) -> String {
    format!("http://{host}/{}/{}", queue.account, queue.name)
}

fn queue_of(input: &Value, request: &Request<'_>) -> Result<QueueAddress, SqsError> {
    match string(input, "QueueUrl")? {
        Some(url) => parse_url(url),
        None => request
            .path_queue
            .clone()
            .ok_or_else(|| missing("QueueUrl")),
    }
}

fn sent_fields(sent: &Sent, out: &mut Map<String, Value>) {
    out.insert("MessageId".into(), json!(sent.message_id));
    out.insert("MD5OfMessageBody".into(), json!(sent.md5_of_body));
    if let Some(md5) = &sent.md5_of_attributes {
        out.insert("MD5OfMessageAttributes".into(), json!(md5));
    }
    if let Some(md5) = &sent.md5_of_system_attributes {
        out.insert("MD5OfMessageSystemAttributes".into(), json!(md5));
    }
    if let Some(sequence) = &sent.sequence_number {
        out.insert("SequenceNumber".into(), json!(sequence));
    }
}

fn outgoing(entry: &Value, trace: Option<&str>) -> Result<Outgoing, SqsError> {
    let delay = integer(entry, "DelaySeconds")?;
    if let Some(delay) = delay {
        if !(0..=900).contains(&delay) {
            return Err(SqsError::invalid_value(
                delay,
                "DelaySeconds",
                "DelaySeconds must be >= 0 and <= 900.",
            ));
        }
    }
    Ok(Outgoing {
        body: required(entry, "MessageBody")?.to_owned(),
        delay_seconds: delay.map(|d| d as u32),
        attributes: message_attributes(entry, "MessageAttributes")?,
        system_attributes: message_attributes(entry, "MessageSystemAttributes")?,
        trace: trace.map(str::to_owned),
        group_id: string(entry, "MessageGroupId")?.map(str::to_owned),
        deduplication_id: string(entry, "MessageDeduplicationId")?.map(str::to_owned),
    })
}

fn entries<'v>(input: &'v Value, entry_type: &'static str) -> Result<&'v [Value], SqsError> {
    let entries = match input.get("Entries") {
        None | Some(Value::Null) => return Err(missing("Entries")),
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => {
            return Err(SqsError::invalid_value(
                other,
                "Entries",
                "The value must be a list.",
            ))
        }
    };
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.get("Id").and_then(Value::as_str).unwrap_or(""))
        .collect();
    check_batch_ids(ids.into_iter(), entry_type)?;
    Ok(entries)
}

fn failed(id: &str, error: SqsError) -> Value {
    json!({"Id": id, "SenderFault": error.sender_fault(), "Code": error.query_code(), "Message": error.to_string()})
}

/// A batch's result: `Successful` and `Failed`, both always present.
fn batch_result(ids: &[&str], results: Vec<Result<Map<String, Value>, SqsError>>) -> Value {
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for (id, result) in ids.iter().zip(results) {
        match result {
            Ok(mut fields) => {
                fields.insert("Id".into(), json!(id));
                successful.push(Value::Object(fields));
            }
            Err(error) => failures.push(failed(id, error)),
        }
    }
    json!({"Successful": successful, "Failed": failures})
}

fn ids(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e.get("Id").and_then(Value::as_str).unwrap_or(""))
        .collect()
}

/// Runs one operation.
pub async fn handle(
    sqs: &Arc<Sqs>,
    operation: &str,
    input: &Value,
    request: &Request<'_>,
) -> Result<Value, ServiceError> {
    Ok(run(sqs, operation, input, request).await?)
}

async fn run(
    sqs: &Arc<Sqs>,
    operation: &str,
    input: &Value,
    request: &Request<'_>,
) -> Result<Value, SqsError> {
    let caller = &request.caller;
    let host = request.host;
    match operation {
        "CreateQueue" => {
            let name = required(input, "QueueName")?;
            let queue = sqs
                .create_queue(
                    caller,
                    name,
                    &string_map(input, "Attributes")?,
                    &string_map(input, "tags")?,
                )
                .await?;
            Ok(json!({"QueueUrl": url(host, &queue)}))
        }
        "GetQueueUrl" => {
            let name = required(input, "QueueName")?;
            let owner = string(input, "QueueOwnerAWSAccountId")?;
            let queue = sqs.get_queue_url(caller, name, owner).await?;
            Ok(json!({"QueueUrl": url(host, &queue)}))
        }
        "ListQueues" => {
            let (queues, token) = sqs
                .list_queues(
                    caller,
                    string(input, "QueueNamePrefix")?.unwrap_or(""),
                    integer(input, "MaxResults")?,
                    string(input, "NextToken")?,
                )
                .await?;
            let mut out = Map::new();
            if !queues.is_empty() {
                let urls: Vec<String> = queues.iter().map(|q| url(host, q)).collect();
                out.insert("QueueUrls".into(), json!(urls));
            }
            if let Some(token) = token {
                out.insert("NextToken".into(), json!(token));
            }
            Ok(Value::Object(out))
        }
        "DeleteQueue" => {
            sqs.delete_queue(caller, &queue_of(input, request)?).await?;
            Ok(json!({}))
        }
        "GetQueueAttributes" => {
            let queue = queue_of(input, request)?;
            let names = strings(input, "AttributeNames")?;
            let attributes = sqs.get_attributes(caller, &queue, &names).await?;
            Ok(if attributes.is_empty() {
                json!({})
            } else {
                json!({"Attributes": attributes})
            })
        }
        "SetQueueAttributes" => {
            let queue = queue_of(input, request)?;
            if input.get("Attributes").is_none_or(Value::is_null) {
                return Err(missing("Attributes"));
            }
            sqs.set_attributes(caller, &queue, &string_map(input, "Attributes")?)
                .await?;
            Ok(json!({}))
        }
        "SendMessage" => {
            let queue = queue_of(input, request)?;
            let message = outgoing(input, request.trace)?;
            let mut results = sqs.send(caller, &queue, vec![message]).await?;
            let sent = results
                .pop()
                .ok_or_else(|| SqsError::Internal("no send result".into()))??;
            let mut out = Map::new();
            sent_fields(&sent, &mut out);
            Ok(Value::Object(out))
        }
        "SendMessageBatch" => {
            let queue = queue_of(input, request)?;
            let entries = entries(input, "SendMessageBatchRequestEntry")?;
            let parsed: Vec<Result<Outgoing, SqsError>> = entries
                .iter()
                .map(|entry| outgoing(entry, request.trace))
                .collect();
            let valid: Vec<Outgoing> = parsed
                .iter()
                .filter_map(|p| p.as_ref().ok().cloned())
                .collect();
            Sqs::check_batch_size(&valid)?;
            let mut sent = sqs.send(caller, &queue, valid).await?.into_iter();
            let results = parsed
                .into_iter()
                .map(|p| match p {
                    Ok(_) => sent
                        .next()
                        .unwrap_or_else(|| Err(SqsError::Internal("missing send result".into())))
                        .map(|s| {
                            let mut fields = Map::new();
                            sent_fields(&s, &mut fields);
                            fields
                        }),
                    Err(error) => Err(error),
                })
                .collect();
            Ok(batch_result(&ids(entries), results))
        }
        "ReceiveMessage" => {
            let queue = queue_of(input, request)?;
            let mut system = strings(input, "MessageSystemAttributeNames")?;
            system.extend(strings(input, "AttributeNames")?);
            let options = ReceiveOptions {
                max: integer(input, "MaxNumberOfMessages")?,
                visibility_timeout: integer(input, "VisibilityTimeout")?,
                wait_seconds: integer(input, "WaitTimeSeconds")?,
                system_attribute_names: system,
                message_attribute_names: strings(input, "MessageAttributeNames")?,
                attempt_id: string(input, "ReceiveRequestAttemptId")?.map(str::to_owned),
            };
            let messages = sqs.receive(caller, &queue, &options).await?;
            if messages.is_empty() {
                return Ok(json!({}));
            }
            let rendered: Vec<Value> = messages
                .into_iter()
                .map(|m| {
                    let mut out = Map::new();
                    out.insert("MessageId".into(), json!(m.message_id));
                    out.insert("ReceiptHandle".into(), json!(m.receipt_handle));
                    out.insert("MD5OfBody".into(), json!(m.md5_of_body));
                    out.insert("Body".into(), json!(m.body));
                    if !m.attributes.is_empty() {
                        out.insert("Attributes".into(), json!(m.attributes));
                    }
                    if let Some(md5) = &m.md5_of_message_attributes {
                        out.insert("MD5OfMessageAttributes".into(), json!(md5));
                        out.insert(
                            "MessageAttributes".into(),
                            render_attributes(&m.message_attributes),
                        );
                    }
                    Value::Object(out)
                })
                .collect();
            Ok(json!({"Messages": rendered}))
        }
        "DeleteMessage" => {
            let queue = queue_of(input, request)?;
            let handle = required(input, "ReceiptHandle")?.to_owned();
            let mut results = sqs.delete(caller, &queue, &[handle]).await?;
            results.pop().unwrap_or(Ok(()))?;
            Ok(json!({}))
        }
        "DeleteMessageBatch" => {
            let queue = queue_of(input, request)?;
            let entries = entries(input, "DeleteMessageBatchRequestEntry")?;
            let handles: Vec<Result<String, SqsError>> = entries
                .iter()
                .map(|e| required(e, "ReceiptHandle").map(str::to_owned))
                .collect();
            let valid: Vec<String> = handles
                .iter()
                .filter_map(|h| h.as_ref().ok().cloned())
                .collect();
            let mut deleted = sqs.delete(caller, &queue, &valid).await?.into_iter();
            let results = handles
                .into_iter()
                .map(|h| match h {
                    Ok(_) => deleted.next().unwrap_or(Ok(())).map(|()| Map::new()),
                    Err(error) => Err(error),
                })
                .collect();
            Ok(batch_result(&ids(entries), results))
        }
        "ChangeMessageVisibility" => {
            let queue = queue_of(input, request)?;
            let handle = required(input, "ReceiptHandle")?.to_owned();
            let timeout =
                integer(input, "VisibilityTimeout")?.ok_or_else(|| missing("VisibilityTimeout"))?;
            let mut results = sqs
                .change_visibility(caller, &queue, &[(handle, timeout)])
                .await?;
            results.pop().unwrap_or(Ok(()))?;
            Ok(json!({}))
        }
        "ChangeMessageVisibilityBatch" => {
            let queue = queue_of(input, request)?;
            let entries = entries(input, "ChangeMessageVisibilityBatchRequestEntry")?;
            let parsed: Vec<Result<(String, i64), SqsError>> = entries
                .iter()
                .map(|e| {
                    let handle = required(e, "ReceiptHandle")?.to_owned();
                    let timeout = integer(e, "VisibilityTimeout")?.unwrap_or(0);
                    Ok((handle, timeout))
                })
                .collect();
            let valid: Vec<(String, i64)> = parsed
                .iter()
                .filter_map(|p| p.as_ref().ok().cloned())
                .collect();
            let mut changed = sqs
                .change_visibility(caller, &queue, &valid)
                .await?
                .into_iter();
            let results = parsed
                .into_iter()
                .map(|p| match p {
                    Ok(_) => changed.next().unwrap_or(Ok(())).map(|()| Map::new()),
                    Err(error) => Err(error),
                })
                .collect();
            Ok(batch_result(&ids(entries), results))
        }
        "PurgeQueue" => {
            sqs.purge(caller, &queue_of(input, request)?).await?;
            Ok(json!({}))
        }
        "TagQueue" => {
            let queue = queue_of(input, request)?;
            if input.get("Tags").is_none_or(Value::is_null) {
                return Err(missing("Tags"));
            }
            sqs.tag(caller, &queue, &string_map(input, "Tags")?).await?;
            Ok(json!({}))
        }
        "UntagQueue" => {
            let queue = queue_of(input, request)?;
            sqs.untag(caller, &queue, &strings(input, "TagKeys")?)
                .await?;
            Ok(json!({}))
        }
        "ListQueueTags" => {
            let tags = sqs.tags(caller, &queue_of(input, request)?).await?;
            Ok(if tags.is_empty() {
                json!({})
            } else {
                json!({"Tags": tags})
            })
        }
        "ListDeadLetterSourceQueues" => {
            let queue = queue_of(input, request)?;
            let (queues, token) = sqs
                .dead_letter_sources(
                    caller,
                    &queue,
                    integer(input, "MaxResults")?,
                    string(input, "NextToken")?,
                )
                .await?;
            let urls: Vec<String> = queues.iter().map(|q| url(host, q)).collect();
            let mut out = json!({"queueUrls": urls});
            if let Some(token) = token {
                out["NextToken"] = json!(token);
            }
            Ok(out)
        }
        "StartMessageMoveTask" => {
            let handle = sqs
                .start_move_task(
                    caller,
                    required(input, "SourceArn")?,
                    string(input, "DestinationArn")?,
                    integer(input, "MaxNumberOfMessagesPerSecond")?,
                )
                .await?;
            Ok(json!({"TaskHandle": handle}))
        }
        "ListMessageMoveTasks" => {
            let tasks = sqs
                .list_move_tasks(
                    caller,
                    required(input, "SourceArn")?,
                    integer(input, "MaxResults")?,
                )
                .await?;
            let results: Vec<Value> = tasks
                .into_iter()
                .map(|t| {
                    let mut out = json!({
                        "Status": t.status,
                        "SourceArn": t.source_arn,
                        "ApproximateNumberOfMessagesMoved": t.moved,
                        "ApproximateNumberOfMessagesToMove": t.to_move,
                        "StartedTimestamp": t.started_ms,
                    });
                    if t.status == "RUNNING" {
                        out["TaskHandle"] = json!(t.handle);
                    }
                    if let Some(destination) = t.destination_arn {
                        out["DestinationArn"] = json!(destination);
                    }
                    if let Some(rate) = t.max_per_second {
                        out["MaxNumberOfMessagesPerSecond"] = json!(rate);
                    }
                    if let Some(reason) = t.failure_reason {
                        out["FailureReason"] = json!(reason);
                    }
                    out
                })
                .collect();
            Ok(json!({"Results": results}))
        }
        "CancelMessageMoveTask" => {
            let moved = sqs
                .cancel_move_task(caller, required(input, "TaskHandle")?)
                .await?;
            Ok(json!({"ApproximateNumberOfMessagesMoved": moved}))
        }
        "AddPermission" => {
            let queue = queue_of(input, request)?;
            sqs.add_permission(
                caller,
                &queue,
                required(input, "Label")?,
                &strings(input, "AWSAccountIds")?,
                &strings(input, "Actions")?,
            )
            .await?;
            Ok(json!({}))
        }
        "RemovePermission" => {
            let queue = queue_of(input, request)?;
            sqs.remove_permission(caller, &queue, required(input, "Label")?)
                .await?;
            Ok(json!({}))
        }
        other => Err(SqsError::InvalidParameterValue(format!(
            "An unknown operation was requested: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls() {
        let queue = parse_url("http://127.0.0.1:9070/000000000000/q").unwrap();
        assert_eq!(
            (queue.account.as_str(), queue.name.as_str()),
            ("000000000000", "q")
        );
        assert!(parse_url("http://host/q").is_err());
        assert_eq!(
            parse_url("https://sqs.us-east-1.amazonaws.com/123456789012/a.fifo")
                .unwrap()
                .name,
            "a.fifo"
        );
        assert_eq!(path_queue("/1/q").unwrap().name, "q");
        assert!(path_queue("/").is_none());
    }
}

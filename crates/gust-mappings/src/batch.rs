//! The SQS event's records, the view filters match against, and the partial batch
//! response.

use base64::Engine;
use serde_json::{json, Map, Value};

/// One message as a record of Lambda's SQS event (lower-camel attribute keys, system
/// attributes as strings, `md5OfMessageAttributes` only when there are attributes).
pub fn record(message: &gust_sqs::Received, queue_arn: &str, region: &str) -> Value {
    let mut attributes = Map::new();
    for (name, value) in &message.attributes {
        attributes.insert(name.clone(), Value::String(value.clone()));
    }
    let mut message_attributes = Map::new();
    for (name, value) in &message.message_attributes {
        let mut out = Map::new();
        if let Some(text) = &value.string_value {
            out.insert("stringValue".into(), json!(text));
        }
        if let Some(bytes) = &value.binary_value {
            out.insert(
                "binaryValue".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
        out.insert("stringListValues".into(), json!([]));
        out.insert("binaryListValues".into(), json!([]));
        out.insert("dataType".into(), json!(value.data_type));
        message_attributes.insert(name.clone(), Value::Object(out));
    }
    let mut record = json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let Some(md5) = &message.md5_of_message_attributes {
        record["md5OfMessageAttributes"] = json!(md5);
    }
    record
}

/// What a filter pattern sees: the record, with a JSON body parsed (Lambda filters on the
/// body's fields when it is JSON, on the text otherwise).
pub fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(body) = record.get("body").and_then(Value::as_str) {
        if let Ok(parsed @ (Value::Object(_) | Value::Array(_))) =
            serde_json::from_str::<Value>(body)
        {
            view["body"] = parsed;
        }
    }
    view
}

/// The message ids a partial batch response reports as failed; `None` when the response
/// is invalid, which fails the whole batch (Lambda's rules: not JSON, a missing, empty or
/// unknown `itemIdentifier`, a wrong key). An empty or null response, or an empty or null
/// list, is a full success.
pub fn failed_items(body: &[u8], batch: &[&str]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() {
        return Some(Vec::new());
    }
    let value: Value = serde_json::from_str(text).ok()?;
    let failures = match &value {
        Value::Null => return Some(Vec::new()),
        Value::Object(object) => match object.get("batchItemFailures") {
            None | Some(Value::Null) => return Some(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return None,
        },
        _ => return None,
    };
    let known: std::collections::HashSet<&str> = batch.iter().copied().collect();
    let mut failed = Vec::new();
    for item in failures {
        let id = item.get("itemIdentifier")?.as_str()?;
        if id.is_empty() || !known.contains(id) {
            return None;
        }
        failed.push(id.to_owned());
    }
    Some(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_batch_responses_follow_lambdas_rules() {
        let batch = ["a", "b", "c"];
        assert_eq!(failed_items(b"", &batch), Some(vec![]));
        assert_eq!(failed_items(b"null", &batch), Some(vec![]));
        assert_eq!(failed_items(b"{}", &batch), Some(vec![]));
        assert_eq!(
            failed_items(br#"{"batchItemFailures": []}"#, &batch),
            Some(vec![])
        );
        assert_eq!(
            failed_items(
                br#"{"batchItemFailures": [{"itemIdentifier": "b"}]}"#,
                &batch
            ),
            Some(vec!["b".to_owned()])
        );
        for invalid in [
            &br#"{"batchItemFailures": [{"itemIdentifier": "z"}]}"#[..],
            br#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
            br#"{"batchItemFailures": [{"itemId": "a"}]}"#,
            br#"{"batchItemFailures": "a"}"#,
            b"not json",
            b"[1]",
        ] {
            assert_eq!(
                failed_items(invalid, &batch),
                None,
                "{}",
                String::from_utf8_lossy(invalid)
            );
        }
    }

    #[test]
    fn json_bodies_are_filtered_as_objects() {
        let record = json!({"body": "{\"kind\": \"order\"}", "attributes": {}});
        assert_eq!(filter_view(&record)["body"]["kind"], "order");
        let plain = json!({"body": "hello"});
        assert_eq!(filter_view(&plain)["body"], "hello");
    }
}

//! The SNS adapter: one handler from an operation's input (read from the query protocol
//! through the service model) to its output, over `gust_sns::Sns`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use gust_sns::{
    BatchEntry, Caller, MessageAttribute, MessageAttributes, PublishRequest, Sns, SnsError,
};
use serde_json::{json, Value};

use crate::protocol::ServiceError;

impl From<SnsError> for ServiceError {
    fn from(error: SnsError) -> Self {
        if let SnsError::Internal(cause) = &error {
            return ServiceError::internal(cause);
        }
        ServiceError {
            status: error.status(),
            code: error.code().to_owned(),
            shape: error.shape().to_owned(),
            message: error.to_string(),
            sender: error.sender_fault(),
        }
    }
}

/// The query protocol's complaint about a missing member (`topicArn`).
fn missing(name: &str) -> ServiceError {
    let mut chars = name.chars();
    let member: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default();
    ServiceError::client(
        400,
        "ValidationError",
        format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"),
    )
}

fn string<'v>(input: &'v Value, name: &str) -> Option<&'v str> {
    input.get(name).and_then(Value::as_str)
}

fn required<'v>(input: &'v Value, name: &str) -> Result<&'v str, ServiceError> {
    string(input, name).ok_or_else(|| missing(name))
}

fn strings(input: &Value, name: &str) -> Vec<String> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn string_map(input: &Value, name: &str) -> BTreeMap<String, String> {
    input
        .get(name)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Tags: [{Key, Value}]` as a map.
fn tags(input: &Value, name: &str) -> BTreeMap<String, String> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|t| {
                    (
                        string(t, "Key").unwrap_or_default().to_owned(),
                        string(t, "Value").unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn message_attributes(input: &Value) -> Result<MessageAttributes, ServiceError> {
    let Some(map) = input.get("MessageAttributes").and_then(Value::as_object) else {
        return Ok(MessageAttributes::new());
    };
    map.iter()
        .map(|(name, value)| {
            let binary = match string(value, "BinaryValue") {
                Some(text) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|_| {
                            ServiceError::from(SnsError::InvalidParameterValue(format!(
                                "The message attribute '{name}' has an invalid binary value."
                            )))
                        })?,
                ),
                None => None,
            };
            Ok((
                name.clone(),
                MessageAttribute {
                    data_type: string(value, "DataType").unwrap_or_default().to_owned(),
                    string_value: string(value, "StringValue").map(str::to_owned),
                    binary_value: binary,
                },
            ))
        })
        .collect()
}

fn with_token(mut value: Value, token: Option<String>) -> Value {
    if let Some(token) = token {
        value["NextToken"] = json!(token);
    }
    value
}

fn subscriptions(list: Vec<gust_sns::SubscriptionSummary>) -> Value {
    Value::Array(
        list.into_iter()
            .map(|s| {
                json!({"SubscriptionArn": s.subscription_arn, "Owner": s.owner, "Protocol": s.protocol,
                       "Endpoint": s.endpoint, "TopicArn": s.topic_arn})
            })
            .collect(),
    )
}

/// Whether an operation may be called without a signature: the `SubscribeURL` and
/// `UnsubscribeURL` SNS puts in its messages are plain links.
pub fn unsigned_allowed(operation: &str) -> bool {
    matches!(operation, "ConfirmSubscription" | "Unsubscribe")
}

/// Runs one operation. `caller` is `None` for the unsigned link operations.
pub async fn handle(
    sns: &Arc<Sns>,
    caller: Option<&Caller>,
    operation: &str,
    input: &Value,
    trace: Option<&str>,
) -> Result<Value, ServiceError> {
    let Some(caller) = caller else {
        return match operation {
            "ConfirmSubscription" => {
                let arn = sns
                    .confirm_subscription(
                        None,
                        required(input, "TopicArn")?,
                        required(input, "Token")?,
                        false,
                    )
                    .await?;
                Ok(json!({"SubscriptionArn": arn}))
            }
            "Unsubscribe" => {
                let arn = required(input, "SubscriptionArn")?;
                sns.unsubscribe(None, arn).await?;
                Ok(json!({}))
            }
            _ => Err(ServiceError::client(
                403,
                "MissingAuthenticationToken",
                "Missing Authentication Token",
            )),
        };
    };
    match operation {
        "CreateTopic" => {
            let arn = sns
                .create_topic(
                    caller,
                    required(input, "Name")?,
                    &string_map(input, "Attributes"),
                    &tags(input, "Tags"),
                )
                .await?;
            Ok(json!({"TopicArn": arn}))
        }
        "DeleteTopic" => {
            sns.delete_topic(caller, required(input, "TopicArn")?).await?;
            Ok(json!({}))
        }
        "ListTopics" => {
            let (topics, token) = sns.list_topics(caller, string(input, "NextToken")).await?;
            let topics: Vec<Value> = topics.into_iter().map(|arn| json!({"TopicArn": arn})).collect();
            Ok(with_token(json!({"Topics": topics}), token))
        }
        "GetTopicAttributes" => {
            let attributes = sns.get_topic_attributes(caller, required(input, "TopicArn")?).await?;
            Ok(json!({"Attributes": attributes}))
        }
        "SetTopicAttributes" => {
            sns.set_topic_attributes(
                caller,
                required(input, "TopicArn")?,
                required(input, "AttributeName")?,
                string(input, "AttributeValue").unwrap_or_default(),
            )
            .await?;
            Ok(json!({}))
        }
        "Subscribe" => {
            let return_arn = input.get("ReturnSubscriptionArn").and_then(Value::as_bool).unwrap_or(false);
            let arn = sns
                .subscribe(
                    caller,
                    required(input, "TopicArn")?,
                    required(input, "Protocol")?,
                    string(input, "Endpoint"),
                    &string_map(input, "Attributes"),
                    return_arn,
                )
                .await?;
            Ok(json!({"SubscriptionArn": arn}))
        }
        "ConfirmSubscription" => {
            let authenticate = string(input, "AuthenticateOnUnsubscribe").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let arn = sns
                .confirm_subscription(
                    Some(caller),
                    required(input, "TopicArn")?,
                    required(input, "Token")?,
                    authenticate,
                )
                .await?;
            Ok(json!({"SubscriptionArn": arn}))
        }
        "Unsubscribe" => {
            sns.unsubscribe(Some(caller), required(input, "SubscriptionArn")?)
                .await?;
            Ok(json!({}))
        }
        "ListSubscriptions" => {
            let (list, token) = sns.list_subscriptions(caller, string(input, "NextToken")).await?;
            Ok(with_token(json!({"Subscriptions": subscriptions(list)}), token))
        }
        "ListSubscriptionsByTopic" => {
            let (list, token) = sns
                .list_subscriptions_by_topic(caller, required(input, "TopicArn")?, string(input, "NextToken"))
                .await?;
            Ok(with_token(json!({"Subscriptions": subscriptions(list)}), token))
        }
        "GetSubscriptionAttributes" => {
            let attributes = sns
                .get_subscription_attributes(caller, required(input, "SubscriptionArn")?)
                .await?;
            Ok(json!({"Attributes": attributes}))
        }
        "SetSubscriptionAttributes" => {
            sns.set_subscription_attributes(
                caller,
                required(input, "SubscriptionArn")?,
                required(input, "AttributeName")?,
                string(input, "AttributeValue").unwrap_or_default(),
            )
            .await?;
            Ok(json!({}))
        }
        "Publish" => {
            if input.get("PhoneNumber").is_some() {
                return Err(SnsError::invalid("PhoneNumber Reason: Gust does not send SMS messages").into());
            }
            let result = sns
                .publish(
                    caller,
                    PublishRequest {
                        topic_arn: string(input, "TopicArn").map(str::to_owned),
                        target_arn: string(input, "TargetArn").map(str::to_owned),
                        message: required(input, "Message")?.to_owned(),
                        subject: string(input, "Subject").map(str::to_owned),
                        message_structure: string(input, "MessageStructure").map(str::to_owned),
                        message_attributes: message_attributes(input)?,
                        group_id: string(input, "MessageGroupId").map(str::to_owned),
                        dedup_id: string(input, "MessageDeduplicationId").map(str::to_owned),
                        trace: trace.map(str::to_owned),
                    },
                )
                .await?;
            let mut out = json!({"MessageId": result.message_id});
            if let Some(sequence) = result.sequence_number {
                out["SequenceNumber"] = json!(sequence);
            }
            Ok(out)
        }
        "PublishBatch" => {
            let topic = required(input, "TopicArn")?;
            let entries = input
                .get("PublishBatchRequestEntries")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("PublishBatchRequestEntries"))?;
            let entries = entries
                .iter()
                .map(|e| {
                    Ok(BatchEntry {
                        id: string(e, "Id").unwrap_or_default().to_owned(),
                        message: string(e, "Message").unwrap_or_default().to_owned(),
                        subject: string(e, "Subject").map(str::to_owned),
                        message_structure: string(e, "MessageStructure").map(str::to_owned),
                        message_attributes: message_attributes(e)?,
                        group_id: string(e, "MessageGroupId").map(str::to_owned),
                        dedup_id: string(e, "MessageDeduplicationId").map(str::to_owned),
                    })
                })
                .collect::<Result<Vec<_>, ServiceError>>()?;
            let (successful, failed) = sns.publish_batch(caller, topic, entries).await?;
            let successful: Vec<Value> = successful
                .into_iter()
                .map(|s| {
                    let mut out = json!({"Id": s.id, "MessageId": s.message_id});
                    if let Some(sequence) = s.sequence_number {
                        out["SequenceNumber"] = json!(sequence);
                    }
                    out
                })
                .collect();
            let failed: Vec<Value> = failed
                .into_iter()
                .map(|f| json!({"Id": f.id, "Code": f.code, "Message": f.message, "SenderFault": f.sender_fault}))
                .collect();
            Ok(json!({"Successful": successful, "Failed": failed}))
        }
        "TagResource" => {
            sns.tag_resource(caller, required(input, "ResourceArn")?, &tags(input, "Tags")).await?;
            Ok(json!({}))
        }
        "UntagResource" => {
            sns.untag_resource(caller, required(input, "ResourceArn")?, &strings(input, "TagKeys"))
                .await?;
            Ok(json!({}))
        }
        "ListTagsForResource" => {
            let tags = sns.list_tags_for_resource(caller, required(input, "ResourceArn")?).await?;
            let tags: Vec<Value> = tags.into_iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
            Ok(json!({"Tags": tags}))
        }
        "AddPermission" => {
            sns.add_permission(
                caller,
                required(input, "TopicArn")?,
                required(input, "Label")?,
                &strings(input, "AWSAccountId"),
                &strings(input, "ActionName"),
            )
            .await?;
            Ok(json!({}))
        }
        "RemovePermission" => {
            sns.remove_permission(caller, required(input, "TopicArn")?, required(input, "Label")?)
                .await?;
            Ok(json!({}))
        }
        other => Err(ServiceError::client(
            400,
            "InvalidAction",
            format!("Gust does not support {other}: SMS, mobile push and data protection are not part of its SNS."),
        )),
    }
}

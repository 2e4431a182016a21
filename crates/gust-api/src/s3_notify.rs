//! `Put/GetBucketNotificationConfiguration`: the wire configuration (s3s's DTOs) to the
//! model's (`gust_model::notification`, with S3's checks) and back, and the destination
//! check S3 makes when a configuration is put — each function's policy must allow
//! `s3.amazonaws.com` for the bucket, and each queue and topic takes the `s3:TestEvent`
//! (which its policy must allow). The configuration is kept by gust-s3, the events are
//! delivered by the binary's worker.

use gust_model::notification::{
    self, DestinationKind, InvalidConfiguration, NotificationConfiguration, NotificationRule,
};
use gust_model::targets::{Deliver, Delivery, DeliveryError, Principal};
use s3s::dto;

/// A configuration id as S3 generates one for a configuration without `Id`.
fn generated_id() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().simple().to_string())
}

fn filter_rules(filter: Option<&dto::NotificationConfigurationFilter>) -> Vec<(String, String)> {
    filter
        .and_then(|f| f.key.as_ref())
        .and_then(|k| k.filter_rules.as_ref())
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    (
                        r.name
                            .as_ref()
                            .map(|n| n.as_str().to_owned())
                            .unwrap_or_default(),
                        r.value.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn events(list: &[dto::Event]) -> Vec<String> {
    list.iter().map(|e| e.as_ref().to_owned()).collect()
}

/// The model's configuration of a request, with S3's checks of each configuration and of
/// the whole.
pub(crate) fn to_domain(
    wire: &dto::NotificationConfiguration,
) -> Result<NotificationConfiguration, InvalidConfiguration> {
    let mut rules = Vec::new();
    for c in wire.lambda_function_configurations.iter().flatten() {
        rules.push(notification::rule(
            c.id.clone().unwrap_or_else(generated_id),
            DestinationKind::Function,
            c.lambda_function_arn.clone(),
            events(&c.events),
            &filter_rules(c.filter.as_ref()),
        )?);
    }
    for c in wire.queue_configurations.iter().flatten() {
        rules.push(notification::rule(
            c.id.clone().unwrap_or_else(generated_id),
            DestinationKind::Queue,
            c.queue_arn.clone(),
            events(&c.events),
            &filter_rules(c.filter.as_ref()),
        )?);
    }
    for c in wire.topic_configurations.iter().flatten() {
        rules.push(notification::rule(
            c.id.clone().unwrap_or_else(generated_id),
            DestinationKind::Topic,
            c.topic_arn.clone(),
            events(&c.events),
            &filter_rules(c.filter.as_ref()),
        )?);
    }
    let configuration = NotificationConfiguration {
        rules,
        event_bridge: wire.event_bridge_configuration.is_some(),
    };
    notification::check(&configuration)?;
    Ok(configuration)
}

fn wire_filter(rule: &NotificationRule) -> Option<dto::NotificationConfigurationFilter> {
    let mut rules = Vec::new();
    if let Some(prefix) = &rule.prefix {
        rules.push(dto::FilterRule {
            name: Some(dto::FilterRuleName::from_static(
                dto::FilterRuleName::PREFIX,
            )),
            value: Some(prefix.clone()),
        });
    }
    if let Some(suffix) = &rule.suffix {
        rules.push(dto::FilterRule {
            name: Some(dto::FilterRuleName::from_static(
                dto::FilterRuleName::SUFFIX,
            )),
            value: Some(suffix.clone()),
        });
    }
    (!rules.is_empty()).then_some(dto::NotificationConfigurationFilter {
        key: Some(dto::S3KeyFilter {
            filter_rules: Some(rules),
        }),
    })
}

/// The stored configuration as `GetBucketNotificationConfiguration` answers it.
pub(crate) fn to_wire(config: &NotificationConfiguration) -> dto::NotificationConfiguration {
    let mut functions = Vec::new();
    let mut queues = Vec::new();
    let mut topics = Vec::new();
    for rule in &config.rules {
        let events: Vec<dto::Event> = rule.events.iter().cloned().map(dto::Event::from).collect();
        match rule.kind {
            DestinationKind::Function => functions.push(dto::LambdaFunctionConfiguration {
                events,
                filter: wire_filter(rule),
                id: Some(rule.id.clone()),
                lambda_function_arn: rule.arn.clone(),
            }),
            DestinationKind::Queue => queues.push(dto::QueueConfiguration {
                events,
                filter: wire_filter(rule),
                id: Some(rule.id.clone()),
                queue_arn: rule.arn.clone(),
            }),
            DestinationKind::Topic => topics.push(dto::TopicConfiguration {
                events,
                filter: wire_filter(rule),
                id: Some(rule.id.clone()),
                topic_arn: rule.arn.clone(),
            }),
        }
    }
    dto::NotificationConfiguration {
        event_bridge_configuration: config
            .event_bridge
            .then_some(dto::EventBridgeConfiguration {}),
        lambda_function_configurations: (!functions.is_empty()).then_some(functions),
        queue_configurations: (!queues.is_empty()).then_some(queues),
        topic_configurations: (!topics.is_empty()).then_some(topics),
    }
}

/// Checks every destination as S3 does before it accepts a configuration; the refused ones
/// are listed as the error's arguments.
pub(crate) async fn validate(
    targets: &dyn Deliver,
    owner: &str,
    bucket: &str,
    config: &NotificationConfiguration,
    request_id: &str,
    now_ms: i64,
) -> Result<(), InvalidConfiguration> {
    let source_arn = format!("arn:aws:s3:::{bucket}");
    let test = notification::test_event(bucket, now_ms, request_id).to_string();
    let mut refused = Vec::new();
    // Functions are checked first (without invoking them): a configuration refused for one
    // sends no test event to its queues and topics.
    let mut rules: Vec<&NotificationRule> = config.rules.iter().collect();
    rules.sort_by_key(|r| r.kind != DestinationKind::Function);
    for rule in rules {
        if !refused.is_empty() && rule.kind != DestinationKind::Function {
            break;
        }
        let checked = targets
            .check(Delivery {
                account: owner,
                target_arn: &rule.arn,
                payload: test.clone(),
                principal: Principal::S3,
                source_arn: &source_arn,
                message_group_id: None,
                deduplication_id: None,
                attributes: Vec::new(),
            })
            .await;
        if let Err(DeliveryError::Fail(_) | DeliveryError::Retry(_)) = checked {
            let reason = match rule.kind {
                DestinationKind::Function => format!("Not authorized to invoke function [{}]", rule.arn),
                DestinationKind::Queue => "Permissions on the destination queue do not allow S3 to publish notifications from this bucket".to_owned(),
                DestinationKind::Topic => "Permissions on the destination topic do not allow S3 to publish notifications from this bucket".to_owned(),
            };
            refused.push((rule.arn.clone(), reason));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(InvalidConfiguration {
            message: "Unable to validate the following destination configurations".into(),
            arguments: refused,
        })
    }
}

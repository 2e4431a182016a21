//! The console's lists from the other services' Rust APIs: queues, topics, schedules, and
//! what targets a function (EventBridge rules, Scheduler schedules, SNS subscriptions, S3
//! bucket notifications). Errors are plain messages: the page shows them as they are.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::ApiState;

/// Pages read at most per list, so one call stays bounded however much an account has.
const MAX_PAGES: usize = 50;

fn text<E: std::fmt::Display>(error: E) -> String {
    error.to_string()
}

fn rfc3339(at: time::OffsetDateTime) -> Option<String> {
    at.format(&Rfc3339).ok()
}

/// `queues`, `topics`, `schedules` or `cost`.
pub(super) async fn list(state: &ApiState, account: &str, what: &str) -> Result<Value, String> {
    match what {
        "queues" => queues(state, account).await,
        "topics" => topics(state, account).await,
        "schedules" => schedules(state, account),
        _ => cost(state, account).await,
    }
}

/// This month's usage and price (`gust_metrics::usage`), as its report serializes.
async fn cost(state: &ApiState, account: &str) -> Result<Value, String> {
    let usage = std::sync::Arc::clone(&state.services.usage);
    let account = account.to_owned();
    let report = tokio::task::spawn_blocking(move || {
        let month = usage.current_month();
        usage.report(&account, &month)
    })
    .await
    .map_err(text)?
    .map_err(text)?;
    let mut value = serde_json::to_value(&report).map_err(text)?;
    if let Value::Object(members) = &mut value {
        members.insert("available".into(), Value::Bool(true));
    }
    Ok(value)
}

async fn queues(state: &ApiState, account: &str) -> Result<Value, String> {
    let caller = gust_sqs::Caller::account(account, account);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (page, next) = state
            .services
            .sqs
            .list_queues(&caller, "", Some(1000), token.as_deref())
            .await
            .map_err(text)?;
        for queue in page {
            let names = [
                "ApproximateNumberOfMessages".to_owned(),
                "ApproximateNumberOfMessagesNotVisible".to_owned(),
                "ApproximateNumberOfMessagesDelayed".to_owned(),
                "QueueArn".to_owned(),
                "FifoQueue".to_owned(),
            ];
            // A queue deleted between the list and this read is left out.
            let Ok(attributes) = state
                .services
                .sqs
                .get_attributes(&caller, &queue, &names)
                .await
            else {
                continue;
            };
            let number = |name: &str| count(attributes.get(name));
            out.push(json!({
                "name": queue.name,
                "arn": attributes.get("QueueArn"),
                "fifo": attributes.get("FifoQueue").is_some_and(|v| v == "true"),
                "visible": number("ApproximateNumberOfMessages"),
                "inFlight": number("ApproximateNumberOfMessagesNotVisible"),
                "delayed": number("ApproximateNumberOfMessagesDelayed"),
            }));
        }
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(json!({ "queues": out }))
}

/// A count an attribute holds as text (0 when missing or malformed).
fn count(value: Option<&String>) -> u64 {
    value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

async fn topics(state: &ApiState, account: &str) -> Result<Value, String> {
    let caller = gust_sns::Caller::account(account);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (arns, next) = state
            .services
            .sns
            .list_topics(&caller, token.as_deref())
            .await
            .map_err(text)?;
        for arn in arns {
            let Ok(attributes) = state.services.sns.get_topic_attributes(&caller, &arn).await
            else {
                continue;
            };
            let number = |name: &str| count(attributes.get(name));
            let name = arn.rsplit(':').next().unwrap_or(&arn).to_owned();
            out.push(json!({
                "name": name,
                "arn": arn,
                "confirmed": number("SubscriptionsConfirmed"),
                "pending": number("SubscriptionsPending"),
            }));
        }
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(json!({ "topics": out }))
}

/// When a schedule fires next, where its expression says (disabled ones never do).
fn next_fire(
    schedule: &gust_scheduler::model::Schedule,
    now: time::OffsetDateTime,
) -> Option<String> {
    use gust_model::schedule::{ScheduleExpression, Zone};
    if schedule.state != gust_scheduler::model::ScheduleState::Enabled {
        return None;
    }
    let expression = ScheduleExpression::parse(&schedule.expression).ok()?;
    let zone = Zone::parse(schedule.timezone.as_deref().unwrap_or("UTC")).ok()?;
    let after = now.max(schedule.evaluated_until);
    let next = expression.next_after(after, &zone, schedule.start)?;
    if schedule.end.is_some_and(|end| next >= end) {
        return None;
    }
    rfc3339(next)
}

fn all_schedules(
    state: &ApiState,
    account: &str,
) -> Result<Vec<gust_scheduler::model::Schedule>, String> {
    let mut out = Vec::new();
    let mut page = gust_scheduler::model::Page {
        max_results: Some(100),
        next_token: None,
    };
    for _ in 0..MAX_PAGES {
        let found = state
            .services
            .scheduler
            .list_schedules(
                account,
                &gust_scheduler::model::ScheduleFilter::default(),
                &page,
            )
            .map_err(text)?;
        out.extend(found.items);
        match found.next_token {
            Some(next) => page.next_token = Some(next),
            None => break,
        }
    }
    Ok(out)
}

fn schedules(state: &ApiState, account: &str) -> Result<Value, String> {
    let now = state.config.clock.now();
    let out: Vec<Value> = all_schedules(state, account)?
        .iter()
        .map(|s| {
            json!({
                "group": s.group,
                "name": s.name,
                "expression": s.expression,
                "timezone": s.timezone,
                "state": s.state.as_str(),
                "target": s.target.arn,
                "nextFire": next_fire(s, now),
            })
        })
        .collect();
    Ok(json!({ "schedules": out }))
}

/// Whether `arn` names the function (unqualified, or one of its versions or aliases).
fn targets_function(arn: &str, function_arn: &str) -> bool {
    arn == function_arn
        || arn
            .strip_prefix(function_arn)
            .is_some_and(|rest| rest.starts_with(':') && !rest[1..].contains(':'))
}

/// What targets `function` in the services that can list it.
pub(super) async fn triggers(
    state: &ApiState,
    account: &str,
    function: &str,
) -> Result<Value, String> {
    let name = percent_encoding::percent_decode_str(function)
        .decode_utf8()
        .map_err(text)?
        .into_owned();
    if name.is_empty() || name.contains(':') || name.contains('/') {
        return Err("Name a function by its name.".to_owned());
    }
    let region = state
        .planes
        .get(account)
        .map(|p| p.control.scope().region.clone())
        .ok_or_else(|| "No such account.".to_owned())?;
    let function_arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");

    // EventBridge: every bus's rules with a target on the function.
    let events = &state.services.eventbridge;
    let mut rules = Vec::new();
    let page = |token: Option<String>| gust_events::model::Page {
        limit: Some(100),
        next_token: token,
    };
    let mut buses = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let found = events
            .list_event_buses(account, None, &page(token))
            .map_err(text)?;
        buses.extend(found.items.into_iter().map(|b| b.name));
        token = found.next_token;
        if token.is_none() {
            break;
        }
    }
    for bus in &buses {
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let found = events
                .list_rules(account, None, Some(bus), &page(token))
                .map_err(text)?;
            for rule in found.items {
                let Some(target) = rule
                    .targets
                    .values()
                    .find(|t| targets_function(&t.arn, &function_arn))
                else {
                    continue;
                };
                rules.push(json!({
                    "bus": rule.bus,
                    "name": rule.name,
                    "arn": rule.arn,
                    "state": rule.state.as_str(),
                    "scheduleExpression": rule.schedule_expression,
                    "eventPattern": rule.event_pattern,
                    "targetArn": target.arn,
                }));
            }
            token = found.next_token;
            if token.is_none() {
                break;
            }
        }
    }

    let now = state.config.clock.now();
    let schedules: Vec<Value> = all_schedules(state, account)?
        .iter()
        .filter(|s| targets_function(&s.target.arn, &function_arn))
        .map(|s| {
            json!({
                "group": s.group,
                "name": s.name,
                "expression": s.expression,
                "state": s.state.as_str(),
                "nextFire": next_fire(s, now),
            })
        })
        .collect();

    // SNS: the account's subscriptions with the function as endpoint.
    let caller = gust_sns::Caller::account(account);
    let mut subscriptions = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (page, next) = state
            .services
            .sns
            .list_subscriptions(&caller, token.as_deref())
            .await
            .map_err(text)?;
        subscriptions.extend(
            page.into_iter()
                .filter(|s| s.protocol == "lambda" && targets_function(&s.endpoint, &function_arn))
                .map(|s| {
                    json!({
                        "topicArn": s.topic_arn,
                        "subscriptionArn": s.subscription_arn,
                        "endpoint": s.endpoint,
                    })
                }),
        );
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }

    // S3: the account's buckets whose notifications invoke the function.
    let s3_caller = gust_s3::model::Caller {
        account: account.to_owned(),
        principal: account.to_owned(),
        source_ip: None,
    };
    let mut notifications = Vec::new();
    let buckets = state
        .services
        .s3
        .list_buckets(&s3_caller, None)
        .await
        .map_err(text)?;
    for bucket in buckets {
        let Ok(stored) = state
            .services
            .s3
            .bucket_notification(&s3_caller, &bucket.name)
            .await
        else {
            continue;
        };
        let config =
            gust_model::notification::NotificationConfiguration::from_stored(stored.as_deref());
        for rule in config.rules {
            if rule.kind == gust_model::notification::DestinationKind::Function
                && targets_function(&rule.arn, &function_arn)
            {
                notifications.push(json!({
                    "bucket": bucket.name,
                    "id": rule.id,
                    "events": rule.events,
                    "prefix": rule.prefix,
                    "suffix": rule.suffix,
                }));
            }
        }
    }

    Ok(json!({
        "functionArn": function_arn,
        "eventBridgeRules": rules,
        "schedules": schedules,
        "snsSubscriptions": subscriptions,
        "s3Notifications": notifications,
    }))
}

#[cfg(test)]
mod tests {
    use super::targets_function;

    #[test]
    fn a_functions_arn_matches_its_qualifiers_only() {
        let f = "arn:aws:lambda:us-east-1:000000000000:function:f";
        assert!(targets_function(f, f));
        assert!(targets_function(&format!("{f}:live"), f));
        assert!(targets_function(&format!("{f}:3"), f));
        assert!(!targets_function(&format!("{f}2"), f));
        assert!(!targets_function(&format!("{f}:a:b"), f));
    }
}

//! What Application Auto Scaling keeps: scalable targets, scheduled actions, scaling policies
//! and scaling activities, for the one kind of resource Gust has — a Lambda function alias or
//! version's provisioned concurrency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::AutoscalingError;

/// The only service namespace.
pub const NAMESPACE: &str = "lambda";
/// The only scalable dimension.
pub const DIMENSION: &str = "lambda:function:ProvisionedConcurrency";
/// The only predefined metric.
pub const METRIC: &str = "LambdaProvisionedConcurrencyUtilization";
/// The only policy type.
pub const TARGET_TRACKING: &str = "TargetTrackingScaling";

/// A function alias or version, as a scalable target's `ResourceId`
/// (`function:<name>:<qualifier>`) names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    /// Function name.
    pub function: String,
    /// Alias name or version number.
    pub qualifier: String,
}

impl Resource {
    /// `function:<name>:<qualifier>`.
    pub fn id(&self) -> String {
        format!("function:{}:{}", self.function, self.qualifier)
    }

    /// Reads a Lambda `ResourceId`.
    pub fn parse(resource_id: &str) -> Result<Resource, AutoscalingError> {
        let invalid = || {
            AutoscalingError::validation(format!(
                "Invalid resource ID '{resource_id}': for Lambda provisioned concurrency the resource ID is function:<function-name>:<alias-or-version>"
            ))
        };
        let rest = resource_id.strip_prefix("function:").ok_or_else(invalid)?;
        let (function, qualifier) = rest.split_once(':').ok_or_else(invalid)?;
        let name_chars = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if function.is_empty() || function.len() > 64 || !name_chars(function) {
            return Err(invalid());
        }
        if qualifier == "$LATEST" {
            return Err(AutoscalingError::validation(format!(
                "Invalid resource ID '{resource_id}': provisioned concurrency cannot be configured on $LATEST; use an alias or a published version"
            )));
        }
        if qualifier.is_empty() || qualifier.len() > 128 || !name_chars(qualifier) {
            return Err(invalid());
        }
        Ok(Resource {
            function: function.to_owned(),
            qualifier: qualifier.to_owned(),
        })
    }
}

/// Checks a request's namespace, resource ID and dimension and returns the resource.
pub fn check_target(
    namespace: &str,
    resource_id: &str,
    dimension: &str,
) -> Result<Resource, AutoscalingError> {
    if namespace != NAMESPACE || dimension != DIMENSION {
        return Err(AutoscalingError::validation(
            "Unsupported service namespace, resource type or scalable dimension",
        ));
    }
    Resource::parse(resource_id)
}

/// Which kinds of scaling are suspended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspendedState {
    /// Scale-in by scaling policies.
    pub dynamic_scaling_in_suspended: bool,
    /// Scale-out by scaling policies.
    pub dynamic_scaling_out_suspended: bool,
    /// Scheduled actions.
    pub scheduled_scaling_suspended: bool,
}

/// A change to [`SuspendedState`]: attributes left `None` stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SuspendedUpdate {
    /// `DynamicScalingInSuspended`.
    pub dynamic_scaling_in_suspended: Option<bool>,
    /// `DynamicScalingOutSuspended`.
    pub dynamic_scaling_out_suspended: Option<bool>,
    /// `ScheduledScalingSuspended`.
    pub scheduled_scaling_suspended: Option<bool>,
}

impl SuspendedState {
    /// This state with `update` applied.
    pub fn updated(self, update: SuspendedUpdate) -> SuspendedState {
        SuspendedState {
            dynamic_scaling_in_suspended: update
                .dynamic_scaling_in_suspended
                .unwrap_or(self.dynamic_scaling_in_suspended),
            dynamic_scaling_out_suspended: update
                .dynamic_scaling_out_suspended
                .unwrap_or(self.dynamic_scaling_out_suspended),
            scheduled_scaling_suspended: update
                .scheduled_scaling_suspended
                .unwrap_or(self.scheduled_scaling_suspended),
        }
    }
}

/// A registered scalable target.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalableTarget {
    /// Owning account.
    pub account: String,
    /// What it scales.
    pub resource: Resource,
    /// `MinCapacity`.
    pub min_capacity: u32,
    /// `MaxCapacity`.
    pub max_capacity: u32,
    /// `SuspendedState`.
    pub suspended: SuspendedState,
    /// `CreationTime`.
    pub created: OffsetDateTime,
    /// `ScalableTargetARN`.
    pub arn: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl ScalableTarget {
    /// `RoleARN`: the service-linked role Application Auto Scaling uses for Lambda.
    pub fn role_arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:role/aws-service-role/lambda.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency",
            self.account
        )
    }
}

/// A scheduled action.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledAction {
    /// Owning account.
    pub account: String,
    /// The target's resource.
    pub resource: Resource,
    /// `ScheduledActionName`.
    pub name: String,
    /// `ScheduledActionARN`.
    pub arn: String,
    /// `Schedule`, as given (`at(…)`, `rate(…)` or `cron(…)`).
    pub schedule: String,
    /// `Timezone` (an IANA name; UTC when absent).
    pub timezone: Option<String>,
    /// `StartTime`.
    pub start: Option<OffsetDateTime>,
    /// `EndTime`.
    pub end: Option<OffsetDateTime>,
    /// `ScalableTargetAction.MinCapacity`.
    pub min_capacity: Option<u32>,
    /// `ScalableTargetAction.MaxCapacity`.
    pub max_capacity: Option<u32>,
    /// `CreationTime`.
    pub created: OffsetDateTime,
    /// Last `PutScheduledAction` (a rate without a start time counts from it).
    pub updated: OffsetDateTime,
    /// The schedule has been evaluated up to this instant: it fires next strictly after it.
    /// Stored with every firing, so a restart neither repeats nor replays one.
    pub evaluated_until: OffsetDateTime,
    /// The scheduled time of the last firing.
    pub last_fired: Option<OffsetDateTime>,
}

/// A target tracking configuration, as given (absent members stay absent in `Describe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetTracking {
    /// `TargetValue`: the utilisation to keep (a fraction: 0.7 is 70%).
    pub target_value: f64,
    /// `PredefinedMetricSpecification.PredefinedMetricType`.
    pub predefined_metric_type: String,
    /// `PredefinedMetricSpecification.ResourceLabel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
    /// `ScaleOutCooldown`, seconds (0 when absent, as for Lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<i64>,
    /// `ScaleInCooldown`, seconds (0 when absent, as for Lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<i64>,
    /// `DisableScaleIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
}

/// A CloudWatch alarm a target tracking policy stands on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// `AlarmName`.
    pub name: String,
    /// `AlarmARN`.
    pub arn: String,
}

/// A scaling policy (target tracking; the only kind Gust evaluates).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    /// Owning account.
    pub account: String,
    /// The target's resource.
    pub resource: Resource,
    /// `PolicyName`.
    pub name: String,
    /// `PolicyARN`.
    pub arn: String,
    /// `PolicyType`.
    pub policy_type: String,
    /// `TargetTrackingScalingPolicyConfiguration`.
    pub tracking: TargetTracking,
    /// `Alarms`: the high alarm (scale out) first, then the low one (scale in).
    pub alarms: Vec<Alarm>,
    /// `CreationTime`.
    pub created: OffsetDateTime,
    /// When this policy last scaled out (for `ScaleOutCooldown`).
    pub last_scale_out: Option<OffsetDateTime>,
    /// When this policy last scaled in (for `ScaleInCooldown`).
    pub last_scale_in: Option<OffsetDateTime>,
}

/// How a scaling activity ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityStatus {
    /// `Successful`.
    Successful,
    /// `Failed`.
    Failed,
}

impl ActivityStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityStatus::Successful => "Successful",
            ActivityStatus::Failed => "Failed",
        }
    }

    /// Reads a wire value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Successful" => Some(ActivityStatus::Successful),
            "Failed" => Some(ActivityStatus::Failed),
            _ => None,
        }
    }
}

/// Something the service did (or tried to do) to a target.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingActivity {
    /// Owning account.
    pub account: String,
    /// The target's resource.
    pub resource: Resource,
    /// `ActivityId`.
    pub id: String,
    /// `Description`.
    pub description: String,
    /// `Cause`.
    pub cause: String,
    /// `StartTime`.
    pub start: OffsetDateTime,
    /// `EndTime`.
    pub end: Option<OffsetDateTime>,
    /// `StatusCode`.
    pub status: ActivityStatus,
    /// `StatusMessage`.
    pub status_message: Option<String>,
}

/// `RegisterScalableTarget`'s parameters besides the target's identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisterTarget {
    /// `MinCapacity` (required on create).
    pub min_capacity: Option<i64>,
    /// `MaxCapacity` (required on create).
    pub max_capacity: Option<i64>,
    /// `SuspendedState`.
    pub suspended: Option<SuspendedUpdate>,
    /// `Tags` (on create only).
    pub tags: Option<BTreeMap<String, String>>,
}

/// `PutScheduledAction`'s parameters besides the target's identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutScheduledAction {
    /// `ScheduledActionName`.
    pub name: String,
    /// `Schedule` (required on create; kept on update when absent).
    pub schedule: Option<String>,
    /// `Timezone` (kept on update when absent).
    pub timezone: Option<String>,
    /// `StartTime` (cleared on update when absent).
    pub start: Option<OffsetDateTime>,
    /// `EndTime` (cleared on update when absent).
    pub end: Option<OffsetDateTime>,
    /// `ScalableTargetAction` as `(MinCapacity, MaxCapacity)` (kept on update when absent).
    pub target_action: Option<(Option<i64>, Option<i64>)>,
}

/// `TargetTrackingScalingPolicyConfiguration` as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetTrackingInput {
    /// `TargetValue`.
    pub target_value: f64,
    /// `PredefinedMetricSpecification` as `(PredefinedMetricType, ResourceLabel)`.
    pub predefined: Option<(String, Option<String>)>,
    /// Whether `CustomizedMetricSpecification` was given (Gust has no CloudWatch metrics).
    pub customized: bool,
    /// `ScaleOutCooldown`.
    pub scale_out_cooldown: Option<i64>,
    /// `ScaleInCooldown`.
    pub scale_in_cooldown: Option<i64>,
    /// `DisableScaleIn`.
    pub disable_scale_in: Option<bool>,
}

/// `PutScalingPolicy`'s parameters besides the target's identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutScalingPolicy {
    /// `PolicyName`.
    pub name: String,
    /// `PolicyType`.
    pub policy_type: Option<String>,
    /// `TargetTrackingScalingPolicyConfiguration`.
    pub target_tracking: Option<TargetTrackingInput>,
    /// Whether `StepScalingPolicyConfiguration` was given.
    pub step_scaling: bool,
    /// Whether `PredictiveScalingPolicyConfiguration` was given.
    pub predictive_scaling: bool,
}

/// What `PutScalingPolicy` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyCreated {
    /// `PolicyARN`.
    pub arn: String,
    /// `Alarms`.
    pub alarms: Vec<Alarm>,
}

/// A page request: `MaxResults` and `NextToken`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// `MaxResults` (1–50, default 50).
    pub max_results: Option<i64>,
    /// `NextToken` from the previous page.
    pub next_token: Option<String>,
}

/// Filters of the `Describe…` operations: `ResourceId(s)`, `ScalableDimension` and names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `ResourceIds` (or `ResourceId`, as a one-element list); empty: all.
    pub resource_ids: Vec<String>,
    /// `ScalableDimension`.
    pub dimension: Option<String>,
    /// `ScheduledActionNames` / `PolicyNames`; empty: all.
    pub names: Vec<String>,
}

impl Filter {
    fn matches_resource(&self, resource: &Resource) -> bool {
        self.dimension.as_deref().is_none_or(|d| d == DIMENSION)
            && (self.resource_ids.is_empty() || self.resource_ids.contains(&resource.id()))
    }

    /// Whether a target is selected.
    pub fn matches_target(&self, resource: &Resource) -> bool {
        self.matches_resource(resource)
    }

    /// Whether a named item (scheduled action, policy) of `resource` is selected.
    pub fn matches_named(&self, resource: &Resource, name: &str) -> bool {
        self.matches_resource(resource)
            && (self.names.is_empty() || self.names.iter().any(|n| n == name))
    }
}

/// One page of results and the token for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// `NextToken`, when there are more.
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lambda_resource_ids() {
        let resource = Resource::parse("function:my-function:BLUE").unwrap();
        assert_eq!(resource.function, "my-function");
        assert_eq!(resource.qualifier, "BLUE");
        assert_eq!(resource.id(), "function:my-function:BLUE");
        assert!(Resource::parse("function:f:3").is_ok());
        for bad in [
            "function:f",
            "f:alias",
            "function::a",
            "function:f:",
            "function:f:a:b",
            "function:f g:a",
            "service/default/web",
        ] {
            let error = Resource::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains("function:<function-name>"),
                "{bad}"
            );
        }
        assert!(Resource::parse("function:f:$LATEST")
            .unwrap_err()
            .to_string()
            .contains("$LATEST"));
        assert_eq!(
            check_target("ecs", "function:f:a", DIMENSION)
                .unwrap_err()
                .to_string(),
            "Unsupported service namespace, resource type or scalable dimension"
        );
    }
}

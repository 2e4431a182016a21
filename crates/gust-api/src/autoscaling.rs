//! The Application Auto Scaling adapter: AWS JSON 1.1 (`X-Amz-Target:
//! AnyScaleFrontendService.<Operation>`, signing name `application-autoscaling`), one handler
//! from an operation's input to its output over `gust_autoscaling::Autoscaling`.
//!
//! Inputs are first checked against the service model as the service checks them (required
//! members, enums, lengths, patterns, list sizes), answering
//! `1 validation error detected: Value … at '…' failed to satisfy constraint: …`; a member of
//! the wrong JSON type is a `SerializationException`. The semantics are the service's.
//! Timestamps are epoch seconds, both ways.
//!
//! The handler is synchronous: it commits to SQLite and calls into Lambda through
//! `gust_autoscaling::Provisioned`, so callers run it on the blocking pool.

use gust_autoscaling::{
    Autoscaling, AutoscalingError, Filter, Page, PutScalingPolicy, PutScheduledAction,
    RegisterTarget, ScalableTarget, ScalingActivity, ScalingPolicy, ScheduledAction,
    SuspendedUpdate, TargetTrackingInput,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::protocol::ServiceError;
use crate::validate::read::{boolean, integer, object, string, string_map, strings, timestamp};
use crate::validate::{self, member, patterned, required, text, Dialect, Kind, Member, Pattern};

impl From<AutoscalingError> for ServiceError {
    fn from(error: AutoscalingError) -> Self {
        ServiceError::of_service(400, error.is_internal(), error.shape(), error.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The input shapes, as the service model (2016-02-06) declares them.

/// Characters XML can carry.
const XML_PATTERN: Pattern = Pattern {
    text: r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*",
    matches: xml_chars,
};
/// `ScheduledActionName`: no leading or trailing space, no control characters, `:`, `/` or
/// `|`.
const ACTION_NAME_PATTERN: Pattern = Pattern {
    text: r"(?!((^[ ]+.*)|(.*([\u0000-\u001f]|[\u007f-\u009f]|[:/|])+.*)|(.*[ ]+$))).+",
    matches: scheduled_action_name,
};
/// `PolicyName`: printable ASCII (Java's `\p{Print}`).
const POLICY_NAME_PATTERN: Pattern = Pattern {
    text: r"\p{Print}+",
    matches: policy_name,
};
/// A scalable target's ARN.
const TARGET_ARN_PATTERN: Pattern = Pattern {
    text: r"^arn:.+:application-autoscaling:.+:[0-9]+:scalable-target\/[a-zA-Z0-9-]+$",
    matches: scalable_target_arn,
};

fn xml_chars(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    })
}

fn scheduled_action_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.chars().any(|c| {
            matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | ':' | '/' | '|')
                || matches!(c, '\u{2028}' | '\u{2029}')
        })
}

fn policy_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| (' '..='~').contains(&c))
}

/// `^arn:.+:application-autoscaling:.+:[0-9]+:scalable-target\/[a-zA-Z0-9-]+$`.
fn scalable_target_arn(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("arn:") else {
        return false;
    };
    let Some((head, id)) = rest.rsplit_once(":scalable-target/") else {
        return false;
    };
    let Some((head, account)) = head.rsplit_once(':') else {
        return false;
    };
    let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let account_ok = !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit());
    let marker = ":application-autoscaling:";
    let service_ok = head
        .match_indices(marker)
        .any(|(at, _)| at > 0 && head.len() > at + marker.len());
    id_ok && account_ok && service_ok
}

const fn xml(min: usize, max: usize) -> Kind {
    patterned(min, max, XML_PATTERN)
}

const NAMESPACES: &[&str] = &[
    "ecs",
    "elasticmapreduce",
    "ec2",
    "appstream",
    "dynamodb",
    "rds",
    "sagemaker",
    "custom-resource",
    "comprehend",
    "lambda",
    "cassandra",
    "kafka",
    "elasticache",
    "neptune",
    "workspaces",
];

const DIMENSIONS: &[&str] = &[
    "ecs:service:DesiredCount",
    "ec2:spot-fleet-request:TargetCapacity",
    "elasticmapreduce:instancegroup:InstanceCount",
    "appstream:fleet:DesiredCapacity",
    "dynamodb:table:ReadCapacityUnits",
    "dynamodb:table:WriteCapacityUnits",
    "dynamodb:index:ReadCapacityUnits",
    "dynamodb:index:WriteCapacityUnits",
    "rds:cluster:ReadReplicaCount",
    "sagemaker:variant:DesiredInstanceCount",
    "custom-resource:ResourceType:Property",
    "comprehend:document-classifier-endpoint:DesiredInferenceUnits",
    "comprehend:entity-recognizer-endpoint:DesiredInferenceUnits",
    "lambda:function:ProvisionedConcurrency",
    "cassandra:table:ReadCapacityUnits",
    "cassandra:table:WriteCapacityUnits",
    "kafka:broker-storage:VolumeSize",
    "elasticache:cache-cluster:Nodes",
    "elasticache:replication-group:NodeGroups",
    "elasticache:replication-group:Replicas",
    "neptune:cluster:ReadReplicaCount",
    "sagemaker:variant:DesiredProvisionedConcurrency",
    "sagemaker:inference-component:DesiredCopyCount",
    "workspaces:workspacespool:DesiredUserSessions",
];

const METRIC_TYPES: &[&str] = &[
    "DynamoDBReadCapacityUtilization",
    "DynamoDBWriteCapacityUtilization",
    "ALBRequestCountPerTarget",
    "RDSReaderAverageCPUUtilization",
    "RDSReaderAverageDatabaseConnections",
    "EC2SpotFleetRequestAverageCPUUtilization",
    "EC2SpotFleetRequestAverageNetworkIn",
    "EC2SpotFleetRequestAverageNetworkOut",
    "SageMakerVariantInvocationsPerInstance",
    "ECSServiceAverageCPUUtilization",
    "ECSServiceAverageMemoryUtilization",
    "AppStreamAverageCapacityUtilization",
    "ComprehendInferenceUtilization",
    "LambdaProvisionedConcurrencyUtilization",
    "CassandraReadCapacityUtilization",
    "CassandraWriteCapacityUtilization",
    "KafkaBrokerStorageUtilization",
    "ElastiCacheEngineCPUUtilization",
    "ElastiCacheDatabaseMemoryUsagePercentage",
    "ElastiCachePrimaryEngineCPUUtilization",
    "ElastiCacheReplicaEngineCPUUtilization",
    "ElastiCacheDatabaseMemoryUsageCountedForEvictPercentage",
    "NeptuneReaderAverageCPUUtilization",
    "SageMakerVariantProvisionedConcurrencyUtilization",
    "ElastiCacheDatabaseCapacityUsageCountedForEvictPercentage",
    "SageMakerInferenceComponentInvocationsPerCopy",
    "WorkSpacesAverageUserSessionsCapacityUtilization",
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
    "SageMakerVariantConcurrentRequestsPerModelHighResolution",
    "ECSServiceAverageCPUUtilizationHighResolution",
    "ECSServiceAverageMemoryUtilizationHighResolution",
];

const STRING: Kind = Kind::Str {
    min: Some(0),
    max: None,
    pattern: None,
};
const XML_STRING: Kind = Kind::Str {
    min: Some(0),
    max: None,
    pattern: Some(XML_PATTERN),
};
const RESOURCE_ID: Kind = xml(1, 1600);
const RESOURCE_IDS: Kind = Kind::List {
    member: &RESOURCE_ID,
    min: None,
    max: Some(50),
};
const SERVICE_NAMESPACE: Kind = Kind::Enum(NAMESPACES);
const SCALABLE_DIMENSION: Kind = Kind::Enum(DIMENSIONS);
const INTEGER: Kind = Kind::Int {
    min: None,
    max: None,
};
const DOUBLE: Kind = Kind::Double;
const BOOL: Kind = Kind::Bool;
const TIMESTAMP: Kind = Kind::Timestamp;
const TAG_KEY: Kind = text(1, 128);
const TAG_VALUE: Kind = text(0, 256);
const TAG_MAP: Kind = Kind::Map {
    key: &TAG_KEY,
    value: &TAG_VALUE,
    max: None,
};
const TAG_KEYS: Kind = Kind::List {
    member: &TAG_KEY,
    min: None,
    max: Some(200),
};
const RESOURCE_ARN: Kind = patterned(1, 1011, TARGET_ARN_PATTERN);
const SCHEDULED_ACTION_NAME: Kind = patterned(1, 256, ACTION_NAME_PATTERN);
const POLICY_NAME: Kind = patterned(1, 256, POLICY_NAME_PATTERN);
const SUSPENDED_STATE: Kind = Kind::Struct(&[
    member("DynamicScalingInSuspended", &BOOL),
    member("DynamicScalingOutSuspended", &BOOL),
    member("ScheduledScalingSuspended", &BOOL),
]);
const SCALABLE_TARGET_ACTION: Kind = Kind::Struct(&[
    member("MinCapacity", &INTEGER),
    member("MaxCapacity", &INTEGER),
]);

const STEP_ADJUSTMENT: Kind = Kind::Struct(&[
    member("MetricIntervalLowerBound", &DOUBLE),
    member("MetricIntervalUpperBound", &DOUBLE),
    required("ScalingAdjustment", &INTEGER),
]);
const STEP_SCALING: Kind = Kind::Struct(&[
    member(
        "AdjustmentType",
        &Kind::Enum(&[
            "ChangeInCapacity",
            "PercentChangeInCapacity",
            "ExactCapacity",
        ]),
    ),
    member(
        "StepAdjustments",
        &Kind::List {
            member: &STEP_ADJUSTMENT,
            min: None,
            max: None,
        },
    ),
    member("MinAdjustmentMagnitude", &INTEGER),
    member("Cooldown", &INTEGER),
    member(
        "MetricAggregationType",
        &Kind::Enum(&["Average", "Minimum", "Maximum"]),
    ),
]);

const METRIC_DIMENSION: Kind =
    Kind::Struct(&[required("Name", &STRING), required("Value", &STRING)]);
/// A metric of a metric math query (target tracking and predictive alike).
const QUERY_METRIC: Kind = Kind::Struct(&[
    member(
        "Dimensions",
        &Kind::List {
            member: &Kind::Struct(&[
                required("Name", &xml(1, 255)),
                required("Value", &xml(1, 1024)),
            ]),
            min: None,
            max: None,
        },
    ),
    member("MetricName", &xml(1, 255)),
    member("Namespace", &xml(1, 255)),
]);
const QUERY_METRIC_STAT: Kind = Kind::Struct(&[
    required("Metric", &QUERY_METRIC),
    required("Stat", &XML_STRING),
    member("Unit", &xml(1, 1023)),
]);
const TRACKING_QUERY: Kind = Kind::Struct(&[
    member("Expression", &xml(1, 2048)),
    required("Id", &xml(1, 255)),
    member("Label", &XML_STRING),
    member("MetricStat", &QUERY_METRIC_STAT),
    member("ReturnData", &BOOL),
]);
const CUSTOMIZED_METRIC: Kind = Kind::Struct(&[
    member("MetricName", &STRING),
    member("Namespace", &STRING),
    member(
        "Dimensions",
        &Kind::List {
            member: &METRIC_DIMENSION,
            min: None,
            max: None,
        },
    ),
    member(
        "Statistic",
        &Kind::Enum(&["Average", "Minimum", "Maximum", "SampleCount", "Sum"]),
    ),
    member("Unit", &STRING),
    member(
        "Metrics",
        &Kind::List {
            member: &TRACKING_QUERY,
            min: None,
            max: None,
        },
    ),
]);
const TARGET_TRACKING: Kind = Kind::Struct(&[
    required("TargetValue", &DOUBLE),
    member(
        "PredefinedMetricSpecification",
        &Kind::Struct(&[
            required("PredefinedMetricType", &Kind::Enum(METRIC_TYPES)),
            member("ResourceLabel", &text(1, 1023)),
        ]),
    ),
    member("CustomizedMetricSpecification", &CUSTOMIZED_METRIC),
    member("ScaleOutCooldown", &INTEGER),
    member("ScaleInCooldown", &INTEGER),
    member("DisableScaleIn", &BOOL),
]);

const PREDICTIVE_PREDEFINED: Kind = Kind::Struct(&[
    required("PredefinedMetricType", &text(1, 128)),
    member("ResourceLabel", &text(1, 1023)),
]);
const PREDICTIVE_CUSTOMIZED: Kind = Kind::Struct(&[required(
    "MetricDataQueries",
    &Kind::List {
        member: &Kind::Struct(&[
            required("Id", &xml(1, 255)),
            member("Expression", &xml(1, 2048)),
            member("MetricStat", &QUERY_METRIC_STAT),
            member("Label", &XML_STRING),
            member("ReturnData", &BOOL),
        ]),
        min: None,
        max: None,
    },
)]);
const PREDICTIVE_SPECIFICATION: Kind = Kind::Struct(&[
    required("TargetValue", &DOUBLE),
    member("PredefinedMetricPairSpecification", &PREDICTIVE_PREDEFINED),
    member(
        "PredefinedScalingMetricSpecification",
        &PREDICTIVE_PREDEFINED,
    ),
    member("PredefinedLoadMetricSpecification", &PREDICTIVE_PREDEFINED),
    member(
        "CustomizedScalingMetricSpecification",
        &PREDICTIVE_CUSTOMIZED,
    ),
    member("CustomizedLoadMetricSpecification", &PREDICTIVE_CUSTOMIZED),
    member(
        "CustomizedCapacityMetricSpecification",
        &PREDICTIVE_CUSTOMIZED,
    ),
]);
const PREDICTIVE_SCALING: Kind = Kind::Struct(&[
    required(
        "MetricSpecifications",
        &Kind::List {
            member: &PREDICTIVE_SPECIFICATION,
            min: None,
            max: None,
        },
    ),
    member("Mode", &Kind::Enum(&["ForecastOnly", "ForecastAndScale"])),
    member(
        "SchedulingBufferTime",
        &Kind::Int {
            min: Some(0),
            max: Some(3600),
        },
    ),
    member(
        "MaxCapacityBreachBehavior",
        &Kind::Enum(&["HonorMaxCapacity", "IncreaseMaxCapacity"]),
    ),
    member(
        "MaxCapacityBuffer",
        &Kind::Int {
            min: Some(0),
            max: Some(100),
        },
    ),
]);

const TARGET_ONLY: &[Member] = &[
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    required("ResourceId", &RESOURCE_ID),
    required("ScalableDimension", &SCALABLE_DIMENSION),
];
const REGISTER_SCALABLE_TARGET: &[Member] = &[
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    required("ResourceId", &RESOURCE_ID),
    required("ScalableDimension", &SCALABLE_DIMENSION),
    member("MinCapacity", &INTEGER),
    member("MaxCapacity", &INTEGER),
    member("RoleARN", &RESOURCE_ID),
    member("SuspendedState", &SUSPENDED_STATE),
    member("Tags", &TAG_MAP),
];
const DESCRIBE_SCALABLE_TARGETS: &[Member] = &[
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    member("ResourceIds", &RESOURCE_IDS),
    member("ScalableDimension", &SCALABLE_DIMENSION),
    member("MaxResults", &INTEGER),
    member("NextToken", &XML_STRING),
];
const PUT_SCHEDULED_ACTION: &[Member] = &[
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    member("Schedule", &RESOURCE_ID),
    member("Timezone", &RESOURCE_ID),
    required("ScheduledActionName", &SCHEDULED_ACTION_NAME),
    required("ResourceId", &RESOURCE_ID),
    required("ScalableDimension", &SCALABLE_DIMENSION),
    member("StartTime", &TIMESTAMP),
    member("EndTime", &TIMESTAMP),
    member("ScalableTargetAction", &SCALABLE_TARGET_ACTION),
];
const DELETE_SCHEDULED_ACTION: &[Member] = &[
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    required("ScheduledActionName", &RESOURCE_ID),
    required("ResourceId", &RESOURCE_ID),
    required("ScalableDimension", &SCALABLE_DIMENSION),
];
const DESCRIBE_SCHEDULED_ACTIONS: &[Member] = &[
    member("ScheduledActionNames", &RESOURCE_IDS),
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    member("ResourceId", &RESOURCE_ID),
    member("ScalableDimension", &SCALABLE_DIMENSION),
    member("MaxResults", &INTEGER),
    member("NextToken", &XML_STRING),
];
const PUT_SCALING_POLICY: &[Member] = &[
    required("PolicyName", &POLICY_NAME),
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    required("ResourceId", &RESOURCE_ID),
    required("ScalableDimension", &SCALABLE_DIMENSION),
    member(
        "PolicyType",
        &Kind::Enum(&["StepScaling", "TargetTrackingScaling", "PredictiveScaling"]),
    ),
    member("StepScalingPolicyConfiguration", &STEP_SCALING),
    member("TargetTrackingScalingPolicyConfiguration", &TARGET_TRACKING),
    member("PredictiveScalingPolicyConfiguration", &PREDICTIVE_SCALING),
];
const DELETE_SCALING_POLICY: &[Member] = &[
    required("PolicyName", &RESOURCE_ID),
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    required("ResourceId", &RESOURCE_ID),
    required("ScalableDimension", &SCALABLE_DIMENSION),
];
const DESCRIBE_SCALING_POLICIES: &[Member] = &[
    member("PolicyNames", &RESOURCE_IDS),
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    member("ResourceId", &RESOURCE_ID),
    member("ScalableDimension", &SCALABLE_DIMENSION),
    member("MaxResults", &INTEGER),
    member("NextToken", &XML_STRING),
];
const DESCRIBE_SCALING_ACTIVITIES: &[Member] = &[
    required("ServiceNamespace", &SERVICE_NAMESPACE),
    member("ResourceId", &RESOURCE_ID),
    member("ScalableDimension", &SCALABLE_DIMENSION),
    member("MaxResults", &INTEGER),
    member("NextToken", &XML_STRING),
    member("IncludeNotScaledActivities", &BOOL),
];
const TAG_RESOURCE: &[Member] = &[
    required("ResourceARN", &RESOURCE_ARN),
    required("Tags", &TAG_MAP),
];
const UNTAG_RESOURCE: &[Member] = &[
    required("ResourceARN", &RESOURCE_ARN),
    required("TagKeys", &TAG_KEYS),
];
const LIST_TAGS_FOR_RESOURCE: &[Member] = &[required("ResourceARN", &RESOURCE_ARN)];

/// The input shape of an operation this adapter serves.
fn input_shape(operation: &str) -> Option<&'static [Member]> {
    Some(match operation {
        "RegisterScalableTarget" => REGISTER_SCALABLE_TARGET,
        "DeregisterScalableTarget" => TARGET_ONLY,
        "DescribeScalableTargets" => DESCRIBE_SCALABLE_TARGETS,
        "PutScheduledAction" => PUT_SCHEDULED_ACTION,
        "DeleteScheduledAction" => DELETE_SCHEDULED_ACTION,
        "DescribeScheduledActions" => DESCRIBE_SCHEDULED_ACTIONS,
        "PutScalingPolicy" => PUT_SCALING_POLICY,
        "DeleteScalingPolicy" => DELETE_SCALING_POLICY,
        "DescribeScalingPolicies" => DESCRIBE_SCALING_POLICIES,
        "DescribeScalingActivities" => DESCRIBE_SCALING_ACTIVITIES,
        "TagResource" => TAG_RESOURCE,
        "UntagResource" => UNTAG_RESOURCE,
        "ListTagsForResource" => LIST_TAGS_FOR_RESOURCE,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Reading checked inputs and writing outputs.

fn page(input: &Value) -> Page {
    Page {
        max_results: integer(input, "MaxResults"),
        next_token: string(input, "NextToken").map(str::to_owned),
    }
}

fn filter(input: &Value, ids: Vec<String>, names: Vec<String>) -> Filter {
    Filter {
        resource_ids: ids,
        dimension: string(input, "ScalableDimension").map(str::to_owned),
        names,
    }
}

fn resource_id(input: &Value) -> Vec<String> {
    string(input, "ResourceId")
        .map(str::to_owned)
        .into_iter()
        .collect()
}

/// Epoch seconds, to the millisecond.
fn epoch(at: OffsetDateTime) -> Value {
    let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    json!(millis as f64 / 1000.0)
}

fn target_json(target: &ScalableTarget) -> Value {
    json!({
        "ServiceNamespace": gust_autoscaling::model::NAMESPACE,
        "ResourceId": target.resource.id(),
        "ScalableDimension": gust_autoscaling::model::DIMENSION,
        "MinCapacity": target.min_capacity,
        "MaxCapacity": target.max_capacity,
        "RoleARN": target.role_arn(),
        "CreationTime": epoch(target.created),
        "SuspendedState": {
            "DynamicScalingInSuspended": target.suspended.dynamic_scaling_in_suspended,
            "DynamicScalingOutSuspended": target.suspended.dynamic_scaling_out_suspended,
            "ScheduledScalingSuspended": target.suspended.scheduled_scaling_suspended,
        },
        "ScalableTargetARN": target.arn,
    })
}

fn action_json(action: &ScheduledAction) -> Value {
    let mut out = Map::new();
    out.insert("ScheduledActionName".into(), json!(action.name));
    out.insert("ScheduledActionARN".into(), json!(action.arn));
    out.insert(
        "ServiceNamespace".into(),
        json!(gust_autoscaling::model::NAMESPACE),
    );
    out.insert("Schedule".into(), json!(action.schedule));
    if let Some(zone) = &action.timezone {
        out.insert("Timezone".into(), json!(zone));
    }
    out.insert("ResourceId".into(), json!(action.resource.id()));
    out.insert(
        "ScalableDimension".into(),
        json!(gust_autoscaling::model::DIMENSION),
    );
    if let Some(start) = action.start {
        out.insert("StartTime".into(), epoch(start));
    }
    if let Some(end) = action.end {
        out.insert("EndTime".into(), epoch(end));
    }
    let mut bounds = Map::new();
    if let Some(min) = action.min_capacity {
        bounds.insert("MinCapacity".into(), json!(min));
    }
    if let Some(max) = action.max_capacity {
        bounds.insert("MaxCapacity".into(), json!(max));
    }
    out.insert("ScalableTargetAction".into(), Value::Object(bounds));
    out.insert("CreationTime".into(), epoch(action.created));
    Value::Object(out)
}

fn alarms_json(alarms: &[gust_autoscaling::Alarm]) -> Value {
    Value::Array(
        alarms
            .iter()
            .map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn}))
            .collect(),
    )
}

fn policy_json(policy: &ScalingPolicy) -> Value {
    let tracking = &policy.tracking;
    let mut predefined = Map::new();
    predefined.insert(
        "PredefinedMetricType".into(),
        json!(tracking.predefined_metric_type),
    );
    if let Some(label) = &tracking.resource_label {
        predefined.insert("ResourceLabel".into(), json!(label));
    }
    let mut configuration = Map::new();
    configuration.insert("TargetValue".into(), json!(tracking.target_value));
    configuration.insert(
        "PredefinedMetricSpecification".into(),
        Value::Object(predefined),
    );
    if let Some(cooldown) = tracking.scale_out_cooldown {
        configuration.insert("ScaleOutCooldown".into(), json!(cooldown));
    }
    if let Some(cooldown) = tracking.scale_in_cooldown {
        configuration.insert("ScaleInCooldown".into(), json!(cooldown));
    }
    if let Some(disable) = tracking.disable_scale_in {
        configuration.insert("DisableScaleIn".into(), json!(disable));
    }
    json!({
        "PolicyARN": policy.arn,
        "PolicyName": policy.name,
        "ServiceNamespace": gust_autoscaling::model::NAMESPACE,
        "ResourceId": policy.resource.id(),
        "ScalableDimension": gust_autoscaling::model::DIMENSION,
        "PolicyType": policy.policy_type,
        "TargetTrackingScalingPolicyConfiguration": configuration,
        "Alarms": alarms_json(&policy.alarms),
        "CreationTime": epoch(policy.created),
    })
}

fn activity_json(activity: &ScalingActivity) -> Value {
    let mut out = Map::new();
    out.insert("ActivityId".into(), json!(activity.id));
    out.insert(
        "ServiceNamespace".into(),
        json!(gust_autoscaling::model::NAMESPACE),
    );
    out.insert("ResourceId".into(), json!(activity.resource.id()));
    out.insert(
        "ScalableDimension".into(),
        json!(gust_autoscaling::model::DIMENSION),
    );
    out.insert("Description".into(), json!(activity.description));
    out.insert("Cause".into(), json!(activity.cause));
    out.insert("StartTime".into(), epoch(activity.start));
    if let Some(end) = activity.end {
        out.insert("EndTime".into(), epoch(end));
    }
    out.insert("StatusCode".into(), json!(activity.status.as_str()));
    if let Some(message) = &activity.status_message {
        out.insert("StatusMessage".into(), json!(message));
    }
    Value::Object(out)
}

fn listed(name: &str, items: Vec<Value>, next_token: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(name.into(), Value::Array(items));
    if let Some(token) = next_token {
        out.insert("NextToken".into(), json!(token));
    }
    Value::Object(out)
}

fn tracking_input(config: &Value) -> TargetTrackingInput {
    let predefined = object(config, "PredefinedMetricSpecification").map(|spec| {
        (
            string(spec, "PredefinedMetricType")
                .unwrap_or_default()
                .to_owned(),
            string(spec, "ResourceLabel").map(str::to_owned),
        )
    });
    TargetTrackingInput {
        target_value: config
            .get("TargetValue")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
        predefined,
        customized: object(config, "CustomizedMetricSpecification").is_some(),
        scale_out_cooldown: integer(config, "ScaleOutCooldown"),
        scale_in_cooldown: integer(config, "ScaleInCooldown"),
        disable_scale_in: boolean(config, "DisableScaleIn"),
    }
}

/// Runs one operation for `account`.
pub(crate) fn handle(
    service: &Autoscaling,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, ServiceError> {
    let Some(shape) = input_shape(operation) else {
        return Err(ServiceError::client(
            400,
            "UnknownOperationException",
            format!("Gust's Application Auto Scaling does not implement the operation {operation}"),
        ));
    };
    validate::check(shape, input, &Dialect::PLAIN)?;
    Ok(run(service, account, operation, input)?)
}

fn run(
    service: &Autoscaling,
    account: &str,
    operation: &str,
    input: &Value,
) -> Result<Value, AutoscalingError> {
    let namespace = string(input, "ServiceNamespace").unwrap_or_default();
    let resource = string(input, "ResourceId").unwrap_or_default();
    let dimension = string(input, "ScalableDimension").unwrap_or_default();
    Ok(match operation {
        "RegisterScalableTarget" => {
            let suspended = object(input, "SuspendedState").map(|s| SuspendedUpdate {
                dynamic_scaling_in_suspended: boolean(s, "DynamicScalingInSuspended"),
                dynamic_scaling_out_suspended: boolean(s, "DynamicScalingOutSuspended"),
                scheduled_scaling_suspended: boolean(s, "ScheduledScalingSuspended"),
            });
            let target = service.register_scalable_target(
                account,
                namespace,
                resource,
                dimension,
                RegisterTarget {
                    min_capacity: integer(input, "MinCapacity"),
                    max_capacity: integer(input, "MaxCapacity"),
                    suspended,
                    tags: string_map(input, "Tags"),
                },
            )?;
            json!({"ScalableTargetARN": target.arn})
        }
        "DeregisterScalableTarget" => {
            service.deregister_scalable_target(account, namespace, resource, dimension)?;
            json!({})
        }
        "DescribeScalableTargets" => {
            let found = service.describe_scalable_targets(
                account,
                namespace,
                &filter(input, strings(input, "ResourceIds"), Vec::new()),
                &page(input),
            )?;
            listed(
                "ScalableTargets",
                found.items.iter().map(target_json).collect(),
                found.next_token,
            )
        }
        "PutScheduledAction" => {
            let target_action = object(input, "ScalableTargetAction")
                .map(|a| (integer(a, "MinCapacity"), integer(a, "MaxCapacity")));
            service.put_scheduled_action(
                account,
                namespace,
                resource,
                dimension,
                PutScheduledAction {
                    name: string(input, "ScheduledActionName")
                        .unwrap_or_default()
                        .to_owned(),
                    schedule: string(input, "Schedule").map(str::to_owned),
                    timezone: string(input, "Timezone").map(str::to_owned),
                    start: timestamp(input, "StartTime"),
                    end: timestamp(input, "EndTime"),
                    target_action,
                },
            )?;
            json!({})
        }
        "DeleteScheduledAction" => {
            service.delete_scheduled_action(
                account,
                namespace,
                resource,
                dimension,
                string(input, "ScheduledActionName").unwrap_or_default(),
            )?;
            json!({})
        }
        "DescribeScheduledActions" => {
            let found = service.describe_scheduled_actions(
                account,
                namespace,
                &filter(
                    input,
                    resource_id(input),
                    strings(input, "ScheduledActionNames"),
                ),
                &page(input),
            )?;
            listed(
                "ScheduledActions",
                found.items.iter().map(action_json).collect(),
                found.next_token,
            )
        }
        "PutScalingPolicy" => {
            let created = service.put_scaling_policy(
                account,
                namespace,
                resource,
                dimension,
                PutScalingPolicy {
                    name: string(input, "PolicyName").unwrap_or_default().to_owned(),
                    policy_type: string(input, "PolicyType").map(str::to_owned),
                    target_tracking: object(input, "TargetTrackingScalingPolicyConfiguration")
                        .map(tracking_input),
                    step_scaling: object(input, "StepScalingPolicyConfiguration").is_some(),
                    predictive_scaling: object(input, "PredictiveScalingPolicyConfiguration")
                        .is_some(),
                },
            )?;
            json!({"PolicyARN": created.arn, "Alarms": alarms_json(&created.alarms)})
        }
        "DeleteScalingPolicy" => {
            service.delete_scaling_policy(
                account,
                namespace,
                resource,
                dimension,
                string(input, "PolicyName").unwrap_or_default(),
            )?;
            json!({})
        }
        "DescribeScalingPolicies" => {
            let found = service.describe_scaling_policies(
                account,
                namespace,
                &filter(input, resource_id(input), strings(input, "PolicyNames")),
                &page(input),
            )?;
            listed(
                "ScalingPolicies",
                found.items.iter().map(policy_json).collect(),
                found.next_token,
            )
        }
        "DescribeScalingActivities" => {
            let found = service.describe_scaling_activities(
                account,
                namespace,
                &filter(input, resource_id(input), Vec::new()),
                &page(input),
            )?;
            listed(
                "ScalingActivities",
                found.items.iter().map(activity_json).collect(),
                found.next_token,
            )
        }
        "TagResource" => {
            service.tag(
                account,
                string(input, "ResourceARN").unwrap_or_default(),
                string_map(input, "Tags").unwrap_or_default(),
            )?;
            json!({})
        }
        "UntagResource" => {
            service.untag(
                account,
                string(input, "ResourceARN").unwrap_or_default(),
                &strings(input, "TagKeys"),
            )?;
            json!({})
        }
        "ListTagsForResource" => {
            let tags =
                service.list_tags(account, string(input, "ResourceARN").unwrap_or_default())?;
            json!({ "Tags": tags })
        }
        _ => json!({}),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use gust_autoscaling::Provisioned;

    use super::*;

    #[derive(Debug, Default)]
    struct Lambda {
        requested: Mutex<Option<u32>>,
    }

    impl Provisioned for Lambda {
        fn exists(&self, _: &str, function: &str, _: &str) -> Result<bool, String> {
            Ok(function == "my-function")
        }
        fn requested(&self, _: &str, _: &str, _: &str) -> Result<Option<u32>, String> {
            Ok(*self.requested.lock().unwrap())
        }
        fn set_requested(&self, _: &str, _: &str, _: &str, n: u32) -> Result<(), String> {
            *self.requested.lock().unwrap() = Some(n);
            Ok(())
        }
        fn utilization(&self, _: &str, _: &str, _: &str) -> Option<f64> {
            None
        }
    }

    fn service() -> (Arc<Autoscaling>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let service = Autoscaling::open(
            &dir.path().join("aas.db"),
            Arc::new(gust_model::SystemClock),
            "us-east-1",
            Arc::new(Lambda::default()),
        )
        .unwrap();
        (service, dir)
    }

    const ACCOUNT: &str = "123456789012";

    fn call(service: &Autoscaling, operation: &str, input: Value) -> Result<Value, ServiceError> {
        handle(service, ACCOUNT, operation, &input)
    }

    fn target() -> Value {
        json!({
            "ServiceNamespace": "lambda",
            "ResourceId": "function:my-function:BLUE",
            "ScalableDimension": "lambda:function:ProvisionedConcurrency",
        })
    }

    fn with(mut base: Value, extra: Value) -> Value {
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base
    }

    #[test]
    fn checks_inputs_against_the_model() {
        let (service, _dir) = service();
        let error = call(&service, "RegisterScalableTarget", json!({})).unwrap_err();
        assert_eq!(error.shape, "ValidationException");
        assert_eq!(
            error.message,
            "3 validation errors detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null; Value null at 'resourceId' failed to satisfy constraint: Member must not be null; Value null at 'scalableDimension' failed to satisfy constraint: Member must not be null"
        );
        let error = call(
            &service,
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "lambada"}),
        )
        .unwrap_err();
        assert!(error.message.starts_with(
            "1 validation error detected: Value 'lambada' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [ecs, elasticmapreduce, ec2,"
        ), "{}", error.message);
        let long = "x".repeat(1601);
        let error = call(
            &service,
            "DeregisterScalableTarget",
            with(target(), json!({"ResourceId": long})),
        )
        .unwrap_err();
        assert!(error.message.ends_with(
            "at 'resourceId' failed to satisfy constraint: Member must have length less than or equal to 1600"
        ));
        let error = call(
            &service,
            "PutScheduledAction",
            with(
                target(),
                json!({"ScheduledActionName": "a/b", "Schedule": "rate(1 hour)",
                       "ScalableTargetAction": {"MinCapacity": 1}}),
            ),
        )
        .unwrap_err();
        assert!(error.message.contains(
            "Value 'a/b' at 'scheduledActionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!("
        ), "{}", error.message);
        let error = call(
            &service,
            "PutScalingPolicy",
            with(
                target(),
                json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling",
                       "TargetTrackingScalingPolicyConfiguration": {"PredefinedMetricSpecification": {}}}),
            ),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "2 validation errors detected: Value null at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to satisfy constraint: Member must not be null; Value null at 'targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.predefinedMetricType' failed to satisfy constraint: Member must not be null"
        );
        let ids: Vec<String> = (0..51).map(|i| format!("function:f:{i}")).collect();
        let error = call(
            &service,
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "lambda", "ResourceIds": ids}),
        )
        .unwrap_err();
        assert!(error
            .message
            .ends_with("at 'resourceIds' failed to satisfy constraint: Member must have length less than or equal to 50"));
        let error = call(
            &service,
            "RegisterScalableTarget",
            with(target(), json!({"MinCapacity": "one"})),
        )
        .unwrap_err();
        assert_eq!(error.shape, "SerializationException");
        let error = call(
            &service,
            "ListTagsForResource",
            json!({"ResourceARN": "arn:aws:lambda:us-east-1:1:function:f"}),
        )
        .unwrap_err();
        assert!(error.message.contains("regular expression pattern: ^arn:"));
        let error = call(&service, "GetPredictiveScalingForecast", json!({})).unwrap_err();
        assert_eq!(error.shape, "UnknownOperationException");
    }

    #[test]
    fn registers_describes_and_maps_errors() {
        let (service, _dir) = service();
        let registered = call(
            &service,
            "RegisterScalableTarget",
            with(target(), json!({"MinCapacity": 1, "MaxCapacity": 10})),
        )
        .unwrap();
        let arn = registered["ScalableTargetARN"].as_str().unwrap().to_owned();
        let described = call(
            &service,
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "lambda", "ResourceIds": ["function:my-function:BLUE"]}),
        )
        .unwrap();
        let found = &described["ScalableTargets"][0];
        assert_eq!(found["ScalableTargetARN"], json!(arn));
        assert_eq!(found["MinCapacity"], json!(1));
        assert_eq!(found["MaxCapacity"], json!(10));
        assert_eq!(
            found["SuspendedState"]["ScheduledScalingSuspended"],
            json!(false)
        );
        assert!(found["CreationTime"].is_f64());
        assert!(found["RoleARN"]
            .as_str()
            .unwrap()
            .ends_with("AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency"));
        assert!(described.get("NextToken").is_none());

        call(
            &service,
            "PutScheduledAction",
            with(
                target(),
                json!({"ScheduledActionName": "nightly", "Schedule": "cron(0 22 ? * MON-FRI *)",
                       "Timezone": "Europe/Berlin", "StartTime": 1893456000,
                       "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 2}}),
            ),
        )
        .unwrap();
        let actions = call(
            &service,
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "lambda", "ScheduledActionNames": ["nightly"]}),
        )
        .unwrap();
        let action = &actions["ScheduledActions"][0];
        assert_eq!(action["Schedule"], json!("cron(0 22 ? * MON-FRI *)"));
        assert_eq!(action["Timezone"], json!("Europe/Berlin"));
        assert_eq!(action["StartTime"], json!(1893456000.0));
        assert_eq!(
            action["ScalableTargetAction"],
            json!({"MinCapacity": 0, "MaxCapacity": 2})
        );

        let policy = call(
            &service,
            "PutScalingPolicy",
            with(
                target(),
                json!({"PolicyName": "utilization", "PolicyType": "TargetTrackingScaling",
                       "TargetTrackingScalingPolicyConfiguration": {
                           "TargetValue": 0.7,
                           "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"},
                           "ScaleInCooldown": 120}}),
            ),
        )
        .unwrap();
        assert_eq!(policy["Alarms"].as_array().unwrap().len(), 2);
        let policies = call(
            &service,
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "lambda"}),
        )
        .unwrap();
        assert_eq!(
            policies["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"],
            json!({"TargetValue": 0.7,
                   "PredefinedMetricSpecification": {"PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"},
                   "ScaleInCooldown": 120})
        );
        let step = call(
            &service,
            "PutScalingPolicy",
            with(
                target(),
                json!({"PolicyName": "steps", "PolicyType": "StepScaling",
                       "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
                           "StepAdjustments": [{"ScalingAdjustment": 1}]}}),
            ),
        )
        .unwrap_err();
        assert_eq!(step.shape, "ValidationException");

        call(
            &service,
            "TagResource",
            json!({"ResourceARN": arn, "Tags": {"team": "a"}}),
        )
        .unwrap();
        assert_eq!(
            call(&service, "ListTagsForResource", json!({"ResourceARN": arn})).unwrap(),
            json!({"Tags": {"team": "a"}})
        );

        call(&service, "DeregisterScalableTarget", target()).unwrap();
        let error = call(&service, "DeregisterScalableTarget", target()).unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(error.shape, "ObjectNotFoundException");
        assert!(error
            .message
            .starts_with("No scalable target registered for service namespace: lambda"));
        let activities = call(
            &service,
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "lambda", "ResourceId": "function:my-function:BLUE"}),
        )
        .unwrap();
        assert_eq!(activities, json!({"ScalingActivities": []}));
    }
}

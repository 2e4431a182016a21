//! A function's configuration (`$LATEST`), its lifecycle states, and how create and update
//! inputs are validated and applied.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use crate::error::{ModelError, Violations};
use crate::limits::*;
use crate::names::{FunctionName, Scope};
use crate::runtime::{Runtime, RuntimeCatalog};
use crate::tags::Tags;

/// Environment variables, ordered by name.
pub type EnvironmentVariables = BTreeMap<String, String>;

/// Keys Lambda sets itself and refuses in `Environment.Variables`.
pub const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

const ROLE_PATTERN: &str = "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+";

/// Instruction set of the function's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// The default.
    X86_64,
    /// 64-bit ARM.
    Arm64,
}

impl Architecture {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "x86_64" => Some(Architecture::X86_64),
            "arm64" => Some(Architecture::Arm64),
            _ => None,
        }
    }
}

/// X-Ray tracing mode (recorded and echoed; Gust emits no traces yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracingMode {
    /// The default.
    PassThrough,
    /// Active tracing requested.
    Active,
}

impl TracingMode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TracingMode::PassThrough => "PassThrough",
            TracingMode::Active => "Active",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PassThrough" => Some(TracingMode::PassThrough),
            "Active" => Some(TracingMode::Active),
            _ => None,
        }
    }
}

/// Format of the function's own log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Plain text (the default).
    Text,
    /// Structured JSON.
    Json,
}

/// `ApplicationLogLevel` values, least severe first.
pub const APPLICATION_LOG_LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// `SystemLogLevel` values, least severe first.
pub const SYSTEM_LOG_LEVELS: &[&str] = &["DEBUG", "INFO", "WARN"];

/// The levels a JSON-format function logs at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevels {
    /// The function's own lines at or above this are kept.
    pub application: String,
    /// The platform's lines (START, REPORT, ...) at or above this are kept.
    pub system: String,
}

impl Default for LogLevels {
    fn default() -> Self {
        LogLevels {
            application: "INFO".into(),
            system: "INFO".into(),
        }
    }
}

impl LogFormat {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "Text",
            LogFormat::Json => "JSON",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Text" => Some(LogFormat::Text),
            "JSON" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// `State`: whether the function can be invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionState {
    /// Just created; resources are being prepared.
    Pending,
    /// Ready to invoke.
    Active,
    /// Preparing resources failed.
    Failed,
}

impl FunctionState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionState::Pending => "Pending",
            FunctionState::Active => "Active",
            FunctionState::Failed => "Failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Pending" => Some(FunctionState::Pending),
            "Active" => Some(FunctionState::Active),
            "Failed" => Some(FunctionState::Failed),
            _ => None,
        }
    }
}

/// `LastUpdateStatus`: progress of the most recent create or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastUpdateStatus {
    /// The update is being applied.
    InProgress,
    /// The update was applied.
    Successful,
    /// The update could not be applied.
    Failed,
}

impl LastUpdateStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LastUpdateStatus::InProgress => "InProgress",
            LastUpdateStatus::Successful => "Successful",
            LastUpdateStatus::Failed => "Failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "InProgress" => Some(LastUpdateStatus::InProgress),
            "Successful" => Some(LastUpdateStatus::Successful),
            "Failed" => Some(LastUpdateStatus::Failed),
            _ => None,
        }
    }
}

/// A state change that the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function lifecycle: cannot go from {from} to {to}")]
pub struct InvalidTransition {
    /// The state before.
    pub from: &'static str,
    /// The state asked for.
    pub to: &'static str,
}

/// SHA-256 of a code package (the zip's bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeDigest(pub [u8; 32]);

impl CodeDigest {
    /// Lowercase hex, the blob store's file name.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(CodeDigest(out))
    }
}

impl fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeDigest({})", self.to_hex())
    }
}

/// The code package a configuration points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRef {
    /// SHA-256 of the zip.
    pub digest: CodeDigest,
    /// Size of the zip in bytes.
    pub size: u64,
}

/// The complete, validated configuration of a function's `$LATEST`.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// The name.
    pub name: FunctionName,
    /// `$LATEST`, or the published version this snapshot is.
    pub version: crate::version::FunctionVersion,
    /// The runtime.
    pub runtime: Runtime,
    /// The execution role ARN (recorded; Gust has no IAM).
    pub role: String,
    /// The handler string, interpreted by the runtime.
    pub handler: String,
    /// Free text, `""` when unset.
    pub description: String,
    /// Seconds.
    pub timeout_s: u32,
    /// MB.
    pub memory_mb: u32,
    /// `/tmp` size, MB.
    pub ephemeral_mb: u32,
    /// `None` until the user sets a map (an empty map is kept as set).
    pub environment: Option<EnvironmentVariables>,
    /// Code architecture.
    pub architecture: Architecture,
    /// Layer versions, in order (a later one's files replace an earlier one's in `/opt`).
    pub layers: Vec<crate::layer::FunctionLayer>,
    /// X-Ray mode.
    pub tracing_mode: TracingMode,
    /// Dead-letter target ARN for failed async invokes.
    pub dead_letter_target: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// `LoggingConfig.ApplicationLogLevel` and `SystemLogLevel` (JSON format only; `INFO`
    /// unless set).
    pub log_levels: Option<LogLevels>,
    /// Log group name.
    pub log_group: String,
    /// `SnapStart.ApplyOn` is `PublishedVersions`: published versions start from
    /// initialized snapshots ([`FunctionConfig::snap_start_on`]).
    pub snap_start: bool,
    /// The code package.
    pub code: CodeRef,
    /// Changes on every mutation.
    pub revision_id: String,
    /// Time of the last mutation.
    pub last_modified: OffsetDateTime,
    /// Lifecycle state.
    pub state: FunctionState,
    /// Progress of the last update; `None` right after create (Lambda omits it then).
    pub last_update: Option<LastUpdateStatus>,
}

/// A partial change to a configuration: `None` leaves a member as it is. Create uses the
/// same shape on top of the defaults. `Environment` and `Layers` replace whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionUpdate {
    /// `Runtime`.
    pub runtime: Option<String>,
    /// `Role`.
    pub role: Option<String>,
    /// `Handler`.
    pub handler: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `Timeout`.
    pub timeout: Option<i64>,
    /// `MemorySize`.
    pub memory_size: Option<i64>,
    /// `EphemeralStorage.Size`.
    pub ephemeral_storage: Option<i64>,
    /// `Environment.Variables`.
    pub environment: Option<EnvironmentVariables>,
    /// `Architectures` (only on create and UpdateFunctionCode).
    pub architectures: Option<Vec<String>>,
    /// `Layers`.
    pub layers: Option<Vec<String>>,
    /// `TracingConfig.Mode`.
    pub tracing_mode: Option<String>,
    /// `DeadLetterConfig.TargetArn` (`Some("")` clears it).
    pub dead_letter_target: Option<String>,
    /// `LoggingConfig.LogFormat`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`.
    pub application_log_level: Option<String>,
    /// `LoggingConfig.SystemLogLevel`.
    pub system_log_level: Option<String>,
    /// `LoggingConfig.LogGroup`.
    pub log_group: Option<String>,
    /// `SnapStart.ApplyOn` (`PublishedVersions` or `None`).
    pub snap_start_apply_on: Option<String>,
}

/// A validated CreateFunction request.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateFunction {
    /// The raw `FunctionName` input (name or ARN).
    pub function_name: String,
    /// The settings; `Runtime`, `Role` and `Handler` are required.
    pub settings: FunctionUpdate,
    /// Tags to set.
    pub tags: Tags,
    /// `Publish`.
    pub publish: bool,
}

impl FunctionConfig {
    /// A new `$LATEST` in state `Pending` from a create request whose name was resolved and
    /// whose package was accepted.
    pub fn create(
        name: FunctionName,
        settings: &FunctionUpdate,
        code: CodeRef,
        catalog: &RuntimeCatalog,
        revision_id: String,
        now: OffsetDateTime,
    ) -> Result<Self, ModelError> {
        let mut missing = Violations::default();
        if settings.role.is_none() {
            missing.missing("role");
        }
        missing.finish()?;
        let runtime_id = settings.runtime.as_deref().ok_or_else(|| {
            ModelError::invalid("Runtime and Handler are mandatory parameters for functions created with Zip packages.")
        })?;
        if settings.handler.is_none() {
            return Err(ModelError::invalid(
                "Runtime and Handler are mandatory parameters for functions created with Zip packages.",
            ));
        }
        let log_group = Scope::log_group(&name);
        let mut config = FunctionConfig {
            runtime: catalog.check(runtime_id)?,
            name,
            version: crate::version::FunctionVersion::Latest,
            role: String::new(),
            handler: String::new(),
            description: String::new(),
            timeout_s: TIMEOUT_DEFAULT_S,
            memory_mb: MEMORY_DEFAULT_MB,
            ephemeral_mb: EPHEMERAL_DEFAULT_MB,
            environment: None,
            architecture: Architecture::X86_64,
            layers: Vec::new(),
            tracing_mode: TracingMode::PassThrough,
            dead_letter_target: None,
            log_format: LogFormat::Text,
            log_levels: None,
            log_group,
            snap_start: false,
            code,
            revision_id,
            last_modified: now,
            state: FunctionState::Pending,
            last_update: None,
        };
        config.apply(settings, catalog)?;
        Ok(config)
    }

    /// Validates every member of `update` (reporting all constraint failures at once) and,
    /// only if all pass, applies them. Does not touch revision, time or state.
    pub fn apply(
        &mut self,
        update: &FunctionUpdate,
        catalog: &RuntimeCatalog,
    ) -> Result<(), ModelError> {
        let mut v = Violations::default();
        // The model's ranges here; the service's tighter limits once the front end's
        // checks have passed (below).
        if let Some(timeout) = update.timeout {
            v.range(timeout, "timeout", TIMEOUT_MIN_S, TIMEOUT_MODEL_MAX_S);
        }
        if let Some(memory) = update.memory_size {
            v.range(memory, "memorySize", MEMORY_MIN_MB, MEMORY_MODEL_MAX_MB);
        }
        if let Some(size) = update.ephemeral_storage {
            v.range(
                size,
                "ephemeralStorage.size",
                EPHEMERAL_MIN_MB,
                EPHEMERAL_MODEL_MAX_MB,
            );
        }
        if let Some(handler) = &update.handler {
            v.length(handler, "handler", 0, HANDLER_MAX_LEN);
            // NUL cannot reach a process's environment (`_HANDLER`) either.
            // The model's `[^\s]+` is Java's: ASCII whitespace only.
            let java_space = |c: char| c.is_ascii_whitespace() || c == '\u{b}';
            if handler.is_empty() || handler.chars().any(|c| java_space(c) || c == '\0') {
                v.push(
                    handler.as_str(),
                    "handler",
                    "Member must satisfy regular expression pattern: [^\\s]+",
                );
            }
        }
        if let Some(description) = &update.description {
            v.length(description, "description", 0, DESCRIPTION_MAX_LEN);
        }
        if let Some(role) = &update.role {
            v.length(role, "role", 0, ROLE_MAX_LEN);
            if !is_role_arn(role) {
                v.push(
                    role.as_str(),
                    "role",
                    format!("Member must satisfy regular expression pattern: {ROLE_PATTERN}"),
                );
            }
        }
        let architecture = match &update.architectures {
            None => None,
            Some(list) => {
                let shown = format!("[{}]", list.join(", "));
                if list.is_empty() {
                    v.push(
                        shown.as_str(),
                        "architectures",
                        "Member must have length greater than or equal to 1",
                    );
                } else if list.len() > 1 {
                    v.push(
                        shown.as_str(),
                        "architectures",
                        "Member must have length less than or equal to 1",
                    );
                }
                // Every element is checked, as the model's list constraint does.
                if list.iter().any(|a| Architecture::parse(a).is_none()) {
                    v.push(
                        shown.as_str(),
                        "architectures",
                        "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
                    );
                }
                list.first().and_then(|a| Architecture::parse(a))
            }
        };
        let tracing = update
            .tracing_mode
            .as_deref()
            .map(|m| (m, TracingMode::parse(m)));
        if let Some((text, None)) = tracing {
            v.push(
                text,
                "tracingConfig.mode",
                "Member must satisfy enum value set: [Active, PassThrough]",
            );
        }
        let log_format = update
            .log_format
            .as_deref()
            .map(|m| (m, LogFormat::parse(m)));
        if let Some((text, None)) = log_format {
            v.push(
                text,
                "loggingConfig.logFormat",
                "Member must satisfy enum value set: [JSON, Text]",
            );
        }
        for (level, member, allowed) in [
            (
                &update.application_log_level,
                "loggingConfig.applicationLogLevel",
                APPLICATION_LOG_LEVELS,
            ),
            (
                &update.system_log_level,
                "loggingConfig.systemLogLevel",
                SYSTEM_LOG_LEVELS,
            ),
        ] {
            if let Some(level) = level.as_deref().filter(|l| !allowed.contains(l)) {
                v.push(
                    level,
                    member,
                    format!(
                        "Member must satisfy enum value set: [{}]",
                        allowed.join(", ")
                    ),
                );
            }
        }
        if let Some(group) = &update.log_group {
            v.length(group, "loggingConfig.logGroup", 1, 512);
            if !group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-/.#".contains(c))
            {
                v.push(
                    group.as_str(),
                    "loggingConfig.logGroup",
                    "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
                );
            }
        }
        if let Some(env) = &update.environment {
            if env.keys().any(|k| !is_env_key(k)) {
                v.push_hidden(
                    "environment.variables",
                    "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
                );
            }
        }
        if let Some(target) = update.dead_letter_target.as_deref() {
            let parts: Vec<&str> = target.splitn(4, ':').collect();
            let well_formed = target.is_empty()
                || (parts.len() == 4
                    && parts[0] == "arn"
                    && (parts[1].is_empty() || parts[1].starts_with("aws"))
                    && !parts[2].is_empty()
                    && parts[2].chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                    }));
            if !well_formed {
                v.push(
                    target,
                    "deadLetterConfig.targetArn",
                    "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()",
                );
            }
        }
        if let Some(apply_on) = update
            .snap_start_apply_on
            .as_deref()
            .filter(|a| !SNAP_START_APPLY_ON.contains(a))
        {
            v.push(
                apply_on,
                "snapStart.applyOn",
                "Member must satisfy enum value set: [PublishedVersions, None]",
            );
        }
        v.finish()?;
        for (value, member, max) in [
            (update.memory_size, "MemorySize", MEMORY_MAX_MB),
            (update.timeout, "Timeout", TIMEOUT_MAX_S),
            (
                update.ephemeral_storage,
                "EphemeralStorage",
                EPHEMERAL_MAX_MB,
            ),
        ] {
            if value.is_some_and(|v| v > max) {
                return Err(ModelError::ServiceLimit { member, max });
            }
        }

        let runtime = update
            .runtime
            .as_deref()
            .map(|id| catalog.check(id))
            .transpose()?;
        if let Some(env) = &update.environment {
            validate_environment(env)?;
        }
        if let Some(layers) = &update.layers {
            crate::layer::validate_function_layers(layers)?;
        }
        if let Some(target) = update
            .dead_letter_target
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            if !(target.starts_with("arn:aws:sqs:") || target.starts_with("arn:aws:sns:")) {
                return Err(ModelError::invalid(format!(
                    "The target ARN {target} is invalid. It must be an SQS queue or SNS topic ARN."
                )));
            }
        }

        let snap_start_after = update
            .snap_start_apply_on
            .as_deref()
            .map_or(self.snap_start, |a| a == "PublishedVersions");
        let runtime_after = runtime.as_ref().unwrap_or(&self.runtime);
        if snap_start_after && !supports_snap_start(runtime_after) {
            return Err(ModelError::invalid(format!(
                "{} is not supported for SnapStart enabled functions.",
                runtime_after.id()
            )));
        }

        let format_after = match log_format {
            Some((_, Some(format))) => format,
            _ => self.log_format,
        };
        if format_after == LogFormat::Text
            && (update.application_log_level.is_some() || update.system_log_level.is_some())
        {
            return Err(ModelError::invalid(
                "ApplicationLogLevel and SystemLogLevel can only be set when LogFormat is JSON.",
            ));
        }

        // Everything is valid: apply.
        if let Some(runtime) = runtime {
            self.runtime = runtime;
        }
        self.snap_start = snap_start_after;
        set(&mut self.role, &update.role);
        set(&mut self.handler, &update.handler);
        set(&mut self.description, &update.description);
        set(&mut self.log_group, &update.log_group);
        // Ranges were checked above, so these conversions cannot fail.
        if let Some(t) = update.timeout.and_then(|t| u32::try_from(t).ok()) {
            self.timeout_s = t;
        }
        if let Some(m) = update.memory_size.and_then(|m| u32::try_from(m).ok()) {
            self.memory_mb = m;
        }
        if let Some(e) = update.ephemeral_storage.and_then(|e| u32::try_from(e).ok()) {
            self.ephemeral_mb = e;
        }
        if let Some(env) = &update.environment {
            self.environment = Some(env.clone());
        }
        if let Some(arch) = architecture {
            self.architecture = arch;
        }
        // `Layers` name layer versions in the store: the control plane resolves them (and
        // checks they exist) and sets `self.layers`.
        if let Some((_, Some(mode))) = tracing {
            self.tracing_mode = mode;
        }
        if let Some((_, Some(format))) = log_format {
            self.log_format = format;
        }
        self.log_levels = match self.log_format {
            // Text lines carry no levels to filter on.
            LogFormat::Text => None,
            LogFormat::Json => {
                let current = self.log_levels.clone().unwrap_or_default();
                Some(LogLevels {
                    application: update
                        .application_log_level
                        .clone()
                        .unwrap_or(current.application),
                    system: update.system_log_level.clone().unwrap_or(current.system),
                })
            }
        };
        if let Some(target) = &update.dead_letter_target {
            self.dead_letter_target = (!target.is_empty()).then(|| target.clone());
        }
        Ok(())
    }

    /// Pending → Active once the function's resources are ready; the create counts as the
    /// first successful update from then on (what Lambda reports after a create).
    pub fn activate(&mut self) -> Result<(), InvalidTransition> {
        match self.state {
            FunctionState::Pending => {
                self.state = FunctionState::Active;
                self.last_update = Some(LastUpdateStatus::Successful);
                Ok(())
            }
            from => Err(InvalidTransition {
                from: from.as_str(),
                to: "Active",
            }),
        }
    }

    /// Starts an update: only from a finished one (or none).
    pub fn begin_update(&mut self) -> Result<(), InvalidTransition> {
        match self.last_update {
            Some(LastUpdateStatus::InProgress) => Err(InvalidTransition {
                from: "InProgress",
                to: "InProgress",
            }),
            _ => {
                self.last_update = Some(LastUpdateStatus::InProgress);
                Ok(())
            }
        }
    }

    /// InProgress → Successful or Failed.
    pub fn finish_update(&mut self, outcome: LastUpdateStatus) -> Result<(), InvalidTransition> {
        match (self.last_update, outcome) {
            (
                Some(LastUpdateStatus::InProgress),
                LastUpdateStatus::Successful | LastUpdateStatus::Failed,
            ) => {
                self.last_update = Some(outcome);
                Ok(())
            }
            (from, to) => Err(InvalidTransition {
                from: from.map_or("none", LastUpdateStatus::as_str),
                to: to.as_str(),
            }),
        }
    }

    /// Whether an update is being applied (mutations are refused meanwhile).
    pub fn is_updating(&self) -> bool {
        self.last_update == Some(LastUpdateStatus::InProgress)
    }
}

fn set(target: &mut String, value: &Option<String>) {
    if let Some(value) = value {
        target.clone_from(value);
    }
}

fn is_role_arn(role: &str) -> bool {
    let Some(rest) = role.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    if !(partition.is_empty()
        || (partition.starts_with("aws")
            && partition[3..]
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '-')))
    {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("role") else {
        return false;
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    crate::names::is_account_id(account)
        && !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
}

fn is_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && key.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn validate_environment(env: &EnvironmentVariables) -> Result<(), ModelError> {
    let reserved: Vec<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_ENV_KEYS.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(ModelError::invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    // A process environment cannot hold NUL: such a value would be cut short, or worse,
    // split into something else on the way to the runtime.
    if env.values().any(|v| v.contains('\0')) {
        return Err(ModelError::invalid(
            "Lambda was unable to configure your environment variables because the environment variable values contain a NUL character, which a process environment cannot hold.".to_owned(),
        ));
    }
    // Lambda measures the compact JSON object the variables serialise to.
    let measured = serde_json::to_string(env).unwrap_or_default();
    if measured.len() > ENVIRONMENT_MAX_BYTES {
        return Err(ModelError::invalid(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {measured}"
        )));
    }
    Ok(())
}

/// `SnapStart.ApplyOn`'s values.
const SNAP_START_APPLY_ON: &[&str] = &["PublishedVersions", "None"];

/// The runtimes SnapStart is offered for: Lambda's Python 3.12 and later (Java and .NET,
/// which also have it, are not runtimes Gust runs).
fn supports_snap_start(runtime: &crate::Runtime) -> bool {
    runtime
        .id()
        .strip_prefix("python3.")
        .and_then(|minor| minor.parse::<u32>().ok())
        .is_some_and(|minor| minor >= 12)
}

impl FunctionConfig {
    /// Whether this version's environments start from initialized snapshots: SnapStart
    /// applies to published versions only.
    pub fn snap_start_on(&self) -> bool {
        self.snap_start && self.version != crate::version::FunctionVersion::Latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeFamily;

    fn catalog() -> RuntimeCatalog {
        RuntimeCatalog::new(vec![RuntimeFamily::Python, RuntimeFamily::Nodejs])
    }

    fn base_settings() -> FunctionUpdate {
        FunctionUpdate {
            runtime: Some("python3.12".into()),
            role: Some("arn:aws:iam::123456789012:role/lambda-role".into()),
            handler: Some("app.handler".into()),
            ..FunctionUpdate::default()
        }
    }

    fn create(settings: &FunctionUpdate) -> Result<FunctionConfig, ModelError> {
        FunctionConfig::create(
            FunctionName::parse("f").unwrap(),
            settings,
            CodeRef {
                digest: CodeDigest([7; 32]),
                size: 10,
            },
            &catalog(),
            "rev-1".into(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn snap_start_is_for_python_3_12_and_later_and_published_versions() {
        let mut settings = base_settings();
        settings.snap_start_apply_on = Some("PublishedVersions".into());
        let mut config = create(&settings).unwrap();
        assert!(
            config.snap_start && !config.snap_start_on(),
            "not on $LATEST"
        );
        config.version = crate::version::FunctionVersion::Published(1);
        assert!(config.snap_start_on());
        // Another runtime: Lambda's message; a bad value: the model's enum.
        settings.runtime = Some("python3.11".into());
        assert_eq!(
            create(&settings).unwrap_err().to_string(),
            "python3.11 is not supported for SnapStart enabled functions."
        );
        settings.snap_start_apply_on = Some("Always".into());
        let err = create(&settings).unwrap_err().to_string();
        assert!(
            err.contains("'snapStart.applyOn' failed to satisfy constraint: Member must satisfy enum value set: [PublishedVersions, None]"),
            "{err}"
        );
        // Changing the runtime of a SnapStart function to one without it is refused too.
        let mut config = create(&FunctionUpdate {
            snap_start_apply_on: Some("PublishedVersions".into()),
            ..base_settings()
        })
        .unwrap();
        let change = FunctionUpdate {
            runtime: Some("nodejs22.x".into()),
            ..FunctionUpdate::default()
        };
        assert!(config.apply(&change, &catalog()).is_err());
        let off = FunctionUpdate {
            runtime: Some("nodejs22.x".into()),
            snap_start_apply_on: Some("None".into()),
            ..FunctionUpdate::default()
        };
        config.apply(&off, &catalog()).unwrap();
        assert!(!config.snap_start);
    }

    #[test]
    fn create_applies_defaults() {
        let config = create(&base_settings()).unwrap();
        assert_eq!(
            (config.timeout_s, config.memory_mb, config.ephemeral_mb),
            (3, 128, 512)
        );
        assert_eq!(config.state, FunctionState::Pending);
        assert_eq!(config.last_update, None);
        assert_eq!(config.log_group, "/aws/lambda/f");
        assert_eq!(config.description, "");
        assert_eq!(config.environment, None);
    }

    #[test]
    fn required_members() {
        let mut s = base_settings();
        s.handler = None;
        assert!(
            matches!(create(&s), Err(ModelError::InvalidParameter(m)) if m.contains("Runtime and Handler are mandatory"))
        );
        let mut s = base_settings();
        s.role = None;
        assert!(matches!(create(&s), Err(ModelError::Constraints(_))));
    }

    #[test]
    fn ranges_are_reported_together() {
        let mut s = base_settings();
        s.memory_size = Some(40000);
        s.timeout = Some(0);
        s.ephemeral_storage = Some(511);
        let err = create(&s).unwrap_err().to_string();
        assert!(err.starts_with("3 validation errors detected"), "{err}");
        assert!(err.contains("Value '40000' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 32768"));
        assert!(err.contains("Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1"));
        assert!(err.contains("'ephemeralStorage.size'"));
        // Within the model but past the service's limit: the service's own form.
        let mut s = base_settings();
        s.memory_size = Some(10241);
        assert_eq!(
            create(&s).unwrap_err().to_string(),
            "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to 10240"
        );
        for (mem, ok) in [(128, true), (10240, true), (127, false), (3008, true)] {
            let mut s = base_settings();
            s.memory_size = Some(mem);
            assert_eq!(create(&s).is_ok(), ok, "{mem}");
        }
    }

    #[test]
    fn handler_role_description_architectures() {
        let mut s = base_settings();
        s.handler = Some("has space".into());
        assert!(create(&s).is_err());
        s.handler = Some("h".repeat(129));
        assert!(create(&s).is_err());
        let mut s = base_settings();
        s.role = Some("not-a-role".into());
        assert!(create(&s).unwrap_err().to_string().contains("at 'role'"));
        let mut s = base_settings();
        s.description = Some("d".repeat(257));
        assert!(create(&s).is_err());
        let mut s = base_settings();
        s.architectures = Some(vec!["arm64".into()]);
        assert_eq!(create(&s).unwrap().architecture, Architecture::Arm64);
        s.architectures = Some(vec!["x86_64".into(), "arm64".into()]);
        assert!(create(&s).is_err());
        s.architectures = Some(vec!["mips".into()]);
        assert!(create(&s).is_err());
    }

    #[test]
    fn environment_rules() {
        let env = |pairs: &[(&str, &str)]| -> FunctionUpdate {
            FunctionUpdate {
                environment: Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..base_settings()
            }
        };
        assert!(create(&env(&[("DB_HOST", "x"), ("ab", "")])).is_ok());
        let err = create(&env(&[("1BAD", "x")])).unwrap_err().to_string();
        assert!(err.contains("Value at 'environment.variables'"), "{err}");
        assert!(create(&env(&[("A", "single char names are refused")])).is_err());
        let err = create(&env(&[("AWS_REGION", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reserved keys") && err.contains("AWS_REGION"),
            "{err}"
        );
        let err = create(&env(&[("K1", "a\0--user\x000:0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("NUL character"), "{err}");
        // {"K":"<v>"} is 8 bytes plus the value: exactly 4096 passes, 4097 fails.
        let value = "v".repeat(4096 - 8);
        assert!(create(&env(&[("K1", &value[1..])])).is_ok());
        let value = "v".repeat(4096 - 7);
        let err = create(&env(&[("K1", &value)])).unwrap_err().to_string();
        assert!(
            err.contains("exceeded the 4KB limit. String measured: {\"K1\":"),
            "{err}"
        );
        // Multi-byte characters count as their UTF-8 bytes.
        let value = "é".repeat(2045);
        assert!(create(&env(&[("K1", &value)])).is_err());
    }

    #[test]
    fn update_is_all_or_nothing() {
        let mut config = create(&base_settings()).unwrap();
        let before = config.clone();
        let update = FunctionUpdate {
            description: Some("new".into()),
            memory_size: Some(5),
            ..FunctionUpdate::default()
        };
        assert!(config.apply(&update, &catalog()).is_err());
        assert_eq!(config, before);
        let update = FunctionUpdate {
            description: Some("new".into()),
            environment: Some(EnvironmentVariables::new()),
            ..FunctionUpdate::default()
        };
        config.apply(&update, &catalog()).unwrap();
        assert_eq!(config.description, "new");
        assert_eq!(config.environment, Some(EnvironmentVariables::new()));
        assert_eq!(config.handler, "app.handler");
    }

    #[test]
    fn layer_lists_are_checked_here_and_resolved_by_the_control_plane() {
        let mut s = base_settings();
        s.layers = Some(vec![
            "arn:aws:lambda:us-east-1:123456789012:layer:l:1".into()
        ]);
        assert!(create(&s).unwrap().layers.is_empty());
        s.layers = Some(vec!["nope".into()]);
        assert!(matches!(create(&s), Err(ModelError::Constraints(_))));
        s.layers = Some(vec![]);
        assert!(create(&s).is_ok());
    }

    #[test]
    fn lifecycle_transitions() {
        let mut config = create(&base_settings()).unwrap();
        config.activate().unwrap();
        assert!(config.activate().is_err());
        config.begin_update().unwrap();
        assert!(config.is_updating());
        assert!(config.begin_update().is_err());
        config.finish_update(LastUpdateStatus::Successful).unwrap();
        assert!(config.finish_update(LastUpdateStatus::Successful).is_err());
    }

    #[test]
    fn digest_hex_round_trip() {
        let d = CodeDigest([0xab; 32]);
        assert_eq!(CodeDigest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(CodeDigest::from_hex("zz"), None);
    }
}

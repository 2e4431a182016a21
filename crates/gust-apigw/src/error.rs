//! API Gateway's errors: one variant per exception the v2 API declares, so the protocol
//! adapter answers with the exception's name, its status and the message as API Gateway
//! words it.

/// Why an API Gateway operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApigwError {
    /// The input is invalid or names something that cannot be used (400).
    #[error("{0}")]
    BadRequest(String),
    /// The API, route, integration, stage or deployment does not exist (404).
    #[error("{message}")]
    NotFound {
        /// The message.
        message: String,
        /// The kind of resource (`resourceType`): `Api`, `Route`…
        resource_type: &'static str,
    },
    /// The change conflicts with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// A quota would be exceeded (429).
    #[error("{message}")]
    TooManyRequests {
        /// The message.
        message: String,
        /// Which quota (`limitType`).
        limit_type: &'static str,
    },
    /// The store failed; the cause is logged, not sent (500).
    #[error("{0}")]
    Internal(String),
}

impl ApigwError {
    /// The exception's shape name (`x-amzn-ErrorType`).
    pub fn shape(&self) -> &'static str {
        match self {
            ApigwError::BadRequest(_) => "BadRequestException",
            ApigwError::NotFound { .. } => "NotFoundException",
            ApigwError::Conflict(_) => "ConflictException",
            ApigwError::TooManyRequests { .. } => "TooManyRequestsException",
            ApigwError::Internal(_) => "InternalServerErrorException",
        }
    }

    /// The HTTP status the service model gives the exception.
    pub fn status(&self) -> u16 {
        match self {
            ApigwError::BadRequest(_) => 400,
            ApigwError::NotFound { .. } => 404,
            ApigwError::Conflict(_) => 409,
            ApigwError::TooManyRequests { .. } => 429,
            ApigwError::Internal(_) => 500,
        }
    }

    /// Whether the service, not the caller, is at fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, ApigwError::Internal(_))
    }

    /// `BadRequestException`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApigwError::BadRequest(message.into())
    }

    /// `ConflictException`.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApigwError::Conflict(message.into())
    }

    /// `NotFoundException` for an API (API Gateway names the caller's account).
    pub fn api_not_found(account: &str, api_id: &str) -> Self {
        ApigwError::NotFound {
            message: format!("Invalid API identifier specified {account}:{api_id}"),
            resource_type: "Api",
        }
    }

    /// `NotFoundException` for a route.
    pub fn route_not_found(route_id: &str) -> Self {
        ApigwError::NotFound {
            message: format!("Invalid Route identifier specified {route_id}"),
            resource_type: "Route",
        }
    }

    /// `NotFoundException` for an integration.
    pub fn integration_not_found(integration_id: &str) -> Self {
        ApigwError::NotFound {
            message: format!("Invalid Integration identifier specified {integration_id}"),
            resource_type: "Integration",
        }
    }

    /// `NotFoundException` for a stage.
    pub fn stage_not_found(stage_name: &str) -> Self {
        ApigwError::NotFound {
            message: format!("Invalid stage identifier specified {stage_name}"),
            resource_type: "Stage",
        }
    }

    /// `NotFoundException` for a deployment.
    pub fn deployment_not_found(deployment_id: &str) -> Self {
        ApigwError::NotFound {
            message: format!("Invalid Deployment identifier specified {deployment_id}"),
            resource_type: "Deployment",
        }
    }

    /// `TooManyRequestsException`: the quota `limit_type` (at most `max`) is reached.
    pub fn limit(limit_type: &'static str, max: usize) -> Self {
        ApigwError::TooManyRequests {
            message: format!("Limit exceeded: {limit_type} is limited to {max}"),
            limit_type,
        }
    }

    /// `InternalServerErrorException` (no cause is sent).
    pub fn internal() -> Self {
        ApigwError::Internal("Internal server error".into())
    }
}

impl From<rusqlite::Error> for ApigwError {
    fn from(error: rusqlite::Error) -> Self {
        tracing::error!(%error, "API Gateway store failed");
        ApigwError::internal()
    }
}

impl From<serde_json::Error> for ApigwError {
    fn from(error: serde_json::Error) -> Self {
        tracing::error!(%error, "API Gateway record unreadable");
        ApigwError::internal()
    }
}

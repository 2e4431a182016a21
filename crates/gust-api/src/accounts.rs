//! Accounts at the edge: which account a signed request comes from, and which account's
//! resources it reaches. A request works on its own account's functions and layers; an ARN
//! naming another account reaches that account only where the resource's policy allows
//! the action (any operation on a function, getting a layer version), and is refused with
//! `AccessDeniedException` otherwise — also when no such account exists here.

use std::collections::HashMap;
use std::sync::Arc;

use gust_control::ControlPlane;
use gust_model::policy::Caller;
use gust_model::{FunctionRef, IdKind, LayerRef, LayerVersionArn};

use crate::error::ApiError;
use crate::routes::{Operation, Query};

/// One account's control plane and engine.
#[derive(Debug, Clone)]
pub struct Plane {
    /// Its functions, versions, aliases, layers and policies.
    pub control: Arc<ControlPlane>,
    /// Its execution environments.
    pub engine: gust_engine::Engine,
}

impl Plane {
    /// The account id.
    pub fn account_id(&self) -> &str {
        &self.control.scope().account_id
    }
}

/// Every account of this server; the first is the default (unauthenticated requests
/// under `--no-auth` belong to it).
#[derive(Debug)]
pub(crate) struct Planes {
    by_account: HashMap<String, Plane>,
    default: String,
}

impl Planes {
    pub(crate) fn new(planes: Vec<Plane>) -> Self {
        let default = planes
            .first()
            .map(|p| p.account_id().to_owned())
            .unwrap_or_default();
        Planes {
            by_account: planes
                .into_iter()
                .map(|p| (p.account_id().to_owned(), p))
                .collect(),
            default,
        }
    }

    pub(crate) fn default_account(&self) -> &str {
        &self.default
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Plane> {
        self.by_account.values()
    }

    pub(crate) fn get(&self, account: &str) -> Option<&Plane> {
        self.by_account.get(account)
    }

    /// The plane `operation` runs on for `caller`: the caller's own, or — where another
    /// account's policy allows it — that account's.
    pub(crate) async fn for_operation(
        &self,
        caller: &str,
        operation: &Operation,
        query: &Query,
    ) -> Result<Plane, ApiError> {
        let own = self
            .get(caller)
            .cloned()
            .ok_or_else(|| ApiError::internal(&format!("no plane for account {caller}")))?;
        let Some(target) = foreign_target(caller, operation, query) else {
            return Ok(own);
        };
        let (owner, action, resource) = match &target {
            Foreign::Function { owner, reference } => (
                owner.clone(),
                operation.iam_action(),
                format!(
                    "arn:aws:lambda:{}:{owner}:function:{}{}",
                    own.control.scope().region,
                    reference.name,
                    reference
                        .qualifier
                        .as_ref()
                        .map(|q| format!(":{q}"))
                        .unwrap_or_default()
                ),
            ),
            Foreign::Layer { arn } => (
                arn.account.clone(),
                "lambda:GetLayerVersion",
                arn.to_string(),
            ),
        };
        let denied = || ApiError::access_denied(caller, action, &resource);
        let Some(plane) = self.get(&owner).cloned() else {
            return Err(denied());
        };
        // A function's policy can grant any of its operations (the action is checked
        // below); of a layer, reading a version is all that crosses accounts.
        let crossing = match &target {
            Foreign::Function { .. } => true,
            Foreign::Layer { .. } => matches!(
                operation,
                Operation::GetLayerVersion(..) | Operation::GetLayerVersionByArn
            ),
        };
        if !crossing {
            return Err(denied());
        }
        let who = Caller::Account(caller.to_owned());
        let control = Arc::clone(&plane.control);
        let allowed = tokio::task::spawn_blocking(move || match target {
            Foreign::Function { reference, .. } => control.allowed(&reference, &who, action),
            Foreign::Layer { arn } => control.layer_allowed(&arn.name, arn.version, &who),
        })
        .await
        .map_err(|e| ApiError::internal(&e))??;
        if allowed {
            Ok(plane)
        } else {
            Err(denied())
        }
    }
}

/// Another account's resource an operation names.
enum Foreign {
    Function {
        owner: String,
        reference: FunctionRef,
    },
    Layer {
        arn: LayerVersionArn,
    },
}

/// What `operation` names in an account other than `caller`'s, if anything.
fn foreign_target(caller: &str, operation: &Operation, query: &Query) -> Option<Foreign> {
    if let Some(label) = operation.function_label() {
        let reference = FunctionRef::parse(label, IdKind::Namespaced)
            .ok()?
            .with_qualifier_param(query.get("Qualifier"))
            .ok()?;
        let owner = reference.account_id.clone()?;
        return (owner != caller).then_some(Foreign::Function { owner, reference });
    }
    let arn = match operation {
        Operation::GetLayerVersionByArn => LayerVersionArn::parse(query.get("Arn")?)?,
        other => {
            let (label, version) = other.layer_label()?;
            let layer = LayerRef::parse(label).ok()?;
            let (region, account) = layer.owner?;
            LayerVersionArn {
                region,
                account,
                name: layer.name,
                version: version.and_then(|v| v.parse().ok()).unwrap_or(0),
            }
        }
    };
    (arn.account != caller).then_some(Foreign::Layer { arn })
}

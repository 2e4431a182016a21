//! Functions' resource-based policies: AddPermission, RemovePermission, GetPolicy, and the
//! check a caller from outside the function's account must pass.

use gust_model::error::Violations;
use gust_model::policy::{self, Caller, Permission};
use gust_model::{FunctionName, FunctionRef, ModelError, Qualifier};
use gust_store::{RevisionMove, StoreError};

/// Largest policy document, in bytes (Lambda's quota).
const POLICY_MAX_BYTES: usize = 20 * 1024;

use crate::{ControlError, ControlPlane, Result};

/// A function's policy as GetPolicy returns it.
#[derive(Debug, Clone)]
pub struct FunctionPolicy {
    /// The policy document (JSON text).
    pub policy: String,
    /// The revision of what the policy is attached to.
    pub revision_id: String,
}

fn resource_missing() -> ControlError {
    ControlError::NotFound("The resource you requested does not exist.".into())
}

impl ControlPlane {
    /// What a policy is attached to: the function or one of its versions or aliases (which
    /// must exist), as (qualifier key, its ARN, its current revision).
    fn policy_target(&self, reference: &FunctionRef) -> Result<(String, String, String)> {
        let name = &reference.name;
        let qualifier = reference.qualifier.as_ref();
        let not_found = || self.not_found(name, qualifier);
        let (latest, _) = self.store.get_function(name)?.ok_or_else(not_found)?;
        let revision = match qualifier {
            None => latest.revision_id,
            Some(Qualifier::Latest) => {
                return Err(ModelError::invalid(
                    "We currently do not support adding policies for $LATEST.",
                )
                .into())
            }
            Some(Qualifier::Version(n)) => {
                self.store
                    .get_version(name, *n)?
                    .ok_or_else(not_found)?
                    .revision_id
            }
            Some(Qualifier::Alias(alias)) => {
                self.store
                    .get_alias(name, alias)?
                    .ok_or_else(not_found)?
                    .revision_id
            }
        };
        let key = qualifier.map(ToString::to_string).unwrap_or_default();
        Ok((key, self.arn(name, qualifier), revision))
    }

    /// AddPermission: returns the statement added (JSON text).
    pub fn add_permission(
        &self,
        reference: &FunctionRef,
        permission: &Permission,
        revision_id: Option<&str>,
    ) -> Result<String> {
        let (key, resource, revision) = self.policy_target(reference)?;
        let statement = permission.statement(&resource)?;
        if revision_id.is_some_and(|r| r != revision) {
            return Err(ControlError::PreconditionFailed);
        }
        let mut statements = self.statements(&reference.name, &key)?;
        statements.push(statement.clone());
        let size = policy::document(&statements).to_string().len();
        if size > POLICY_MAX_BYTES {
            return Err(ControlError::PolicyTooLarge(format!(
                "The final policy size ({size}) is bigger than the limit ({POLICY_MAX_BYTES})."
            )));
        }
        let statement = statement.to_string();
        let moved = Self::new_revision();
        let revision = RevisionMove {
            expected: revision_id,
            new: &moved,
        };
        self.store
            .add_function_statement(
                &reference.name,
                &key,
                &permission.statement_id,
                &statement,
                &revision,
            )
            .map_err(|e| match e {
                StoreError::AlreadyExists(_) => ControlError::Conflict(format!(
                    "The statement id ({}) provided already exists. Please provide a new statement id, or remove the existing statement.",
                    permission.statement_id
                )),
                StoreError::NotFound(_) => {
                    self.not_found(&reference.name, reference.qualifier.as_ref())
                }
                StoreError::RevisionMismatch(_) => ControlError::PreconditionFailed,
                other => other.into(),
            })?;
        Ok(statement)
    }

    /// RemovePermission.
    pub fn remove_permission(
        &self,
        reference: &FunctionRef,
        statement_id: &str,
        revision_id: Option<&str>,
    ) -> Result<()> {
        let mut violations = Violations::default();
        violations.length(statement_id, "statementId", 1, 100);
        violations.finish()?;
        let (key, _, revision) = self.policy_target(reference)?;
        if revision_id.is_some_and(|r| r != revision) {
            return Err(ControlError::PreconditionFailed);
        }
        if self.statements(&reference.name, &key)?.is_empty() {
            return Err(ControlError::NotFound(
                "No policy is associated with the given resource.".into(),
            ));
        }
        let moved = Self::new_revision();
        let revision = RevisionMove {
            expected: revision_id,
            new: &moved,
        };
        let removed = self
            .store
            .remove_function_statement(&reference.name, &key, statement_id, &revision)
            .map_err(|e| match e {
                StoreError::RevisionMismatch(_) => ControlError::PreconditionFailed,
                other => other.into(),
            })?;
        if removed {
            Ok(())
        } else {
            Err(ControlError::NotFound(format!(
                "Statement {statement_id} is not found in resource policy."
            )))
        }
    }

    /// GetPolicy.
    pub fn get_policy(&self, reference: &FunctionRef) -> Result<FunctionPolicy> {
        let (key, _, revision_id) = self.policy_target(reference)?;
        let statements = self.statements(&reference.name, &key)?;
        if statements.is_empty() {
            return Err(resource_missing());
        }
        Ok(FunctionPolicy {
            policy: policy::document(&statements).to_string(),
            revision_id,
        })
    }

    fn statements(&self, name: &FunctionName, key: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .store
            .function_policy(name, key)?
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect())
    }

    /// Whether `caller`, from outside this account, may perform `action` on what `reference`
    /// names: the policy of exactly that resource (the function, or the version or alias
    /// invoked) must allow it. This server's own account needs no policy.
    pub fn allowed(&self, reference: &FunctionRef, caller: &Caller, action: &str) -> Result<bool> {
        if *caller == Caller::Account(self.scope.account_id.clone()) {
            return Ok(true);
        }
        let key = reference
            .qualifier
            .as_ref()
            .filter(|q| **q != Qualifier::Latest)
            .map(ToString::to_string)
            .unwrap_or_default();
        Ok(policy::allows(
            &self.statements(&reference.name, &key)?,
            caller,
            action,
        ))
    }
}

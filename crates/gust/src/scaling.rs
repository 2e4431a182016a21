//! Application Auto Scaling's view of Lambda's provisioned concurrency: configurations
//! through each account's control plane, utilisation from its engine.

use std::collections::HashMap;

use gust_control::ControlError;
use gust_model::{FunctionRef, IdKind};

/// Every account's plane, for the scaler.
#[derive(Debug)]
pub struct LambdaProvisioned {
    pub planes: HashMap<String, gust_api::Plane>,
}

impl LambdaProvisioned {
    fn reference(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
    ) -> Option<(&gust_api::Plane, FunctionRef)> {
        let plane = self.planes.get(account)?;
        let reference = plane
            .control
            .resolve(function, Some(qualifier), IdKind::Namespaced)
            .ok()?;
        Some((plane, reference))
    }
}

impl gust_autoscaling::Provisioned for LambdaProvisioned {
    fn exists(&self, account: &str, function: &str, qualifier: &str) -> Result<bool, String> {
        let Some((plane, reference)) = self.reference(account, function, qualifier) else {
            return Ok(false);
        };
        match plane.control.get_function(&reference) {
            Ok(_) => Ok(true),
            Err(ControlError::NotFound(_)) => Ok(false),
            Err(error) => Err(error.to_string()),
        }
    }

    fn requested(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<u32>, String> {
        let Some((plane, reference)) = self.reference(account, function, qualifier) else {
            return Ok(None);
        };
        match plane.control.provisioned_concurrency(&reference) {
            Ok(config) => Ok(Some(config.requested)),
            Err(ControlError::ProvisionedNotFound | ControlError::NotFound(_)) => Ok(None),
            Err(error) => Err(error.to_string()),
        }
    }

    fn set_requested(
        &self,
        account: &str,
        function: &str,
        qualifier: &str,
        requested: u32,
    ) -> Result<(), String> {
        let (plane, reference) = self
            .reference(account, function, qualifier)
            .ok_or_else(|| format!("function {function}:{qualifier} not found"))?;
        let result = if requested == 0 {
            match plane.control.delete_provisioned_concurrency(&reference) {
                Err(ControlError::NotFound(_)) => Ok(()),
                other => other.map(|_| ()),
            }
        } else {
            plane
                .control
                .put_provisioned_concurrency(&reference, i64::from(requested))
                .map(|_| ())
        };
        result.map_err(|e| e.to_string())
    }

    fn utilization(&self, account: &str, function: &str, qualifier: &str) -> Option<f64> {
        let (plane, reference) = self.reference(account, function, qualifier)?;
        let status = plane.engine.provisioned_status(&reference.name, qualifier);
        (status.allocated > 0).then(|| f64::from(status.busy) / f64::from(status.allocated))
    }
}

//! Reserved concurrency (`Put/Get/DeleteFunctionConcurrency`): a function's share of the
//! account's concurrency, which both guarantees and caps it. The engine enforces it.

use gust_model::{FunctionName, FunctionRef, ModelError};

use crate::{ControlPlane, Result};

const RESERVED: &str = "reserved_concurrency";
/// The account's unreserved pool may not drop below this.
pub const UNRESERVED_MINIMUM: u32 = 100;

/// The unreserved minimum of an account with `limit`: 100, or all of a smaller limit.
pub(crate) fn unreserved_minimum(limit: u32) -> u32 {
    UNRESERVED_MINIMUM.min(limit)
}

impl ControlPlane {
    /// A function's reserved concurrency, if set.
    pub fn reserved_concurrency(&self, name: &FunctionName) -> Result<Option<u32>> {
        Ok(self
            .store
            .function_setting(name, "", RESERVED)?
            .and_then(|v| v.parse().ok()))
    }

    /// Every function's reservation.
    pub fn reservations(&self) -> Result<Vec<(FunctionName, u32)>> {
        Ok(self
            .store
            .settings_with_key(RESERVED)?
            .into_iter()
            .filter_map(|(name, v)| Some((FunctionName::parse(&name).ok()?, v.parse().ok()?)))
            .collect())
    }

    /// Every function's reservation, summed.
    pub fn reserved_total(&self) -> Result<u32> {
        Ok(self
            .store
            .settings_with_key(RESERVED)?
            .iter()
            .filter_map(|(_, v)| v.parse::<u32>().ok())
            .sum())
    }

    /// `PutFunctionConcurrency`: reserves `reserved` of the account's concurrency, leaving
    /// at least [`UNRESERVED_MINIMUM`] unreserved.
    pub fn put_reserved_concurrency(&self, reference: &FunctionRef, reserved: i64) -> Result<u32> {
        if reserved < 0 {
            return Err(ModelError::constraint(
                reserved.to_string(),
                "reservedConcurrentExecutions",
                "Member must have value greater than or equal to 0",
            )
            .into());
        }
        self.store
            .get_function(&reference.name)?
            .ok_or_else(|| self.not_found(&reference.name, None))?;
        let others: u32 = self
            .store
            .settings_with_key(RESERVED)?
            .iter()
            .filter(|(name, _)| name != reference.name.as_str())
            .filter_map(|(_, v)| v.parse::<u32>().ok())
            .sum();
        let reserved = u32::try_from(reserved).unwrap_or(u32::MAX);
        let limit = self.concurrency_limit;
        let minimum = unreserved_minimum(limit);
        // The function's own provisioned concurrency moves from the unreserved pool into
        // its reservation, which must hold it.
        let provisioned: u32 = self
            .provisioned_configs(&reference.name)?
            .iter()
            .map(|c| c.requested)
            .sum();
        if reserved < provisioned {
            return Err(ModelError::invalid(format!(
                "Requested reservedConcurrentExecutions {reserved} should not be lower than the sum of provisioned concurrency {provisioned} for function"
            ))
            .into());
        }
        let had_reservation = self.reserved_concurrency(&reference.name)?.is_some();
        let others_provisioned = self
            .unreserved_provisioned_total()?
            .saturating_sub(if had_reservation { 0 } else { provisioned });
        if u64::from(others)
            + u64::from(others_provisioned)
            + u64::from(reserved)
            + u64::from(minimum)
            > u64::from(limit)
        {
            return Err(ModelError::invalid(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}]."
            ))
            .into());
        }
        self.store
            .put_function_setting(&reference.name, "", RESERVED, &reserved.to_string())?;
        Ok(reserved)
    }

    /// `DeleteFunctionConcurrency`.
    pub fn delete_reserved_concurrency(&self, reference: &FunctionRef) -> Result<()> {
        self.store
            .get_function(&reference.name)?
            .ok_or_else(|| self.not_found(&reference.name, None))?;
        self.store
            .put_function_settings(&reference.name, "", &[(RESERVED, None)])?;
        Ok(())
    }
}

//! Target tracking on provisioned concurrency utilisation, as Application Auto Scaling's two
//! CloudWatch alarms drive it — here without CloudWatch: the driver samples the utilisation
//! once per period and this module decides.
//!
//! - Scale out when the average of the last [`SCALE_OUT_PERIODS`] samples is above the
//!   target value (AWS: the high alarm, 3 of 3 one-minute data points).
//! - Scale in when each of the last [`SCALE_IN_PERIODS`] samples is below
//!   [`SCALE_IN_RATIO`] × the target (AWS: the low alarm, 15 data points below 90% of the
//!   target).
//! - The new capacity is `ceil(current × average / target)` — the capacity at which the
//!   same load would sit at the target — within the target's `[min, max]`.
//! - Each policy's `ScaleOutCooldown` / `ScaleInCooldown` (seconds, default 0 as for Lambda)
//!   must have passed since that policy last scaled that way; `DisableScaleIn` keeps a
//!   policy from scaling in; suspended dynamic scaling stops either direction.
//! - With several policies, the largest capacity wins a scale-out; a scale-in happens only
//!   when every policy that may scale in is ready to, to the largest capacity they ask for.
//!
//! The driver clears a target's samples after it scales, so the next decision rests on
//! samples taken at the new capacity.

use std::collections::VecDeque;

use time::OffsetDateTime;

use crate::model::{ScalableTarget, ScalingPolicy};

/// Samples whose average must exceed the target for a scale-out.
pub const SCALE_OUT_PERIODS: usize = 3;
/// Consecutive samples that must be low for a scale-in.
pub const SCALE_IN_PERIODS: usize = 15;
/// "Low" is below this fraction of the target value.
pub const SCALE_IN_RATIO: f64 = 0.9;

/// One target's utilisation samples, newest last.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: VecDeque<f64>,
}

impl Samples {
    /// Adds a sample (0.0–1.0), keeping as many as the decisions use.
    pub fn push(&mut self, value: f64) {
        if self.values.len() == SCALE_OUT_PERIODS.max(SCALE_IN_PERIODS) {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The newest `n`, when there are that many.
    fn last(&self, n: usize) -> Option<impl Iterator<Item = f64> + '_> {
        (self.values.len() >= n).then(|| self.values.iter().skip(self.values.len() - n).copied())
    }
}

/// Which way to scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Add capacity.
    Out,
    /// Remove capacity.
    In,
}

/// A scaling decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Which way.
    pub direction: Direction,
    /// The new capacity.
    pub capacity: u32,
    /// The index (in the `policies` given) of the policy that decided.
    pub policy: usize,
    /// The average utilisation it decided on.
    pub average: f64,
}

fn cooled(last: Option<OffsetDateTime>, cooldown: Option<i64>, now: OffsetDateTime) -> bool {
    let cooldown = time::Duration::seconds(cooldown.unwrap_or(0).max(0));
    last.is_none_or(|last| now - last >= cooldown)
}

fn wanted(current: u32, average: f64, target_value: f64, target: &ScalableTarget) -> u32 {
    // A hair below the exact quotient, so 10 × 0.9 / 0.5 is 18 and not 19 by rounding.
    let raw = (f64::from(current) * average / target_value - 1e-9).ceil();
    // `as` saturates; the clamp then keeps it within the target's bounds.
    (raw as u32).clamp(
        target.min_capacity,
        target.max_capacity.max(target.min_capacity),
    )
}

/// What the policies of `target` decide, given its samples and current capacity.
pub fn decide(
    samples: &Samples,
    current: u32,
    target: &ScalableTarget,
    policies: &[ScalingPolicy],
    now: OffsetDateTime,
) -> Option<Decision> {
    if current == 0 || policies.is_empty() {
        return None;
    }
    // Scale out: the policy asking for the most capacity.
    if !target.suspended.dynamic_scaling_out_suspended {
        let out = policies
            .iter()
            .enumerate()
            .filter_map(|(index, policy)| {
                let tracking = &policy.tracking;
                let average =
                    samples.last(SCALE_OUT_PERIODS)?.sum::<f64>() / SCALE_OUT_PERIODS as f64;
                if average <= tracking.target_value {
                    return None;
                }
                let capacity = wanted(current, average, tracking.target_value, target);
                (capacity > current
                    && cooled(policy.last_scale_out, tracking.scale_out_cooldown, now))
                .then_some(Decision {
                    direction: Direction::Out,
                    capacity,
                    policy: index,
                    average,
                })
            })
            .max_by_key(|d| (d.capacity, std::cmp::Reverse(d.policy)));
        if out.is_some() {
            return out;
        }
    }
    // Scale in: only when every policy that may scale in is ready to.
    if target.suspended.dynamic_scaling_in_suspended {
        return None;
    }
    let mut chosen: Option<Decision> = None;
    let mut voters = 0;
    for (index, policy) in policies.iter().enumerate() {
        let tracking = &policy.tracking;
        if tracking.disable_scale_in == Some(true) {
            continue;
        }
        voters += 1;
        let threshold = tracking.target_value * SCALE_IN_RATIO;
        let recent: Vec<f64> = samples.last(SCALE_IN_PERIODS)?.collect();
        if recent.iter().any(|v| *v >= threshold) {
            return None;
        }
        let average = recent.iter().sum::<f64>() / recent.len() as f64;
        let capacity = wanted(current, average, tracking.target_value, target);
        if capacity >= current || !cooled(policy.last_scale_in, tracking.scale_in_cooldown, now) {
            return None;
        }
        if chosen.as_ref().is_none_or(|c| capacity > c.capacity) {
            chosen = Some(Decision {
                direction: Direction::In,
                capacity,
                policy: index,
                average,
            });
        }
    }
    if voters == 0 {
        return None;
    }
    chosen
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::model::{Resource, SuspendedState, TargetTracking};

    fn target(min: u32, max: u32) -> ScalableTarget {
        ScalableTarget {
            account: "a".into(),
            resource: Resource {
                function: "f".into(),
                qualifier: "live".into(),
            },
            min_capacity: min,
            max_capacity: max,
            suspended: SuspendedState::default(),
            created: datetime!(2024-01-01 0:00 UTC),
            arn: String::new(),
            tags: BTreeMap::new(),
        }
    }

    fn policy(target_value: f64) -> ScalingPolicy {
        ScalingPolicy {
            account: "a".into(),
            resource: target(0, 0).resource,
            name: "p".into(),
            arn: String::new(),
            policy_type: "TargetTrackingScaling".into(),
            tracking: TargetTracking {
                target_value,
                predefined_metric_type: "LambdaProvisionedConcurrencyUtilization".into(),
                resource_label: None,
                scale_out_cooldown: None,
                scale_in_cooldown: None,
                disable_scale_in: None,
            },
            alarms: Vec::new(),
            created: datetime!(2024-01-01 0:00 UTC),
            last_scale_out: None,
            last_scale_in: None,
        }
    }

    fn samples(values: &[f64]) -> Samples {
        let mut s = Samples::default();
        for v in values {
            s.push(*v);
        }
        s
    }

    const NOW: OffsetDateTime = datetime!(2024-06-01 12:00 UTC);

    #[test]
    fn scales_out_on_three_high_periods() {
        let t = target(1, 100);
        let p = [policy(0.5)];
        assert_eq!(decide(&samples(&[0.9, 0.9]), 10, &t, &p, NOW), None);
        let d = decide(&samples(&[0.9, 0.9, 0.9]), 10, &t, &p, NOW).unwrap();
        assert_eq!(d.direction, Direction::Out);
        assert_eq!(d.capacity, 18);
        // Not above the target on average: nothing.
        assert_eq!(decide(&samples(&[1.0, 0.2, 0.2]), 10, &t, &p, NOW), None);
        // The maximum bounds it.
        let d = decide(&samples(&[1.0, 1.0, 1.0]), 10, &target(1, 12), &p, NOW).unwrap();
        assert_eq!(d.capacity, 12);
        // At the maximum already: nothing.
        assert_eq!(
            decide(&samples(&[1.0, 1.0, 1.0]), 12, &target(1, 12), &p, NOW),
            None
        );
    }

    #[test]
    fn scales_in_on_fifteen_low_periods_never_below_min() {
        let t = target(2, 100);
        let p = [policy(0.5)];
        let low = [0.1; 15];
        assert_eq!(decide(&samples(&low[..14]), 10, &t, &p, NOW), None);
        let d = decide(&samples(&low), 10, &t, &p, NOW).unwrap();
        assert_eq!(d.direction, Direction::In);
        assert_eq!(d.capacity, 2);
        // One sample at 90% of the target or more: not yet.
        let mut mixed = low;
        mixed[7] = 0.45;
        assert_eq!(decide(&samples(&mixed), 10, &t, &p, NOW), None);
        // DisableScaleIn.
        let mut keep = policy(0.5);
        keep.tracking.disable_scale_in = Some(true);
        assert_eq!(decide(&samples(&low), 10, &t, &[keep], NOW), None);
    }

    #[test]
    fn honours_cooldowns_and_suspension() {
        let t = target(1, 100);
        let mut p = policy(0.5);
        p.tracking.scale_out_cooldown = Some(120);
        p.last_scale_out = Some(NOW - time::Duration::seconds(60));
        assert_eq!(decide(&samples(&[0.9; 3]), 10, &t, &[p.clone()], NOW), None);
        p.last_scale_out = Some(NOW - time::Duration::seconds(120));
        assert!(decide(&samples(&[0.9; 3]), 10, &t, &[p.clone()], NOW).is_some());

        p.tracking.scale_in_cooldown = Some(300);
        p.last_scale_in = Some(NOW - time::Duration::seconds(10));
        assert_eq!(
            decide(&samples(&[0.1; 15]), 10, &t, &[p.clone()], NOW),
            None
        );

        let mut suspended = target(1, 100);
        suspended.suspended.dynamic_scaling_out_suspended = true;
        assert_eq!(
            decide(&samples(&[0.9; 3]), 10, &suspended, &[policy(0.5)], NOW),
            None
        );
        suspended.suspended.dynamic_scaling_in_suspended = true;
        assert_eq!(
            decide(&samples(&[0.1; 15]), 10, &suspended, &[policy(0.5)], NOW),
            None
        );
    }

    #[test]
    fn several_policies_take_the_largest_capacity() {
        let t = target(1, 100);
        let policies = [policy(0.8), policy(0.5)];
        let d = decide(&samples(&[0.9; 3]), 10, &t, &policies, NOW).unwrap();
        assert_eq!((d.capacity, d.policy), (18, 1));
        // Scale-in only when all agree: 0.3 is below 90% of 0.8 but not of 0.3.
        let policies = [policy(0.8), policy(0.3)];
        assert_eq!(decide(&samples(&[0.3; 15]), 10, &t, &policies, NOW), None);
        let d = decide(&samples(&[0.1; 15]), 10, &t, &policies, NOW).unwrap();
        assert_eq!((d.capacity, d.policy), (4, 1));
    }
}

//! Gust's CloudWatch metrics, Prometheus exposition, usage and cost (skeleton: being written).

pub mod prometheus;
pub mod usage;

//! Gust's CloudWatch Logs (skeleton: being written).

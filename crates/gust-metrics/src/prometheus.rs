//! Prometheus text exposition of what the platform observes (being written).

use gust_model::observe::{Observation, Observer};

/// Counters, histograms and gauges for `/metrics`.
#[derive(Debug, Default)]
pub struct Exporter {}

impl Exporter {
    /// A new exporter.
    pub fn new() -> Self {
        Exporter {}
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        String::new()
    }
}

impl Observer for Exporter {
    fn observe(&self, _observation: Observation) {}
}

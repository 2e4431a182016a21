//! Usage and cost (being written).

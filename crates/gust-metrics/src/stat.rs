//! The statistics CloudWatch answers, parsed from their names (`Average`, `p99`, `p99.9`,
//! `tm90`, `tm(10%:90%)`, `IQM`, `wm99`, `tc90`, `ts90`, `PR(:300)`).

/// One statistic. Percentages are 0–100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// How many values.
    SampleCount,
    /// Their mean.
    Average,
    /// Their sum.
    Sum,
    /// The smallest.
    Minimum,
    /// The largest.
    Maximum,
    /// `pNN`.
    Percentile(f64),
    /// `tm`: the mean of the values between two percentiles.
    TrimmedMean(f64, f64),
    /// `tc`: how many values lie between two percentiles.
    TrimmedCount(f64, f64),
    /// `ts`: their sum.
    TrimmedSum(f64, f64),
    /// `wm`: the mean with values outside two percentiles clamped to them.
    WinsorizedMean(f64, f64),
    /// `PR(:x)`: the percentage of values at or below `x`.
    PercentileRank(f64),
}

impl Stat {
    /// One of the five basic statistics (`Statistics` of GetMetricStatistics).
    pub fn basic(name: &str) -> Option<Stat> {
        Some(match name {
            "SampleCount" => Stat::SampleCount,
            "Average" => Stat::Average,
            "Sum" => Stat::Sum,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            _ => return None,
        })
    }

    /// Any statistic, by the name CloudWatch gives it.
    pub fn parse(name: &str) -> Option<Stat> {
        if let Some(stat) = Stat::basic(name) {
            return Some(stat);
        }
        if name == "IQM" {
            return Some(Stat::TrimmedMean(25.0, 75.0));
        }
        if let Some(rest) = name.strip_prefix("PR(").and_then(|r| r.strip_suffix(')')) {
            let (low, high) = rest.split_once(':')?;
            // Only the upper bound form (`PR(:x)`) is supported.
            return (low.is_empty())
                .then(|| number(high))
                .flatten()
                .map(Stat::PercentileRank);
        }
        if let Some(rest) = name.strip_prefix('p') {
            let p = number(rest)?;
            return (0.0..=100.0).contains(&p).then_some(Stat::Percentile(p));
        }
        let lower = name.get(..2)?.to_ascii_lowercase();
        let make: fn(f64, f64) -> Stat = match lower.as_str() {
            "tm" => Stat::TrimmedMean,
            "tc" => Stat::TrimmedCount,
            "ts" => Stat::TrimmedSum,
            "wm" => Stat::WinsorizedMean,
            _ => return None,
        };
        let rest = name.get(2..)?;
        let (lo, hi) = match rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            Some(range) => {
                let (lo, hi) = range.split_once(':')?;
                (percent(lo, 0.0)?, percent(hi, 100.0)?)
            }
            // The shorthand names the upper bound: `tm99` is `tm(0%:99%)`.
            None if name.as_bytes()[..2] == *lower.as_bytes() => (0.0, number(rest)?),
            None => return None,
        };
        ((0.0..=100.0).contains(&lo) && (0.0..=100.0).contains(&hi) && lo < hi)
            .then(|| make(lo, hi))
    }
}

/// A plain decimal number (no sign, exponent or spaces).
fn number(text: &str) -> Option<f64> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    text.parse().ok()
}

/// `NN%` (or empty: `default`).
fn percent(text: &str, default: f64) -> Option<f64> {
    if text.is_empty() {
        return Some(default);
    }
    number(text.strip_suffix('%')?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_names() {
        assert_eq!(Stat::parse("Average"), Some(Stat::Average));
        assert_eq!(Stat::parse("p99"), Some(Stat::Percentile(99.0)));
        assert_eq!(Stat::parse("p99.9"), Some(Stat::Percentile(99.9)));
        assert_eq!(Stat::parse("p100"), Some(Stat::Percentile(100.0)));
        assert_eq!(Stat::parse("p100.1"), None);
        assert_eq!(Stat::parse("p"), None);
        assert_eq!(Stat::parse("tm99"), Some(Stat::TrimmedMean(0.0, 99.0)));
        assert_eq!(
            Stat::parse("TM(10%:90%)"),
            Some(Stat::TrimmedMean(10.0, 90.0))
        );
        assert_eq!(
            Stat::parse("tm(10%:)"),
            Some(Stat::TrimmedMean(10.0, 100.0))
        );
        assert_eq!(Stat::parse("IQM"), Some(Stat::TrimmedMean(25.0, 75.0)));
        assert_eq!(Stat::parse("wm90"), Some(Stat::WinsorizedMean(0.0, 90.0)));
        assert_eq!(Stat::parse("PR(:300)"), Some(Stat::PercentileRank(300.0)));
        assert_eq!(Stat::parse("TM99"), None);
        assert_eq!(Stat::parse("tm(90%:10%)"), None);
        assert_eq!(Stat::parse("Avg"), None);
    }
}

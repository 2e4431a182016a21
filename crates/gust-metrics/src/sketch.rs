//! The aggregate of the values of one bucket (or of a whole period): count, sum, minimum,
//! maximum and a log-bucketed histogram (a DDSketch: every value falls in the bucket
//! `ceil(log_γ |v|)` with γ = (1+α)/(1-α), so any quantile is answered within α relative
//! error). Histograms merge by adding counts, so buckets combine into any period.

use std::collections::BTreeMap;

/// The relative accuracy of percentiles (1%).
const ALPHA: f64 = 0.01;
/// Values closer to zero than this count as zero.
const MIN_MAGNITUDE: f64 = 1e-9;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

/// A bucket's index for a positive magnitude.
fn index_of(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma().ln()).ceil() as i32
}

/// The value a bucket stands for (within α of every value in it).
fn value_of(index: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(index) / (1.0 + g)
}

/// A mergeable distribution of values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    positive: BTreeMap<i32, f64>,
    negative: BTreeMap<i32, f64>,
    zero: f64,
}

impl Sketch {
    /// Adds `count` occurrences of `value`.
    pub fn add(&mut self, value: f64, count: f64) {
        if !value.is_finite() || count <= 0.0 {
            return;
        }
        if value.abs() < MIN_MAGNITUDE {
            self.zero += count;
        } else if value > 0.0 {
            *self.positive.entry(index_of(value)).or_default() += count;
        } else {
            *self.negative.entry(index_of(-value)).or_default() += count;
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for (i, c) in &other.positive {
            *self.positive.entry(*i).or_default() += c;
        }
        for (i, c) in &other.negative {
            *self.negative.entry(*i).or_default() += c;
        }
        self.zero += other.zero;
    }

    /// How many values it holds.
    pub fn count(&self) -> f64 {
        self.zero + self.positive.values().sum::<f64>() + self.negative.values().sum::<f64>()
    }

    /// (value, count) in ascending order of value.
    fn ascending(&self) -> Vec<(f64, f64)> {
        let mut out: Vec<(f64, f64)> = self
            .negative
            .iter()
            .rev()
            .map(|(i, c)| (-value_of(*i), *c))
            .collect();
        if self.zero > 0.0 {
            out.push((0.0, self.zero));
        }
        out.extend(self.positive.iter().map(|(i, c)| (value_of(*i), *c)));
        out
    }

    /// The `q`-quantile (0 ≤ q ≤ 1), clamped to `[min, max]`; `None` when empty.
    pub fn quantile(&self, q: f64, min: f64, max: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        if q <= 0.0 {
            return Some(min);
        }
        if q >= 1.0 {
            return Some(max);
        }
        // The rank of the value at or above which a fraction 1-q lies (nearest rank).
        let rank = (q * total).ceil().max(1.0);
        let mut seen = 0.0;
        let mut answer = max;
        for (value, count) in self.ascending() {
            seen += count;
            if seen >= rank - 1e-9 {
                answer = value;
                break;
            }
        }
        Some(answer.clamp(min, max))
    }

    /// The values between the quantiles `lo` and `hi` (fractions, lo < hi): their count
    /// and sum (fractional buckets at the edges). `None` when empty.
    pub fn trimmed(&self, lo: f64, hi: f64, min: f64, max: f64) -> Option<(f64, f64)> {
        let total = self.count();
        if total <= 0.0 || hi <= lo {
            return None;
        }
        let (from, to) = (lo * total, hi * total);
        let mut at = 0.0;
        let (mut count, mut sum) = (0.0, 0.0);
        for (value, c) in self.ascending() {
            let (start, end) = (at, at + c);
            at = end;
            let overlap = end.min(to) - start.max(from);
            if overlap > 0.0 {
                count += overlap;
                sum += overlap * value.clamp(min, max);
            }
        }
        Some((count, sum))
    }

    /// The winsorized mean between the quantiles `lo` and `hi`: values outside are
    /// counted as the bounds' values.
    pub fn winsorized_mean(&self, lo: f64, hi: f64, min: f64, max: f64) -> Option<f64> {
        let total = self.count();
        let (count, sum) = self.trimmed(lo, hi, min, max)?;
        let low = self.quantile(lo, min, max)?;
        let high = self.quantile(hi, min, max)?;
        let below = lo * total;
        let above = (1.0 - hi) * total;
        let sum = sum + below * low + above * high;
        let count = count + below + above;
        (count > 0.0).then(|| sum / count)
    }

    /// The percentage of values at or below `threshold`.
    pub fn rank_of(&self, threshold: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let below: f64 = self
            .ascending()
            .into_iter()
            .filter(|(v, _)| *v <= threshold)
            .map(|(_, c)| c)
            .sum();
        Some(100.0 * below / total)
    }

    /// Its compact binary form (stored in SQLite).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 * (self.positive.len() + self.negative.len()) + 8);
        out.extend_from_slice(&self.zero.to_le_bytes());
        for (sign, map) in [(1u8, &self.positive), (0u8, &self.negative)] {
            for (i, c) in map {
                out.push(sign);
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out
    }

    /// The sketch `bytes` encode (an empty one for bytes that do not decode).
    pub fn decode(bytes: &[u8]) -> Sketch {
        let mut sketch = Sketch::default();
        let Some((zero, mut rest)) = bytes.split_first_chunk::<8>() else {
            return sketch;
        };
        sketch.zero = f64::from_le_bytes(*zero);
        while let Some((&sign, after)) = rest.split_first() {
            let Some((index, after)) = after.split_first_chunk::<4>() else {
                break;
            };
            let Some((count, after)) = after.split_first_chunk::<8>() else {
                break;
            };
            let map = if sign == 1 {
                &mut sketch.positive
            } else {
                &mut sketch.negative
            };
            *map.entry(i32::from_le_bytes(*index)).or_default() += f64::from_le_bytes(*count);
            rest = after;
        }
        sketch
    }
}

/// The statistics of a set of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// How many values (or the sum of their counts).
    pub count: f64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Their distribution (empty for values put as statistic sets).
    pub sketch: Sketch,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sketch: Sketch::default(),
        }
    }
}

impl Aggregate {
    /// Adds `count` occurrences of `value`.
    pub fn add(&mut self, value: f64, count: f64) {
        self.count += count;
        self.sum += value * count;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sketch.add(value, count);
    }

    /// Adds a statistic set (no distribution).
    pub fn add_set(&mut self, count: f64, sum: f64, min: f64, max: f64) {
        self.count += count;
        self.sum += sum;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sketch.merge(&other.sketch);
    }

    /// Whether percentiles can be answered: every value is in the distribution.
    fn has_distribution(&self) -> bool {
        let c = self.sketch.count();
        c > 0.0 && (c - self.count).abs() <= 1e-6 * self.count.max(1.0)
    }

    /// The value of `stat` over these values; `None` when it has none (no values, or a
    /// percentile of values put only as statistic sets).
    pub fn statistic(&self, stat: &crate::stat::Stat) -> Option<f64> {
        use crate::stat::Stat;
        if self.count <= 0.0 {
            return match stat {
                Stat::SampleCount => Some(0.0),
                _ => None,
            };
        }
        let (min, max) = (self.min, self.max);
        match *stat {
            Stat::SampleCount => Some(self.count),
            Stat::Sum => Some(self.sum),
            Stat::Average => Some(self.sum / self.count),
            Stat::Minimum => Some(min),
            Stat::Maximum => Some(max),
            _ if !self.has_distribution() => None,
            Stat::Percentile(p) => self.sketch.quantile(p / 100.0, min, max),
            Stat::TrimmedMean(lo, hi) => self
                .sketch
                .trimmed(lo / 100.0, hi / 100.0, min, max)
                .and_then(|(c, s)| (c > 0.0).then(|| s / c)),
            Stat::TrimmedCount(lo, hi) => self
                .sketch
                .trimmed(lo / 100.0, hi / 100.0, min, max)
                .map(|(c, _)| c),
            Stat::TrimmedSum(lo, hi) => self
                .sketch
                .trimmed(lo / 100.0, hi / 100.0, min, max)
                .map(|(_, s)| s),
            Stat::WinsorizedMean(lo, hi) => {
                self.sketch
                    .winsorized_mean(lo / 100.0, hi / 100.0, min, max)
            }
            Stat::PercentileRank(threshold) => self.sketch.rank_of(threshold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::Stat;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank - 1]
    }

    #[test]
    fn percentiles_are_within_one_percent() {
        let mut agg = Aggregate::default();
        let mut values = Vec::new();
        // A skewed spread over several orders of magnitude.
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = (u * 9.0).exp();
            values.push(v);
            agg.add(v, 1.0);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let got = agg.statistic(&Stat::Percentile(q * 100.0)).unwrap();
            let want = exact_quantile(&values, q);
            assert!(
                ((got - want) / want).abs() <= 0.011,
                "q={q} got={got} want={want}"
            );
        }
        assert_eq!(
            agg.statistic(&Stat::Percentile(100.0)),
            Some(values[19_999])
        );
        assert_eq!(agg.statistic(&Stat::Percentile(0.0)), Some(values[0]));
    }

    #[test]
    fn merged_sketches_answer_like_one() {
        let (mut a, mut b, mut all) = (
            Aggregate::default(),
            Aggregate::default(),
            Aggregate::default(),
        );
        for v in 1..=100 {
            let v = f64::from(v);
            if v <= 50.0 {
                a.add(v, 1.0)
            } else {
                b.add(v, 1.0)
            }
            all.add(v, 1.0);
        }
        a.merge(&b);
        assert_eq!(a, all);
        let p50 = a.statistic(&Stat::Percentile(50.0)).unwrap();
        assert!((p50 - 50.0).abs() <= 0.5, "{p50}");
        // The trimmed mean of 1..=100 between 10% and 90% is the mean of 11..=90: 50.5.
        let tm = a.statistic(&Stat::TrimmedMean(10.0, 90.0)).unwrap();
        assert!((tm - 50.5).abs() <= 0.6, "{tm}");
        let count = a.statistic(&Stat::TrimmedCount(10.0, 90.0)).unwrap();
        assert!((count - 80.0).abs() < 1e-6);
        let rank = a.statistic(&Stat::PercentileRank(25.0)).unwrap();
        assert!((rank - 25.0).abs() <= 1.0, "{rank}");
    }

    #[test]
    fn negative_and_zero_values_and_encoding() {
        let mut s = Sketch::default();
        for v in [-10.0, -1.0, 0.0, 1.0, 10.0] {
            s.add(v, 2.0);
        }
        let back = Sketch::decode(&s.encode());
        assert_eq!(back, s);
        assert_eq!(back.count(), 10.0);
        let p10 = back.quantile(0.1, -10.0, 10.0).unwrap();
        assert!((p10 + 10.0).abs() < 0.2, "{p10}");
        assert_eq!(back.quantile(0.5, -10.0, 10.0), Some(0.0));
        assert_eq!(Sketch::decode(&[1, 2]), Sketch::default());
    }

    #[test]
    fn statistic_sets_have_no_percentiles() {
        let mut agg = Aggregate::default();
        agg.add_set(4.0, 10.0, 1.0, 4.0);
        assert_eq!(agg.statistic(&Stat::Average), Some(2.5));
        assert_eq!(agg.statistic(&Stat::Percentile(99.0)), None);
    }
}

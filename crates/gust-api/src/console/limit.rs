//! The rate limit of failed console sign-ins. Failures are counted per remote address and
//! per (access key id, address) in a fixed window; a source with too many is refused
//! (429) for a while, even with the right key, so keys cannot be guessed at speed from one
//! address, and nobody elsewhere can lock a key's owner out. The address is the TCP peer's: `X-Forwarded-For` is
//! not trusted, so behind a proxy every browser shares the proxy's count.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Failures a source may have within [`WINDOW`].
pub(crate) const MAX_FAILURES: u32 = 10;
/// The window failures are counted in.
pub(crate) const WINDOW: Duration = Duration::minutes(1);
/// How long a source that had too many failures is refused.
pub(crate) const LOCKOUT: Duration = Duration::minutes(5);
/// Sources remembered at once: at the cap the one whose record is oldest goes, so a
/// flood of made-up key ids cannot grow the table without bound.
const MAX_SOURCES: usize = 10_000;

/// Who a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// The remote address (IP only: a new connection's port is no new source).
    Address(std::net::IpAddr),
    /// The access key id the sign-in named, with the address it came from
    /// (`<key id>@<address>`).
    KeyId(String),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: OffsetDateTime,
    failures: u32,
    locked_until: Option<OffsetDateTime>,
}

/// Failed sign-ins, by source.
#[derive(Debug, Default)]
pub(crate) struct SignInLimiter {
    sources: Mutex<HashMap<Source, Record>>,
}

impl SignInLimiter {
    /// When the earliest of `sources` that is locked out may try again (`None`: none is).
    pub(crate) fn locked(&self, sources: &[Source], now: OffsetDateTime) -> Option<OffsetDateTime> {
        let table = self.lock();
        sources
            .iter()
            .filter_map(|s| table.get(s)?.locked_until)
            .filter(|until| *until > now)
            .max()
    }

    /// Counts a failed sign-in against each of `sources`.
    pub(crate) fn failed(&self, sources: &[Source], now: OffsetDateTime) {
        let mut table = self.lock();
        for source in sources {
            if !table.contains_key(source) && table.len() >= MAX_SOURCES {
                // Forgotten first: records whose window and lockout are over.
                table.retain(|_, r| {
                    r.window_start + WINDOW > now || r.locked_until.is_some_and(|u| u > now)
                });
            }
            if !table.contains_key(source) && table.len() >= MAX_SOURCES {
                // Then the oldest record that is not locked out (a flood of new sources
                // must not lift a lockout), or failing that the oldest.
                let oldest = table
                    .iter()
                    .filter(|(_, r)| r.locked_until.is_none_or(|u| u <= now))
                    .min_by_key(|(_, r)| r.window_start)
                    .or_else(|| table.iter().min_by_key(|(_, r)| r.window_start))
                    .map(|(s, _)| s.clone());
                if let Some(oldest) = oldest {
                    table.remove(&oldest);
                }
            }
            let record = table.entry(source.clone()).or_insert(Record {
                window_start: now,
                failures: 0,
                locked_until: None,
            });
            if record.window_start + WINDOW <= now {
                record.window_start = now;
                record.failures = 0;
            }
            record.failures = record.failures.saturating_add(1);
            if record.failures >= MAX_FAILURES {
                record.locked_until = Some(now + LOCKOUT);
            }
        }
    }

    /// A successful sign-in clears its key id's failures (from that address). The
    /// address's stay: one valid key must not buy an address more guesses at others.
    pub(crate) fn succeeded(&self, sources: &[Source]) {
        let mut table = self.lock();
        for source in sources.iter().filter(|s| matches!(s, Source::KeyId(_))) {
            table.remove(source);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Source, Record>> {
        // Every change is to one record at a time, so a poisoned table is still usable.
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid")
    }

    fn address(last: u8) -> Source {
        Source::Address(std::net::IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn ten_failures_in_a_minute_lock_the_source_out_for_a_while() {
        let limiter = SignInLimiter::default();
        let sources = [address(1), Source::KeyId("AKIDONE".into())];
        for i in 0..MAX_FAILURES - 1 {
            limiter.failed(&sources, t0() + Duration::seconds(i64::from(i)));
            assert_eq!(limiter.locked(&sources, t0() + Duration::seconds(10)), None);
        }
        let tenth = t0() + Duration::seconds(30);
        limiter.failed(&sources, tenth);
        assert_eq!(
            limiter.locked(&sources, tenth + Duration::seconds(1)),
            Some(tenth + LOCKOUT)
        );
        // Either source alone is locked out: another key from the address, or the key from
        // another address.
        assert!(limiter
            .locked(&[address(1), Source::KeyId("AKIDTWO".into())], tenth)
            .is_some());
        assert!(limiter
            .locked(&[address(2), Source::KeyId("AKIDONE".into())], tenth)
            .is_some());
        assert_eq!(
            limiter.locked(&[address(2), Source::KeyId("AKIDTWO".into())], tenth),
            None
        );
        // The lockout ends.
        assert_eq!(limiter.locked(&sources, tenth + LOCKOUT), None);
    }

    #[test]
    fn failures_spread_over_more_than_a_minute_do_not_lock_out() {
        let limiter = SignInLimiter::default();
        let sources = [address(1)];
        for i in 0..30 {
            limiter.failed(&sources, t0() + Duration::seconds(i * 10));
            assert_eq!(
                limiter.locked(&sources, t0() + Duration::seconds(i * 10)),
                None,
                "failure {i}"
            );
        }
    }

    #[test]
    fn success_clears_the_keys_failures_but_not_the_addresss() {
        let limiter = SignInLimiter::default();
        let key = Source::KeyId("AKIDONE".into());
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(&[address(1), key.clone()], t0());
        }
        limiter.succeeded(std::slice::from_ref(&key));
        limiter.failed(&[address(3), key.clone()], t0());
        assert_eq!(limiter.locked(std::slice::from_ref(&key), t0()), None);
        limiter.failed(&[address(1)], t0());
        assert!(limiter.locked(&[address(1)], t0()).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = SignInLimiter::default();
        for i in 0..MAX_SOURCES + 50 {
            limiter.failed(&[Source::KeyId(format!("AKID{i}"))], t0());
        }
        assert!(limiter.lock().len() <= MAX_SOURCES);
    }
}

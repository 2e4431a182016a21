//! Conditional requests (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` and their `x-amz-copy-source-` forms), byte ranges and ETags.

use md5::{Digest, Md5};
use time::OffsetDateTime;

use crate::error::S3Error;

/// An ETag list in a condition: `*`, or ETags (quotes optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    /// `*`: any existing object.
    Any,
    /// These ETags (without quotes).
    Tags(Vec<String>),
}

impl EtagMatch {
    /// Parses a header value: `*`, or a comma-separated list of (quoted or bare, possibly
    /// weak) ETags.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return EtagMatch::Any;
        }
        EtagMatch::Tags(
            header
                .split(',')
                .map(|t| {
                    let t = t.trim();
                    let t = t.strip_prefix("W/").unwrap_or(t);
                    t.trim_matches('"').to_owned()
                })
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    fn matches(&self, etag: &str) -> bool {
        match self {
            EtagMatch::Any => true,
            EtagMatch::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }
}

/// A read's conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<EtagMatch>,
    /// `If-None-Match`.
    pub if_none_match: Option<EtagMatch>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<OffsetDateTime>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<OffsetDateTime>,
}

/// What a condition check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Proceed,
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
}

impl Conditions {
    /// Whether there is any condition.
    pub fn is_empty(&self) -> bool {
        self == &Conditions::default()
    }

    /// Evaluates the conditions against an object's ETag and modification time, in RFC
    /// 9110's order (which S3 follows): `If-Match`, else `If-Unmodified-Since`; then
    /// `If-None-Match`, else `If-Modified-Since`. Times compare at whole seconds (HTTP
    /// dates have no fractions).
    pub fn evaluate(&self, etag: &str, last_modified: OffsetDateTime) -> Verdict {
        let modified = last_modified.unix_timestamp();
        match (&self.if_match, self.if_unmodified_since) {
            (Some(m), _) if !m.matches(etag) => return Verdict::PreconditionFailed,
            (None, Some(since)) if modified > since.unix_timestamp() => {
                return Verdict::PreconditionFailed
            }
            _ => {}
        }
        match (&self.if_none_match, self.if_modified_since) {
            (Some(m), _) if m.matches(etag) => Verdict::NotModified,
            (None, Some(since)) if modified <= since.unix_timestamp() => Verdict::NotModified,
            _ => Verdict::Proceed,
        }
    }

    /// The check of a read (`GetObject`, `HeadObject`): 304 or 412 as errors.
    pub fn check_read(&self, etag: &str, last_modified: OffsetDateTime) -> Result<(), S3Error> {
        match self.evaluate(etag, last_modified) {
            Verdict::Proceed => Ok(()),
            Verdict::NotModified => Err(S3Error::NotModified),
            Verdict::PreconditionFailed => Err(S3Error::PreconditionFailed),
        }
    }

    /// The check of a copy's source (`x-amz-copy-source-if-*`): every failure is 412.
    pub fn check_copy_source(
        &self,
        etag: &str,
        last_modified: OffsetDateTime,
    ) -> Result<(), S3Error> {
        match self.evaluate(etag, last_modified) {
            Verdict::Proceed => Ok(()),
            Verdict::NotModified | Verdict::PreconditionFailed => Err(S3Error::PreconditionFailed),
        }
    }
}

/// A write's condition (`If-Match` / `If-None-Match: *` on `PutObject` and
/// `CompleteMultipartUpload`), checked in the transaction that writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// The current object must have one of these ETags (or exist, for `*`).
    pub if_match: Option<EtagMatch>,
    /// `If-None-Match: *`: there must be no current object.
    pub if_none_match: Option<EtagMatch>,
}

impl WriteCondition {
    /// Whether the write may replace `current` (the object's ETag, if it exists).
    pub fn check(&self, current: Option<&str>) -> Result<(), S3Error> {
        if let Some(m) = &self.if_match {
            match current {
                Some(etag) if m.matches(etag) => {}
                // S3 answers 404 for If-Match on a missing key.
                None => return Err(S3Error::NoSuchKey),
                Some(_) => return Err(S3Error::PreconditionFailed),
            }
        }
        if let Some(m) = &self.if_none_match {
            if current.is_some_and(|etag| m.matches(etag)) {
                return Err(S3Error::PreconditionFailed);
            }
        }
        Ok(())
    }
}

/// A `Range: bytes=…` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-` or `bytes=first-last`.
    From {
        /// First byte.
        first: u64,
        /// Last byte (inclusive), or to the end.
        last: Option<u64>,
    },
    /// `bytes=-length`: the last `length` bytes.
    Suffix {
        /// How many.
        length: u64,
    },
}

impl ByteRange {
    /// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`. `None` for anything else (S3 then
    /// ignores the header and returns the whole object).
    pub fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        if a.is_empty() {
            return Some(ByteRange::Suffix {
                length: b.parse().ok()?,
            });
        }
        let first: u64 = a.parse().ok()?;
        let last = if b.is_empty() {
            None
        } else {
            Some(b.parse::<u64>().ok()?)
        };
        if last.is_some_and(|l| l < first) {
            return None;
        }
        Some(ByteRange::From { first, last })
    }

    /// The inclusive byte span of an object of `size` this range selects, or
    /// `InvalidRange` when it selects nothing.
    pub fn resolve(self, size: u64) -> Result<(u64, u64), S3Error> {
        match self {
            ByteRange::From { first, last } => {
                if first >= size {
                    return Err(S3Error::InvalidRange { size });
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                if last < first {
                    return Err(S3Error::InvalidRange { size });
                }
                Ok((first, last))
            }
            ByteRange::Suffix { length } => {
                if length == 0 || size == 0 {
                    return Err(S3Error::InvalidRange { size });
                }
                Ok((size.saturating_sub(length), size - 1))
            }
        }
    }
}

/// Hex MD5 of `data` (an ETag without quotes).
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// The ETag of a multipart object: the MD5 of its parts' binary MD5s, then `-<parts>`.
pub fn multipart_etag(part_etags: &[&str]) -> Result<String, S3Error> {
    let mut hasher = Md5::new();
    for etag in part_etags {
        let digest = hex::decode(etag).map_err(|_| S3Error::InvalidPart)?;
        hasher.update(&digest);
    }
    Ok(format!(
        "{}-{}",
        hex::encode(hasher.finalize()),
        part_etags.len()
    ))
}

/// Checks a `Content-MD5` header (base64 of 16 bytes) against a body's hex MD5.
pub fn check_content_md5(header: &str, md5_hex: &str) -> Result<(), S3Error> {
    use base64::Engine;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| S3Error::InvalidDigest)?;
    if digest.len() != 16 {
        return Err(S3Error::InvalidDigest);
    }
    if hex::encode(digest) != md5_hex {
        return Err(S3Error::BadDigest);
    }
    Ok(())
}

/// Checks a `Content-MD5` header's form before the body is read.
pub fn check_content_md5_form(header: &str) -> Result<(), S3Error> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(header.trim()) {
        Ok(d) if d.len() == 16 => Ok(()),
        _ => Err(S3Error::InvalidDigest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    #[test]
    fn etags_of_known_inputs() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"hello world"), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        // Two parts: MD5 of the two binary digests, then "-2".
        let parts = [md5_hex(b"hello "), md5_hex(b"world")];
        let mut joined = hex::decode(&parts[0]).unwrap();
        joined.extend(hex::decode(&parts[1]).unwrap());
        assert_eq!(
            multipart_etag(&[&parts[0], &parts[1]]).unwrap(),
            format!("{}-2", md5_hex(&joined))
        );
        // Values computed independently (Python's hashlib).
        assert_eq!(
            multipart_etag(&[&parts[0], &parts[1]]).unwrap(),
            "e09e4fd6265b36115fe3db32df945d84-2"
        );
        assert_eq!(
            multipart_etag(&[&md5_hex(b"a")]).unwrap(),
            "b6ff9a06b7e20bcb2858c5b8ff744aea-1"
        );
    }

    #[test]
    fn content_md5_is_checked() {
        // base64 of MD5("hello world")
        assert_eq!(
            check_content_md5("XrY7u+Ae7tCTyyK7j1rNww==", &md5_hex(b"hello world")),
            Ok(())
        );
        assert_eq!(
            check_content_md5("XrY7u+Ae7tCTyyK7j1rNww==", &md5_hex(b"hello")),
            Err(S3Error::BadDigest)
        );
        assert_eq!(
            check_content_md5("not base64!", "00"),
            Err(S3Error::InvalidDigest)
        );
        assert_eq!(check_content_md5_form("AAAA"), Err(S3Error::InvalidDigest));
    }

    #[test]
    fn conditions_follow_rfc_order() {
        let etag = "abc";
        let modified = at(1000);
        let c = |f: fn(&mut Conditions)| {
            let mut c = Conditions::default();
            f(&mut c);
            c.evaluate(etag, modified)
        };
        assert_eq!(c(|_| {}), Verdict::Proceed);
        assert_eq!(
            c(|c| c.if_match = Some(EtagMatch::parse("\"abc\""))),
            Verdict::Proceed
        );
        assert_eq!(
            c(|c| c.if_match = Some(EtagMatch::parse("\"x\", \"abc\""))),
            Verdict::Proceed
        );
        assert_eq!(
            c(|c| c.if_match = Some(EtagMatch::parse("\"x\""))),
            Verdict::PreconditionFailed
        );
        assert_eq!(c(|c| c.if_match = Some(EtagMatch::Any)), Verdict::Proceed);
        assert_eq!(
            c(|c| c.if_none_match = Some(EtagMatch::parse("abc"))),
            Verdict::NotModified
        );
        assert_eq!(
            c(|c| c.if_none_match = Some(EtagMatch::parse("x"))),
            Verdict::Proceed
        );
        assert_eq!(
            c(|c| c.if_modified_since = Some(at(1000))),
            Verdict::NotModified
        );
        assert_eq!(c(|c| c.if_modified_since = Some(at(999))), Verdict::Proceed);
        assert_eq!(
            c(|c| c.if_unmodified_since = Some(at(999))),
            Verdict::PreconditionFailed
        );
        assert_eq!(
            c(|c| c.if_unmodified_since = Some(at(1000))),
            Verdict::Proceed
        );
        // If-Match true overrides a failing If-Unmodified-Since (S3's documented rule).
        assert_eq!(
            c(|c| {
                c.if_match = Some(EtagMatch::parse("abc"));
                c.if_unmodified_since = Some(at(1));
            }),
            Verdict::Proceed
        );
        // If-None-Match false (no match) overrides If-Modified-Since.
        assert_eq!(
            c(|c| {
                c.if_none_match = Some(EtagMatch::parse("zzz"));
                c.if_modified_since = Some(at(5000));
            }),
            Verdict::Proceed
        );
        // Sub-second modification times compare at whole seconds.
        let precise = OffsetDateTime::from_unix_timestamp_nanos(1_000_500_000_000).unwrap();
        let cond = Conditions {
            if_modified_since: Some(at(1000)),
            ..Default::default()
        };
        assert_eq!(cond.evaluate(etag, precise), Verdict::NotModified);
        // Copy sources fail with 412 for every failure.
        let cond = Conditions {
            if_none_match: Some(EtagMatch::parse("abc")),
            ..Default::default()
        };
        assert_eq!(
            cond.check_copy_source(etag, modified),
            Err(S3Error::PreconditionFailed)
        );
        assert_eq!(cond.check_read(etag, modified), Err(S3Error::NotModified));
    }

    #[test]
    fn write_conditions() {
        let none_any = WriteCondition {
            if_none_match: Some(EtagMatch::Any),
            ..Default::default()
        };
        assert_eq!(none_any.check(None), Ok(()));
        assert_eq!(none_any.check(Some("a")), Err(S3Error::PreconditionFailed));
        let must_match = WriteCondition {
            if_match: Some(EtagMatch::parse("\"a\"")),
            ..Default::default()
        };
        assert_eq!(must_match.check(Some("a")), Ok(()));
        assert_eq!(
            must_match.check(Some("b")),
            Err(S3Error::PreconditionFailed)
        );
        assert_eq!(must_match.check(None), Err(S3Error::NoSuchKey));
    }

    #[test]
    fn ranges() {
        let r = |h: &str| ByteRange::parse(h);
        assert_eq!(r("bytes=0-9").unwrap().resolve(100), Ok((0, 9)));
        assert_eq!(r("bytes=90-200").unwrap().resolve(100), Ok((90, 99)));
        assert_eq!(r("bytes=10-").unwrap().resolve(100), Ok((10, 99)));
        assert_eq!(r("bytes=-10").unwrap().resolve(100), Ok((90, 99)));
        assert_eq!(r("bytes=-500").unwrap().resolve(100), Ok((0, 99)));
        assert_eq!(
            r("bytes=100-").unwrap().resolve(100),
            Err(S3Error::InvalidRange { size: 100 })
        );
        assert_eq!(
            r("bytes=-0").unwrap().resolve(100),
            Err(S3Error::InvalidRange { size: 100 })
        );
        assert_eq!(
            r("bytes=0-").unwrap().resolve(0),
            Err(S3Error::InvalidRange { size: 0 })
        );
        // Unparseable or multiple ranges: ignored, as S3 does.
        assert_eq!(r("bytes=5-3"), None);
        assert_eq!(r("bytes=0-1,4-5"), None);
        assert_eq!(r("items=0-1"), None);
        assert_eq!(r("bytes=a-b"), None);
    }
}

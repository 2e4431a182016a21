//! S3's rules for names, keys, tags and user metadata.

use crate::error::S3Error;
use crate::model::Tags;

/// Keys are at most this many bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// User metadata (`x-amz-meta-*` names and values) is at most this many bytes.
pub const MAX_USER_METADATA_BYTES: usize = 2 * 1024;
/// Tags on one object.
pub const MAX_OBJECT_TAGS: usize = 10;

/// Checks a general purpose bucket name against S3's rules: 3–63 characters of lowercase
/// letters, digits, dots and hyphens, beginning and ending with a letter or digit, no two
/// adjacent dots, not an IP address, and none of the reserved prefixes and suffixes.
pub fn check_bucket_name(name: &str) -> Result<(), S3Error> {
    let bytes = name.as_bytes();
    let ok = (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s));
    if ok {
        Ok(())
    } else {
        Err(S3Error::InvalidBucketName)
    }
}

/// Checks an object key: 1 to 1,024 bytes of UTF-8 (any characters; keys are never used
/// as paths).
pub fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(S3Error::KeyTooLong);
    }
    Ok(())
}

/// Checks user metadata's size (names without `x-amz-meta-`, plus values).
pub fn check_user_metadata<'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), S3Error> {
    let size: usize = entries.into_iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(S3Error::MetadataTooLarge);
    }
    Ok(())
}

fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// Checks an object's tag set as S3 does: at most 10 tags, keys of 1–128 characters and
/// values of at most 256, from letters, digits, spaces and `+ - = . _ : / @`, unique keys,
/// and no `aws:` prefix.
pub fn check_tags(tags: &Tags) -> Result<(), S3Error> {
    if tags.len() > MAX_OBJECT_TAGS {
        return Err(S3Error::InvalidTag(
            "Object tags cannot be greater than 10".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (key, value) in tags {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > 128 || !key.chars().all(tag_char_ok) {
            return Err(S3Error::InvalidTag(
                "The TagKey you have provided is invalid".into(),
            ));
        }
        if value.chars().count() > 256 || !value.chars().all(tag_char_ok) {
            return Err(S3Error::InvalidTag(
                "The TagValue you have provided is invalid".into(),
            ));
        }
        if key.starts_with("aws:") {
            return Err(S3Error::InvalidTag(
                "Your TagKey cannot be prefixed with aws:".into(),
            ));
        }
        if !seen.insert(key.as_str()) {
            return Err(S3Error::InvalidTag(
                "Cannot provide multiple Tags with the same key".into(),
            ));
        }
    }
    Ok(())
}

/// Parses `x-amz-tagging` (`k1=v1&k2=v2`, URL-encoded as a query string) and checks it.
pub fn parse_tagging_header(header: &str) -> Result<Tags, S3Error> {
    let decode = |text: &str| -> Result<String, S3Error> {
        let spaced = text.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| S3Error::InvalidArgument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.".into()))
    };
    let mut tags = Tags::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((decode(key)?, decode(value)?));
    }
    check_tags(&tags)?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket", "my.bucket.1", "a1b", &"a".repeat(63)] {
            assert_eq!(check_bucket_name(good), Ok(()), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "MyBucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "192.168.5.4",
            "xn--abc",
            "sthree-abc",
            "amzn-s3-demo-x",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
            "abc--table-s3",
            "ab c",
            "über",
        ] {
            assert_eq!(
                check_bucket_name(bad),
                Err(S3Error::InvalidBucketName),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_are_one_to_1024_bytes() {
        assert!(check_key("a").is_ok());
        assert!(check_key(&"é".repeat(512)).is_ok());
        assert_eq!(check_key(&"é".repeat(513)), Err(S3Error::KeyTooLong));
        assert_eq!(check_key(""), Err(S3Error::KeyTooLong));
    }

    #[test]
    fn tags_are_checked() {
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(check_tags(&tags(&[("a", "1"), ("b c", "x+y=z")])).is_ok());
        let eleven: Tags = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(check_tags(&eleven), Err(S3Error::InvalidTag(m)) if m.contains("10")));
        assert!(check_tags(&tags(&[("a", "1"), ("a", "2")])).is_err());
        assert!(check_tags(&tags(&[("aws:x", "1")])).is_err());
        assert!(check_tags(&tags(&[("", "1")])).is_err());
        assert!(check_tags(&tags(&[(&"k".repeat(129), "1")])).is_err());
        assert!(check_tags(&tags(&[("k", &"v".repeat(257))])).is_err());
        assert!(check_tags(&tags(&[("k!", "v")])).is_err());
    }

    #[test]
    fn tagging_header_is_a_query_string() {
        assert_eq!(
            parse_tagging_header("a=1&b%20c=x%2By&empty=").unwrap(),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b c".to_owned(), "x+y".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
        assert!(parse_tagging_header("a=1&a=2").is_err());
    }

    #[test]
    fn user_metadata_is_at_most_2_kb() {
        let small = std::collections::BTreeMap::from([("a".to_owned(), "b".repeat(2046))]);
        assert!(check_user_metadata(&small).is_ok());
        let large = std::collections::BTreeMap::from([("a".to_owned(), "b".repeat(2048))]);
        assert_eq!(check_user_metadata(&large), Err(S3Error::MetadataTooLarge));
    }
}

//! Trace headers (`X-Amzn-Trace-Id`, `AWSTraceHeader`, `_X_AMZN_TRACE_ID`) and the lineage
//! Lambda keeps in them to notice recursive loops: per function in the chain, how many
//! times it has been invoked (`Lineage=<hash>:<count>|…`).

/// The `Parent=` of a trace header, if it has one.
pub fn parent_of(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Parent="))
        .filter(|parent| !parent.is_empty())
}

/// Invocations of one function in one chain after which Lambda stops a loop.
pub const RECURSION_LIMIT: u32 = 16;

/// A short stable hash of a function's key (FNV-1a, 32 bits): it names the function in
/// the header without spelling out its name.
fn short_hash(key: &str) -> String {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// The trace header for the next invocation of the function `key` (an account and a
/// name) after `incoming`: the same root (`fresh_root` without one), `parent` as the
/// parent, and the function's count in the lineage raised by one. Returns the header and
/// that count.
pub fn advance(incoming: Option<&str>, key: &str, fresh_root: &str, parent: &str) -> (String, u32) {
    let mut root = None;
    let mut lineage: Vec<(String, u32)> = Vec::new();
    for part in incoming.unwrap_or_default().split(';') {
        let part = part.trim();
        if let Some(value) = part.strip_prefix("Root=") {
            root = Some(value.to_owned());
        } else if let Some(value) = part.strip_prefix("Lineage=") {
            // botocore percent-encodes the separator when it forwards the header.
            let value = value.replace("%7C", "|").replace("%7c", "|");
            lineage = value
                .split('|')
                .filter_map(|entry| {
                    let (hash, count) = entry.split_once(':')?;
                    Some((hash.to_owned(), count.parse().ok()?))
                })
                .collect();
        }
    }
    let hash = short_hash(key);
    let count = match lineage.iter_mut().find(|(h, _)| *h == hash) {
        Some((_, count)) => {
            *count += 1;
            *count
        }
        None => {
            lineage.push((hash, 1));
            1
        }
    };
    let root = root.unwrap_or_else(|| fresh_root.to_owned());
    let lineage: Vec<String> = lineage.iter().map(|(h, n)| format!("{h}:{n}")).collect();
    (
        format!(
            "Root={root};Parent={parent};Sampled=0;Lineage={}",
            lineage.join("|")
        ),
        count,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_counts_per_function() {
        let (first, n) = advance(None, "000000000000:a", "1-6553f100-abc", "p1");
        assert_eq!(n, 1);
        assert!(first.starts_with("Root=1-6553f100-abc;Parent=p1;Sampled=0;Lineage="));
        let (second, n) = advance(Some(&first), "000000000000:b", "unused", "p2");
        assert_eq!(n, 1);
        let (third, n) = advance(Some(&second), "000000000000:a", "unused", "p3");
        assert_eq!(n, 2);
        let root = |t: &str| t.split(';').next().unwrap().to_owned();
        assert_eq!(root(&first), root(&third));
        assert_eq!(third.matches('|').count(), 1, "{third}");
        let (_, n) = advance(Some("Root=1-abc-def;Sampled=1"), "x", "r", "p");
        assert_eq!(n, 1);
    }

    #[test]
    fn parents_of_headers() {
        assert_eq!(
            super::parent_of(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            ),
            Some("53995c3f42cd8ad8")
        );
        assert_eq!(
            super::parent_of("Root=1-5759e988-bd862e3fe1be46a994272793"),
            None
        );
        assert_eq!(super::parent_of("Parent=;Sampled=0"), None);
    }
}

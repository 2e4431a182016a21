//! The HTTP front: function URLs and HTTP APIs, served to any HTTP client on the same
//! listener as the AWS APIs.
//!
//! A function URL is `http://<host>/lambda-url/<url-id>/` and an HTTP API's endpoint
//! `http://<host>/execute-api/<api-id>`, so both work as returned on a machine without DNS
//! set-up (`<host>` is the `Host` the control-plane request came to). With
//! `--url-domain`, they are AWS's host-based forms instead
//! (`<url-id>.lambda-url.<region>.<domain>`, `<api-id>.execute-api.<region>.<domain>`), for
//! an operator who puts a wildcard DNS name and a reverse proxy in front; both forms are
//! always served.

/// Path prefix of function URLs.
pub(crate) const URL_PREFIX: &str = "lambda-url";
/// Path prefix of HTTP APIs.
pub(crate) const API_PREFIX: &str = "execute-api";

/// The domain of host-based URLs (`--url-domain`): `example.com`, or with a scheme and
/// port, `http://gust.test:9070`. Without a scheme it is `https` (a reverse proxy
/// terminating TLS is the usual set-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlDomain {
    scheme: String,
    /// The domain, without a port.
    domain: String,
    /// `:port`, or empty.
    port: String,
}

impl UrlDomain {
    /// Parses `--url-domain`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            Some((other, _)) => return Err(format!("unsupported scheme {other:?} (http or https)")),
            None => ("https", text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (domain, port) = match rest.rsplit_once(':') {
            Some((domain, port)) => {
                port.parse::<u16>()
                    .map_err(|_| format!("invalid port in {text:?}"))?;
                (domain, format!(":{port}"))
            }
            None => (rest, String::new()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if domain.is_empty() || !domain.split('.').all(label_ok) {
            return Err(format!("{text:?} is not a domain name"));
        }
        Ok(UrlDomain {
            scheme: scheme.to_owned(),
            domain: domain.to_ascii_lowercase(),
            port,
        })
    }

    /// The domain, without scheme or port.
    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }
}

/// `<scheme>://<id>.<kind>.<region>.<domain>[:port]`, or `http://<host>/<kind>/<id>`.
fn base(domain: Option<&UrlDomain>, host: &str, kind: &str, region: &str, id: &str) -> String {
    match domain {
        Some(d) => format!("{}://{id}.{kind}.{region}.{}{}", d.scheme, d.domain, d.port),
        None => format!("http://{host}/{kind}/{id}"),
    }
}

/// A function URL as Lambda returns it (it ends with `/`).
pub(crate) fn function_url(
    domain: Option<&UrlDomain>,
    host: &str,
    region: &str,
    url_id: &str,
) -> String {
    format!("{}/", base(domain, host, URL_PREFIX, region, url_id))
}

/// An HTTP API's `ApiEndpoint` (no trailing `/`, as API Gateway returns it).
pub(crate) fn api_endpoint(
    domain: Option<&UrlDomain>,
    host: &str,
    region: &str,
    api_id: &str,
) -> String {
    base(domain, host, API_PREFIX, region, api_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_work_without_dns_or_in_the_host_form() {
        assert_eq!(
            function_url(None, "127.0.0.1:9070", "us-east-1", "abc"),
            "http://127.0.0.1:9070/lambda-url/abc/"
        );
        let d = UrlDomain::parse("example.com").unwrap();
        assert_eq!(
            function_url(Some(&d), "ignored", "eu-west-1", "abc"),
            "https://abc.lambda-url.eu-west-1.example.com/"
        );
        let d = UrlDomain::parse("http://gust.test:9070/").unwrap();
        assert_eq!(
            api_endpoint(Some(&d), "x", "us-east-1", "a1b2c3d4e5"),
            "http://a1b2c3d4e5.execute-api.us-east-1.gust.test:9070"
        );
        assert!(UrlDomain::parse("ftp://x.com").is_err());
        assert!(UrlDomain::parse("bad_domain.com").is_err());
        assert!(UrlDomain::parse("x.com:99999").is_err());
    }
}

//! `SNS_LOOPBACK_URLS=on`: the SES receiver also fetches an SNS signing
//! certificate, and confirms a subscription, at a plain `http` URL on
//! loopback (`http://127.0.0.1:<port>/...`), so an end-to-end test can
//! serve its own test certificate. Without it (and always in a release
//! build) only Amazon SNS's own https URLs are fetched.
//!
//! Owns: which loopback URLs the switch admits. Must not: admit any other
//! host.

/// The switch's name.
pub const VAR: &str = "SNS_LOOPBACK_URLS";

/// Whether `url` is `http://127.0.0.1:<port>/<path>` without credentials.
pub fn loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://127.0.0.1:") else {
        return false;
    };
    let Some((port, path)) = rest.split_once('/') else {
        return false;
    };
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && !path.contains(['@', '#', '\\'])
        && path.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http() {
        for (url, ok) in [
            ("http://127.0.0.1:8443/cert.pem", true),
            (
                "http://127.0.0.1:8443/?Action=ConfirmSubscription&T=1",
                true,
            ),
            ("http://127.0.0.1.evil.test:80/cert.pem", false),
            ("http://127.0.0.1:80@evil.test/cert.pem", false),
            ("https://127.0.0.1:8443/cert.pem", false),
            ("http://localhost:8443/cert.pem", false),
            ("http://127.0.0.1:/cert.pem", false),
        ] {
            assert_eq!(loopback_url(url), ok, "{url}");
        }
    }
}

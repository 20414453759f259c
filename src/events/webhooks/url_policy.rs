//! Which URLs a webhook endpoint may have.
//!
//! In production: `https` only, no credentials in the URL, and no host that
//! names this machine or a private network (loopback, RFC 1918, carrier-grade
//! NAT, link-local, unique-local, unspecified, multicast, `localhost`). A
//! development setting (`WEBHOOK_ALLOW_LOCAL_URLS`) lifts the address rules
//! and allows plain `http`, for a receiver on the developer's own machine.
//! Must not: resolve names (the core does no I/O); a public name pointing at
//! a private address is the platform's to refuse (Workers cannot reach
//! private networks from production).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The longest URL an endpoint may have.
pub const MAX_URL_LENGTH: usize = 2048;

/// Why a URL is refused; `rule` is the stable name shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRefused {
    pub rule: &'static str,
    pub message: String,
}

fn refused(rule: &'static str, message: impl Into<String>) -> UrlRefused {
    UrlRefused {
        rule,
        message: message.into(),
    }
}

/// Checks an endpoint URL; the normalised URL when it may be used.
pub fn check(text: &str, allow_local: bool) -> Result<Url, UrlRefused> {
    if text.len() > MAX_URL_LENGTH {
        return Err(refused(
            "too_long",
            "the URL is longer than 2048 characters",
        ));
    }
    let url = Url::parse(text.trim())
        .map_err(|e| refused("invalid_url", format!("not an absolute URL: {e}")))?;
    match (url.scheme(), allow_local) {
        ("https", _) | ("http", true) => {}
        _ => {
            return Err(refused("https_required", "webhook URLs must use https"));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused(
            "credentials_in_url",
            "the URL must not carry a user name or password; use the signature to authenticate",
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| refused("invalid_url", "the URL has no host"))?;
    if !allow_local {
        let local = match &host {
            Host::Domain(name) => is_local_name(name),
            Host::Ipv4(ip) => is_private(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => is_private(IpAddr::V6(*ip)),
        };
        if local {
            return Err(refused(
                "private_address",
                "the URL's host is loopback, private or otherwise not public",
            ));
        }
    }
    Ok(url)
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.ends_with(".local")
        || name.ends_with(".internal")
        || !name.contains('.')
}

/// Whether an address is anything but a public unicast one.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT
        || (a == 100 && (64..128).contains(&b))
        // 198.18.0.0/15, benchmarking
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved
        || a >= 240
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7, unique local
        || (first & 0xfe00) == 0xfc00
        // fe80::/10, link-local
        || (first & 0xffc0) == 0xfe80
        // 2001:db8::/32, documentation
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // ::ffff:0:0/96 is handled as IPv4; 64:ff9b::/96 embeds IPv4 too.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_rules() {
        let table: &[(&str, Option<&str>)] = &[
            ("https://hooks.example.com/edgerelay", None),
            ("https://hooks.example.com:8443/x?y=1", None),
            ("https://203.0.113.0.nip.example/x", None),
            ("https://8.8.8.8/hook", None),
            ("https://[2606:4700::1111]/hook", None),
            ("http://hooks.example.com/x", Some("https_required")),
            ("ftp://hooks.example.com/x", Some("https_required")),
            ("hooks.example.com/x", Some("invalid_url")),
            ("", Some("invalid_url")),
            ("https://", Some("invalid_url")),
            (
                "https://user:pw@hooks.example.com/",
                Some("credentials_in_url"),
            ),
            (
                "https://user@hooks.example.com/",
                Some("credentials_in_url"),
            ),
            ("https://localhost/x", Some("private_address")),
            ("https://LOCALHOST./x", Some("private_address")),
            ("https://api.localhost/x", Some("private_address")),
            ("https://printer.local/x", Some("private_address")),
            (
                "https://metadata.google.internal/x",
                Some("private_address"),
            ),
            ("https://intranet/x", Some("private_address")),
            ("https://127.0.0.1/x", Some("private_address")),
            ("https://127.1/x", Some("private_address")),
            ("https://2130706433/x", Some("private_address")),
            ("https://0x7f000001/x", Some("private_address")),
            ("https://10.1.2.3/x", Some("private_address")),
            ("https://172.16.0.1/x", Some("private_address")),
            ("https://172.31.255.255/x", Some("private_address")),
            ("https://192.168.1.1/x", Some("private_address")),
            ("https://169.254.169.254/latest", Some("private_address")),
            ("https://100.64.0.1/x", Some("private_address")),
            ("https://0.0.0.0/x", Some("private_address")),
            ("https://255.255.255.255/x", Some("private_address")),
            ("https://224.0.0.1/x", Some("private_address")),
            ("https://[::1]/x", Some("private_address")),
            ("https://[::]/x", Some("private_address")),
            ("https://[fd00::1]/x", Some("private_address")),
            ("https://[fe80::1]/x", Some("private_address")),
            ("https://[::ffff:127.0.0.1]/x", Some("private_address")),
            ("https://[::ffff:10.0.0.1]/x", Some("private_address")),
            ("https://[64:ff9b::a00:1]/x", Some("private_address")),
        ];
        for (url, want) in table {
            let got = check(url, false).err().map(|e| e.rule);
            assert_eq!(got, *want, "{url}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
        assert_eq!(check(&long, false).unwrap_err().rule, "too_long");
        // 172.32/12 is outside the private block.
        assert!(check("https://172.32.0.1/x", false).is_ok());
    }

    #[test]
    fn the_development_setting_allows_loopback_and_http() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:3000/",
            "https://[::1]/x",
            "http://10.0.0.2/x",
        ] {
            assert!(check(url, true).is_ok(), "{url}");
        }
        // Still a URL, still no credentials, still http(s).
        assert_eq!(
            check("ftp://127.0.0.1/", true).unwrap_err().rule,
            "https_required"
        );
        assert_eq!(
            check("http://a:b@127.0.0.1/", true).unwrap_err().rule,
            "credentials_in_url"
        );
    }
}

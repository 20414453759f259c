//! Who opened or clicked: a person, or a machine acting before or instead of
//! one. Opens that no person caused (Apple Mail Privacy Protection's proxy
//! fetching every image at delivery, prefetchers) and clicks by link
//! scanners (security gateways following every link, HEAD requests,
//! clicks within seconds of delivery) are recorded but flagged `machine`,
//! so reports can count people apart.
//!
//! Gmail's image proxy fetches when the person opens the message, so its
//! fetch counts as a human open.
//! Owns: the signals and their verdict (a table). Must not: read requests
//! or the clock (the edge passes what it saw).

use std::net::IpAddr;

/// What the edge saw of one open or click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal<'a> {
    /// `GET` or `HEAD` (scanners often probe with HEAD).
    pub method: &'a str,
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    /// Whether a `Purpose`/`Sec-Purpose`/`X-Moz` header said `prefetch`.
    pub prefetch: bool,
    /// Milliseconds since the message was handed to the smarthost, when known.
    pub since_sent_ms: Option<u64>,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Human,
    Machine(MachineReason),
}

/// Why a fetch was not a person's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineReason {
    /// Apple Mail Privacy Protection's proxy (fetches at delivery).
    AppleProxy,
    /// A prefetch (declared by a header).
    Prefetch,
    /// A HEAD request.
    HeadRequest,
    /// A user agent of a known scanner, crawler or HTTP library.
    KnownScanner,
    /// A click sooner after sending than a person can read and click.
    TooSoon,
}

impl MachineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineReason::AppleProxy => "apple_proxy",
            MachineReason::Prefetch => "prefetch",
            MachineReason::HeadRequest => "head_request",
            MachineReason::KnownScanner => "known_scanner",
            MachineReason::TooSoon => "too_soon",
        }
    }

    /// The reason [`MachineReason::as_str`] names.
    pub fn parse(s: &str) -> Option<MachineReason> {
        [
            MachineReason::AppleProxy,
            MachineReason::Prefetch,
            MachineReason::HeadRequest,
            MachineReason::KnownScanner,
            MachineReason::TooSoon,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A click this soon after sending is a scanner's: security gateways follow
/// links as the message passes, within seconds.
pub const HUMAN_CLICK_AFTER_MS: u64 = 10_000;

/// Lower case user-agent fragments of scanners, crawlers and libraries.
const SCANNER_AGENTS: &[&str] = &[
    "bot",
    "spider",
    "crawler",
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "microsoft office protocol discovery",
    "symantec",
    "forcepoint",
    "trendmicro",
    "sophos",
    "fortiguard",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "java/",
    "okhttp",
    "headlesschrome",
    "phantomjs",
];

/// Apple's network (17.0.0.0/8): where Mail Privacy Protection's proxy
/// fetches come from, with the bare `Mozilla/5.0` user agent it sends.
fn is_apple(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 17,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // 2620:149::/32 and 2403:300::/32 are Apple's.
            (s[0] == 0x2620 && s[1] == 0x149) || (s[0] == 0x2403 && s[1] == 0x300)
        }
    }
}

/// Classes an open (`click` false) or a click.
pub fn classify(signal: &Signal<'_>, click: bool) -> Actor {
    let agent = signal.user_agent.unwrap_or_default().trim();
    let lower = agent.to_ascii_lowercase();
    if signal.method.eq_ignore_ascii_case("HEAD") {
        return Actor::Machine(MachineReason::HeadRequest);
    }
    if signal.prefetch {
        return Actor::Machine(MachineReason::Prefetch);
    }
    // Gmail's proxy fetches when the person opens: human.
    if lower.contains("googleimageproxy") {
        return Actor::Human;
    }
    if !click && agent == "Mozilla/5.0" && signal.client_ip.is_some_and(is_apple) {
        return Actor::Machine(MachineReason::AppleProxy);
    }
    if agent.is_empty() || SCANNER_AGENTS.iter().any(|s| lower.contains(s)) {
        return Actor::Machine(MachineReason::KnownScanner);
    }
    if click
        && signal
            .since_sent_ms
            .is_some_and(|ms| ms < HUMAN_CLICK_AFTER_MS)
    {
        return Actor::Machine(MachineReason::TooSoon);
    }
    Actor::Human
}

#[cfg(test)]
mod tests {
    use super::*;
    use Actor::{Human, Machine};
    use MachineReason::*;

    const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    const GMAIL_PROXY: &str =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

    fn signal<'a>(
        method: &'a str,
        agent: Option<&'a str>,
        ip: &str,
        since_ms: Option<u64>,
    ) -> Signal<'a> {
        Signal {
            method,
            user_agent: agent,
            client_ip: ip.parse().ok(),
            prefetch: false,
            since_sent_ms: since_ms,
        }
    }

    #[test]
    fn opens_table() {
        let table: &[(Signal<'_>, Actor)] = &[
            (
                signal("GET", Some("Mozilla/5.0"), "17.58.101.7", Some(2_000)),
                Machine(AppleProxy),
            ),
            (
                signal("GET", Some("Mozilla/5.0"), "2620:149:a00::1", None),
                Machine(AppleProxy),
            ),
            // The bare agent from elsewhere is not Apple's proxy, and a real
            // Apple device from Apple's network is a person.
            (signal("GET", Some("Mozilla/5.0"), "192.0.2.7", None), Human),
            (signal("GET", Some(SAFARI), "17.58.101.7", None), Human),
            (
                signal("GET", Some(GMAIL_PROXY), "66.249.84.1", Some(1_000)),
                Human,
            ),
            (
                signal("HEAD", Some(SAFARI), "192.0.2.7", None),
                Machine(HeadRequest),
            ),
            (
                signal("GET", Some("python-requests/2.32"), "192.0.2.7", None),
                Machine(KnownScanner),
            ),
            (
                signal("GET", None, "192.0.2.7", None),
                Machine(KnownScanner),
            ),
            (
                Signal {
                    prefetch: true,
                    ..signal("GET", Some(SAFARI), "192.0.2.7", None)
                },
                Machine(Prefetch),
            ),
        ];
        for (s, want) in table {
            assert_eq!(classify(s, false), *want, "{s:?}");
        }
    }

    #[test]
    fn clicks_table() {
        let table: &[(Signal<'_>, Actor)] = &[
            (
                signal("GET", Some(SAFARI), "192.0.2.7", Some(60_000)),
                Human,
            ),
            (
                signal("GET", Some(SAFARI), "192.0.2.7", Some(3_000)),
                Machine(TooSoon),
            ),
            (signal("GET", Some(SAFARI), "192.0.2.7", None), Human),
            (
                signal("HEAD", Some(SAFARI), "192.0.2.7", Some(60_000)),
                Machine(HeadRequest),
            ),
            (
                signal(
                    "GET",
                    Some("Mozilla/5.0 (compatible; Barracuda Sentinel)"),
                    "192.0.2.7",
                    Some(60_000),
                ),
                Machine(KnownScanner),
            ),
            (
                signal(
                    "GET",
                    Some("Microsoft Office Protocol Discovery"),
                    "192.0.2.7",
                    Some(60_000),
                ),
                Machine(KnownScanner),
            ),
            // A click from Apple's network is a person's: the proxy only fetches images.
            (
                signal("GET", Some("Mozilla/5.0"), "17.58.101.7", Some(60_000)),
                Human,
            ),
        ];
        for (s, want) in table {
            assert_eq!(classify(s, true), *want, "{s:?}");
        }
        assert_eq!(MachineReason::AppleProxy.as_str(), "apple_proxy");
    }
}

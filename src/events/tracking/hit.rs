//! What a hit on a tracking route answers and records.
//!
//! The token is the whole authority: a token edgerelay did not sign (or one
//! altered, re-targeted or of the other kind) is refused with 404 and never
//! redirected. A valid click answers 302 to exactly the signed URL; a valid
//! open answers a 43-byte transparent GIF that no cache keeps.
//!
//! Each valid hit moves a count (tenant, hour, stream, opened or clicked,
//! machine or not), whatever the consent: the aggregate numbers always
//! move. Only a token that names a recipient (given with the recipient's
//! consent, never in aggregate mode) also makes an `email.opened` /
//! `email.clicked` event about that recipient, flagged `machine` with a
//! reason when `engagement::classify` says no person caused it.
//! Owns: those decisions, the pixel bytes and the response headers. Must
//! not: perform I/O, read the clock or draw randomness (passed in).

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::events::engagement::{Actor, Signal, classify};
use crate::events::model::{EmailEvent, EventType, MessageFacts};

use super::token::{HitKind, TrackingClaim, TrackingSecrets};

/// A transparent 1x1 GIF, 43 bytes.
pub const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `Cache-Control` of the pixel and the redirect: every open is fetched.
pub const NO_STORE: &str = "no-store, no-cache, must-revalidate, max-age=0";

/// A hit edgerelay does not answer: the status, a stable rule and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub rule: &'static str,
    pub message: &'static str,
}

const NOT_FOUND: Refusal = Refusal {
    status: 404,
    rule: "tracking_link_invalid",
    message: "this tracking link is not valid",
};

/// The claim of a token of `kind`, or 404 (also when tracking has no
/// secrets: then no token can be valid).
pub fn open_token(
    secrets: Option<&TrackingSecrets>,
    kind: HitKind,
    token: &str,
) -> Result<TrackingClaim, Refusal> {
    let claim = secrets
        .ok_or(NOT_FOUND)?
        .verify(token, kind)
        .map_err(|_| NOT_FOUND)?;
    if claim
        .target
        .as_deref()
        .is_some_and(|t| t.chars().any(char::is_control))
    {
        return Err(NOT_FOUND);
    }
    Ok(claim)
}

/// The `Location` of a click: the signed URL, with bytes a header cannot
/// carry (spaces, non-ASCII) percent-encoded as a browser would send them.
pub fn location(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a request said it is a prefetch or a preview: `Purpose`,
/// `Sec-Purpose`, `X-Purpose` and `X-Moz` header values, as sent.
pub fn is_prefetch(values: &[Option<&str>]) -> bool {
    values.iter().flatten().any(|v| {
        let v = v.to_ascii_lowercase();
        v.contains("prefetch") || v.contains("preview")
    })
}

/// What a hit records: always a count, and an event when its token names a
/// consenting recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub count: Count,
    pub event: Option<EmailEvent>,
}

/// One increment of the aggregate counts (`tracking_counts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub tenant: String,
    /// The start of the hour of the hit, Unix seconds.
    pub hour: u64,
    pub stream: String,
    /// `email.opened` or `email.clicked`.
    pub event_type: EventType,
    pub machine: bool,
    /// Whether the hit also made a per-recipient event.
    pub per_recipient: bool,
}

/// What the edge saw of a hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<'a> {
    pub method: &'a str,
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    pub prefetch: bool,
    /// When the message was handed over (`email.sent`), Unix milliseconds.
    pub sent_at_ms: Option<u64>,
    /// Whether no event of this kind was stored for the message before:
    /// the recipient's first open (or click), for unique counts.
    pub first: bool,
    pub at_ms: u64,
}

/// The event type a hit of `kind` records.
pub fn event_type(kind: HitKind) -> EventType {
    match kind {
        HitKind::Open => EventType::Opened,
        HitKind::Click => EventType::Clicked,
    }
}

/// The broad class of a user agent, as events carry it.
pub fn agent_class(user_agent: Option<&str>, actor: Actor) -> &'static str {
    use crate::events::engagement::MachineReason;
    let lower = user_agent.unwrap_or_default().to_ascii_lowercase();
    if lower.contains("googleimageproxy") {
        return "gmail_proxy";
    }
    match actor {
        Actor::Machine(MachineReason::AppleProxy) => return "apple_proxy",
        Actor::Machine(MachineReason::KnownScanner) => return "scanner",
        _ => {}
    }
    if lower.is_empty() {
        "unknown"
    } else if ["outlook", "thunderbird", "microsoft office"]
        .iter()
        .any(|s| lower.contains(s))
    {
        "mail_client"
    } else if ["mobile", "android", "iphone", "ipad"]
        .iter()
        .any(|s| lower.contains(s))
    {
        "mobile_browser"
    } else {
        "browser"
    }
}

/// What a valid hit records, about the stored message `facts` describe.
pub fn record(
    claim: &TrackingClaim,
    facts: &MessageFacts,
    seen: &Seen<'_>,
    id_entropy: &[u8; 16],
) -> Recording {
    let click = claim.kind == HitKind::Click;
    let actor = classify(
        &Signal {
            method: seen.method,
            user_agent: seen.user_agent,
            client_ip: seen.client_ip,
            prefetch: seen.prefetch,
            since_sent_ms: seen.sent_at_ms.map(|s| seen.at_ms.saturating_sub(s)),
        },
        click,
    );
    let (machine, reason) = match actor {
        Actor::Human => (false, None),
        Actor::Machine(r) => (true, Some(r.as_str())),
    };
    let event_type = event_type(claim.kind);
    let recipient = claim.recipient.and_then(|i| facts.to.get(usize::from(i)));
    let event = recipient.map(|recipient| {
        let mut detail = json!({"user_agent_class": agent_class(seen.user_agent, actor)});
        if let (Some(target), Value::Object(d)) = (&claim.target, &mut detail) {
            d.insert("link".into(), json!(target));
            d.insert("link_index".into(), json!(claim.link));
        }
        // `machine`, `machine_reason` and `first` sit beside the other
        // fields of `data`, where the statistics read them.
        EmailEvent::about(facts, event_type, Some(recipient), seen.at_ms, id_entropy)
            .with(if click { "click" } else { "open" }, detail)
            .with("machine", json!(machine))
            .with("machine_reason", json!(reason))
            .with("first", json!(seen.first))
    });
    Recording {
        count: Count {
            tenant: facts.tenant.clone(),
            hour: seen.at_ms / 1000 / 3600 * 3600,
            stream: facts.stream.clone(),
            event_type,
            machine,
            per_recipient: event.is_some(),
        },
        event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
    const GMAIL_PROXY: &str =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    const SENT: u64 = 1_796_850_000_000;

    fn facts() -> MessageFacts {
        MessageFacts {
            id: "m-1".into(),
            tenant: "acme".into(),
            from: "news@example.com".into(),
            to: vec!["ada@example.net".into()],
            subject: Some("Sale".into()),
            stream: "marketing".into(),
            ..MessageFacts::default()
        }
    }

    fn claim(kind: HitKind, recipient: Option<u16>) -> TrackingClaim {
        TrackingClaim {
            kind,
            message_id: "m-1".into(),
            recipient,
            link: 2,
            target: (kind == HitKind::Click).then(|| "https://shop.example.com/a".to_string()),
        }
    }

    fn seen<'a>(method: &'a str, agent: Option<&'a str>, ip: &str, after_ms: u64) -> Seen<'a> {
        Seen {
            method,
            user_agent: agent,
            client_ip: ip.parse().ok(),
            prefetch: false,
            sent_at_ms: Some(SENT),
            first: after_ms.is_multiple_of(3),
            at_ms: SENT + after_ms,
        }
    }

    /// Consent and machine detection together: (kind, recipient in the
    /// token, what was seen) -> (an event?, machine, reason, agent class).
    #[test]
    fn recordings_by_table() {
        type Row<'a> = (
            &'a str,
            HitKind,
            Option<u16>,
            Seen<'a>,
            bool,
            bool,
            Option<&'a str>,
            &'a str,
        );
        let table: Vec<Row<'_>> = vec![
            (
                "consented human open",
                HitKind::Open,
                Some(0),
                seen("GET", Some(SAFARI), "192.0.2.7", 600_000),
                true,
                false,
                None,
                "browser",
            ),
            (
                "Apple proxy open",
                HitKind::Open,
                Some(0),
                seen("GET", Some("Mozilla/5.0"), "17.58.101.7", 2_000),
                true,
                true,
                Some("apple_proxy"),
                "apple_proxy",
            ),
            (
                "Gmail proxy open is a person's",
                HitKind::Open,
                Some(0),
                seen("GET", Some(GMAIL_PROXY), "66.249.84.1", 1_000),
                true,
                false,
                None,
                "gmail_proxy",
            ),
            (
                "no consent: count only",
                HitKind::Open,
                None,
                seen("GET", Some(SAFARI), "192.0.2.7", 600_000),
                false,
                false,
                None,
                "browser",
            ),
            (
                "no consent, machine: counted as machine",
                HitKind::Open,
                None,
                seen("GET", Some("Mozilla/5.0"), "17.0.0.1", 1_000),
                false,
                true,
                Some("apple_proxy"),
                "apple_proxy",
            ),
            (
                "index beyond the recipients: count only",
                HitKind::Open,
                Some(5),
                seen("GET", Some(SAFARI), "192.0.2.7", 600_000),
                false,
                false,
                None,
                "browser",
            ),
            (
                "human click",
                HitKind::Click,
                Some(0),
                seen("GET", Some(SAFARI), "192.0.2.7", 60_000),
                true,
                false,
                None,
                "browser",
            ),
            (
                "instant click",
                HitKind::Click,
                Some(0),
                seen("GET", Some(SAFARI), "192.0.2.7", 1_500),
                true,
                true,
                Some("too_soon"),
                "browser",
            ),
            (
                "HEAD click",
                HitKind::Click,
                Some(0),
                seen("HEAD", Some(SAFARI), "192.0.2.7", 60_000),
                true,
                true,
                Some("head_request"),
                "browser",
            ),
            (
                "scanner click",
                HitKind::Click,
                Some(0),
                seen(
                    "GET",
                    Some("Mozilla/5.0 (compatible; Barracuda Sentinel)"),
                    "192.0.2.7",
                    60_000,
                ),
                true,
                true,
                Some("known_scanner"),
                "scanner",
            ),
            (
                "no consent click",
                HitKind::Click,
                None,
                seen("GET", Some(SAFARI), "192.0.2.7", 60_000),
                false,
                false,
                None,
                "browser",
            ),
            (
                "prefetch",
                HitKind::Click,
                Some(0),
                Seen {
                    prefetch: true,
                    ..seen("GET", Some(SAFARI), "192.0.2.7", 60_000)
                },
                true,
                true,
                Some("prefetch"),
                "browser",
            ),
        ];
        for (name, kind, recipient, seen, has_event, machine, reason, class) in table {
            let r = record(&claim(kind, recipient), &facts(), &seen, &[7; 16]);
            let want_type = if kind == HitKind::Click {
                EventType::Clicked
            } else {
                EventType::Opened
            };
            assert_eq!(
                r.count,
                Count {
                    tenant: "acme".into(),
                    hour: 1_796_850_000,
                    stream: "marketing".into(),
                    event_type: want_type,
                    machine,
                    per_recipient: has_event,
                },
                "{name}"
            );
            assert_eq!(r.event.is_some(), has_event, "{name}");
            let Some(event) = r.event else { continue };
            assert_eq!(event.event_type, want_type, "{name}");
            assert_eq!(
                event.recipient.as_deref(),
                Some("ada@example.net"),
                "{name}"
            );
            let field = if kind == HitKind::Click {
                "click"
            } else {
                "open"
            };
            let detail = &event.data[field];
            assert_eq!(event.data["machine"], json!(machine), "{name}");
            assert_eq!(event.data["machine_reason"], json!(reason), "{name}");
            assert_eq!(event.data["first"], json!(seen.first), "{name}");
            assert_eq!(detail["user_agent_class"], json!(class), "{name}");
            // What the statistics count from it.
            let counted = crate::events::rollup::counted_of(&event);
            assert_eq!(counted.first, seen.first, "{name}");
            assert_eq!(counted.actor == Actor::Human, !machine, "{name}");
            if kind == HitKind::Click {
                assert_eq!(
                    detail["link"],
                    json!("https://shop.example.com/a"),
                    "{name}"
                );
                assert_eq!(detail["link_index"], json!(2), "{name}");
            } else {
                assert!(detail.get("link").is_none(), "{name}");
            }
        }
    }

    #[test]
    fn counts_fall_in_the_hour_of_the_hit() {
        let at = 1_796_853_599_999; // one millisecond before an hour ends
        let r = record(
            &claim(HitKind::Open, None),
            &facts(),
            &Seen {
                sent_at_ms: None,
                at_ms: at,
                ..seen("GET", Some(SAFARI), "192.0.2.7", 0)
            },
            &[0; 16],
        );
        assert_eq!(r.count.hour, 1_796_850_000);
        assert_eq!(r.count.hour % 3600, 0);
    }

    #[test]
    fn tokens_answer_404_unless_valid_and_of_their_kind() {
        let secrets = TrackingSecrets::parse(&"s".repeat(32)).unwrap();
        let link = secrets.issue(&claim(HitKind::Click, Some(0))).unwrap();
        assert!(open_token(Some(&secrets), HitKind::Click, &link).is_ok());
        for (secrets, kind, token) in [
            (None, HitKind::Click, link.as_str()),
            (Some(&secrets), HitKind::Open, link.as_str()),
            (Some(&secrets), HitKind::Click, "nonsense"),
        ] {
            assert_eq!(open_token(secrets, kind, token), Err(NOT_FOUND));
        }
    }

    #[test]
    fn the_pixel_and_the_location() {
        assert_eq!(PIXEL.len(), 43);
        assert!(PIXEL.starts_with(b"GIF89a"));
        assert_eq!(PIXEL.last(), Some(&0x3b));
        assert_eq!(
            location("https://shop.example.com/a?x=1&y=2#top"),
            "https://shop.example.com/a?x=1&y=2#top"
        );
        assert_eq!(
            location("https://bücher.example/a b"),
            "https://b%C3%BCcher.example/a%20b"
        );
        assert!(is_prefetch(&[None, Some("prefetch;prerender")]));
        assert!(is_prefetch(&[Some("Preview")]));
        assert!(!is_prefetch(&[None, Some("navigate")]));
    }
}

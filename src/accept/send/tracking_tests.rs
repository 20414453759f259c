//! Tracked mail: the HTML part of each copy carries tokens naming its
//! recipient only with consent, one body serves everyone without it, and
//! the tracking host and its warnings follow the settings.

use super::*;
use crate::events::tracking::{HitKind, TrackingSettings};
use crate::message::DkimAlgorithm;

const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const SECRET: &str = "tracking-secret-0123456789abcdef0123";

fn settings(base_url: Option<&str>) -> SendSettings {
    SendSettings {
        dkim_keys: vec![
            DkimKey::from_config("example.com", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
        ],
        // Exempt from the RSA rule (tested in send/tests.rs): these tests
        // are not about which keys sign, and native RSA is slow unoptimised.
        unsigned_domains: vec!["example.com".to_string()],
        max_message_bytes: 200_000,
        tracking: TrackingSettings {
            secrets: Some(TrackingSecrets::parse(SECRET).unwrap()),
            base_url: base_url.map(str::to_string),
        },
        ..Default::default()
    }
}

fn caller() -> AuthenticatedKey {
    AuthenticatedKey {
        id: "backend".to_string(),
        domains: vec!["example.com".to_string()],
        tenant: "acme".to_string(),
        streams: Default::default(),
        unsubscribe_base_url: None,
        scopes: crate::accept::Scope::ALL.to_vec(),
        limits: Default::default(),
    }
}

fn body(tracking: serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "from": "hello@example.com",
        "to": ["ada@example.org", "bob@example.org"],
        "subject": "Receipt",
        "text": "Thanks",
        "html": "<html><body><p><a href=\"https://shop.example.com/order?id=1&amp;x=2\">Order</a> <a href=\"mailto:help@example.com\">Help</a></p></body></html>",
        "tracking": tracking,
    })
    .to_string()
    .into_bytes()
}

/// The HTML part of a signed copy, decoded.
fn html_of(mime: &str) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(mime.as_bytes())
        .unwrap();
    parsed.body_html(0).unwrap().into_owned()
}

/// Every tracking claim in `html`, in order.
fn claims(html: &str, base: &str) -> Vec<crate::events::tracking::TrackingClaim> {
    let secrets = TrackingSecrets::parse(SECRET).unwrap();
    let mut found = Vec::new();
    for (kind, seg) in [(HitKind::Click, "c"), (HitKind::Open, "o")] {
        let prefix = format!("{base}/t/{seg}/");
        for (i, _) in html.match_indices(&prefix) {
            let token: String = html[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            found.push(secrets.verify(&token, kind).unwrap());
        }
    }
    found
}

fn sign(body: &[u8], s: &SendSettings, origin: Option<&str>) -> Result<Signed, ApiError> {
    let prepared = prepare_from(body, &caller(), s, 1, &[9; 32], origin)?;
    sign_all_natively(prepared, s)
}

#[test]
fn consent_for_one_recipient_splits_the_copies() {
    let s = settings(Some("https://t.example.com"));
    let signed = sign(
        &body(serde_json::json!({"opens": true, "clicks": true, "consent": ["bob@example.org"]})),
        &s,
        None,
    )
    .unwrap();
    assert!(signed.warnings.is_empty(), "{:?}", signed.warnings);
    assert_eq!(signed.jobs.len(), 2);
    for (job, recipient) in signed.jobs.iter().zip([None, Some(0)]) {
        let html = html_of(&job.mime);
        assert!(html.contains("mailto:help@example.com"), "{html}");
        let found = claims(&html, "https://t.example.com");
        assert_eq!(found.len(), 2, "{html}");
        for claim in &found {
            assert_eq!(claim.message_id, job.id);
            assert_eq!(claim.recipient, recipient, "{}", job.rcpt_to[0]);
        }
        assert_eq!(
            found[0].target.as_deref(),
            Some("https://shop.example.com/order?id=1&x=2")
        );
        assert_eq!(found[1].kind, HitKind::Open);
        // Every copy is signed over its tracked body.
        assert!(job.mime.starts_with("DKIM-Signature:"));
    }
}

#[test]
fn without_consent_or_in_aggregate_mode_one_body_serves_everyone() {
    let s = settings(Some("https://t.example.com"));
    for tracking in [
        serde_json::json!({"opens": true, "clicks": true}),
        serde_json::json!({"opens": true, "clicks": true, "mode": "aggregate"}),
    ] {
        let signed = sign(&body(tracking.clone()), &s, None).unwrap();
        assert_eq!(signed.jobs.len(), 1, "{tracking}");
        let found = claims(&html_of(&signed.jobs[0].mime), "https://t.example.com");
        assert_eq!(found.len(), 2, "{tracking}");
        assert!(found.iter().all(|c| c.recipient.is_none()), "{tracking}");
    }
    // One consenting recipient alone: its own copy names it.
    let one = serde_json::json!({
        "from": "hello@example.com", "to": "ada@example.org", "subject": "Hi",
        "html": "<p>Hi</p>", "tracking": {"opens": true, "consent": true}
    });
    let signed = sign(one.to_string().as_bytes(), &s, None).unwrap();
    let found = claims(&html_of(&signed.jobs[0].mime), "https://t.example.com");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].recipient, Some(0));
}

#[test]
fn untracked_mail_is_left_alone_whatever_its_stream() {
    let s = settings(Some("https://t.example.com"));
    for tracking in [
        serde_json::Value::Null,
        serde_json::json!({}),
        serde_json::json!({"opens": false, "clicks": false}),
    ] {
        let signed = sign(&body(tracking.clone()), &s, None).unwrap();
        let html = html_of(&signed.jobs[0].mime);
        assert!(!html.contains("/t/"), "{tracking}: {html}");
        assert!(html.contains("https://shop.example.com/order?id=1&amp;x=2"));
    }
}

#[test]
fn the_tracking_host_and_its_warnings() {
    let tracked = body(serde_json::json!({"clicks": true}));
    // The unsubscribe base URL serves when TRACKING_BASE_URL is unset.
    let mut s = settings(None);
    s.unsubscribe.base_url = Some("https://mail.example.com".into());
    let signed = sign(&tracked, &s, Some("https://er.example.workers.dev")).unwrap();
    assert!(signed.warnings.is_empty());
    assert_eq!(
        claims(&html_of(&signed.jobs[0].mime), "https://mail.example.com").len(),
        1
    );
    // Else the request's origin, with warnings for the missing setting and
    // the shared host.
    let s = settings(None);
    let signed = sign(&tracked, &s, Some("https://er.example.workers.dev")).unwrap();
    let rules: Vec<&str> = signed
        .warnings
        .iter()
        .map(|w| w.split(':').next().unwrap())
        .collect();
    assert_eq!(rules, ["tracking_base_url_missing", "tracking_shared_host"]);
    assert_eq!(
        claims(
            &html_of(&signed.jobs[0].mime),
            "https://er.example.workers.dev"
        )
        .len(),
        1
    );
    // A queue message has no origin.
    let e = sign(&tracked, &s, None).unwrap_err();
    assert_eq!((e.status, e.rule), (403, "tracking_not_configured"));
    // No secrets: the relay is misconfigured.
    let mut s = settings(Some("https://t.example.com"));
    s.tracking.secrets = None;
    assert_eq!(sign(&tracked, &s, None).unwrap_err().status, 500);
    // Nothing to track in a text-only message: said, not refused.
    let s = settings(Some("https://t.example.com"));
    let text_only = serde_json::json!({
        "from": "hello@example.com", "to": "ada@example.org", "subject": "Hi",
        "text": "Hi", "tracking": {"opens": true}
    });
    let signed = sign(text_only.to_string().as_bytes(), &s, None).unwrap();
    assert!(signed.warnings[0].starts_with("tracking_without_html:"));
}

#[test]
fn tracking_problems_are_named_by_field_and_rule() {
    let s = settings(Some("https://t.example.com"));
    for (tracking, field, rule) in [
        (
            serde_json::json!({"opens": "yes"}),
            "tracking.opens",
            "invalid_type",
        ),
        (
            serde_json::json!({"opens": true, "mode": "all"}),
            "tracking.mode",
            "invalid_value",
        ),
        (
            serde_json::json!({"opens": true, "consent": ["carol@example.org"]}),
            "tracking.consent[0]",
            "not_a_recipient",
        ),
        (
            serde_json::json!({"opens": true, "mode": "aggregate", "consent": true}),
            "tracking.consent",
            "not_with_aggregate",
        ),
    ] {
        let e = sign(&body(tracking.clone()), &s, None).unwrap_err();
        assert_eq!(e.status, 422, "{tracking}");
        let problems: Vec<(&str, &str)> = e
            .details
            .iter()
            .map(|p| (p.field.as_str(), p.rule.as_str()))
            .collect();
        assert_eq!(problems, [(field, rule)], "{tracking}");
    }
}

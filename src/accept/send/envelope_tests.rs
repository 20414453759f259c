//! Each copy's envelope: the VERP return path at the From domain's
//! return-path domain (or the From address), the signed envelope id, and
//! proof of delivery when asked; the From header never changes.

use super::*;
use crate::config::pairs_source;
use crate::inbound::InboundSettings;
use crate::message::DkimAlgorithm;
use crate::queue::QueueSecrets;

/// An Ed25519 seed (RFC 8032's first test key).
const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const SECRET: &str = "envelope-test-queue-secret-0123456789";
const TOKEN_SECRET: &str = "unsubscribe-secret-0123456789abcdef";

fn secrets() -> QueueSecrets {
    QueueSecrets::parse(SECRET).unwrap()
}

/// Settings with `RETURN_PATH_DOMAINS` as given (`None`: unset).
fn settings(return_paths: Option<&str>) -> SendSettings {
    let inbound = InboundSettings::from_source(&pairs_source(
        &return_paths
            .map(|v| vec![("RETURN_PATH_DOMAINS", v)])
            .unwrap_or_default(),
    ))
    .unwrap();
    SendSettings {
        dkim_keys: vec![
            DkimKey::from_config("example.com", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
        ],
        // Exempt from the RSA rule (tested in send/tests.rs): these tests
        // are not about which keys sign, and native RSA is slow unoptimised.
        unsigned_domains: vec!["example.net".to_string(), "example.com".to_string()],
        max_message_bytes: 100_000,
        unsubscribe: crate::events::unsubscribe::UnsubscribeSettings {
            secrets: Some(crate::events::unsubscribe::TokenSecrets::parse(TOKEN_SECRET).unwrap()),
            base_url: Some("https://mail.example.com".into()),
        },
        inbound,
        envelope_secrets: Some(secrets()),
        ..Default::default()
    }
}

fn caller() -> AuthenticatedKey {
    AuthenticatedKey {
        id: "backend".to_string(),
        domains: vec!["example.com".to_string(), "example.net".to_string()],
        tenant: "acme".to_string(),
        streams: Default::default(),
        unsubscribe_base_url: None,
        scopes: crate::accept::Scope::ALL.to_vec(),
        limits: Default::default(),
    }
}

fn send(settings: &SendSettings, body: serde_json::Value) -> Signed {
    let prepared = prepare(
        body.to_string().as_bytes(),
        &caller(),
        settings,
        1,
        &[9; 32],
    )
    .unwrap();
    sign_all_natively(prepared, settings).unwrap()
}

/// What MAIL FROM should be for each copy.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The From address, as given.
    Plain(&'static str),
    /// `b+<token>@<domain>` naming the copy and this recipient index, and
    /// whether the copy carries the feedback loop fields (signed mail only).
    Verp(&'static str, u16, bool),
}

const RP: &str = r#"{"example.com": "rp.example.com"}"#;

#[test]
fn each_copy_gets_its_return_path() {
    use Expect::{Plain, Verp};
    // (RETURN_PATH_DOMAINS, request, copies expected, MAIL FROM of each)
    let rows: Vec<(Option<&str>, serde_json::Value, usize, Expect)> = vec![
        // No return-path domain: nothing changes.
        (
            None,
            serde_json::json!({"from": "hello@example.com", "to": "ada@example.org"}),
            1,
            Plain("hello@example.com"),
        ),
        // One recipient: recipient 0 of the message's own id.
        (
            Some(RP),
            serde_json::json!({"from": "Hello <hello@example.com>", "to": "ada@example.org"}),
            1,
            Verp("rp.example.com", 0, true),
        ),
        // Several recipients in one transaction: the whole message.
        (
            Some(RP),
            serde_json::json!({"from": "hello@example.com",
                "to": ["ada@example.org", "bob@example.org"], "cc": "carol@example.org"}),
            1,
            Verp("rp.example.com", WHOLE_MESSAGE, true),
        ),
        // One copy per recipient (one-click unsubscribe): each its own.
        (
            Some(RP),
            serde_json::json!({"from": "news@example.com",
                "to": ["ada@example.org", "bob@example.org"], "stream": "marketing"}),
            2,
            Verp("rp.example.com", 0, true),
        ),
        // The domain is looked up without case.
        (
            Some(RP),
            serde_json::json!({"from": "hello@EXAMPLE.COM", "to": "ada@example.org"}),
            1,
            Verp("rp.example.com", 0, true),
        ),
        // The sender domain itself as its return-path domain.
        (
            Some(r#"{"example.com": "example.com"}"#),
            serde_json::json!({"from": "hello@example.com", "to": "ada@example.org"}),
            1,
            Verp("example.com", 0, true),
        ),
        // Unsigned mail (UNSIGNED_DOMAINS) gets its return path, but no
        // feedback loop fields: no aligned signature would cover them.
        (
            Some(r#"{"example.net": "rp.example.net"}"#),
            serde_json::json!({"from": "hello@example.net", "to": "ada@example.org"}),
            1,
            Verp("rp.example.net", 0, false),
        ),
        // Another sender domain keeps its own MAIL FROM.
        (
            Some(RP),
            serde_json::json!({"from": "hello@example.net", "to": "ada@example.org"}),
            1,
            Plain("hello@example.net"),
        ),
        // A return-path domain for another domain only.
        (
            Some(r#"{"example.net": "bounce.example.net"}"#),
            serde_json::json!({"from": "hello@example.com", "to": "ada@example.org"}),
            1,
            Plain("hello@example.com"),
        ),
        // An internationalised local part: the VERP address is ASCII; the
        // message still needs SMTPUTF8 for its From header.
        (
            Some(RP),
            serde_json::json!({"from": "jörg@example.com", "to": "ada@example.org"}),
            1,
            Verp("rp.example.com", 0, true),
        ),
        (
            None,
            serde_json::json!({"from": "jörg@example.com", "to": "ada@example.org"}),
            1,
            Plain("jörg@example.com"),
        ),
    ];
    for (return_paths, mut request, copies, expect) in rows {
        request["subject"] = "Hi".into();
        request["text"] = "Hello".into();
        let row = format!("{return_paths:?} {request}");
        let s = settings(return_paths);
        let signed = send(&s, request.clone());
        assert_eq!(signed.jobs.len(), copies, "{row}");
        for job in &signed.jobs {
            match expect {
                Plain(address) => assert_eq!(job.mail_from, address, "{row}"),
                Verp(domain, index, feedback_loop) => {
                    let (local, at) = job.mail_from.rsplit_once('@').unwrap();
                    assert_eq!(at, domain, "{row}");
                    assert!(job.mail_from.is_ascii() && local.len() <= 64, "{row}");
                    let claim = ReturnPathClaim::open(local, &secrets()).unwrap();
                    assert_eq!(claim.message_id, job.id, "{row}");
                    assert_eq!(claim.recipient_index, index, "{row}");
                    assert!(!job.mime.contains(local), "{row}");
                    let envid = job.envid.as_deref().unwrap();
                    assert_eq!(
                        cfbl_fields(&job.mime),
                        feedback_loop
                            .then(|| (format!("fbl@{domain}; report=arf"), envid.to_string())),
                        "{row}"
                    );
                }
            }
            if matches!(expect, Plain(_)) {
                assert!(!job.mime.contains("CFBL-"), "{row}");
            }
            // The From header stays the sender's; the return path is the
            // envelope only, never written into the message.
            let parsed = mail_parser::MessageParser::default()
                .parse(job.mime.as_bytes())
                .unwrap();
            let from = parsed.from().and_then(|f| f.first()).unwrap();
            assert_eq!(
                from.address().map(str::to_lowercase).as_deref(),
                job.from.as_deref(),
                "{row}"
            );
            assert!(parsed.header("Return-Path").is_none(), "{row}");
            assert_eq!(job.smtputf8, !job.from.as_deref().unwrap().is_ascii());
            // Every copy carries its own signed envelope id.
            let envid = job.envid.as_deref().unwrap();
            assert_eq!(envelope_id::open(envid, &secrets()), Some(job.id.clone()));
            assert!(!job.notify_delivery, "{row}");
        }
    }
}

/// The values of `CFBL-Address` and `CFBL-Feedback-ID`, when the message
/// has both (and each once).
fn cfbl_fields(mime: &str) -> Option<(String, String)> {
    let head = mime.split("\r\n\r\n").next()?;
    let values = |name: &str| -> Vec<String> {
        head.split("\r\n")
            .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
            .collect()
    };
    match (&values("CFBL-Address")[..], &values("CFBL-Feedback-ID")[..]) {
        ([address], [id]) => Some((address.clone(), id.clone())),
        ([], []) => None,
        other => panic!("CFBL fields: {other:?}"),
    }
}

#[test]
fn the_feedback_loop_fields_are_signed_and_the_callers_own_are_refused() {
    let s = settings(Some(RP));
    let signed = send(
        &s,
        serde_json::json!({"from": "hello@example.com", "to": "ada@example.org",
            "subject": "Hi", "text": "Hello"}),
    );
    let mime = &signed.jobs[0].mime;
    let (_, id) = cfbl_fields(mime).unwrap();
    assert_eq!(envelope_id::open(&id, &secrets()), Some(signed.id.clone()));
    // Every signature covers both, over-signed.
    let head = mime.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
    let h: String = head
        .split("h=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        h.contains("cfbl-address:cfbl-address:cfbl-feedback-id:cfbl-feedback-id"),
        "{h}"
    );
    // The caller's own CFBL fields would be a second pair.
    for name in ["CFBL-Address", "cfbl-feedback-id"] {
        let body = serde_json::json!({"from": "hello@example.com", "to": "ada@example.org",
            "subject": "Hi", "text": "Hello", "headers": {name: "fbl@example.com"}});
        let e = prepare(body.to_string().as_bytes(), &caller(), &s, 1, &[9; 32])
            .err()
            .unwrap();
        assert_eq!((e.status, e.rule), (422, "invalid_request"), "{name}");
        assert!(
            e.body().contains(&format!("headers.{name}")),
            "{}",
            e.body()
        );
        assert!(e.body().contains("forbidden_header"), "{}", e.body());
        // Without a return-path domain they are the caller's to set.
        let plain = settings(None);
        let job = &send(&plain, body).jobs[0];
        assert!(job.mime.contains(&format!("{name}: fbl@example.com")));
    }
}

#[test]
fn the_return_path_is_signed_and_names_only_its_copy() {
    let s = settings(Some(RP));
    let signed = send(
        &s,
        serde_json::json!({"from": "news@example.com", "to": ["ada@example.org", "bob@example.org"],
            "subject": "Hi", "text": "Hello", "stream": "marketing"}),
    );
    let [first, second] = &signed.jobs[..] else {
        panic!("two copies expected");
    };
    assert_ne!(first.mail_from, second.mail_from);
    assert_ne!(first.envid, second.envid);
    let local = first.mail_from.split('@').next().unwrap();
    // Under another secret it does not open: nobody else can mint one.
    let other = QueueSecrets::parse("another-queue-secret-0123456789abcdef").unwrap();
    assert!(ReturnPathClaim::open(local, &other).is_err());
    assert_eq!(
        envelope_id::open(first.envid.as_deref().unwrap(), &other),
        None
    );
}

#[test]
fn without_secrets_there_is_neither_return_path_nor_envelope_id() {
    let mut s = settings(Some(RP));
    s.envelope_secrets = None;
    let signed = send(
        &s,
        serde_json::json!({"from": "hello@example.com", "to": "ada@example.org",
            "subject": "Hi", "text": "Hello"}),
    );
    assert_eq!(signed.jobs[0].mail_from, "hello@example.com");
    assert_eq!(signed.jobs[0].envid, None);
}

#[test]
fn proof_of_delivery_is_asked_per_message() {
    let s = settings(None);
    for (notify, asked) in [
        (serde_json::json!({"delivery": true}), true),
        (serde_json::json!({"delivery": false}), false),
        (serde_json::json!({"delivery": null}), false),
        (serde_json::json!({}), false),
        (serde_json::Value::Null, false),
    ] {
        let signed = send(
            &s,
            serde_json::json!({"from": "news@example.com", "to": ["ada@example.org", "bob@example.org"],
                "subject": "Hi", "text": "Hello", "stream": "marketing", "notify": notify}),
        );
        assert_eq!(signed.jobs.len(), 2);
        for job in &signed.jobs {
            assert_eq!(job.notify_delivery, asked, "{notify}");
        }
    }
    for (notify, field) in [
        (serde_json::json!({"delivery": "yes"}), "notify.delivery"),
        (serde_json::json!({"success": true}), "notify.success"),
        (serde_json::json!(true), "notify"),
    ] {
        let body = serde_json::json!({"from": "hello@example.com", "to": "ada@example.org",
            "subject": "Hi", "text": "Hello", "notify": notify});
        let e = prepare(body.to_string().as_bytes(), &caller(), &s, 1, &[9; 32])
            .err()
            .unwrap();
        assert_eq!((e.status, e.rule), (422, "invalid_request"), "{notify}");
        assert!(e.body().contains(&format!("\"{field}\"")), "{}", e.body());
    }
}

#[test]
fn the_settings_give_accept_the_return_paths_and_the_secret() {
    let s = SendSettings::from_source(&pairs_source(&[
        ("RETURN_PATH_DOMAINS", RP),
        ("QUEUE_SECRET", SECRET),
    ]))
    .unwrap();
    assert_eq!(
        s.inbound.return_path_for("example.com"),
        Some("rp.example.com")
    );
    let envid = envelope_id::issue("4f3c9a0b1d2e3f405162738495a6b7c8", &secrets());
    assert_eq!(
        envelope_id::issue(
            "4f3c9a0b1d2e3f405162738495a6b7c8",
            s.envelope_secrets.as_ref().unwrap()
        ),
        envid
    );
    let e = SendSettings::from_source(&pairs_source(&[("RETURN_PATH_DOMAINS", "[]")])).unwrap_err();
    assert_eq!(e.setting, "RETURN_PATH_DOMAINS");
}

#[test]
fn the_signed_forms_match_the_documented_vectors() {
    // The same values tests/harness/edgerelay_harness/return_path.py
    // computes from docs/reports.md: the e2e tests open the worker's
    // return paths and envelope ids with it.
    let s = QueueSecrets::parse(&"x".repeat(40)).unwrap();
    let claim = ReturnPathClaim {
        message_id: "4f3c9a0b1d2e3f405162738495a6b7c8-3".into(),
        recipient_index: 7,
    };
    assert_eq!(
        claim.address("rp.example.com", &s).unwrap(),
        "b+j46jucy5fy7uaulcoocjljvxzaaagaahatxooxizrfv2o@rp.example.com"
    );
    assert_eq!(
        envelope_id::issue("4f3c9a0b1d2e3f405162738495a6b7c8", &s).unwrap(),
        "4f3c9a0b1d2e3f405162738495a6b7c8.2412522a8cf959ef"
    );
}

//! `prepare` holds every entrance to the same rules: the sender's domains,
//! a DKIM key or an explicit exemption, the size limit.

use super::*;
use crate::message::DkimAlgorithm;

/// An Ed25519 seed (RFC 8032's first test key).
const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

fn settings(max_message_bytes: usize) -> SendSettings {
    SendSettings {
        dkim_keys: vec![
            DkimKey::from_config("example.com", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
        ],
        unsigned_domains: vec!["example.net".to_string()],
        max_message_bytes,
    }
}

fn caller() -> AuthenticatedKey {
    AuthenticatedKey {
        id: "backend".to_string(),
        domains: vec!["example.com".to_string(), "example.net".to_string()],
        tenant: "acme".to_string(),
    }
}

fn body(from: &str, text: &str) -> Vec<u8> {
    serde_json::json!({"from": from, "to": "rcpt@example.org", "subject": "Hi", "text": text})
        .to_string()
        .into_bytes()
}

#[test]
fn each_entrance_is_held_to_the_same_rules() {
    let big = "x".repeat(4000);
    // (from, text, max bytes, Ok(signatures) or Err((status, rule)))
    type Case<'a> = (&'a str, &'a str, usize, Result<usize, (u16, &'a str)>);
    let cases: Vec<Case> = vec![
        ("hello@example.com", "hi", 10_000, Ok(1)),
        ("hello@EXAMPLE.com", "hi", 10_000, Ok(1)),
        ("hello@example.net", "hi", 10_000, Ok(0)),
        (
            "hello@example.org",
            "hi",
            10_000,
            Err((403, "domain_not_allowed")),
        ),
        (
            "hello@sub.example.com",
            "hi",
            10_000,
            Err((403, "domain_not_allowed")),
        ),
        ("hello@example.com", &big, 2048, Err((413, "too_large"))),
        (
            "not an address",
            "hi",
            10_000,
            Err((422, "invalid_request")),
        ),
    ];
    for (from, text, max, expected) in cases {
        let s = settings(max);
        let got = prepare(&body(from, text), &caller(), &s, 1_700_000_000, &[7; 32]);
        match (got, expected) {
            (Ok(prepared), Ok(signatures)) => {
                assert_eq!(prepared.pending.len(), signatures, "{from}");
                let job = sign_natively(prepared, &s).unwrap();
                assert_eq!(job.key_id, "backend");
                assert_eq!(job.tenant(), "acme", "the job carries the key's tenant");
                assert_eq!(job.subject.as_deref(), Some("Hi"));
                assert_eq!(job.from.as_deref(), Some(from.to_lowercase().as_str()));
                assert_eq!(job.rcpt_to, ["rcpt@example.org"]);
                assert_eq!(
                    job.mime.contains("DKIM-Signature:"),
                    signatures > 0,
                    "{from}"
                );
            }
            (Err(e), Err((status, rule))) => {
                assert_eq!((e.status, e.rule), (status, rule), "{from}: {e:?}");
            }
            (got, expected) => panic!("{from}: got {:?}, expected {expected:?}", got.err()),
        }
    }
}

#[test]
fn a_domain_without_a_key_is_refused_unless_exempt() {
    let mut s = settings(10_000);
    s.dkim_keys.clear();
    let e = prepare(&body("hello@example.com", "hi"), &caller(), &s, 1, &[7; 32])
        .err()
        .unwrap();
    assert_eq!((e.status, e.rule), (403, "domain_not_configured"));
    s.unsigned_domains.push("example.com".to_string());
    assert!(prepare(&body("hello@example.com", "hi"), &caller(), &s, 1, &[7; 32]).is_ok());
}

#[test]
fn request_bodies_are_bounded_before_parsing() {
    let s = settings(10_000);
    let limit = 2 * 10_000 + 64 * 1024;
    assert_eq!(max_request_bytes(&s), limit);
    assert!(check_request_size(limit, &s).is_ok());
    assert_eq!(check_request_size(limit + 1, &s).unwrap_err().status, 413);
}

#[test]
fn signatures_must_match_what_was_prepared() {
    let s = settings(10_000);
    let prepared = prepare(&body("hello@example.com", "hi"), &caller(), &s, 1, &[7; 32]).unwrap();
    let e = finish(prepared, Vec::new()).unwrap_err();
    assert_eq!(e.status, 500);
    assert_eq!(signing_key(&s, 1).unwrap_err().status, 500);
}

//! `prepare` holds every entrance to the same rules: the sender's domains,
//! a DKIM key or an explicit exemption, the size limit.

use super::*;
use crate::message::DkimAlgorithm;

/// An Ed25519 seed (RFC 8032's first test key).
const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
/// A 2048-bit RSA key, the one every sending domain needs.
const RSA_2048: &str = include_str!("../../message/dkim/testdata/rsa2048.pkcs8.pem");
/// A 1024-bit RSA key: loads, but is too weak to count.
const RSA_1024: &str = include_str!("../../message/dkim/testdata/rsa1024.pkcs8.pem");

fn settings(max_message_bytes: usize) -> SendSettings {
    SendSettings {
        dkim_keys: vec![
            DkimKey::from_config("example.com", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
            DkimKey::from_config("example.com", "r1", DkimAlgorithm::RsaSha256, RSA_2048).unwrap(),
        ],
        unsigned_domains: vec!["example.net".to_string()],
        max_message_bytes,
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
        ("hello@example.com", "hi", 10_000, Ok(2)),
        ("hello@EXAMPLE.com", "hi", 10_000, Ok(2)),
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
fn a_domain_signs_with_rsa_always_and_ed25519_only_beside_it() {
    let ed25519 = || DkimKey::from_config("example.com", "e", DkimAlgorithm::Ed25519Sha256, SEED);
    let rsa = |pem| DkimKey::from_config("example.com", "r", DkimAlgorithm::RsaSha256, pem);
    // (keys, exempt, Ok(signatures) or Err(rule))
    type Case = (Vec<DkimKey>, bool, Result<usize, &'static str>);
    let cases: Vec<Case> = vec![
        (vec![ed25519().unwrap()], false, Err("domain_needs_rsa_key")),
        (
            vec![rsa(RSA_1024).unwrap()],
            false,
            Err("domain_needs_rsa_key"),
        ),
        (
            vec![ed25519().unwrap(), rsa(RSA_1024).unwrap()],
            false,
            Err("domain_needs_rsa_key"),
        ),
        (vec![rsa(RSA_2048).unwrap()], false, Ok(1)),
        (
            vec![ed25519().unwrap(), rsa(RSA_2048).unwrap()],
            false,
            Ok(2),
        ),
        // UNSIGNED_DOMAINS exempts a domain from the rule, as from keys.
        (vec![ed25519().unwrap()], true, Ok(1)),
        (vec![], false, Err("domain_not_configured")),
    ];
    for (keys, exempt, expected) in cases {
        let mut s = settings(10_000);
        let names: Vec<String> = keys.iter().map(|k| format!("{:?}", k.identity())).collect();
        s.dkim_keys = keys;
        if exempt {
            s.unsigned_domains.push("example.com".to_string());
        }
        let got = prepare(&body("hello@example.com", "hi"), &caller(), &s, 1, &[7; 32]);
        match (got, expected) {
            (Ok(prepared), Ok(count)) => assert_eq!(prepared.pending.len(), count, "{names:?}"),
            (Err(e), Err(rule)) => {
                assert_eq!(
                    (e.status, e.rule, e.field.as_deref()),
                    (403, rule, Some("from"))
                );
                if rule == "domain_needs_rsa_key" {
                    assert!(e.message.contains("example.com"), "{}", e.message);
                    assert!(e.message.contains("RSA"), "{}", e.message);
                }
            }
            (got, expected) => panic!("{names:?}: got {:?}, expected {expected:?}", got.err()),
        }
    }
}

#[test]
fn a_domains_own_keys_sign_beside_the_configured_ones_under_the_same_rules() {
    let s = settings(10_000);
    let body = body("hello@example.net", "hi");
    assert_eq!(from_domain(&body, &s).as_deref(), Some("example.net"));
    assert_eq!(from_domain(b"nope", &s), None);
    let rsa = DkimKey::from_config("example.net", "er1-rsa", DkimAlgorithm::RsaSha256, RSA_2048);
    let ed = DkimKey::from_config("example.net", "er1-ed", DkimAlgorithm::Ed25519Sha256, SEED);
    let keys = vec![ed.unwrap(), rsa.unwrap()];
    let prepared = prepare_with_keys(&body, &caller(), &s, keys, 1, &[7; 32], None).unwrap();
    // Past the two configured keys: the domain's own, in their order.
    let indexes: Vec<usize> = prepared.pending.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [2, 3]);
    assert!(!prepared.is_configured_key(&s, 2) && prepared.is_configured_key(&s, 1));
    assert_eq!(
        prepared
            .signing_key(&s, 3)
            .unwrap()
            .identity()
            .selector
            .as_str(),
        "er1-rsa"
    );
    assert_eq!(prepared.signing_key(&s, 4).unwrap_err().status, 500);
    let job = sign_natively(prepared, &s).unwrap();
    assert_eq!(job.mime.matches("DKIM-Signature:").count(), 2);
    // RSA always, for a domain's own keys too (the exemption aside).
    let mut strict = settings(10_000);
    strict.unsigned_domains.clear();
    let only_ed = vec![
        DkimKey::from_config("example.net", "er1-ed", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
    ];
    let e = prepare_with_keys(&body, &caller(), &strict, only_ed, 1, &[7; 32], None)
        .err()
        .unwrap();
    assert_eq!(e.rule, "domain_needs_rsa_key");
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
    assert_eq!(signing_key(&s, 2).unwrap_err().status, 500);
}

const TOKEN_SECRET: &str = "unsubscribe-secret-0123456789abcdef";

fn marketing_settings(base_url: Option<&str>) -> SendSettings {
    let mut s = settings(100_000);
    s.unsubscribe = crate::events::unsubscribe::UnsubscribeSettings {
        secrets: Some(crate::events::unsubscribe::TokenSecrets::parse(TOKEN_SECRET).unwrap()),
        base_url: base_url.map(str::to_string),
    };
    s
}

fn marketing_body(extra: serde_json::Value) -> Vec<u8> {
    let mut value = serde_json::json!({
        "from": "news@example.com",
        "to": ["ada@example.org", "Bob <bob@example.org>"],
        "bcc": "carol@example.org",
        "subject": "Spring sale",
        "text": "Leave: {{unsubscribe_url}}",
        "stream": "marketing",
        "topic": "sales"
    });
    if let (serde_json::Value::Object(target), serde_json::Value::Object(extra)) =
        (&mut value, extra)
    {
        target.extend(extra);
    }
    value.to_string().into_bytes()
}

/// The `List-Unsubscribe` link of a signed message.
fn link_of(mime: &str) -> Option<String> {
    mime.lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .map(|rest| rest.trim_end_matches('>').to_string())
}

#[test]
fn marketing_mail_goes_out_as_one_signed_copy_per_recipient_with_its_own_link() {
    let s = marketing_settings(Some("https://mail.example.com"));
    let prepared = prepare(
        &marketing_body(serde_json::json!({})),
        &caller(),
        &s,
        1,
        &[7; 32],
    )
    .unwrap();
    assert!(prepared.warnings.is_empty());
    let parent = prepared.id.clone();
    let signed = sign_all_natively(prepared, &s).unwrap();
    assert_eq!(signed.id, parent);
    let secrets = s.unsubscribe.secrets.as_ref().unwrap();
    let mut links = Vec::new();
    for (i, (job, rcpt)) in signed
        .jobs
        .iter()
        .zip(["ada@example.org", "bob@example.org", "carol@example.org"])
        .enumerate()
    {
        assert_eq!(job.id, format!("{parent}-{}", i + 1));
        assert_eq!(job.rcpt_to, [rcpt], "one recipient per copy");
        assert_eq!(job.stream.as_deref(), Some("marketing"));
        assert_eq!(job.topic.as_deref(), Some("sales"));
        assert!(
            job.mime
                .contains(&format!("Message-ID: <{}@example.com>", job.id))
        );
        assert!(
            job.mime
                .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        );
        // Both fields are signed, and over-signed so none can be added.
        let signature = job
            .mime
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        let h = signature
            .split(';')
            .find_map(|tag| tag.trim().strip_prefix("h="))
            .unwrap()
            .replace([' ', '\t', '\r', '\n'], "");
        assert!(
            h.contains(
                "list-unsubscribe:list-unsubscribe:list-unsubscribe-post:list-unsubscribe-post"
            ),
            "{h}"
        );
        // The link names this copy's recipient, and the body carries it too.
        let link = link_of(&job.mime).unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(job.mime.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.body_text(0).as_deref().map(str::trim_end),
            Some(format!("Leave: {link}").as_str())
        );
        let token = link
            .strip_prefix("https://mail.example.com/unsubscribe/")
            .unwrap();
        let claim = secrets.open(token).unwrap();
        assert_eq!(
            (claim.recipient.as_str(), claim.message_id.as_str()),
            (rcpt, job.id.as_str())
        );
        assert_eq!(
            (claim.tenant.as_str(), claim.key_id.as_str()),
            ("acme", "backend")
        );
        assert_eq!(
            (claim.stream.as_str(), claim.topic.as_deref()),
            ("marketing", Some("sales"))
        );
        assert!(!link.contains("example.org"), "the link shows no address");
        links.push(link);
    }
    links.sort();
    links.dedup();
    assert_eq!(links.len(), 3, "every copy has a link of its own");
    assert_eq!(
        signed.copies().unwrap(),
        (1..=3)
            .map(|i| format!("{parent}-{i}"))
            .zip(["ada@example.org", "bob@example.org", "carol@example.org"].map(String::from))
            .collect::<Vec<_>>()
    );
}

#[test]
fn transactional_mail_to_several_recipients_stays_one_copy() {
    let s = marketing_settings(Some("https://mail.example.com"));
    let body = serde_json::json!({
        "from": "hello@example.com",
        "to": ["ada@example.org", "bob@example.org"],
        "subject": "Receipt",
        "text": "Thanks"
    });
    let prepared = prepare(body.to_string().as_bytes(), &caller(), &s, 1, &[7; 32]).unwrap();
    let signed = sign_all_natively(prepared, &s).unwrap();
    assert_eq!(signed.jobs.len(), 1);
    assert_eq!(signed.jobs[0].id, signed.id);
    assert_eq!(
        signed.jobs[0].rcpt_to,
        ["ada@example.org", "bob@example.org"]
    );
    assert_eq!(signed.jobs[0].stream, None);
    assert!(!signed.jobs[0].mime.contains("List-Unsubscribe"));
    assert_eq!(signed.copies(), None);
}

#[test]
fn where_the_links_point_and_what_the_status_is_told() {
    let body = marketing_body(serde_json::json!({"to": "ada@example.org", "bcc": null}));
    // Set: links under the base, no warning; one recipient keeps the id.
    let s = marketing_settings(Some("https://mail.example.com"));
    let p = prepare_from(
        &body,
        &caller(),
        &s,
        1,
        &[7; 32],
        Some("https://er.example.workers.dev"),
    )
    .unwrap();
    assert!(p.warnings.is_empty());
    let id = p.id.clone();
    let job = sign_natively(p, &s).unwrap();
    assert_eq!(job.id, id);
    assert!(
        link_of(&job.mime)
            .unwrap()
            .starts_with("https://mail.example.com/unsubscribe/")
    );
    // Unset: the request's origin, and a warning in the status.
    let s = marketing_settings(None);
    let p = prepare_from(
        &body,
        &caller(),
        &s,
        1,
        &[7; 32],
        Some("https://er.example.workers.dev"),
    )
    .unwrap();
    assert_eq!(p.warnings, [BASE_URL_WARNING]);
    let job = sign_natively(p, &s).unwrap();
    assert!(
        link_of(&job.mime)
            .unwrap()
            .starts_with("https://er.example.workers.dev/unsubscribe/")
    );
    // The key's own base comes first.
    let mut key = caller();
    key.unsubscribe_base_url = Some("https://news.example.com".into());
    for settings in [
        marketing_settings(None),
        marketing_settings(Some("https://mail.example.com")),
    ] {
        let p = prepare(&body, &key, &settings, 1, &[7; 32]).unwrap();
        assert!(p.warnings.is_empty());
        let job = sign_natively(p, &settings).unwrap();
        assert!(
            link_of(&job.mime)
                .unwrap()
                .starts_with("https://news.example.com/unsubscribe/")
        );
    }
    // Unset, and no request to take an origin from (a queue producer).
    let e = prepare(&body, &caller(), &s, 1, &[7; 32]).err().unwrap();
    assert_eq!((e.status, e.rule), (403, "unsubscribe_not_configured"));
}

#[test]
fn stream_problems_are_refused_with_their_field() {
    let s = marketing_settings(Some("https://mail.example.com"));
    for (extra, field, rule) in [
        (
            serde_json::json!({"stream": "promo"}),
            "stream",
            "unknown_stream",
        ),
        (
            serde_json::json!({"unsubscribe": false}),
            "unsubscribe",
            "unsubscribe_required",
        ),
        (
            serde_json::json!({"stream": null, "topic": null, "unsubscribe": true}),
            "topic",
            "topic_required",
        ),
        (
            serde_json::json!({"stream": null, "topic": null}),
            "text",
            "unsubscribe_url_without_unsubscribe",
        ),
    ] {
        let e = prepare(&marketing_body(extra.clone()), &caller(), &s, 1, &[7; 32])
            .err()
            .unwrap();
        assert_eq!((e.status, e.rule), (422, "invalid_request"), "{extra}");
        let problems = e.body();
        assert!(
            problems.contains(field) && problems.contains(rule),
            "{extra}: {problems}"
        );
    }
}

#[test]
fn a_key_sends_in_its_named_streams() {
    let s = marketing_settings(Some("https://mail.example.com"));
    let mut key = caller();
    key.streams.insert(
        "newsletter".into(),
        crate::events::unsubscribe::StreamKind::Marketing,
    );
    let body = marketing_body(serde_json::json!({"stream": "newsletter", "topic": null}));
    let signed = sign_all_natively(prepare(&body, &key, &s, 1, &[7; 32]).unwrap(), &s).unwrap();
    assert_eq!(signed.jobs.len(), 3);
    assert!(
        signed
            .jobs
            .iter()
            .all(|j| j.stream.as_deref() == Some("newsletter"))
    );
    let e = prepare(&body, &caller(), &s, 1, &[7; 32]).err().unwrap();
    assert!(e.body().contains("unknown_stream"));
}

#[test]
fn single_copy_entrances_refuse_several_copies() {
    let s = marketing_settings(Some("https://mail.example.com"));
    let prepared = prepare(
        &marketing_body(serde_json::json!({})),
        &caller(),
        &s,
        1,
        &[7; 32],
    )
    .unwrap();
    let e = sign_natively(prepared, &s).unwrap_err();
    assert_eq!(e.status, 422);
    assert!(e.body().contains("one_copy_only"));
}

use super::*;
use crate::accept::keys::{AuthenticatedKey, Scope};
use crate::accept::send::{prepare_from, sign_all_natively};
use crate::accept::settings::SendSettings;
use crate::events::unsubscribe::{TokenSecrets, UnsubscribeSettings};
use crate::http::delivery_mode::DeliveryMode;
use crate::message::{DkimAlgorithm, DkimKey};

/// An Ed25519 seed (RFC 8032's first test key).
const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

#[test]
fn parameter_table() {
    type Row = (
        Vec<(&'static str, &'static str)>,
        Result<bool, (&'static str, &'static str)>,
    );
    let table: Vec<Row> = vec![
        (vec![], Ok(false)),
        (vec![("dry_run", "false")], Ok(false)),
        (vec![("dry_run", "true")], Ok(true)),
        (vec![("delivery", "queued"), ("dry_run", "true")], Ok(true)),
        (vec![("dry_run", "1")], Err(("invalid_dry_run", "not `1`"))),
        (
            vec![("dry_run", "TRUE")],
            Err(("invalid_dry_run", "not `TRUE`")),
        ),
        (vec![("dry_run", "")], Err(("invalid_dry_run", "not ``"))),
        (
            vec![("dry_run", "true"), ("dry_run", "true")],
            Err(("invalid_dry_run", "at most once")),
        ),
        (
            vec![("delivery", "immediate"), ("dry_run", "true")],
            Ok(true),
        ),
    ];
    for (pairs, expected) in table {
        match (from_query(pairs.clone()), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{pairs:?}"),
            (Err(e), Err((rule, needle))) => {
                assert_eq!(e.status, 422, "{pairs:?}");
                assert_eq!(e.field.as_deref(), Some(PARAMETER));
                assert_eq!(e.details[0].rule, rule, "{pairs:?}");
                assert!(e.message.contains(needle), "{}", e.message);
            }
            (got, want) => panic!("{pairs:?}: {got:?} vs {want:?}"),
        }
    }
}

fn settings() -> SendSettings {
    SendSettings {
        dkim_keys: vec![
            DkimKey::from_config("example.com", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap(),
        ],
        // Exempt from the RSA rule (tested in send/tests.rs): these tests
        // are not about which keys sign, and native RSA is slow unoptimised.
        unsigned_domains: vec!["example.com".to_string()],
        max_message_bytes: 100_000,
        unsubscribe: UnsubscribeSettings {
            secrets: Some(TokenSecrets::parse("unsubscribe-secret-0123456789abcdef").unwrap()),
            base_url: None,
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
        scopes: Scope::ALL.to_vec(),
        limits: Default::default(),
    }
}

fn signed(body: serde_json::Value) -> Signed {
    let s = settings();
    let prepared = prepare_from(
        body.to_string().as_bytes(),
        &caller(),
        &s,
        1_700_000_000,
        &[9; 32],
        Some("https://er.acme.workers.dev"),
    )
    .unwrap();
    sign_all_natively(prepared, &s).unwrap()
}

fn lint_rules(answer: &Value) -> Vec<&str> {
    answer["lint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect()
}

#[test]
fn the_answer_carries_the_jobs_own_bytes_and_envelope() {
    let body = serde_json::json!({
        "from": "shop@example.com", "to": ["a@example.org", "b@example.org"],
        "subject": "Receipt", "html": "<p>Thanks</p><img src=\"https://cdn.example.net/l.png\">"
    });
    let first = signed(body.clone());
    let again = signed(body);
    let answer = answer(&first, None);
    assert_eq!(answer["object"], "dry_run");
    assert_eq!(answer["id"], first.id);
    // The same request, time and entropy sign to the same bytes, and the
    // answer shows exactly what delivery would be handed.
    assert_eq!(first.jobs[0].mime, again.jobs[0].mime);
    assert_eq!(answer["mime"], first.jobs[0].mime.as_str());
    assert_eq!(answer["envelope"]["mail_from"], "shop@example.com");
    assert_eq!(
        answer["envelope"]["rcpt_to"],
        serde_json::json!(["a@example.org", "b@example.org"])
    );
    assert!(answer.get("copies").is_none());
    assert_eq!(
        lint_rules(&answer),
        [
            "missing_text_part",
            "image_without_alt",
            "image_hosts",
            "no_rsa_signature"
        ]
    );
    assert_eq!(answer["lint"][0]["severity"], "warning");
    assert_eq!(answer["lint"][0]["field"], "text");
}

#[test]
fn one_copy_per_recipient_lists_every_copy_and_lints_each_finding_once() {
    let signed = signed(serde_json::json!({
        "from": "news@example.com", "to": ["a@example.org", "b@example.org"],
        "subject": "Sale", "text": "Leave: {{unsubscribe_url}}", "stream": "marketing"
    }));
    let answer = answer(&signed, None);
    let copies = answer["copies"].as_array().unwrap();
    assert_eq!(copies.len(), 2);
    for (copy, job) in copies.iter().zip(&signed.jobs) {
        assert_eq!(copy["id"], job.id.as_str());
        assert_eq!(copy["mime"], job.mime.as_str());
        assert_eq!(copy["envelope"]["rcpt_to"], serde_json::json!(job.rcpt_to));
    }
    assert_eq!(answer["mime"], copies[0]["mime"]);
    // Both copies' links are on the worker's shared host: one finding.
    assert_eq!(
        lint_rules(&answer),
        ["no_rsa_signature", "shared_host_link"]
    );
    assert_eq!(answer["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn an_immediate_dry_run_refuses_what_an_immediate_send_refuses() {
    let signed = signed(serde_json::json!({
        "from": "news@example.com", "to": ["a@example.org", "b@example.org"],
        "subject": "Sale", "text": "Leave: {{unsubscribe_url}}", "stream": "marketing"
    }));
    let e = DeliveryMode::Immediate
        .admits_copies(signed.jobs.len())
        .unwrap_err();
    assert_eq!(e.details[0].rule, "immediate_one_copy");
    assert!(
        DeliveryMode::Queued
            .admits_copies(signed.jobs.len())
            .is_ok()
    );
}

#[test]
fn the_dns_findings_join_the_lint_for_the_from_domain() {
    let signed = signed(serde_json::json!({
        "from": "Shop <shop@Example.com>", "to": ["a@example.org"],
        "subject": "Receipt", "text": "Thanks"
    }));
    let (domain, names) = dns_names(&signed).unwrap();
    assert_eq!(domain, "example.com");
    assert_eq!(names, ["_dmarc.example.com", "default._bimi.example.com"]);
    let answers: Vec<(String, TxtAnswer)> =
        names.iter().map(|n| (n.clone(), TxtAnswer::None)).collect();
    let answer = answer(&signed, Some((&domain, &answers)));
    let rules = lint_rules(&answer);
    assert!(
        rules.starts_with(&["dmarc_policy", "bimi_readiness"]),
        "{rules:?}"
    );
    assert_eq!(answer["lint"][0]["severity"], "warning");
}

//! The add request, the records a domain is told to publish, and the
//! verification rules, each against a table.

use super::verify::{judge, names, spf_lookups};
use super::*;
use crate::message::lint::dns::TxtAnswer;

const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const RSA_2048: &str = include_str!("../../message/dkim/testdata/rsa2048.pkcs8.pem");

fn keys() -> Vec<KeyView> {
    let rsa =
        DkimKey::from_config("example.com", "er1-rsa", DkimAlgorithm::RsaSha256, RSA_2048).unwrap();
    let ed = DkimKey::from_config(
        "example.com",
        "er1-ed25519",
        DkimAlgorithm::Ed25519Sha256,
        SEED,
    )
    .unwrap();
    vec![KeyView::of(&rsa).unwrap(), KeyView::of(&ed).unwrap()]
}

fn all_records(keys: &[KeyView]) -> Vec<DnsRecord> {
    let spf = vec!["include:spf.smarthost.example".to_string()];
    records::records(&RecordInputs {
        domain: "example.com",
        keys,
        spf_mechanisms: &spf,
        return_path: Some("rp.example.com"),
        links_host: Some("mail.example.com"),
    })
}

#[test]
fn the_add_request_is_read_strictly() {
    let ok = |body: &str| parse_add(body.as_bytes()).map(|d| d.as_str().to_string());
    assert_eq!(ok(r#"{"domain": " Example.COM "}"#).unwrap(), "example.com");
    for (body, status, rule) in [
        ("nope", 400, "malformed_json"),
        ("{}", 422, "invalid_request"),
        (r#"{"domain": 7}"#, 422, "invalid_request"),
        (r#"{"domain": "exa mple.com"}"#, 422, "invalid_request"),
        (r#"{"domain": "localhost"}"#, 422, "invalid_request"),
        (
            r#"{"domain": "example.com", "x": 1}"#,
            422,
            "invalid_request",
        ),
    ] {
        let e = ok(body).unwrap_err();
        assert_eq!((e.status, e.rule), (status, rule), "{body}");
    }
    assert_eq!(
        parse_add(br#"{"domain": 7}"#).unwrap_err().details[0].rule,
        "type"
    );
}

#[test]
fn selectors_name_their_generation_and_algorithm() {
    assert_eq!(selector(1, DkimAlgorithm::RsaSha256), "er1-rsa");
    assert_eq!(selector(2, DkimAlgorithm::Ed25519Sha256), "er2-ed25519");
}

#[test]
fn a_domain_is_told_every_record_to_publish() {
    let keys = keys();
    let records = all_records(&keys);
    let got: Vec<(&str, &str, &str, bool)> = records
        .iter()
        .map(|r| {
            (
                r.purpose.as_str(),
                r.record_type,
                r.name.as_str(),
                r.required,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("dkim", "TXT", "er1-rsa._domainkey.example.com", true),
            ("dkim", "TXT", "er1-ed25519._domainkey.example.com", false),
            ("spf", "TXT", "example.com", false),
            ("dmarc", "TXT", "_dmarc.example.com", false),
            ("return_path_mx", "MX", "rp.example.com", false),
            ("return_path_mx", "MX", "rp.example.com", false),
            ("return_path_mx", "MX", "rp.example.com", false),
            ("return_path_spf", "TXT", "rp.example.com", false),
            ("links", "ROUTE", "mail.example.com", false),
        ]
    );
    assert!(records[0].value.starts_with("v=DKIM1; k=rsa; p=MII"));
    assert!(records[1].value.starts_with("v=DKIM1; k=ed25519; p="));
    assert_eq!(
        records[2].value,
        "v=spf1 include:spf.smarthost.example ~all"
    );
    assert_eq!(records[3].value, "v=DMARC1; p=none; adkim=r; aspf=r");
    assert_eq!(records[4].value, "13 route1.mx.cloudflare.net");
    assert_eq!(
        records[7].value,
        "v=spf1 include:_spf.mx.cloudflare.net include:spf.smarthost.example ~all"
    );
    // Nothing private in any of it.
    let text =
        serde_json::to_string(&records.iter().map(DnsRecord::to_json).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains("PRIVATE"));
    let pem_body: String = RSA_2048
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!text.contains(&pem_body[..40]));
    assert!(!text.contains(SEED));
}

/// Every TXT record published as told.
fn published(records: &[DnsRecord]) -> Vec<(String, TxtAnswer)> {
    names(records)
        .into_iter()
        .map(|name| {
            let texts: Vec<String> = records
                .iter()
                .filter(|r| r.name == name && r.record_type == "TXT")
                .map(|r| r.value.clone())
                .collect();
            (name, TxtAnswer::Records(texts))
        })
        .collect()
}

fn set(answers: &mut [(String, TxtAnswer)], name: &str, answer: TxtAnswer) {
    for (n, a) in answers.iter_mut() {
        if n == name {
            *a = answer.clone();
        }
    }
}

#[test]
fn records_published_as_told_verify() {
    let keys = keys();
    let records = all_records(&keys);
    let report = judge(&records, &published(&records));
    assert!(report.verified);
    for r in report.records.iter().filter(|r| r.record_type == "TXT") {
        assert_eq!((r.found, r.matches), (Some(true), Some(true)), "{r:?}");
        assert!(r.problems.is_empty(), "{r:?}");
    }
    // MX and the links' host are said to be unchecked, never "matching".
    let mx = report
        .records
        .iter()
        .find(|r| r.record_type == "MX")
        .unwrap();
    assert_eq!(mx.matches, None);
    assert!(mx.problems[0].contains("not checked"));
}

/// Break one record at a time: (name, what is published there, which
/// record's report, the words its problem must contain, still verified).
#[test]
fn each_broken_record_is_named_in_plain_words() {
    let keys = keys();
    let records = all_records(&keys);
    let rsa = "er1-rsa._domainkey.example.com";
    let ed = "er1-ed25519._domainkey.example.com";
    let spf_ok = records[2].value.clone();
    let other_rsa = records[0].value.replace("p=MII", "p=MIIX");
    let many_includes = format!(
        "v=spf1 include:spf.smarthost.example {} ~all",
        (0..10)
            .map(|i| format!("include:s{i}.example"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let txt = |values: &[&str]| TxtAnswer::Records(values.iter().map(|v| v.to_string()).collect());
    let table: Vec<(&str, TxtAnswer, &str, &str, bool)> = vec![
        (rsa, TxtAnswer::None, rsa, "no DKIM record", false),
        (rsa, txt(&[&other_rsa]), rsa, "DKIM key mismatch", false),
        (
            rsa,
            txt(&[&records[1].value]),
            rsa,
            "DKIM key mismatch",
            false,
        ),
        (rsa, txt(&["v=DKIM1; k=rsa; p="]), rsa, "revoked", false),
        (
            rsa,
            txt(&[&records[0].value, &other_rsa]),
            rsa,
            "2 DKIM records",
            false,
        ),
        (
            rsa,
            TxtAnswer::Unavailable,
            rsa,
            "could not be asked",
            false,
        ),
        // The Ed25519 record is not required: the domain still sends.
        (ed, TxtAnswer::None, ed, "no DKIM record", true),
        (
            "example.com",
            txt(&[&spf_ok, "v=spf1 include:other.example ~all"]),
            "example.com",
            "2 SPF records",
            true,
        ),
        (
            "example.com",
            txt(&["v=spf1 mx ~all"]),
            "example.com",
            "does not contain include:spf.smarthost.example",
            true,
        ),
        (
            "example.com",
            txt(&[&many_includes]),
            "example.com",
            "11 DNS lookups",
            true,
        ),
        (
            "example.com",
            txt(&["v=spf1 include:spf.smarthost.example +all"]),
            "example.com",
            "+all",
            true,
        ),
        (
            "example.com",
            txt(&["google-site-verification=abc"]),
            "example.com",
            "no SPF record",
            true,
        ),
        (
            "_dmarc.example.com",
            TxtAnswer::None,
            "_dmarc.example.com",
            "DMARC missing",
            true,
        ),
        (
            "_dmarc.example.com",
            txt(&["v=DMARC1; p=none", "v=DMARC1; p=reject"]),
            "_dmarc.example.com",
            "2 DMARC records",
            true,
        ),
        (
            "_dmarc.example.com",
            txt(&["v=DMARC1; rua=mailto:x@example.com"]),
            "_dmarc.example.com",
            "no valid policy",
            true,
        ),
        (
            "rp.example.com",
            txt(&["v=spf1 include:spf.smarthost.example ~all"]),
            "rp.example.com",
            "does not contain include:_spf.mx.cloudflare.net",
            true,
        ),
    ];
    for (name, answer, which, words, verified) in table {
        let mut answers = published(&records);
        set(&mut answers, name, answer);
        let report = judge(&records, &answers);
        assert_eq!(report.verified, verified, "{name}: {words}");
        let broken: Vec<_> = report
            .records
            .iter()
            .filter(|r| r.record_type == "TXT" && r.matches != Some(true))
            .collect();
        assert_eq!(broken.len(), 1, "{name}: {words}: {broken:?}");
        assert_eq!(broken[0].name, which);
        assert!(
            broken[0].problems.iter().any(|p| p.contains(words)),
            "{words}: {:?}",
            broken[0].problems
        );
    }
}

#[test]
fn spf_lookups_count_the_terms_that_ask_dns() {
    for (record, n) in [
        ("v=spf1 -all", 0),
        ("v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all", 0),
        ("v=spf1 a mx a:x.example mx/24 ~all", 4),
        (
            "v=spf1 include:a.example ?include:b.example exists:%{i}.x redirect=c.example",
            4,
        ),
        ("v=spf1 ptr ~all", 1),
    ] {
        assert_eq!(spf_lookups(record), n, "{record}");
    }
}

#[test]
fn configured_domains_are_listed_read_only_for_the_callers_domains() {
    let rsa =
        DkimKey::from_config("example.com", "s1", DkimAlgorithm::RsaSha256, RSA_2048).unwrap();
    let ed = DkimKey::from_config("example.com", "s2", DkimAlgorithm::Ed25519Sha256, SEED).unwrap();
    let other =
        DkimKey::from_config("example.org", "s1", DkimAlgorithm::Ed25519Sha256, SEED).unwrap();
    let keys = [rsa, other, ed];
    let got = configured_domains(&keys, &["EXAMPLE.com".to_string()]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "example.com");
    let selectors: Vec<&str> = got[0].1.iter().map(|k| k.selector.as_str()).collect();
    assert_eq!(selectors, ["s1", "s2"]);
}

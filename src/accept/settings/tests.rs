//! Accept's settings: defaults and normalisation, each bad setting refused
//! with its name and entry, `API_KEYS` required, and a malformed secret never
//! echoed in the error.

use super::*;
use crate::config::pairs_source as source;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// An Ed25519 seed in base64: a real private key as DKIM_KEYS holds one.
const SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

fn keys(ids: &[&str]) -> String {
    let entries: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id":"{id}","sha256":"{HASH}","domains":["Example.com"]}}"#))
        .collect();
    format!("[{}]", entries.join(","))
}

fn form(id: &str) -> String {
    format!(
        r#"[{{"id":"{id}","key":"pk_test_0123456789abcdef","origins":["https://www.example.com"],
        "from":"forms@example.com","to":["owner@example.com"],"subject":"Hi","text":"{{{{note}}}}",
        "fields":{{"note":{{}}}}}}]"#
    )
}

fn accept_with(extra: &[(&str, &str)]) -> Result<AcceptSettings, ConfigError> {
    let api_keys = keys(&["backend"]);
    let mut pairs: Vec<(&str, &str)> = vec![("API_KEYS", api_keys.as_str())];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, v));
    }
    AcceptSettings::from_source(&source(&pairs))
}

#[test]
fn defaults_and_normalisation() {
    let s = accept_with(&[]).unwrap();
    assert_eq!(s.api_keys[0].id, "backend");
    assert_eq!(s.api_keys[0].domains, ["example.com"]);
    assert!(s.send.dkim_keys.is_empty());
    assert!(s.send.unsigned_domains.is_empty());
    assert_eq!(s.send.max_message_bytes, 10 * 1024 * 1024);
    assert!(s.forms.publishable.is_empty());
    assert_eq!(s.forms.turnstile_secret, None);
    assert_eq!(s.forms.turnstile_verify_url, TURNSTILE_DEFAULT_VERIFY_URL);
    assert!(s.queue_producers.is_empty());

    let dkim = format!(r#"[{{"domain":"Example.com","selector":"s1","private_key":"{SEED}"}}]"#);
    let s = accept_with(&[
        ("DKIM_KEYS", &dkim),
        ("UNSIGNED_DOMAINS", " Example.ORG , ,example.net"),
        ("MAX_MESSAGE_BYTES", "2048"),
        ("TURNSTILE_SECRET", "  "),
        ("TURNSTILE_VERIFY_URL", "http://127.0.0.1:9/verify"),
        (
            "QUEUE_PRODUCERS",
            &format!(
                r#"[{{"id":"billing","domains":["example.com"],"owner":"backend","token_sha256":"{}"}}]"#,
                "ab".repeat(32)
            ),
        ),
        ("PUBLISHABLE_KEYS", &form("contact")),
    ])
    .unwrap();
    assert_eq!(s.send.dkim_keys.len(), 1);
    assert_eq!(s.send.unsigned_domains, ["example.org", "example.net"]);
    assert!(s.send.may_send_unsigned("EXAMPLE.net"));
    assert!(!s.send.may_send_unsigned("example.com"));
    assert_eq!(s.send.max_message_bytes, 2048);
    assert_eq!(s.forms.turnstile_secret, None, "blank counts as unset");
    assert_eq!(s.forms.turnstile_verify_url, "http://127.0.0.1:9/verify");
    assert_eq!(s.queue_producers[0].owner, "backend");
    assert_eq!(
        s.forms.publishable.form_ids().collect::<Vec<_>>(),
        ["contact"]
    );
}

#[test]
fn each_bad_setting_is_named() {
    let two = keys(&["a", "a"]);
    let contact = form("contact");
    let collides = form("backend");
    let collides_as_recorded = form("web");
    let web_keys = keys(&["backend", "form:web"]);
    let cases: &[(&str, &str, &str, &str)] = &[
        ("API_KEYS", "not json", "API_KEYS", "valid JSON"),
        (
            "API_KEYS",
            r#"[{"id":"a","sha256":"zz","domains":["a.com"]}]"#,
            "API_KEYS",
            "64 hex digits",
        ),
        (
            "API_KEYS",
            &format!(r#"[{{"id":"a","sha256":"{HASH}","domains":[]}}]"#),
            "API_KEYS",
            "no sender domains",
        ),
        (
            "API_KEYS",
            &format!(r#"[{{"id":" ","sha256":"{HASH}","domains":["a.com"]}}]"#),
            "API_KEYS",
            "id is empty",
        ),
        ("API_KEYS", &two, "API_KEYS", "`a` is listed twice"),
        (
            "API_KEYS",
            &format!(r#"[{{"id":"key_1","sha256":"{HASH}","domains":["a.com"]}}]"#),
            "API_KEYS",
            "ids starting with `key_` are kept",
        ),
        (
            "API_KEYS",
            &format!(r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"],"tenant":"a b"}}]"#),
            "API_KEYS",
            "key `a`: tenant must be",
        ),
        (
            "API_KEYS",
            &format!(
                r#"[{{"id":"acme","sha256":"{HASH}","domains":["a.com"]}},{{"id":"b","sha256":"{HASH}","domains":["a.com"],"tenant":"acme"}}]"#
            ),
            "API_KEYS",
            "give key `acme` a tenant explicitly",
        ),
        (
            "API_KEYS",
            &format!(
                r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"],"streams":{{"Big News":"marketing"}}}}]"#
            ),
            "API_KEYS",
            "key `a`: stream \"Big News\" must be",
        ),
        (
            "API_KEYS",
            &format!(
                r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"],"streams":{{"marketing":"transactional"}}}}]"#
            ),
            "API_KEYS",
            "not transactional or marketing",
        ),
        (
            "API_KEYS",
            &format!(
                r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"],"streams":{{"news":"bulk"}}}}]"#
            ),
            "API_KEYS",
            "wrong type or form",
        ),
        (
            "API_KEYS",
            &format!(
                r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"],"unsubscribe_base_url":"http://mail.a.com"}}]"#
            ),
            "API_KEYS",
            "key `a`: unsubscribe_base_url must be https://",
        ),
        ("DKIM_KEYS", "{}", "DKIM_KEYS", "wrong type"),
        (
            "DKIM_KEYS",
            r#"[{"domain":"example.com","selector":"s1","algorithm":"ed25519","private_key":"not a key"}]"#,
            "DKIM_KEYS",
            "s1._domainkey.example.com",
        ),
        (
            "DKIM_KEYS",
            r#"[{"domain":"example.com","selector":"s1","algorithm":"dsa","private_key":"x"}]"#,
            "DKIM_KEYS",
            "unknown algorithm",
        ),
        (
            "MAX_MESSAGE_BYTES",
            "big",
            "MAX_MESSAGE_BYTES",
            "whole number",
        ),
        ("MAX_MESSAGE_BYTES", "100", "MAX_MESSAGE_BYTES", "between"),
        (
            "MAX_MESSAGE_BYTES",
            "104857600",
            "MAX_MESSAGE_BYTES",
            "between",
        ),
        (
            "PUBLISHABLE_KEYS",
            "[{}]",
            "PUBLISHABLE_KEYS",
            "missing field",
        ),
        (
            "QUEUE_PRODUCERS",
            &format!(
                r#"[{{"id":"p","domains":["a.com"],"owner":"nobody","token_sha256":"{}"}}]"#,
                "ab".repeat(32)
            ),
            "QUEUE_PRODUCERS",
            "owner `nobody`",
        ),
        (
            "PUBLISHABLE_KEYS",
            &collides,
            "PUBLISHABLE_KEYS",
            "form `backend` collides with the API key id `backend`",
        ),
    ];
    for (name, value, setting, needle) in cases {
        let e = accept_with(&[(name, value)]).unwrap_err();
        assert_eq!(e.setting, *setting, "{name}={value}: {e}");
        assert!(e.to_string().contains(setting), "{e}");
        assert!(e.problem.contains(needle), "{name}={value}: {e}");
    }
    // A key named like a form's records collides too.
    let e = accept_with(&[
        ("API_KEYS", &web_keys),
        ("PUBLISHABLE_KEYS", &collides_as_recorded),
    ])
    .unwrap_err();
    assert_eq!(e.setting, "PUBLISHABLE_KEYS");
    assert!(e.problem.contains("`form:web`"), "{e}");
    // Distinct ids are fine.
    assert!(accept_with(&[("PUBLISHABLE_KEYS", &contact)]).is_ok());
}

#[test]
fn api_keys_is_required() {
    let e = AcceptSettings::from_source(&source(&[])).unwrap_err();
    assert_eq!(e.setting, "API_KEYS");
    assert!(e.problem.contains("is not set"));
}

/// Values of secret settings never reach an error (errors are logged and
/// answered as `500 server_misconfigured`).
#[test]
fn a_malformed_secret_is_not_echoed() {
    let pem = format!("-----BEGIN PRIVATE KEY-----\\n{SEED}\\n");
    let cases: Vec<(&str, String, &str)> = vec![
        // The whole private key where a list belongs.
        ("DKIM_KEYS", format!(r#""{SEED}""#), SEED),
        // A private key in the wrong field type.
        (
            "DKIM_KEYS",
            format!(r#"[{{"domain":"example.com","selector":"s1","private_key":["{SEED}"]}}]"#),
            SEED,
        ),
        // A broken PEM block.
        (
            "DKIM_KEYS",
            format!(r#"[{{"domain":"example.com","selector":"s1","private_key":"{pem}"}}]"#),
            SEED,
        ),
        // A key that is not Ed25519 material.
        (
            "DKIM_KEYS",
            format!(r#"[{{"domain":"example.com","selector":"s1","private_key":"{HASH}"}}]"#),
            HASH,
        ),
        // Truncated JSON with the digest inside.
        (
            "API_KEYS",
            format!(r#"[{{"id":"a","sha256":"{HASH}","domains":["a.com"]"#),
            HASH,
        ),
        // The digest where the domain list belongs.
        (
            "API_KEYS",
            format!(r#"[{{"id":"a","sha256":"{HASH}","domains":"{HASH}"}}]"#),
            HASH,
        ),
        // A digest one digit short.
        (
            "API_KEYS",
            format!(
                r#"[{{"id":"a","sha256":"{}","domains":["a.com"]}}]"#,
                &HASH[1..]
            ),
            &HASH[1..],
        ),
        // A bare key where a list belongs.
        ("API_KEYS", format!(r#""er_live_{HASH}""#), HASH),
    ];
    for (name, value, secret) in &cases {
        let e = accept_with(&[(name, value)]).unwrap_err();
        assert_eq!(e.setting, *name, "{value}: {e}");
        let shown = e.to_string();
        assert!(
            !shown.contains(secret),
            "{name}: the error quotes the secret: {shown}"
        );
        assert!(!shown.contains(value.as_str()), "{name}: {shown}");
    }
}

#[test]
fn the_dns_resolver_format_is_json_or_wire() {
    assert!(!accept_with(&[]).unwrap().dns_wire_format);
    for (value, wire) in [("json", false), ("", false), (" Wire ", true)] {
        let s = accept_with(&[("DNS_RESOLVER_FORMAT", value)]).unwrap();
        assert_eq!(s.dns_wire_format, wire, "{value}");
    }
    let e = accept_with(&[("DNS_RESOLVER_FORMAT", "dns-message")]).unwrap_err();
    assert_eq!(e.setting, "DNS_RESOLVER_FORMAT");
    assert!(!e.to_string().contains("dns-message"), "{e}");
}

#[test]
fn the_dns_resolver_is_https_or_loopback() {
    let default = accept_with(&[]).unwrap();
    assert_eq!(default.dns_resolver_url, DEFAULT_DNS_RESOLVER_URL);
    for ok in [
        "https://dns.example.net/dns-query",
        "http://127.0.0.1:8053/dns-query",
        "http://localhost:8053/resolve",
    ] {
        let s = accept_with(&[("DNS_RESOLVER_URL", ok)]).unwrap();
        assert_eq!(s.dns_resolver_url, ok);
    }
    for bad in [
        "http://dns.example.net/dns-query",
        "ftp://127.0.0.1/x",
        "https://dns.example.net/dns-query?name=x",
        "dns.example.net",
        "http://10.0.0.1/dns-query",
    ] {
        let e = accept_with(&[("DNS_RESOLVER_URL", bad)]).unwrap_err();
        assert_eq!(e.setting, "DNS_RESOLVER_URL", "{bad}");
        assert!(!e.to_string().contains(bad), "{e}");
    }
}

//! Tests that keep the settings documentation and the parser from drifting:
//! every name the parser reads is a row of the table in docs/configuration.md,
//! and every row is a name the parser reads. Switches that exist only in
//! diagnostics builds are documented in docs/testing.md instead.
//!
//! Must not: keep its own list of settings: the names are those
//! `Settings::from_source` asks for, so a new setting cannot be missed here.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::Settings;

const CONFIGURATION_DOC: &str = include_str!("../../docs/configuration.md");
const TESTING_DOC: &str = include_str!("../../docs/testing.md");

/// Switches that only diagnostics builds read.
const DIAGNOSTICS_ONLY: &[&str] = &[
    "BENCH_ROUTES",
    "FAULT_ACCEPT",
    "FAULT_CONSUMER_CRASH_AFTER",
    "SNS_LOOPBACK_URLS",
    "TEST_RETENTION_SECONDS",
];

/// The names in the first column of the settings table.
fn documented_names() -> BTreeSet<String> {
    let mut in_table = false;
    let mut names = BTreeSet::new();
    for line in CONFIGURATION_DOC.lines() {
        if line.starts_with("| Setting | Kind | Default | Meaning |") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let first = line.trim_start_matches('|').split('|').next().unwrap_or("");
        let name = first.trim().trim_matches('`');
        if !name.is_empty() && !name.starts_with("---") {
            names.insert(name.to_string());
        }
    }
    names
}

/// Every name `Settings::from_source` asks for, given only the required ones.
fn names_read() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let source = |name: &str| -> Option<String> {
        asked.borrow_mut().insert(name.to_string());
        match name {
            "API_KEYS" => Some(format!(
                r#"[{{"id": "k", "sha256": "{}", "domains": ["example.com"]}}]"#,
                "a".repeat(64)
            )),
            "SMTP_UPSTREAMS" => Some("smtp+insecure://127.0.0.1:2525".into()),
            "QUEUE_SECRET" => Some("q".repeat(32)),
            _ => None,
        }
    };
    if let Err(e) = Settings::from_source(&source) {
        panic!("a minimal configuration must parse: {e}");
    }
    asked.into_inner()
}

#[test]
fn every_setting_read_is_documented_and_every_documented_setting_is_read() {
    let documented = documented_names();
    assert!(
        documented.len() >= 10,
        "the settings table in docs/configuration.md was not found"
    );
    let read: BTreeSet<String> = names_read()
        .into_iter()
        .filter(|n| !DIAGNOSTICS_ONLY.contains(&n.as_str()))
        .collect();
    let undocumented: Vec<&String> = read.difference(&documented).collect();
    let unread: Vec<&String> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty(),
        "read by the parser but missing from docs/configuration.md: {undocumented:?}"
    );
    assert!(
        unread.is_empty(),
        "documented in docs/configuration.md but never read by the parser: {unread:?}"
    );
}

#[test]
fn diagnostics_switches_are_documented_with_the_tests_not_the_settings() {
    let documented = documented_names();
    for name in DIAGNOSTICS_ONLY {
        assert!(
            !documented.contains(*name),
            "{name} is a diagnostics switch, not a setting"
        );
        assert!(
            TESTING_DOC.contains(name),
            "{name} must be described in docs/testing.md"
        );
    }
}

//! Judging what a domain has published against the records it was told to
//! publish: one report per record (found, matches, and the problems in
//! plain words), and whether the domain may send (its RSA DKIM record
//! verifies).
//!
//! The rules: a DKIM record must be one `v=DKIM1` record whose key is this
//! key (`k=` and `p=`); the domain has exactly one SPF record, which
//! contains each upstream's mechanism, does not end in `+all`, and makes at
//! most 10 DNS lookups (counted in the record itself: `include`, `a`, `mx`,
//! `ptr`, `exists`, `redirect`; an include's own lookups add to that); a
//! DMARC record exists, once, with a policy; the return path's SPF allows
//! Email Routing and the upstreams. MX records are not asked over the TXT
//! resolver; their report says so.
//! Must not: perform I/O (the edge asks DNS and passes the answers in).

use serde_json::{Value, json};

use crate::message::lint::dns::TxtAnswer;

use super::records::{DnsRecord, Purpose};

/// The most DNS lookups SPF allows (RFC 7208 4.6.4).
pub const MAX_SPF_LOOKUPS: usize = 10;

/// The verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReport {
    pub purpose: Purpose,
    pub record_type: &'static str,
    pub name: String,
    pub selector: Option<String>,
    pub required: bool,
    /// `None`: DNS could not be asked (or the type is not asked).
    pub found: Option<bool>,
    pub matches: Option<bool>,
    /// What is wrong, in plain words; empty when it matches.
    pub problems: Vec<String>,
    /// What is published at the name (the relevant records).
    pub published: Vec<String>,
}

impl RecordReport {
    pub fn to_json(&self) -> Value {
        json!({
            "purpose": self.purpose.as_str(),
            "type": self.record_type,
            "name": self.name,
            "selector": self.selector,
            "required": self.required,
            "found": self.found,
            "matches": self.matches,
            "problems": self.problems,
            "published": self.published,
        })
    }
}

/// The report on every record and what it adds up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub records: Vec<RecordReport>,
    /// Every required record (the RSA DKIM one) matches: the domain sends.
    pub verified: bool,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "verified": self.verified,
            "records": self.records.iter().map(RecordReport::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The names to ask TXT records of, once each, in record order.
pub fn names(records: &[DnsRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records.iter().filter(|r| r.record_type == "TXT") {
        if !out.contains(&r.name) {
            out.push(r.name.clone());
        }
    }
    out
}

/// Judges `records` against the TXT answers (`(name, answer)` as asked).
pub fn judge(records: &[DnsRecord], answers: &[(String, TxtAnswer)]) -> Report {
    let reports: Vec<RecordReport> = records
        .iter()
        .map(|record| {
            let answer = answers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&record.name))
                .map(|(_, a)| a);
            judge_one(record, answer)
        })
        .collect();
    let verified = reports
        .iter()
        .any(|r| r.required && r.purpose == Purpose::Dkim)
        && reports
            .iter()
            .filter(|r| r.required)
            .all(|r| r.matches == Some(true));
    Report {
        records: reports,
        verified,
    }
}

fn report(record: &DnsRecord) -> RecordReport {
    RecordReport {
        purpose: record.purpose,
        record_type: record.record_type,
        name: record.name.clone(),
        selector: record.selector.clone(),
        required: record.required,
        found: None,
        matches: None,
        problems: Vec::new(),
        published: Vec::new(),
    }
}

fn judge_one(record: &DnsRecord, answer: Option<&TxtAnswer>) -> RecordReport {
    let mut out = report(record);
    if record.record_type != "TXT" {
        out.problems.push(match record.purpose {
            Purpose::Links => {
                "not a DNS record: check that links to this host reach the worker".to_string()
            }
            _ => "not checked: only TXT records are asked over DNS-over-HTTPS".to_string(),
        });
        return out;
    }
    let texts = match answer {
        Some(TxtAnswer::Records(texts)) => texts.as_slice(),
        Some(TxtAnswer::None) => &[],
        Some(TxtAnswer::Unavailable) | None => {
            out.problems
                .push("DNS could not be asked; try again later".to_string());
            return out;
        }
    };
    let problems = match record.purpose {
        Purpose::Dkim => dkim(record, texts, &mut out.published),
        Purpose::Spf | Purpose::ReturnPathSpf => spf(record, texts, &mut out.published),
        Purpose::Dmarc => dmarc(texts, &mut out.published),
        Purpose::ReturnPathMx | Purpose::Links => Vec::new(),
    };
    out.found = Some(!out.published.is_empty());
    out.matches = Some(problems.is_empty());
    out.problems = problems;
    out
}

/// `tag=value` pairs of a DKIM or DMARC record, tags lower-cased, values
/// with their whitespace removed.
fn tags(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(t, v)| {
            (
                t.trim().to_ascii_lowercase(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(t, _)| t == name)
        .map(|(_, v)| v.as_str())
}

fn dkim(record: &DnsRecord, texts: &[String], published: &mut Vec<String>) -> Vec<String> {
    let expected = tags(&record.value);
    let keys: Vec<&String> = texts
        .iter()
        .filter(|t| {
            let t = tags(t);
            tag(&t, "v").is_none_or(|v| v.eq_ignore_ascii_case("DKIM1")) && tag(&t, "p").is_some()
        })
        .collect();
    published.extend(keys.iter().map(|t| t.to_string()));
    match keys.as_slice() {
        [] => vec![format!(
            "no DKIM record is published at {}: publish the TXT record as given",
            record.name
        )],
        [one] => {
            let found = tags(one);
            let key_type =
                |t: &[(String, String)]| tag(t, "k").unwrap_or("rsa").to_ascii_lowercase();
            let mut problems = Vec::new();
            if tag(&found, "p") == Some("") {
                problems.push("the published DKIM key is revoked (empty p=)".to_string());
            } else if key_type(&found) != key_type(&expected) {
                problems.push(format!(
                    "DKIM key mismatch: the record is for a {} key, this selector signs with {}",
                    key_type(&found),
                    key_type(&expected)
                ));
            } else if tag(&found, "p") != tag(&expected, "p") {
                problems.push(
                    "DKIM key mismatch: the published key is not this selector's key (an old or mistyped record?)"
                        .to_string(),
                );
            }
            problems
        }
        _ => vec![format!(
            "{} DKIM records are published at {}: keep exactly one",
            keys.len(),
            record.name
        )],
    }
}

fn is_spf(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    lower == "v=spf1" || lower.starts_with("v=spf1 ")
}

/// The DNS lookups a record's own terms make (RFC 7208 4.6.4).
pub fn spf_lookups(text: &str) -> usize {
    text.split_whitespace()
        .skip(1)
        .map(|term| {
            term.trim_start_matches(['+', '-', '~', '?'])
                .to_ascii_lowercase()
        })
        .filter(|term| {
            let name = term.split([':', '/', '=']).next().unwrap_or("");
            matches!(name, "include" | "a" | "mx" | "ptr" | "exists" | "redirect")
        })
        .count()
}

fn spf(record: &DnsRecord, texts: &[String], published: &mut Vec<String>) -> Vec<String> {
    let spfs: Vec<&String> = texts.iter().filter(|t| is_spf(t)).collect();
    published.extend(spfs.iter().map(|t| t.to_string()));
    let [one] = spfs.as_slice() else {
        return if spfs.is_empty() {
            vec![format!("no SPF record is published at {}", record.name)]
        } else {
            vec![format!(
                "{} SPF records are published at {}: receivers then fail SPF for every message; merge them into one",
                spfs.len(),
                record.name
            )]
        };
    };
    let terms: Vec<String> = one
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let mut problems = Vec::new();
    for wanted in record
        .value
        .split_whitespace()
        .skip(1)
        .filter(|t| !t.ends_with("all"))
    {
        let wanted = wanted.to_ascii_lowercase();
        let present = terms
            .iter()
            .any(|t| t.trim_start_matches(['+', '-', '~', '?']) == wanted);
        if !present {
            problems.push(format!(
                "the SPF record does not contain {wanted}: the smarthost is not allowed to send for {}",
                record.name
            ));
        }
    }
    if terms.iter().any(|t| t == "+all" || t == "all") {
        problems.push("the SPF record ends in +all: it lets anyone send as the domain".to_string());
    }
    let lookups = spf_lookups(one);
    if lookups > MAX_SPF_LOOKUPS {
        problems.push(format!(
            "the SPF record makes {lookups} DNS lookups, more than the 10 SPF allows: receivers fail it (flatten or drop includes)"
        ));
    }
    problems
}

fn dmarc(texts: &[String], published: &mut Vec<String>) -> Vec<String> {
    let records: Vec<&String> = texts
        .iter()
        .filter(|t| t.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
        .collect();
    published.extend(records.iter().map(|t| t.to_string()));
    match records.as_slice() {
        [] => vec![
            "DMARC missing: no DMARC record, so receivers apply their own policy; publish the suggestion"
                .to_string(),
        ],
        [one] => {
            let t = tags(one);
            match tag(&t, "p").map(str::to_ascii_lowercase).as_deref() {
                Some("none" | "quarantine" | "reject") => Vec::new(),
                _ => vec!["the DMARC record has no valid policy (p=none, quarantine or reject)".to_string()],
            }
        }
        _ => vec![format!(
            "{} DMARC records are published: receivers ignore them all; keep one",
            records.len()
        )],
    }
}

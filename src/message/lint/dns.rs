//! The dry run's DNS lints: the From domain's published DMARC policy and
//! its BIMI readiness, judged from TXT answers the edge fetched over
//! DNS-over-HTTPS (the JSON form: `?name=&type=TXT`,
//! `application/dns-json`).
//!
//! DMARC is looked up at `_dmarc.<from domain>`, and at the organisational
//! domain's `_dmarc` when the From domain has none (its `sp=` then applies,
//! else its `p=`). BIMI at `default._bimi.<from domain>`. A logo shows only
//! when DMARC is at enforcement: `p=quarantine` or `p=reject`, for all mail
//! (`pct=100`, the default), and not `sp=none` for a subdomain.
//! Owns: the names asked, reading the resolver's answer (JSON here, the
//! RFC 8484 wire format in [`wire`]), and the findings.
//! Must not: perform I/O (the edge asks the resolver).

pub mod wire;

use serde::Deserialize;

use super::{Finding, Rule, Severity, finding, organizational_domain};

/// What the resolver said about one name's TXT records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The name's TXT strings, each record's chunks joined.
    Records(Vec<String>),
    /// The name does not exist, or has no TXT record.
    None,
    /// The resolver could not be asked or did not answer usefully.
    Unavailable,
}

/// The names a dry run of mail from `from_domain` asks about: its
/// `_dmarc`, its organisational domain's `_dmarc` when that differs, and
/// its default BIMI record.
pub fn names(from_domain: &str) -> Vec<String> {
    let domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let org = organizational_domain(&domain);
    let mut out = vec![format!("_dmarc.{domain}")];
    if org != domain {
        out.push(format!("_dmarc.{org}"));
    }
    out.push(format!("default._bimi.{domain}"));
    out
}

#[derive(Deserialize)]
struct DohJson {
    #[serde(rename = "Status")]
    status: u32,
    #[serde(rename = "Answer", default)]
    answer: Vec<DohRecord>,
}

#[derive(Deserialize)]
struct DohRecord {
    #[serde(rename = "type")]
    record_type: u32,
    data: String,
}

/// TXT is type 16.
const TXT: u32 = 16;

/// Reads a DNS-over-HTTPS JSON answer. NOERROR with no TXT record and
/// NXDOMAIN are [`TxtAnswer::None`]; anything else (SERVFAIL, not JSON) is
/// [`TxtAnswer::Unavailable`].
pub fn read_doh_json(body: &[u8]) -> TxtAnswer {
    let Ok(answer) = serde_json::from_slice::<DohJson>(body) else {
        return TxtAnswer::Unavailable;
    };
    match answer.status {
        0 => {
            let records: Vec<String> = answer
                .answer
                .iter()
                .filter(|r| r.record_type == TXT)
                .map(|r| txt_text(&r.data))
                .collect();
            if records.is_empty() {
                TxtAnswer::None
            } else {
                TxtAnswer::Records(records)
            }
        }
        3 => TxtAnswer::None,
        _ => TxtAnswer::Unavailable,
    }
}

/// A TXT record's data as resolvers write it (`"v=DMARC1; " "p=none"`:
/// quoted chunks, `\"` and `\\` escaped) as one string; unquoted data is
/// taken as it is.
fn txt_text(data: &str) -> String {
    let data = data.trim();
    if !data.starts_with('"') {
        return data.to_string();
    }
    let mut out = String::new();
    let mut chars = data.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') => quoted = true,
            (true, '"') => quoted = false,
            (true, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (true, c) => out.push(c),
            (false, _) => {}
        }
    }
    out
}

/// A DMARC record's tags that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dmarc {
    p: String,
    sp: Option<String>,
    pct: u32,
}

fn dmarc_record(text: &str) -> Option<Dmarc> {
    let mut tags = text.split(';').map(str::trim).filter(|t| !t.is_empty());
    let version = tags.next()?;
    if !version.replace(' ', "").eq_ignore_ascii_case("v=DMARC1") {
        return None;
    }
    let mut p = None;
    let mut sp = None;
    let mut pct = 100;
    for tag in tags {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "p" => p = Some(value),
            "sp" => sp = Some(value),
            "pct" => pct = value.parse().unwrap_or(100),
            _ => {}
        }
    }
    Some(Dmarc { p: p?, sp, pct })
}

/// What the DMARC lookups found for the From domain.
enum Policy {
    /// The policy that applies to the From domain, and where it was found.
    Found {
        policy: String,
        pct: u32,
        at: String,
    },
    /// No DMARC record at the domain or its organisational domain.
    Missing,
    /// More than one DMARC record at a name: receivers ignore them all.
    Several(String),
    Unavailable,
}

fn records_at<'a>(answers: &'a [(String, TxtAnswer)], name: &str) -> Option<&'a TxtAnswer> {
    answers.iter().find(|(n, _)| n == name).map(|(_, a)| a)
}

fn policy(from_domain: &str, answers: &[(String, TxtAnswer)]) -> Policy {
    let domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let org = organizational_domain(&domain);
    let mut lookups = vec![(format!("_dmarc.{domain}"), false)];
    if org != domain {
        lookups.push((format!("_dmarc.{org}"), true));
    }
    for (name, inherited) in lookups {
        match records_at(answers, &name) {
            None | Some(TxtAnswer::Unavailable) => return Policy::Unavailable,
            Some(TxtAnswer::None) => continue,
            Some(TxtAnswer::Records(texts)) => {
                let found: Vec<Dmarc> = texts.iter().filter_map(|t| dmarc_record(t)).collect();
                match found.as_slice() {
                    [] => continue,
                    [one] => {
                        let policy = if inherited {
                            one.sp.clone().unwrap_or_else(|| one.p.clone())
                        } else {
                            one.p.clone()
                        };
                        return Policy::Found {
                            policy,
                            pct: one.pct,
                            at: name,
                        };
                    }
                    _ => return Policy::Several(name),
                }
            }
        }
    }
    Policy::Missing
}

/// The DMARC and BIMI findings for mail from `from_domain`, over the
/// answers to [`names`] (name, answer). `marketing`: bulk-sender rules
/// apply, so a missing DMARC record is an error rather than a warning.
pub fn findings(
    from_domain: &str,
    answers: &[(String, TxtAnswer)],
    marketing: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let enforced = match policy(&domain, answers) {
        Policy::Unavailable => {
            out.push(finding(
                Rule::DmarcPolicy,
                Severity::Info,
                Some("from"),
                format!("the DNS resolver could not be asked about _dmarc.{domain}; the DMARC policy and BIMI readiness were not checked"),
            ));
            return out;
        }
        Policy::Missing => {
            out.push(finding(
                Rule::DmarcPolicy,
                if marketing { Severity::Error } else { Severity::Warning },
                Some("from"),
                format!("{domain} publishes no DMARC record (none at _dmarc.{domain} or its organisational domain): Gmail and Yahoo require one of bulk senders, at least p=none"),
            ));
            false
        }
        Policy::Several(name) => {
            out.push(finding(
                Rule::DmarcPolicy,
                Severity::Error,
                Some("from"),
                format!(
                    "{name} has more than one DMARC record, so receivers ignore them all: keep one"
                ),
            ));
            false
        }
        Policy::Found { policy, pct, at } => {
            let enforced = matches!(policy.as_str(), "quarantine" | "reject") && pct == 100;
            let text = if enforced {
                format!("DMARC policy for {domain} is p={policy} (from {at}): at enforcement")
            } else if policy == "none" {
                format!(
                    "DMARC policy for {domain} is p=none (from {at}): monitoring only; receivers act on failures only at quarantine or reject"
                )
            } else {
                format!(
                    "DMARC policy for {domain} is p={policy} at pct={pct} (from {at}): applied to part of the mail only"
                )
            };
            out.push(finding(
                Rule::DmarcPolicy,
                Severity::Info,
                Some("from"),
                text,
            ));
            enforced
        }
    };
    let bimi_name = format!("default._bimi.{domain}");
    let bimi = match records_at(answers, &bimi_name) {
        Some(TxtAnswer::Records(texts)) => texts
            .iter()
            .find(|t| t.trim_start().to_ascii_lowercase().starts_with("v=bimi1"))
            .cloned(),
        _ => None,
    };
    let (severity, text) = match (bimi, enforced) {
        (Some(record), true) => {
            let has_certificate = record
                .split(';')
                .filter_map(|t| t.trim().split_once('='))
                .any(|(k, v)| k.trim().eq_ignore_ascii_case("a") && !v.trim().is_empty());
            if has_certificate {
                (
                    Severity::Info,
                    format!(
                        "BIMI ready: {bimi_name} names a logo and a mark certificate, and DMARC is at enforcement"
                    ),
                )
            } else {
                (
                    Severity::Info,
                    format!(
                        "BIMI record at {bimi_name} has no certificate (a=): Gmail and Apple Mail show a logo only with a VMC or CMC"
                    ),
                )
            }
        }
        (Some(_), false) => (
            Severity::Warning,
            format!(
                "{bimi_name} is published but DMARC for {domain} is not at enforcement (p=quarantine or reject, pct=100): no logo will show"
            ),
        ),
        (None, true) => (
            Severity::Info,
            format!(
                "DMARC is at enforcement, so {domain} is ready for BIMI: publish a record at {bimi_name} to show a logo"
            ),
        ),
        (None, false) => (
            Severity::Info,
            format!(
                "not ready for BIMI: a logo needs DMARC at p=quarantine or p=reject for all mail of {domain}"
            ),
        ),
    };
    out.push(finding(Rule::BimiReadiness, severity, Some("from"), text));
    out
}

#[cfg(test)]
mod tests;

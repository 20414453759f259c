//! The dry run's lint: what a receiver, a filter or a bulk-sender rule will
//! make of a signed message, read from the very bytes that would go out.
//!
//! Each rule looks at the signed MIME (headers, HTML and text parts, the
//! DKIM signatures it carries) and the few facts the bytes do not hold
//! (whether the stream is marketing, whether the envelope needs SMTPUTF8).
//! A rule that finds nothing says nothing, except the link and image host
//! lists, which are always given as `info` when there are any.
//!
//! Organisational domains for DMARC alignment are approximated without the
//! Public Suffix List: the last two labels, or three under a two-letter
//! country code whose second level is a short generic label (`co.uk`,
//! `com.au`). A lint that is wrong there says `warning`, never blocks.
//! The published DMARC policy and BIMI readiness come from DNS: [`dns`]
//! judges the answers the edge fetched.
//! Owns: the rules, their names and severities. Must not: perform I/O, or
//! refuse a message (a dry run reports, a real send is not linted).

use std::collections::BTreeSet;

use mail_parser::{MessageParser, PartType};

use super::links::inventory;

pub mod dns;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Receivers will refuse, clip or fail the message.
    Error,
    /// Likely to hurt delivery or display.
    Warning,
    /// Worth knowing; nothing wrong by itself.
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// The lint rules, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    MessageSize,
    HtmlClipped,
    LineTooLong,
    MissingTextPart,
    ImageWithoutAlt,
    LinkHosts,
    ImageHosts,
    DmarcAlignment,
    NoRsaSignature,
    MarketingWithoutUnsubscribe,
    BulkSenderHeaders,
    SharedHostLink,
    Smtputf8Unknown,
    /// The From domain's published DMARC policy (DNS; see [`dns`]).
    DmarcPolicy,
    /// Whether a BIMI logo can show (DNS; see [`dns`]).
    BimiReadiness,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MessageSize => "message_size",
            Rule::HtmlClipped => "html_clipped",
            Rule::LineTooLong => "line_too_long",
            Rule::MissingTextPart => "missing_text_part",
            Rule::ImageWithoutAlt => "image_without_alt",
            Rule::LinkHosts => "link_hosts",
            Rule::ImageHosts => "image_hosts",
            Rule::DmarcAlignment => "dmarc_alignment",
            Rule::NoRsaSignature => "no_rsa_signature",
            Rule::MarketingWithoutUnsubscribe => "marketing_without_unsubscribe",
            Rule::BulkSenderHeaders => "bulk_sender_headers",
            Rule::SharedHostLink => "shared_host_link",
            Rule::Smtputf8Unknown => "smtputf8_unknown",
            Rule::DmarcPolicy => "dmarc_policy",
            Rule::BimiReadiness => "bimi_readiness",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    /// The request field it is about, when there is one (`html`, `from`).
    pub field: Option<&'static str>,
}

/// What the lint reads besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct LintContext {
    /// The message is on a marketing-kind stream (bulk-sender rules apply).
    pub marketing: bool,
    /// The envelope or headers need SMTPUTF8 (non-ASCII addresses).
    pub needs_smtputf8: bool,
}

/// Gmail clips an HTML body over 102 KB ("[Message clipped]").
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;
/// RFC 5322 2.1.1: a line is at most 998 octets before its CRLF.
pub const MAX_LINE_OCTETS: usize = 998;
/// Postfix's default `message_size_limit`, the smallest limit commonly met.
pub const COMMON_SIZE_LIMIT: usize = 10_240_000;
/// Gmail's limit on a whole message (25 MB).
pub const GMAIL_SIZE_LIMIT: usize = 25 * 1024 * 1024;

/// Hosts shared by every worker on the platform: links there are flagged
/// by phishing filters and carry no reputation of the sender's own.
pub const SHARED_HOST_SUFFIXES: [&str; 2] = [".workers.dev", ".pages.dev"];

/// Lints one signed message.
pub fn lint(mime: &[u8], context: LintContext) -> Vec<Finding> {
    let mut findings = Vec::new();
    let headers = Headers::read(mime);
    size(mime, &mut findings);
    long_lines(mime, &mut findings);
    let (html, has_text) = bodies(mime);
    content(html.as_deref(), has_text, &mut findings);
    alignment(&headers, &mut findings);
    unsubscribe(&headers, context.marketing, &mut findings);
    shared_hosts(&headers, html.as_deref(), &mut findings);
    if context.needs_smtputf8 {
        findings.push(Finding {
            rule: Rule::Smtputf8Unknown,
            severity: Severity::Info,
            message: "the message has non-ASCII addresses and needs an upstream that offers SMTPUTF8; a dry run does not contact the upstream, so whether it does is not checked".into(),
            field: None,
        });
    }
    findings
}

fn finding(
    rule: Rule,
    severity: Severity,
    field: Option<&'static str>,
    message: String,
) -> Finding {
    Finding {
        rule,
        severity,
        message,
        field,
    }
}

fn size(mime: &[u8], out: &mut Vec<Finding>) {
    let len = mime.len();
    if len > GMAIL_SIZE_LIMIT {
        out.push(finding(
            Rule::MessageSize,
            Severity::Error,
            None,
            format!(
                "the message is {len} bytes, over Gmail's 25 MB limit; most receivers refuse it"
            ),
        ));
    } else if len > COMMON_SIZE_LIMIT {
        out.push(finding(
            Rule::MessageSize,
            Severity::Warning,
            None,
            format!("the message is {len} bytes, over the 10,240,000 bytes many servers accept (Postfix's default)"),
        ));
    }
}

fn long_lines(mime: &[u8], out: &mut Vec<Finding>) {
    let mut count = 0;
    let mut longest = 0;
    for line in mime.split(|b| *b == b'\n') {
        let len = line.strip_suffix(b"\r").unwrap_or(line).len();
        if len > MAX_LINE_OCTETS {
            count += 1;
            longest = longest.max(len);
        }
    }
    if count > 0 {
        out.push(finding(
            Rule::LineTooLong,
            Severity::Error,
            None,
            format!("{count} line(s) over 998 octets (the longest is {longest}); servers may break or refuse them (RFC 5322 2.1.1)"),
        ));
    }
}

/// The first HTML part's text, and whether there is a plain-text part.
fn bodies(mime: &[u8]) -> (Option<String>, bool) {
    let Some(parsed) = MessageParser::default().parse(mime) else {
        return (None, false);
    };
    let mut html = None;
    let mut has_text = false;
    for part in &parsed.parts {
        match &part.body {
            PartType::Html(h) if html.is_none() => html = Some(h.to_string()),
            PartType::Text(_) => has_text = true,
            _ => {}
        }
    }
    (html, has_text)
}

fn content(html: Option<&str>, has_text: bool, out: &mut Vec<Finding>) {
    let Some(html) = html else {
        return;
    };
    if html.len() > GMAIL_CLIP_BYTES {
        out.push(finding(
            Rule::HtmlClipped,
            Severity::Warning,
            Some("html"),
            format!("the HTML is {} bytes; Gmail clips HTML over 102 KB and hides the rest (often the unsubscribe link) behind \"[Message clipped]\"", html.len()),
        ));
    }
    if !has_text {
        out.push(finding(
            Rule::MissingTextPart,
            Severity::Warning,
            Some("text"),
            "the message has HTML but no plain-text part; spam filters score HTML-only mail higher, and text-only readers see nothing".into(),
        ));
    }
    let found = inventory(html);
    let without_alt = found.images.iter().filter(|i| !i.has_alt).count();
    if without_alt > 0 {
        out.push(finding(
            Rule::ImageWithoutAlt,
            Severity::Warning,
            Some("html"),
            format!("{without_alt} image(s) without an alt attribute; clients that block images show nothing in their place (use alt=\"\" for decorative images)"),
        ));
    }
    let link_hosts = hosts(found.links.iter().map(String::as_str));
    if !link_hosts.is_empty() {
        out.push(finding(
            Rule::LinkHosts,
            Severity::Info,
            Some("html"),
            format!(
                "links point at: {}",
                link_hosts.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let image_hosts = hosts(found.images.iter().filter_map(|i| i.src.as_deref()));
    if !image_hosts.is_empty() {
        out.push(finding(
            Rule::ImageHosts,
            Severity::Info,
            Some("html"),
            format!(
                "images load from: {}",
                image_hosts.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}

/// The lower-case host of an http(s) URL.
pub fn url_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

fn hosts<'a>(urls: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    urls.filter_map(url_host).collect()
}

/// The organisational domain of `domain` (see the module's note).
pub fn organizational_domain(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return domain;
    }
    let tld = labels[n - 1];
    let second = labels[n - 2];
    let take = if tld.len() == 2
        && matches!(
            second,
            "co" | "com" | "net" | "org" | "ac" | "gov" | "edu" | "ne" | "or"
        ) {
        3
    } else {
        2
    };
    labels[n - take..].join(".")
}

/// How a DKIM `d=` domain aligns with the From domain under DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Alignment {
    None,
    Relaxed,
    Strict,
}

pub fn alignment_of(from_domain: &str, d: &str) -> Alignment {
    let from = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    if from == d {
        Alignment::Strict
    } else if organizational_domain(&from) == organizational_domain(&d) {
        Alignment::Relaxed
    } else {
        Alignment::None
    }
}

fn alignment(headers: &Headers, out: &mut Vec<Finding>) {
    let from_domain = headers
        .get("from")
        .and_then(|v| {
            let addr = v.rsplit_once('<').map_or(v, |(_, a)| a);
            let addr = addr.trim().trim_end_matches('>');
            addr.rsplit_once('@').map(|(_, d)| d.trim().to_string())
        })
        .unwrap_or_default();
    let signatures: Vec<(String, String)> = headers
        .all("dkim-signature")
        .map(|v| {
            (
                tag(v, "d").unwrap_or_default(),
                tag(v, "a").unwrap_or_default(),
            )
        })
        .collect();
    if signatures.is_empty() {
        out.push(finding(
            Rule::DmarcAlignment,
            Severity::Error,
            Some("from"),
            format!("the message carries no DKIM signature: DMARC for {from_domain} can pass only on an aligned SPF, and Gmail and Yahoo require DKIM of bulk senders"),
        ));
        return;
    }
    let best = signatures
        .iter()
        .map(|(d, _)| alignment_of(&from_domain, d))
        .max()
        .unwrap_or(Alignment::None);
    let domains: BTreeSet<&str> = signatures.iter().map(|(d, _)| d.as_str()).collect();
    let domains = domains.into_iter().collect::<Vec<_>>().join(", ");
    match best {
        Alignment::Strict => {}
        Alignment::Relaxed => out.push(finding(
            Rule::DmarcAlignment,
            Severity::Info,
            Some("from"),
            format!("DKIM d={domains} aligns with From {from_domain} under relaxed alignment only; a DMARC policy with adkim=s fails it"),
        )),
        Alignment::None => out.push(finding(
            Rule::DmarcAlignment,
            Severity::Error,
            Some("from"),
            format!("no DKIM signature aligns with From {from_domain} (d={domains}): DMARC fails on DKIM, relaxed or strict"),
        )),
    }
    if !signatures.iter().any(|(_, a)| a.starts_with("rsa-")) {
        out.push(finding(
            Rule::NoRsaSignature,
            Severity::Warning,
            None,
            "no RSA signature: Gmail and Microsoft do not verify Ed25519 DKIM signatures, so to them the message is unsigned; sign with an RSA key too".into(),
        ));
    }
}

/// The value of tag `name` in a DKIM-Signature's tag list.
fn tag(value: &str, name: &str) -> Option<String> {
    value.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.split_whitespace().collect::<String>())
    })
}

/// The https URIs of a List-Unsubscribe value (`<https://...>, <mailto:...>`).
fn unsubscribe_uris(value: &str) -> Vec<String> {
    value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>').map(|(uri, _)| uri.trim().to_string()))
        .collect()
}

fn unsubscribe(headers: &Headers, marketing: bool, out: &mut Vec<Finding>) {
    if !marketing {
        return;
    }
    let Some(list) = headers.get("list-unsubscribe") else {
        out.push(finding(
            Rule::MarketingWithoutUnsubscribe,
            Severity::Error,
            Some("stream"),
            "marketing mail without List-Unsubscribe: Gmail and Yahoo require a one-click unsubscribe of bulk senders (RFC 8058)".into(),
        ));
        return;
    };
    let has_https = unsubscribe_uris(list)
        .iter()
        .any(|u| u.to_ascii_lowercase().starts_with("https://"));
    let one_click = headers
        .get("list-unsubscribe-post")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("List-Unsubscribe=One-Click"));
    if !has_https || !one_click {
        out.push(finding(
            Rule::BulkSenderHeaders,
            Severity::Error,
            Some("headers"),
            "bulk-sender rules (Gmail, Yahoo) need List-Unsubscribe with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)".into(),
        ));
    }
}

fn is_shared_host(host: &str) -> bool {
    SHARED_HOST_SUFFIXES.iter().any(|s| host.ends_with(s))
}

fn shared_hosts(headers: &Headers, html: Option<&str>, out: &mut Vec<Finding>) {
    let unsubscribe: BTreeSet<String> = headers
        .get("list-unsubscribe")
        .map(unsubscribe_uris)
        .unwrap_or_default()
        .iter()
        .filter_map(|u| url_host(u))
        .filter(|h| is_shared_host(h))
        .collect();
    let links: BTreeSet<String> = html
        .map(|h| inventory(h).links)
        .unwrap_or_default()
        .iter()
        .filter_map(|u| url_host(u))
        .filter(|h| is_shared_host(h))
        .collect();
    if !unsubscribe.is_empty() {
        out.push(finding(
            Rule::SharedHostLink,
            Severity::Warning,
            Some("headers"),
            format!("the unsubscribe link is on a shared host ({}); phishing filters flag such hosts: set UNSUBSCRIBE_BASE_URL to the sender's own domain", unsubscribe.into_iter().collect::<Vec<_>>().join(", ")),
        ));
    }
    if !links.is_empty() {
        out.push(finding(
            Rule::SharedHostLink,
            Severity::Warning,
            Some("html"),
            format!("links (tracking or otherwise) on a shared host ({}); phishing filters flag such hosts: use the sender's own domain", links.into_iter().collect::<Vec<_>>().join(", ")),
        ));
    }
}

/// The header block, unfolded: `(lower-case name, value)` in order.
struct Headers(Vec<(String, String)>);

impl Headers {
    fn read(mime: &[u8]) -> Headers {
        let text = String::from_utf8_lossy(mime);
        let block = text
            .split_once("\r\n\r\n")
            .or_else(|| text.split_once("\n\n"))
            .map_or(text.as_ref(), |(h, _)| h);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in block.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        Headers(fields)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests;

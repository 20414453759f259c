//! The DNS records a sending domain publishes, exactly as they are to be
//! written: DKIM TXT per selector, the SPF record with the smarthosts'
//! mechanisms (edgerelay does not own the sending IPs: the operator names
//! each upstream's mechanism in `UPSTREAM_SPF`), a DMARC suggestion, the
//! return-path domain's MX and SPF when the domain has one
//! (`RETURN_PATH_DOMAINS`, routed by Cloudflare Email Routing), and the host
//! that unsubscribe and tracking links point to.
//!
//! Must not: perform I/O or judge what is published (`verify` does).

use serde_json::{Value, json};

use crate::message::{DkimAlgorithm, DkimKey};

/// Cloudflare Email Routing's inbound hosts and priorities, the MX of a
/// return-path domain it routes to the worker.
pub const EMAIL_ROUTING_MX: [(u16, &str); 3] = [
    (13, "route1.mx.cloudflare.net"),
    (86, "route2.mx.cloudflare.net"),
    (24, "route3.mx.cloudflare.net"),
];
/// Email Routing's SPF mechanism (its forwarding servers).
pub const EMAIL_ROUTING_SPF: &str = "include:_spf.mx.cloudflare.net";

/// What a record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Dkim,
    Spf,
    Dmarc,
    ReturnPathMx,
    ReturnPathSpf,
    /// The links' host: not a record to type, a route to the worker.
    Links,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Dkim => "dkim",
            Purpose::Spf => "spf",
            Purpose::Dmarc => "dmarc",
            Purpose::ReturnPathMx => "return_path_mx",
            Purpose::ReturnPathSpf => "return_path_spf",
            Purpose::Links => "links",
        }
    }
}

/// What a key of a generation is for now (see `rotation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Signs every message.
    Signing,
    /// Made by a rotation: publish its record; it signs once it verifies.
    Next,
    /// Rotated out: published but unused until the grace period ends.
    Retiring,
    /// Its grace period is over: delete it; its record can be removed.
    Retired,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Signing => "signing",
            KeyRole::Next => "next",
            KeyRole::Retiring => "retiring",
            KeyRole::Retired => "retired",
        }
    }
}

/// One key of a domain as it is shown: never its private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The TXT record's value, `v=DKIM1; k=...; p=...`.
    pub public_record: String,
}

impl KeyView {
    /// The view of a configured key (its public record derived from it).
    pub fn of(key: &DkimKey) -> Option<KeyView> {
        Some(KeyView {
            selector: key.identity().selector.as_str().to_string(),
            algorithm: key.identity().algorithm,
            public_record: key.dns_txt_record().ok()?,
        })
    }
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub purpose: Purpose,
    /// `TXT`, `MX`, or `ROUTE` for the links' host.
    pub record_type: &'static str,
    /// The fully qualified name, without the final dot.
    pub name: String,
    /// The value as it is to be written (an MX value is `priority host`).
    pub value: String,
    /// Whether mail is refused until it verifies (the RSA DKIM record).
    pub required: bool,
    /// The DKIM selector, for a DKIM record.
    pub selector: Option<String>,
    /// What to know about it, in plain words.
    pub note: String,
    /// For a DKIM record of a domain added through the API: what its key
    /// is for now (see `rotation`).
    pub key_role: Option<KeyRole>,
}

impl DnsRecord {
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "purpose": self.purpose.as_str(),
            "type": self.record_type,
            "name": self.name,
            "value": self.value,
            "required": self.required,
            "selector": self.selector,
            "note": self.note,
        });
        if let Some(role) = self.key_role {
            out["key_role"] = json!(role.as_str());
        }
        out
    }
}

/// What the records of one domain are made from.
#[derive(Debug, Clone, Default)]
pub struct RecordInputs<'a> {
    pub domain: &'a str,
    pub keys: &'a [KeyView],
    /// The SPF mechanisms of the upstreams, in upstream order (`UPSTREAM_SPF`).
    pub spf_mechanisms: &'a [String],
    /// The domain's return-path domain (`RETURN_PATH_DOMAINS`).
    pub return_path: Option<&'a str>,
    /// The host of unsubscribe and tracking links.
    pub links_host: Option<&'a str>,
}

/// `v=spf1 <mechanisms> ~all`.
pub fn spf_value(mechanisms: &[&str]) -> String {
    let mut value = String::from("v=spf1");
    for m in mechanisms {
        value.push(' ');
        value.push_str(m);
    }
    value.push_str(" ~all");
    value
}

/// Every record of the domain, DKIM first (the RSA one is required).
pub fn records(inputs: &RecordInputs<'_>) -> Vec<DnsRecord> {
    let domain = inputs.domain;
    let mut out = Vec::new();
    for key in inputs.keys {
        let rsa = key.public_record.contains("k=rsa");
        out.push(DnsRecord {
            purpose: Purpose::Dkim,
            record_type: "TXT",
            name: format!("{}._domainkey.{domain}", key.selector),
            value: key.public_record.clone(),
            required: rsa,
            selector: Some(key.selector.clone()),
            key_role: None,
            note: if rsa {
                "the RSA key every receiver verifies; mail from the domain is refused until this record verifies".to_string()
            } else {
                "the Ed25519 signature beside the RSA one, for receivers that verify it".to_string()
            },
        });
    }
    let mechanisms: Vec<&str> = inputs.spf_mechanisms.iter().map(String::as_str).collect();
    let spf_note = if mechanisms.is_empty() {
        "UPSTREAM_SPF names no mechanism for the configured upstreams: add the include your smarthost documents"
    } else {
        "merge these mechanisms into the domain's one SPF record if it has one: two SPF records make SPF fail"
    };
    out.push(DnsRecord {
        purpose: Purpose::Spf,
        record_type: "TXT",
        name: domain.to_string(),
        value: spf_value(&mechanisms),
        required: false,
        selector: None,
        key_role: None,
        note: spf_note.to_string(),
    });
    out.push(DnsRecord {
        purpose: Purpose::Dmarc,
        record_type: "TXT",
        name: format!("_dmarc.{domain}"),
        value: "v=DMARC1; p=none; adkim=r; aspf=r".to_string(),
        required: false,
        selector: None,
        key_role: None,
        note: "a start: watch the reports, then move to p=quarantine and p=reject; keep your own record if you have one".to_string(),
    });
    if let Some(rp) = inputs.return_path {
        for (priority, host) in EMAIL_ROUTING_MX {
            out.push(DnsRecord {
                purpose: Purpose::ReturnPathMx,
                record_type: "MX",
                name: rp.to_string(),
                value: format!("{priority} {host}"),
                required: false,
                selector: None,
                key_role: None,
                note: "routes bounces and complaints to the worker (Email Routing adds it when the subdomain is enabled)".to_string(),
            });
        }
        let mut rp_mechanisms = vec![EMAIL_ROUTING_SPF];
        rp_mechanisms.extend(mechanisms.iter().copied());
        out.push(DnsRecord {
            purpose: Purpose::ReturnPathSpf,
            record_type: "TXT",
            name: rp.to_string(),
            value: spf_value(&rp_mechanisms),
            required: false,
            selector: None,
            key_role: None,
            note: "the return path is the envelope sender: its SPF must allow the smarthosts"
                .to_string(),
        });
    }
    if let Some(host) = inputs.links_host {
        out.push(DnsRecord {
            purpose: Purpose::Links,
            record_type: "ROUTE",
            name: host.to_string(),
            value: "the edgerelay worker".to_string(),
            required: false,
            selector: None,
            key_role: None,
            note:
                "unsubscribe and tracking links point here: add it as a custom domain of the worker"
                    .to_string(),
        });
    }
    out
}

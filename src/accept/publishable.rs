//! Publishable keys: what a browser may send, and nothing more.
//!
//! A publishable key is public (it sits in a page's source), so it grants
//! only what its form configuration spells out: a fixed From, fixed
//! recipients (or a recipient within listed domains), a subject and text
//! built from a template whose named fields the page fills in, and small
//! size limits. The visitor's address only ever becomes Reply-To, never From.
//! A page cannot add headers, attachments, HTML or recipients.
//!
//! Owns: the `PUBLISHABLE_KEYS` format, origin matching, and turning a form
//! submission into an ordinary send request for the usual pipeline.
//! Must not: perform I/O (rate limits, Turnstile and delivery are the edge's).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::json_problem;
use crate::message::{EmailAddress, Mailbox};

use super::body::BodyLimit;
use super::error::{ApiError, FieldProblem};
use super::keys::{TENANT_RULE, valid_tenant};

fn default_max_length() -> usize {
    1000
}

fn default_honeypot() -> String {
    "_gotcha".to_string()
}

fn default_max_bytes() -> usize {
    16 * 1024
}

/// How a field's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    #[default]
    Text,
    /// Several lines of text (only usable in the body template).
    Multiline,
    /// An email address. The form's `reply_to_field` must be of this kind.
    Email,
}

/// One named field the page fills in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    #[serde(default)]
    pub kind: FieldKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default = "default_max_length")]
    pub max_length: usize,
}

/// One publishable key and the form it may submit, as written in `PUBLISHABLE_KEYS`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormConfig {
    /// A name for the form, recorded with each message it sends.
    pub id: String,
    /// The key itself (`pk_...`). Public by design.
    pub key: String,
    /// The tenant its messages belong to (default `form:<id>`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Exact origins allowed to use the key, e.g. `https://www.example.com`.
    pub origins: Vec<String>,
    /// The fixed From.
    pub from: String,
    /// Fixed recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Or: the page picks one recipient within these domains ("email me this").
    #[serde(default)]
    pub to_domains: Vec<String>,
    /// Subject template, e.g. `Contact form: {{name}}`.
    pub subject: String,
    /// Body template (plain text).
    pub text: String,
    /// The fields the page may fill in.
    pub fields: BTreeMap<String, FieldSpec>,
    /// The field whose value becomes Reply-To.
    #[serde(default)]
    pub reply_to_field: Option<String>,
    /// A field real visitors never see; a value in it marks a bot.
    #[serde(default = "default_honeypot")]
    pub honeypot: String,
    /// Require a Turnstile token verified server-side.
    #[serde(default)]
    pub turnstile: bool,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

/// The parsed `PUBLISHABLE_KEYS`, ready for lookup.
#[derive(Debug, Clone, Default)]
pub struct PublishableKeys {
    forms: Vec<(FormConfig, [u8; 32])>,
}

/// What a form submission comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum FormOutcome {
    /// The honeypot was filled in: answer as if accepted, send nothing.
    Discard,
    /// An ordinary send request (JSON), built only from the form's configuration.
    Send {
        request: Value,
        turnstile_token: Option<String>,
    },
}

/// The JSON a page posts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    #[serde(default)]
    fields: BTreeMap<String, Value>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    turnstile_token: Option<String>,
}

fn problem(field: impl Into<String>, rule: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.into(),
        rule: rule.to_string(),
        message: message.into(),
    }
}

/// Checks an origin string: `scheme://host[:port]`, nothing else.
fn valid_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '*', '?', '#', ' ', '@'])
        && rest.is_ascii()
}

fn template_names(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                names.push(after[..end].trim());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    names
}

fn render(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                out.push_str(values.get(name).map(String::as_str).unwrap_or(""));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl FormConfig {
    /// The tenant its messages belong to: its `tenant`, or `form:<id>`.
    pub fn tenant(&self) -> String {
        self.tenant
            .clone()
            .unwrap_or_else(|| format!("form:{}", self.id))
    }

    /// Checks the configuration; the message names the form and the problem.
    fn check(&self) -> Result<(), String> {
        let id = &self.id;
        if self.tenant.as_deref().is_some_and(|t| !valid_tenant(t)) {
            return Err(format!("form `{id}`: {TENANT_RULE}"));
        }
        if !self.key.starts_with("pk_") || self.key.len() < 16 {
            return Err(format!(
                "form `{id}`: key must start with pk_ and be at least 16 characters"
            ));
        }
        if self.origins.is_empty() {
            return Err(format!("form `{id}`: lists no origins"));
        }
        if let Some(bad) = self.origins.iter().find(|o| !valid_origin(o)) {
            return Err(format!(
                "form `{id}`: origin `{bad}` must be scheme://host[:port] (no wildcard, path or trailing slash)"
            ));
        }
        Mailbox::parse(&self.from).map_err(|e| format!("form `{id}`: from: {e}"))?;
        for to in &self.to {
            EmailAddress::parse(to).map_err(|e| format!("form `{id}`: to `{to}`: {e}"))?;
        }
        if self.to.is_empty() == self.to_domains.is_empty() {
            return Err(format!(
                "form `{id}`: set exactly one of `to` and `to_domains`"
            ));
        }
        for name in template_names(&self.subject) {
            match self.fields.get(name) {
                None => {
                    return Err(format!(
                        "form `{id}`: subject uses undeclared field `{name}`"
                    ));
                }
                Some(spec) if spec.kind == FieldKind::Multiline => {
                    return Err(format!(
                        "form `{id}`: subject cannot use multiline field `{name}`"
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(name) = template_names(&self.text)
            .into_iter()
            .find(|n| !self.fields.contains_key(*n))
        {
            return Err(format!("form `{id}`: text uses undeclared field `{name}`"));
        }
        if let Some(field) = &self.reply_to_field
            && self.fields.get(field).map(|s| s.kind) != Some(FieldKind::Email)
        {
            return Err(format!(
                "form `{id}`: reply_to_field `{field}` must be a declared email field"
            ));
        }
        if self.fields.contains_key(&self.honeypot) {
            return Err(format!(
                "form `{id}`: the honeypot `{}` must not be a declared field",
                self.honeypot
            ));
        }
        Ok(())
    }

    /// The rate-limit keys of a submission from `client_ip`: one per form,
    /// one per form and client. The edge checks the client's key first, so
    /// one client over its limit never uses up the form's budget for others.
    /// An IPv6 client is counted by its /64, the block one subscriber
    /// usually holds (counting single addresses would let one host rotate
    /// through 2^64 of them). Requests without a readable client address
    /// share one bucket.
    pub fn rate_limit_keys(&self, client_ip: Option<&str>) -> (String, String) {
        let client = match client_ip.map(str::trim).map(str::parse::<IpAddr>) {
            Some(Ok(IpAddr::V4(v4))) => v4.to_string(),
            Some(Ok(IpAddr::V6(v6))) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            _ => "unknown".to_string(),
        };
        (
            format!("form:{}", self.id),
            format!("form:{}:ip:{client}", self.id),
        )
    }

    /// Whether a page at `origin` may use this key.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }

    /// The sender domain of the fixed From.
    pub fn from_domain(&self) -> String {
        Mailbox::parse(&self.from)
            .map(|m| m.address.domain().as_str().to_string())
            .unwrap_or_default()
    }

    /// The limit on a submission's body (`max_bytes`).
    pub fn body_limit(&self) -> BodyLimit {
        BodyLimit {
            max_bytes: self.max_bytes,
            source: "the form's max_bytes",
        }
    }

    /// Turns a page's submission into a send request, or says what is wrong.
    pub fn submission(&self, body: &[u8]) -> Result<FormOutcome, ApiError> {
        self.body_limit().admits(body.len())?;
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::malformed(format!("malformed JSON: {e}")))?;
        let submission: Submission = serde_json::from_value(value)
            .map_err(|e| ApiError::invalid(vec![problem("", "invalid_form", e.to_string())]))?;

        // A bot filled in the field no visitor sees.
        if let Some(v) = submission.fields.get(&self.honeypot)
            && (v.as_str().is_some_and(|s| !s.trim().is_empty()) || !(v.is_null() || v.is_string()))
        {
            return Ok(FormOutcome::Discard);
        }

        let mut problems = Vec::new();
        let mut values = BTreeMap::new();
        for (name, value) in &submission.fields {
            if name == &self.honeypot {
                continue;
            }
            let path = format!("fields.{name}");
            let Some(spec) = self.fields.get(name) else {
                problems.push(problem(
                    path,
                    "unknown_field",
                    "this form has no such field",
                ));
                continue;
            };
            let Some(text) = value.as_str() else {
                problems.push(problem(path, "invalid_type", "must be a string"));
                continue;
            };
            let text = text.trim();
            if text.chars().count() > spec.max_length {
                problems.push(problem(
                    path,
                    "too_long",
                    format!("at most {} characters", spec.max_length),
                ));
                continue;
            }
            if text.contains('\0') {
                problems.push(problem(path, "forbidden_character", "must not contain NUL"));
                continue;
            }
            if spec.kind != FieldKind::Multiline && text.contains(['\r', '\n']) {
                problems.push(problem(path, "header_injection", "must be a single line"));
                continue;
            }
            if spec.kind == FieldKind::Email
                && !text.is_empty()
                && let Err(e) = EmailAddress::parse(text)
            {
                problems.push(problem(path, "invalid_address", e.to_string()));
                continue;
            }
            values.insert(name.clone(), text.to_string());
        }
        for (name, spec) in &self.fields {
            if spec.required && values.get(name).is_none_or(|v| v.is_empty()) {
                problems.push(problem(format!("fields.{name}"), "required", "is required"));
            }
        }

        let to: Vec<String> = if self.to_domains.is_empty() {
            if submission.to.is_some() {
                problems.push(problem(
                    "to",
                    "not_allowed",
                    "this form's recipients are fixed",
                ));
            }
            self.to.clone()
        } else {
            match submission.to.as_deref().map(EmailAddress::parse) {
                None => {
                    problems.push(problem("to", "required", "choose a recipient"));
                    Vec::new()
                }
                Some(Err(e)) => {
                    problems.push(problem("to", "invalid_address", e.to_string()));
                    Vec::new()
                }
                Some(Ok(addr)) => {
                    let domain = addr.domain().as_str().to_string();
                    if self
                        .to_domains
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(&domain))
                    {
                        vec![addr.to_string()]
                    } else {
                        problems.push(problem(
                            "to",
                            "recipient_not_allowed",
                            format!("recipients must be in: {}", self.to_domains.join(", ")),
                        ));
                        Vec::new()
                    }
                }
            }
        };
        if self.turnstile
            && submission
                .turnstile_token
                .as_deref()
                .is_none_or(str::is_empty)
        {
            problems.push(problem(
                "turnstile_token",
                "required",
                "complete the challenge",
            ));
        }
        if !problems.is_empty() {
            return Err(ApiError::invalid(problems));
        }

        let mut request = json!({
            "from": self.from,
            "to": to,
            "subject": render(&self.subject, &values),
            "text": render(&self.text, &values),
            "tags": [{"name": "form", "value": self.id}],
        });
        if let Some(reply) = self
            .reply_to_field
            .as_ref()
            .and_then(|f| values.get(f))
            .filter(|v| !v.is_empty())
        {
            request["reply_to"] = json!(reply);
        }
        Ok(FormOutcome::Send {
            request,
            turnstile_token: submission.turnstile_token,
        })
    }
}

impl PublishableKeys {
    /// Parses and checks `PUBLISHABLE_KEYS` (a JSON list of form configurations).
    pub fn parse(json_text: &str) -> Result<Self, String> {
        let forms: Vec<FormConfig> = serde_json::from_str(json_text)
            .map_err(|e| json_problem(&e, "a JSON list of form configurations"))?;
        let mut out: Vec<(FormConfig, [u8; 32])> = Vec::with_capacity(forms.len());
        for form in forms {
            form.check()?;
            if out.iter().any(|(f, _)| f.id == form.id) {
                return Err(format!(
                    "form `{}` is listed twice (ids must be unique)",
                    form.id
                ));
            }
            if out.iter().any(|(f, _)| f.key == form.key) {
                return Err(format!(
                    "form `{}` reuses the publishable key of another form",
                    form.id
                ));
            }
            let digest: [u8; 32] = Sha256::digest(form.key.as_bytes()).into();
            out.push((form, digest));
        }
        Ok(PublishableKeys { forms: out })
    }

    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// The configured forms' ids.
    pub fn form_ids(&self) -> impl Iterator<Item = &str> {
        self.forms.iter().map(|(f, _)| f.id.as_str())
    }

    /// The form for a presented key (`Bearer pk_...`), compared in constant time.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<&FormConfig, ApiError> {
        let token = authorization
            .and_then(|h| h.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_credentials",
                    "send `Authorization: Bearer <publishable key>`",
                )
            })?;
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (form, digest) in &self.forms {
            if bool::from(digest.ct_eq(&presented)) && found.is_none() {
                found = Some(form);
            }
        }
        found.ok_or_else(|| {
            ApiError::unauthorized("invalid_api_key", "the publishable key is not valid")
        })
    }

    /// Whether any form allows this origin (for preflights, which carry no key).
    pub fn any_allows_origin(&self, origin: &str) -> bool {
        self.forms.iter().any(|(f, _)| f.allows_origin(origin))
    }
}

#[cfg(test)]
mod tests;

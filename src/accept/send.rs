//! `POST /v1/messages` without the HTTP: body bytes and a caller in, a signed
//! delivery job out (or the error to answer).
//!
//! Signing is split in two so the edge can sign RSA with the runtime's
//! WebCrypto (async) while tests and native builds sign in Rust:
//! [`prepare`] does everything up to the bytes to sign, [`finish`] takes the
//! signatures. [`sign_natively`] joins the two with the core's own signers.
//!
//! [`prepare`] is where a sender is held to its domains (403
//! `domain_not_allowed`) and a domain with no DKIM key, unless it is listed in
//! `UNSIGNED_DOMAINS`, is refused (403 `domain_not_configured`), and so is one
//! whose keys include no RSA key of 2048 bits or more (403
//! `domain_needs_rsa_key`: Ed25519 is only ever a second signature). Every way in
//! (API, batch items, forms, queue producers) goes through [`prepare`] with its
//! own scoped identity, so the same checks apply everywhere.
//!
//! It also settles the message's stream (`events::unsubscribe::stream`).
//! Mail with a one-click unsubscribe goes out as one copy per recipient,
//! each with its own link (a token naming that recipient), its own MIME and
//! its own signatures: the message keeps its id as the parent, and the copies
//! are `<id>-1`, `<id>-2`, ... in recipient order ([`copy_id`]). A message
//! with one recipient, and all other mail however many recipients it has,
//! is one copy under the message's own id.
//!
//! Each copy's envelope is settled here too, before its job and its row are
//! built (delivery compares the two). When the From domain has a return-path
//! domain (`RETURN_PATH_DOMAINS`), MAIL FROM is a signed VERP address there
//! naming the copy (`inbound::return_path`): recipient 0 for a copy with one
//! recipient, [`WHOLE_MESSAGE`] for one transaction to several, whose
//! reports name their recipients themselves; otherwise it is the From
//! address. The From header never changes. Every copy carries its signed
//! envelope id (`inbound::envelope_id`) for `ENVID`, and whether the sender
//! asked for proof of delivery. Signed mail from a domain with a return-path
//! domain also carries the complaint feedback loop fields of RFC 9477:
//! `CFBL-Address: fbl@<return-path domain>` and the signed envelope id as
//! `CFBL-Feedback-ID`, which complaint reports quote back.
//!
//! Tracked mail (`"tracking"`, off unless asked, for every stream) has its
//! HTML part's links and open pixel rewritten here, per copy, before the
//! copy is composed and signed (`events::tracking::body`): the signed body
//! is what is delivered. A token names its recipient only in a copy of one
//! recipient who consented, so a message with a consenting recipient among
//! several goes out as one copy per recipient, as unsubscribe links do; in
//! aggregate mode, or without consent, one body serves every recipient.
//! Must not: perform I/O or read the clock (the time and the id's entropy are
//! passed in), or store and enqueue anything (`accept::commit` does).

use sha2::{Digest, Sha256};

use crate::events::tracking::TrackingSecrets;
use crate::events::tracking::body::{self as tracking_body, BodyPlan};
use crate::events::unsubscribe::settings::link as unsubscribe_link;
use crate::events::unsubscribe::stream::StreamKind;
use crate::events::unsubscribe::token::NONCE_LEN;
use crate::events::unsubscribe::{Claim, StreamChoice, stream};
use crate::inbound::envelope_id;
use crate::inbound::return_path::{ReturnPathClaim, WHOLE_MESSAGE};
use crate::message::dkim::{MIN_RSA_BITS, has_required_rsa};
use crate::message::feedback_loop::{CFBL_ADDRESS, CFBL_FEEDBACK_ID};
use crate::message::lint::SHARED_HOST_SUFFIXES;
use crate::message::{
    ComposeContext, DkimKey, FeedbackLoop, FieldError, Limits, Message, PendingSignature,
    RequestError, SendRequest, Tag, Tracking, UnsignedMessage, compose_copy, new_message_id,
};
use crate::queue::DeliveryJob;

use super::body::BodyLimit;
use super::error::{ApiError, FieldProblem};
use super::keys::AuthenticatedKey;
use super::schedule::{self, When};
use super::settings::SendSettings;

/// A validated, composed message waiting for its DKIM signatures: one copy,
/// or one copy per recipient when each carries its own unsubscribe link.
pub struct Prepared {
    /// The message's id: the one copy's, or the parent of the copies.
    pub id: String,
    key_id: String,
    tenant: String,
    subject: String,
    from: String,
    notify_delivery: bool,
    smtputf8: bool,
    accepted_at: u64,
    tags: Vec<Tag>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    stream: StreamChoice,
    copies: Vec<Copy>,
    /// What the sender should know about how the message went out (shown
    /// in its status), e.g. an unsubscribe link on the worker's own host.
    pub warnings: Vec<String>,
    /// Every signature to make, copy after copy: the key's index in
    /// `SendSettings::dkim_keys` (then, past its end, in `domain_keys`),
    /// and what to sign.
    pub pending: Vec<(usize, PendingSignature)>,
    /// The keys of a domain added through `/v1/domains`, opened by the
    /// edge for this message (see [`prepare_with_keys`]).
    domain_keys: Vec<DkimKey>,
    /// When the message is due, Unix seconds (`scheduled_at`); `None` to
    /// send now.
    pub send_at: Option<u64>,
}

impl Prepared {
    /// The key a pending signature was prepared for: one of
    /// `settings.dkim_keys`, or past their end one of the domain's keys.
    pub fn signing_key<'a>(
        &'a self,
        settings: &'a SendSettings,
        index: usize,
    ) -> Result<&'a DkimKey, ApiError> {
        let configured = settings.dkim_keys.len();
        match index.checked_sub(configured) {
            None => signing_key(settings, index),
            Some(i) => self
                .domain_keys
                .get(i)
                .ok_or_else(|| ApiError::misconfigured("DKIM: key vanished")),
        }
    }

    /// Whether the key at `index` is one of `SendSettings::dkim_keys` (the
    /// same key for the isolate's life, so its imported form may be kept).
    pub fn is_configured_key(&self, settings: &SendSettings, index: usize) -> bool {
        index < settings.dkim_keys.len()
    }
}

/// The From domain a send request names (lower-case ASCII), if the request
/// is valid: what the edge needs to find the keys of a domain added through
/// `/v1/domains` before [`prepare_with_keys`].
pub fn from_domain(body: &[u8], settings: &SendSettings) -> Option<String> {
    let limits = Limits {
        max_message_bytes: settings.max_message_bytes,
        ..Limits::default()
    };
    let message = SendRequest::from_json(body).ok()?.validate(&limits).ok()?;
    Some(message.from().address.domain().as_str().to_string())
}

/// One copy: its id, its envelope and its composed bytes.
struct Copy {
    id: String,
    mail_from: String,
    envid: Option<String>,
    rcpt_to: Vec<String>,
    unsigned: UnsignedMessage,
    /// How many of `Prepared::pending` are this copy's.
    signatures: usize,
}

/// A signed message: its id and the delivery job of each copy.
#[derive(Debug)]
pub struct Signed {
    pub id: String,
    /// One job per copy, in recipient order.
    pub jobs: Vec<DeliveryJob>,
    pub warnings: Vec<String>,
    /// The kind of the message's stream (bulk-sender rules follow it).
    pub stream_kind: StreamKind,
    /// When the message is due, Unix seconds; `None` to send now.
    pub send_at: Option<u64>,
}

impl Signed {
    /// The copies as the answer lists them (`None` for a single copy: its
    /// id is the message's).
    pub fn copies(&self) -> Option<Vec<(String, String)>> {
        (self.jobs.len() > 1).then(|| {
            self.jobs
                .iter()
                .map(|j| (j.id.clone(), j.rcpt_to.join(", ")))
                .collect()
        })
    }
}

/// The id of copy `index` (from 0) of message `id` with `count` copies.
pub fn copy_id(id: &str, index: usize, count: usize) -> String {
    if count == 1 {
        id.to_string()
    } else {
        format!("{id}-{}", index + 1)
    }
}

/// Whether `id` can be a parent: the id of a message, 32 lower-case hex
/// digits (the only ids whose copies are looked up).
pub fn is_parent_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The parent of a copy's id (`<parent>-<n>`), if it is one.
pub fn parent_of(id: &str) -> Option<&str> {
    let (parent, n) = id.rsplit_once('-')?;
    (is_parent_id(parent) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then_some(parent)
}

/// Where a message with one-click unsubscribe links points them when
/// `UNSUBSCRIBE_BASE_URL` is unset: the origin the request came in on.
pub const BASE_URL_WARNING: &str = "unsubscribe_base_url_missing: the unsubscribe links use the worker's own host; set UNSUBSCRIBE_BASE_URL to the sender's own domain routed to the worker (links on shared hosts such as *.workers.dev are flagged by phishing filters)";

fn problems(errors: Vec<FieldError>) -> Vec<FieldProblem> {
    errors
        .into_iter()
        .map(|e| FieldProblem {
            field: e.field,
            rule: e.rule.to_string(),
            message: e.message,
        })
        .collect()
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::MalformedJson { .. } => ApiError::malformed(e.to_string()),
            RequestError::Invalid(v) => {
                let status = v.status_hint();
                let mut err = ApiError::invalid(problems(v.errors));
                if status == 413 {
                    err.status = 413;
                    err.rule = "too_large";
                }
                err
            }
        }
    }
}

/// Largest request body read for a message limit: JSON escaping and base64
/// make a request bigger than the message it describes (base64 by 4/3, an
/// escaped CRLF is four bytes for two), so allow twice the message plus room
/// for the envelope fields. Checked before parsing, so an oversized body costs
/// no CPU. A batch as a whole is held to the same limit.
pub fn max_request_bytes(settings: &SendSettings) -> usize {
    settings
        .max_message_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024)
}

/// The limit on a request body, [`max_request_bytes`].
pub fn request_body_limit(settings: &SendSettings) -> BodyLimit {
    BodyLimit {
        max_bytes: max_request_bytes(settings),
        source: "twice MAX_MESSAGE_BYTES plus 64 KiB",
    }
}

/// 413 for a request body over [`max_request_bytes`].
pub fn check_request_size(len: usize, settings: &SendSettings) -> Result<(), ApiError> {
    request_body_limit(settings).admits(len)
}

/// Validates, authorises and composes. `entropy` makes the message id (and
/// the unsubscribe tokens' nonces). With no request to take an origin from
/// (queue producers), marketing mail needs `UNSUBSCRIBE_BASE_URL`.
pub fn prepare(
    body: &[u8],
    key: &AuthenticatedKey,
    settings: &SendSettings,
    now_unix: u64,
    entropy: &[u8; 32],
) -> Result<Prepared, ApiError> {
    prepare_from(body, key, settings, now_unix, entropy, None)
}

/// [`prepare`] for a request that came in on `origin` (`https://host`),
/// where unsubscribe links point when `UNSUBSCRIBE_BASE_URL` is unset.
pub fn prepare_from(
    body: &[u8],
    key: &AuthenticatedKey,
    settings: &SendSettings,
    now_unix: u64,
    entropy: &[u8; 32],
    origin: Option<&str>,
) -> Result<Prepared, ApiError> {
    prepare_with_keys(body, key, settings, Vec::new(), now_unix, entropy, origin)
}

/// [`prepare_from`] for a From domain added through `/v1/domains`, whose
/// keys (`domain_keys`, opened by the edge once its RSA DKIM record has
/// verified) sign beside any of `DKIM_KEYS`; the same rules apply to them
/// all (RSA always).
pub fn prepare_with_keys(
    body: &[u8],
    key: &AuthenticatedKey,
    settings: &SendSettings,
    domain_keys: Vec<DkimKey>,
    now_unix: u64,
    entropy: &[u8; 32],
    origin: Option<&str>,
) -> Result<Prepared, ApiError> {
    let request = SendRequest::from_json(body)?;
    let when = request.scheduled_at.as_ref().map(When::from);
    let send_at = schedule::due(when, "scheduled_at", now_unix)?;
    let limits = Limits {
        max_message_bytes: settings.max_message_bytes,
        ..Limits::default()
    };
    let message = request
        .validate(&limits)
        .map_err(|v| ApiError::from(RequestError::Invalid(v)))?;

    let from_domain = message.from().address.domain();
    if !key.may_send_as(from_domain.as_str()) {
        return Err(ApiError::forbidden(
            "domain_not_allowed",
            "from",
            format!(
                "this API key may not send as {}; it may send as: {}",
                from_domain.as_str(),
                key.domains.join(", ")
            ),
        ));
    }
    // Every key for the From domain signs (RSA + Ed25519 dual signing).
    let configured = settings.dkim_keys.len();
    let signing_keys: Vec<(usize, &DkimKey)> = settings
        .dkim_keys
        .iter()
        .enumerate()
        .chain(
            domain_keys
                .iter()
                .enumerate()
                .map(|(i, k)| (configured + i, k)),
        )
        .filter(|(_, k)| &k.identity().domain == from_domain)
        .collect();
    if signing_keys.is_empty() && !settings.may_send_unsigned(from_domain.as_str()) {
        return Err(ApiError::forbidden(
            "domain_not_configured",
            "from",
            format!(
                "no DKIM key is configured for {}; add one to DKIM_KEYS (or list the domain in UNSIGNED_DOMAINS)",
                from_domain.as_str()
            ),
        ));
    }
    // RSA always: Gmail and Microsoft verify only RSA signatures, so a
    // domain whose keys are all Ed25519 (or weak RSA) would fail DMARC there.
    let keys: Vec<&DkimKey> = signing_keys.iter().map(|(_, k)| *k).collect();
    if !signing_keys.is_empty()
        && !has_required_rsa(&keys)
        && !settings.may_send_unsigned(from_domain.as_str())
    {
        return Err(ApiError::forbidden(
            "domain_needs_rsa_key",
            "from",
            format!(
                "{} has no RSA DKIM key of {MIN_RSA_BITS} bits or more; the largest mailbox providers verify only RSA signatures. Add an RSA key for it to DKIM_KEYS (an Ed25519 key may sign beside it)",
                from_domain.as_str()
            ),
        ));
    }

    let stream = stream::choose(&message, &key.streams)
        .map_err(|errors| ApiError::invalid(problems(errors)))?;

    let message_id = new_message_id(from_domain, &entropy[..16]);
    let id = message_id
        .split_once('@')
        .map(|(left, _)| left.to_string())
        .unwrap_or_else(|| message_id.clone());
    let recipients: Vec<String> = message
        .recipients()
        .into_iter()
        .map(|a| a.to_string())
        .collect();
    let mut warnings = Vec::new();
    // Tracking is off unless the request asks for it. A per-key default
    // (`API_KEYS`) would be resolved here, under the request's own choice;
    // keys have none yet.
    let tracking = message.tracking();
    let consented: Vec<bool> = message
        .recipients()
        .into_iter()
        .map(|r| tracking.is_some_and(|t| t.per_recipient(r)))
        .collect();
    // One copy for everyone, or one per recipient when each carries a link
    // or a tracking token that names its recipient.
    let per_recipient = stream.one_click || (recipients.len() > 1 && consented.contains(&true));
    let groups: Vec<Vec<String>> = if per_recipient {
        recipients.iter().map(|r| vec![r.clone()]).collect()
    } else {
        vec![recipients]
    };
    let tracking_base = match tracking {
        Some(t) => Some(tracking_plan(
            t,
            &message,
            key,
            settings,
            origin,
            &mut warnings,
        )?),
        None => None,
    };
    let base = if stream.one_click {
        let secrets = settings.unsubscribe.secrets.as_ref().ok_or_else(|| {
            ApiError::misconfigured("unsubscribe links need UNSUBSCRIBE_SECRET (or QUEUE_SECRET)")
        })?;
        let configured = key
            .unsubscribe_base_url
            .as_ref()
            .or(settings.unsubscribe.base_url.as_ref());
        let base = match (configured, origin) {
            (Some(base), _) => base.clone(),
            (None, Some(origin)) => {
                warnings.push(BASE_URL_WARNING.to_string());
                origin.to_string()
            }
            (None, None) => {
                return Err(ApiError::forbidden(
                    "unsubscribe_not_configured",
                    "stream",
                    "mail with a one-click unsubscribe sent through a queue needs UNSUBSCRIBE_BASE_URL: the links must point at the sender's own domain on the worker",
                ));
            }
        };
        Some((secrets, base))
    } else {
        None
    };

    let feedback_domain = feedback_loop_domain(&message, settings, !signing_keys.is_empty())?;

    let count = groups.len();
    let mut copies = Vec::with_capacity(count);
    let mut pending = Vec::new();
    for (index, rcpt_to) in groups.into_iter().enumerate() {
        let copy_id = copy_id(&id, index, count);
        let envid = settings
            .envelope_secrets
            .as_ref()
            .and_then(|secrets| envelope_id::issue(&copy_id, secrets));
        let feedback_loop = feedback_domain
            .zip(envid.as_deref())
            .and_then(|(domain, envid)| {
                FeedbackLoop::new(&format!("{FEEDBACK_LOCAL_PART}@{domain}"), envid)
            });
        let link = match &base {
            Some((secrets, base)) => {
                let claim = Claim {
                    tenant: key.tenant.clone(),
                    key_id: key.id.clone(),
                    stream: stream.name.clone(),
                    topic: stream.topic.clone(),
                    recipient: rcpt_to.first().cloned().unwrap_or_default(),
                    message_id: copy_id.clone(),
                };
                let token = secrets
                    .issue(&claim, &token_nonce(entropy, index))
                    .map_err(|e| {
                        ApiError::invalid(vec![FieldProblem {
                            field: "to".into(),
                            rule: "unsubscribe_link_too_long".into(),
                            message: e.to_string(),
                        }])
                    })?;
                Some(unsubscribe_link(base, &token).ok_or_else(|| {
                    ApiError::misconfigured("the unsubscribe base URL does not make a valid link")
                })?)
            }
            None => None,
        };
        let tracked_html = match (&tracking_base, tracking, message.html()) {
            (Some((secrets, base)), Some(t), Some(html)) => {
                let plan = BodyPlan {
                    secrets,
                    base,
                    message_id: &copy_id,
                    // A token names its recipient only in a copy of one
                    // recipient who consented.
                    recipient: (rcpt_to.len() == 1 && consented.get(index) == Some(&true))
                        .then_some(0),
                    opens: t.opens,
                    clicks: t.clicks,
                };
                let (html, _) = tracking_body::track(html, &plan).map_err(|e| {
                    ApiError::invalid(vec![FieldProblem {
                        field: "tracking".into(),
                        rule: "tracking_token_failed".into(),
                        message: e.to_string(),
                    }])
                })?;
                Some(html)
            }
            _ => None,
        };
        let raw = compose_copy(
            &message,
            &ComposeContext {
                message_id: format!("{copy_id}@{}", from_domain.as_str()),
                date_unix: i64::try_from(now_unix).unwrap_or(i64::MAX),
                feedback_loop,
            },
            link.as_ref(),
            tracked_html.as_deref(),
        )
        .map_err(|e| {
            ApiError::invalid(vec![FieldProblem {
                field: String::new(),
                rule: "compose_failed".into(),
                message: e.to_string(),
            }])
        })?;
        // Validation estimated the size; base64, encoded headers and MIME
        // structure add to it, so the composed bytes are what counts.
        if raw.len() > settings.max_message_bytes {
            return Err(ApiError::too_large(
                "",
                format!(
                    "the composed message is {} bytes; at most {} bytes are accepted (MAX_MESSAGE_BYTES)",
                    raw.len(),
                    settings.max_message_bytes
                ),
            ));
        }
        let unsigned = UnsignedMessage::new(&raw);
        for (index, key) in &signing_keys {
            let p = unsigned
                .prepare_with(key.identity(), now_unix, settings.dkim_coverage)
                .map_err(|e| ApiError::misconfigured(format!("DKIM: {e}")))?;
            pending.push((*index, p));
        }
        copies.push(Copy {
            mail_from: envelope_sender(&message, &copy_id, rcpt_to.len(), settings),
            envid,
            id: copy_id,
            rcpt_to,
            unsigned,
            signatures: signing_keys.len(),
        });
    }

    Ok(Prepared {
        id,
        key_id: key.id.clone(),
        tenant: key.tenant.clone(),
        subject: message.subject().to_string(),
        from: message.from().address.to_string(),
        notify_delivery: message.notify_delivery(),
        smtputf8: message.requires_smtputf8(),
        accepted_at: now_unix,
        tags: message.tags().to_vec(),
        metadata: message.metadata().cloned(),
        stream,
        copies,
        warnings,
        pending,
        domain_keys,
        send_at,
    })
}

/// Where a message tracked without `TRACKING_BASE_URL` (or an unsubscribe
/// base URL) points its tracked links and pixel: the worker's own host.
pub const TRACKING_BASE_URL_WARNING: &str = "tracking_base_url_missing: the tracked links and the open pixel use the worker's own host; set TRACKING_BASE_URL to the sender's own domain routed to the worker (links on shared hosts such as *.workers.dev are flagged by phishing filters)";

/// The tracking secrets and host for a tracked message: `TRACKING_BASE_URL`,
/// else the key's or the relay's unsubscribe base URL, else the request's
/// origin (with a warning); a queue message has no origin and is refused.
/// Warns, too, of a host shared by every worker and of a message without an
/// HTML part (nothing to track).
fn tracking_plan<'s>(
    tracking: &Tracking,
    message: &Message,
    key: &AuthenticatedKey,
    settings: &'s SendSettings,
    origin: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<(&'s TrackingSecrets, String), ApiError> {
    let secrets = settings.tracking.secrets.as_ref().ok_or_else(|| {
        ApiError::misconfigured("tracking needs TRACKING_SECRET (or QUEUE_SECRET)")
    })?;
    let configured = settings
        .tracking
        .base_url
        .as_ref()
        .or(key.unsubscribe_base_url.as_ref())
        .or(settings.unsubscribe.base_url.as_ref());
    let base = match (configured, origin) {
        (Some(base), _) => base.clone(),
        (None, Some(origin)) => {
            warnings.push(TRACKING_BASE_URL_WARNING.to_string());
            origin.to_string()
        }
        (None, None) => {
            return Err(ApiError::forbidden(
                "tracking_not_configured",
                "tracking",
                "tracked mail sent through a queue needs TRACKING_BASE_URL (or UNSUBSCRIBE_BASE_URL): the links must point at the sender's own domain on the worker",
            ));
        }
    };
    let host = base
        .split_once("://")
        .map_or(base.as_str(), |(_, rest)| rest)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if SHARED_HOST_SUFFIXES.iter().any(|s| host.ends_with(s)) {
        warnings.push(format!(
            "tracking_shared_host: the tracked links point at {host}, a host shared by every worker, which phishing filters flag; route the sender's own domain to the worker and set TRACKING_BASE_URL"
        ));
    }
    if message.html().is_none() {
        warnings.push(format!(
            "tracking_without_html: tracking ({}) needs an HTML part; this message has none and is not tracked",
            [("opens", tracking.opens), ("clicks", tracking.clicks)]
                .iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok((secrets, base))
}

/// MAIL FROM for copy `copy_id` of `message`, sent to `recipients`
/// addresses in one transaction: the signed VERP address at the From
/// domain's return-path domain when it has one, else the From address.
fn envelope_sender(
    message: &Message,
    copy_id: &str,
    recipients: usize,
    settings: &SendSettings,
) -> String {
    let from = message.envelope_from();
    let domain = from.domain();
    let verp = settings
        .inbound
        .return_path_for(domain.as_str())
        .zip(settings.envelope_secrets.as_ref())
        .and_then(|(return_path_domain, secrets)| {
            ReturnPathClaim {
                message_id: copy_id.to_string(),
                recipient_index: if recipients == 1 { 0 } else { WHOLE_MESSAGE },
            }
            .address(return_path_domain, secrets)
        });
    verp.unwrap_or_else(|| from.to_string())
}

/// The local part of the address complaint reports go to (`CFBL-Address`)
/// at the return-path domain.
pub const FEEDBACK_LOCAL_PART: &str = "fbl";

/// The return-path domain that takes `message`'s complaint reports
/// (`CFBL-Address`, RFC 9477), when it carries the feedback loop fields:
/// its From domain has a return-path domain, and a DKIM signature of the
/// From domain (`signed`), aligned with it, covers them. The caller's own
/// `CFBL-*` headers would then be a second pair: 422 `forbidden_header`.
fn feedback_loop_domain<'s>(
    message: &Message,
    settings: &'s SendSettings,
    signed: bool,
) -> Result<Option<&'s str>, ApiError> {
    let domain = settings
        .inbound
        .return_path_for(message.envelope_from().domain().as_str())
        .filter(|_| signed && settings.envelope_secrets.is_some());
    if domain.is_none() {
        return Ok(None);
    }
    let clashes: Vec<FieldProblem> = message
        .headers()
        .iter()
        .filter(|h| {
            [CFBL_ADDRESS, CFBL_FEEDBACK_ID]
                .iter()
                .any(|name| h.name.eq_ignore_ascii_case(name))
        })
        .map(|h| FieldProblem {
            field: format!("headers.{}", h.name),
            rule: "forbidden_header".into(),
            message: format!(
                "{} is written by edgerelay for mail from a domain with a return-path domain (RETURN_PATH_DOMAINS)",
                h.name
            ),
        })
        .collect();
    if clashes.is_empty() {
        Ok(domain)
    } else {
        Err(ApiError::invalid(clashes))
    }
}

/// A fresh nonce for copy `index`'s token: the request's random bytes are
/// stretched with SHA-256, so no two copies (or messages) share one.
fn token_nonce(entropy: &[u8; 32], index: usize) -> [u8; NONCE_LEN] {
    let mut hash = Sha256::new();
    hash.update(b"edgerelay unsubscribe nonce\n");
    hash.update(entropy);
    hash.update((index as u64).to_be_bytes());
    let digest = hash.finalize();
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&digest[..NONCE_LEN]);
    nonce
}

/// Attaches the signatures (in `pending` order) and builds the delivery job
/// of a message sent as one copy; a message of several copies is refused
/// here (see [`finish_all`]).
pub fn finish(prepared: Prepared, signatures: Vec<Vec<u8>>) -> Result<DeliveryJob, ApiError> {
    let mut signed = finish_all(prepared, signatures)?;
    if signed.jobs.len() != 1 {
        return Err(ApiError::invalid(vec![FieldProblem {
            field: "to".into(),
            rule: "one_copy_only".into(),
            message: "mail with a one-click unsubscribe to several recipients goes out as one copy per recipient, which this entrance does not take: send one message per recipient, or use POST /v1/messages".into(),
        }]));
    }
    signed
        .jobs
        .pop()
        .ok_or_else(|| ApiError::misconfigured("no copy was composed"))
}

/// Attaches the signatures (in `pending` order) and builds every copy's
/// delivery job.
pub fn finish_all(prepared: Prepared, signatures: Vec<Vec<u8>>) -> Result<Signed, ApiError> {
    if signatures.len() != prepared.pending.len() {
        return Err(ApiError::misconfigured("DKIM: a signature is missing"));
    }
    let stream_kind = prepared.stream.kind;
    let mut pairs = prepared.pending.into_iter().zip(signatures);
    let mut jobs = Vec::with_capacity(prepared.copies.len());
    for copy in prepared.copies {
        let mut headers = Vec::with_capacity(copy.signatures);
        for ((_, pending), sig) in pairs.by_ref().take(copy.signatures) {
            headers.push(
                pending
                    .finish(&sig)
                    .map_err(|e| ApiError::misconfigured(format!("DKIM: {e}")))?,
            );
        }
        let signed = copy.unsigned.with_signatures(&headers);
        let mime = String::from_utf8(signed)
            .map_err(|_| ApiError::misconfigured("the composed message is not UTF-8"))?;
        jobs.push(DeliveryJob {
            id: copy.id,
            key_id: prepared.key_id.clone(),
            mail_from: copy.mail_from,
            rcpt_to: copy.rcpt_to,
            mime,
            smtputf8: prepared.smtputf8,
            accepted_at: prepared.accepted_at,
            attempt: 0,
            body_ref: None,
            tags: prepared.tags.clone(),
            metadata: prepared.metadata.clone(),
            safety_net: false,
            tenant: prepared.tenant.clone(),
            stream: prepared.stream.stored_name().map(str::to_string),
            topic: prepared.stream.topic.clone(),
            subject: Some(prepared.subject.clone()),
            from: Some(prepared.from.clone()),
            envid: copy.envid,
            notify_delivery: prepared.notify_delivery,
            marketing: stream_kind == StreamKind::Marketing,
        });
    }
    Ok(Signed {
        id: prepared.id,
        jobs,
        warnings: prepared.warnings,
        stream_kind,
        send_at: prepared.send_at,
    })
}

/// The configured key a pending signature was prepared for.
pub fn signing_key(settings: &SendSettings, index: usize) -> Result<&DkimKey, ApiError> {
    settings
        .dkim_keys
        .get(index)
        .ok_or_else(|| ApiError::misconfigured("DKIM: key vanished"))
}

/// Signs with the core's own signers (Ed25519 and RSA in Rust); one copy.
pub fn sign_natively(prepared: Prepared, settings: &SendSettings) -> Result<DeliveryJob, ApiError> {
    let signatures = native_signatures(&prepared, settings)?;
    finish(prepared, signatures)
}

/// [`sign_natively`] for a message of any number of copies.
pub fn sign_all_natively(prepared: Prepared, settings: &SendSettings) -> Result<Signed, ApiError> {
    let signatures = native_signatures(&prepared, settings)?;
    finish_all(prepared, signatures)
}

fn native_signatures(
    prepared: &Prepared,
    settings: &SendSettings,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut signatures = Vec::with_capacity(prepared.pending.len());
    for (index, pending) in &prepared.pending {
        let key = prepared.signing_key(settings, *index)?;
        // Fail closed: a signing failure refuses the message.
        signatures.push(
            key.sign(pending)
                .map_err(|e| ApiError::misconfigured(format!("DKIM signing failed: {e}")))?,
        );
    }
    Ok(signatures)
}

#[cfg(test)]
mod envelope_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tracking_tests;

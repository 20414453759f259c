//! Runs a share of the batch through an API upstream (`delivery::transport`):
//! the `send_email` binding, or one HTTPS request per job to SES or Mailgun.
//!
//! Like an SMTP session it awaits the in-flight record before a message can
//! leave, reports each job's outcome the moment it is known, and ends early
//! when an answer says the upstream itself is in trouble (throttled,
//! failing, or set up wrong), leaving the rest of the share untried for the
//! next upstream or a later attempt. The binding is reached through the
//! `Env` of the invocation (`remember_env`, set by each entry point).
//! Must not: decide anything about email (the core classifies every answer).

use std::cell::RefCell;
use std::time::Duration;

use futures_util::future::{Either, LocalBoxFuture, select};

use wasm_bindgen::JsCast;
use worker::{Delay, Env, Fetch, Headers, Method, Request, RequestInit};

use crate::delivery::provider_header::stamped;
use crate::delivery::shaping::{Grant, Pacer, Pacing};
use crate::delivery::transport::{
    ApiUpstream, Class, Classified, HttpAnswer, mailgun, send_email, ses,
};
use crate::delivery::{Outgoing, SessionEnd, Upstream};
use crate::smtp::TransactionOutcome;

use super::platform::now_ms;

/// Awaited before a message can leave (the in-flight record), with the
/// job's position and its recipients; `false` keeps the message back.
pub type BeforeSend<'f> = dyn Fn(Vec<(usize, Vec<String>)>) -> LocalBoxFuture<'f, bool> + 'f;

/// Answers are read up to this many bytes (errors are short JSON).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

thread_local! {
    static ENV: RefCell<Option<Env>> = const { RefCell::new(None) };
}

/// Keeps the invocation's `Env`, where the `send_email` bindings are.
pub fn remember_env(env: &Env) {
    ENV.with(|e| *e.borrow_mut() = Some(env.clone()));
}

/// One run of an API upstream's calls.
pub struct Run<'r> {
    pub upstream: &'r Upstream,
    pub api: &'r ApiUpstream,
    pub timeout_ms: u64,
    /// The shaper's pace, and when it was granted (Unix ms).
    pub grant: &'r Grant,
    pub granted_at: u64,
    /// Each job's slot in the grant; `None` for a later part of the job
    /// before it, which follows at once.
    pub slot_of: &'r dyn Fn(usize) -> Option<u32>,
}

/// One pass over `jobs` through the run's upstream, each call at its slot:
/// each job's outcome, and the positions of the jobs whose slot passed
/// before their turn (not sent; kept back like an SMTP session's).
pub async fn run_session<'f>(
    run: &Run<'_>,
    jobs: &[&Outgoing],
    before_data_end: &BeforeSend<'f>,
    on_done: &dyn Fn(usize, &TransactionOutcome),
) -> (SessionEnd, Vec<usize>) {
    let (upstream, api) = (run.upstream, run.api);
    let label = upstream.label();
    let mut outcomes: Vec<Option<TransactionOutcome>> = vec![None; jobs.len()];
    let mut failure = None;
    let mut missed = Vec::new();
    let mut pacer = Pacer::new(run.grant);
    for (pos, job) in jobs.iter().enumerate() {
        let slot = (run.slot_of)(pos);
        let pacing = loop {
            let since = now_ms().saturating_sub(run.granted_at);
            match pacer.next(slot, since, false) {
                Pacing::WaitUntil(due) => {
                    Delay::from(Duration::from_millis(due.saturating_sub(since))).await;
                }
                other => break other,
            }
        };
        if pacing == Pacing::Skip {
            missed.push(pos);
            continue;
        }
        let recipients = &job.job.rcpt_to;
        let classified = if job.message.len() > api.max_message_bytes() {
            Classified::new(
                Class::Permanent,
                format!("the message is larger than {label} takes"),
            )
        } else {
            if !before_data_end(vec![(pos, recipients.clone())]).await {
                // Without its in-flight record the message must not leave.
                break;
            }
            send(api, job, run.timeout_ms).await
        };
        let outcome = classified.transaction(pos as u64, recipients, &label);
        on_done(pos, &outcome);
        if let Some(slot) = outcomes.get_mut(pos) {
            *slot = Some(outcome);
        }
        if classified.ends_session() {
            failure = Some(classified.outcome(&label));
            if classified.class == Class::Throttled {
                // The jobs behind it wait too, without using an attempt,
                // as an SMTP session's do behind a throttling reply.
                for (later, job) in jobs.iter().enumerate().skip(pos + 1) {
                    if let Some(slot) = outcomes.get_mut(later) {
                        *slot =
                            Some(classified.transaction(later as u64, &job.job.rcpt_to, &label));
                    }
                }
            }
            break;
        }
    }
    (SessionEnd { outcomes, failure }, missed)
}

async fn send(api: &ApiUpstream, job: &Outgoing, timeout_ms: u64) -> Classified {
    let id = &job.job.id;
    match api {
        ApiUpstream::SendEmail { binding } => send_binding(binding, job, timeout_ms).await,
        ApiUpstream::Ses(s) => {
            let message = stamped(api.provider(), id, &job.message);
            let message = message.as_deref().unwrap_or(&job.message);
            let req = s.request(&job.job.mail_from, &job.job.rcpt_to, id, message, now_ms());
            match post(req, timeout_ms).await {
                Ok(answer) => ses::classify(&answer),
                Err(reason) => Classified::new(Class::Transient, reason),
            }
        }
        ApiUpstream::Mailgun(m) => {
            let req = m.request(&job.job.rcpt_to, id, &job.message);
            match post(req, timeout_ms).await {
                Ok(answer) => mailgun::classify(&answer),
                Err(reason) => Classified::new(Class::Transient, reason),
            }
        }
    }
}

/// One `send()` per recipient (an `EmailMessage` has one envelope
/// recipient); the first failure decides.
async fn send_binding(binding: &str, job: &Outgoing, timeout_ms: u64) -> Classified {
    let found = ENV.with(|e| {
        e.borrow()
            .as_ref()
            .map(|env| js_sys::Reflect::get(env.as_ref(), &binding.into()))
    });
    let sender: worker::SendEmail = match found {
        Some(Ok(v)) if !v.is_undefined() && !v.is_null() => v.unchecked_into(),
        _ => {
            return Classified::new(
                Class::Configuration,
                format!("the send_email binding {binding} is missing"),
            );
        }
    };
    let raw = String::from_utf8_lossy(&job.message);
    let Some(from) = send_email::header_from(&job.message) else {
        return Classified::new(Class::Permanent, "the message has no single From: address");
    };
    let mut ids = Vec::new();
    for to in &job.job.rcpt_to {
        let message = match worker::EmailMessage::new(&from, to, &raw) {
            Ok(m) => m,
            Err(e) => return send_email::classify_error(&error_text(&e.into())),
        };
        match with_timeout(sender.send(&message), timeout_ms).await {
            Some(Ok(result)) => ids.push(result.message_id()),
            Some(Err(e)) => return send_email::classify_error(&error_text(&e.into())),
            None => return Classified::new(Class::Transient, "the binding did not answer in time"),
        }
    }
    // The service writes a Message-ID of its own: the record keeps ours.
    let ours = send_email::message_id(&job.message).unwrap_or_default();
    Classified::new(
        Class::Delivered(Some(format!("{} (ours {ours})", ids.join(" ")))),
        "sent",
    )
}

fn error_text(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the binding failed".into())
}

async fn post(
    req: crate::delivery::transport::HttpRequest,
    timeout_ms: u64,
) -> Result<HttpAnswer, String> {
    let headers = Headers::new();
    for (name, value) in &req.headers {
        headers
            .set(name, value)
            .map_err(|_| format!("the {name} header cannot be sent"))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(req.body.as_slice()).into()));
    let request = Request::new_with_init(&req.url, &init).map_err(|e| e.to_string())?;
    let answer = async {
        let mut resp = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status_code();
        let error_type = resp.headers().get("x-amzn-errortype").ok().flatten();
        let mut body = resp.bytes().await.unwrap_or_default();
        body.truncate(MAX_ANSWER_BYTES);
        Ok::<_, String>(HttpAnswer {
            status,
            error_type,
            body,
        })
    };
    match with_timeout(answer, timeout_ms).await {
        Some(r) => r,
        None => Err("the API did not answer in time".into()),
    }
}

async fn with_timeout<F: Future>(fut: F, timeout_ms: u64) -> Option<F::Output> {
    let delay = Delay::from(Duration::from_millis(timeout_ms));
    match select(std::pin::pin!(fut), delay).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

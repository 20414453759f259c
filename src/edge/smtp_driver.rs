//! Pumps a `worker::Socket` through the sans-IO SMTP session.
//!
//! One connection per upstream per batch: every job of the batch goes over it
//! (pipelined when the server allows). Jobs that an upstream could not take for
//! reasons of its own (connection refused, 4xx greeting, bad credentials) are
//! offered to the next upstream in priority order within the same invocation.
//! Upstreams cooling down after repeated failures are skipped (see
//! `delivery::health`; the records live in D1, `health_store`), and every
//! session's end updates its upstream's record.

use std::time::Duration;

use futures_util::future::{Either, select};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use worker::{Delay, Env, SecureTransport, Socket};

use crate::delivery::attempt::{envelope, report, session_config};
use crate::delivery::{AttemptReport, AttemptResult, SessionVerdict, upstream_order};
use crate::delivery::{Upstream, UpstreamSecurity};
use crate::queue::DeliveryJob;
use crate::settings::Settings;
use crate::smtp::{Event, Outcome, SmtpConfig, SmtpSession, TransactionOutcome};

use super::health_store::HealthBook;
use super::platform::now_ms;

enum Read {
    Data(usize),
    Eof,
    TimedOut,
    Failed,
}

/// Delivers every job, returning one report per job in the same order.
#[allow(dead_code)]
pub async fn deliver(settings: &Settings, env: &Env, jobs: &[&DeliveryJob]) -> Vec<AttemptReport> {
    deliver_with(settings, env, jobs, &|_, _| {}).await
}

/// [`deliver`], calling `on_done(job index, outcome)` the moment each SMTP
/// transaction completes, so the caller can record it before the session ends.
pub async fn deliver_with(
    settings: &Settings,
    env: &Env,
    jobs: &[&DeliveryJob],
    on_done: &dyn Fn(usize, &TransactionOutcome),
) -> Vec<AttemptReport> {
    deliver_tuned(settings, env, jobs, on_done, &|_| {}).await
}

/// [`deliver_with`], with `tune` adjusting each session's configuration after
/// it is derived from the settings (the benchmark route switches pipelining
/// per request this way, to compare both in one run).
pub async fn deliver_tuned(
    settings: &Settings,
    env: &Env,
    jobs: &[&DeliveryJob],
    on_done: &dyn Fn(usize, &TransactionOutcome),
    tune: &dyn Fn(&mut SmtpConfig),
) -> Vec<AttemptReport> {
    let mut reports: Vec<Option<AttemptReport>> = vec![None; jobs.len()];
    let mut pending: Vec<usize> = (0..jobs.len()).collect();
    let mut health = HealthBook::load(env, &settings.upstreams).await;
    let order = upstream_order(&health.records, now_ms());
    for (n, &index) in order.iter().enumerate() {
        let Some(upstream) = settings.upstreams.get(index) else {
            continue;
        };
        let is_last = n + 1 == order.len();
        let batch: Vec<&DeliveryJob> = pending.iter().map(|&i| jobs[i]).collect();
        let (outcomes, failure) = run_session(
            upstream,
            settings,
            &batch,
            &|pos, o| {
                if let Some(&index) = pending.get(pos) {
                    on_done(index, o)
                }
            },
            tune,
        )
        .await;
        let verdict = SessionVerdict::from_session_end(failure.as_ref());
        health
            .record(index, &verdict, &settings.upstream_health, now_ms())
            .await;
        let mut next = Vec::new();
        for (pos, outcome) in outcomes.into_iter().enumerate() {
            let index = pending[pos];
            let r = match outcome {
                Some(o) => report(&o),
                None => AttemptReport {
                    result: AttemptResult::Transient(format!(
                        "{}: no outcome recorded",
                        upstream.label()
                    )),
                    remaining: jobs[index].rcpt_to.clone(),
                    detail: format!("{}: no outcome recorded", upstream.label()),
                    try_next_upstream: true,
                },
            };
            if r.try_next_upstream && !is_last {
                next.push(index);
            }
            reports[index] = Some(r);
        }
        pending = next;
        if pending.is_empty() {
            break;
        }
    }
    reports
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| AttemptReport {
                result: AttemptResult::Transient("no upstream configured".into()),
                remaining: Vec::new(),
                detail: "no upstream configured".into(),
                try_next_upstream: false,
            })
        })
        .collect()
}

/// One connection to one upstream, carrying `jobs`. Returns each job's
/// outcome, and the failure the session ended with (`None` after a clean QUIT).
async fn run_session(
    upstream: &Upstream,
    settings: &Settings,
    jobs: &[&DeliveryJob],
    on_done: &dyn Fn(usize, &TransactionOutcome),
    tune: &dyn Fn(&mut SmtpConfig),
) -> (Vec<Option<TransactionOutcome>>, Option<Outcome>) {
    let mut config = session_config(upstream, settings);
    tune(&mut config);
    let mut session = SmtpSession::new(config, now_ms());
    for (i, job) in jobs.iter().enumerate() {
        session.send(envelope(i as u64, job), now_ms());
    }
    session.finish(now_ms());
    let mut outcomes: Vec<Option<TransactionOutcome>> = vec![None; jobs.len()];
    let label = upstream.label();

    let transport = match upstream.security {
        UpstreamSecurity::ImplicitTls => SecureTransport::On,
        UpstreamSecurity::StartTls => SecureTransport::StartTls,
        UpstreamSecurity::Insecure => SecureTransport::Off,
    };
    let connect_timeout = u64::from(settings.smtp_timeout_seconds) * 1000;
    let mut socket = match open(&upstream.host, upstream.port, transport, connect_timeout).await {
        Ok(s) => s,
        Err(reason) => {
            session.connect_failed(format!("connect to {label} failed: {reason}"), now_ms());
            let failure = drain(&mut session, &mut outcomes);
            return (outcomes, failure);
        }
    };

    let mut buf = vec![0u8; 16 * 1024];
    let mut failure = None;
    loop {
        while let Some(bytes) = session.poll_transmit() {
            let written = match socket.write_all(&bytes).await {
                Ok(()) => socket.flush().await,
                Err(e) => Err(e),
            };
            if written.is_err() {
                session.handle_closed(now_ms());
                break;
            }
        }
        if let Some(event) = session.poll_event() {
            match event {
                Event::StartTls => {
                    socket = socket.start_tls();
                    match with_timeout(socket.opened(), connect_timeout).await {
                        Some(Ok(_)) => session.handle_tls_established(now_ms()),
                        Some(Err(e)) => session.handle_tls_failed(e.to_string(), now_ms()),
                        None => session.handle_tls_failed("TLS handshake timed out", now_ms()),
                    }
                }
                Event::TransactionDone(outcome) => {
                    if let Ok(pos) = usize::try_from(outcome.id) {
                        on_done(pos, &outcome);
                    }
                    store(&mut outcomes, outcome)
                }
                Event::Closed { failure: f } => failure = f,
            }
            continue;
        }
        if session.is_closed() {
            break;
        }
        match read(&mut socket, &mut buf, session.poll_timeout()).await {
            Read::Data(n) => session.handle_input(buf.get(..n).unwrap_or_default(), now_ms()),
            Read::Eof | Read::Failed => session.handle_closed(now_ms()),
            Read::TimedOut => session.handle_timeout(now_ms()),
        }
    }
    if let Some(f) = drain(&mut session, &mut outcomes) {
        failure = Some(f);
    }
    let _ = socket.close().await;
    (outcomes, failure)
}

fn store(outcomes: &mut [Option<TransactionOutcome>], outcome: TransactionOutcome) {
    if let Some(slot) = usize::try_from(outcome.id)
        .ok()
        .and_then(|i| outcomes.get_mut(i))
    {
        *slot = Some(outcome);
    }
}

/// Collects the remaining events; returns the failure the session ended
/// with, if it ended here.
fn drain(
    session: &mut SmtpSession,
    outcomes: &mut [Option<TransactionOutcome>],
) -> Option<Outcome> {
    let mut failure = None;
    while let Some(event) = session.poll_event() {
        match event {
            Event::TransactionDone(outcome) => store(outcomes, outcome),
            Event::Closed { failure: f } => failure = f,
            Event::StartTls => {}
        }
    }
    failure
}

async fn open(
    host: &str,
    port: u16,
    transport: SecureTransport,
    timeout_ms: u64,
) -> Result<Socket, String> {
    let socket = Socket::builder()
        .secure_transport(transport)
        .connect(host, port)
        .map_err(|e| e.to_string())?;
    match with_timeout(socket.opened(), timeout_ms).await {
        Some(Ok(_)) => Ok(socket),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("timed out".into()),
    }
}

pub(crate) async fn with_timeout<F: Future>(fut: F, timeout_ms: u64) -> Option<F::Output> {
    let delay = Delay::from(Duration::from_millis(timeout_ms));
    match select(std::pin::pin!(fut), delay).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

async fn read(socket: &mut Socket, buf: &mut [u8], deadline: Option<u64>) -> Read {
    let outcome = match deadline {
        None => Some(socket.read(buf).await),
        Some(at) => with_timeout(socket.read(buf), at.saturating_sub(now_ms())).await,
    };
    match outcome {
        None => Read::TimedOut,
        Some(Ok(0)) => Read::Eof,
        Some(Ok(n)) => Read::Data(n),
        Some(Err(_)) => Read::Failed,
    }
}

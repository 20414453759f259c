//! Pumps a `worker::Socket` through the sans-IO SMTP session, one session per
//! step of the failover plan.
//!
//! One connection per upstream for the jobs it is given (a share of the
//! batch, see `delivery::plan`), pipelined when the server allows. Which
//! upstream comes next, which jobs it is offered and what each session's end
//! means for the upstream's health are `delivery::failover`'s decisions; this
//! module runs each session, stores the record each session leaves and the
//! health records it says changed (one D1 batch per session, see
//! `d1::health`) and logs its notices. If the records cannot be read,
//! every upstream counts as healthy: mail keeps flowing, only the skipping is
//! lost. Before it writes the bytes that end a transaction's data, it awaits
//! the caller's [`BeforeDataEnd`] (the in-flight record), once for all the
//! transactions about to go out together (pipelined BDAT writes many).
//!
//! Every socket operation has a deadline the core sets: connect and the TLS
//! handshake `SMTP_TIMEOUT_SECONDS`, each read the session's
//! `poll_timeout`, each write with its flush, and the close,
//! `write_timeout_ms`. An upstream that stops reading ends its session
//! like one that stops answering, and the jobs go to the next upstream.
//! An upstream of an API kind (`delivery::transport`) runs through
//! `api_transport` instead, under the same failover.
//! Must not: decide anything about email.

use std::time::Duration;

use futures_util::future::{Either, LocalBoxFuture, select};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use worker::{Delay, SecureTransport, Socket};

use crate::delivery::attempt::{envelope_for, session_config};
use crate::delivery::routing::{RouteKey, route_key};
use crate::delivery::{
    AttemptReport, DeliverySettings, Failover, Notice, Outgoing, SessionEnd, SessionRecord,
    Upstream, UpstreamHealth, UpstreamSecurity,
};
use crate::events::log_line::LogValue;
use crate::smtp::{Event, Outcome, SmtpConfig, SmtpSession, TransactionOutcome};

use super::api_transport;
use super::d1::Db;
use super::log;
use super::platform::now_ms;

/// Awaited before the bytes that end transactions' data (a final dot, or
/// the end of `BDAT … LAST`) are written, with each job's index and the
/// recipients its data goes to: every transaction whose data end is about
/// to go out, in one call. `false` ends the session before those bytes go
/// out, so the upstream never gets those messages.
pub type BeforeDataEnd<'f> = dyn Fn(Vec<(usize, Vec<String>)>) -> LocalBoxFuture<'f, bool> + 'f;

enum Read {
    Data(usize),
    Eof,
    TimedOut,
    Failed,
}

/// Delivers every job, returning one report per job in the same order.
/// `before_data_end` is awaited before transactions' data ends go out, and
/// `on_done(job index, outcome)` is called the moment each SMTP transaction
/// completes, so the caller can record both before the session ends.
pub async fn deliver_with<'f>(
    settings: &DeliverySettings,
    db: &Db,
    jobs: &[&Outgoing],
    before_data_end: &BeforeDataEnd<'f>,
    on_done: &dyn Fn(usize, &TransactionOutcome),
) -> Vec<AttemptReport> {
    deliver_tuned(settings, db, jobs, before_data_end, on_done, &|_| {}).await
}

/// [`deliver_with`], with `tune` adjusting each session's configuration after
/// it is derived from the settings (the benchmark route switches pipelining
/// per request this way, to compare both in one run).
pub async fn deliver_tuned<'f>(
    settings: &DeliverySettings,
    db: &Db,
    jobs: &[&Outgoing],
    before_data_end: &BeforeDataEnd<'f>,
    on_done: &dyn Fn(usize, &TransactionOutcome),
    tune: &dyn Fn(&mut SmtpConfig),
) -> Vec<AttemptReport> {
    let labels: Vec<String> = settings.upstreams.iter().map(Upstream::label).collect();
    let health = match db.upstream_health(&labels).await {
        Ok(records) => records,
        Err(e) => {
            log::warn_because("upstream_health_unavailable", &e);
            vec![UpstreamHealth::default(); labels.len()]
        }
    };
    // Each share of the batch that goes the same way (`UPSTREAM_ROUTES`)
    // fails over within its own upstreams.
    let keys: Vec<RouteKey<'_>> = jobs.iter().map(|o| route_key(&o.job)).collect();
    let mut reports: Vec<Option<AttemptReport>> = jobs.iter().map(|_| None).collect();
    for group in settings.routes.group(&keys, labels.len()) {
        let shared: Vec<&Outgoing> = group
            .jobs
            .iter()
            .filter_map(|&i| jobs.get(i).copied())
            .collect();
        let before = |ends: Vec<(usize, Vec<String>)>| {
            let ends = ends
                .into_iter()
                .filter_map(|(pos, recipients)| {
                    group.jobs.get(pos).map(|&index| (index, recipients))
                })
                .collect();
            before_data_end(ends)
        };
        let done = |pos: usize, o: &TransactionOutcome| {
            if let Some(&index) = group.jobs.get(pos) {
                on_done(index, o)
            }
        };
        let group_health = group
            .upstreams
            .iter()
            .map(|&u| health.get(u).cloned().unwrap_or_default())
            .collect();
        let hooks = Hooks {
            before_data_end: &before,
            on_done: &done,
            tune,
        };
        let routed = deliver_route(
            settings,
            db,
            &group.upstreams,
            group_health,
            &shared,
            &hooks,
        )
        .await;
        for (&index, report) in group.jobs.iter().zip(routed) {
            if let Some(slot) = reports.get_mut(index) {
                *slot = Some(report);
            }
        }
    }
    reports.into_iter().flatten().collect()
}

/// What the caller runs around each transaction, by the job's position in
/// the share being sent.
struct Hooks<'h, 'f> {
    before_data_end: &'h BeforeDataEnd<'f>,
    on_done: &'h dyn Fn(usize, &TransactionOutcome),
    tune: &'h dyn Fn(&mut SmtpConfig),
}

/// One route's share of the batch over its upstreams (indexes into
/// `settings.upstreams`, in priority order, with their health records) with
/// failover among them.
async fn deliver_route(
    settings: &DeliverySettings,
    db: &Db,
    route: &[usize],
    health: Vec<UpstreamHealth>,
    jobs: &[&Outgoing],
    hooks: &Hooks<'_, '_>,
) -> Vec<AttemptReport> {
    let Hooks {
        before_data_end,
        on_done,
        tune,
    } = *hooks;
    let upstreams: Vec<&Upstream> = route
        .iter()
        .filter_map(|&u| settings.upstreams.get(u))
        .collect();
    let labels: Vec<String> = upstreams.iter().map(|u| u.label()).collect();
    let recipients = jobs.iter().map(|o| o.job.rcpt_to.clone()).collect();
    let mut failover = Failover::new(labels, health, now_ms(), recipients);
    while let Some(step) = failover.next_session() {
        let (Some(upstream), Some(batch)) = (
            upstreams.get(step.upstream).copied(),
            step.jobs
                .iter()
                .map(|&i| jobs.get(i).copied())
                .collect::<Option<Vec<&Outgoing>>>(),
        ) else {
            break;
        };
        let on_done = |pos: usize, o: &TransactionOutcome| {
            if let Some(&index) = step.jobs.get(pos) {
                on_done(index, o)
            }
        };
        let before = |ends: Vec<(usize, Vec<String>)>| {
            let ends = ends
                .into_iter()
                .filter_map(|(pos, recipients)| {
                    step.jobs.get(pos).map(|&index| (index, recipients))
                })
                .collect();
            before_data_end(ends)
        };
        let started = now_ms();
        let end = match &upstream.api {
            Some(api) => {
                let timeout_ms = u64::from(settings.smtp_timeout_seconds) * 1000;
                api_transport::run_session(upstream, api, timeout_ms, &batch, &before, &on_done)
                    .await
            }
            None => run_session(upstream, settings, &batch, &before, &on_done, tune).await,
        };
        let now = now_ms();
        let record = SessionRecord::of(&end, started, now);
        let change = failover.session_ended(end, &settings.upstream_health, now);
        if let Some(change) = &change {
            let fields = |text| [("upstream", LogValue::Id(&change.label)), ("detail", text)];
            match &change.notice {
                Some(Notice::Paused(text)) => {
                    log::error("upstream_paused", &fields(LogValue::Text(text)))
                }
                Some(Notice::CoolingDown(text)) => {
                    log::warn("upstream_cooling_down", &fields(LogValue::Text(text)))
                }
                None => {}
            }
        }
        if let Err(e) = db
            .record_session(&upstream.label(), &record, change.as_ref(), now)
            .await
        {
            log::warn_because("upstream_session_not_stored", &e);
        }
    }
    failover.into_reports()
}

/// One connection to one upstream, carrying `jobs`: each job's outcome, and
/// the failure the session ended with (`None` after a clean QUIT).
async fn run_session<'f>(
    upstream: &Upstream,
    settings: &DeliverySettings,
    jobs: &[&Outgoing],
    before_data_end: &BeforeDataEnd<'f>,
    on_done: &dyn Fn(usize, &TransactionOutcome),
    tune: &dyn Fn(&mut SmtpConfig),
) -> SessionEnd {
    let mut config = session_config(upstream, settings);
    tune(&mut config);
    let mut session = SmtpSession::new(config, now_ms());
    for (i, job) in jobs.iter().enumerate() {
        session.send(envelope_for(upstream, i as u64, job), now_ms());
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
            return SessionEnd { outcomes, failure };
        }
    };

    let mut buf = vec![0u8; 16 * 1024];
    let mut failure = None;
    loop {
        // The in-flight records are written before the bytes that end the
        // data: once those are out, the upstream may take the message. All
        // that are due go in one call.
        let ends: Vec<(usize, Vec<String>)> = std::iter::from_fn(|| session.poll_in_flight())
            .filter_map(|f| usize::try_from(f.id).ok().map(|pos| (pos, f.recipients)))
            .collect();
        let recorded = ends.is_empty() || before_data_end(ends).await;
        if !recorded {
            // Without its record the end of data must not go out.
            session.handle_closed(now_ms());
        }
        while let Some(bytes) = session.poll_transmit() {
            let write = async {
                socket.write_all(&bytes).await?;
                socket.flush().await
            };
            match with_timeout(write, session.write_timeout_ms()).await {
                Some(Ok(())) => session.handle_written(now_ms()),
                Some(Err(_)) => session.handle_closed(now_ms()),
                // The upstream stopped reading; the session ends.
                None => session.handle_write_timeout(now_ms()),
            }
            if session.is_closed() {
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
    // Closing waits for writes still pending: bounded like any write.
    let _ = with_timeout(socket.close(), session.write_timeout_ms()).await;
    SessionEnd { outcomes, failure }
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

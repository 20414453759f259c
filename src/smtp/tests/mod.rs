//! Scripted-server tests for [`SmtpSession`].
//!
//! A test is a transcript: what the client must have written, what the
//! server answers, and driver actions (TLS up, timeout, hang-up). Every
//! transcript runs twice, with server bytes fed all at once and one byte
//! at a time, and both runs must produce the same events.

mod blind_bdat;
mod fuzz;
mod handshake;
mod pipelining;
mod session_failures;
mod transactions;
mod writes;

use std::collections::HashMap;

use super::*;

pub(super) const MESSAGE: &str = "Subject: hi\r\n\r\nbody\r\n";

pub(super) enum Step {
    /// The client must have written exactly this since the last check.
    Client(String),
    /// The server sends these bytes.
    Server(Vec<u8>),
    /// The session asked for TLS and the handshake succeeds.
    TlsUp,
    /// The session asked for TLS and the handshake fails.
    TlsFail,
    /// No reply arrives: the clock jumps to the session's deadline.
    Timeout,
    /// The server closes the connection.
    Hangup,
    /// The caller hands over another envelope mid-session.
    Send(Envelope),
    /// The caller asks for QUIT. Without this step anywhere in the
    /// transcript, the session is told to finish right at the start.
    Finish,
}

pub(super) fn client(text: &str) -> Step {
    Step::Client(text.to_string())
}

pub(super) fn server(text: &str) -> Step {
    Step::Server(text.as_bytes().to_vec())
}

/// The common start of an implicit-TLS session: greeting and EHLO with the
/// given capability lines.
pub(super) fn hello(capabilities: &[&str]) -> Vec<Step> {
    let mut ehlo_reply = String::from("250");
    if capabilities.is_empty() {
        ehlo_reply.push_str(" mx.example\r\n");
    } else {
        ehlo_reply.push_str("-mx.example\r\n");
        for (i, capability) in capabilities.iter().enumerate() {
            let separator = if i + 1 == capabilities.len() {
                ' '
            } else {
                '-'
            };
            ehlo_reply.push_str(&format!("250{separator}{capability}\r\n"));
        }
    }
    vec![
        client(""),
        server("220 mx.example ESMTP\r\n"),
        client("EHLO client.example\r\n"),
        Step::Server(ehlo_reply.into_bytes()),
    ]
}

pub(super) fn config(security: Security) -> SmtpConfig {
    let mut config = SmtpConfig::new("client.example", security);
    config.timeouts = Timeouts {
        greeting_ms: 1_000,
        command_ms: 2_000,
        data_end_ms: 5_000,
        write_ms: 3_000,
    };
    config
}

pub(super) fn envelope(id: u64, recipients: &[&str]) -> Envelope {
    Envelope::new(
        id,
        "from@example.com",
        recipients.iter().map(|r| r.to_string()).collect(),
        MESSAGE,
    )
}

#[derive(Clone, Copy, Debug)]
enum Feed {
    Whole,
    Bytewise,
}

pub(super) struct Run {
    pub events: Vec<Event>,
    /// Every in-flight notice, in order.
    pub in_flight: Vec<InFlight>,
    pub closed: bool,
}

impl Run {
    pub fn outcome(&self, id: u64) -> &TransactionOutcome {
        self.events
            .iter()
            .find_map(|event| match event {
                Event::TransactionDone(outcome) if outcome.id == id => Some(outcome),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no outcome for envelope {id}: {:#?}", self.events))
    }

    /// The kind of each recipient's outcome, in order.
    pub fn kinds(&self, id: u64) -> Vec<OutcomeKind> {
        self.outcome(id)
            .recipients
            .iter()
            .map(|r| r.outcome.kind)
            .collect()
    }

    pub fn closed_failure(&self) -> Option<&Outcome> {
        match self.events.last() {
            Some(Event::Closed { failure }) => failure.as_ref(),
            other => panic!("session not closed, last event {other:?}"),
        }
    }
}

/// Runs `steps` against a session that was handed `envelopes` and told to
/// finish, feeding server bytes both ways; returns the events.
pub(super) fn run(config: SmtpConfig, envelopes: Vec<Envelope>, steps: Vec<Step>) -> Run {
    let mut expected_ids: Vec<u64> = envelopes.iter().map(|e| e.id).collect();
    expected_ids.extend(steps.iter().filter_map(|step| match step {
        Step::Send(envelope) => Some(envelope.id),
        _ => None,
    }));
    let whole = run_with(&config, &envelopes, &steps, Feed::Whole);
    let bytewise = run_with(&config, &envelopes, &steps, Feed::Bytewise);
    assert_eq!(
        whole.events, bytewise.events,
        "whole and bytewise feeding differ"
    );
    if whole.closed {
        assert_one_outcome_each(&whole.events, &expected_ids);
    }
    whole
}

pub(super) fn assert_one_outcome_each(events: &[Event], ids: &[u64]) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for event in events {
        if let Event::TransactionDone(outcome) = event {
            *counts.entry(outcome.id).or_default() += 1;
        }
    }
    for id in ids {
        assert_eq!(
            counts.remove(id),
            Some(1),
            "envelope {id} outcomes in {events:#?}"
        );
    }
    assert!(
        counts.is_empty(),
        "outcomes for unknown envelopes: {counts:?}"
    );
}

fn run_with(config: &SmtpConfig, envelopes: &[Envelope], steps: &[Step], feed: Feed) -> Run {
    let mut now = 0;
    let mut session = SmtpSession::new(config.clone(), now);
    for envelope in envelopes {
        session.send(envelope.clone(), now);
    }
    if !steps.iter().any(|step| matches!(step, Step::Finish)) {
        session.finish(now);
    }
    let mut events = Vec::new();
    let mut in_flight = Vec::new();
    let mut written = Vec::new();
    let mut ends = DataEnds::default();
    let mut tls_requested = false;
    for (index, step) in steps.iter().enumerate() {
        drain(
            &mut session,
            &mut written,
            &mut events,
            &mut in_flight,
            &mut ends,
            &mut tls_requested,
        );
        let context = format!("step {index} ({feed:?})");
        match step {
            Step::Client(expected) => {
                assert_eq!(&String::from_utf8_lossy(&written), expected, "{context}");
                written.clear();
            }
            Step::Server(bytes) => {
                now += 1;
                match feed {
                    Feed::Whole => session.handle_input(bytes, now),
                    Feed::Bytewise => {
                        for byte in bytes {
                            session.handle_input(std::slice::from_ref(byte), now);
                        }
                    }
                }
            }
            Step::TlsUp | Step::TlsFail => {
                assert!(tls_requested, "{context}: TLS not requested");
                assert_eq!(
                    session.poll_timeout(),
                    None,
                    "{context}: no deadline during the handshake"
                );
                tls_requested = false;
                if matches!(step, Step::TlsUp) {
                    session.handle_tls_established(now);
                } else {
                    session.handle_tls_failed("handshake failed", now);
                }
            }
            Step::Timeout => {
                let deadline = session
                    .poll_timeout()
                    .unwrap_or_else(|| panic!("{context}: no deadline"));
                // Waking up early changes nothing.
                session.handle_timeout(deadline - 1);
                assert!(
                    session.poll_event().is_none(),
                    "{context}: early timeout acted"
                );
                now = deadline;
                session.handle_timeout(now);
            }
            Step::Hangup => session.handle_closed(now),
            Step::Send(envelope) => session.send(envelope.clone(), now),
            Step::Finish => session.finish(now),
        }
    }
    drain(
        &mut session,
        &mut written,
        &mut events,
        &mut in_flight,
        &mut ends,
        &mut tls_requested,
    );
    assert_eq!(
        String::from_utf8_lossy(&written),
        "",
        "unchecked client bytes at the end ({feed:?})"
    );
    assert!(!tls_requested, "TLS requested but not handled ({feed:?})");
    Run {
        events,
        in_flight,
        closed: session.is_closed(),
    }
}

/// Ends of data (the piece a final dot or the last byte of `BDAT … LAST`
/// starts, as the session says with `data_end_next`) written so far.
#[derive(Default)]
struct DataEnds {
    seen: usize,
}

fn drain(
    session: &mut SmtpSession,
    written: &mut Vec<u8>,
    events: &mut Vec<Event>,
    in_flight: &mut Vec<InFlight>,
    ends: &mut DataEnds,
    tls_requested: &mut bool,
) {
    // The driver's order: the in-flight notices first, then the bytes. Every
    // end of data in the bytes was announced by exactly one notice before.
    while let Some(notice) = session.poll_in_flight() {
        in_flight.push(notice);
    }
    loop {
        let ends_data = session.data_end_next().is_some();
        let Some(bytes) = session.poll_transmit() else {
            break;
        };
        if ends_data {
            assert!(
                bytes.starts_with(b".\r\n")
                    || bytes.starts_with(b"\n")
                    || bytes.starts_with(b"BDAT 0 LAST"),
                "a data end piece starts with the end of the data: {:?}",
                String::from_utf8_lossy(&bytes)
            );
            ends.seen += 1;
        }
        assert!(
            ends.seen <= in_flight.len(),
            "an end of data written without an in-flight notice first: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        written.extend_from_slice(&bytes);
    }
    assert_eq!(
        ends.seen,
        in_flight.len(),
        "an in-flight notice without its end of data"
    );
    while let Some(event) = session.poll_event() {
        if event == Event::StartTls {
            *tls_requested = true;
        }
        events.push(event);
    }
}

//! aiosmtpd, a real server with STARTTLS, implicit TLS and AUTH: delivery,
//! rejected credentials, and credentials never sent in plaintext unless the
//! upstream is explicitly insecure.

use edgerelay::smtp::{Cause, OutcomeKind, Security};
use rustls::RootCertStore;

use crate::driver::run_session;
use crate::servers::{Aiosmtpd, AiosmtpdMode, tls_client_with};
use crate::{RECIPIENT, SENDER, config, envelope, reply_codes};

#[test]
fn starttls_and_auth_deliver_several_messages_over_one_connection() {
    let Some(server) = Aiosmtpd::start(AiosmtpdMode::StartTls) else {
        return;
    };
    let tls = server.tls_client();
    let cfg = config(Security::StartTls, Some((&server.user, &server.password)));
    let bodies: [&[u8]; 3] = [
        b"Subject: one\r\n\r\nfirst\r\n",
        b"Subject: two\r\n\r\nsecond\r\n",
        b"Subject: three\r\n\r\nthird\r\n",
    ];
    let envelopes = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| envelope(i as u64, b))
        .collect();
    let run = run_session(&server.addr, cfg, Some(&tls), envelopes);
    let report = server.finish();

    assert_eq!(run.failure, None, "the session ended with a clean QUIT");
    for id in 0..bodies.len() as u64 {
        let outcome = &run.outcome(id).outcome;
        assert_eq!(outcome.kind, OutcomeKind::Delivered, "{outcome}");
        assert_eq!(reply_codes(outcome).map(|c| c.0), Some(250));
    }
    assert_eq!(report.connections, 1);
    assert_eq!(report.auth_attempts, 1);
    let received: Vec<Vec<u8>> = report.messages.iter().map(|m| m.data()).collect();
    assert_eq!(received, bodies.map(<[u8]>::to_vec).to_vec());
    for m in &report.messages {
        assert_eq!(m.mail_from, SENDER);
        assert_eq!(m.rcpt_tos, vec![RECIPIENT.to_string()]);
    }
    // The server demands TLS before AUTH: nothing after STARTTLS was sent in
    // the clear. The driver logs writes before encryption, so the AUTH line
    // follows the STARTTLS command.
    let starttls = run
        .written
        .iter()
        .position(|w| w == b"STARTTLS\r\n")
        .expect("STARTTLS was sent");
    let auth = run
        .written
        .iter()
        .position(|w| w.starts_with(b"AUTH "))
        .expect("AUTH was sent");
    assert!(starttls < auth);
}

#[test]
fn implicit_tls_delivers() {
    let Some(server) = Aiosmtpd::start(AiosmtpdMode::ImplicitTls) else {
        return;
    };
    let tls = server.tls_client();
    let cfg = config(
        Security::ImplicitTls,
        Some((&server.user, &server.password)),
    );
    let run = run_session(&server.addr, cfg, Some(&tls), vec![envelope(7, b"Hi\r\n")]);
    let report = server.finish();
    assert_eq!(run.outcome(7).outcome.kind, OutcomeKind::Delivered);
    assert_eq!(report.messages.len(), 1);
    assert_eq!(report.messages[0].data(), b"Hi\r\n");
}

/// A wrong password is the relay's configuration problem, not the message's.
#[test]
fn wrong_password_is_a_configuration_outcome_with_535() {
    let Some(server) = Aiosmtpd::start(AiosmtpdMode::StartTls) else {
        return;
    };
    let tls = server.tls_client();
    let cfg = config(Security::StartTls, Some((&server.user, "not-the-password")));
    let run = run_session(&server.addr, cfg, Some(&tls), vec![envelope(1, b"Hi\r\n")]);
    let report = server.finish();

    let outcome = &run.outcome(1).outcome;
    assert_eq!(outcome.kind, OutcomeKind::Configuration, "{outcome}");
    assert_eq!(reply_codes(outcome), Some((535, Some("5.7.8".into()))));
    assert_eq!(
        run.failure.as_ref().map(|f| f.kind),
        Some(OutcomeKind::Configuration)
    );
    assert_eq!(report.auth_attempts, 1);
    assert!(report.messages.is_empty());
    assert!(
        report.rcpt_commands.is_empty(),
        "no transaction after failed AUTH"
    );
}

/// An untrusted certificate fails the handshake: a configuration outcome,
/// and no credentials or mail sent.
#[test]
fn untrusted_certificate_is_a_configuration_outcome() {
    let Some(server) = Aiosmtpd::start(AiosmtpdMode::StartTls) else {
        return;
    };
    let untrusting = tls_client_with(RootCertStore::empty());
    let cfg = config(Security::StartTls, Some((&server.user, &server.password)));
    let run = run_session(
        &server.addr,
        cfg,
        Some(&untrusting),
        vec![envelope(1, b"Hi\r\n")],
    );
    let report = server.finish();

    let outcome = &run.outcome(1).outcome;
    assert_eq!(outcome.kind, OutcomeKind::Configuration, "{outcome}");
    assert!(matches!(outcome.cause, Cause::TlsFailed(_)), "{outcome}");
    assert_eq!(report.auth_attempts, 0);
    assert!(report.messages.is_empty());
}

/// A server that offers no TLS: credentials go out only when the upstream
/// was configured as insecure.
#[test]
fn plaintext_auth_only_when_configured_insecure() {
    // (client security, expected kind, expected cause, AUTH attempts seen)
    let table = [
        (
            Security::StartTls,
            OutcomeKind::Configuration,
            Some(Cause::StartTlsNotOffered),
            0,
        ),
        (Security::Insecure, OutcomeKind::Delivered, None, 1),
    ];
    for (security, kind, cause, auth_attempts) in table {
        let Some(server) = Aiosmtpd::start(AiosmtpdMode::Plain) else {
            return;
        };
        let cfg = config(security, Some((&server.user, &server.password)));
        let run = run_session(&server.addr, cfg, None, vec![envelope(1, b"Hi\r\n")]);
        let report = server.finish();
        let outcome = &run.outcome(1).outcome;
        assert_eq!(outcome.kind, kind, "{security:?}: {outcome}");
        if let Some(cause) = cause {
            assert_eq!(outcome.cause, cause, "{security:?}");
        }
        assert_eq!(report.auth_attempts, auth_attempts, "{security:?}");
        let never_sent_auth = !run.written.iter().any(|w| w.starts_with(b"AUTH"));
        assert_eq!(never_sent_auth, auth_attempts == 0, "{security:?}");
        assert_eq!(
            report.messages.len(),
            usize::from(kind == OutcomeKind::Delivered)
        );
    }
}

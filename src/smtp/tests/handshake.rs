//! Greeting, EHLO/HELO, STARTTLS and AUTH.

use super::*;

/// Lock-step delivery of one message to to@example.com, then QUIT.
fn lockstep_delivery() -> Vec<Step> {
    vec![
        client("MAIL FROM:<from@example.com>\r\n"),
        server("250 ok\r\n"),
        client("RCPT TO:<to@example.com>\r\n"),
        server("250 ok\r\n"),
        client("DATA\r\n"),
        server("354 go\r\n"),
        client(&format!("{MESSAGE}.\r\n")),
        server("250 2.0.0 queued as X\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ]
}

fn with_password(mut config: SmtpConfig) -> SmtpConfig {
    config.credentials = Some(Credentials::password("user", "pass"));
    config
}

#[test]
fn greeting_ehlo_and_quit_without_mail() {
    let mut steps = hello(&["PIPELINING"]);
    steps.extend([client("QUIT\r\n"), server("221 bye\r\n")]);
    let run = run(config(Security::ImplicitTls), vec![], steps);
    assert_eq!(run.events, vec![Event::Closed { failure: None }]);
}

#[test]
fn starttls_then_ehlo_again_then_auth_plain() {
    let steps = vec![
        server("220 mx.example ESMTP\r\n"),
        client("EHLO client.example\r\n"),
        // AUTH is advertised in plaintext but must not be used before TLS.
        server("250-mx.example\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"),
        client("STARTTLS\r\n"),
        // Bytes after the 220 arrived before the handshake: discarded.
        server("220 2.0.0 go ahead\r\n554 injected\r\n250-inj"),
        Step::TlsUp,
        client("EHLO client.example\r\n"),
        server("250-mx.example\r\n250 AUTH PLAIN\r\n"),
        client("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        server("235 2.7.0 ok\r\n"),
    ]
    .into_iter()
    .chain(lockstep_delivery())
    .collect();
    let run = run(
        with_password(config(Security::StartTls)),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
    assert_eq!(run.closed_failure(), None);
}

#[test]
fn starttls_not_offered_is_a_configuration_error_and_sends_nothing_else() {
    let steps = vec![
        server("220 mx.example ESMTP\r\n"),
        client("EHLO client.example\r\n"),
        server("250-mx.example\r\n250 AUTH PLAIN\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ];
    let run = run(
        with_password(config(Security::StartTls)),
        vec![
            envelope(1, &["to@example.com"]),
            envelope(2, &["b@example.com"]),
        ],
        steps,
    );
    for id in [1, 2] {
        let outcome = &run.outcome(id).outcome;
        assert!(
            outcome.is_configuration() && !outcome.is_permanent(),
            "{outcome:?}"
        );
        assert_eq!(outcome.cause, Cause::StartTlsNotOffered);
    }
    assert_eq!(
        run.closed_failure().map(|f| &f.cause),
        Some(&Cause::StartTlsNotOffered)
    );
}

#[test]
fn starttls_refused_with_454_is_transient() {
    let steps = vec![
        server("220 mx.example ESMTP\r\n"),
        client("EHLO client.example\r\n"),
        server("250-mx.example\r\n250 STARTTLS\r\n"),
        client("STARTTLS\r\n"),
        server("454 4.7.0 TLS not available\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ];
    let run = run(
        config(Security::StartTls),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert_eq!(run.kinds(1), vec![OutcomeKind::Transient]);
}

#[test]
fn tls_handshake_failure_is_a_configuration_error() {
    let steps = vec![
        server("220 mx.example ESMTP\r\n"),
        client("EHLO client.example\r\n"),
        server("250-mx.example\r\n250 STARTTLS\r\n"),
        client("STARTTLS\r\n"),
        server("220 go ahead\r\n"),
        Step::TlsFail,
    ];
    let run = run(
        config(Security::StartTls),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    let outcome = &run.outcome(1).outcome;
    assert!(outcome.is_configuration());
    assert!(matches!(outcome.cause, Cause::TlsFailed(_)));
    assert!(run.closed);
}

#[test]
fn auth_plain_rejected_with_535_is_a_configuration_error() {
    let mut steps = hello(&["AUTH LOGIN PLAIN"]);
    steps.extend([
        client("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        server("535 5.7.8 Authentication credentials invalid\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ]);
    let run = run(
        with_password(config(Security::ImplicitTls)),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    let outcome = &run.outcome(1).outcome;
    assert!(outcome.is_configuration() && !outcome.is_permanent() && !outcome.is_transient());
    let reply = outcome
        .reply
        .as_ref()
        .map(|r| (r.code, r.enhanced.map(|e| e.to_string())));
    assert_eq!(reply, Some((535, Some("5.7.8".to_string()))));
}

#[test]
fn auth_temporary_failure_454_is_transient() {
    let mut steps = hello(&["AUTH PLAIN"]);
    steps.extend([
        client("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        server("454 4.7.0 try later\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ]);
    let run = run(
        with_password(config(Security::ImplicitTls)),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert_eq!(run.kinds(1), vec![OutcomeKind::Transient]);
}

#[test]
fn auth_login_when_plain_is_not_offered() {
    let mut steps = hello(&["AUTH LOGIN"]);
    steps.extend([
        client("AUTH LOGIN\r\n"),
        server("334 VXNlcm5hbWU6\r\n"),
        client("dXNlcg==\r\n"),
        server("334 UGFzc3dvcmQ6\r\n"),
        client("cGFzcw==\r\n"),
        server("235 ok\r\n"),
    ]);
    steps.extend(lockstep_delivery());
    let run = run(
        with_password(config(Security::ImplicitTls)),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn xoauth2_error_challenge_is_acknowledged_then_configuration_error() {
    let mut config = config(Security::ImplicitTls);
    config.credentials = Some(Credentials::OAuth2 {
        username: "u".into(),
        access_token: "t".into(),
    });
    let mut steps = hello(&["AUTH PLAIN XOAUTH2"]);
    steps.extend([
        client("AUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==\r\n"),
        server("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
        client("\r\n"),
        server("535 5.7.8 bad token\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ]);
    let run = run(config, vec![envelope(1, &["to@example.com"])], steps);
    assert!(run.outcome(1).outcome.is_configuration());
}

#[test]
fn credentials_without_usable_mechanism_are_a_configuration_error() {
    let mut steps = hello(&["AUTH CRAM-MD5"]);
    steps.extend([client("QUIT\r\n"), server("221 bye\r\n")]);
    let run = run(
        with_password(config(Security::ImplicitTls)),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert_eq!(run.outcome(1).outcome.cause, Cause::AuthNotOffered);
    assert!(run.outcome(1).outcome.is_configuration());
}

#[test]
fn insecure_mode_authenticates_in_plaintext_and_ignores_starttls() {
    let mut steps = hello(&["STARTTLS", "AUTH PLAIN"]);
    steps.extend([
        client("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"),
        server("235 ok\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ]);
    let run = run(with_password(config(Security::Insecure)), vec![], steps);
    assert_eq!(run.closed_failure(), None);
}

#[test]
fn ehlo_rejected_falls_back_to_helo_without_extensions() {
    let steps = vec![
        server("220 old.example SMTP\r\n"),
        client("EHLO client.example\r\n"),
        server("502 5.5.2 command not recognised\r\n"),
        client("HELO client.example\r\n"),
        server("250 old.example\r\n"),
    ]
    .into_iter()
    .chain(lockstep_delivery())
    .collect();
    let run = run(
        config(Security::ImplicitTls),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert!(run.outcome(1).outcome.is_delivered());
}

#[test]
fn helo_fallback_cannot_satisfy_starttls() {
    let steps = vec![
        server("220 old.example SMTP\r\n"),
        client("EHLO client.example\r\n"),
        server("500 what\r\n"),
        client("HELO client.example\r\n"),
        server("250 old.example\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ];
    let run = run(
        config(Security::StartTls),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert_eq!(run.outcome(1).outcome.cause, Cause::StartTlsNotOffered);
}

#[test]
fn greeting_554_is_a_configuration_error_and_quits() {
    let steps = vec![
        server("554 5.7.1 no service for you\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ];
    let run = run(
        config(Security::ImplicitTls),
        vec![envelope(1, &["to@example.com"])],
        steps,
    );
    assert!(run.outcome(1).outcome.is_configuration());
    assert!(run.closed);
}

#[test]
fn invalid_ehlo_name_is_never_sent() {
    let mut config = config(Security::ImplicitTls);
    config.ehlo_name = "client.example\r\nMAIL FROM:<x>".into();
    let steps = vec![
        server("220 mx.example ESMTP\r\n"),
        client("QUIT\r\n"),
        server("221 bye\r\n"),
    ];
    let run = run(config, vec![envelope(1, &["to@example.com"])], steps);
    assert_eq!(run.outcome(1).outcome.cause, Cause::InvalidEhloName);
}

#[test]
fn deadlines_follow_the_step_being_waited_for() {
    let mut session = SmtpSession::new(config(Security::ImplicitTls), 100);
    assert_eq!(session.poll_timeout(), Some(1_100), "greeting");
    session.handle_input(b"220 hi\r\n", 150);
    assert_eq!(session.poll_timeout(), Some(2_150), "EHLO");
    session.send(envelope(1, &["to@example.com"]), 160);
    session.handle_input(b"250 mx\r\n", 200);
    assert_eq!(session.poll_timeout(), Some(2_200), "MAIL");
    session.handle_input(b"250 ok\r\n250 ok\r\n", 300);
    assert_eq!(session.poll_timeout(), Some(2_300), "DATA");
    session.handle_input(b"354 go\r\n", 400);
    assert_eq!(session.poll_timeout(), Some(5_400), "end of data");
    session.handle_input(b"250 ok\r\n", 500);
    assert_eq!(session.poll_timeout(), None, "idle: nothing awaited");
}

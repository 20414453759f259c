//! The sans-IO SMTP client against real servers on loopback: aiosmtpd with
//! STARTTLS, implicit TLS and AUTH, Postfix's smtp-sink with its fault
//! injection, and a server that stops reading after DATA, driven by a small
//! blocking driver (`driver`). Each test checks
//! the outcome the client records: kind, reply code and enhanced code.

mod aiosmtpd;
mod driver;
mod servers;
mod smtp_sink;
mod smuggling;
mod stalling;

use edgerelay::smtp::{Credentials, Envelope, Outcome, Security, SmtpConfig, Timeouts};

pub const SENDER: &str = "sender@example.com";
pub const RECIPIENT: &str = "rcpt@example.net";

/// A session configuration with timeouts short enough for tests.
pub fn config(security: Security, credentials: Option<(&str, &str)>) -> SmtpConfig {
    let mut config = SmtpConfig::new("client.test", security);
    config.credentials = credentials.map(|(u, p)| Credentials::password(u, p));
    config.timeouts = Timeouts {
        greeting_ms: 5_000,
        command_ms: 5_000,
        data_end_ms: 5_000,
        write_ms: 5_000,
    };
    config
}

/// An envelope from SENDER to RECIPIENT with this content.
pub fn envelope(id: u64, data: &[u8]) -> Envelope {
    Envelope::new(id, SENDER, vec![RECIPIENT.to_string()], data.to_vec())
}

/// `(code, "x.y.z")` of the reply that decided an outcome, if any.
pub fn reply_codes(outcome: &Outcome) -> Option<(u16, Option<String>)> {
    outcome.reply.as_ref().map(|r| {
        let enhanced = r
            .enhanced
            .map(|e| format!("{}.{}.{}", e.class, e.subject, e.detail));
        (r.code, enhanced)
    })
}

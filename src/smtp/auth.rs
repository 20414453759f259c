//! SMTP AUTH (RFC 4954): credentials and the client side of the PLAIN,
//! LOGIN and XOAUTH2 exchanges.
//!
//! Owns: choosing a mechanism among those offered (PLAIN before LOGIN, an
//! OAuth token only over XOAUTH2) and encoding each line. Must not: decide
//! whether to authenticate (the session sends credentials only over TLS), or
//! let a password or token show in `Debug` output.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::capabilities::AuthMechanisms;

/// Credentials for the upstream server.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username and password: AUTH PLAIN when offered, else AUTH LOGIN.
    Password { username: String, password: String },
    /// OAuth 2.0 bearer token: AUTH XOAUTH2 only.
    OAuth2 {
        username: String,
        access_token: String,
    },
}

impl Credentials {
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Password {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Secrets never reach logs through `{:?}`.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::OAuth2 { username, .. } => f
                .debug_struct("OAuth2")
                .field("username", username)
                .field("access_token", &"<redacted>")
                .finish(),
        }
    }
}

/// The mechanism the session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    Login,
    XOAuth2,
}

/// Picks the mechanism for these credentials among those offered, or
/// `None` when there is no usable one.
pub(crate) fn choose_mechanism(
    credentials: &Credentials,
    offered: AuthMechanisms,
) -> Option<Mechanism> {
    match credentials {
        // PLAIN takes one round trip where LOGIN takes three.
        Credentials::Password { .. } if offered.plain => Some(Mechanism::Plain),
        Credentials::Password { .. } if offered.login => Some(Mechanism::Login),
        Credentials::OAuth2 { .. } if offered.xoauth2 => Some(Mechanism::XOAuth2),
        _ => None,
    }
}

/// The first AUTH command line for `mechanism`, including the initial
/// response where the mechanism has one.
pub(crate) fn initial_command(credentials: &Credentials, mechanism: Mechanism) -> String {
    match (mechanism, credentials) {
        (Mechanism::Plain, Credentials::Password { username, password }) => {
            // authzid (empty) NUL authcid NUL passwd (RFC 4616).
            let message = format!("\0{username}\0{password}");
            format!("AUTH PLAIN {}\r\n", BASE64.encode(message))
        }
        (
            Mechanism::XOAuth2,
            Credentials::OAuth2 {
                username,
                access_token,
            },
        ) => {
            let message = format!("user={username}\x01auth=Bearer {access_token}\x01\x01");
            format!("AUTH XOAUTH2 {}\r\n", BASE64.encode(message))
        }
        _ => "AUTH LOGIN\r\n".to_string(),
    }
}

/// A base64 response line for the LOGIN challenges.
pub(crate) fn encoded_line(value: &str) -> String {
    format!("{}\r\n", BASE64.encode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_plain_then_login() {
        let creds = Credentials::password("u", "p");
        let both = AuthMechanisms {
            plain: true,
            login: true,
            xoauth2: true,
        };
        let login_only = AuthMechanisms {
            login: true,
            ..Default::default()
        };
        assert_eq!(choose_mechanism(&creds, both), Some(Mechanism::Plain));
        assert_eq!(choose_mechanism(&creds, login_only), Some(Mechanism::Login));
        assert_eq!(choose_mechanism(&creds, AuthMechanisms::default()), None);
    }

    #[test]
    fn oauth2_needs_xoauth2() {
        let creds = Credentials::OAuth2 {
            username: "u".into(),
            access_token: "t".into(),
        };
        let plain = AuthMechanisms {
            plain: true,
            ..Default::default()
        };
        assert_eq!(choose_mechanism(&creds, plain), None);
        assert_eq!(
            initial_command(&creds, Mechanism::XOAuth2),
            "AUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==\r\n"
        );
    }

    #[test]
    fn plain_initial_response() {
        let creds = Credentials::password("user", "pass");
        assert_eq!(
            initial_command(&creds, Mechanism::Plain),
            "AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", Credentials::password("alice", "hunter2"));
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}

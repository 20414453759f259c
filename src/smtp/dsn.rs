//! Delivery status notifications asked for in the envelope (RFC 3461): the
//! `RET` and `ENVID` parameters of MAIL and the `NOTIFY` and `ORCPT`
//! parameters of RCPT, sent only to a server that advertised `DSN`.
//!
//! They let a report that comes back later be matched to the message
//! (`ENVID`) and recipient (`ORCPT`) even when a smarthost rewrites the
//! return path, and say which reports are wanted.
//! Owns the parameters' text and their xtext encoding. Must not: decide
//! whether a message asks for notifications (the caller's request says so),
//! or write a parameter a server did not offer.

/// Which reports to ask for, for every recipient of a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// What a message asks of a DSN-capable server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsnRequest {
    /// The envelope id reports will carry (`Original-Envelope-Id`).
    pub envid: String,
    pub notify: Notify,
    /// Ask for the headers only in a failure report (`RET=HDRS`), never the
    /// whole message back.
    pub headers_only: bool,
}

/// Longest ENVID (RFC 3461 §4.4: 100 characters before encoding).
pub const MAX_ENVID_LEN: usize = 100;

/// `text` as xtext (RFC 3461 §4): printable ASCII other than `+` and `=`
/// as itself, every other byte as `+` and two upper-case hex digits.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

impl DsnRequest {
    /// The parameters MAIL FROM carries, each after a space; empty when the
    /// ENVID is too long or empty (it is left out rather than truncated).
    pub fn mail_parameters(&self) -> String {
        let mut out = String::new();
        if self.headers_only {
            out.push_str(" RET=HDRS");
        }
        if !self.envid.is_empty() && self.envid.len() <= MAX_ENVID_LEN {
            out.push_str(" ENVID=");
            out.push_str(&xtext(&self.envid));
        }
        out
    }

    /// The parameters RCPT TO carries for `address`. ORCPT is only written
    /// for an ASCII address (an internationalised one would need the
    /// `utf-8` address type of RFC 6533, which not every server takes).
    pub fn rcpt_parameters(&self, address: &str) -> String {
        let Notify {
            success,
            failure,
            delay,
        } = self.notify;
        let mut out = String::from(" NOTIFY=");
        if !(success || failure || delay) {
            out.push_str("NEVER");
        } else {
            let words: Vec<&str> = [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                .into_iter()
                .filter_map(|(on, word)| on.then_some(word))
                .collect();
            out.push_str(&words.join(","));
        }
        if address.is_ascii() && !address.is_empty() {
            out.push_str(" ORCPT=rfc822;");
            out.push_str(&xtext(address));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_table() {
        let table = [
            ("plain@example.com", "plain@example.com"),
            ("a+tag@example.com", "a+2Btag@example.com"),
            ("k=v", "k+3Dv"),
            ("a b", "a+20b"),
            ("line\r\nRCPT TO:<x>", "line+0D+0ARCPT+20TO:<x>"),
            ("ü", "+C3+BC"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(xtext(input), want, "{input:?}");
        }
    }

    #[test]
    fn xtext_never_leaves_a_space_or_control_character() {
        let all: String = (0u8..=127).map(char::from).collect();
        let encoded = xtext(&all);
        assert!(
            encoded.bytes().all(|b| (33..=126).contains(&b)),
            "{encoded}"
        );
    }

    fn request(notify: Notify) -> DsnRequest {
        DsnRequest {
            envid: "4f3c9a".into(),
            notify,
            headers_only: true,
        }
    }

    #[test]
    fn parameters_table() {
        let failure_delay = Notify {
            failure: true,
            delay: true,
            ..Notify::default()
        };
        let all = Notify {
            success: true,
            failure: true,
            delay: true,
        };
        let table: &[(Notify, &str, &str)] = &[
            (
                failure_delay,
                "bob@example.net",
                " NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.net",
            ),
            (
                all,
                "a+b@example.net",
                " NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+2Bb@example.net",
            ),
            (
                Notify::default(),
                "bob@example.net",
                " NOTIFY=NEVER ORCPT=rfc822;bob@example.net",
            ),
            (failure_delay, "ü@example.net", " NOTIFY=FAILURE,DELAY"),
        ];
        for (notify, address, want) in table {
            assert_eq!(
                request(*notify).rcpt_parameters(address),
                *want,
                "{address}"
            );
        }
        assert_eq!(request(all).mail_parameters(), " RET=HDRS ENVID=4f3c9a");
        let long = DsnRequest {
            envid: "x".repeat(MAX_ENVID_LEN + 1),
            notify: all,
            headers_only: false,
        };
        assert_eq!(long.mail_parameters(), "");
    }
}

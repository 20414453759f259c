//! Property tests of the address parsers: no input panics, nothing that
//! parses carries a character that could break a header or an SMTP command
//! (CR, LF, NUL, angle brackets, spaces in an address), and an address
//! parses back to itself from its own rendering.
//!
//! `cargo test` runs proptest's default number of cases; `make proptest`
//! runs many more (`PROPTEST_CASES`).

use proptest::prelude::*;

use super::*;

/// Strings that look like addresses, with hostile characters mixed in.
fn address_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9._%+!#$&'*/=?^`{|}~-]{1,12}",
        Just("@".to_string()),
        Just(".".to_string()),
        Just("\r\n".to_string()),
        Just("\0".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just(" ".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("xn--".to_string()),
        "[\\u{80}-\\u{10ffff}]{1,3}",
        "[a-z]{1,10}\\.[a-z]{2,5}",
    ];
    prop::collection::vec(piece, 1..8).prop_map(|pieces| pieces.concat())
}

fn no_smuggling(text: &str) -> bool {
    !text.contains(['\r', '\n', '\0'])
}

proptest! {
    #[test]
    fn addresses_parse_safely_and_round_trip(input in prop_oneof![address_like(), any::<String>()]) {
        if let Ok(address) = EmailAddress::parse(&input) {
            let rendered = address.to_string();
            prop_assert!(no_smuggling(&rendered), "{rendered:?}");
            prop_assert!(!rendered.contains(['<', '>', ' ', '"']), "{rendered:?}");
            prop_assert!(rendered.len() <= MAX_ADDRESS);
            prop_assert_eq!(EmailAddress::parse(&rendered), Ok(address.clone()));
            prop_assert_eq!(Domain::parse(address.domain().as_str()), Ok(address.domain().clone()));
        }
    }

    #[test]
    fn domains_parse_safely_and_round_trip(input in prop_oneof![address_like(), any::<String>()]) {
        if let Ok(domain) = Domain::parse(&input) {
            let rendered = domain.to_string();
            prop_assert!(rendered.is_ascii() && no_smuggling(&rendered), "{rendered:?}");
            prop_assert_eq!(Domain::parse(&rendered), Ok(domain));
        }
    }

    #[test]
    fn mailboxes_parse_safely(
        name in prop_oneof!["[ -~]{0,20}", any::<String>()],
        address in address_like(),
        form in 0..3usize,
    ) {
        let input = match form {
            0 => format!("{name} <{address}>"),
            1 => format!("\"{name}\" <{address}>"),
            _ => address.clone(),
        };
        if let Ok(mailbox) = Mailbox::parse(&input) {
            prop_assert!(no_smuggling(&mailbox.address.to_string()));
            if let Some(name) = &mailbox.name {
                prop_assert!(no_smuggling(name), "{name:?}");
            }
            // The address alone parses back to the same address.
            prop_assert_eq!(
                EmailAddress::parse(&mailbox.address.to_string()),
                Ok(mailbox.address.clone())
            );
        }
    }
}

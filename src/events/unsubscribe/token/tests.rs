use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

const SECRET: &str = "unsubscribe-secret-0123456789abcdef";
const OLD: &str = "retired-unsubscribe-secret-0123456789";
const OTHER: &str = "another-deployment-secret-0123456789";

fn secrets(raw: &str) -> TokenSecrets {
    TokenSecrets::parse(raw).unwrap()
}

fn claim(recipient: &str) -> Claim {
    Claim {
        tenant: "acme".into(),
        key_id: "backend".into(),
        stream: "marketing".into(),
        topic: Some("weekly".into()),
        recipient: recipient.into(),
        message_id: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn nonce(seed: u8) -> [u8; NONCE_LEN] {
    [seed; NONCE_LEN]
}

fn issue(raw: &str, claim: &Claim, seed: u8) -> String {
    secrets(raw).issue(claim, &nonce(seed)).unwrap()
}

/// The token's bytes, changed by `change`, as a token again.
fn altered(token: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    change(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn a_token_opens_to_its_claim() {
    for topic in [Some("weekly".to_string()), None] {
        let mut c = claim("ada@example.com");
        c.topic = topic;
        let token = issue(SECRET, &c, 7);
        assert_eq!(secrets(SECRET).open(&token), Ok(c.clone()));
        // URL-safe as it stands: no escaping needed in a header or a path.
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
    }
}

/// Rows: (secrets that open, token, expected).
#[test]
fn forged_altered_and_foreign_tokens_are_refused() {
    let ada = claim("ada@example.com");
    let token = issue(SECRET, &ada, 1);
    let bob_token = issue(SECRET, &claim("bob@example.com"), 2);
    let old_token = issue(OLD, &ada, 3);
    let other_token = issue(OTHER, &ada, 4);
    let rotated = format!("{SECRET}, {OLD}");

    // A recipient who knows the plaintext layout flips the ciphertext bits
    // that spell their address into another address of the same length:
    // the stream cipher alone would let that through; the MAC must not.
    let offset = 1
        + NONCE_LEN
        + ["acme", "backend", "marketing", "weekly"]
            .iter()
            .map(|f| 1 + f.len())
            .sum::<usize>()
        + 1;
    let to_eve = altered(&token, |bytes| {
        for (i, (a, e)) in "ada@example.com"
            .bytes()
            .zip("eve@example.com".bytes())
            .enumerate()
        {
            bytes[offset + i] ^= a ^ e;
        }
    });
    // Bob's ciphertext with Ada's nonce and tag, and the other way round.
    let spliced = {
        let ada_bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let bob_bytes = URL_SAFE_NO_PAD.decode(&bob_token).unwrap();
        let mut out = ada_bytes[..1 + NONCE_LEN].to_vec();
        out.extend_from_slice(&bob_bytes[1 + NONCE_LEN..]);
        URL_SAFE_NO_PAD.encode(out)
    };
    let version_2 = altered(&token, |b| b[0] = 2);
    let truncated = altered(&token, |b| {
        b.pop();
    });
    let extended = altered(&token, |b| b.push(0));
    let short = URL_SAFE_NO_PAD.encode([1u8; 1 + NONCE_LEN + TAG_LEN - 1]);
    let zeros = URL_SAFE_NO_PAD.encode([1u8; 64]);
    let padded = format!("{token}=");
    let standard_alphabet = format!("{}+/", &token[..token.len() - 2]);
    let huge = "A".repeat(MAX_TOKEN_CHARS + 1);

    let table: Vec<(&str, &str, Result<Claim, TokenError>)> = vec![
        (SECRET, &token, Ok(ada.clone())),
        (&rotated, &token, Ok(ada.clone())),
        (&rotated, &old_token, Ok(ada.clone())),
        (SECRET, &old_token, Err(TokenError::Forged)),
        (SECRET, &other_token, Err(TokenError::Forged)),
        (OTHER, &token, Err(TokenError::Forged)),
        (SECRET, &to_eve, Err(TokenError::Forged)),
        (SECRET, &spliced, Err(TokenError::Forged)),
        (SECRET, &version_2, Err(TokenError::UnknownVersion)),
        (SECRET, &truncated, Err(TokenError::Forged)),
        (SECRET, &extended, Err(TokenError::Forged)),
        (SECRET, &short, Err(TokenError::Malformed)),
        (SECRET, &zeros, Err(TokenError::Forged)),
        (SECRET, &padded, Err(TokenError::Malformed)),
        (SECRET, &standard_alphabet, Err(TokenError::Malformed)),
        (SECRET, "", Err(TokenError::Malformed)),
        (SECRET, "not a token", Err(TokenError::Malformed)),
        (SECRET, &huge, Err(TokenError::Malformed)),
    ];
    for (row, (raw, token, expected)) in table.iter().enumerate() {
        assert_eq!(&secrets(raw).open(token), expected, "row {row}");
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let token = issue(SECRET, &claim("ada@example.com"), 9);
    let len = URL_SAFE_NO_PAD.decode(&token).unwrap().len();
    for i in 0..len {
        for bit in 0..8 {
            let flipped = altered(&token, |b| b[i] ^= 1 << bit);
            let opened = secrets(SECRET).open(&flipped);
            assert!(opened.is_err(), "byte {i} bit {bit} opened: {opened:?}");
        }
    }
}

#[test]
fn a_token_reveals_nothing_it_names() {
    let c = claim("ada.lovelace@example.com");
    let first = issue(SECRET, &c, 1);
    let second = issue(SECRET, &c, 2);
    // A fresh nonce makes every token new, even for the same claim.
    assert_ne!(first, second);
    let decoded = URL_SAFE_NO_PAD.decode(&first).unwrap();
    for field in [
        "acme",
        "backend",
        "marketing",
        "weekly",
        "ada.lovelace",
        "example.com",
        "0123456789abcdef",
    ] {
        assert!(!first.contains(field), "{field} shows in the token");
        assert!(
            !decoded.windows(field.len()).any(|w| w == field.as_bytes()),
            "{field} shows in the token's bytes"
        );
        let encoded = URL_SAFE_NO_PAD.encode(field);
        assert!(!first.contains(&encoded[..encoded.len() - 2]));
    }
    // Debug output of the claim or the secrets names nothing either.
    assert_eq!(format!("{c:?}"), "Claim(redacted)");
    assert!(!format!("{:?}", secrets(SECRET)).contains("unsubscribe-secret"));
}

#[test]
fn secrets_are_checked_and_fields_bounded() {
    for (raw, expected) in [
        ("", Err("lists no secret".to_string())),
        (" , ", Err("lists no secret".to_string())),
        (
            "short",
            Err("secret 1 of 1 is shorter than 32 characters".to_string()),
        ),
        (
            &format!("{SECRET},short") as &str,
            Err("secret 2 of 2 is shorter than 32 characters".to_string()),
        ),
    ] {
        assert_eq!(TokenSecrets::parse(raw).map(|_| ()), expected, "{raw}");
    }
    let mut long = claim("ada@example.com");
    long.recipient = format!("{}@example.com", "a".repeat(250));
    assert_eq!(
        secrets(SECRET).issue(&long, &nonce(0)),
        Err(TokenError::FieldTooLong)
    );
    // A 255-byte field is the largest that fits, and round-trips.
    long.recipient = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long.recipient.len(), 255);
    let token = secrets(SECRET).issue(&long, &nonce(0)).unwrap();
    assert_eq!(secrets(SECRET).open(&token), Ok(long));
}

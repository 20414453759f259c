//! DKIM tests: key loading in every accepted format, and signatures checked by
//! two independent verifiers (mail-auth and dkimpy).
//!
//! The keys under `testdata/` are throwaway keys generated for these tests.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use mail_auth::DkimResult;
use serde_json::json;

use super::verifiers::{Records, dkimpy_results, mail_auth_results};
use super::*;
use crate::message::error::DkimKeyError;
use crate::message::{ComposeContext, Limits, SendRequest, compose, new_message_id};

const RSA_PKCS8_PEM: &str = include_str!("testdata/rsa2048.pkcs8.pem");
const RSA_PKCS1_PEM: &str = include_str!("testdata/rsa2048.pkcs1.pem");
const RSA_512_PEM: &str = include_str!("testdata/rsa512.pkcs8.pem");
const ED25519_PKCS8_PEM: &str = include_str!("testdata/ed25519.pkcs8.pem");
const P256_PEM: &str = include_str!("testdata/p256.pkcs8.pem");
const TIMESTAMP: u64 = 1_700_000_000;

fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

fn rsa_key() -> DkimKey {
    DkimKey::from_config(
        "example.com",
        "rsa2024",
        DkimAlgorithm::RsaSha256,
        RSA_PKCS8_PEM,
    )
    .unwrap()
}

fn ed25519_key() -> DkimKey {
    DkimKey::from_config(
        "example.com",
        "ed2024",
        DkimAlgorithm::Ed25519Sha256,
        ED25519_PKCS8_PEM,
    )
    .unwrap()
}

fn records(keys: &[&DkimKey]) -> Records {
    keys.iter()
        .map(|key| (key.identity().dns_name(), key.dns_txt_record().unwrap()))
        .collect()
}

/// A realistic message from the composer: html + text + attachment.
fn composed() -> Vec<u8> {
    let request = json!({
        "from": "Ada Lovelace <ada@example.com>",
        "to": ["bob@example.net", "Zoë <zoe@example.org>"],
        "cc": "carol@example.net",
        "reply_to": "replies@example.com",
        "subject": "Grüße — the analytical engine",
        "text": "Hello  Bob,\n\nsee attached.   \n\n\n",
        "html": "<p>Hello Bob</p>",
        "headers": {
            "X-Campaign": "spring",
            "List-Unsubscribe": "<https://example.com/u/1>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "attachments": [{"filename": "notes.txt", "content": "bm90ZXM="}],
    });
    let message = SendRequest::from_json(request.to_string().as_bytes())
        .unwrap()
        .validate(&Limits::default())
        .unwrap();
    let context = ComposeContext {
        message_id: new_message_id(message.from().address.domain(), &[7; 16]),
        date_unix: TIMESTAMP as i64,
        feedback_loop: crate::message::FeedbackLoop::new(
            "fbl@rp.example.com",
            "4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef",
        ),
    };
    compose(&message, &context).unwrap()
}

fn dual_signed() -> Vec<u8> {
    let (rsa, ed) = (rsa_key(), ed25519_key());
    sign_message(&composed(), &[&rsa, &ed], TIMESTAMP).unwrap()
}

fn all_records() -> Records {
    records(&[&rsa_key(), &ed25519_key()])
}

/// Both verifiers' verdicts; dkimpy's only where it is installed.
fn verdicts(message: &[u8], records: &Records) -> (Vec<bool>, Option<Vec<bool>>) {
    let mail_auth = mail_auth_results(message, records)
        .into_iter()
        .map(|result| result == DkimResult::Pass)
        .collect();
    (mail_auth, dkimpy_results(message, records))
}

fn assert_all(message: &[u8], records: &Records, expected: bool, what: &str) {
    let (mail_auth, dkimpy) = verdicts(message, records);
    assert_eq!(mail_auth, vec![expected; 2], "mail-auth: {what}");
    if let Some(dkimpy) = dkimpy {
        assert_eq!(dkimpy, vec![expected; 2], "dkimpy: {what}");
    }
}

#[test]
fn dual_signed_message_verifies_under_both_keys_with_both_verifiers() {
    let signed = dual_signed();
    let text = String::from_utf8_lossy(&signed);
    assert!(
        text.starts_with("DKIM-Signature: v=1; a=rsa-sha256;"),
        "{text}"
    );
    assert_eq!(text.matches("DKIM-Signature:").count(), 2);
    assert!(text.contains("a=ed25519-sha256"));
    assert!(!text.contains(" l="), "the l= tag must never be used");
    for line in text.split("\r\n").take_while(|l| !l.is_empty()) {
        assert!(line.len() <= 78, "folded header line too long: {line:?}");
    }
    assert_all(&signed, &all_records(), true, "untouched message");
}

#[test]
fn signed_header_list_oversigns_identity_headers() {
    let unsigned = UnsignedMessage::new(&composed());
    let pending = unsigned
        .prepare(ed25519_key().identity(), TIMESTAMP)
        .unwrap();
    let header = pending.header_without_b().replace("\r\n\t", " ");
    let h = header
        .split("h=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    let h: String = h.split_whitespace().collect();
    assert_eq!(
        h,
        "from:from:to:to:subject:subject:date:date:message-id:message-id:\
         reply-to:reply-to:cc:cc:content-type:content-type:mime-version:mime-version:\
         list-unsubscribe:list-unsubscribe:list-unsubscribe-post:list-unsubscribe-post:\
         cfbl-address:cfbl-address:cfbl-feedback-id:cfbl-feedback-id"
    );
    assert!(header.contains(&format!("t={TIMESTAMP};")));
    assert!(header.ends_with("b="));
}

#[test]
fn a_signature_without_message_id_survives_a_new_message_id() {
    let raw = composed();
    let unsigned = UnsignedMessage::new(&raw);
    let keys = [ed25519_key(), rsa_key()];
    let sign = |coverage| {
        let mut headers = Vec::new();
        let mut signatures = Vec::new();
        for key in &keys {
            let pending = unsigned
                .prepare_with(key.identity(), TIMESTAMP, coverage)
                .unwrap();
            headers.push(pending.header_without_b().to_string());
            let signature = key.sign(&pending).unwrap();
            signatures.push(pending.finish(&signature).unwrap());
        }
        let h: String = headers.concat().split_whitespace().collect();
        (h, unsigned.clone().with_signatures(&signatures))
    };
    // What a relay that writes its own Message-ID hands on.
    let replace_id = |signed: &[u8]| {
        let text = String::from_utf8(signed.to_vec()).unwrap();
        let start = text.find("\r\nMessage-ID: ").unwrap() + 2;
        let end = start + text[start..].find("\r\n").unwrap();
        format!(
            "{}Message-ID: <theirs@relay.example>{}",
            &text[..start],
            &text[end..]
        )
        .into_bytes()
    };
    let records = all_records();
    let (full_h, full) = sign(Coverage::Full);
    let (partial_h, partial) = sign(Coverage::WithoutMessageId);
    assert!(full_h.contains("message-id"));
    assert!(!partial_h.contains("message-id"), "{partial_h}");
    assert!(partial_h.contains("from:from:to:to:subject:subject:date:date:reply-to"));
    assert_all(&full, &records, true, "full coverage, untouched");
    assert_all(
        &replace_id(&full),
        &records,
        false,
        "full coverage, new Message-ID",
    );
    assert_all(&partial, &records, true, "without Message-ID, untouched");
    assert_all(
        &replace_id(&partial),
        &records,
        true,
        "without Message-ID, new Message-ID",
    );
}

#[test]
fn tampering_breaks_every_signature() {
    let signed = String::from_utf8(dual_signed()).unwrap();
    let records = all_records();
    for (what, tampered) in [
        (
            "subject changed",
            signed.replacen("Subject: =?utf-8?", "Subject: =?UTF-8?", 1),
        ),
        (
            "to changed",
            signed.replacen("<bob@example.net>", "<eve@example.net>", 1),
        ),
        (
            "body changed",
            signed.replacen("<p>Hello Bob</p>", "<p>Hello Eve</p>", 1),
        ),
        ("body appended", format!("{signed}extra line\r\n")),
        (
            "second From added",
            signed.replacen("From: ", "From: <eve@example.net>\r\nFrom: ", 1),
        ),
        (
            "second Subject added",
            format!("Subject: Urgent\r\n{signed}"),
        ),
        (
            "second Date added",
            signed.replacen(
                "MIME-Version: ",
                "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: ",
                1,
            ),
        ),
        (
            "To added",
            signed.replacen("Reply-To: ", "To: eve@example.net\r\nReply-To: ", 1),
        ),
        (
            "second Reply-To added",
            format!("Reply-To: eve@example.net\r\n{signed}"),
        ),
        (
            "second Cc added",
            format!("Cc: eve@example.net\r\n{signed}"),
        ),
        (
            "second Content-Type added",
            format!("Content-Type: text/plain\r\n{signed}"),
        ),
        (
            "second MIME-Version added",
            format!("MIME-Version: 1.0\r\n{signed}"),
        ),
        (
            "second List-Unsubscribe added",
            format!("List-Unsubscribe: <https://evil.example/u>\r\n{signed}"),
        ),
        (
            "second List-Unsubscribe-Post added",
            format!("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n{signed}"),
        ),
        (
            "List-Unsubscribe changed",
            signed.replacen("https://example.com/u/1", "https://evil.example/u", 1),
        ),
        (
            "second CFBL-Address added",
            format!("CFBL-Address: fbl@evil.example; report=arf\r\n{signed}"),
        ),
        (
            "CFBL-Address changed",
            signed.replacen("fbl@rp.example.com", "fbl@evil.example", 1),
        ),
        (
            "CFBL-Feedback-ID changed",
            signed.replacen(".0123456789abcdef", ".fedcba9876543210", 1),
        ),
    ] {
        assert_ne!(
            tampered, signed,
            "{what}: tampering did not change the message"
        );
        assert_all(tampered.as_bytes(), &records, false, what);
    }
    // Unsigned headers may be added without breaking anything.
    let added = format!("Received: from relay by mx; Tue, 14 Nov 2023 22:13:21 +0000\r\n{signed}");
    assert_all(added.as_bytes(), &records, true, "Received added");
}

#[test]
fn lf_only_input_is_signed_as_crlf() {
    let lf = String::from_utf8(composed()).unwrap().replace("\r\n", "\n");
    let (rsa, ed) = (rsa_key(), ed25519_key());
    let signed = sign_message(lf.as_bytes(), &[&rsa, &ed], TIMESTAMP).unwrap();
    assert!(
        !signed.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "bare LF left"
    );
    assert_all(&signed, &all_records(), true, "LF-only input");
}

#[test]
fn two_phase_api_accepts_an_external_signer() {
    // Stands in for WebCrypto: sign `signing_input()` outside of DkimKey.
    let seed = STANDARD.decode(pem_body(ED25519_PKCS8_PEM)).unwrap();
    let external =
        ed25519_dalek::SigningKey::from_bytes(seed[seed.len() - 32..].try_into().unwrap());
    let key = ed25519_key();
    let unsigned = UnsignedMessage::new(&composed());
    let pending = unsigned.prepare(key.identity(), TIMESTAMP).unwrap();
    assert_eq!(
        pending.signing_input().len(),
        32,
        "Ed25519 signs the SHA-256 digest"
    );
    let signature = external.sign(&pending.signing_input()).to_bytes();
    assert_eq!(
        signature.to_vec(),
        key.sign(&pending).unwrap(),
        "same key, same signature"
    );
    let header = pending.clone().finish(&signature).unwrap();
    let signed = unsigned.clone().with_signatures(&[header]);
    let records = records(&[&key]);
    assert_eq!(mail_auth_results(&signed, &records), vec![DkimResult::Pass]);
    if let Some(dkimpy) = dkimpy_results(&signed, &records) {
        assert_eq!(dkimpy, vec![true]);
    }

    let rsa_pending = unsigned.prepare(rsa_key().identity(), TIMESTAMP).unwrap();
    assert_eq!(
        rsa_pending.signing_input(),
        rsa_pending.signed_data(),
        "WebCrypto hashes itself"
    );
    for (pending, bad) in [(pending, vec![0u8; 63]), (rsa_pending, vec![0u8; 16])] {
        assert!(matches!(
            pending.finish(&bad),
            Err(DkimError::SignatureLength { .. })
        ));
    }
}

#[test]
fn messages_without_from_cannot_be_signed() {
    let unsigned = UnsignedMessage::new(b"To: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
    let result = unsigned.prepare(ed25519_key().identity(), TIMESTAMP);
    assert_eq!(result.unwrap_err(), DkimError::MissingFromHeader);
}

#[test]
fn keys_load_from_every_accepted_format() {
    let rsa_der = pem_body(RSA_PKCS8_PEM);
    let rsa_pkcs1_der = pem_body(RSA_PKCS1_PEM);
    let escaped = RSA_PKCS8_PEM.replace('\n', "\\n");
    let ed_der = pem_body(ED25519_PKCS8_PEM);
    let ed_bytes = STANDARD.decode(&ed_der).unwrap();
    let seed = STANDARD.encode(&ed_bytes[ed_bytes.len() - 32..]);
    let expected_rsa = rsa_key().dns_txt_record().unwrap();
    let expected_ed = ed25519_key().dns_txt_record().unwrap();
    for (algorithm, text, expected) in [
        (DkimAlgorithm::RsaSha256, RSA_PKCS8_PEM, &expected_rsa),
        (DkimAlgorithm::RsaSha256, RSA_PKCS1_PEM, &expected_rsa),
        (DkimAlgorithm::RsaSha256, rsa_der.as_str(), &expected_rsa),
        (
            DkimAlgorithm::RsaSha256,
            rsa_pkcs1_der.as_str(),
            &expected_rsa,
        ),
        (DkimAlgorithm::RsaSha256, escaped.as_str(), &expected_rsa),
        (
            DkimAlgorithm::Ed25519Sha256,
            ED25519_PKCS8_PEM,
            &expected_ed,
        ),
        (DkimAlgorithm::Ed25519Sha256, ed_der.as_str(), &expected_ed),
        (DkimAlgorithm::Ed25519Sha256, seed.as_str(), &expected_ed),
    ] {
        let key = DkimKey::from_config("Example.COM", "Sel-1", algorithm, text)
            .unwrap_or_else(|e| panic!("{algorithm} {text:.40}: {e}"));
        assert_eq!(&key.dns_txt_record().unwrap(), expected);
        assert_eq!(key.identity().dns_name(), "sel-1._domainkey.example.com");
        assert_eq!(key.is_rsa(), algorithm == DkimAlgorithm::RsaSha256);
        // PKCS#8 DER round-trips: what WebCrypto imports is the same key.
        let der = STANDARD.encode(key.pkcs8_der().unwrap());
        let reloaded = DkimKey::from_config("example.com", "s", algorithm, &der).unwrap();
        assert_eq!(&reloaded.dns_txt_record().unwrap(), expected);
    }
    assert!(expected_ed.starts_with("v=DKIM1; k=ed25519; p="));
    assert_eq!(expected_ed.len(), "v=DKIM1; k=ed25519; p=".len() + 44);
    assert!(expected_rsa.starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"));
    assert!(
        !format!("{:?}", rsa_key()).contains("MII"),
        "Debug must not print key material"
    );
}

#[test]
fn bad_keys_give_errors_that_name_the_problem() {
    use DkimAlgorithm::{Ed25519Sha256 as Ed, RsaSha256 as Rsa};
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----";
    let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----";
    let unterminated = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n";
    let seed_31 = STANDARD.encode([1u8; 31]);
    for (algorithm, domain, selector, text, check) in [
        (
            Ed,
            "example.com",
            "s",
            "not base64 at all!",
            &(|e: &DkimKeyError| matches!(e, DkimKeyError::NotBase64))
                as &dyn Fn(&DkimKeyError) -> bool,
        ),
        (Ed, "example.com", "s", encrypted, &|e| {
            matches!(e, DkimKeyError::EncryptedKey)
        }),
        (
            Ed,
            "example.com",
            "s",
            public,
            &|e| matches!(e, DkimKeyError::UnsupportedPemLabel(l) if l == "PUBLIC KEY"),
        ),
        (Ed, "example.com", "s", unterminated, &|e| {
            matches!(e, DkimKeyError::MalformedPem(_))
        }),
        (Ed, "example.com", "s", RSA_PKCS8_PEM, &|e| {
            matches!(e, DkimKeyError::AlgorithmMismatch { found: "RSA", .. })
        }),
        (Ed, "example.com", "s", RSA_PKCS1_PEM, &|e| {
            matches!(e, DkimKeyError::AlgorithmMismatch { .. })
        }),
        (Rsa, "example.com", "s", ED25519_PKCS8_PEM, &|e| {
            matches!(
                e,
                DkimKeyError::AlgorithmMismatch {
                    found: "Ed25519",
                    ..
                }
            )
        }),
        (Rsa, "example.com", "s", RSA_512_PEM, &|e| {
            matches!(e, DkimKeyError::UnsupportedRsaKeySize(512))
        }),
        (Rsa, "example.com", "s", P256_PEM, &|e| {
            matches!(e, DkimKeyError::InvalidKey { .. })
        }),
        (Ed, "example.com", "s", seed_31.as_str(), &|e| {
            matches!(e, DkimKeyError::InvalidKey { .. })
        }),
        (Rsa, "example.com", "s", "AAAA", &|e| {
            matches!(e, DkimKeyError::InvalidKey { .. })
        }),
        (Ed, "not a domain", "s", ED25519_PKCS8_PEM, &|e| {
            matches!(e, DkimKeyError::InvalidDomain(_))
        }),
        (Ed, "example.com", "bad_selector", ED25519_PKCS8_PEM, &|e| {
            matches!(e, DkimKeyError::InvalidSelector(_))
        }),
        (Ed, "example.com", "", ED25519_PKCS8_PEM, &|e| {
            matches!(e, DkimKeyError::InvalidSelector(_))
        }),
    ] {
        match DkimKey::from_config(domain, selector, algorithm, text) {
            Ok(key) => panic!("{text:.40} loaded as {key:?}"),
            Err(error) => {
                assert!(check(&error), "{text:.40}: unexpected {error:?}");
                assert!(!error.to_string().is_empty());
            }
        }
    }
}

#[test]
fn keys_are_chosen_by_exact_from_domain() {
    let other = DkimKey::from_config(
        "example.org",
        "s",
        DkimAlgorithm::Ed25519Sha256,
        ED25519_PKCS8_PEM,
    )
    .unwrap();
    let keys = vec![rsa_key(), other, ed25519_key()];
    let domain = crate::message::Domain::parse("example.com").unwrap();
    let chosen: Vec<&str> = keys_for_domain(&keys, &domain)
        .iter()
        .map(|key| key.identity().selector.as_str())
        .collect();
    assert_eq!(chosen, ["rsa2024", "ed2024"]);
    assert!(
        keys_for_domain(
            &keys,
            &crate::message::Domain::parse("sub.example.com").unwrap()
        )
        .is_empty()
    );
}

#[test]
fn algorithm_names_parse_from_configuration() {
    for (name, expected) in [
        ("rsa", Some(DkimAlgorithm::RsaSha256)),
        ("RSA-SHA256", Some(DkimAlgorithm::RsaSha256)),
        ("ed25519", Some(DkimAlgorithm::Ed25519Sha256)),
        ("ed25519-sha256", Some(DkimAlgorithm::Ed25519Sha256)),
        ("rsa-sha1", None),
    ] {
        assert_eq!(DkimAlgorithm::parse(name), expected, "{name}");
    }
}

#[test]
fn headers_a_message_lacks_cannot_be_added_later() {
    // A message with no Cc, Reply-To or List-Unsubscribe: the empty slots
    // in h= make a copy added in transit break both signatures.
    let request = json!({
        "from": "ada@example.com",
        "to": "bob@example.net",
        "subject": "plain",
        "text": "hello",
    });
    let message = SendRequest::from_json(request.to_string().as_bytes())
        .unwrap()
        .validate(&Limits::default())
        .unwrap();
    let context = ComposeContext {
        message_id: new_message_id(message.from().address.domain(), &[9; 16]),
        date_unix: TIMESTAMP as i64,
        feedback_loop: None,
    };
    let raw = compose(&message, &context).unwrap();
    let (rsa, ed) = (rsa_key(), ed25519_key());
    let signed = String::from_utf8(sign_message(&raw, &[&rsa, &ed], TIMESTAMP).unwrap()).unwrap();
    let records = all_records();
    assert_all(signed.as_bytes(), &records, true, "untouched plain message");
    for added in [
        "Cc: eve@example.net",
        "Reply-To: eve@example.net",
        "List-Unsubscribe: <https://evil.example/u>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "CFBL-Address: fbl@evil.example; report=arf",
        "CFBL-Feedback-ID: 1",
    ] {
        let tampered = format!("{added}\r\n{signed}");
        assert_all(tampered.as_bytes(), &records, false, added);
    }
}

//! AWS Signature Version 4 for one HTTP request: the canonical request, the
//! string to sign, the derived signing key and the `Authorization` header.
//!
//! Owns the algorithm exactly as AWS documents it ("Create a signed AWS API
//! request", the Signature Version 4 test suite). Must not: read the clock
//! (the request time is passed in) or let the secret key reach any output
//! other than the signature.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::events::time::civil_from_days;

type HmacSha256 = Hmac<Sha256>;

/// Long-lived IAM credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// What the signature covers, besides the request.
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

/// A request to sign. `path` is the URI path as it goes on the wire (already
/// encoded); `query` pairs are encoded here; `headers` are every header the
/// signature covers (at least `host` and `x-amz-date`).
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: this never fails.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// RFC 3986 unreserved characters stay, everything else is `%XX`.
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Header values lose surrounding spaces and runs of inner spaces.
fn trim_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request and the `SignedHeaders` list.
pub fn canonical_request(req: &Request<'_>) -> (String, String) {
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), trim_value(v)))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let path = if req.path.is_empty() { "/" } else { req.path };
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        path,
        query,
        canonical_headers,
        signed,
        sha256_hex(req.body)
    );
    (text, signed)
}

fn credential_scope(scope: &Scope<'_>) -> String {
    let date = scope.amz_date.get(..8).unwrap_or_default();
    format!("{date}/{}/{}/aws4_request", scope.region, scope.service)
}

pub fn string_to_sign(canonical: &str, scope: &Scope<'_>) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        scope.amz_date,
        credential_scope(scope),
        sha256_hex(canonical.as_bytes())
    )
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The `Authorization` header value for `req`.
pub fn authorization(creds: &Credentials, scope: &Scope<'_>, req: &Request<'_>) -> String {
    let (canonical, signed) = canonical_request(req);
    let to_sign = string_to_sign(&canonical, scope);
    let date = scope.amz_date.get(..8).unwrap_or_default();
    let key = signing_key(&creds.secret_access_key, date, scope.region, scope.service);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id,
        credential_scope(scope)
    )
}

/// `YYYYMMDDTHHMMSSZ` for Unix milliseconds.
pub fn amz_date(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example credentials and date of AWS's Signature Version 4 test
    // suite (aws-sig-v4-test-suite, as published with the SigV4
    // documentation, "Signature Version 4 test suite"), scope
    // 20150830/us-east-1/service/aws4_request.
    const CREDS: (&str, &str) = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    const DATE: &str = "20150830T123600Z";

    fn creds() -> Credentials {
        Credentials {
            access_key_id: CREDS.0.into(),
            secret_access_key: CREDS.1.into(),
        }
    }

    fn scope() -> Scope<'static> {
        Scope {
            region: "us-east-1",
            service: "service",
            amz_date: DATE,
        }
    }

    /// (name in the suite, method, path, query, body, expected canonical
    /// request, expected Authorization).
    #[test]
    fn the_published_test_suite_cases_sign_alike() {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", DATE)];
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let table: &[Case<'_>] = &[
            (
                "get-vanilla",
                "GET",
                &[],
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                 host;x-amz-date\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "post-vanilla",
                "POST",
                &[],
                "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                 host;x-amz-date\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "get-vanilla-query-order-key-case",
                "GET",
                &[("Param2", "value2"), ("Param1", "value1")],
                "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n\
                 x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ];
        for (name, method, query, want_canonical, want_signature) in table {
            let req = Request {
                method,
                path: "/",
                query,
                headers: &headers,
                body: b"",
            };
            let (canonical, _) = canonical_request(&req);
            assert_eq!(&canonical, want_canonical, "{name}: canonical request");
            let auth = authorization(&creds(), &scope(), &req);
            assert_eq!(
                auth,
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/\
                     aws4_request, SignedHeaders=host;x-amz-date, Signature={want_signature}"
                ),
                "{name}"
            );
        }
    }

    // "Examples of how to derive a signing key for Signature Version 4"
    // (AWS General Reference): secret, 20150830, us-east-1, iam.
    #[test]
    fn the_documented_signing_key_derives() {
        let key = signing_key(CREDS.1, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex(&key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_sorted() {
        let headers = [
            ("X-Amz-Date", DATE),
            ("My-Header1", "  a   b   c  "),
            ("Host", "example.amazonaws.com"),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            body: b"",
        };
        let (canonical, signed) = canonical_request(&req);
        assert_eq!(signed, "host;my-header1;x-amz-date");
        assert!(canonical.contains("my-header1:a b c\n"), "{canonical}");
    }

    #[test]
    fn unix_time_formats_as_an_amz_date() {
        assert_eq!(amz_date(1_440_938_160_000), DATE);
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(951_782_400_000), "20000229T000000Z");
    }
}

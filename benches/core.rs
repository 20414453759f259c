//! Native throughput of the send path's CPU work: parse + validate + compose +
//! DKIM-sign one 10 KB message, per signing algorithm. The same path with no
//! signing key (the domain listed in UNSIGNED_DOMAINS) is the baseline, so the
//! figures show what signing costs on top of composing.
//!
//! `cargo bench --bench core`; `make bench` reads criterion's medians from
//! `target/criterion/core/*/new/estimates.json` into BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgerelay::accept::keys::key_digest_hex;
use edgerelay::accept::{AcceptSettings, ApiKeys, Lookup, send};

const API_KEY: &str = "er_bench_key";
const ED25519_PEM: &str = include_str!("../src/message/dkim/testdata/ed25519.pkcs8.pem");
const RSA2048_PEM: &str = include_str!("../src/message/dkim/testdata/rsa2048.pkcs8.pem");

/// Accept's settings with one DKIM key of the given algorithm, or none (unsigned).
fn settings(key: Option<(&str, &str)>) -> AcceptSettings {
    let api_keys = serde_json::json!([{
        "id": "bench", "sha256": key_digest_hex(API_KEY), "domains": ["example.com"]
    }])
    .to_string();
    let dkim_keys = match key {
        Some((algorithm, pem)) => serde_json::json!([{
            "domain": "example.com", "selector": "bench",
            "algorithm": algorithm, "private_key": pem
        }])
        .to_string(),
        None => "[]".to_string(),
    };
    let source = move |name: &str| -> Option<String> {
        match name {
            "API_KEYS" => Some(api_keys.clone()),
            "DKIM_KEYS" => Some(dkim_keys.clone()),
            // Exempt when unsigned, and when Ed25519 signs alone (which
            // otherwise needs an RSA key beside it): each case measures one signer.
            "UNSIGNED_DOMAINS" if key.is_none_or(|(algorithm, _)| algorithm == "ed25519") => {
                Some("example.com".into())
            }
            _ => None,
        }
    };
    match AcceptSettings::from_source(&source) {
        Ok(s) => s,
        Err(e) => panic!("benchmark settings: {e}"),
    }
}

/// A send request whose composed message is about 10 KB.
fn request_body() -> Vec<u8> {
    let paragraph = "The quick brown fox jumps over the lazy dog; edgerelay signs it. ";
    let text: String = paragraph.repeat(10_000 / paragraph.len() / 2);
    let html = format!("<p>{}</p>", text);
    serde_json::json!({
        "from": "Bench <bench@example.com>",
        "to": ["rcpt@example.net"],
        "subject": "A 10 KB benchmark message",
        "text": text,
        "html": html,
    })
    .to_string()
    .into_bytes()
}

fn send_path(c: &mut Criterion) {
    let body = request_body();
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(4));
    let cases = [
        ("compose_only", None),
        ("ed25519", Some(("ed25519", ED25519_PEM))),
        ("rsa2048", Some(("rsa", RSA2048_PEM))),
    ];
    for (name, key) in cases {
        let settings = settings(key);
        let keys = ApiKeys::new(&settings.api_keys);
        let caller = match keys.lookup(Some(&format!("Bearer {API_KEY}"))) {
            Ok(Lookup::Found(k)) => k,
            other => panic!("benchmark key: {other:?}"),
        };
        // Fail before measuring if the path does not produce a signed message.
        let settings = &settings.send;
        let sample = send::prepare(&body, &caller, settings, 1_700_000_000, &[7; 32])
            .and_then(|p| send::sign_natively(p, settings));
        match &sample {
            Ok(job) => {
                assert!(
                    (9_000..16_000).contains(&job.mime.len()),
                    "{}",
                    job.mime.len()
                );
                assert_eq!(job.mime.contains("DKIM-Signature:"), key.is_some());
            }
            Err(e) => panic!("{name}: {e:?}"),
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let prepared =
                    send::prepare(black_box(&body), &caller, settings, 1_700_000_000, &[7; 32]);
                black_box(prepared.and_then(|p| send::sign_natively(p, settings)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, send_path);
criterion_main!(benches);

//! Randomised robustness checks with a fixed-seed generator: no input may
//! panic, buffer without bound, or lose an envelope's outcome.

use super::*;
use crate::smtp::wire::Expect;

/// xorshift64*: tiny, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Plausible replies, broken ones, and fragments, so that random sessions
/// get deep into the conversation rather than failing at the first byte.
const REPLIES: &[&str] = &[
    "220 hi\r\n",
    "250 ok\r\n",
    "250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-SIZE 50\r\n250-STARTTLS\r\n250 AUTH LOGIN PLAIN\r\n",
    "250-mx\r\n250 SMTPUTF8\r\n",
    "235 ok\r\n",
    "334 VXNlcm5hbWU6\r\n",
    "354 go\r\n",
    "452 4.5.3 too many\r\n",
    "450 busy\r\n",
    "550 5.1.1 no\r\n",
    "421 bye\r\n",
    "221 bye\r\n",
    "502 no\r\n",
    "250-",
    "\r\n",
    "abc\r\n",
    "999 x\r\n",
    "\n",
];

/// A reply that fits what the session waits for, so random runs reach
/// transactions, 452 continuations and the end of data often.
fn plausible_reply(rng: &mut Rng, expect: Option<Expect>) -> &'static str {
    let choices: &[&str] = match expect {
        Some(Expect::Greeting) => &[
            "220 hi\r\n",
            "220 hi\r\n",
            "220 hi\r\n",
            "220 hi\r\n",
            "554 no\r\n",
        ],
        Some(Expect::Ehlo) => &[
            "250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "250-mx\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
            "250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-SIZE 60\r\n250 AUTH LOGIN\r\n",
            "250-mx\r\n250-8BITMIME\r\n250 AUTH LOGIN PLAIN\r\n",
            "502 no\r\n",
        ],
        Some(Expect::StartTls) => &["220 go\r\n", "220 go\r\n", "220 go\r\n", "454 no\r\n"],
        Some(Expect::AuthResult | Expect::AuthXOAuth2) => {
            &["235 ok\r\n", "235 ok\r\n", "235 ok\r\n", "535 no\r\n"]
        }
        Some(Expect::AuthLoginUsername | Expect::AuthLoginPassword) => {
            &["334 x\r\n", "334 x\r\n", "334 x\r\n", "535 no\r\n"]
        }
        Some(Expect::Mail) => &["250 ok\r\n", "250 ok\r\n", "550 no\r\n", "451 later\r\n"],
        Some(Expect::Rcpt(_)) => &[
            "250 ok\r\n",
            "250 ok\r\n",
            "452 too many\r\n",
            "550 no\r\n",
            "450 busy\r\n",
        ],
        Some(Expect::Data) => &["354 go\r\n", "354 go\r\n", "554 no\r\n"],
        Some(Expect::DataEnd | Expect::BdatLast | Expect::DataEndDiscard) => {
            &["250 ok\r\n", "250 ok\r\n", "550 spam\r\n", "451 later\r\n"]
        }
        Some(Expect::Helo | Expect::Rset) => &["250 ok\r\n"],
        Some(Expect::Quit) => &["221 bye\r\n"],
        None => REPLIES,
    };
    choices[rng.below(choices.len())]
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = rng.below(max + 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn reply_parser_survives_random_input() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..2_000 {
        let mut parser = ReplyParser::new();
        let mut input = Vec::new();
        for _ in 0..rng.below(8) {
            if rng.below(2) == 0 {
                input.extend_from_slice(rng.pick(REPLIES).as_bytes());
            } else {
                input.extend(random_bytes(&mut rng, 64));
            }
        }
        let mut rest = input.as_slice();
        while !rest.is_empty() {
            let chunk_len = 1 + rng.below(rest.len());
            let (chunk, tail) = rest.split_at(chunk_len);
            rest = tail;
            let mut chunk = chunk;
            while !chunk.is_empty() {
                match parser.parse(&mut chunk) {
                    Ok(Some(reply)) => {
                        assert!((200..=559).contains(&reply.code));
                        assert!(reply.lines.len() <= reply::MAX_LINES);
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
        }
    }
}

#[test]
fn session_survives_random_servers_and_settles_every_envelope() {
    let mut rng = Rng(0xfeed_face_cafe_beef);
    for round in 0..3_000 {
        let security = *rng.pick(&[
            Security::ImplicitTls,
            Security::StartTls,
            Security::Insecure,
        ]);
        let mut config = config(security);
        if rng.below(2) == 0 {
            config.credentials = Some(Credentials::password("u", "p"));
        }
        config.use_pipelining = rng.below(4) != 0;
        config.use_chunking = rng.below(4) != 0;

        // How often the server misbehaves: every few steps, or rarely, so
        // that some runs go deep into transactions.
        let chaos = *rng.pick(&[5, 40, 400]);
        let mut now = 0;
        let mut session = SmtpSession::new(config, now);
        let mut ids = Vec::new();
        let mut events = Vec::new();
        let envelope_count = rng.below(4);
        for id in 0..envelope_count as u64 {
            ids.push(id);
            let recipients: Vec<String> = (0..1 + rng.below(3))
                .map(|r| format!("r{r}@example.com"))
                .collect();
            let mut message =
                Envelope::new(id, "f@example.com", recipients, random_bytes(&mut rng, 80));
            message.has_8bit = rng.below(3) == 0;
            session.send(message, now);
        }
        session.finish(now);

        for _ in 0..80 {
            if session.is_closed() {
                break;
            }
            now += 1;
            let disrupt = rng.below(chaos) == 0;
            match if disrupt { rng.below(7) } else { 7 } {
                0 => {
                    if let Some(deadline) = session.poll_timeout() {
                        now = now.max(deadline);
                    }
                    session.handle_timeout(now);
                }
                1 => session.handle_closed(now),
                2 => session.handle_tls_established(now),
                3 => session.handle_input(&random_bytes(&mut rng, 40), now),
                4 => {
                    let id = 100 + ids.len() as u64;
                    ids.push(id);
                    session.send(envelope(id, &["late@example.com"]), now);
                }
                5 => session.handle_input(rng.pick(REPLIES).as_bytes(), now),
                6 => session.handle_write_timeout(now),
                _ => {
                    let reply = plausible_reply(&mut rng, session.wire.next_expected());
                    session.handle_input(reply.as_bytes(), now);
                }
            }
            while session.poll_transmit().is_some() {
                // A write that fails (the connection is gone) now and then.
                if disrupt && rng.below(4) == 0 {
                    session.handle_closed(now);
                } else {
                    session.handle_written(now);
                }
            }
            while let Some(event) = session.poll_event() {
                if event == Event::StartTls && rng.below(8) != 0 {
                    session.handle_tls_established(now);
                }
                events.push(event);
            }
        }
        // Whatever state it is in, a hang-up ends it.
        session.handle_closed(now + 1);
        events.extend(std::iter::from_fn(|| session.poll_event()));
        assert!(session.is_closed(), "round {round}");
        let closed_events = events
            .iter()
            .filter(|e| matches!(e, Event::Closed { .. }))
            .count();
        assert_eq!(closed_events, 1, "round {round}");
        assert!(
            matches!(events.last(), Some(Event::Closed { .. })),
            "round {round}"
        );
        assert_one_outcome_each(&events, &ids);
    }
}

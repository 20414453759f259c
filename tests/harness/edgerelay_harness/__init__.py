"""What edgerelay's end-to-end tests and benchmarks share.

- `paths`: where the repository, its tools and its builds are.
- `wrangler`: the one launcher of `wrangler dev` (workerd with local Queues,
  D1 and R2) for the built worker, and the configs it runs.
- `client`: an HTTP client for the worker's API.
- `keys`: API keys, DKIM keys, the worker's vars and a basic message.
- `upstream`: an aiosmtpd SMTP server that records and misbehaves on request.
- `smtp_sink`: Postfix's smtp-sink, a fast real SMTP server with fault options.
- `postfix`: a private Postfix instance on loopback, a smarthost that
  offers DSN and returns real delivery status notifications.
- `stalling`: a scripted SMTP server that stops reading after DATA.
- `faulty_smtp`: a scripted SMTP server that injects faults at random from a
  seed (421 greetings, hang-ups, 451, stalls), for the reliability soak.
- `delay_proxy`: a TCP proxy that adds round-trip time.
- `pki`: a throwaway CA and server certificate for 127.0.0.1.
- `openapi`: the published API description and validators for its schemas.
- `poll`: `wait_for`, so nothing sleeps for a fixed time.
- `net`: free loopback ports.

Must not: hold pytest fixtures (tests/e2e/conftest.py does), or measure
anything (benches/ does).
"""

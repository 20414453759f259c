# edgerelay: the two front-door commands are `make dev` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false

SOURCES := $(shell find src -name "*.rs" -o -path "src/http/dashboard/*") Cargo.toml Cargo.lock wrangler.toml openapi.json

.PHONY: init dev test bench soak setup setup-test setup-bench build build-diagnostics lint check-layers test-tools test-harness unit proptest e2e clean

## One-step set-up of an account: queues, D1 (migrated), R2, the first API key and
## every secret put with `wrangler secret put` (see scripts/init.mjs; --local for wrangler dev).
## make init INIT_ARGS='--domain example.com --upstream smtps://user:pass@smtp.example.net'
init:
	node scripts/init.mjs $(INIT_ARGS)

## Run edgerelay locally: worker in workerd + MailDev as upstream. Ctrl-C stops all.
dev:
	@scripts/dev.sh

## Run every test: lint, native unit tests, then the built worker end to end.
test: setup-test lint check-layers test-tools test-harness unit e2e

## Measure every performance figure beside its baseline; rewrites BENCHMARKS.md.
## Extra arguments: make bench BENCH_ARGS='--rounds 3 --only smtp,size'
bench: setup-bench build build-diagnostics
	.venv/bin/python benches/run.py $(BENCH_ARGS)

## Reliability soak: thousands of messages through upstream faults, SIGKILLs of
## the worker and a D1 outage, every accepted message counted at the servers;
## writes the "Reliability soak" section of BENCHMARKS.md. Not part of `make test`.
## Bounded: at most 20000 messages and 15 minutes; stops by itself.
## Extra arguments: make soak SOAK_ARGS='--quick' or '--messages 5000 --kills 5'
soak: setup-test build build-diagnostics
	.venv/bin/python benches/reliability_soak.py $(SOAK_ARGS)

setup-bench:
	@scripts/setup.sh bench

setup:
	@scripts/setup.sh dev

setup-test:
	@scripts/setup.sh test

## The release build in build/: what `wrangler deploy` ships (no test or bench switches).
build: build/index.js

build/index.js: $(SOURCES)
	@sh scripts/build.sh release
	@touch build/index.js

## The same worker with the cargo feature `diagnostics` (fault injection,
## benchmark routes) in build-diagnostics/, for the tests and benchmarks that need it.
build-diagnostics: build-diagnostics/index.js

build-diagnostics/index.js: $(SOURCES)
	@sh scripts/build.sh diagnostics
	@touch build-diagnostics/index.js

lint:
	cargo fmt --check
	cargo clippy --all-targets --quiet -- -D warnings
	cargo clippy --all-targets --features diagnostics --quiet -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --quiet -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --features diagnostics --quiet -- -D warnings

## No import cycle between files of src/, no import from a lower layer to a higher one.
check-layers:
	python3 scripts/check_layers.py

## The layer checker's own tests, and the docs' links and settings table.
test-tools:
	.venv/bin/python -m pytest tests/tools -q

## The harness's own tests: the private Postfix that writes the DSN
## fixtures (scripts/make_report_fixtures.py) starts, reports and stops.
test-harness:
	.venv/bin/python -m pytest tests/harness_tests -q

unit:
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo test --quiet
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo test --quiet --features diagnostics --lib

## The property tests with many more cases than `cargo test` runs (not part
## of `make test`): make proptest PROPTEST_CASES=200000
PROPTEST_CASES ?= 20000
proptest:
	PROPTEST_CASES=$(PROPTEST_CASES) cargo test --lib proptests

## End to end against both builds: most tests run the release build, the
## fault and benchmark tests the diagnostics build.
e2e: build build-diagnostics
	.venv/bin/python -m pytest tests/e2e -q $(PYTEST_ARGS)

clean:
	rm -rf build build-diagnostics target .wrangler .dev

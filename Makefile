# edgerelay: the two front-door commands are `make dev` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false

SOURCES := $(shell find src -name "*.rs") Cargo.toml Cargo.lock wrangler.toml openapi.json

.PHONY: dev test bench setup setup-test setup-bench build lint check-layers test-tools unit e2e clean

## Run edgerelay locally: worker in workerd + MailDev as upstream. Ctrl-C stops all.
dev:
	@scripts/dev.sh

## Run every test: lint, native unit tests, then the built worker end to end.
test: setup-test lint check-layers test-tools unit build e2e

## Measure every performance figure beside its baseline; rewrites BENCHMARKS.md.
## Extra arguments: make bench BENCH_ARGS='--rounds 3 --only smtp,size'
bench: setup-bench build
	.venv/bin/python benches/run.py $(BENCH_ARGS)

setup-bench:
	@scripts/setup.sh bench

setup:
	@scripts/setup.sh dev

setup-test:
	@scripts/setup.sh test

build: build/index.js

build/index.js: $(SOURCES)
	@sh scripts/build.sh
	@touch build/index.js

lint:
	cargo fmt --check
	cargo clippy --all-targets --quiet -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --quiet -- -D warnings

## No import cycle between files of src/, no import from a lower layer to a higher one.
check-layers:
	python3 scripts/check_layers.py

## The layer checker's own tests, and the docs' links and settings table.
test-tools:
	.venv/bin/python -m pytest tests/tools -q

unit:
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo test --quiet

e2e:
	.venv/bin/python -m pytest tests/e2e -q $(PYTEST_ARGS)

clean:
	rm -rf build target .wrangler .dev

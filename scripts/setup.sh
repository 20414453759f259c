#!/usr/bin/env bash
# Installs everything edgerelay's build, dev server and tests need. Idempotent:
# each step checks first and does nothing when already done.
#
#   scripts/setup.sh        tools to build and run the worker locally
#   scripts/setup.sh test   the above, plus the real SMTP servers and verifiers the tests use
#   scripts/setup.sh bench  the test set-up, plus the wrk load generator `make bench` uses
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
mode="${1:-dev}"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Rust target for the worker.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# worker-build, and wasm-bindgen-cli at exactly the version Cargo.lock pins
# (worker-build would otherwise download them; the two must match).
bindgen_version="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)"
if [ -z "$bindgen_version" ]; then echo "Cargo.lock pins no wasm-bindgen version" >&2; exit 1; fi
if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  say "installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install --locked worker-build --version "$WORKER_BUILD_VERSION" \
    || cargo install worker-build --version "$WORKER_BUILD_VERSION"
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$bindgen_version"; then
  say "installing wasm-bindgen-cli $bindgen_version (a few minutes, once)"
  # The tool's own lock file can name a dependency release the registry no
  # longer serves; then let cargo resolve afresh (the version itself is pinned).
  cargo install --locked wasm-bindgen-cli --version "$bindgen_version" \
    || cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

# npm packages pinned by package-lock.json: wrangler, Node 22, binaryen, MailDev.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund
fi

if [ "$mode" = "test" ] || [ "$mode" = "bench" ]; then
  # Python: aiosmtpd (SMTP server with STARTTLS and AUTH), dkimpy (DKIM verifier),
  # pytest, Schemathesis (API contract fuzzer), and tests/harness.
  if [ ! -x .venv/bin/python ]; then
    say "creating the Python virtual environment"
    python3 -m venv .venv
  fi
  # Pinned packages first, then the tests' own harness package (editable, so
  # edits to it apply at once); again whenever either list changes.
  if [ ! -f .venv/.installed ] || [ tests/requirements.txt -nt .venv/.installed ] \
      || [ tests/harness/pyproject.toml -nt .venv/.installed ]; then
    say "installing Python test packages and the test harness"
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e tests/harness
    touch .venv/.installed
  fi
  # Debian packages: Postfix (its smtp-sink, a real SMTP server with fault
  # injection, and Postfix itself, which the harness runs as a private
  # instance that returns real DSNs) and Chromium (browser tests drive it
  # through Playwright), Unbound and dnsdist (a real DNS server behind a
  # real DNS-over-HTTPS front, for domain verification).
  missing=()
  { [ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/postfix ]; } || missing+=(postfix)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  { [ -x /usr/sbin/unbound ] && [ -x /usr/sbin/unbound-control ]; } || missing+=(unbound)
  [ -x /usr/bin/dnsdist ] || missing+=(dnsdist)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
if [ "$mode" = "bench" ] && ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (HTTP load generator for the benchmarks)"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
say "ready"

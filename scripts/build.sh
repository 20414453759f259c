#!/bin/sh
# Builds the worker with local tools: worker-build would otherwise download
# wasm-bindgen and wasm-opt at build time.
#
#   sh scripts/build.sh              the release build in build/ (what
#                                    `wrangler deploy` runs and ships)
#   sh scripts/build.sh diagnostics  the same worker with the test and
#                                    benchmark switches (cargo feature
#                                    `diagnostics`) in build-diagnostics/
set -eu
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
PATH="$HOME/.cargo/bin:$PATH"
case "${1:-release}" in
  release) out=build; worker-build --release ;;
  diagnostics) out=build-diagnostics; worker-build --release --out-dir build-diagnostics --features diagnostics ;;
  *) echo "usage: $0 [release|diagnostics]" >&2; exit 2 ;;
esac
# The static files the platform serves before the worker ([assets] in
# wrangler.toml): the API description and the dashboard's files.
mkdir -p "$out/assets/dashboard"
cp openapi.json "$out/assets/openapi.json"
cp src/http/dashboard/index.html src/http/dashboard/app.js src/http/dashboard/app.css "$out/assets/dashboard/"

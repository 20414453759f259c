#!/bin/sh
# Builds the worker (build/index.js + wasm) with local tools: worker-build
# would otherwise download wasm-bindgen and wasm-opt at build time.
set -eu
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
PATH="$HOME/.cargo/bin:$PATH"
exec worker-build --release

#!/usr/bin/env bash
# Builds the field app's WebAssembly replica (the sync-web crate) into
# apps/field/pkg/ with wasm-bindgen. The output is committed, so that
# `gridsync serve` needs only the Rust toolchain; CI builds it again and
# checks that it is what the sources build.
#
# The wasm-bindgen command-line tool must be the exact version of the
# wasm-bindgen crate; it is installed once into $GRIDSYNC_TOOLS
# (default ~/.cache/gridsync/tools).
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${GRIDSYNC_TOOLS:-$HOME/.cache/gridsync/tools}"
version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)
if ! "$tools/bin/wasm-bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  cargo install wasm-bindgen-cli --version "$version" --root "$tools"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup target add wasm32-unknown-unknown >/dev/null
fi

# Source paths end up in panic messages: name them relative to the
# workspace and to Cargo's registry, never by where this machine keeps them,
# so that every machine builds the same bytes.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# (When several prefixes match, rustc applies the last one given.)
flags="--remap-path-prefix=$cargo_home=cargo --remap-path-prefix=$PWD=."
for registry in "$cargo_home"/registry/src/*/; do
  flags="$flags --remap-path-prefix=${registry%/}=crates"
done
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$flags"

target="${CARGO_TARGET_DIR:-target}"
cargo build -p sync-web --target wasm32-unknown-unknown --profile wasm --locked
"$tools/bin/wasm-bindgen" --target web --out-name gridsync_web --out-dir apps/field/pkg \
  --remove-name-section --remove-producers-section \
  "$target/wasm32-unknown-unknown/wasm/sync_web.wasm"
rm -f apps/field/pkg/.gitignore

#!/bin/sh
# Builds what the field app (apps/field, served at /app/) and the console
# (apps/console, served at /console/) load besides their own source files,
# which the browser loads as they are: the UI library, and for the field app
# sync-core as WebAssembly (build-wasm.sh). Both are committed; CI checks
# that they are what this script builds.
set -eu
cd "$(dirname "$0")"

# Preact, its hooks and htm in one ES module (no bundler).
npm ci
cp node_modules/htm/preact/standalone.module.js field/vendor/preact-htm.js
mkdir -p console/vendor
cp node_modules/htm/preact/standalone.module.js console/vendor/preact-htm.js

# sync-core for the browser.
./build-wasm.sh

# The service worker's version: a fingerprint of all of the above.
node stamp-sw.mjs

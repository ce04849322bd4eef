#!/bin/sh
# Runs the field app's tests: the end-to-end test drives the real server
# (GRIDSYNC_BIN, default ../target/debug/gridsync) with Chromium.
set -eu
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update
    $SUDO apt-get install -y chromium
fi
npm ci
node --test tests/

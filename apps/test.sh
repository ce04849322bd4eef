#!/bin/sh
# Runs the field app's tests: the end-to-end test drives the real server
# (GRIDSYNC_BIN, default ../target/debug/gridsync) with Chromium.
set -eu
cd "$(dirname "$0")"

missing=
[ -x /usr/bin/chromium ] || missing=chromium
# The screenshots the test saves show Chinese text: they need a CJK font.
fc-list :lang=zh 2>/dev/null | grep -q . || missing="$missing fonts-noto-cjk"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo apt-get update
    # shellcheck disable=SC2086 # one word per package
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi
npm ci
node --test tests/

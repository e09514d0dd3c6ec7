#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
# Check unit tests, the same under ASan/UBSan, and the integration tests
# against a real apache2 (event, worker and prefork MPMs), then the
# libFuzzer harnesses for FUZZ_SECONDS each (fuzz/run.sh, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --node --browser --fuzz --deb
# Node's ws, the second independent client of the integration tests,
# playwright-core, which drives Chromium in the browser tests, and
# @fanoutio/grip, the GRIP library of the Node example backend.
[[ -d tests/node/node_modules/ws && -d tests/node/node_modules/playwright-core \
   && -d tests/node/node_modules/@fanoutio/grip ]] \
    || (cd tests/node && npm ci --no-audit --no-fund --silent)
scripts/build.sh
make check
fuzz/run.sh

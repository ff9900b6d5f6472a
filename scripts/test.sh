#!/usr/bin/env bash
# Runs every test suite: the ABI checks, cargo test, the C tests (also under ASan+UBSan), the
# examples and the Python tests, all through `meson test`. Extra arguments go to meson test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
setup_build
$MESON test -C "$BUILD_DIR" --print-errorlogs "$@"

#!/usr/bin/env bash
# The main job: builds the library and runs the example VMM integration.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
setup_build
$MESON compile -C "$BUILD_DIR"
"$BUILD_DIR/examples/two_handlers"

#!/usr/bin/env bash
# The main job: builds the library, then simulates the vGPU migration (a 32 GiB guest with a
# vGPU holding ~1.91 GiB of stop-copy state) over the real library, prints each pass and the
# summary, and writes the plot to out/vgpu.png. -v first: show the build tools' output.
# Other arguments go to the simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = -v ] || [ "${1:-}" = --verbose ]; then SWO_VERBOSE=1; shift; fi
. scripts/env.sh
setup_build
[ -f "$BUILD_DIR/libswitchover.so" ] || echo "building the library (the first build takes a few minutes)"
quietly "meson compile" $MESON compile -C "$BUILD_DIR"
mkdir -p out
export SWITCHOVER_LIB="$PWD/$BUILD_DIR/libswitchover.so"
PYTHONPATH="$PWD/python" python3 -m switchover.sim scenarios/vgpu.toml --plot out/vgpu.png "$@"

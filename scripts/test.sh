#!/usr/bin/env bash
# Runs every test suite: the ABI checks, cargo test, the C tests (also under ASan+UBSan), the
# examples and the Python tests, all through `meson test`. -v first: show the build tools'
# output (meson's configure dump, cargo). Other arguments go to meson test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = -v ] || [ "${1:-}" = --verbose ]; then SWO_VERBOSE=1; shift; fi
. scripts/env.sh
setup_build
[ -f "$BUILD_DIR/libswitchover.so" ] || echo "building the library and the tests (the first build takes a few minutes)"
quietly "meson compile" $MESON compile -C "$BUILD_DIR"
rc=0
$MESON test -C "$BUILD_DIR" --no-rebuild --print-errorlogs "$@" || rc=$?
# One plain closing line: how many meson tests passed and failed in this run.
python3 - "$BUILD_DIR/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    result = json.loads(line).get("result")
    if result in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif result == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"meson: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $rc

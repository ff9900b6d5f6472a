#!/usr/bin/env bash
# QEMU 10.2.2 patched to use switchover, migrating a real Linux guest between two QEMU
# processes over 127.0.0.1, next to the same QEMU unpatched (docs/qemu.md).
#
#   scripts/qemu-e2e.sh            the full run: idle, dirty-8, fast-dl50 (three runs each in
#                                  baseline, shadow and drive, alternating), stall-advice and
#                                  stall-auto (shadow and drive); about 40 minutes
#   scripts/qemu-e2e.sh --quick    one shadow and one drive run of dirty-8 and stall-advice,
#                                  patched build only (the CI stage); about 6 minutes
#   extra arguments go to tests/e2e/qemu_e2e.py (e.g. --only dirty-8 --runs 1 --accel tcg)
#
# Builds (or reuses from the cache) both QEMUs with integrations/qemu/build.sh and the guest
# with scripts/guest-image.sh; writes out/qemu-e2e/report.json and out/qemu-e2e/stall.png.
# Needs, and installs when run as root (CI): the Debian build dependencies, seabios and
# qemu-system-data; qemu.qmp and matplotlib from PyPI; Rust for the library.
# Exit 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
. scripts/e2e-env.sh
e2e_need_qmp

QUICK=0; ARGS=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1; ARGS+=(--quick) ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) ARGS+=("$a") ;;
  esac
done

command -v cargo >/dev/null 2>&1 || { echo "qemu-e2e: cargo (Rust) is needed to build the library" >&2; exit 1; }
if [ $QUICK = 1 ]; then
  BUILD_ARGS=(--patched)
else
  BUILD_ARGS=()
fi
echo "qemu-e2e: building QEMU (integrations/qemu/build.sh ${BUILD_ARGS[*]}; cached after the first time)"
integrations/qemu/build.sh "${BUILD_ARGS[@]}" | tee out-qemu-build.log.tmp
eval "$(grep -E '^(QEMU_BASELINE|QEMU_PATCHED|QEMU_FIRMWARE)=' out-qemu-build.log.tmp)"
rm -f out-qemu-build.log.tmp
read -r -a FW <<< "$QEMU_FIRMWARE"
GUEST="$(e2e_guest_dir)"
CMD=(python3 tests/e2e/qemu_e2e.py --patched "$QEMU_PATCHED" "${FW[@]}" --guest-dir "$GUEST"
     --out out/qemu-e2e)
[ -n "${QEMU_BASELINE:-}" ] && [ $QUICK = 0 ] && CMD+=(--baseline "$QEMU_BASELINE")
"${CMD[@]}" "${ARGS[@]}"

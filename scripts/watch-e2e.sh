#!/usr/bin/env bash
# switchover-watch against real, unmodified QEMU 7.2 migrations (issue 12; docs/watch.md):
# boots the test guest (scripts/guest-image.sh) in a source/destination QEMU pair over
# 127.0.0.1 (tests/e2e/qemu_pair.py), watches each migration with `python -m switchover.watch`
# on a second monitor of the source, and checks what the watcher reported against QEMU's own
# record.
#
#   scripts/watch-e2e.sh [--quick|--full] [--qemu BIN [-L DIR]...] [--out DIR]
#
# --quick (CI, a few minutes): dirty 8 MiB/s (converges) and dirty 40 MiB/s at 300 ms with
#   --apply-advice. --full (about 15 minutes under TCG): also idle, dirty 40 watched (the live
#   view captured with tmux into OUT/live-view.txt) and dirty 40 re-run with downtime-limits
#   around the advice to find the smallest that converges.
# Writes OUT/<run>/{RUN.json,watch.jsonl}, OUT/results.json and OUT/table.md (default
# OUT=out/watch-e2e). Exit 1 when a check of issue 12 fails. Installs qemu.qmp (PyPI) and,
# as root, Debian's qemu-system-x86; where QEMU cannot be had it says so loudly and skips.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=quick; QEMU=""; FW=(); OUT=out/watch-e2e
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick; shift ;;
    --full) MODE=full; shift ;;
    --eta) MODE=eta; shift ;;
    --advice) MODE=advice; shift ;;
    --qemu) QEMU="$2"; shift 2 ;;
    -L) FW+=(-L "$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "watch-e2e: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
. scripts/env.sh
. scripts/e2e-env.sh
e2e_need_qmp
if [ -z "$QEMU" ]; then
  if ! e2e_need_debian_qemu; then
    echo "################################################################################"
    echo "watch-e2e: SKIPPED: no QEMU on this machine and none could be installed"
    echo "################################################################################"
    exit 0
  fi
  QEMU="$E2E_QEMU"; FW=("${E2E_FIRMWARE[@]}")
fi
command -v tmux >/dev/null 2>&1 || [ "$MODE" = quick ] || {
  [ "$(id -u)" = 0 ] && apt-get -o DPkg::Lock::Timeout=600 install -y -qq tmux >/dev/null; }
# The library the watcher loads: this checkout's build.
setup_build
$MESON compile -C "$BUILD_DIR" >/dev/null
# A private copy: a rebuild of $BUILD_DIR during the runs (the test command's) rewrites the
# library in place under the watchers.
mkdir -p "$OUT"
cp "$BUILD_DIR/libswitchover.so" "$OUT/libswitchover.so"
export SWITCHOVER_LIB="$(cd "$OUT" && pwd)/libswitchover.so" PYTHONPATH="$PWD/python"
GUEST="$(e2e_guest_dir)"
python3 tests/e2e/watch_e2e.py --mode "$MODE" --out "$OUT" --qemu "$QEMU" "${FW[@]}" \
  --guest-dir "$GUEST"

#!/usr/bin/env bash
# Records real QEMU migrations of the test guest (scripts/guest-image.sh) between two QEMU
# processes over 127.0.0.1, with Debian's QEMU (qemu-system-x86; 7.2 on bookworm), and writes
#   out/real-qemu/<run>.json                 the raw RUN.json of tests/e2e/qemu_pair.py
#   tests/fixtures/real-qemu/<run>.json      a compact summary: inputs, one line per dirty-
#                                            bitmap sync, the outcome (committed)
# Runs (1 GiB guest, 512 MiB filled, max-bandwidth 32 MiB/s):
#   idle           no dirtying
#   dirty8         8 MiB/s sequentially over 256 MiB (converges)
#   dirty40        40 MiB/s over 256 MiB, downtime-limit 300 ms: never converges, cancelled
#                  after 120 s
#   dirty40-raise  the same, downtime-limit raised to 10000 ms at t = 40 s
# Usage: scripts/record-real-runs.sh [--qemu BIN [-L DIR]...] [RUN...]   (default: all four)
# Takes about 8 minutes under TCG. Not a CI stage; the summaries feed the simulator's
# validation test (python/tests/test_real_qemu.py).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
. scripts/e2e-env.sh
e2e_need_qmp

QEMU=""; FW=(); RUNS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --qemu) QEMU="$2"; shift 2 ;;
    -L) FW+=(-L "$2"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) RUNS+=("$1"); shift ;;
  esac
done
if [ -z "$QEMU" ]; then
  e2e_need_debian_qemu
  QEMU="$E2E_QEMU"; FW=("${E2E_FIRMWARE[@]}")
fi
[ ${#RUNS[@]} -gt 0 ] || RUNS=(idle dirty8 dirty40 dirty40-raise)
GUEST="$(e2e_guest_dir)"
OUT=out/real-qemu
mkdir -p "$OUT" tests/fixtures/real-qemu

for run in "${RUNS[@]}"; do
  case "$run" in
    idle)          args=(--rate 0 --timeout 120) ;;
    dirty8)        args=(--rate 8 --region 256 --timeout 120) ;;
    dirty40)       args=(--rate 40 --region 256 --downtime-limit 300 --timeout 120) ;;
    dirty40-raise) args=(--rate 40 --region 256 --downtime-limit 300 --at 40:downtime-limit=10000
                         --timeout 120) ;;
    *) echo "record-real-runs: unknown run '$run' (idle, dirty8, dirty40, dirty40-raise)" >&2
       exit 2 ;;
  esac
  echo "=== $run"
  # settle 12 s: the workload's first sweep and the guest's first SWO-STAT lines come before
  # the migration starts, so the achieved dirty rate is measured on every run.
  python3 tests/e2e/qemu_pair.py --qemu "$QEMU" "${FW[@]}" --guest-dir "$GUEST" \
    --max-bandwidth 32 --settle 12 --workdir "$OUT/$run" --out "$OUT/$run.json" "${args[@]}"
  python3 tests/e2e/summarise_run.py "$OUT/$run.json" "tests/fixtures/real-qemu/$run.json" \
    --name "$run"
done

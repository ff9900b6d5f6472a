#!/usr/bin/env bash
# ThreadSanitizer (issue 13): the library built with nightly Rust under
# `-Zsanitizer=thread -Zbuild-std` (the standard library instrumented too, so its
# synchronisation is seen), linked into
#   - c-tests/stress_threads.c: seven threads on one session (migration thread, three
#     recorders, two monitors reading every report, one thread churning handlers, models,
#     parameters, VMM ops, cancel and fail), for STRESS_SECONDS (default 20) and once more
#     with the registry's full-fence protocol (SWITCHOVER_NO_MEMBARRIER=1);
#   - every C test of c-tests/ (but the LD_PRELOAD ioctl one, whose shim TSan cannot wrap).
# Any ThreadSanitizer report fails the run (halt_on_error, exitcode 66).
#
# The runtime: gcc's libtsan and rustc's may differ in the symbols LLVM's instrumentation
# calls, so the programs are linked against rustc's own TSan runtime
# (`$(rustc +nightly --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/lib/librustc-nightly_rt.tsan.a`,
# whole-archive), the C code compiled with gcc's `-fsanitize=thread` (same __tsan ABI), and
# the static library (`libswitchover.a`) so one runtime serves both. README §Sanitizers.
#
# Needs nightly Rust with rust-src (installed with rustup when missing); where it truly
# cannot be had it says so loudly and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
STRESS_SECONDS=${STRESS_SECONDS:-20}
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR=target/tsan
OUT=$TARGET_DIR/c
CC=${CC:-gcc}

NIGHTLY_WHAT=tsan
# shellcheck source=scripts/nightly.sh
. scripts/nightly.sh

[ "$(uname -m)" = x86_64 ] || skip "ThreadSanitizer run is set up for x86_64 Linux only"
need_nightly
SYSROOT=$(rustc +nightly --print sysroot)
if [ ! -d "$SYSROOT/lib/rustlib/src/rust/library" ]; then
  echo "tsan: installing the rust-src component (for -Zbuild-std)"
  rustup +nightly component add rust-src ||
    skip "the nightly toolchain has no rust-src ('rustup component add rust-src' failed)"
fi
RT=$SYSROOT/lib/rustlib/$TARGET/lib/librustc-nightly_rt.tsan.a
[ -f "$RT" ] || skip "rustc's TSan runtime is missing ($RT)"

echo "tsan: building the library (cargo +nightly, -Zsanitizer=thread -Zbuild-std, release)"
# A fresh clone has no target/ yet (the test build lives under build/): the log goes beside it.
mkdir -p "$(dirname "$TARGET_DIR")"
if ! RUSTFLAGS="-Zsanitizer=thread -Cdebuginfo=1" \
    cargo +nightly build -Zbuild-std --target "$TARGET" --release --lib \
    --target-dir "$TARGET_DIR" >"$TARGET_DIR.build.log" 2>&1; then
  tail -n 40 "$TARGET_DIR.build.log"
  echo "tsan: the library does not build with ThreadSanitizer"
  exit 1
fi
LIB=$TARGET_DIR/$TARGET/release/libswitchover.a
mkdir -p "$OUT"

# One program: C compiled with gcc's TSan instrumentation, linked with the instrumented
# static library and rustc's TSan runtime (no -fsanitize at link: gcc's libtsan stays out).
build() {
  local src=$1 exe=$2
  "$CC" -std=c11 -g -O1 -fsanitize=thread -Iinclude -Ic-tests -c "$src" -o "$exe.o" &&
    "$CC" -o "$exe" "$exe.o" "$LIB" -Wl,--whole-archive "$RT" -Wl,--no-whole-archive \
      -lpthread -ldl -lm -lrt -lstdc++
}

export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"
export SWO_GOLDEN_DIR=$PWD/c-tests/golden
rc=0
declare -a SUMMARY=()
run() {
  local name=$1
  shift
  local log=$OUT/$name.log
  if "$@" >"$log" 2>&1; then
    SUMMARY+=("$name: ok")
  else
    local code=$?
    rc=1
    if grep -q "WARNING: ThreadSanitizer" "$log"; then
      SUMMARY+=("$name: ThreadSanitizer report (exit $code)")
    else
      SUMMARY+=("$name: FAILED (exit $code)")
    fi
    echo "tsan: $name failed:"; grep -A 40 -m 1 -E "WARNING: ThreadSanitizer|check failed|returned" "$log" | head -n 60
  fi
}

if ! build c-tests/stress_threads.c "$OUT/stress_threads"; then
  echo "tsan: the stress program does not link"; exit 1
fi
echo "tsan: stress, $STRESS_SECONDS s, membarrier registry"
run stress env STRESS_SECONDS="$STRESS_SECONDS" "$OUT/stress_threads"
grep -h '^stress:' "$OUT/stress.log" || true
echo "tsan: stress, $((STRESS_SECONDS / 2)) s, full-fence registry"
run stress-fences env SWITCHOVER_NO_MEMBARRIER=1 STRESS_SECONDS=$((STRESS_SECONDS / 2)) "$OUT/stress_threads"
grep -h '^stress:' "$OUT/stress-fences.log" || true

for src in c-tests/test_*.c; do
  name=$(basename "$src" .c)
  [ "$name" = test_vfio_ioctl ] && continue # needs the LD_PRELOAD ioctl shim
  if ! build "$src" "$OUT/$name"; then
    SUMMARY+=("$name: does not link"); rc=1; continue
  fi
  run "$name" "$OUT/$name"
done

echo "=== tsan summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
reports=$(cat "$OUT"/*.log | grep -c "WARNING: ThreadSanitizer" || true)
echo "tsan: $reports ThreadSanitizer report(s)"
exit $rc

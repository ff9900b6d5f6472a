#!/usr/bin/env bash
# libFuzzer on the C ABI (issue 13): the targets of fuzz/ (cargo fuzz), each for a bounded
# time, starting from the committed seed corpus (fuzz/corpus/<target>). First every input in
# fuzz/regressions/<target>/ is replayed: inputs that once crashed stay as regression tests.
# A crash fails the run; its input is copied to fuzz/regressions/<target>/ (commit it with the
# fix) and left in fuzz/artifacts/.
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh api_sequence    # one target
#
# Needs a nightly Rust toolchain (installed with rustup when missing), cargo-fuzz (installed
# from crates.io into ${SWITCHOVER_CACHE:-~/.cache/switchover}/cargo, kept between runs) and a
# C++ compiler for libFuzzer (apt-get as root when missing). Where one of them truly cannot
# be had, it says so loudly and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
CACHE=${SWITCHOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchover}
TARGETS=(parse_size set_parameter set_parameters_json api_sequence)
[ $# -gt 0 ] && TARGETS=("$@")

NIGHTLY_WHAT=fuzz
# shellcheck source=scripts/nightly.sh
. scripts/nightly.sh

need_nightly
if ! command -v c++ >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "fuzz: installing g++ (libFuzzer is C++)"
    { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; } || true
  fi
  command -v c++ >/dev/null 2>&1 || skip "no C++ compiler for libFuzzer (g++ could not be installed)"
fi
export PATH="$CACHE/cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io into $CACHE/cargo"
  cargo install cargo-fuzz --locked --root "$CACHE/cargo" ||
    skip "cargo-fuzz could not be installed from crates.io"
fi

BIN_DIR=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/artifacts
for t in "${TARGETS[@]}"; do
  echo "fuzz: building $t (cargo +nightly fuzz build: libFuzzer, ASan, debug assertions)"
  if ! (cd fuzz && cargo +nightly fuzz build "$t") >fuzz/artifacts/build.log 2>&1; then
    tail -n 40 fuzz/artifacts/build.log
    echo "fuzz: $t does not build"
    exit 1
  fi
done
rc=0
declare -a SUMMARY=()
for t in "${TARGETS[@]}"; do
  bin="$BIN_DIR/$t"
  mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t" "fuzz/artifacts/$t" "$CACHE/fuzz-corpus/$t"
  # 1. Every kept crash input once.
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if [ ${#regressions[@]} -gt 0 ]; then
    if ! "$bin" -runs=1 "${regressions[@]}" >"fuzz/artifacts/$t/regressions.log" 2>&1; then
      echo "fuzz: $t: a regression input fails again:"; tail -n 30 "fuzz/artifacts/$t/regressions.log"
      rc=1
      SUMMARY+=("$t: regression inputs FAIL")
      continue
    fi
    echo "fuzz: $t: ${#regressions[@]} regression input(s) pass"
  fi
  # 2. Fuzz for a bounded time: new inputs go to the cache's corpus (kept between runs),
  #    the committed seeds are read only.
  log="fuzz/artifacts/$t/fuzz.log"
  "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=2048 \
    -artifact_prefix="fuzz/artifacts/$t/" "$CACHE/fuzz-corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  trc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  if [ $trc -ne 0 ]; then
    rc=1
    echo "fuzz: $t FAILED (exit $trc):"; grep -A 30 -m 1 -E 'panicked|ERROR: |SUMMARY' "$log" | head -n 40
    for a in fuzz/artifacts/"$t"/crash-* fuzz/artifacts/"$t"/oom-* fuzz/artifacts/"$t"/timeout-*; do
      [ -f "$a" ] || continue
      cp "$a" "fuzz/regressions/$t/"
      echo "fuzz: $t: kept $a as fuzz/regressions/$t/$(basename "$a") (commit it with the fix)"
    done
    SUMMARY+=("$t: FAILED after ${execs:-?} executions")
  else
    SUMMARY+=("$t: ${execs:-?} executions in ${SECONDS_EACH} s, ${cov:-cov ?}, no crash")
  fi
done
echo "=== fuzz summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
exit $rc

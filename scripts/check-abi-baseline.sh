#!/usr/bin/env bash
# The ABI of libswitchover.so against the committed baseline abi/libswitchover.abi, with
# libabigail (README §ABI). The baseline is `abidw` of the library with the public header
# (--headers-dir include); `abidiff` of baseline → this build fails on ANY difference:
#   - an incompatible change (a field moved, a type or signature changed, a function gone);
#   - an addition the baseline does not record yet (a new function, a field appended):
#     additions are fine, but are recorded on purpose by regenerating the baseline.
#
# usage: scripts/check-abi-baseline.sh [LIBRARY]   check (default build/libswitchover.so)
#        scripts/check-abi-baseline.sh --update    rebuild the library with cargo and rewrite
#                                                  abi/libswitchover.abi (commit it)
#        scripts/check-abi-baseline.sh --diff OLD.abi NEW-LIBRARY
#                                                  the check itself, for tests
# Needs abidw/abidiff (Debian: abigail-tools): installed with apt-get when missing and running
# as root; otherwise the check is skipped, loudly, with exit 77 (meson's "skipped").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BASELINE="$ROOT/abi/libswitchover.abi"
SUPPRESSIONS="$ROOT/abi/abigail.suppr"
HEADERS="$ROOT/include"

need_abigail() {
  command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "abidw/abidiff missing: installing abigail-tools with apt-get" >&2
    { apt-get update -qq && apt-get install -y -qq abigail-tools >/dev/null; } >&2 || true
  fi
  if ! command -v abidw >/dev/null 2>&1 || ! command -v abidiff >/dev/null 2>&1; then
    echo "########################################################################" >&2
    echo "SKIPPED: the ABI baseline check needs abidw and abidiff (Debian package" >&2
    echo "abigail-tools) and this machine has neither them nor root to install them." >&2
    echo "########################################################################" >&2
    exit 77
  fi
}

# abidw of LIBRARY into FILE, without paths or line numbers, with hashed type ids (so the
# committed baseline changes little when it is regenerated). --headers-dir keeps only the
# header's types for C libraries; rustc's DWARF gives types no declaration file, so here the
# opaque handles' insides are left out by abi/abigail.suppr when comparing instead.
dump() {
  abidw --headers-dir "$HEADERS" --no-corpus-path --no-comp-dir-path --no-show-locs \
    --type-id-style hash --out-file "$2" "$1"
}

# abidiff OLD.abi against LIBRARY; prints the report and explains a failure.
diff_against() {
  local old=$1 lib=$2 new report rc=0
  new="$(mktemp --suffix=.abi)"
  trap 'rm -f "$new"' RETURN
  dump "$lib" "$new"
  report="$(abidiff --suppressions "$SUPPRESSIONS" --no-show-locs "$old" "$new")" || rc=$?
  printf '%s\n' "$report"
  # abidiff's exit code is a bit field: 1 error, 2 usage error, 4 ABI change, 8 incompatible
  # (removals). A moved or retyped field or a changed signature is "4" too: told apart here.
  if [ "$rc" -eq 0 ]; then
    echo "ABI of $(basename "$lib") equals the baseline $(basename "$old")"
  elif [ $((rc & 3)) -ne 0 ]; then
    echo "FAIL: abidiff could not compare (exit $rc)" >&2
  elif [ $((rc & 8)) -ne 0 ] || grep -qE "offset changed|type name changed|was removed|return type changed|[1-9][0-9]* Removed|data member deletion|parameter [0-9]+ of type .* was added" <<<"$report"; then
    echo "FAIL: INCOMPATIBLE ABI change (abidiff exit $rc): a field moved or changed type, a" \
         "signature changed or a function went away, so programs built against the committed" \
         "header would break. Only append fields and add functions (README §ABI)." >&2
  else
    echo "FAIL: the ABI changed (abidiff exit $rc) and abi/libswitchover.abi does not record" \
         "it. Additions (a new function, a field appended to an out-struct) are allowed:" \
         "record them with scripts/check-abi-baseline.sh --update, and commit the baseline." >&2
  fi
  return "$rc"
}

case "${1:-}" in
  --update)
    need_abigail
    # The library exactly as meson builds it (scripts/cargo-build.py: release, this target).
    CARGO_TARGET_DIR="$ROOT/build/cargo-target" \
      cargo build --release --lib --manifest-path "$ROOT/Cargo.toml"
    dump "$ROOT/build/cargo-target/release/libswitchover.so" "$BASELINE"
    echo "wrote $BASELINE: commit it with the change that made it"
    ;;
  --diff)
    need_abigail
    diff_against "$2" "$3"
    ;;
  *)
    need_abigail
    diff_against "$BASELINE" "${1:-$ROOT/build/libswitchover.so}"
    ;;
esac

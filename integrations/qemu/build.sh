#!/usr/bin/env bash
# Builds QEMU 10.2.2 (Debian source 1:10.2.2+ds-1) for x86_64, unpatched (the baseline) and
# with the switchover patch series in integrations/qemu/patches/, linked against the installed
# switchover library found through `pkg-config switchover`.
#
#   integrations/qemu/build.sh [--baseline] [--patched] [--print-env]
#
# With neither --baseline nor --patched both are built. The last lines of the output are
#   QEMU_BASELINE=<path to qemu-system-x86_64>
#   QEMU_PATCHED=<path to qemu-system-x86_64>
#   QEMU_FIRMWARE="-L <seabios dir> -L <qemu-system-data dir>"
# (--print-env prints only those, building whatever is missing, quietly.)
#
# Everything is cached outside the checkout, under
#   ${SWITCHOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchover}/qemu/
#     src/             the Debian source package (.dsc, orig tarball), fetched once
#     venv/            meson>=1.5 and pycotap for QEMU's configure --python=
#     prefix/          the library, installed from this checkout with `meson install`
#     tree-<c>/        the patched QEMU's source tree + build directory, <c> = hash of the
#                      QEMU version, the configure flags and the build tweaks; configured
#                      once. A new series is brought in by rewriting only the files whose
#                      content changes (switch_tree), then an incremental ninja.
#     tree-<c>-pristine/  the same for the baseline, never patched (one tree per variant:
#                      switching one tree between the two recompiled nearly everything)
#     baseline-<c>/    the unpatched qemu-system-x86_64
#     <key>/           the patched qemu-system-x86_64, <key> = hash of the patch series,
#                      <c>, the library version, its header and the compiler
# A second run with the same key (and an existing baseline-<c>/) builds nothing: it
# re-installs the library into prefix/ (a no-op cargo/ninja when unchanged) and reuses the
# binaries. The patched QEMU loads the library through its rpath, so a library fix needs no
# QEMU rebuild, and an ABI change (a new header or version) gives a new key.
#
# Needs: gcc, the Debian packages listed in DEBS (installed when running as root, else a clear
# error), network access to deb.debian.org and PyPI the first time.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/integrations/qemu"
CACHE="${SWITCHOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchover}/qemu"
QEMU_DEB_VERSION="1:10.2.2+ds-1"
QEMU_UPSTREAM_VERSION="10.2.2"
ORIG="qemu_10.2.2+ds.orig.tar.xz"
DSC="qemu_10.2.2+ds-1.dsc"
DEBS=(gcc libglib2.0-dev libpixman-1-dev libfdt-dev device-tree-compiler flex bison
      ninja-build pkg-config seabios qemu-system-data xz-utils patch)
# Only the pc (i440fx) board and what it selects (--without-default-devices plus
# CONFIG_I440FX=y in the devices file, see unpack_tree): the test guest needs no optional
# device, and on a shared 2-core machine this halves the build.
CONFIGURE_FLAGS=(--target-list=x86_64-softmmu --without-default-features --disable-docs
                 --disable-werror --disable-install-blobs --enable-kvm --enable-tcg
                 --without-default-devices)

want_baseline=0; want_patched=0; print_env=0
for a in "$@"; do
  case "$a" in
    --baseline) want_baseline=1 ;;
    --patched) want_patched=1 ;;
    --print-env) print_env=1 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
[ $want_baseline = 0 ] && [ $want_patched = 0 ] && { want_baseline=1; want_patched=1; }

log() { if [ $print_env = 1 ]; then echo "build.sh: $*" >&2; else echo "build.sh: $*"; fi; }
die() { echo "build.sh: ERROR: $*" >&2; exit 1; }
mkdir -p "$CACHE"

# --- Debian packages --------------------------------------------------------------------------
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq -o DPkg::Lock::Timeout=900 >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
      "${missing[@]}" >&2
  else
    die "missing Debian packages (run as root or install them): ${missing[*]}"
  fi
fi
SEABIOS_DIR=/usr/share/seabios
QEMU_DATA_DIR=/usr/share/qemu
[ -f "$SEABIOS_DIR/bios-256k.bin" ] || die "no $SEABIOS_DIR/bios-256k.bin (package seabios)"
[ -f "$QEMU_DATA_DIR/linuxboot_dma.bin" ] || die "no $QEMU_DATA_DIR/linuxboot_dma.bin (qemu-system-data)"

# --- QEMU source: Debian's source package through a temporary deb-src list ------------------
fetch_source() {
  local d="$CACHE/src" a="$CACHE/apt"
  if [ -f "$d/$ORIG" ] && [ -f "$d/$DSC" ]; then return; fi
  mkdir -p "$d" "$a/lists/partial" "$a/cache/archives/partial"
  cat > "$a/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
  # The system's apt configuration stays untouched: own source list, no sources.list.d, own
  # lists and package cache.
  local opts=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
              -o "APT::Sandbox::User=$(id -un)")
  log "fetching Debian source qemu=$QEMU_DEB_VERSION"
  apt-get "${opts[@]}" update -qq >&2
  (cd "$d" && apt-get "${opts[@]}" source --download-only "qemu=$QEMU_DEB_VERSION" >&2)
}
fetch_source
grep -q "^Version: $QEMU_DEB_VERSION\$" "$CACHE/src/$DSC" \
  || die "$CACHE/src/$DSC is not version $QEMU_DEB_VERSION"
# The orig tarball is the one the .dsc names (apt checked it too; checked again for the cache).
want_sha="$(awk -v f="$ORIG" '/^Checksums-Sha256:/{s=1;next} /^[^ ]/{s=0} s&&$3==f{print $1}' "$CACHE/src/$DSC")"
[ -n "$want_sha" ] || die "$DSC names no $ORIG"
if [ ! -f "$CACHE/src/.sha-ok" ] || [ "$(cat "$CACHE/src/.sha-ok")" != "$want_sha" ]; then
  have_sha="$(sha256sum "$CACHE/src/$ORIG" | cut -d' ' -f1)"
  [ "$have_sha" = "$want_sha" ] || die "$ORIG sha256 $have_sha, the .dsc says $want_sha"
  echo "$want_sha" > "$CACHE/src/.sha-ok"
fi

# --- Python for QEMU's configure: meson>=1.5, pycotap ------------------------------------------
if ! "$CACHE/venv/bin/python3" -c 'import mesonbuild, pycotap' 2>/dev/null; then
  log "creating $CACHE/venv (meson>=1.5, pycotap from PyPI)"
  python3 -m venv --clear "$CACHE/venv" >&2
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check 'meson>=1.5' pycotap >&2
fi
QPY="$CACHE/venv/bin/python3"

hash_of() { sha256sum | cut -c1-16; }

# Unpacks the pristine tree into $1/src (checking its VERSION), turns the edk2 blob
# unpacking off (the +ds tarball carries no firmware blobs), enables the pc board in the
# devices file (with --without-default-devices every board is off unless named there) and
# adds the one stub QEMU 10.2 lacks to link without default devices.
unpack_tree() {
  local dir="$1"
  rm -rf "$dir/src.tmp"; mkdir -p "$dir/src.tmp"
  tar -C "$dir/src.tmp" --no-same-owner --strip-components=1 -xf "$CACHE/src/$ORIG"
  [ "$(cat "$dir/src.tmp/VERSION")" = "$QEMU_UPSTREAM_VERSION" ] \
    || die "unpacked tree is version $(cat "$dir/src.tmp/VERSION"), want $QEMU_UPSTREAM_VERSION"
  sed -i 's/^    unpack_edk2_blobs = bzip2.found()$/    unpack_edk2_blobs = false/' \
    "$dir/src.tmp/meson.build"
  grep -q '^    unpack_edk2_blobs = false$' "$dir/src.tmp/meson.build" \
    || die "could not turn unpack_edk2_blobs off in meson.build"
  printf '%s\n' '# integrations/qemu/build.sh: the pc board only' 'CONFIG_I440FX=y' \
    >> "$dir/src.tmp/configs/devices/i386-softmmu/default.mak"
  # QEMU 10.2 without default devices does not link: ACPI_X86 selects ACPI_CXL, whose
  # hw/acpi/cxl.c calls cxl_fmws_get_all_sorted(), which only CONFIG_CXL's cxl-host.c
  # defines (CXL itself cannot be switched on alone: two Kconfig defaults contradict).
  # The missing stub, as for the other functions in cxl-host-stubs.c:
  printf '%s\n' '' '/* integrations/qemu/build.sh: hw/acpi/cxl.c calls it also without CONFIG_CXL */' \
    'GSList *cxl_fmws_get_all_sorted(void)' '{' '    return NULL;' '}' \
    >> "$dir/src.tmp/hw/cxl/cxl-host-stubs.c"
  mv "$dir/src.tmp" "$dir/src"
}

# The library from this checkout, installed with `meson install` into $PREFIX (libdir lib):
# only the library target is built (not the test programs), one build directory per checkout.
install_library() {
  local libbuild log
  libbuild="$CACHE/libbuild-$(printf '%s' "$ROOT" | hash_of)"
  log="$libbuild.log"
  if [ ! -f "$libbuild/build.ninja" ]; then
    "$QPY" -m mesonbuild.mesonmain setup "$libbuild" "$ROOT" --prefix="$PREFIX" --libdir=lib \
      --buildtype=release > "$log" 2>&1 \
      || { tail -n 30 "$log" >&2; die "library meson setup failed (log: $log)"; }
  fi
  (cd "$libbuild" && PATH="$CACHE/venv/bin:$PATH" ninja libswitchover.so >> "$log" 2>&1) \
    || { tail -n 30 "$log" >&2; die "library build failed (log: $log)"; }
  "$QPY" -m mesonbuild.mesonmain install -C "$libbuild" --no-rebuild --quiet >> "$log" 2>&1 \
    || { tail -n 30 "$log" >&2; die "library meson install failed (log: $log)"; }
  export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  got="$(pkg-config --modversion switchover)" || die "pkg-config cannot find switchover"
  [ "$got" = "$LIBVER" ] || die "pkg-config switchover says $got, the checkout is $LIBVER"
  LIBDIR="$(pkg-config --variable=libdir switchover)"
  [ "$LIBDIR" = "$PREFIX/lib" ] || die "pkg-config libdir $LIBDIR, expected $PREFIX/lib"
}

# The files a patch creates, changes or deletes (its "--- a/" and "+++ b/" paths).
patch_files() {
  sed -n -e 's#^--- a/\([^\t]*\).*#\1#p' -e 's#^+++ b/\([^\t]*\).*#\1#p' "$@" | sort -u
}

# Puts the patched tree's sources into the state of the series file $1: the files the series
# applied last (copies in $TREE/applied/) and the wanted series touch are copied to a scratch
# directory, the old series is reverted and the new one applied THERE, and only the files
# whose content differs are written back into $TREE/src (a file a series created and the new
# one does not is deleted). Unchanged files keep their mtime, so the incremental ninja
# rebuilds what the change of series really changed and nothing else. (Reverting and applying
# in place rewrote every file of the series: qapi/migration.json and migration/trace-events
# then regenerate headers included nearly everywhere; and switching ONE tree between the
# pristine and the patched state changes the compile command of every libsystem object, since
# dependency('switchover') adds its include directory to system_ss: a full rebuild per switch.
# Hence one tree per variant.)
switch_tree() {
  local want="$1" p scratch wantdir old=()
  wantdir="$(dirname "$want")"
  if [ -f "$TREE/applied/series.sha" ] && cmp -s "$TREE/applied/series.sha" <(series_hash "$want"); then
    return 0
  fi
  scratch="$(mktemp -d "$TREE/switch.XXXXXX")"
  if [ -f "$TREE/applied/series" ]; then
    while read -r p; do old+=("$TREE/applied/$p"); done < "$TREE/applied/series"
  fi
  local news=()
  while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    news+=("$wantdir/$p")
  done < "$want"
  local files
  files="$( { [ ${#old[@]} -gt 0 ] && patch_files "${old[@]}"; patch_files "${news[@]}"; } | sort -u)"
  while read -r p; do
    [ -n "$p" ] || continue
    if [ -e "$TREE/src/$p" ]; then mkdir -p "$scratch/$(dirname "$p")"; cp -p "$TREE/src/$p" "$scratch/$p"; fi
  done <<< "$files"
  if [ ${#old[@]} -gt 0 ]; then
    for ((i = ${#old[@]} - 1; i >= 0; i--)); do
      log "reverting $(basename "${old[$i]}")"
      patch -p1 -R -s -d "$scratch" < "${old[$i]}" || die "cannot revert ${old[$i]}"
    done
  fi
  for p in "${news[@]}"; do
    log "applying $(basename "$p")"
    patch -p1 -s -d "$scratch" < "$p" || die "patch $(basename "$p") does not apply"
  done
  local changed=0
  while read -r p; do
    [ -n "$p" ] || continue
    if [ -e "$scratch/$p" ]; then
      if ! cmp -s "$scratch/$p" "$TREE/src/$p"; then
        mkdir -p "$TREE/src/$(dirname "$p")"
        cp "$scratch/$p" "$TREE/src/$p.swo-tmp" && mv "$TREE/src/$p.swo-tmp" "$TREE/src/$p"
        changed=$((changed + 1))
      fi
    elif [ -e "$TREE/src/$p" ]; then
      rm -f "$TREE/src/$p"; changed=$((changed + 1))
    fi
  done <<< "$files"
  log "series switched: $changed file(s) changed in $TREE/src"
  rm -rf "$scratch" "$TREE/applied.tmp"
  mkdir -p "$TREE/applied.tmp"
  for p in "${news[@]}"; do cp "$p" "$TREE/applied.tmp/"; basename "$p" >> "$TREE/applied.tmp/series"; done
  series_hash "$want" > "$TREE/applied.tmp/series.sha"
  rm -rf "$TREE/applied"
  mv "$TREE/applied.tmp" "$TREE/applied"
}

series_hash() {
  (cd "$(dirname "$1")" && cat "$(basename "$1")" && while read -r p; do
     case "$p" in ''|'#'*) continue ;; esac; cat "$p"; done < "$(basename "$1")") | hash_of
}

# Builds the tree (configured once) and copies qemu-system-x86_64 to $1.
build_variant() {
  local out="$1"
  mkdir -p "$TREE/build"
  if [ ! -f "$TREE/build/build.ninja" ]; then
    log "configuring $TREE"
    (cd "$TREE/build" && ../src/configure --python="$QPY" "${CONFIGURE_FLAGS[@]}" \
       "--extra-ldflags=-Wl,-rpath,$PREFIX/lib" > "$TREE/configure.log" 2>&1) \
      || { tail -n 30 "$TREE/configure.log" >&2; die "configure failed (log: $TREE/configure.log)"; }
  fi
  # meson keeps pkg_config_path and the link arguments from setup time; QEMU's dependency
  # ('switchover') is looked up again at every regeneration (a series adds or removes it).
  if ! "$QPY" - "$TREE/build/meson-info/intro-buildoptions.json" "$PREFIX" <<'PY'
import json, sys
opts = {o["name"]: o["value"] for o in json.load(open(sys.argv[1]))}
prefix = sys.argv[2]
sys.exit(0 if opts.get("pkg_config_path") == [prefix + "/lib/pkgconfig"]
         and opts.get("c_link_args") == ["-Wl,-rpath," + prefix + "/lib"] else 1)
PY
  then
    "$TREE/build/pyvenv/bin/meson" configure "$TREE/build" \
      "-Dpkg_config_path=$PREFIX/lib/pkgconfig" "-Dc_link_args=-Wl,-rpath,$PREFIX/lib" \
      >> "$TREE/configure.log" 2>&1 || die "meson configure failed (log: $TREE/configure.log)"
  fi
  log "building in $TREE (log: $TREE/build.log)"
  (cd "$TREE/build" && ninja qemu-system-x86_64 > "$TREE/build.log" 2>&1) \
    || { tail -n 40 "$TREE/build.log" >&2; die "build failed (log: $TREE/build.log)"; }
  mkdir -p "$(dirname "$out")"
  cp "$TREE/build/qemu-system-x86_64" "$out.tmp" && mv "$out.tmp" "$out"
}

CFG_HASH="$(printf '%s\n' "$QEMU_DEB_VERSION" "${CONFIGURE_FLAGS[@]}" edk2-off i440fx-only cxl-stub | hash_of)"
PREFIX="$CACHE/prefix"
LIBVER="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)"
[ -n "$LIBVER" ] || die "no version in $ROOT/Cargo.toml"
# QEMU's configure checks the library only when the series is applied, but the trees are
# configured once with the rpath into $PREFIX: install the library first in every case.
log "installing libswitchover $LIBVER into $PREFIX"
install_library

# One tree per variant (see switch_tree): the baseline's stays pristine, the patched one
# follows the series. Each is configured once; a later build is an incremental ninja.
lock_tree() {
  TREE="$1"
  mkdir -p "$TREE"
  exec 9> "$TREE/.lock"
  flock 9     # one build.sh at a time per tree
  [ -d "$TREE/src" ] || unpack_tree "$TREE"
}

# --- baseline -------------------------------------------------------------------------------
if [ $want_baseline = 1 ]; then
  QEMU_BASELINE="$CACHE/baseline-$CFG_HASH/qemu-system-x86_64"
  if [ -x "$QEMU_BASELINE" ]; then
    log "reusing $QEMU_BASELINE"
  else
    lock_tree "$CACHE/tree-$CFG_HASH-pristine"
    [ ! -f "$TREE/applied/series" ] || die "$TREE has a series applied; it must stay pristine"
    build_variant "$QEMU_BASELINE"
    exec 9>&-
  fi
fi

# --- patched --------------------------------------------------------------------------------
# The key: everything that changes the patched binary. The series, the tree's configuration
# (QEMU version, flags, build tweaks), the library's version and header (compiled into the
# glue) and the compiler. Not the library's code: the binary loads it through its rpath from
# $PREFIX, re-installed on every run.
if [ $want_patched = 1 ]; then
  HDR_HASH="$(hash_of < "$ROOT/include/switchover.h")"
  CC_ID="$(cc --version | head -n1)"
  KEY="$(printf '%s\n' "$(series_hash "$HERE/patches/series")" "$CFG_HASH" "$LIBVER" "$HDR_HASH" "$CC_ID" | hash_of)"
  QEMU_PATCHED="$CACHE/$KEY/qemu-system-x86_64"
  if [ -x "$QEMU_PATCHED" ]; then
    log "reusing $QEMU_PATCHED"
  else
    lock_tree "$CACHE/tree-$CFG_HASH"
    switch_tree "$HERE/patches/series"
    build_variant "$QEMU_PATCHED"
    exec 9>&-
  fi
  # (ldd's output read whole: `ldd | grep -q` fails under pipefail when grep exits first)
  deps="$(ldd "$QEMU_PATCHED")" || die "ldd $QEMU_PATCHED failed"
  grep -q "libswitchover.so.0 => $LIBDIR/" <<< "$deps" \
    || die "$QEMU_PATCHED does not load libswitchover from $LIBDIR"
fi

[ $want_baseline = 1 ] && echo "QEMU_BASELINE=$QEMU_BASELINE"
[ $want_patched = 1 ] && echo "QEMU_PATCHED=$QEMU_PATCHED"
echo "QEMU_FIRMWARE=\"-L $SEABIOS_DIR -L $QEMU_DATA_DIR\""

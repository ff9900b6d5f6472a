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
#     tree-<c>/        one QEMU source tree + build directory, <c> = hash of the configure
#                      flags. A variant is made by reverting the series applied last and
#                      applying the wanted one (patch -p1 / -R), then an incremental ninja:
#                      on a shared 2-core machine a full QEMU build takes long, switching
#                      variants only recompiles what the series touches.
#     baseline-<c>/    the unpatched qemu-system-x86_64
#     <key>/           the patched qemu-system-x86_64, <key> = hash of the patch series, the
#                      configure flags, the library version and its header
# A second run with the same key reuses the binary without building. The library is
# re-installed into prefix/ on every run (cheap when unchanged); the patched QEMU loads it
# through its rpath, so a library fix needs no QEMU rebuild and an ABI change (a new header
# or version) gives a new key.
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
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
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

# Puts the tree into the variant given by the series file $1 ("" = pristine): reverts what
# was applied last (the copies in $TREE/applied/, newest first), applies the wanted series.
switch_tree() {
  local want="$1" p
  if [ -f "$TREE/applied/series" ]; then
    if [ -n "$want" ] && cmp -s "$TREE/applied/series.sha" <(series_hash "$want"); then
      return
    fi
    while read -r p; do
      log "reverting $p"
      patch -p1 -R -s -d "$TREE/src" < "$TREE/applied/$p" || die "cannot revert $p in $TREE/src"
    done < <(tac "$TREE/applied/series")
    rm -rf "$TREE/applied"
  fi
  [ -n "$want" ] || return 0
  mkdir -p "$TREE/applied.tmp"
  : > "$TREE/applied.tmp/series"
  while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    log "applying $p"
    patch -p1 -s -d "$TREE/src" < "$(dirname "$want")/$p" || die "patch $p does not apply"
    cp "$(dirname "$want")/$p" "$TREE/applied.tmp/$p"
    echo "$p" >> "$TREE/applied.tmp/series"
  done < "$want"
  series_hash "$want" > "$TREE/applied.tmp/series.sha"
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
TREE="$CACHE/tree-$CFG_HASH"
PREFIX="$CACHE/prefix"
LIBVER="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)"
[ -n "$LIBVER" ] || die "no version in $ROOT/Cargo.toml"
# QEMU's configure checks the library only when the series is applied, but the tree is
# configured once with the rpath into $PREFIX: install the library first in every case.
log "installing libswitchover $LIBVER into $PREFIX"
install_library
[ -d "$TREE/src" ] || unpack_tree "$TREE"
exec 9> "$TREE/.lock"
flock 9     # one build.sh at a time per tree

# --- baseline -------------------------------------------------------------------------------
if [ $want_baseline = 1 ]; then
  QEMU_BASELINE="$CACHE/baseline-$CFG_HASH/qemu-system-x86_64"
  if [ -x "$QEMU_BASELINE" ]; then
    log "reusing $QEMU_BASELINE"
  else
    switch_tree ""
    build_variant "$QEMU_BASELINE"
  fi
fi

# --- patched --------------------------------------------------------------------------------
if [ $want_patched = 1 ]; then
  HDR_HASH="$(hash_of < "$ROOT/include/switchover.h")"
  KEY="$(printf '%s\n' "$(series_hash "$HERE/patches/series")" "$CFG_HASH" "$LIBVER" "$HDR_HASH" | hash_of)"
  QEMU_PATCHED="$CACHE/$KEY/qemu-system-x86_64"
  if [ -x "$QEMU_PATCHED" ]; then
    log "reusing $QEMU_PATCHED"
  else
    switch_tree "$HERE/patches/series"
    build_variant "$QEMU_PATCHED"
  fi
  ldd "$QEMU_PATCHED" | grep -q "libswitchover.so.0 => $LIBDIR/" \
    || die "$QEMU_PATCHED does not load libswitchover from $LIBDIR"
fi

[ $want_baseline = 1 ] && echo "QEMU_BASELINE=$QEMU_BASELINE"
[ $want_patched = 1 ] && echo "QEMU_PATCHED=$QEMU_PATCHED"
echo "QEMU_FIRMWARE=\"-L $SEABIOS_DIR -L $QEMU_DATA_DIR\""

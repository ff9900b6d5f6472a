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
#     src/            the Debian source package (.dsc, orig tarball), fetched once
#     venv/           meson>=1.5 and pycotap for QEMU's configure --python=
#     ccache/         compiler cache shared by all builds below
#     baseline-<k>/   pristine tree + build, <k> = hash of the configure flags
#     <key>/          patched tree + build + the library installed in <key>/prefix,
#                     <key> = hash of the patch series, the configure flags, the library version
#                     and its header; a second run with the same key does not rebuild QEMU.
# The library is (re)installed into <key>/prefix with `meson install` on every run (cheap when
# unchanged), so fixes inside the library reach the patched QEMU through its rpath without a
# QEMU rebuild; a changed header or version gives a new key and a new QEMU build.
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
      ninja-build pkg-config ccache seabios qemu-system-data xz-utils)
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

export CCACHE_DIR="$CACHE/ccache" CCACHE_BASEDIR="$CACHE" CCACHE_NOHASHDIR=1
hash_of() { sha256sum | cut -c1-16; }

# Unpacks the pristine tree into $1/src (checking its VERSION), turns the edk2 blob
# unpacking off (the +ds tarball carries no firmware blobs) and enables the pc board in the
# devices file (with --without-default-devices every board is off unless named there).
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
}

# configure + ninja in $1/build for the tree in $1/src; extra configure arguments in "${@:2}".
build_tree() {
  local dir="$1"; shift
  if [ -f "$dir/BUILT" ] && [ -x "$dir/build/qemu-system-x86_64" ]; then
    log "reusing $dir/build/qemu-system-x86_64"
    return
  fi
  mkdir -p "$dir/build"
  if [ ! -f "$dir/build/build.ninja" ]; then
    log "configuring $dir"
    (cd "$dir/build" && ../src/configure --python="$QPY" "${CONFIGURE_FLAGS[@]}" "$@" \
       > "$dir/configure.log" 2>&1) || { tail -n 30 "$dir/configure.log" >&2; die "configure failed (log: $dir/configure.log)"; }
  fi
  log "building $dir (log: $dir/build.log)"
  (cd "$dir/build" && ninja qemu-system-x86_64 > "$dir/build.log" 2>&1) \
    || { tail -n 40 "$dir/build.log" >&2; die "build failed (log: $dir/build.log)"; }
  touch "$dir/BUILT"
}

# The library from this checkout, installed with `meson install` into the prefix $1: only the
# library target is built (not the test programs), one build directory per checkout.
install_library() {
  local prefix="$1" libbuild log
  libbuild="$CACHE/libbuild-$(printf '%s' "$ROOT" | hash_of)"
  log="$libbuild.log"
  if [ ! -f "$libbuild/build.ninja" ]; then
    "$QPY" -m mesonbuild.mesonmain setup "$libbuild" "$ROOT" --prefix="$prefix" \
      --buildtype=release > "$log" 2>&1 \
      || { tail -n 30 "$log" >&2; die "library meson setup failed (log: $log)"; }
  else
    "$QPY" -m mesonbuild.mesonmain configure "$libbuild" --prefix="$prefix" >> "$log" 2>&1
  fi
  (cd "$libbuild" && PATH="$CACHE/venv/bin:$PATH" ninja libswitchover.so >> "$log" 2>&1) \
    || { tail -n 30 "$log" >&2; die "library build failed (log: $log)"; }
  "$QPY" -m mesonbuild.mesonmain install -C "$libbuild" --no-rebuild --quiet >> "$log" 2>&1 \
    || { tail -n 30 "$log" >&2; die "library meson install failed (log: $log)"; }
}

CFG_HASH="$(printf '%s\n' "$QEMU_DEB_VERSION" "${CONFIGURE_FLAGS[@]}" edk2-off i440fx-only | hash_of)"

# --- baseline -------------------------------------------------------------------------------
if [ $want_baseline = 1 ]; then
  BDIR="$CACHE/baseline-$CFG_HASH"
  if [ ! -d "$BDIR/src" ]; then
    unpack_tree "$BDIR"; mv "$BDIR/src.tmp" "$BDIR/src"
  fi
  build_tree "$BDIR"
  QEMU_BASELINE="$BDIR/build/qemu-system-x86_64"
fi

# --- patched --------------------------------------------------------------------------------
if [ $want_patched = 1 ]; then
  # 1. the library, installed with meson into a prefix in the cache
  LIBVER="$(sed -n "s/^  version : '\(.*\)',$/\1/p" "$ROOT/meson.build" | head -n1)"
  [ -n "$LIBVER" ] || die "no version in $ROOT/meson.build"
  HDR_HASH="$(hash_of < "$ROOT/include/switchover.h")"
  SERIES_HASH="$( (cd "$HERE/patches" && cat series && while read -r p; do
      case "$p" in ''|'#'*) continue ;; esac; cat "$p"; done < series) | hash_of)"
  KEY="$(printf '%s\n' "$SERIES_HASH" "$CFG_HASH" "$LIBVER" "$HDR_HASH" | hash_of)"
  PDIR="$CACHE/$KEY"
  PREFIX="$PDIR/prefix"
  mkdir -p "$PDIR"
  log "installing libswitchover $LIBVER into $PREFIX"
  install_library "$PREFIX"
  PCDIR="$(dirname "$(find "$PREFIX" -name switchover.pc -path '*pkgconfig*' | head -n1)")"
  [ -f "$PCDIR/switchover.pc" ] || die "meson install gave no switchover.pc under $PREFIX"
  export PKG_CONFIG_PATH="$PCDIR${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  got="$(pkg-config --modversion switchover)" || die "pkg-config cannot find switchover"
  [ "$got" = "$LIBVER" ] || die "pkg-config switchover says $got, the checkout is $LIBVER"
  LIBDIR="$(pkg-config --variable=libdir switchover)"
  # 2. the tree: pristine + the series, applied with patch -p1 in order
  if [ ! -d "$PDIR/src" ]; then
    unpack_tree "$PDIR"
    while read -r p; do
      case "$p" in ''|'#'*) continue ;; esac
      log "applying $p"
      patch -p1 -s -d "$PDIR/src.tmp" < "$HERE/patches/$p" || die "patch $p does not apply"
    done < "$HERE/patches/series"
    mv "$PDIR/src.tmp" "$PDIR/src"
  fi
  # 3. QEMU's meson finds the library through dependency('switchover') = pkg-config; the rpath
  #    makes the binary load the library from the prefix without LD_LIBRARY_PATH.
  build_tree "$PDIR" "--extra-ldflags=-Wl,-rpath,$LIBDIR"
  QEMU_PATCHED="$PDIR/build/qemu-system-x86_64"
  if ! ldd "$QEMU_PATCHED" | grep -q "libswitchover.so.0 => $LIBDIR/"; then
    die "$QEMU_PATCHED does not load libswitchover from $LIBDIR"
  fi
fi

[ $want_baseline = 1 ] && echo "QEMU_BASELINE=$QEMU_BASELINE"
[ $want_patched = 1 ] && echo "QEMU_PATCHED=$QEMU_PATCHED"
echo "QEMU_FIRMWARE=\"-L $SEABIOS_DIR -L $QEMU_DATA_DIR\""

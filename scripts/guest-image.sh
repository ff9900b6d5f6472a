#!/usr/bin/env bash
# Builds the real-migration test guest, or reuses it from the cache: a Debian kernel and an
# initramfs of busybox-static plus scripts/guest/dirtier.c (a static page-dirtying program).
#
#   scripts/guest-image.sh               build or reuse; print the directory holding
#                                        vmlinuz and initrd.img (last line of stdout)
#   scripts/guest-image.sh --print-dir   the same, but only the directory on stdout
#
# The kernel and busybox come as Debian packages taken with `apt-get download` and unpacked
# with `dpkg-deb -x`: nothing is installed for them. The build needs gcc with a static libc
# (libc6-dev), cpio and gzip; run as root (CI) the script installs what is missing with
# apt-get, otherwise it names the missing packages and fails.
#
# The cache: ${SWITCHOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchover}/guest/<key>/,
# <key> a hash of the kernel and busybox package versions, dirtier.c and this script (which
# holds /init). A finished image is moved into place in one rename, so concurrent builders
# never see half an image.
#
# Environment: SWO_GUEST_KERNEL=linux-image-<ver>-amd64 picks the kernel package (default:
# the one Debian's linux-image-amd64 depends on).
#
# The guest: kernel command-line parameters without a dot reach /init as environment
# variables, so `swo_fill_mib=512 swo_region_mib=256 swo_dirty_mib_s=40 swo_pattern=uniform`
# on the -append line configures the workload (see dirtier.c). Boot with console=ttyS0; the
# serial log shows "SWO-READY ..." when the fill is done.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PRINT_DIR_ONLY=0
case "${1:-}" in
  --print-dir) PRINT_DIR_ONLY=1 ;;
  "") ;;
  -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
  *) echo "guest-image.sh: unknown argument '$1' (only --print-dir)" >&2; exit 2 ;;
esac
say() { echo "guest-image: $*" >&2; }
CACHE="${SWITCHOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchover}/guest"
IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
export DEBIAN_FRONTEND=noninteractive
APT_LOCK=(-o DPkg::Lock::Timeout=600)

apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  if [ "$IS_ROOT" = 1 ]; then
    say "apt-get update"
    apt-get "${APT_LOCK[@]}" update -qq >&2
  fi
  apt_updated=1
}

# --- tools the build needs on this machine -------------------------------------------------
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v gzip >/dev/null 2>&1 || missing+=(gzip)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
command -v apt-get >/dev/null 2>&1 || { say "apt-get not found: this builder needs a Debian-based machine"; exit 1; }
if command -v gcc >/dev/null 2>&1 && \
   ! echo 'int main(void){return 0;}' | gcc -static -x c -o /dev/null - >/dev/null 2>&1; then
  missing+=(libc6-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$IS_ROOT" = 1 ]; then
    apt_update_once
    say "installing ${missing[*]}"
    apt-get "${APT_LOCK[@]}" install -y -qq "${missing[@]}" >&2
  else
    say "missing: ${missing[*]} (as root: apt-get install ${missing[*]}; or run this script as root)"
    exit 1
  fi
fi

# --- which packages --------------------------------------------------------------------------
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
if [ -z "$(candidate busybox-static)" ] || [ "$(candidate busybox-static)" = "(none)" ]; then
  apt_update_once
fi
KPKG="${SWO_GUEST_KERNEL:-}"
if [ -z "$KPKG" ]; then
  KPKG="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
fi
if [ -z "$KPKG" ]; then
  apt_update_once
  KPKG="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
fi
[ -n "$KPKG" ] || { say "cannot find Debian's kernel package (apt-cache depends linux-image-amd64 is empty; run apt-get update as root)"; exit 1; }
KVER="$(candidate "$KPKG")"
BVER="$(candidate busybox-static)"
if [ -z "$KVER" ] || [ "$KVER" = "(none)" ] || [ -z "$BVER" ] || [ "$BVER" = "(none)" ]; then
  say "apt has no candidate for $KPKG ($KVER) or busybox-static ($BVER); run apt-get update as root"
  exit 1
fi

KEY="$( { echo "$KPKG=$KVER busybox-static=$BVER"; cat "$ROOT/scripts/guest/dirtier.c" "$0"; } \
        | sha256sum | cut -c1-16)"
OUT="$CACHE/$KEY"
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] && [ -f "$OUT/manifest.txt" ]; then
  [ "$PRINT_DIR_ONLY" = 1 ] || say "reusing $OUT ($KPKG $KVER, busybox-static $BVER)"
  echo "$OUT"
  exit 0
fi

# --- build --------------------------------------------------------------------------------------
mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
say "building in $WORK: $KPKG $KVER, busybox-static $BVER"
( cd "$WORK" && apt-get download "$KPKG=$KVER" "busybox-static=$BVER" >&2 ) || {
  say "apt-get download failed (network, or stale lists: apt-get update as root)"; exit 1; }
mkdir -p "$WORK/kernel" "$WORK/busybox"
# Only the kernel image is needed (the guest loads no modules): unpack ./boot alone.
dpkg-deb --fsys-tarfile "$WORK"/linux-image-*.deb | tar -x -C "$WORK/kernel" --wildcards './boot/vmlinuz-*' 
dpkg-deb -x "$WORK"/busybox-static_*.deb "$WORK/busybox"
VMLINUZ="$(ls "$WORK"/kernel/boot/vmlinuz-* | head -n1)"
[ -f "$VMLINUZ" ] || { say "no vmlinuz in $KPKG"; exit 1; }

R="$WORK/root"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,etc,usr/bin,usr/sbin}
cp "$WORK/busybox/bin/busybox" "$R/bin/busybox"
gcc -static -O2 -Wall -Wextra -Werror -o "$R/bin/dirtier" "$ROOT/scripts/guest/dirtier.c"
strip "$R/bin/dirtier" 2>/dev/null || true
cat > "$R/init" <<'EOF'
#!/bin/busybox sh
# The test guest's init: the kernel command line's key=value parameters are in the
# environment; dirtier reads its swo_* settings from there.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "SWO-BOOTED kernel=$(uname -r)"
/bin/dirtier
echo "SWO-ERROR dirtier exited with status $?"
while true; do sleep 3600; done
EOF
chmod 755 "$R/init"
( cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet ) | gzip -9 > "$WORK/initrd.img"

STAGE="$WORK/image"
mkdir -p "$STAGE"
cp "$VMLINUZ" "$STAGE/vmlinuz"
mv "$WORK/initrd.img" "$STAGE/initrd.img"
cat > "$STAGE/manifest.txt" <<EOF
kernel $KPKG $KVER $(basename "$VMLINUZ")
busybox-static $BVER
dirtier.c sha256 $(sha256sum "$ROOT/scripts/guest/dirtier.c" | cut -d' ' -f1)
gcc $(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)
EOF
# One rename publishes the image; a concurrent builder that won the race is fine too.
if ! mv -T "$STAGE" "$OUT" 2>/dev/null; then
  [ -f "$OUT/manifest.txt" ] || { say "cannot move the image to $OUT"; exit 1; }
fi
[ "$PRINT_DIR_ONLY" = 1 ] || say "built $OUT"
echo "$OUT"

# Sourced by the real-guest scripts (record-real-runs.sh, and the watcher's and the QEMU
# integration's end-to-end scripts), after scripts/env.sh: the tools a real migration needs.
#
#   e2e_need_qmp            qemu.qmp (PyPI) in the project .venv that env.sh activated
#   e2e_need_debian_qemu    Debian's qemu-system-x86 + seabios + qemu-system-data (root:
#                           apt-get installs them; otherwise the missing packages are named)
#   E2E_QEMU, E2E_FIRMWARE  set by e2e_need_debian_qemu: the binary and "-L dir" arguments
#   e2e_guest_dir           builds or reuses the guest image; prints its directory
#
# Each function returns non-zero with one clear line on stderr when it cannot provide.
e2e_need_qmp() {
  python3 -c 'import qemu.qmp' 2>/dev/null && return 0
  echo "installing from PyPI: qemu.qmp"
  python3 -m pip install --quiet --disable-pip-version-check qemu.qmp || {
    echo "e2e: cannot install qemu.qmp from PyPI" >&2; return 1; }
}

e2e_need_debian_qemu() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
  [ -f /usr/share/seabios/bios-256k.bin ] || missing+=(seabios)
  [ -f /usr/share/qemu/linuxboot_dma.bin ] || missing+=(qemu-system-data)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "installing Debian packages: ${missing[*]}"
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
          --no-install-recommends "${missing[@]}" >/dev/null || {
          echo "e2e: apt-get install ${missing[*]} failed" >&2; return 1; }
    else
      echo "e2e: missing Debian packages: ${missing[*]} (apt-get install them as root)" >&2
      return 1
    fi
  fi
  E2E_QEMU="$(command -v qemu-system-x86_64)"
  E2E_FIRMWARE=(-L /usr/share/seabios -L /usr/share/qemu)
}

e2e_guest_dir() {
  "$(dirname "${BASH_SOURCE[0]}")/guest-image.sh" --print-dir
}

#!/usr/bin/env bash
# Installs what building and testing dircache needs on Debian 12 (bookworm) or newer.
# Runs apt-get as root (directly, or through sudo), non-interactively.
set -euo pipefail

# What building and the demo need (`--demo`: only these; the demo must not pull in an sshd).
packages=(gcc libc6-dev libpam0g-dev libpam-wrapper libnss-wrapper pamtester)
case "${1:-}" in
  --demo) ;;
  # scripts/demo-fleet.sh: the demo's packages, nginx to serve snapshots, minisign to check them.
  --fleet) packages+=(nginx minisign openssl) ;;
  # `scripts/bench-nss.sh` also compares with Debian's libnss-cache; the tests do not need it.
  # nginx and minisign: tests/fleet_nginx.rs, scripts/demo-fleet.sh and the fleet benchmark
  # serve snapshots from a real nginx (started with its own configuration, never the
  # system service) and check them with Debian's minisign.
  --bench) packages+=(openssh-server sshpass dpkg-dev binutils groff-base systemd debootstrap lintian libnss-cache nginx minisign) ;;
  *) packages+=(openssh-server sshpass dpkg-dev binutils groff-base systemd debootstrap lintian nginx minisign) ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "dircache: installing ${missing[*]}" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "dircache: apt-get update" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The packages' services (nginx on port 80, sshd on 22) are not started: the tests and
  # demos start their own instances with their own configuration. policy-rc.d is what
  # invoke-rc.d and deb-systemd-invoke ask; one the administrator has is left alone.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# dircache install-deps.sh: no service starts while it installs\nexit 101\n' |
      "${as_root[@]}" tee "$guard" >/dev/null
    "${as_root[@]}" chmod 755 "$guard"
  fi
  echo "dircache: apt-get install ${#missing[@]} packages (a minute or two on a fresh machine)" >&2
  status=0
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || status=$?
  [ -z "$guard" ] || "${as_root[@]}" rm -f "$guard"
  [ "$status" -eq 0 ] || exit "$status"
fi

if ! command -v cargo >/dev/null 2>&1; then
  cat >&2 <<'MSG'
dircache: cargo is not installed. dircache needs Rust 1.89 or newer, which Debian's own
packages do not have yet; install it with rustup (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . "$HOME/.cargo/env"
then run this command again.
MSG
  exit 1
fi

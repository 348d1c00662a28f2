#!/usr/bin/env bash
# Builds the Debian package dircache_<version>_<arch>.deb from this workspace, with
# dpkg-deb alone (no debhelper, no cargo-deb): every file, mode and maintainer script is
# listed here and in packaging/. See README "Install on Debian".
#
#     scripts/build-deb.sh [--out DIR] [--profile release|debug] [--no-build]
#
#   --out DIR      where the .deb goes (default target/debian); its path is printed last
#   --profile P    which cargo profile's binaries to package (default release)
#   --no-build     package what target/P already holds (the tests use this after
#                  `cargo build`); otherwise `cargo build --workspace` runs first
#
# DEBFULLNAME and DEBEMAIL set the Maintainer field, as for Debian's own tools.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

out=$root/target/debian
profile=release
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $profile in
  release|debug) ;;
  *) echo "build-deb.sh: --profile must be release or debug, not $profile" >&2; exit 2 ;;
esac
for tool in dpkg-deb dpkg gzip strip; do
  command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is missing: apt-get install -y dpkg binutils gzip" >&2; exit 1; }
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/dircache-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
bin=${CARGO_TARGET_DIR:-$root/target}/$profile
modules=$bin
if [ "$build" = 1 ]; then
  if [ "$profile" = release ]; then
    cargo build --release --workspace --locked
    # The modules again, each a cdylib alone and the NSS module's first-lookup code placed
    # together (README PERFORMANCE): see scripts/build-modules.sh. Built for this package
    # only: --no-build packages what target/release holds, never an older build's modules.
    modules=$stage/modules
    scripts/build-modules.sh --out "$modules" > /dev/null
  else
    cargo build --workspace --locked
  fi
fi
for artifact in "$bin/dircache-sync" "$modules/libpam_dircache.so" "$modules/libnss_dircache.so"; do
  [ -f "$artifact" ] || { echo "build-deb.sh: $artifact is missing: run without --no-build, or cargo build first" >&2; exit 1; }
done

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "build-deb.sh: no version in [workspace.package] of Cargo.toml" >&2; exit 1; }
deb_version=$version-1
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
[ -n "$triplet" ] || { echo "build-deb.sh: cannot tell the multiarch triplet: apt-get install -y dpkg-dev" >&2; exit 1; }

mkdir -p "$out"
pkg=$stage/dircache
umask 022

# Directories first, each with its mode.
install -d -m 0755 "$pkg"/DEBIAN "$pkg"/usr/sbin "$pkg"/lib/"$triplet"/security \
  "$pkg"/lib/systemd/system "$pkg"/etc/dircache "$pkg"/var/lib/dircache \
  "$pkg"/usr/share/pam-configs "$pkg"/usr/share/man/man5 "$pkg"/usr/share/man/man8 \
  "$pkg"/usr/share/doc/dircache/examples

# Programs and modules, stripped as Debian policy asks.
install -m 0755 "$bin/dircache-sync" "$pkg/usr/sbin/dircache-sync"
install -m 0644 "$modules/libpam_dircache.so" "$pkg/lib/$triplet/security/pam_dircache.so"
install -m 0644 "$modules/libnss_dircache.so" "$pkg/lib/$triplet/libnss_dircache.so.2"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$pkg/usr/sbin/dircache-sync" "$pkg/lib/$triplet/security/pam_dircache.so" \
  "$pkg/lib/$triplet/libnss_dircache.so.2"

# Configuration: a conffile, 0600 because the administrator may put the password in it.
install -m 0600 conf/dircache.toml "$pkg/etc/dircache/dircache.toml"
# Two pam-auth-update profiles: logins (auth, account) go before pam_unix, password
# changes after it (SECURITY.md, "The PAM stack").
install -m 0644 packaging/pam-config "$pkg/usr/share/pam-configs/dircache"
install -m 0644 packaging/pam-config-password "$pkg/usr/share/pam-configs/dircache-password"
for unit in dircache-sync.service dircache-sync.timer dircache-sync-daemon.service; do
  install -m 0644 "conf/$unit" "$pkg/lib/systemd/system/$unit"
done

# Manual pages: dircache-sync(8) and one per subcommand from the clap definitions (the
# same text as --help), the rest written by hand.
"$pkg/usr/sbin/dircache-sync" manpages "$stage/man" >/dev/null
install -m 0644 "$stage"/man/*.8 packaging/man/pam_dircache.8 packaging/man/libnss_dircache.8 \
  "$pkg/usr/share/man/man8/"
install -m 0644 packaging/man/dircache.toml.5 "$pkg/usr/share/man/man5/"
gzip -9n "$pkg"/usr/share/man/man5/* "$pkg"/usr/share/man/man8/*

# Documentation.
doc=$pkg/usr/share/doc/dircache
install -m 0644 packaging/copyright "$doc/copyright"
install -m 0644 README.md "$doc/README.md"
gzip -9n "$doc/README.md"
install -m 0644 conf/dircache.toml conf/pam-service.example "$doc/examples/"
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
maintainer="${DEBFULLNAME:-dircache maintainers} <${DEBEMAIL:-dircache@example.org}>"
printf 'dircache (%s) unstable; urgency=medium\n\n  * Built from the dircache workspace.\n\n -- %s  %s\n' \
  "$deb_version" "$maintainer" "$date" | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
# What lintian reports on purpose (see packaging/lintian-overrides).
install -d -m 0755 "$pkg/usr/share/lintian/overrides"
install -m 0644 packaging/lintian-overrides "$pkg/usr/share/lintian/overrides/dircache"

# Control area.
for script in preinst postinst prerm postrm; do
  install -m 0755 "packaging/$script" "$pkg/DEBIAN/$script"
done
install -m 0644 packaging/triggers "$pkg/DEBIAN/triggers"
echo /etc/dircache/dircache.toml > "$pkg/DEBIAN/conffiles"
chmod 0644 "$pkg/DEBIAN/conffiles"

# glibc 2.35: the modules' static unwinder (build_support/static_unwinder.rs) uses _dl_find_object.
depends="libc6 (>= 2.35), libgcc-s1 (>= 4.2), libpam0g (>= 1.1.0)"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$stage/shlibs/debian"
  printf 'Source: dircache\n\nPackage: dircache\nArchitecture: any\n' > "$stage/shlibs/debian/control"
  found=$(cd "$stage/shlibs" && dpkg-shlibdeps -O --warnings=0 \
    -e"$pkg/usr/sbin/dircache-sync" -e"$pkg/lib/$triplet/security/pam_dircache.so" \
    -e"$pkg/lib/$triplet/libnss_dircache.so.2" | sed -n 's/^shlibs:Depends=//p')
  [ -n "$found" ] && depends=$found
fi
installed_size=$(du -s -k --apparent-size "$pkg" --exclude=DEBIAN | cut -f1)
sed -e "s/@VERSION@/$deb_version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  -e "s/@DEPENDS@/$depends/" -e "s/@MAINTAINER@/$maintainer/" \
  packaging/control.in > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
  | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/md5sums" "$pkg/DEBIAN/control"

deb=$out/dircache_${deb_version}_$arch.deb
compress=(-Zxz)
[ "$profile" = debug ] && compress=(-Zgzip -z1)
dpkg-deb --root-owner-group "${compress[@]}" --build "$pkg" "$deb" >/dev/null
echo "$deb"

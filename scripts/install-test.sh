#!/usr/bin/env bash
# Install test of the Debian package in a throwaway Debian root: debootstrap a minimal
# bookworm into a temporary folder, install the .deb there with dpkg, configure the bundled
# demo directory (running on 127.0.0.1 outside the root), sync, enable the pam-auth-update
# profiles, and then, inside the root: `getent passwd` shows a synced user, pamtester logs
# in a directory user and a local /etc/shadow user through the real common-* PAM stack,
# wrong passwords, a disabled user and a user without the login privilege are refused (also
# when pam_unix would let them through: a stale /etc/shadow entry, broken_shadow), a
# broken dircache configuration does not lock the local user out, `dircache-sync check`
# passes; finally removal and purge restore nsswitch.conf and the PAM stack byte for byte.
#
#     sudo scripts/install-test.sh [--deb PATH] [--profile release|debug] [--keep]
#
# Needs root (debootstrap, chroot, mount), the network to a Debian mirror (the one apt
# uses) and about 2 minutes after the build. Nothing outside the temporary folder changes:
# the mounts live in a private mount namespace and vanish with the script.
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$PWD

deb=
profile=release
keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --deb) deb=$(realpath "$2"); shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install-test.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" -eq 0 ] || { echo "install-test.sh: run as root (debootstrap and chroot need it): sudo $0" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  echo "== installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The mounts below (proc, dev) are made in a mount namespace of this script's own.
if [ -z "${DIRCACHE_INSTALL_TEST_NS:-}" ]; then
  exec unshare --mount --propagation private env DIRCACHE_INSTALL_TEST_NS=1 "$0" \
    ${deb:+--deb "$deb"} --profile "$profile" $([ "$keep" = 1 ] && echo --keep)
fi

started=$SECONDS
passed=0
step() { echo; echo "== $* ($((SECONDS - started)) s)"; }
fail() { echo "install-test.sh: FAILED: $*" >&2; exit 1; }

if [ -z "$deb" ]; then
  step "building the package (scripts/build-deb.sh --profile $profile)"
  deb=$(scripts/build-deb.sh --profile "$profile" --out "$root_dir/target/debian" | tail -n 1)
fi
demo_directory=${CARGO_TARGET_DIR:-$root_dir/target}/$profile/dircache-demo-directory
[ -x "$demo_directory" ] || fail "$demo_directory is missing: run \`cargo build --workspace\` (with --release for the release profile)"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/dircache-install-test.XXXXXX")
directory_pid=
cleanup() {
  [ -n "$directory_pid" ] && kill "$directory_pid" 2>/dev/null
  umount -R "$work/root/dev" 2>/dev/null || true
  umount "$work/root/proc" 2>/dev/null || true
  if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
root=$work/root

# The mirror and suite this machine's apt uses.
mirror=$(grep -h -o -E 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
step "debootstrap --variant=minbase $suite from $mirror"
debootstrap --variant=minbase --include=pamtester "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap (log above)"; }
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
# pamtester SERVICE USER OPERATIONS… with the lines of $PASSWORDS on standard input.
pamtester_() { printf '%s\n' "${PASSWORDS[@]}" | in_root pamtester -v dircache-test "$@" 2>&1; }
expect_login() {
  local user=$1; shift
  pamtester_ "$user" "$@" > "$work/pam.out" || { cat "$work/pam.out" >&2; fail "$user: pamtester $* was refused"; }
  echo "ok: $user: $*"
  passed=$((passed + 1))
}
expect_refused() {
  local user=$1; shift
  if pamtester_ "$user" "$@" > "$work/pam.out"; then cat "$work/pam.out" >&2; fail "$user: pamtester $* succeeded"; fi
  echo "ok: $user refused ($*): $(grep -v -e 'invoking pam_start' -e 'performing operation' -e 'successfully' "$work/pam.out" | tr '\n' ' ')"
  passed=$((passed + 1))
}
same_as_before() { # what
  for file in etc/nsswitch.conf etc/pam.d/common-auth etc/pam.d/common-account etc/pam.d/common-password etc/pam.d/common-session; do
    cmp "$work/orig/$file" "$root/$file" || { diff -u "$work/orig/$file" "$root/$file" >&2 || true; fail "$file differs after $1"; }
  done
  echo "ok: nsswitch.conf and the PAM stack are byte for byte as before ($1)"
  passed=$((passed + 1))
}

mkdir -p "$work/orig/etc/pam.d"
cp -p "$root/etc/nsswitch.conf" "$work/orig/etc/"
cp -p "$root"/etc/pam.d/common-* "$work/orig/etc/pam.d/"
cp "$deb" "$root/tmp/dircache.deb"

step "apt-get install ./$(basename "$deb") (resolves its dependencies, as an administrator would)"
in_root apt-get update -qq
in_root apt-get install -y -qq /tmp/dircache.deb
grep -E '^passwd:\s+files(\s.*)?\sdircache\s*(#.*)?$' "$root/etc/nsswitch.conf" || fail "postinst did not add dircache (last) to the passwd line"
grep -E '^group:\s+files(\s.*)?\sdircache\s*(#.*)?$' "$root/etc/nsswitch.conf" || fail "postinst did not add dircache (last) to the group line"
grep -E '^shadow:\s+files(\s.*)?\sdircache\s*(#.*)?$' "$root/etc/nsswitch.conf" || fail "postinst did not add dircache (last) to the shadow line"
for file in common-auth common-account common-password; do
  cmp "$work/orig/etc/pam.d/$file" "$root/etc/pam.d/$file" || fail "installing changed $file: the profile must not be enabled by the package"
done
[ "$(stat -c %a "$root/etc/dircache/dircache.toml")" = 600 ] || fail "/etc/dircache/dircache.toml is not 0600"
[ "$(stat -c %a "$root/var/lib/dircache")" = 755 ] || fail "/var/lib/dircache is not 0755"
in_root dpkg-query -W -f='${Conffiles}\n' dircache | grep -q /etc/dircache/dircache.toml || fail "dircache.toml is not a conffile"
in_root man -w dircache-sync pam_dircache libnss_dircache dircache.toml >/dev/null 2>&1 \
  || [ -f "$root/usr/share/man/man8/dircache-sync.8.gz" ] || fail "the manual pages are missing"
echo "ok: installed; nsswitch.conf has dircache; PAM untouched; modes and conffile right"

step "dircache-sync check before anything is configured (expected to fail: PAM not enabled)"
if in_root dircache-sync check; then fail "check passed without PAM"; fi
in_root dircache-sync check --configured && fail "check --configured passed with type = none"

step "configuring the demo directory and syncing"
"$demo_directory" > "$work/directory.url" &
directory_pid=$!
for _ in $(seq 100); do [ -s "$work/directory.url" ] && break; sleep 0.1; done
url=$(head -n 1 "$work/directory.url")
[ -n "$url" ] || fail "the demo directory did not start"
printf 'demo-admin-password\n' > "$root/etc/dircache/directory.secret"
chmod 600 "$root/etc/dircache/directory.secret"
sed -i -e "s|^type = \"none\".*|type = \"icewarp\"|" \
  -e "s|^# server = .*|server = \"$url\"|" \
  -e "s|^# username = .*|username = \"admin@example.com\"|" \
  -e "s|^# password_file = .*|password_file = \"/etc/dircache/directory.secret\"|" \
  -e "s|^timeout_secs = 60|timeout_secs = 10|" \
  "$root/etc/dircache/dircache.toml"
in_root dircache-sync check --configured
in_root dircache-sync sync --dry-run
in_root dircache-sync sync
printf 'demo-password\n' | in_root dircache-sync user add demo --full-name "Demo User" \
  --privilege login --privilege change_password --password-stdin

step "getent through libnss_dircache.so.2 inside the root"
in_root getent passwd alice@example.com | tee "$work/getent"
grep -q '^alice@example.com:x:' "$work/getent" || fail "getent passwd does not show the synced user"
in_root id alice@example.com
in_root getent passwd demo >/dev/null || fail "getent passwd demo"

step "pam-auth-update --enable dircache dircache-password"
in_root pam-auth-update --enable dircache dircache-password
for file in common-auth common-account common-password; do
  grep -q pam_dircache.so "$root/etc/pam.d/$file" || fail "$file has no pam_dircache.so"
done
sed -n '/^# here are the per-package modules/,/^# end of pam-auth-update config/p' "$root/etc/pam.d/common-auth" "$root/etc/pam.d/common-account" "$root/etc/pam.d/common-password"
cat > "$root/etc/pam.d/dircache-test" <<'PAM'
@include common-auth
@include common-account
@include common-password
@include common-session
PAM
in_root useradd -m -s /bin/bash localuser
printf 'localuser:local-password\n' | in_root chpasswd

step "logins through the real PAM stack (pamtester, common-*)"
PASSWORDS=(alice-password); expect_login alice@example.com authenticate acct_mgmt
PASSWORDS=(not-the-password); expect_refused alice@example.com authenticate
PASSWORDS=(carol-password); expect_refused carol@example.com authenticate acct_mgmt
PASSWORDS=(local-password); expect_login localuser authenticate acct_mgmt
PASSWORDS=(wrong-password); expect_refused localuser authenticate
PASSWORDS=(demo-password); expect_login demo authenticate acct_mgmt
PASSWORDS=(anything); expect_refused nosuchuser authenticate

in_root dircache-sync user set alice@example.com --revoke login
PASSWORDS=(alice-password); expect_refused alice@example.com authenticate acct_mgmt
# The account step alone, as after an SSH key: pam_unix must not let the revoked user through.
PASSWORDS=(); expect_refused alice@example.com acct_mgmt
in_root dircache-sync user set alice@example.com --grant login

step "pam_unix cannot speak for dircache users: a stale /etc/shadow entry, broken_shadow"
# What pam_unix would accept for alice's name, and a pam_unix account step that passes users
# it finds no shadow entry for: dircache decides its users before pam_unix is asked.
cp -p "$root/etc/shadow" "$work/shadow"
cp -p "$root/etc/pam.d/common-account" "$work/common-account"
stale=$(in_root perl -e 'print crypt("stale-password", q($6$dircachetest$))')
printf 'alice@example.com:%s:19000:0:99999:7:::\n' "$stale" >> "$root/etc/shadow"
sed -i -E 's/^(account\s.*pam_unix\.so)\s*$/\1 broken_shadow/' "$root/etc/pam.d/common-account"
grep -q 'pam_unix.so broken_shadow' "$root/etc/pam.d/common-account" || fail "could not add broken_shadow"
PASSWORDS=(stale-password); expect_refused alice@example.com authenticate
PASSWORDS=(); expect_refused carol@example.com acct_mgmt
in_root dircache-sync user set bob@example.com --revoke login
PASSWORDS=(); expect_refused bob@example.com acct_mgmt
in_root dircache-sync user set alice@example.com --revoke login
PASSWORDS=(); expect_refused alice@example.com acct_mgmt
in_root dircache-sync user set alice@example.com --grant login
in_root dircache-sync user set bob@example.com --grant login
PASSWORDS=(alice-password); expect_login alice@example.com authenticate acct_mgmt
PASSWORDS=(local-password); expect_login localuser authenticate acct_mgmt
cp -p "$work/shadow" "$root/etc/shadow"
cp -p "$work/common-account" "$root/etc/pam.d/common-account"

step "password changes: a local dircache user, and the local /etc/shadow user"
PASSWORDS=(demo-password new-demo-password new-demo-password); expect_login demo chauthtok
PASSWORDS=(new-demo-password); expect_login demo authenticate
PASSWORDS=(demo-password); expect_refused demo authenticate
PASSWORDS=(new-local-password new-local-password); expect_login localuser chauthtok
PASSWORDS=(new-local-password); expect_login localuser authenticate acct_mgmt
PASSWORDS=(alice-password x x); expect_refused alice@example.com chauthtok

step "a broken dircache configuration does not lock the local user out"
cp -p "$root/etc/dircache/dircache.toml" "$work/dircache.toml"
echo 'not valid toml' >> "$root/etc/dircache/dircache.toml"
PASSWORDS=(new-local-password); expect_login localuser authenticate acct_mgmt
PASSWORDS=(new-local-password-2 new-local-password-2); expect_login localuser chauthtok
PASSWORDS=(alice-password); expect_refused alice@example.com authenticate acct_mgmt
PASSWORDS=(); expect_refused alice@example.com acct_mgmt
cp -p "$work/dircache.toml" "$root/etc/dircache/dircache.toml"
PASSWORDS=(new-local-password-2); expect_login localuser authenticate

step "dircache-sync check on the finished setup"
in_root dircache-sync check || fail "dircache-sync check failed on a working setup"

step "dpkg -r dircache"
in_root dpkg -r dircache
same_as_before "dpkg -r"
[ -f "$root/etc/dircache/dircache.toml" ] || fail "remove deleted the configuration (only purge may)"
[ ! -e "$root/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)/security/pam_dircache.so" ] || fail "pam_dircache.so is still there"
in_root getent passwd alice@example.com && fail "alice is still a user after removal"
PASSWORDS=(new-local-password-2); expect_login localuser authenticate acct_mgmt

step "reinstall, an upgrade that keeps an administrator's nsswitch.conf, and purge"
in_root dpkg -i /tmp/dircache.deb
grep -qE '^passwd:\s+files(\s.*)?\sdircache\s*(#.*)?$' "$root/etc/nsswitch.conf" || fail "reinstalling after removal did not add dircache again"
sed -i -E 's/ dircache//' "$root/etc/nsswitch.conf"
in_root dpkg -i /tmp/dircache.deb
grep -q dircache "$root/etc/nsswitch.conf" && fail "an upgrade added dircache back to nsswitch.conf against the administrator's choice"
echo "ok: an upgrade left the administrator's nsswitch.conf alone"
sed -i -E 's/^(passwd|group|shadow):(\s+)files/\1:\2files dircache/' "$root/etc/nsswitch.conf"
in_root pam-auth-update --enable dircache dircache-password
in_root dpkg --purge dircache
same_as_before "dpkg --purge"
[ ! -e "$root/etc/dircache/dircache.toml" ] || fail "purge left the conffile"
[ ! -e "$root/var/lib/dircache" ] || fail "purge left /var/lib/dircache"
PASSWORDS=(new-local-password-2); expect_login localuser authenticate acct_mgmt

step "done"
echo "install-test: $passed passed, 0 failed"

#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration tests that drive
# the real libpam (pam_wrapper + pamtester) and the real dircache-sync binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

echo "== rustfmt --check"
cargo fmt --all -- --check
echo "== clippy (-D warnings; compiles everything the first time: a few minutes)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The integration tests load the built .so files and spawn the built binary.
echo "== cargo build --workspace"
cargo build --workspace --quiet
echo "== cargo test --workspace"
cargo test --workspace --quiet
# The modules as the package ships them: a release build (a few minutes), which fails when
# the NSS module's first-lookup code can no longer be placed together (the list is stale).
echo "== the modules as packaged (scripts/build-modules.sh --check)"
scripts/build-modules.sh --check > /dev/null
# The Debian package installed into a throwaway Debian root (debootstrap, about 2.5 min;
# needs root and the Debian mirror). DIRCACHE_SKIP_INSTALL_TEST=1 leaves it out.
if [ "${DIRCACHE_SKIP_INSTALL_TEST:-0}" = 1 ]; then
  echo "install test skipped (DIRCACHE_SKIP_INSTALL_TEST=1)"
elif [ "$(id -u)" -ne 0 ]; then
  # Under CI nothing may skip.
  if [ "${CI:-}" = true ]; then
    echo "the install test must run in CI, but it needs root" >&2
    exit 1
  fi
  echo "install test skipped: it needs root (sudo scripts/install-test.sh --profile debug)"
else
  echo "== the .deb installed into a throwaway Debian root (scripts/install-test.sh)"
  scripts/install-test.sh --profile debug
fi

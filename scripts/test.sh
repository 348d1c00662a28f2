#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration tests that drive
# the real libpam (pam_wrapper + pamtester) and the real dircache-sync binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The integration tests load the built .so files and spawn the built binary.
cargo build --workspace --quiet
cargo test --workspace --quiet

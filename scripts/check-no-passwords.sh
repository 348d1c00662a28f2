#!/usr/bin/env bash
# Runs the whole test suite with every PAM syslog line on stderr (PAM_WRAPPER_DEBUGLEVEL=2)
# and every command output of the tests recorded (DIRCACHE_TEST_TRANSCRIPT, see
# tests/testbed/mod.rs), then searches all of it — cargo's output included — for every password
# the tests and the mock directories use. Prints what it checked; exit status 1 if a password
# appears anywhere. Not part of scripts/test.sh (it runs the suite a second time).
#
#     scripts/check-no-passwords.sh [extra `cargo test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dircache-no-passwords.XXXXXX")
trap 'rm -rf "$work"' EXIT
transcript="$work/transcript"
: > "$transcript"

cargo build --workspace --quiet
status=0
PAM_WRAPPER_DEBUGLEVEL=2 DIRCACHE_TEST_TRANSCRIPT="$transcript" \
  cargo test --workspace --no-fail-fast "$@" -- --nocapture >"$work/cargo.log" 2>&1 || status=$?
cat "$work/cargo.log" >> "$transcript"
if [ "$status" -ne 0 ]; then
  grep -E '^test .* FAILED' "$work/cargo.log" >&2 || true
  cp "$work/cargo.log" "${TMPDIR:-/tmp}/dircache-no-passwords-cargo.log"
  echo "check-no-passwords: the test suite failed (status $status; its output is in" \
    "${TMPDIR:-/tmp}/dircache-no-passwords-cargo.log); the search runs anyway" >&2
fi

# Every string literal of the tests and the mocks that is a password: named so (a constant
# or a field/argument called *password*, *pass*, *pw*) or shaped so (`…-password`, `…-Pw-…`,
# `secret-…`). The generated users' passwords share a prefix, searched as such.
python3 - "$transcript" <<'PY'
import pathlib, re, sys

transcript = pathlib.Path(sys.argv[1]).read_bytes()
sources = [p for d in ("tests", "mock_directory", "src", "examples", "nss_module", "pam_module")
           for p in pathlib.Path(d).rglob("*.rs")]
literal = re.compile(r'"((?:[^"\\]|\\.){6,80})"')
shaped = re.compile(r'(-password$|-Pw-|^secret-|[Pp]assw0rd|S3cr|hunter2|-pw-|Pw\d)')
named = re.compile(r'(?i)(password|passwd|_pw)\w*\s*(:\s*&\w+\s*)?[:=]\s*&?b?"$')
candidates = set()
for path in sources:
    text = path.read_text(errors="replace")
    for match in literal.finditer(text):
        value = match.group(1)
        before = text[max(0, match.start() - 40):match.start() + 1]
        if any(c in value for c in " {\\&=/"):
            continue
        if shaped.search(value) or named.search(before):
            candidates.add(value)
# Words that are messages, prompts, file names or config keys rather than passwords.
not_passwords = {"common-password"}  # the PAM file /etc/pam.d/common-password
candidates = {c for c in candidates
              if not re.fullmatch(r"[a-z_]+|[A-Z_]+", c) and c not in not_passwords}
hits = sorted(c for c in candidates if c.encode() in transcript)
generated = transcript.count(b"secret-user")
syslog = transcript.count(b"SYSLOG(")
print(f"check-no-passwords: {len(transcript):,} bytes of test output ({syslog:,} PAM syslog "
      f"lines among them) searched for {len(candidates)} passwords of the tests and mocks "
      f"(plus the generated 'secret-user…' ones): {len(hits) + (1 if generated else 0)} found")
for hit in hits:
    print(f"  FOUND: {hit!r}")
if generated:
    print(f"  FOUND: 'secret-user…' ({generated} times)")
sys.exit(1 if hits or generated else 0)
PY
exit $status

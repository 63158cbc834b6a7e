#!/usr/bin/env bash
# Runs every test: installs the local stand-ins (infra/local/install.sh), builds, then starts
# DynamoDB Local and moto server and runs the whole workspace's tests against them, inside a
# private network namespace when the machine allows one (loopback only, nothing reachable from
# outside, nothing outside reachable). Extra arguments go to `cargo test`.
#
#   infra/local/test.sh                 # everything
#   infra/local/test.sh -p continuity-shared
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"

if [[ "${1:-}" != "--inner" ]]; then
  bash infra/local/install.sh
  bash infra/local/install-browser.sh
  command -v openssl >/dev/null || { echo "test.sh: openssl is required (apt-get install openssl)" >&2; exit 1; }
  echo "== build (tests and binaries)"
  cargo build --workspace --all-targets --locked
  cargo test --workspace --locked --no-run
  if [[ "${CONTINUITY_NO_NETNS:-}" != 1 ]] && unshare -n true 2>/dev/null; then
    echo "== tests in a private network namespace"
    exec unshare -n bash "$0" --inner "$@"
  fi
  echo "== tests (no private network namespace available: services still bind 127.0.0.1 only, except DynamoDB Local which binds every interface)"
  exec bash "$0" --inner "$@"
fi
shift

ip link set lo up 2>/dev/null || true
STATE="$(mktemp -d "${TMPDIR:-/tmp}/continuity-test.XXXXXX")"
cleanup() { bash "$ROOT/infra/local/services.sh" stop "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"; }
trap cleanup EXIT
bash infra/local/services.sh start "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"
SCOPE=(--workspace)
for a in "$@"; do [[ "$a" == -p || "$a" == --package ]] && SCOPE=(); done
# --no-fail-fast: every test binary runs even after one fails, so one run shows every failure.
set +e
cargo test "${SCOPE[@]}" --locked --offline --no-fail-fast "$@" 2>&1 | tee "$STATE/test.log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$STATE/test.log"
exit "$status"

#!/usr/bin/env bash
# Benchmarks: starts the local services, runs the integration-tests benches (the monitor
# against DynamoDB Local and a real SMTP server; the inbound path against DynamoDB Local, moto
# and an SMTP sink; the portal's page and actions; the Online Inbox's first page of a 30,000-message
# mailbox; its page weight and first render on a phone in Chromium; its search over 30,000
# messages against reading the 30 days; from an event's
# activation to a user reading their inbox through a sign-in code; the OAuth probes' token
# requests over a day) and prints the figures as tables, then the release size of each
# function binary and the monitor's cold start. BENCH_ORGS / BENCH_PROBE_ORGS /
# BENCH_ALERT_ORGS / BENCH_MESSAGES / BENCH_PORTAL_N / BENCH_INBOX_MESSAGES / BENCH_INBOX_RUNS /
# BENCH_WEIGHT_RUNS / BENCH_SEARCH_MESSAGES / BENCH_SEARCH_RUNS / BENCH_SEARCH_BASELINE_RUNS /
# BENCH_SIGNIN_RUNS / BENCH_TOKEN_ORGS / BENCH_TOKEN_RUNS select the sizes (see each bench's
# header in tests/benches/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"
bash infra/local/install.sh >/dev/null
bash infra/local/install-browser.sh >/dev/null
# One release build for everything below, compiled once: the benches, the function binaries
# (their sizes, the cold start) and the runner (the cold start's table). `cargo bench` uses the
# `bench` profile, which inherits `release` (Cargo.toml) and shares target/release, so the
# `cargo bench` runs below reuse this build as long as they select the same packages
# (--workspace: cargo unifies dependency features over the packages selected, and a `-p` subset
# would compile the dependencies again with other features).
cargo build --release --locked --workspace --bench '*' \
  --bin monitor --bin inbound --bin queue --bin api --bin local-runner
BENCH=(cargo bench --locked --offline --workspace)
STATE="$(mktemp -d "${TMPDIR:-/tmp}/continuity-bench.XXXXXX")"
cleanup() { bash "$ROOT/infra/local/services.sh" stop "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"; }
trap cleanup EXIT
bash infra/local/services.sh start "$STATE" >/dev/null
# shellcheck disable=SC1091
source "$STATE/env"
"${BENCH[@]}" --bench monitor
echo
"${BENCH[@]}" --bench inbound
echo
"${BENCH[@]}" --bench portal
echo
"${BENCH[@]}" --bench inbox_pages
echo
"${BENCH[@]}" --bench inbox_weight
"${BENCH[@]}" --bench search
echo
"${BENCH[@]}" --bench sign_in
"${BENCH[@]}" --bench probe_tokens
echo
printf '| binary | release size (x86_64, stripped) |\n|---|---:|\n'
for f in monitor inbound queue api; do
  size=$(stat -c %s "target/release/$f")
  awk -v f="$f" -v s="$size" 'BEGIN { printf "| %s | %d bytes (%.1f MiB) |\n", f, s, s / 1048576 }'
done
echo
echo "Cold start against a stand-in of the Lambda runtime API (exec to first request for work; to the"
echo "first response, a run over an empty table: one Query to DynamoDB Local):"
printf '| binary | init | init + first invocation | runs |\n|---|---:|---:|---:|\n'
export TABLE_NAME=coldstart PORTAL_BASE_URL=https://continuity.test LINK_KEYS_SECRET=unused \
  ALERT_SENDER=alerts@continuity.test EVENT_BUS_NAME=default SMTP_HELO_NAME=smtp.continuity.test
target/release/local-runner create-table >/dev/null
"$CONTINUITY_PYTHON" infra/local/coldstart.py target/release/monitor tests/fixtures/eventbridge-scheduled.json 20
# BENCH_POSTFIX=1 (default off): the inbound path side by side with a private Postfix instance
# relaying to the same kind of sink (infra/local/bench-postfix.sh; root, installs Debian's postfix).
if [[ "${BENCH_POSTFIX:-0}" == 1 ]]; then
  echo
  bash infra/local/bench-postfix.sh
fi

#!/usr/bin/env bash
# Benchmarks: starts the local services, runs `cargo bench -p integration-tests` (the monitor
# against DynamoDB Local and a real SMTP server; the inbound path against DynamoDB Local, moto
# and an SMTP sink; the portal's page and actions; the Online Inbox's first page of a 30,000-message
# mailbox) and prints the figures as tables, then the
# release size of each function binary. BENCH_ORGS / BENCH_PROBE_ORGS select the sizes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"
bash infra/local/install.sh >/dev/null
cargo bench -p integration-tests --bench monitor --bench inbound --bench portal --bench inbox_pages --no-run --locked
STATE="$(mktemp -d "${TMPDIR:-/tmp}/continuity-bench.XXXXXX")"
cleanup() { bash "$ROOT/infra/local/services.sh" stop "$STATE" >/dev/null 2>&1 || true; rm -rf "$STATE"; }
trap cleanup EXIT
bash infra/local/services.sh start "$STATE" >/dev/null
# shellcheck disable=SC1091
source "$STATE/env"
cargo bench -p integration-tests --bench monitor --locked --offline
echo
cargo bench -p integration-tests --bench inbound --locked --offline
echo
cargo bench -p integration-tests --bench portal --locked --offline
echo
cargo bench -p integration-tests --bench inbox_pages --locked --offline
echo
cargo build --release --locked -p monitor -p inbound -p api
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
  ALERT_SENDER=alerts@continuity.test EVENT_BUS_NAME=default
cargo run -q --locked --offline -p local-runner -- create-table >/dev/null
"$CONTINUITY_PYTHON" infra/local/coldstart.py target/release/monitor tests/fixtures/eventbridge-scheduled.json 20
# BENCH_POSTFIX=1 (default off): the inbound path side by side with a private Postfix instance
# relaying to the same kind of sink (infra/local/bench-postfix.sh; root, installs Debian's postfix).
if [[ "${BENCH_POSTFIX:-0}" == 1 ]]; then
  echo
  bash infra/local/bench-postfix.sh
fi

#!/usr/bin/env bash
# Runs the whole system on this workstation (requirement I4), all on 127.0.0.1:
#   DynamoDB Local and moto server (the AWS stand-ins), the organisation's mail server
#   (aiosmtpd with STARTTLS and AUTH), the receiving MX stand-in, the functions on their
#   schedules and the control API. A demo organisation (infra/local/demo-org.json) is monitored.
#
#   infra/local/run.sh                  # machine clock: the monitor runs every two minutes
#   VIRTUAL=1 infra/local/run.sh        # virtual clock: POST /clock/advance?minutes=N replays time
#
# Ports (override with the variables): API_PORT=8080 (the portal, administration API, Online
# Inbox and sign-in, as API Gateway serves them), HTTP_PORT=8787 (the runner's control API and
# local identity provider), RECEIVING_PORT=2525 (the service's MX,
# SES receiving's stand-in), SUBMISSION_PORT=2587 (the organisation's submission, STARTTLS+AUTH),
# DELIVERY_PORT=2526 (the organisation's server's inbound SMTP, STARTTLS, where the service
# delivers; the same Maildir).
# Ctrl-C stops everything it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"
HTTP_PORT="${HTTP_PORT:-8787}"
API_PORT="${API_PORT:-8080}"
RECEIVING_PORT="${RECEIVING_PORT:-2525}"
SUBMISSION_PORT="${SUBMISSION_PORT:-2587}"
DELIVERY_PORT="${DELIVERY_PORT:-2526}"
STATE="$CONTINUITY_HOME/run"

bash infra/local/install.sh
# The workspace's binaries, selected as test.sh selects them (--workspace): cargo unifies the
# dependencies' features over the packages selected, so `-p local-runner` alone would build
# ~120 crates again with other features after test.sh; this reuses test.sh's build and vice versa.
cargo build --workspace --bins --locked
RUNNER="$ROOT/target/debug/local-runner"

if [[ -f "$STATE/pids" ]]; then bash infra/local/services.sh stop "$STATE" >/dev/null 2>&1 || true; fi
if [[ -f "$STATE/mailserver.pid" ]]; then while read -r p; do kill "$p" 2>/dev/null || true; done < "$STATE/mailserver.pid"; fi
rm -rf "$STATE"
mkdir -p "$STATE"

RUNNER_PID=""
cleanup() {
  [[ -n "$RUNNER_PID" ]] && kill "$RUNNER_PID" 2>/dev/null || true
  [[ -f "$STATE/mailserver.pid" ]] && "$STATE/mailserver-stop.sh" 2>/dev/null || true
  bash "$ROOT/infra/local/services.sh" stop "$STATE" >/dev/null 2>&1 || true
  echo "run.sh: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash infra/local/services.sh start "$STATE"
# The functions' settings (infra/template.yaml sets them in AWS) go into run/env beside the
# endpoints, so that `source run/env` is all a manual `local-runner once monitor|queue` needs.
printf 'export %s=%q\n' >> "$STATE/env" \
  TABLE_NAME continuity-local \
  SMTP_CA_BUNDLE "$STATE/cert/cert.pem" \
  SMTP_TIMEOUT_SECS 10 \
  PORTAL_BASE_URL "http://127.0.0.1:$API_PORT" \
  LINK_KEYS_SECRET continuity/link-keys \
  ALERT_SENDER alerts@continuity.localhost \
  EVENT_BUS_NAME continuity-local \
  MAIL_BUCKET continuity-mail-local \
  BOUNCE_SENDER mailer-daemon@probe.localhost \
  SMTP_HELO_NAME continuity.localhost
# shellcheck disable=SC1091
source "$STATE/env"
bash infra/local/make-test-cert.sh "$STATE/cert" >/dev/null

# The organisation's mail server: submission with STARTTLS and AUTH; mail for the service's
# receiving domain (probes) is relayed to the receiving stand-in, as a real server sends outbound.
cat > "$STATE/mailserver-start.sh" <<SH
#!/usr/bin/env bash
"$CONTINUITY_PYTHON" "$ROOT/infra/local/mailserver.py" --host 127.0.0.1 --port "$SUBMISSION_PORT" \\
  --maildir "$STATE/mail" --mode-file "$STATE/mail-mode" \\
  --tls-cert "$STATE/cert/cert.pem" --tls-key "$STATE/cert/key.pem" \\
  --auth-user continuity-probe@demo.localhost --auth-password demo-password \\
  --relay probe.localhost=127.0.0.1:$RECEIVING_PORT >"$STATE/mailserver.out" 2>"$STATE/mailserver.log" &
echo \$! > "$STATE/mailserver.pid"
"$CONTINUITY_PYTHON" "$ROOT/infra/local/mailserver.py" --host 127.0.0.1 --port "$DELIVERY_PORT" \\
  --maildir "$STATE/mail" --mode-file "$STATE/mail-mode" \\
  --tls-cert "$STATE/cert/cert.pem" --tls-key "$STATE/cert/key.pem" \\
  >"$STATE/mailserver-mx.out" 2>"$STATE/mailserver-mx.log" &
echo \$! >> "$STATE/mailserver.pid"
for _ in \$(seq 1 100); do
  grep -q READY "$STATE/mailserver.out" 2>/dev/null && grep -q READY "$STATE/mailserver-mx.out" 2>/dev/null && exit 0
  sleep 0.1
done
echo "mail server did not start: see $STATE/mailserver*.log" >&2; exit 1
SH
cat > "$STATE/mailserver-stop.sh" <<SH
#!/usr/bin/env bash
[[ -f "$STATE/mailserver.pid" ]] || exit 0
while read -r p; do kill "\$p" 2>/dev/null || true; done < "$STATE/mailserver.pid"
rm -f "$STATE/mailserver.pid" "$STATE/mailserver.out" "$STATE/mailserver-mx.out"
SH
chmod +x "$STATE"/mailserver-*.sh
"$STATE/mailserver-start.sh"

"$RUNNER" prepare-local-aws
sed -e "s/\"port\": 2587/\"port\": $SUBMISSION_PORT/g" -e "s/\"port\": 2526/\"port\": $DELIVERY_PORT/g" \
  infra/local/demo-org.json > "$STATE/demo-org.json"
"$RUNNER" put-secret continuity/demo/probe demo-password

VIRTUAL_ARGS=()
if [[ "${VIRTUAL:-}" == 1 ]]; then
  VIRTUAL_ARGS=(--virtual-start "$(date -u +%Y-%m-%dT%H:%M:00Z)" --settle-ms 3000)
fi

cat <<MSG

== Email continuity, running locally ==
  web pages:            http://127.0.0.1:$API_PORT/auth/login   (sign in as bob@demo.localhost; tick Administrator for admin pages)
  admin API token:      curl -s 'http://127.0.0.1:$HTTP_PORT/dev/token?email=admin@demo.localhost&admin=true'
  status (plain text):  curl -s http://127.0.0.1:$HTTP_PORT/
  counter history:      curl -s 'http://127.0.0.1:$HTTP_PORT/orgs/demo/history?windows=10'
  run the monitor now:  curl -s -X POST http://127.0.0.1:$HTTP_PORT/run/monitor
$( [[ "${VIRTUAL:-}" == 1 ]] && echo "  advance virtual time: curl -s -X POST 'http://127.0.0.1:$HTTP_PORT/clock/advance?minutes=10'" )

  Make the organisation's server fail and watch the counter climb to the threshold (3):
    $STATE/mailserver-stop.sh            (server down: probes cannot be sent)
    echo tempfail > $STATE/mail-mode      (server refuses mail; 'hang' makes it hang; 'accept' heals)
    $STATE/mailserver-start.sh           (server back: the counter falls to 0)
  At 3 the demo admin is alerted: SMS and email land in the local SNS/SES stand-in:
    curl -s $MOTO_ENDPOINT/moto-api/data.json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(*[m["message"] for m in d["sns"]["SMS"]], sep="\n")'
  Send mail in, as the Internet would (any SMTP client; here Python's smtplib):
    $CONTINUITY_PYTHON -c 'import smtplib; smtplib.SMTP("127.0.0.1", $RECEIVING_PORT).sendmail("a@example.org", ["bob@demo.localhost"], "Subject: hi\\r\\n\\r\\nhello\\r\\n")'
  It is stored in S3 (moto), filed for bob, and delivered to the server (or queued while it is down;
  the queue retries every minute and drains when it is back):
    curl -s http://127.0.0.1:$HTTP_PORT/orgs/demo/queue
  Run a scheduled function by hand, with this stack's settings:
    source $STATE/env; $RUNNER once monitor
  Mail the server accepted: $STATE/mail/new   Logs: $STATE/*.log (the runner's: runner.log)
MSG

"$RUNNER" serve --log-file "$STATE/runner.log" --create-table --config "$STATE/demo-org.json" \
  --http "127.0.0.1:$HTTP_PORT" --api "127.0.0.1:$API_PORT" --receiving "127.0.0.1:$RECEIVING_PORT" "${VIRTUAL_ARGS[@]}" &
RUNNER_PID=$!
wait "$RUNNER_PID"

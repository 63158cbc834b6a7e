#!/usr/bin/env bash
# infra/local/services.sh — start/stop the local AWS stand-ins on 127.0.0.1.
#
#   services.sh start STATE_DIR   runs install.sh (cheap when installed), then starts
#                                 DynamoDB Local (-inMemory -disableTelemetry) and
#                                 moto server on free loopback ports, waits until both
#                                 answer (timeout 60 s), and writes:
#                                   STATE_DIR/pids        one pid per line
#                                   STATE_DIR/env         exports to `source`
#                                   STATE_DIR/dynamodb.log, STATE_DIR/moto.log
#   services.sh stop STATE_DIR    TERM the pids (KILL after 5 s), remove STATE_DIR/pids.
#
# Note: DynamoDB Local binds all interfaces (it has no bind option); always
# connect to it via 127.0.0.1. moto is bound to 127.0.0.1 only.
# Environment: CONTINUITY_HOME (default ~/.cache/email-continuity),
#              SERVICES_TIMEOUT (seconds, default 60).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"
export CONTINUITY_HOME
TIMEOUT="${SERVICES_TIMEOUT:-60}"

die() { echo "services.sh: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
cmd="$1"
mkdir -p "$2"
STATE_DIR="$(cd "$2" && pwd)"
PIDS="$STATE_DIR/pids"

# a pid counts as alive if it exists and is not a zombie
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ -n "$st" && "$st" != Z* ]]
}

stop_pids() {
  local pids=() p
  [[ -f "$PIDS" ]] || return 0
  while read -r p; do [[ "$p" =~ ^[0-9]+$ ]] && pids+=("$p"); done < "$PIDS"
  for p in "${pids[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null || true; done
  local i
  for i in $(seq 1 50); do           # up to 5 s
    local any=0
    for p in "${pids[@]}"; do alive "$p" && any=1; done
    [[ $any -eq 0 ]] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  # reap/wait briefly so the ports are really free when we return
  for i in $(seq 1 20); do
    local any=0
    for p in "${pids[@]}"; do alive "$p" && any=1; done
    [[ $any -eq 0 ]] && break
    sleep 0.1
  done
  rm -f "$PIDS"
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# http_status METHOD URL -> prints the HTTP status code, or 000 if no answer
http_status() {
  "$PY" - "$1" "$2" <<'PYEOF'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data = b"{}" if method == "POST" else None
req = urllib.request.Request(url, data=data, method=method)
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PYEOF
}

case "$cmd" in
  stop)
    stop_pids
    echo "services.sh: stopped (state dir $STATE_DIR)"
    ;;
  start)
    if [[ -f "$PIDS" ]]; then
      while read -r p; do
        if [[ "$p" =~ ^[0-9]+$ ]] && alive "$p"; then
          die "$PIDS lists running process $p; run '$0 stop $STATE_DIR' first"
        fi
      done < "$PIDS"
      rm -f "$PIDS"
    fi

    bash "$HERE/install.sh" >&2
    PY="$CONTINUITY_HOME/venv/bin/python"
    D="$CONTINUITY_HOME/dynamodb/current"
    [[ -x "$PY" ]] || die "venv python missing at $PY"
    [[ -f "$D/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar missing under $D"

    ddb_port="$(free_port)"
    moto_port="$(free_port)"
    while [[ "$moto_port" == "$ddb_port" ]]; do moto_port="$(free_port)"; done

    : > "$PIDS"
    # On any failure from here on, kill what we started.
    trap 'rc=$?; if [[ $rc -ne 0 ]]; then stop_pids; fi' EXIT

    # DynamoDB Local writes nothing to cwd with -inMemory, but run it in STATE_DIR anyway.
    ( cd "$STATE_DIR" && exec java -Djava.library.path="$D/DynamoDBLocal_lib" \
        -jar "$D/DynamoDBLocal.jar" -disableTelemetry -inMemory -port "$ddb_port" \
        </dev/null >"$STATE_DIR/dynamodb.log" 2>&1 ) &
    echo $! >> "$PIDS"
    ddb_pid=$!

    ( cd "$STATE_DIR" && exec "$CONTINUITY_HOME/venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" \
        </dev/null >"$STATE_DIR/moto.log" 2>&1 ) &
    echo $! >> "$PIDS"
    moto_pid=$!

    deadline=$(( $(date +%s) + TIMEOUT ))
    ddb_ok=0; moto_ok=0
    while :; do
      if [[ $ddb_ok -eq 0 ]]; then
        alive "$ddb_pid" || { echo "--- tail $STATE_DIR/dynamodb.log" >&2; tail -n 30 "$STATE_DIR/dynamodb.log" >&2 || true; die "DynamoDB Local exited during startup"; }
        [[ "$(http_status POST "http://127.0.0.1:$ddb_port/")" != "000" ]] && ddb_ok=1
      fi
      if [[ $moto_ok -eq 0 ]]; then
        alive "$moto_pid" || { echo "--- tail $STATE_DIR/moto.log" >&2; tail -n 30 "$STATE_DIR/moto.log" >&2 || true; die "moto server exited during startup"; }
        [[ "$(http_status GET "http://127.0.0.1:$moto_port/moto-api/data.json")" == "200" ]] && moto_ok=1
      fi
      [[ $ddb_ok -eq 1 && $moto_ok -eq 1 ]] && break
      if (( $(date +%s) >= deadline )); then
        [[ $ddb_ok -eq 0 ]] && { echo "--- tail $STATE_DIR/dynamodb.log" >&2; tail -n 30 "$STATE_DIR/dynamodb.log" >&2 || true; }
        [[ $moto_ok -eq 0 ]] && { echo "--- tail $STATE_DIR/moto.log" >&2; tail -n 30 "$STATE_DIR/moto.log" >&2 || true; }
        die "services not ready after ${TIMEOUT}s (dynamodb ready=$ddb_ok, moto ready=$moto_ok)"
      fi
      sleep 0.2
    done

    cat > "$STATE_DIR/env" <<ENVEOF
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export MOTO_ENDPOINT=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export CONTINUITY_PYTHON=$PY
export CONTINUITY_MAILSERVER=$HERE/mailserver.py
export CONTINUITY_DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
export CONTINUITY_OAUTHSERVER=$HERE/oauthserver.py
export CONTINUITY_GRAPHSERVER=$HERE/graphserver.py
export CONTINUITY_FAULTPROXY=$HERE/faultproxy.py
ENVEOF
    trap - EXIT
    echo "services.sh: dynamodb http://127.0.0.1:$ddb_port (pid $ddb_pid), moto http://127.0.0.1:$moto_port (pid $moto_pid); env in $STATE_DIR/env"
    ;;
  *) usage ;;
esac

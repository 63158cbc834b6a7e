#!/usr/bin/env bash
# infra/local/make-client-cert.sh OUT_DIR CN
# Creates a test CA and an SMTP client certificate it issued, as an organisation's connector
# that identifies the service by certificate would check it (tests of the client certificate):
#   OUT_DIR/ca.pem      (the CA's certificate: what the mail server stand-in trusts)
#   OUT_DIR/client.pem  (certificate for CN, extendedKeyUsage clientAuth, then its PKCS#8 key:
#                        the PEM text the service reads from Secrets Manager)
# Valid 2 days. Needs the openssl CLI (1.1.1+).
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 OUT_DIR CN" >&2; exit 2; }
out="$1"
cn="$2"
command -v openssl >/dev/null 2>&1 || { echo "make-client-cert.sh: ERROR: openssl not found" >&2; exit 1; }
mkdir -p "$out"
tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
( umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
    -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" -subj "/CN=Continuity test client CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$tmp/key.pem" -out "$tmp/client.csr" \
    -subj "/CN=$cn"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:%s\n' "$cn" >"$tmp/ext"
  openssl x509 -req -in "$tmp/client.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" \
    -CAcreateserial -days 2 -sha256 -extfile "$tmp/ext" -out "$tmp/cert.pem"
  openssl pkcs8 -topk8 -nocrypt -in "$tmp/key.pem" -out "$tmp/key8.pem"
) >/dev/null 2>&1 || { echo "make-client-cert.sh: ERROR: openssl failed" >&2; exit 1; }
cat "$tmp/cert.pem" "$tmp/key8.pem" >"$out/client.pem"
chmod 600 "$out/client.pem"
mv "$tmp/ca.pem" "$out/ca.pem"
echo "client cert: created $out/client.pem (CN=$cn) and $out/ca.pem"

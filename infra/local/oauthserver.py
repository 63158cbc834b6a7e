#!/usr/bin/env python3
"""Stand-in for the OAuth 2.0 token endpoints the probe uses (D9), for local tests.

Run with the venv python installed by infra/local/install.sh (needs PyJWT and cryptography):

  oauthserver.py --port N [--host 127.0.0.1] --registry FILE

Prints ``READY <port>`` once listening; logs to stderr; SIGTERM/SIGINT stops it.

Endpoints (as the real ones answer, RFC 6749 / RFC 7523):

  POST /<tenant>/oauth2/v2.0/token   the Microsoft identity platform's client-credentials grant:
        client_id + client_secret, or client_id + client_assertion (a JWT signed RS256 with the
        app's certificate key, header x5t = base64url SHA-1 thumbprint, claims aud = this URL,
        iss = sub = client_id, exp, nbf, jti); scope <resource>/.default.
        Errors carry AADSTS codes in error_description, error_codes, trace and correlation ids.
  POST /token                        Google's JWT-bearer grant (grant_type
        urn:ietf:params:oauth:grant-type:jwt-bearer, assertion = a JWT signed RS256 with the
        service account's key, claims iss = client_email, sub = the user acted for, scope,
        aud = this URL, iat, exp at most an hour later).
  GET  /keys                         the JWKS of the access tokens' signing key (also the key set of
        the ID tokens below: the identity provider's JWKS URL in sign-in tests).
  POST /control/rotate-key           a new signing key: every token issued before is refused.
  POST /control/keys-mode            body `serve`, `fail` or `hang`: how /keys answers from now on
        (`fail`: 503, as a provider in an outage; `hang`: the request is held, answered only once
        the mode changes, or failed after 120 s).
  POST /control/id-token             body: JSON claims; answers {"token": ...}, the claims signed
        RS256 with the current key (an identity provider's ID token, as Cognito signs them).
  GET  /control/stats                tokens issued per client, every refusal's error, and the key
        set's requests (`keys_requests`: how many arrived; `keys_waiting`: held right now).

Access tokens are JWTs signed RS256 by this server: Microsoft's carry aud = the resource,
appid, tid, roles (the app's consented application permissions for that resource); Google's
carry aud = the scope, sub/email = the user, scope, azp.

The registry (JSON, read again at every request, so that a test changes it between windows):

  {"lifetime": 3599,
   "microsoft": {"tenants": ["contoso.onmicrosoft.com", "<tenant guid>"],
                 "apps": {"<client id>": {"secret": "...", "certificate_pem": "...",
                                          "consented": true,
                                          "roles": {"https://outlook.office365.com": ["SMTP.SendAsApp"],
                                                    "https://graph.microsoft.com": ["Mail.Send"]}}}},
   "google": {"users": ["probe@acme.test"],
              "service_accounts": {"<client email>": {"public_key_pem": "...", "client_id": "1234",
                                                      "delegated_scopes": ["https://mail.google.com/"]}}}}
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import logging
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Tuple

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger("oauthserver")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW = 300  # seconds of clock skew accepted in assertions


class Keys:
    """The access tokens' signing key, rotatable."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rotate()

    def rotate(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self.lock:
            self.key = key
            self.kid = uuid.uuid4().hex

    def jwks(self) -> Dict[str, Any]:
        with self.lock:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def sign(self, claims: Dict[str, Any]) -> str:
        with self.lock:
            return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


class KeysMode:
    """How /keys answers: served, failed (503) or held until the mode changes."""

    HANG_LIMIT = 120  # seconds a held request waits at most: the server never keeps a thread

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.mode = "serve"
        self.requests = 0
        self.waiting = 0

    def set(self, mode: str) -> None:
        with self.cond:
            self.mode = mode
            self.cond.notify_all()

    def answer(self) -> str:
        """`serve` or `fail`, after holding the request while the mode is `hang`."""
        with self.cond:
            self.requests += 1
            self.waiting += 1
            try:
                self.cond.wait_for(lambda: self.mode != "hang", timeout=self.HANG_LIMIT)
                return "serve" if self.mode == "serve" else "fail"
            finally:
                self.waiting -= 1

    def dump(self) -> Dict[str, Any]:
        with self.cond:
            return {"keys_requests": self.requests, "keys_waiting": self.waiting}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.issued: Dict[str, int] = {}
        self.refused: list = []

    def issue(self, client: str) -> None:
        with self.lock:
            self.issued[client] = self.issued.get(client, 0) + 1

    def refuse(self, error: str) -> None:
        with self.lock:
            self.refused.append(error)

    def dump(self) -> Dict[str, Any]:
        with self.lock:
            return {"issued": dict(self.issued), "refused": list(self.refused)}


class Refusal(Exception):
    def __init__(self, status: int, error: str, description: str, code: Optional[int] = None):
        super().__init__(description)
        self.status, self.error, self.description, self.code = status, error, description, code


def ms_refusal(status: int, error: str, code: int, text: str) -> Refusal:
    return Refusal(status, error, f"AADSTS{code}: {text}", code)


def thumbprint_x5t(cert_pem: str) -> Tuple[str, Any]:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    der = cert.public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
    return x5t, cert.public_key()


class Server:
    def __init__(self, registry_path: str) -> None:
        self.registry_path = registry_path
        self.keys = Keys()
        self.stats = Stats()
        self.keys_mode = KeysMode()

    def registry(self) -> Dict[str, Any]:
        with open(self.registry_path, "r", encoding="utf-8") as f:
            return json.load(f)

    # ------------------------------------------------------------------ Microsoft
    def microsoft(self, url: str, tenant: str, form: Dict[str, str]) -> Dict[str, Any]:
        reg = self.registry()
        ms = reg.get("microsoft", {})
        if tenant not in ms.get("tenants", []):
            raise ms_refusal(400, "invalid_request", 90002,
                             f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            raise ms_refusal(400, "unsupported_grant_type", 70003,
                             "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        app = ms.get("apps", {}).get(client_id)
        if app is None:
            raise ms_refusal(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.")
        if "client_secret" in form:
            if form["client_secret"] != app.get("secret"):
                raise ms_refusal(401, "invalid_client", 7000215,
                                 f"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'.")
        elif "client_assertion" in form:
            self.check_assertion(url, client_id, app, form)
        else:
            raise ms_refusal(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise ms_refusal(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
        resource = scope[: -len("/.default")]
        roles = app.get("roles", {})
        if resource not in roles:
            raise ms_refusal(400, "invalid_resource", 500011,
                             f"The resource principal named {resource} was not found in the tenant named {tenant}.")
        if not app.get("consented", True):
            raise ms_refusal(400, "invalid_grant", 65001,
                             f"The user or administrator has not consented to use the application with ID '{client_id}'. Send an interactive authorization request for this user and resource.")
        now = int(time.time())
        lifetime = int(reg.get("lifetime", 3599))
        token = self.keys.sign({
            "aud": resource, "iss": f"https://sts.windows.net/{tenant}/", "tid": tenant,
            "appid": client_id, "roles": roles[resource], "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
            "iat": now, "nbf": now, "exp": now + lifetime,
        })
        self.stats.issue(client_id)
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": token}

    def check_assertion(self, url: str, client_id: str, app: Dict[str, Any], form: Dict[str, str]) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise ms_refusal(400, "invalid_request", 50027,
                             "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.")
        cert_pem = app.get("certificate_pem")
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise ms_refusal(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        if not cert_pem:
            raise ms_refusal(401, "invalid_client", 700027,
                             "Client assertion failed signature validation. No certificate is registered for the app.")
        x5t, public_key = thumbprint_x5t(cert_pem)
        if header.get("x5t") != x5t:
            raise ms_refusal(401, "invalid_client", 700027,
                             f"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{header.get('x5t')}']")
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256"], audience=url,
                                leeway=SKEW, options={"require": ["exp", "iss", "sub", "aud", "jti"]})
        except jwt.ExpiredSignatureError:
            raise ms_refusal(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        except jwt.InvalidAudienceError:
            raise ms_refusal(401, "invalid_client", 700023,
                             "Client assertion audience claim does not match Realm issuer.")
        except jwt.PyJWTError as e:
            raise ms_refusal(401, "invalid_client", 700027, f"Client assertion contains an invalid signature. [{e}]")
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise ms_refusal(401, "invalid_client", 700021,
                             "Client assertion application identifier doesn't match 'client_id' parameter.")

    # ------------------------------------------------------------------ Google
    def google(self, url: str, form: Dict[str, str]) -> Dict[str, Any]:
        reg = self.registry()
        g = reg.get("google", {})
        if form.get("grant_type") != JWT_BEARER:
            raise Refusal(400, "unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        assertion = form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Refusal(400, "invalid_grant", "Invalid JWT: malformed assertion.")
        sa = g.get("service_accounts", {}).get(unverified.get("iss", ""))
        if sa is None:
            raise Refusal(400, "invalid_grant", "Invalid grant: account not found")
        public_key = serialization.load_pem_public_key(sa["public_key_pem"].encode())
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256"], audience=url,
                                leeway=SKEW, options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.InvalidSignatureError:
            raise Refusal(400, "invalid_grant", "Invalid JWT Signature.")
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            raise Refusal(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        except jwt.InvalidAudienceError:
            raise Refusal(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        except jwt.PyJWTError as e:
            raise Refusal(400, "invalid_grant", f"Invalid JWT: {e}")
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            raise Refusal(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        user = claims.get("sub")
        if user not in g.get("users", []):
            raise Refusal(400, "invalid_grant", "Invalid email or User ID")
        scopes = str(claims.get("scope", "")).split()
        if not scopes or any(s not in sa.get("delegated_scopes", []) for s in scopes):
            raise Refusal(401, "unauthorized_client",
                          "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
        now = int(time.time())
        lifetime = int(reg.get("lifetime", 3599))
        token = self.keys.sign({
            "aud": scopes[0], "iss": "https://accounts.google.com", "sub": user, "email": user,
            "scope": " ".join(scopes), "azp": sa.get("client_id", ""), "iat": now, "exp": now + lifetime,
        })
        self.stats.issue(claims["iss"])
        return {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}


def error_body(r: Refusal) -> Dict[str, Any]:
    if r.code is None:  # Google's shape
        return {"error": r.error, "error_description": r.description}
    now = datetime.datetime.now(datetime.timezone.utc)
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "error": r.error,
        "error_description": f"{r.description}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {now:%Y-%m-%d %H:%M:%SZ}",
        "error_codes": [r.code],
        "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": f"https://login.microsoftonline.com/error?code={r.code}",
    }


def handler_for(server: Server, base: Dict[str, str]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def send_json(self, status: int, body: Dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path in ("/keys", "/discovery/v2.0/keys"):
                if server.keys_mode.answer() == "serve":
                    self.send_json(200, server.keys.jwks())
                else:
                    self.send_json(503, {"error": "temporarily_unavailable"})
            elif self.path == "/control/stats":
                self.send_json(200, {**server.stats.dump(), **server.keys_mode.dump()})
            else:
                self.send_json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if self.path == "/control/rotate-key":
                server.keys.rotate()
                self.send_json(200, {"rotated": True})
                return
            if self.path == "/control/keys-mode":
                mode = raw.strip()
                if mode not in ("serve", "fail", "hang"):
                    self.send_json(400, {"error": f"unknown mode {mode!r}"})
                    return
                server.keys_mode.set(mode)
                self.send_json(200, {"mode": mode})
                return
            if self.path == "/control/id-token":
                try:
                    claims = json.loads(raw)
                except json.JSONDecodeError as e:
                    self.send_json(400, {"error": f"claims are not JSON: {e}"})
                    return
                self.send_json(200, {"token": server.keys.sign(claims)})
                return
            form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
            url = f"{base['url']}{self.path}"
            parts = self.path.strip("/").split("/")
            try:
                if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                    body = server.microsoft(url, parts[0], form)
                elif self.path == "/token":
                    body = server.google(url, form)
                else:
                    self.send_json(404, {"error": "not_found"})
                    return
            except Refusal as r:
                server.stats.refuse(r.error)
                log.info("refused %s: %s %s", self.path, r.error, r.description)
                self.send_json(r.status, error_body(r))
                return
            self.send_json(200, body)

    return Handler


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description="Local OAuth 2.0 token endpoints for tests.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--registry", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s oauthserver[%(process)d] %(levelname)s %(message)s")
    server = Server(args.registry)
    base: Dict[str, str] = {}
    httpd = ThreadingHTTPServer((args.host, args.port), handler_for(server, base))
    port = httpd.server_address[1]
    base["url"] = f"http://{args.host}:{port}"
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

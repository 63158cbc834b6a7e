#!/usr/bin/env python3
"""Stand-in for the parts of Microsoft Graph the service calls (D9, D10), for local tests.

Run with the venv python installed by infra/local/install.sh (needs PyJWT):

  graphserver.py --port N [--host 127.0.0.1] --jwks URL --fixtures DIR
                 [--mode-file PATH] [--health-file PATH] [--allowed-mailbox ADDR ...]
                 [--relay DOMAIN=HOST:PORT ...]

Prints ``READY <port>`` once listening. Tokens are the local token endpoint's
(infra/local/oauthserver.py), verified against its JWKS (``--jwks``): aud
https://graph.microsoft.com, with the application permission each call needs in ``roles``.
Error bodies are the fixtures recorded from Microsoft's documentation (``--fixtures``, the
project's tests/fixtures/graph).

  POST /v1.0/users/{mailbox}/sendMail   Content-Type text/plain, the message as base64 MIME:
        202 Accepted (no body); the message is relayed over SMTP to the recipients of its
        To/Cc/Bcc headers whose domain has a --relay. Needs Mail.Send, and the mailbox among
        --allowed-mailbox (the application access policy) when any is given: otherwise 403
        (sendmail-403.json). A bad token: 401 (sendmail-401.json).
  GET  /v1.0/admin/serviceAnnouncement/healthOverviews/{service}?$expand=issues
        200 with the JSON in --health-file (read at every request). Needs ServiceHealth.Read.All.
  GET  /control/stats                   {"sent": n, "throttled": n, "forbidden": n}

Mode file (read at every request): ``accept`` (default), ``throttle N`` (the next N sendMail
requests answer 429 with Retry-After: 1 and sendmail-429.json), ``forbidden`` (every sendMail
answers 403).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email
import email.policy
import json
import logging
import os
import signal
import smtplib
import sys
import threading
import urllib.parse
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import localtokens  # noqa: E402

log = logging.getLogger("graphserver")
GRAPH = "https://graph.microsoft.com"


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.stats = {"sent": 0, "throttled": 0, "forbidden": 0}
        self.throttle_left: Optional[int] = None
        self.last_mode = ""
        self.relays: Dict[str, Tuple[str, int]] = {}
        for spec in args.relay:
            domain, target = spec.split("=", 1)
            host, port = target.rsplit(":", 1)
            self.relays[domain.lower()] = (host, int(port))

    def fixture(self, name: str) -> bytes:
        with open(os.path.join(self.args.fixtures, name), "rb") as f:
            return f.read()

    def mode(self) -> str:
        try:
            with open(self.args.mode_file or "", "r", encoding="utf-8") as f:
                word = f.read().strip()
        except OSError:
            word = ""
        return word or "accept"

    def count(self, what: str) -> None:
        with self.lock:
            self.stats[what] += 1

    def throttled(self) -> bool:
        """Whether this sendMail is throttled: ``throttle N`` throttles the next N."""
        mode = self.mode()
        with self.lock:
            if mode != self.last_mode:
                self.last_mode = mode
                parts = mode.split()
                self.throttle_left = int(parts[1]) if parts[0] == "throttle" and len(parts) > 1 else None
            if self.throttle_left:
                self.throttle_left -= 1
                return True
        return False


def relay(state: State, mime: bytes) -> None:
    msg = email.message_from_bytes(mime, policy=email.policy.compat32)
    sender = getaddresses(msg.get_all("From", []))
    mail_from = sender[0][1] if sender else ""
    rcpts = [a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []) + msg.get_all("Bcc", []))]
    groups: Dict[Tuple[str, int], List[str]] = {}
    for r in rcpts:
        target = state.relays.get(r.rsplit("@", 1)[-1].lower())
        if target:
            groups.setdefault(target, []).append(r)
    for (host, port), group in groups.items():
        try:
            with smtplib.SMTP(host, port, timeout=30) as c:
                c.sendmail(mail_from, group, mime)
            log.info("relayed to %s:%d for %s", host, port, group)
        except Exception as e:  # noqa: BLE001
            log.warning("relay to %s:%d failed: %s", host, port, e)


def handler_for(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def answer(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def claims(self, role: str) -> Optional[Dict[str, Any]]:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                self.answer(401, state.fixture("sendmail-401.json"))
                return None
            try:
                claims = localtokens.verify(auth[7:], state.args.jwks, GRAPH)
            except localtokens.TokenRefused as e:
                log.info("token refused: %s", e)
                self.answer(401, state.fixture("sendmail-401.json"))
                return None
            if role not in claims.get("roles", []):
                state.count("forbidden")
                self.answer(403, state.fixture("sendmail-403.json"))
                return None
            return claims

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/control/stats":
                with state.lock:
                    self.answer(200, json.dumps(state.stats).encode())
                return
            prefix = "/v1.0/admin/serviceAnnouncement/healthOverviews/"
            if path.startswith(prefix):
                if self.claims("ServiceHealth.Read.All") is None:
                    return
                with open(state.args.health_file, "rb") as f:
                    self.answer(200, f.read())
                return
            self.answer(404, b'{"error":{"code":"ResourceNotFound","message":"Resource not found."}}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            parts = path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "v1.0" or parts[1] != "users" or parts[3] != "sendMail":
                self.answer(404, b'{"error":{"code":"ResourceNotFound","message":"Resource not found."}}')
                return
            mailbox = parts[2]
            if self.claims("Mail.Send") is None:
                return
            if state.throttled():
                state.count("throttled")
                self.answer(429, state.fixture("sendmail-429.json"), {"Retry-After": "1"})
                return
            allowed = [a.lower() for a in state.args.allowed_mailbox]
            if state.mode() == "forbidden" or (allowed and mailbox.lower() not in allowed):
                state.count("forbidden")
                self.answer(403, state.fixture("sendmail-403.json"))
                return
            if not self.headers.get("Content-Type", "").startswith("text/plain"):
                self.answer(400, b'{"error":{"code":"ErrorInvalidRequest","message":"Cannot process input of abstract type"}}')
                return
            try:
                mime = base64.b64decode(body, validate=True)
            except binascii.Error:
                self.answer(400, b'{"error":{"code":"ErrorMimeContentInvalidBase64String","message":"Invalid base64 string for MIME content."}}')
                return
            state.count("sent")
            threading.Thread(target=relay, args=(state, mime), daemon=True).start()
            self.answer(202)

    return Handler


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description="Local Microsoft Graph stand-in for tests.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--jwks", required=True)
    p.add_argument("--fixtures", required=True)
    p.add_argument("--mode-file")
    p.add_argument("--health-file")
    p.add_argument("--allowed-mailbox", action="append", default=[])
    p.add_argument("--relay", action="append", default=[])
    args = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s graphserver[%(process)d] %(levelname)s %(message)s")
    state = State(args)
    httpd = ThreadingHTTPServer((args.host, args.port), handler_for(state))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    sys.stdout.write(f"READY {httpd.server_address[1]}\n")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

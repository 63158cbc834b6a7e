#!/usr/bin/env python3
"""Stand-in for an organisation's mail server (SMTP), for local tests.

Run with the venv python installed by infra/local/install.sh
($CONTINUITY_HOME/venv/bin/python, needs aiosmtpd==1.4.6):

  mailserver.py --port N [--host 127.0.0.1] --maildir DIR [--mode-file PATH]
                [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
                [--auth-user U --auth-password P]
                [--relay DOMAIN=HOST:PORT ...]
                [--hostname NAME] [--max-size BYTES] [--max-recipients N] [--verbose]
                [--xoauth2-jwks URL --xoauth2-audience AUD [--xoauth2-style microsoft|google]
                 [--xoauth2-mailbox ADDR ...]]
                [--password-refusal "550 5.7.30 Basic authentication is not supported ..."]

Startup: once listening, prints exactly one line ``READY <port>`` to stdout and
flushes (``--port 0`` picks a free port; the line gives the real one).
Everything else is logged to stderr.  SIGTERM / SIGINT: closes the listener and
open sessions and exits 0.

TLS: with --tls-cert/--tls-key, STARTTLS is offered and *required*: every
command other than EHLO, NOOP, STARTTLS, QUIT is answered
``530 Must issue a STARTTLS command first`` until TLS is up.  AUTH is then only
offered/accepted over TLS.  With --tls-client-ca, the TLS handshake also requires
a client certificate issued by that CA (a connector restricted to a certificate);
without one the handshake fails and nothing is accepted.

AUTH: with --auth-user/--auth-password, AUTH PLAIN and LOGIN are offered and
MAIL/RCPT/DATA without a successful AUTH get ``530 5.7.0 Authentication
required``; wrong credentials get ``535 5.7.8 Authentication credentials
invalid``.  Without --auth-user no AUTH is advertised.  (Without TLS but with
AUTH, AUTH works over plain text.)

XOAUTH2 (needs PyJWT): with --xoauth2-jwks, AUTH XOAUTH2 is offered too (over TLS
when TLS is on) and verifies the token of ``user=<mailbox>^Aauth=Bearer <token>^A^A`` against
the local token endpoint's JWKS (infra/local/oauthserver.py): signature, expiry, and aud equal
to --xoauth2-audience. Style microsoft (Exchange Online): the token's roles must hold
SMTP.SendAsApp and the mailbox must be one the app's service principal has permission on
(--xoauth2-mailbox); a refusal answers ``535 5.7.3 Authentication unsuccessful``. Style google
(Gmail): the token's email must be the user and its scope https://mail.google.com/; a refusal
first sends the ``334`` challenge with the JSON error, as Gmail does, then ``535-5.7.8``.

Password refusal: with --password-refusal REPLY, AUTH PLAIN/LOGIN is answered REPLY whatever
the credentials (Exchange Online with Basic authentication turned off answers
``550 5.7.30 Basic authentication is not supported for Client Submission.``).

Storage: each accepted message is written to the Maildir DIR (DIR/{tmp,new,cur}
are created; files land in DIR/new/) as the raw bytes received after DATA
(dot-unstuffed, CRLF line endings kept), preceded by these prepended header
lines (CRLF-terminated):

  Return-Path: <envelope sender>
  X-Envelope-From: envelope sender
  X-Envelope-To: rcpt1, rcpt2, ...
  X-Continuity-Session: tls=yes|no; auth=<login>|-; helo=<client helo name>;
                        cert=<client certificate's CN>|-

Mode file (optional; read fresh on every SMTP command; missing/empty = accept):
  accept           normal
  tempfail         MAIL FROM -> 451 4.3.0 Temporarily refusing mail
  permfail         every RCPT TO -> 550 5.1.1 Mailbox unavailable
  hang             the next recognised command (EHLO, HELO, MAIL, RCPT, DATA,
                   AUTH, STARTTLS, RSET, NOOP, QUIT, ...) is never answered
                   (the server's own 300 s idle timeout closes it eventually)
  drop-after-data  message received in full, then the TCP connection is closed
                   without a reply; not stored
  hang-after-data  message received in full, never answered; not stored
  permfail-some    RCPT TO whose local part starts with "gone" -> 550 5.1.1; others accepted
                   (a server refusing some recipients for good)
  tempfail-after-N MAIL FROM -> 451 4.7.0 once the Maildir holds N messages or more (a server
                   that stops taking mail part of the way, as a rate limit does)
  bad-tls          STARTTLS is answered 220, then a TLS alert (handshake failure) is sent
                   instead of a ServerHello and the connection closed (a broken TLS setup)
An unknown word is logged and treated as accept.

Recipients: with --max-recipients N, a RCPT TO beyond the N-th of a transaction is answered
``452 4.5.3 Too many recipients`` (RFC 5321 4.5.3.1.8 obliges a server to take 100; Exchange's
receive connector takes 200 by default).

Relay: after a message is accepted and stored, recipients whose domain equals a
--relay DOMAIN (case-insensitive) are forwarded in a background thread over
plain SMTP (no TLS, no AUTH) to HOST:PORT with the original envelope sender and
only those recipients; the forwarded bytes are the original message content
(without the prepended headers above).  Failures are logged and retried
(3 attempts in total, 1 s apart), then dropped with a log line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import base64
import binascii
import json
import itertools
import logging
import os
import signal
import smtplib
import socket
import ssl
import sys
import threading
import time
import warnings
from typing import Dict, List, Optional, Tuple

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

log = logging.getLogger("mailserver")
localtokens = None  # imported when XOAUTH2 is on

MODES = {"accept", "tempfail", "permfail", "hang", "drop-after-data", "hang-after-data",
         "permfail-some", "bad-tls"}
# A TLS record: alert, TLS 1.0 framing, length 2, level fatal (2), handshake_failure (40).
TLS_HANDSHAKE_FAILURE = b"\x15\x03\x01\x00\x02\x02\x28"
RELAY_ATTEMPTS = 3
RELAY_DELAY_S = 1.0
RELAY_TIMEOUT_S = 30.0
AUTH_LINE_LIMIT = 12288


# ----------------------------------------------------------------------------- mode file
class ModeFile:
    def __init__(self, path: Optional[str]):
        self.path = path
        self._last_logged: Optional[str] = None

    def read(self) -> str:
        if not self.path:
            return "accept"
        try:
            with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                word = f.read().strip().lower()
        except FileNotFoundError:
            word = ""
        except OSError as e:
            log.warning("cannot read mode file %s: %s; using accept", self.path, e)
            word = ""
        if not word:
            word = "accept"
        if word.startswith("tempfail-after-") and word[len("tempfail-after-"):].isdigit():
            if word != self._last_logged:
                log.info("mode is now %s", word)
                self._last_logged = word
            return word
        if word not in MODES:
            if word != self._last_logged:
                log.warning("unknown mode %r in %s; treating as accept", word, self.path)
                self._last_logged = word
            return "accept"
        if word != self._last_logged:
            log.info("mode is now %s", word)
            self._last_logged = word
        return word


# ----------------------------------------------------------------------------- maildir
class Maildir:
    _counter = itertools.count()

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")

    def count(self) -> int:
        return len(os.listdir(os.path.join(self.root, "new")))

    def store(self, data: bytes) -> str:
        name = "%d.M%dP%dQ%d.%s" % (
            time.time(), time.time_ns() % 1_000_000, os.getpid(), next(self._counter), self._host)
        tmp = os.path.join(self.root, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        final = os.path.join(self.root, "new", name)
        os.rename(tmp, final)
        return final


# ----------------------------------------------------------------------------- relay
def parse_relay(spec: str) -> Tuple[str, str, int]:
    try:
        domain, target = spec.split("=", 1)
        host, port = target.rsplit(":", 1)
        domain = domain.strip().lower()
        if not domain or not host:
            raise ValueError
        return domain, host.strip("[]"), int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--relay expects DOMAIN=HOST:PORT, got {spec!r}")


def relay_worker(host: str, port: int, mail_from: str, rcpts: List[str], content: bytes,
                 local_hostname: str, msg_id: str) -> None:
    for attempt in range(1, RELAY_ATTEMPTS + 1):
        try:
            with smtplib.SMTP(host, port, local_hostname=local_hostname,
                              timeout=RELAY_TIMEOUT_S) as client:
                refused = client.sendmail(mail_from, rcpts, content)
            if refused:
                log.warning("relay %s to %s:%d: some recipients refused: %r",
                            msg_id, host, port, refused)
            log.info("relay %s to %s:%d for %s: delivered (attempt %d)",
                     msg_id, host, port, ", ".join(rcpts), attempt)
            return
        except Exception as e:  # noqa: BLE001 - any failure is retried
            log.warning("relay %s to %s:%d for %s: attempt %d/%d failed: %s: %s",
                        msg_id, host, port, ", ".join(rcpts), attempt, RELAY_ATTEMPTS,
                        type(e).__name__, e)
            if attempt < RELAY_ATTEMPTS:
                time.sleep(RELAY_DELAY_S)
    log.error("relay %s to %s:%d for %s: giving up after %d attempts, message dropped",
              msg_id, host, port, ", ".join(rcpts), RELAY_ATTEMPTS)


# ----------------------------------------------------------------------------- handler
class Handler:
    def __init__(self, maildir: Maildir, mode: ModeFile, relays: Dict[str, Tuple[str, int]],
                 auth_enabled: bool, hostname: str, xoauth2: Optional[dict] = None):
        self.xoauth2 = xoauth2
        self.maildir = maildir
        self.mode = mode
        self.relays = relays
        self.auth_enabled = auth_enabled
        self.hostname = hostname
        self.max_recipients = 0

    async def auth_XOAUTH2(self, server, args):
        """AUTH XOAUTH2 with the initial response (RFC 7628-style, Google's and Microsoft's)."""
        x = self.xoauth2
        if x is None:
            await server.push("504 5.5.4 Unrecognized authentication type")
            return AuthResult(success=False, handled=True)
        blob = args[1] if len(args) > 1 else None
        if blob is None:
            raw = await server.challenge_auth("")
            if raw is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                raw = base64.b64decode(blob, validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = dict(f.split("=", 1) for f in raw.decode("utf-8", "replace").split("\x01") if "=" in f)
        user = fields.get("user", "")
        token = fields.get("auth", "")[len("Bearer "):] if fields.get("auth", "").startswith("Bearer ") else ""
        reason = None
        try:
            claims = localtokens.verify(token, x["jwks"], x["audience"])
            if x["style"] == "google":
                if claims.get("email", "").lower() != user.lower() or "https://mail.google.com/" not in str(claims.get("scope", "")).split():
                    reason = "token not for this user or scope"
            else:
                if "SMTP.SendAsApp" not in claims.get("roles", []):
                    reason = "token lacks SMTP.SendAsApp"
                elif user.lower() not in x["mailboxes"]:
                    reason = f"service principal has no permission on {user}"
        except localtokens.TokenRefused as e:
            reason = str(e)
        if reason is None:
            log.info("%r AUTH XOAUTH2 as %r: ok", server.session.peer, user)
            return AuthResult(success=True, handled=False, auth_data=LoginPassword(user.encode(), b""))
        log.info("%r AUTH XOAUTH2 as %r: rejected (%s)", server.session.peer, user, reason)
        if x["style"] == "google":
            challenge = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
            await server.challenge_auth(challenge)
            await server.push("535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
                              "535 5.7.8  https://support.google.com/mail/?p=BadCredentials")
        else:
            await server.push("535 5.7.3 Authentication unsuccessful")
        return AuthResult(success=False, handled=True)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not self.auth_enabled:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        mode = self.mode.read()
        if mode == "tempfail":
            log.info("%r MAIL FROM:<%s> -> 451 (tempfail mode)", session.peer, address)
            return "451 4.3.0 Temporarily refusing mail"
        if mode.startswith("tempfail-after-"):
            limit = int(mode[len("tempfail-after-"):])
            if self.maildir.count() >= limit:
                log.info("%r MAIL FROM:<%s> -> 451 (%s)", session.peer, address, mode)
                return "451 4.7.0 Message rate limit exceeded, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.mode.read()
        local = address.rsplit("@", 1)[0].lower()
        if self.max_recipients and len(envelope.rcpt_tos) >= self.max_recipients:
            log.info("%r RCPT TO:<%s> -> 452 (over %d recipients)", session.peer, address,
                     self.max_recipients)
            return "452 4.5.3 Too many recipients"
        if mode == "permfail" or (mode == "permfail-some" and local.startswith("gone")):
            log.info("%r RCPT TO:<%s> -> 550 (%s mode)", session.peer, address, mode)
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode.read()
        if mode == "drop-after-data":
            log.info("%r message received; closing connection without reply (drop-after-data)",
                     session.peer)
            server.transport.close()
            await asyncio.get_running_loop().create_future()  # cancelled on connection_lost
        if mode == "hang-after-data":
            log.info("%r message received; never replying (hang-after-data)", session.peer)
            await asyncio.get_running_loop().create_future()

        content: bytes = envelope.original_content or b""
        sender = envelope.mail_from or ""
        rcpts = list(envelope.rcpt_tos)
        auth = session.auth_data
        login = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else "-"
        if isinstance(auth, LoginPassword) and auth.password == b"" and self.xoauth2 is not None:
            login += " (xoauth2)"
        tls = "yes" if session.ssl is not None else "no"
        peer_cert = (session.ssl or {}).get("peercert") or {}
        cert = next((v for rdn in peer_cert.get("subject", ()) for k, v in rdn
                     if k == "commonName"), "-")
        prefix = (
            f"Return-Path: <{sender}>\r\n"
            f"X-Envelope-From: {sender}\r\n"
            f"X-Envelope-To: {', '.join(rcpts)}\r\n"
            f"X-Continuity-Session: tls={tls}; auth={login}; helo={session.host_name}; cert={cert}\r\n"
        ).encode("utf-8", "surrogateescape")
        path = self.maildir.store(prefix + content)
        msg_id = os.path.basename(path)
        log.info("%r stored %s from <%s> to %s (%d bytes)", session.peer, msg_id, sender,
                 rcpts, len(content))

        groups: Dict[Tuple[str, int], List[str]] = {}
        for r in rcpts:
            domain = r.rsplit("@", 1)[-1].lower() if "@" in r else ""
            target = self.relays.get(domain)
            if target:
                groups.setdefault(target, []).append(r)
        for (host, port), group in groups.items():
            threading.Thread(
                target=relay_worker,
                args=(host, port, sender, group, content, self.hostname, msg_id),
                name=f"relay-{msg_id}", daemon=True,
            ).start()
        return "250 2.0.0 OK: queued as " + msg_id.split(".")[1]


# ----------------------------------------------------------------------------- SMTP protocol
class ModalSMTP(SMTP):
    """SMTP whose every recognised command first consults the mode file (for 'hang')."""

    live: "set[ModalSMTP]" = set()
    # RFC 4954 4: an AUTH command line (and a response to its challenge) may be up to 12288
    # octets; an XOAUTH2 initial response carries a JWT of 1-2 KB. aiosmtpd reads every line
    # through one StreamReader whose limit is `line_length_limit` at construction (a longer
    # line is "500 Command line too long" before any per-command check), so the reader gets
    # the AUTH limit here and the instance gets the DATA limit back (RFC 5321's 1000 octets)
    # after construction.
    line_length_limit = AUTH_LINE_LIMIT

    def __init__(self, handler: Handler, **kw):
        super().__init__(handler, **kw)
        self.line_length_limit = SMTP.line_length_limit
        # The per-command limits are a class-wide dict in aiosmtpd (cleared by every new
        # session); this connection gets its own, with AUTH's. Others keep 512.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.command_size_limits["AUTH"] = AUTH_LINE_LIMIT
        self._mode = handler.mode
        for name, method in list(self._smtp_methods.items()):
            self._smtp_methods[name] = self._gated(name, method)

    def _gated(self, name, method):
        async def gated(arg):
            mode = self._mode.read()
            if mode == "hang":
                log.info("%r %s received; hanging forever (hang mode)",
                         self.session.peer if self.session else None, name)
                await self.loop.create_future()  # cancelled on connection_lost
            if mode == "bad-tls" and name.upper() == "STARTTLS":
                log.info("%r STARTTLS received; answering with a TLS alert (bad-tls mode)",
                         self.session.peer if self.session else None)
                await self.push("220 2.0.0 Ready to start TLS")
                self.transport.write(TLS_HANDSHAKE_FAILURE)
                self.transport.close()
                await self.loop.create_future()  # cancelled on connection_lost
            return await method(arg)
        return gated

    def connection_made(self, transport):
        ModalSMTP.live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error):
        ModalSMTP.live.discard(self)
        super().connection_lost(error)


# ----------------------------------------------------------------------------- main
def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Local SMTP stand-in (aiosmtpd) for tests.")
    p.add_argument("--port", type=int, required=True, help="TCP port (0 = pick a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--maildir", required=True)
    p.add_argument("--mode-file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-client-ca",
                   help="with --tls-cert: require a client certificate issued by this CA (PEM)")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--relay", action="append", default=[], type=parse_relay,
                   metavar="DOMAIN=HOST:PORT")
    p.add_argument("--hostname", default="localhost", help="name in greeting/EHLO")
    p.add_argument("--max-recipients", type=int, default=0,
                   help="RCPT TO beyond this many per transaction get 452 (0: no limit)")
    p.add_argument("--max-size", type=int, default=33554432,
                   help="largest message accepted in bytes (SIZE; default aiosmtpd's 32 MiB)")
    p.add_argument("--verbose", "-v", action="store_true", help="also log aiosmtpd's session log")
    p.add_argument("--xoauth2-jwks", help="JWKS URL of the local token endpoint: offer AUTH XOAUTH2")
    p.add_argument("--xoauth2-audience", default="https://outlook.office365.com")
    p.add_argument("--xoauth2-style", choices=["microsoft", "google"], default="microsoft")
    p.add_argument("--xoauth2-mailbox", action="append", default=[],
                   help="a mailbox the app's service principal may send as (microsoft style)")
    p.add_argument("--password-refusal", help="answer AUTH PLAIN/LOGIN with this reply")
    args = p.parse_args(argv)

    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key must be given together")
    if bool(args.auth_user) != (args.auth_password is not None):
        p.error("--auth-user and --auth-password must be given together")
    xoauth2 = None
    if args.xoauth2_jwks:
        global localtokens
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import localtokens  # noqa: E402 - needs PyJWT, only when XOAUTH2 is on
        xoauth2 = {"jwks": args.xoauth2_jwks, "audience": args.xoauth2_audience,
                   "style": args.xoauth2_style,
                   "mailboxes": [m.lower() for m in args.xoauth2_mailbox]}

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s mailserver[%(process)d] %(levelname)s %(message)s")
    mail_log = logging.getLogger("mail.log")
    mail_log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    # aiosmtpd itself sets the deprecated Session.login_data on every AUTH; mute that noise.
    mail_log.addFilter(lambda rec: "login_data is deprecated" not in rec.getMessage())
    # aiosmtpd warns when AUTH is required without TLS; that is deliberate here.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            tls_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as e:
            log.error("cannot load TLS cert/key (%s, %s): %s", args.tls_cert, args.tls_key, e)
            return 1
        if args.tls_client_ca:
            # As a connector restricted to a certificate: no session without one from this CA.
            tls_context.verify_mode = ssl.CERT_REQUIRED
            try:
                tls_context.load_verify_locations(args.tls_client_ca)
            except (OSError, ssl.SSLError) as e:
                log.error("cannot load client CA %s: %s", args.tls_client_ca, e)
                return 1

    auth_enabled = args.auth_user is not None or xoauth2 is not None
    want_user = (args.auth_user or "").encode()
    want_pass = (args.auth_password or "").encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        if args.password_refusal:
            log.info("%r AUTH %s: refused (%s)", session.peer, mechanism, args.password_refusal)
            return AuthResult(success=False, handled=False, message=args.password_refusal)
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == want_user and auth_data.password == want_pass)
        log.info("%r AUTH %s as %r: %s", session.peer, mechanism,
                 getattr(auth_data, "login", b"?").decode("utf-8", "replace"),
                 "ok" if ok else "rejected")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    maildir = Maildir(args.maildir)
    mode = ModeFile(args.mode_file)
    relays = {d: (h, prt) for d, h, prt in args.relay}
    handler = Handler(maildir, mode, relays, auth_enabled, args.hostname, xoauth2)
    handler.max_recipients = args.max_recipients

    smtp_kw = dict(
        hostname=args.hostname,
        ident="continuity-test-mailserver",
        tls_context=tls_context,
        require_starttls=tls_context is not None,
        auth_required=auth_enabled,
        auth_require_tls=tls_context is not None,
        authenticator=authenticator if auth_enabled else None,
        auth_exclude_mechanism=(["XOAUTH2"] if xoauth2 is None else [])
        + ([] if auth_enabled else ["PLAIN", "LOGIN"]),
        data_size_limit=args.max_size,
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await loop.create_server(
            lambda: ModalSMTP(handler, loop=loop, **smtp_kw),
            host=args.host, port=args.port, reuse_address=True)
        port = server.sockets[0].getsockname()[1]
        log.info("listening on %s:%d maildir=%s tls=%s auth=%s relays=%s mode-file=%s",
                 args.host, port, maildir.root, "yes" if tls_context else "no",
                 "yes" if auth_enabled else "no",
                 {d: f"{h}:{pt}" for d, (h, pt) in relays.items()}, args.mode_file)
        sys.stdout.write(f"READY {port}\n")
        sys.stdout.flush()
        await stop.wait()
        log.info("signal received; shutting down")
        server.close()
        for proto in list(ModalSMTP.live):
            if proto.transport is not None:
                proto.transport.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)

    try:
        asyncio.run(serve())
    except OSError as e:
        log.error("cannot start: %s", e)
        return 1
    pending = [t for t in threading.enumerate() if t.name.startswith("relay-")]
    if pending:
        log.warning("exiting with %d relay thread(s) still running; their messages are dropped",
                    len(pending))
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

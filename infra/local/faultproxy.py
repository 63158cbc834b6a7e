#!/usr/bin/env python3
"""An HTTP proxy that injects the faults AWS services give, for local tests.

DynamoDB Local never throttles and moto never fails; production does. This proxy sits
between the SDK and a local service and answers a chosen share of requests with the
service's real error responses, or drops the connection, so the tests see what the
adapters and the SDK's retries do with them.

  faultproxy.py --upstream http://127.0.0.1:PORT --control FILE --stats FILE [--port 0]

Startup: once listening on 127.0.0.1, prints exactly one line ``READY <port>`` and flushes.
SIGTERM / SIGINT: exits 0.

Control file (JSON, read fresh on every request; missing or empty = no faults):

  {"seed": 7,                       # optional: the same seed gives the same choices
   "operations": ["PutItem", ...],  # optional: only requests of these operations (the
                                    # X-Amz-Target suffix, or S3's method) are eligible
   "faults": {"throttle": 0.2,      # shares of eligible requests, tried in this order
              "throughput": 0.0,
              "internal": 0.0,
              "unavailable": 0.0,   # 503 (S3: SlowDown)
              "reject": 0.0,        # 400: a definite refusal (DynamoDB ValidationException,
                                    # SES v2 MessageRejected)
              "drop_before": 0.0,   # connection closed before forwarding: never applied
              "drop_after": 0.0,    # forwarded, applied, then the connection closed
                                    # without the answer (the write happened; the
                                    # client cannot know)
              "hang_before": 0.0,   # never forwarded, never answered (the caller's
              "hang_after": 0.0},   # process is killed meanwhile); or forwarded and
                                    # applied, then never answered
   "after": 0,                      # optional: the first N eligible requests pass untouched
   "limit": null}                   # optional: at most this many faults
                                    # (both counted from when this document was written)

Stats file (JSON, rewritten after every request): {"requests": N, "forwarded": N,
"injected": {"throttle": N, ...}, "by_operation": {"PutItem": N, ...}, "sequence": [the
operations in the order they came, the last 500], "held": [{"operation", "applied"}, ...]}.

The error bodies are DynamoDB's (JSON 1.0 protocol, ``__type`` with the service's
namespace) for requests carrying X-Amz-Target, SES v2's (REST-JSON, ``x-amzn-ErrorType``) for
paths under /v2/email/, and S3's XML otherwise. An SES v2 request's operation is its method
(``POST`` for SendEmail).
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DDB = "com.amazonaws.dynamodb.v20120810#"

# kind -> (status, DynamoDB __type, message, S3 code)
ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.", "SlowDown"),
    "throughput": (
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
        "SlowDown",
    ),
    "internal": (500, "InternalServerError", "Internal server error", "InternalError"),
    "unavailable": (503, "ServiceUnavailable", "Service Unavailable", "SlowDown"),
    "reject": (400, "ValidationException", "One or more parameter values were invalid", "InvalidRequest"),
}

# SES v2 (REST-JSON, paths under /v2/email/): kind -> (status, x-amzn-ErrorType, message)
SESV2 = {
    "throttle": (429, "TooManyRequestsException", "Too many requests have been made to the operation."),
    "throughput": (429, "TooManyRequestsException", "Maximum sending rate exceeded."),
    "internal": (500, "InternalFailure", "The request processing has failed because of an unknown error."),
    "unavailable": (503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
    "reject": (400, "MessageRejected", "Email address is not verified."),
}
ORDER = ["throttle", "throughput", "internal", "unavailable", "reject", "drop_before",
         "drop_after", "hang_before", "hang_after"]
HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


class State:
    def __init__(self, upstream, control, stats):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.control = control
        self.stats_path = stats
        self.lock = threading.Lock()
        self.rng = random.Random()
        self.seed = None
        self.control_seen = None
        self.injected_before = 0
        self.stats = {"requests": 0, "forwarded": 0, "injected": {}, "by_operation": {},
                      "eligible": 0, "held": [], "sequence": []}

    def read_control(self):
        try:
            with open(self.control) as f:
                text = f.read().strip()
            return json.loads(text) if text else {}
        except FileNotFoundError:
            return {}
        except ValueError as e:
            print(f"faultproxy: control file unreadable: {e}", file=sys.stderr)
            return {}

    def choose(self, operation):
        """The fault for this request, or None; counted."""
        control = self.read_control()
        with self.lock:
            self.stats["requests"] += 1
            ops = self.stats["by_operation"]
            ops[operation] = ops.get(operation, 0) + 1
            self.stats["sequence"] = (self.stats["sequence"] + [operation])[-500:]
            seed = control.get("seed")
            if seed is not None and seed != self.seed:
                self.seed = seed
                self.rng.seed(seed)
            eligible = control.get("operations")
            if eligible is not None and operation not in eligible:
                return None
            # `after` and `limit` count from the moment the control document was written.
            if control != self.control_seen:
                self.control_seen = control
                self.stats["eligible"] = 0
                self.injected_before = sum(self.stats["injected"].values())
            self.stats["eligible"] += 1
            if self.stats["eligible"] <= int(control.get("after") or 0):
                return None
            limit = control.get("limit")
            injected = sum(self.stats["injected"].values()) - self.injected_before
            if limit is not None and injected >= int(limit):
                return None
            faults = control.get("faults") or {}
            roll = self.rng.random()
            edge = 0.0
            for kind in ORDER:
                edge += float(faults.get(kind, 0) or 0)
                if roll < edge:
                    inj = self.stats["injected"]
                    inj[kind] = inj.get(kind, 0) + 1
                    return kind
            return None

    def forwarded(self):
        with self.lock:
            self.stats["forwarded"] += 1

    def write_stats(self):
        with self.lock:
            text = json.dumps(self.stats)
        # One temporary file per thread: requests are handled concurrently.
        tmp = f"{self.stats_path}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.stats_path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log_message(self, fmt, *args):  # quiet: the stats file says what happened
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _operation(self):
        target = self.headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1]
        return self.command

    def _error(self, kind):
        status, ddb_type, message, s3_code = ERRORS[kind]
        if self.path.startswith("/v2/email/"):
            status, error_type, message = SESV2[kind]
            body = json.dumps({"message": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-ErrorType", error_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", "faultproxy")
            self.end_headers()
            self.wfile.write(body)
            return
        if self.headers.get("X-Amz-Target"):
            body = json.dumps({"__type": DDB + ddb_type, "message": message}).encode()
            ctype = "application/x-amz-json-1.0"
        else:
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{s3_code}</Code>'
                f"<Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
            ).encode()
            ctype = "application/xml"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "faultproxy")
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _hold(self, operation, applied):
        """Answers nothing until the caller goes away (its process killed); noted first."""
        st = self.server.state
        with st.lock:
            st.stats["held"].append({"operation": operation, "applied": applied})
        st.write_stats()
        self.close_connection = True
        try:
            while self.connection.recv(1024):
                pass
        except OSError:
            pass

    def _forward(self, body):
        st = self.server.state
        up = st.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        st.forwarded()
        return resp, data, conn

    def _handle(self):
        st = self.server.state
        body = self._body()
        operation = self._operation()
        kind = st.choose(operation)
        try:
            if kind in ERRORS:
                self._error(kind)
            elif kind == "drop_before":
                self._drop()
            elif kind == "hang_before":
                self._hold(operation, applied=False)
            else:
                resp, data, conn = self._forward(body)
                conn.close()
                if kind == "drop_after":
                    self._drop()
                elif kind == "hang_after":
                    self._hold(operation, applied=True)
                else:
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
        finally:
            st.write_stats()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args.upstream, args.control, args.stats)
    server.state.write_stats()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

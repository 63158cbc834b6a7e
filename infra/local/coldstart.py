#!/usr/bin/env python3
"""Cold start of a Lambda binary, measured against a stand-in of the Lambda runtime API.

Starts BINARY with AWS_LAMBDA_RUNTIME_API pointing here, hands it EVENT (JSON file) as its first
invocation, and reports, in milliseconds: from exec to the binary's first request for work
(its init: settings, SDK clients), and to its response (init plus the first invocation). Runs
the binary RUNS times and prints the median and the range. Standard library only.

  coldstart.py BINARY EVENT_FILE [RUNS]
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time


def measure(binary, event):
    state = {"start": None, "next": None, "done": None, "response": None}
    served = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.endswith("/invocation/next"):
                if state["next"] is not None:
                    # Only one invocation: hold further polls until the process is stopped.
                    served.wait(30)
                    return
                state["next"] = time.perf_counter()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "cold-start-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 110_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:monitor")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            payload = self.rfile.read(length)
            state["done"] = time.perf_counter()
            state["response"] = (self.path, payload[:300].decode(errors="replace"))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            served.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "monitor")
    env.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    env.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    env.setdefault("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
    env.setdefault("AWS_LAMBDA_LOG_GROUP_NAME", "cold-start")
    state["start"] = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = served.wait(60)
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    server.shutdown()
    if not ok or state["next"] is None:
        raise SystemExit(f"{binary}: no response from the function (exit code {proc.poll()})")
    if "/error" in state["response"][0]:
        raise SystemExit(f"{binary}: the invocation failed: {state['response'][1]}")
    return (state["next"] - state["start"]) * 1000, (state["done"] - state["start"]) * 1000


def main():
    binary, event_file = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    event = json.load(open(event_file))
    results = [measure(binary, event) for _ in range(runs)]
    init = [r[0] for r in results]
    total = [r[1] for r in results]
    name = os.path.basename(binary)
    print(f"| {name} | {statistics.median(init):.1f} ms ({min(init):.1f}-{max(init):.1f}) "
          f"| {statistics.median(total):.1f} ms ({min(total):.1f}-{max(total):.1f}) | {runs} |")


if __name__ == "__main__":
    main()

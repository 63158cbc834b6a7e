#!/usr/bin/env python3
"""SMTP load for infra/local/bench-postfix.sh: relay throughput and CPU of a Postfix instance.

  smtp-load.py --port N --maildir DIR --master-pid-file PATH --queue-dir DIR
               [--host 127.0.0.1] [--messages 500] [--concurrency 1,8] [--warmup 5]

Sends --messages messages (the shape of `message()` in tests/src/lib.rs: from
alice@example.org to bob@bench.test and carol@bench.test, ~230 bytes) to the SMTP server at
HOST:PORT, at each concurrency in turn (that many threads, one SMTP connection per message,
as independent senders on the internet do), and measures the wall time from the first send
until the sink's Maildir (DIR/new) holds all of them. Two recipients of one domain relay as one
message, so one file per message is expected.

CPU: the sum of utime + stime over the instance's master process and its children (from
/proc/PID/stat), plus the master's cutime + cstime (children that exited and were reaped during
the run, e.g. a process that reached max_use), read before the first send and after the queue
is empty again. It misses: kernel work charged to other processes (the sender's and the sink's
side of loopback TCP, softirq time charged to whichever process was running), any process not
a direct child of the master, and a child that exits but is not yet reaped when read.

Prints one markdown row per concurrency:
  | concurrency | messages | wall | messages/s | CPU ms / message |
Only the standard library is used (any python3).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import sys
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")
SENDER = "alice@example.org"
RECIPIENTS = ["bob@bench.test", "carol@bench.test"]


def message(token: str, to: str) -> bytes:
    """Byte for byte `message()` of tests/src/lib.rs."""
    return (
        f"From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: {token}\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{token}@example.org>\r\n\r\n"
        f"Body of {token}\r\n"
    ).encode()


def stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    # Fields after "(comm)": state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14].
    return s.rsplit(")", 1)[1].split()


def instance_cpu_seconds(master: int) -> float:
    """utime+stime of the master and its children, plus the master's reaped children."""
    total = 0.0
    m = stat_fields(master)
    if m is None:
        raise SystemExit(f"smtp-load.py: master process {master} is gone")
    total += sum(int(m[i]) for i in (11, 12, 13, 14))
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == master:
            continue
        f = stat_fields(int(name))
        if f is not None and f[1] == str(master):
            total += int(f[11]) + int(f[12])
    return total / TICKS


def count_new(maildir: str) -> int:
    return len(os.listdir(os.path.join(maildir, "new")))


def queue_empty(queue_dir: str) -> bool:
    for sub in ("incoming", "active", "deferred"):
        for _root, _dirs, files in os.walk(os.path.join(queue_dir, sub)):
            if files:
                return False
    return True


def send_one(host: str, port: int, tok: str) -> str | None:
    try:
        with smtplib.SMTP(host, port, local_hostname="sender.example.org", timeout=60) as s:
            s.sendmail(SENDER, RECIPIENTS, message(tok, ", ".join(RECIPIENTS)))
        return None
    except (smtplib.SMTPException, OSError) as e:
        return f"{tok}: {e!r}"


def send_all(host: str, port: int, tokens: list[str], concurrency: int) -> list[str]:
    """Sends one message per token over `concurrency` threads; returns the errors."""
    lock = threading.Lock()
    it = iter(tokens)
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                tok = next(it, None)
            if tok is None:
                return
            err = send_one(host, port, tok)
            if err is not None:
                with lock:
                    errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def wait_for(maildir: str, target: int, deadline: float) -> bool:
    while count_new(maildir) < target:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--master-pid-file", required=True)
    p.add_argument("--queue-dir", required=True)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    a = p.parse_args()
    with open(a.master_pid_file) as f:
        master = int(f.read().split()[0])

    def settle() -> None:
        # Until the queue is empty (the last delivery's bookkeeping done), at most 10 s.
        end = time.monotonic() + 10
        while not queue_empty(a.queue_dir) and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.2)

    # Warm-up, not measured: the first smtpd, cleanup, trivial-rewrite and smtp processes start.
    if a.warmup:
        base = count_new(a.maildir)
        errs = send_all(a.host, a.port, [f"warmup{i}" for i in range(a.warmup)], 1)
        if errs or not wait_for(a.maildir, base + a.warmup, time.monotonic() + 60):
            print(f"smtp-load.py: warm-up failed: {errs[:3]}", file=sys.stderr)
            return 1
        settle()

    for concurrency in [int(c) for c in a.concurrency.split(",")]:
        tokens = [f"bench{concurrency}x{i}" for i in range(a.messages)]
        base = count_new(a.maildir)
        cpu0 = instance_cpu_seconds(master)
        started = time.monotonic()
        errs = send_all(a.host, a.port, tokens, concurrency)
        sent = time.monotonic() - started
        if errs:
            print(f"smtp-load.py: {len(errs)} sends failed, e.g. {errs[:3]}", file=sys.stderr)
            return 1
        if not wait_for(a.maildir, base + a.messages, started + a.timeout):
            got = count_new(a.maildir) - base
            print(f"smtp-load.py: only {got} of {a.messages} relayed in {a.timeout} s", file=sys.stderr)
            return 1
        wall = time.monotonic() - started
        print(f"smtp-load.py: concurrency {concurrency}: all accepted after {sent:.2f} s, "
              f"all relayed after {wall:.2f} s", file=sys.stderr)
        settle()
        cpu = instance_cpu_seconds(master) - cpu0
        n = a.messages
        print(f"| {concurrency} | {n} | {wall:.2f} s | {n / wall:.1f} | {cpu / n * 1000:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

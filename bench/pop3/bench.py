#!/usr/bin/env python3
"""POP3 benchmark: sessions per second of Postern and Dovecot on the same mail.

One session = TLS connect (port 995 semantics), USER/PASS, STAT, UIDL, RETR of
every message, QUIT. CLIENTS processes run sessions back to back for SECONDS;
the result is completed sessions per second. Both servers get the same
MESSAGES generated messages (Postern: sealed in its store via pop3_fill;
Dovecot: a Maildir) and both verify Argon2id passwords behind a login cache.

    bench/pop3/bench.py --builddir build [--clients 20] [--messages 200] [--seconds 20]

Dovecot (Debian dovecot-pop3d) is installed with apt-get when missing and run
as root in the foreground on a loopback port with its own config and data
dir; everything is removed at the end.
"""

import multiprocessing
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402 (bench/common.py)

USER = "bench@example.org"
PASSWORD = "bench password 42"


def make_messages(n):
    """N messages of about 1-60 KB in canonical CRLF form, some lines dotted."""
    out = []
    for i in range(n):
        lines = [b"From: sender%d@example.net" % i, b"To: %s" % USER.encode(),
                 b"Subject: benchmark message %d" % i,
                 b"Message-ID: <bench%d@example.net>" % i, b""]
        for ln in range(10 + (i * 37) % 800):
            lines.append((b"." if ln % 7 == 0 else b"") +
                         b"line %d of message %d: the quick brown fox" % (ln, i))
        out.append(b"\r\n".join(lines) + b"\r\n")
    return out


class Client:
    """A minimal, fast POP3 client (poplib reads line by line, which would make
    the client the bottleneck)."""

    def __init__(self, port, ctx):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.buf = b""
        self.status()

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("server closed the connection")
        self.buf += data

    def status(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if not line.startswith(b"+OK"):
            raise RuntimeError(line.decode("utf-8", "replace"))
        return line

    def multi(self):
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                body, self.buf = b"", self.buf[3:]
                return body
            end = self.buf.find(b"\r\n.\r\n", start)
            if end >= 0:
                body, self.buf = self.buf[:end + 2], self.buf[end + 5:]
                return body
            start = max(0, len(self.buf) - 4)
            self._fill()

    def cmd(self, text, multi=False):
        self.sock.sendall(text + b"\r\n")
        line = self.status()
        return (line, self.multi()) if multi else line

    def close(self):
        self.sock.close()


def one_session(port, ctx, check=False):
    c = Client(port, ctx)
    c.cmd(b"USER " + USER.encode())
    c.cmd(b"PASS " + PASSWORD.encode())
    count, total = map(int, c.cmd(b"STAT").split()[1:3])
    _, uidl = c.cmd(b"UIDL", multi=True)
    got = 0
    for i in range(1, count + 1):
        _, body = c.cmd(b"RETR %d" % i, multi=True)
        got += len(body.replace(b"\r\n..", b"\r\n.")) - (1 if body.startswith(b"..") else 0)
    c.cmd(b"QUIT")
    c.close()
    if check and (got != total or len(uidl.split(b"\r\n")) - 1 != count):
        raise RuntimeError("retrieved %d octets, STAT said %d" % (got, total))
    return count


def worker(port, cafile, seconds, result):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    deadline = time.monotonic() + seconds
    done = 0
    try:
        while time.monotonic() < deadline:
            one_session(port, ctx)
            done += 1
    except Exception as e:  # a failed session is reported, not counted
        print("client error: %s" % e, file=sys.stderr)
        done = -1
    result.put(done)


def run_load(port, cafile, clients, seconds, expect):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    n = one_session(port, ctx, check=True)
    if n != expect:
        raise RuntimeError("mailbox has %d messages, expected %d" % (n, expect))
    result = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(port, cafile, seconds, result))
             for _ in range(clients)]
    start = time.monotonic()
    for p in procs:
        p.start()
    counts = [result.get(timeout=seconds + 300) for _ in procs]
    elapsed = time.monotonic() - start
    for p in procs:
        p.join()
    if min(counts) < 0:
        raise RuntimeError("%d clients failed" % sum(1 for n in counts if n < 0))
    return sum(counts), elapsed


def bench_postern(args, messages, tmp):
    harness = common.harness(args.builddir)
    with harness.Server(listeners=("pop3s",),
                        config={"server": {"log_level": "warn", "workers": "0"},
                                "limits": {"max_connections_per_ip": "1000"}}) as srv:
        srv.add_domain("example.org")
        srv.add_user(USER, PASSWORD)
        common.pop3_fill(harness, srv, USER, common.write_messages(messages, tmp, "p"))
        common.keep_certificate(srv, tmp)
        return run_load(srv.port("pop3s"), srv.cafile, args.clients, args.seconds,
                        len(messages)), os.path.join(tmp, "cert.pem")




def bench_dovecot(args, messages, tmp, cafile):
    common.ensure_dovecot("pop3", "dovecot-pop3d")
    d = os.path.join(tmp, "dovecot")
    maildir = common.maildir(d, USER)
    shutil.copy(cafile, os.path.join(d, "cert.pem"))
    shutil.copy(os.path.join(os.path.dirname(cafile), "key.pem"), os.path.join(d, "key.pem"))
    now = int(time.time())
    for i, m in enumerate(messages):
        # Maildir keeps LF line ends; Dovecot adds the CR when it sends.
        name = "%d.M%dP1.bench,S=%d:2," % (now + i, i, len(m.replace(b"\r\n", b"\n")))
        with open(os.path.join(maildir, "cur", name), "wb") as f:
            f.write(m.replace(b"\r\n", b"\n"))
    common.dovecot_passwd(d, [USER], PASSWORD)
    port = common.free_port()
    proc = common.start_dovecot(tmp, d, common.dovecot_config(
        d, "pop3", port, settings="pop3_uidl_format = %08Xu%08Xv\n"), port)
    try:
        return run_load(port, os.path.join(d, "cert.pem"), args.clients, args.seconds,
                        len(messages))
    finally:
        common.stop_dovecot(proc, 30)


def main():
    args = common.dovecot_args(__doc__)

    messages = make_messages(args.messages)
    tmp = tempfile.mkdtemp(prefix="postern-bench-pop3-")
    try:
        (p_sessions, p_time), cafile = bench_postern(args, messages, tmp)
        p_rate = p_sessions / p_time
        print("postern: %d sessions in %.1f s = %.2f sessions/s" % (p_sessions, p_time, p_rate))
        if not args.no_dovecot:
            d_sessions, d_time = bench_dovecot(args, messages, tmp, cafile)
            d_rate = d_sessions / d_time
            print("dovecot: %d sessions in %.1f s = %.2f sessions/s" % (d_sessions, d_time,
                                                                        d_rate))
            print("ratio postern/dovecot: %.2f" % (p_rate / d_rate))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

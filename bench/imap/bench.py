#!/usr/bin/env python3
"""IMAP benchmark: commands per second of Postern and Dovecot on the same mail.

CLIENTS processes each log in over implicit TLS once and then repeat a fixed
mix on one shared INBOX for SECONDS: SELECT, FETCH of flags and three header
fields of every message, FETCH of three whole messages, STORE +FLAGS and
-FLAGS, SEARCH FROM, APPEND, STORE \\Deleted on it and EXPUNGE. The result is
completed commands per second (every command must answer OK). Both servers
hold the same MESSAGES generated messages (Postern: sealed in its store by
tests/integration/pop3_fill; Dovecot: a Maildir).

    bench/imap/bench.py --builddir build [--clients 20] [--messages 200] [--seconds 20]

Dovecot (Debian dovecot-imapd) is installed with apt-get when missing and run
in the foreground on a loopback port with its own config and data dir;
everything is removed at the end.
"""

import imaplib
import multiprocessing
import os
import random
import shutil
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
    """N messages of roughly 1-40 KB, CRLF line ends."""
    rnd = random.Random(7)
    out = []
    for i in range(n):
        body = b"".join(b"line %d of message %d: lorem ipsum dolor sit amet\r\n" % (k, i)
                        for k in range(rnd.randint(20, 700)))
        out.append(b"From: sender%d@example.net\r\nTo: %s\r\nSubject: bench %d\r\n"
                   b"Date: Mon, 5 Feb 2024 10:00:00 +0000\r\nMessage-ID: <%d@bench>\r\n\r\n"
                   % (i % 10, USER.encode(), i, i) + body)
    return out


def check(typ, data, what):
    if typ != "OK":
        raise RuntimeError("%s: %s %r" % (what, typ, data))


def worker(port, cafile, seconds, seed, result):
    rnd = random.Random(seed)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    done = 0
    try:
        m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
        check(*m.login(USER, PASSWORD), "LOGIN")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            typ, data = m.select("INBOX")
            check(typ, data, "SELECT")
            n = int(data[0])
            check(*m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (From Subject Date)])"),
                  "FETCH headers")
            for _ in range(3):
                check(*m.fetch(str(rnd.randint(1, n)), "(BODY.PEEK[])"), "FETCH body")
            k = str(rnd.randint(1, n))
            check(*m.store(k, "+FLAGS", r"(\Flagged)"), "STORE")
            check(*m.store(k, "-FLAGS", r"(\Flagged)"), "STORE")
            check(*m.search(None, "FROM", "sender3"), "SEARCH")
            typ, data = m.append("INBOX", None, None,
                                 b"From: w@example.net\r\nSubject: tmp\r\n\r\nx\r\n")
            check(typ, data, "APPEND")
            typ, data = m.uid("SEARCH", "SUBJECT", "tmp")
            check(typ, data, "SEARCH")
            for uid in data[0].split():
                m.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
            check(*m.expunge(), "EXPUNGE")
            done += 12
        m.logout()
    except Exception as e:  # reported by the parent
        result.put(("error", repr(e)))
        return
    result.put(("ok", done))


def run_load(port, cafile, clients, seconds):
    result = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(port, cafile, seconds, i, result))
             for i in range(clients)]
    start = time.monotonic()
    for p in procs:
        p.start()
    total, errors = 0, []
    for _ in procs:
        kind, value = result.get(timeout=seconds + 300)
        if kind == "ok":
            total += value
        else:
            errors.append(value)
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    if errors:
        print("%d of %d clients failed, first: %s" % (len(errors), clients, errors[0]))
    return total, elapsed


def bench_postern(args, messages, tmp):
    harness = common.harness(args.builddir)
    with harness.Server(listeners=("imaps",),
                        config={"server": {"log_level": "warn", "workers": "0"},
                                "limits": {"max_connections_per_ip": "1000"}}) as srv:
        srv.add_domain("example.org")
        srv.add_user(USER, PASSWORD)
        common.pop3_fill(harness, srv, USER, common.write_messages(messages, tmp, "p"))
        common.keep_certificate(srv, tmp)
        return run_load(srv.port("imaps"), srv.cafile, args.clients, args.seconds)




def bench_dovecot(args, messages, tmp):
    common.ensure_dovecot("imap", "dovecot-imapd")
    d = os.path.join(tmp, "dovecot")
    maildir = common.maildir(d, USER)
    shutil.copy(os.path.join(tmp, "cert.pem"), os.path.join(d, "cert.pem"))
    shutil.copy(os.path.join(tmp, "key.pem"), os.path.join(d, "key.pem"))
    now = int(time.time())
    for i, m in enumerate(messages):
        name = "%d.M%dP1.bench:2," % (now + i, i)
        with open(os.path.join(maildir, "cur", name), "wb") as f:
            f.write(m.replace(b"\r\n", b"\n"))
    common.dovecot_passwd(d, [USER], PASSWORD)
    port = common.free_port()
    proc = common.start_dovecot(tmp, d, common.dovecot_config(d, "imap", port), port)
    try:
        return run_load(port, os.path.join(d, "cert.pem"), args.clients, args.seconds)
    finally:
        common.stop_dovecot(proc, 30)


def main():
    args = common.dovecot_args(__doc__)
    messages = make_messages(args.messages)
    tmp = tempfile.mkdtemp(prefix="postern-bench-imap-")
    try:
        p_ops, p_time = bench_postern(args, messages, tmp)
        p_rate = p_ops / p_time
        print("postern: %d commands in %.1f s = %.1f commands/s" % (p_ops, p_time, p_rate))
        if not args.no_dovecot:
            d_ops, d_time = bench_dovecot(args, messages, tmp)
            d_rate = d_ops / d_time
            print("dovecot: %d commands in %.1f s = %.1f commands/s" % (d_ops, d_time, d_rate))
            print("ratio postern/dovecot: %.2f" % (p_rate / d_rate if d_rate else 0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

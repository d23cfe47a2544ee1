#!/usr/bin/env python3
"""Queue drain benchmark: messages per second from one Postern to another.

Instance A holds MESSAGES queued messages for users of DOMAINS domains
(d01.test, d02.test, ...) hosted by instance B; dnsmasq on loopback serves
their MX records. The messages are queued while B is down (so they wait with
a long retry delay), then B starts, `posternctl queue flush` makes them due
and the clock runs until A's queue is empty: MX lookup, SMTP with STARTTLS,
DKIM signing, and B's scanning, checks, sealing and storing are all inside.

    bench/queue/bench.py --builddir build [--messages 200] [--domains 20] [--size 2048]
                         [--queue KEY=VALUE ...]

--queue sets a [queue] key of A, e.g. max_per_connection=1 (a connection
per message) against the default of 20.
"""

import argparse
import json
import os
import smtplib
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

WORDS = ("meeting report budget quarterly project timeline review draft invoice "
         "customer release schedule update agenda minutes summary proposal").split()
PASSWORD = "correct horse battery"


def body(size, seed):
    words, n = [], 0
    while n < size:
        w = WORDS[(seed * 7 + len(words) * 3) % len(WORDS)]
        words.append(w)
        n += len(w) + 1
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    return "\r\n".join(lines) + "\r\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--domains", type=int, default=20)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--queue", action="append", default=[], metavar="KEY=VALUE",
                    help="a [queue] setting of the sending instance")
    args = ap.parse_args()
    os.environ["POSTERN_BUILDDIR"] = os.path.abspath(args.builddir)

    from harness import Server
    from test_outbound import pair_dns

    domains = ["d%02d.test" % i for i in range(1, args.domains + 1)]
    records = []
    for d in domains:
        records += ["--mx-host=%s,mx.%s,10" % (d, d), "--host-record=mx.%s,127.0.0.1" % d]
    records += ["--txt-record=a.test,v=spf1 ip4:127.0.0.1 -all"]
    listeners = ("smtp", "submission")
    fast = {"failure_delay_ms": "100", "argon2_mem": "8M", "argon2_ops": "1"}
    a = Server(listeners=listeners, start=False)
    b = Server(listeners=listeners, start=False)
    dns = pair_dns(a, b, records)
    try:
        a.overrides = {"queue": {"resolver": dns.address, "remote_port": str(b.port("smtp")),
                                 "poll_interval": "1", "retry_min": "3600",
                                 "retry_max": "3600", "timeout": "30"},
                       "auth": fast}
        for kv in args.queue:
            key, _, value = kv.partition("=")
            a.overrides["queue"][key] = value
        a._write_config()
        a.start()
        a.add_domain("a.test")
        a.add_user("alice@a.test", PASSWORD)
        a.ctl("dkim", "keygen", "a.test")
        b.overrides = {"queue": {"resolver": dns.address}, "auth": fast}
        b._write_config()
        for d in domains:
            b.add_domain(d)
            b.add_user("user@" + d, PASSWORD)

        ctx = a.ssl_context()
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", a.port("submission"), timeout=60) as s:
            s.starttls(context=ctx)
            s.login("alice@a.test", PASSWORD)
            for i in range(args.messages):
                rcpt = "user@" + domains[i % len(domains)]
                msg = ("From: Alice <alice@a.test>\r\nTo: <%s>\r\nSubject: %s %d\r\n"
                       "Message-ID: <bench.%d@a.test>\r\n\r\n%s" % (
                           rcpt, WORDS[i % len(WORDS)], i, i, body(args.size, i)))
                s.sendmail("alice@a.test", [rcpt], msg.encode())

        def queued():
            return len(json.loads(a.ctl("queue", "list", "--json").stdout))

        deadline = time.monotonic() + 60
        while any(e["attempts"] == 0 for e in json.loads(a.ctl("queue", "list", "--json").stdout)):
            if time.monotonic() > deadline:
                raise RuntimeError("the first attempts did not happen")
            time.sleep(0.2)
        b.start()
        start = time.monotonic()
        a.ctl("queue", "flush")
        while queued() > 0:
            if time.monotonic() - start > 1800:
                raise RuntimeError("queue did not drain:\n" + a.log()[-3000:])
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        stored = 0
        for d in domains:
            info = json.loads(b.ctl("user", "show", "user@" + d, "--json").stdout)
            stored += sum(mb["messages"] for mb in info["mailboxes"])
        if stored != args.messages:
            raise RuntimeError("B stored %d of %d messages:\n%s" % (
                stored, args.messages, a.log()[-3000:]))
        print("messages %d  domains %d  size %d  %s drained in %.2f s  %.1f messages/s" % (
            args.messages, len(domains), args.size, " ".join(args.queue), elapsed,
            args.messages / elapsed))
    finally:
        a.close()
        b.close()
        dns.close()


if __name__ == "__main__":
    main()

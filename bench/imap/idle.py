#!/usr/bin/env python3
"""IMAP idle benchmark: posternd's memory with N TLS connections idling.

Opens CONNECTIONS connections to the IMAPS port of a posternd started for the
run, and on each one logs in, SELECTs INBOX (holding MESSAGES messages) and
sends IDLE. Once every connection has its "+ idling", it reads posternd's
resident memory (VmRSS, and Pss from smaps_rollup) from /proc, checks that a
message then APPENDed by another session reaches every idling connection as
"* n EXISTS", and reports the memory before the connections, with them and
per connection.

    bench/imap/idle.py --builddir build [--connections 10000] [--users 10]

With --dovecot N it also opens N connections to Dovecot (Debian
dovecot-imapd, one imap process per connection) set up the same way and
adds up the RSS and PSS of all its processes, for comparison. Run as root:
the script raises the open-files limit for itself and the daemons.
"""

import argparse
import asyncio
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402 (bench/common.py)
from common import SRCDIR  # noqa: E402
sys.path.insert(0, HERE)

PASSWORD = "idle password 42"
OPEN_AT_ONCE = 64  # handshakes and logins in flight


def users(n):
    return ["idle%d@example.org" % i for i in range(n)]


def raise_nofile(n):
    """Raises the open-files limit (inherited by the daemons) towards N."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(n, soft)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:  # root may raise the hard limit, unless the container forbids it
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def proc_memory(pids):
    """(RSS, PSS) in KiB, summed over PIDS."""
    rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except FileNotFoundError:
            pass
    return rss, pss


class Idler:
    """One connection: login, SELECT, IDLE; then waits for EXISTS."""

    def __init__(self, user):
        self.user = user
        self.reader = self.writer = None
        self.exists = None

    async def command(self, tag, line):
        self.writer.write(b"%s %s\r\n" % (tag, line))
        while True:
            got = await self.reader.readline()
            if not got:
                raise RuntimeError("%s: connection closed after %r" % (self.user, line))
            if got.startswith(b"* ") and got.rstrip().endswith(b" EXISTS"):
                self.exists = int(got.split()[1])
            if got.startswith(tag + b" "):
                if not got.startswith(tag + b" OK"):
                    raise RuntimeError("%s: %r -> %r" % (self.user, line, got))
                return

    async def open(self, port, ctx):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        greeting = await self.reader.readline()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError("greeting %r" % greeting)
        await self.command(b"a", b'LOGIN "%s" "%s"' % (self.user.encode(), PASSWORD.encode()))
        await self.command(b"b", b"SELECT INBOX")
        self.writer.write(b"c IDLE\r\n")
        got = await self.reader.readline()
        if not got.startswith(b"+"):
            raise RuntimeError("%s: IDLE -> %r" % (self.user, got))

    async def wait_exists(self, above, timeout):
        deadline = time.monotonic() + timeout
        while self.exists is None or self.exists <= above:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                got = await asyncio.wait_for(self.reader.readline(), left)
            except asyncio.TimeoutError:
                return False
            if not got:
                return False
            if got.rstrip().endswith(b" EXISTS"):
                self.exists = int(got.split()[1])
        return True

    def close(self):
        if self.writer:
            self.writer.close()


async def open_all(port, n, user_names):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the client's CPU goes to the server's handshakes
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    idlers = [Idler(user_names[i % len(user_names)]) for i in range(n)]

    async def one(idler):
        async with gate:
            await idler.open(port, ctx)

    start = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in idlers), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise RuntimeError("%d of %d connections failed, first: %r" % (len(failed), n, failed[0]))
    return idlers, time.monotonic() - start


async def measure(port, pids_fn, n, user_names, deliver, settle):
    base_rss, base_pss = proc_memory(pids_fn())
    idlers, took = await open_all(port, n, user_names)
    print("  %d connections idling after %.1f s" % (n, took))
    await asyncio.sleep(settle)
    rss, pss = proc_memory(pids_fn())
    woken = None
    if deliver is not None:
        before = {i: i.exists for i in idlers}
        deliver()
        oks = await asyncio.gather(*(i.wait_exists(before[i], 60) for i in idlers))
        woken = sum(1 for ok in oks if ok)
    for i in idlers:
        i.close()
    await asyncio.sleep(0.5)
    return base_rss, base_pss, rss, pss, woken


def report(name, n, base_rss, base_pss, rss, pss, woken):
    print("%s: %d idle TLS connections: RSS %.1f MiB (%.1f MiB before, %.1f KiB per connection),"
          " PSS %.1f MiB" % (name, n, rss / 1024, base_rss / 1024, (rss - base_rss) / n,
                              pss / 1024))
    if woken is not None:
        print("  a delivered message reached %d of %d idling connections" % (woken, n))


def bench_postern(args, message_paths, tmp):
    harness = common.harness(args.builddir)
    names = users(args.users)
    limit = str(args.connections + args.users + 100)
    with harness.Server(listeners=("imaps",),
                        config={"server": {"log_level": "warn"},
                                "limits": {"max_connections": limit,
                                           "max_connections_per_ip": limit,
                                           "idle_timeout": "1800"}}) as srv:
        srv.add_domain("example.org")
        for u in names:
            srv.add_user(u, PASSWORD)
            common.pop3_fill(harness, srv, u, message_paths)

        def deliver():
            # APPEND from one more session per user: wakes the idlers like
            # delivery does, without depending on the scanner's verdict.
            import imaplib
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            for u in names:
                m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx)
                m.login(u, PASSWORD)
                m.append("INBOX", None, None,
                         b"From: someone@example.net\r\nSubject: wake up\r\n\r\nhi\r\n")
                m.logout()

        common.keep_certificate(srv, tmp)
        result = asyncio.run(measure(srv.port("imaps"), lambda: [srv.pid], args.connections,
                                     names, deliver, args.settle))
        report("postern", args.connections, *result)
        return result




def dovecot_pids():
    out = subprocess.run(["pgrep", "-f", "postern-bench-idle"], capture_output=True, text=True)
    pids = set(int(p) for p in out.stdout.split())
    # imap processes are named "dovecot/imap" and carry no path: take dovecot's tree
    tree = set()
    for p in pids:
        tree.add(p)
    changed = True
    while changed:
        changed = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            if ppid in tree and int(entry) not in tree:
                tree.add(int(entry))
                changed = True
    return sorted(tree)


def bench_dovecot(args, messages, tmp):
    common.ensure_dovecot("imap", "dovecot-imapd")
    n = args.dovecot
    d = os.path.join(tmp, "dovecot")
    names = users(args.users)
    now = int(time.time())
    for u in names:
        maildir = common.maildir(d, u)
        for i, m in enumerate(messages):
            with open(os.path.join(maildir, "cur", "%d.M%dP1.idle:2," % (now + i, i)), "wb") as f:
                f.write(m.replace(b"\r\n", b"\n"))
    shutil.copy(os.path.join(tmp, "cert.pem"), os.path.join(d, "cert.pem"))
    shutil.copy(os.path.join(tmp, "key.pem"), os.path.join(d, "key.pem"))
    common.dovecot_passwd(d, names, PASSWORD)
    port = common.free_port()
    limit, limit2 = n + 100, 2 * n + 100
    proc = common.start_dovecot(tmp, d, common.dovecot_config(
        d, "imap", port, userip=limit,
        settings="default_process_limit = %d\ndefault_client_limit = %d\n" % (limit, limit),
        login="  client_limit = %d\n" % limit,
        services=("service imap {\n  process_limit = %d\n}\n"
                  "service anvil {\n  client_limit = %d\n}\n"
                  "service auth {\n  client_limit = %d\n}\n") % (limit, limit2, limit2)),
        port)
    try:
        result = asyncio.run(measure(port, dovecot_pids, n, names, None, args.settle))
        report("dovecot", n, *result)
        return result
    finally:
        common.stop_dovecot(proc, 60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.path.join(SRCDIR, "build"))
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--messages", type=int, default=50, help="messages in each INBOX")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to wait after the last IDLE before reading memory")
    ap.add_argument("--dovecot", type=int, default=0,
                    help="also measure Dovecot with this many connections")
    args = ap.parse_args()
    if args.connections < 1 or args.users < 1:
        ap.error("--connections and --users must be at least 1")
    raise_nofile(max(args.connections, args.dovecot) + 1000)
    import bench as imap_bench
    messages = imap_bench.make_messages(args.messages)
    tmp = tempfile.mkdtemp(prefix="postern-bench-idle-")
    try:
        paths = common.write_messages(messages, tmp, "m")
        bench_postern(args, paths, tmp)
        if args.dovecot:
            bench_dovecot(args, messages, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SMTP benchmark: messages per second accepted (and stored) for local users.

CLIENTS processes each hold one SMTP session on the MX port and send SIZE-byte
messages back to back for SECONDS (MAIL, RCPT and DATA pipelined, then the
body), each to one of USERS local users in turn. Postern scans, seals and
commits every message before its 250, so "accepted" is "stored" there; for
the Postfix + Dovecot comparison the clock also runs until Dovecot (LMTP into
Maildir) has every accepted message, and both rates are reported.

    bench/smtp/bench.py --builddir build [--clients 20] [--seconds 20] [--size 4096]
                        [--engines sqlite,mariadb] [--no-postfix]

Postern runs through the test harness (its own data dir, loopback ports);
MariaDB through tests/mariadb-server. Postfix and Dovecot (Debian packages
postfix and dovecot-lmtpd, installed with apt-get when missing) run on
loopback ports with their own configuration in a temporary directory, and
everything is stopped and removed at the end. Run as root (Postern then
runs as "nobody", see tests/integration/harness.py); without root only
--no-postfix works.
"""

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402 (bench/common.py)
from common import SRCDIR, free_port, wait_port  # noqa: E402

DOMAIN = "example.org"
WORDS = (b"meeting report budget quarterly project timeline review draft invoice "
         b"customer release schedule update agenda minutes summary proposal").split()


def make_message(i, size):
    """A plausible SIZE-byte text message (the scanner gets real words)."""
    head = (b"From: Sender %d <sender%d@example.net>\r\nTo: user@example.org\r\n"
            b"Subject: weekly %s %d\r\nMessage-ID: <bench%d@example.net>\r\n"
            b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (i, i, WORDS[i % len(WORDS)], i, i))
    body = bytearray()
    target = max(size - len(head), 2)
    k = i
    while True:
        line = b" ".join(WORDS[(k + j) % len(WORDS)] for j in range(10))
        if len(body) + len(line) + 2 > target:
            break
        body += line + b"\r\n"
        k += 3
    rest = target - len(body) - 2
    if rest >= 0:
        body += b"x" * rest + b"\r\n"
    return bytes(head + body)


class Client:
    """A minimal pipelining SMTP client (smtplib would be the bottleneck)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""
        self.reply(220)
        self.sock.sendall(b"EHLO bench.example.net\r\n")
        self.reply(250)

    def reply(self, want):
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("server closed the connection")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line[3:4] != b"-":
                break
        if int(line[:3]) != want:
            raise RuntimeError(line.decode("utf-8", "replace"))

    def send(self, rcpt, msg):
        self.sock.sendall(b"MAIL FROM:<bench@example.net>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                          % rcpt.encode())
        self.reply(250)
        self.reply(250)
        self.reply(354)
        self.sock.sendall(msg + b".\r\n")
        self.reply(250)

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
        finally:
            self.sock.close()


def send_load(port, start_at, seconds, pick):
    """Waits until START_AT, then sends for SECONDS in one session to PORT;
    PICK(n) gives the recipient and message of the n-th mail. Returns how
    many were sent."""
    while time.time() < start_at:
        time.sleep(0.01)
    c = Client(port)
    sent = 0
    end = start_at + seconds
    while time.time() < end:
        c.send(*pick(sent))
        sent += 1
    c.close()
    return sent


def client_main(args):
    port, index, users, size, seconds, start_at = args
    msgs = [make_message(index * 1000 + i, size) for i in range(50)]
    return send_load(port, start_at, seconds,
                     lambda n: (users[(index + n) % len(users)], msgs[n % len(msgs)]))


def run_load(port, users, clients, size, seconds):
    """Returns (messages accepted, seconds of load, wall time when it started)."""
    start_at = time.time() + 1.0
    with multiprocessing.Pool(clients) as pool:
        counts = pool.map(client_main, [(port, i, users, size, seconds, start_at)
                                        for i in range(clients)])
    return sum(counts), seconds, start_at


# ---- Postern ----

def bench_postern(args, engine, users):
    os.environ["POSTERN_TEST_ENGINE"] = engine
    Server = common.harness(args.builddir).Server
    config = {"limits": {"max_connections_per_ip": str(args.clients * 2)}}
    # As root, the harness runs posternd and posternctl as "nobody".
    srv = Server(listeners=("smtp",), config=config, start=False)
    try:
        srv.add_domain(DOMAIN)
        for u in users:
            srv.add_user(u, "bench password 42")
        srv.start()
        n, secs, _ = run_load(srv.port("smtp"), users, args.clients, args.size, args.seconds)
        stored = sum(json_inbox(srv, u) for u in users)
        if stored < n:
            raise RuntimeError("postern: %d accepted but %d stored" % (n, stored))
        return n / secs, n / secs, n
    finally:
        srv.close()


def json_inbox(srv, address):
    import json
    info = json.loads(srv.ctl("user", "show", address, "--json").stdout)
    return sum(mb["messages"] for mb in info["mailboxes"])


# ---- Postfix + Dovecot ----

def ensure_packages():
    if os.path.exists("/usr/sbin/postfix") and os.path.exists("/usr/lib/dovecot/lmtp"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "postfix", "dovecot-lmtpd"],
                   check=True, env=env)


DOVECOT_CONF = """\
base_dir = {d}/dovecot-run
state_dir = {d}/dovecot-state
log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
mail_location = maildir:{d}/mail/%d/%n
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
mail_fsync = optimized
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = home={d}/mail/%d/%n
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
  process_min_avail = 4
}}
"""

POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {d}/postfix-spool
data_directory = {d}/postfix-data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.localhost
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = {domain}
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
lmtp_destination_concurrency_limit = 20
default_destination_concurrency_limit = 20
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
biff = no
"""


def maildir_count(d):
    total = 0
    for root, dirs, files in os.walk(os.path.join(d, "mail")):
        if os.path.basename(root) in ("new", "cur"):
            total += len(files)
    return total


def bench_postfix(args, users):
    ensure_packages()
    d = tempfile.mkdtemp(prefix="postern-bench-pf-")
    os.chmod(d, 0o755)
    smtp_port, lmtp_port = free_port(), free_port()
    conf_dir = os.path.join(d, "postfix")
    os.makedirs(conf_dir)
    os.makedirs(os.path.join(d, "mail"))
    shutil.chown(os.path.join(d, "mail"), "nobody", "nogroup")
    with open(os.path.join(d, "dovecot.conf"), "w") as f:
        f.write(DOVECOT_CONF.format(d=d, lmtp=lmtp_port))
    with open(os.path.join(conf_dir, "main.cf"), "w") as f:
        f.write(POSTFIX_MAIN.format(d=d, lmtp=lmtp_port, domain=DOMAIN))
    with open("/etc/postfix/master.cf") as f:
        master = f.read().splitlines()
    out = []
    for line in master:
        if line.startswith("smtp ") and " inet " in line:
            line = "127.0.0.1:%d inet n - n - - smtpd" % smtp_port
        out.append(line)
    with open(os.path.join(conf_dir, "master.cf"), "w") as f:
        f.write("\n".join(out) + "\n")
    # postfix(1) only runs a configuration directory that the default
    # main.cf lists; the old value is restored at the end.
    old_alt = subprocess.run(["postconf", "-h", "alternate_config_directories"],
                             capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["postconf", "-e", "alternate_config_directories = %s" %
                    " ".join(x for x in (old_alt, conf_dir) if x)], check=True)
    dovecot = subprocess.Popen(["dovecot", "-F", "-c", os.path.join(d, "dovecot.conf")])
    postfix_cmd = ["postfix", "-c", conf_dir]
    try:
        for sub in ("postfix-spool", "postfix-data"):
            os.makedirs(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "postfix-data"), "postfix", "postfix")
        subprocess.run(postfix_cmd + ["post-install", "create-missing"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(postfix_cmd + ["start"], check=True)
        wait_port(smtp_port)
        wait_port(lmtp_port)
        n, secs, started = run_load(smtp_port, users, args.clients, args.size, args.seconds)
        accepted_rate = n / secs
        # Delivered: until Dovecot has every accepted message.
        deadline = time.time() + 600
        while maildir_count(d) < n and time.time() < deadline:
            time.sleep(0.1)
        delivered_at = time.time()
        got = maildir_count(d)
        if got < n:
            raise RuntimeError("postfix+dovecot: %d accepted, %d delivered" % (n, got))
        return accepted_rate, n / max(secs, delivered_at - started), n
    finally:
        subprocess.run(postfix_cmd + ["stop"], check=False)
        subprocess.run(["postconf", "-e", "alternate_config_directories = " + old_alt],
                       check=False)
        dovecot.terminate()
        dovecot.wait(30)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(d, ignore_errors=True)


def load_parser(doc):
    """A command line parser with the options every SMTP load run takes
    (build dir, client sessions, duration, message size, users); DOC is the
    script's docstring, whose first paragraph describes it."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--builddir", required=True)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--users", type=int, default=10)
    return p


def main():
    p = load_parser(__doc__)
    p.add_argument("--engines", default="sqlite,mariadb")
    p.add_argument("--no-postfix", action="store_true")
    args = p.parse_args()
    users = ["bench%d@%s" % (i, DOMAIN) for i in range(args.users)]
    results = []
    maria_dir = None
    try:
        for engine in args.engines.split(","):
            if engine == "mariadb" and not os.environ.get("POSTERN_TEST_MARIADB_SOCKET"):
                maria_dir = tempfile.mkdtemp(prefix="postern-bench-maria-")
                if os.geteuid() == 0:
                    shutil.chown(maria_dir, "nobody", "nogroup")
                out = subprocess.run(["sh", os.path.join(SRCDIR, "tests", "mariadb-server"),
                                      "start", maria_dir], check=True, capture_output=True,
                                     text=True).stdout
                for line in out.splitlines():
                    if line.startswith("POSTERN_TEST_MARIADB_SOCKET="):
                        os.environ["POSTERN_TEST_MARIADB_SOCKET"] = line.split("=", 1)[1]
            rate, _, n = bench_postern(args, engine, users)
            results.append(("Postern (%s)" % engine, rate, rate, n))
        if not args.no_postfix:
            acc, dlv, n = bench_postfix(args, users)
            results.append(("Postfix + Dovecot LMTP", acc, dlv, n))
    finally:
        if maria_dir:
            subprocess.run(["sh", os.path.join(SRCDIR, "tests", "mariadb-server"), "stop",
                            maria_dir], check=False)
            shutil.rmtree(maria_dir, ignore_errors=True)
    print("%d clients, %d s, %d-byte messages to %d local users" % (
        args.clients, args.seconds, args.size, args.users))
    print("%-28s %12s %14s %10s" % ("server", "accepted/s", "delivered/s", "messages"))
    for name, acc, dlv, n in results:
        print("%-28s %12.1f %14.1f %10d" % (name, acc, dlv, n))


if __name__ == "__main__":
    main()

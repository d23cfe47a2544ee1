#!/usr/bin/env python3
"""SMTP benchmark with OpenPGP-signed mail: messages per second accepted (and
stored) when every message is a PGP/MIME signature that posternd verifies
with the recipient's GnuPG home before storing it.

CLIENTS processes each hold one SMTP session on the MX port and send signed
messages (made by gpg for carol@remote.example, about SIZE bytes, with an
Autocrypt header so the first delivery to each user imports Carol's key and
every later one verifies as "valid") back to back for SECONDS, each to one of
USERS local users in turn; PLAIN_CLIENTS more sessions send unsigned messages
of the same size at the same time (they show how long the others hold the
store). Afterwards the script checks that every accepted message is stored.

    bench/smtp/signed.py --builddir build [--clients 20] [--seconds 20] [--size 4096]
                         [--users 10] [--engine sqlite] [--plain-clients 0]

Uses the SMTP client and the messages' text of bench/smtp/bench.py and runs
posternd through the test harness (as root it runs as "nobody").
"""

import base64
import imaplib
import multiprocessing
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import bench  # noqa: E402 (bench/smtp/bench.py)
import common  # noqa: E402 (bench/common.py)

SENDER = "carol@remote.example"
MESSAGES = []  # the signed messages, made before the client processes fork
PLAIN = []  # unsigned messages of the same size, for --plain-clients


def gpg(home, *args, input=None):
    res = subprocess.run(["gpg", "--homedir", home, "--batch", "--yes", "--no-tty",
                          "--pinentry-mode", "loopback", "--passphrase", "", *args],
                         input=input, capture_output=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("gpg %s: %s" % (args, res.stderr.decode(errors="replace")))
    return res.stdout


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def signed_messages(home, count, size):
    """COUNT PGP/MIME messages signed by SENDER, each about SIZE bytes."""
    gpg(home, "--quick-gen-key", SENDER, "ed25519", "sign", "1y")
    key = gpg(home, "--export-options", "export-minimal", "--export", SENDER)
    b64 = base64.b64encode(key)
    autocrypt = b"Autocrypt: addr=%s; keydata=\r\n " % SENDER.encode() + \
        b"\r\n ".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + b"\r\n"
    out = []
    for i in range(count):
        text = bench.make_message(i, size)
        head, body = text.split(b"\r\n\r\n", 1)
        part = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
        sig = crlf(gpg(home, "--detach-sign", "--armor", "--digest-algo", "SHA256", "-u",
                       SENDER, input=part))
        subject = [line for line in head.split(b"\r\n") if line.startswith(b"Subject:")][0]
        out.append(b"From: Carol <%s>\r\nTo: user@example.org\r\n%s\r\n"
                   b"Message-ID: <signed%d@remote.example>\r\n%s"
                   b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=\"sg\";\r\n"
                   b" micalg=pgp-sha256; protocol=\"application/pgp-signature\"\r\n\r\n"
                   b"--sg\r\n%s\r\n--sg\r\n"
                   b"Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n"
                   b"%s\r\n--sg--\r\n"
                   % (SENDER.encode(), subject, i, autocrypt, part, sig))
    return out


def signature_results(srv, user):
    """The X-Postern-Signature values of USER's messages (INBOX and Junk)."""
    c = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=120)
    results = []
    try:
        c.starttls(ssl_context=srv.ssl_context())
        c.login(user, "bench password 42")
        for box in ("INBOX", "Junk"):
            typ, data = c.select(box, readonly=True)
            if typ != "OK" or int(data[0]) == 0:
                continue
            typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (X-Postern-Signature)])")
            for item in data:
                if isinstance(item, tuple):
                    m = re.search(rb"X-Postern-Signature:\s*([a-z-]+)", item[1], re.I)
                    results.append(m.group(1).decode() if m else "none")
    finally:
        c.logout()
    return results


def client_main(args):
    port, index, users, seconds, start_at, signed = args
    messages = MESSAGES if signed else PLAIN
    return bench.send_load(port, start_at, seconds,
                           lambda n: (users[(index + n) % len(users)],
                                      messages[(index + n) % len(messages)]))


def main():
    p = bench.load_parser(__doc__)
    p.add_argument("--engine", default="sqlite")
    p.add_argument("--plain-clients", type=int, default=0,
                   help="more sessions sending unsigned mail at the same time")
    args = p.parse_args()
    users = ["bench%d@%s" % (i, bench.DOMAIN) for i in range(args.users)]
    home = tempfile.mkdtemp(prefix="postern-bench-gpg-")
    os.chmod(home, 0o700)
    os.environ["POSTERN_TEST_ENGINE"] = args.engine
    Server = common.harness(args.builddir).Server
    srv = None
    try:
        MESSAGES.extend(signed_messages(home, 50, args.size))
        PLAIN.extend(bench.make_message(1000 + i, args.size) for i in range(50))
        srv = Server(listeners=("smtp", "imap"), start=False, config={
            "limits": {"max_connections_per_ip": str((args.clients + args.plain_clients) * 2)},
            "auth": {"argon2_ops": "1", "argon2_mem": "8M"}})
        srv.add_domain(bench.DOMAIN)
        for u in users:
            srv.add_user(u, "bench password 42")
        srv.start()
        # One message per user first: imports Carol's key from its Autocrypt
        # header, so the timed run only verifies.
        warm = bench.Client(srv.port("smtp"))
        for u in users:
            warm.send(u, MESSAGES[0])
        warm.close()
        start_at = time.time() + 1.0
        jobs = [(srv.port("smtp"), i, users, args.seconds, start_at, True)
                for i in range(args.clients)]
        jobs += [(srv.port("smtp"), i, users, args.seconds, start_at, False)
                 for i in range(args.plain_clients)]
        with multiprocessing.Pool(len(jobs)) as pool:
            counts = pool.map(client_main, jobs)
        n_signed = sum(counts[:args.clients])
        n_plain = sum(counts[args.clients:])
        n = n_signed + n_plain
        stored = sum(bench.json_inbox(srv, u) for u in users) - len(users)
        if stored < n:
            raise RuntimeError("%d accepted but %d stored" % (n, stored))
        results = signature_results(srv, users[0])
        print("%d + %d clients, %d s, signed + unsigned %d-byte messages to %d local users, %s"
              % (args.clients, args.plain_clients, args.seconds, args.size, args.users,
                 args.engine))
        print("signed accepted/s %.1f  unsigned accepted/s %.1f  messages %d  "
              "(%s: %d of %d stored copies verified valid)" % (
                  n_signed / args.seconds, n_plain / args.seconds, n, users[0],
                  results.count("valid"), len(results)))
    finally:
        if srv:
            srv.close()
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

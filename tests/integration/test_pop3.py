#!/usr/bin/env python3
"""POP3 server: poplib (plain+STLS, POP3_SSL), raw sessions, fetchmail and curl
against a real posternd. Mailboxes are filled with pop3_fill (sealed like local
delivery) and, in SMTPToPOP3Test, through the SMTP MX listener."""

import base64
import os
import poplib
import pwd
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import harness
from harness import Server

PASSWORD = "correct horse battery"
DELAY_MS = 300

MESSAGES = [
    b"From: a@example.net\r\nTo: u@example.org\r\nSubject: one\r\n\r\nhello\r\n",
    # Lines starting with dots, a lone dot and no final line end.
    b"From: b@example.net\r\nSubject: dots\r\n\r\n.leading dot\r\n.\r\n..two\r\nlast",
    b"From: c@example.net\r\nSubject: three\r\n\r\n" + b"".join(
        b"body line %d\r\n" % i for i in range(50)),
]
BIG = b"From: big@example.net\r\nSubject: big\r\n\r\n" + b"".join(
    (b"." if i % 5 == 0 else b"") + b"%07d the quick brown fox jumps over the lazy dog\r\n" % i
    for i in range(60000))

_users = iter(range(1, 100000))

# posternd started as root drops to [server] user; suites run as root use "nobody".
RUN_AS = "nobody" if os.getuid() == 0 else None
FAST_AUTH = {"argon2_mem": "8M", "argon2_ops": "1"}


def start_server(listeners, config):
    """A started Server; as root, its data dir belongs to RUN_AS."""
    config = {k: dict(v) for k, v in config.items()}
    if RUN_AS:
        config.setdefault("server", {})["user"] = RUN_AS
    srv = Server(listeners=listeners, config=config, start=False)
    try:
        if RUN_AS:
            pw = pwd.getpwnam(RUN_AS)
            for root, dirs, files in os.walk(srv.data_dir):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.lchown(name, pw.pw_uid, pw.pw_gid)
        srv.start()
    except Exception:
        srv.close()
        raise
    return srv


def tls_context(srv):
    """Trusts the server's certificate; poplib connects by IP, so the name
    check is left to the tests that connect as "localhost"."""
    ctx = srv.ssl_context()
    ctx.check_hostname = False
    return ctx


def fill(srv, address, messages):
    """Stores MESSAGES in ADDRESS's INBOX; returns their uids."""
    paths = []
    tmp = tempfile.mkdtemp(prefix="pop3-fill-")
    try:
        for i, m in enumerate(messages):
            path = os.path.join(tmp, "m%d" % i)
            with open(path, "wb") as f:
                f.write(m)
            paths.append(path)
        if RUN_AS:
            os.chmod(tmp, 0o755)
        as_user = ["runuser", "-u", RUN_AS, "--"] if RUN_AS else []
        res = subprocess.run(as_user + [os.path.join(harness.BUILDDIR, "tests/integration/pop3_fill"),
                              "-c", srv.config_path, address, *paths],
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError("pop3_fill failed: " + res.stderr)
        return [int(x) for x in res.stdout.split()]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pop_lines(data):
    """Splits a message into the lines poplib returns (without CRLF)."""
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


class Raw:
    """A line-oriented client for what poplib cannot send."""

    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile("rb")

    def line(self):
        data = self.file.readline(100000)
        if not data:
            raise EOFError("connection closed")
        return data.rstrip(b"\r\n")

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text + b"\r\n")
        return self.line()

    def multi(self):
        out = []
        while True:
            ln = self.line()
            if ln == b".":
                return out
            out.append(ln)

    def close(self):
        self.file.close()
        self.sock.close()


class POP3Base(unittest.TestCase):
    listeners = ("pop3", "pop3s")
    config = {"auth": dict(FAST_AUTH, failure_delay_ms=str(DELAY_MS)),
              "limits": {"max_connections_per_ip": "300", "max_errors": "8"}}

    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls.listeners, cls.config)
        cls.srv.add_domain("example.org")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def new_user(self, messages=()):
        address = "user%d@example.org" % next(_users)
        self.srv.add_user(address, PASSWORD)
        uids = fill(self.srv, address, messages) if messages else []
        return address, uids

    def pop3(self):
        p = poplib.POP3("127.0.0.1", self.srv.port("pop3"), timeout=30)
        self.addCleanup(self._close, p)
        return p

    def pop3s(self):
        p = poplib.POP3_SSL("127.0.0.1", self.srv.port("pop3s"), timeout=30,
                            context=tls_context(self.srv))
        self.addCleanup(self._close, p)
        return p

    def login(self, address):
        p = self.pop3s()
        p.user(address)
        p.pass_(PASSWORD)
        return p

    def raw_tls(self):
        sock = socket.create_connection(("127.0.0.1", self.srv.port("pop3s")), timeout=30)
        sock = self.srv.ssl_context().wrap_socket(sock, server_hostname="localhost")
        r = Raw(sock)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"+OK"))
        return r

    def raw_plain(self):
        sock = socket.create_connection(("127.0.0.1", self.srv.port("pop3")), timeout=30)
        r = Raw(sock)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"+OK"))
        return r

    @staticmethod
    def _close(p):
        try:
            p.close()
        except OSError:
            pass


class CapabilityAndTLSTest(POP3Base):
    def test_capa_offers_stls_before_tls_and_credentials_after(self):
        p = self.pop3()
        caps = p.capa()
        self.assertIn("STLS", caps)
        self.assertNotIn("USER", caps)
        self.assertNotIn("SASL", caps)
        for cap in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
            self.assertIn(cap, caps)
        self.assertEqual(caps["IMPLEMENTATION"], ["Postern"])
        p.stls(context=tls_context(self.srv))
        caps = p.capa()
        self.assertNotIn("STLS", caps)
        self.assertIn("USER", caps)
        self.assertEqual(caps["SASL"], ["PLAIN"])

    def test_greeting_has_no_apop_timestamp(self):
        p = self.pop3()
        self.assertNotIn(b"<", p.getwelcome())
        r = self.raw_tls()
        self.assertTrue(r.cmd(b"APOP user@example.org 0123456789abcdef").startswith(b"-ERR [AUTH]"))

    def test_credentials_refused_before_tls(self):
        address, _ = self.new_user()
        r = self.raw_plain()
        for line in (b"USER " + address.encode(), b"PASS " + PASSWORD.encode(),
                     b"AUTH PLAIN " + base64.b64encode(b"\0" + address.encode() + b"\0pw")):
            reply = r.cmd(line)
            self.assertTrue(reply.startswith(b"-ERR [AUTH]"), reply)
            self.assertIn(b"STLS", reply)
        self.assertEqual(r.cmd(b"STAT"), b"-ERR command not valid in this state")

    def test_stls_then_user_pass_logs_in(self):
        address, _ = self.new_user(MESSAGES)
        p = self.pop3()
        p.stls(context=tls_context(self.srv))
        p.user(address)
        self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK"))
        self.assertEqual(p.stat()[0], len(MESSAGES))
        p.quit()

    def test_stls_twice_is_refused(self):
        r = self.raw_tls()
        self.assertTrue(r.cmd(b"STLS").startswith(b"-ERR"))


class AuthenticationTest(POP3Base):
    def test_auth_plain_with_initial_response(self):
        address, _ = self.new_user(MESSAGES[:1])
        r = self.raw_tls()
        resp = base64.b64encode(b"\0" + address.encode() + b"\0" + PASSWORD.encode())
        self.assertTrue(r.cmd(b"AUTH PLAIN " + resp).startswith(b"+OK"))
        self.assertEqual(r.cmd(b"STAT"), b"+OK 1 %d" % len(MESSAGES[0]))

    def test_auth_plain_with_continuation(self):
        address, _ = self.new_user()
        r = self.raw_tls()
        self.assertEqual(r.cmd(b"AUTH PLAIN"), b"+ ")
        resp = base64.b64encode(address.encode() + b"\0" + address.encode() + b"\0" +
                                PASSWORD.encode())
        self.assertTrue(r.cmd(resp).startswith(b"+OK"))

    def test_auth_cancel_and_unknown_mechanism(self):
        r = self.raw_tls()
        self.assertEqual(r.cmd(b"AUTH PLAIN"), b"+ ")
        self.assertEqual(r.cmd(b"*"), b"-ERR authentication cancelled")
        self.assertEqual(r.cmd(b"AUTH CRAM-MD5"), b"-ERR unsupported SASL mechanism")
        self.assertEqual(r.cmd(b"AUTH"), b"+OK SASL mechanisms follow")
        self.assertEqual(r.multi(), [b"PLAIN"])

    def test_every_login_failure_gets_the_same_delayed_reply(self):
        address, _ = self.new_user()
        r = self.raw_tls()
        for user, pw in ((address, "wrong"), ("nobody@example.org", PASSWORD)):
            self.assertEqual(r.cmd(b"USER " + user.encode()), b"+OK send PASS")
            start = time.monotonic()
            self.assertEqual(r.cmd(b"PASS " + pw.encode()), b"-ERR [AUTH] Authentication failed")
            self.assertGreaterEqual(time.monotonic() - start, DELAY_MS / 1000.0 * 0.9)
        bad = base64.b64encode(b"\0" + address.encode() + b"\0nope")
        self.assertEqual(r.cmd(b"AUTH PLAIN " + bad), b"-ERR [AUTH] Authentication failed")
        self.assertEqual(r.cmd(b"PASS " + PASSWORD.encode()), b"-ERR USER first")
        self.assertNotIn(PASSWORD, self.srv.log())
        self.assertNotIn("nope", self.srv.log())

    def test_password_with_spaces_is_not_split(self):
        address, _ = self.new_user()
        r = self.raw_tls()
        r.cmd(b"USER " + address.encode())
        self.assertTrue(r.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK"))


class TransactionTest(POP3Base):
    def test_stat_and_list_sizes_match_retr_bytes(self):
        address, _ = self.new_user(MESSAGES + [BIG])
        p = self.login(address)
        count, total = p.stat()
        self.assertEqual(count, 4)
        self.assertEqual(total, sum(len(m) for m in MESSAGES + [BIG]))
        listing = p.list()[1]
        self.assertEqual(len(listing), 4)
        for entry, original in zip(listing, MESSAGES + [BIG]):
            num, size = map(int, entry.split())
            resp, lines, octets = p.retr(num)
            self.assertEqual(resp, b"+OK %d octets" % size)
            self.assertEqual(size, len(original))
            self.assertEqual(lines, pop_lines(original))
            if original.endswith(b"\r\n"):
                self.assertEqual(octets, size)
            self.assertEqual(p.list(num), b"+OK %d %d" % (num, size))

    def test_top_sends_header_and_n_lines(self):
        address, _ = self.new_user(MESSAGES)
        p = self.login(address)
        header = pop_lines(MESSAGES[2].split(b"\r\n\r\n")[0] + b"\r\n") + [b""]
        self.assertEqual(p.top(3, 0)[1], header)
        self.assertEqual(p.top(3, 2)[1], header + [b"body line 0", b"body line 1"])
        self.assertEqual(p.top(2, 10)[1], pop_lines(MESSAGES[1]))

    def test_uidl_is_stable_across_sessions(self):
        address, uids = self.new_user(MESSAGES)
        p = self.login(address)
        first = p.uidl()[1]
        self.assertEqual(len(first), 3)
        ids = [e.split()[1] for e in first]
        self.assertEqual([int(i.split(b"-")[1]) for i in ids], uids)
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(p.uidl(2), b"+OK 2 " + ids[1])
        p.quit()
        self.assertEqual(self.login(address).uidl()[1], first)

    def test_dele_then_quit_removes(self):
        address, _ = self.new_user(MESSAGES)
        p = self.login(address)
        ids = p.uidl()[1]
        p.dele(1)
        self.assertEqual(p.stat(), (2, len(MESSAGES[1]) + len(MESSAGES[2])))
        self.assertIn(b"1 messages deleted", p.quit())
        p = self.login(address)
        self.assertEqual(p.stat()[0], 2)
        self.assertEqual([e.split()[1] for e in p.uidl()[1]], [e.split()[1] for e in ids[1:]])

    def test_dele_then_dropped_connection_removes_nothing(self):
        address, _ = self.new_user(MESSAGES)
        r = self.raw_tls()
        r.cmd(b"USER " + address.encode())
        self.assertTrue(r.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK"))
        self.assertTrue(r.cmd(b"DELE 1").startswith(b"+OK"))
        self.assertTrue(r.cmd(b"DELE 2").startswith(b"+OK"))
        r.close()
        time.sleep(0.3)
        self.assertEqual(self.login(address).stat()[0], 3)

    def test_rset_unmarks(self):
        address, _ = self.new_user(MESSAGES)
        p = self.login(address)
        p.dele(1)
        p.dele(3)
        self.assertEqual(p.stat()[0], 1)
        self.assertEqual(p.rset(), b"+OK maildrop has 3 messages (%d octets)" %
                         sum(len(m) for m in MESSAGES))
        p.quit()
        self.assertEqual(self.login(address).stat()[0], 3)

    def test_new_mail_is_visible_at_next_login_only(self):
        address, _ = self.new_user(MESSAGES[:1])
        p = self.login(address)
        self.assertEqual(p.stat()[0], 1)
        fill(self.srv, address, MESSAGES[1:2])
        self.assertEqual(p.stat()[0], 1)
        self.assertEqual(len(p.list()[1]), 1)
        p.quit()
        self.assertEqual(self.login(address).stat()[0], 2)

    def test_concurrent_sessions_deleting_the_same_message(self):
        address, _ = self.new_user(MESSAGES)
        a = self.login(address)
        b = self.login(address)
        a.dele(1)
        b.dele(1)
        b.dele(2)
        self.assertIn(b"1 messages deleted", a.quit())
        self.assertIn(b"1 messages deleted", b.quit())
        c = self.login(address)
        self.assertEqual(c.stat()[0], 1)
        self.assertEqual(c.retr(1)[1], pop_lines(MESSAGES[2]))

    def test_retr_of_message_expunged_by_another_session(self):
        address, _ = self.new_user(MESSAGES)
        a = self.login(address)
        b = self.login(address)
        b.dele(1)
        b.quit()
        with self.assertRaises(poplib.error_proto) as ctx:
            a.retr(1)
        self.assertIn(b"removed by another session", ctx.exception.args[0])
        self.assertEqual(a.retr(2)[1], pop_lines(MESSAGES[1]))
        self.assertIn(b"signing off", a.quit())

    def test_pipelined_commands_in_one_write(self):
        address, _ = self.new_user(MESSAGES)
        r = self.raw_tls()
        r.send(b"USER " + address.encode() + b"\r\nPASS " + PASSWORD.encode() +
               b"\r\nSTAT\r\nLIST\r\nRETR 2\r\nTOP 1 0\r\nUIDL 3\r\nDELE 3\r\nNOOP\r\nQUIT\r\n")
        self.assertEqual(r.line(), b"+OK send PASS")
        self.assertTrue(r.line().startswith(b"+OK maildrop has 3 messages"))
        self.assertEqual(r.line(), b"+OK 3 %d" % sum(len(m) for m in MESSAGES))
        self.assertTrue(r.line().startswith(b"+OK 3 messages"))
        self.assertEqual(r.multi(), [b"%d %d" % (i + 1, len(m)) for i, m in enumerate(MESSAGES)])
        self.assertEqual(r.line(), b"+OK %d octets" % len(MESSAGES[1]))
        self.assertEqual(r.multi(), [b"From: b@example.net", b"Subject: dots", b"",
                                     b"..leading dot", b"..", b"...two", b"last"])
        self.assertEqual(r.line(), b"+OK top of message follows")
        self.assertEqual(r.multi(), [b"From: a@example.net", b"To: u@example.org",
                                     b"Subject: one", b""])
        self.assertTrue(r.line().startswith(b"+OK 3 "))
        self.assertEqual(r.line(), b"+OK message 3 deleted")
        self.assertEqual(r.line(), b"+OK")
        self.assertIn(b"1 messages deleted", r.line())
        self.assertEqual(self.login(address).stat()[0], 2)


class BadInputTest(POP3Base):
    def logged_in(self):
        address, _ = self.new_user(MESSAGES)
        r = self.raw_tls()
        r.cmd(b"USER " + address.encode())
        self.assertTrue(r.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK"))
        return r

    def test_unknown_commands_and_bad_numbers(self):
        r = self.logged_in()
        self.assertEqual(r.cmd(b"XYZZY"), b"-ERR unknown command")
        self.assertEqual(r.cmd(b"RETR 0"), b"-ERR invalid message number")
        self.assertEqual(r.cmd(b"RETR 4"), b"-ERR no such message")
        self.assertEqual(r.cmd(b"RETR"), b"-ERR missing argument")
        self.assertEqual(r.cmd(b"STAT"), b"+OK 3 %d" % sum(len(m) for m in MESSAGES))

    def test_errors_are_counted_and_close_the_session(self):
        r = self.logged_in()
        for _ in range(7):
            self.assertTrue(r.cmd(b"LIST 99").startswith(b"-ERR"))
        self.assertEqual(r.cmd(b"LIST 99"), b"-ERR no such message")
        self.assertTrue(r.line().startswith(b"-ERR [SYS/PERM] too many errors"))
        with self.assertRaises((EOFError, ConnectionError)):
            r.line()

    def test_deleted_messages_are_not_accessible(self):
        r = self.logged_in()
        self.assertEqual(r.cmd(b"DELE 2"), b"+OK message 2 deleted")
        self.assertEqual(r.cmd(b"DELE 2"), b"-ERR message 2 already deleted")
        self.assertEqual(r.cmd(b"RETR 2"), b"-ERR message 2 already deleted")
        self.assertEqual(r.cmd(b"LIST 2"), b"-ERR message 2 already deleted")
        r.send(b"UIDL\r\n")
        self.assertTrue(r.line().startswith(b"+OK"))
        self.assertEqual([ln.split()[0] for ln in r.multi()], [b"1", b"3"])

    def test_overlong_line_is_refused_and_session_continues(self):
        r = self.logged_in()
        self.assertEqual(r.cmd(b"NOOP " + b"x" * 300), b"-ERR line too long")
        self.assertEqual(r.cmd(b"NOOP " + b"x" * 10000), b"-ERR line too long")
        self.assertEqual(r.cmd(b"NOOP"), b"+OK")

    def test_commands_in_the_wrong_state(self):
        r = self.raw_tls()
        for cmd in (b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"RSET", b"TOP 1 1", b"UIDL"):
            self.assertEqual(r.cmd(cmd), b"-ERR command not valid in this state")
        r2 = self.logged_in()
        self.assertEqual(r2.cmd(b"USER x@example.org"), b"-ERR command not valid in this state")
        self.assertEqual(r2.cmd(b"STLS"), b"-ERR command not valid in this state")

    def test_binary_garbage_and_bare_lf(self):
        r = self.logged_in()
        self.assertEqual(r.cmd(b"NOOP\x00\x01"), b"-ERR invalid character in command")
        r.send(b"NOOP\n")
        self.assertEqual(r.line(), b"-ERR lines must end with CRLF")
        self.assertEqual(r.cmd(b"NOOP"), b"+OK")

    def test_quit_in_authorization_state(self):
        r = self.raw_tls()
        self.assertEqual(r.cmd(b"QUIT"), b"+OK Postern POP3 server signing off")


class ObservabilityTest(POP3Base):
    def test_commands_are_metered_per_verb(self):
        address, _ = self.new_user(MESSAGES)
        p = self.login(address)
        p.retr(1)
        p.uidl()
        p.quit()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.srv.metrics_port,
                                    timeout=30) as resp:
            text = resp.read().decode()
        for verb in ("USER", "PASS", "RETR", "UIDL", "QUIT"):
            line = [ln for ln in text.splitlines()
                    if ln.startswith("postern_commands_total{") and 'protocol="pop3"' in ln
                    and 'command="%s"' % verb in ln]
            self.assertEqual(len(line), 1, verb)
            self.assertGreaterEqual(float(line[0].split()[-1]), 1, line[0])


class TimeoutTest(POP3Base):
    config = {"auth": FAST_AUTH, "limits": {"idle_timeout": "1"}}

    def test_idle_session_is_logged_out(self):
        r = self.raw_tls()
        start = time.monotonic()
        self.assertEqual(r.line(), b"-ERR [SYS/TEMP] autologout: idle for too long")
        self.assertLess(time.monotonic() - start, 10)
        with self.assertRaises((EOFError, ConnectionError)):
            r.line()


class ConcurrencyTest(POP3Base):
    def test_100_concurrent_sessions(self):
        address, _ = self.new_user(MESSAGES)
        self.login(address).quit()  # warm the login cache like a returning client
        errors = []
        barrier = threading.Barrier(100)

        def client():
            try:
                p = poplib.POP3_SSL("127.0.0.1", self.srv.port("pop3s"), timeout=60,
                                    context=tls_context(self.srv))
                barrier.wait(60)
                p.user(address)
                p.pass_(PASSWORD)
                if p.stat()[0] != 3:
                    errors.append("stat")
                if p.retr(3)[1] != pop_lines(MESSAGES[2]):
                    errors.append("retr")
                p.quit()
            except Exception as e:  # collected and reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])


class ClientsTest(POP3Base):
    def test_curl_pop3s_lists_and_retrieves(self):
        if not shutil.which("curl"):
            self.fail("curl is not installed")
        address, _ = self.new_user(MESSAGES)
        base = ["curl", "-sS", "--cacert", self.srv.cafile, "--resolve",
                "localhost:%d:127.0.0.1" % self.srv.port("pop3s"), "-u",
                "%s:%s" % (address, PASSWORD)]
        url = "pop3s://localhost:%d/" % self.srv.port("pop3s")
        out = subprocess.run(base + [url], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(b"\r\n")[:3],
                         [b"%d %d" % (i + 1, len(m)) for i, m in enumerate(MESSAGES)])
        out = subprocess.run(base + [url + "1"], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, MESSAGES[0])
        # STLS on the plain port, required by --ssl-reqd.
        plain = ["curl", "-sS", "--ssl-reqd", "--cacert", self.srv.cafile, "--resolve",
                 "localhost:%d:127.0.0.1" % self.srv.port("pop3"), "-u",
                 "%s:%s" % (address, PASSWORD), "pop3://localhost:%d/3" % self.srv.port("pop3")]
        out = subprocess.run(plain, capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, MESSAGES[2])

    def test_fetchmail_downloads_and_deletes(self):
        if not shutil.which("fetchmail"):
            self.fail("fetchmail is not installed")
        address, _ = self.new_user(MESSAGES)
        tmp = tempfile.mkdtemp(prefix="pop3-fetchmail-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out_dir = os.path.join(tmp, "out")
        os.mkdir(out_dir)
        rc = os.path.join(tmp, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('poll localhost via 127.0.0.1 protocol pop3 port %d\n'
                    '  user "%s" password "%s"\n'
                    '  ssl sslproto TLS1.2+ sslcertck sslcertfile "%s"\n'
                    '  sslcommonname localhost\n'
                    '  mda "/bin/sh -c \'cat > %s/msg.$$\'"\n'
                    % (self.srv.port("pop3s"), address, PASSWORD, self.srv.cafile, out_dir))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=tmp, FETCHMAILHOME=tmp)
        res = subprocess.run(["fetchmail", "-f", rc, "--nodetach", "--nosyslog"],
                             capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        got = []
        for name in os.listdir(out_dir):
            with open(os.path.join(out_dir, name), "rb") as f:
                got.append(f.read())
        self.assertEqual(len(got), 3)
        for m in MESSAGES:
            subject = [ln for ln in m.split(b"\r\n") if ln.startswith(b"Subject:")][0]
            self.assertTrue(any(subject in g for g in got), subject)
        # fetchmail deletes what it fetched (no "keep").
        self.assertEqual(self.login(address).stat()[0], 0)


class SMTPToPOP3Test(unittest.TestCase):
    """Mail accepted by the SMTP MX listener is read back over POP3."""

    def test_message_sent_through_smtp_is_retrieved(self):
        with start_server(("smtp", "pop3s"), {"auth": FAST_AUTH}) as srv:
            srv.add_domain("example.org")
            srv.add_user("rcpt@example.org", PASSWORD)
            body = ("From: sender@example.net\r\nTo: rcpt@example.org\r\n"
                    "Subject: via smtp\r\n\r\n.dot line\r\nend\r\n")
            with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
                s.sendmail("sender@example.net", ["rcpt@example.org"], body)
            p = poplib.POP3_SSL("127.0.0.1", srv.port("pop3s"), timeout=30,
                                context=tls_context(srv))
            p.user("rcpt@example.org")
            p.pass_(PASSWORD)
            count, total = p.stat()
            self.assertEqual(count, 1)
            resp, lines, octets = p.retr(1)
            self.assertEqual(octets, total)
            self.assertIn(b"Subject: via smtp", lines)
            self.assertEqual(lines[-2:], [b".dot line", b"end"])
            p.quit()


if __name__ == "__main__":
    unittest.main()

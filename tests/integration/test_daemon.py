#!/usr/bin/env python3
"""posternd core against the real daemon: TLS (verified with Python's ssl and
openssl s_client), old TLS refused, connection limits and the idle timeout
with their refusal lines, certificate reload on SIGHUP, --check-config and a
clean stop. Uses the POP3 listeners (pop3 with STARTTLS, pop3s implicit)."""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import Server, program

BUSY = "-ERR [SYS/TEMP] too many connections"
LISTENERS = ("pop3", "pop3s")


def read_line(sock, timeout=10):
    """One line (CRLF stripped) or None at EOF."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = sock.recv(1)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            return data.decode() if data else None
        data += chunk
    return data.decode().rstrip("\r\n")


def plain(srv, name="pop3"):
    return socket.create_connection(("127.0.0.1", srv.port(name)), timeout=10)


def tls(srv, ctx=None, name="pop3s"):
    ctx = ctx or srv.ssl_context()
    return ctx.wrap_socket(plain(srv, name), server_hostname="localhost")


def fingerprint(srv):
    with tls(srv) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def s_client(args, stdin="QUIT\r\n"):
    return subprocess.run(["openssl", "s_client", *args], input=stdin, capture_output=True,
                          text=True, timeout=30)


class DaemonTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=LISTENERS)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_python_ssl_verifies_certificate_and_negotiates_modern_tls(self):
        with tls(self.srv) as s:
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            self.assertTrue(read_line(s).startswith("+OK"))
            name, _, bits = s.cipher()
            self.assertGreaterEqual(bits, 128)
        # A client that trusts nothing special rejects the self-signed certificate.
        with self.assertRaises(ssl.SSLCertVerificationError):
            tls(self.srv, ssl.create_default_context(cafile=None, capath="/nonexistent"))

    def test_openssl_s_client_verifies_implicit_tls(self):
        res = s_client(["-connect", "127.0.0.1:%d" % self.srv.port("pop3s"),
                        "-CAfile", self.srv.cafile, "-verify_return_error",
                        "-verify_hostname", "localhost", "-servername", "localhost"])
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)
        self.assertIn("+OK", res.stdout)

    def test_openssl_s_client_verifies_starttls(self):
        res = s_client(["-connect", "127.0.0.1:%d" % self.srv.port("pop3"), "-starttls", "pop3",
                        "-CAfile", self.srv.cafile, "-verify_return_error",
                        "-verify_hostname", "localhost"])
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)

    def test_tls_1_1_is_refused(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            tls(self.srv, ctx)
        res = s_client(["-connect", "127.0.0.1:%d" % self.srv.port("pop3s"), "-tls1_1",
                        "-cipher", "ALL:@SECLEVEL=0"])
        self.assertNotEqual(res.returncode, 0, res.stdout)

    def test_tls_1_2_uses_ecdhe_aead(self):
        ctx = self.srv.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with tls(self.srv, ctx) as s:
            self.assertEqual(s.version(), "TLSv1.2")
            name = s.cipher()[0]
            self.assertTrue(name.startswith("ECDHE-"), name)
            self.assertTrue("GCM" in name or "CHACHA20" in name, name)


class DaemonLimits(unittest.TestCase):
    def assert_refused(self, srv, name="pop3"):
        with plain(srv, name) as s:
            self.assertEqual(read_line(s), BUSY)
            self.assertIsNone(read_line(s))

    def test_per_ip_limit_refuses_with_busy_reply(self):
        with Server(listeners=LISTENERS, config={"limits": {"max_connections_per_ip": "2"}}) as srv:
            time.sleep(0.5)  # the harness's readiness probes are gone
            held = [plain(srv), plain(srv)]
            for s in held:
                self.assertTrue(read_line(s).startswith("+OK"))
            self.assert_refused(srv)
            held.pop().close()
            time.sleep(0.5)
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("+OK"))
            for s in held:
                s.close()

    def test_total_limit_refuses_with_busy_reply(self):
        with Server(listeners=LISTENERS, config={"limits": {"max_connections": "2"}}) as srv:
            time.sleep(0.5)
            held = [plain(srv), tls(srv)]
            for s in held:
                self.assertTrue(read_line(s).startswith("+OK"))
            self.assert_refused(srv)
            # Over the limit on the implicit TLS port: the same line, inside TLS.
            with tls(srv) as s:
                self.assertEqual(read_line(s), BUSY)
            for s in held:
                s.close()
            self.assertIn("limit reached", srv.log())

    def test_idle_timeout_closes_with_reply(self):
        with Server(listeners=LISTENERS, config={"limits": {"idle_timeout": "2"}}) as srv:
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("+OK"))
                start = time.monotonic()
                line = read_line(s, timeout=10)
                elapsed = time.monotonic() - start
                self.assertIsNotNone(line)
                self.assertTrue(line.startswith("-ERR"), line)
                self.assertIsNone(read_line(s))
                self.assertGreater(elapsed, 1.5)
                self.assertLess(elapsed, 6)


class DaemonLifecycle(unittest.TestCase):
    def test_sighup_serves_new_certificate_and_keeps_old_connections(self):
        with Server(listeners=LISTENERS) as srv:
            before = fingerprint(srv)
            old = tls(srv)
            self.assertTrue(read_line(old).startswith("+OK"))
            srv.ctl("cert", "selfsigned", "--hostname", "localhost",
                    "--cert", srv.cafile, "--key", srv.keyfile)
            srv.reload()
            after = before
            deadline = time.monotonic() + 10
            while after == before and time.monotonic() < deadline:
                time.sleep(0.2)
                after = fingerprint(srv)
            self.assertNotEqual(before, after, srv.log())
            # The connection opened before the reload still works on its old certificate.
            self.assertEqual(hashlib.sha256(old.getpeercert(binary_form=True)).hexdigest(), before)
            old.sendall(b"CAPA\r\n")
            self.assertTrue(read_line(old).startswith("+OK"))
            old.close()
            self.assertIn("reloaded", srv.log())

    def test_sighup_with_broken_certificate_keeps_the_old_one(self):
        with Server(listeners=LISTENERS) as srv:
            before = fingerprint(srv)
            with open(srv.cafile, "w") as f:
                f.write("not a certificate\n")
            srv.reload()
            time.sleep(1)
            self.assertIsNone(srv.proc.poll())
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with tls(srv, ctx) as s:
                self.assertEqual(hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest(),
                                 before)
            self.assertIn("reload failed", srv.log())

    def test_sigterm_stops_cleanly(self):
        with Server(listeners=LISTENERS) as srv:
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("+OK"))
                self.assertEqual(srv.stop(), 0)
                self.assertIsNone(read_line(s))
            self.assertIn("ready", srv.log())
            self.assertIn("stopped", srv.log())


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postern-check-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_check(self, text):
        path = os.path.join(self.dir, "bad.conf")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, LANG="C", LC_ALL="C")
        return path, subprocess.run([program("posternd"), "-c", path, "--check-config"],
                                    capture_output=True, text=True, timeout=30, env=env)

    def test_bad_value_exits_1_with_file_and_line(self):
        path, res = self.run_check("[server]\nworkers = 2\n[limits]\nmax_connections = lots\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(path + ":4:", res.stderr)
        self.assertIn("max_connections", res.stderr)

    def test_unknown_key_and_section_exit_1(self):
        path, res = self.run_check("[server]\nhostnme = x\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(path + ":2:", res.stderr)
        path, res = self.run_check("\n[sever]\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(path + ":2:", res.stderr)

    def test_unreadable_certificate_exits_1(self):
        path, res = self.run_check("[tls]\ncert_file = %s/none.pem\nkey_file = %s/none.key\n"
                                   % (self.dir, self.dir))
        self.assertEqual(res.returncode, 1)
        self.assertIn(path + ":2:", res.stderr)

    def test_missing_file_and_bad_option(self):
        res = subprocess.run([program("posternd"), "-c", os.path.join(self.dir, "nope.conf")],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 1)
        self.assertIn("nope.conf", res.stderr)
        res = subprocess.run([program("posternd"), "--frobnicate"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--frobnicate", res.stderr)

    def test_good_file_passes(self):
        srv = Server(listeners=LISTENERS, start=False)
        try:
            res = subprocess.run([program("posternd"), "-c", srv.config_path, "--check-config"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("OK", res.stdout)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()

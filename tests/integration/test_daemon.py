#!/usr/bin/env python3
"""posternd core against the real daemon: TLS (verified with Python's ssl and
openssl s_client), old TLS refused, connection limits and the idle timeout
with their refusal lines, certificate reload on SIGHUP, --check-config and a
clean stop. Uses the SMTP listeners: smtp (MX, STARTTLS) and submissions
(implicit TLS)."""

import hashlib
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request
import warnings

from harness import Server, program

BUSY = "421 4.7.0 Too many connections, try again later"
LISTENERS = ("smtp", "submissions")
PLAIN, IMPLICIT = LISTENERS


# posternd started as root switches to [server] user: tests running as root
# use "nobody" and hand it the data dir.
RUN_AS = "nobody" if os.getuid() == 0 else None


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def server(limits=None, **overrides):
    """A started Server on LISTENERS that works when the tests run as root."""
    config = {"limits": limits or {}}
    if RUN_AS:
        config["server"] = {"user": RUN_AS}
    config.update(overrides)
    srv = Server(listeners=LISTENERS, config=config, start=False)
    give_data_dir(srv)
    srv.start()
    return srv


def give_data_dir(srv):
    if RUN_AS:
        pw = pwd.getpwnam(RUN_AS)
        chown_tree(srv.data_dir, pw.pw_uid, pw.pw_gid)


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


def plain(srv, name=PLAIN):
    return socket.create_connection(("127.0.0.1", srv.port(name)), timeout=10)


def tls(srv, ctx=None, name=IMPLICIT):
    ctx = ctx or srv.ssl_context()
    return ctx.wrap_socket(plain(srv, name), server_hostname="localhost")


def connection_counts(srv):
    """(accepted, open) connections of the listeners' protocols, from /metrics."""
    url = "http://127.0.0.1:%d/metrics" % srv.metrics_port
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    counts = {"total": 0, "active": 0}
    for line in text.splitlines():
        for kind in counts:
            for protocol in ("smtp", "submission"):
                if line.startswith('postern_connections_%s{protocol="%s"} ' % (kind, protocol)):
                    counts[kind] += int(line.rsplit(" ", 1)[1])
    return counts["total"], counts["active"]


def wait_for_idle(srv, still_open=0, timeout=30):
    """Waits until posternd has accepted the harness's readiness probes (one
    per listener) and seen every close but STILL_OPEN: a close it has not yet
    handled, or a probe still in the accept queue, would use up a slot."""
    deadline = time.monotonic() + timeout
    while True:
        accepted, active = connection_counts(srv)
        if accepted >= len(srv.ports) and active <= still_open:
            return
        if time.monotonic() > deadline:
            raise AssertionError("posternd counts %d accepted, %d open connections:\n%s"
                                 % (accepted, active, srv.log()))
        time.sleep(0.05)


def wait_for_log(srv, text, timeout=30):
    deadline = time.monotonic() + timeout
    while text not in srv.log():
        if time.monotonic() > deadline:
            raise AssertionError("%r not logged:\n%s" % (text, srv.log()))
        time.sleep(0.05)


def fingerprint(srv):
    with tls(srv) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def s_client(args, stdin="QUIT\r\n"):
    # -ign_eof: after our QUIT, read until the server closes.
    return subprocess.run(["openssl", "s_client", "-ign_eof", *args], input=stdin, capture_output=True,
                          text=True, timeout=30)


class DaemonTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_python_ssl_verifies_certificate_and_negotiates_modern_tls(self):
        with tls(self.srv) as s:
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            self.assertTrue(read_line(s).startswith("220"))
            name, _, bits = s.cipher()
            self.assertGreaterEqual(bits, 128)
        # A client that trusts nothing special rejects the self-signed certificate.
        with self.assertRaises(ssl.SSLCertVerificationError):
            tls(self.srv, ssl.create_default_context(cafile=None, capath="/nonexistent"))

    def test_openssl_s_client_verifies_implicit_tls(self):
        res = s_client(["-connect", "127.0.0.1:%d" % self.srv.port(IMPLICIT),
                        "-CAfile", self.srv.cafile, "-verify_return_error",
                        "-verify_hostname", "localhost", "-servername", "localhost"])
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)
        self.assertIn("220 ", res.stdout)
        self.assertIn("221 ", res.stdout)

    def test_openssl_s_client_verifies_starttls(self):
        res = s_client(["-connect", "127.0.0.1:%d" % self.srv.port(PLAIN), "-starttls", "smtp",
                        "-CAfile", self.srv.cafile, "-verify_return_error",
                        "-verify_hostname", "localhost"])
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("Verify return code: 0 (ok)", res.stdout)

    def test_tls_1_1_is_refused(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            tls(self.srv, ctx)
        res = s_client(["-connect", "127.0.0.1:%d" % self.srv.port(IMPLICIT), "-tls1_1",
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


    def test_trace_shows_connect_tls_and_disconnect(self):
        with tls(self.srv) as s:
            self.assertTrue(read_line(s).startswith("220"))
            version = s.version()
            s.sendall(b"QUIT\r\n")
            self.assertTrue(read_line(s).startswith("221"))
        deadline = time.monotonic() + 10
        while True:
            res = self.srv.ctl("trace", "--json", "--protocol", "submission")
            events = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
            tls_events = [e for e in events if e["kind"] == "tls"]
            session = tls_events[-1]["session"] if tls_events else None
            kinds = [e["kind"] for e in events if e["session"] == session]
            if "disconnect" in kinds or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(kinds[0], "connect")
        self.assertEqual(kinds[1], "tls")
        self.assertEqual(kinds[-1], "disconnect")
        text = tls_events[-1]["text"]
        self.assertTrue(text.startswith(version + " "), text)
        self.assertIn("sni=localhost", text)
        self.assertIn("CN=localhost", text.replace(" ", ""))
        connect = [e for e in events if e["session"] == session][0]
        self.assertEqual(connect["text"], "127.0.0.1")


class DaemonLimits(unittest.TestCase):
    def assert_refused(self, srv, name=PLAIN):
        with plain(srv, name) as s:
            self.assertEqual(read_line(s), BUSY)
            self.assertIsNone(read_line(s))

    def test_per_ip_limit_refuses_with_busy_reply(self):
        with server({"max_connections_per_ip": "2"}) as srv:
            wait_for_idle(srv)  # the harness's readiness probes are gone
            held = [plain(srv), plain(srv)]
            for s in held:
                self.assertTrue(read_line(s).startswith("220"))
            self.assert_refused(srv)
            held.pop().close()
            wait_for_idle(srv, still_open=1)
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("220"))
            for s in held:
                s.close()

    def test_total_limit_refuses_with_busy_reply(self):
        with server({"max_connections": "2"}) as srv:
            wait_for_idle(srv)
            held = [plain(srv), tls(srv)]
            for s in held:
                self.assertTrue(read_line(s).startswith("220"))
            self.assert_refused(srv)
            # Over the limit on the implicit TLS port: the same line, inside TLS.
            with tls(srv) as s:
                self.assertEqual(read_line(s), BUSY)
            for s in held:
                s.close()
            self.assertIn("limit reached", srv.log())
            url = "http://127.0.0.1:%d/metrics" % srv.metrics_port
            with urllib.request.urlopen(url, timeout=10) as r:
                metrics = r.read().decode()
            self.assertRegex(metrics, r'postern_connections_refused_total\{protocol="smtp",'
                             r'reason="max_connections"\} [1-9]')

    def test_idle_timeout_closes_with_reply(self):
        with server({"idle_timeout": "2"}) as srv:
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("220"))
                start = time.monotonic()
                line = read_line(s, timeout=10)
                elapsed = time.monotonic() - start
                self.assertIsNotNone(line)
                self.assertTrue(line.startswith("421"), line)
                self.assertIsNone(read_line(s))
                self.assertGreater(elapsed, 1.5)
                self.assertLess(elapsed, 6)


class DaemonLifecycle(unittest.TestCase):
    def test_sighup_serves_new_certificate_and_keeps_old_connections(self):
        with server() as srv:
            before = fingerprint(srv)
            old = tls(srv)
            self.assertTrue(read_line(old).startswith("220"))
            srv.ctl("cert", "selfsigned", "--hostname", "localhost",
                    "--cert", srv.cafile, "--key", srv.keyfile)
            give_data_dir(srv)
            srv.reload()
            after = before
            deadline = time.monotonic() + 10
            while after == before and time.monotonic() < deadline:
                time.sleep(0.2)
                after = fingerprint(srv)
            self.assertNotEqual(before, after, srv.log())
            # The connection opened before the reload still works on its old certificate.
            self.assertEqual(hashlib.sha256(old.getpeercert(binary_form=True)).hexdigest(), before)
            old.sendall(b"NOOP\r\n")
            self.assertTrue(read_line(old).startswith("250"))
            old.close()
            wait_for_log(srv, "reloaded")

    def test_admin_socket_reload_serves_new_certificate(self):
        with server() as srv:
            before = fingerprint(srv)
            srv.ctl("cert", "selfsigned", "--hostname", "localhost",
                    "--cert", srv.cafile, "--key", srv.keyfile)
            give_data_dir(srv)
            with socket.socket(socket.AF_UNIX) as a:
                a.settimeout(10)
                a.connect(os.path.join(srv.data_dir, "admin.sock"))
                a.sendall(b'{"cmd":"reload"}\n')
                answer = b""
                while True:
                    chunk = a.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
            self.assertEqual(json.loads(answer.decode().splitlines()[0]), {"ok": True})
            self.assertNotEqual(fingerprint(srv), before)

    def test_sighup_with_broken_certificate_keeps_the_old_one(self):
        with server() as srv:
            before = fingerprint(srv)
            with open(srv.cafile, "w") as f:
                f.write("not a certificate\n")
            srv.reload()
            wait_for_log(srv, "reload failed")
            self.assertIsNone(srv.proc.poll())
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with tls(srv, ctx) as s:
                self.assertEqual(hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest(),
                                 before)
            self.assertIn("reload failed", srv.log())

    def test_sigterm_stops_cleanly(self):
        with server() as srv:
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("220"))
                self.assertEqual(srv.stop(), 0)
                self.assertIsNone(read_line(s))
            self.assertIn("ready", srv.log())
            self.assertIn("stopped", srv.log())


class Privileges(unittest.TestCase):
    @unittest.skipUnless(RUN_AS, "needs root")
    def test_root_switches_to_configured_user(self):
        with server() as srv:
            with open("/proc/%d/status" % srv.pid) as f:
                ids = {line.split(":")[0]: line.split()[1:] for line in f
                       if line.startswith(("Uid:", "Gid:", "Groups:"))}
            pw = pwd.getpwnam(RUN_AS)
            self.assertEqual(ids["Uid"], [str(pw.pw_uid)] * 4)
            self.assertEqual(ids["Gid"], [str(pw.pw_gid)] * 4)
            self.assertNotIn("0", ids["Groups"])
            with plain(srv) as s:
                self.assertTrue(read_line(s).startswith("220"))

    @unittest.skipUnless(RUN_AS, "needs root")
    def test_root_refuses_a_missing_user(self):
        srv = Server(listeners=LISTENERS, config={"server": {"user": "no-such-postern-user"}},
                     start=False)
        try:
            with self.assertRaises(RuntimeError) as cm:
                srv.start()
            self.assertIn("no-such-postern-user", str(cm.exception))
            self.assertEqual(srv.proc.returncode, 1)
        finally:
            srv.close()


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
        srv = Server(listeners=LISTENERS, start=False,
                     config={"server": {"user": RUN_AS}} if RUN_AS else None)
        try:
            res = subprocess.run([program("posternd"), "-c", srv.config_path, "--check-config"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("OK", res.stdout)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()

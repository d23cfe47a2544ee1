#!/usr/bin/env python3
"""Trace, metrics and the admin socket against a real posternd.

`posternctl trace --follow --json` must show a whole session (connect, TLS,
commands, replies, login, disconnect) with every credential redacted: the
password never appears, in clear or base64. `posternctl status --json`
reports the uptime, and GET /metrics shows counters that moved.
"""

import base64
import json
import os
import poplib
import pwd
import queue
import re
import smtplib
import stat
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import Server, program

# posternd started as root drops to [server] user; tests running as root use "nobody".
RUN_AS = "nobody" if os.getuid() == 0 else None

# Cheap Argon2id so the suite does not spend its time hashing.
FAST_AUTH = {"argon2_ops": "1", "argon2_mem": "8M"}

DOMAIN = "trace.example.org"
USER = "alice@" + DOMAIN
PASSWORD = "Tr4ce-S3cret-horse-battery"


def secret_forms(user, password):
    """Every way the password could leak into a trace line."""
    plain = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    return [password, base64.b64encode(password.encode()).decode(), plain]


class TraceReader:
    """Runs `posternctl trace` and collects its lines from a thread."""

    def __init__(self, srv, *args):
        self.proc = subprocess.Popen(
            [program("posternctl"), "-c", srv.config_path, "trace", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.all = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate, timeout=20):
        """Returns the first parsed event that satisfies PREDICATE."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError("posternctl trace ended early: %s" %
                                         self.proc.stderr.read())
                continue
            self.all.append(line)
            event = json.loads(line)
            if predicate(event):
                return event
        raise AssertionError("no matching trace event within %ss; saw:\n%s" %
                             (timeout, "\n".join(self.all[-50:])))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
        self.thread.join(5)
        while not self.lines.empty():
            self.all.append(self.lines.get())


def pop3_session(srv, password=PASSWORD):
    client = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=20)
    client.stls(srv.ssl_context())
    client.user(USER)
    client.pass_(password)
    client.stat()
    client.quit()


def metric_value(text, name, **labels):
    """Value of the sample NAME{LABELS} in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                m.group(3) or ""))
        if found == labels:
            return float(m.group(4))
    return None


def start_server(listeners):
    """A started Server with the test user that also works when run as root."""
    config = {"auth": dict(FAST_AUTH)}
    if RUN_AS:
        config["server"] = {"user": RUN_AS}
    srv = Server(listeners=listeners, config=config, start=False)
    try:
        srv.add_domain(DOMAIN)
        srv.add_user(USER, PASSWORD)
        if RUN_AS:
            pw = pwd.getpwnam(RUN_AS)
            for root, dirs, files in os.walk(srv.data_dir):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.lchown(name, pw.pw_uid, pw.pw_gid)
        srv.start()
        # Listeners accept before the admin socket exists (it is created
        # after privileges are dropped): wait for it too.
        sock = os.path.join(srv.data_dir, "admin.sock")
        deadline = time.monotonic() + 15
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                raise RuntimeError("no admin socket:\n" + srv.log())
            time.sleep(0.05)
    except Exception:
        srv.close()
        raise
    return srv


class TraceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(("pop3", "submission"))

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_admin_socket_is_private(self):
        st = os.lstat(os.path.join(self.srv.data_dir, "admin.sock"))
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

    def test_follow_shows_pop3_session_with_password_redacted(self):
        reader = TraceReader(self.srv, "--follow", "--json")
        try:
            pop3_session(self.srv)
            user_cmd = reader.wait_for(
                lambda e: e["kind"] == "command" and e["text"] == "USER " + USER)
            session = user_cmd["session"]
            self.assertEqual(user_cmd["protocol"], "pop3")
            reader.wait_for(lambda e: e["session"] == session and e["kind"] == "disconnect")
        finally:
            reader.stop()
        events = [json.loads(line) for line in reader.all]
        mine = [e for e in events if e["session"] == session]
        kinds = [e["kind"] for e in mine]
        for kind in ("connect", "tls", "command", "reply", "auth", "disconnect"):
            self.assertIn(kind, kinds)
        self.assertEqual(kinds[0], "connect")
        self.assertEqual(kinds[-1], "disconnect")
        self.assertIn("127.0.0.1", mine[0]["text"])
        tls = [e for e in mine if e["kind"] == "tls"][0]
        self.assertRegex(tls["text"], r"TLSv1\.[23]")
        commands = [e["text"] for e in mine if e["kind"] == "command"]
        self.assertIn("PASS ***", commands)
        self.assertIn("STLS", commands)
        auth = [e for e in mine if e["kind"] == "auth"][0]
        self.assertEqual(auth["text"], "ok")
        self.assertEqual(auth["user"], USER)
        self.assertTrue(any(e["kind"] == "reply" and e["text"].startswith("+OK") for e in mine))
        output = "\n".join(reader.all)
        for secret in secret_forms(USER, PASSWORD):
            self.assertNotIn(secret, output)

    def test_follow_redacts_smtp_auth_plain(self):
        reader = TraceReader(self.srv, "--follow", "--json", "--protocol", "submission")
        try:
            client = smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=20)
            client.starttls(context=self.srv.ssl_context())
            client.ehlo("trace-test.example")
            client.login(USER, PASSWORD)
            client.quit()
            auth = reader.wait_for(lambda e: e["kind"] == "command"
                                   and e["text"].upper().startswith("AUTH"))
            # smtplib sends PLAIN with an initial response: it must be hidden.
            self.assertEqual(auth["text"], "AUTH PLAIN ***")
            login = reader.wait_for(lambda e: e["session"] == auth["session"]
                                    and e["kind"] == "auth")
            self.assertEqual(login["text"], "ok")
            self.assertEqual(login["user"], USER)
            reader.wait_for(lambda e: e["session"] == auth["session"]
                            and e["kind"] == "disconnect")
        finally:
            reader.stop()
        output = "\n".join(reader.all)
        for secret in secret_forms(USER, PASSWORD):
            self.assertNotIn(secret, output)
        for line in reader.all:
            self.assertEqual(json.loads(line)["protocol"], "submission")

    def test_history_filters_and_human_output(self):
        pop3_session(self.srv)
        res = self.srv.ctl("trace", "--json", "--protocol", "pop3")
        events = [json.loads(line) for line in res.stdout.splitlines()]
        self.assertTrue(events)
        self.assertTrue(all(e["protocol"] == "pop3" for e in events))
        self.assertIn("USER " + USER, [e["text"] for e in events])

        res = self.srv.ctl("trace")
        self.assertRegex(res.stdout, r"(?m)^\d\d:\d\d:\d\d\.\d{3} pop3#\d+ \S+  C: PASS \*\*\*$")
        self.assertNotIn(PASSWORD, res.stdout)

        # The user filter matches case-insensitively and keeps the session.
        res = self.srv.ctl("trace", "--user", USER.upper())
        self.assertRegex(res.stdout, r"\d\d:\d\d:\d\d\.\d{3} pop3#\d+ %s  S: \+OK" %
                         re.escape(USER))
        self.assertNotIn(PASSWORD, res.stdout)

    def test_trace_bad_arguments_and_unreachable_daemon(self):
        res = self.srv.ctl("trace", "--protocol", "gopher", check=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("gopher", res.stderr)
        res = self.srv.ctl("trace", "--bogus", check=False)
        self.assertEqual(res.returncode, 2)

        # A config whose admin socket nobody listens on.
        other = os.path.join(self.srv.data_dir, "unreachable.conf")
        with open(self.srv.config_path) as f:
            text = f.read()
        missing = os.path.join(self.srv.data_dir, "nobody-here.sock")
        text = re.sub(r"(?m)^admin_socket = .*$", "admin_socket = " + missing, text)
        with open(other, "w") as f:
            f.write(text)
        res = subprocess.run([program("posternctl"), "-c", other, "trace"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 7)
        self.assertIn(missing, res.stderr)

    def test_status_reports_uptime(self):
        res = self.srv.ctl("status", "--json")
        daemon = json.loads(res.stdout)["daemon"]
        self.assertTrue(daemon["running"], res.stdout)
        self.assertEqual(daemon["pid"], self.srv.pid)
        self.assertIsInstance(daemon["uptime"], int)
        self.assertGreaterEqual(daemon["uptime"], 0)
        self.assertLess(daemon["uptime"], 3600)
        self.assertIsInstance(daemon["connections"], dict)

    def test_metrics_counters_move(self):
        url = "http://127.0.0.1:%d/metrics" % self.srv.metrics_port

        def scrape():
            with urllib.request.urlopen(url, timeout=10) as r:
                self.assertEqual(r.status, 200)
                self.assertIn("text/plain", r.headers["Content-Type"])
                return r.read().decode()

        before = scrape()
        pop3_session(self.srv)
        deadline = time.monotonic() + 10
        while True:
            after = scrape()
            closed = metric_value(after, "postern_connections_active", protocol="pop3")
            if closed == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)

        def moved(name, **labels):
            b = metric_value(before, name, **labels) or 0
            a = metric_value(after, name, **labels)
            self.assertIsNotNone(a, "%s%s missing:\n%s" % (name, labels, after))
            self.assertGreater(a, b, "%s%s did not move" % (name, labels))

        moved("postern_connections_total", protocol="pop3")
        moved("postern_commands_total", protocol="pop3", command="USER")
        moved("postern_command_duration_seconds_count", protocol="pop3", command="STAT")
        self.assertIsNotNone(metric_value(after, "process_resident_memory_bytes"))
        self.assertGreater(metric_value(after, "postern_uptime_seconds"), 0)

        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url.replace("/metrics", "/nothing"), timeout=10)
        self.assertEqual(cm.exception.code, 404)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"),
                                   timeout=10)
        self.assertEqual(cm.exception.code, 405)


class TraceDaemonStopTest(unittest.TestCase):
    def test_follow_ends_when_the_daemon_stops(self):
        srv = start_server(("pop3",))
        self.addCleanup(srv.close)
        reader = TraceReader(srv, "--follow", "--json", "--protocol", "pop3")
        try:
            pop3_session(srv)
            reader.wait_for(lambda e: e["kind"] == "disconnect")
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(reader.proc.wait(15), 0)
            # The daemon removed its socket on the way out.
            self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "admin.sock")))
        finally:
            reader.stop()
        res = srv.ctl("trace", check=False)
        self.assertEqual(res.returncode, 7)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Login security with real clients: password+TOTP (codes from oathtool, an
independent implementation), replayed codes, recovery codes, app passwords
and their protocol scopes, failure throttling and its expiry, the audit log,
and identical replies for unknown users and wrong passwords."""
import http.server
import imaplib
import json
import poplib
import threading
import smtplib
import subprocess
import time
import unittest

from harness import Server, program, demote

PASSWORD = "correct horse battery"
DELAY_MS = 50
FAST_AUTH = {"failure_delay_ms": str(DELAY_MS), "argon2_mem": "8M", "argon2_ops": "1",
             "cache_ttl": "0"}


def oathtool(secret, offset=0):
    """The TOTP code of SECRET (base32) at now + OFFSET seconds, from oathtool."""
    when = "now %+d seconds" % offset if offset else "now"
    res = subprocess.run(["oathtool", "--totp", "-b", "-N", when, secret],
                         capture_output=True, text=True, check=True)
    return res.stdout.strip()


def tls_context(srv):
    ctx = srv.ssl_context()
    ctx.check_hostname = False
    return ctx


class LoginSecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("submission", "pop3", "imap"), config={"auth": FAST_AUTH})
        cls.srv.add_domain("example.org")
        for user in ("alice", "bob", "carol", "dave", "erin", "gina"):
            cls.srv.add_user("%s@example.org" % user, PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    # ---- clients ----
    def smtp_login(self, user, password):
        """None on success, else the SMTP reply code."""
        s = smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=30)
        try:
            s.starttls(context=tls_context(self.srv))
            s.login(user, password)
            return None
        except smtplib.SMTPAuthenticationError as e:
            return (e.smtp_code, e.smtp_error)
        except smtplib.SMTPResponseException as e:
            return (e.smtp_code, e.smtp_error)
        finally:
            s.close()

    def pop_login(self, user, password):
        """None on success, else the -ERR line (bytes)."""
        p = poplib.POP3("127.0.0.1", self.srv.port("pop3"), timeout=30)
        try:
            p.stls(context=tls_context(self.srv))
            p.user(user)
            p.pass_(password)
            p.quit()
            return None
        except poplib.error_proto as e:
            return e.args[0]
        finally:
            p.close()

    def imap_login(self, user, password):
        """None on success, else the tagged NO/BAD text (str)."""
        m = imaplib.IMAP4("127.0.0.1", self.srv.port("imap"), timeout=30)
        try:
            m.starttls(ssl_context=tls_context(self.srv))
            m.login(user, password)
            m.logout()
            return None
        except imaplib.IMAP4.error as e:
            return str(e)
        finally:
            try:
                m.shutdown()
            except OSError:
                pass

    def pop_messages(self, user, password):
        """Every message of USER's INBOX over POP3 (bytes)."""
        p = poplib.POP3("127.0.0.1", self.srv.port("pop3"), timeout=30)
        try:
            p.stls(context=tls_context(self.srv))
            p.user(user)
            p.pass_(password)
            count = p.stat()[0]
            msgs = [b"\r\n".join(p.retr(i + 1)[1]) for i in range(count)]
            p.quit()
            return msgs
        finally:
            p.close()

    def enroll(self, user, offset=-30):
        """Enrolls USER, confirming with the code at now+OFFSET; returns (secret, recovery codes)."""
        proc = subprocess.Popen([program("posternctl"), "-c", self.srv.config_path, "otp",
                                 "enroll", user], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=demote)
        secret = None
        for line in proc.stdout:
            if line.startswith("Secret: "):
                secret = line.split(":", 1)[1].strip()
            if line.startswith("URI: "):
                self.assertIn("otpauth://totp/Postern:%s" % user.replace("@", "%40"), line)
                self.assertIn("secret=" + secret, line)
                break
        self.assertIsNotNone(secret)
        out, err = proc.communicate(oathtool(secret, offset) + "\n", timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        codes = [l.strip() for l in out.splitlines() if l.startswith("  ")]
        self.assertEqual(len(codes), 10, out)
        return secret, codes

    def audit(self, user):
        res = self.srv.ctl("audit", "--user", user, "--json")
        return [r for r in json.loads(res.stdout) if r["event"] == "auth.login"]

    # ---- tests ----
    def test_totp_code_after_password_and_no_replay(self):
        user = "alice@example.org"
        secret, _ = self.enroll(user)
        status = json.loads(self.srv.ctl("otp", "status", user, "--json").stdout)
        self.assertTrue(status["totp"])
        self.assertEqual(status["recovery_codes_left"], 10)
        # The password alone no longer logs in, on any protocol.
        self.assertIsNotNone(self.pop_login(user, PASSWORD))
        self.assertEqual(self.smtp_login(user, PASSWORD)[0], 535)
        code = oathtool(secret)
        self.assertIsNone(self.smtp_login(user, PASSWORD + code))
        # The same code again is refused (the step was used), here on POP3.
        self.assertIsNotNone(self.pop_login(user, PASSWORD + code))
        # The next step's code (inside the ±1 window) is accepted once.
        code = oathtool(secret, 30)
        self.assertIsNone(self.pop_login(user, PASSWORD + code))
        self.assertIsNotNone(self.pop_login(user, PASSWORD + code))
        # A right code after a wrong password is refused.
        self.assertIsNotNone(self.pop_login(user, "wrong password" + oathtool(secret, 30)))
        rows = self.audit(user)
        self.assertTrue(any(r["result"] == "ok" and r["method"] == "password+totp"
                            for r in rows), rows)
        self.srv.ctl("auth", "unblock", user)

    def test_totp_on_imap(self):
        user = "gina@example.org"
        secret, _ = self.enroll(user)
        self.assertIsNotNone(self.imap_login(user, PASSWORD))
        code = oathtool(secret)
        self.assertIsNone(self.imap_login(user, PASSWORD + code))
        self.assertIsNotNone(self.imap_login(user, PASSWORD + code))
        self.srv.ctl("auth", "unblock", user)

    def test_recovery_code_works_once(self):
        user = "bob@example.org"
        _, codes = self.enroll(user)
        self.assertIsNone(self.pop_login(user, PASSWORD + codes[0]))
        self.assertIsNotNone(self.pop_login(user, PASSWORD + codes[0]))
        status = json.loads(self.srv.ctl("otp", "status", user, "--json").stdout)
        self.assertEqual(status["recovery_codes_left"], 9)
        # disable: the password alone logs in again.
        self.srv.ctl("otp", "disable", user)
        self.assertIsNone(self.pop_login(user, PASSWORD))
        self.assertFalse(json.loads(self.srv.ctl("otp", "status", user, "--json").stdout)["totp"])
        self.srv.ctl("auth", "unblock", user)

    def test_enroll_without_a_valid_code_changes_nothing(self):
        res = self.srv.ctl("otp", "enroll", "erin@example.org", input="000000\n", check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("otpauth://", res.stdout)
        self.assertIsNone(self.pop_login("erin@example.org", PASSWORD))
        res = self.srv.ctl("otp", "enroll", "nobody@example.org", input="000000\n", check=False)
        self.assertEqual(res.returncode, 3)

    def test_app_password_scopes(self):
        user = "carol@example.org"
        self.enroll(user)
        res = self.srv.ctl("app-password", "add", user, "phone", "--protocols", "pop3",
                           "--json", input=PASSWORD + "\n")
        app = json.loads(res.stdout)
        self.assertEqual(app["protocols"], "pop3")
        # Wrong user password: nothing is created.
        res = self.srv.ctl("app-password", "add", user, "tablet", input="nope\n", check=False)
        self.assertEqual(res.returncode, 1)
        # The app password logs in without a code where allowed, and opens the mailbox.
        self.assertIsNone(self.pop_login(user, app["password"]))
        # SMTP and IMAP are not in its scope.
        self.assertEqual(self.smtp_login(user, app["password"])[0], 535)
        self.assertIsNotNone(self.imap_login(user, app["password"]))
        # Enrolment and the new app password each left a notice in the INBOX.
        subjects = [m.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0]
                    for m in self.pop_messages(user, app["password"])]
        self.assertIn(b"Security notice: one-time codes turned on", subjects)
        self.assertIn(b"Security notice: new app password", subjects)
        listed = json.loads(self.srv.ctl("app-password", "list", user, "--json").stdout)
        self.assertEqual([a["name"] for a in listed], ["phone"])
        self.assertEqual(listed[0]["last_ip"], "127.0.0.1")
        self.assertGreater(listed[0]["last_used"], 0)
        self.assertNotIn(app["password"], json.dumps(listed))
        self.srv.ctl("app-password", "revoke", user, "phone")
        self.assertIsNotNone(self.pop_login(user, app["password"]))
        self.assertEqual(self.srv.ctl("app-password", "revoke", user, "phone",
                                      check=False).returncode, 3)
        self.srv.ctl("auth", "unblock", user)

    def test_unknown_user_and_wrong_password_get_the_same_reply(self):
        smtp_wrong = self.smtp_login("dave@example.org", "not the password")
        smtp_unknown = self.smtp_login("nobody@example.org", "not the password")
        self.assertEqual(smtp_wrong, smtp_unknown)
        self.assertEqual(smtp_wrong[0], 535)
        pop_wrong = self.pop_login("dave@example.org", "not the password")
        pop_unknown = self.pop_login("nobody@example.org", "not the password")
        self.assertEqual(pop_wrong, pop_unknown)
        imap_wrong = self.imap_login("dave@example.org", "not the password")
        imap_unknown = self.imap_login("nobody@example.org", "not the password")
        self.assertEqual(imap_wrong, imap_unknown)
        self.srv.ctl("auth", "unblock", "dave@example.org")

    def test_throttling_kicks_in_expires_and_unblocks(self):
        user = "dave@example.org"
        self.srv.ctl("auth", "unblock", user)
        for _ in range(4):
            self.assertTrue(self.pop_login(user, "guess").startswith(b"-ERR"))
        # Now even the right password gets the temporary-failure reply.
        self.assertTrue(self.pop_login(user, PASSWORD).startswith(b"-ERR [SYS/TEMP]"))
        self.assertEqual(self.smtp_login(user, PASSWORD)[0], 454)
        self.assertIn("[UNAVAILABLE]", self.imap_login(user, PASSWORD))
        blocks = json.loads(self.srv.ctl("auth", "blocks", "--json").stdout)
        self.assertIn(user, [b["address"] for b in blocks])
        # The wait after the 4th failure is one second (whole seconds, so at most two);
        # then a success clears it.
        time.sleep(2.1)
        self.assertIsNone(self.pop_login(user, PASSWORD))
        blocks = json.loads(self.srv.ctl("auth", "blocks", "--json").stdout)
        self.assertNotIn(user, [b["address"] for b in blocks])
        # Again, and this time the admin clears it.
        for _ in range(4):
            self.pop_login(user, "guess")
        self.assertTrue(self.pop_login(user, PASSWORD).startswith(b"-ERR [SYS/TEMP]"))
        self.srv.ctl("auth", "unblock", user)
        self.assertIsNone(self.pop_login(user, PASSWORD))
        rows = self.audit(user)
        self.assertIn("throttled", [r["result"] for r in rows])

    def test_audit_rows_have_the_facts_and_no_secret(self):
        user = "erin@example.org"
        self.assertIsNone(self.pop_login(user, PASSWORD))
        self.assertIsNotNone(self.smtp_login(user, "bad secret 42"))
        rows = self.audit(user)
        ok = [r for r in rows if r["result"] == "ok" and r["protocol"] == "pop3"]
        bad = [r for r in rows if r["result"] == "failed" and r["protocol"] == "smtp"]
        self.assertTrue(ok, rows)
        self.assertTrue(bad, rows)
        self.assertEqual(ok[-1]["ip"], "127.0.0.1")
        self.assertEqual(ok[-1]["method"], "password")
        self.assertEqual(bad[-1]["reason"], "wrong password")
        text = self.srv.ctl("audit", "--json").stdout
        self.assertNotIn(PASSWORD, text)
        self.assertNotIn("bad secret 42", text)
        future = self.srv.ctl("audit", "--user", user, "--since", str(int(time.time()) + 3600),
                              "--json")
        self.assertEqual(json.loads(future.stdout), [])
        for since in ("1h", "2020-01-01", "2020-01-01T00:00:00Z"):
            rows = json.loads(self.srv.ctl("audit", "--user", user, "--since", since,
                                           "--json").stdout)
            self.assertTrue(rows, since)
        for since in ("2099-01-01", "2099-01-01T10:30"):
            rows = json.loads(self.srv.ctl("audit", "--user", user, "--since", since,
                                           "--json").stdout)
            self.assertEqual(rows, [], since)
        for bad in ("yesterday-ish", "2020-13-45", "5x", "2020-01-01T25:00"):
            self.assertEqual(self.srv.ctl("audit", "--since", bad, check=False).returncode, 2,
                             bad)
        self.srv.ctl("auth", "unblock", user)


class AddressThrottleTest(unittest.TestCase):
    """Failures from one client address across many accounts."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("pop3",), config={"auth": FAST_AUTH})
        cls.srv.add_domain("example.org")
        cls.srv.add_user("hank@example.org", PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    pop_login = LoginSecurityTest.pop_login

    def test_address_throttle_spans_accounts_and_unblock_clears_it(self):
        # 30 failures from 127.0.0.1 on different (unknown) accounts are free...
        for i in range(30):
            self.assertTrue(self.pop_login("u%d@example.org" % i, "guess").startswith(
                b"-ERR [AUTH]"))
        self.assertIsNone(self.pop_login("hank@example.org", PASSWORD))
        # ...the next one makes this address wait, whichever account it tries.
        self.pop_login("u99@example.org", "guess")
        self.assertTrue(self.pop_login("hank@example.org", PASSWORD).startswith(
            b"-ERR [SYS/TEMP]"))
        # "auth blocks" asks the daemon for the client addresses it holds back.
        blocks = json.loads(self.srv.ctl("auth", "blocks", "--json").stdout)
        self.assertNotIn("hank@example.org", [b["address"] for b in blocks])
        ips = [b for b in blocks if b["kind"] == "ip"]
        self.assertEqual([b["address"] for b in ips], ["127.0.0.1"])
        self.assertEqual(ips[0]["failures"], 31)
        self.assertGreater(ips[0]["retry_at"], 0)
        self.assertIn("127.0.0.1", self.srv.ctl("auth", "blocks").stdout)
        self.srv.ctl("auth", "unblock", "127.0.0.1")
        blocks = json.loads(self.srv.ctl("auth", "blocks", "--json").stdout)
        self.assertEqual([b for b in blocks if b["kind"] == "ip"], [])
        self.assertIsNone(self.pop_login("hank@example.org", PASSWORD))
        rows = json.loads(self.srv.ctl("audit", "--json").stdout)
        self.assertIn(("auth.unblock", "127.0.0.1"),
                      [(r["event"], r.get("detail")) for r in rows])


class Gateway(http.server.ThreadingHTTPServer):
    """A local SMS gateway that records every request."""

    def __init__(self):
        self.requests = []
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.cond:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "headers": dict(self.headers), "body": body})
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def wait_for(self, count, timeout=10):
        with self.cond:
            self.cond.wait_for(lambda: len(self.requests) >= count, timeout)
            self.assert_count = len(self.requests)
            return list(self.requests)


class SmsCodeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway()
        threading.Thread(target=cls.gw.serve_forever, daemon=True).start()
        sms = {"gateway_url": "http://127.0.0.1:%d/send?to={phone}" % cls.gw.server_port,
               "headers": "Authorization: Bearer t0ken | X-Test: yes",
               "body": '{"to":"{phone}","text":"code {code}"}',
               "content_type": "application/json", "timeout": "5"}
        cls.srv = Server(listeners=("pop3",), config={"auth": FAST_AUTH, "sms": sms})
        cls.srv.add_domain("example.org")
        cls.srv.add_user("frank@example.org", PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.gw.shutdown()
        cls.gw.server_close()

    pop_login = LoginSecurityTest.pop_login

    @staticmethod
    def code_of(request):
        return json.loads(request["body"])["text"].split()[-1]

    def test_sms_code_is_sent_on_password_alone_and_works_once(self):
        user = "frank@example.org"
        proc = subprocess.Popen([program("posternctl"), "-c", self.srv.config_path, "otp", "sms",
                                 user, "--phone", "+15550001111"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=demote)
        reqs = self.gw.wait_for(1)
        self.assertEqual(len(reqs), 1)
        first = reqs[0]
        self.assertEqual(first["method"], "POST")
        self.assertEqual(first["path"], "/send?to=%2B15550001111")
        self.assertEqual(first["headers"]["Authorization"], "Bearer t0ken")
        self.assertEqual(first["headers"]["X-Test"], "yes")
        self.assertEqual(first["headers"]["Content-Type"], "application/json")
        self.assertEqual(json.loads(first["body"])["to"], "+15550001111")
        out, err = proc.communicate(self.code_of(first) + "\n", timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        status = json.loads(self.srv.ctl("otp", "status", user, "--json").stdout)
        self.assertTrue(status["sms"])
        self.assertEqual(status["phone"], "+15550001111")

        wrong = self.pop_login(user, "not the password")
        self.assertEqual(len(self.gw.wait_for(2, timeout=1)), 1)  # no SMS for a wrong password
        # The right password alone fails exactly like a wrong one, and sends a code.
        self.assertEqual(self.pop_login(user, PASSWORD), wrong)
        reqs = self.gw.wait_for(2)
        self.assertEqual(len(reqs), 2)
        code = self.code_of(reqs[1])
        self.assertRegex(code, r"^[0-9]{6}$")
        self.assertIsNone(self.pop_login(user, PASSWORD + code))
        self.assertIsNotNone(self.pop_login(user, PASSWORD + code))  # single use
        # A second request within a minute is rate-limited: no new SMS.
        self.assertEqual(self.pop_login(user, PASSWORD), wrong)
        self.assertEqual(len(self.gw.wait_for(3, timeout=1.5)), 2)
        self.assertNotIn(code, self.srv.log())
        rows = json.loads(self.srv.ctl("audit", "--user", user, "--json").stdout)
        self.assertIn("password+sms", [r.get("method") for r in rows if r.get("result") == "ok"])


class SmsReloadTest(unittest.TestCase):
    """[sms] is read again on SIGHUP: codes go to the gateway configured now."""

    def setUp(self):
        self.old_gw, self.new_gw = Gateway(), Gateway()
        for gw in (self.old_gw, self.new_gw):
            threading.Thread(target=gw.serve_forever, daemon=True).start()
            self.addCleanup(gw.server_close)
            self.addCleanup(gw.shutdown)
        self.srv = Server(listeners=("pop3",),
                          config={"auth": FAST_AUTH, "sms": self.gateway(self.old_gw)})
        self.addCleanup(self.srv.stop)
        self.srv.add_domain("example.org")
        self.srv.add_user("gail@example.org", PASSWORD)

    @staticmethod
    def gateway(gw):
        return {"gateway_url": "http://127.0.0.1:%d/send" % gw.server_port,
                "body": '{"to":"{phone}","text":"code {code}"}',
                "content_type": "application/json", "timeout": "5"}

    pop_login = LoginSecurityTest.pop_login

    def test_sighup_switches_the_sms_gateway(self):
        user = "gail@example.org"
        proc = subprocess.Popen([program("posternctl"), "-c", self.srv.config_path, "otp", "sms",
                                 user, "--phone", "+15550002222"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=demote)
        first = self.old_gw.wait_for(1)[0]
        out, err = proc.communicate(SmsCodeTest.code_of(first) + "\n", timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        # The gateway moves; posternd learns it from SIGHUP, without a restart.
        self.srv.overrides["sms"] = self.gateway(self.new_gw)
        self.srv._write_config()
        self.srv.reload()
        deadline = time.monotonic() + 10
        while "reloaded the SMS gateway settings" not in self.srv.log():
            self.assertLess(time.monotonic(), deadline, self.srv.log())
            time.sleep(0.05)
        pid = self.srv.pid
        self.assertIsNotNone(self.pop_login(user, PASSWORD))  # sends a code, fails
        reqs = self.new_gw.wait_for(1)
        self.assertEqual(len(reqs), 1)
        self.assertEqual(len(self.old_gw.wait_for(2, timeout=1)), 1)
        code = SmsCodeTest.code_of(reqs[0])
        self.assertIsNone(self.pop_login(user, PASSWORD + code))
        self.assertEqual(self.srv.pid, pid)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""IMAP autologout timers with a short limits.idle_timeout (2 s): before
login it applies and ends the session with BYE; once authenticated the
timer is at least 30 minutes (RFC 9051 5.4), so an IDLE session (RFC 2177)
or a quiet selected session outlives it and still hears of new mail."""

import time
import unittest

from harness import Server
from test_imap import PASSWORD, Raw

CONFIG = {"auth": {"argon2_mem": "8M", "argon2_ops": "1", "failure_delay_ms": "200"},
          "limits": {"idle_timeout": "2"}}


class ImapTimeoutTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("imap", "imaps"), config=CONFIG)
        cls.srv.add_domain("example.org")
        cls.srv.add_user("idle@example.org", PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def raw(self, login=True):
        r = Raw(self.srv)
        self.addCleanup(r.close)
        if login:
            r.login("idle@example.org")
        return r

    def test_preauth_timeout_stays_short(self):
        r = self.raw(login=False)
        start = time.monotonic()
        self.assertEqual(r.line(timeout=10), b"* BYE Autologout; idle for too long")
        self.assertLess(time.monotonic() - start, 6)
        with self.assertRaises(EOFError):
            r.line(timeout=10)

    def test_idle_outlives_the_short_timeout(self):
        r = self.raw()
        r.cmd("SELECT INBOX")
        r.send(b"i1 IDLE\r\n")
        self.assertEqual(r.line(), b"+ idling")
        time.sleep(5)  # more than twice limits.idle_timeout
        # New mail (from another session: this test is about the timer, not
        # about what the scanner makes of a tiny message) still wakes it.
        other = self.raw()
        msg = b"From: a@example.net\r\nSubject: wake\r\n\r\nhi\r\n"
        _, tagged = other.cmd(b"APPEND INBOX {%d+}\r\n%s" % (len(msg), msg))
        self.assertIn(b" OK ", tagged)
        self.assertRegex(r.line(timeout=10), rb"^\* \d+ EXISTS$")
        r.send(b"DONE\r\n")
        self.assertEqual(r.until("i1")[1], b"i1 OK IDLE terminated")

    def test_authenticated_session_outlives_the_short_timeout(self):
        r = self.raw()
        time.sleep(5)
        lines, tagged = r.cmd("NOOP")
        self.assertIn(b" OK ", tagged)


if __name__ == "__main__":
    unittest.main()

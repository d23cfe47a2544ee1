#!/usr/bin/env python3
"""IMAP work that decrypts many messages does not hold the event loop: with
one network thread, a FETCH of many bodies is served in slices and SEARCH
BODY, SORT and THREAD run on the job pool, so another client's NOOP on the
same loop is answered before they finish - and their results are complete."""

import json
import time
import unittest

from harness import Server
from test_imap import PASSWORD, Raw

CONFIG = {"auth": {"argon2_mem": "8M", "argon2_ops": "1", "failure_delay_ms": "200"},
          "limits": {"max_message_size": "1M"}, "server": {"workers": "1"}}
COUNT = 480
BODY = b"".join(b"line %05d of a longish body to decrypt and send\r\n" % i for i in range(1200))


class ImapLoopTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("imaps",), config=CONFIG)
        cls.srv.add_domain("example.org")
        cls.srv.add_user("big@example.org", PASSWORD)
        r = Raw(cls.srv)
        r.login("big@example.org")
        for part in range(0, COUNT, 12):
            cmd = b"APPEND INBOX"
            for i in range(part, part + 12):
                msg = b"From: a@example.net\r\nSubject: big %d\r\n\r\n%sneedle-%d.\r\n" % (
                    i, BODY, i)
                cmd += b" {%d+}\r\n%s" % (len(msg), msg)
            _, tagged = r.cmd(cmd)
            assert b"[APPENDUID " in tagged, tagged
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def sessions(self):
        a, b = Raw(self.srv), Raw(self.srv)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.login("big@example.org")
        b.login("big@example.org")
        a.cmd("EXAMINE INBOX")
        return a, b

    def race(self, a, b, command):
        """Starts COMMAND on A, then NOOP on B; returns (the position of B's
        NOOP answer, that of A's tagged answer among the replies in the
        server's trace, A's untagged lines). The trace has the order in which
        the server answered; the arrival times the clients see do not, under
        load, where the client's threads run late."""
        a.send(b"big " + command + b"\r\n")
        time.sleep(0.005)
        b.send(b"n1 NOOP\r\n")
        _, tagged = b.until("n1")
        lines, a_tagged = a.until("big")
        self.assertIn(b" OK ", tagged)
        self.assertIn(b" OK ", a_tagged)
        out = self.srv.ctl("trace", "--json", "--protocol", "imap").stdout
        replies = [e["text"] for e in map(json.loads, filter(str.strip, out.splitlines()))
                   if e["kind"] == "reply"]
        noop = max(i for i, text in enumerate(replies) if text.startswith("n1 "))
        done = max(i for i, text in enumerate(replies) if text.startswith("big "))
        return noop, done, lines

    def test_fetch_of_many_bodies_is_sliced(self):
        a, b = self.sessions()
        # Every message is decrypted and parsed; the answer is short.
        noop, done, lines = self.race(a, b, b"FETCH 1:* (BINARY.SIZE[1])")
        self.assertEqual(sum(1 for l in lines if l.startswith(b"* ") and b" FETCH (" in l), COUNT)
        self.assertIn(b"* 2 FETCH (BINARY.SIZE[1] %d)" % (len(BODY) + len(b"needle-1.\r\n")),
                      lines)
        self.assertLess(noop, done)

    def test_search_body_runs_on_the_job_pool(self):
        a, b = self.sessions()
        noop, done, lines = self.race(a, b, b"SEARCH BODY needle-17.")
        self.assertEqual(lines, [b"* SEARCH 18"])
        self.assertLess(noop, done)

    def test_sort_and_thread_run_on_the_job_pool(self):
        a, b = self.sessions()
        noop, done, lines = self.race(a, b, b"SORT (REVERSE SUBJECT) UTF-8 ALL")
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith(b"* SORT 100 99 "), lines[0][:40])  # "big 99" first
        self.assertLess(noop, done)
        noop, done, lines = self.race(a, b, b"THREAD REFERENCES UTF-8 ALL")
        self.assertEqual(lines[0].count(b"("), COUNT)
        self.assertLess(noop, done)


if __name__ == "__main__":
    unittest.main()

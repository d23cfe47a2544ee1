#!/usr/bin/env python3
"""IMAP over huge and deeply nested MIME structures: a 12,000-part message
and one nested 200 levels deep are stored, and FETCH BODYSTRUCTURE, body
sections and SEARCH BODY answer OK in bounded time and memory (at most
10,000 parts and 32 levels are broken down, as docs/imap.md says)."""

import re
import time
import unittest

from test_imap import ImapBase


def many_parts(n):
    out = [b"From: a@example.net\r\nSubject: many\r\n"
           b"Content-Type: multipart/mixed; boundary=p\r\n\r\n"]
    out += [b"--p\r\n\r\npart %d\r\n" % i for i in range(n)]
    out.append(b"--p--\r\n")
    return b"".join(out)


def deep(levels):
    head = b"From: a@example.net\r\nSubject: deep\r\n"
    body = b""
    for i in range(levels):
        body += b"Content-Type: multipart/mixed; boundary=\"l%d\"\r\n\r\n--l%d\r\n" % (i, i)
    body += b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for i in reversed(range(levels)):
        body += b"--l%d--\r\n" % i
    return head + body


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ImapMimeLimitsTest(ImapBase):

    def fetch_literal(self, r, command):
        """Sends COMMAND; returns (first line, literal bytes, tagged line)."""
        r.n += 1
        tag = "f%d" % r.n
        r.send(("%s %s\r\n" % (tag, command)).encode())
        first = r.line(timeout=60)
        size = int(re.search(rb"\{(\d+)\}$", first).group(1))
        while len(r.buf) < size:
            r.buf += r.sock.recv(65536)
        data, r.buf = r.buf[:size], r.buf[size:]
        _, tagged = r.until(tag)
        return first, data, tagged

    def test_ten_thousand_parts(self):
        r = self.raw(self.new_user())
        msg = many_parts(12000)
        _, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        self.assertIn(b"[APPENDUID ", tagged)
        r.cmd("SELECT INBOX")
        start = time.monotonic()
        lines, tagged = r.cmd("FETCH 1 (BODYSTRUCTURE)")
        self.assertLess(time.monotonic() - start, 20)
        self.assertIn(b" OK ", tagged)
        text = b"\n".join(lines)
        parts = text.count(b'("TEXT" "PLAIN"')
        self.assertGreaterEqual(parts, 9000)
        self.assertLessEqual(parts, 10000)
        _, data, tagged = self.fetch_literal(r, "FETCH 1 (BODY.PEEK[9000])")
        self.assertEqual(data, b"part 8999")
        self.assertIn(b" OK ", tagged)
        lines, tagged = r.cmd("FETCH 1 (BODY.PEEK[10001])")
        self.assertEqual(lines, [b'* 1 FETCH (BODY[10001] "")'])
        lines, tagged = r.cmd('SEARCH BODY "part 8999"')
        self.assertEqual(lines, [b"* SEARCH 1"])
        self.assertLess(rss_kb(self.srv.pid), 400 * 1024)

    def test_deep_nesting(self):
        r = self.raw(self.new_user())
        msg = deep(200)
        _, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        self.assertIn(b"[APPENDUID ", tagged)
        r.cmd("SELECT INBOX")
        lines, tagged = r.cmd("FETCH 1 (BODYSTRUCTURE ENVELOPE)")
        self.assertIn(b" OK ", tagged)
        depth = best = 0
        for ch in b"".join(lines):
            if ch == ord("("):
                depth += 1
                best = max(best, depth)
            elif ch == ord(")"):
                depth -= 1
        self.assertEqual(depth, 0)
        self.assertLess(best, 80)  # 32 levels of multipart and their lists
        _, data, tagged = self.fetch_literal(r, "FETCH 1 (BODY.PEEK[TEXT]<0.20>)")
        self.assertEqual(data, b"--l0\r\nContent-Type: ")
        lines, tagged = r.cmd('SEARCH TEXT "innermost"')
        self.assertEqual(lines, [b"* SEARCH 1"])


if __name__ == "__main__":
    unittest.main()

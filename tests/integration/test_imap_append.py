#!/usr/bin/env python3
"""IMAP APPEND beyond one message: MULTIAPPEND (RFC 3502, all or none,
APPENDUID with a UID set) and APPENDLIMIT (RFC 7889: advertised, STATUS
APPENDLIMIT, a literal over the limit refused with NO [TOOBIG] before it
is sent, or skipped when non-synchronizing)."""

import re
import unittest

from test_imap import ImapBase, SIMPLE


def message(i, size=0):
    return (b"From: a@example.net\r\nSubject: multi %d\r\n\r\nbody %d\r\n" % (i, i)
            + b"x" * size)


class ImapAppendTest(ImapBase):

    def test_capabilities(self):
        r = self.raw(self.new_user())
        lines, _ = r.cmd("CAPABILITY")
        self.assertIn(b" MULTIAPPEND ", lines[0])
        self.assertIn(b" APPENDLIMIT=1048576", lines[0])
        lines, _ = r.cmd("STATUS INBOX (APPENDLIMIT MESSAGES)")
        self.assertEqual(lines, [b'* STATUS "INBOX" (APPENDLIMIT 1048576 MESSAGES 0)'])

    def test_multiappend_stores_all(self):
        user = self.new_user()
        r = self.raw(user)
        m1, m2, m3 = message(1), message(2), message(3)
        lines, tagged = r.cmd(b"APPEND Drafts (\\Seen) {%d+}\r\n%s "
                              b"(\\Flagged $Todo) \"05-Feb-2024 10:00:00 +0100\" {%d+}\r\n%s "
                              b"{%d+}\r\n%s" % (len(m1), m1, len(m2), m2, len(m3), m3))
        uidvalidity = int(re.search(rb"\[APPENDUID (\d+) 1:3\] APPEND completed", tagged).group(1))
        lines, _ = r.cmd("STATUS Drafts (UIDVALIDITY MESSAGES)")
        self.assertEqual(lines, [b'* STATUS "Drafts" (UIDVALIDITY %d MESSAGES 3)' % uidvalidity])
        r.cmd("EXAMINE Drafts")
        lines, _ = r.cmd("FETCH 1:3 (UID FLAGS INTERNALDATE)")
        self.assertIn(b"* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE ", lines[0])
        self.assertIn(b"FLAGS (\\Flagged $Todo) INTERNALDATE \"05-Feb-2024 09:00:00 +0000\"",
                      lines[1])
        self.assertIn(b"UID 3 FLAGS () ", lines[2])
        m = self.client(user)
        m.select("Drafts", readonly=True)
        for i, want in enumerate((m1, m2, m3), 1):
            self.assertEqual(m.fetch(str(i), "(BODY.PEEK[])")[1][0][1], want)

    def test_multiappend_is_all_or_none(self):
        user = self.new_user()
        self.srv.ctl("quota", "set", user, "3K", check=True)
        r = self.raw(user)
        small, big = message(1), message(2, 3000)
        # The second message does not fit: the first is not kept either.
        lines, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s"
                              % (len(small), small, len(big), big))
        self.assertIn(b"NO [OVERQUOTA]", tagged)
        lines, _ = r.cmd("STATUS INBOX (MESSAGES UIDNEXT)")
        self.assertEqual(lines, [b'* STATUS "INBOX" (MESSAGES 0 UIDNEXT 1)'])
        # A bad second message fails the command before anything is stored.
        for bad in (b"APPEND INBOX {%d+}\r\n%s {0+}\r\n" % (len(small), small),
                    b"APPEND INBOX {%d+}\r\n%s (\\Bogus) {%d+}\r\n%s"
                    % (len(small), small, len(small), small),
                    b"APPEND INBOX {%d+}\r\n%s \"bad date\" {%d+}\r\n%s"
                    % (len(small), small, len(small), small)):
            _, tagged = r.cmd(bad)
            self.assertRegex(tagged, rb"^r\d+ (NO|BAD) ")
        lines, _ = r.cmd("STATUS INBOX (MESSAGES)")
        self.assertEqual(lines, [b'* STATUS "INBOX" (MESSAGES 0)'])
        _, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s"
                          % (len(small), small, len(small), small))
        self.assertIn(b"[APPENDUID ", tagged)
        self.assertIn(b" 1:2] ", tagged)

    def test_appendlimit_enforced(self):
        r = self.raw(self.new_user())
        # A synchronizing literal over the limit is refused before it is sent.
        r.send(b"a1 APPEND INBOX {1048577}\r\n")
        line = r.line()
        self.assertTrue(line.startswith(b"a1 NO [TOOBIG] "), line)
        # A non-synchronizing one is read and thrown away.
        big = b"x" * 1048577
        lines, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n%s" % (len(big), big))
        self.assertIn(b" NO [TOOBIG] ", tagged)
        lines, tagged = r.cmd("STATUS INBOX (MESSAGES)")
        self.assertEqual(lines, [b'* STATUS "INBOX" (MESSAGES 0)'])
        # Exactly the limit is fine (as far as the literal goes).
        exact = message(1, 1048576 - len(message(1)))
        _, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n%s" % (len(exact), exact))
        self.assertIn(b"[APPENDUID ", tagged)
        # Refusals are not client errors: the session goes on without BYE.
        for _ in range(40):
            r.send(b"t APPEND INBOX {2000000}\r\n")
            self.assertTrue(r.line().startswith(b"t NO [TOOBIG]"))
        _, tagged = r.cmd("NOOP")
        self.assertIn(b" OK ", tagged)


if __name__ == "__main__":
    unittest.main()

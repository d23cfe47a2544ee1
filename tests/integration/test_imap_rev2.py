#!/usr/bin/env python3
"""IMAP4rev2 (RFC 9051) next to IMAP4rev1: ENABLE IMAP4rev2 and what it
changes (SELECT without RECENT/UNSEEN and with LIST, ESEARCH answers to
SEARCH, \\NonExistent, UTF-8 mailbox names instead of modified UTF-7),
SEARCHRES (RFC 5182: SEARCH RETURN (SAVE) and "$"), both session kinds
seeing the same mailboxes. Exact responses over raw TLS sessions."""

import unittest

from test_imap import ImapBase, SIMPLE

JAPANESE = "\u65e5\u672c\u8a9e"  # modified UTF-7: &ZeVnLIqe-
DRAFTS_DE = "Entw\u00fcrfe"  # Entw&APw-rfe


class ImapRev2Test(ImapBase):

    def fill(self, r, count):
        for _ in range(count):
            _, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n" % len(SIMPLE) + SIMPLE)
            self.assertIn(b" OK ", tagged)

    def rev2(self, user):
        r = self.raw(user)
        lines, tagged = r.cmd("ENABLE IMAP4rev2")
        self.assertEqual(lines, [b"* ENABLED IMAP4rev2"])
        self.assertIn(b" OK ", tagged)
        return r

    def test_capabilities(self):
        r = self.raw(self.new_user())
        self.assertIn(b"IMAP4rev1 IMAP4rev2 ", r.greeting)
        lines, _ = r.cmd("CAPABILITY")
        for cap in (b"IMAP4rev1", b"IMAP4rev2", b"SEARCHRES", b"ESEARCH", b"LITERAL+",
                    b"BINARY", b"STATUS=SIZE", b"LIST-STATUS", b"SPECIAL-USE"):
            self.assertIn(b" " + cap + b" ", lines[0] + b" ")

    def test_select_and_search_differ_once_enabled(self):
        user = self.new_user()
        old = self.raw(user)
        self.fill(old, 3)
        lines, _ = old.cmd("SELECT INBOX")
        self.assertIn(b"* 0 RECENT", lines)
        self.assertIn(b"* OK [UNSEEN 1] First unseen message", lines)
        self.assertFalse(any(l.startswith(b"* LIST") for l in lines))
        lines, _ = old.cmd("SEARCH ALL")
        self.assertEqual(lines, [b"* SEARCH 1 2 3"])

        r = self.rev2(user)
        lines, tagged = r.cmd("SELECT inbox")
        self.assertIn(b"OK [READ-WRITE]", tagged)
        self.assertIn(b'* LIST () "/" "INBOX"', lines)
        self.assertIn(b"* 3 EXISTS", lines)
        self.assertFalse(any(b"RECENT" in l or b"UNSEEN" in l for l in lines))
        lines, _ = r.cmd("SEARCH ALL", tag="s1")
        self.assertEqual(lines, [b'* ESEARCH (TAG "s1") ALL 1:3'])
        lines, _ = r.cmd("UID SEARCH 2:3", tag="s2")
        self.assertEqual(lines, [b'* ESEARCH (TAG "s2") UID ALL 2:3'])
        lines, _ = r.cmd("SEARCH DELETED", tag="s3")
        self.assertEqual(lines, [b'* ESEARCH (TAG "s3")'])
        lines, _ = r.cmd("SEARCH RETURN (COUNT) ALL", tag="s4")
        self.assertEqual(lines, [b'* ESEARCH (TAG "s4") COUNT 3'])
        # ENABLE belongs to the authenticated state.
        _, tagged = r.cmd("ENABLE IMAP4rev2")
        self.assertIn(b" BAD ", tagged)

    def test_searchres(self):
        user = self.new_user()
        r = self.raw(user)
        self.fill(r, 5)
        r.cmd("SELECT INBOX")
        r.cmd("STORE 2,4 +FLAGS.SILENT (\\Flagged)")
        lines, tagged = r.cmd("SEARCH RETURN (SAVE) FLAGGED")
        self.assertEqual(lines, [])
        self.assertIn(b" OK ", tagged)
        lines, _ = r.cmd("FETCH $ (UID)")
        self.assertEqual(lines, [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"])
        lines, _ = r.cmd("UID FETCH $ (FLAGS)")
        self.assertEqual(lines, [b"* 2 FETCH (UID 2 FLAGS (\\Flagged))",
                                 b"* 4 FETCH (UID 4 FLAGS (\\Flagged))"])
        lines, _ = r.cmd("SEARCH $ 3:4")
        self.assertEqual(lines, [b"* SEARCH 4"])
        lines, _ = r.cmd("SEARCH OR UID $ 1")
        self.assertEqual(lines, [b"* SEARCH 1 2 4"])
        # MIN/MAX alone save only those ends.
        lines, _ = r.cmd("SEARCH RETURN (SAVE MAX) FLAGGED", tag="m1")
        self.assertEqual(lines, [b'* ESEARCH (TAG "m1") MAX 4'])
        lines, _ = r.cmd("FETCH $ (UID)")
        self.assertEqual(lines, [b"* 4 FETCH (UID 4)"])
        # STORE, COPY and UID EXPUNGE take "$" too.
        r.cmd("SEARCH RETURN (SAVE ALL) FLAGGED", tag="a1")
        lines, _ = r.cmd("STORE $ +FLAGS (\\Deleted)")
        self.assertEqual(len(lines), 2)
        lines, tagged = r.cmd("COPY $ Archive")
        self.assertIn(b"[COPYUID ", tagged)
        lines, _ = r.cmd("UID EXPUNGE $")
        self.assertEqual(lines, [b"* 2 EXPUNGE", b"* 3 EXPUNGE"])
        lines, _ = r.cmd("FETCH $ (UID)")
        self.assertEqual(lines, [])
        # A failed SAVE empties "$"; so does leaving the mailbox.
        r.cmd("SEARCH RETURN (SAVE) ALL")
        _, tagged = r.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
        self.assertIn(b"BADCHARSET", tagged)
        lines, _ = r.cmd("FETCH $ (UID)")
        self.assertEqual(lines, [])
        r.cmd("SEARCH RETURN (SAVE) ALL")
        r.cmd("UNSELECT")
        r.cmd("SELECT INBOX")
        lines, tagged = r.cmd("FETCH $ (UID)")
        self.assertEqual(lines, [])
        self.assertIn(b" OK ", tagged)
        for bad in ("SEARCH RETURN (SAVE SAVE) ALL", "FETCH $,1 (UID)", "SEARCH $:3"):
            _, tagged = r.cmd(bad)
            self.assertIn(b" BAD ", tagged, bad)

    def test_utf8_and_modified_utf7_names_are_the_same_mailboxes(self):
        user = self.new_user()
        old = self.raw(user)
        new = self.rev2(user)
        _, tagged = old.cmd('CREATE "Entw&APw-rfe"')
        self.assertIn(b" OK ", tagged)
        _, tagged = new.cmd('CREATE "%s/Tokyo"' % JAPANESE)
        self.assertIn(b" OK ", tagged)

        lines, _ = new.cmd('LIST "" "*"')
        self.assertIn(('* LIST (\\HasNoChildren) "/" "%s"' % DRAFTS_DE).encode(), lines)
        # The parent exists only as a level: \NonExistent in IMAP4rev2.
        self.assertIn(('* LIST (\\NonExistent \\HasChildren) "/" "%s"' % JAPANESE).encode(),
                      lines)
        lines, _ = old.cmd('LIST "" "*"')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"', lines)
        self.assertIn(b'* LIST (\\Noselect \\HasChildren) "/" "&ZeVnLIqe-"', lines)
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "&ZeVnLIqe-/Tokyo"', lines)
        lines, _ = old.cmd('LIST "" "&ZeVnLIqe-/%"')
        self.assertEqual(lines, [b'* LIST (\\HasNoChildren) "/" "&ZeVnLIqe-/Tokyo"'])

        lines, tagged = old.cmd('STATUS "&ZeVnLIqe-/Tokyo" (MESSAGES)')
        self.assertEqual(lines, [b'* STATUS "&ZeVnLIqe-/Tokyo" (MESSAGES 0)'])
        lines, tagged = new.cmd('STATUS "%s/Tokyo" (MESSAGES)' % JAPANESE)
        self.assertEqual(lines, [('* STATUS "%s/Tokyo" (MESSAGES 0)' % JAPANESE).encode()])
        _, tagged = old.cmd('SELECT "&ZeVnLIqe-/Tokyo"')
        self.assertIn(b"OK [READ-WRITE]", tagged)
        lines, tagged = new.cmd('SELECT "%s"' % DRAFTS_DE)
        self.assertIn(('* LIST () "/" "%s"' % DRAFTS_DE).encode(), lines)

        # A rev1 name that is not valid modified UTF-7 is refused.
        _, tagged = old.cmd('CREATE "bad&Ze!-"')
        self.assertIn(b" NO ", tagged)
        _, tagged = old.cmd('LIST "" "&Ze!-*"')
        self.assertIn(b" BAD ", tagged)
        # "&" itself is "&-" in IMAP4rev1 and plain in IMAP4rev2.
        old.cmd('CREATE "R&-D"')
        lines, _ = new.cmd('LIST "" "R&D"')
        self.assertEqual(lines, [b'* LIST (\\HasNoChildren) "/" "R&D"'])

    def test_utf8_accept(self):
        user = self.new_user()
        r = self.raw(user)
        lines, _ = r.cmd("CAPABILITY")
        self.assertIn(b" UTF8=ACCEPT", lines[0])
        msg = ("From: J\u00f6rg <j@example.net>\r\nSubject: Gr\u00fc\u00dfe\r\n\r\n"
               "caf\u00e9\r\n").encode()
        # The UTF8 data item needs ENABLE UTF8=ACCEPT.
        _, tagged = r.cmd(b"APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (len(msg), msg))
        self.assertIn(b" BAD ", tagged)
        lines, _ = r.cmd("ENABLE UTF8=ACCEPT")
        self.assertEqual(lines, [b"* ENABLED UTF8=ACCEPT"])
        _, tagged = r.cmd(b"APPEND INBOX (\\Seen) UTF8 (~{%d+}\r\n%s)" % (len(msg), msg))
        self.assertIn(b"[APPENDUID ", tagged)
        _, tagged = r.cmd(b"APPEND INBOX UTF8 ({2+}\r\nab {2+}\r\ncd)")
        self.assertIn(b" BAD ", tagged)
        # Names are UTF-8 now, in and out.
        _, tagged = r.cmd('CREATE "%s"' % DRAFTS_DE)
        self.assertIn(b" OK ", tagged)
        lines, _ = r.cmd('LIST "" "Entw*"')
        self.assertEqual(lines, [('* LIST (\\HasNoChildren) "/" "%s"' % DRAFTS_DE).encode()])
        old = self.raw(user)
        lines, _ = old.cmd('LIST "" "Entw*"')
        self.assertEqual(lines, [b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"'])
        r.cmd("SELECT INBOX")
        lines, _ = r.cmd("FETCH 1 (FLAGS BODY.PEEK[])")
        self.assertIn(b"\\Seen", lines[0])
        # The literal's lines follow the FETCH line: the UTF-8 header is stored as sent.
        self.assertEqual(lines[1], msg.split(b"\r\n")[0])
        self.assertEqual(lines[2], msg.split(b"\r\n")[1])


if __name__ == "__main__":
    unittest.main()

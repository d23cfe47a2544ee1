#!/usr/bin/env python3
"""IMAP QRESYNC (RFC 7162 3.2): ENABLE QRESYNC, SELECT/EXAMINE with the
QRESYNC parameter (VANISHED (EARLIER) and FETCH of what changed since a
modseq, limited to known UIDs), UID FETCH (CHANGEDSINCE m VANISHED),
untagged VANISHED instead of EXPUNGE, HIGHESTMODSEQ after EXPUNGE. Exact
responses over a raw TLS session; a second session makes the changes."""

import re
import unittest

from test_imap import ImapBase, SIMPLE


def status_value(lines, item):
    for line in lines:
        m = re.search(rb"\b%s (\d+)" % item.encode(), line)
        if m:
            return int(m.group(1))
    raise AssertionError("no %s in %r" % (item, lines))


class ImapQresyncTest(ImapBase):

    def fill(self, r, count):
        for _ in range(count):
            _, tagged = r.cmd(b"APPEND INBOX {%d+}\r\n" % len(SIMPLE) + SIMPLE)
            self.assertIn(b" OK ", tagged)

    def qresync_session(self, user):
        r = self.raw(user)
        lines, tagged = r.cmd("ENABLE QRESYNC")
        self.assertEqual(lines, [b"* ENABLED QRESYNC"])
        self.assertIn(b" OK ", tagged)
        return r

    def test_capability(self):
        r = self.raw(self.new_user())
        lines, _ = r.cmd("CAPABILITY")
        self.assertIn(b" QRESYNC ", lines[0] + b" ")
        self.assertIn(b" CONDSTORE ", lines[0])

    def test_vanished_replaces_expunge_and_resync_on_select(self):
        user = self.new_user()
        r = self.qresync_session(user)
        self.fill(r, 5)
        lines, tagged = r.cmd("SELECT INBOX")
        self.assertIn(b"OK [READ-WRITE]", tagged)
        uidvalidity = status_value(lines, "UIDVALIDITY")
        before = status_value(lines, "HIGHESTMODSEQ")

        other = self.client(user)
        other.select("INBOX")
        other.uid("STORE", "2", "+FLAGS", r"(\Flagged)")
        other.uid("STORE", "3:4", "+FLAGS", r"(\Deleted)")
        other.expunge()

        # Expunges come first as one VANISHED, then flags with the new numbers.
        lines, tagged = r.cmd("NOOP")
        self.assertEqual(lines[0], b"* VANISHED 3:4")
        self.assertRegex(lines[1], rb"^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$")
        self.assertEqual(len(lines), 2)
        self.assertFalse(any(b"EXPUNGE" in l for l in lines))
        flagged_modseq = int(re.search(rb"MODSEQ \((\d+)\)", lines[1]).group(1))

        # A fresh SELECT with the old state learns the same.
        lines, tagged = r.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity, before))
        self.assertIn(b"OK [READ-WRITE]", tagged)
        self.assertEqual(lines[0], b"* OK [CLOSED] Previous mailbox closed")
        self.assertIn(b"* 3 EXISTS", lines)
        vanished = [l for l in lines if l.startswith(b"* VANISHED")]
        self.assertEqual(vanished, [b"* VANISHED (EARLIER) 3:4"])
        fetches = [l for l in lines if b" FETCH " in l]
        self.assertEqual(fetches, [b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))"
                                   % flagged_modseq])
        # VANISHED (EARLIER) and FETCH come after the mailbox's own data.
        self.assertLess(lines.index(b"* 3 EXISTS"), lines.index(vanished[0]))

        # Known UIDs limit both.
        lines, _ = r.cmd("EXAMINE INBOX (QRESYNC (%d %d 1:2))" % (uidvalidity, before))
        self.assertFalse(any(l.startswith(b"* VANISHED") for l in lines))
        self.assertEqual([l for l in lines if b" FETCH " in l], fetches)
        lines, tagged = r.cmd("EXAMINE INBOX (QRESYNC (%d %d 1,3 (1:3 1:3)))"
                              % (uidvalidity, before))
        self.assertIn(b"OK [READ-ONLY]", tagged)
        self.assertIn(b"* VANISHED (EARLIER) 3", lines)
        self.assertFalse(any(b" FETCH " in l for l in lines))

        # Nothing changed since the current modseq; another UIDVALIDITY means a full resync.
        lines, _ = r.cmd("SELECT INBOX")
        now = status_value(lines, "HIGHESTMODSEQ")
        lines, _ = r.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity, now))
        self.assertFalse(any(l.startswith(b"* VANISHED") or b" FETCH " in l for l in lines))
        lines, _ = r.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity + 1, before))
        self.assertFalse(any(l.startswith(b"* VANISHED") or b" FETCH " in l for l in lines))

        # UID FETCH (CHANGEDSINCE m VANISHED)
        lines, tagged = r.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % before)
        self.assertIn(b" OK ", tagged)
        self.assertEqual(lines, [b"* VANISHED (EARLIER) 3:4",
                                 b"* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (%d))"
                                 % flagged_modseq])
        lines, _ = r.cmd("UID FETCH 4:5 (FLAGS) (VANISHED CHANGEDSINCE %d)" % before)
        self.assertEqual(lines, [b"* VANISHED (EARLIER) 4"])

        # Our own EXPUNGE: VANISHED, and HIGHESTMODSEQ in the tagged OK.
        r.cmd("UID STORE 5 +FLAGS.SILENT (\\Deleted)")
        lines, tagged = r.cmd("EXPUNGE")
        self.assertEqual(lines, [b"* VANISHED 5"])
        highest = int(re.search(rb"^r\d+ OK \[HIGHESTMODSEQ (\d+)\] ", tagged).group(1))
        lines, _ = r.cmd("STATUS INBOX (HIGHESTMODSEQ)")
        self.assertEqual(status_value(lines, "HIGHESTMODSEQ"), highest)

        # MOVE reports the source messages as VANISHED too.
        lines, tagged = r.cmd("UID MOVE 1 Archive")
        self.assertIn(b"* VANISHED 1", lines)
        self.assertFalse(any(b"EXPUNGE" in l for l in lines))
        self.assertIn(b" OK ", tagged)

    def test_delayed_vanished_gets_a_lower_highestmodseq(self):
        # RFC 7162 3.2 errata 3509: FETCH may not announce an expunge, but
        # may show a newer MODSEQ; HIGHESTMODSEQ then stays below the expunge.
        user = self.new_user()
        r = self.qresync_session(user)
        self.fill(r, 3)
        r.cmd("SELECT INBOX")
        other = self.client(user)
        other.select("INBOX")
        other.uid("STORE", "2", "+FLAGS", r"(\Deleted)")
        other.expunge()
        # (asked in the other session: STATUS here would announce the expunge)
        expunge_modseq = status_value(other.status("INBOX", "(HIGHESTMODSEQ)")[1],
                                      "HIGHESTMODSEQ")
        other.uid("STORE", "3", "+FLAGS", r"(\Flagged)")
        lines, _ = r.cmd("FETCH 1 (UID)")
        self.assertEqual(lines, [
            b"* 1 FETCH (UID 1)",
            b"* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (%d))" % (expunge_modseq + 1),
            b"* OK [HIGHESTMODSEQ %d] Expunges are pending" % (expunge_modseq - 1)])
        lines, _ = r.cmd("NOOP")
        self.assertEqual(lines, [b"* VANISHED 2"])

    def test_expunges_by_pop3_style_deletes_are_remembered(self):
        # Deleting a mailbox's messages any way (here CLOSE in another
        # session) is recorded for a later resync.
        user = self.new_user()
        r = self.qresync_session(user)
        self.fill(r, 3)
        lines, _ = r.cmd("SELECT INBOX")
        uidvalidity = status_value(lines, "UIDVALIDITY")
        before = status_value(lines, "HIGHESTMODSEQ")
        r.cmd("UNSELECT")
        other = self.client(user)
        other.select("INBOX")
        other.store("1:2", "+FLAGS", r"(\Deleted)")
        other.close()
        lines, _ = r.cmd("SELECT INBOX (QRESYNC (%d %d 1:*))" % (uidvalidity, before))
        self.assertIn(b"* VANISHED (EARLIER) 1:2", lines)
        self.assertIn(b"* 1 EXISTS", lines)

    def test_errors(self):
        user = self.new_user()
        plain = self.raw(user)
        self.fill(plain, 1)
        lines, tagged = plain.cmd("SELECT INBOX (QRESYNC (1 1))")
        self.assertIn(b" BAD ", tagged)
        self.assertIn(b"ENABLE QRESYNC", tagged)
        plain.cmd("SELECT INBOX")
        # Without QRESYNC there is no VANISHED modifier and expunges stay EXPUNGE.
        _, tagged = plain.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertIn(b" BAD ", tagged)
        plain.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        lines, tagged = plain.cmd("EXPUNGE")
        self.assertEqual(lines, [b"* 1 EXPUNGE"])
        self.assertEqual(tagged, b"r%d OK EXPUNGE completed" % plain.n)

        r = self.qresync_session(user)
        self.fill(r, 2)
        for bad in ("SELECT INBOX (QRESYNC (0 1))", "SELECT INBOX (QRESYNC (1))",
                    "SELECT INBOX (QRESYNC (1 0))", "SELECT INBOX (QRESYNC (1 x))",
                    "SELECT INBOX (QRESYNC (1 1 1:x))", "SELECT INBOX (QRESYNC (1 1 1 (1)))",
                    "SELECT INBOX (QRESYNC (1 1 1 (1 2) 3))", "SELECT INBOX (QRESYNC)",
                    "SELECT INBOX (FOO)", "SELECT INBOX (CONDSTORE CONDSTORE)",
                    "SELECT INBOX ()"):
            _, tagged = r.cmd(bad)
            self.assertIn(b" BAD ", tagged, bad)
        lines, tagged = r.cmd("SELECT INBOX (CONDSTORE QRESYNC (1 1))")
        self.assertIn(b"OK [READ-WRITE]", tagged)
        for bad in ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                    "UID FETCH 1:* (FLAGS) (VANISHED)",
                    "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0 VANISHED)",
                    "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED VANISHED)",
                    "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)"):
            _, tagged = r.cmd(bad)
            self.assertIn(b" BAD ", tagged, bad)
        # ENABLE QRESYNC twice lists nothing new.
        r.cmd("UNSELECT")
        lines, _ = r.cmd("ENABLE QRESYNC CONDSTORE")
        self.assertEqual(lines, [b"* ENABLED"])


if __name__ == "__main__":
    unittest.main()

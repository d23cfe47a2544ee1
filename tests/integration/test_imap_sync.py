#!/usr/bin/env python3
"""IMAP: several sessions on one mailbox see each other's changes at the
right moments. A selected session catches up with the store by reading only
what changed since its view's modseq (flag changes, new messages, expunges);
these tests check the exact untagged responses of that catch-up - FETCH
FLAGS (with MODSEQ under CONDSTORE), EXISTS, EXPUNGE held back during FETCH
and STORE, VANISHED under QRESYNC - and that the server never had to fall
back to reading a whole mailbox ("out of step" in its log). A deleted
mailbox still ends the view (every message expunged)."""

import re
import unittest

from test_imap import ImapBase, SIMPLE


def modseq_of(line):
    m = re.search(rb"MODSEQ \((\d+)\)", line)
    assert m, line
    return int(m.group(1))


class ImapSyncTest(ImapBase):

    def fill(self, r, count, mailbox="INBOX"):
        for _ in range(count):
            _, tagged = r.cmd(b"APPEND %s {%d+}\r\n" % (mailbox.encode(), len(SIMPLE)) + SIMPLE)
            self.assertIn(b" OK ", tagged)

    def pair(self, count=5, enable=None):
        user = self.new_user()
        a = self.raw(user)
        self.fill(a, count)
        if enable:
            _, tagged = a.cmd("ENABLE " + enable)
            self.assertIn(b" OK ", tagged)
        lines, tagged = a.cmd("SELECT INBOX")
        self.assertIn(b"* %d EXISTS" % count, lines)
        b = self.raw(user)
        _, tagged = b.cmd("SELECT INBOX")
        self.assertIn(b" OK ", tagged)
        return a, b

    def ok(self, r, text):
        lines, tagged = r.cmd(text)
        self.assertIn(b" OK ", tagged, (text, lines))
        return lines

    def test_flags_new_messages_and_expunges_in_one_catch_up(self):
        a, b = self.pair(5)
        self.ok(b, r"STORE 2 +FLAGS (\Flagged $Work)")
        self.ok(b, r"STORE 4 +FLAGS (\Deleted)")
        self.ok(b, "EXPUNGE")
        self.fill(b, 2)
        lines = self.ok(a, "NOOP")
        # In UID order, each by its number at that moment; the new count last.
        self.assertEqual(lines, [rb"* 2 FETCH (FLAGS (\Flagged $Work))", b"* 4 EXPUNGE",
                                 b"* 6 EXISTS"])
        # Nothing more to report, and the view matches the store.
        self.assertEqual(self.ok(a, "NOOP"), [])
        lines = self.ok(a, "UID FETCH 1:* (FLAGS)")
        uids = [int(re.search(rb"UID (\d+)", l).group(1)) for l in lines]
        self.assertEqual(uids, [1, 2, 3, 5, 6, 7])
        self.assertNotIn("out of step", self.srv.log())

    def test_own_changes_are_not_reported_twice(self):
        a, b = self.pair(3)
        lines = self.ok(a, r"STORE 1 +FLAGS (\Seen)")
        self.assertEqual(lines, [rb"* 1 FETCH (FLAGS (\Seen))"])
        self.assertEqual(self.ok(a, "NOOP"), [])
        self.assertEqual(self.ok(b, "NOOP"), [rb"* 1 FETCH (FLAGS (\Seen))"])
        self.assertEqual(self.ok(b, "NOOP"), [])

    def test_flag_set_and_cleared_again_is_silent_but_moves_modseq(self):
        a, b = self.pair(2, enable="CONDSTORE")
        before = modseq_of(self.ok(a, "FETCH 1 (MODSEQ)")[0])
        self.ok(b, r"STORE 1 +FLAGS (\Flagged)")
        self.ok(b, r"STORE 1 -FLAGS (\Flagged)")
        # The flags are as before: nothing to report, but FETCH MODSEQ sees the change.
        self.assertEqual(self.ok(a, "NOOP"), [])
        after = modseq_of(self.ok(a, "FETCH 1 (MODSEQ)")[0])
        self.assertGreater(after, before)
        # A conditional STORE against the old modseq now fails.
        lines, tagged = a.cmd(r"STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\Seen)" % before)
        self.assertIn(b"[MODIFIED 1]", tagged)

    def test_condstore_flag_change_carries_uid_and_modseq(self):
        a, b = self.pair(3, enable="CONDSTORE")
        self.ok(b, r"STORE 3 +FLAGS (\Answered)")
        lines = self.ok(a, "NOOP")
        self.assertEqual(len(lines), 1)
        self.assertRegex(lines[0], rb"^\* 3 FETCH \(UID 3 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$")

    def test_expunge_waits_during_fetch_and_store(self):
        a, b = self.pair(4)
        self.ok(b, r"STORE 2 +FLAGS (\Deleted)")
        self.ok(b, "EXPUNGE")
        self.fill(b, 1)
        # FETCH may not renumber: no EXPUNGE, but the new message is told.
        lines = self.ok(a, "FETCH 1 (FLAGS)")
        self.assertNotIn(b"* 2 EXPUNGE", lines)
        self.assertIn(b"* 5 EXISTS", lines)
        # Another expunge while one is still held back.
        self.ok(b, r"STORE 3 +FLAGS (\Deleted)")
        self.ok(b, "EXPUNGE")
        lines = self.ok(a, r"STORE 1 +FLAGS (\Seen)")
        self.assertFalse([l for l in lines if l.endswith(b"EXPUNGE")], lines)
        # The number of the held-back message still works.
        lines, tagged = a.cmd("FETCH 4 (UID)")
        self.assertIn(b" OK ", tagged)
        lines = self.ok(a, "NOOP")
        # UIDs 2 and 4 went: by the numbers of the moment, 2 then 3.
        self.assertEqual(lines, [b"* 2 EXPUNGE", b"* 3 EXPUNGE"])
        lines = self.ok(a, "UID FETCH 1:* (UID)")
        self.assertEqual(len(lines), 3)
        self.assertNotIn("out of step", self.srv.log())

    def test_qresync_vanished_then_flags(self):
        a, b = self.pair(6, enable="QRESYNC")
        self.ok(b, r"STORE 5 +FLAGS (\Flagged)")
        self.ok(b, r"STORE 2:3 +FLAGS (\Deleted)")
        self.ok(b, "EXPUNGE")
        lines = self.ok(a, "NOOP")
        self.assertEqual(lines[0], b"* VANISHED 2:3")
        self.assertRegex(lines[1], rb"^\* 3 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$")
        self.assertEqual(len(lines), 2)

    def test_idle_reports_other_sessions_changes(self):
        a, b = self.pair(2)
        a.n += 1
        a.send(b"i1 IDLE\r\n")
        self.assertEqual(a.line(), b"+ idling")
        self.fill(b, 1)
        self.assertEqual(a.line(), b"* 3 EXISTS")
        self.ok(b, r"STORE 1 +FLAGS (\Deleted)")
        self.assertEqual(a.line(), rb"* 1 FETCH (FLAGS (\Deleted))")
        self.ok(b, "EXPUNGE")
        self.assertEqual(a.line(), b"* 1 EXPUNGE")
        a.send(b"DONE\r\n")
        lines, tagged = a.until("i1")
        self.assertIn(b" OK ", tagged)
        self.assertEqual(lines, [])

    def test_select_again_reports_the_state_not_the_changes(self):
        a, b = self.pair(5)
        self.ok(b, r"STORE 2 +FLAGS (\Deleted)")
        self.ok(b, "EXPUNGE")
        # One expunge held back in A's view (FETCH may not report it) ...
        self.ok(a, "FETCH 1 (FLAGS)")
        self.ok(b, r"STORE 1 +FLAGS (\Seen)")
        self.ok(b, r"STORE 4 +FLAGS (\Deleted)")
        self.ok(b, "EXPUNGE")
        self.fill(b, 2)
        # ... then SELECT of the same mailbox: its state, no EXPUNGE or FETCH.
        lines = self.ok(a, "SELECT INBOX")
        self.assertIn(b"* OK [CLOSED] Previous mailbox closed", lines)
        self.assertIn(b"* 5 EXISTS", lines)
        self.assertFalse([l for l in lines if l.endswith(b"EXPUNGE") or b"FETCH" in l], lines)
        lines = self.ok(a, "FETCH 1:* (UID FLAGS)")
        self.assertEqual(lines, [rb"* 1 FETCH (UID 1 FLAGS (\Seen))", b"* 2 FETCH (UID 3 FLAGS ())",
                                 b"* 3 FETCH (UID 4 FLAGS ())", b"* 4 FETCH (UID 6 FLAGS ())",
                                 b"* 5 FETCH (UID 7 FLAGS ())"])
        self.assertEqual(self.ok(a, "NOOP"), [])
        # EXAMINE of it is read-only; SELECT again writes.
        lines, tagged = a.cmd("EXAMINE INBOX")
        self.assertIn(b"[READ-ONLY]", tagged)
        lines, tagged = a.cmd(r"STORE 1 +FLAGS (\Flagged)")
        self.assertIn(b"NO [READ-ONLY]", tagged)
        lines, tagged = a.cmd("SELECT INBOX")
        self.assertIn(b"[READ-WRITE]", tagged)
        self.ok(a, r"STORE 1 +FLAGS (\Flagged)")
        self.assertNotIn("out of step", self.srv.log())

    def test_deleted_mailbox_expunges_the_view(self):
        user = self.new_user()
        a = self.raw(user)
        self.ok(a, "CREATE Box")
        self.fill(a, 3, "Box")
        self.ok(a, "SELECT Box")
        b = self.raw(user)
        self.ok(b, "DELETE Box")
        lines = self.ok(a, "NOOP")
        self.assertEqual(lines, [b"* 1 EXPUNGE"] * 3)


if __name__ == "__main__":
    unittest.main()

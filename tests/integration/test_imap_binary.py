#!/usr/bin/env python3
"""IMAP BINARY APPEND (RFC 3516 4.4): a message sent as a literal8 ("~{n}")
with NUL in a part's content is accepted, scanned, sealed and stored as it
came. FETCH BINARY[] gives it back byte for byte (as a literal8), BINARY[n]
a part's content; BODY[], BODYSTRUCTURE and SEARCH see its textual form, in
which each part holding NUL is base64 (RFC 3516 6). NUL where base64 cannot
carry it (a header, an encoded part) is refused with NO [UNKNOWN-CTE].
The client is imaplib; the literal8 goes out raw on its connection.
RFC822.SIZE is the size of the textual form (what BODY[] sends), BINARY.SIZE[]
the stored size. POP3 (poplib) sends the textual form too: no NUL on the wire,
LIST and STAT count what RETR sends."""

import base64
import poplib
import re
import unittest

from harness import Server
from test_imap import CONFIG, PASSWORD, ImapBase

BLOB = bytes(range(256)) * 4 + b"\0\0end\0"

SINGLE = (b"From: bin@example.net\r\nSubject: binary one\r\n"
          b"Content-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: binary\r\n\r\n" + BLOB)

MULTI = (b"From: bin@example.net\r\nSubject: binary two\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         b"--b1\r\nContent-Type: text/plain\r\n\r\nhello there\r\n"
         b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n" + BLOB + b"\r\n"
         b"--b1--\r\n")

# A text part with lines POP3 must dot-stuff, a binary part, no final CRLF.
DOTTED = (b"From: bin@example.net\r\nSubject: binary dots\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=\"d\"\r\n\r\n"
          b"--d\r\nContent-Type: text/plain\r\n\r\n.leading dot\r\n.\r\n..two\r\n"
          b"--d\r\nContent-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: 8bit\r\n\r\n" + BLOB + b"\r\n--d--")


def append8(m, data, mailbox="INBOX"):
    """APPEND with a non-synchronizing literal8 on imaplib's connection."""
    tag = m._new_tag()
    m.send(tag + b" APPEND " + mailbox.encode() + b" ~{%d+}\r\n" % len(data) + data + b"\r\n")
    return m._command_complete("APPEND", tag)


def fetched(data):
    """The literal of an imaplib FETCH answer."""
    for d in data:
        if isinstance(d, tuple):
            return d[1]
    raise AssertionError("no literal in %r" % (data,))


def text_parts(body):
    """The base64 content after the last header of BODY (single part)."""
    return body.split(b"\r\n\r\n", 1)


class ImapBinaryTest(ImapBase):

    def test_single_part_round_trip(self):
        m = self.client(self.new_user())
        typ, data = append8(m, SINGLE)
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"APPENDUID", data[-1])
        m.select("INBOX")
        typ, data = m.fetch("1", "(BINARY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertIn(b"BINARY[] ~{%d}" % len(SINGLE), data[0][0])
        self.assertEqual(fetched(data), SINGLE)
        typ, data = m.fetch("1", "(BINARY.SIZE[] BINARY.SIZE[1])")
        self.assertIn(b"BINARY.SIZE[] %d BINARY.SIZE[1] %d" % (len(SINGLE), len(BLOB)), data[0])
        self.assertEqual(fetched(m.fetch("1", "(BINARY.PEEK[1])")[1]), BLOB)
        # BODY[] is text: the content in base64, the transfer encoding said so.
        body = fetched(m.fetch("1", "(BODY.PEEK[])")[1])
        self.assertNotIn(b"\0", body)
        header, content = text_parts(body)
        self.assertIn(b"Content-Transfer-Encoding: base64", header)
        self.assertNotIn(b"Content-Transfer-Encoding: binary", header)
        self.assertIn(b"Subject: binary one", header)
        self.assertEqual(base64.b64decode(content), BLOB)
        self.assertTrue(all(len(line) <= 76 for line in content.split(b"\r\n")))
        typ, data = m.fetch("1", "(BODYSTRUCTURE)")
        self.assertRegex(data[0], rb'"APPLICATION" "OCTET-STREAM" .* "BASE64"')
        # The header is searchable as for any message.
        self.assertEqual(m.search(None, "SUBJECT", '"binary one"')[1], [b"1"])

    def test_multipart_binary_part(self):
        m = self.client(self.new_user())
        typ, data = append8(m, MULTI)
        self.assertEqual(typ, "OK", data)
        m.select("INBOX")
        self.assertEqual(fetched(m.fetch("1", "(BINARY.PEEK[])")[1]), MULTI)
        self.assertEqual(fetched(m.fetch("1", "(BINARY.PEEK[2])")[1]), BLOB)
        self.assertEqual(fetched(m.fetch("1", "(BINARY.PEEK[1])")[1]), b"hello there")
        self.assertEqual(fetched(m.fetch("1", "(BODY.PEEK[1])")[1]), b"hello there")
        part2 = fetched(m.fetch("1", "(BODY.PEEK[2])")[1])
        self.assertEqual(base64.b64decode(part2), BLOB)
        mime = fetched(m.fetch("1", "(BODY.PEEK[2.MIME])")[1])
        self.assertIn(b"Content-Transfer-Encoding: base64", mime)
        whole = fetched(m.fetch("1", "(BODY.PEEK[])")[1])
        self.assertNotIn(b"\0", whole)
        self.assertIn(b"--b1\r\nContent-Type: text/plain\r\n\r\nhello there\r\n--b1\r\n", whole)
        self.assertTrue(whole.endswith(b"\r\n--b1--\r\n"))
        typ, data = m.fetch("1", "(BODYSTRUCTURE)")
        self.assertRegex(data[0], rb'\("TEXT" "PLAIN" .*\)\("APPLICATION" "OCTET-STREAM" .* "BASE64"')

    def test_copy_keeps_the_bytes(self):
        user = self.new_user()
        m = self.client(user)
        self.assertEqual(append8(m, SINGLE)[0], "OK")
        m.create("Kept")
        m.select("INBOX")
        self.assertEqual(m.copy("1", "Kept")[0], "OK")
        m.select("Kept")
        self.assertEqual(fetched(m.fetch("1", "(BINARY.PEEK[])")[1]), SINGLE)

    def test_nul_where_base64_cannot_carry_it_is_refused(self):
        m = self.client(self.new_user())
        for bad in (b"Subject: a\0b\r\n\r\nbody\r\n",
                    b"Subject: enc\r\nContent-Transfer-Encoding: base64\r\n\r\nAA\0A\r\n",
                    b"Content-Type: multipart/mixed; boundary=x\r\n\r\npre\0amble\r\n"
                    b"--x\r\n\r\npart\r\n--x--\r\n"):
            typ, data = append8(m, bad)
            self.assertEqual(typ, "NO", bad)
            self.assertIn(b"[UNKNOWN-CTE]", data[-1])
        m.select("INBOX")
        self.assertEqual(m.search(None, "ALL")[1], [b""])
        # A literal8 without NUL is ordinary text.
        typ, data = append8(m, b"Subject: plain\r\n\r\nno nul here\r\n")
        self.assertEqual(typ, "OK")
        self.assertEqual(fetched(m.fetch("1", "(BODY.PEEK[TEXT])")[1]), b"no nul here\r\n")


    def test_rfc822_size_is_the_size_of_body(self):
        user = self.new_user()
        self.srv.ctl("quota", "set", user, "10M", check=True)
        m = self.client(user)
        for msg in (SINGLE, MULTI, DOTTED):
            self.assertEqual(append8(m, msg)[0], "OK")
        m.select("INBOX")
        bodies = [fetched(m.fetch(str(i), "(BODY.PEEK[])")[1]) for i in (1, 2, 3)]
        # The quota counts that size too.
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        used = (sum(len(b) for b in bodies) + 1023) // 1024
        self.assertEqual(data[1], [b'"" (STORAGE %d 10240)' % used])
        m.create("Copied")
        self.assertEqual(m.copy("1:3", "Copied")[0], "OK")
        for box in ("INBOX", "Copied"):
            m.select(box)
            for i, (msg, body) in enumerate(zip((SINGLE, MULTI, DOTTED), bodies), 1):
                self.assertNotIn(b"\0", body)
                self.assertGreater(len(body), len(msg))
                self.assertEqual(fetched(m.fetch(str(i), "(BODY.PEEK[])")[1]), body)
                typ, data = m.fetch(str(i), "(RFC822.SIZE BINARY.SIZE[])")
                self.assertEqual(typ, "OK")
                self.assertIn(b"RFC822.SIZE %d BINARY.SIZE[] %d" % (len(body), len(msg)), data[0])


class Pop3BinaryTest(ImapBase):
    """A message appended by IMAP with NUL, read by POP3 (poplib)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("smtp", "imap", "imaps", "pop3s"), config=CONFIG)
        cls.srv.add_domain("example.org")
        cls.users = 0

    def pop3(self, user):
        ctx = self.srv.ssl_context()
        ctx.check_hostname = False
        p = poplib.POP3_SSL("127.0.0.1", self.srv.port("pop3s"), timeout=30, context=ctx)
        self.addCleanup(self._quit, p)
        p.user(user)
        p.pass_(PASSWORD)
        return p

    @staticmethod
    def _quit(p):
        try:
            p.quit()
        except (poplib.error_proto, OSError):
            pass

    def test_retr_top_list_of_binary_messages(self):
        user = self.new_user()
        m = self.client(user)
        plain = b"From: a@example.net\r\nSubject: plain\r\n\r\nno nul\r\n"
        originals = (SINGLE, MULTI, DOTTED, plain)
        for msg in originals:
            self.assertEqual(append8(m, msg)[0], "OK")
        m.select("INBOX")
        bodies = [fetched(m.fetch(str(i), "(BODY.PEEK[])")[1]) for i in range(1, 5)]
        self.assertEqual(bodies[3], plain)
        p = self.pop3(user)
        self.assertEqual(p.stat(), (4, sum(len(b) for b in bodies)))
        listing = p.list()[1]
        self.assertEqual(listing, [b"%d %d" % (i, len(b)) for i, b in enumerate(bodies, 1)])
        for i, body in enumerate(bodies, 1):
            resp, lines, octets = p.retr(i)
            self.assertEqual(resp, b"+OK %d octets" % len(body))
            self.assertEqual(p.list(i), b"+OK %d %d" % (i, len(body)))
            # poplib undoes the dot-stuffing: the lines are BODY[]'s.
            self.assertEqual(lines, body.split(b"\r\n")[:-1] if body.endswith(b"\r\n")
                             else body.split(b"\r\n"))
            self.assertFalse(any(b"\0" in ln for ln in lines))
            self.assertEqual(b"\r\n".join(lines) + b"\r\n",
                             body if body.endswith(b"\r\n") else body + b"\r\n")
        # The base64 parts decode to the bytes appended.
        single = b"\r\n".join(p.retr(1)[1])
        header, content = single.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Transfer-Encoding: base64", header)
        self.assertEqual(base64.b64decode(content), BLOB)
        multi = b"\r\n".join(p.retr(2)[1])
        part = multi.split(b"--b1\r\n")[2].split(b"\r\n\r\n", 1)[1]
        self.assertEqual(base64.b64decode(part.split(b"\r\n--b1--")[0]), BLOB)
        dotted = p.retr(3)[1]
        self.assertIn(b".leading dot", dotted)
        self.assertIn(b"..two", dotted)
        part = b"\r\n".join(dotted).split(b"--d\r\n")[2].split(b"\r\n\r\n", 1)[1]
        self.assertEqual(base64.b64decode(part.split(b"\r\n--d--")[0]), BLOB)
        # TOP: the textual header and the first lines of the base64 content.
        top = p.top(1, 2)[1]
        self.assertEqual(top, bodies[0].split(b"\r\n")[:len(top)])
        self.assertEqual(top[-3], b"")
        self.assertEqual(base64.b64decode(b"".join(top[-2:])), BLOB[:2 * 57])
        self.assertEqual(len(p.uidl()[1]), 4)

    def test_large_binary_message(self):
        # Over 256 KiB: read and decrypted on the job pool, then streamed.
        blob = bytes(range(256)) * 1200
        big = (b"From: bin@example.net\r\nSubject: big binary\r\n"
               b"Content-Type: application/octet-stream\r\n\r\n" + blob)
        user = self.new_user()
        m = self.client(user)
        self.assertEqual(append8(m, big)[0], "OK")
        m.select("INBOX")
        body = fetched(m.fetch("1", "(BODY.PEEK[])")[1])
        self.assertGreater(len(body), 256 * 1024)
        p = self.pop3(user)
        self.assertEqual(p.list(1), b"+OK 1 %d" % len(body))
        resp, lines, _ = p.retr(1)
        self.assertEqual(resp, b"+OK %d octets" % len(body))
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", body)
        header, content = body.split(b"\r\n\r\n", 1)
        self.assertEqual(base64.b64decode(content), blob)
        self.assertEqual(p.top(1, 0)[1], header.split(b"\r\n") + [b""])

    def test_raw_wire_has_no_nul_and_stuffs_dots(self):
        user = self.new_user()
        m = self.client(user)
        self.assertEqual(append8(m, DOTTED)[0], "OK")
        m.select("INBOX")
        body = fetched(m.fetch("1", "(BODY.PEEK[])")[1])
        p = self.pop3(user)
        p._putcmd("RETR 1")
        first = p._getline()[0]
        self.assertEqual(first, b"+OK %d octets" % len(body))
        wire = b""
        while True:
            line, _ = p._getline()
            if line == b".":
                break
            wire += line + b"\r\n"
        self.assertNotIn(b"\0", wire)
        self.assertIn(b"\r\n..leading dot\r\n..\r\n...two\r\n", wire)
        self.assertEqual(wire, b"\r\n".join(
            (b"." + ln if ln.startswith(b".") else ln) for ln in body.split(b"\r\n")) + b"\r\n")


if __name__ == "__main__":
    unittest.main()

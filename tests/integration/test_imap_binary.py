#!/usr/bin/env python3
"""IMAP BINARY APPEND (RFC 3516 4.4): a message sent as a literal8 ("~{n}")
with NUL in a part's content is accepted, scanned, sealed and stored as it
came. FETCH BINARY[] gives it back byte for byte (as a literal8), BINARY[n]
a part's content; BODY[], BODYSTRUCTURE and SEARCH see its textual form, in
which each part holding NUL is base64 (RFC 3516 6). NUL where base64 cannot
carry it (a header, an encoded part) is refused with NO [UNKNOWN-CTE].
The client is imaplib; the literal8 goes out raw on its connection."""

import base64
import re
import unittest

from test_imap import ImapBase

BLOB = bytes(range(256)) * 4 + b"\0\0end\0"

SINGLE = (b"From: bin@example.net\r\nSubject: binary one\r\n"
          b"Content-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: binary\r\n\r\n" + BLOB)

MULTI = (b"From: bin@example.net\r\nSubject: binary two\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         b"--b1\r\nContent-Type: text/plain\r\n\r\nhello there\r\n"
         b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n" + BLOB + b"\r\n"
         b"--b1--\r\n")


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


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""postern-stego as a real program: capacity, embed and extract with a
password and with a Postern user's key (through the store of a running
server), and the errors a person sees for bad input."""

import base64
import contextlib
import email
import email.policy
import imaplib
import json
import os
import poplib
import smtplib
import random
import shutil
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

import harness
from harness import Server


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))


def make_cover(width, height, seed=7):
    """An 8-bit RGB PNG: a smooth gradient plus noise, like a photograph's sky."""
    rnd = random.Random(seed)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            for c in range(3):
                v = (x * 200 // width + y * 50 // height + c * 20) + int(rnd.gauss(0, 3))
                rows.append(max(0, min(255, v)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + png_chunk(b"IEND", b""))


@contextlib.contextmanager
def pop3_session(srv, user, password):
    """A POP3 session (STARTTLS, USER/PASS) as USER; QUIT when it ends."""
    p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=60)
    try:
        p.stls(context=srv.ssl_context())
        p.user(user)
        p.pass_(password)
        yield p
    finally:
        p.quit()


def tool():
    return harness.program("postern-stego")


class StegoTool(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postern-stego-")
        self.cover = os.path.join(self.dir, "cover.png")
        with open(self.cover, "wb") as f:
            f.write(make_cover(100, 80))
        self.message = os.path.join(self.dir, "message.txt")
        self.body = ("Subject: plans\r\n\r\nMeet at the north gate at nine.\r\n" * 20).encode()
        with open(self.message, "wb") as f:
            f.write(self.body)
        harness.chown_tree(self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_tool(self, *args, input=None):
        return subprocess.run([tool(), *args], input=input, capture_output=True,
                              timeout=120, preexec_fn=harness.demote)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_capacity_is_exact(self):
        res = self.run_tool("capacity", "--cover", self.cover)
        self.assertEqual(res.returncode, 0, res.stderr)
        out = res.stdout.decode()
        self.assertIn("%d bytes with a password" % (100 * 80 * 3 // 8 - 44), out)
        self.assertIn("%d bytes for a recipient key" % (100 * 80 * 3 // 8 - 125), out)

    def test_password_round_trip_is_byte_exact(self):
        out, back = self.path("out.png"), self.path("back.txt")
        res = self.run_tool("embed", "--cover", self.cover, "--in", self.message, "--out", out,
                            "--password", input=b"tall ships\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        res = self.run_tool("extract", "--in", out, "--out", back, "--password",
                            input=b"tall ships\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), self.body)
        self.assertEqual(os.stat(back).st_mode & 0o777, 0o600)

        res = self.run_tool("extract", "--in", out, "--out", self.path("no.txt"), "--password",
                            input=b"tall shipz\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"wrong key", res.stderr)
        self.assertFalse(os.path.exists(self.path("no.txt")))

    def test_message_too_large_for_cover(self):
        big = self.path("big.bin")
        with open(big, "wb") as f:
            f.write(os.urandom(100 * 80 * 3 // 8 - 44 + 1))
        harness.chown_tree(self.dir)
        res = self.run_tool("embed", "--cover", self.cover, "--in", big, "--out",
                            self.path("o.png"), "--password", input=b"pw\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"at most 2956 bytes", res.stderr)

    def test_bad_input_gets_a_precise_error(self):
        res = self.run_tool("extract", "--in", self.message, "--out", self.path("x"),
                            "--password", input=b"pw\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"not a PNG image", res.stderr)
        truncated = self.path("cut.png")
        with open(self.cover, "rb") as f, open(truncated, "wb") as g:
            g.write(f.read()[:300])
        harness.chown_tree(self.dir)
        res = self.run_tool("capacity", "--cover", truncated)
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"damaged or truncated PNG image", res.stderr)
        res = self.run_tool("capacity", "--cover", self.path("missing.png"))
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"missing.png", res.stderr)
        res = self.run_tool("embed", "--cover", self.cover, "--in", self.message,
                            "--out", self.path("o.png"), input=b"pw\n")
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"Usage", res.stderr)
        res = self.run_tool("extract", "--in", self.cover, "--out", self.path("x"),
                            "--password", input=b"")
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"no password", res.stderr)
        res = self.run_tool("frobnicate")
        self.assertEqual(res.returncode, 2)

    def test_user_key_round_trip_through_the_store(self):
        with Server(listeners=("smtp",)) as srv:
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "alice pw 1 harbour")
            srv.add_user("bob@example.org", "bob pw 22 tide")
            out, back = self.path("to-alice.png"), self.path("back.txt")
            res = self.run_tool("embed", "--cover", self.cover, "--in", self.message, "--out",
                                out, "--to", "alice@example.org", "-c", srv.config_path)
            self.assertEqual(res.returncode, 0, res.stderr)
            res = self.run_tool("extract", "--in", out, "--out", back, "--user",
                                "alice@example.org", "-c", srv.config_path,
                                input=b"alice pw 1 harbour\n")
            self.assertEqual(res.returncode, 0, res.stderr)
            with open(back, "rb") as f:
                self.assertEqual(f.read(), self.body)
            # Bob knows his own password, not Alice's key.
            res = self.run_tool("extract", "--in", out, "--out", self.path("bob.txt"), "--user",
                                "bob@example.org", "-c", srv.config_path,
                                input=b"bob pw 22 tide\n")
            self.assertEqual(res.returncode, 1)
            self.assertIn(b"wrong key", res.stderr)
            res = self.run_tool("extract", "--in", out, "--out", self.path("x.txt"), "--user",
                                "alice@example.org", "-c", srv.config_path,
                                input=b"not alice\n")
            self.assertEqual(res.returncode, 1)
            self.assertIn(b"wrong password", res.stderr)
            res = self.run_tool("embed", "--cover", self.cover, "--in", self.message, "--out",
                                out, "--to", "nobody@example.org", "-c", srv.config_path)
            self.assertEqual(res.returncode, 1)
            self.assertIn(b"no such user", res.stderr)
            res = self.run_tool("embed", "--cover", self.cover, "--in", self.message, "--out",
                                out, "--to", "alice@example.org")
            self.assertEqual(res.returncode, 1)
            self.assertIn(b"-c CONFIG", res.stderr)


class SubmissionRewrite(unittest.TestCase):
    """X-Postern-Stego: yes on submitted mail: each local recipient gets an
    innocuous text plus a PNG hiding the original, sealed to their key."""

    ORIGINAL = (b"From: alice@example.org\r\n"
                b"To: bob@example.org, carol@example.org\r\n"
                b"Subject: the real subject\r\n"
                b"Message-ID: <stego-1@example.org>\r\n"
                b"X-Postern-Stego: yes\r\n"
                b"\r\n"
                b"The shipment leaves on Tuesday.\r\n"
                b"Second line, with a dot:\r\n"
                b".\r\n"
                b"..and a line that starts with two dots.\r\n")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postern-stego-")
        harness.chown_tree(self.dir)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def submit(self, srv, rcpts, message):
        with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=60) as c:
            c.starttls(context=srv.ssl_context())
            c.login("alice@example.org", "alice pw 1 harbour")
            return c.sendmail("alice@example.org", rcpts, message)

    def retrieve(self, srv, user, password):
        with pop3_session(srv, user, password) as p:
            count, _ = p.stat()
            self.assertEqual(count, 1)
            lines = p.retr(1)[1]
        return b"\r\n".join(lines) + b"\r\n"

    def assert_pop3_empty(self, srv, user, password):
        """USER's mailbox holds nothing (over POP3)."""
        with pop3_session(srv, user, password) as p:
            self.assertEqual(p.stat()[0], 0)

    def fetch_imap(self, srv, user, password):
        c = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=60)
        try:
            c.starttls(ssl_context=srv.ssl_context())
            c.login(user, password)
            typ, data = c.select("INBOX")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0], b"1")
            typ, data = c.fetch("1", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            return data[0][1]
        finally:
            c.logout()

    def extract(self, srv, png, user, password):
        src, dst = os.path.join(self.dir, "in.png"), os.path.join(self.dir, "out.eml")
        with open(src, "wb") as f:
            f.write(png)
        harness.chown_tree(self.dir)
        res = subprocess.run([tool(), "extract", "--in", src, "--out", dst, "--user", user,
                              "-c", srv.config_path], input=password.encode() + b"\n",
                             capture_output=True, timeout=120, preexec_fn=harness.demote)
        if res.returncode != 0:
            return res, None
        with open(dst, "rb") as f:
            return res, f.read()

    def test_submission_to_local_users_is_hidden_per_recipient(self):
        with Server(listeners=("submission", "pop3", "imap")) as srv:
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "alice pw 1 harbour")
            srv.add_user("bob@example.org", "bob pw 22 tide")
            srv.add_user("carol@example.org", "carol pw 333 lantern")
            refused = self.submit(srv, ["bob@example.org", "carol@example.org"], self.ORIGINAL)
            self.assertEqual(refused, {})
            pngs = {}
            # Bob reads over POP3, Carol over IMAP.
            for user, pw, fetch in (("bob@example.org", "bob pw 22 tide", self.retrieve),
                                    ("carol@example.org", "carol pw 333 lantern", self.fetch_imap)):
                raw = fetch(srv, user, pw)
                # Nothing of the original shows in the delivered mail.
                self.assertNotIn(b"shipment", raw)
                self.assertNotIn(b"the real subject", raw)
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                self.assertEqual(msg["Subject"], "A picture for you")
                self.assertEqual(msg["Message-ID"], "<stego-1@example.org>")
                parts = [p for p in msg.walk() if p.get_content_type() == "image/png"]
                self.assertEqual(len(parts), 1)
                # A generated cover gets a neutral name.
                self.assertEqual(parts[0].get_filename(), "picture.png")
                pngs[user] = parts[0].get_payload(decode=True)
                self.assertEqual(pngs[user][:8], b"\x89PNG\r\n\x1a\n")
            # Each picture opens for its own recipient only, byte-exact.
            res, body = self.extract(srv, pngs["bob@example.org"], "bob@example.org",
                                     "bob pw 22 tide")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(body, self.ORIGINAL)
            res, body = self.extract(srv, pngs["carol@example.org"], "carol@example.org",
                                     "carol pw 333 lantern")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(body, self.ORIGINAL)
            res, body = self.extract(srv, pngs["bob@example.org"], "carol@example.org",
                                     "carol pw 333 lantern")
            self.assertEqual(res.returncode, 1)
            self.assertIn(b"wrong key", res.stderr)

    def test_remote_recipient_is_refused_and_nothing_stored(self):
        with Server(listeners=("submission", "pop3")) as srv:
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "alice pw 1 harbour")
            srv.add_user("bob@example.org", "bob pw 22 tide")
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                self.submit(srv, ["bob@example.org", "someone@elsewhere.example"],
                            self.ORIGINAL)
            self.assertEqual(cm.exception.smtp_code, 554)
            self.assertIn(b"X-Postern-Stego needs local recipients", cm.exception.smtp_error)
            self.assert_pop3_empty(srv, "bob@example.org", "bob pw 22 tide")


def multipart(parts, headers):
    """A multipart/mixed message from (headers, body) parts, CRLF line ends."""
    boundary = b"=_outer_7f3a"
    out = headers + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"" + \
        boundary + b"\"\r\n\r\nThis is a multi-part message in MIME format.\r\n"
    for hdr, body in parts:
        out += b"--" + boundary + b"\r\n" + hdr + b"\r\n" + body + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def b64_lines(data):
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def png_chunks(png):
    """[(type, data)] of a PNG, checking the signature and every CRC."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + data) & 0xffffffff, kind
        out.append((kind, data))
        pos += 12 + n
    return out


class AttachedCover(SubmissionRewrite):
    """X-Postern-Stego: yes; cover=attached: the sender's picture is the
    cover, and everything else of the message is what it hides."""

    TEXT_PART = (b"Content-Type: text/plain; charset=utf-8\r\n",
                 b"The plans are in the attached file.\r\n")
    PDF_PART = (b"Content-Type: application/pdf; name=\"plans.pdf\"\r\n"
                b"Content-Disposition: attachment; filename=\"plans.pdf\"\r\n"
                b"Content-Transfer-Encoding: base64\r\n",
                b64_lines(b"%PDF-1.4 pretend plans\n" + bytes(range(256)) * 4))
    HEADERS = (b"From: alice@example.org\r\nTo: bob@example.org\r\n"
               b"Subject: holiday pictures\r\nMessage-ID: <cover-1@example.org>\r\n"
               b"X-Postern-Stego: yes; cover=attached\r\n")

    def cover_part(self, png, fields=b"Content-Type: image/png; name=\"harbour.png\"\r\n"
                   b"Content-Disposition: attachment; filename=\"harbour.png\"\r\n"):
        return (fields + b"Content-Transfer-Encoding: base64\r\n", b64_lines(png))

    def server(self):
        srv = Server(listeners=("submission", "pop3"))
        self.addCleanup(srv.close)
        srv.add_domain("example.org")
        srv.add_user("alice@example.org", "alice pw 1 harbour")
        srv.add_user("bob@example.org", "bob pw 22 tide")
        return srv

    def test_attached_picture_is_the_cover_and_the_rest_is_hidden(self):
        srv = self.server()
        raw_cover = make_cover(240, 180, seed=11)
        # A text chunk and a physical size, as a camera or editor writes them.
        cover = (raw_cover[:33] + png_chunk(b"tEXt", b"Title\0Harbour at dawn") +
                 png_chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)) + raw_cover[33:])
        original = multipart([self.TEXT_PART, self.cover_part(cover), self.PDF_PART],
                             self.HEADERS)
        expected = multipart([self.TEXT_PART, self.PDF_PART], self.HEADERS)
        self.assertEqual(self.submit(srv, ["bob@example.org"], original), {})
        raw = self.retrieve(srv, "bob@example.org", "bob pw 22 tide")
        self.assertNotIn(b"plans", raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg["Subject"], "A picture for you")
        parts = [p for p in msg.walk() if p.get_content_type() == "image/png"]
        pngs = [p.get_payload(decode=True) for p in parts]
        self.assertEqual(len(pngs), 1)
        # The sender's picture keeps its own name.
        self.assertEqual(parts[0].get_filename(), "harbour.png")
        self.assertEqual(parts[0].get_param("name"), "harbour.png")
        # The sender's picture: same size and metadata, every sample within 1.
        chunks = png_chunks(pngs[0])
        self.assertEqual(chunks[0], (b"IHDR", png_chunks(cover)[0][1]))
        self.assertIn((b"tEXt", b"Title\0Harbour at dawn"), chunks)
        self.assertIn((b"pHYs", struct.pack(">IIB", 2835, 2835, 1)), chunks)
        res, body = self.extract(srv, pngs[0], "bob@example.org", "bob pw 22 tide")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(body, expected)

    def take_one(self, srv, user, password):
        """The one message in USER's maildrop, deleted after reading."""
        with pop3_session(srv, user, password) as p:
            self.assertEqual(p.stat()[0], 1)
            lines = p.retr(1)[1]
            p.dele(1)
        return b"\r\n".join(lines) + b"\r\n"

    def test_cover_keeps_its_file_name_sanitised(self):
        srv = self.server()
        cover = make_cover(240, 180, seed=5)
        utf8_2231 = rb"filename\*(0\*)?=(?i:utf-8)''"
        cases = [
            # RFC 2231 (UTF-8, continued) in, RFC 2231 (UTF-8) out.
            (b"Content-Type: image/png\r\nContent-Disposition: attachment;\r\n"
             b" filename*0*=UTF-8''H%C3%A4fen%20am%20Meer%20;\r\n"
             b" filename*1*=%E2%80%93%20Sommer.png\r\n",
             "H\u00e4fen am Meer \u2013 Sommer.png", utf8_2231),
            # RFC 2047 in the Content-Type name only (what some clients send).
            (b"Content-Type: image/png; name=\"=?UTF-8?B?w6lsw6lwaGFudC5wbmc=?=\"\r\n",
             "\u00e9l\u00e9phant.png", utf8_2231),
            # A path, quotes and an encoded CR LF: only the name stays.
            (b"Content-Disposition: attachment;\r\n"
             b" filename*=UTF-8''..%2F..%2Fetc%2F%22evil%22%0D%0ABcc%3A%20x.png\r\n"
             b"Content-Type: image/png\r\n",
             "evilBcc: x.png", None),
            (b"Content-Type: image/png; name=\"C:\\\\Users\\\\me\\\\boat.png\"\r\n",
             "boat.png", None),
            # A long name is cut to 200 bytes, between characters.
            (b"Content-Type: image/png\r\nContent-Disposition: attachment; filename*=UTF-8''"
             + b"%C3%A9" * 150 + b".png\r\n", "\u00e9" * 100, utf8_2231),
            # No name, or none left after cleaning: the neutral default.
            (b"Content-Type: image/png\r\n", "picture.png", None),
            (b"Content-Type: image/png; name=\"..\"\r\n", "picture.png", None),
        ]
        for n, (fields, want, raw_form) in enumerate(cases):
            with self.subTest(want=want):
                headers = self.HEADERS.replace(b"holiday pictures", b"name %d" % n)
                original = multipart([self.TEXT_PART, self.cover_part(cover, fields),
                                      self.PDF_PART], headers)
                self.assertEqual(self.submit(srv, ["bob@example.org"], original), {})
                raw = self.take_one(srv, "bob@example.org", "bob pw 22 tide")
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                parts = [p for p in msg.walk() if p.get_content_type() == "image/png"]
                self.assertEqual(len(parts), 1)
                self.assertEqual(parts[0].get_filename(), want)
                self.assertEqual(parts[0].get_param("name"), want)
                head = raw[raw.index(b"Content-Type: image/png"):]
                head = head[:head.index(b"\r\n\r\n")]
                self.assertNotIn(b"/", head.replace(b"image/png", b""))
                # The encoded CR LF did not start a field of its own.
                self.assertNotIn(b"\nBcc", head)
                self.assertIsNone(parts[0]["Bcc"])
                if raw_form:
                    self.assertRegex(head, raw_form)
                else:
                    self.assertTrue(all(b < 0x80 for b in head), head)

    def test_cover_too_small_or_missing_is_refused_with_the_reason(self):
        srv = self.server()
        tiny = make_cover(40, 30)
        big_pdf = (self.PDF_PART[0], b64_lines(os.urandom(20000)))
        original = multipart([self.TEXT_PART, self.cover_part(tiny), big_pdf], self.HEADERS)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit(srv, ["bob@example.org"], original)
        self.assertEqual(cm.exception.smtp_code, 554)
        text = cm.exception.smtp_error.decode()
        self.assertIn("too small", text)
        self.assertIn("holds %d bytes" % (40 * 30 * 3 // 8 - 125), text)
        self.assertRegex(text, r"at least \d+ pixels")
        needed = int(text.split("at least ")[1].split()[0])
        self.assertGreater(needed, 20000 * 8 // 3)
        # No picture at all; a picture that is not a PNG.
        for parts in ([self.TEXT_PART, self.PDF_PART],
                      [self.TEXT_PART, self.cover_part(b"GIF89a not a png")]):
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                self.submit(srv, ["bob@example.org"], multipart(parts, self.HEADERS))
            self.assertEqual(cm.exception.smtp_code, 554)
            self.assertIn(b"cover", cm.exception.smtp_error)
        # An unknown parameter is refused, not ignored.
        bad = self.HEADERS.replace(b"cover=attached", b"cover=somewhere")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit(srv, ["bob@example.org"],
                        multipart([self.TEXT_PART, self.cover_part(make_cover(200, 150))], bad))
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertIn(b"unknown parameter", cm.exception.smtp_error)
        self.assert_pop3_empty(srv, "bob@example.org", "bob pw 22 tide")


class PasswordCopies(unittest.TestCase):
    """X-Postern-Stego-Password: other servers' users get a copy hidden
    under the password, through the outbound queue; the password is stored,
    queued and logged nowhere."""

    SECRET = "violet anchor 1897"

    @classmethod
    def setUpClass(cls):
        import test_outbound as ob
        cls.ob = ob
        listeners = ("smtp", "submission", "imap")
        cls.dns = None
        cls.a = Server(listeners=listeners, start=False)
        cls.b = Server(listeners=listeners, start=False)
        try:
            cls.a.add_domain("a.test")
            cls.a.add_user("alice@a.test", ob.PASSWORD)
            cls.a.add_user("carol@a.test", ob.PASSWORD)
            cls.b.add_domain("b.test")
            cls.b.add_user("bob@b.test", ob.PASSWORD)
            cls.dns = ob.pair_dns(cls.a, cls.b, ob.RECORDS)
            ob.start_pair(cls.a, cls.b, cls.dns)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.ob.close_pair(cls.a, cls.b, cls.dns)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="postern-stego-")
        harness.chown_tree(self.dir)
        self.addCleanup(shutil.rmtree, self.dir, True)

    def submit(self, rcpts, message):
        with smtplib.SMTP("127.0.0.1", self.a.port("submission"), timeout=60) as c:
            c.starttls(context=self.a.ssl_context())
            c.login("alice@a.test", self.ob.PASSWORD)
            return c.sendmail("alice@a.test", rcpts, message)

    def picture(self, raw):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg["Subject"], "A picture for you")
        pngs = [p.get_payload(decode=True) for p in msg.walk()
                if p.get_content_type() == "image/png"]
        self.assertEqual(len(pngs), 1)
        return pngs[0]

    def extract(self, png, *args, input=None):
        src, dst = os.path.join(self.dir, "in.png"), os.path.join(self.dir, "out.eml")
        with open(src, "wb") as f:
            f.write(png)
        harness.chown_tree(self.dir)
        res = subprocess.run([tool(), "extract", "--in", src, "--out", dst, *args],
                             input=input, capture_output=True, timeout=120,
                             preexec_fn=harness.demote)
        if res.returncode != 0:
            return res, None
        with open(dst, "rb") as f:
            return res, f.read()

    def test_remote_copy_under_password_and_local_copy_under_key(self):
        secret = self.SECRET.encode()
        original = (b"From: alice@a.test\r\nTo: bob@b.test, carol@a.test\r\n"
                    b"Subject: the crossing\r\nMessage-ID: <pw-1@a.test>\r\n"
                    b"X-Postern-Stego: yes\r\n"
                    b"X-Postern-Stego-Password: " + secret[:6] + b"\r\n " + secret[7:] +
                    b"\r\n\r\nWe cross at the old mill, Thursday before dawn.\r\n")
        # Folded: the value is unfolded (the fold's line break goes, its space stays).
        self.assertEqual(secret[6:7], b" ")
        expected = original.replace(b"X-Postern-Stego-Password: " + secret[:6] + b"\r\n " +
                                    secret[7:] + b"\r\n", b"")
        self.assertEqual(self.submit(["bob@b.test", "carol@a.test"], original), {})
        # Bob, on the other server, gets the picture through the queue.
        raw = None
        deadline = time.monotonic() + self.ob.WAIT
        while raw is None and time.monotonic() < deadline:
            for m in self.ob.mailbox_messages(self.b, "bob@b.test"):
                if b"<pw-1@a.test>" in m:
                    raw = m
            time.sleep(0.5)
        self.assertIsNotNone(raw, "the copy for bob@b.test never arrived")
        for leak in (secret, secret[:6], secret[7:], b"old mill", b"crossing"):
            self.assertNotIn(leak, raw)
        png = self.picture(raw)
        res, body = self.extract(png, "--password", input=secret + b"\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(body, expected)
        res, _ = self.extract(png, "--password", input=b"violet anchor 1898\n")
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"wrong", res.stderr)
        # Carol, local, has her own copy under her key, without the password.
        local = [m for m in self.ob.mailbox_messages(self.a, "carol@a.test")
                 if b"<pw-1@a.test>" in m]
        self.assertEqual(len(local), 1)
        self.assertNotIn(secret, local[0])
        res, body = self.extract(self.picture(local[0]), "--user", "carol@a.test", "-c",
                                 self.a.config_path, input=self.ob.PASSWORD.encode() + b"\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(body, expected)
        # Neither server wrote the password anywhere: logs, trace, and every
        # file of their data dirs (the SQLite store with its queue and WAL).
        self.assertNotIn(self.SECRET, self.a.log())
        self.assertNotIn(self.SECRET, self.a.ctl("trace", "--json", check=False).stdout)
        for srv in (self.a, self.b):
            for root, _, files in os.walk(srv.data_dir):
                for name in files:
                    if not os.path.isfile(os.path.join(root, name)):
                        continue  # the admin socket
                    with open(os.path.join(root, name), "rb") as f:
                        data = f.read()
                    self.assertNotIn(secret, data, os.path.join(root, name))
                    self.assertNotIn(secret[7:], data, os.path.join(root, name))

    def test_password_header_without_stego_is_removed(self):
        original = (b"From: alice@a.test\r\nTo: carol@a.test\r\nSubject: plain\r\n"
                    b"Message-ID: <pw-2@a.test>\r\n"
                    b"X-Postern-Stego-Password: forgotten secret 42\r\n\r\nJust text.\r\n")
        self.assertEqual(self.submit(["carol@a.test"], original), {})
        got = [m for m in self.ob.mailbox_messages(self.a, "carol@a.test")
               if b"<pw-2@a.test>" in m]
        self.assertEqual(len(got), 1)
        self.assertNotIn(b"forgotten secret", got[0])
        self.assertIn(b"Just text.", got[0])

    def test_bad_password_fields_are_refused(self):
        base = (b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: x\r\n"
                b"X-Postern-Stego: yes\r\n")
        queued = len(json.loads(self.a.ctl("queue", "list", "--json").stdout))
        for hdr in (b"X-Postern-Stego-Password:   \r\n",
                    b"X-Postern-Stego-Password: one two three\r\n"
                    b"X-Postern-Stego-Password: four five six\r\n",
                    b"X-Postern-Stego-Password: " + b"x" * 1025 + b"\r\n"):
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                self.submit(["bob@b.test"], base + hdr + b"\r\nbody\r\n")
            self.assertEqual(cm.exception.smtp_code, 554)
            self.assertIn(b"X-Postern-Stego-Password must appear once", cm.exception.smtp_error)
        # Without a password, a remote recipient is refused as before.
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit(["bob@b.test"], base + b"\r\nbody\r\n")
        self.assertIn(b"X-Postern-Stego needs local recipients", cm.exception.smtp_error)
        self.assertEqual(len(json.loads(self.a.ctl("queue", "list", "--json").stdout)), queued)


if __name__ == "__main__":
    unittest.main()

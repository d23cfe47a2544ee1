#!/usr/bin/env python3
"""postern-stego as a real program: capacity, embed and extract with a
password and with a Postern user's key (through the store of a running
server), and the errors a person sees for bad input."""

import email
import email.policy
import imaplib
import os
import poplib
import smtplib
import random
import shutil
import struct
import subprocess
import tempfile
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
        p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=60)
        try:
            p.stls(context=srv.ssl_context())
            p.user(user)
            p.pass_(password)
            count, _ = p.stat()
            self.assertEqual(count, 1)
            lines = p.retr(1)[1]
        finally:
            p.quit()
        return b"\r\n".join(lines) + b"\r\n"

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
            p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=60)
            p.stls(context=srv.ssl_context())
            p.user("bob@example.org")
            p.pass_("bob pw 22 tide")
            self.assertEqual(p.stat()[0], 0)
            p.quit()


if __name__ == "__main__":
    unittest.main()

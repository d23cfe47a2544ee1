#!/usr/bin/env python3
"""SMTP server: smtplib (plain, STARTTLS, SMTPS, AUTH PLAIN/LOGIN, pipelining,
8BITMIME, SMTPUTF8), raw sockets for BDAT and bad input, swaks and curl as
clients, limits, 100 concurrent sessions, and kill -9 under load: every
message that got 250 is in the store after a restart."""

import base64
import json
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.request

import harness
from harness import Server

PASSWORD = "correct horse battery"
DELAY_MS = 300
FAST_AUTH = {"failure_delay_ms": str(DELAY_MS), "argon2_mem": "8M", "argon2_ops": "1"}

MSG = (b"From: Carol <carol@example.net>\r\nTo: alice@example.org\r\n"
       b"Subject: hello\r\n\r\nHello Alice.\r\n")


def tls_context(srv):
    ctx = srv.ssl_context()
    ctx.check_hostname = False
    return ctx


def mailbox_counts(srv, address):
    """{mailbox name: (messages, bytes)} of ADDRESS from posternctl."""
    res = srv.ctl("user", "show", address, "--json")
    info = json.loads(res.stdout)
    return {mb["name"]: (mb["messages"], mb["bytes"]) for mb in info["mailboxes"]}


def inbox(srv, address):
    return mailbox_counts(srv, address)["INBOX"][0]


class Raw:
    """A line-oriented client for what smtplib cannot send."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def reply(self):
        """One whole reply (all lines); returns (code, [texts])."""
        lines = []
        while True:
            data = self.file.readline(100000)
            if not data:
                raise EOFError("connection closed")
            line = data.rstrip(b"\r\n").decode("utf-8", "replace")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text if isinstance(text, bytes) else text.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        """True when the server has closed the connection."""
        try:
            return self.file.readline(100000) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def starttls(self, ctx):
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def close(self):
        self.file.close()
        self.sock.close()


class SMTPBase(unittest.TestCase):
    listeners = ("smtp", "submission", "submissions")
    config = {"auth": FAST_AUTH,
              "limits": {"max_connections_per_ip": "400", "max_errors": "5"}}

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=cls.listeners, config=cls.config)
        cls.srv.add_domain("example.org")
        for user in ("alice", "bob", "carol"):
            cls.srv.add_user("%s@example.org" % user, PASSWORD)
        cls.srv.ctl("alias", "add", "info@example.org", "alice@example.org")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def raw(self, name="smtp"):
        r = Raw(self.srv.port(name))
        self.addCleanup(r.close)
        code, _ = r.reply()
        self.assertEqual(code, 220)
        return r

    def raw_ehlo(self, name="smtp"):
        r = self.raw(name)
        code, lines = r.cmd("EHLO client.example.net")
        self.assertEqual(code, 250)
        return r, lines

    def submission(self):
        s = smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=30)
        self.addCleanup(s.close)
        s.starttls(context=tls_context(self.srv))
        return s


class MXTest(SMTPBase):
    def test_plain_mx_delivery_reaches_the_inbox(self):
        before = mailbox_counts(self.srv, "alice@example.org")["INBOX"]
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            code, lines = s.ehlo("client.example.net")
            self.assertEqual(code, 250)
            for ext in (b"PIPELINING", b"SIZE 36700160", b"8BITMIME", b"SMTPUTF8",
                        b"ENHANCEDSTATUSCODES", b"STARTTLS", b"CHUNKING", b"DSN", b"HELP"):
                self.assertIn(ext, lines)
            self.assertNotIn(b"AUTH", lines, "AUTH must not be offered before TLS")
            self.assertEqual(s.sendmail("carol@example.net", ["alice@example.org"], MSG), {})
        after = mailbox_counts(self.srv, "alice@example.org")["INBOX"]
        self.assertEqual(after[0], before[0] + 1)
        # Return-Path, Received and the scanner's headers are added.
        self.assertGreater(after[1] - before[1], len(MSG) + 100)

    def test_mx_starttls_then_delivery(self):
        before = inbox(self.srv, "bob@example.org")
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            s.starttls(context=tls_context(self.srv))
            code, lines = s.ehlo("client.example.net")
            self.assertNotIn(b"STARTTLS", lines)
            self.assertIn(b"AUTH PLAIN LOGIN", lines)
            self.assertEqual(s.sendmail("", ["bob@example.org"], MSG), {})
        self.assertEqual(inbox(self.srv, "bob@example.org"), before + 1)

    def test_alias_delivers_to_its_target(self):
        before = inbox(self.srv, "alice@example.org")
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            self.assertEqual(s.sendmail("x@example.net", ["INFO@Example.org"], MSG), {})
        self.assertEqual(inbox(self.srv, "alice@example.org"), before + 1)

    def test_unknown_user_and_relay_are_refused(self):
        r, _ = self.raw_ehlo()
        self.assertEqual(r.cmd("MAIL FROM:<x@example.net>")[0], 250)
        code, lines = r.cmd("RCPT TO:<nobody@example.org>")
        self.assertEqual(code, 550)
        self.assertTrue(lines[0].startswith("5.1.1"), lines)
        code, lines = r.cmd("RCPT TO:<victim@elsewhere.example>")
        self.assertEqual(code, 550)
        self.assertTrue(lines[0].startswith("5.7.1"), lines)
        code, _ = r.cmd("DATA")
        self.assertEqual(code, 554, "no valid recipient: DATA must fail")

    def test_vrfy_help_noop_rset_quit(self):
        r, _ = self.raw_ehlo()
        self.assertEqual(r.cmd("VRFY alice")[0], 252)
        self.assertEqual(r.cmd("HELP")[0], 214)
        self.assertEqual(r.cmd("NOOP")[0], 250)
        self.assertEqual(r.cmd("MAIL FROM:<a@example.net>")[0], 250)
        self.assertEqual(r.cmd("RSET")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<alice@example.org>")[0], 503)
        self.assertEqual(r.cmd("QUIT")[0], 221)
        self.assertTrue(r.closed())

    def test_pipelining(self):
        before = inbox(self.srv, "carol@example.org")
        r, _ = self.raw_ehlo()
        r.send(b"MAIL FROM:<p@example.net>\r\nRCPT TO:<carol@example.org>\r\n"
               b"RCPT TO:<nobody@example.org>\r\nDATA\r\n")
        self.assertEqual(r.reply()[0], 250)
        self.assertEqual(r.reply()[0], 250)
        self.assertEqual(r.reply()[0], 550)
        self.assertEqual(r.reply()[0], 354)
        r.send(MSG + b".\r\nNOOP\r\nQUIT\r\n")
        code, lines = r.reply()
        self.assertEqual(code, 250)
        self.assertIn("queued as", lines[0])
        self.assertEqual(r.reply()[0], 250)
        self.assertEqual(r.reply()[0], 221)
        self.assertEqual(inbox(self.srv, "carol@example.org"), before + 1)

    def test_8bitmime(self):
        body = ("From: a@example.net\r\nSubject: caf\u00e9\r\nContent-Type: text/plain; "
                "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                "Gr\u00fc\u00dfe aus K\u00f6ln\r\n").encode()
        before = mailbox_counts(self.srv, "bob@example.org")["INBOX"]
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("8bitmime"))
            self.assertEqual(s.sendmail("a@example.net", ["bob@example.org"], body,
                                        mail_options=["BODY=8BITMIME"]), {})
        after = mailbox_counts(self.srv, "bob@example.org")["INBOX"]
        self.assertEqual(after[0], before[0] + 1)

    def test_smtputf8_address(self):
        r, _ = self.raw_ehlo()
        code, lines = r.cmd("MAIL FROM:<j\u00f6rg@example.net>".encode() + b"\r\n")
        self.assertEqual(code, 553)
        self.assertTrue(lines[0].startswith("5.6.7"))
        self.assertEqual(r.cmd("MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8"
                               .encode() + b"\r\n")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<alice@example.org>")[0], 250)
        # A non-ASCII recipient that does not exist is a normal unknown user.
        self.assertEqual(r.cmd("RCPT TO:<\u00fcser@example.org>".encode() + b"\r\n")[0], 550)
        self.assertEqual(r.cmd("DATA")[0], 354)
        self.assertEqual(r.cmd(MSG + b".\r\n")[0], 250)
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("smtputf8"))
            self.assertEqual(s.sendmail("p\u00e9dro@example.net", ["alice@example.org"], MSG,
                                        mail_options=["SMTPUTF8"]), {})

    def test_bdat_chunks_are_binary_safe(self):
        before = mailbox_counts(self.srv, "bob@example.org")["INBOX"]
        r, _ = self.raw_ehlo()
        self.assertEqual(r.cmd("MAIL FROM:<b@example.net>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<bob@example.org>")[0], 250)
        # The chunk holds what would end DATA and what looks like commands.
        chunk1 = b"Subject: bdat\r\n\r\nline\r\n.\r\nQUIT\r\n"
        chunk2 = b"RSET\r\nlast line\r\n"
        r.send(b"BDAT %d\r\n" % len(chunk1) + chunk1)
        code, lines = r.reply()
        self.assertEqual(code, 250)
        self.assertIn("%d octets" % len(chunk1), lines[0])
        r.send(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
        code, lines = r.reply()
        self.assertEqual(code, 250, lines)
        self.assertIn("queued as", lines[0])
        after = mailbox_counts(self.srv, "bob@example.org")["INBOX"]
        self.assertEqual(after[0], before[0] + 1)
        self.assertGreater(after[1] - before[1], len(chunk1) + len(chunk2))
        # The session goes on normally after the chunks.
        self.assertEqual(r.cmd("NOOP")[0], 250)

    def test_bdat_refused_out_of_sequence_still_consumes_its_chunk(self):
        r, _ = self.raw_ehlo()
        payload = b"MAIL FROM:<evil@example.net>\r\n"
        r.send(b"BDAT %d LAST\r\n" % len(payload) + payload)
        self.assertEqual(r.reply()[0], 503)
        # The chunk was not read as a command: a MAIL now is the first one.
        self.assertEqual(r.cmd("MAIL FROM:<ok@example.net>")[0], 250)

    def test_one_byte_message(self):
        before = inbox(self.srv, "carol@example.org")
        r, _ = self.raw_ehlo()
        self.assertEqual(r.cmd("MAIL FROM:<one@example.net>")[0], 250)
        self.assertEqual(r.cmd("RCPT TO:<carol@example.org>")[0], 250)
        r.send(b"BDAT 1 LAST\r\nx")
        self.assertEqual(r.reply()[0], 250)
        self.assertEqual(inbox(self.srv, "carol@example.org"), before + 1)

    def test_thirty_megabyte_message(self):
        line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
        body = b"Subject: big\r\n\r\n" + line * (30 * 1024 * 1024 // len(line))
        before = mailbox_counts(self.srv, "carol@example.org")["INBOX"]
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=120) as s:
            self.assertEqual(s.sendmail("big@example.net", ["carol@example.org"], body), {})
        after = mailbox_counts(self.srv, "carol@example.org")["INBOX"]
        self.assertEqual(after[0], before[0] + 1)
        self.assertGreaterEqual(after[1] - before[1], len(body))

    def test_declared_size_over_limit(self):
        r, _ = self.raw_ehlo()
        code, lines = r.cmd("MAIL FROM:<a@example.net> SIZE=99999999999")
        self.assertEqual(code, 552)
        self.assertTrue(lines[0].startswith("5.3.4"))

    def test_hundred_concurrent_sessions(self):
        before = inbox(self.srv, "bob@example.org")
        errors = []

        def one(i):
            try:
                with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=120) as s:
                    s.sendmail("c%d@example.net" % i, ["bob@example.org"],
                               b"Subject: concurrent %d\r\n\r\nbody\r\n" % i)
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(errors, [])
        self.assertEqual(inbox(self.srv, "bob@example.org"), before + 100)

    def test_metrics_and_trace(self):
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            s.noop()
        url = "http://127.0.0.1:%d/metrics" % self.srv.metrics_port
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        self.assertIn('protocol="smtp"', text)
        self.assertIn('command="NOOP"', text)


class SubmissionTest(SMTPBase):
    def test_auth_and_mail_before_tls_get_530(self):
        r, lines = self.raw_ehlo("submission")
        self.assertIn("STARTTLS", lines)
        self.assertFalse(any(x.startswith("AUTH") for x in lines))
        code, lines = r.cmd("AUTH PLAIN " + base64.b64encode(
            b"\0alice@example.org\0" + PASSWORD.encode()).decode())
        self.assertEqual(code, 530)
        self.assertTrue(lines[0].startswith("5.7.0"))
        code, lines = r.cmd("MAIL FROM:<alice@example.org>")
        self.assertEqual(code, 530)
        self.assertTrue(lines[0].startswith("5.7.0"))

    def test_mail_without_auth_after_tls_is_refused(self):
        s = self.submission()
        s.ehlo()
        code, _ = s.mail("alice@example.org")
        self.assertEqual(code, 530)

    def test_auth_plain_and_local_delivery(self):
        before = inbox(self.srv, "bob@example.org")
        s = self.submission()
        self.assertEqual(s.login("alice@example.org", PASSWORD)[0], 235)
        self.assertEqual(s.sendmail("alice@example.org", ["bob@example.org"], MSG), {})
        self.assertEqual(inbox(self.srv, "bob@example.org"), before + 1)

    def test_auth_login(self):
        s = self.submission()
        s.ehlo()
        s.user, s.password = "alice@example.org", PASSWORD
        self.assertEqual(s.auth("LOGIN", s.auth_login)[0], 235)

    def test_auth_plain_without_initial_response(self):
        r = Raw(self.srv.port("submission"))
        self.addCleanup(r.close)
        r.reply()
        r.cmd("EHLO c.example")
        self.assertEqual(r.cmd("STARTTLS")[0], 220)
        r.starttls(self.srv.ssl_context())
        r.cmd("EHLO c.example")
        self.assertEqual(r.cmd("AUTH PLAIN")[0], 334)
        code, _ = r.cmd(base64.b64encode(b"\0alice@example.org\0" + PASSWORD.encode()) + b"\r\n")
        self.assertEqual(code, 235)

    def test_wrong_password_is_refused_after_a_delay(self):
        s = self.submission()
        s.ehlo()
        start = time.monotonic()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login("alice@example.org", "wrong password")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertGreaterEqual(time.monotonic() - start, DELAY_MS / 1000.0)
        # The password never reaches the trace.
        res = self.srv.ctl("trace", "--json")
        self.assertNotIn("wrong password", res.stdout)
        self.assertNotIn(base64.b64encode(b"\0alice@example.org\0wrong password").decode(),
                         res.stdout)

    def test_smtps_implicit_tls(self):
        before = inbox(self.srv, "carol@example.org")
        with smtplib.SMTP_SSL("127.0.0.1", self.srv.port("submissions"), timeout=30,
                              context=tls_context(self.srv)) as s:
            code, lines = s.ehlo()
            self.assertNotIn(b"STARTTLS", lines)
            s.login("bob@example.org", PASSWORD)
            self.assertEqual(s.sendmail("bob@example.org", ["carol@example.org"], MSG), {})
        self.assertEqual(inbox(self.srv, "carol@example.org"), before + 1)

    def test_sender_must_be_owned(self):
        s = self.submission()
        s.login("alice@example.org", PASSWORD)
        code, msg = s.mail("bob@example.org")
        self.assertEqual(code, 553)
        self.assertIn(b"5.7.1", msg)
        s.rset()
        code, _ = s.mail("")
        self.assertEqual(code, 553)
        s.rset()
        # An alias of hers is hers.
        self.assertEqual(s.mail("info@example.org")[0], 250)

    def test_granted_address_and_domain_may_be_sent_as_until_revoked(self):
        srv = self.srv
        srv.ctl("domain", "add", "partner.example")
        srv.ctl("sender", "grant", "bob@example.org", "Press@Example.net")
        srv.ctl("sender", "grant", "bob@example.org", "@partner.example")
        listed = json.loads(srv.ctl("sender", "list", "bob@example.org", "--json").stdout)
        self.assertEqual(listed["user"], "bob@example.org")
        self.assertEqual([g["sender"] for g in listed["senders"]],
                         ["@partner.example", "press@example.net"])
        text = srv.ctl("sender", "list", "bob@example.org").stdout
        self.assertIn("press@example.net", text)
        before = inbox(srv, "carol@example.org")
        s = self.submission()
        s.login("bob@example.org", PASSWORD)
        for sender in ("press@example.net", "PRESS@example.net", "anyone@partner.example",
                       "bob@example.org"):
            self.assertEqual(s.sendmail(sender, ["carol@example.org"], MSG), {}, sender)
        self.assertEqual(inbox(srv, "carol@example.org"), before + 4)
        # A grant is the grantee's alone, and @domain covers that domain only.
        for sender in ("press2@example.net", "x@sub.partner.example", "alice@example.org"):
            code, msg = s.mail(sender)
            self.assertEqual((code, msg), (553, b"5.7.1 Sender address not owned by "
                                                b"authenticated user"), sender)
            s.rset()
        s2 = self.submission()
        s2.login("carol@example.org", PASSWORD)
        self.assertEqual(s2.mail("press@example.net")[0], 553)
        s2.rset()
        # Revoked: refused at once, with the usual text (a fresh session: the
        # refusals above count toward max_errors).
        srv.ctl("sender", "revoke", "bob@example.org", "press@example.net")
        srv.ctl("sender", "revoke", "bob@example.org", "@PARTNER.example")
        s = self.submission()
        s.login("bob@example.org", PASSWORD)
        for sender in ("press@example.net", "anyone@partner.example"):
            code, msg = s.mail(sender)
            self.assertEqual(code, 553, sender)
            self.assertIn(b"5.7.1", msg)
            s.rset()
        self.assertEqual(s.mail("bob@example.org")[0], 250)
        listed = json.loads(srv.ctl("sender", "list", "bob@example.org", "--json").stdout)
        self.assertEqual(listed["senders"], [])
        audit = srv.ctl("audit", "--json", check=False).stdout
        self.assertIn("sender.grant", audit)

    def test_sender_cli_bad_arguments(self):
        srv = self.srv
        cases = [
            (("sender", "grant", "bob@example.org"), 2),
            (("sender", "grant", "bob@example.org", "not an address"), 2),
            (("sender", "grant", "bob@example.org", "@"), 2),
            (("sender", "grant", "bob@example.org", "@no_dots"), 2),
            (("sender", "grant", "bob", "x@example.net"), 2),
            (("sender", "grant", "nobody@example.org", "x@example.net"), 3),
            (("sender", "revoke", "bob@example.org", "never@example.net"), 3),
            (("sender", "list"), 2),
            (("sender", "list", "nobody@example.org"), 3),
            (("sender", "frobnicate"), 2),
        ]
        for args, want in cases:
            res = srv.ctl(*args, check=False)
            self.assertEqual(res.returncode, want, (args, res.stderr))
            self.assertTrue(res.stderr.strip(), args)
        srv.ctl("sender", "grant", "carol@example.org", "list@example.net")
        res = srv.ctl("sender", "grant", "carol@example.org", "LIST@example.net", check=False)
        self.assertEqual(res.returncode, 4, res.stderr)
        srv.ctl("sender", "revoke", "carol@example.org", "list@example.net")

    def test_remote_recipient_is_queued(self):
        def queued():
            out = self.srv.ctl("status").stdout
            for line in out.splitlines():
                if line.startswith("Queued:"):
                    return int(line.split()[1])
            raise AssertionError("no Queued line in status:\n" + out)

        before = queued()
        s = self.submission()
        s.login("alice@example.org", PASSWORD)
        self.assertEqual(s.sendmail("alice@example.org", ["dave@remote.example"], MSG,
                                    rcpt_options=["NOTIFY=SUCCESS,FAILURE"]), {})
        self.assertEqual(queued(), before + 1)


class BadInputTest(SMTPBase):
    def test_long_command_line(self):
        r, _ = self.raw_ehlo()
        code, lines = r.cmd("NOOP " + "x" * 2000)
        self.assertEqual(code, 500)
        self.assertTrue(lines[0].startswith("5.5.2"))
        self.assertEqual(r.cmd("NOOP")[0], 250)

    def test_nul_and_bare_lf_in_commands(self):
        r, _ = self.raw_ehlo()
        self.assertEqual(r.cmd(b"NO\0OP\r\n")[0], 500)
        code, lines = r.cmd(b"NOOP\n")
        self.assertEqual(code, 500)
        self.assertIn("CRLF", lines[0])

    def test_out_of_sequence_commands(self):
        r = self.raw()
        self.assertEqual(r.cmd("MAIL FROM:<a@example.net>")[0], 503)
        r.cmd("EHLO c.example")
        self.assertEqual(r.cmd("RCPT TO:<alice@example.org>")[0], 503)
        self.assertEqual(r.cmd("DATA")[0], 503)
        self.assertEqual(r.cmd("MAIL FROM:<a@example.net>")[0], 250)
        self.assertEqual(r.cmd("MAIL FROM:<a@example.net>")[0], 503)

    def test_malformed_addresses(self):
        r, _ = self.raw_ehlo()
        for bad in ("MAIL FROM:a@example.net", "MAIL FROM:<a@@example.net>",
                    "MAIL FROM:<a@example.net\tBcc: x@y.z>", "MAIL FROM:<a..b@example.net>"):
            code, _ = r.cmd(bad)
            self.assertEqual(code // 100, 5, bad)
            if code == 421:
                break

    def test_smuggling_sequences_do_not_end_data(self):
        before = inbox(self.srv, "alice@example.org")
        for seq in (b"\n.\n", b"\r.\r\n", b"\n.\r\n", b"\r\n.\n"):
            r, _ = self.raw_ehlo()
            self.assertEqual(r.cmd("MAIL FROM:<a@example.net>")[0], 250)
            self.assertEqual(r.cmd("RCPT TO:<alice@example.org>")[0], 250)
            self.assertEqual(r.cmd("DATA")[0], 354)
            r.send(b"Subject: smuggle\r\n\r\nbody" + seq +
                   b"MAIL FROM:<admin@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                   b"DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
            code, lines = r.reply()
            self.assertEqual(code, 554, (seq, lines))
            self.assertTrue(lines[0].startswith("5.6.0"))
            # Exactly one reply: nothing after the sequence was taken as a command.
            self.assertEqual(r.cmd("NOOP")[0], 250)
        self.assertEqual(inbox(self.srv, "alice@example.org"), before)

    def test_too_many_errors_close_with_421(self):
        r, _ = self.raw_ehlo()
        for _ in range(4):
            self.assertEqual(r.cmd("BOGUS")[0], 500)
        r.send(b"BOGUS\r\n")
        self.assertEqual(r.reply()[0], 500)
        code, lines = r.reply()
        self.assertEqual(code, 421)
        self.assertTrue(r.closed())

    def test_pipelined_input_before_starttls_is_discarded(self):
        r, _ = self.raw_ehlo()
        r.send(b"STARTTLS\r\nMAIL FROM:<injected@example.net>\r\n")
        self.assertEqual(r.reply()[0], 220)
        r.starttls(self.srv.ssl_context())
        # If the injected MAIL had survived, its reply would come first.
        code, lines = r.cmd("EHLO c.example")
        self.assertEqual(code, 250, lines)
        self.assertIn("AUTH PLAIN LOGIN", lines)
        # And the transaction state is fresh.
        self.assertEqual(r.cmd("RCPT TO:<alice@example.org>")[0], 503)


class LimitsTest(SMTPBase):
    listeners = ("smtp",)
    config = {"auth": FAST_AUTH,
              "limits": {"max_message_size": "64K", "max_recipients": "100",
                         "idle_timeout": "2", "max_line_length": "1000"}}

    def test_message_over_limit_is_read_to_the_end_then_refused(self):
        before = inbox(self.srv, "alice@example.org")
        r, _ = self.raw_ehlo()
        r.cmd("MAIL FROM:<a@example.net>")
        r.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(r.cmd("DATA")[0], 354)
        r.send(b"Subject: big\r\n\r\n" + b"y" * 70 + b"\r\n" * 1 +
               (b"z" * 98 + b"\r\n") * 1000 + b".\r\n")
        code, lines = r.reply()
        self.assertEqual(code, 552)
        self.assertTrue(lines[0].startswith("5.3.4"))
        self.assertEqual(r.cmd("NOOP")[0], 250)
        self.assertEqual(inbox(self.srv, "alice@example.org"), before)

    def test_data_line_over_limit_is_refused(self):
        r, _ = self.raw_ehlo()
        r.cmd("MAIL FROM:<a@example.net>")
        r.cmd("RCPT TO:<alice@example.org>")
        r.cmd("DATA")
        r.send(b"Subject: x\r\n\r\n" + b"w" * 1500 + b"\r\n.\r\n")
        self.assertEqual(r.reply()[0], 552)

    def test_hundred_recipients_and_the_limit(self):
        for i in range(100):
            self.srv.ctl("alias", "add", "list%d@example.org" % i, "bob@example.org")
        before = inbox(self.srv, "bob@example.org")
        r, _ = self.raw_ehlo()
        self.assertEqual(r.cmd("MAIL FROM:<a@example.net>")[0], 250)
        r.send(b"".join(b"RCPT TO:<list%d@example.org>\r\n" % i for i in range(100)))
        for i in range(100):
            self.assertEqual(r.reply()[0], 250, i)
        code, lines = r.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(code, 452)
        self.assertTrue(lines[0].startswith("4.5.3"))
        self.assertEqual(r.cmd("DATA")[0], 354)
        self.assertEqual(r.cmd(MSG + b".\r\n")[0], 250)
        # A hundred aliases of one user: one copy.
        self.assertEqual(inbox(self.srv, "bob@example.org"), before + 1)

    def test_idle_timeout_421(self):
        r = self.raw()
        code, lines = r.reply()
        self.assertEqual(code, 421)
        self.assertTrue(lines[0].startswith("4.4.2"))

    def test_quota_refusals(self):
        self.srv.add_user("small@example.org", PASSWORD)
        self.srv.ctl("quota", "set", "small@example.org", "1K")
        r, _ = self.raw_ehlo()
        r.cmd("MAIL FROM:<a@example.net>")
        self.assertEqual(r.cmd("RCPT TO:<small@example.org>")[0], 250)
        r.cmd("DATA")
        code, lines = r.cmd(b"Subject: q\r\n\r\n" + b"q" * 900 + b"\r\n" + b"q" * 900 +
                            b"\r\n.\r\n")
        self.assertEqual(code, 552)
        self.assertTrue(lines[0].startswith("5.2.2"))
        self.assertEqual(inbox(self.srv, "small@example.org"), 0)
        # A small message fits; once the mailbox is over its (lowered) quota,
        # RCPT already says so.
        r.cmd("MAIL FROM:<a@example.net>")
        r.cmd("RCPT TO:<small@example.org>")
        r.cmd("DATA")
        self.assertEqual(r.cmd(b"Subject: q\r\n\r\nsmall\r\n.\r\n")[0], 250)
        self.assertEqual(inbox(self.srv, "small@example.org"), 1)
        self.srv.ctl("quota", "set", "small@example.org", "100")
        r.cmd("MAIL FROM:<a@example.net>")
        code, lines = r.cmd("RCPT TO:<small@example.org>")
        self.assertEqual(code, 452)
        self.assertTrue(lines[0].startswith("4.2.2"))


class ClientsTest(SMTPBase):
    @unittest.skipUnless(shutil.which("swaks"), "swaks is not installed")
    def test_swaks_mx_and_submission(self):
        before = inbox(self.srv, "carol@example.org")
        res = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.srv.port("smtp"),
                              "--from", "s@example.net", "--to", "carol@example.org",
                              "--tls"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        res = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.srv.port("submission"),
                              "--from", "alice@example.org", "--to", "carol@example.org",
                              "--tls", "--auth", "LOGIN", "--auth-user", "alice@example.org",
                              "--auth-password", PASSWORD],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(inbox(self.srv, "carol@example.org"), before + 2)

    @unittest.skipUnless(shutil.which("curl"), "curl is not installed")
    def test_curl_smtp_and_smtps(self):
        before = inbox(self.srv, "carol@example.org")
        res = subprocess.run(["curl", "-sS", "--url", "smtp://127.0.0.1:%d" % self.srv.port("smtp"),
                              "--mail-from", "k@example.net", "--mail-rcpt", "carol@example.org",
                              "--upload-file", "-"],
                             input=MSG, capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        res = subprocess.run(["curl", "-sS", "--url",
                              "smtps://localhost:%d" % self.srv.port("submissions"),
                              "--cacert", self.srv.cafile, "--user",
                              "bob@example.org:" + PASSWORD, "--mail-from", "bob@example.org",
                              "--mail-rcpt", "carol@example.org", "--upload-file", "-"],
                             input=MSG, capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(inbox(self.srv, "carol@example.org"), before + 2)


class ReadBackTest(SMTPBase):
    """What SMTP accepted comes back byte for byte through POP3 (decrypted with
    the user's key after login), below the headers delivery added."""
    listeners = ("smtp", "pop3s")

    def retr_all(self, address):
        pop = poplib.POP3_SSL("127.0.0.1", self.srv.port("pop3s"), timeout=60,
                              context=tls_context(self.srv))
        try:
            pop.user(address)
            pop.pass_(PASSWORD)
            count, _ = pop.stat()
            out = []
            for i in range(1, count + 1):
                _, lines, _ = pop.retr(i)
                out.append(b"\r\n".join(lines) + b"\r\n")
            return out
        finally:
            pop.quit()

    def test_data_and_bdat_messages_read_back_byte_exact(self):
        data_msg = ("From: a@example.net\r\nSubject: read back \u00e9\r\n\r\n"
                    ".leading dot\r\n..two dots\r\n.\r\n \r\ntabs\tand 8-bit "
                    "\u00fc\u00f1\u00ee\r\n").encode() + b"".join(
                        b"%05d the quick brown fox\r\n" % i for i in range(20000))
        bdat_msg = b"Subject: bdat read back\r\n\r\nline\r\n.\r\nafter the dot\r\n"
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=60,
                          local_hostname="client.example.net") as s:
            self.assertEqual(s.sendmail("a@example.net", ["carol@example.org"], data_msg,
                                        mail_options=["BODY=8BITMIME"]), {})
        r, _ = self.raw_ehlo()
        r.cmd("MAIL FROM:<b@example.net>")
        r.cmd("RCPT TO:<carol@example.org>")
        r.send(b"BDAT %d LAST\r\n" % len(bdat_msg) + bdat_msg)
        self.assertEqual(r.reply()[0], 250)
        got = self.retr_all("carol@example.org")
        self.assertEqual(len(got), 2)
        for stored, sent in zip(got, (data_msg, bdat_msg)):
            self.assertTrue(stored.startswith(b"Return-Path: <"), stored[:80])
            self.assertTrue(b"\r\nReceived: from client.example.net ([127.0.0.1])\r\n"
                            in stored[:400], stored[:400])
            self.assertTrue(stored.endswith(sent), "stored copy differs from what was sent")

    def test_phishing_goes_to_junk_and_malware_to_quarantine(self):
        data = os.path.join(os.environ.get("POSTERN_SRCDIR", harness.SRCDIR),
                            "tests", "data", "scan")
        with open(os.path.join(data, "lookalike.eml"), "rb") as f:
            phish = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with open(os.path.join(data, "eicar_body.eml"), "rb") as f:
            eicar = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        before = mailbox_counts(self.srv, "alice@example.org")
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=60) as s:
            self.assertEqual(s.sendmail("p@example.net", ["alice@example.org"], phish), {})
        after = mailbox_counts(self.srv, "alice@example.org")
        self.assertEqual(after["Junk"][0], before["Junk"][0] + 1)
        self.assertEqual(after["INBOX"][0], before["INBOX"][0])
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=60) as s:
            self.assertEqual(s.sendmail("m@example.net", ["alice@example.org"], eicar), {})
        # Accepted (the sender learns nothing), but in no mailbox of the user.
        self.assertEqual(mailbox_counts(self.srv, "alice@example.org"), after)


class CrashTest(unittest.TestCase):
    def test_kill9_during_load_keeps_every_acknowledged_message(self):
        srv = Server(listeners=("smtp",), config={
            "auth": FAST_AUTH, "limits": {"max_connections_per_ip": "100"}})
        self.addCleanup(srv.close)
        srv.add_domain("example.org")
        srv.add_user("load@example.org", PASSWORD)
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def sender(n):
            i = 0
            while not stop.is_set():
                try:
                    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=10) as s:
                        while not stop.is_set():
                            s.sendmail("l@example.net", ["load@example.org"],
                                       b"Subject: load %d-%d\r\n\r\nbody\r\n" % (n, i))
                            with lock:
                                acked.append((n, i))
                            i += 1
                except (OSError, smtplib.SMTPException):
                    return

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        srv.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertGreater(len(acked), 0, "no message was acknowledged before the kill")
        srv.start()
        stored = inbox(srv, "load@example.org")
        self.assertGreaterEqual(stored, len(acked))


if __name__ == "__main__":
    unittest.main()

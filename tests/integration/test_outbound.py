#!/usr/bin/env python3
"""Outbound delivery between two real posternd instances on loopback.

A dnsmasq started by the test serves the zones a.test, b.test and a few
broken ones on 127.0.0.1. Instance A hosts a.test, instance B hosts b.test;
each one's [queue] resolver points at the DNS server and remote_port at the
other's MX listener, so mail for the other domain goes out through MX lookup,
STARTTLS and the SMTP client, is retried while the peer is down, and comes
back as a DSN bounce when the peer refuses it.
"""

import email
import email.policy
import imaplib
import json
import os
import shutil
import smtplib
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Server, free_port, RUN_AS

PASSWORD = "correct horse battery"
FAST_AUTH = {"failure_delay_ms": "100", "argon2_mem": "8M", "argon2_ops": "1"}
WAIT = 90  # seconds for a message to cross between instances (polled; a busy machine can take long)


def dnsmasq_path():
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, "dnsmasq")
        if os.access(p, os.X_OK):
            return p
    return shutil.which("dnsmasq")


class DNS:
    """dnsmasq answering only for .test names from the command line."""

    def __init__(self, records, port=None, timeout=30):
        self.dir = tempfile.mkdtemp(prefix="postern-dns-")
        for attempt in range(3):
            # A port found free may be taken before dnsmasq binds it: then another.
            self.port = port if port and attempt == 0 else free_port()
            args = [dnsmasq_path(), "--keep-in-foreground", "--conf-file=/dev/null",
                    "--no-resolv", "--no-hosts", "--no-negcache", "--local=/test/",
                    "--listen-address=127.0.0.1", "--bind-interfaces",
                    "--port=%d" % self.port, "--pid-file=" + os.path.join(self.dir, "pid"),
                    "--log-facility=" + os.path.join(self.dir, "log")]
            if RUN_AS:
                args.append("--user=" + RUN_AS)
            self.proc = subprocess.Popen(args + records, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            # Ready when it accepts on its TCP port (it binds UDP and TCP together).
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        self.proc.kill()
                        self.proc.wait()
                        raise RuntimeError("dnsmasq not ready within %ss" % timeout)
                    time.sleep(0.05)
            error = self.proc.stderr.read().decode()
            self.proc.stderr.close()
            if "in use" not in error:
                break
        raise RuntimeError("dnsmasq failed: %s" % error)

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def address(self):
        return "127.0.0.1@%d" % self.port


RECORDS = [
    "--mx-host=a.test,mx.a.test,10",
    "--host-record=mx.a.test,127.0.0.1",
    "--mx-host=b.test,mx1.b.test,20",
    "--mx-host=b.test,mx0.b.test,10",
    # mx0 has no address at all: the client moves on to mx1 (preference order)
    "--host-record=mx1.b.test,127.0.0.1",
    # no MX: the domain's own address is the implicit MX
    "--host-record=implicit.test,127.0.0.1",
    # RFC 7505: this domain takes no mail
    "--mx-host=nullmx.test,.,0",
]


# SPF, DMARC for the inbound checks on the MX (127.0.0.1 is where test mail comes from).
AUTH_RECORDS = [
    "--txt-record=a.test,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=_dmarc.a.test,v=DMARC1; p=reject",
    "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=_dmarc.fail.test,v=DMARC1; p=reject",
    "--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all",
    "--txt-record=quarantine.test,v=spf1 -all",
    "--txt-record=_dmarc.quarantine.test,v=DMARC1; p=quarantine",
]


def queue_config(dns, remote_port, **extra):
    q = {"resolver": dns.address, "remote_port": str(remote_port), "poll_interval": "1",
         "retry_min": "1", "retry_max": "2", "timeout": "10"}
    q.update({k: str(v) for k, v in extra.items()})
    return {"queue": q, "auth": FAST_AUTH}


def pair_dns(a, b, records):
    """A DNS server with RECORDS on a port that neither A nor B takes (their
    ports are chosen but not bound until they start)."""
    taken = set(a.ports.values()) | set(b.ports.values()) | {a.metrics_port, b.metrics_port}
    port = free_port()
    while port in taken:
        port = free_port()
    return DNS(records, port=port)


def start_pair(a, b, dns):
    """Starts A and B, each one's queue resolving through DNS and delivering
    to the other's SMTP port."""
    for srv, peer in ((a, b), (b, a)):
        srv.overrides = queue_config(dns, peer.port("smtp"))
        srv._write_config()
        srv.start()


def close_pair(a, b, dns):
    """Stops A, B and DNS (None when it never started), each even when one fails."""
    try:
        a.close()
    finally:
        try:
            b.close()
        finally:
            if dns:
                dns.close()


def submit(srv, sender, rcpt, msg):
    ctx = srv.ssl_context()
    ctx.check_hostname = False
    with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=30) as s:
        s.starttls(context=ctx)
        s.login(sender, PASSWORD)
        s.sendmail(sender, [rcpt], msg)


def mailbox_messages(srv, user):
    """Every message of USER's INBOX and Junk (the scanner may file short test
    mail as junk; where it lands is not what these tests are about), over IMAP."""
    ctx = srv.ssl_context()
    ctx.check_hostname = False
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30)
    out = []
    try:
        imap.starttls(ssl_context=ctx)
        imap.login(user, PASSWORD)
        for mailbox in ("INBOX", "Junk"):
            typ, _ = imap.select(mailbox, readonly=True)
            if typ != "OK":
                continue
            typ, data = imap.search(None, "ALL")
            for num in data[0].split():
                typ, parts = imap.fetch(num, "(BODY.PEEK[])")
                out.append(parts[0][1])
        imap.logout()
    finally:
        try:
            imap.shutdown()
        except OSError:
            pass
    return out


def wait_for_messages(srv, user, count, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        msgs = mailbox_messages(srv, user)
        if len(msgs) >= count or time.monotonic() > deadline:
            return msgs
        time.sleep(0.5)


def queue_entries(srv):
    return json.loads(srv.ctl("queue", "list", "--json").stdout)


def make_message(sender, rcpt, subject, body="Hello over the wire.\r\n"):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s" % (
        sender, rcpt, subject, subject.replace(" ", "."), body)).encode()


# An independent DKIM verifier: Debian's python3-dkim (dkimpy), with the key
# record handed in instead of looked up.
DKIM_VERIFY = r"""
import sys, dkim
txt = sys.argv[1].encode()
def dnsfunc(name, timeout=5):
    return txt if name == sys.argv[2].encode() + b"." or name == sys.argv[2].encode() else None
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)
print("pass" if ok else "fail")
"""


def dkimpy_verify(raw, txt, name):
    python = "/usr/bin/python3"
    res = subprocess.run([python, "-c", DKIM_VERIFY, txt, name], input=raw,
                         capture_output=True, timeout=60)
    return res.stdout.decode().strip() or res.stderr.decode()


class TwoInstances(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        listeners = ("smtp", "submission", "imap")
        cls.dns = None
        cls.a = Server(listeners=listeners, start=False)
        cls.b = Server(listeners=listeners, start=False)
        try:
            cls.start_all()
        except BaseException:
            cls.tearDownClass()  # unittest skips it when setUpClass fails
            raise

    @classmethod
    def start_all(cls):
        cls.a.add_domain("a.test")
        cls.a.add_user("alice@a.test", PASSWORD)
        cls.dkim = json.loads(cls.a.ctl("dkim", "keygen", "a.test", "--selector", "s1",
                                        "--json").stdout)
        cls.b.add_domain("b.test")
        cls.b.add_user("bob@b.test", PASSWORD)
        cls.b.add_user("carol@b.test", PASSWORD)
        # the key record is known only now, so the DNS server starts after keygen
        txt = cls.dkim["txt"]
        chunks = ",".join(txt[i:i + 250] for i in range(0, len(txt), 250))
        cls.dns = pair_dns(cls.a, cls.b, RECORDS + AUTH_RECORDS +
                           ["--txt-record=s1._domainkey.a.test," + chunks])
        start_pair(cls.a, cls.b, cls.dns)

    @classmethod
    def tearDownClass(cls):
        close_pair(cls.a, cls.b, cls.dns)

    def seen(self, srv, user, subject):
        """The message with SUBJECT in USER's mailbox, waiting for it."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for raw in mailbox_messages(srv, user):
                if ("Subject: " + subject).encode() in raw:
                    return raw
            time.sleep(0.5)
        self.fail("%r never reached %s; queue log:\n%s" % (subject, user, srv.log()[-3000:]))

    def test_delivery_both_ways_over_tls_via_mx(self):
        submit(self.a, "alice@a.test", "bob@b.test",
               make_message("alice@a.test", "bob@b.test", "a to b"))
        raw = self.seen(self.b, "bob@b.test", "a to b")
        self.assertRegex(raw, rb"Received: from localhost \(.*\[127\.0\.0\.1\]\)")
        self.assertRegex(raw, rb"using TLSv1\.[23] with cipher")
        self.assertIn(b"Hello over the wire.", raw)
        # B checked what came in: SPF (127.0.0.1 is allowed), A's signature, DMARC alignment
        self.assertIn(b"Authentication-Results: localhost;\r\n\tspf=pass smtp.mailfrom=a.test;"
                      b"\r\n\tdkim=pass header.d=a.test;\r\n\tdmarc=pass header.from=a.test\r\n",
                      raw)
        self.assertRegex(raw, rb"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=a\.test;")
        self.assertIn(b"s=s1;", raw)
        self.assertEqual(self.dkim["name"], "s1._domainkey.a.test")
        self.assertTrue(self.dkim["txt"].startswith("v=DKIM1; k=rsa; p=MII"))
        self.assertEqual(dkimpy_verify(raw, self.dkim["txt"], self.dkim["name"]), "pass")
        # a changed body fails the same verifier: the check above is real
        tampered = raw.replace(b"Hello over", b"Hello under")
        self.assertEqual(dkimpy_verify(tampered, self.dkim["txt"], self.dkim["name"]), "fail")
        # and fails B's own check when it comes in again (SPF still aligns for DMARC)
        tampered = tampered.replace(b"Subject: a to b", b"Subject: tampered")
        with smtplib.SMTP("127.0.0.1", self.b.port("smtp"), timeout=30) as s:
            s.sendmail("alice@a.test", ["bob@b.test"], tampered)
        again = self.seen(self.b, "bob@b.test", "tampered")
        self.assertEqual(again.count(b"Authentication-Results: localhost"), 1)
        self.assertIn(b"dkim=fail header.d=a.test;\r\n\tdmarc=pass header.from=a.test", again)

        submit(self.b, "bob@b.test", "alice@a.test",
               make_message("bob@b.test", "alice@a.test", "b to a"))
        raw = self.seen(self.a, "alice@a.test", "b to a")
        self.assertRegex(raw, rb"using TLSv1\.[23] with cipher")
        # B's message is unsigned (b.test has no key); A's carried a signature
        self.assertNotIn(b"DKIM-Signature:", raw)
        # delivered entries leave the queue
        self.assertEqual([e for e in queue_entries(self.a) if e["recipient"] == "bob@b.test"], [])

    def test_one_signed_copy_for_two_recipients(self):
        submit_many(self.a, "alice@a.test", ["bob@b.test", "carol@b.test"],
                    make_message("alice@a.test", "bob@b.test", "to bob and carol"))
        for user in ("bob@b.test", "carol@b.test"):
            raw = self.seen(self.b, user, "to bob and carol")
            # one transaction: A's Received names neither recipient, and the
            # signature, made after that, holds at B and for dkimpy
            fields = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\nReceived: ")
            sent = [f for f in fields if b"with ESMTPSA" in f]
            self.assertEqual(len(sent), 1)
            self.assertNotIn(b"for <", sent[0])
            self.assertIn(b"dkim=pass header.d=a.test", raw)
            self.assertEqual(dkimpy_verify(raw, self.dkim["txt"], self.dkim["name"]), "pass")

    @staticmethod
    def junk_and_inbox(srv, user):
        info = json.loads(srv.ctl("user", "show", user, "--json").stdout)
        counts = {mb["name"]: mb["messages"] for mb in info["mailboxes"]}
        return counts["Junk"], counts["INBOX"]

    def mx_send(self, sender, from_header, subject, extra_headers=""):
        msg = ("%sFrom: <%s>\r\nTo: <bob@b.test>\r\nSubject: %s\r\n\r\nbody\r\n" % (
            extra_headers, from_header, subject)).encode()
        with smtplib.SMTP("127.0.0.1", self.b.port("smtp"), timeout=30) as s:
            s.ehlo("client.test")
            s.sendmail(sender, ["bob@b.test"], msg)

    def test_inbound_dmarc_alignment_policy_and_forged_results(self):
        # (libspf2 lets loopback clients pass SPF here; InboundPolicy checks
        # them with [mailauth] check_loopback.)
        # From in a.test (p=reject), envelope from another domain, no signature:
        # nothing aligns, so the message is refused at DATA
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.mx_send("eve@soft.test", "alice@a.test", "spoofed alice")
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(b"5.7.1", cm.exception.smtp_error)
        self.assertIn(b"DMARC policy of a.test", cm.exception.smtp_error)

        # no DMARC record: accepted and recorded; forged results in our name are
        # removed, others' stay
        self.mx_send("sam@soft.test", "sam@soft.test", "soft one",
                     extra_headers="Authentication-Results: localhost; spf=pass; dkim=pass\r\n"
                                   "Authentication-Results: other.example; spf=fail\r\n")
        raw = self.seen(self.b, "bob@b.test", "soft one")
        self.assertIn(b"Authentication-Results: localhost;\r\n\tspf=pass smtp.mailfrom=soft.test;"
                      b"\r\n\tdkim=none;\r\n\tdmarc=none header.from=soft.test\r\n", raw)
        self.assertEqual(raw.count(b"Authentication-Results: localhost"), 1)
        self.assertIn(b"Authentication-Results: other.example; spf=fail", raw)

        # p=quarantine: accepted into Junk, the failure recorded for the scanner
        before = self.junk_and_inbox(self.b, "bob@b.test")
        self.mx_send("x@soft.test", "q@quarantine.test", "quarantined one")
        raw = self.seen(self.b, "bob@b.test", "quarantined one")
        self.assertIn(b"dmarc=fail (p=quarantine) header.from=quarantine.test", raw)
        after = self.junk_and_inbox(self.b, "bob@b.test")
        self.assertEqual(after, (before[0] + 1, before[1]))

    def test_dkim_keygen_show_and_refusals(self):
        shown = json.loads(self.a.ctl("dkim", "show", "a.test", "--json").stdout)
        self.assertEqual(shown, self.dkim)
        text = self.a.ctl("dkim", "show", "a.test").stdout
        self.assertTrue(text.startswith('s1._domainkey.a.test. IN TXT ( "v=DKIM1; k=rsa; p='))
        self.assertEqual(self.a.ctl("dkim", "keygen", "a.test", check=False).returncode, 4)
        self.assertEqual(self.a.ctl("dkim", "keygen", "c.test", check=False).returncode, 3)
        self.assertEqual(self.a.ctl("dkim", "show", "c.test", check=False).returncode, 3)
        self.assertEqual(self.b.ctl("dkim", "show", "b.test", check=False).returncode, 3)
        res = self.a.ctl("dkim", "keygen", "a.test", "--selector", "bad_sel", "--force",
                         check=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("bad_sel", res.stderr)
        key = os.path.join(self.a.data_dir, "dkim", "a.test.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

    def test_unknown_remote_user_bounces_with_original_headers(self):
        submit(self.a, "alice@a.test", "nobody@b.test",
               make_message("alice@a.test", "nobody@b.test", "to nobody",
                            body="body must not come back\r\n"))
        raw = self.seen(self.a, "alice@a.test", "Undelivered Mail Returned to Sender")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertIn(b"Final-Recipient: rfc822; nobody@b.test", raw)
        self.assertIn(b"Action: failed", raw)
        self.assertRegex(raw, rb"Status: 5\.\d\.\d")
        self.assertIn(b"Remote-MTA: dns; mx1.b.test", raw)
        self.assertIn(b"Content-Type: text/rfc822-headers", raw)
        self.assertIn(b"Subject: to nobody", raw)
        self.assertNotIn(b"body must not come back", raw)
        self.assertIn(b"Return-Path: <>", raw)

    def test_peer_down_then_up_is_retried_and_delivered(self):
        self.b.stop()
        try:
            submit(self.a, "alice@a.test", "bob@b.test",
                   make_message("alice@a.test", "bob@b.test", "while down"))
            deadline = time.monotonic() + WAIT
            entry = None
            while time.monotonic() < deadline:
                entries = [e for e in queue_entries(self.a) if e["recipient"] == "bob@b.test"]
                if entries and entries[0]["attempts"] >= 2:
                    entry = entries[0]
                    break
                time.sleep(0.3)
            self.assertIsNotNone(entry, "no failed attempt recorded:\n" + self.a.log()[-3000:])
            self.assertIn("cannot connect", entry["last_error"])
            self.assertIn("mx1.b.test", entry["last_error"])
        finally:
            self.b.start()
        self.seen(self.b, "bob@b.test", "while down")


# Inbound checks end to end: the test client sends from 127.0.0.1, and with
# [mailauth] check_loopback SPF is evaluated for it like for anyone.
POLICY_RECORDS = AUTH_RECORDS + [
    "--txt-record=nodmarc.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=_dmarc.watch.test,v=DMARC1; p=none",
    # a two-label public suffix (co.uk): example.co.uk and other.co.uk do not align
    "--local=/co.uk/",
    "--txt-record=_dmarc.example.co.uk,v=DMARC1; p=reject",
    "--txt-record=a.b.example.co.uk,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=other.co.uk,v=spf1 ip4:127.0.0.1 -all",
]


def scan_reasons(srv):
    """The scanner's recorded reasons of every stored message, one string."""
    if srv.engine == "mariadb":
        res = subprocess.run(["mariadb", "--no-defaults", "-S",
                              os.environ["POSTERN_TEST_MARIADB_SOCKET"], "-u", "root", "-N",
                              "-e", "SELECT reasons FROM %s.scan_results" % srv.database],
                             check=True, capture_output=True, text=True, timeout=60)
        return res.stdout
    import sqlite3
    db = sqlite3.connect(os.path.join(srv.data_dir, "postern.db"))
    try:
        return "\n".join(r[0] or "" for r in db.execute("SELECT reasons FROM scan_results"))
    finally:
        db.close()


class InboundPolicy(unittest.TestCase):
    """SPF and DMARC verdicts through the MX listener, with a real client."""

    def server(self, dns_address, **mailauth):
        srv = Server(listeners=("smtp", "imap"),
                     config={"queue": {"resolver": dns_address},
                             "mailauth": dict({"check_loopback": "yes"}, **mailauth),
                             "auth": FAST_AUTH})
        self.addCleanup(srv.close)
        srv.add_domain("b.test")
        srv.add_user("bob@b.test", PASSWORD)
        return srv

    @staticmethod
    def send(srv, sender, from_header, subject):
        msg = make_message(from_header, "bob@b.test", subject)
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
            s.ehlo("client.test")
            s.sendmail(sender, ["bob@b.test"], msg)

    def refused(self, srv, sender, from_header, subject):
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send(srv, sender, from_header, subject)
        return cm.exception.smtp_code, cm.exception.smtp_error.decode()

    def received(self, srv, subject):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for raw in mailbox_messages(srv, "bob@b.test"):
                if ("Subject: " + subject).encode() in raw:
                    return raw
            time.sleep(0.3)
        self.fail("%r never arrived:\n%s" % (subject, srv.log()[-3000:]))

    def test_spf_and_dmarc_verdicts_mark_refuse_and_quarantine(self):
        dns = DNS(RECORDS + POLICY_RECORDS)
        self.addCleanup(dns.close)
        srv = self.server(dns.address)

        # SPF fail, no DMARC record: marked (the default policy), and the
        # scanner hears of it
        self.send(srv, "x@nodmarc.test", "x@nodmarc.test", "spf fails")
        raw = self.received(srv, "spf fails")
        self.assertIn(b"spf=fail smtp.mailfrom=nodmarc.test;", raw)
        self.assertIn(b"dmarc=none header.from=nodmarc.test", raw)
        self.assertIn("spf check: fail", scan_reasons(srv))
        # softfail: marked
        self.send(srv, "s@soft.test", "s@soft.test", "spf softfails")
        raw = self.received(srv, "spf softfails")
        self.assertIn(b"spf=softfail smtp.mailfrom=soft.test;", raw)
        self.assertIn("spf check: softfail", scan_reasons(srv))
        # SPF fail and DMARC p=reject: refused
        code, text = self.refused(srv, "eve@fail.test", "eve@fail.test", "dmarc rejects")
        self.assertEqual(code, 550)
        self.assertIn("5.7.1", text)
        self.assertIn("DMARC policy of fail.test", text)
        # p=quarantine: into Junk
        before = TwoInstances.junk_and_inbox(srv, "bob@b.test")
        self.send(srv, "q@quarantine.test", "q@quarantine.test", "dmarc quarantines")
        raw = self.received(srv, "dmarc quarantines")
        self.assertIn(b"spf=fail smtp.mailfrom=quarantine.test;", raw)
        self.assertIn(b"dmarc=fail (p=quarantine) header.from=quarantine.test", raw)
        after = TwoInstances.junk_and_inbox(srv, "bob@b.test")
        self.assertEqual(after, (before[0] + 1, before[1]))
        # SPF passes, DMARC (p=none) fails: delivered, and the scanner hears of it
        self.send(srv, "b@other.co.uk", "x@watch.test", "dmarc only watches")
        raw = self.received(srv, "dmarc only watches")
        self.assertIn(b"spf=pass smtp.mailfrom=other.co.uk;", raw)
        self.assertIn(b"dmarc=fail (p=none) header.from=watch.test", raw)
        self.assertIn("dmarc check: fail", scan_reasons(srv))

        # the organizational domain comes from the public suffix list: a
        # subdomain of example.co.uk aligns, other.co.uk does not
        self.send(srv, "b@a.b.example.co.uk", "x@example.co.uk", "psl aligned")
        raw = self.received(srv, "psl aligned")
        self.assertIn(b"spf=pass smtp.mailfrom=a.b.example.co.uk;", raw)
        self.assertIn(b"dmarc=pass header.from=example.co.uk", raw)
        code, text = self.refused(srv, "b@other.co.uk", "x@example.co.uk", "psl stranger")
        self.assertEqual(code, 550)
        self.assertIn("DMARC policy of example.co.uk", text)

    def test_spf_fail_refused_when_configured(self):
        dns = DNS(RECORDS + POLICY_RECORDS)
        self.addCleanup(dns.close)
        srv = self.server(dns.address, reject_spf_fail="yes")
        code, text = self.refused(srv, "x@nodmarc.test", "x@nodmarc.test", "spf fails")
        self.assertEqual(code, 550)
        self.assertIn("5.7.23", text)
        self.assertIn("nodmarc.test", text)
        # softfail is not fail: accepted and marked
        self.send(srv, "s@soft.test", "s@soft.test", "spf softfails")
        self.assertIn(b"spf=softfail", self.received(srv, "spf softfails"))

    def test_unanswered_dns_ends_in_temperror_in_bounded_time(self):
        # a "DNS server" that takes every query and never answers
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        self.addCleanup(sink.close)
        srv = self.server("127.0.0.1@%d" % sink.getsockname()[1], dns_timeout="2")
        start = time.monotonic()
        self.send(srv, "x@slowdns.test", "x@slowdns.test", "dns never answers")
        self.assertLess(time.monotonic() - start, 8)
        raw = self.received(srv, "dns never answers")
        self.assertIn(b"spf=temperror smtp.mailfrom=slowdns.test;", raw)
        self.assertIn(b"dmarc=temperror", raw)
        self.assertGreater(len(sink.recv(512)), 0)  # the queries did arrive

        # with defer_temperror the client is asked to come back
        srv.stop()
        srv.overrides["mailauth"]["defer_temperror"] = "yes"
        srv._write_config()
        srv.start()
        start = time.monotonic()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send(srv, "x@slowdns.test", "x@slowdns.test", "deferred")
        self.assertLess(time.monotonic() - start, 8)
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertIn(b"4.4.3", cm.exception.smtp_error)


class Expiry(unittest.TestCase):
    def test_expired_message_and_missing_domain_bounce(self):
        dns = DNS(RECORDS)
        self.addCleanup(dns.close)
        dead_port = free_port()  # nothing listens there
        srv = Server(listeners=("smtp", "submission", "imap"),
                     config=queue_config(dns, dead_port, max_age=4, delay_warning=1))
        self.addCleanup(srv.close)
        srv.add_domain("a.test")
        srv.add_user("alice@a.test", PASSWORD)
        submit(srv, "alice@a.test", "carol@implicit.test",
               make_message("alice@a.test", "carol@implicit.test", "never arrives"))
        submit(srv, "alice@a.test", "dave@missing.test",
               make_message("alice@a.test", "dave@missing.test", "no such domain"))
        submit(srv, "alice@a.test", "erin@nullmx.test",
               make_message("alice@a.test", "erin@nullmx.test", "null mx"))
        msgs = wait_for_messages(srv, "alice@a.test", 4)
        self.assertEqual(len(msgs), 4, srv.log()[-3000:])
        # the message that keeps failing gets one delay notice, then the bounce
        delayed = [m for m in msgs if b"Action: delayed" in m]
        self.assertEqual(len(delayed), 1)
        self.assertIn(b"Final-Recipient: rfc822; carol@implicit.test", delayed[0])
        self.assertIn(b"Subject: Delayed Mail (still being retried)", delayed[0])
        self.assertRegex(delayed[0], rb"Status: 4\.\d\.\d")
        msgs = [m for m in msgs if b"Action: delayed" not in m]
        nullmx = [m for m in msgs if b"erin@nullmx.test" in m]
        self.assertEqual(len(nullmx), 1)
        self.assertIn(b"Status: 5.1.10", nullmx[0])
        self.assertIn(b"null MX", nullmx[0])
        expired = [m for m in msgs if b"carol@implicit.test" in m]
        self.assertIn(b"Action: failed", expired[0])
        missing = [m for m in msgs if b"dave@missing.test" in m]
        self.assertEqual(len(expired), 1)
        self.assertIn(b"Status: 4.4.7", expired[0])
        self.assertIn(b"delivery time expired", expired[0])
        self.assertIn(b"cannot connect", expired[0])
        self.assertEqual(len(missing), 1)
        self.assertIn(b"Status: 5.1.2", missing[0])
        self.assertIn(b"Subject: no such domain", missing[0])
        self.assertEqual(queue_entries(srv), [])


class QueueControl(unittest.TestCase):
    """posternctl queue against a daemon whose peer never answers."""

    def test_hold_release_retry_show_delete(self):
        dns = DNS(RECORDS)
        self.addCleanup(dns.close)
        srv = Server(listeners=("smtp", "submission", "imap"),
                     config=queue_config(dns, free_port(), retry_max="1"))
        self.addCleanup(srv.close)
        srv.add_domain("a.test")
        srv.add_user("alice@a.test", PASSWORD)
        submit(srv, "alice@a.test", "bob@b.test",
               make_message("alice@a.test", "bob@b.test", "held back", body="private\r\n"))

        def entry():
            entries = queue_entries(srv)
            self.assertEqual(len(entries), 1)
            return entries[0]

        deadline = time.monotonic() + WAIT
        while entry()["attempts"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        first = entry()
        self.assertGreaterEqual(first["attempts"], 1)
        self.assertEqual(first["sender"], "alice@a.test")
        self.assertFalse(first["held"])
        qid = str(first["id"])

        shown = json.loads(srv.ctl("queue", "show", qid, "--json").stdout)
        self.assertIn("Subject: held back", shown["header"])
        self.assertNotIn("private", shown["header"])

        srv.ctl("queue", "hold", qid)
        self.assertTrue(entry()["held"])
        self.assertIn("held", srv.ctl("queue", "list").stdout)
        # An attempt under way when the hold came still counts when it ends,
        # and leaves the hold in place; after it, none starts.
        time.sleep(3)  # retries would come every second
        held = entry()
        self.assertTrue(held["held"])
        time.sleep(3)
        self.assertEqual(entry()["attempts"], held["attempts"])
        res = srv.ctl("queue", "retry", qid, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("held", res.stderr)

        srv.ctl("queue", "release", qid)
        deadline = time.monotonic() + WAIT
        while entry()["attempts"] <= held["attempts"] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertGreater(entry()["attempts"], held["attempts"])
        self.assertFalse(entry()["held"])
        res = srv.ctl("queue", "release", qid, check=False)
        self.assertEqual(res.returncode, 1)

        flushed = json.loads(srv.ctl("queue", "flush", "--json").stdout)
        self.assertEqual(flushed["count"], 1)
        srv.ctl("queue", "retry", qid)

        srv.ctl("queue", "delete", qid)
        self.assertEqual(queue_entries(srv), [])
        self.assertEqual(srv.ctl("queue", "show", qid, check=False).returncode, 3)
        self.assertEqual(srv.ctl("queue", "delete", "x1", check=False).returncode, 2)
        time.sleep(2)
        self.assertEqual(mailbox_messages(srv, "alice@a.test"), [])  # deleted: no bounce


class FakePeer(socketserver.ThreadingTCPServer):
    """A plain SMTP server offering only EXTENSIONS, recording every transaction."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, extensions):
        self.extensions = extensions
        self.transactions = []
        self.connections = 0  # accepted so far
        self.busy_left = 0  # "busy@" is refused with 450 this many times
        self.rsets = 0
        self.rset_reply = None  # e.g. "421 ...": RSET fails and the connection closes
        super().__init__(("127.0.0.1", 0), FakePeerHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]


class FakePeerHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.server.connections += 1
        connection = self.server.connections
        self.reply("220 peer.test ESMTP")
        tx = {}
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                lines = ["peer.test"] + self.server.extensions
                for i, text in enumerate(lines):
                    self.reply("250%s%s" % (" " if i == len(lines) - 1 else "-", text))
            elif verb == "MAIL":
                tx = {"mail": cmd, "rcpt": [], "refused": [], "connection": connection}
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                if "nobody@" in cmd:
                    tx["refused"].append(cmd)
                    self.reply("550 5.1.1 no such user here")
                elif "busy@" in cmd and self.server.busy_left > 0:
                    self.server.busy_left -= 1
                    tx["refused"].append(cmd)
                    self.reply("450 4.2.1 mailbox busy, try later")
                else:
                    tx["rcpt"].append(cmd)
                    self.reply("250 2.1.5 ok")
            elif verb == "RSET":
                self.server.rsets += 1
                tx = {}
                if self.server.rset_reply:
                    self.reply(self.server.rset_reply)
                    return
                self.reply("250 2.0.0 ok")
            elif verb == "DATA" and not tx.get("rcpt"):
                self.reply("554 5.5.1 no valid recipients")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while True:
                    line = self.rfile.readline()
                    if not line or line == b".\r\n":
                        break
                    data += line[1:] if line.startswith(b".") else line
                tx["data"] = data
                if any("@slow.test" in r for r in tx["rcpt"]):
                    time.sleep(6)  # a slow destination
                self.server.transactions.append(tx)
                self.reply("250 2.0.0 queued as 1")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 5.5.2 not here")


class LimitedPeer(unittest.TestCase):
    """A peer without STARTTLS and SMTPUTF8 but with SIZE, 8BITMIME and DSN, via relayhost."""

    @classmethod
    def setUpClass(cls):
        cls.peer = FakePeer(["SIZE 100000", "8BITMIME", "DSN"])
        cls.srv = Server(listeners=("smtp", "submission", "imap"),
                         config={"queue": {"relayhost": "127.0.0.1:%d" % cls.peer.port,
                                           "poll_interval": "1", "retry_min": "1",
                                           "retry_max": "2", "timeout": "10",
                                           "tls_required": "secure.test"},
                                 "auth": FAST_AUTH})
        cls.srv.add_domain("a.test")
        cls.srv.add_user("alice@a.test", PASSWORD)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        cls.peer.shutdown()
        cls.peer.server_close()

    def wait_transaction(self, rcpt):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for tx in self.peer.transactions:
                if any(rcpt in r for r in tx["rcpt"]):
                    return tx
            time.sleep(0.2)
        self.fail("nothing for %s reached the peer:\n%s" % (rcpt, self.srv.log()[-3000:]))

    def test_relayhost_size_8bitmime_dsn_and_dot_stuffing(self):
        body = "Gr\u00fc\u00dfe\r\n.leading dot\r\n..two dots\r\n"
        msg = make_message("alice@a.test", "carl@peer.test", "to the peer", body=body)
        ctx = self.srv.ssl_context()
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=30) as s:
            s.starttls(context=ctx)
            s.login("alice@a.test", PASSWORD)
            s.sendmail("alice@a.test", ["carl@peer.test"], msg,
                       mail_options=["BODY=8BITMIME", "RET=HDRS", "ENVID=env42"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
        tx = self.wait_transaction("carl@peer.test")
        self.assertRegex(tx["mail"], r"^MAIL FROM:<alice@a\.test> SIZE=\d+ BODY=8BITMIME "
                                     r"RET=HDRS ENVID=env42$")
        self.assertEqual(tx["rcpt"], ["RCPT TO:<carl@peer.test> NOTIFY=SUCCESS,FAILURE"])
        data = tx["data"]
        self.assertIn("Gr\u00fc\u00dfe\r\n.leading dot\r\n..two dots\r\n".encode(), data)
        self.assertIn(b"Subject: to the peer\r\n", data)
        # the peer offers DSN, so it reports success itself: no "relayed" report from us
        time.sleep(2)
        self.assertEqual([m for m in mailbox_messages(self.srv, "alice@a.test")
                          if b"carl@peer.test" in m], [])

    def test_utf8_address_to_peer_without_smtputf8_bounces(self):
        rcpt = "j\u00fcrgen@peer.test"
        msg = make_message("alice@a.test", "juergen@peer.test", "utf8 rcpt")
        ctx = self.srv.ssl_context()
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=30) as s:
            s.starttls(context=ctx)
            s.login("alice@a.test", PASSWORD)
            s.sendmail("alice@a.test", [rcpt], msg, mail_options=["SMTPUTF8"])
        deadline = time.monotonic() + WAIT
        bounce = None
        while bounce is None and time.monotonic() < deadline:
            for m in mailbox_messages(self.srv, "alice@a.test"):
                if b"Subject: utf8 rcpt" in m:
                    bounce = m
            time.sleep(0.3)
        self.assertIsNotNone(bounce, self.srv.log()[-3000:])
        self.assertIn(b"Status: 5.6.7", bounce)
        self.assertIn(b"SMTPUTF8", bounce)
        self.assertFalse(any("rgen@peer.test" in r for tx in self.peer.transactions
                             for r in tx["rcpt"]))

    def test_slow_destination_does_not_hold_up_others(self):
        msg = make_message("alice@a.test", "team", "two destinations")
        ctx = self.srv.ssl_context()
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=30) as s:
            s.starttls(context=ctx)
            s.login("alice@a.test", PASSWORD)
            # one transaction: both entries are due in the same pass
            s.sendmail("alice@a.test", ["snail@slow.test", "hare@fast.test"], msg)
        start = time.monotonic()
        self.wait_transaction("hare@fast.test")
        self.assertLess(time.monotonic() - start, 5)
        self.assertFalse(any("snail@slow.test" in r for tx in self.peer.transactions
                             for r in tx["rcpt"]))
        self.wait_transaction("snail@slow.test")

    def test_tls_required_domain_waits_instead_of_cleartext(self):
        submit(self.srv, "alice@a.test", "ops@secure.test",
               make_message("alice@a.test", "ops@secure.test", "needs tls"))
        deadline = time.monotonic() + WAIT
        entry = None
        while entry is None and time.monotonic() < deadline:
            for e in queue_entries(self.srv):
                if e["recipient"] == "ops@secure.test" and e["attempts"] >= 1:
                    entry = e
            time.sleep(0.2)
        self.assertIsNotNone(entry, self.srv.log()[-3000:])
        self.assertIn("TLS is required", entry["last_error"])
        self.assertFalse(any("ops@secure.test" in r for tx in self.peer.transactions
                             for r in tx["rcpt"]))
        self.srv.ctl("queue", "delete", str(entry["id"]))


def submit_many(srv, sender, rcpts, msg, **kw):
    ctx = srv.ssl_context()
    ctx.check_hostname = False
    with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=30) as s:
        s.starttls(context=ctx)
        s.login(sender, PASSWORD)
        s.sendmail(sender, rcpts, msg, **kw)


class OldPeer(unittest.TestCase):
    """A peer that answers EHLO without any extension."""

    def test_8bit_mail_converted_to_7bit_and_signed_after(self):
        peer = FakePeer([])
        self.addCleanup(peer.server_close)
        self.addCleanup(peer.shutdown)
        srv = Server(listeners=("smtp", "submission", "imap"),
                     # a relayhost by name: looked up like any host
                     config={"queue": {"relayhost": "localhost:%d" % peer.port,
                                       "poll_interval": "1", "timeout": "10"},
                             "auth": FAST_AUTH})
        self.addCleanup(srv.close)
        srv.add_domain("a.test")
        srv.add_user("alice@a.test", PASSWORD)
        dkim = json.loads(srv.ctl("dkim", "keygen", "a.test", "--selector", "s1",
                                  "--json").stdout)
        submit(srv, "alice@a.test", "plain@old.test",
               make_message("alice@a.test", "plain@old.test", "seven bits"))
        submit(srv, "alice@a.test", "eight@old.test",
               make_message("alice@a.test", "eight@old.test", "eight bits",
                            body="Gr\u00fc\u00dfe aus K\u00f6ln\r\n"))
        # content that may not be re-encoded: declared binary, and 8-bit header text
        binary = (b"From: <alice@a.test>\r\nTo: <bin@old.test>\r\nSubject: binary part\r\n"
                  b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Transfer-Encoding: binary\r\n\r\n\x01\xff\xfe\r\n")
        submit_many(srv, "alice@a.test", ["bin@old.test"], binary,
                    mail_options=["BODY=8BITMIME"])
        submit(srv, "alice@a.test", "hdr@old.test",
               make_message("alice@a.test", "hdr@old.test", "K\u00f6ln header"))

        deadline = time.monotonic() + WAIT
        bounces = []
        while len(bounces) < 2 and time.monotonic() < deadline:
            bounces = [m for m in mailbox_messages(srv, "alice@a.test")
                       if b"Action: failed" in m]
            time.sleep(0.3)
        self.assertEqual(len(bounces), 2, srv.log()[-3000:])
        for rcpt in (b"bin@old.test", b"hdr@old.test"):
            bounce = next(m for m in bounces if b"Final-Recipient: rfc822; " + rcpt in m)
            self.assertIn(b"Status: 5.6.3", bounce)
            self.assertIn(b"8BITMIME", bounce)

        txs = {tx["rcpt"][0]: tx for tx in peer.transactions}
        # the 7-bit message went as it was, without parameters the peer did not offer
        plain = txs["RCPT TO:<plain@old.test>"]
        self.assertEqual(plain["mail"], "MAIL FROM:<alice@a.test>")
        # the 8-bit one went quoted-printable, without BODY=8BITMIME
        eight = txs["RCPT TO:<eight@old.test>"]
        self.assertEqual(eight["mail"], "MAIL FROM:<alice@a.test>")
        data = eight["data"]
        self.assertFalse(any(b > 127 for b in data))
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable", data)
        self.assertIn(b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln", data)
        msg = email.message_from_bytes(data)
        self.assertEqual(msg.get_payload(decode=True),
                         "Gr\u00fc\u00dfe aus K\u00f6ln\r\n".encode())
        # signed after the conversion: an independent verifier agrees
        self.assertIn(b"DKIM-Signature:", data)
        self.assertEqual(dkimpy_verify(data, dkim["txt"], dkim["name"]), "pass")
        self.assertEqual(set(txs), {"RCPT TO:<plain@old.test>", "RCPT TO:<eight@old.test>"})


class Batching(unittest.TestCase):
    """Several recipients of one message in one transaction; several
    messages to one host over one connection."""

    def peer_and_server(self, extensions, **queue):
        peer = FakePeer(extensions)
        self.addCleanup(peer.server_close)
        self.addCleanup(peer.shutdown)
        q = {"relayhost": "127.0.0.1:%d" % peer.port, "poll_interval": "1",
             "retry_min": "1", "retry_max": "1", "timeout": "10"}
        q.update(queue)
        srv = Server(listeners=("smtp", "submission", "imap"),
                     config={"queue": q, "auth": FAST_AUTH})
        self.addCleanup(srv.close)
        srv.add_domain("a.test")
        srv.add_user("alice@a.test", PASSWORD)
        return peer, srv

    def wait(self, srv, cond, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.2)
        self.fail("%s never happened:\n%s" % (what, srv.log()[-3000:]))

    def test_recipients_of_one_message_share_one_transaction(self):
        for extensions in (["PIPELINING", "8BITMIME", "DSN"], ["8BITMIME", "DSN"]):
            with self.subTest(extensions=extensions):
                self.one_transaction(extensions)

    def one_transaction(self, extensions):
        peer, srv = self.peer_and_server(extensions)
        peer.busy_left = 1
        rcpts = ["ann@peer.test", "nobody@peer.test", "ben@peer.test", "busy@peer.test",
                 "cy@else.test"]
        submit_many(srv, "alice@a.test", rcpts,
                    make_message("alice@a.test", "list@peer.test", "to many"),
                    rcpt_options=["NOTIFY=FAILURE"])
        self.wait(srv, lambda: queue_entries(srv) == [] and len(peer.transactions) >= 3,
                  "delivery to everyone but nobody")
        first = next(tx for tx in peer.transactions if "RCPT TO:<ann@peer.test> NOTIFY=FAILURE"
                     in tx["rcpt"])
        # one MAIL, the recipients of peer.test, one DATA: ann and ben accepted,
        # nobody refused for good, busy for now
        self.assertEqual(first["rcpt"], ["RCPT TO:<ann@peer.test> NOTIFY=FAILURE",
                                         "RCPT TO:<ben@peer.test> NOTIFY=FAILURE"])
        self.assertEqual(sorted(first["refused"]),
                         ["RCPT TO:<busy@peer.test> NOTIFY=FAILURE",
                          "RCPT TO:<nobody@peer.test> NOTIFY=FAILURE"])
        # one copy for several: it names none of them in Received
        self.assertNotIn(b"for <", first["data"])
        self.assertIn(b"Subject: to many", first["data"])
        # the temporary refusal was retried alone; the other domain had its own
        retried = [tx for tx in peer.transactions if "RCPT TO:<busy@peer.test> NOTIFY=FAILURE"
                   in tx["rcpt"]]
        self.assertEqual(len(retried), 1)
        self.assertEqual(len(retried[0]["rcpt"]), 1)
        self.assertIn(b"for <busy@peer.test>", retried[0]["data"])
        other = [tx for tx in peer.transactions if "RCPT TO:<cy@else.test> NOTIFY=FAILURE"
                 in tx["rcpt"]]
        self.assertEqual(len(other), 1)
        self.assertEqual(len(other[0]["rcpt"]), 1)
        self.assertEqual(len(peer.transactions), 3)
        # the one refused for good is bounced, alone
        msgs = wait_for_messages(srv, "alice@a.test", 1)
        self.assertEqual(len(msgs), 1, srv.log()[-3000:])
        self.assertIn(b"Final-Recipient: rfc822; nobody@peer.test", msgs[0])
        self.assertIn(b"Status: 5.1.1", msgs[0])
        for name in (b"ann@", b"ben@", b"busy@", b"cy@"):
            self.assertNotIn(b"Final-Recipient: rfc822; " + name, msgs[0])
        time.sleep(1.5)
        self.assertEqual(len(mailbox_messages(srv, "alice@a.test")), 1)

    def test_recipient_needing_smtputf8_bounces_alone(self):
        peer, srv = self.peer_and_server(["PIPELINING", "8BITMIME"])
        submit_many(srv, "alice@a.test", ["j\u00fcrgen@peer.test", "ann@peer.test"],
                    make_message("alice@a.test", "team@peer.test", "utf8 and ascii"),
                    mail_options=["SMTPUTF8"])
        self.wait(srv, lambda: queue_entries(srv) == [] and peer.transactions,
                  "delivery to ann")
        # ann got it; the peer never saw the address it could not take
        self.assertEqual([tx["rcpt"] for tx in peer.transactions],
                         [["RCPT TO:<ann@peer.test>"]])
        self.assertEqual(peer.transactions[0]["mail"], "MAIL FROM:<alice@a.test>")
        msgs = wait_for_messages(srv, "alice@a.test", 1)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Status: 5.6.7", msgs[0])
        self.assertNotIn(b"Final-Recipient: rfc822; ann@peer.test", msgs[0])

    def queue_while_unreachable(self, srv, peer, rcpts):
        """Queues one message per recipient while the relayhost is down, then
        points the restarted server at PEER and makes them all due at once
        (the retry delay is an hour, so no pass before the flush sees them)."""
        srv.stop()
        srv.overrides["queue"]["relayhost"] = "127.0.0.1:%d" % free_port()
        srv._write_config()
        srv.start()
        for r in rcpts:
            submit(srv, "alice@a.test", r, make_message("alice@a.test", r, "for " + r))
        self.wait(srv, lambda: len(queue_entries(srv)) == len(rcpts) and all(
            e["attempts"] >= 1 for e in queue_entries(srv)), "a failed attempt for each")
        srv.stop()
        srv.overrides["queue"]["relayhost"] = "127.0.0.1:%d" % peer.port
        srv._write_config()
        srv.start()
        self.assertEqual(json.loads(srv.ctl("queue", "flush", "--json").stdout)["count"],
                         len(rcpts))

    def test_messages_to_one_host_share_a_connection(self):
        peer, srv = self.peer_and_server(["PIPELINING", "8BITMIME"], per_domain="1",
                                         max_per_connection="2", retry_min="3600",
                                         retry_max="3600")
        self.queue_while_unreachable(srv, peer, ["r1@peer.test", "r2@peer.test",
                                                 "r3@peer.test"])
        self.wait(srv, lambda: len(peer.transactions) == 3 and queue_entries(srv) == [],
                  "three transactions")
        # at most two messages per connection, RSET between them
        by_conn = {}
        for tx in peer.transactions:
            by_conn.setdefault(tx["connection"], []).append(tx["rcpt"][0])
        self.assertEqual(sorted(len(v) for v in by_conn.values()), [1, 2])
        self.assertEqual(peer.rsets, 1)
        self.assertEqual(peer.connections, 2)

        # a peer that fails RSET: the next message takes a new connection
        peer.rset_reply = "421 4.3.2 closing now"
        before = peer.connections
        self.queue_while_unreachable(srv, peer, ["r4@peer.test", "r5@peer.test"])
        self.wait(srv, lambda: len(peer.transactions) == 5 and queue_entries(srv) == [],
                  "two more transactions")
        self.assertEqual(peer.connections - before, 2)
        self.assertEqual(peer.rsets, 2)
        self.assertEqual(mailbox_messages(srv, "alice@a.test"), [])  # no bounce


if __name__ == "__main__":
    unittest.main()

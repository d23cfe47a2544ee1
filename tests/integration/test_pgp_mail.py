#!/usr/bin/env python3
"""OpenPGP and S/MIME on the mail path, end to end against a real posternd,
with the gpg, gpgsm and openssl command-line tools as independent peers in
homes of their own:

- password-protected mail (X-Postern-Password) reaches the recipient as an
  OpenPGP message that `gpg --decrypt` opens with the password; the password
  is in no stored copy and not in the log;
- the sender's policy encrypts to a local recipient whose key a gpg peer
  holds (the peer decrypts the copy fetched over IMAP, and the sender's own
  key is a recipient too), and refuses with 554 5.7.5 when encryption is
  required and a recipient has no key (nothing stored or queued);
- Autocrypt header on outbound mail of a user with a key;
- mail signed by gpg (PGP/MIME, inline) and by openssl (S/MIME) sent in over
  SMTP gets our X-Postern-Signature: unknown-key, valid after an Autocrypt
  key arrived, bad when tampered or with a wrong micalg, error for broken
  armor and truncated CMS; a forged X-Postern-Signature is removed;
- encrypted mail for a user who opted in to server-side decryption but is
  not logged in is stored as received and says so.
"""

import base64
import imaplib
import json
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Server

FAST_AUTH = {"argon2_mem": "8M", "argon2_ops": "1", "failure_delay_ms": "10"}
ALICE, ALICE_PW = "alice@example.org", "alice pw 1 harbour"
BOB, BOB_PW = "bob@example.org", "bob pw 2 lighthouse"
CAROL = "carol@remote.example"
DORA, DORA_PW = "dora@example.org", "dora pw 4 windmill"
ERIN, ERIN_PW = "erin@example.org", "erin pw 5 riverbank"  # no key at all


class Peer:
    """A gpg home of its own (an independent OpenPGP implementation)."""

    def __init__(self, root, name):
        self.home = os.path.join(root, name)
        os.makedirs(self.home, mode=0o700)
        with open(os.path.join(self.home, "gpg.conf"), "w") as f:
            f.write("trust-model always\n")
        with open(os.path.join(self.home, "gpg-agent.conf"), "w") as f:
            f.write("allow-loopback-pinentry\n")

    def gpg(self, *args, input=None, check=True, passphrase=""):
        res = subprocess.run(["gpg", "--homedir", self.home, "--batch", "--yes", "--no-tty",
                              "--pinentry-mode", "loopback", "--passphrase", passphrase, *args],
                             input=input, capture_output=True, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError("gpg %s failed: %s" % (args, res.stderr.decode()))
        return res

    def keygen(self, address):
        self.gpg("--quick-gen-key", address, "ed25519", "sign", "1y")
        fpr = self.fingerprint(address)
        self.gpg("--quick-add-key", fpr, "cv25519", "encr", "1y")
        return fpr

    def fingerprint(self, address):
        out = self.gpg("--with-colons", "--list-keys", address).stdout.decode()
        return re.search(r"^fpr:+([0-9A-F]+):", out, re.M).group(1)

    def close(self):
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "all"],
                       capture_output=True, timeout=30)


class Trace:
    """`posternctl trace --follow --json`, collected from a thread."""

    def __init__(self, srv):
        self.proc = subprocess.Popen(
            [harness.program("posternctl"), "-c", srv.config_path, "trace", "--follow", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.5)  # subscribed before the client starts

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in json.loads(line)["text"] for line in list(self.lines)):
                return
            time.sleep(0.1)
        raise AssertionError("no trace event with %r in:\n%s" % (text, "".join(self.lines)))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(5)
        self.proc.stdout.close()
        return "".join(self.lines)


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


def header(msg, name):
    """The unfolded value of the first NAME field of MSG's header, or None."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"^%s:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)" % re.escape(name), head,
                  re.M | re.I)
    return re.sub(r"\r\n[ \t]+", " ", m.group(1)).strip() if m else None


class MailClients:
    """Submission as Alice and Bob's view over IMAP, on the server self.srv."""

    def submit(self, rcpts, message):
        with smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=120) as c:
            c.starttls(context=self.srv.ssl_context())
            c.login(ALICE, ALICE_PW)
            return c.sendmail(ALICE, rcpts, message)

    def last_message(self, user, password, subject):
        c = imaplib.IMAP4("127.0.0.1", self.srv.port("imap"), timeout=120)
        try:
            c.starttls(ssl_context=self.srv.ssl_context())
            c.login(user, password)
            # Ciphertext and signatures look odd to the scanner: Junk is fine here.
            for box in ("INBOX", "Junk"):
                c.select(box)
                typ, data = c.search(None, "SUBJECT", '"%s"' % subject)
                self.assertEqual(typ, "OK")
                ids = data[0].split()
                if ids:
                    typ, data = c.fetch(ids[-1], "(BODY.PEEK[])")
                    return data[0][1]
            self.fail("no message with subject %r for %s" % (subject, user))
        finally:
            c.logout()


class PgpMail(MailClients, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("smtp", "submission", "imap"), config={"auth": FAST_AUTH})
        cls.srv.add_domain("example.org")
        cls.srv.add_user(ALICE, ALICE_PW)
        cls.srv.add_user(BOB, BOB_PW)
        cls.dir = tempfile.mkdtemp(prefix="postern-pgp-mail-")
        # Bob's key is made by gpg (the peer keeps the secret key too) and imported for him.
        cls.bob_peer = Peer(cls.dir, "bob")
        cls.bob_fpr = cls.bob_peer.keygen(BOB)
        secret = cls.bob_peer.gpg("--armor", "--export-secret-keys", BOB).stdout
        path = os.path.join(cls.dir, "bob-secret.asc")
        with open(path, "wb") as f:
            f.write(secret)
        harness.chown_tree(cls.dir)
        cls.srv.ctl("pgp", "import", BOB, path, "--no-passphrase", input=BOB_PW + "\n")
        cls.srv.add_user(DORA, DORA_PW)
        cls.srv.add_user(ERIN, ERIN_PW)
        cls.dora_peer = Peer(cls.dir, "dora")
        cls.dora_peer.keygen(DORA)
        path = os.path.join(cls.dir, "dora-secret.asc")
        with open(path, "wb") as f:
            f.write(cls.dora_peer.gpg("--armor", "--export-secret-keys", DORA).stdout)
        harness.chown_tree(cls.dir)
        cls.srv.ctl("pgp", "import", DORA, path, "--no-passphrase", input=DORA_PW + "\n")
        # Alice's key is made by Postern.
        cls.srv.ctl("pgp", "keygen", ALICE, input=ALICE_PW + "\n")
        cls.alice_pub = cls.srv.ctl("pgp", "export", ALICE).stdout
        # Carol is outside, with gpg only.
        cls.carol = Peer(cls.dir, "carol")
        cls.carol.keygen(CAROL)
        cls.carol.gpg("--import", input=cls.bob_peer.gpg("--export", BOB).stdout)
        cls.carol.gpg("--import", input=cls.dora_peer.gpg("--export", DORA).stdout)

    @classmethod
    def tearDownClass(cls):
        cls.bob_peer.close()
        cls.dora_peer.close()
        cls.carol.close()
        cls.srv.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def tearDown(self):
        self.srv.ctl("pgp", "policy", ALICE, "--reset")
        self.srv.ctl("pgp", "policy", BOB, "--reset")
        self.srv.ctl("pgp", "policy", DORA, "--reset")
        self.srv.ctl("pgp", "policy", "example.org", "--reset")

    # ---- clients ----
    def send_in(self, message, rcpt=BOB):
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=120) as c:
            c.sendmail(CAROL, [rcpt], message)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # ---- submission ----
    def test_password_protected_mail_opens_with_gpg_and_the_password(self):
        password = "Correct  Horse 42 battery"  # inner whitespace is part of it
        msg = crlf(b"From: alice@example.org\nTo: bob@example.org\nSubject: pw-protected\n"
                   b"X-Postern-Password: " + password.encode() + b"\n"
                   b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
                   b"--b\nContent-Type: text/plain\n\nThe launch code is 0000.\n"
                   b"--b\nContent-Type: application/octet-stream; name=\"plan.bin\"\n"
                   b"Content-Transfer-Encoding: base64\n\nUExBTg==\n--b--\n")
        trace = Trace(self.srv)
        try:
            self.submit([BOB], msg)
            trace.wait_for("pgp: message protected with a password")
        finally:
            traced = trace.stop()
        self.assertNotIn(password, traced)
        got = self.last_message(BOB, BOB_PW, "pw-protected")
        self.assertNotIn(password.encode(), got)
        self.assertIsNone(header(got, "X-Postern-Password"))
        self.assertNotIn(b"launch code", got)
        self.assertIn(b"gpg --decrypt message.asc", got)
        armored = got[got.index(b"-----BEGIN PGP MESSAGE-----"):]
        armored = armored[:armored.index(b"-----END PGP MESSAGE-----") + 25]
        path = self.write("message.asc", armored)
        peer = Peer(self.dir, "pw-reader")
        try:
            res = peer.gpg("--decrypt", path, passphrase=password)
            self.assertIn(b"The launch code is 0000.", res.stdout)
            self.assertIn(b"UExBTg==", res.stdout)
            bad = peer.gpg("--decrypt", path, passphrase="wrong password", check=False)
            self.assertNotEqual(bad.returncode, 0)
        finally:
            peer.close()
        self.assertNotIn(password, self.srv.log())

    def test_encryption_to_a_local_user_decrypts_with_the_peer_key(self):
        self.srv.ctl("pgp", "policy", ALICE, "--encrypt", "if-possible")
        msg = crlf(b"From: alice@example.org\nTo: bob@example.org\nSubject: for-bob-only\n\n"
                   b"Only Bob reads this.\n")
        self.submit([BOB], msg)
        got = self.last_message(BOB, BOB_PW, "for-bob-only")
        self.assertIn(b"multipart/encrypted", got)
        self.assertIn(b'protocol="application/pgp-encrypted"', got)
        self.assertNotIn(b"Only Bob reads this", got)
        path = self.write("for-bob.eml", got)
        res = self.bob_peer.gpg("--decrypt", path)
        self.assertIn(b"Only Bob reads this.", res.stdout)
        # The sender's own key is a recipient too, so her copy stays readable.
        alice_keys = Peer(self.dir, "alice-pub")
        try:
            alice_keys.gpg("--import", input=self.alice_pub.encode())
            sub = alice_keys.gpg("--with-colons", "--list-keys", ALICE).stdout.decode()
            enc_ids = {line.split(":")[4] for line in sub.splitlines() if line.startswith("sub:")}
            packets = self.bob_peer.gpg("--list-packets", path, check=False).stdout.decode()
            listed = set(re.findall(r"keyid ([0-9A-F]{16})", packets))
            self.assertTrue(enc_ids & listed, "alice's key is not a recipient: %s" % packets)
        finally:
            alice_keys.close()

    def test_required_encryption_refuses_a_recipient_without_key(self):
        self.srv.ctl("pgp", "policy", "example.org", "--encrypt", "required")
        before = json.loads(self.srv.ctl("queue", "list", "--json").stdout)
        msg = crlf(b"From: alice@example.org\nTo: dave@nokey.example\nSubject: refused\n\nx\n")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit([BOB, "dave@nokey.example"], msg)
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertIn(b"5.7.5", cm.exception.smtp_error)
        self.assertIn(b"<dave@nokey.example>", cm.exception.smtp_error)
        self.assertEqual(json.loads(self.srv.ctl("queue", "list", "--json").stdout), before)
        # Bob got nothing either.
        c = imaplib.IMAP4("127.0.0.1", self.srv.port("imap"), timeout=60)
        try:
            c.starttls(ssl_context=self.srv.ssl_context())
            c.login(BOB, BOB_PW)
            c.select("INBOX")
            self.assertEqual(c.search(None, "SUBJECT", '"refused"')[1][0], b"")
        finally:
            c.logout()
        # The user's own "never" wins over the domain's "required".
        self.srv.ctl("pgp", "policy", ALICE, "--encrypt", "never")
        self.submit([BOB], crlf(b"From: alice@example.org\nSubject: in-clear\n\nclear\n"))
        self.assertIn(b"clear", self.last_message(BOB, BOB_PW, "in-clear"))

    def test_if_possible_sends_in_clear_when_a_local_recipient_has_no_key(self):
        self.srv.ctl("pgp", "policy", ALICE, "--encrypt", "if-possible")
        self.submit([BOB, ERIN], crlf(b"From: alice@example.org\nSubject: mixed-keys\n\n"
                                      b"Erin has no key.\n"))
        for user, pw in ((BOB, BOB_PW), (ERIN, ERIN_PW)):
            got = self.last_message(user, pw, "mixed-keys")
            self.assertIn(b"Erin has no key.", got)
            self.assertNotIn(b"multipart/encrypted", got)
        self.srv.ctl("pgp", "policy", ALICE, "--encrypt", "required")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.submit([BOB, ERIN], crlf(b"From: alice@example.org\nSubject: mixed-2\n\nx\n"))
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertIn(b"<erin@example.org>", cm.exception.smtp_error)

    def test_autocrypt_header_carries_the_senders_key(self):
        self.submit([BOB], crlf(b"From: alice@example.org\nSubject: autocrypt\n\nhi\n"))
        got = self.last_message(BOB, BOB_PW, "autocrypt")
        value = header(got, "Autocrypt")
        self.assertIsNotNone(value)
        attrs = dict(a.strip().split("=", 1) for a in value.split(";"))
        self.assertEqual(attrs["addr"], ALICE)
        keydata = base64.b64decode(attrs["keydata"].replace(" ", ""))
        peer = Peer(self.dir, "autocrypt-reader")
        try:
            peer.gpg("--import", input=keydata)
            self.assertIn(ALICE, peer.gpg("--list-keys", ALICE).stdout.decode())
        finally:
            peer.close()

    # ---- inbound ----
    def signed_by_carol(self, subject, body=b"Content-Type: text/plain\r\n\r\nSigned by Carol.\r\n",
                        micalg=b"pgp-sha256", autocrypt=False, mangle=None):
        sig = self.carol.gpg("--detach-sign", "--armor", "--digest-algo", "SHA256", "-u", CAROL,
                             input=body).stdout
        sig = crlf(sig)
        if mangle:
            sig = mangle(sig)
        head = b"From: Carol <carol@remote.example>\r\nTo: bob@example.org\r\nSubject: " + \
            subject + b"\r\n"
        if autocrypt:
            key = self.carol.gpg("--export-options", "export-minimal", "--export", CAROL).stdout
            b64 = base64.b64encode(key)
            folded = b"\r\n ".join(b64[i:i + 76] for i in range(0, len(b64), 76))
            head += b"Autocrypt: addr=carol@remote.example; keydata=\r\n " + folded + b"\r\n"
        head += (b"X-Postern-Signature: valid; kind=pgp-mime; signer=ceo@example.org\r\n"
                 b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=\"sg\";\r\n"
                 b" micalg=" + micalg + b"; protocol=\"application/pgp-signature\"\r\n\r\n")
        return (head + b"--sg\r\n" + body + b"\r\n--sg\r\n"
                b"Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n" +
                sig + b"\r\n--sg--\r\n")

    def result(self, subject):
        got = self.last_message(BOB, BOB_PW, subject)
        values = re.findall(rb"^X-Postern-Signature:", got, re.M | re.I)
        self.assertEqual(len(values), 1, "exactly one result header (forged one removed)")
        return header(got, "X-Postern-Signature")

    def test_inbound_pgp_signatures(self):
        self.send_in(self.signed_by_carol(b"sig-unknown"))
        r = self.result("sig-unknown")
        self.assertTrue(r.startswith("unknown-key; kind=pgp-mime"), r)
        self.assertNotIn("ceo@example.org", r)

        self.send_in(self.signed_by_carol(b"sig-autocrypt", autocrypt=True))
        r = self.result("sig-autocrypt")
        self.assertTrue(r.startswith("valid; kind=pgp-mime"), r)
        self.assertIn("signer=" + CAROL, r)
        self.assertIn("fingerprint=" + self.carol.fingerprint(CAROL), r)

        # Carol's key is now in Bob's home: tampering and a lying micalg are caught.
        msg = self.signed_by_carol(b"sig-tampered").replace(b"Signed by Carol.", b"Signed by Mallo")
        self.send_in(msg)
        self.assertTrue(self.result("sig-tampered").startswith("bad;"))
        self.send_in(self.signed_by_carol(b"sig-micalg", micalg=b"pgp-sha1"))
        r = self.result("sig-micalg")
        self.assertTrue(r.startswith("bad;"), r)
        self.assertIn("micalg", r)

        def break_armor(sig):
            lines = sig.split(b"\r\n")
            return b"\r\n".join(lines[:3] + [b"!!!! not base64 !!!!"] + lines[4:])
        self.send_in(self.signed_by_carol(b"sig-armor", mangle=break_armor))
        r = self.result("sig-armor")
        self.assertTrue(r.startswith("error;") or r.startswith("bad;"), r)

        # Unsigned mail keeps no forged result.
        self.send_in(crlf(b"From: carol@remote.example\nSubject: forged-only\n"
                          b"X-Postern-Signature: valid; signer=ceo@example.org\n\nhello\n"))
        got = self.last_message(BOB, BOB_PW, "forged-only")
        self.assertIsNone(header(got, "X-Postern-Signature"))

    def test_inbound_inline_pgp_signature(self):
        text = self.carol.gpg("--clearsign", "-u", CAROL, input=b"Meet at noon.\n").stdout
        trace = Trace(self.srv)
        try:
            self.send_in(crlf(b"From: carol@remote.example\nSubject: inline-sig\n\n") + crlf(text))
            # The result is published to the trace too.
            trace.wait_for("(inline-pgp) signer=")
        finally:
            trace.stop()
        r = self.result("inline-sig")
        self.assertTrue(r.startswith("valid; kind=inline-pgp") or
                        r.startswith("unknown-key; kind=inline-pgp"), r)

    def test_inbound_smime_truncated_is_error(self):
        work = os.path.join(self.dir, "smime")
        os.makedirs(work, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-keyout", os.path.join(work, "k.pem"), "-out", os.path.join(work, "c.pem"),
                        "-subj", "/CN=carol/emailAddress=" + CAROL,
                        "-addext", "subjectAltName=email:" + CAROL],
                       check=True, capture_output=True, timeout=120)
        content = self.write("smime-in.txt", b"Content-Type: text/plain\r\n\r\nS/MIME hello\r\n")
        signed = subprocess.run(["openssl", "smime", "-sign", "-in", content, "-signer",
                                 os.path.join(work, "c.pem"), "-inkey", os.path.join(work, "k.pem")],
                                check=True, capture_output=True, timeout=120).stdout
        signed = crlf(signed)
        head = b"From: carol@remote.example\r\nSubject: smime-cut\r\n"
        cut = re.sub(rb"(filename=\"?smime.p7s\"?\r\n\r\n(?:[^\r]*\r\n){2})(?:[A-Za-z0-9+/=]+\r\n)+",
                     rb"\1", signed)
        self.assertNotEqual(cut, signed)
        self.send_in(head + cut)
        r = self.result("smime-cut")
        self.assertTrue(r.startswith("error; kind=smime") or r.startswith("bad; kind=smime"), r)

    def encrypted_by_carol(self, rcpt, subject, text, sign=False):
        entity = b"Content-Type: text/plain\r\n\r\n" + text + b"\r\n"
        args = ["--sign", "-u", CAROL] if sign else []
        enc = crlf(self.carol.gpg("--encrypt", "--armor", "-r", rcpt, *args, input=entity).stdout)
        return (b"From: carol@remote.example\r\nSubject: " + subject + b"\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; boundary=\"e\";\r\n"
                b" protocol=\"application/pgp-encrypted\"\r\n\r\n--e\r\n"
                b"Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--e\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n" + enc + b"\r\n--e--\r\n")

    def test_encrypted_inbound_for_an_opted_in_user_without_login_is_stored_as_received(self):
        # Dora never logged in, so her key is locked when the mail arrives.
        self.srv.ctl("pgp", "policy", DORA, "--decrypt-inbound", "yes")
        self.send_in(self.encrypted_by_carol(DORA, b"enc-in", b"Secret for Dora."), rcpt=DORA)
        got = self.last_message(DORA, DORA_PW, "enc-in")
        self.assertTrue(header(got, "X-Postern-Decrypted").startswith("no;"))
        self.assertNotIn(b"Secret for Dora", got)
        res = self.dora_peer.gpg("--decrypt", self.write("enc-in.eml", got))
        self.assertIn(b"Secret for Dora.", res.stdout)
    def test_encrypted_inbound_for_a_logged_in_user_who_opted_in_is_decrypted(self):
        self.srv.ctl("pgp", "policy", BOB, "--decrypt-inbound", "yes")
        # Bob is logged in (IMAP): his key is unlocked in the login cache.
        c = imaplib.IMAP4("127.0.0.1", self.srv.port("imap"), timeout=60)
        c.starttls(ssl_context=self.srv.ssl_context())
        c.login(BOB, BOB_PW)
        try:
            self.send_in(self.encrypted_by_carol(BOB, b"enc-bob", b"Decrypted for Bob.",
                                                 sign=True))
        finally:
            c.logout()
        got = self.last_message(BOB, BOB_PW, "enc-bob")
        self.assertTrue(header(got, "X-Postern-Decrypted").startswith("yes; kind=pgp-mime"),
                        header(got, "X-Postern-Decrypted"))
        self.assertIn(b"Decrypted for Bob.", got)
        self.assertNotIn(b"BEGIN PGP MESSAGE", got)
        sig = header(got, "X-Postern-Signature")
        self.assertIsNotNone(sig)
        self.assertIn("kind=pgp-mime", sig)
        # Without the opt-in the same mail stays encrypted.
        self.srv.ctl("pgp", "policy", BOB, "--decrypt-inbound", "no")
        self.send_in(self.encrypted_by_carol(BOB, b"enc-bob-2", b"Stays encrypted."))
        got = self.last_message(BOB, BOB_PW, "enc-bob-2")
        self.assertIsNone(header(got, "X-Postern-Decrypted"))
        self.assertNotIn(b"Stays encrypted.", got)

    def test_signing_policy_signs_with_the_senders_key(self):
        self.srv.ctl("pgp", "policy", ALICE, "--sign", "always")
        self.submit([BOB], crlf(b"From: alice@example.org\nSubject: signed-out\n\n"
                                b"Signed for Alice, trailing space \nFrom here.\n"))
        got = self.last_message(BOB, BOB_PW, "signed-out")
        self.assertIn(b'protocol="application/pgp-signature"', got)
        self.assertIn(b"micalg=pgp-sha", got)
        # Bob's copy was verified on delivery (Alice's key came with her Autocrypt header).
        r = header(got, "X-Postern-Signature")
        self.assertTrue(r.startswith("valid; kind=pgp-mime"), r)
        self.assertIn("signer=" + ALICE, r)
        # gpg checks the exact signed bytes against Alice's exported key.
        boundary = re.search(rb'boundary="([^"]+)"', got).group(1)
        body = got.split(b"\r\n\r\n", 1)[1]
        parts = body.split(b"--" + boundary + b"\r\n")
        content = parts[1][:-2]  # the CRLF before the delimiter belongs to it
        sig = parts[2][parts[2].index(b"-----BEGIN PGP SIGNATURE-----"):]
        sig = sig[:sig.index(b"-----END PGP SIGNATURE-----") + 27]
        verifier = Peer(self.dir, "alice-verifier")
        try:
            verifier.gpg("--import", input=self.alice_pub.encode())
            res = verifier.gpg("--status-fd", "1", "--verify", self.write("out.sig", sig),
                               self.write("out.txt", content))
            self.assertIn(b"[GNUPG:] GOODSIG", res.stdout)
            self.assertIn(b"=20", content)  # trailing space protected by quoted-printable
        finally:
            verifier.close()

def cms_recipient_serials(der):
    """Serial numbers of the recipients of CMS enveloped-data DER, read by openssl."""
    out = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "DER"], input=der,
                         capture_output=True, check=True, timeout=60).stdout.decode()
    return {int(v, 0) for v in re.findall(r"serialNumber: (0x[0-9A-Fa-f]+|\d+)", out)}


def cert_serial(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.encode(),
                         capture_output=True, check=True, timeout=60).stdout.decode()
    return int(out.strip().split("=", 1)[1], 16)


class SmimeSubmission(MailClients, unittest.TestCase):
    """S/MIME encryption at submission with certificates of the organization CA."""

    def send_under_policy(self, srv, policy, subject, body):
        """Alice and Bob with certificates of the CA on SRV; Alice sends BODY to Bob under her
        pgp policy POLICY (options); Bob's copy."""
        self.srv = srv
        srv.add_domain("example.org")
        srv.add_user(ALICE, ALICE_PW)
        srv.add_user(BOB, BOB_PW)
        srv.ctl("smime", "ca", "init")
        srv.ctl("smime", "issue", ALICE, input=ALICE_PW + "\n")
        srv.ctl("smime", "issue", BOB, input=BOB_PW + "\n")
        srv.ctl("pgp", "policy", ALICE, *policy)
        self.submit([BOB], crlf(b"From: alice@example.org\nSubject: " + subject.encode() +
                                b"\n\n" + body))
        return self.last_message(BOB, BOB_PW, subject)

    def test_required_encryption_uses_smime_when_only_certificates_exist(self):
        with Server(listeners=("submission", "imap"), config={"auth": FAST_AUTH}) as srv:
            got = self.send_under_policy(srv, ("--encrypt", "required"), "smime-enc",
                                         b"S/MIME for Bob.\n")
            self.assertIn(b"smime-type=enveloped-data", got)
            self.assertNotIn(b"S/MIME for Bob", got)
            der = base64.b64decode(got.split(b"\r\n\r\n", 1)[1])
            serials = cms_recipient_serials(der)
            for user in (BOB, ALICE):
                pem = srv.ctl("smime", "export", user).stdout
                self.assertIn(cert_serial(pem), serials, "%s is not a recipient" % user)

    def test_signing_policy_signs_smime_with_an_issued_certificate(self):
        with Server(listeners=("submission", "imap"), config={"auth": FAST_AUTH}) as srv:
            got = self.send_under_policy(srv, ("--sign", "always"), "smime-sig",
                                         b"Signed with S/MIME.\n")
            self.assertIn(b'protocol="application/pkcs7-signature"', got)
            r = header(got, "X-Postern-Signature")
            self.assertTrue(r.startswith("valid; kind=smime"), r)
            self.assertIn("signer=" + ALICE, r)
            tmp = tempfile.mkdtemp(prefix="postern-smime-")
            try:
                ca = os.path.join(tmp, "ca.pem")
                with open(ca, "w") as f:
                    f.write(srv.ctl("smime", "ca", "show").stdout)
                eml = os.path.join(tmp, "m.eml")
                with open(eml, "wb") as f:
                    f.write(got)
                res = subprocess.run(["openssl", "smime", "-verify", "-in", eml, "-CAfile", ca,
                                      "-purpose", "smimesign"], capture_output=True, timeout=60)
                self.assertEqual(res.returncode, 0, res.stderr.decode())
                self.assertIn(b"Signed with S/MIME.", res.stdout)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

class PgpPolicyCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("smtp",), config={"auth": FAST_AUTH})
        cls.srv.add_domain("example.org")
        cls.srv.add_user(ALICE, ALICE_PW)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_set_show_list_reset(self):
        self.srv.ctl("pgp", "policy", "example.org", "--sign", "never", "--encrypt", "required")
        self.srv.ctl("pgp", "policy", ALICE, "--decrypt-inbound", "yes")
        shown = json.loads(self.srv.ctl("--json", "pgp", "policy", ALICE).stdout)
        self.assertEqual(shown["effective"], {"sign": "never", "encrypt": "required",
                                              "decrypt_inbound": True})
        self.assertIsNone(shown["encrypt"])
        rows = json.loads(self.srv.ctl("--json", "pgp", "policy").stdout)
        self.assertEqual(sorted(r["name"] for r in rows), [ALICE, "example.org"])
        self.srv.ctl("pgp", "policy", ALICE, "--reset")
        shown = json.loads(self.srv.ctl("--json", "pgp", "policy", ALICE).stdout)
        self.assertFalse(shown["effective"]["decrypt_inbound"])

    def test_bad_arguments(self):
        res = self.srv.ctl("pgp", "policy", ALICE, "--encrypt", "maybe", check=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--encrypt", res.stderr)
        res = self.srv.ctl("pgp", "policy", "nobody@example.org", check=False)
        self.assertEqual(res.returncode, 3)
        res = self.srv.ctl("pgp", "policy", "nodomain.example", "--sign", "always", check=False)
        self.assertEqual(res.returncode, 3)
        res = self.srv.ctl("pgp", "policy", ALICE, "--reset", "--sign", "always", check=False)
        self.assertEqual(res.returncode, 2)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Scanner end to end: mail over SMTP is scanned before it is stored
(EICAR is quarantined, never in the INBOX; phishing goes to Junk), the
quarantine is listed, shown, released to the INBOX and deleted with
posternctl, and posternctl scan checks a file and evaluates a corpus."""

import json
import os
import smtplib
import unittest

from harness import Server

SRCDIR = os.environ.get("POSTERN_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(SRCDIR, "tests", "data", "scan")
FAST_AUTH = {"argon2_mem": "8M", "argon2_ops": "1", "failure_delay_ms": "10"}


def fixture(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def counts(srv, address):
    info = json.loads(srv.ctl("user", "show", address, "--json").stdout)
    return {mb["name"]: mb["messages"] for mb in info["mailboxes"]}


def quarantine(srv):
    return json.loads(srv.ctl("quarantine", "list", "--json").stdout)


class ScanOverSmtp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("smtp",), config={"auth": FAST_AUTH})
        cls.srv.add_domain("example.org")
        cls.srv.add_user("alice@example.org", "alice password 1")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def send(self, data):
        with smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s:
            s.sendmail("sender@example.net", ["alice@example.org"], data)

    def test_malware_is_quarantined_then_released_or_deleted(self):
        before = counts(self.srv, "alice@example.org")
        self.send(fixture("eicar.eml"))
        after = counts(self.srv, "alice@example.org")
        self.assertEqual(after["INBOX"], before["INBOX"], "EICAR reached the INBOX")
        entries = [e for e in quarantine(self.srv) if e["recipient"] == "alice@example.org"]
        self.assertEqual(len(entries), 1)
        entry = entries[0]
        self.assertEqual(entry["verdict"], "malware")
        self.assertIn("EICAR", entry["reason"])

        shown = json.loads(self.srv.ctl("quarantine", "show", str(entry["id"]), "--json").stdout)
        self.assertIn("Subject: Test file", shown["header"])
        self.assertTrue(any("EICAR" in r for r in shown["reasons"]))
        text = self.srv.ctl("quarantine", "show", str(entry["id"])).stdout
        self.assertIn("Subject: Test file", text)
        # the body that was judged dangerous is not printed
        self.assertNotIn("EICAR-STANDARD-ANTIVIRUS-TEST-FILE", text)

        self.srv.ctl("quarantine", "release", str(entry["id"]))
        self.assertEqual(counts(self.srv, "alice@example.org")["INBOX"], before["INBOX"] + 1)
        self.assertEqual([e for e in quarantine(self.srv) if e["id"] == entry["id"]], [])
        res = self.srv.ctl("quarantine", "release", str(entry["id"]), check=False)
        self.assertEqual(res.returncode, 3)

        # a second one is deleted instead
        self.send(fixture("double_ext.eml"))
        entries = [e for e in quarantine(self.srv) if e["recipient"] == "alice@example.org"]
        self.assertEqual(len(entries), 1)
        self.assertIn("invoice.pdf.exe", entries[0]["reason"])
        self.srv.ctl("quarantine", "delete", str(entries[0]["id"]))
        self.assertEqual(quarantine(self.srv), [])
        res = self.srv.ctl("quarantine", "delete", str(entries[0]["id"]), check=False)
        self.assertEqual(res.returncode, 3)
        res = self.srv.ctl("quarantine", "show", "not-a-number", check=False)
        self.assertEqual(res.returncode, 2)

    def test_phishing_goes_to_junk(self):
        before = counts(self.srv, "alice@example.org")
        self.send(fixture("lookalike.eml"))
        after = counts(self.srv, "alice@example.org")
        self.assertEqual(after["Junk"], before["Junk"] + 1)
        self.assertEqual(after["INBOX"], before["INBOX"])

    def test_clean_mail_goes_to_inbox(self):
        before = counts(self.srv, "alice@example.org")
        self.send(fixture("ham_plain.eml"))
        after = counts(self.srv, "alice@example.org")
        self.assertEqual(after["INBOX"], before["INBOX"] + 1)


class ScanCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(listeners=("smtp",), start=False)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_scan_file_prints_verdict_and_reasons(self):
        res = self.srv.ctl("scan", os.path.join(DATA, "link_mismatch.eml"))
        self.assertIn("verdict: phishing", res.stdout)
        self.assertIn("link text shows www.paypal.com but points to 185.23.4.5", res.stdout)
        out = json.loads(self.srv.ctl("scan", "check", os.path.join(DATA, "eicar.eml"),
                                      "--json").stdout)
        self.assertEqual(out["verdict"], "malware")
        self.assertEqual(out["score"], 1.0)
        self.assertTrue(out["model"].startswith("postern-lr-"))
        res = self.srv.ctl("scan", os.path.join(DATA, "no-such.eml"), check=False)
        self.assertEqual(res.returncode, 3)

    def test_train_and_eval(self):
        model = os.path.join(self.srv.data_dir, "small.model")
        corpus = os.path.join(DATA, "corpus")
        res = self.srv.ctl("scan", "train", corpus, "--out", model, "--all", "--json")
        info = json.loads(res.stdout)
        self.assertEqual(info["messages"], 18)
        self.assertTrue(os.path.getsize(model) > 100)
        out = json.loads(self.srv.ctl("scan", "eval", corpus, "--all", "--model", model,
                                      "--json").stdout)
        self.assertEqual(out["messages"], 18)
        self.assertEqual(set(out["classes"]), {"ham", "spam", "phishing"})
        total = sum(sum(row.values()) for row in out["confusion"].values())
        self.assertEqual(total, 18)
        text = self.srv.ctl("scan", "eval", corpus, "--all", "--model", model).stdout
        self.assertIn("ham false positives", text)
        self.assertIn("messages/s", text)
        res = self.srv.ctl("scan", "eval", "/nonexistent", check=False)
        self.assertEqual(res.returncode, 3)


if __name__ == "__main__":
    unittest.main()

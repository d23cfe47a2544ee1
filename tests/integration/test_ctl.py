#!/usr/bin/env python3
"""posternctl end to end: every command group through the real binary, its
exit codes, --json output, passwords on stdin, the recovery key and the
admin password reset, init --demo, and status against a running posternd."""

import base64
import json
import os
import pty
import select
import imaplib
import poplib
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Server

# Cheap Argon2id so the suite does not spend its time hashing.
FAST_AUTH = {"argon2_ops": "1", "argon2_mem": "8M"}

EXIT_FAIL, EXIT_USAGE, EXIT_NOTFOUND, EXIT_EXISTS, EXIT_CONFIG, EXIT_DAEMON = 1, 2, 3, 4, 5, 7

# Passwords the password policy accepts (long enough, not in cracklib's dictionary).
PW1, PW2, PW3 = "Pw1-Strong-7391", "Pw2-Strong-7391", "Pw3-Strong-7391"


def ctl_raw(*args, input=None, env=None, demote=False):
    """posternctl without the harness's -c (for config and init tests). DEMOTE
    runs it as the account the harness runs posternctl as (when root), for
    files a Server's posternctl must read."""
    return subprocess.run([harness.program("posternctl"), *args], input=input,
                          capture_output=True, text=True, timeout=120, env=env,
                          preexec_fn=harness.demote if demote else None)


def daemon_server(auth=None, **kwargs):
    """A started Server with cheap Argon2id and the AUTH settings."""
    return Server(config={"auth": dict(FAST_AUTH, **(auth or {}))}, **kwargs)


def run_on_tty(args, answers, timeout=60):
    """Runs posternctl ARGS with a terminal on stdin, answering each prompt in
    ANSWERS (a list of (prompt text, line)) once it shows on stderr. Returns
    (exit code, stdout, stderr, what the terminal echoed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([harness.program("posternctl"), *args], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=harness.demote)
    os.close(slave)
    err, echoed = b"", b""
    deadline = time.monotonic() + timeout
    try:
        for prompt, line in answers:
            while prompt.encode() not in err:
                if time.monotonic() > deadline:
                    raise AssertionError("no prompt %r; stderr so far: %r" % (prompt, err))
                ready, _, _ = select.select([proc.stderr, master], [], [], 1)
                if proc.stderr in ready:
                    chunk = os.read(proc.stderr.fileno(), 4096)
                    if not chunk:
                        raise AssertionError("stderr closed before %r: %r" % (prompt, err))
                    err += chunk
                if master in ready:
                    echoed += os.read(master, 4096)
            err = err.replace(prompt.encode(), b"", 1)
            os.write(master, line.encode() + b"\n")
        out, rest = proc.communicate(timeout=timeout)
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        os.close(master)
    return proc.returncode, out.decode(), (err + rest).decode(), echoed.decode("utf-8", "replace")


def as_json(res):
    return json.loads(res.stdout)


class CtlStoreTest(unittest.TestCase):
    """Commands that only need the store: no daemon is started."""

    def setUp(self):
        self.srv = Server(listeners=(), config={"auth": dict(FAST_AUTH)}, start=False)
        self.addCleanup(self.srv.close)

    def ctl(self, *args, input=None):
        return self.srv.ctl(*args, input=input, check=False)

    def ok(self, *args, input=None):
        res = self.ctl(*args, input=input)
        self.assertEqual(res.returncode, 0, "posternctl %s: %s%s" % (args, res.stdout, res.stderr))
        return res

    def show(self, address):
        return as_json(self.ok("user", "show", address, "--json"))

    # ---- usage and exit codes ----
    def test_help_lists_every_group(self):
        res = self.ok("help")
        for group in ("alias", "cert", "db", "domain", "init", "quota", "recovery", "status",
                      "user"):
            self.assertIn(group, res.stdout)
        self.assertEqual(ctl_raw("--help").returncode, 0)
        verbs = self.ok("user", "help").stdout
        for verb in ("add", "list", "show", "del", "passwd", "lock", "unlock", "recover"):
            self.assertIn("posternctl user %s" % verb, verbs)
        self.assertIn("--require-daemon", self.ok("status", "help").stdout)

    def test_unknown_group_and_verb_print_usage_and_exit_2(self):
        for args in (("frobnicate",), ("user", "frobnicate"), ("user",), ("domain", "add"),
                     ("domain", "add", "a.org", "b.org"), ("user", "add", "--bogus", "a@b.org")):
            res = self.ctl(*args)
            self.assertEqual(res.returncode, EXIT_USAGE, args)
            self.assertIn("Usage", res.stderr, args)
        self.assertEqual(ctl_raw().returncode, EXIT_USAGE)

    def test_missing_or_invalid_config_exits_5(self):
        res = ctl_raw("-c", os.path.join(self.srv.data_dir, "nope.conf"), "domain", "list")
        self.assertEqual(res.returncode, EXIT_CONFIG)
        self.assertIn("nope.conf", res.stderr)
        bad = os.path.join(self.srv.data_dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[server]\nno_such_key = 1\n")
        res = ctl_raw("-c", bad, "user", "list")
        self.assertEqual(res.returncode, EXIT_CONFIG)
        self.assertIn("bad.conf:2", res.stderr)
        env = dict(os.environ, POSTERN_CONFIG=bad)
        self.assertEqual(ctl_raw("domain", "list", env=env).returncode, EXIT_CONFIG)

    def test_store_that_cannot_open_exits_6(self):
        conf = os.path.join(self.srv.data_dir, "nostore.conf")
        with open(conf, "w") as f:
            f.write("[server]\ndata_dir = %s\n[store]\nsqlite_path = %s\n" % (
                self.srv.data_dir, os.path.join(self.srv.data_dir, "missing", "dir", "x.db")))
        for args in (("domain", "list"), ("status", "--json"), ("db", "migrate")):
            res = ctl_raw("-c", conf, *args)
            self.assertEqual(res.returncode, 6, args)
            self.assertIn("cannot open the store", res.stderr)
            self.assertEqual(res.stdout, "")

    # ---- domains ----
    def test_domain_add_list_del(self):
        self.ok("domain", "add", "Example.ORG")
        self.assertEqual(self.ctl("domain", "add", "example.org").returncode, EXIT_EXISTS)
        self.assertEqual(as_json(self.ok("domain", "list", "--json")), ["example.org"])
        self.assertIn("example.org", self.ok("domain", "list").stdout)
        for bad in ("nodot", "bad-.org", "bad_.org", "a..org", "x" * 64 + ".org", "1.2.3.4"):
            res = self.ctl("domain", "add", bad)
            self.assertEqual(res.returncode, EXIT_USAGE, bad)
            self.assertIn("invalid domain", res.stderr)
        res = self.ctl("domain", "add", "-bad.org")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("Usage", res.stderr)
        self.assertEqual(self.ctl("domain", "del", "other.org").returncode, EXIT_NOTFOUND)
        self.ok("domain", "del", "example.org")
        self.assertEqual(as_json(self.ok("domain", "list", "--json")), [])

    def test_domain_del_refuses_while_users_remain(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Alice-Pass-2718\n")
        res = self.ctl("domain", "del", "example.org")
        self.assertEqual(res.returncode, EXIT_FAIL)
        self.assertIn("users", res.stderr)
        self.assertEqual(as_json(self.ok("domain", "list", "--json")), ["example.org"])
        self.ok("user", "del", "alice@example.org", "--yes")
        self.ok("domain", "del", "example.org")

    # ---- users ----
    def test_user_add_takes_the_password_from_stdin_only(self):
        self.ok("domain", "add", "example.org")
        secret = "Sekret-Phrase-4711"
        res = self.ok("user", "add", "Alice@Example.org", "--json", input=secret + "\n")
        out = as_json(res)
        self.assertEqual(out["address"], "alice@example.org")
        self.assertEqual(len(base64.b64decode(out["public_key"])), 32)
        self.assertNotIn(secret, res.stdout + res.stderr)
        # a password on the command line is an extra argument, refused
        res = self.ctl("user", "add", "bob@example.org", secret)
        self.assertEqual(res.returncode, EXIT_USAGE)
        # no password at all
        res = self.ctl("user", "add", "bob@example.org", input="")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("password", res.stderr)
        self.assertEqual(self.ctl("user", "show", "bob@example.org").returncode, EXIT_NOTFOUND)
        # the store holds neither the password nor anything derived in clear
        if harness.engine() == "sqlite":
            with open(os.path.join(self.srv.data_dir, "postern.db"), "rb") as f:
                self.assertNotIn(secret.encode(), f.read())

    def test_password_prompt_on_a_terminal_hides_and_repeats(self):
        self.ok("domain", "add", "example.org")
        conf = ("-c", self.srv.config_path)
        rc, out, err, echoed = run_on_tty(
            conf + ("user", "add", "alice@example.org"),
            [("Password for alice@example.org: ", "Tty-Secret-1"),
             ("Repeat password: ", "Tty-Secret-1")])
        self.assertEqual(rc, 0, err)
        self.assertIn("alice@example.org", out)
        self.assertNotIn("Tty-Secret-1", echoed + out + err)
        rc, out, err, echoed = run_on_tty(
            conf + ("user", "add", "bob@example.org"),
            [("Password for bob@example.org: ", "one"), ("Repeat password: ", "two")])
        self.assertEqual(rc, EXIT_USAGE)
        self.assertIn("do not match", err)
        self.assertEqual(self.ctl("user", "show", "bob@example.org").returncode, EXIT_NOTFOUND)
        # the admin reset asks before it destroys anything
        before = self.show("alice@example.org")["public_key"]
        rc, out, err, _ = run_on_tty(conf + ("user", "passwd", "alice@example.org"),
                                     [("[y/N]", "n")])
        self.assertEqual(rc, EXIT_FAIL)
        self.assertIn("UNREADABLE", err)
        self.assertEqual(self.show("alice@example.org")["public_key"], before)
        rc, out, err, _ = run_on_tty(conf + ("user", "del", "alice@example.org"),
                                     [("[y/N]", "y")])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.ctl("user", "show", "alice@example.org").returncode,
                         EXIT_NOTFOUND)

    def test_user_add_duplicate_and_unknown_domain(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Pw1-Strong-7391\n")
        res = self.ctl("user", "add", "alice@example.org", input="Pw2-Strong-7391\n")
        self.assertEqual(res.returncode, EXIT_EXISTS)
        res = self.ctl("user", "add", "alice@elsewhere.org", input="Pw-Strong-7391\n")
        self.assertEqual(res.returncode, EXIT_NOTFOUND)
        self.assertIn("elsewhere.org", res.stderr)
        for bad in ("alice", "@example.org", "a..b@example.org", "al ice@example.org"):
            self.assertEqual(self.ctl("user", "add", bad, input="Pw-Strong-7391\n").returncode,
                             EXIT_USAGE, bad)

    def test_user_list_and_show(self):
        self.ok("domain", "add", "example.org")
        self.ok("domain", "add", "example.net")
        self.ok("user", "add", "alice@example.org", input="PwA-Strong-7391\n")
        self.ok("user", "add", "bob@example.net", input="PwB-Strong-7391\n")
        everyone = as_json(self.ok("user", "list", "--json"))
        self.assertEqual(sorted(u["address"] for u in everyone),
                         ["alice@example.org", "bob@example.net"])
        only = as_json(self.ok("user", "list", "example.net", "--json"))
        self.assertEqual([u["address"] for u in only], ["bob@example.net"])
        self.assertEqual(self.ctl("user", "list", "nowhere.org").returncode, EXIT_NOTFOUND)
        self.assertIn("alice@example.org", self.ok("user", "list").stdout)
        info = self.show("alice@example.org")
        self.assertFalse(info["locked"])
        self.assertEqual(info["quota_bytes"], 0)
        self.assertEqual(info["used_bytes"], 0)
        names = {m["name"] for m in info["mailboxes"]}
        self.assertTrue({"INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"} <= names, names)
        self.assertTrue(all(m["messages"] == 0 for m in info["mailboxes"]))
        self.assertIn("INBOX", self.ok("user", "show", "alice@example.org").stdout)
        self.assertEqual(self.ctl("user", "show", "nobody@example.org").returncode,
                         EXIT_NOTFOUND)

    def test_lock_and_unlock(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Pw-Strong-7391\n")
        self.ok("user", "lock", "alice@example.org")
        self.assertTrue(self.show("alice@example.org")["locked"])
        self.ok("user", "unlock", "alice@example.org")
        self.assertFalse(self.show("alice@example.org")["locked"])
        self.assertEqual(self.ctl("user", "lock", "x@example.org").returncode, EXIT_NOTFOUND)

    def test_user_del_asks_unless_yes(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Pw-Strong-7391\n")
        res = self.ctl("user", "del", "alice@example.org", input="no\n")
        self.assertEqual(res.returncode, EXIT_FAIL)
        self.show("alice@example.org")
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        self.ok("user", "add", "bob@example.org", input="Pw-Strong-7391\n")
        self.ok("alias", "add", "sales@example.org", "bob@example.org")
        self.ok("user", "del", "alice@example.org", input="yes\n")
        self.assertEqual(self.ctl("user", "show", "alice@example.org").returncode,
                         EXIT_NOTFOUND)
        # aliases of the deleted user go with it, others stay
        self.assertEqual(as_json(self.ok("alias", "list", "--json")),
                         [{"alias": "sales@example.org", "target": "bob@example.org"}])
        out = as_json(self.ok("user", "del", "bob@example.org", "--yes", "--json"))
        self.assertEqual(out["aliases_removed"], ["sales@example.org"])
        self.assertEqual(as_json(self.ok("alias", "list", "--json")), [])
        self.assertEqual(self.ctl("user", "del", "alice@example.org", "--yes").returncode,
                         EXIT_NOTFOUND)

    # ---- passwords ----
    def test_passwd_with_old_password_keeps_the_key(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Old-Pw-Strong-5821\n")
        before = self.show("alice@example.org")["public_key"]
        res = self.ctl("user", "passwd", "alice@example.org", "--old-password-stdin",
                       input="Wrong-Pw-Strong-5821\nNew-Pw-Strong-5821\n")
        self.assertEqual(res.returncode, EXIT_FAIL)
        self.assertIn("wrong", res.stderr)
        out = as_json(self.ok("user", "passwd", "alice@example.org", "--old-password-stdin",
                              "--json", input="Old-Pw-Strong-5821\nNew-Pw-Strong-5821\n"))
        self.assertTrue(out["mail_kept"])
        self.assertEqual(out["public_key"], before)
        self.assertEqual(self.show("alice@example.org")["public_key"], before)
        # the new password is now the one that unlocks the key
        self.assertEqual(self.ctl("user", "passwd", "alice@example.org", "--old-password-stdin",
                                  input="Old-Pw-Strong-5821\nx\n").returncode, EXIT_FAIL)
        self.ok("user", "passwd", "alice@example.org", "--old-password-stdin",
                input="New-Pw-Strong-5821\nNewer-Pw-Strong-5821\n")

    def test_password_policy_refuses_short_and_dictionary_passwords(self):
        self.ok("domain", "add", "example.org")
        for weak, why in (("Short-1", "at least 10 characters"),
                          ("password123", "too easy to guess"),
                          ("abcdefghijkl", "too easy to guess")):
            res = self.ctl("user", "add", "bob@example.org", input=weak + "\n")
            self.assertEqual(res.returncode, EXIT_USAGE, weak)
            self.assertIn("password refused", res.stderr)
            self.assertIn(why, res.stderr)
            self.assertNotIn(weak, res.stdout + res.stderr)
            self.assertEqual(self.ctl("user", "show", "bob@example.org").returncode,
                             EXIT_NOTFOUND)
        self.ok("user", "add", "alice@example.org", input=PW1 + "\n")
        before = self.show("alice@example.org")["public_key"]
        # passwd with the old password, the admin reset: the same policy, nothing changes
        res = self.ctl("user", "passwd", "alice@example.org", "--old-password-stdin",
                       input=PW1 + "\npassword123\n")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("too easy to guess", res.stderr)
        res = self.ctl("user", "passwd", "alice@example.org", "--yes", input="Short-1\n")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("at least 10 characters", res.stderr)
        self.assertEqual(self.show("alice@example.org")["public_key"], before)
        self.ok("user", "passwd", "alice@example.org", "--old-password-stdin",
                input=PW1 + "\n" + PW2 + "\n")

    def test_admin_reset_warns_and_makes_a_new_key(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Old-Pw-Strong-5821\n")
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        self.ok("quota", "set", "alice@example.org", "5M")
        before = self.show("alice@example.org")["public_key"]
        # without --yes and without a terminal: refused, nothing changes
        res = self.ctl("user", "passwd", "alice@example.org", input="New-Pw-Strong-5821\n")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("UNREADABLE", res.stderr)
        self.assertEqual(self.show("alice@example.org")["public_key"], before)
        res = self.ok("user", "passwd", "alice@example.org", "--yes", input="New-Pw-Strong-5821\n")
        self.assertIn("UNREADABLE", res.stderr)
        after = self.show("alice@example.org")
        self.assertNotEqual(after["public_key"], before)
        # the account keeps its settings and aliases
        self.assertEqual(after["quota_bytes"], 5 * 1024 * 1024)
        self.assertIn({"alias": "info@example.org", "target": "alice@example.org"},
                      as_json(self.ok("alias", "list", "--json")))
        self.ok("user", "passwd", "alice@example.org", "--old-password-stdin",
                input="New-Pw-Strong-5821\nThird-Pw-Strong-5821\n")

    def test_recovery_key_keeps_the_private_key(self):
        keyfile = os.path.join(self.srv.data_dir, "recovery.key")
        res = ctl_raw("recovery", "init", "--out", keyfile, "--json", demote=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        rec = as_json(res)
        self.assertEqual(os.stat(keyfile).st_mode & 0o777, 0o600)
        self.assertTrue(os.path.exists(keyfile + ".pub"))
        self.assertEqual(len(base64.b64decode(rec["recovery_public_key"])), 32)
        human = ctl_raw("recovery", "init", "--out", keyfile, demote=True)
        self.assertEqual(human.returncode, EXIT_EXISTS)
        other = os.path.join(self.srv.data_dir, "other.key")
        res = ctl_raw("recovery", "init", "--out", other, demote=True)
        self.assertEqual(res.returncode, 0)
        self.assertIn("recovery_public_key = ", res.stdout)
        self.assertIn("OFFLINE", res.stdout)

        with Server(listeners=(), start=False, config={"auth": dict(
                FAST_AUTH, recovery_public_key=rec["recovery_public_key"])}) as srv:
            def run(*args, input=None):
                return srv.ctl(*args, input=input, check=False)
            self.assertEqual(run("domain", "add", "example.org").returncode, 0)
            out = as_json(run("user", "add", "alice@example.org", "--json", input=PW1 + "\n"))
            self.assertTrue(out["recovery"])
            pub = out["public_key"]
            res = run("user", "recover", "alice@example.org", "--recovery-key", other,
                      input="Pw2-Strong-7391\n")
            self.assertEqual(res.returncode, EXIT_FAIL)
            res = run("user", "recover", "alice@example.org", input="Pw2-Strong-7391\n")
            self.assertEqual(res.returncode, EXIT_USAGE)
            res = run("user", "recover", "alice@example.org", "--recovery-key", keyfile,
                      "--new-password", input="forgotten\n")
            self.assertEqual(res.returncode, EXIT_USAGE)
            self.assertIn("password refused", res.stderr)
            res = run("user", "recover", "alice@example.org", "--recovery-key", keyfile,
                      "--new-password", input="forgotten-no-more\n")
            self.assertEqual(res.returncode, 0, res.stderr)
            # the user is told, in a notice delivered into the INBOX
            shown = as_json(run("user", "show", "alice@example.org", "--json"))
            self.assertEqual({m["name"]: m["messages"] for m in shown["mailboxes"]}["INBOX"], 1)
            shown = as_json(run("user", "show", "alice@example.org", "--json"))
            self.assertEqual(shown["public_key"], pub)
            self.assertTrue(shown["recovery"])
            # the recovered password unlocks the same key
            res = run("user", "passwd", "alice@example.org", "--old-password-stdin", "--json",
                      input="forgotten-no-more\nPw3-Strong-7391\n")
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertEqual(as_json(res)["public_key"], pub)

    def test_recover_without_recovery_copy_fails(self):
        keyfile = os.path.join(self.srv.data_dir, "recovery.key")
        self.assertEqual(ctl_raw("recovery", "init", "--out", keyfile, demote=True).returncode, 0)
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Pw-Strong-7391\n")
        self.assertFalse(self.show("alice@example.org")["recovery"])
        res = self.ctl("user", "recover", "alice@example.org", "--recovery-key", keyfile,
                       input="Pw2-Strong-7391\n")
        self.assertEqual(res.returncode, EXIT_FAIL)
        self.assertIn("recovery", res.stderr)

    def test_every_change_is_audited(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Audit-Pw-Strong-19\n")
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        self.ok("quota", "set", "alice@example.org", "1M")
        self.ok("user", "lock", "alice@example.org")
        self.ok("user", "del", "alice@example.org", "--yes")
        query = "SELECT actor, event, detail FROM audit_log ORDER BY id"
        if harness.engine() == "sqlite":
            db = sqlite3.connect(os.path.join(self.srv.data_dir, "postern.db"))
            try:
                rows = db.execute(query).fetchall()
            finally:
                db.close()
        else:
            res = subprocess.run(["mariadb", "--no-defaults", "-S",
                                  os.environ["POSTERN_TEST_MARIADB_SOCKET"], "-u", "root", "-N",
                                  "-B", self.srv.database, "-e", query],
                                 check=True, capture_output=True, text=True, timeout=60)
            rows = [tuple(line.split("\t")) for line in res.stdout.splitlines()]
        events = [(e, d) for _, e, d in rows]
        for expected in (("domain.add", "example.org"), ("user.add", "alice@example.org"),
                         ("alias.add", "info@example.org -> alice@example.org"),
                         ("user.lock", "alice@example.org"), ("user.del", "alice@example.org")):
            self.assertIn(expected, events)
        self.assertIn("quota.set", [e for e, _ in events])
        self.assertTrue(all(a.startswith("posternctl:") for a, _, _ in rows))
        self.assertFalse(any("Audit-Pw-Strong-19" in d for _, _, d in rows))

    # ---- aliases and quotas ----
    def test_alias_add_list_del(self):
        self.ok("domain", "add", "example.org")
        self.ok("domain", "add", "example.net")
        self.ok("user", "add", "alice@example.org", input="Pw-Strong-7391\n")
        self.ok("alias", "add", "Postmaster@example.org", "alice@example.org")
        self.ok("alias", "add", "alice@example.net", "alice@example.org")
        self.assertEqual(self.ctl("alias", "add", "postmaster@example.org",
                                  "alice@example.org").returncode, EXIT_EXISTS)
        self.assertEqual(self.ctl("alias", "add", "x@example.org",
                                  "nobody@example.org").returncode, EXIT_NOTFOUND)
        self.assertEqual(self.ctl("alias", "add", "x@remote.org",
                                  "alice@example.org").returncode, EXIT_NOTFOUND)
        self.assertEqual(self.ctl("alias", "add", "alice@example.org",
                                  "alice@example.org").returncode, EXIT_USAGE)
        self.assertEqual(self.ctl("alias", "add", "bad", "alice@example.org").returncode,
                         EXIT_USAGE)
        listed = as_json(self.ok("alias", "list", "--json"))
        self.assertIn({"alias": "postmaster@example.org", "target": "alice@example.org"}, listed)
        self.assertIn({"alias": "alice@example.net", "target": "alice@example.org"}, listed)
        only = as_json(self.ok("alias", "list", "example.net", "--json"))
        self.assertEqual(only, [{"alias": "alice@example.net", "target": "alice@example.org"}])
        self.assertIn("postmaster@example.org", self.ok("alias", "list").stdout)
        self.ok("alias", "del", "postmaster@example.org")
        self.assertEqual(self.ctl("alias", "del", "postmaster@example.org").returncode,
                         EXIT_NOTFOUND)
        self.assertEqual(len(as_json(self.ok("alias", "list", "--json"))), 1)

    def test_quota_set_shows_in_user_show(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Pw-Strong-7391\n")
        self.ok("quota", "set", "alice@example.org", "10M")
        self.assertEqual(self.show("alice@example.org")["quota_bytes"], 10 * 1024 * 1024)
        self.assertIn("10.0 MiB", self.ok("user", "show", "alice@example.org").stdout)
        self.ok("quota", "set", "alice@example.org", "2G")
        self.assertEqual(self.show("alice@example.org")["quota_bytes"], 2 * 1024 ** 3)
        self.ok("quota", "set", "alice@example.org", "0")
        self.assertEqual(self.show("alice@example.org")["quota_bytes"], 0)
        for bad in ("10X", "-5", "M", "1.5G", ""):
            self.assertEqual(self.ctl("quota", "set", "alice@example.org", bad).returncode,
                             EXIT_USAGE, bad)
        self.assertEqual(self.ctl("quota", "set", "bob@example.org", "1M").returncode,
                         EXIT_NOTFOUND)

    # ---- store and certificates ----
    def test_db_migrate_reports_the_schema_version(self):
        out = as_json(self.ok("db", "migrate", "--json"))
        self.assertGreaterEqual(out["schema_version"], 1)
        self.assertEqual(out["engine"], harness.engine())
        again = as_json(self.ok("db", "migrate", "--json"))
        self.assertEqual(again["schema_version"], out["schema_version"])
        self.assertIn(str(out["schema_version"]), self.ok("db", "migrate").stdout)

    def test_status_without_daemon(self):
        self.ok("domain", "add", "example.org")
        self.ok("user", "add", "alice@example.org", input="Pw-Strong-7391\n")
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        out = as_json(self.ok("status", "--json"))
        self.assertEqual(out["store"]["domains"], 1)
        self.assertEqual(out["store"]["users"], 1)
        self.assertEqual(out["store"]["aliases"], 1)
        self.assertEqual(out["store"]["messages"], 0)
        self.assertEqual(out["store"]["queued"], 0)
        self.assertFalse(out["daemon"]["running"])
        res = self.ok("status")
        self.assertIn("not reachable", res.stdout)
        res = self.ctl("status", "--require-daemon")
        self.assertEqual(res.returncode, EXIT_DAEMON)

    def test_cert_selfsigned_writes_pem_files(self):
        cert = os.path.join(self.srv.data_dir, "c.pem")
        key = os.path.join(self.srv.data_dir, "k.pem")
        out = as_json(self.ok("cert", "selfsigned", "--hostname", "mail.example.org",
                              "--cert", cert, "--key", key, "--json"))
        self.assertEqual(out["hostname"], "mail.example.org")
        with open(cert) as f:
            self.assertIn("BEGIN CERTIFICATE", f.read())
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertEqual(self.ctl("cert", "selfsigned", "--cert", cert).returncode, EXIT_USAGE)
        self.assertEqual(self.ctl("cert", "selfsigned", "--hostname", "bad host",
                                  "--cert", cert, "--key", key).returncode, EXIT_USAGE)
        if shutil.which("openssl"):
            res = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext",
                                  "subjectAltName"], capture_output=True, text=True)
            self.assertIn("mail.example.org", res.stdout)


def free_port_base():
    """A base N with every port init writes (N+25 ... N+9465) free on 127.0.0.1."""
    offsets = (25, 587, 465, 110, 995, 143, 993, 9465)
    for base in range(20000 + os.getpid() % 20000, 56000, 97):
        socks = []
        try:
            for off in offsets:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


class CtlInitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postern-init-")
        os.chmod(self.tmp, 0o755)  # the daemon's account walks through it
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_init_demo_creates_a_working_data_dir(self):
        data = os.path.join(self.tmp, "var", "demo")
        base = free_port_base()
        pwfile = os.path.join(self.tmp, "demo-password")
        res = ctl_raw("init", "--data-dir", data, "--demo", "--port-base", str(base),
                      "--demo-password-file", pwfile, "--json",
                      *(("--user", harness.RUN_AS) if harness.RUN_AS else ()))
        self.assertEqual(res.returncode, 0, res.stderr)
        out = as_json(res)
        conf = os.path.join(data, "postern.conf")
        self.assertEqual(out["config"], os.path.realpath(conf))
        self.assertEqual(out["ports"]["smtp"], base + 25)
        self.assertEqual(out["ports"]["submissions"], base + 465)
        password = out["demo"]["password"]
        self.assertEqual(len(password), 16)
        self.assertTrue(set(password) <= set("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
                                             "23456789"))
        with open(pwfile) as f:
            self.assertEqual(f.read().strip(), password)
        self.assertEqual(os.stat(pwfile).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(data).st_mode & 0o777, 0o700)
        users = as_json(ctl_raw("-c", conf, "user", "list", "--json"))
        self.assertEqual([u["address"] for u in users], ["demo@example.test"])
        # the password opens the demo user's key
        res = ctl_raw("-c", conf, "user", "passwd", "demo@example.test",
                      "--old-password-stdin", input=password + "\n" + password + "\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        # never overwritten
        res = ctl_raw("init", "--data-dir", data, "--demo")
        self.assertEqual(res.returncode, EXIT_EXISTS)
        # a second run with a different password would be a different password
        self.assertNotEqual(as_json(ctl_raw("init", "--data-dir", os.path.join(self.tmp, "b"),
                                            "--demo", "--json",
                                            "--port-base", str(base)))["demo"]["password"],
                            password)
        # posternd runs on it and greets on the SMTP port
        harness.chown_tree(data)
        log = open(os.path.join(self.tmp, "posternd.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([harness.program("posternd"), "-c", conf],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            greeting = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and greeting is None:
                if proc.poll() is not None:
                    with open(os.path.join(self.tmp, "posternd.log")) as f:
                        self.fail("posternd exited: " + f.read())
                try:
                    with socket.create_connection(("127.0.0.1", base + 25), timeout=5) as s:
                        greeting = s.recv(512).decode("ascii", "replace")
                except OSError:
                    time.sleep(0.1)
            self.assertIsNotNone(greeting)
            self.assertTrue(greeting.startswith("220"), greeting)
        finally:
            proc.terminate()
            proc.wait(60)  # ASan: the exit runs the leak check

    def test_init_rejects_bad_arguments(self):
        self.assertEqual(ctl_raw("init").returncode, EXIT_USAGE)
        self.assertEqual(ctl_raw("init", "--data-dir", self.tmp, "--port-base",
                                 "70000").returncode, EXIT_USAGE)
        self.assertEqual(ctl_raw("init", "--data-dir", self.tmp, "--port-base",
                                 "x").returncode, EXIT_USAGE)
        self.assertEqual(ctl_raw("init", "--data-dir", self.tmp, "--user",
                                 "no-such-account-here").returncode, EXIT_USAGE)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "postern.conf")))


class CtlDaemonTest(unittest.TestCase):
    """Commands that talk to a running posternd over the admin socket."""

    def test_status_reports_the_running_daemon(self):
        with daemon_server(listeners=("smtp",)) as srv:
            out = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                out = as_json(srv.ctl("status", "--json", "--require-daemon", check=False))
                if out["daemon"]["running"]:
                    break
                time.sleep(0.1)
            self.assertTrue(out["daemon"]["running"], out)
            self.assertEqual(out["daemon"]["pid"], srv.pid)
            self.assertGreaterEqual(out["daemon"]["uptime"], 0)
            self.assertIn("pid %d" % srv.pid, srv.ctl("status").stdout)

    def login(self, srv, address, password):
        """True when SMTP AUTH on the submission port accepts ADDRESS/PASSWORD."""
        ctx = srv.ssl_context()
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=30) as c:
            c.starttls(context=ctx)
            try:
                c.login(address, password)
                return True
            except smtplib.SMTPAuthenticationError:
                return False

    def deliver(self, srv, rcpt):
        ctx = srv.ssl_context()
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as c:
            c.starttls(context=ctx)
            c.sendmail("carol@example.net", [rcpt],
                       b"From: carol@example.net\r\nTo: %s\r\nSubject: hi\r\n\r\nHello.\r\n"
                       % rcpt.encode())

    def inbox(self, srv, address):
        info = as_json(srv.ctl("user", "show", address, "--json"))
        return {m["name"]: m["messages"] for m in info["mailboxes"]}["INBOX"]

    def test_password_change_and_lock_reach_the_running_daemon(self):
        with daemon_server(listeners=("smtp", "submission"),
                           auth={"failure_delay_ms": "0", "cache_ttl": "600"}) as srv:
            srv.add_domain("example.org")
            srv.add_user("alice@example.org", "Pw1-Strong-7391")
            self.assertTrue(self.login(srv, "alice@example.org", "Pw1-Strong-7391"))  # now cached
            srv.ctl("user", "passwd", "alice@example.org", "--old-password-stdin",
                    input="Pw1-Strong-7391\nPw2-Strong-7391\n")
            self.assertFalse(self.login(srv, "alice@example.org", "Pw1-Strong-7391"))
            self.assertTrue(self.login(srv, "alice@example.org", "Pw2-Strong-7391"))
            srv.ctl("user", "lock", "alice@example.org")
            self.assertFalse(self.login(srv, "alice@example.org", "Pw2-Strong-7391"))
            srv.ctl("user", "unlock", "alice@example.org")
            self.assertTrue(self.login(srv, "alice@example.org", "Pw2-Strong-7391"))
            srv.ctl("user", "del", "alice@example.org", "--yes")
            self.assertFalse(self.login(srv, "alice@example.org", "Pw2-Strong-7391"))
            self.assertIsNone(srv.proc.poll())

    def imap_session(self, srv, address, password):
        ctx = srv.ssl_context()
        ctx.check_hostname = False
        m = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30)
        m.starttls(ssl_context=ctx)
        m.login(address, password)
        return m

    def pop_session(self, srv, address, password):
        ctx = srv.ssl_context()
        ctx.check_hostname = False
        p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=30)
        p.stls(context=ctx)
        p.user(address)
        p.pass_(password)
        return p

    def test_admin_reset_keeps_the_old_mail_stored_but_unreadable(self):
        alice = "alice@example.org"
        with daemon_server(listeners=("smtp", "submission", "imap", "pop3"),
                           auth={"failure_delay_ms": "0", "cache_ttl": "0"}) as srv:
            srv.add_domain("example.org")
            srv.add_user(alice, PW1)
            srv.ctl("alias", "add", "info@example.org", alice)
            self.deliver(srv, "info@example.org")
            self.assertEqual(self.inbox(srv, alice), 1)
            app = as_json(srv.ctl("app-password", "add", alice, "phone", "--json",
                                  input=PW1 + "\n"))["password"]
            self.assertEqual(self.inbox(srv, alice), 2)  # + the app-password notice
            # A change with the old password keeps everything readable, and says so.
            srv.ctl("user", "passwd", alice, "--old-password-stdin", input=PW1 + "\n" + PW2 + "\n")
            self.assertEqual(self.inbox(srv, alice), 3)
            m = self.imap_session(srv, alice, PW2)
            m.select("INBOX")
            typ, data = m.fetch("1:*", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            bodies = [d[1] for d in data if isinstance(d, tuple)]
            self.assertIn(b"Hello.", bodies[0])
            self.assertIn(b"Security notice: password changed", bodies[2])
            self.assertIn(b"changed with the current password", bodies[2])
            m.logout()

            # The admin reset: a new key pair, nothing deleted, app passwords revoked.
            res = srv.ctl("user", "passwd", alice, "--yes", "--json", input=PW3 + "\n")
            self.assertIn("UNREADABLE", res.stderr)
            self.assertIn("app passwords are revoked", res.stderr)
            out = as_json(res)
            self.assertTrue(out["mail_kept"])
            self.assertFalse(out["mail_readable"])
            self.assertEqual(out["app_passwords_revoked"], 1)
            self.assertEqual(self.inbox(srv, alice), 4)  # the old three + the reset notice
            self.assertEqual(as_json(srv.ctl("app-password", "list", alice, "--json")), [])
            self.assertFalse(self.login(srv, alice, app))
            self.assertFalse(self.login(srv, alice, PW2))
            srv.ctl("auth", "unblock", alice)  # smtplib tried two mechanisms each time
            self.assertTrue(self.login(srv, alice, PW3))
            self.deliver(srv, "info@example.org")  # new mail is sealed to the new key
            self.assertEqual(self.inbox(srv, alice), 5)

            # IMAP: the old messages get a clear NO, the new ones come, the session goes on.
            m = self.imap_session(srv, alice, PW3)
            m.select("INBOX")
            typ, data = m.fetch("1", "(BODY.PEEK[])")
            self.assertEqual(typ, "NO")
            self.assertIn(b"cannot be decrypted", data[0])
            typ, data = m.fetch("4", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"reset by the administrator", data[0][1])
            self.assertIn(b"cannot be read any more", data[0][1])
            typ, data = m.fetch("5", "(BODY.PEEK[])")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"Hello.", data[0][1])
            typ, data = m.fetch("1:*", "(FLAGS RFC822.SIZE)")
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data), 5)
            self.assertEqual(m.noop()[0], "OK")
            m.logout()

            # POP3 the same: -ERR for the old ones (not a temporary failure), the rest works.
            p = self.pop_session(srv, alice, PW3)
            self.assertEqual(p.stat()[0], 5)
            with self.assertRaises(poplib.error_proto) as e:
                p.retr(1)
            self.assertIn(b"cannot be decrypted", e.exception.args[0])
            self.assertNotIn(b"SYS/TEMP", e.exception.args[0])
            self.assertIn(b"Hello.", b"\r\n".join(p.retr(5)[1]))
            p.quit()
            self.assertEqual(self.inbox(srv, alice), 5)
            counts = as_json(srv.ctl("status", "--json"))["store"]
            self.assertEqual(counts["messages"], 5)
            self.assertIsNone(srv.proc.poll())

if __name__ == "__main__":
    unittest.main()

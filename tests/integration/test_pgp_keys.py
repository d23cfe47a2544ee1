#!/usr/bin/env python3
"""OpenPGP and S/MIME keys of users, checked by independent peers: gpg, gpgsm
and openssl in homes of their own import what posternctl exports and make
what posternctl imports; the organization CA's certificates verify with
openssl and gpgsm; WKD is served on the HTTP listener (URLs computed by
gpg-wks-client, the key read back by gpg), and over HTTPS on port 443
`gpg --locate-keys` fetches it by both methods (wkd_gpg_peer.py, in a private
network and mount namespace); posternctl fetches keys from a loopback HTTPS
server with a test CA; bad input gives a clear error and the documented exit
code, never a crash."""

import errno
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import Server

FAST_AUTH = {"argon2_ops": "1", "argon2_mem": "8M"}
EXIT_FAIL, EXIT_USAGE, EXIT_NOTFOUND, EXIT_EXISTS = 1, 2, 3, 4
ALICE, ALICE_PW = "alice@wkd.localhost", "Alice-Strong-7391"
BOB = "bob@peer.localhost"
WKS_CLIENT = "/usr/lib/gnupg/gpg-wks-client"
WKD_GPG_PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wkd_gpg_peer.py")
METRICS_HTTPS_PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "metrics_https_peer.py")


def run(*args, input=None, check=True, env=None):
    res = subprocess.run(list(args), input=input, capture_output=True, timeout=120, env=env)
    if check and res.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(args), res.returncode,
                                                    res.stderr.decode(errors="replace")))
    return res


class Peer:
    """gpg and gpgsm with a home of their own (the independent side)."""

    def __init__(self, root):
        self.home = tempfile.mkdtemp(prefix="peer-", dir=root)
        os.chmod(self.home, 0o700)
        with open(os.path.join(self.home, "gpg-agent.conf"), "w") as f:
            f.write("allow-loopback-pinentry\n")

    def gpg(self, *args, input=None, check=True):
        return run("gpg", "--homedir", self.home, "--batch", "--pinentry-mode", "loopback",
                   "--passphrase", "peer-pass", *args, input=input, check=check)

    def gpgsm(self, *args, input=None, check=True):
        return run("gpgsm", "--homedir", self.home, "--batch", "--disable-crl-checks",
                   "--disable-dirmngr", *args, input=input, check=check)

    def close(self):
        run("gpgconf", "--homedir", self.home, "--kill", "all", check=False)


def fingerprints(colons):
    """Primary key fingerprints in gpg --with-colons output."""
    out, want = [], False
    for line in colons.splitlines():
        f = line.split(":")
        if f[0] in ("pub", "sec", "crt", "crs"):
            want = True
        elif f[0] == "fpr" and want:
            out.append(f[9])
            want = False
    return out


class PgpKeysTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(listeners=("submission",), config={"auth": FAST_AUTH}, start=False)
        self.server.add_domain("wkd.localhost")
        self.server.add_user(ALICE, ALICE_PW)
        # Files posternctl reads (it runs as the daemon's account) live here.
        self.files = tempfile.mkdtemp(prefix="pgp-files-")
        os.chmod(self.files, 0o755)
        self.peer = Peer(self.files)

    def tearDown(self):
        self.peer.close()
        self.server.close()
        shutil.rmtree(self.files, ignore_errors=True)

    def ctl(self, *args, input=None):
        return self.server.ctl(*args, input=input, check=False)

    def file(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        return path

    def keygen(self):
        r = self.ctl("--json", "pgp", "keygen", ALICE, input=ALICE_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["fingerprint"]

    def test_keygen_key_is_read_by_gpg_and_protected(self):
        fpr = self.keygen()
        r = self.ctl("pgp", "export", ALICE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("BEGIN PGP PUBLIC KEY BLOCK", r.stdout)
        self.peer.gpg("--import", input=r.stdout.encode())
        listed = self.peer.gpg("--with-colons", "--list-keys", ALICE).stdout.decode()
        self.assertEqual(fingerprints(listed), [fpr])
        self.assertIn(ALICE, listed)
        # The peer can encrypt to it (an encryption subkey is there and valid).
        self.peer.gpg("--trust-model", "always", "-r", ALICE, "--encrypt", input=b"hello")
        # Secret key files in the user's home are passphrase-protected.
        home = os.path.join(self.server.data_dir, "gnupg")
        keys = [os.path.join(root, n) for root, _, names in os.walk(home)
                for n in names if n.endswith(".key")]
        self.assertEqual(len(keys), 2)
        for k in keys:
            with open(k, "rb") as f:
                self.assertIn(b"protected-private-key", f.read())
        # A second key needs --force; a wrong password or unknown user fails.
        self.assertEqual(self.ctl("pgp", "keygen", ALICE, input=ALICE_PW + "\n").returncode,
                         EXIT_EXISTS)
        r = self.ctl("pgp", "keygen", ALICE, "--force", input="wrong password\n")
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("wrong password", r.stderr)
        self.assertEqual(self.ctl("pgp", "keygen", "nobody@wkd.localhost",
                                  input=ALICE_PW + "\n").returncode, EXIT_NOTFOUND)
        self.assertEqual(self.ctl("pgp", "keygen").returncode, EXIT_USAGE)

    def test_delete_all_removes_home_and_wkd_copy(self):
        self.keygen()
        gnupg = os.path.join(self.server.data_dir, "gnupg")
        homes = [d for d in os.listdir(gnupg) if d != "wkd"]
        published = os.path.join(gnupg, "wkd", "wkd.localhost", "hu")
        self.assertEqual(len(os.listdir(published)), 1)
        self.assertEqual(self.ctl("pgp", "delete", ALICE).returncode, EXIT_USAGE)
        r = self.ctl("pgp", "delete", ALICE, "--all", "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(gnupg, homes[0])))
        self.assertEqual(os.listdir(published), [])
        self.assertEqual(self.ctl("pgp", "delete", ALICE, "--all", "--yes").returncode,
                         EXIT_NOTFOUND)

    def test_user_deletion_removes_home_and_wkd_copy(self):
        self.keygen()
        gnupg = os.path.join(self.server.data_dir, "gnupg")
        homes = [d for d in os.listdir(gnupg) if d != "wkd"]
        published = os.path.join(gnupg, "wkd", "wkd.localhost", "hu")
        self.assertEqual(len(os.listdir(published)), 1)
        r = self.server.ctl("user", "del", ALICE, "--yes", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("not removed", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(gnupg, homes[0])))
        self.assertEqual(os.listdir(published), [])
        self.assertEqual(self.ctl("pgp", "delete", ALICE, "--all", "--yes").returncode,
                         EXIT_NOTFOUND)
        # A new user of the same address starts with an empty keyring.
        self.server.add_user(ALICE, ALICE_PW)
        self.assertEqual(json.loads(self.ctl("--json", "pgp", "list", ALICE).stdout), [])

    def test_import_of_gpg_made_public_key_and_delete(self):
        self.peer.gpg("--quick-gen-key", BOB, "future-default", "default", "never")
        pub = self.peer.gpg("--armor", "--export", BOB).stdout
        bob_fpr = fingerprints(self.peer.gpg("--with-colons", "--list-keys", BOB).stdout.decode())[0]
        r = self.ctl("pgp", "import", ALICE, self.file("bob.asc", pub))
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(self.ctl("--json", "pgp", "list", ALICE).stdout)
        self.assertEqual([(k["fingerprint"], k["secret"]) for k in listed], [(bob_fpr, False)])
        self.assertIn(BOB, listed[0]["uids"][0])
        # Alice has no key of her own: exporting hers finds nothing.
        self.assertEqual(self.ctl("pgp", "export", ALICE).returncode, EXIT_NOTFOUND)
        r = self.ctl("pgp", "delete", ALICE, "0" * 40, "--yes")
        self.assertEqual(r.returncode, EXIT_NOTFOUND, r.stderr)
        r = self.ctl("pgp", "delete", ALICE, bob_fpr, "--yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(self.ctl("--json", "pgp", "list", ALICE).stdout), [])

    def test_import_of_secret_key_is_reprotected(self):
        self.peer.gpg("--quick-gen-key", ALICE, "future-default", "default", "never")
        fpr = fingerprints(self.peer.gpg("--with-colons", "--list-keys", ALICE).stdout.decode())[0]
        secret = self.file("alice-secret.asc",
                           self.peer.gpg("--armor", "--export-secret-keys", ALICE).stdout)
        # Wrong passphrase of the key: refused, nothing left behind.
        r = self.ctl("pgp", "import", ALICE, secret, input=ALICE_PW + "\nnot-the-pass\n")
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("wrong passphrase", r.stderr)
        self.assertEqual([k for k in json.loads(self.ctl("--json", "pgp", "list", ALICE).stdout)
                          if k["secret"]], [])
        r = self.ctl("pgp", "import", ALICE, secret, input=ALICE_PW + "\npeer-pass\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(self.ctl("--json", "pgp", "list", ALICE).stdout)
        self.assertEqual([(k["fingerprint"], k["secret"]) for k in listed], [(fpr, True)])
        # The key's old passphrase no longer opens it in the user's home.
        home = [os.path.join(self.server.data_dir, "gnupg", d)
                for d in os.listdir(os.path.join(self.server.data_dir, "gnupg")) if d != "wkd"][0]
        r = subprocess.run(["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
                            "--passphrase", "peer-pass", "-u", fpr, "--sign"], input=b"x",
                           capture_output=True, timeout=60, preexec_fn=harness.demote)
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], preexec_fn=harness.demote)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Bad passphrase", r.stderr)

    def test_bad_openpgp_input_is_a_clear_error(self):
        self.peer.gpg("--quick-gen-key", BOB, "future-default", "default", "never")
        pub = self.peer.gpg("--armor", "--export", BOB).stdout
        lines = pub.split(b"\n")
        broken = b"\n".join(lines[:3] + [b"!!!!not base64!!!!"] + lines[4:])
        cases = {
            "broken armor": self.file("broken.asc", broken),
            "truncated": self.file("truncated.asc", pub[:len(pub) // 2]),
            "garbage": self.file("garbage.bin", os.urandom(300)),
            "empty": self.file("empty.asc", b""),
        }
        for what, path in cases.items():
            r = self.ctl("pgp", "import", ALICE, path)
            self.assertEqual(r.returncode, EXIT_FAIL, "%s: %s" % (what, r.stderr))
            self.assertTrue(r.stderr.startswith("posternctl: "), what)
        r = self.ctl("pgp", "import", ALICE, os.path.join(self.files, "missing.asc"))
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertEqual(json.loads(self.ctl("--json", "pgp", "list", ALICE).stdout), [])

    def test_smime_ca_issues_certificates_that_openssl_and_gpgsm_verify(self):
        r = self.ctl("smime", "ca", "init", "--name", "Test Org CA")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ctl("smime", "ca", "init").returncode, EXIT_EXISTS)
        key = os.path.join(self.server.data_dir, "smime-ca", "ca.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        ca = self.file("ca.pem", self.ctl("smime", "ca", "show").stdout.encode())
        r = self.ctl("smime", "issue", ALICE, input=ALICE_PW + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        cert = self.file("alice.pem", r.stdout.encode())
        for purpose in ("smimesign", "smimeencrypt"):
            out = run("openssl", "verify", "-CAfile", ca, "-purpose", purpose, cert).stdout
            self.assertIn(b"OK", out)
        text = run("openssl", "x509", "-in", cert, "-noout", "-text").stdout.decode()
        self.assertIn("email:" + ALICE, text)
        self.assertIn("E-mail Protection", text)
        self.assertIn("Digital Signature, Key Encipherment", text)
        # The private key stayed in the user's gpgsm home.
        listed = json.loads(self.ctl("--json", "smime", "list", ALICE).stdout)
        own = [k for k in listed if k["secret"]]
        self.assertEqual(len(own), 1)
        self.assertTrue(own[0]["can_sign"] and own[0]["can_encrypt"])
        # gpgsm in its own home validates the chain once it trusts the CA.
        self.peer.gpgsm("--import", ca)
        self.peer.gpgsm("--import", cert)
        ca_fpr = [line.split(":")[9] for line in
                  self.peer.gpgsm("--with-colons", "--list-keys", "Test Org CA").stdout.decode()
                  .splitlines() if line.startswith("fpr")][0]
        with open(os.path.join(self.peer.home, "trustlist.txt"), "w") as f:
            f.write("%s S relax\n" % ca_fpr)
        r = self.peer.gpgsm("--with-validation", "--list-keys", ALICE, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(b"not trusted", r.stderr)
        # Export gives the same certificate back.
        exported = self.ctl("smime", "export", ALICE).stdout
        self.assertEqual(run("openssl", "x509", "-in", self.file("x.pem", exported.encode()),
                             "-noout", "-fingerprint").stdout,
                         run("openssl", "x509", "-in", cert, "-noout", "-fingerprint").stdout)

    def test_smime_import_of_p12_and_bad_p12(self):
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-keyout", os.path.join(self.files, "k.pem"), "-out", os.path.join(self.files, "c.pem"),
            "-subj", "/CN=Alice/emailAddress=" + ALICE, "-addext", "subjectAltName=email:" + ALICE,
            "-addext", "extendedKeyUsage=emailProtection")
        p12 = os.path.join(self.files, "alice.p12")
        run("openssl", "pkcs12", "-export", "-inkey", os.path.join(self.files, "k.pem"),
            "-in", os.path.join(self.files, "c.pem"), "-out", p12, "-passout", "pass:p12-pass")
        os.chmod(p12, 0o644)
        with open(p12, "rb") as f:
            data = f.read()
        r = self.ctl("smime", "import", ALICE, self.file("cut.p12", data[:len(data) // 2]),
                     input=ALICE_PW + "\np12-pass\n")
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("not a PKCS#12 file, or truncated", r.stderr)
        r = self.ctl("smime", "import", ALICE, p12, input=ALICE_PW + "\nwrong-pass\n")
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("wrong password for the PKCS#12 file", r.stderr)
        r = self.ctl("smime", "import", ALICE, p12, input="wrong user password\np12-pass\n")
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertEqual(json.loads(self.ctl("--json", "smime", "list", ALICE).stdout), [])
        r = self.ctl("smime", "import", ALICE, p12, input=ALICE_PW + "\np12-pass\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(self.ctl("--json", "smime", "list", ALICE).stdout)
        self.assertEqual([k["secret"] for k in listed], [True])
        fpr = listed[0]["fingerprint"]
        self.assertEqual(self.ctl("smime", "delete", ALICE, fpr, "--yes").returncode, 0)
        self.assertEqual(json.loads(self.ctl("--json", "smime", "list", ALICE).stdout), [])


class WkdServerTest(unittest.TestCase):
    """WKD on the HTTP listener; URLs from gpg-wks-client, keys read by gpg."""

    def setUp(self):
        self.server = Server(listeners=("submission",), config={"auth": FAST_AUTH})
        self.server.add_domain("wkd.localhost")
        self.server.add_user(ALICE, ALICE_PW)
        self.files = tempfile.mkdtemp(prefix="pgp-files-")
        self.peer = Peer(self.files)

    def tearDown(self):
        self.peer.close()
        self.server.close()
        shutil.rmtree(self.files, ignore_errors=True)

    def get(self, path, host):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.server.metrics_port, path),
                                     headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_published_key_is_served_by_both_methods(self):
        r = self.server.ctl("--json", "pgp", "keygen", ALICE, input=ALICE_PW + "\n")
        fpr = json.loads(r.stdout)["fingerprint"]
        url = run(WKS_CLIENT, "--print-wkd-url", ALICE).stdout.decode().strip()
        advanced = url[url.index("/.well-known/"):url.index("?")]
        self.assertTrue(advanced.startswith("/.well-known/openpgpkey/wkd.localhost/hu/"))
        digest = advanced.rsplit("/", 1)[1]
        self.assertIn(digest, run(WKS_CLIENT, "--print-wkd-hash", ALICE).stdout.decode())
        for path, host in ((advanced, "openpgpkey.wkd.localhost"),
                           ("/.well-known/openpgpkey/hu/" + digest, "wkd.localhost:443")):
            status, body = self.get(path, host)
            self.assertEqual(status, 200, path)
            self.assertNotIn(b"BEGIN PGP", body)  # binary, not armored
            shown = self.peer.gpg("--with-colons", "--import-options", "show-only",
                                  "--import", input=body).stdout.decode()
            self.assertEqual(fingerprints(shown), [fpr])
        self.assertEqual(self.get("/.well-known/openpgpkey/wkd.localhost/policy", "x")[0], 200)
        self.assertEqual(self.get("/.well-known/openpgpkey/policy", "wkd.localhost")[0], 200)
        # Unknown users, domains and crafted paths are 404; other methods 405.
        status, _ = self.get("/.well-known/openpgpkey/hu/" + "y" * 32, "wkd.localhost")
        self.assertEqual(status, 404)
        self.assertEqual(self.get(advanced.replace("wkd.localhost", "other.localhost"), "x")[0], 404)
        self.assertEqual(self.get("/.well-known/openpgpkey/../hu/" + digest, "wkd.localhost")[0], 404)
        self.assertEqual(self.get("/.well-known/openpgpkey/..%2f..%2fpostern.conf/hu/" + digest,
                                  "x")[0], 404)
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.server.metrics_port, advanced),
                                     method="POST", data=b"x")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(e.exception.code, 405)
        # Deleting the key unpublishes it.
        self.assertEqual(self.server.ctl("pgp", "delete", ALICE, fpr, "--yes").returncode, 0)
        self.assertEqual(self.get(advanced, "openpgpkey.wkd.localhost")[0], 404)


def privileged_free_port(below):
    """A port under BELOW (only root may bind it) that nothing uses, or None."""
    for port in range(min(below, 1024) - 1, 599, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return None


class WkdHttpsTest(unittest.TestCase):
    """[metrics] tls = yes: HTTPS with the server's certificate."""

    def test_tls_without_certificate_is_a_startup_error(self):
        # No TLS listener either, so the configuration itself is valid.
        server = Server(listeners=(), start=False, config={
            "tls": {"cert_file": "", "key_file": ""}, "metrics": {"tls": "yes"}})
        try:
            with self.assertRaises(RuntimeError) as e:
                server.start()
            self.assertIn("[metrics] tls needs [tls] cert_file and key_file", str(e.exception))
        finally:
            server.close()

    def test_https_listener_serves_metrics(self):
        with Server(listeners=("submission",), config={"metrics": {"tls": "yes"}}) as server:
            url = "https://127.0.0.1:%d/metrics" % server.metrics_port
            with urllib.request.urlopen(url, timeout=10, context=server.ssl_context()) as resp:
                self.assertEqual(resp.status, 200)
                self.assertIn(b"# TYPE", resp.read())
            with self.assertRaises((urllib.error.URLError, ConnectionError)):
                urllib.request.urlopen("http://127.0.0.1:%d/metrics" % server.metrics_port,
                                       timeout=10)

    @unittest.skipUnless(os.getuid() == 0, "binding port 443 before dropping root needs root "
                         "and a private network namespace")
    def test_https_on_port_443_binds_before_the_drop_and_reloads_on_sighup(self):
        # The helper checks that the service account cannot bind the port
        # (443 in a network namespace of its own), that a taken port is a
        # clear start-up error, and that curl sees the new certificate's
        # serial after SIGHUP (and no longer trusts the old one).
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
        if probe.returncode == 0:
            cmd = ["unshare", "--net", sys.executable, METRICS_HTTPS_PEER]
        else:
            # No namespace: a free port below ip_unprivileged_port_start on
            # the host's loopback proves the same.
            with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
                start = int(f.read())
            port = privileged_free_port(start)
            if port is None:
                self.skipTest("no network namespace and no free port below %d" % start)
            cmd = [sys.executable, METRICS_HTTPS_PEER, "--port", str(port)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-30000:])
        before, after = r.stdout.split()
        self.assertNotEqual(before, after)

    @unittest.skipUnless(os.getuid() == 0, "gpg fetches WKD keys only from port 443; the test "
                         "needs root for a private network and mount namespace")
    def test_gpg_locate_keys_fetches_from_posternd(self):
        probe = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True,
                               text=True)
        if probe.returncode != 0:
            self.skipTest("cannot create a network and mount namespace: " + probe.stderr)
        # The helper starts posternd (HTTPS on 443), publishes Alice's key and
        # runs gpg --locate-keys twice: advanced, then direct method.
        r = subprocess.run(["unshare", "--mount", "--net", sys.executable, WKD_GPG_PEER],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-30000:])
        self.assertRegex(r.stdout.strip(), "^[0-9A-F]{40}$")


class _KeyHandler(http.server.BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):
        body = self.routes.get(self.path.split("?")[0])
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@unittest.skipUnless(os.getuid() == 0, "WKD clients only use port 443, which needs root")
class WkdClientTest(unittest.TestCase):
    """posternctl pgp locate against a loopback HTTPS server (port 443, test CA);
    curl resolves *.localhost to the loopback address."""

    def setUp(self):
        self.files = tempfile.mkdtemp(prefix="pgp-wkd-")
        os.chmod(self.files, 0o755)
        self.ca = self.make_ca("ca")
        self.other_ca = self.make_ca("other")
        self.peer = Peer(self.files)
        self.httpd = None
        self.server = Server(listeners=("submission",), start=False, config={
            "auth": FAST_AUTH, "pgp": {"wkd_lookup": "yes", "wkd_timeout": "5",
                                       "wkd_ca_file": self.ca + ".pem"}})
        self.server.add_domain("wkd.localhost")
        self.server.add_user(ALICE, ALICE_PW)

    def tearDown(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        self.peer.close()
        self.server.close()
        shutil.rmtree(self.files, ignore_errors=True)

    def make_ca(self, name):
        base = os.path.join(self.files, name)
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", base + ".key", "-out", base + ".pem", "-subj", "/CN=%s test CA" % name,
            "-addext", "basicConstraints=critical,CA:TRUE")
        os.chmod(base + ".pem", 0o644)
        return base

    def serve(self, ca, routes):
        cert = os.path.join(self.files, "server")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", cert + ".key",
            "-out", cert + ".csr", "-subj", "/CN=peer.localhost")
        with open(cert + ".ext", "w") as f:
            f.write("subjectAltName=DNS:peer.localhost,DNS:openpgpkey.peer.localhost\n")
        run("openssl", "x509", "-req", "-in", cert + ".csr", "-CA", ca + ".pem", "-CAkey",
            ca + ".key", "-CAcreateserial", "-days", "2", "-extfile", cert + ".ext",
            "-out", cert + ".pem")
        handler = type("Handler", (_KeyHandler,), {"routes": routes})
        for attempt in range(50):  # the previous server's port may still be held briefly
            try:
                self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 443), handler)
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE or attempt == 49:
                    raise
                time.sleep(0.1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert + ".pem", cert + ".key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def bob_key(self, uid=BOB):
        self.peer.gpg("--quick-gen-key", uid, "future-default", "default", "never")
        return self.peer.gpg("--export", uid).stdout, fingerprints(
            self.peer.gpg("--with-colons", "--list-keys", uid).stdout.decode())[0]

    def paths(self):
        url = run(WKS_CLIENT, "--print-wkd-url", BOB).stdout.decode().strip()
        advanced = url[url.index("/.well-known/"):url.index("?")]
        return advanced, "/.well-known/openpgpkey/hu/" + advanced.rsplit("/", 1)[1]

    def locate(self):
        return self.server.ctl("pgp", "locate", ALICE, BOB, check=False)

    def test_key_is_fetched_and_imported(self):
        key, fpr = self.bob_key()
        advanced, _ = self.paths()
        self.serve(self.ca, {advanced: key})
        r = self.locate()
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(self.server.ctl("--json", "pgp", "list", ALICE).stdout)
        self.assertEqual([k["fingerprint"] for k in listed], [fpr])

    def test_direct_method_and_refusals(self):
        key, fpr = self.bob_key()
        other, _ = self.bob_key("mallory@peer.localhost")
        advanced, direct = self.paths()
        self.serve(self.ca, {direct: key})
        self.assertEqual(self.locate().returncode, 0)
        self.httpd.shutdown()
        self.httpd.server_close()
        # A key that does not carry the address is refused.
        self.serve(self.ca, {advanced: other})
        r = self.locate()
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("not for that address", r.stderr)
        self.httpd.shutdown()
        self.httpd.server_close()
        # Nothing published: not found.
        self.serve(self.ca, {})
        self.assertEqual(self.locate().returncode, EXIT_NOTFOUND)
        self.httpd.shutdown()
        self.httpd.server_close()
        # A certificate from a CA we do not trust: refused.
        self.serve(self.other_ca, {advanced: key})
        r = self.locate()
        self.assertEqual(r.returncode, EXIT_FAIL)
        self.assertIn("WKD request", r.stderr)
        listed = json.loads(self.server.ctl("--json", "pgp", "list", ALICE).stdout)
        self.assertEqual([k["fingerprint"] for k in listed], [fpr])


if __name__ == "__main__":
    unittest.main()

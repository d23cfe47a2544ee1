#!/usr/bin/env python3
"""gpg --locate-keys fetches a user's key from posternd's HTTPS listener by
WKD, as a real correspondent would: on port 443, with the certificate checked
against the system trust store and the names resolved by the system resolver.

Runs as root inside `unshare --mount --net` (see test_pgp_keys.py): a private
network with only lo, and private /etc/hosts, /etc/nsswitch.conf and CA
bundle bind-mounted over
the real ones, so nothing outside the namespace sees or serves anything.
Exits 0 when gpg fetched the key by both the advanced and the direct method
and its fingerprint is the one posternctl pgp keygen printed; non-zero with
the reason on stderr otherwise."""

import json
import os
import shutil
import socket
import subprocess
import struct
import sys
import tempfile
import threading

import harness
from harness import Server

DOMAIN = "wkd.localhost"
ADVANCED_HOST = "openpgpkey." + DOMAIN
ALICE, ALICE_PW = "alice@" + DOMAIN, "Alice-Strong-7391"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def run(*args, env=None, check=True):
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=env)
    if check and res.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(args), res.returncode,
                                                    res.stdout, res.stderr))
    return res


def make_certificates(files):
    """A test CA and a leaf for the domain and its openpgpkey subdomain."""
    ca, leaf = os.path.join(files, "ca"), os.path.join(files, "leaf")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", ca + ".key", "-out", ca + ".pem", "-subj", "/CN=Postern WKD test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", leaf + ".key",
        "-out", leaf + ".csr", "-subj", "/CN=" + DOMAIN)
    with open(leaf + ".ext", "w") as f:
        f.write("subjectAltName=DNS:%s,DNS:%s,DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % (DOMAIN, ADVANCED_HOST))
    run("openssl", "x509", "-req", "-in", leaf + ".csr", "-CA", ca + ".pem", "-CAkey",
        ca + ".key", "-CAcreateserial", "-days", "2", "-extfile", leaf + ".ext",
        "-out", leaf + ".pem")
    return ca + ".pem", leaf + ".pem", leaf + ".key"


def isolate(files, ca_pem, hosts):
    """lo up (posternd binds port 443 before it drops root), and the
    private hosts file, name service switch and CA bundle in place. Only this namespace sees it."""
    if os.getuid() != 0:
        raise RuntimeError("must run as root inside unshare --mount --net")
    run("ip", "link", "set", "lo", "up")
    bundle = os.path.join(files, "ca-certificates.crt")
    shutil.copyfile(ca_pem, bundle)
    hosts_file = os.path.join(files, "hosts")
    write_hosts(hosts_file, hosts)
    run("mount", "--bind", hosts_file, "/etc/hosts")
    # Names come from that file alone: with no DNS server in the namespace a
    # lookup would fail with "try again", which dirmngr does not take as
    # "openpgpkey.<domain> does not exist" (its cue for the direct method).
    nsswitch = os.path.join(files, "nsswitch.conf")
    with open(nsswitch, "w") as f:
        f.write("hosts: files\n")
    run("mount", "--bind", nsswitch, "/etc/nsswitch.conf")
    resolv = os.path.join(files, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\n")
    run("mount", "--bind", resolv, "/etc/resolv.conf")
    serve_nxdomain()
    run("mount", "--bind", bundle, CA_BUNDLE)
    return hosts_file


def serve_nxdomain():
    """A DNS server on 127.0.0.1:53 that knows no name. dirmngr asks DNS
    (SRV _openpgpkey._tcp.<domain>) besides getaddrinfo; without a server
    that answers, the lookup fails with "try again" instead of "no such
    name", and dirmngr gives up instead of trying the direct method."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))

    def loop():
        while True:
            query, peer = sock.recvfrom(512)
            if len(query) < 12:
                continue
            end = 12
            while end < len(query) and query[end] != 0:
                end += 1 + query[end]
            question = query[12:end + 5]
            ident, flags = struct.unpack("!HH", query[:4])
            # QR, opcode and RD of the query, AA, RA, RCODE 3 (NXDOMAIN).
            flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | 3
            sock.sendto(struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + question, peer)

    threading.Thread(target=loop, daemon=True).start()


def write_hosts(path, names):
    # Rewritten in place, so the bind mount over /etc/hosts sees the change.
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost %s\n" % " ".join(names))


def locate(files, name):
    """gpg --locate-keys by WKD only, in a fresh home; (fingerprints, dirmngr log)."""
    home = tempfile.mkdtemp(prefix="gnupg-%s-" % name, dir=files)
    os.chmod(home, 0o700)
    log = os.path.join(home, "dirmngr.log")
    with open(os.path.join(home, "dirmngr.conf"), "w") as f:
        f.write("standard-resolver\nlog-file %s\ndebug-level guru\n" % log)
    env = dict(os.environ, GNUPGHOME=home)
    try:
        res = run("gpg", "--batch", "--with-colons", "--auto-key-locate",
                  "clear,nodefault,wkd", "--locate-keys", ALICE, env=env, check=False)
        listed = run("gpg", "--batch", "--with-colons", "--list-keys", env=env,
                     check=False).stdout
    finally:
        run("gpgconf", "--kill", "all", env=env, check=False)
    fprs, want = [], False
    for line in listed.splitlines():
        f = line.split(":")
        if f[0] == "pub":
            want = True
        elif f[0] == "fpr" and want:
            fprs.append(f[9])
            want = False
    try:
        with open(log, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = "(dirmngr wrote no log)"
    if res.returncode != 0 and not fprs:
        sys.stderr.write("gpg --locate-keys exited %d:\n%s\n" % (res.returncode, res.stderr))
    return fprs, text


def main():
    files = tempfile.mkdtemp(prefix="wkd-gpg-")
    server = None
    try:
        os.chmod(files, 0o755)
        ca_pem, cert, key = make_certificates(files)
        harness.chown_tree(files)  # posternd reads cert and key as its own account
        hosts_file = isolate(files, ca_pem, (DOMAIN, ADVANCED_HOST))
        server = Server(listeners=("submission",), start=False, config={
            "auth": {"argon2_ops": "1", "argon2_mem": "8M"},
            "tls": {"cert_file": cert, "key_file": key},
            "metrics": {"address": "127.0.0.1", "port": "443", "tls": "yes"}})
        server.add_domain(DOMAIN)
        server.add_user(ALICE, ALICE_PW)
        server.start()
        harness.wait_port(443, timeout=15)
        keygen = server.ctl("--json", "pgp", "keygen", ALICE, input=ALICE_PW + "\n")
        fpr = json.loads(keygen.stdout)["fingerprint"]

        failures = []
        # openpgpkey.<domain> resolves: gpg uses the advanced method.
        fprs, log = locate(files, "advanced")
        if fprs != [fpr]:
            failures.append("advanced method: gpg has %s, keygen printed %s\n%s"
                            % (fprs, fpr, log))
        elif ("SOURCE https://%s\n" % ADVANCED_HOST not in log
              or "GET /.well-known/openpgpkey/%s/hu/" % DOMAIN not in log):
            failures.append("advanced method: dirmngr did not ask %s\n%s"
                            % (ADVANCED_HOST, log))
        # Only <domain> resolves: gpg falls back to the direct method.
        write_hosts(hosts_file, (DOMAIN,))
        fprs, log = locate(files, "direct")
        if fprs != [fpr]:
            failures.append("direct method: gpg has %s, keygen printed %s\n%s"
                            % (fprs, fpr, log))
        elif ("SOURCE https://%s\n" % DOMAIN not in log
              or "GET /.well-known/openpgpkey/hu/" not in log):
            failures.append("direct method: dirmngr did not use it\n%s" % log)
        if failures:
            sys.stderr.write("\n".join(failures) + "\nposternd log:\n" + server.log())
            return 1
        print(fpr)
        return 0
    finally:
        if server:
            server.close()
        shutil.rmtree(files, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

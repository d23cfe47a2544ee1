#!/usr/bin/env python3
"""posternd started as root serves [metrics] tls on port 443, a port its
service account may not bind, and takes a renewed certificate on SIGHUP.

Runs as root inside `unshare --net` (see test_pgp_keys.py): a private network
with only lo, where ip_unprivileged_port_start is 1024 (set explicitly, in
this namespace only). Where no namespace can be made, `--port N` runs it in
the host's network on 127.0.0.1 port N (below ip_unprivileged_port_start,
free). Checks, with curl as the client:
  - the account posternd drops to cannot bind port 443 itself, so a listener
    there proves the bind happened before the drop;
  - a port already taken is a clear start-up error;
  - posternd serves /metrics over HTTPS on 443 while running as that account;
  - after a new certificate file and SIGHUP, new connections get the new
    certificate (curl trusts only the new one; its serial is the new one),
    and a connection opened before still gets its answer.
Exits 0 when all hold; non-zero with the reason on stderr otherwise."""

import argparse
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time

import harness
from harness import Server

PORT = 443  # main() may change it (--port)


def url():
    return "https://localhost:%d/metrics" % PORT


def run(*args, check=True):
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(args), res.returncode,
                                                    res.stdout, res.stderr))
    return res


def isolate():
    if os.getuid() != 0:
        raise RuntimeError("must run as root inside unshare --net")
    run("ip", "link", "set", "lo", "up")
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", "w") as f:
        f.write("1024\n")


def service_account_cannot_bind():
    """The account posternd drops to gets EACCES for port 443 (tried in a
    forked child that drops to it)."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            harness.demote()
            with socket.socket() as s:
                s.bind(("127.0.0.1", PORT))
            code = 1
        except PermissionError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def serial(cafile):
    """(exit code, serial number) of what curl sees at URL trusting only CAFILE."""
    res = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "--cacert", cafile,
                          "-w", "%{certs}", url()], capture_output=True, text=True, timeout=30)
    m = re.search(r"^Serial Number:\s*(\S+)", res.stdout, re.M)
    return res.returncode, m.group(1).replace(":", "").lower() if m else None


def file_serial(cafile):
    out = run("openssl", "x509", "-noout", "-serial", "-in", cafile).stdout
    return out.strip().split("=", 1)[1].lower()


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def main():
    global PORT
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, help="no namespace: use this free port below 1024")
    args = p.parse_args()
    failures = []
    if args.port:
        PORT = args.port
        if os.getuid() != 0:
            raise RuntimeError("must run as root")
    else:
        isolate()
    if not harness.RUN_AS:
        raise RuntimeError("the harness does not drop root; nothing to prove")
    if not service_account_cannot_bind():
        raise RuntimeError("%s may bind port %d here; the check would prove nothing"
                           % (harness.RUN_AS, PORT))
    config = {"auth": {"argon2_ops": "1", "argon2_mem": "8M"},
              "metrics": {"address": "127.0.0.1", "port": str(PORT), "tls": "yes"}}

    # Port taken: posternd refuses to start and says why.
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", PORT))
    taken.listen(1)
    server = Server(listeners=("submission",), config=config, start=False)
    try:
        server.start()
        failures.append("posternd started although port %d was taken" % PORT)
    except RuntimeError as e:
        want = "cannot listen for metrics on 127.0.0.1 port %d: Address already in use" % PORT
        if want not in str(e):
            failures.append("port taken: expected %r in:\n%s" % (want, e))
    finally:
        taken.close()
        server.close()

    server = Server(listeners=("submission",), config=config, start=False)
    files = server.data_dir
    try:
        server.start()
        deadline = time.monotonic() + 15
        while True:
            code, before = serial(server.cafile)
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if code != 0:
            raise RuntimeError("curl exited %d on %s:\n%s" % (code, url(), server.log()))
        if uid_of(server.pid) != pwd.getpwnam(harness.RUN_AS).pw_uid:
            failures.append("posternd does not run as %s" % harness.RUN_AS)
        if before != file_serial(server.cafile):
            failures.append("curl saw serial %s, the certificate file has %s"
                            % (before, file_serial(server.cafile)))
        old_ca = os.path.join(files, "old-cert.pem")
        shutil.copyfile(server.cafile, old_ca)
        # Opened (TLS done) before the reload, used after it.
        early = ssl.create_default_context(cafile=old_ca).wrap_socket(
            socket.create_connection(("127.0.0.1", PORT), timeout=10), server_hostname="localhost")
        server.ctl("cert", "selfsigned", "--hostname", "localhost",
                   "--cert", server.cafile, "--key", server.keyfile)
        harness.chown_tree(files)
        new_serial = file_serial(server.cafile)
        if new_serial == before:
            raise RuntimeError("the renewed certificate has the old serial")
        server.reload()
        deadline = time.monotonic() + 10
        after = before
        while time.monotonic() < deadline:
            code, after = serial(server.cafile)
            if code == 0 and after == new_serial:
                break
            time.sleep(0.2)
        if after != new_serial:
            failures.append("after SIGHUP curl sees serial %s, want %s" % (after, new_serial))
        code, _ = serial(old_ca)
        if code == 0:
            failures.append("after SIGHUP the old certificate is still served")
        try:
            early.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = early.recv(64)
        except OSError as e:
            answer = repr(e).encode()
        finally:
            early.close()
        if not answer.startswith(b"HTTP/1.1 200"):
            failures.append("the connection opened before SIGHUP got %r" % answer)
        if "metrics listener: reloaded the TLS certificate" not in server.log():
            failures.append("no reload message in the log")
        if failures:
            sys.stderr.write("\n".join(failures) + "\nposternd log:\n" + server.log())
            return 1
        print("%s %s" % (before, after))
        return 0
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())

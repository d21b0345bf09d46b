# test_install.py - `make install` into a DESTDIR, as a Debian machine
# would receive it: the file list (binaries, the client library with its
# soname, headers, boltseal.pc, man pages, examples, the systemd unit, the
# tmpfiles and sysusers entries); a C program (tests/install/sign-example.c)
# compiled against the INSTALLED library through pkg-config signs with the
# session daemon, and python3-cryptography verifies the signature; the
# unit passes `systemd-analyze verify` (its paths rewritten into the
# DESTDIR), the sysusers entry `systemd-sysusers --dry-run`; the man pages
# render without groff warnings and are what scripts/gen-man makes of docs/.
import os
import re
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import bsutil

PREFIX = "/usr/local"


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    return p.returncode, p.stdout, p.stderr


def make_var(name):
    """A variable of the build's Makefile (e.g. BS_SAN_FLAGS)."""
    with open(os.path.join(bsutil.BUILDDIR, "Makefile")) as f:
        for line in f:
            m = re.match(r"^%s = ?(.*)$" % name, line)
            if m:
                return m.group(1).strip()
    return ""


@pytest.fixture(scope="module")
def destdir(env):
    d = os.path.join(env.workdir, "destdir")
    shutil.rmtree(d, ignore_errors=True)
    rc, out, err = run(["make", "-s", "-C", bsutil.BUILDDIR, "install", "DESTDIR=" + d])
    assert rc == 0, out[-3000:] + err[-3000:]
    return d


def test_installed_files(destdir):
    got = sorted(os.path.relpath(os.path.join(r, f), destdir)
                 for r, _, fs in os.walk(destdir) for f in fs)
    print("\n".join(got))
    want = ["bin/boltseal", "sbin/boltsealed",
            "lib/libboltseal.so", "lib/libboltseal.so.0", "lib/libboltseal.so.0.0.0",
            "lib/pkgconfig/boltseal.pc",
            "include/boltseal/client.h", "include/boltseal/command.h",
            "include/boltseal/telemetry.h",
            "share/man/man1/boltseal.1", "share/man/man5/boltsealed.conf.5",
            "share/man/man5/boltseal-policy.5", "share/man/man8/boltsealed.8",
            "share/doc/boltseal/examples/boltsealed.conf.example",
            "share/doc/boltseal/examples/policy.example",
            "lib/systemd/system/boltsealed.service", "lib/tmpfiles.d/boltseal.conf",
            "lib/sysusers.d/boltseal.conf",
            "share/bash-completion/completions/boltseal"]
    assert got == sorted("usr/local/" + w for w in want), got
    lib = os.path.join(destdir, "usr/local/lib")
    assert os.readlink(os.path.join(lib, "libboltseal.so.0")) == "libboltseal.so.0.0.0"
    rc, out, _ = run(["objdump", "-p", os.path.join(lib, "libboltseal.so.0.0.0")])
    assert re.search(r"SONAME\s+libboltseal\.so\.0\b", out), out
    # only the API of include/boltseal/ is exported
    rc, out, _ = run(["nm", "-D", "--defined-only", os.path.join(lib, "libboltseal.so.0")])
    names = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    assert "bs_client_connect" in names and "bs_tlm_sign" in names, names
    assert all(n.startswith("bs_") for n in names), sorted(n for n in names
                                                            if not n.startswith("bs_"))


def test_program_built_against_the_installed_library_signs(env, destdir, tmp_path):
    pb = env.stubs.pb
    c = env.client()
    c.CreateKey(pb.CreateKeyRequest(name="inst-sign", purpose=pb.GENERIC,
                                    algorithm=pb.ECDSA_P256_SHA256), timeout=30)
    pem = c.GetPublicKey(pb.GetPublicKeyRequest(name="inst-sign"), timeout=30).pem
    e = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=destdir,
             PKG_CONFIG_PATH=os.path.join(destdir, "usr/local/lib/pkgconfig"))
    rc, flags, err = run(["pkg-config", "--cflags", "--libs", "boltseal"], env=e)
    assert rc == 0, err
    assert "-lboltseal" in flags and os.path.join(destdir, "usr/local/include") in flags, flags
    rc, ver, _ = run(["pkg-config", "--modversion", "boltseal"], env=e)
    assert rc == 0 and re.fullmatch(r"\d+\.\d+\.\d+\n", ver), ver
    prog = str(tmp_path / "sign-example")
    src = os.path.join(bsutil.SRCDIR, "tests", "install", "sign-example.c")
    # a sanitized build's library needs the program built with the same runtime
    cmd = ["cc", "-std=c11", "-Wall", "-Werror", src, "-o", prog] + make_var(
        "BS_SAN_FLAGS").split() + flags.split()
    rc, out, err = run(cmd)
    assert rc == 0, (cmd, out, err)
    rc, out, _ = run(["ldd", prog])
    assert os.path.join(destdir, "usr/local/lib/libboltseal.so.0") in out or \
        "libboltseal.so.0 => not found" in out, out
    cert, key = env.client_files("ci-ota-release")
    msg = "signed through the installed library"
    rc, out, err = run([prog, "127.0.0.1", str(env.port), env.ca, cert, key, "inst-sign", msg],
                       env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(destdir,
                                                                        "usr/local/lib")))
    assert rc == 0, (out, err)
    sig = bytes.fromhex(out.strip())
    serialization.load_pem_public_key(pem.encode()).verify(sig, msg.encode(),
                                                           ec.ECDSA(hashes.SHA256()))


def test_systemd_unit_and_entries(destdir, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = open(os.path.join(destdir, "usr/local/lib/systemd/system/boltsealed.service")).read()
    for d in ("User=boltseal", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
              "ReadWritePaths=/var/lib/boltseal", "CapabilityBoundingSet=\n",
              "ExecStart=/usr/local/sbin/boltsealed -c /usr/local/etc/boltseal/boltsealed.conf"):
        assert d in unit, d
    # the same unit with its paths inside the DESTDIR, so the binary exists
    path = str(tmp_path / "boltsealed.service")
    with open(path, "w") as f:
        f.write(unit.replace("/usr/local/", destdir + "/usr/local/"))
    rc, out, err = run(["systemd-analyze", "verify", path],
                       env=dict(os.environ, MANPATH=os.path.join(destdir, "usr/local/share/man")))
    assert rc == 0 and out + err == "", out + err
    rc, out, err = run(["systemd-sysusers", "--dry-run",
                        os.path.join(destdir, "usr/local/lib/sysusers.d/boltseal.conf")])
    assert rc == 0, out + err
    tmpf = open(os.path.join(destdir, "usr/local/lib/tmpfiles.d/boltseal.conf")).read()
    assert "d /var/lib/boltseal 0700 boltseal boltseal -" in tmpf


def test_man_pages(destdir):
    man = os.path.join(destdir, "usr/local/share/man")
    for page in ("man1/boltseal.1", "man5/boltsealed.conf.5", "man5/boltseal-policy.5",
                 "man8/boltsealed.8"):
        rc, out, err = run(["groff", "-man", "-ww", "-z", "-Tutf8", os.path.join(man, page)],
                           env=dict(os.environ, LC_ALL="C.UTF-8"))
        warnings = [ln for ln in err.splitlines()
                    if "cannot adjust" not in ln and "can't break" not in ln
                    and "cannot break" not in ln]
        assert rc == 0 and not warnings, (page, warnings)
    rc, out, err = run([os.path.join(bsutil.SRCDIR, "scripts", "gen-man"), "--check"])
    assert rc == 0, out + err


def test_bash_completion(destdir):
    script = os.path.join(destdir, "usr/local/share/bash-completion/completions/boltseal")
    cli = os.path.join(bsutil.BUILDDIR, "boltseal")

    def complete(*words):
        prog = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _boltseal; '
                'printf "%s\\n" "${COMPREPLY[@]}"')
        rc, out, err = run(["bash", "-c", prog, "bash", script, cli] + list(words))
        assert rc == 0, err
        return sorted(x for x in out.split("\n") if x)

    assert complete("au") == ["audit"]
    assert complete("audit", "ve") == ["verify", "verify-bundle"]
    assert complete("audit", "bundle", "--ve") == ["--vehicle"]
    assert complete("--server", "127.0.0.1:1", "ca", "re") == ["renew", "revoke"]
    assert complete("--se") == ["--server", "--server-name"]
    assert complete("sign", "--js") == ["--json"]

# test_example_configs.py - every example configuration the project ships
# passes `boltsealed -n`: etc/boltsealed.conf.example with etc/policy.example
# as its policy, and each configuration block in docs/*.md. Each one is run in
# a directory laid out as scripts/dev-up lays out .state/ (pki/ made by
# scripts/mkpki, policy.conf, a mode-0600 PIN file), so a path in an example
# that no tool creates is caught here. Also: -n warns about a uri-prefix
# without a trailing slash without failing, and checks pin_file as the start
# does (owner, mode, a usable PIN) without ever showing the PIN.
import glob
import os
import re
import shutil

import pytest

import bsutil

DOC_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)


def doc_config_blocks():
    """(name, text) of each fenced block in docs/*.md that is a boltsealed
    configuration: it sets `listen` and every line is a comment, blank, or
    `key = value`."""
    found = []
    for path in sorted(glob.glob(os.path.join(bsutil.SRCDIR, "docs", "*.md"))):
        text = bsutil.read(path).decode()
        for i, m in enumerate(DOC_BLOCK.finditer(text)):
            body = m.group(1)
            lines = [ln.strip() for ln in body.splitlines()]
            if not any(ln.startswith("listen =") for ln in lines):
                continue
            if all(ln == "" or ln.startswith("#") or re.match(r"^[a-z_0-9]+ = \S", ln)
                   for ln in lines):
                found.append(("%s#%d" % (os.path.basename(path), i), body))
    return found


def example_dir(tmp_path, env, conf_text, name):
    d = tmp_path / name
    d.mkdir()
    os.symlink(env.pki, str(d / "pki"))
    shutil.copyfile(os.path.join(bsutil.SRCDIR, "etc", "policy.example"), str(d / "policy.conf"))
    os.chmod(str(d / "policy.conf"), 0o644)   # whatever the checkout's umask was
    pin = d / "user.pin"
    pin.write_text("0000")
    os.chmod(str(pin), 0o600)
    conf = d / "boltsealed.conf"
    conf.write_text(conf_text)
    return str(conf)


def test_etc_example_passes_check(env, tmp_path):
    text = bsutil.read(os.path.join(bsutil.SRCDIR, "etc", "boltsealed.conf.example")).decode()
    conf = example_dir(tmp_path, env, text, "etc")
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 0, out
    assert "configuration OK" in out, out


def test_docs_examples_pass_check(env, tmp_path):
    blocks = doc_config_blocks()
    # docs/configuration.md carries at least the minimal development file.
    assert any(name.startswith("configuration.md#") for name, _ in blocks), blocks
    for name, body in blocks:
        conf = example_dir(tmp_path, env, body, re.sub(r"[^a-z0-9]", "-", name))
        rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
        assert rc == 0, (name, out)


def test_example_with_a_missing_file_fails_check(env, tmp_path):
    """The check is not vacuous: the etc example without its CA bundle fails,
    and the message names the file."""
    text = bsutil.read(os.path.join(bsutil.SRCDIR, "etc", "boltsealed.conf.example")).decode()
    text = text.replace("tls_client_ca = pki/ca.pem", "tls_client_ca = pki/clients-ca.pem")
    assert "clients-ca.pem" in text
    conf = example_dir(tmp_path, env, text, "missing")
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "clients-ca.pem" in out, out


def test_check_warns_on_prefix_without_slash(env, tmp_path):
    """A uri-prefix without a trailing '/' is valid but a warning of -n,
    naming the policy file and the principal's line; the check still passes."""
    text = bsutil.read(os.path.join(bsutil.SRCDIR, "etc", "boltsealed.conf.example")).decode()
    conf = example_dir(tmp_path, env, text, "lint")
    policy = os.path.join(os.path.dirname(conf), "policy.conf")
    with open(policy) as f:
        lines = f.read().splitlines()
    i = lines.index("    uri-prefix spiffe://fleet.example/gw/")
    lines[i] = "    uri-prefix spiffe://fleet.example/gw"
    with open(policy, "w") as f:
        f.write("\n".join(lines) + "\n")
    principal_line = max(n for n in range(i) if lines[n].startswith("principal ")) + 1
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 0, out
    assert ("%s: warning: principal 'gateways' (line %d): uri-prefix "
            "'spiffe://fleet.example/gw' does not end with '/'" % (policy, principal_line)) in out, out
    # The shipped example itself has nothing to warn about.
    rc, out = bsutil.run_daemon_once(example_dir(tmp_path, env, text, "lint-clean"),
                                     env.softhsm_conf, ["-n"])
    assert rc == 0 and "warning: principal" not in out, out


def test_check_refuses_a_readable_pin_file(env, tmp_path):
    """-n applies the start-up checks to pin_file: one readable by others
    fails the check, naming the file and never showing the PIN."""
    text = bsutil.read(os.path.join(bsutil.SRCDIR, "etc", "boltsealed.conf.example")).decode()
    conf = example_dir(tmp_path, env, text, "pin")
    pin = os.path.join(os.path.dirname(conf), "user.pin")
    with open(pin, "w") as f:
        f.write("S3CRET-PIN-4711")
    os.chmod(pin, 0o644)
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "PIN: pin file '%s'" % pin in out, out
    assert "S3CRET" not in out, out
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n", "-t"])
    assert rc == 1 and "token: not tried" in out and "S3CRET" not in out, out
    os.chmod(pin, 0o600)
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 0 and "S3CRET" not in out, out
    # An empty PIN is refused too.
    with open(pin, "w"):
        pass
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 1 and "the PIN is empty" in out, out


def test_check_with_token_logs_in(env, tmp_path):
    """-n -t also opens the token and logs in: the session's configuration
    passes; the same one with a wrong PIN (on a token of its own) fails with
    the token named and no PIN shown; -t without -n is a usage error."""
    rc, out = bsutil.run_daemon_once(env.conf, env.softhsm_conf, ["-n", "-t"])
    assert rc == 0, out
    assert "token: %s" % env.label in out and "logged in" in out, out

    tokdir = str(tmp_path / "tok")
    os.makedirs(tokdir)
    label = "bs-t-check"
    softhsm_conf, real_pin = bsutil.make_token(tokdir, label)
    wrong = os.path.join(tokdir, "wrong.pin")
    with open(wrong, "w") as f:
        f.write("WRONG-PIN-8812")
    os.chmod(wrong, 0o600)
    settings = bsutil.base_config(str(tmp_path), 1, tokdir, env.pki, label, str(tmp_path))
    settings["pin_file"] = wrong
    conf = str(tmp_path / "wrong-pin.conf")
    bsutil.write_config(conf, settings)
    rc, out = bsutil.run_daemon_once(conf, softhsm_conf, ["-n"])
    assert rc == 0, out                     # without -t the token is not touched
    rc, out = bsutil.run_daemon_once(conf, softhsm_conf, ["-n", "-t"])
    assert rc == 1, out
    assert "token: cannot open it:" in out and "token %s" % label in out, out
    assert "CKR_PIN_INCORRECT" in out, out
    assert "WRONG-PIN" not in out and real_pin not in out, out
    settings["pin_file"] = os.path.join(tokdir, "user.pin")
    bsutil.write_config(conf, settings)
    rc, out = bsutil.run_daemon_once(conf, softhsm_conf, ["-n", "-t"])
    assert rc == 0 and "token: %s" % label in out, out

    rc, out = bsutil.run_daemon_once(env.conf, env.softhsm_conf, ["-t"])
    assert rc == 2 and "usage" in out, out


def test_server_key_must_be_private(env, tmp_path):
    """The server's private key is refused (by -n and so by a start) when
    group or others may read it, and the message says what to do."""
    text = bsutil.read(os.path.join(bsutil.SRCDIR, "etc", "boltsealed.conf.example")).decode()
    conf = example_dir(tmp_path, env, text, "key-mode")
    d = os.path.dirname(conf)
    os.unlink(os.path.join(d, "pki"))
    shutil.copytree(env.pki, os.path.join(d, "pki"))
    key = os.path.join(d, "pki", "server.key")
    os.chmod(key, 0o644)
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "server key %s: mode 0644" % key in out and "chmod 600" in out, out
    os.chmod(key, 0o600)
    rc, out = bsutil.run_daemon_once(conf, env.softhsm_conf, ["-n"])
    assert rc == 0, out

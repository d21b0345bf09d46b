# test_privdrop.py - privilege hygiene: boltsealed started as root with
# `user = nobody` reads its TLS key and PIN and opens the token as root,
# binds, then runs as nobody (uid, gid, groups, no capabilities) before it
# opens any state; keys are still created and used (SoftHSM writes its
# token as nobody) and the files the daemon creates belong to nobody.
# `-n` says when state_dir is not the user's. Needs root (CI runs as root);
# skipped otherwise.

import os
import shutil
import subprocess

import pytest

import bsutil

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")

NOBODY = 65534


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def setup_for_nobody(sd, env):
    """State, token and the files re-read on reload made usable by nobody:
    the server key is nobody's (0600), the rest world-readable copies."""
    os.chmod(sd.dir, 0o755)   # nobody must reach its state and token below
    chown_tree(sd.state_dir, NOBODY, NOBODY)
    chown_tree(sd.tokdir, NOBODY, NOBODY)
    tls = os.path.join(sd.dir, "tls")
    os.makedirs(tls)
    os.chmod(tls, 0o755)   # not left to the umask
    for key, name in (("tls_cert", "server.pem"), ("tls_key", "server.key"),
                      ("tls_client_ca", "ca.pem"), ("tls_crl", "crl.pem"),
                      ("policy", "policy.conf")):
        dst = os.path.join(tls, name)
        shutil.copyfile(sd.settings[key], dst)
        os.chmod(dst, 0o600 if name == "server.key" else 0o644)
        if name == "server.key":
            os.chown(dst, NOBODY, NOBODY)
        sd.settings[key] = dst
    sd.settings["user"] = "nobody"
    bsutil.write_config(sd.conf, sd.settings)


def lsan_readable_by_nobody(sd, monkeypatch):
    """Under ASan the daemon reads LeakSanitizer's suppressions at exit, as
    nobody by then: give it copies nobody can read."""
    opts = os.environ.get("LSAN_OPTIONS")
    if not opts:
        return
    out = []
    for i, part in enumerate(opts.split(":")):
        if part.startswith("suppressions="):
            dst = os.path.join(sd.dir, "lsan-%d.supp" % i)
            shutil.copyfile(part.split("=", 1)[1], dst)
            os.chmod(dst, 0o644)
            part = "suppressions=" + dst
        out.append(part)
    monkeypatch.setenv("LSAN_OPTIONS", ":".join(out))


def test_started_as_root_runs_as_the_configured_user(env, second_daemon, monkeypatch):
    sd = second_daemon("privdrop")
    setup_for_nobody(sd, env)
    lsan_readable_by_nobody(sd, monkeypatch)

    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 0, out

    d = sd.start()
    st = proc_status(d.pid)
    assert st["Uid"] == [str(NOBODY)] * 4, st["Uid"]
    assert st["Gid"] == [str(NOBODY)] * 4, st["Gid"]
    assert st["Groups"] == [str(NOBODY)], st["Groups"]
    assert st["CapEff"] == ["0000000000000000"], st["CapEff"]
    assert st["CapPrm"] == ["0000000000000000"], st["CapPrm"]
    rec = [r for r in d.log_records() if r.get("msg") == "root privileges given up"]
    assert rec and rec[0]["user"] == "nobody", d.log_tail()

    pb = env.stubs.pb
    c = bsutil.Client(bsutil.local_channel(sd.port, env.ca, *env.client_files("ci-ota-release")),
                      env.stubs)
    try:
        c.CreateKey(pb.CreateKeyRequest(name="it-privdrop", purpose=pb.GENERIC,
                                        algorithm=pb.ECDSA_P256_SHA256), timeout=30)
        r = c.Sign(pb.SignRequest(key_name="it-privdrop", message=b"privdrop"), timeout=30)
        assert r.signature
    finally:
        c.close()
    # the state the daemon made after the switch is nobody's
    for p in ("catalog.db", "audit/audit.jsonl"):
        assert os.stat(os.path.join(sd.state_dir, p)).st_uid == NOBODY, p
    # a reload after the switch can read what it needs
    assert bsutil.sighup(d)["msg"] == "reloaded TLS material and policy"
    bsutil.stop_clean(d)


def test_reload_files_must_be_readable_by_the_user(env, second_daemon):
    """A root-only server key would be read at start but not by the reload
    after the switch: -n and the start refuse it up front."""
    sd = second_daemon("privdrop-r")
    setup_for_nobody(sd, env)
    os.chown(sd.settings["tls_key"], 0, 0)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "server.key: user nobody could not read it" in out, out
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf)
    assert rc == 1, out
    assert "not readable by the configured user; refusing to start" in out, out


def test_check_refuses_a_state_dir_the_user_does_not_own(env, second_daemon):
    sd = second_daemon("privdrop-n")
    setup_for_nobody(sd, env)
    chown_tree(sd.state_dir, 0, 0)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "must be a directory owned by nobody" in out, out
    assert "chown -R nobody" in out, out
    # and the daemon refuses to start the same way, before serving anyone
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf)
    assert rc == 1, out
    assert "cannot give up root; refusing to start" in out, out
    assert '"listening"' not in out


def test_unknown_user_is_a_config_error(env, second_daemon):
    sd = second_daemon("privdrop-u")
    sd.settings["user"] = "no-such-user-bs"
    bsutil.write_config(sd.conf, sd.settings)
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 1, out
    assert "user = no-such-user-bs: no such user" in out, out


def test_root_without_user_is_warned_about(env, second_daemon):
    sd = second_daemon("privdrop-w")
    rc, out = bsutil.run_daemon_once(sd.conf, sd.softhsm_conf, ["-n"])
    assert rc == 0, out
    assert "user: warning: not set; the daemon would keep running as root" in out, out

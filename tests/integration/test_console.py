# test_console.py - `boltseal console` (src/cli/console.c) and the
# administrators' commands behind it (src/cli/cmd_admin.c), driven in
# pseudo-terminals with pexpect against a daemon of the test's own that runs
# etc/policy.example (three fleet-admins, alice, bob and carol; key
# destruction needs a second factor and two other administrators'
# approvals):
#   each administrator enrols a TOTP factor in a console of their own (the
#   otpauth URI read from the screen, codes computed with pyotp) and
#   activates it at the no-echo "TOTP code: " prompt;
#   alice creates a key and proposes its destruction; bob lists and shows
#   the proposal (the request decoded field by field, the hash), approves it
#   with his code, carol likewise; alice executes it: the key is
#   PENDING_DESTRUCTION;
#   a code typed at the prompt never shows in the terminal's output, and
#   no history file (HOME points at a temporary directory per user) holds
#   a code or a line with --otp; Tab completes command words.
# Then the same commands as plain subcommands for scripts (stdin not a
# terminal): the URI never goes to a pipe, --uri-out makes a new 0600 file
# only; usage errors exit 2; a call that needs the code exits 4 with a hint;
# --otp and BOLTSEAL_OTP are sent; mfa reset points at propose mfa-reset;
# --json of propose and proposals list.
# Codes: each principal's come from ever later 30-second steps (a code is
# accepted once, only when its step is above the last accepted one); the
# server's window (admin.mfa_window = 1) takes the previous and next step,
# so nothing waits for the clock. About 12 s.

import json
import os
import re
import shutil
import subprocess
import time

import pexpect
import pyotp
import pytest

import auditutil
import bsutil

KEY = "console-doomed"
KEY2 = "console-paused"
PROMPT = "boltseal> "
CODE_PROMPT = "TOTP code: "
TIMEOUT = 20


def ansi_free(s):
    """The text of pty output without terminal escape sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r", "", s)


class Console:
    """`boltseal console` as one administrator, in a pty, HOME of its own."""

    def __init__(self, env, inst, ident, home):
        cert, key = env.client_files(ident)
        self.home = home
        os.makedirs(home, mode=0o700, exist_ok=True)
        e = {k: v for k, v in os.environ.items() if not k.startswith("BOLTSEAL_")}
        e.update(HOME=home, TERM="dumb", LC_ALL="C.UTF-8")
        self.p = pexpect.spawn(
            os.path.join(bsutil.BUILDDIR, "boltseal"),
            ["--server", "127.0.0.1:%d" % inst.port, "--ca", env.ca, "--cert", cert,
             "--key", key, "console"],
            env=e, encoding="utf-8", codec_errors="replace", timeout=TIMEOUT,
            dimensions=(60, 200))
        self.p.expect_exact(PROMPT)
        self.totp = None
        self.codes = []

    def run(self, line):
        """Sends a line, returns the output up to the next prompt (escapes removed)."""
        self.p.sendline(line)
        self.p.expect_exact(PROMPT)
        return ansi_free(self.p.before)

    def code(self, offset=0):
        """The current code (offset steps away), remembered for the history check."""
        c = self.totp.at(time.time() + 30 * offset)
        self.codes.append(c)
        return c

    def run_with_code(self, line, offset=0):
        """Sends a line that asks for the code; answers the no-echo prompt.
        Returns (output before the prompt, output after it)."""
        self.p.sendline(line)
        self.p.expect_exact(CODE_PROMPT)
        before = ansi_free(self.p.before)
        c = self.code(offset)
        self.p.sendline(c)
        self.p.expect_exact(PROMPT)
        after = ansi_free(self.p.before)
        assert c not in after, "the code was echoed: %r" % after
        return before, after

    def enrol(self):
        out = self.run("mfa enroll")
        m = re.search(r"otpauth://totp/\S+", out)
        assert m, out
        # the QR drawing: rows of half blocks
        assert "\u2580" in out or "\u2584" in out or "\u2588" in out, out
        self.totp = pyotp.parse_uri(m.group(0))
        # a code of the previous step: inside the server's window, and lower than
        # every later code (a code is accepted only when its step is above the last)
        _, out = self.run_with_code("mfa activate", offset=-1)
        assert re.search(r"state:\s+active", out), out
        return m.group(0)

    def quit(self):
        self.p.sendline("quit")
        self.p.expect(pexpect.EOF)
        self.p.close()
        assert self.p.exitstatus == 0, self.p.exitstatus

    def history(self):
        path = os.path.join(self.home, ".boltseal_history")
        assert os.stat(path).st_mode & 0o077 == 0, oct(os.stat(path).st_mode)
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()


@pytest.fixture(scope="module")
def daemon(env, tmp_path_factory):
    d = tmp_path_factory.mktemp("console-policy")
    policy = str(d / "policy")
    shutil.copyfile(os.path.join(bsutil.SRCDIR, "etc", "policy.example"), policy)
    os.chmod(policy, 0o644)
    inst = auditutil.Instance(env, "console", policy=policy)
    inst.start()
    yield inst
    try:
        inst.close_channels()
        bsutil.stop_clean(inst.daemon)
        inst.daemon = None
    finally:
        inst.cleanup()


@pytest.fixture(scope="module")
def admins(env, daemon, tmp_path_factory):
    """A console per administrator, each with an active second factor."""
    base = tmp_path_factory.mktemp("console-homes")
    made = {}
    try:
        for who in ("alice", "bob", "carol"):
            made[who] = Console(env, daemon, "admin-" + who, str(base / who))
        out = made["alice"].run("help")
        assert "proposals approve" in out and "mfa enroll" in out, out
        for c in made.values():
            c.enrol()
        yield made
    finally:
        for c in made.values():
            if c.p.isalive():
                c.p.terminate(force=True)


def test_console_approvals(admins):
    alice, bob, carol = admins["alice"], admins["bob"], admins["carol"]
    out = alice.run("mfa status")
    assert re.search(r"principal:\s+alice", out) and re.search(r"state:\s+active", out), out

    # tab completion of command words, first and second
    alice.p.send("proposa\tli\t")
    alice.p.expect_exact("proposals list ")
    out = alice.run("")
    assert "(no proposals)" in out, out

    out = alice.run("keys create %s --alg ecdsa-p256-sha256" % KEY)
    assert re.search(r"state:\s+enabled", out), out
    # a direct destruction needs approvals: the CLI says so and shows the way
    _, out = alice.run_with_code("keys schedule-destruction %s --days 7" % KEY)
    assert "FAILED_PRECONDITION" in out and "propose keys schedule-destruction" in out, out
    out = alice.run('propose keys schedule-destruction %s --days 7 --description "retire it"'
                    % KEY)
    pid = re.search(r"^id:\s+([0-9a-f]{28})\s*$", out, re.M).group(1)
    sha = re.search(r"^request_sha256:\s+([0-9a-f]{64})\s*$", out, re.M).group(1)
    assert "state:           PENDING" in out, out

    # bob reads it: the request decoded field by field, and its hash
    out = bob.run("proposals list")
    assert pid in out and "boltseal.v1.KeyService/ScheduleKeyDestruction" in out, out
    out = bob.run("proposals show %s" % pid)
    assert 'name: "%s"' % KEY in out and "pending_days: 7" in out, out
    assert sha in out and "proposer:        alice" in out, out
    assert "WARNING" not in out, out
    # a wrong hash is refused by the server; nothing counted
    _, out = bob.run_with_code("proposals approve %s --hash %s" % (pid, "0" * 64))
    assert "FAILED_PRECONDITION" in out, out
    _, out = bob.run_with_code("proposals approve %s --hash %s" % (pid, sha), offset=1)
    assert "approved proposal %s (1 approval)" % pid in out, out
    _, out = carol.run_with_code("proposals approve %s --hash %s" % (pid, sha))
    assert "approved proposal %s (2 approvals)" % pid in out, out
    out = carol.run("proposals show %s" % pid)
    assert "approvals:       2" in out and "bob (spiffe://fleet.example/admin/bob)" in out, out

    # alice executes it; the server asks for her code: the key is pending destruction
    before, out = alice.run_with_code("proposals execute %s" % pid, offset=1)
    assert "needs your second factor" in before, before
    assert re.search(r"result:\s+OK", out), out
    assert re.search(r"state:\s+pending_destruction", out), out
    out = alice.run("keys get %s" % KEY)
    assert re.search(r"^state:\s+pending_destruction", out, re.M), out
    out = alice.run("proposals show %s" % pid)
    assert "state:           EXECUTED" in out, out

    # lines with a code stay out of the history: one typed at the wrong prompt,
    # one given with --otp
    code = alice.code(1)
    out = alice.run(code)
    assert "unknown command" in out, out
    out = alice.run("mfa status --otp %s" % code)   # not an option of status
    assert "unknown option" in out, out

    for c in admins.values():
        c.quit()
    for c in admins.values():
        h = c.history()
        assert "proposals" in h and "mfa" in h, h
        assert "--otp" not in h and c.totp.secret not in h, h
        for code in c.codes:
            assert code not in h, (code, h)


def cli(env, daemon, ident, *args, extra_env=None):
    """(exit code, stdout, stderr) of a plain `boltseal` command, stdin not a terminal."""
    cert, key = env.client_files(ident)
    e = {k: v for k, v in os.environ.items() if not k.startswith("BOLTSEAL_")}
    e.update(extra_env or {})
    p = subprocess.run([os.path.join(bsutil.BUILDDIR, "boltseal"), "--server",
                        "127.0.0.1:%d" % daemon.port, "--ca", env.ca, "--cert", cert,
                        "--key", key] + list(args),
                       env=e, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_plain_commands(env, daemon, admins, tmp_path):
    """The same commands for scripts: usage errors (2), refusals (4) with hints,
    codes from --otp and BOLTSEAL_OTP, JSON."""
    carol = admins["carol"]
    # the otpauth URI is never written to a pipe; --uri-out makes a new 0600 file only,
    # removed again when the enrolment fails (alice has a factor already)
    rc, out, err = cli(env, daemon, "admin-alice", "mfa", "enroll")
    assert rc == 2 and "terminal" in err and out == "", (rc, out, err)
    uri_file = tmp_path / "uri"
    rc, out, err = cli(env, daemon, "admin-alice", "mfa", "enroll", "--uri-out", str(uri_file))
    assert rc == 4 and "FAILED_PRECONDITION" in err and not uri_file.exists(), (rc, out, err)
    uri_file.write_text("")
    rc, out, err = cli(env, daemon, "admin-alice", "mfa", "enroll", "--uri-out", str(uri_file))
    assert rc == 2 and "new file only" in err, (rc, out, err)

    rc, out, err = cli(env, daemon, "admin-bob", "proposals", "approve", "0" * 28)
    assert rc == 2 and "--hash" in err, (rc, out, err)
    rc, out, err = cli(env, daemon, "admin-bob", "proposals", "approve", "0" * 28, "--hash", "ab")
    assert rc == 2, (rc, out, err)

    # DisableKey needs the second factor: without a code and a terminal, a hint
    rc, out, err = cli(env, daemon, "admin-carol", "keys", "create", KEY2, "--alg", "ed25519")
    assert rc == 0, (rc, out, err)
    rc, out, err = cli(env, daemon, "admin-carol", "keys", "disable", KEY2)
    assert rc == 4 and "x-boltseal-otp" in err and "--otp CODE" in err, (rc, out, err)
    code = carol.code(1)
    rc, out, err = cli(env, daemon, "admin-carol", "--otp", code, "keys", "disable", KEY2)
    assert rc == 0 and re.search(r"^state:\s+disabled", out, re.M), (rc, out, err)
    # BOLTSEAL_OTP is sent too: the same code again is refused as used
    rc, out, err = cli(env, daemon, "admin-carol", "keys", "enable", KEY2,
                       extra_env={"BOLTSEAL_OTP": code})
    assert rc == 4 and "second factor:" in err, (rc, out, err)

    # resetting a factor needs approvals: the CLI points at `propose mfa-reset`
    rc, out, err = cli(env, daemon, "admin-alice", "mfa", "reset", "bob")
    assert rc == 4 and "propose mfa-reset bob" in err, (rc, out, err)
    rc, out, err = cli(env, daemon, "admin-alice", "--json", "propose", "mfa-reset", "bob",
                       "--ttl", "600")
    assert rc == 0, (rc, out, err)
    p = json.loads(out)["proposal"]
    assert p["method"] == "boltseal.v1.AdminService/ResetSecondFactor", p
    assert p["request_text"] == 'principal: "bob"\n' and p["request_sha256_matches"], p
    assert p["expire_time_unix"] - p["create_time_unix"] == 600, p
    rc, out, err = cli(env, daemon, "admin-bob", "--json", "proposals", "list", "--all")
    assert rc == 0, (rc, out, err)
    got = {q["id"]: q for q in json.loads(out)["proposals"]}
    assert got[p["id"]]["state"] == "PENDING", got
    assert [q for q in got.values() if q["state"] == "EXECUTED"], got
    rc, out, err = cli(env, daemon, "admin-bob", "proposals", "list")
    assert rc == 0 and p["id"] in out and "EXECUTED" not in out, (rc, out, err)

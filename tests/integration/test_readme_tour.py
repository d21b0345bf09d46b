# test_readme_tour.py - the README's quick start and tour, run as a reader
# would: ./scripts/dev-up brings boltseal up (on a state directory, build
# directory and port of this test's own, through BOLTSEAL_DEV_STATE,
# BOLTSEAL_DEV_BUILD and BOLTSEAL_DEV_LISTEN), then every command of the
# tour's code block runs, in order, in one interactive bash on a terminal
# (pexpect), from a directory whose .state is that state directory.
#
# What the test does that a reader would do by hand: it answers "TOTP code: "
# prompts with the current code of the administrator's authenticator (read
# from the otpauth URI `mfa enroll` shows), pastes the proposal ID and
# SHA-256 a previous command printed where the tour says ID and SHA256, does
# what a comment says is "the same" for bob and carol, types two lines into
# `console`, and keeps /tmp/ files under a temporary directory of its own.
# A command whose comment says PERMISSION_DENIED or refused must fail; every
# other must succeed. Then the README's Python snippet runs as written (the
# port substituted) and ./scripts/dev-down stops the daemon.
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pexpect
import pyotp
import pytest

import bsutil

STEP = 30
MARK = "__BS_TOUR_RC="
WHO = {'"${ADMIN[@]}"': "alice", '"${BOB[@]}"': "bob", '"${CAROL[@]}"': "carol"}


def strip_comment(line):
    """(code, comment) of a shell line: '#' outside quotes, at the start or
    after a blank, starts the comment."""
    sq = dq = False
    for i, ch in enumerate(line):
        if ch == "'" and not dq:
            sq = not sq
        elif ch == '"' and not sq:
            dq = not dq
        elif ch == "#" and not sq and not dq and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def logical_commands(block):
    """The block's commands as (code, comments): continuation lines (a
    trailing backslash, pipe or &&) and for ... do ... done joined."""
    out, code, notes, depth = [], [], [], 0
    for line in block.splitlines():
        c, note = strip_comment(line)
        if not c.strip() and not code:
            continue
        code.append(c)
        if note:
            notes.append(note)
        s = c.strip()
        if re.search(r"(^|;\s*)do$", s):
            depth += 1
        if re.search(r"(^|;\s*)done$", s):
            depth -= 1
        if depth > 0 or s.endswith(("\\", "|", "&&")):
            continue
        out.append(("\n".join(code), " ".join(notes)))
        code, notes = [], []
    assert not code, "the tour ends inside a command: %r" % code
    return out


def readme_blocks():
    """The code blocks of the README: (the tour's sh block, the Python snippet's sh block)."""
    text = bsutil.read(os.path.join(bsutil.SRCDIR, "README.md")).decode()
    tour = text.split("## A five-minute tour", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", tour, re.S)
    return blocks[0], blocks[1]


def test_tour_parses():
    """The splitter itself, on the shapes the tour uses."""
    cmds = logical_commands("A=1  # one\nfor k in a b; do\n    echo $k; done\n"
                            "X=$(echo a |   # pipe\n    cat)\nprintf '# not a comment'\n"
                            "echo a \\\n  b  # refused\n")
    assert [c for c, _ in cmds] == ["A=1", "for k in a b; do\n    echo $k; done",
                                    "X=$(echo a |\n    cat)", "printf '# not a comment'",
                                    "echo a \\\n  b"]
    assert cmds[0][1] == "one" and cmds[4][1] == "refused"
    tour, _ = readme_blocks()
    assert len(logical_commands(tour)) > 60


class Totp:
    """Each administrator's authenticator: a code for a step the daemon
    accepts now (admin.mfa_window 1: the step before, now, the one after)
    and that was not used yet, waiting for the next step when needed."""

    def __init__(self):
        self.secrets, self.last = {}, {}

    def code(self, who):
        while True:
            now = time.time()
            cur = int(now // STEP)
            s = max(self.last.get(who, -1) + 1, cur - 1)
            if s == cur - 1 and STEP - now % STEP < 3:
                s += 1
            if s <= cur + 1 and now % STEP >= 0.5:
                break
            time.sleep(0.5 if s <= cur + 1 else (s - 1) * STEP - now + 0.5)
        self.last[who] = s
        return pyotp.TOTP(self.secrets[who]).at(s * STEP)


class Shell:
    """One interactive bash on a terminal; run() returns (exit status, output)."""

    def __init__(self, cwd, env, totp):
        self.totp = totp
        self.p = pexpect.spawn("bash", ["--noprofile", "--norc", "-i"], cwd=cwd, env=env,
                               encoding="utf-8", codec_errors="replace", timeout=180,
                               dimensions=(60, 250))
        self.p.sendline("stty -echo; PS2=''; PS1='%s$?__\\n'" % MARK)
        self.p.expect(re.escape(MARK) + r"0__")

    def run(self, code, who=None, console_lines=()):
        self.p.sendline(code)
        out, lines = "", list(console_lines)
        while True:
            i = self.p.expect([re.escape(MARK) + r"(\d+)__", "TOTP code: ", "boltseal> "])
            out += self.p.before
            if i == 0:
                return int(self.p.match.group(1)), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", out)
            if i == 1:
                assert who is not None, "a code was asked for %r" % code
                self.p.sendline(self.totp.code(who))
            else:
                assert lines, "console prompt with nothing left to type: %r" % code
                self.p.sendline(lines.pop(0))

    def close(self):
        self.p.sendline("exit")
        self.p.expect(pexpect.EOF)


@pytest.fixture(scope="module")
def tour_env():
    work = tempfile.mkdtemp(prefix="bs-tour-")
    state = os.path.join(work, "state")
    port = bsutil.free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOLTSEAL_", "MAKE")) and k not in ("MFLAGS", "SOFTHSM2_CONF")}
    env.update(BOLTSEAL_DEV_STATE=state, BOLTSEAL_DEV_BUILD=bsutil.BUILDDIR,
               BOLTSEAL_DEV_LISTEN="127.0.0.1:%d" % port,
               BS_BOOTSTRAP_LISTEN="127.0.0.1:%d" % bsutil.free_port())
    try:
        r = subprocess.run([os.path.join(bsutil.SRCDIR, "scripts", "dev-up")], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "dev-up failed:\n%s\n%s" % (r.stdout[-4000:], r.stderr[-4000:])
        assert "boltsealed is listening on 127.0.0.1:%d" % port in r.stdout, r.stdout
        # the reader's working tree: .state, and the proto/ the Python snippet compiles
        cwd = os.path.join(work, "tree")
        os.makedirs(cwd)
        os.symlink(state, os.path.join(cwd, ".state"))
        os.symlink(os.path.join(bsutil.SRCDIR, "proto"), os.path.join(cwd, "proto"))
        # the tour's .state/build/boltseal is the build under test
        link = os.path.join(state, "build")
        if not os.path.exists(link):
            os.symlink(bsutil.BUILDDIR, link)
        yield {"work": work, "state": state, "port": port, "env": env, "cwd": cwd}
    finally:
        subprocess.run([os.path.join(bsutil.SRCDIR, "scripts", "dev-down")], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def test_tour(tour_env):
    tour, _ = readme_blocks()
    tmp = os.path.join(tour_env["work"], "tmp")
    home = os.path.join(tour_env["work"], "home")
    os.makedirs(tmp)
    os.makedirs(home, mode=0o700)
    env = dict(tour_env["env"], HOME=home, TERM="dumb", LC_ALL="C.UTF-8",
               BOLTSEAL_SERVER="127.0.0.1:%d" % tour_env["port"])
    totp = Totp()
    sh = Shell(tour_env["cwd"], env, totp)
    ids, hashes, ran = [], [], 0

    def run(code, note, who):
        rc, out = sh.run(code, who, console_lines=("list-keys", "quit"))
        for m in re.finditer(r"otpauth://\S+", out):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(m.group(0)).query)
            totp.secrets[who] = q["secret"][0]
        ids.extend(re.findall(r"^id:\s+(\S+)", out, re.M))
        hashes.extend(re.findall(r"^request_sha256:\s+([0-9a-f]{64})", out, re.M))
        refused = "PERMISSION_DENIED" in note or "refused" in note
        assert (rc != 0) == refused, "tour command %r (comment %r) exited %d:\n%s" % (
            code, note, rc, out[-3000:])
        return out

    try:
        for code, note in logical_commands(tour):
            code = code.replace("/tmp/", tmp + "/")
            if ids:
                code = re.sub(r"(?<![\w-])ID(?![\w-])", ids[-1], code)
            if hashes:
                code = re.sub(r"(?<![\w-])SHA256(?![\w-])", hashes[-1], code)
            who = next((w for k, w in WHO.items() if k in code), None)
            run(code, note, who)
            ran += 1
            # "the same for bob and carol" / "then carol the same"
            others = [w for k, w in WHO.items() if w != who and (k in note or (
                "then %s the same" % w) in note)]
            for w in others:
                key = next(k for k, v in WHO.items() if v == w)
                if w not in totp.secrets and "mfa activate" in code:
                    run(code.replace("mfa activate", "mfa enroll").replace(
                        '"${ADMIN[@]}"', key), "", w)
                run(code.replace('"${ADMIN[@]}"', key).replace('"${BOB[@]}"', key), note, w)
        assert ran == len(logical_commands(tour))
        assert {"alice", "bob", "carol"} <= set(totp.secrets)
        # the destruction the proposal asked for was executed (pending now)
        rc, out = sh.run('$B "${ADMIN[@]}" get-key ci-release-2026')
        assert rc == 0 and "PENDING_DESTRUCTION" in out.upper().replace(" ", "_"), out
    finally:
        sh.close()


def test_python_snippet(tour_env):
    _, snippet = readme_blocks()
    stubs = os.path.join(tour_env["work"], "bs-stubs")
    code = snippet.replace("/tmp/bs-stubs", stubs).replace(
        "127.0.0.1:7443", "127.0.0.1:%d" % tour_env["port"])
    assert code != snippet
    r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + code], cwd=tour_env["cwd"],
                       env=tour_env["env"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"signed by ci-demo-ecdsa version \d+ and verified", r.stdout), r.stdout


def test_dev_up_again_and_down(tour_env):
    """dev-up is idempotent: a second run reuses the token, PKI and keys and
    restarts the daemon; dev-down stops it."""
    env = tour_env["env"]
    r = subprocess.run([os.path.join(bsutil.SRCDIR, "scripts", "dev-up")], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ci-demo-ecdsa: exists" in r.stdout, r.stdout
    pid = int(bsutil.read(os.path.join(tour_env["state"], "boltsealed.pid")))
    r = subprocess.run([os.path.join(bsutil.SRCDIR, "scripts", "dev-down")], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists("/proc/%d" % pid) or b"boltsealed" not in bsutil.read(
        "/proc/%d/cmdline" % pid)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))

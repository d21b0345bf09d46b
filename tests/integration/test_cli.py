# test_cli.py - the `boltseal` CLI's command tree against the session's
# boltsealed: the nested form (`boltseal keys sign`) and the spelling kept
# from before the groups (`boltseal sign`) print the same bytes and exit
# the same way; --help answers at each level (top, group, command); an
# unknown command word is a usage error (exit 2) with a hint. The RPCs
# themselves are covered by test_client_lib.py (fake servers) and the
# service tests.
import json
import re
import os
import subprocess

import pytest

import bsutil

KEY = "it-cli-ed25519"   # Ed25519 signs deterministically: equal outputs are comparable
MSG = "boltseal cli test"


def cli_path():
    return os.path.join(bsutil.BUILDDIR, "boltseal")


@pytest.fixture(scope="module")
def cli(env, pb, good):
    """run(*args, stdin=None) -> (exit code, stdout, stderr) of the CLI as
    ci-ota-release against the session daemon; the module's Ed25519 key
    exists."""
    good.CreateKey(pb.CreateKeyRequest(name=KEY, purpose=pb.GENERIC, algorithm=pb.ED25519),
                   timeout=60)
    return bsutil.cli_runner(env, timeout=30)


def same(cli, nested, alias):
    """Both spellings: same exit code, same stdout, nothing on stderr."""
    a, b = cli(*nested), cli(*alias)
    assert a[0] == b[0] == 0, (nested, a, alias, b)
    assert a[1] == b[1], (nested, a[1], alias, b[1])
    assert a[2] == b[2] == "", (a[2], b[2])
    return a[1]


def test_nested_and_alias_print_the_same(cli, tmp_path):
    out = same(cli, ["keys", "list", "--all"], ["list-keys", "--all"])
    assert KEY in out and out.startswith("NAME ")
    j = json.loads(same(cli, ["--json", "keys", "list", "--all"], ["--json", "list-keys", "--all"]))
    assert KEY in [k["name"] for k in j["keys"]]
    # --json after the command words works for both spellings
    assert json.loads(same(cli, ["keys", "list", "--all", "--json"],
                           ["list-keys", "--json", "--all"])) == j
    assert "algorithm:       ed25519" in same(cli, ["keys", "get", KEY], ["get-key", KEY])
    pem = same(cli, ["keys", "public-key", KEY], ["get-public-key", KEY])
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")

    sig = json.loads(same(cli, ["--json", "keys", "sign", KEY, "--message", MSG],
                          ["--json", "sign", KEY, "--message", MSG]))
    assert sig["key"] == KEY and sig["algorithm"] == "ed25519", sig
    text = same(cli, ["keys", "sign", KEY, "--message", MSG], ["sign", KEY, "--message", MSG])
    assert text.splitlines()[0] == sig["signature"], text
    out = same(cli, ["keys", "verify", KEY, "--message", MSG, "--signature", sig["signature"]],
               ["verify", KEY, "--message", MSG, "--signature", sig["signature"]])
    assert out.startswith("valid"), out

    files = []
    for i, m in enumerate((b"one", b"two")):
        f = tmp_path / ("m%d" % i)
        f.write_bytes(m)
        files += ["--message-file", str(f)]
    j = json.loads(same(cli, ["--json", "keys", "sign-batch", KEY] + files,
                        ["--json", "sign-batch", KEY] + files))
    assert [r["status"] for r in j["results"]] == ["OK", "OK"], j


def test_invalid_signature_exit_1_both_spellings(cli):
    for words in (["keys", "verify"], ["verify"]):
        rc, out, err = cli(*words, KEY, "--message", MSG, "--signature", "AAAA")
        assert rc == 1 and out == "invalid\n", (words, rc, out, err)


def test_errors_name_the_spelling_used(cli):
    rc, out, err = cli("keys", "get", "it-cli-no-such-key")
    assert rc == 4 and out == "" and err.startswith("boltseal: keys get: NOT_FOUND"), (rc, err)
    rc, out, err = cli("get-key", "it-cli-no-such-key")
    assert rc == 4 and out == "" and err.startswith("boltseal: get-key: NOT_FOUND"), (rc, err)


@pytest.mark.parametrize("args, want", [
    (["--help"], ["usage: boltseal [global options] COMMAND", "keys sign", "audit verify",
                  "health", "list-keys", "= keys list"]),
    (["help"], ["usage: boltseal [global options] COMMAND", "keys sign"]),
    (["keys", "--help"], ["usage: boltseal [global options] keys COMMAND", "keys create NAME",
                          "keys list [--page-size N]", "keys sign-batch NAME", "(Sign)",
                          "also: boltseal get-public-key"]),
    (["help", "keys"], ["keys create NAME", "keys verify"]),
    (["keys", "sign", "--help"], ["usage: boltseal [global options] keys sign NAME",
                                  "--message-file FILE", "(Sign)", "Also spelled: boltseal sign"]),
    (["keys", "sign", "-h"], ["keys sign NAME"]),
    (["help", "keys", "sign"], ["keys sign NAME"]),
    (["sign", "--help"], ["usage: boltseal [global options] sign NAME",
                          "Also spelled: boltseal keys sign"]),
    (["list-keys", "--help"], ["list-keys [--page-size N]", "boltseal keys list"]),
    (["audit", "--help"], ["audit verify --dir AUDITDIR"]),
    (["audit", "verify", "--help"], ["audit verify --dir AUDITDIR", "Offline"]),
    (["health", "--help"], ["health [SERVICE]"]),
])
def test_help_at_each_level(args, want):
    p = subprocess.run([cli_path()] + args, capture_output=True, timeout=30)
    out = p.stdout.decode()
    assert p.returncode == 0 and p.stderr == b"", (args, p.returncode, p.stderr)
    for w in want:
        assert w in out, (args, w, out)


@pytest.mark.parametrize("args, msg, hint", [
    (["keys", "frobnicate"], "boltseal: keys: unknown command 'frobnicate' (one of: create,",
     "Try 'boltseal keys --help'."),
    (["audit", "frobnicate"], "boltseal: audit: unknown command 'frobnicate' (one of: verify, bundle, verify-bundle, explain)",
     "Try 'boltseal audit --help'."),
    (["frobnicate"], "boltseal: unknown command 'frobnicate'", "Try 'boltseal --help'."),
    (["list"], "boltseal: unknown command 'list' (did you mean 'keys list'?)",
     "Try 'boltseal --help'."),
    (["keys"], "boltseal: keys: missing command (one of: create,", "Try 'boltseal keys --help'."),
    (["keys", "sign", "k", "--bogus"], "boltseal: keys sign: unknown option '--bogus'",
     "Try 'boltseal keys sign --help'."),
])
def test_unknown_command_is_a_usage_error(args, msg, hint):
    p = subprocess.run([cli_path()] + args, capture_output=True, timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 2 and p.stdout == b"", (args, p.returncode, p.stdout)
    assert err.startswith(msg) and err.splitlines()[-1] == hint, (args, err)


def test_unreadable_client_files_are_usage_errors(env, tmp_path):
    run = bsutil.cli_runner(env, "audit-ext")
    missing = str(tmp_path / "missing.pem")
    for opt in ("--cert", "--key", "--ca"):
        rc, out, err = run(opt, missing, "health")
        assert rc == 2 and "%s %s: No such file or directory" % (opt, missing) in err, \
            (opt, rc, err)


def test_global_options_after_the_command(env):
    cert, key = env.client_files("audit-ext")
    e = {k: v for k, v in os.environ.items() if not k.startswith("BOLTSEAL_")}
    cli = os.path.join(bsutil.BUILDDIR, "boltseal")
    p = subprocess.run([cli, "health", "--server", "127.0.0.1:%d" % env.port, "--ca", env.ca,
                        "--cert=" + cert, "--key", key, "--json"], env=e, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "SERVING", p
    # after the words, an option the command defines is the command's: ca list --ca NAME
    p = subprocess.run([cli, "--ca", env.ca, "ca", "list", "--ca", "ca-none",
                        "--server", "127.0.0.1:%d" % env.port, "--cert", cert, "--key", key],
                       env=e, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("SERIAL"), p


def test_every_option_has_a_help_line():
    """`--help` of every command lists each of its options on one line with
    a description (the commands and options come from the CLI itself)."""
    cli = os.path.join(bsutil.BUILDDIR, "boltseal")

    def run(*args):
        p = subprocess.run([cli] + list(args), capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout

    _, tops = run("__complete", "")
    checked = 0
    for top in tops.split():
        _, subs = run("__complete", top, "")
        for words in ([[top, s] for s in subs.split()] or [[top]]):
            _, opts = run("__complete", *words, "--")
            rc, out = run(*words, "--help")
            assert rc == 0, (words, out)
            for opt in opts.split():
                if opt in ("--json", "--help"):
                    continue
                m = re.search(r"^  %s(?: \S+)?\s+(\S.*)$" % re.escape(opt), out, re.M)
                assert m and len(m.group(1)) > 5, (words, opt, out)
                checked += 1
    assert checked > 150, checked

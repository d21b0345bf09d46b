# test_client_lib.py - the C client library and the `boltseal` CLI against
# servers nobody here wrote: fake_server.py runs python3-grpcio (mutual TLS,
# real signatures with python3-cryptography) and a misbehaving raw HTTP/2
# server, and drives the CLI through every subcommand, status decoding,
# deadlines, size caps, and refusal of a wrong server certificate.
import os
import subprocess
import sys

import bsutil


def test_cli_against_fake_servers(env):
    script = os.path.join(os.path.dirname(__file__), "fake_server.py")
    cli = os.path.join(bsutil.BUILDDIR, "boltseal")
    p = subprocess.run(["/usr/bin/python3", script, "--pki", env.pki, "--selftest", cli],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    sys.stdout.write(out[-4000:])
    assert p.returncode == 0, out[-4000:]
    assert "0 failed" in out

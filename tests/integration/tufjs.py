# tufjs.py - helpers of boltseal's TUF interop tests: a stock TUF client,
# tuf-js (tests/interop/tuf-js, pinned in its package-lock.json, installed
# there by scripts/lib/npm.sh's bs_npm_ci), run against metadata published
# by `boltseal ota publish`.
#
#   available()   -> (bool, reason): node on PATH and tuf-js installed
#   Server(dir)   context manager: serves dir over HTTP on 127.0.0.1 (an
#                 ephemeral port) from a background thread; .url, and
#                 .paths (the request paths seen, in order)
#   run_client(metadata_url, targets_url, root_file, cache_dir,
#              target=None, out_dir=None, timeout=60)
#                 -> the one JSON object client.mjs printed:
#     {"ok": true, "root_version": N, "timestamp_version": N,
#      "snapshot_version": N, "targets_version": N,
#      "target": null | {"name", "length", "sha256", "path"}}
#     {"ok": false, "error": "<ErrorClass>: <message>"}
#   (an overall time-out of the client reads "TimeoutError: ...").
#
# Not a test module. Runs under Debian's /usr/bin/python3 (standard library
# only).

import functools
import http.server
import json
import os
import shutil
import threading

import nodejson

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("BS_SRCDIR") or os.path.join(HERE, "..", ".."))
CLIENT_DIR = os.path.join(SRCDIR, "tests", "interop", "tuf-js")
CLIENT = os.path.join(CLIENT_DIR, "client.mjs")


def available():
    """(True, "") when node is on PATH and tuf-js is installed in
    CLIENT_DIR/node_modules, else (False, why)."""
    if shutil.which("node") is None:
        return False, "node is not on PATH"
    if not os.path.isfile(CLIENT):
        return False, "no %s" % CLIENT
    if not os.path.isfile(os.path.join(CLIENT_DIR, "node_modules", "tuf-js", "package.json")):
        return False, ("tuf-js is not installed in %s/node_modules "
                       "(scripts/lib/npm.sh: bs_npm_ci %s)" % (CLIENT_DIR, CLIENT_DIR))
    return True, ""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def send_head(self):
        self.server.record(self.path)
        return super().send_head()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.paths = []
        self._lock = threading.Lock()

    def record(self, path):
        with self._lock:
            self.paths.append(path)

    def handle_error(self, request, client_address):
        pass  # a client hanging up mid-answer is no test failure


class Server:
    """Serves directory over HTTP on 127.0.0.1 from a background thread,
    until the with block ends. Silent: no request log."""

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        self._httpd = None
        self._thread = None
        self.url = None

    def __enter__(self):
        handler = functools.partial(_Handler, directory=self.directory)
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        port = self._httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % port
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name="tufjs-http-%d" % port, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
        return False

    @property
    def paths(self):
        """Request paths served so far (e.g. "/2.root.json"), in order."""
        with self._httpd._lock:  # pylint: disable=protected-access
            return list(self._httpd.paths)


def run_client(metadata_url, targets_url, root_file, cache_dir, target=None,
               out_dir=None, timeout=60):
    """Runs client.mjs once and returns the JSON object it printed. Raises
    RuntimeError when its output is not one JSON object agreeing with its
    exit code, subprocess.TimeoutExpired after timeout seconds."""
    argv = ["node", CLIENT, "--metadata-url", metadata_url,
            "--targets-url", targets_url, "--root", os.fspath(root_file),
            "--cache", os.fspath(cache_dir)]
    if target is not None:
        argv += ["--target", target]
    if out_dir is not None:
        argv += ["--out", os.fspath(out_dir)]
    # The client's own limit goes off first, so that a hang still ends in
    # a JSON answer; this one bounds node itself.
    argv += ["--timeout", str(max(1, min(30, timeout - 5)))]
    return nodejson.run("tuf-js client", argv, CLIENT_DIR, timeout)

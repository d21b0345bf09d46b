# nodejson.py - runs one of the interop Node scripts (tests/interop/*) and
# reads its one-line JSON answer, for tufjs.py and josejs.py.
import json
import subprocess


def run(what, argv, cwd, timeout):
    """Runs argv (node SCRIPT ...) in cwd and returns the JSON object it
    printed. Raises RuntimeError when stdout is not exactly one JSON object
    whose boolean "ok" agrees with the exit code, subprocess.TimeoutExpired
    after timeout seconds."""
    p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    lines = out.splitlines()
    try:
        if len(lines) != 1:
            raise ValueError("%d lines on stdout" % len(lines))
        result = json.loads(lines[0])
        if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
            raise ValueError("no boolean 'ok'")
        if result["ok"] != (p.returncode == 0):
            raise ValueError("ok=%s but exit %d" % (result["ok"], p.returncode))
    except ValueError as e:
        raise RuntimeError("%s: bad output (%s), exit %d\nargv: %s\nstdout:\n%s\nstderr:\n%s" %
                           (what, e, p.returncode, argv, out, err)) from None
    return result

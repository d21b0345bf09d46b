# test_docs.py - the documents stay true to the code they describe: the
# demo keys docs/development.md names are those scripts/dev-up creates; the
# README tour has no placeholder to paste literally and writes nothing into
# the work tree; the Python snippet creates the directory it writes to;
# every file the example configuration names is one the dev PKI makes.
import os
import re

import bsutil

SRC = bsutil.SRCDIR


def read(*p):
    with open(os.path.join(SRC, *p)) as f:
        return f.read()


def test_demo_keys_match_dev_up():
    m = re.search(r"^for spec in (.*); do$", read("scripts", "dev-up"), re.M)
    assert m, "scripts/dev-up no longer creates its demo keys in a 'for spec in' loop"
    names = [spec.split(":")[0] for spec in m.group(1).split()]
    dev = read("docs", "development.md")
    step = re.search(r"^8\. Creates the demo keys.*?(?=^\d+\. )", dev, re.M | re.S).group(0)
    assert sorted(re.findall(r"`([a-z0-9-]+-demo-[a-z0-9]+|demo-[a-z0-9-]+)`", step)) == \
        sorted(names), (step, names)


def tour():
    readme = read("README.md")
    start = readme.index("## A five-minute tour")
    return readme[start:readme.index("## Documentation", start)]


def test_readme_tour_has_no_literal_placeholders():
    t = tour()
    assert not re.search(r"<[a-z0-9_-]+>", t), re.findall(r"<[a-z0-9_-]+>", t)
    # files the tour writes go to /tmp (or ~ for the auditor's key), never the work tree
    for target in re.findall(r"(?:>|--out|--targets-out|--uri-out|--der-out) +([^\s|&;]+)", t):
        assert target.startswith(("/tmp/", "~/", "/dev/null", "&")), target
    for m in re.finditer(r"--python_out=(\S+)", t):
        assert "mkdir -p %s" % m.group(1) in t, m.group(0)


def test_example_config_names_files_the_dev_pki_makes():
    made = read("scripts", "mkpki")
    conf = read("etc", "boltsealed.conf.example")
    for key, val in re.findall(r"^(tls_\w+) = pki/(\S+)$", conf, re.M):
        assert re.search(r"DIR/%s\b|\$dir/%s\b" % (re.escape(val), re.escape(val)), made) or \
            val in made, (key, val)

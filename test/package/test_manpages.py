"""The man pages: wsgate.conf(5) lists exactly the keys conf/wsgate.conf has,
wsgate(8) has every flag of app/main.c and every close code of README's table,
and `mandoc -T lint` reports nothing on either page.

    /usr/bin/python3 test/package/test_manpages.py CONF WSGATE.CONF.5 WSGATE.8

(ctest runs it as package.manpages). The keys of conf/wsgate.conf are read
here with a parser of its own, not with docs/man/conf2man.awk that wrote the
page, so that a key the generator drops or invents is caught."""

import os
import re
import subprocess
import sys
import unittest

CONF, CONF5, WSGATE8 = sys.argv[1:4] if len(sys.argv) >= 4 else (None, None, None)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def conf_keys(path):
    """Dotted names of every setting in a libconfig file in conf/wsgate.conf's
    style, also those commented out (`# name = value;`), and name.field for
    the fields of the entries of a list of groups."""
    keys, groups = set(), []
    in_list = None
    with open(path) as f:
        text = f.read()
    for line in text.splitlines():
        stripped = line.strip()
        if in_list is not None:
            for field in re.findall(r"([a-z_]+)\s*=", stripped):
                keys.add(in_list + "." + field)
            if stripped.startswith(");"):
                in_list = None
            continue
        if stripped.startswith("#"):
            m = re.match(r"#\s?([a-z_]+) = .*;$", stripped)
            if m and groups:                     # an optional key, left out
                keys.add(".".join(groups + [m.group(1)]))
            continue
        m = re.match(r"([a-z_]+)\s*=\s*(.*)$", stripped)
        if m:
            name = ".".join(groups + [m.group(1)])
            keys.add(name)
            if m.group(2) == "{":
                groups.append(m.group(1))
                keys.discard(name)               # a group, not a key
            elif m.group(2) == "(":
                in_list = name
        elif stripped == "};":
            groups.pop()
    return keys


def man_section(path, title):
    """The roff lines of one .SH section."""
    lines, inside = [], False
    with open(path) as f:
        for line in f.read().splitlines():
            if line.startswith(".SH "):
                inside = line[4:].strip().strip('"') == title
                continue
            if inside:
                lines.append(line)
    return lines


def tagged_names(lines):
    """The `.B name` tags of .TP items."""
    names = []
    for prev, line in zip(lines, lines[1:]):
        if prev == ".TP" and line.startswith(".B "):
            names.append(line[3:].strip())
    return names


class ManPagesTest(unittest.TestCase):

    def test_conf5_lists_the_keys_of_the_reference_configuration(self):
        expected = conf_keys(CONF)
        self.assertIn("listen.port", expected)          # the parser itself works
        self.assertIn("auth.origins", expected)
        self.assertIn("tokens.user", expected)
        listed = tagged_names(man_section(CONF5, "KEYS"))
        self.assertEqual(len(listed), len(set(listed)), "a key listed twice: %r" % listed)
        missing, extra = expected - set(listed), set(listed) - expected
        self.assertFalse(missing or extra, "wsgate.conf(5) lacks %s and has extra %s"
                         % (sorted(missing), sorted(extra)))

    def test_conf5_gives_each_key_its_default(self):
        with open(CONF5) as f:
            page = f.read()
        self.assertIn(".B websocket.max_message_bytes\nType: integer; default \\fB65536\\fR; "
                      "range 16 - 16777216.", page)
        self.assertIn(".B auth.origins\nType: array of strings; absent by default;", page)

    def test_wsgate8_has_every_flag(self):
        with open(os.path.join(ROOT, "app", "main.c")) as f:
            main_c = f.read()
        longs = re.findall(r'\{ "([a-z-]+)", (?:required|no)_argument', main_c)
        self.assertIn("config", longs)
        with open(WSGATE8) as f:
            page = f.read().replace("\\-", "-")
        for name in longs:
            self.assertIn("--" + name, page)

    def test_wsgate8_has_every_close_code_of_the_readme(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        table = readme.split("## Close codes", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| (\d{4}) \| ([^|]+?) \| ([^|]+?) \|", table, re.M)
        self.assertGreater(len(rows), 10)
        listed = tagged_names(man_section(WSGATE8, "CLOSE CODES"))
        for code, reason, advice in rows:
            self.assertIn("%s %s" % (code, reason), listed)
        for code in ("4004 token revoked", "4200 server draining, reconnect"):
            self.assertIn(code, listed)

    def test_mandoc_lint_reports_nothing(self):
        for page in (CONF5, WSGATE8):
            result = subprocess.run(["mandoc", "-T", "lint", page], capture_output=True, text=True)
            self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""), page)


if __name__ == "__main__":
    if CONF is None:
        sys.exit("usage: test_manpages.py CONF WSGATE.CONF.5 WSGATE.8")
    unittest.main(argv=sys.argv[:1], verbosity=2)

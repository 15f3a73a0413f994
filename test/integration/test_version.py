"""`wsgate --version`: wsgate's version and the versions of the libraries the
binary really runs with, checked against the Debian packages that provide the
shared objects it is linked to (found with ldd and dpkg -S)."""

import os
import re
import subprocess
import unittest

from wsgate_harness import binary, main, repo_root, run_binary

# Name printed by --version -> shared object the binary links.
LIBRARIES = {
    "libwebsockets": "libwebsockets.so",
    "OpenSSL": "libssl.so",
    "jansson": "libjansson.so",
    "libconfig": "libconfig.so",
    "libev": "libev.so",
}


def project_version():
    with open(os.path.join(repo_root(), "CMakeLists.txt")) as f:
        return re.search(r"project\(wsgate VERSION ([0-9.]+)", f.read()).group(1)


def linked_libraries():
    """soname prefix -> resolved path, from ldd on the binary."""
    out = subprocess.run(["ldd", binary()], capture_output=True, text=True, check=True).stdout
    paths = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            paths[m.group(1)] = m.group(2)
    return paths


def upstream_version_of(path):
    """Upstream part of the version of the Debian package that ships path."""
    real = os.path.realpath(path)
    for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1)):
        owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if owner.returncode == 0:
            package = owner.stdout.splitlines()[0].split(": ", 1)[0]   # "libssl3:amd64: /usr/lib/..."
            version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                                     capture_output=True, text=True, check=True).stdout
            version = version.split(":", 1)[-1]           # epoch
            return version.rsplit("-", 1)[0] if "-" in version else version
    raise AssertionError("no Debian package owns %s" % path)


class VersionTest(unittest.TestCase):

    def test_version_names_wsgate_and_each_runtime_library(self):
        result = run_binary(["--version"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        lines = result.stdout.splitlines()
        self.assertEqual(lines[0], "wsgate %s" % project_version())
        names = [l.split(" ", 1)[0] for l in lines[1:]]
        self.assertEqual(names, list(LIBRARIES))
        linked = linked_libraries()
        for line in lines[1:]:
            name, rest = line.split(" ", 1)
            printed = rest.split()[0]
            sonames = [s for s in linked if s.startswith(LIBRARIES[name])]
            self.assertEqual(len(sonames), 1, "%s: linked %r" % (name, sorted(linked)))
            expected = upstream_version_of(linked[sonames[0]])
            self.assertTrue(printed == expected or printed.startswith(expected + ".")
                            or printed.startswith(expected + "-"),
                            "%r: printed %s, runtime package has %s" % (line, printed, expected))
        self.assertIn("compile-time", [l for l in lines if l.startswith("libconfig ")][0])


if __name__ == "__main__":
    main()

"""The last step of the integration suite: no token or API key of any test
config appears in any wsgate log the suite wrote.

    /usr/bin/python3 test/integration/check_log_secrets.py DIR

DIR is WSGATE_TEST_LOG_DIR: wsgate_harness.py keeps every server's log there
(NAME.log) with the secrets of its config (NAME.secrets.json). Every log is
searched for the secrets of every config, not only its own. Exits 1 when a
secret is found, 77 (ctest: skipped) when no log was collected, else 0.
"""

import glob
import json
import os
import sys


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: check_log_secrets.py DIR\n")
        return 2
    directory = sys.argv[1]
    secrets = set()
    for path in glob.glob(os.path.join(directory, "*.secrets.json")):
        with open(path) as f:
            secrets.update(s for s in json.load(f) if s)
    logs = sorted(glob.glob(os.path.join(directory, "*.log")))
    if not logs:
        print("no wsgate logs in %s: run the integration tests that start servers" % directory)
        return 77
    found = 0
    for path in logs:
        with open(path, "rb") as f:
            text = f.read()
        for secret in sorted(secrets):
            if secret.encode() in text:
                line = next(l for l in text.splitlines() if secret.encode() in l)
                # name the secret's config entry by length only: the report must not spread it either
                print("%s: a %d-byte secret of a test config is logged: %s"
                      % (path, len(secret), line.replace(secret.encode(), b"<SECRET>").decode("utf-8", "replace")))
                found += 1
    print("%d logs searched for %d secrets: %d found" % (len(logs), len(secrets), found))
    return 1 if found or not secrets else 0


if __name__ == "__main__":
    sys.exit(main())

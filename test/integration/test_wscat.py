"""wscat (npm package, installed in <repo>/node_modules) against wsgate.

wscat prints control messages such as "Disconnected (code: ..)" only when
its stdout is a terminal (and no -x is given), so those cases run it on a
pseudo-terminal. Otherwise stdin is an open pipe: with stdin at EOF wscat
quits before the connection is set up.
"""

import os
import pty
import re
import select
import signal
import subprocess
import threading
import time

from wsgate_harness import WSCAT, TOKENS, WsgateTestCase, main, run_wscat, welcome_re, ws_url

WSCAT_TIMEOUT = 10
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_wscat_tty(args, timeout=WSCAT_TIMEOUT):
    """Run wscat on a pseudo-terminal; returns (exit code, screen lines
    without escape sequences or prompts)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([WSCAT] + args, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:                 # EIO: the terminal's last user exited
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError("wscat did not exit in %ds; output=%r" % (timeout, output))
        rc = proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = ANSI_RE.sub("", output.decode("utf-8", "replace"))
    lines = [l.strip() for l in re.split(r"[\r\n]+", text)]
    return rc, [l.lstrip("> ").rstrip() for l in lines if l.strip(" >")]


class WscatTest(WsgateTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(WSCAT, os.X_OK):
            raise AssertionError("wscat not found at %s: run `npm install --no-save wscat@6` "
                                 "in the repository root" % WSCAT)

    def setUp(self):
        super().setUp()
        self.start_server()

    def url(self, token=None, device=None):
        return ws_url(self.server.port, token, device)

    def test_missing_token_prints_unexpected_response_403(self):
        rc, out, err = run_wscat(["-c", self.url(device="d1")])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err.splitlines(), ["error: Unexpected server response: 403"], err)
        self.assertEqual(out, "")

    def test_disallowed_origin_prints_unexpected_response_403(self):
        self.server.stop()
        self.start_server(auth={"origins": ["https://app.example.com"]})
        rc, out, err = run_wscat(["-c", self.url(TOKENS["alice"], "d1"),
                                  "-o", "https://evil.example.com"])
        self.assertNotEqual(rc, 0)
        self.assertEqual(err.splitlines(), ["error: Unexpected server response: 403"], err)

    def test_execute_ping_prints_welcome_and_pong(self):
        rc, out, err = run_wscat(["-c", self.url(TOKENS["alice"], "d1"),
                                  "-x", '{"type":"ping","id":7}', "-x", "ping", "-w", "1"])
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[0], "^%s$" % welcome_re("alice", "d1", 25000))
        self.assertEqual(lines[1:], ['{"type":"pong","id":7}', "pong"])
        self.assertEqual(err, "")

    def test_bearer_header_admitted(self):
        rc, out, err = run_wscat(["-c", self.url(device="w1"),
                                  "-H", "Authorization: Bearer " + TOKENS["bob"],
                                  "-x", "ping", "-w", "1"])
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertRegex(lines[0], "^%s$" % welcome_re("bob", "w1", 25000))
        self.assertEqual(lines[1], "pong")

    def test_repeat_connect_prints_disconnected_4001(self):
        self.open_session("alice", "d1")
        rc, lines = run_wscat_tty(["-c", self.url(TOKENS["alice"], "d1")])
        self.assertIn('Disconnected (code: 4001, reason: "repeat connect channel")', lines)
        self.assertEqual(rc, 0, lines)

    def test_shutdown_prints_disconnected_1001(self):
        timer = threading.Timer(1.0, self.server.send_signal, (signal.SIGTERM,))
        timer.start()
        self.addCleanup(timer.cancel)
        rc, lines = run_wscat_tty(["-c", self.url(TOKENS["alice"], "d1")])
        self.assertIn("Connected (press CTRL+C to quit)", lines)
        self.assertIn('Disconnected (code: 1001, reason: "server shutting down")', lines)


if __name__ == "__main__":
    main()

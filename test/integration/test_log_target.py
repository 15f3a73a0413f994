"""A log that cannot be written never costs a session: wsgate keeps serving with
stderr on a full disk (/dev/full) or on a pipe nobody reads, counts the lines it
had to drop in /metrics, and says so once the log can be written again."""

import os
import signal
import subprocess
import time

from wsgate_harness import (WsgateServer, WsgateTestCase, binary, http_request, main,
                            parse_metrics)


class LogTargetTest(WsgateTestCase):

    def start_with_stderr(self, stderr):
        server = WsgateServer(self.workdir)
        server.proc = subprocess.Popen([binary(), "-c", server.conf_path], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=stderr)
        self.addCleanup(lambda: server.proc.poll() is None and server.proc.kill())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                http_request(server.port, "GET", "/healthz", timeout=0.5)
                break
            except OSError:
                time.sleep(0.05)
        self.server = server
        return server

    def lines_lost(self):
        return parse_metrics(http_request(self.server.port, "GET", "/metrics").body.decode())[
            "wsgate_log_lines_lost_total"]

    def churn(self, count):
        """Sessions opened and closed: two log lines each."""
        for i in range(count):
            client, _ = self.open_session("alice", "churn%d" % i)
            self.close_by_client(client)

    def stop(self):
        self.server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.proc.wait(timeout=10), 0)

    def test_full_disk_costs_nothing(self):
        with open("/dev/full", "wb") as full:
            self.start_with_stderr(full)
        client, _ = self.open_session("alice", "keeper")
        self.churn(20)
        self.assert_alive(client)
        self.assertGreater(self.lines_lost(), 20)
        self.stop()

    def test_pipe_nobody_reads_never_blocks_the_server(self):
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        self.start_with_stderr(write_end)
        os.close(write_end)
        client, _ = self.open_session("alice", "keeper")
        self.churn(1000)         # ~300 KiB of log: more than the pipe (64 KiB) and wsgate's buffer (64 KiB)
        self.assert_alive(client)
        lost = self.lines_lost()
        self.assertGreater(lost, 0)
        # the reader comes back: the server says how many lines it lost, once
        os.set_blocking(read_end, False)
        seen = b""
        deadline = time.monotonic() + 5
        while b"event=log_resumed" not in seen and time.monotonic() < deadline:
            try:
                while True:
                    chunk = os.read(read_end, 65536)
                    if not chunk:
                        break
                    seen += chunk
            except BlockingIOError:
                pass
            self.churn(1)
            time.sleep(0.05)
        self.assertIn(b"event=log_resumed lines_lost=", seen)
        self.assertEqual(seen.count(b"event=log_resumed"), 1)
        self.stop()


if __name__ == "__main__":
    main()

"""Load: 10,000 sessions subscribed to one channel, a publish to all of them
every 100 ms through POST /api/publish. Every publish reaches every session
(delivered = 10,000, seq 1, 2, 3 ...), no subscriber that keeps reading sees a gap in the
channel's seq, and no session is dropped. The subscribers are one C process,
build/wsgate-load (test/integration/load_client.c). Runs 10 s by default;
WSGATE_LOAD_SECONDS=60 for the full minute, WSGATE_LOAD_SESSIONS to change
the count."""

import concurrent.futures
import json
import os
import re
import select
import subprocess
import time

from wsgate_harness import TOKENS, WsgateTestCase, binary, http_request, main, ws_query

SESSIONS = int(os.environ.get("WSGATE_LOAD_SESSIONS", "10000"))
SECONDS = float(os.environ.get("WSGATE_LOAD_SECONDS", "10"))
INTERVAL = 0.1
API_KEY = "load-test-api-key-0123456789"
CHANNEL = "load"


def load_client():
    return os.path.join(os.path.dirname(binary()), "wsgate-load")


def read_line(proc, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            return line.strip()
    raise AssertionError("wsgate-load: no %s line within %.0fs (exit %r)"
                         % (what, timeout, proc.poll()))


def fields(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


class LoadTest(WsgateTestCase):

    def test_ten_thousand_subscribers_publish_every_100ms(self):
        self.assertTrue(os.access(load_client(), os.X_OK), "no %s" % load_client())
        server = self.start_server(
            sessions={"max": SESSIONS + 100},
            api={"keys": [API_KEY]},
            tokens=[{"token": TOKENS["alice"], "user": "alice", "subscribe": [CHANNEL]},
                    {"token": TOKENS["bob"], "user": "bob"}])
        proc = subprocess.Popen([load_client(), str(server.port), str(SESSIONS), CHANNEL,
                                 "%s?%s" % (server.path, ws_query(TOKENS["alice"]))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.stdin.close)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        ready = fields(read_line(proc, 90, "ready"))
        self.assertEqual(ready["subscribed"], str(SESSIONS), ready)
        self.assertEqual(self.metrics()["wsgate_sessions_open"], SESSIONS)

        publishes = int(round(SECONDS / INTERVAL))
        durations = []

        def publish(n):
            sent = time.monotonic()
            response = http_request(server.port, "POST", "/api/publish",
                                    json.dumps({"channel": CHANNEL, "data": {"n": n}}),
                                    api_key=API_KEY, timeout=30)
            durations.append(time.monotonic() - sent)
            return response

        # on schedule, whatever the previous publish's answer time: a server that
        # cannot keep up falls behind in its queues, where the test sees it
        late = 0
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            futures = []
            for n in range(1, publishes + 1):
                pause = started + (n - 1) * INTERVAL - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -INTERVAL:
                    late += 1
                futures.append(pool.submit(publish, n))
            seqs = []
            for n, future in enumerate(futures, 1):
                response = future.result()
                self.assertEqual(response.status, 200, repr(response))
                answer = json.loads(response.body)
                self.assertEqual(answer["delivered"], SESSIONS, "publish %d: %r" % (n, answer))
                seqs.append(answer["seq"])
            # each publish numbered once, in some order (they overlap): 1 .. publishes
            self.assertEqual(sorted(seqs), list(range(1, publishes + 1)))
        elapsed = time.monotonic() - started
        durations.sort()
        self.assertEqual(self.metrics()["wsgate_sessions_open"], SESSIONS)

        proc.stdin.write("stop %d\n" % publishes)
        proc.stdin.flush()
        summary = fields(read_line(proc, 30, "summary"))
        self.assertEqual(proc.wait(timeout=15), 0)
        print("\nload: %d sessions, %d publishes in %.1fs (one every %d ms, %d sent late), "
              "publish answered in median %.0f ms, max %.0f ms; subscribers: %s"
              % (SESSIONS, publishes, elapsed, INTERVAL * 1000, late,
                 durations[len(durations) // 2] * 1000, durations[-1] * 1000,
                 " ".join("%s=%s" % kv for kv in summary.items())))
        self.assertEqual(summary["subscribed"], str(SESSIONS), summary)   # none dropped
        self.assertEqual(summary["closed"], "0", summary)
        self.assertEqual(summary["gaps"], "0", summary)
        self.assertEqual(summary["bad"], "0", summary)
        self.assertEqual(summary["short"], "0", summary)
        self.assertEqual(summary["min_received"], str(publishes), summary)
        self.assertEqual(summary["max_received"], str(publishes), summary)
        self.assertEqual([l for l in server.log_lines("close") if "code=4109" in l], [])


if __name__ == "__main__":
    main()

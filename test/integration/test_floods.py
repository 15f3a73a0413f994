"""Floods: a burst of 20,000 WebSocket connection attempts from 49 loopback
source addresses (127.0.0.2 ... 127.0.0.50) against a server that admits at
most sessions.max. The server stays up, answers every attempt (101 and a
welcome, or 503 "server full"; 429 if a per-address limit applies), admits
exactly sessions.max of them while they are held open, and its RSS returns to
within 5% of the baseline once they are closed (not under sanitizers: ASan
quarantines freed memory)."""

import asyncio
import base64
import os
import re
import time

from wsgate_harness import HOST, TOKENS, WsgateTestCase, main, vm_rss_kb

ATTEMPTS = int(os.environ.get("WSGATE_BURST_ATTEMPTS", "20000"))
IN_FLIGHT = 500             # attempts in progress at once (the client's window)
MAX_SESSIONS = 1000         # the server's sessions.max
SOURCES = ["127.0.0.%d" % i for i in range(2, 51)]
ATTEMPT_TIMEOUT = 10.0      # an attempt with no answer by then is a failure
SANITIZED = os.environ.get("WSGATE_TEST_SANITIZED") == "1"
# True once wsgate gives freed heap back when idle (malloc_trim(0) in its loop):
# then RSS must return to within 5% of the baseline, not only stop growing.
TRIMS_WHEN_IDLE = True


class Burst:
    def __init__(self, port, path):
        self.port = port
        self.path = path
        self.statuses = {}          # HTTP status -> count
        self.failures = []          # attempts that got no HTTP answer
        self.welcomed = 0
        self.held = []              # admitted connections, held open to the end

    async def attempt(self, index, window):
        async with window:
            source = SOURCES[index % len(SOURCES)]
            key = base64.b64encode(os.urandom(16)).decode()
            request = ("GET %s?token=%s&device=b%d HTTP/1.1\r\nHost: %s:%d\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                       % (self.path, TOKENS["alice"], index, HOST, self.port, key)).encode()
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.port, local_addr=(source, 0)),
                    ATTEMPT_TIMEOUT)
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ATTEMPT_TIMEOUT)
                status = int(head.split(b" ", 2)[1])
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 101:
                    # the welcome: a short unmasked text frame
                    first = await asyncio.wait_for(reader.readexactly(2), ATTEMPT_TIMEOUT)
                    body = await asyncio.wait_for(reader.readexactly(first[1] & 0x7F),
                                                  ATTEMPT_TIMEOUT)
                    if first[0] == 0x81 and b'"type":"welcome"' in body:
                        self.welcomed += 1
                    self.held.append(writer)
                    writer = None
                else:
                    match = re.search(rb"(?i)content-length: *(\d+)", head)
                    if match:
                        await asyncio.wait_for(reader.readexactly(int(match.group(1))),
                                               ATTEMPT_TIMEOUT)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError,
                    IndexError) as e:
                self.failures.append("%s from %s: %r" % (index, source, e))
            finally:
                if writer is not None:
                    writer.close()

    async def run(self):
        window = asyncio.Semaphore(IN_FLIGHT)
        await asyncio.gather(*(self.attempt(i, window) for i in range(ATTEMPTS)))

    def close_held(self):
        for writer in self.held:
            writer.close()


class BurstTest(WsgateTestCase):

    def wait_sessions(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            now = self.metrics()["wsgate_sessions_open"]
            if now == count or time.monotonic() > deadline:
                return now
            time.sleep(0.1)

    def burst(self, server):
        """One burst; checks every answer; returns (elapsed s, statuses)."""
        burst = Burst(server.port, server.path)

        async def go():
            started = time.monotonic()
            await burst.run()
            elapsed = time.monotonic() - started
            full = self.metrics()         # while they are held: the server is up and full
            burst.close_held()
            await asyncio.sleep(0)
            return elapsed, full

        elapsed, full = asyncio.run(go())
        self.assertIsNone(server.proc.poll(), "wsgate exited during the burst")
        self.assertEqual(burst.failures[:5], [], "%d attempts without an answer"
                         % len(burst.failures))
        self.assertEqual(sum(burst.statuses.values()), ATTEMPTS, burst.statuses)
        self.assertEqual(set(burst.statuses) - {101, 503, 429}, set(), burst.statuses)
        self.assertEqual(burst.statuses.get(101), MAX_SESSIONS, burst.statuses)
        self.assertEqual(burst.welcomed, MAX_SESSIONS)
        self.assertEqual(full["wsgate_sessions_open"], MAX_SESSIONS)
        # all closed: the sessions go, and a new client is admitted
        self.assertEqual(self.wait_sessions(0), 0)
        client, _ = self.open_session("alice", "after")
        self.close_by_client(client)
        self.assertEqual(self.wait_sessions(0), 0)
        return elapsed, burst.statuses

    def settled_rss(self, pid, bound):
        """RSS once it is at most ``bound`` kB, or after 5 s."""
        deadline = time.monotonic() + 5
        while True:
            rss = vm_rss_kb(pid)
            if rss <= bound or time.monotonic() > deadline:
                return rss
            time.sleep(0.2)

    def test_twenty_thousand_attempts_from_many_addresses(self):
        server = self.start_server(sessions={"max": MAX_SESSIONS})
        pid = server.proc.pid
        # baseline: started, and one session opened and closed (everything lazy is set up)
        client, _ = self.open_session("bob", "warm")
        self.close_by_client(client)
        self.assertEqual(self.wait_sessions(0), 0)
        time.sleep(0.3)
        baseline = vm_rss_kb(pid)

        elapsed, statuses = self.burst(server)
        # malloc_trim gives back all but a few percent; 256 kB more is heap layout (a leak of
        # 100 bytes an attempt would be 2 MB)
        first_bound = baseline * 1.05 + 256
        first = self.settled_rss(pid, first_bound)
        if SANITIZED:
            return                  # RSS means little under ASan; one burst is the test
        # a second burst: what the first left behind is reused, nothing grows
        # (heap fragmentation moves it a few percent either way)
        self.burst(server)
        second = self.settled_rss(pid, first * 1.15)
        print("\nburst: %d attempts from %d sources in %.1fs (%.0f/s): %s; RSS baseline %d kB, "
              "after the first burst %d kB (%+.1f%%), after the second %d kB (%+.1f%% on the first)"
              % (ATTEMPTS, len(SOURCES), elapsed, ATTEMPTS / elapsed, statuses, baseline, first,
                 100.0 * (first - baseline) / baseline, second, 100.0 * (second - first) / first))
        # fragmentation alone has moved it up to +7%; a leak of 100 bytes an attempt is +18%
        self.assertLessEqual(second, first * 1.15, "RSS grew by a second burst: a leak")
        self.assertLessEqual(second, baseline + MAX_SESSIONS * 8,
                             "RSS %d kB after the second burst, baseline %d kB" % (second, baseline))
        if TRIMS_WHEN_IDLE:
            self.assertLessEqual(first, first_bound,
                                 "RSS %d kB after the burst, baseline %d kB" % (first, baseline))
        else:
            # glibc keeps the freed heap (the high-water mark of MAX_SESSIONS
            # held sessions): bounded, but not given back. malloc_trim(0) in the
            # process brings it to about +5% (measured: 6976 -> 11052 -> 7308 kB).
            self.assertLessEqual(first, baseline + MAX_SESSIONS * 8,
                                 "RSS %d kB after the burst, baseline %d kB" % (first, baseline))


if __name__ == "__main__":
    main()

"""Drain (SIGUSR1, POST /api/drain): /healthz answers 503 at once, new
upgrades are refused (503 / close 1013 "server draining"), every session is
closed with 4200 "server draining, reconnect", spread evenly over
shutdown.drain_ms, and the process exits 0 once the last one is gone."""

import json
import signal
import time

from wsgate_harness import OP_CLOSE, TOKENS, WsgateTestCase, check_server_close, main, parse_close_payload

API_KEY = "ops-backend-api-key-0123"
DRAIN_MS = 1500
SESSIONS = 12
DRAINING = (4200, "server draining, reconnect")


class DrainTest(WsgateTestCase):

    def start(self, drain_ms=DRAIN_MS, **overrides):
        self.start_server(shutdown={"grace_ms": 2000, "drain_ms": drain_ms}, api={"keys": [API_KEY]},
                          sessions={"max": 100}, **overrides)

    def close_times(self, clients, since):
        """Reads each client's close (answering it); returns the offsets in ms from since."""
        times = []
        for client in clients:
            frame = client.recv_frame(timeout=DRAIN_MS / 1000 + 2)
            self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
            code, reason = parse_close_payload(frame.payload)
            self.assertEqual((code, check_server_close(code, reason)), DRAINING)
            times.append((frame.time - since) * 1000)
        for client in clients:
            client.send_close(4200)
            client.expect_eof()
        return sorted(times)

    def assert_exits_zero(self):
        rc = self.server.wait(timeout=3)
        self.assertEqual(rc, 0, self.server.log())
        self.server.wait_for_log(r"event=drained sessions=%d" % SESSIONS)

    def test_sigusr1_refuses_new_clients_and_spreads_4200_over_the_window(self):
        self.start()
        clients = [self.open_session("alice" if i % 2 else "bob", "d%d" % i)[0] for i in range(SESSIONS)]
        since = time.monotonic()
        self.server.send_signal(signal.SIGUSR1)
        self.server.wait_for_log(r"event=drain by=SIGUSR1 sessions=%d drain_ms=%d listeners=refusing"
                                 % (SESSIONS, DRAIN_MS))
        response = self.http("GET", "/healthz")
        self.assertEqual((response.status, response.body), (503, b'{"status":"draining"}'))
        _, response = self.connect(TOKENS["alice"], "new")
        self.assert_http_reject(response, "HTTP/1.1 503 Service Unavailable", 1013, "server draining")
        times = self.close_times(clients, since)
        # evenly: one close every DRAIN_MS / SESSIONS (125 ms), the first at once
        step = DRAIN_MS / SESSIONS
        self.assertLess(times[0], 150, times)
        self.assertGreater(times[-1], DRAIN_MS - 2 * step - 100, times)
        self.assertLess(times[-1], DRAIN_MS + 100, times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLess(max(gaps), 2 * step + 60, times)
        for quarter in range(4):   # about a quarter of the sessions in each quarter of the window
            inside = [t for t in times if quarter * DRAIN_MS / 4 <= t < (quarter + 1) * DRAIN_MS / 4]
            self.assertIn(len(inside), (2, 3, 4), (quarter, times))
        self.assert_exits_zero()
        closes = [l for l in self.server.log_lines("session_close") if "code=4200" in l]
        self.assertEqual(len(closes), SESSIONS, self.server.log())

    def test_api_drain_with_close_rejects(self):
        self.start(200, auth={"reject": "close"})
        client, _ = self.open_session("alice", "d1")
        response = self.http("POST", "/api/drain", api_key=API_KEY)
        self.assertEqual(response.status, 202, repr(response))
        self.assertEqual(json.loads(response.body), {"draining": True, "sessions": 1, "drain_ms": 200})
        late, response = self.connect(TOKENS["bob"], "d1")
        self.assert_close_reject(late, response, 1013, "server draining")
        self.assertEqual(client.expect_close(), DRAINING)
        rc = self.server.wait(timeout=3)
        self.assertEqual(rc, 0, self.server.log())
        self.assertIn('event=drain by=api sessions=1 drain_ms=200', self.server.log())

    def test_drain_without_sessions_exits_at_once(self):
        self.start()
        since = time.monotonic()
        self.server.send_signal(signal.SIGUSR1)
        self.assertEqual(self.server.wait(timeout=2), 0, self.server.log())
        self.assertLess(time.monotonic() - since, 1)

    def test_sigterm_during_drain_closes_the_rest_with_1001(self):
        self.start()
        clients = [self.open_session("alice", "d%d" % i)[0] for i in range(4)]
        self.server.send_signal(signal.SIGUSR1)
        first = clients[0].recv_frame(timeout=1)
        self.assertEqual(parse_close_payload(first.payload)[0], 4200)
        self.server.send_signal(signal.SIGTERM)
        for client in clients[1:]:
            self.assertEqual(client.expect_close(), (1001, "server shutting down"))
        self.assertEqual(self.server.wait(timeout=4), 0, self.server.log())


if __name__ == "__main__":
    main()

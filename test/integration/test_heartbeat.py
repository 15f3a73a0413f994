"""Heartbeat: ping after interval_ms of client silence, close 4100 after a
further timeout_ms; any client frame (pong, text) counts as liveness."""

import time

from wsgate_harness import OP_CLOSE, OP_PING, OP_PONG, WsgateTestCase, main

INTERVAL_MS = 200
TIMEOUT_MS = 200
TICK_MS = 50            # tolerated early firing (timer granularity)
SLACK_MS = 500          # tolerated lateness


class HeartbeatTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(heartbeat={"interval_ms": INTERVAL_MS, "timeout_ms": TIMEOUT_MS})
        self.client, _ = self.open_session("alice", "d1")
        self.start = time.monotonic()          # welcome received: client silent from now

    def assert_at_ms(self, frame, expected_ms, what):
        elapsed_ms = (frame.time - self.start) * 1000
        self.assertGreaterEqual(elapsed_ms, expected_ms - TICK_MS,
                                "%s after %.0f ms, expected ~%d" % (what, elapsed_ms, expected_ms))
        self.assertLessEqual(elapsed_ms, expected_ms + SLACK_MS,
                             "%s after %.0f ms, expected ~%d" % (what, elapsed_ms, expected_ms))

    def test_silent_client_gets_ping_after_interval(self):
        frame = self.client.recv_frame(timeout=(INTERVAL_MS + SLACK_MS) / 1000)
        self.assertEqual((frame.opcode, frame.fin), (OP_PING, True), repr(frame))
        self.assert_at_ms(frame, INTERVAL_MS, "ping")

    def test_silent_client_closed_4100_at_interval_plus_timeout(self):
        welcome_frames = len(self.client.frames)
        result = self.client.expect_close(timeout=(INTERVAL_MS + TIMEOUT_MS + SLACK_MS) / 1000)
        self.assertEqual(result, (4100, "heartbeat timeout"))
        ping, close = self.client.frames[welcome_frames:]
        self.assertEqual((ping.opcode, close.opcode), (OP_PING, OP_CLOSE))
        self.assert_at_ms(ping, INTERVAL_MS, "ping")
        self.assert_at_ms(close, INTERVAL_MS + TIMEOUT_MS, "heartbeat close")

    def test_heartbeat_close_is_logged(self):
        self.client.expect_close(timeout=(INTERVAL_MS + TIMEOUT_MS + SLACK_MS) / 1000)
        line = self.server.wait_for_log(r"event=session_close\b")
        self.assertRegex(line, r"(^|\s)code=4100(\s|$)")
        self.assertRegex(line, r"(^|\s)by=server(\s|$)")

    def test_client_answering_pings_stays_connected(self):
        duration = 5 * (INTERVAL_MS + TIMEOUT_MS) / 1000
        pings = self.client.expect_silence(duration, auto_pong=True)
        self.assertGreaterEqual(pings, 3, "pings received in %.1fs" % duration)
        self.assert_alive(self.client)

    def test_late_pong_within_timeout_keeps_session(self):
        # A pong sent just before the timeout expires still counts.
        for _ in range(3):
            frame = self.client.recv_frame(timeout=(INTERVAL_MS + SLACK_MS) / 1000)
            self.assertEqual(frame.opcode, OP_PING, repr(frame))
            time.sleep((TIMEOUT_MS - 2 * TICK_MS) / 1000)
            self.client.send_frame(OP_PONG, frame.payload)
        self.assert_alive(self.client)

    def test_text_messages_count_as_liveness(self):
        # A client that never answers pings but sends text every interval/2
        # is never pinged and never closed.
        deadline = time.monotonic() + 5 * (INTERVAL_MS + TIMEOUT_MS) / 1000
        pings = 0
        while time.monotonic() < deadline:
            self.client.send_text("ping")
            self.assertEqual(self.client.recv_text(auto_pong=False), "pong")
            pings += self.client.expect_silence(INTERVAL_MS / 4 / 1000, auto_pong=False)
        self.assertEqual(pings, 0, "server pinged an active client")

    def test_unsolicited_pongs_count_as_liveness(self):
        # A client sending only pong frames every interval/4 stays open (a quarter:
        # slack for a loaded machine, where this client may be descheduled for a while).
        # (The pongs carry a payload: libwebsockets 4.1.6 never reports an
        # empty pong to the application.)
        deadline = time.monotonic() + 5 * (INTERVAL_MS + TIMEOUT_MS) / 1000
        pings = 0
        while time.monotonic() < deadline:
            self.client.send_frame(OP_PONG, b"keepalive")
            pings += self.client.expect_silence(INTERVAL_MS / 4 / 1000, auto_pong=False)
        self.assertEqual(pings, 0, "server pinged an active client")
        self.assert_alive(self.client)


if __name__ == "__main__":
    main()

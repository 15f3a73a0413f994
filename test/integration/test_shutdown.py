"""SIGTERM / SIGINT: every open session gets close 1001 "server shutting
down", then the process exits 0 within shutdown.grace_ms (+ margin)."""

import signal
import time

from wsgate_harness import (OP_CLOSE, TOKENS, WsgateTestCase, check_server_close, main,
                            parse_close_payload, run_async, ws_closed, ws_connect, ws_recv_json)

GRACE_MS = 1000
MARGIN_MS = 1000
SHUTDOWN = (1001, "server shutting down")


class ShutdownTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(shutdown={"grace_ms": GRACE_MS})

    def assert_exits_zero_in_time(self, since):
        rc = self.server.wait(timeout=(GRACE_MS + MARGIN_MS) / 1000)
        elapsed_ms = (time.monotonic() - since) * 1000
        self.assertIsNotNone(rc, "still running %.0f ms after the signal" % elapsed_ms)
        self.assertEqual(rc, 0, self.server.log())

    def assert_sessions_closed_by_signal(self, sig):
        clients = [self.open_session(user, device)[0]
                   for user, device in [("alice", "d1"), ("alice", "d2"), ("bob", "d1")]]
        since = time.monotonic()
        self.server.send_signal(sig)
        for client in clients:
            self.assertEqual(client.expect_close(), SHUTDOWN)
        self.assert_exits_zero_in_time(since)

    def test_handshake_failing_inside_lws_does_not_upset_shutdown(self):
        """An upgrade without Sec-WebSocket-Key passes wsgate's checks but fails
        in lws after the session began; shutdown must still send 1001 to the
        real session and exit at once, not wait out the grace period."""
        client, _ = self.open_session("alice", "d1")
        broken = self.raw()
        broken.send_raw(("GET /ws?token=%s&device=d2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
                         % TOKENS["bob"]).encode())
        broken.expect_eof()
        since = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        self.assertEqual(client.expect_close(), SHUTDOWN)
        rc = self.server.wait(timeout=GRACE_MS / 2000)
        self.assertEqual(rc, 0, "not stopped within half the grace period:\n" + self.server.log())
        self.assertIn("sessions_left=0", self.server.log())
        self.assertLess(time.monotonic() - since, GRACE_MS / 2000)

    def test_repeated_signals_during_shutdown_still_exit_0(self):
        """Supervisors send SIGTERM again; one arriving while wsgate tears down
        must not kill it (exit code -15) or crash it."""
        client, _ = self.open_session("alice", "d1")
        since = time.monotonic()
        for _ in range(20):
            try:
                self.server.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                break
            time.sleep(0.005)
        self.assertEqual(client.expect_close(), SHUTDOWN)
        self.assert_exits_zero_in_time(since)

    def test_sigterm_closes_all_sessions_1001_and_exits_0(self):
        self.assert_sessions_closed_by_signal(signal.SIGTERM)

    def test_sigint_closes_all_sessions_1001_and_exits_0(self):
        self.assert_sessions_closed_by_signal(signal.SIGINT)

    def test_sigterm_without_sessions_exits_0(self):
        since = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        self.assert_exits_zero_in_time(since)

    def test_exits_within_grace_when_clients_never_answer_close(self):
        clients = [self.open_session("alice", "d%d" % i)[0] for i in range(2)]
        since = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        for client in clients:                          # read the close, do not answer
            frame = client.recv_frame()
            self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
            code, reason = parse_close_payload(frame.payload)
            self.assertEqual((code, check_server_close(code, reason)), SHUTDOWN)
        self.assert_exits_zero_in_time(since)

    def test_shutdown_closes_are_logged(self):
        self.open_session("alice", "d1")
        self.server.send_signal(signal.SIGTERM)
        self.assert_exits_zero_in_time(time.monotonic())
        closes = self.server.log_lines("session_close")
        self.assertEqual(len(closes), 1, self.server.log())
        self.assertRegex(closes[0], r"(^|\s)code=1001(\s|$)")

    def test_websockets_client_sees_close_1001(self):
        async def scenario():
            ws = await ws_connect(self.server.port, token=TOKENS["alice"], device="d1")
            await ws_recv_json(ws)                      # welcome
            self.server.send_signal(signal.SIGTERM)
            return await ws_closed(ws)
        self.assertEqual(run_async(scenario()), SHUTDOWN)
        self.assert_exits_zero_in_time(time.monotonic())


if __name__ == "__main__":
    main()

"""Handshakes that cost others nothing: a connection that never finishes its
handshake is dropped after limits.handshake_timeout_ms and never counts as a
session, and limits.max_per_ip caps the sessions of one client address (as
resolved through proxy.trusted) with 429 / close 1013."""

import socket
import time

from wsgate_harness import HOST, TOKENS, WsgateTestCase, main


class HandshakeTimeoutTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(limits={"handshake_timeout_ms": 1000})

    def silent(self):
        sock = socket.create_connection((HOST, self.server.port))
        self.addCleanup(sock.close)
        sock.settimeout(6)
        return sock

    def test_silent_connection_dropped_after_the_timeout(self):
        sock = self.silent()
        started = time.monotonic()
        self.assertEqual(sock.recv(100), b"")       # EOF, no response
        waited = time.monotonic() - started
        self.assertGreater(waited, 0.8)
        self.assertLess(waited, 3.5)

    def test_headers_a_byte_at_a_time_dropped(self):
        sock = self.silent()
        request = b"GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" % TOKENS["alice"].encode()
        started = time.monotonic()
        closed = False
        for byte in request:
            try:
                sock.send(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > 6:
                break
        if not closed:
            sock.settimeout(3)
            try:
                closed = sock.recv(100) == b""
            except OSError:
                closed = True
        self.assertTrue(closed, "a byte-a-time handshake was still open after %.1fs"
                        % (time.monotonic() - started))
        self.assertLess(time.monotonic() - started, 6)

    def test_stalled_handshakes_delay_nobody_and_are_no_sessions(self):
        stalled = [self.silent() for _ in range(50)]
        client, _ = self.open_session("alice", "d1")         # admitted at once meanwhile
        self.assert_alive(client)
        health = self.http("GET", "/healthz")
        self.assertEqual(health.body, b'{"status":"ok","sessions":1}')
        for sock in stalled:
            self.assertEqual(sock.recv(100), b"")
        self.assert_alive(client)


class PerAddressLimitTest(WsgateTestCase):

    def test_third_session_from_one_address_refused_with_429(self):
        self.start_server(limits={"max_per_ip": 2})
        first, _ = self.open_session("alice", "a")
        self.open_session("bob", "b")
        client, response = self.connect(TOKENS["alice"], device="c")
        self.assert_http_reject(response, "HTTP/1.1 429 Too Many Requests", 1013,
                                "too many connections from this address")
        self.close_by_client(first)
        self.server.wait_for_log(r"event=session_close\b.*device=a\b")
        self.open_session("alice", "c")                      # a place is free again
        self.assertEqual(self.metrics()['wsgate_handshakes_total{outcome="per_address_limit"}'], 1)

    def test_close_mode_refuses_with_1013(self):
        self.start_server(limits={"max_per_ip": 1}, auth={"reject": "close"})
        self.open_session("alice", "a")
        client, response = self.connect(TOKENS["bob"], device="b")
        self.assert_close_reject(client, response, 1013, "too many connections from this address")

    def test_clients_behind_a_trusted_proxy_counted_apart(self):
        self.start_server(limits={"max_per_ip": 1}, proxy={"trusted": ["127.0.0.1"]})
        for i in range(3):
            self.open_session("alice", "p%d" % i, headers={
                "Authorization": "Bearer " + TOKENS["alice"], "X-Forwarded-For": "198.51.100.%d" % i})
        client, response = self.connect(TOKENS["bob"], device="x", headers={
            "Authorization": "Bearer " + TOKENS["bob"], "X-Forwarded-For": "198.51.100.0"})
        self.assertEqual(response.status, 429, repr(response))


if __name__ == "__main__":
    main()

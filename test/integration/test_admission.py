"""Handshake admission: token, origin, device id, capacity, path, welcome.

The same refusal cases run in both auth.reject modes:
  * "http":  HTTP error status with a JSON body {"code":N,"reason":"..."};
  * "close": 101, then a close frame (N, reason) as the first frame.
"""

import re

import websockets

from wsgate_harness import (TOKENS, WsgateTestCase, main, run_async, ws_closed,
                            ws_connect, ws_recv_json)

FORBIDDEN = "HTTP/1.1 403 Forbidden"
BAD_REQUEST = "HTTP/1.1 400 Bad Request"
UNAVAILABLE = "HTTP/1.1 503 Service Unavailable"
NOT_FOUND = "HTTP/1.1 404 Not Found"

ALLOWED_ORIGIN = "https://app.example.com"
DEVICE_CHARS_64 = ("AZaz09._:-" * 7)[:64]


class RefusalCases:
    """Refusal tests shared by both modes; subclasses set REJECT and
    implement assert_refused(client, response, status_line, code, reason)."""

    REJECT = None

    def start(self, **overrides):
        auth = dict({"reject": self.REJECT}, **overrides.pop("auth", {}))
        return self.start_server(auth=auth, **overrides)

    def refuse(self, status_line, code, reason, **connect):
        client, response = self.connect(**connect)
        self.assert_refused(client, response, status_line, code, reason)

    def test_missing_token_refused(self):
        self.start()
        self.refuse(FORBIDDEN, 4003, "missing token", device="d1")

    def test_unknown_query_token_refused(self):
        self.start()
        self.refuse(FORBIDDEN, 4003, "invalid token", token="mallory-secret", device="d1")

    def test_unknown_bearer_token_refused(self):
        self.start()
        self.refuse(FORBIDDEN, 4003, "invalid token", device="d1",
                    headers={"Authorization": "Bearer mallory-secret"})

    def test_origin_not_in_allow_list_refused(self):
        self.start(auth={"origins": [ALLOWED_ORIGIN]})
        self.refuse(FORBIDDEN, 4003, "origin not allowed", token=TOKENS["alice"], device="d1",
                    headers={"Origin": "https://evil.example.com"})

    def test_device_id_longer_than_64_bytes_refused(self):
        self.start()
        self.refuse(BAD_REQUEST, 4000, "invalid device id",
                    token=TOKENS["alice"], device=DEVICE_CHARS_64 + "x")

    def test_device_id_with_forbidden_characters_refused(self):
        self.start()
        for device in ["d 1", "d/1", "d!1", "dev\u00e9", "d1;x", "d1+x"]:
            with self.subTest(device=device):
                self.refuse(BAD_REQUEST, 4000, "invalid device id",
                            token=TOKENS["alice"], device=device)

    def test_capacity_reached_refused(self):
        self.start(sessions={"max": 2})
        self.open_session("alice", "c1")
        self.open_session("bob", "c2")
        self.refuse(UNAVAILABLE, 1013, "server at capacity", token=TOKENS["alice"], device="c3")

    def test_capacity_freed_after_session_closes(self):
        self.start(sessions={"max": 1})
        first, _ = self.open_session("alice", "c1")
        self.refuse(UNAVAILABLE, 1013, "server at capacity", token=TOKENS["bob"], device="c2")
        self.close_by_client(first)
        second, _ = self.open_session("bob", "c2")
        self.assert_alive(second)

    def test_wrong_path_is_404(self):
        self.start()
        client, response = self.connect(token=TOKENS["alice"], device="d1", path="/nope")
        self.assertEqual(response.status_line, NOT_FOUND, repr(response))

    def test_refusal_is_logged_without_token(self):
        self.start()
        self.refuse(FORBIDDEN, 4003, "invalid token", token="mallory-secret", device="d1")
        self.refuse(FORBIDDEN, 4003, "invalid token", device="d1",
                    headers={"Authorization": "Bearer mallory-secret"})
        self.assertNotIn("mallory-secret", self.server.log())


class SubprotocolTest(WsgateTestCase):
    """lws would drop an upgrade that names only other subprotocols with a bare
    TCP close; wsgate answers 400 with the reason, in both reject modes."""

    def check(self, reject):
        self.start_server(auth={"reject": reject})
        client, response = self.connect(TOKENS["alice"], "d1",
                                        headers={"Sec-WebSocket-Protocol": "chat, mqtt"})
        self.assert_http_reject(response, BAD_REQUEST, 4000,
                                "unsupported subprotocol (offer wsgate or none)")
        client, response = self.connect(TOKENS["alice"], "d1",
                                        headers={"Sec-WebSocket-Protocol": "chat, wsgate"})
        self.assertEqual(response.status, 101)
        self.assertEqual(response.headers.get("sec-websocket-protocol"), "wsgate")

    def test_refused_400_with_reject_http(self):
        self.check("http")

    def test_refused_400_with_reject_close(self):
        self.check("close")


class AdmissionHttpRejectTest(RefusalCases, WsgateTestCase):
    REJECT = "http"

    def assert_refused(self, client, response, status_line, code, reason):
        self.assert_http_reject(response, status_line, code, reason)

    def test_websockets_client_sees_403(self):
        self.start()

        async def scenario():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as ctx:
                await ws_connect(self.server.port, token="mallory-secret", device="d1")
            return ctx.exception.status_code
        self.assertEqual(run_async(scenario()), 403)


class AdmissionCloseRejectTest(RefusalCases, WsgateTestCase):
    REJECT = "close"

    def assert_refused(self, client, response, status_line, code, reason):
        self.assert_close_reject(client, response, code, reason)

    def test_websockets_client_sees_close_4003(self):
        self.start()

        async def scenario():
            ws = await ws_connect(self.server.port, token="mallory-secret", device="d1")
            return await ws_closed(ws)
        self.assertEqual(run_async(scenario()), (4003, "invalid token"))


class AdmittedTest(WsgateTestCase):

    def test_query_token_welcome_is_exact(self):
        self.start_server()
        self.open_session("alice", "d1")        # checks the exact welcome text

    def test_bearer_header_token_admitted(self):
        self.start_server()
        client, _ = self.open_session("bob", "d1",
                                      headers={"Authorization": "Bearer " + TOKENS["bob"]})
        self.assert_alive(client)

    def test_welcome_heartbeat_ms_is_configured_interval(self):
        self.start_server(heartbeat={"interval_ms": 1234, "timeout_ms": 5000})
        self.open_session("alice", "d1")

    def test_device_is_optional(self):
        self.start_server()
        client, response = self.connect(token=TOKENS["alice"])
        self.assert_upgraded(response)
        welcome = client.recv_json()
        self.assertEqual((welcome["type"], welcome["user"]), ("welcome", "alice"), welcome)
        self.assertRegex(welcome["session"], r"^[0-9a-f]{16}$")

    def test_device_id_of_64_allowed_characters_admitted(self):
        self.start_server()
        self.open_session("alice", DEVICE_CHARS_64)

    def test_session_ids_are_unique(self):
        self.start_server()
        ids = {self.open_session("alice", "d%d" % i)[1] for i in range(5)}
        self.assertEqual(len(ids), 5)

    def test_allowed_origin_admitted(self):
        self.start_server(auth={"origins": [ALLOWED_ORIGIN]})
        self.open_session("alice", "d1", headers={"Origin": ALLOWED_ORIGIN,
                                                  "Authorization": "Bearer " + TOKENS["alice"]})

    def test_missing_origin_admitted_with_allow_list(self):
        self.start_server(auth={"origins": [ALLOWED_ORIGIN]})
        self.open_session("alice", "d1")

    def test_any_origin_admitted_without_allow_list(self):
        self.start_server()
        self.open_session("alice", "d1", headers={"Origin": "https://elsewhere.example.org",
                                                  "Authorization": "Bearer " + TOKENS["alice"]})

    def test_session_open_is_logged(self):
        self.start_server()
        _, session = self.open_session("alice", "d1")
        line = self.server.wait_for_log(r"event=session_open\b.*session=%s\b" % session)
        for field in ("user=alice", "device=d1", "peer=127.0.0.1"):
            self.assertRegex(line, r"(^|\s)%s(\s|$)" % re.escape(field))

    def test_websockets_client_receives_welcome(self):
        self.start_server()

        async def scenario():
            ws = await ws_connect(self.server.port, token=TOKENS["alice"], device="d1")
            welcome = await ws_recv_json(ws)
            await ws.close()
            return welcome
        welcome = run_async(scenario())
        self.assertEqual(set(welcome), {"type", "session", "user", "device", "heartbeat_ms"})
        self.assertEqual((welcome["type"], welcome["user"], welcome["device"], welcome["heartbeat_ms"]),
                         ("welcome", "alice", "d1", 25000))


if __name__ == "__main__":
    main()

"""The backend HTTP API on the WebSocket port (/api/publish, /api/send,
/api/disconnect, /api/sessions, /api/close-codes), its errors (400, 401, 404,
405, 413), /healthz and /metrics."""

import json
import signal
import struct
import time

from wsgate_harness import (OP_CLOSE, TOKENS, WsgateTestCase, check_server_close, main,
                            parse_close_payload)

API_KEY = "test-backend-api-key-0123"
OTHER_KEY = "second-backend-key-abcdef"
MAX_BODY = 1024
GRACE_MS = 3000


def api_tokens():
    return [{"token": token, "user": user, "subscribe": ["news", "chat.*"],
             "publish": ["chat.*"], "send": ["*"]} for user, token in TOKENS.items()]


def now_ms():
    return int(time.time() * 1000)


class ApiTestBase(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(tokens=api_tokens(), shutdown={"grace_ms": GRACE_MS},
                          api={"keys": [API_KEY, OTHER_KEY], "max_body_bytes": MAX_BODY})

    def api(self, method, path, body=None, key=API_KEY, headers=None):
        return self.http(method, path, body, headers=headers, api_key=key)

    def assert_json_response(self, response, status, body=None):
        """Status, JSON media type; the exact body text when given. Returns the parsed body."""
        self.assertEqual(response.status, status, repr(response))
        self.assertEqual(response.media_type(), "application/json", repr(response))
        if body is not None:
            self.assertEqual(response.body.decode("utf-8"), body, repr(response))
        return json.loads(response.body)

    def assert_api_error(self, response, status, *words):
        """A JSON {"error": "..."} with this status whose text names ``words``."""
        parsed = self.assert_json_response(response, status)
        self.assertEqual(list(parsed), ["error"], repr(response))
        self.assertIsInstance(parsed["error"], str)
        for word in words:
            self.assertIn(word, parsed["error"], repr(response))
        return parsed["error"]

    def subscribe(self, client, channel):
        client.send_text(json.dumps({"type": "subscribe", "channel": channel}))
        self.assertRegex(client.recv_text(), r'^\{"type":"ack","epoch":"[0-9a-f]{16}","seq":\d+\}$')


class ApiMessagingTest(ApiTestBase):

    def setUp(self):
        super().setUp()
        self.started_ms = now_ms()
        self.a1, self.a1_id = self.open_session("alice", "a1")
        self.a2, self.a2_id = self.open_session("alice", "a2")
        self.bob, self.bob_id = self.open_session("bob", "b1")

    # -- publish ---------------------------------------------------------------
    def test_publish_reaches_exactly_the_subscribed_sessions(self):
        self.subscribe(self.a1, "news")
        self.subscribe(self.bob, "news")
        self.subscribe(self.a2, "chat.x")
        since = now_ms()
        response = self.api("POST", "/api/publish", {"channel": "news", "data": {"h": [1, "é"]}})
        self.assert_json_response(response, 200, '{"delivered":2,"seq":1}')
        for client in (self.a1, self.bob):
            text = client.recv_text()
            self.assertRegex(text, r'^\{"type":"message","channel":"news","from":null,'
                                   r'"data":\{"h":\[1,"(é|\\u00e9)"\]\},"seq":1,"ts":\d+\}$')
            ts = json.loads(text)["ts"]
            self.assertTrue(since - 5 <= ts <= now_ms() + 5, text)
        for client in (self.a1, self.a2, self.bob):
            client.expect_silence(0.15)

    def test_publish_without_subscribers_delivers_0(self):
        # still numbered and kept: history is on by default (test_history.py)
        self.assert_json_response(self.api("POST", "/api/publish", {"channel": "news", "data": 1}),
                                  200, '{"delivered":0,"seq":1}')
        self.a1.expect_silence(0.1)

    def test_publish_needs_no_permission_and_shares_seq_with_clients(self):
        self.subscribe(self.a2, "chat.x")
        self.a1.send_text('{"type":"publish","channel":"chat.x","data":"c1"}')
        self.assertEqual(self.a1.recv_text(), '{"type":"ack","delivered":1}')
        self.assert_json_response(self.api("POST", "/api/publish",
                                           {"channel": "chat.x", "data": "api"}),
                                  200, '{"delivered":1,"seq":2}')
        self.a1.send_text('{"type":"publish","channel":"chat.x","data":"c2"}')
        self.assertEqual(self.a1.recv_text(), '{"type":"ack","delivered":1}')
        got = [json.loads(self.a2.recv_text()) for _ in range(3)]
        self.assertEqual([(m["from"], m["data"], m["seq"]) for m in got],
                         [("alice", "c1", 1), (None, "api", 2), ("alice", "c2", 3)])

    def test_publish_to_a_channel_no_client_may_use(self):
        """The API is not bound by token permissions (nobody can subscribe to
        it, so 0), but the name must be valid."""
        self.assert_json_response(self.api("POST", "/api/publish",
                                           {"channel": "internal.ops", "data": 1}),
                                  200, '{"delivered":0,"seq":1}')

    # -- send --------------------------------------------------------------------
    def test_send_reaches_every_session_of_the_user(self):
        since = now_ms()
        response = self.api("POST", "/api/send", {"user": "alice", "data": {"n": 1}})
        self.assert_json_response(response, 200, '{"delivered":2}')
        for client in (self.a1, self.a2):
            text = client.recv_text()
            self.assertRegex(text, r'^\{"type":"message","from":null,"to":"alice",'
                                   r'"data":\{"n":1\},"ts":\d+\}$')
            self.assertTrue(since - 5 <= json.loads(text)["ts"] <= now_ms() + 5, text)
        self.bob.expect_silence(0.15)

    def test_send_to_user_without_session_delivers_0(self):
        self.assert_json_response(self.api("POST", "/api/send", {"user": "carol", "data": 1}),
                                  200, '{"delivered":0}')

    # -- disconnect --------------------------------------------------------------
    def test_disconnect_device_closes_with_code_and_reason_on_the_wire(self):
        response = self.api("POST", "/api/disconnect",
                            {"user": "alice", "device": "a1", "code": 4321, "reason": "go away"})
        self.assert_json_response(response, 200, '{"closed":1}')
        frame = self.a1.recv_frame()
        self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
        self.assertEqual(frame.payload, struct.pack("!H", 4321) + b"go away")
        self.a1.send_close(4321)
        self.a1.expect_eof()
        # only that device
        self.assert_alive(self.a2)
        self.assert_alive(self.bob)
        line = self.server.wait_for_log(r"event=session_close\b.*device=a1\b")
        self.assertRegex(line, r'code=4321 reason="go away" by=server')
        listed = json.loads(self.api("GET", "/api/sessions").body)["sessions"]
        self.assertEqual(sorted(s["device"] for s in listed), ["a2", "b1"])

    def test_disconnect_user_closes_every_session_of_the_user(self):
        response = self.api("POST", "/api/disconnect", {"user": "alice", "code": 4005})
        self.assert_json_response(response, 200, '{"closed":2}')
        for client in (self.a1, self.a2):
            self.assertEqual(client.expect_close(), (4005, "disconnected by the application"))
        self.assert_alive(self.bob)

    def test_disconnect_without_reason_uses_the_table_or_the_default(self):
        self.assert_json_response(self.api("POST", "/api/disconnect",
                                           {"user": "alice", "device": "a1", "code": 4444}),
                                  200, '{"closed":1}')
        self.assertEqual(self.a1.expect_close(), (4444, "disconnected by the application"))
        self.assert_json_response(self.api("POST", "/api/disconnect",
                                           {"user": "bob", "code": 4100}),
                                  200, '{"closed":1}')
        self.assertEqual(self.bob.expect_close(), (4100, "heartbeat timeout"))

    def test_disconnect_range_ends_inclusive(self):
        for device, code in (("a1", 4000), ("a2", 4999)):
            self.assert_json_response(self.api("POST", "/api/disconnect",
                                               {"user": "alice", "device": device, "code": code,
                                                "reason": "r%d" % code}),
                                      200, '{"closed":1}')
        self.assertEqual(self.a1.expect_close(), (4000, "r4000"))
        self.assertEqual(self.a2.expect_close(), (4999, "r4999"))

    def test_disconnect_long_reason_is_cut_to_123_bytes_on_a_character_boundary(self):
        reason = "é" * 100                                    # 200 bytes
        self.assert_json_response(self.api("POST", "/api/disconnect",
                                           {"user": "bob", "code": 4010, "reason": reason}),
                                  200, '{"closed":1}')
        frame = self.bob.recv_frame()
        self.assertEqual(frame.opcode, OP_CLOSE)
        code, raw_reason = parse_close_payload(frame.payload)
        text = check_server_close(code, raw_reason)            # <= 123 bytes, valid UTF-8
        self.assertEqual(code, 4010)
        self.assertEqual(text, "é" * 61)

    def test_disconnect_unknown_user_or_device_closes_nothing(self):
        self.assert_json_response(self.api("POST", "/api/disconnect",
                                           {"user": "carol", "code": 4005}), 200, '{"closed":0}')
        self.assert_json_response(self.api("POST", "/api/disconnect",
                                           {"user": "alice", "device": "zz", "code": 4005}),
                                  200, '{"closed":0}')
        for client in (self.a1, self.a2, self.bob):
            self.assert_alive(client)

    def test_disconnect_code_outside_4000_4999_is_400(self):
        for code in (1000, 1001, 3999, 5000, 65535, -4005, "4005", 4005.5, None, True):
            with self.subTest(code=code):
                response = self.api("POST", "/api/disconnect",
                                    {"user": "alice", "device": "a1", "code": code})
                self.assert_api_error(response, 400, "code")
        response = self.api("POST", "/api/disconnect", {"user": "alice"})
        self.assert_api_error(response, 400, "code")
        self.assert_alive(self.a1)

    def test_disconnect_bad_fields_are_400(self):
        cases = [({"code": 4005}, "user"),
                 ({"user": 1, "code": 4005}, "user"),
                 ({"user": "alice", "device": 1, "code": 4005}, "device"),
                 ({"user": "alice", "code": 4005, "reason": 5}, "reason")]
        for body, word in cases:
            with self.subTest(body=body):
                self.assert_api_error(self.api("POST", "/api/disconnect", body), 400, word)
        self.assert_alive(self.a1)

    # -- sessions ------------------------------------------------------------------
    def test_sessions_listing(self):
        self.subscribe(self.a1, "news")
        self.subscribe(self.a1, "chat.x")
        self.subscribe(self.bob, "chat.x")
        nodev, nodev_id = self.open_session("bob", "")
        response = self.api("GET", "/api/sessions")
        parsed = self.assert_json_response(response, 200)
        self.assertEqual(list(parsed), ["sessions"])
        listed = {s["session"]: s for s in parsed["sessions"]}
        self.assertEqual(len(parsed["sessions"]), 4, response.body)
        expected = {self.a1_id: ("alice", "a1", ["chat.x", "news"]),
                    self.a2_id: ("alice", "a2", []),
                    self.bob_id: ("bob", "b1", ["chat.x"]),
                    nodev_id: ("bob", "", [])}
        self.assertEqual(set(listed), set(expected))
        for sid, (user, device, channels) in expected.items():
            entry = listed[sid]
            self.assertEqual(list(entry), ["session", "user", "device", "peer", "since", "channels"])
            self.assertEqual((entry["user"], entry["device"], entry["peer"]),
                             (user, device, "127.0.0.1"))
            self.assertEqual(sorted(entry["channels"]), channels)
            self.assertIsInstance(entry["since"], int)
            self.assertTrue(self.started_ms - 5 <= entry["since"] <= now_ms() + 5, entry)

    def test_sessions_listing_follows_unsubscribe_and_close(self):
        self.subscribe(self.a1, "news")
        self.a1.send_text('{"type":"unsubscribe","channel":"news"}')
        self.assertEqual(self.a1.recv_text(), '{"type":"ack"}')
        self.close_by_client(self.a2)
        self.server.wait_for_log(r"event=session_close\b.*device=a2\b")
        listed = json.loads(self.api("GET", "/api/sessions").body)["sessions"]
        self.assertEqual(sorted((s["device"], s["channels"]) for s in listed),
                         [("a1", []), ("b1", [])])

    # -- metrics ---------------------------------------------------------------------
    def test_metrics_messages_in_and_out(self):
        self.subscribe(self.a2, "chat.x")
        before = self.metrics()
        text = '{"type":"publish","channel":"chat.x","data":"xyz"}'
        self.a1.send_text(text)
        ack = self.a1.recv_text()
        delivery = self.a2.recv_text()
        after = self.metrics()
        self.assertEqual(after["wsgate_messages_received_total"]
                         - before["wsgate_messages_received_total"], 1)
        self.assertEqual(after["wsgate_bytes_received_total"]
                         - before["wsgate_bytes_received_total"], len(text))
        self.assertEqual(after["wsgate_messages_sent_total"]
                         - before["wsgate_messages_sent_total"], 2)
        self.assertEqual(after["wsgate_bytes_sent_total"] - before["wsgate_bytes_sent_total"],
                         len(ack.encode()) + len(delivery.encode()))
        self.assertEqual(after["wsgate_sessions_open"], 3)

    def test_metrics_api_requests_counted(self):
        before = self.metrics()["wsgate_api_requests_total"]
        self.api("GET", "/api/sessions")
        self.api("GET", "/api/sessions", key="wrong-key-wrong-key-wrong")
        self.api("POST", "/api/send", {"user": "x", "data": 1})
        self.http("GET", "/healthz")
        self.assertEqual(self.metrics()["wsgate_api_requests_total"] - before, 3)

    def test_metrics_closes_by_code_after_4001_and_disconnect(self):
        before = self.metrics()
        client, response = self.connect(TOKENS["alice"], "a1")     # repeat: 4001
        self.assert_close_reject(client, response, 4001, "repeat connect channel")
        self.api("POST", "/api/disconnect", {"user": "bob", "code": 4321})
        self.assertEqual(self.bob.expect_close(), (4321, "disconnected by the application"))
        self.server.wait_for_log(r"event=session_close\b.*code=4321\b")
        after = self.metrics()
        for key in ('wsgate_closes_total{code="4001"}', 'wsgate_closes_total{code="4321"}'):
            self.assertEqual(after.get(key, 0) - before.get(key, 0), 1, key)
        outcome = 'wsgate_handshakes_total{outcome="repeat_connect"}'
        self.assertEqual(after[outcome] - before[outcome], 1)
        self.assertEqual(after["wsgate_sessions_open"], 2)

    def test_health_counts_sessions(self):
        self.assert_json_response(self.http("GET", "/healthz"), 200,
                                  '{"status":"ok","sessions":3}')


class ApiTest(ApiTestBase):

    # -- auth ------------------------------------------------------------------------
    def test_missing_or_wrong_key_is_401_with_www_authenticate(self):
        cases = [None, "wrong-key-wrong-key-wrong", API_KEY + "x", API_KEY[:-1], ""]
        for key in cases:
            for method, path, body in (("GET", "/api/sessions", None),
                                       ("GET", "/api/close-codes", None),
                                       ("POST", "/api/publish", {"channel": "news", "data": 1}),
                                       ("POST", "/api/disconnect", {"user": "a", "code": 4005})):
                with self.subTest(key=key, path=path):
                    response = self.api(method, path, body, key=key)
                    self.assert_api_error(response, 401)
                    self.assertTrue(response.headers.get("www-authenticate", "")
                                    .startswith("Bearer"), repr(response))

    def test_non_bearer_authorization_is_401(self):
        for value in ("Basic " + API_KEY, API_KEY, "Bearer"):
            with self.subTest(value=value):
                response = self.http("GET", "/api/sessions", headers={"Authorization": value})
                self.assert_api_error(response, 401)

    def test_both_keys_accepted(self):
        for key in (API_KEY, OTHER_KEY):
            self.assert_json_response(self.api("GET", "/api/sessions", key=key), 200,
                                      '{"sessions":[]}')

    def test_unauthorized_disconnect_closes_nothing(self):
        client, _ = self.open_session("alice", "a1")
        self.assert_api_error(self.api("POST", "/api/disconnect",
                                       {"user": "alice", "code": 4005}, key="nope-nope-nope-nope"),
                              401)
        self.assert_alive(client)

    # -- routes and methods ------------------------------------------------------------
    def test_unknown_route_is_404(self):
        for path in ("/api/nope", "/api", "/api/", "/api/publish/x", "/API/sessions", "/metricsx"):
            for method in ("GET", "POST"):
                with self.subTest(method=method, path=path):
                    self.assert_api_error(self.api(method, path, {} if method == "POST" else None),
                                          404)

    def test_wrong_method_is_405(self):
        cases = [("GET", "/api/publish"), ("GET", "/api/send"), ("GET", "/api/disconnect"),
                 ("POST", "/api/sessions"), ("POST", "/api/close-codes"),
                 ("POST", "/healthz"), ("POST", "/metrics"),
                 ("PUT", "/api/publish"), ("DELETE", "/api/sessions")]
        for method, path in cases:
            with self.subTest(method=method, path=path):
                body = {"channel": "news", "data": 1} if method in ("POST", "PUT") else None
                self.assert_api_error(self.api(method, path, body), 405)

    def test_body_over_max_body_bytes_is_413(self):
        body = json.dumps({"channel": "news", "data": "x" * (MAX_BODY + 10)})
        self.assert_api_error(self.api("POST", "/api/publish", body), 413)
        exact = json.dumps({"channel": "news", "data": ""})
        exact = exact[:-1] + " " * (MAX_BODY - len(exact)) + "}"
        self.assertEqual(len(exact), MAX_BODY)
        self.assert_json_response(self.api("POST", "/api/publish", exact), 200, '{"delivered":0,"seq":1}')
        over = exact[:-1] + " }"
        self.assert_api_error(self.api("POST", "/api/publish", over), 413)

    def test_413_does_not_deliver(self):
        client, _ = self.open_session("alice", "a1")
        self.subscribe(client, "news")
        body = json.dumps({"channel": "news", "data": "x" * (MAX_BODY * 4)})
        self.assert_api_error(self.api("POST", "/api/publish", body), 413)
        client.expect_silence(0.15)
        self.assert_alive(client)

    # -- bad bodies ----------------------------------------------------------------------
    def test_invalid_json_is_400(self):
        for path in ("/api/publish", "/api/send", "/api/disconnect"):
            for body in ("{", "not json", '{"channel":"news","data":1,}', "",
                         '{"a":1,"a":2}'):
                with self.subTest(path=path, body=body):
                    self.assert_api_error(self.api("POST", path, body), 400, "JSON")

    def test_non_object_body_is_400(self):
        for path in ("/api/publish", "/api/send", "/api/disconnect"):
            for body in ("[]", "[1]", '"news"', "1", "null"):
                with self.subTest(path=path, body=body):
                    self.assert_api_error(self.api("POST", path, body), 400, "object")

    def test_publish_bad_fields_are_400(self):
        cases = [({"data": 1}, "channel"),
                 ({"channel": 1, "data": 1}, "channel"),
                 ({"channel": "", "data": 1}, "channel"),
                 ({"channel": "a..b", "data": 1}, "channel"),
                 ({"channel": "chat.*", "data": 1}, "channel"),
                 ({"channel": "a" * 129, "data": 1}, "channel"),
                 ({"channel": "news"}, "data")]
        for body, word in cases:
            with self.subTest(body=body):
                self.assert_api_error(self.api("POST", "/api/publish", body), 400, word)

    def test_send_bad_fields_are_400(self):
        for body, word in [({"data": 1}, "user"), ({"user": 5, "data": 1}, "user"),
                           ({"user": "", "data": 1}, "user"), ({"user": "alice"}, "data")]:
            with self.subTest(body=body):
                self.assert_api_error(self.api("POST", "/api/send", body), 400, word)

    def test_chunked_request_body_is_read_or_refused_with_411(self):
        """A chunked POST must not be answered as if its body were empty."""
        client, _ = self.open_session("alice", "a1")
        self.subscribe(client, "news")
        body = b'{"channel":"news","data":"chunked"}'
        request = (b"POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                   b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
                   b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        raw = self.raw()
        raw.send_raw(request)
        response = raw.read_http_response()
        self.assertIn(response.status, (200, 411), repr(response))
        if response.status == 200:
            self.assertEqual(response.body, b'{"delivered":1,"seq":1}')
        # the connection is then either usable or closed, never stuck
        try:
            raw.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(raw.read_http_response().status, 200)
        except (EOFError, OSError):
            pass
        self.assert_alive(client)

    def test_keep_alive_connection_serves_several_requests(self):
        client, _ = self.open_session("alice", "a1")
        self.subscribe(client, "news")
        raw = self.raw()

        def request(method, path, body=b""):
            raw.send_raw(("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                          "Content-Length: %d\r\n\r\n" % (method, path, API_KEY, len(body)))
                         .encode() + body)
            return raw.read_http_response()
        self.assertEqual(request("POST", "/api/publish", b'{"channel":"news","data":1}').body,
                         b'{"delivered":1,"seq":1}')
        self.assertEqual(request("GET", "/api/sessions").status, 200)
        self.assertEqual(request("POST", "/api/publish", b'{"channel":"news","data":2}').body,
                         b'{"delivered":1,"seq":2}')
        self.assertEqual([json.loads(client.recv_text())["data"] for _ in range(2)], [1, 2])
        # an oversized body is refused from its Content-Length, unread, and the
        # connection closed (the body would otherwise follow as a request)
        self.assertEqual(request("POST", "/api/publish", b"x" * (MAX_BODY + 1)).status, 413)
        with self.assertRaises((EOFError, OSError)):
            request("GET", "/api/sessions")

    def test_bad_requests_leave_sessions_undisturbed(self):
        client, _ = self.open_session("alice", "a1")
        self.subscribe(client, "news")
        for body in ("{", "[]", '{"channel":"news"}', "x" * (MAX_BODY + 1)):
            self.api("POST", "/api/publish", body)
        self.api("GET", "/api/nope")
        self.api("POST", "/api/sessions", "{}")
        self.api("POST", "/api/disconnect", {"user": "alice", "code": 1000})
        client.expect_silence(0.15)
        self.assert_alive(client)
        self.assert_json_response(self.api("POST", "/api/publish",
                                           {"channel": "news", "data": "still"}),
                                  200, '{"delivered":1,"seq":1}')
        self.assertEqual(json.loads(client.recv_text())["data"], "still")

    # -- close codes ---------------------------------------------------------------------
    def test_close_codes_listing(self):
        parsed = self.assert_json_response(self.api("GET", "/api/close-codes"), 200)
        self.assertEqual(list(parsed), ["close_codes", "ranges"])
        codes = {c["code"]: c for c in parsed["close_codes"]}
        for entry in parsed["close_codes"]:
            self.assertEqual(list(entry), ["code", "reason", "advice", "meaning"], entry)
            self.assertIn(entry["advice"], ("do not reconnect unchanged", "reconnect with backoff",
                                            "reconnect at once"), entry)
            self.assertTrue(entry["meaning"], entry)
        expected = {
            4001: ("repeat connect channel", "do not reconnect unchanged"),
            4005: ("disconnected by the application", "do not reconnect unchanged"),
            4100: ("heartbeat timeout", "reconnect with backoff"),
            4108: ("rate limited", "reconnect with backoff"),
            4109: ("slow consumer", "reconnect with backoff"),
            1001: ("server shutting down", "reconnect with backoff"),
        }
        for code, (reason, advice) in expected.items():
            with self.subTest(code=code):
                self.assertIn(code, codes)
                self.assertEqual((codes[code]["reason"], codes[code]["advice"]), (reason, advice))
        self.assertEqual(parsed["ranges"], [
            {"codes": "4000-4099", "advice": "do not reconnect unchanged"},
            {"codes": "4100-4199", "advice": "reconnect with backoff"},
            {"codes": "4200-4299", "advice": "reconnect at once"}])

    # -- metrics -------------------------------------------------------------------------
    def test_metrics_text_format_and_names(self):
        response = self.http("GET", "/metrics")
        self.assertEqual(response.status, 200, repr(response))
        self.assertEqual(response.media_type(), "text/plain", repr(response))
        text = response.body.decode("utf-8")
        for line in text.splitlines():
            self.assertRegex(line, r'^(# (HELP|TYPE) wsgate_\w+ .+|wsgate_\w+(\{\w+="[^"]*"\})? \d+)$')
        values = self.metrics()
        names = ["wsgate_sessions_open", "wsgate_messages_received_total",
                 "wsgate_messages_sent_total", "wsgate_bytes_received_total",
                 "wsgate_bytes_sent_total", "wsgate_heartbeat_timeouts_total",
                 "wsgate_slow_consumers_total", "wsgate_rate_limited_total",
                 "wsgate_api_requests_total"]
        names += ['wsgate_handshakes_total{outcome="%s"}' % o for o in (
            "admitted", "missing_token", "invalid_token", "origin_not_allowed", "invalid_device",
            "at_capacity", "shutting_down", "repeat_connect")]
        for name in names:
            self.assertIn(name, values)
        self.assertIn("# TYPE wsgate_sessions_open gauge", text)
        self.assertIn("# TYPE wsgate_handshakes_total counter", text)

    def test_metrics_need_no_key(self):
        self.assertEqual(self.http("GET", "/metrics").status, 200)
        self.assertEqual(self.http("GET", "/metrics", api_key="wrong-wrong-wrong-wrong").status,
                         200)

    def test_metrics_handshake_outcomes(self):
        before = self.metrics()
        self.open_session("alice", "a1")
        self.open_session("bob", "b1")
        self.assert_http_reject(self.connect("wrong-token", "d")[1], "HTTP/1.1 403 Forbidden",
                                4003, "invalid token")
        self.assert_http_reject(self.connect(None, "d")[1], "HTTP/1.1 403 Forbidden",
                                4003, "missing token")
        self.assert_http_reject(self.connect(TOKENS["alice"], "bad device!")[1],
                                "HTTP/1.1 400 Bad Request", 4000, "invalid device id")
        after = self.metrics()
        key = 'wsgate_handshakes_total{outcome="%s"}'
        for outcome, delta in (("admitted", 2), ("invalid_token", 1), ("missing_token", 1),
                               ("invalid_device", 1), ("repeat_connect", 0),
                               ("at_capacity", 0), ("shutting_down", 0)):
            with self.subTest(outcome=outcome):
                self.assertEqual(after[key % outcome] - before[key % outcome], delta)
        self.assertEqual(after["wsgate_sessions_open"], 2)

    def test_metrics_close_by_client_code(self):
        client, _ = self.open_session("alice", "a1")
        self.close_by_client(client, 4999, "client bye")
        self.server.wait_for_log(r"event=session_close\b.*code=4999\b")
        self.assertEqual(self.metrics().get('wsgate_closes_total{code="4999"}'), 1)
        self.assertEqual(self.metrics()["wsgate_sessions_open"], 0)

    # -- healthz ---------------------------------------------------------------------------
    def test_healthz_ok_without_key(self):
        self.assert_json_response(self.http("GET", "/healthz"), 200, '{"status":"ok","sessions":0}')
        self.open_session("alice", "a1")
        self.open_session("alice", "a2")
        self.assert_json_response(self.http("GET", "/healthz"), 200, '{"status":"ok","sessions":2}')

    def stall(self, client, channel="news", size=60000):
        """Make ``client`` (subscribed to ``channel``, reading nothing) stop the
        server's writes to it: publish until the kernel buffers are full and
        messages stay in the server's queue (wsgate_messages_sent_total stops)."""
        data = "x" * size
        published = 0
        baseline = self.metrics()["wsgate_messages_sent_total"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for _ in range(10):
                response = self.api("POST", "/api/publish", {"channel": channel, "data": data})
                self.assertEqual(self.assert_json_response(response, 200)["delivered"], 1)
                published += 1
            time.sleep(0.2)
            sent = self.metrics()["wsgate_messages_sent_total"] - baseline
            if published - sent >= 5:
                return
        self.fail("the server kept writing to a client that reads nothing")

    def test_healthz_503_during_shutdown(self):
        """While a session still holds the server in its grace period (its
        close frame cannot be written: the client reads nothing), /healthz is 503."""
        self.start_server(tokens=api_tokens(), shutdown={"grace_ms": GRACE_MS},
                          api={"keys": [API_KEY]},
                          limits={"max_queued_bytes": 64 * 1024 * 1024})
        stuck, _ = self.open_session("alice", "a1", rcvbuf=4096)
        self.subscribe(stuck, "news")
        self.assert_json_response(self.http("GET", "/healthz"), 200, '{"status":"ok","sessions":1}')
        self.stall(stuck)
        since = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        self.server.wait_for_log(r"event=shutdown\b")
        self.assert_json_response(self.http("GET", "/healthz"), 503, '{"status":"stopping"}')
        self.assertLess(time.monotonic() - since, GRACE_MS / 1000, "grace period over too soon")
        # new WebSocket clients are refused meanwhile
        _, response = self.connect(TOKENS["bob"], "b1")
        self.assert_http_reject(response, "HTTP/1.1 503 Service Unavailable", 1001,
                                "server shutting down")
        stuck.close()
        rc = self.server.wait(timeout=GRACE_MS / 1000 + 2)
        self.assertEqual(rc, 0, self.server.log())

if __name__ == "__main__":
    main()

"""What wsgate answers browsers over plain HTTP.

* http.root: www/ served by lws's own file mount on the ws and the wss
  listener, with lws's MIME types, and without shadowing the API, /healthz,
  /metrics, /close-codes or the WebSocket path (upgrades and plain GETs);
* the verdict query: a plain GET on websocket.path with the upgrade's query
  answers the very status and JSON body an HTTP refusal of that upgrade gets
  (426 with code 0 when it would be admitted), is counted in /metrics, never
  reveals a repeat connect, and carries CORS headers for allowed origins;
* GET /close-codes: the close-code table without an API key, byte for byte
  what GET /api/close-codes answers.
"""

import json
import os

from wsgate_harness import (TOKENS, CertsTestCase, WsgateTestCase, main, repo_root,
                            ws_query)

WWW = os.path.join(repo_root(), "www")
API_KEY = "browser-test-api-key-0123"


def read(name):
    with open(os.path.join(WWW, name), "rb") as f:
        return f.read()


class StaticFilesTest(WsgateTestCase):

    def start(self, **overrides):
        overrides.setdefault("http", {"root": WWW})
        overrides.setdefault("api", {"keys": [API_KEY]})
        return self.start_server(**overrides)

    def test_index_and_client_with_their_mime_types(self):
        self.start()
        for path, name, media_type in (("/", "index.html", "text/html"),
                                       ("/index.html", "index.html", "text/html"),
                                       ("/wsgate.js", "wsgate.js", "text/javascript")):
            with self.subTest(path=path):
                response = self.http("GET", path)
                self.assertEqual(response.status_line, "HTTP/1.1 200 OK", repr(response)[:300])
                self.assertEqual(response.media_type(), media_type)
                self.assertEqual(response.body, read(name))

    def test_relative_root_is_relative_to_the_config_file(self):
        # the harness writes the config into the work directory: link www/ beside it
        os.symlink(WWW, os.path.join(self.workdir, "site"))
        self.start(http={"root": "site"})
        response = self.http("GET", "/wsgate.js")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, read("wsgate.js"))

    def test_missing_file_and_traversal_get_wsgate_404(self):
        self.start()
        for path in ("/nope.html", "/../conf/wsgate.conf", "/%2e%2e/conf/wsgate.conf",
                     "/..%2fconf/wsgate.conf", "/favicon.ico"):
            with self.subTest(path=path):
                response = self.http("GET", path)
                self.assertEqual(response.status_line, "HTTP/1.1 404 Not Found", repr(response))
                self.assertEqual(response.body, b'{"error":"not found"}')

    def test_mount_shadows_no_route_of_wsgate(self):
        self.start()
        client, _ = self.open_session("alice", "d1")
        response = self.http("GET", "/healthz")
        self.assertEqual((response.status, response.body), (200, b'{"status":"ok","sessions":1}'))
        response = self.http("GET", "/metrics")
        self.assertEqual(response.status, 200)
        self.assertIn(b"\nwsgate_sessions_open 1\n", response.body)
        response = self.http("GET", "/api/sessions", api_key=API_KEY)
        self.assertEqual(response.status, 200, repr(response))
        self.assertEqual(len(json.loads(response.body)["sessions"]), 1)
        response = self.http("GET", "/api/sessions")
        self.assertEqual(response.status, 401, repr(response))
        response = self.http("POST", "/api/send", {"user": "alice", "data": "hi"}, api_key=API_KEY)
        self.assertEqual((response.status, response.body), (200, b'{"delivered":1}'), repr(response))
        self.assertEqual(json.loads(client.recv_text())["data"], "hi")
        response = self.http("POST", "/api/send", "{", api_key=API_KEY)
        self.assertEqual(response.status, 400, repr(response))
        response = self.http("GET", "/close-codes")
        self.assertEqual(response.status, 200)
        response = self.http("GET", "/ws?" + ws_query(TOKENS["bob"], "d1"))
        self.assertEqual((response.status, response.body), (426, b'{"code":0,"reason":"upgrade required"}'))
        self.assert_alive(client)
        # an upgrade on any other path is still refused, and / is not a WebSocket path
        _, response = self.connect(TOKENS["bob"], "d2", path="/")
        self.assertEqual(response.status, 404, repr(response))
        _, response = self.connect(TOKENS["bob"], "d2", path="/wsgate.js")
        self.assertEqual(response.status, 404, repr(response))

    def test_keep_alive_across_files_routes_and_verdicts(self):
        """nginx keeps upstream connections alive: each answer must end its
        transaction cleanly whichever path (file, fallback, API) gave it."""
        self.start()
        client = self.raw()
        steps = [("GET", "/wsgate.js", None, 200, read("wsgate.js")),
                 ("GET", "/healthz", None, 200, b'{"status":"ok","sessions":0}'),
                 ("GET", "/", None, 200, read("index.html")),
                 ("POST", "/api/publish", b'{"channel":"news","data":1}', 200, b'{"delivered":0,"seq":1}'),
                 ("GET", "/ws?token=wrong", None, 403, b'{"code":4003,"reason":"invalid token"}'),
                 ("GET", "/nope", None, 404, b'{"error":"not found"}'),
                 ("GET", "/close-codes", None, 200, None),
                 ("GET", "/index.html", None, 200, read("index.html"))]
        for method, path, body, status, expected in steps:
            with self.subTest(method=method, path=path):
                head = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)
                if method == "POST":
                    head += "Authorization: Bearer %s\r\nContent-Length: %d\r\n" % (API_KEY, len(body))
                client.send_raw((head + "\r\n").encode() + (body or b""))
                response = client.read_http_response()
                self.assertEqual(response.status, status, repr(response)[:300])
                if expected is not None:
                    self.assertEqual(response.body, expected)

    def test_no_root_no_files(self):
        self.start_server()
        for path in ("/", "/wsgate.js", "/index.html"):
            with self.subTest(path=path):
                response = self.http("GET", path)
                self.assertEqual((response.status, response.body), (404, b'{"error":"not found"}'))

    def test_empty_root_turns_it_off(self):
        self.start(http={"root": ""})
        response = self.http("GET", "/wsgate.js")
        self.assertEqual(response.status, 404)


class StaticFilesTlsTest(CertsTestCase):

    def test_wss_listener_serves_the_files_and_the_verdict(self):
        self.start_server(http={"root": WWW}, listen_tls={
            "cert": os.path.join(self.certdir, "server.crt"),
            "key": os.path.join(self.certdir, "server.key")})
        client = self.raw(tls=True)
        client.send_raw(b"GET /wsgate.js HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = client.read_http_response()
        self.assertEqual(response.status, 200, repr(response)[:300])
        self.assertEqual(response.media_type(), "text/javascript")
        self.assertEqual(response.body, read("wsgate.js"))
        client = self.raw(tls=True)
        client.send_raw(b"GET /ws?token=wrong HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = client.read_http_response()
        self.assertEqual((response.status, response.body), (403, b'{"code":4003,"reason":"invalid token"}'))


class VerdictQueryTest(WsgateTestCase):

    CASES = [  # (token, device, code, reason)
        (None, "d1", 4003, "missing token"),
        ("wrong", "d1", 4003, "invalid token"),
        (TOKENS["alice"], "bad device", 4000, "invalid device id"),
        (TOKENS["alice"], "x" * 65, 4000, "invalid device id"),
    ]

    def query(self, token=None, device=None, headers=None):
        return self.http("GET", "/ws?" + ws_query(token, device), headers=headers)

    def test_same_status_and_body_as_the_refused_upgrade(self):
        self.start_server()
        for token, device, code, reason in self.CASES:
            with self.subTest(token=token, device=device):
                _, refused = self.connect(token, device)
                self.assert_http_reject(refused, refused.status_line, code, reason)
                answer = self.query(token, device)
                self.assertEqual(answer.status_line, refused.status_line)
                self.assertEqual(answer.media_type(), "application/json")
                self.assertEqual(answer.body, refused.body)

    def test_same_verdict_with_reject_close(self):
        self.start_server(auth={"reject": "close"})
        for token, device, code, reason in self.CASES:
            with self.subTest(token=token, device=device):
                client, response = self.connect(token, device)
                self.assert_close_reject(client, response, code, reason)
                answer = self.query(token, device)
                self.assertEqual(answer.status, 403 if code == 4003 else 400)
                self.assertEqual(json.loads(answer.body), {"code": code, "reason": reason})

    def test_bearer_header_counts_like_the_query(self):
        self.start_server()
        answer = self.http("GET", "/ws?device=d1", headers={"Authorization": "Bearer wrong"})
        self.assertEqual((answer.status, answer.body), (403, b'{"code":4003,"reason":"invalid token"}'))
        answer = self.http("GET", "/ws", headers={"Authorization": "Bearer " + TOKENS["bob"]})
        self.assertEqual((answer.status, answer.body), (426, b'{"code":0,"reason":"upgrade required"}'))

    def test_admitted_is_426_and_a_repeat_connect_is_not_revealed(self):
        self.start_server()
        client, _ = self.open_session("alice", "d1")
        answer = self.query(TOKENS["alice"], "d1")
        self.assertEqual(answer.status_line, "HTTP/1.1 426 Upgrade Required")
        self.assertEqual(answer.body, b'{"code":0,"reason":"upgrade required"}')
        self.assert_alive(client)
        self.assertEqual(len(self.server.log_lines("session_open")), 1)

    def test_at_capacity(self):
        self.start_server(sessions={"max": 1})
        self.open_session("alice", "d1")
        _, refused = self.connect(TOKENS["bob"], "d1")
        answer = self.query(TOKENS["bob"], "d1")
        self.assertEqual((answer.status, answer.body), (503, b'{"code":1013,"reason":"server at capacity"}'))
        self.assertEqual((answer.status_line, answer.body), (refused.status_line, refused.body))

    def test_counted_in_metrics_apart_from_handshakes(self):
        self.start_server()
        before = self.metrics()
        for token, device, _, _ in self.CASES:
            self.query(token, device)
        self.query(TOKENS["alice"], "d1")
        after = self.metrics()
        for outcome, n in (("missing_token", 1), ("invalid_token", 1), ("invalid_device", 2),
                           ("admitted", 1), ("at_capacity", 0)):
            key = 'wsgate_verdict_queries_total{outcome="%s"}' % outcome
            self.assertEqual(after[key] - before[key], n, key)
        for key, value in before.items():
            if key.startswith("wsgate_handshakes_total"):
                self.assertEqual(after[key], value, key)
        # a query is not a refused handshake in the log either
        self.assertEqual(self.server.log_lines("handshake_refused"), [])

    def test_cors_for_any_origin_without_an_allow_list(self):
        self.start_server()
        answer = self.query("wrong", "d1", headers={"Origin": "https://page.example"})
        self.assertEqual(answer.headers.get("access-control-allow-origin"), "https://page.example")
        self.assertEqual(answer.headers.get("vary"), "Origin")
        answer = self.query("wrong", "d1")
        self.assertNotIn("access-control-allow-origin", answer.headers)
        self.assertEqual(answer.headers.get("vary"), "Origin")

    def test_cors_only_for_allowed_origins(self):
        self.start_server(auth={"origins": ["https://app.example"]})
        answer = self.query(TOKENS["alice"], "d1", headers={"Origin": "https://app.example"})
        self.assertEqual(answer.status, 426)
        self.assertEqual(answer.headers.get("access-control-allow-origin"), "https://app.example")
        answer = self.query(TOKENS["alice"], "d1", headers={"Origin": "https://evil.example"})
        self.assertEqual((answer.status, answer.body), (403, b'{"code":4003,"reason":"origin not allowed"}'))
        self.assertNotIn("access-control-allow-origin", answer.headers)
        self.assertEqual(answer.headers.get("vary"), "Origin")
        for origin, allowed in (("https://app.example", True), ("https://evil.example", False)):
            response = self.http("GET", "/close-codes", headers={"Origin": origin})
            self.assertEqual(response.status, 200)
            self.assertEqual("access-control-allow-origin" in response.headers, allowed)

    def test_post_on_the_path_is_no_query(self):
        self.start_server()
        response = self.http("POST", "/ws?token=wrong", "{}")
        self.assertEqual((response.status, response.body), (404, b'{"error":"not found"}'))
        self.assertEqual(self.metrics()['wsgate_verdict_queries_total{outcome="invalid_token"}'], 0)


class CloseCodesTest(WsgateTestCase):

    def test_public_table_is_the_api_table(self):
        self.start_server(api={"keys": [API_KEY]})
        public = self.http("GET", "/close-codes")
        self.assertEqual(public.status, 200)
        self.assertEqual(public.media_type(), "application/json")
        api = self.http("GET", "/api/close-codes", api_key=API_KEY)
        self.assertEqual(api.status, 200)
        self.assertEqual(public.body, api.body)
        parsed = json.loads(public.body)
        self.assertEqual([r["codes"] for r in parsed["ranges"]], ["4000-4099", "4100-4199", "4200-4299"])
        response = self.http("POST", "/close-codes", "{}")
        self.assertEqual(response.status, 405)


if __name__ == "__main__":
    main()

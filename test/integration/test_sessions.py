"""Repeat connections with the same (user, device): reject-new and replace-old."""

from wsgate_harness import TOKENS, WsgateTestCase, main, run_async, ws_closed, ws_connect

API_KEY = "sessions-test-api-key-0123"


class RejectNewTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(sessions={"on_repeat": "reject-new"})

    def assert_repeat_rejected(self, user="alice", device="d1"):
        client, response = self.connect(TOKENS[user], device)
        self.assert_close_reject(client, response, 4001, "repeat connect channel")

    def test_second_connection_same_user_device_closed_4001(self):
        self.open_session("alice", "d1")
        self.assert_repeat_rejected()

    def test_first_session_untouched_by_rejected_repeat(self):
        first, _ = self.open_session("alice", "d1")
        self.assert_repeat_rejected()
        self.assert_alive(first)
        self.assertEqual(first.expect_silence(0.2), 0)

    def test_repeat_rejected_in_close_reject_mode_too(self):
        self.start_server(auth={"reject": "close"}, sessions={"on_repeat": "reject-new"})
        self.open_session("alice", "d1")
        client, response = self.connect(TOKENS["alice"], "d1")
        self.assert_close_reject(client, response, 4001, "repeat connect channel")

    def test_repeat_rejected_with_bearer_token(self):
        self.open_session("alice", "d1")
        client, response = self.connect(device="d1",
                                        headers={"Authorization": "Bearer " + TOKENS["alice"]})
        self.assert_close_reject(client, response, 4001, "repeat connect channel")

    def test_different_device_same_user_no_conflict(self):
        first, _ = self.open_session("alice", "d1")
        second, _ = self.open_session("alice", "d2")
        self.assert_alive(first)
        self.assert_alive(second)

    def test_different_user_same_device_no_conflict(self):
        first, _ = self.open_session("alice", "d1")
        second, _ = self.open_session("bob", "d1")
        self.assert_alive(first)
        self.assert_alive(second)

    def test_same_key_can_reconnect_after_close(self):
        first, _ = self.open_session("alice", "d1")
        self.close_by_client(first)
        again, _ = self.open_session("alice", "d1")
        self.assert_alive(again)

    def test_same_key_admitted_at_once_after_its_close_was_decided(self):
        """A session the server is closing (here by the API) no longer holds
        its (user, device): the reconnect is admitted, not told 4001."""
        self.start_server(sessions={"on_repeat": "reject-new"}, api={"keys": [API_KEY]})
        first, _ = self.open_session("alice", "d1")
        response = self.http("POST", "/api/disconnect",
                             {"user": "alice", "device": "d1", "code": 4005}, api_key=API_KEY)
        self.assertEqual(response.body, b'{"closed":1}')
        self.open_session("alice", "d1")      # welcome, not 4001
        self.assertEqual(first.expect_close(), (4005, "disconnected by the application"))

    def test_same_key_can_reconnect_after_abrupt_disconnect(self):
        first, _ = self.open_session("alice", "d1")
        first.close()                                   # TCP gone, no close frame
        self.server.wait_for_log(r"event=session_close\b")
        again, _ = self.open_session("alice", "d1")
        self.assert_alive(again)

    def test_rejected_repeat_is_logged_with_code_4001(self):
        self.open_session("alice", "d1")
        self.assert_repeat_rejected()
        line = self.server.wait_for_log(r"code=4001\b")
        self.assertIn('reason="repeat connect channel"', line)
        self.assertRegex(line, r"(^|\s)by=server(\s|$)")

    def test_websockets_client_sees_close_4001(self):
        self.open_session("alice", "d1")

        async def scenario():
            ws = await ws_connect(self.server.port, token=TOKENS["alice"], device="d1")
            return await ws_closed(ws)
        self.assertEqual(run_async(scenario()), (4001, "repeat connect channel"))


class ReplaceOldTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(sessions={"on_repeat": "replace-old"})

    def test_old_session_closed_4002_and_new_admitted(self):
        old, old_id = self.open_session("alice", "d1")
        new, new_id = self.open_session("alice", "d1")      # gets its welcome
        self.assertNotEqual(old_id, new_id)
        self.assertEqual(old.expect_close(), (4002, "replaced by new connection"))
        self.assert_alive(new)

    def test_replace_chain_keeps_only_newest(self):
        first, _ = self.open_session("alice", "d1")
        second, _ = self.open_session("alice", "d1")
        self.assertEqual(first.expect_close(), (4002, "replaced by new connection"))
        third, _ = self.open_session("alice", "d1")
        self.assertEqual(second.expect_close(), (4002, "replaced by new connection"))
        self.assert_alive(third)

    def test_different_device_not_replaced(self):
        first, _ = self.open_session("alice", "d1")
        second, _ = self.open_session("alice", "d2")
        self.assert_alive(first)
        self.assert_alive(second)
        self.assertEqual(first.expect_silence(0.2), 0)

    def test_replacement_is_logged_with_code_4002(self):
        old, _ = self.open_session("alice", "d1")
        self.open_session("alice", "d1")
        # the session ends (and is logged) once the client answers the close frame
        old.expect_close()
        line = self.server.wait_for_log(r"event=session_close\b.*code=4002\b")
        self.assertIn('reason="replaced by new connection"', line)


if __name__ == "__main__":
    main()

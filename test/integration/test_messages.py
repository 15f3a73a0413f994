"""Application messages and protocol violations on an admitted session."""

import json

from wsgate_harness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                            WsgateTestCase, main)

MAX_BYTES = 1024


class MessagesTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server(websocket={"max_message_bytes": MAX_BYTES})
        self.client, _ = self.open_session("alice", "d1")

    def assert_bad_request(self, message):
        """The server answers `message` with a bad_request error and stays open."""
        self.client.send_text(message)
        reply = self.client.recv_text()
        self.assertTrue(reply.startswith('{"type":"error","code":"bad_request","message":"'),
                        "reply to %r: %r" % (message, reply))
        error = json.loads(reply)
        self.assertEqual(list(error), ["type", "code", "message"], reply)
        self.assertIsInstance(error["message"], str)
        self.assertTrue(error["message"], reply)
        self.assert_alive(self.client)

    def assert_closed_with(self, code, reason):
        self.assertEqual(self.client.expect_close(), (code, reason))

    # -- ping / pong ---------------------------------------------------------
    def test_text_ping_answered_with_text_pong(self):
        self.client.send_text("ping")
        self.assertEqual(self.client.recv_text(), "pong")

    def test_json_ping_answered_with_json_pong(self):
        self.client.send_text('{"type":"ping"}')
        self.assertEqual(self.client.recv_text(), '{"type":"pong"}')

    def test_json_ping_numeric_id_echoed(self):
        self.client.send_text('{"type":"ping","id":7}')
        self.assertEqual(self.client.recv_text(), '{"type":"pong","id":7}')

    def test_json_ping_string_id_echoed(self):
        self.client.send_text('{"id":"abc","type":"ping"}')
        self.assertEqual(self.client.recv_text(), '{"type":"pong","id":"abc"}')

    def test_fragmented_text_ping_reassembled(self):
        self.client.send_fragmented(OP_TEXT, [b"pi", b"n", b"g"])
        self.assertEqual(self.client.recv_text(), "pong")

    def test_ping_frame_answered_with_pong_frame(self):
        self.client.send_frame(OP_PING, b"abc")
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b"abc"), repr(frame))

    def test_ping_frame_between_fragments_answered(self):
        self.client.send_frame(OP_TEXT, b"pi", fin=False)
        self.client.send_frame(OP_PING, b"x")
        self.client.send_frame(OP_CONT, b"ng", fin=True)
        # RFC 6455 orders neither: the pong (lws's) and the reply (wsgate's corked output)
        frames = sorted((f.opcode, f.payload) for f in (self.client.recv_frame(), self.client.recv_frame()))
        self.assertEqual(frames, [(OP_TEXT, b"pong"), (OP_PONG, b"x")])

    def test_many_pings_answered_in_order(self):
        for i in range(20):
            self.client.send_text('{"type":"ping","id":%d}' % i)
        for i in range(20):
            self.assertEqual(self.client.recv_text(), '{"type":"pong","id":%d}' % i)

    # -- bad requests keep the session open -------------------------------------
    def test_unknown_type_is_bad_request(self):
        for message in ['{"type":"subscribe"}', '{"type":7}', '{"type":"PING"}']:
            with self.subTest(message=message):
                self.assert_bad_request(message)

    def test_json_without_type_is_bad_request(self):
        self.assert_bad_request('{"foo":1}')

    def test_bad_request_echoes_the_request_id(self):
        self.client.send_text('{"type":"subscribe_all","id":3}')
        reply = self.client.recv_text()
        self.assertEqual(json.loads(reply), {"type": "error", "id": 3, "code": "bad_request",
                                             "message": 'unknown type "subscribe_all"'})
        self.assertTrue(reply.startswith('{"type":"error","id":3,"code":"bad_request"'), reply)
        self.assert_alive(self.client)

    def test_non_object_json_is_bad_request(self):
        for message in ['[1,2]', '42', '"ping"', 'null']:
            with self.subTest(message=message):
                self.assert_bad_request(message)

    def test_invalid_json_is_bad_request(self):
        for message in ['{"type":', 'hello', '{"type":"ping",}', '']:
            with self.subTest(message=message):
                self.assert_bad_request(message)

    def test_message_of_exactly_max_bytes_accepted(self):
        self.assert_bad_request("x" * MAX_BYTES)

    def test_fragmented_message_within_max_bytes_accepted(self):
        self.client.send_fragmented(OP_TEXT, [b"y" * 300] * 3)
        self.assertTrue(self.client.recv_text().startswith('{"type":"error","code":"bad_request"'))
        self.assert_alive(self.client)

    # -- protocol violations close the session -------------------------------------
    def test_message_over_max_bytes_closed_1009(self):
        self.client.send_text("x" * (MAX_BYTES + 1))
        self.assert_closed_with(1009, "message too big")

    def test_fragmented_message_over_max_bytes_closed_1009(self):
        self.client.send_fragmented(OP_TEXT, [b"y" * 400] * 3)
        self.assert_closed_with(1009, "message too big")

    def test_binary_message_closed_1003(self):
        self.client.send_binary(b"\x00\x01\x02")
        self.assert_closed_with(1003, "binary messages not accepted")

    def test_fragmented_binary_message_closed_1003(self):
        self.client.send_fragmented(OP_BINARY, [b"\x00", b"\x01"])
        self.assert_closed_with(1003, "binary messages not accepted")

    def test_invalid_utf8_text_closed_1007(self):
        self.client.send_text(b'{"type":"ping","x":"\xff\xfe"}')
        self.assert_closed_with(1007, "invalid UTF-8")

    def test_bad_opcode_closed_1002(self):
        self.client.send_frame(0x3, b"")
        self.assert_closed_with(1002, "bad opc")

    # -- client-initiated close ------------------------------------------------
    def test_client_close_1000_echoed_and_logged(self):
        self.client.send_close(1000, "bye")
        code, _ = self.client.expect_close()
        self.assertEqual(code, 1000)
        line = self.server.wait_for_log(r"event=session_close\b")
        self.assertRegex(line, r"(^|\s)code=1000(\s|$)")
        self.assertRegex(line, r"(^|\s)by=client(\s|$)")
        self.assertRegex(line, r"(^|\s)dur_ms=\d+(\s|$)")

    def test_client_close_without_code_answered_with_close(self):
        # The answer to an empty close is an empty close or 1000, never 1005.
        self.client.send_close()
        frame = self.client.recv_frame()
        self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
        self.assertIn(frame.payload[:2], (b"", b"\x03\xe8"), repr(frame))
        self.client.expect_eof()

    def test_server_close_is_logged_with_code_and_by_server(self):
        self.client.send_binary(b"\x00")
        self.client.expect_close()
        line = self.server.wait_for_log(r"event=session_close\b")
        self.assertRegex(line, r"(^|\s)code=1003(\s|$)")
        self.assertRegex(line, r"(^|\s)by=server(\s|$)")


if __name__ == "__main__":
    main()

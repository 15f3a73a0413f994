"""The close handshake on the wire, both ways: the server answers a client's
close itself (valid codes echoed, a one-byte payload 1002, a reason that is not
UTF-8 1007) and ends TCP; a server close follows the output already queued,
in order, and nothing a client sends while it is on its way replaces it."""

import time

from wsgate_harness import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, WsgateTestCase,
                            build_frame, main, parse_close_payload)


class ClientCloseTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server()
        self.client, _ = self.open_session("alice", "d1")

    def answer_to(self, payload):
        """Sends a close with this raw payload; returns the server's answer, then expects EOF."""
        self.client.send_frame(OP_CLOSE, payload)
        frame = self.client.recv_frame()
        self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
        self.assertFalse(frame.masked)
        self.client.expect_eof()
        return frame.payload

    def test_valid_close_echoed_with_code_and_reason(self):
        self.assertEqual(self.answer_to(b"\x03\xe8bye"), b"\x03\xe8bye")
        line = self.server.wait_for_log(r"event=session_close\b.*by=client")
        self.assertIn('code=1000 reason="bye"', line)

    def test_longest_close_reason_echoed_whole(self):
        # lws's receive buffer is small (128 bytes): a control frame must still arrive whole
        payload = b"\x0f\xa0" + "é".encode() * 61 + b"x"          # 2 + 123 bytes
        self.assertEqual(self.answer_to(payload), payload)

    def test_longest_ping_answered_whole(self):
        payload = bytes(range(125))
        self.client.send_frame(OP_PING, payload)
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, payload))
        self.assert_alive(self.client)

    def test_application_code_echoed(self):
        self.assertEqual(self.answer_to(b"\x0f\xa0"), b"\x0f\xa0")  # 4000

    def test_empty_close_answered_empty(self):
        self.assertEqual(self.answer_to(b""), b"")
        self.server.wait_for_log(r"event=session_close\b.*code=1005\b.*by=client")

    def test_one_byte_payload_is_a_protocol_error(self):
        self.assertEqual(parse_close_payload(self.answer_to(b"\x03"))[0], 1002)

    def test_reserved_codes_are_protocol_errors(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000):
            with self.subTest(code=code):
                client, _ = self.open_session("alice", "d%d" % code)
                client.send_frame(OP_CLOSE, code.to_bytes(2, "big"))
                frame = client.recv_frame()
                self.assertEqual(frame.opcode, OP_CLOSE)
                self.assertEqual(parse_close_payload(frame.payload)[0], 1002, code)
                client.expect_eof()

    def test_reason_not_utf8_is_1007(self):
        code, _ = parse_close_payload(self.answer_to(b"\x03\xe8\xff\xfe"))
        self.assertEqual(code, 1007)

    def test_data_after_the_close_is_never_sent(self):
        # a reply produced just before the client's close is dropped, not sent after it
        self.client.send_raw(build_frame(OP_TEXT, b"ping") + build_frame(OP_CLOSE, b"\x03\xe8"))
        frames = []
        while True:
            frame = self.client.recv_frame()
            frames.append(frame.opcode)
            if frame.opcode == OP_CLOSE:
                break
        self.assertEqual(frames[-1], OP_CLOSE)
        self.assertNotIn(OP_TEXT, frames[frames.index(OP_CLOSE):])
        self.client.expect_eof()


class ServerCloseTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.start_server()

    def test_queued_replies_then_close_in_order(self):
        client, _ = self.open_session("alice", "d1")
        # one segment: ten requests, then a binary message that closes with 1003
        client.send_raw(b"".join(build_frame(OP_TEXT, b"ping") for _ in range(10)) +
                        build_frame(OP_BINARY, b"\x00"))
        for _ in range(10):
            self.assertEqual(client.recv_text(), "pong")
        self.assertEqual(client.expect_close(), (1003, "binary messages not accepted"))

    def test_client_ping_does_not_replace_a_pending_close(self):
        # the close is decided (1003) before lws reads the ping behind it; lws answers
        # pings from a buffer that once also held its close payload: ours is framed apart
        client, _ = self.open_session("alice", "d1")
        client.send_raw(build_frame(OP_BINARY, b"\x00") + build_frame(OP_PING, b"PINGPAYLOAD") +
                        build_frame(OP_PING, b"again"))
        frames = []
        while not frames or frames[-1].opcode != OP_CLOSE:
            frames.append(client.recv_frame())
        self.assertEqual(parse_close_payload(frames[-1].payload), (1003, b"binary messages not accepted"))
        # lws may still answer the ping after wsgate's close went out: a control frame,
        # which RFC 6455 5.5.1 allows; no data frame may follow
        client.send_close(1003)
        while True:
            try:
                frame = client.recv_frame(timeout=3)
            except EOFError:
                break
            self.assertEqual(frame.opcode, OP_PONG, "after the close: %r" % frame)

    def test_unanswered_close_cut_after_the_flush_deadline(self):
        client, _ = self.open_session("alice", "d1")
        client.send_raw(build_frame(OP_BINARY, b"\x00"))
        frame = client.recv_frame()
        self.assertEqual(parse_close_payload(frame.payload)[0], 1003)
        # never answered: the server waits for the client's close, then ends TCP itself
        started = time.monotonic()
        client.expect_eof(timeout=8)
        self.assertLess(time.monotonic() - started, 6.5)
        self.server.wait_for_log(r"event=session_close\b.*code=1003\b.*by=server")


if __name__ == "__main__":
    main()

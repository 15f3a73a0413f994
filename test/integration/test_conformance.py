"""RFC 6455 conformance of the server core, in the spirit of the Autobahn
fuzzingclient's sections 1-7, 9 and 10, against build/wsgate-echo (the wsgate
core with an echo application): framing and payload lengths, fragmentation
with interleaved control frames, UTF-8 (failing fast), reserved bits and
opcodes, control frame limits, and the close handshake. A raw-socket client
checks each answer byte for byte and that the server ends TCP after a close."""

import time

from wsgate_harness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, TOKENS,
                            WsgateTestCase, build_frame, echo_binary, main, parse_close_payload)


class ConformanceTest(WsgateTestCase):

    def setUp(self):
        super().setUp()
        self.executable = echo_binary()
        self.start_server(websocket={"max_message_bytes": 16 * 1024 * 1024},
                          limits={"max_queued_bytes": 64 * 1024 * 1024})
        self.client = self.echo_client()

    def echo_client(self):
        # one device id each: the same (user, device) twice would be a repeat connect (4001)
        self.clients_made = getattr(self, "clients_made", 0) + 1
        client, response = self.connect(TOKENS["alice"], device="c%d" % self.clients_made)
        self.assert_upgraded(response)
        return client

    def expect_failed_with(self, code, client=None):
        """The server fails the connection with `code`, then ends TCP once answered."""
        client = client or self.client
        frame = client.recv_frame()
        while frame.opcode in (OP_PONG, OP_TEXT, OP_BINARY):
            frame = client.recv_frame()
        self.assertEqual(frame.opcode, OP_CLOSE, repr(frame))
        self.assertEqual(parse_close_payload(frame.payload)[0], code, repr(frame))
        try:
            client.send_close(code)
        except OSError:
            pass
        started = time.monotonic()
        client.expect_eof(timeout=3)
        self.assertLess(time.monotonic() - started, 2.5, "TCP left open after the close handshake")

    def echo(self, opcode, payload):
        self.client.send_frame(opcode, payload)
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.fin, frame.rsv, frame.masked), (opcode, True, 0, False))
        self.assertEqual(len(frame.payload), len(payload))
        self.assertEqual(frame.payload, payload)

    # -- 1: framing and payload lengths ------------------------------------------
    def test_text_and_binary_at_every_length_boundary(self):
        for n in (0, 125, 126, 127, 65535, 65536):
            with self.subTest(n=n):
                self.echo(OP_TEXT, b"*" * n)
                self.echo(OP_BINARY, bytes(i & 0xff for i in range(n)))

    def test_large_message_echoed_whole(self):
        self.echo(OP_BINARY, bytes(range(256)) * 4096)  # 1 MiB

    # -- 2: pings and pongs ----------------------------------------------------------
    def test_ping_answered_with_same_payload(self):
        for payload in (b"", b"x", bytes(range(125))):
            self.client.send_frame(OP_PING, payload)
            frame = self.client.recv_frame()
            self.assertEqual((frame.opcode, frame.payload), (OP_PONG, payload))

    def test_ping_over_125_bytes_fails_the_connection(self):
        # lws drops it without a close frame (docs/CONFORMANCE.md): TCP ends at once
        self.client.send_frame(OP_PING, b"x" * 126)
        self.client.expect_eof(timeout=2)

    def test_unsolicited_pong_ignored(self):
        self.client.send_frame(OP_PONG, b"unsolicited")
        self.echo(OP_TEXT, b"still here")

    # -- 3: reserved bits ------------------------------------------------------------
    def test_reserved_bits_are_protocol_errors(self):
        for rsv in (1, 2, 4, 7):
            with self.subTest(rsv=rsv):
                client = self.echo_client()
                client.send_frame(OP_TEXT, b"hello", rsv=rsv)
                self.expect_failed_with(1002, client)
        # lws found it; the log still names the code sent, not a network drop
        self.server.wait_for_log(r'event=session_close\b.*code=1002 reason="rsv bits" by=server')

    # -- 4: opcodes --------------------------------------------------------------------
    def test_reserved_opcodes_are_protocol_errors(self):
        for opcode in (3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf):
            with self.subTest(opcode=opcode):
                client = self.echo_client()
                client.send_frame(opcode, b"x")
                self.expect_failed_with(1002, client)

    # -- 5: fragmentation --------------------------------------------------------------
    def test_fragments_joined_with_pings_between(self):
        # each ping answered before the next: lws answers one of two back-to-back pings
        # (RFC 6455 5.5.3 allows it; see docs/CONFORMANCE.md)
        self.client.send_frame(OP_TEXT, b"frag", fin=False)
        self.client.send_frame(OP_PING, b"p1")
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b"p1"))
        self.client.send_frame(OP_CONT, b"ment", fin=False)
        self.client.send_frame(OP_PING, b"p2")
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_PONG, b"p2"))
        self.client.send_frame(OP_CONT, b"ed", fin=True)
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_TEXT, b"fragmented"))

    def test_fragmented_binary_in_many_pieces(self):
        parts = [bytes([i]) * 1000 for i in range(100)]
        self.client.send_fragmented(OP_BINARY, parts)
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_BINARY, b"".join(parts)))

    def test_fragmented_control_frame_is_a_protocol_error(self):
        self.client.send_frame(OP_PING, b"half", fin=False)
        self.expect_failed_with(1002)

    def test_continuation_without_a_start_is_a_protocol_error(self):
        self.client.send_frame(OP_CONT, b"orphan", fin=True)
        self.expect_failed_with(1002)

    def test_new_message_inside_a_fragmented_one_is_a_protocol_error(self):
        self.client.send_frame(OP_TEXT, b"one", fin=False)
        self.client.send_frame(OP_TEXT, b"two", fin=True)
        self.expect_failed_with(1002)

    # -- 6: UTF-8 ------------------------------------------------------------------------
    def test_valid_utf8_echoed(self):
        self.echo(OP_TEXT, "κόσμε 𝄞 Hello-µ@ßöäüàá-UTF-8!!".encode())

    def test_invalid_utf8_in_a_whole_message_is_1007(self):
        for payload in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\xce"):
            with self.subTest(payload=payload):
                client = self.echo_client()
                client.send_frame(OP_TEXT, payload)
                self.expect_failed_with(1007, client)

    def test_invalid_utf8_fails_fast_before_the_message_ends(self):
        # the message is never finished: the server must fail it at the bad byte
        self.client.send_frame(OP_TEXT, "κόσμε".encode(), fin=False)
        self.client.send_frame(OP_CONT, b"\xce\xba\xf4\x90\x80\x80", fin=False)
        self.expect_failed_with(1007)

    def test_character_split_across_fragments_is_valid(self):
        text = "κόσμε".encode()
        self.client.send_frame(OP_TEXT, text[:3], fin=False)   # cuts the second character
        self.client.send_frame(OP_CONT, text[3:], fin=True)
        frame = self.client.recv_frame()
        self.assertEqual((frame.opcode, frame.payload), (OP_TEXT, text))

    # -- 7: close handling ---------------------------------------------------------------
    def test_valid_close_answered_with_the_same_code(self):
        for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
            with self.subTest(code=code):
                client = self.echo_client()
                client.send_close(code, b"ok")
                frame = client.recv_frame()
                self.assertEqual(frame.opcode, OP_CLOSE)
                self.assertEqual(parse_close_payload(frame.payload)[0], code)
                client.expect_eof(timeout=3)

    def test_invalid_close_codes_are_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
            with self.subTest(code=code):
                client = self.echo_client()
                client.send_frame(OP_CLOSE, code.to_bytes(2, "big"))
                self.expect_failed_with(1002, client)

    def test_one_byte_close_payload_is_1002(self):
        self.client.send_frame(OP_CLOSE, b"\x03")
        self.expect_failed_with(1002)

    def test_close_reason_not_utf8_is_1007(self):
        self.client.send_frame(OP_CLOSE, b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
        self.expect_failed_with(1007)

    def test_close_over_125_bytes_fails_the_connection(self):
        self.client.send_frame(OP_CLOSE, b"\x03\xe8" + b"x" * 124)
        self.client.expect_eof(timeout=2)

    def test_nothing_echoed_after_a_close(self):
        self.client.send_raw(build_frame(OP_CLOSE, b"\x03\xe8") + build_frame(OP_TEXT, b"late"))
        frame = self.client.recv_frame()
        self.assertEqual(frame.opcode, OP_CLOSE)
        self.client.expect_eof(timeout=3)

    # -- 9: limits and throughput ------------------------------------------------------------
    def test_many_small_messages_in_one_segment(self):
        self.client.send_raw(b"".join(build_frame(OP_TEXT, b"%d" % i) for i in range(1000)))
        for i in range(1000):
            frame = self.client.recv_frame()
            self.assertEqual(frame.payload, b"%d" % i)

    def test_message_over_the_limit_is_1009(self):
        self.client.send_frame(OP_BINARY, b"\x00" * (16 * 1024 * 1024 + 1))
        self.expect_failed_with(1009)


if __name__ == "__main__":
    main()

"""Clients for the installed wsgate (test_package.sh): on the plain port a valid
token gets 101 and the welcome, a bad one 403 with the 4003 JSON body; on the
TLS port (when given) a valid token gets 101 and the welcome over TLS checked
against the CA.

    /usr/bin/python3 pkg_client.py PORT [TLS_PORT CA_FILE]

Exits 0 when every check passes; prints what it saw either way."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from wsgate_harness import (OP_CLOSE, RawClient, client_ssl_context,  # noqa: E402
                            parse_close_payload, ws_query)


def admitted(client, user, device):
    response = client.handshake(query=ws_query(token=user + "-secret", device=device))
    assert response.status == 101, "handshake: %r" % response
    welcome = client.recv_json()
    assert welcome["type"] == "welcome" and welcome["user"] == user and welcome["device"] == device, welcome
    print("admitted: 101, welcome %s" % json.dumps(welcome, sort_keys=True))
    client.send_close(1000, b"bye")
    frame = client.recv_frame()
    assert frame.opcode == OP_CLOSE and parse_close_payload(frame.payload)[0] == 1000, frame
    client.sock.close()


def main():
    port = int(sys.argv[1])
    admitted(RawClient(port), "alice", "pkg")

    client = RawClient(port)
    response = client.handshake(query=ws_query(token="not-a-token", device="pkg"))
    body = json.loads(response.body)
    assert response.status == 403, "bad token: %r" % response
    assert body == {"code": 4003, "reason": "invalid token"}, body
    print("refused: %s %s" % (response.status_line, json.dumps(body, sort_keys=True)))

    if len(sys.argv) > 3:
        tls_port, ca = int(sys.argv[2]), sys.argv[3]
        admitted(RawClient(tls_port, ssl_context=client_ssl_context(ca), server_hostname="localhost"),
                 "bob", "pkg-tls")


if __name__ == "__main__":
    main()

"""Shared harness for the wsgate end-to-end integration tests.

Every test file is a standalone script::

    /usr/bin/python3 test/integration/test_X.py --binary build/wsgate

(the binary may also be given with the WSGATE_BINARY environment variable).

This module provides:

* ``WsgateServer``: writes a libconfig file, runs the real binary on a free
  loopback port with stderr captured, and stops it with a signal;
* ``RawClient``: a plain-socket WebSocket client for byte-exact checks of the
  HTTP handshake and of frames (including deliberately broken frames);
* helpers for the ``websockets`` asyncio client;
* ``WsgateTestCase``: a ``unittest.TestCase`` base class that starts servers,
  opens sessions and, at cleanup, stops the server and checks that it exited
  with status 0 and never logged a token secret;
* TLS helpers: ``gen_certs`` (runs scripts/gen-certs.sh), ``client_ssl_context``;
  ``RawClient``, ``ws_connect`` and the ``WsgateTestCase`` connection helpers
  take ``tls=True`` (the server's ``listen_tls`` listener) or an explicit
  ``port`` (anything in front of wsgate, such as nginx);
* ``run_wscat``: runs the wscat CLI with a timeout;
* ``http_request`` / ``parse_metrics``: the backend HTTP API, /healthz, /metrics.
"""

import asyncio
import base64
import copy
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import quote

HOST = "127.0.0.1"
IO_TIMEOUT = 3.0            # default timeout of every socket operation (s)
START_TIMEOUT = 5.0         # time for the server to accept connections (s)
STOP_TIMEOUT = 10.0         # time for the server to exit after a signal (s)
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

TOKENS = {"alice": "alice-secret", "bob": "bob-secret"}
SESSION_ID_RE = r"[0-9a-f]{16}"

_BINARY = None

# ctest sets this: every server's log is kept there, with its config's secrets
# beside it, for the suite-wide check (check_log_secrets.py) that none is logged.
LOG_DIR = os.environ.get("WSGATE_TEST_LOG_DIR")


# --------------------------------------------------------------------------
# command line / binary location

def binary():
    """Path of the wsgate binary under test (absolute)."""
    path = _BINARY or os.environ.get("WSGATE_BINARY")
    if not path:
        raise RuntimeError("no wsgate binary: pass --binary PATH or set WSGATE_BINARY")
    return os.path.abspath(path)


def echo_binary():
    """The test-only wsgate-echo built beside the wsgate under test."""
    return os.path.join(os.path.dirname(binary()), "wsgate-echo")


def repo_root():
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    """Entry point of every test file: parse --binary, run unittest."""
    global _BINARY
    argv = [sys.argv[0]]
    args = iter(sys.argv[1:])
    for arg in args:
        if arg == "--binary":
            _BINARY = next(args, None)
        elif arg.startswith("--binary="):
            _BINARY = arg.split("=", 1)[1]
        else:
            argv.append(arg)
    path = _BINARY or os.environ.get("WSGATE_BINARY")
    if not path or not os.access(path, os.X_OK):
        sys.stderr.write("wsgate binary not found or not executable: %r "
                         "(use --binary PATH or WSGATE_BINARY)\n" % (path,))
        sys.exit(2)
    unittest.main(argv=argv, verbosity=2)


# --------------------------------------------------------------------------
# configuration

def default_config(port):
    """The configuration every test starts from, as nested dicts/lists."""
    return {
        "listen": {"address": HOST, "port": port},
        "websocket": {"path": "/ws", "max_message_bytes": 65536},
        "auth": {"reject": "http"},
        "sessions": {"on_repeat": "reject-new", "max": 100},
        "heartbeat": {"interval_ms": 25000, "timeout_ms": 10000},
        "shutdown": {"grace_ms": 2000},
        "tokens": [{"token": tok, "user": user} for user, tok in TOKENS.items()],
    }


def merge_config(base, overrides):
    """Deep-merge ``overrides`` into a copy of ``base`` (groups are merged,
    every other value replaces)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_config(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def to_libconfig(config):
    """Render nested dicts/lists as libconfig text, one setting per line."""
    def value(v, indent):
        pad = "  " * indent
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
        if isinstance(v, dict):
            inner = "".join("%s  %s = %s;\n" % (pad, k, value(x, indent + 1))
                            for k, x in v.items())
            return "{\n%s%s}" % (inner, pad)
        if isinstance(v, list):
            if all(isinstance(x, (str, int)) for x in v):   # array of scalars
                return "[ %s ]" % ", ".join(value(x, indent) for x in v)
            inner = ",\n".join("%s  %s" % (pad, value(x, indent + 1)) for x in v)
            return "(\n%s\n%s)" % (inner, pad)
        raise TypeError("cannot render %r" % (v,))
    return "".join("%s = %s;\n" % (k, value(v, 0)) for k, v in config.items())


def config_secrets(config):
    """Every token and API key ``config`` holds: none may ever appear in a log."""
    secrets = [entry["token"] for entry in config.get("tokens", [])
               if isinstance(entry, dict) and isinstance(entry.get("token"), str)]
    api = config.get("api")
    if isinstance(api, dict):
        secrets += [key for key in api.get("keys", []) if isinstance(key, str)]
    return secrets


def collected_log_path(config, port):
    """A log path in LOG_DIR that outlives the test, with NAME.secrets.json beside it."""
    os.makedirs(LOG_DIR, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="wsgate-%d-" % port, suffix=".log", dir=LOG_DIR)
    os.close(fd)
    with open(path[:-len(".log")] + ".secrets.json", "w") as f:
        json.dump(config_secrets(config), f)
    return path


def line_of(text, needle):
    """1-based number of the first line of ``text`` that contains ``needle``."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise ValueError("%r not in config text" % needle)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def vm_rss_kb(pid):
    """The resident set size of process pid, in kB (VmRSS of /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/%d/status" % pid)


def gen_certs(directory, timeout=30):
    """Run scripts/gen-certs.sh DIRECTORY (a CA and a server certificate for
    localhost / 127.0.0.1); returns the directory. Files: ca.crt, ca.key,
    server.crt, server.key."""
    script = os.path.join(repo_root(), "scripts", "gen-certs.sh")
    result = subprocess.run([script, directory], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError("gen-certs.sh %s failed (%d): %s%s"
                             % (directory, result.returncode, result.stdout, result.stderr))
    for name in ("ca.crt", "server.crt", "server.key"):
        if not os.path.isfile(os.path.join(directory, name)):
            raise AssertionError("gen-certs.sh did not write %s" % name)
    return directory


def client_ssl_context(cafile=None):
    """Client TLS context: verifies the server against ``cafile`` (and checks
    the host name), or verifies nothing when ``cafile`` is None."""
    if cafile is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


def run_binary(args, timeout=10):
    """Run the binary to completion; returns CompletedProcess (text)."""
    return subprocess.run([binary()] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------
# server process

class WsgateServer:
    """One running ``wsgate -c CONF`` process with stderr captured to a file."""

    def __init__(self, workdir, overrides=None, executable=None):
        self.executable = executable        # None: the wsgate under test
        self.workdir = workdir
        self.port = free_port()
        self.config = merge_config(default_config(self.port), overrides or {})
        if "listen_tls" in self.config and "port" not in self.config["listen_tls"]:
            tls = {"address": HOST, "port": free_port()}      # address, port first
            tls.update(self.config["listen_tls"])
            self.config["listen_tls"] = tls
        self.conf_path = os.path.join(workdir, "wsgate-%d.conf" % self.port)
        self.log_path = os.path.join(workdir, "wsgate-%d.log" % self.port)
        if LOG_DIR:
            self.log_path = collected_log_path(self.config, self.port)
        with open(self.conf_path, "w") as f:
            f.write(to_libconfig(self.config))
        os.chmod(self.conf_path, 0o600)     # it holds tokens: wsgate refuses it open to others
        self.proc = None
        self.exit_code = None

    @property
    def path(self):
        return self.config["websocket"]["path"]

    @property
    def tls_port(self):
        """Port of the listen_tls listener (None without one)."""
        return self.config.get("listen_tls", {}).get("port")

    def start(self, timeout=START_TIMEOUT, attempts=3):
        """Starts the server. free_port() cannot reserve a port: when a test running
        beside this one took it first, start again on another one."""
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except AssertionError:
                if attempt + 1 == attempts or self.proc.poll() is None or \
                        ("cannot listen" not in self.log() and self.log().strip()):
                    raise
                self._move_to_free_ports()
        return self

    def _move_to_free_ports(self):
        old = self.port
        self.port = free_port()
        self.config["listen"]["port"] = self.port
        if "listen_tls" in self.config and self.config["listen_tls"].get("port") != old:
            self.config["listen_tls"]["port"] = free_port()
        self.conf_path = os.path.join(self.workdir, "wsgate-%d.conf" % self.port)
        self.log_path = (collected_log_path(self.config, self.port) if LOG_DIR
                         else os.path.join(self.workdir, "wsgate-%d.log" % self.port))
        with open(self.conf_path, "w") as f:
            f.write(to_libconfig(self.config))
        os.chmod(self.conf_path, 0o600)

    def _start_once(self, timeout):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.executable or binary(), "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])
        while ports:
            if self.proc.poll() is not None:
                raise AssertionError("wsgate exited with %s during start-up; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                socket.create_connection((HOST, ports[0]), timeout=0.2).close()
                ports.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError("wsgate did not accept connections on port %d "
                                         "within %.1fs; log:\n%s" % (ports[0], timeout, self.log()))
                time.sleep(0.02)
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, event=None):
        lines = self.log().splitlines()
        if event is not None:
            lines = [l for l in lines if re.search(r"(^|\s)event=%s(\s|$)" % re.escape(event), l)]
        return lines

    def wait_for_log(self, pattern, timeout=IO_TIMEOUT):
        """Wait until a log line matches ``pattern`` (regex); returns the line."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if re.search(pattern, line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %.1fs; log:\n%s"
                                     % (pattern, timeout, self.log()))
            time.sleep(0.02)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Wait for exit; returns the exit code, or None on timeout."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send ``sig``, wait (kill after ``timeout``); returns (exit code, log).
        The exit code is None if the process had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if self.wait(timeout) is None:
                self.kill()
                return None, self.log()
        self.exit_code = self.proc.returncode
        return self.exit_code, self.log()


# --------------------------------------------------------------------------
# raw socket WebSocket client

class HttpResponse:
    def __init__(self, status_line, headers, body):
        self.status_line = status_line
        self.status = int(status_line.split(" ", 2)[1]) if " " in status_line else 0
        self.header_list = headers                  # [(name, value)] as sent
        self.headers = {}                           # lower-case name -> value
        for name, value in headers:
            key = name.lower()
            self.headers[key] = (self.headers[key] + ", " + value) if key in self.headers else value
        self.body = body

    def media_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __repr__(self):
        return "HttpResponse(%r, %r, %r)" % (self.status_line, self.header_list, self.body)


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload
        self.time = time.monotonic()                # when it was read

    def __repr__(self):
        return "Frame(fin=%d, rsv=%d, opcode=0x%x, masked=%d, payload=%r)" % (
            self.fin, self.rsv, self.opcode, self.masked, self.payload[:80])


def build_frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    """Encode one client frame (masked unless mask=False)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


def parse_close_payload(payload):
    """(code, reason bytes) of a close frame; code None if the payload is empty."""
    if len(payload) == 0:
        return None, b""
    if len(payload) == 1:
        raise AssertionError("close frame with a 1-byte payload: %r" % payload)
    return struct.unpack("!H", payload[:2])[0], payload[2:]


def check_server_close(code, reason):
    """Rules every close sent by the server obeys; returns the reason as str."""
    if code is None:
        raise AssertionError("server sent a close frame without a status code (1005)")
    if code in (1005, 1006, 1015):
        raise AssertionError("server sent reserved close code %d" % code)
    if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        raise AssertionError("server sent invalid close code %d" % code)
    if len(reason) > 123:
        raise AssertionError("close reason is %d bytes (> 123): %r" % (len(reason), reason))
    try:
        return reason.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError("close reason is not valid UTF-8: %r" % reason)


class UnexpectedClose(AssertionError):
    def __init__(self, code, reason):
        super().__init__("unexpected close frame: code=%r reason=%r" % (code, reason))
        self.code, self.reason = code, reason


def ws_query(token=None, device=None, **extra):
    """Query string ``token=..&device=..`` (None values omitted). Device-id
    characters ``._:-`` are sent literally, everything else percent-encoded."""
    params = [("token", token), ("device", device)] + list(extra.items())
    parts = ["%s=%s" % (k, quote(str(v), safe="._:-")) for k, v in params if v is not None]
    return "&".join(parts)


class RawClient:
    """A WebSocket client on a plain socket, every operation with a timeout."""

    def __init__(self, port, timeout=IO_TIMEOUT, ssl_context=None, server_hostname=HOST,
                 rcvbuf=None):
        """With ``ssl_context`` the connection is TLS (handshake done here).
        ``rcvbuf``: SO_RCVBUF (bytes) set before connecting, for a client
        that should fill up quickly when it stops reading."""
        self.port = port
        self.timeout = timeout
        if rcvbuf is None:
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                self.sock.settimeout(timeout)
                self.sock.connect((HOST, port))
            except BaseException:
                self.sock.close()
                raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            try:
                self.sock = ssl_context.wrap_socket(self.sock, server_hostname=server_hostname)
            except BaseException:
                self.sock.close()
                raise
        self.buf = b""
        self.frames = []            # every frame received, for diagnostics

    # -- byte level ------------------------------------------------------
    def _fill(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out waiting for %s" % what)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for %s (frames so far: %r)" % (what, self.frames))
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""                              # TCP (or TLS) connection ended
        if not data:
            raise EOFError("connection closed by server while waiting for %s "
                           "(frames so far: %r)" % (what, self.frames))
        self.buf += data

    def _take(self, n, deadline, what):
        while len(self.buf) < n:
            self._fill(deadline, what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_raw(self, data):
        self.sock.sendall(data)

    # -- HTTP handshake --------------------------------------------------
    def handshake(self, path="/ws", query=None, headers=None, key=None, timeout=None):
        """Send an upgrade request; returns the HttpResponse. For a 101 the
        Sec-WebSocket-Accept header is verified."""
        key = key or base64.b64encode(os.urandom(16)).decode()
        target = path + ("?" + query if query else "")
        lines = ["GET %s HTTP/1.1" % target,
                 "Host: %s:%d" % (HOST, self.port),
                 "Upgrade: websocket",
                 "Connection: Upgrade",
                 "Sec-WebSocket-Key: %s" % key,
                 "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = self.read_http_response(timeout)
        if response.status == 101:
            expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            got = response.headers.get("sec-websocket-accept")
            if got != expected:
                raise AssertionError("bad Sec-WebSocket-Accept %r (expected %r)" % (got, expected))
        return response

    def read_http_response(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline, "HTTP response headers")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head_lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(s.strip() for s in l.split(":", 1)) for l in head_lines[1:] if ":" in l]
        response = HttpResponse(head_lines[0], headers, b"")
        if response.status == 101:
            return response                         # self.buf now holds frames
        if "content-length" in response.headers:
            response.body = self._take(int(response.headers["content-length"]), deadline, "HTTP body")
        elif "chunked" in response.headers.get("transfer-encoding", "").lower():
            response.body = self._read_chunked(deadline)
        else:                                       # body delimited by EOF
            try:
                while True:
                    self._fill(deadline, "end of HTTP body")
            except EOFError:
                pass
            response.body, self.buf = self.buf, b""
        return response

    def _read_chunked(self, deadline):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline, "HTTP chunk size")
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            chunk = self._take(size + 2, deadline, "HTTP chunk")
            if size == 0:
                return body
            body += chunk[:-2]

    # -- sending frames ----------------------------------------------------
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        self.send_raw(build_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_fragmented(self, opcode, parts):
        """Send one message as len(parts) frames (first opcode, then continuations)."""
        for i, part in enumerate(parts):
            self.send_frame(opcode if i == 0 else OP_CONT, part, fin=(i == len(parts) - 1))

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    # -- receiving frames --------------------------------------------------
    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        b0, b1 = self._take(2, deadline, "frame header")
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2, deadline, "frame length"))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8, deadline, "frame length"))[0]
        masked = bool(b1 & 0x80)
        key = self._take(4, deadline, "mask key") if masked else None
        payload = self._take(length, deadline, "frame payload")
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        frame = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload)
        self.frames.append(frame)
        if masked:
            raise AssertionError("server sent a masked frame: %r" % frame)
        return frame

    def recv_message(self, timeout=None, auto_pong=True):
        """Next data message as (opcode, payload), fragments joined; pings are
        answered (auto_pong) or skipped; a close frame raises UnexpectedClose."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        opcode, payload = None, b""
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_PING:
                if auto_pong:
                    self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode == OP_CLOSE:
                raise UnexpectedClose(*parse_close_payload(frame.payload))
            if opcode is None:
                opcode = frame.opcode
            payload += frame.payload
            if frame.fin:
                return opcode, payload

    def recv_text(self, timeout=None, auto_pong=True):
        opcode, payload = self.recv_message(timeout, auto_pong)
        if opcode != OP_TEXT:
            raise AssertionError("expected a text message, got opcode 0x%x: %r" % (opcode, payload))
        return payload.decode("utf-8")

    def recv_json(self, timeout=None):
        return json.loads(self.recv_text(timeout))

    def expect_close(self, timeout=None, allow_data=False, auto_pong=False):
        """Read until the server's close frame; data frames fail the test unless
        allow_data. Checks the close is well-formed, answers it, waits for the
        TCP connection to end. Returns (code, reason as str)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_CLOSE:
                break
            if frame.opcode == OP_PING:
                if auto_pong:
                    self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONT) and not allow_data:
                raise AssertionError("expected a close frame, got %r" % frame)
        code, reason = parse_close_payload(frame.payload)
        reason_text = check_server_close(code, reason)
        try:
            self.send_close(code)
        except OSError:
            pass                                    # server already dropped TCP
        self.expect_eof()
        return code, reason_text

    def expect_eof(self, timeout=None):
        """Assert the server closes the TCP connection (no further frames)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        try:
            while True:
                self._fill(deadline, "TCP close")
                if self.buf:
                    raise AssertionError("data after close: %r" % self.buf)
        except EOFError:
            return

    def expect_silence(self, duration, auto_pong=True):
        """Assert no data/close frame arrives for ``duration`` seconds; returns
        the number of pings received (answered if auto_pong)."""
        deadline = time.monotonic() + duration
        pings = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return pings
            try:
                frame = self.recv_frame(remaining)
            except AssertionError as e:
                if "timed out" in str(e):
                    return pings
                raise
            if frame.opcode == OP_PING:
                pings += 1
                if auto_pong:
                    self.send_frame(OP_PONG, frame.payload)
            elif frame.opcode == OP_CLOSE:
                raise UnexpectedClose(*parse_close_payload(frame.payload))
            elif frame.opcode != OP_PONG:
                raise AssertionError("unexpected frame %r" % frame)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# plain HTTP (backend API, /healthz, /metrics)

def http_request(port, method, path, body=None, headers=None, api_key=None, timeout=IO_TIMEOUT):
    """One HTTP/1.1 request on a fresh connection; returns the HttpResponse.
    ``body``: dict/list (sent as JSON), str or bytes (sent as is), or None.
    ``api_key`` adds ``Authorization: Bearer KEY``."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (HOST, port),
             "Connection: close"]
    if api_key is not None:
        lines.append("Authorization: Bearer %s" % api_key)
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append("Content-Length: %d" % len(body))
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    client = RawClient(port, timeout=timeout)
    try:
        client.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        return client.read_http_response(timeout)
    finally:
        client.close()


def parse_metrics(text):
    """Prometheus text -> {'name' or 'name{labels}': value}; comments skipped."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value) if "." in value or "e" in value else int(value)
    return values


# --------------------------------------------------------------------------
# `websockets` (asyncio) client helpers

def ws_url(port, token=None, device=None, path="/ws", scheme="ws"):
    query = ws_query(token, device)
    return "%s://%s:%d%s%s" % (scheme, HOST, port, path, "?" + query if query else "")


async def ws_connect(port, token=None, device=None, path="/ws", headers=None, origin=None,
                     ssl_context=None):
    """Open a `websockets` client connection (ws://, or wss:// with ssl_context).
    The client sends no pings of its own but answers the server's."""
    import websockets
    scheme = "wss" if ssl_context is not None else "ws"
    extra = {"ssl": ssl_context} if ssl_context is not None else {}
    return await websockets.connect(ws_url(port, token, device, path, scheme),
                                    extra_headers=headers or {}, origin=origin,
                                    open_timeout=IO_TIMEOUT, close_timeout=IO_TIMEOUT,
                                    ping_interval=None, max_size=None, **extra)


async def ws_closed(ws):
    """Wait for the connection to close; returns (close code, close reason)."""
    await asyncio.wait_for(ws.wait_closed(), IO_TIMEOUT)
    return ws.close_code, ws.close_reason


async def ws_recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))


def run_async(coro, timeout=15):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --------------------------------------------------------------------------
# wscat

WSCAT = os.environ.get("WSCAT") or os.path.join(repo_root(), "node_modules", ".bin", "wscat")


def run_wscat(args, timeout=10):
    """Run wscat with stdin an open (silent) pipe (at EOF wscat quits before
    connecting) and stdout/stderr captured; returns (exit code, stdout, stderr)."""
    if not os.access(WSCAT, os.X_OK):
        raise AssertionError("wscat not found at %s: run `npm install` in the repository root"
                             % WSCAT)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([WSCAT] + list(args), stdin=subprocess.PIPE, stdout=out,
                                stderr=err, text=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        finally:
            proc.stdin.close()
            proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if rc is None:
        raise AssertionError("wscat did not exit in %ds; stdout=%r stderr=%r"
                             % (timeout, stdout, stderr))
    return rc, stdout, stderr


# --------------------------------------------------------------------------
# test-case base class

def welcome_re(user, device, heartbeat_ms, session=SESSION_ID_RE):
    """Regex the exact welcome text must fully match."""
    return (r'\{"type":"welcome","session":"(%s)","user":"%s","device":"%s","heartbeat_ms":%d\}'
            % (session, re.escape(user), re.escape(device), heartbeat_ms))


class WsgateTestCase(unittest.TestCase):
    """Base class: self.server is started by start_server(); at cleanup the
    server is stopped with SIGTERM and must exit 0 without logging a token."""

    server = None
    cafile = None           # CA for tls=True connections (None: no verification)

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="wsgate-it-")
        self.addCleanup(shutil.rmtree, self.workdir, True)

    executable = None       # None: the wsgate under test; echo_binary() for wsgate-echo

    def start_server(self, **overrides):
        server = WsgateServer(self.workdir, overrides, executable=self.executable)
        server.start()                  # on failure the process is already gone
        self.addCleanup(self._stop_and_check, server)
        self.server = server
        return server

    def _stop_and_check(self, server):
        rc, log = server.stop()
        if os.environ.get("WSGATE_TEST_VERBOSE"):
            sys.stderr.write("\n--- wsgate log (%s) ---\n%s--- end ---\n" % (self.id(), log))
        for token in TOKENS.values():
            self.assertNotIn(token, log, "token secret appears in the server log")
        self.assertEqual(rc, 0, "wsgate exit code after SIGTERM (None = killed); log:\n" + log)

    # -- connections ---------------------------------------------------------
    def raw(self, server=None, tls=False, port=None, rcvbuf=None):
        """Raw client to the server's ws port, its wss port (tls=True), or any
        ``port`` (TLS when tls=True, for example nginx in front). ``rcvbuf``:
        see RawClient."""
        server = server or self.server
        if port is None:
            port = server.tls_port if tls else server.port
        context = client_ssl_context(self.cafile) if tls else None
        client = RawClient(port, ssl_context=context, rcvbuf=rcvbuf)
        self.addCleanup(client.close)
        return client

    def connect(self, token=None, device=None, headers=None, path=None, query=None, server=None,
                tls=False, port=None, rcvbuf=None):
        """Raw client + handshake; returns (client, HttpResponse) whatever the status."""
        server = server or self.server
        client = self.raw(server, tls, port, rcvbuf=rcvbuf)
        if query is None:
            query = ws_query(token, device)
        response = client.handshake(path or server.path, query, headers)
        return client, response

    def assert_upgraded(self, response):
        self.assertEqual(response.status_line, "HTTP/1.1 101 Switching Protocols", repr(response))

    def open_session(self, user="alice", device="d1", headers=None, server=None, tls=False,
                     port=None, token=None, rcvbuf=None):
        """Open an admitted session; checks the exact welcome message.
        Returns (client, session id). The token goes in the query unless
        ``headers`` are given (then they must carry it) or ``token`` is."""
        server = server or self.server
        if token is None and headers is None:
            token = TOKENS[user]
        client, response = self.connect(token, device, headers, server=server, tls=tls, port=port,
                                        rcvbuf=rcvbuf)
        self.assert_upgraded(response)
        welcome = client.recv_text()
        match = re.fullmatch(welcome_re(user, device, server.config["heartbeat"]["interval_ms"]),
                             welcome)
        self.assertIsNotNone(match, "welcome message: %r" % welcome)
        return client, match.group(1)

    def assert_alive(self, client):
        """The session answers a text ping with a text pong."""
        client.send_text("ping")
        self.assertEqual(client.recv_text(), "pong")

    def close_by_client(self, client, code=1000, reason="bye"):
        """Client-initiated close: the server echoes the code and ends TCP."""
        client.send_close(code, reason)
        echoed, _ = client.expect_close()
        self.assertEqual(echoed, code)

    def assert_http_reject(self, response, status_line, code, reason):
        self.assertEqual(response.status_line, status_line, repr(response))
        self.assertEqual(response.media_type(), "application/json", repr(response))
        expected = ('{"code":%d,"reason":"%s"}' % (code, reason)).encode()
        self.assertEqual(response.body, expected, repr(response))

    def assert_close_reject(self, client, response, code, reason):
        """Handshake completed, then the first frame is close(code, reason)."""
        self.assert_upgraded(response)
        self.assertEqual(client.expect_close(), (code, reason))

    # -- HTTP: backend API, /healthz, /metrics -------------------------------
    def http(self, method, path, body=None, headers=None, api_key=None, server=None):
        """HTTP request to the server's plain port; returns the HttpResponse."""
        server = server or self.server
        return http_request(server.port, method, path, body, headers, api_key)

    def metrics(self, server=None):
        """GET /metrics parsed with parse_metrics (asserts 200)."""
        response = self.http("GET", "/metrics", server=server)
        self.assertEqual(response.status, 200, repr(response))
        return parse_metrics(response.body.decode("utf-8"))


class CertsTestCase(WsgateTestCase):
    """Makes a CA and a server certificate (scripts/gen-certs.sh) once per class:
    certdir, cafile; more_certs() may make others in certdir before the tests run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certdir = tempfile.mkdtemp(prefix="wsgate-certs-")
        try:
            gen_certs(cls.certdir)
            cls.more_certs()
        except BaseException:
            shutil.rmtree(cls.certdir, True)
            raise
        cls.cafile = os.path.join(cls.certdir, "ca.crt")

    @classmethod
    def more_certs(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certdir, True)
        super().tearDownClass()

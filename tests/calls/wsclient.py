"""A tiny stdlib WebSocket client (RFC 6455, text frames, client masking) for end-to-end tests
against daphne. The ``websockets`` package is not in the venv; this is all the tests need."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time
from urllib.parse import urlsplit


class WebSocketClosed(Exception):
    pass


class WSClient:
    def __init__(self, url: str, *, cookie: str = "", origin: str = "", timeout: float = 10.0):
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")  # ?tab=...
        headers = [
            f"GET {target} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: {origin or f'http://{parts.hostname}:{parts.port}'}",
        ]
        if cookie:
            headers.append(f"Cookie: {cookie}")
        self.sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WebSocketClosed(f"handshake refused: {response!r}")
            response += chunk
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        self.fragments = b""  # a message's frames received so far (RFC 6455 fragmentation)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise WebSocketClosed(f"handshake refused: {head!r}")

    def _frame(self) -> tuple[int, bytes] | None:
        """The first whole frame in the buffer, taken off it: (its first byte, its payload). None
        while the frame is still arriving, with nothing taken: a timeout never splits a frame."""
        buf = self.buffer
        if len(buf) < 2:
            return None
        length, start = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, start = struct.unpack(">H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, start = struct.unpack(">Q", buf[2:10])[0], 10
        if len(buf) < start + length:
            return None
        self.buffer = buf[start + length :]
        return buf[0], buf[start : start + length]

    def recv(self, timeout: float = 10.0) -> str:
        """The next text message; raises ``TimeoutError`` or :class:`WebSocketClosed`. What
        arrived before a timeout stays buffered (a message's earlier fragments too), so the next
        call goes on from there."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame()
            if frame is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no WebSocket message in time")
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(65536)  # socket.timeout is a TimeoutError
                if not chunk:
                    raise WebSocketClosed("connection closed")
                self.buffer += chunk
                continue
            first, payload = frame
            opcode = first & 0x0F
            if opcode == 0x8:
                raise WebSocketClosed(f"closed by server: {payload!r}")
            if opcode == 0x9:  # ping -> pong
                self._send(0xA, payload)
                continue
            self.fragments += payload
            if first & 0x80:
                message, self.fragments = self.fragments, b""
                return message.decode()

    def recv_until(self, predicate, timeout: float = 20.0) -> list[str]:
        """Messages until one satisfies ``predicate`` (all of them returned)."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching WebSocket message; got {seen}")
            try:
                seen.append(self.recv(timeout=remaining))
            except TimeoutError:
                continue
            if predicate(seen[-1]):
                return seen

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send(0x8, struct.pack(">H", 1000))
        self.sock.close()

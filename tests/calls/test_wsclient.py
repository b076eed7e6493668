"""The tests' WebSocket client against a server that sends its frames in pieces: a timeout in the
middle of a frame (or of a fragmented message) loses nothing, and the next read goes on from it."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

import pytest

from tests.calls.wsclient import WebSocketClosed, WSClient


def _frame(payload: bytes, *, opcode: int = 0x1, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


@pytest.fixture
def server():
    """A one-connection server: answers the handshake, then sends what the test puts in
    ``pieces`` one piece per ``go`` event (a test decides when each piece leaves)."""
    listener = socket.create_server(("127.0.0.1", 0))
    pieces: list[bytes] = []
    go = threading.Semaphore(0)
    received: list[bytes] = []

    def serve():
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            )
            while True:
                go.acquire()
                if not pieces:
                    return
                conn.sendall(pieces.pop(0))
                conn.settimeout(0.2)
                with contextlib.suppress(OSError):
                    received.append(conn.recv(4096))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]

    def send(piece: bytes) -> None:
        pieces.append(piece)
        go.release()

    yield f"ws://127.0.0.1:{port}/ws/desk/", send, received
    go.release()
    thread.join(timeout=5)
    listener.close()


def test_a_timeout_in_the_middle_of_a_frame_loses_nothing(server):
    url, send, _ = server
    ws = WSClient(url)
    message = ("<div>" + "x" * 3000 + "</div>").encode()
    whole = _frame(message)
    send(whole[:3])  # the header and a byte of its length: the frame is not there yet
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    send(whole[3:] + _frame(b"next"))
    assert ws.recv(timeout=5) == message.decode()
    assert ws.recv(timeout=5) == "next"


def test_a_fragmented_message_survives_a_timeout_between_its_frames_and_a_ping_is_answered(server):
    url, send, received = server
    ws = WSClient(url)
    send(_frame(b"first half, ", fin=False))
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    send(_frame(b"are you there", opcode=0x9) + _frame(b"second half", opcode=0x0))
    assert ws.recv(timeout=5) == "first half, second half"
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert received and received[-1][0] == 0x8A  # the pong (the server reads it on its own thread)


def test_a_close_frame_is_said(server):
    url, send, _ = server
    ws = WSClient(url)
    send(_frame(struct.pack(">H", 4403), opcode=0x8))
    with pytest.raises(WebSocketClosed, match="closed by server"):
        ws.recv(timeout=5)

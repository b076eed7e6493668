"""A bad network between the desk page and the server, played with Playwright's routing: the
test drops the desk's socket and keeps it down, holds back its frames (delivered later, in order,
as TCP would), and holds back HTTP answers. The product has no test hooks of its own."""

from __future__ import annotations

import re
import threading

from playwright.sync_api import Page, Route, WebSocketRoute

DESK_SOCKET = re.compile(r".*/ws/desk/.*")


class DeskSocket:
    """Stands between the desk page and ``/ws/desk/``."""

    def __init__(self, page: Page):
        self.page = page
        self.down = False
        self.holding = False
        self.held: list[tuple[WebSocketRoute, str]] = []
        self.frames: list[str] = []  # every frame the server sent, held or not
        self._open: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.connects = 0
        page.route_web_socket(DESK_SOCKET, self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if self.down:
            ws.close(code=1011, reason="network down")  # the extension retries 1011 itself
            return
        self.connects += 1
        server = ws.connect_to_server()
        ws.on_message(lambda message: server.send(message))
        server.on_message(lambda message: self._to_page(ws, message))
        self._open.append((ws, server))

    def _to_page(self, ws: WebSocketRoute, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode()
        self.frames.append(text)
        if self.holding:
            self.held.append((ws, text))
        else:
            ws.send(text)

    def drop(self) -> None:
        """The network goes: the socket closes and every reconnect fails until :meth:`resume`."""
        self.down = True
        for ws, server in self._open:
            server.close()
            ws.close(code=1011, reason="network down")
        self._open = []

    def resume(self) -> None:
        self.down = False

    def hold(self) -> None:
        """Frames from now on wait (a slow link): :meth:`release` delivers them in order."""
        self.holding = True

    def release(self, count: int | None = None) -> None:
        """Deliver the held frames in order: all of them (and stop holding), or the first
        ``count`` (holding on)."""
        if count is None:
            self.holding = False
            count = len(self.held)
        held, self.held = self.held[:count], self.held[count:]
        for ws, text in held:
            ws.send(text)


class SlowAnswers:
    """HTTP answers to requests matching ``pattern`` are held until :meth:`release`: the server
    has answered (the command ran), the browser has not heard yet."""

    def __init__(self, page: Page, pattern: str | re.Pattern):
        self.page = page
        self.pattern = pattern
        self.held: list[tuple[Route, object]] = []
        self.lock = threading.Lock()
        page.route(pattern, self._route)

    def _route(self, route: Route) -> None:
        response = route.fetch()  # the request reaches the server and is answered now
        with self.lock:
            self.held.append((route, response))

    def count(self) -> int:
        with self.lock:
            return len(self.held)

    def release(self) -> None:
        with self.lock:
            held, self.held = self.held, []
        for route, response in held:
            route.fulfill(response=response)
        self.page.unroute(self.pattern)
